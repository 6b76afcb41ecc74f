"""Small PNG images for the report, drawn with NumPy and Pillow (no figure machinery).

Renderers never touch a model: these functions take result arrays only. Attribution
maps use colour-blind-safe colormaps (``magma`` for unsigned maps, ``RdBu_r`` for
signed ones, white at zero).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from PIL import Image

if TYPE_CHECKING:  # annotations only: renderers never import torch or a method
    from xai.explain import AttributionResult


@dataclass(frozen=True)
class AttributionTiles:
    """One overlay PNG and one plain input PNG per sample, the colour bar, and the value range it spans."""

    tiles: tuple[bytes, ...]
    colorbar: bytes
    cmap: str
    vmin: float
    vmax: float
    #: The inputs as given (in colour for three-channel images), drawn beside the overlays.
    inputs: tuple[bytes, ...] = ()
    #: Whether the maps carry a sign (diverging colormap) or only magnitudes (sequential).
    signed: bool = False
    #: Whether the inputs were drawn in colour (three channels) or in grey.
    colour: bool = False


def png_bytes(rgb: np.ndarray) -> bytes:
    """``(H, W, 3)`` floats in [0, 1] -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8), "RGB").save(
        buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI (the page never loads anything from outside)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_uri(image: np.ndarray, size: int = 160) -> str:
    """``(C, H, W)`` -> a grey (1 channel) or RGB PNG, stretched to its own range, as a data URI."""
    plane = image.mean(0, keepdims=True) if image.shape[0] not in (1, 3) else image  # (C, H, W)
    low, high = float(plane.min()), float(plane.max())
    unit = (plane - low) / max(high - low, 1e-12)
    rgb = np.repeat(unit, 3, axis=0) if unit.shape[0] == 1 else unit
    scale = max(1, size // image.shape[-1])
    hwc = rgb.transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1)  # (H, W, 3)
    return data_uri(png_bytes(hwc))


def svg_curve(trace: np.ndarray, width: int = 480, height: int = 160, pad: int = 6) -> dict[str, Any]:
    """SVG polyline points for the objective per step (y grows downwards in SVG)."""
    if len(trace) == 0:
        return {"points": "", "width": width, "height": height, "lo": 0.0, "hi": 0.0}
    lo, hi = float(np.min(trace)), float(np.max(trace))
    span = hi - lo or 1.0
    xs = np.linspace(pad, width - pad, len(trace)) if len(trace) > 1 else np.array([width / 2])
    ys = height - pad - (trace - lo) / span * (height - 2 * pad)
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    return {"points": points, "width": width, "height": height, "lo": lo, "hi": hi}


def input_planes(inputs: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` (or ``(N, H, W)``) inputs -> ``(N, H, W, 3)`` in [0, 1] as a reader sees them.

    Three-channel inputs stay in colour (a question about a red square needs a red
    square): already in [0, 1] they are shown as they are, otherwise each sample is
    stretched over all its channels together, which keeps the hues. Other channel counts
    are averaged into grey and stretched per sample.
    """
    n = len(inputs)
    planes = inputs.reshape(n, -1, *inputs.shape[-2:]).astype(np.float64)  # (N, C, H, W)
    if planes.shape[1] != 3:
        planes = planes.mean(1, keepdims=True)
    if planes.shape[1] != 3 or planes.min() < 0 or planes.max() > 1:
        low = planes.min(axis=(1, 2, 3), keepdims=True)
        planes = (planes - low) / np.maximum(planes.max(axis=(1, 2, 3), keepdims=True) - low, 1e-12)
    rgb = planes.transpose(0, 2, 3, 1)  # (N, H, W, C)
    return np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb


def attribution_tiles(result: AttributionResult, max_samples: int = 8, scale: int = 4,
                      clip_percentile: float = 99.0) -> AttributionTiles:
    """Each input as given (colour for RGB) and, beside it, in grey with its attribution overlaid (channels summed).

    The overlay's opacity grows with the attribution's magnitude, so the input shows
    through where the method attributes nothing; under the overlay the input is grey so
    that its own colours are not read as attribution colours. One colour range serves all
    tiles (a shared scale); it ends at the ``clip_percentile`` of |attribution| (as
    captum's visualisation does with its outlier percentage), since a few extreme
    gradients would otherwise wash out the rest.
    """
    n = min(max_samples, len(result.attributions))
    maps = result.attributions[:n].reshape(n, -1, *result.attributions.shape[-2:]).sum(1)  # (N, H, W)
    plain = input_planes(result.inputs[:n])  # (N, H, W, 3)
    in_colour = result.inputs.reshape(len(result.inputs), -1, *result.inputs.shape[-2:]).shape[1] == 3
    images = plain @ np.array([0.2126, 0.7152, 0.0722]) if in_colour else plain[..., 0]  # (N, H, W) luminance
    signed = bool((maps < 0).any())
    limit = float(np.percentile(np.abs(maps), clip_percentile)) or float(np.abs(maps).max()) or 1.0
    maps = np.clip(maps, -limit, limit)
    name = "RdBu_r" if signed else "magma"
    cmap = colormaps[name]
    unit = (maps / limit + 1) / 2 if signed else maps / limit  # (N, H, W) in [0, 1]
    colour = cmap(unit)[..., :3]  # (N, H, W, 3)
    low = images.min(axis=(1, 2), keepdims=True)
    span = np.maximum(images.max(axis=(1, 2), keepdims=True) - low, 1e-12)
    grey = ((images - low) / span)[..., None]  # (N, H, W, 1)
    alpha = (0.15 + 0.85 * np.abs(maps) / limit)[..., None]
    blend = (1 - alpha) * grey + alpha * colour
    big = blend.repeat(scale, axis=1).repeat(scale, axis=2)
    shown = plain.repeat(scale, axis=1).repeat(scale, axis=2)
    gradient = cmap(np.linspace(0, 1, 256))[None, :, :3].repeat(12, axis=0)  # (12, 256, 3)
    return AttributionTiles(
        tiles=tuple(png_bytes(tile) for tile in big),
        colorbar=png_bytes(gradient),
        cmap=name,
        vmin=-limit if signed else 0.0,
        vmax=limit,
        inputs=tuple(png_bytes(tile) for tile in shown),
        signed=signed,
        colour=in_colour,
    )
