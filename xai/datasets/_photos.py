"""Super-resolution patches cut from scikit-image's photos (they ship in its wheel).

``sr-patches``: grey high-resolution (HR) patches of ``skimage.data`` photos and their
low-resolution (LR) versions, downsampled x2 with antialiased bicubic interpolation. The
split is by photo (no photo gives patches to both splits) and fixed; the crop positions
are drawn from a fixed seed, so the arrays are generated, never stored.

- train photos: astronaut, camera, coffee, coins, moon, brick, grass, page, clock
- test photos: rocket, chelsea, gravel, text
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F  # noqa: N812

from xai._provenance import sha256_array
from xai.datasets._base import Dataset, Split, register_dataset

__all__ = ["PairedDataset", "SR_GRID", "SR_SCALE", "TEST_PHOTOS", "TRAIN_PHOTOS", "load_sr_patches"]

TRAIN_PHOTOS = ("astronaut", "camera", "coffee", "coins", "moon", "brick", "grass", "page", "clock")
TEST_PHOTOS = ("rocket", "chelsea", "gravel", "text")
SR_SCALE = 2
HR_SIZE = 32
#: The HR output is cut into a ``SR_GRID x SR_GRID`` grid of cells: the targets of LAM-style
#: attribution (target ``i`` = cell ``(i // SR_GRID, i % SR_GRID)``).
SR_GRID = 4
PATCHES = {"train": 4096, "test": 512}
_SEEDS = {"train": 0, "test": 1}
#: Flat patches (sky, background) teach nothing and flatter no method: keep HR std >= this.
MIN_STD = 0.02


@dataclass(frozen=True, eq=False)
class PairedDataset(Dataset):
    """A :class:`Dataset` with one target tensor per sample (``target``: the HR patch)."""

    target: torch.Tensor = torch.empty(0)

    @property
    def sha256(self) -> str:
        """Hash of inputs, targets and labels."""
        return sha256_array(self.x, self.target, self.y)

    def subset(self, index: torch.Tensor) -> PairedDataset:
        """Rows ``index`` (inputs, targets, labels and groups)."""
        base = super().subset(index)
        return PairedDataset(**{f: getattr(base, f) for f in Dataset.__dataclass_fields__},
                             target=self.target[index])


def _grey(name: str) -> np.ndarray:
    import skimage.data
    from skimage.color import rgb2gray, rgba2rgb

    image = getattr(skimage.data, name)()
    if image.ndim == 3:
        image = rgb2gray(rgba2rgb(image) if image.shape[-1] == 4 else image)
    else:
        image = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    return image.astype(np.float32)  # (H, W) in [0, 1]


def downsample(hr: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` -> ``(B, 1, H / 2, W / 2)``: antialiased bicubic, clamped to [0, 1]."""
    return F.interpolate(hr, scale_factor=1 / SR_SCALE, mode="bicubic", antialias=True,
                         align_corners=False).clamp(0, 1)


def bicubic_upsample(lr: torch.Tensor) -> torch.Tensor:
    """``(B, 1, h, w)`` -> ``(B, 1, 2h, 2w)``: the bicubic baseline, clamped to [0, 1]."""
    return F.interpolate(lr, scale_factor=SR_SCALE, mode="bicubic", align_corners=False).clamp(0, 1)


