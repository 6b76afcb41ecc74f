"""Image-to-image networks of the zoo: ESPCN super-resolution x2 (Shi et al. 2016).

``espcn`` upsamples grey 16x16 patches of scikit-image photos to 32x32 (the
``sr-patches`` dataset, split by photo). Its headline metric is the PSNR gain over
bicubic interpolation on held-out patches. For attribution it is explained LAM-style
(Gu & Dong 2021, https://arxiv.org/abs/2011.11036): the targets adapter reads the mean
intensity of one cell of a 4x4 grid over the output patch (target ``i`` = row ``i // 4``,
column ``i % 4``), and the baseline to use for integrated gradients is the *blurred* input
(:func:`blurred_baseline`), not black: a black patch is far off the data and says which
pixels carry any intensity at all, a blurred one asks which pixels' *detail* the network
used.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from xai.datasets import Dataset
from xai.datasets._photos import SR_GRID, SR_SCALE, PairedDataset, bicubic_upsample, busiest_cell
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, seed_everything

__all__ = ["ESPCN", "RandomFeatures", "StyleNet", "blurred_baseline", "cell_mean", "channel_mean", "psnr_gain",
           "style_losses", "style_scores"]

#: Pixels cut from each border of a 32x32 patch before PSNR: the network's receptive field
#: reaches 4 LR = 8 HR pixels, so PSNR is measured on the central 16x16 where both it and
#: bicubic have full context (the patch border lacks it: padding, not photo).
SHAVE = 8


class ESPCN(nn.Module):
    """Efficient sub-pixel CNN (Shi et al. 2016, https://arxiv.org/abs/1609.05158), x2, grey.

    Three convolutions on the low-resolution input, then a pixel shuffle rearranges the
    ``r^2`` output channels into an ``r``-times larger image. Here the network predicts the
    residual over bicubic interpolation (``out = bicubic(x) + shuffle(net(x))``), which
    trains faster from a good starting point; convolutions pad by replication (the patch
    border is photo, not black). Every activation is its own module.

    Examples
    --------
    >>> ESPCN()(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 1, 32, 32])
    """

    def __init__(self, scale: int = SR_SCALE, width: int = 64) -> None:
        super().__init__()
        self.scale = scale
        self.conv1 = nn.Conv2d(1, width, 5, padding=2, padding_mode="replicate")  # (B, 64, h, w)
        self.act1 = nn.Tanh()
        self.conv2 = nn.Conv2d(width, width // 2, 3, padding=1, padding_mode="replicate")  # (B, 32, h, w)
        self.act2 = nn.Tanh()
        self.conv3 = nn.Conv2d(width // 2, scale * scale, 3, padding=1, padding_mode="replicate")  # (B, r^2, h, w)
        self.shuffle = nn.PixelShuffle(scale)  # (B, 1, r h, r w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolved ``(B, 1, r h, r w)``."""
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + self.shuffle(self.conv3(self.act2(self.conv2(self.act1(self.conv1(x))))))


