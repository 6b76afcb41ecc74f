"""The feature-inversion section of an audit page (``[[invert]]`` panels and ``xai invert -o DIR``).

Computation and rendering apart: this module reads :class:`InversionResult` objects only.
Per result: the target (or content and style images), the seeded start and the
reconstruction, drawn in the data range (in colour for three channels); the losses and
metrics; the error per step as an inline SVG chart with axes. With several results a
table first shows what each layer keeps. ``xai invert`` also writes the images as PNG
files beside the page (:func:`inversion_pngs`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup

from xai.report import images
from xai.report.charts import line_chart
from xai.report.html import _ENV, data_uri, options_items

if TYPE_CHECKING:
    from xai.explain.inversion import InversionGallery, InversionResult
    from xai.report._renderers import PageContext

__all__ = ["KIND_TITLES", "inversion_pngs", "inversion_slug", "inversion_view", "render_section"]


def _png_bytes(image: np.ndarray, lo: float, hi: float, size: int = 128) -> bytes:
    """``(C, H, W)`` in the data range ``[lo, hi]`` -> grey or RGB PNG bytes, upscaled to ~``size`` px."""
    plane = image.mean(0, keepdims=True) if image.shape[0] not in (1, 3) else image  # (C, H, W)
    unit = np.clip((plane - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    rgb = np.repeat(unit, 3, axis=0) if unit.shape[0] == 1 else unit
    scale = max(1, size // image.shape[-1])
    return images.png_bytes(rgb.transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1))


def inversion_slug(result: InversionResult | InversionGallery) -> str:
    """Report name of one ``xai invert`` run: ``invert-<model>-<name>`` (``-gallery`` for several layers)."""
    name = result.name if hasattr(result, "name") else "gallery"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"invert-{result.model}-{name}")


def _tiles(r: InversionResult) -> list[tuple[str, np.ndarray, str]]:
    """(role, image, caption) of each picture of one result."""
    if r.kind == "transfer":
        assert r.style_image is not None
        return [("content", r.target[0], f"content: {r.target_name}"),
                ("style", r.style_image[0], f"style: {r.style_name}"),
                ("transfer", r.reconstruction[0], "transferred")]
    label = "style image" if r.kind == "style" else "target"
    return [("target", r.target[0], f"{label}: {r.target_name}"),
            ("start", r.start_image[0], "start (seeded noise)"),
            ("reconstruction", r.reconstruction[0],
             "texture from Gram matrices" if r.kind == "style" else f"from {r.layers[0]}")]


def _pictures(r: InversionResult) -> list[dict[str, Any]]:
    lo, hi = r.options.get("range", [0.0, 1.0])
    out = []
    for role, array, caption in _tiles(r):
        png = _png_bytes(array, lo, hi)
        out.append({"role": role, "png": png, "uri": data_uri(png), "alt": f"{caption} ({r.model}, {r.name})",
                    "caption": caption})
    return out


KIND_TITLES = {"features": "Feature inversion", "style": "Style reconstruction", "transfer": "Style transfer"}


def inversion_view(r: InversionResult) -> dict[str, Any]:
    """Template values of one result: pictures, numbers, options and the error curve."""
    log_error = np.log10(np.maximum(r.error_trace, 1e-12))
    error = "feature" if r.kind == "features" else "Gram"
    lo, hi = (float(log_error.min()), float(log_error.max())) if len(log_error) else (0.0, 0.0)
    return {
        "r": r,
        "title": KIND_TITLES.get(r.kind, r.kind),
        "pictures": [{k: v for k, v in p.items() if k != "png"} for p in _pictures(r)],
        "metrics": r.metrics(),
        "options": options_items({k: v for k, v in r.options.items() if k != "range"}),
        "error": error,
        "lo": lo,
        "hi": hi,
        "chart": line_chart(log_error, x_label="optimisation step", y_label=f"log10 relative {error} error",
                            label=f"log10 relative {error} error per step of {r.name}"),
    }


def inversion_pngs(results: Sequence[InversionResult], slug: str) -> dict[str, bytes]:
    """The pictures of ``results`` as PNG files: ``<slug>-<nn>-<name>-<role>.png`` -> bytes."""
    files = {}
    for i, r in enumerate(results):
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{slug}-{i:02d}-{r.name}")
        for picture in _pictures(r):
            files[f"{stem}-{picture['role']}.png"] = picture["png"]
    return files


def render_section(results: Sequence[InversionResult], page: PageContext) -> Markup:
    """The audit page's section: what each layer keeps (several results), then each result in full."""
    return Markup(_ENV.get_template("sections/inversions.html.j2").render(  # noqa: S704
        results=[inversion_view(r) for r in results]))
