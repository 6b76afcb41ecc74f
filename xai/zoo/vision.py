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

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from xai.datasets import Dataset
from xai.datasets._photos import SR_GRID, SR_SCALE, PairedDataset, bicubic_upsample, busiest_cell
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, seed_everything

__all__ = ["ESPCN", "blurred_baseline", "cell_mean", "psnr_gain"]

#: Pixels cut from each border of a 32x32 patch before PSNR (both methods see the same
#: interior; the patch border lacks the context bicubic and the network need).
SHAVE = 4


class ESPCN(nn.Module):
    """Efficient sub-pixel CNN (Shi et al. 2016, https://arxiv.org/abs/1609.05158), x2, grey.

    Three convolutions on the low-resolution input, then a pixel shuffle rearranges the
    ``r^2`` output channels into an ``r``-times larger image. Here the network predicts the
    residual over bicubic interpolation (``out = bicubic(x) + shuffle(net(x))``), which
    trains faster from a good starting point. Every activation is its own module.

    Examples
    --------
    >>> ESPCN()(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 1, 32, 32])
    """

    def __init__(self, scale: int = SR_SCALE, width: int = 64) -> None:
        super().__init__()
        self.scale = scale
        self.conv1 = nn.Conv2d(1, width, 5, padding=2)  # (B, 64, h, w)
        self.act1 = nn.Tanh()
        self.conv2 = nn.Conv2d(width, width // 2, 3, padding=1)  # (B, 32, h, w)
        self.act2 = nn.Tanh()
        self.conv3 = nn.Conv2d(width // 2, scale * scale, 3, padding=1)  # (B, r^2, h, w)
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
    """PSNR (dB, over all held-out patches, 4-pixel border shaved) of the model and of bicubic."""
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


_RECIPE = {"epochs": 30, "lr": 2e-3, "batch_size": 64, "augment": "random 90-degree rotations and flips",
           "loss": "MSE on the HR patch", "psnr_shave": SHAVE}


def _train_espcn(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    generator = seed_everything(ctx.seed)
    module.to(ctx.device).train()
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
                optimiser.zero_grad(set_to_none=True)
                loss = F.mse_loss(module(xb.to(ctx.device)), hb.to(ctx.device))
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            scheduler.step()
            running = total / count
            progress.update(task, advance=1, status=f"loss {running:.5f}")
    module.eval()
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