@lru_cache(maxsize=2)
def _patches(split: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    photos = TRAIN_PHOTOS if split == "train" else TEST_PHOTOS
    gen = np.random.default_rng(_SEEDS[split])
    per_photo = PATCHES[split] // len(photos)
    lrs, hrs, names = [], [], []
    for name in photos:
        hr_full = torch.from_numpy(_grey(name))[None, None]  # (1, 1, H, W)
        h, w = (s - s % SR_SCALE for s in hr_full.shape[-2:])
        hr_full = hr_full[..., :h, :w]
        lr_full = downsample(hr_full)  # the whole photo at once: no patch-border artefacts
        lr_size = HR_SIZE // SR_SCALE
        kept = 0
        while kept < per_photo:
            top = int(gen.integers(0, h // SR_SCALE - lr_size + 1))
            left = int(gen.integers(0, w // SR_SCALE - lr_size + 1))
            hr = hr_full[0, :, top * SR_SCALE:(top + lr_size) * SR_SCALE, left * SR_SCALE:(left + lr_size) * SR_SCALE]
            if float(hr.std()) < MIN_STD:
                continue
            lrs.append(lr_full[0, :, top:top + lr_size, left:left + lr_size])
            hrs.append(hr)
            names.append(name)
            kept += 1
    return torch.stack(lrs).contiguous(), torch.stack(hrs).contiguous(), np.asarray(names)


def busiest_cell(hr: torch.Tensor) -> torch.Tensor:
    """Grid cell (``SR_GRID x SR_GRID``) with the largest pixel variance per image ``(B,)``."""
    b, _, h, w = hr.shape
    cells = hr.reshape(b, SR_GRID, h // SR_GRID, SR_GRID, w // SR_GRID).permute(0, 1, 3, 2, 4)
    return cells.reshape(b, SR_GRID * SR_GRID, -1).var(dim=2).argmax(dim=1)


@register_dataset("sr-patches")
def load_sr_patches(split: Split = "test") -> PairedDataset:
    """Grey LR patches ``x`` ``(N, 1, 16, 16)`` and HR targets ``(N, 1, 32, 32)`` in [0, 1].

    ``y`` is the grid cell of the HR patch with the most detail (the default target to
    explain); ``groups`` holds the source ``photo``. Split by photo: 4,096 train patches
    from 9 photos, 512 test patches from 4 others.
    """
    splits = ["train", "test"] if split == "all" else [split]
    parts = [_patches(s) for s in splits]
    x = torch.cat([p[0] for p in parts])
    hr = torch.cat([p[1] for p in parts])
    photo = np.concatenate([p[2] for p in parts])
    return PairedDataset(
        name="sr-patches",
        split=split,
        modality="image",
        x=x,
        y=busiest_cell(hr),
        class_names=(),
        groups=pd.DataFrame({"photo": photo}),
        description="grey 32x32 patches of scikit-image photos and their x2 bicubic-downsampled 16x16 inputs",
        target=hr,
    )


# ---------------------------------------------------------------- style transfer content

#: Content photos of the ``style-content`` dataset (RGB; grey photos repeated on 3 channels),
#: split by photo. The style image of ``style-net`` is ``STYLE_PHOTO``, used by neither split.
CONTENT_TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "camera", "coins", "brick")
CONTENT_TEST_PHOTOS = ("chelsea", "hubble_deep_field")
STYLE_PHOTO = "immunohistochemistry"
CONTENT_SIZE = 64
CONTENT_PATCHES = {"train": 768, "test": 64}
COLOUR_NAMES = ("red", "green", "blue")


def rgb_photo(name: str, size: int | None = None) -> torch.Tensor:
    """``skimage.data.<name>`` as ``(1, 3, H, W)`` floats in [0, 1] (grey repeated, alpha dropped).

    With ``size``, the shorter side is first resized to ``size * 4`` (antialiased), so a crop
    of ``size`` pixels holds a recognisable part of the photo.
    """
    import skimage.data

    image = getattr(skimage.data, name)()
    array = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    x = torch.from_numpy(np.ascontiguousarray(array[..., :3].transpose(2, 0, 1)))[None]  # (1, 3, H, W)
    if size is not None:
        factor = size * 4 / min(x.shape[-2:])
        x = F.interpolate(x, scale_factor=factor, mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1)


@lru_cache(maxsize=2)
def _content(split: str) -> tuple[torch.Tensor, np.ndarray]:
    photos = CONTENT_TRAIN_PHOTOS if split == "train" else CONTENT_TEST_PHOTOS
    gen = np.random.default_rng(_SEEDS[split] + 10)
    per_photo = CONTENT_PATCHES[split] // len(photos)
    crops, names = [], []
    for name in photos:
        full = rgb_photo(name, CONTENT_SIZE)[0]  # (3, H, W)
        h, w = full.shape[-2:]
        for _ in range(per_photo):
            top = int(gen.integers(0, h - CONTENT_SIZE + 1))
            left = int(gen.integers(0, w - CONTENT_SIZE + 1))
            crops.append(full[:, top:top + CONTENT_SIZE, left:left + CONTENT_SIZE])
            names.append(name)
    return torch.stack(crops).contiguous(), np.asarray(names)


@register_dataset("style-content")
def load_style_content(split: Split = "test") -> Dataset:
    """RGB 64x64 crops ``(N, 3, 64, 64)`` in [0, 1] of scikit-image photos, split by photo.

    ``y`` is each crop's brightest colour channel (0 red, 1 green, 2 blue: the default target
    of the ``style-net`` targets adapter, the mean of one output channel); ``groups`` holds
    the source ``photo``. 768 train crops from 6 photos, 64 test crops from 2 others.
    """
    splits = ["train", "test"] if split == "all" else [split]
    parts = [_content(s) for s in splits]
    x = torch.cat([p[0] for p in parts])
    return Dataset(
        name="style-content",
        split=split,
        modality="image",
        x=x,
        y=x.mean(dim=(2, 3)).argmax(dim=1),
        class_names=COLOUR_NAMES,
        groups=pd.DataFrame({"photo": np.concatenate([p[1] for p in parts])}),
        description="RGB 64x64 crops of scikit-image photos (content images for style transfer)",
    )
