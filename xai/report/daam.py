"""The cross-attention section of an audit page (``[[daam]]`` and ``xai daam -o DIR``).

Computation and rendering apart: this module reads a :class:`DaamResult` only. Each
generated image is shown in grey beside one overlay per prompt token (``magma``, one
colour range for every map of the page: a token's mean attention probability from 0 to
the page's largest value), then the maps averaged over the samples. The page is
self-contained (images as data URIs) and sits beside the result's JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup
from matplotlib import colormaps

from xai.report import images
from xai.report.html import _ENV, data_uri, options_items

if TYPE_CHECKING:  # annotations only: renderers never import torch
    from xai.explain.daam import DaamResult
    from xai.report._renderers import PageContext

__all__ = ["daam_slug", "heat_overlay", "render_section"]

_CMAP = "magma"


@dataclass(frozen=True)
class _Picture:
    uri: str
    alt: str
    caption: str


def _grey(image: np.ndarray, scale: int) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] -> ``(H*scale, W*scale, 3)`` grey."""
    plane = np.clip(image.mean(0), 0.0, 1.0)
    return np.repeat(plane[..., None], 3, axis=2).repeat(scale, axis=0).repeat(scale, axis=1)


def heat_overlay(image: np.ndarray, heat: np.ndarray, vmax: float, scale: int = 4) -> np.ndarray:
    """A grey image ``(C, H, W)`` with a heat map ``(H, W)`` in ``[0, vmax]`` over it ``(H', W', 3)``.

    The overlay's opacity grows with the heat, so the image shows where the token draws
    little attention.
    """
    unit = np.clip(heat / max(vmax, 1e-12), 0.0, 1.0)  # (H, W)
    colour = colormaps[_CMAP](unit)[..., :3]  # (H, W, 3)
    grey = np.clip(image.mean(0), 0.0, 1.0)[..., None]  # (H, W, 1)
    alpha = (0.25 + 0.75 * unit)[..., None]
    blend = (1 - alpha) * grey + alpha * colour
    return blend.repeat(scale, axis=0).repeat(scale, axis=1)


def daam_slug(result: DaamResult) -> str:
    """File stem of the page and JSON: ``daam-<model>-class<k>``."""
    return f"daam-{result.model}-class{result.class_index}"


def _view(result: DaamResult, max_samples: int = 8) -> dict[str, Any]:
    vmax = float(result.maps.max()) if result.maps.size else 1.0
    rows = []
    for i in range(min(max_samples, len(result.images))):
        pictures = [_Picture(data_uri(images.png_bytes(_grey(result.images[i], 4))),
                             f"sample {i} generated for class {result.class_name}", f"sample {i}")]
        for k, token in enumerate(result.tokens):
            lift = result.ink_lift[i, k]
            note = f" · ink lift {lift:.2f}" if np.isfinite(lift) else ""
            pictures.append(_Picture(
                data_uri(images.png_bytes(heat_overlay(result.images[i], result.maps[i, k], vmax))),
                f"attention heat map of token {token} on sample {i}", f"{token}{note}"))
        rows.append(pictures)
    mean_image = result.images.mean(0)
    means = [_Picture(data_uri(images.png_bytes(heat_overlay(mean_image, result.mean_maps[k], vmax))),
                      f"heat map of token {token} averaged over {len(result.images)} samples", token)
             for k, token in enumerate(result.tokens)]
    gradient = colormaps[_CMAP](np.linspace(0, 1, 256))[None, :, :3].repeat(12, axis=0)  # (12, 256, 3)
    return {"r": result, "rows": rows, "means": means, "colorbar": data_uri(images.png_bytes(gradient)),
            "vmax": vmax, "metrics": result.metrics(), "options": options_items(result.options)}


def render_section(results: Sequence[DaamResult], page: PageContext) -> Markup:
    """The audit page's section: per class prompt, the samples with one heat map per token, and the means."""
    return Markup(_ENV.get_template("sections/daam.html.j2").render(results=[_view(r) for r in results]))  # noqa: S704