def cell_mean(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targets adapter: mean of grid cell ``target`` of the output patch ``(B, 1, H, W)`` -> ``(B,)``."""
    b, c, h, w = output.shape
    cells = output.reshape(b, c, SR_GRID, h // SR_GRID, SR_GRID, w // SR_GRID).mean(dim=(1, 3, 5))  # (B, G, G)
    return cells.reshape(b, -1).gather(1, target.long().view(-1, 1)).squeeze(1)


def blurred_baseline(x: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """The LAM baseline: ``x`` ``(B, C, H, W)`` blurred by a Gaussian (reflect padding)."""
    radius = max(1, int(round(3 * sigma)))
    grid = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-grid ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    padded = F.pad(x, (radius,) * 4, mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _psnr(pred: torch.Tensor, ref: torch.Tensor) -> float:
    mse = (pred - ref)[..., SHAVE:-SHAVE, SHAVE:-SHAVE].pow(2).mean()
    return float(-10 * torch.log10(mse))


@torch.no_grad()
def psnr_gain(module: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """PSNR (dB, over all held-out patches, ``SHAVE``-pixel border cut) of the model and of bicubic."""
    if not isinstance(data, PairedDataset):
        raise TypeError("espcn is evaluated on the sr-patches dataset (HR targets)")
    was = module.training
    module.eval()
    try:
        out = torch.cat([module(data.x[i:i + 256].to(device)).cpu() for i in range(0, len(data), 256)])
    finally:
        module.train(was)
    model_db = _psnr(out.clamp(0, 1), data.target)
    bicubic_db = _psnr(bicubic_upsample(data.x), data.target)
    return {"psnr_gain_db": model_db - bicubic_db, "psnr_db": model_db, "bicubic_psnr_db": bicubic_db}


def _sr_loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    assert isinstance(batch, PairedDataset)
    return F.mse_loss(module(batch.x), batch.target)


def _dihedral(x: torch.Tensor, k: int, flip: int) -> torch.Tensor:
    x = torch.rot90(x, k, dims=(2, 3))
    return torch.flip(x, dims=(3,)) if flip else x


_RECIPE: dict[str, Any] = {
    "epochs": 25, "lr": 4e-3, "batch_size": 32, "augment": "random 90-degree rotations and flips",
    "loss": "MSE on the HR patch", "psnr_shave": SHAVE, "channels_last": True
}


def _train_espcn(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    generator = seed_everything(ctx.seed)
    module.to(ctx.device).train()
    layout = torch.channels_last if _RECIPE["channels_last"] else torch.contiguous_format
    module.to(memory_format=layout)  # NHWC: 1.2x faster convolutions on CPU (BENCHMARKS.md)
    epochs, batch_size = int(_RECIPE["epochs"]), int(_RECIPE["batch_size"])
    optimiser = torch.optim.Adam(module.parameters(), lr=float(_RECIPE["lr"]))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    train = ctx.train
    assert isinstance(train, PairedDataset)
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task("espcn", total=epochs, status="")
        for _ in range(epochs):
            order = torch.randperm(len(train), generator=generator)
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                k, flip = (int(v) for v in torch.randint(0, 4, (2,), generator=generator))
                flip = flip % 2
                xb, hb = _dihedral(train.x[idx], k, flip), _dihedral(train.target[idx], k, flip)
                xb, hb = xb.contiguous(memory_format=layout), hb.contiguous(memory_format=layout)
                optimiser.zero_grad(set_to_none=True)
                loss = F.mse_loss(module(xb.to(ctx.device)), hb.to(ctx.device))
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            scheduler.step()
            running = total / count
            progress.update(task, advance=1, status=f"loss {running:.5f}")
    module.to(memory_format=torch.contiguous_format).eval()  # evaluate as a loaded checkpoint would
    return {**psnr_gain(module, ctx.test, ctx.device), "train_loss": running}


def _cell_names() -> tuple[str, ...]:
    size = 32 // SR_GRID
    return tuple(f"cell r{r}c{c} (rows {r * size}-{r * size + size - 1}, cols {c * size}-{c * size + size - 1})"
                 for r in range(SR_GRID) for c in range(SR_GRID))


register_model(
    ZooEntry(
        name="espcn",
        family="super-resolution",
        task="regression",
        modality="image",
        dataset="sr-patches",
        build=ESPCN,
        train=_train_espcn,
        input_shape=(1, 16, 16),
        class_names=(),
        layers=("conv1", "conv2", "conv3"),
        metric="psnr_gain_db",
        floor=1.0,
        paper="https://arxiv.org/abs/1609.05158",
        description="ESPCN x2 super-resolution of grey scikit-image photo patches (residual over bicubic); "
                    "explain a cell of the output with a blurred-input baseline (LAM)",
        recipe=_RECIPE,
        loss=_sr_loss,
        evaluate=psnr_gain,
        targets=cell_mean,
        target_names=_cell_names(),
        predicted_target=busiest_cell,
    )
)


# ---------------------------------------------------------------- fast style transfer


class RandomFeatures(nn.Module):
    """A shallow random-weight CNN whose Gram matrices carry texture (Ustyuzhaninov et al. 2016).

    https://arxiv.org/abs/1606.00021: random filters are enough for texture synthesis.
    Weights are drawn from a fixed seed (He-normal), never trained and never stored: the
    loss of ``style-net`` rebuilds the same network each time.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.AvgPool2d(2)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.relu3 = nn.ReLU()
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for conv in (self.conv1, self.conv2, self.conv3):
                fan_in = conv.in_channels * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                assert conv.bias is not None  # nn.Conv2d's default bias=True
                conv.bias.zero_()
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``relu1`` ``(B, 32, H, W)``, ``relu2`` ``(B, 64, H/2, W/2)``, ``relu3`` ``(B, 128, H/4, W/4)``."""
        r1 = self.relu1(self.conv1(x - 0.5))
        r2 = self.relu2(self.conv2(self.pool1(r1)))
        r3 = self.relu3(self.conv3(self.pool2(r2)))
        return {"relu1": r1, "relu2": r2, "relu3": r3}


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


class StyleNet(nn.Module):
    """A small feed-forward style-transfer network (Johnson, Alahi & Fei-Fei 2016).

    https://arxiv.org/abs/1603.08155: convolution, a stride-2 downsampling, residual blocks,
    nearest upsampling and a convolution back to RGB (sigmoid into [0, 1]); trained once
    with a Gatys loss for one style, it stylises any image in one forward pass. Smaller than
    the paper's (16/32 channels, two residual blocks, no normalisation layers).

    Examples
    --------
    >>> StyleNet()(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 3, 64, 64])
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(3, width, 5, padding=2, padding_mode="reflect")  # (B, 16, H, W)
        self.relu_in = nn.ReLU()
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)  # (B, 32, H/2, W/2)
        self.relu_down = nn.ReLU()
        self.res1 = _Residual(2 * width)
        self.res2 = _Residual(2 * width)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")  # (B, 32, H, W)
        self.conv_up = nn.Conv2d(2 * width, width, 3, padding=1, padding_mode="reflect")
        self.relu_up = nn.ReLU()
        self.conv_out = nn.Conv2d(width, 3, 5, padding=2, padding_mode="reflect")  # (B, 3, H, W)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stylised ``(B, 3, H, W)`` in [0, 1] (H, W even)."""
        h = self.relu_down(self.down(self.relu_in(self.conv_in(x))))
        h = self.res2(self.res1(h))
        return self.sigmoid(self.conv_out(self.relu_up(self.conv_up(self.up(h)))))


