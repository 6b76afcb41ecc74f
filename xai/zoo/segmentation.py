"""U-Net for semantic segmentation of the shapes scenes, with its targets adapter."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xai.datasets import Dataset
from xai.datasets._shapes import SHAPE_CLASSES, scene_masks
from xai.errors import DataError
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, seed_everything
from xai.zoo.dense_metrics import mean_iou

__all__ = ["UNet", "most_frequent_class", "segmentation_class_score"]


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU layers (each ReLU its own, out-of-place module)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015): encoder, bottleneck, decoder with skip connections.

    Three encoder stages halve the resolution (64 -> 32 -> 16 -> 8 at the bottleneck);
    each decoder stage upsamples with a transposed convolution, concatenates the encoder
    map of the same resolution and applies two 3x3 convolutions. Same padding keeps the
    output at the input's size (the paper's valid convolutions crop instead).

    Examples
    --------
    >>> UNet()(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 4, 64, 64])
    """

    def __init__(self, num_classes: int = len(SHAPE_CLASSES), in_channels: int = 3,
                 widths: tuple[int, int, int, int] = (8, 16, 32, 64)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.enc1 = _double_conv(in_channels, w1)  # (B, w1, H, W)
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = _double_conv(w1, w2)  # (B, w2, H/2, W/2)
        self.pool2 = nn.MaxPool2d(2)
        self.enc3 = _double_conv(w2, w3)  # (B, w3, H/4, W/4)
        self.pool3 = nn.MaxPool2d(2)
        self.bottleneck = _double_conv(w3, w4)  # (B, w4, H/8, W/8)
        self.up3 = nn.ConvTranspose2d(w4, w3, 2, stride=2)
        self.dec3 = _double_conv(2 * w3, w3)  # (B, w3, H/4, W/4)
        self.up2 = nn.ConvTranspose2d(w3, w2, 2, stride=2)
        self.dec2 = _double_conv(2 * w2, w2)  # (B, w2, H/2, W/2)
        self.up1 = nn.ConvTranspose2d(w2, w1, 2, stride=2)
        self.dec1 = _double_conv(2 * w1, w1)  # (B, w1, H, W)
        self.head = nn.Conv2d(w1, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel class logits ``(B, num_classes, H, W)`` (H and W divisible by 8)."""
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise DataError(f"U-Net needs height and width divisible by 8, got {tuple(x.shape[-2:])}")
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        e3 = self.enc3(self.pool2(e2))
        b = self.bottleneck(self.pool3(e3))
        d3 = self.dec3(torch.cat([self.up3(b), e3], 1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(d1)


def segmentation_class_score(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean class-``c`` logit over the pixels predicted as class ``c`` (one scalar per sample).

    The segmentation target of Grad-CAM for segmentation (Vinogradova et al. 2020,
    https://arxiv.org/abs/2002.11434), averaged rather than summed so scores do not grow
    with object size. The pixel set (the arg-max mask) carries no gradient; a sample
    where no pixel is predicted as ``c`` scores 0.

    Parameters
    ----------
    output
        Per-pixel logits ``(B, C, H, W)``.
    target
        Class index per sample ``(B,)``.
    """
    if output.ndim != 4:
        raise DataError(f"a segmentation target needs (batch, classes, H, W) outputs, got "
                        f"{tuple(output.shape)}")
    target = target.view(-1).to(output.device)
    logits = output.gather(1, target.view(-1, 1, 1, 1).expand(-1, 1, *output.shape[2:])).squeeze(1)  # (B, H, W)
    region = (output.detach().argmax(1) == target.view(-1, 1, 1)).to(output.dtype)  # (B, H, W)
    return (logits * region).sum((1, 2)) / region.sum((1, 2)).clamp(min=1)


def most_frequent_class(output: torch.Tensor) -> torch.Tensor:
    """The non-background class predicted on the most pixels ``(B,)``.

    A sample with no foreground pixel gets the foreground class of highest logit anywhere.
    """
    pred = output.argmax(1)  # (B, H, W)
    counts = nn.functional.one_hot(pred, output.shape[1]).sum((1, 2))[:, 1:]  # (B, C - 1)
    fallback = output[:, 1:].amax((2, 3)).argmax(1)  # (B,)
    return torch.where(counts.sum(1) > 0, counts.argmax(1), fallback) + 1


def _pixel_loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    """Per-pixel cross-entropy against the scenes' class masks."""
    masks = scene_masks(batch).to(batch.x.device)
    return nn.functional.cross_entropy(module(batch.x), masks)


@torch.no_grad()
def _evaluate_unet(module: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """Dataset-level mean IoU over the 4 classes (background included) and pixel accuracy."""
    was_training = module.training
    module.eval()
    try:
        preds = torch.cat([module(data.x[i:i + 64].to(device)).argmax(1).cpu()
                           for i in range(0, len(data), 64)])
    finally:
        module.train(was_training)
    masks = scene_masks(data)
    return {"miou": mean_iou(preds, masks, len(SHAPE_CLASSES)),
            "pixel_accuracy": float((preds == masks).double().mean())}


_UNET_RECIPE: dict[str, Any] = {"epochs": 5, "lr": 3e-3, "batch_size": 32, "weight_decay": 1e-4,
                                "augment": "horizontal flip"}


def _train_unet(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    generator = seed_everything(ctx.seed)
    epochs, batch_size = _UNET_RECIPE["epochs"], _UNET_RECIPE["batch_size"]
    module.to(ctx.device).train()
    optimiser = torch.optim.Adam(module.parameters(), lr=_UNET_RECIPE["lr"],
                                 weight_decay=_UNET_RECIPE["weight_decay"])
    steps = epochs * -(-len(ctx.train) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=_UNET_RECIPE["lr"], total_steps=steps)
    x_all, masks_all = ctx.train.x, scene_masks(ctx.train)
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task("unet", total=epochs, status="")
        for _ in range(epochs):
            order = torch.randperm(len(x_all), generator=generator)
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                xb, mb = x_all[idx], masks_all[idx]
                flip = torch.rand(len(idx), generator=generator) < 0.5
                xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
                mb = torch.where(flip.view(-1, 1, 1), mb.flip(-1), mb)
                optimiser.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(module(xb.to(ctx.device)), mb.to(ctx.device))
                loss.backward()
                optimiser.step()
                scheduler.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            running = total / count
            progress.update(task, advance=1, status=f"loss {running:.4f}")
    module.eval()
    return {**_evaluate_unet(module, ctx.test, ctx.device), "train_loss": running}


register_model(
    ZooEntry(
        name="unet",
        family="segmentation",
        task="segmentation",
        modality="image",
        dataset="shapes-seg",
        build=UNet,
        train=_train_unet,
        input_shape=(3, 64, 64),
        class_names=SHAPE_CLASSES,
        layers=("enc1", "enc2", "enc3", "bottleneck", "dec3", "dec2", "dec1"),
        metric="miou",
        floor=0.80,
        paper="https://arxiv.org/abs/1505.04597",
        description="U-Net segmenting circles, squares and triangles in seeded 64x64 shapes scenes",
        recipe=_UNET_RECIPE,
        loss=_pixel_loss,
        evaluate=_evaluate_unet,
        targets=segmentation_class_score,
        target_names=SHAPE_CLASSES,
        predicted_target=most_frequent_class,
    )
)