STYLE_LAYERS = ("relu1", "relu2", "relu3")
CONTENT_LAYER = "relu2"
_STYLE_RECIPE: dict[str, Any] = {
    "steps": 300, "lr": 3e-3, "batch_size": 4, "content_weight": 1.0, "style_weight": 0.2,
    "features": "RandomFeatures(seed=0): 3 random 3x3 conv + ReLU layers (32/64/128 channels)",
    "content_layer": CONTENT_LAYER, "style_layers": list(STYLE_LAYERS),
    "style_image": "skimage.data.immunohistochemistry, whole photo resized to 256x256"
}


@lru_cache(maxsize=1)
def _style_targets() -> tuple[RandomFeatures, dict[str, torch.Tensor]]:
    from xai._features import gram_matrix
    from xai.datasets._photos import STYLE_PHOTO, rgb_photo

    phi = RandomFeatures()
    style = rgb_photo(STYLE_PHOTO, 64)  # (1, 3, 256, 256): the whole photo at 4x crop size
    with torch.no_grad():
        grams = {k: gram_matrix(v) for k, v in phi(style).items() if k in STYLE_LAYERS}
    return phi, grams


def style_losses(output: torch.Tensor, content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image relative content loss at ``relu2`` and style loss (sum over layers) ``(B,)``, ``(B,)``.

    Content: ``||phi(out) - phi(content)||^2 / ||phi(content)||^2``; style: ``sum_l ||G_l(out) -
    G_l(s)||^2 / ||G_l(s)||^2`` against the style photo's Gram matrices.
    """
    from xai._features import gram_matrix

    phi, grams = _style_targets()
    phi.to(output.device)
    f_out, f_c = phi(output), phi(content)
    c = f_c[CONTENT_LAYER]
    content_loss = (f_out[CONTENT_LAYER] - c).pow(2).flatten(1).sum(1) / c.pow(2).flatten(1).sum(1).clamp_min(1e-12)
    style_loss = torch.zeros(len(output), device=output.device)
    for name in STYLE_LAYERS:
        g_s = grams[name].to(output.device)
        style_loss = style_loss + (gram_matrix(f_out[name]) - g_s).pow(2).flatten(1).sum(1) / g_s.pow(2).sum()
    return content_loss, style_loss


def _style_loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    w_c, w_s = float(_STYLE_RECIPE["content_weight"]), float(_STYLE_RECIPE["style_weight"])
    content, style = style_losses(module(batch.x), batch.x)
    return (w_c * content + w_s * style).mean()


@torch.no_grad()
def style_scores(module: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """Held-out content and style losses of the stylised images, and the style loss of the inputs.

    ``style_loss_ratio`` = style loss of the outputs / style loss of the unchanged content
    images (how much closer to the style the network brings them; lower is better).
    """
    was = module.training
    module.eval()
    try:
        x = data.x.to(device)
        content, style = [], []
        base = []
        for i in range(0, len(x), 16):
            out = module(x[i:i + 16])
            c, s = style_losses(out, x[i:i + 16])
            content.append(c.cpu())
            style.append(s.cpu())
            base.append(style_losses(x[i:i + 16], x[i:i + 16])[1].cpu())
    finally:
        module.train(was)
    c_loss, s_loss, s_base = (float(torch.cat(v).mean()) for v in (content, style, base))
    return {"style_loss_ratio": s_loss / s_base, "content_loss": c_loss, "style_loss": s_loss,
            "content_image_style_loss": s_base}


def _train_style_net(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    generator = seed_everything(ctx.seed)
    module.to(ctx.device).train()
    steps, batch_size = int(_STYLE_RECIPE["steps"]), int(_STYLE_RECIPE["batch_size"])
    optimiser = torch.optim.Adam(module.parameters(), lr=float(_STYLE_RECIPE["lr"]))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    x_all = ctx.train.x
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task("style-net", total=steps, status="")
        for step in range(steps):
            idx = torch.randint(0, len(x_all), (batch_size,), generator=generator)
            optimiser.zero_grad(set_to_none=True)
            batch = Dataset(name=ctx.train.name, split="train", modality="image", x=x_all[idx].to(ctx.device),
                            y=ctx.train.y[idx], class_names=ctx.train.class_names)
            loss = _style_loss(module, batch)
            loss.backward()
            optimiser.step()
            scheduler.step()
            running = float(loss.detach()) if step == 0 else 0.9 * running + 0.1 * float(loss.detach())
            progress.update(task, advance=1, status=f"loss {running:.4f}")
    module.eval()
    return {**style_scores(module, ctx.test, ctx.device), "train_loss": running}


def channel_mean(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targets adapter: mean of output colour channel ``target`` ``(B, 3, H, W)`` -> ``(B,)``."""
    return output.mean(dim=(2, 3)).gather(1, target.long().view(-1, 1)).squeeze(1)


def _brightest(output: torch.Tensor) -> torch.Tensor:
    return output.mean(dim=(2, 3)).argmax(dim=1)


register_model(
    ZooEntry(
        name="style-net",
        family="style-transfer",
        task="generation",
        modality="image",
        dataset="style-content",
        build=StyleNet,
        train=_train_style_net,
        input_shape=(3, 64, 64),
        class_names=(),
        # conv_in last: CAM methods take the last named layer, and for a colour-channel target
        # the deeper maps of this image-to-image net are negative everywhere (zero after
        # Grad-CAM's ReLU); the first convolution's map is not.
        layers=("down", "res1", "res2", "conv_up", "conv_in"),
        metric="style_loss_ratio",
        floor=0.5,
        higher_is_better=False,
        paper="https://arxiv.org/abs/1603.08155",
        description="fast feed-forward style transfer (Johnson et al. 2016, small) trained with a Gatys loss "
                    "on random-weight CNN features for skimage's immunohistochemistry texture",
        recipe=_STYLE_RECIPE,
        loss=_style_loss,
        evaluate=style_scores,
        targets=channel_mean,
        target_names=("red", "green", "blue"),
        predicted_target=_brightest,
    )
)
