"""HTML page (and PNGs) of feature inversions, style reconstructions and transfers (``xai invert -o DIR``).

Computation and rendering apart: this module reads :class:`InversionResult` /
:class:`InversionGallery` objects only. The page is self-contained (images as data URIs,
the error curves as inline SVG polylines, every text escaped by the template engine); the
same images are also written as PNG files beside it, with the JSON.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from xai._io import atomic_write_bytes, atomic_write_text
from xai.explain.inversion import InversionGallery, InversionResult
from xai.report import images
from xai.report.charts import line_chart
from xai.report.html import _ENV, _stamp, data_uri
from xai.report.json import dumps

__all__ = ["inversion_slug", "render_inversion_page", "write_inversion_report"]


def _png_bytes(image: np.ndarray, lo: float, hi: float, size: int = 160) -> bytes:
    """``(C, H, W)`` in the data range ``[lo, hi]`` -> grey or RGB PNG bytes, upscaled to ~``size`` px."""
    plane = image.mean(0, keepdims=True) if image.shape[0] not in (1, 3) else image  # (C, H, W)
    unit = np.clip((plane - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    rgb = np.repeat(unit, 3, axis=0) if unit.shape[0] == 1 else unit
    scale = max(1, size // image.shape[-1])
    return images.png_bytes(rgb.transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1))


def _results(result: InversionResult | InversionGallery) -> tuple[InversionResult, ...]:
    return result.results if isinstance(result, InversionGallery) else (result,)


def inversion_slug(result: InversionResult | InversionGallery) -> str:
    """File stem of the page and JSON: ``invert-<model>-<name>`` (``-gallery`` for several layers)."""
    name = "gallery" if isinstance(result, InversionGallery) else result.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"invert-{result.model}-{name}")


def _pictures(result: InversionResult | InversionGallery) -> list[dict[str, Any]]:
    """One entry per result: its images (PNG bytes, file name, caption) and numbers."""
    out = []
    for i, r in enumerate(_results(result)):
        lo, hi = r.options.get("range", [0.0, 1.0])
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{i:02d}-{r.name}")
        tiles = []
        if r.kind == "transfer":
            tiles.append(("content", r.target[0], f"content: {r.target_name}"))
            assert r.style_image is not None
            tiles.append(("style", r.style_image[0], f"style: {r.style_name}"))
            tiles.append(("transfer", r.reconstruction[0], "transferred"))
        else:
            label = "style image" if r.kind == "style" else "target"
            tiles.append(("target", r.target[0], f"{label}: {r.target_name}"))
            tiles.append(("start", r.start_image[0], "start (seeded noise)"))
            tiles.append(("reconstruction", r.reconstruction[0],
                          "texture from Gram matrices" if r.kind == "style" else f"from {r.layers[0]}"))
        pictures = []
        for role, array, caption in tiles:
            png = _png_bytes(array, lo, hi)
            pictures.append({"png": png, "file": f"{stem}-{role}.png", "uri": data_uri(png),
                             "alt": f"{caption} ({r.model}, {r.name})", "caption": caption})
        log_error = np.log10(np.maximum(r.error_trace, 1e-12))
        error = "feature" if r.kind == "features" else "Gram"
        out.append({"r": r, "pictures": pictures, "metrics": r.metrics(),
                    "curve": images.svg_curve(log_error),
                    "chart": line_chart(log_error, x_label="optimisation step",
                                        y_label=f"log10 relative {error} error",
                                        label=f"log10 relative {error} error per step")})
    return out


def render_inversion_page(result: InversionResult | InversionGallery,
                          entries: list[dict[str, Any]] | None = None) -> str:
    """The page: per result the target, start and reconstruction, metrics and error curve."""
    entries = _pictures(result) if entries is None else entries
    first = entries[0]["r"]
    kinds = {e["r"].kind for e in entries}
    title = {"features": "Feature inversion", "style": "Style reconstruction",
             "transfer": "Style transfer"}[first.kind] if len(kinds) == 1 else "Inversion"
    gallery = isinstance(result, InversionGallery)
    return _ENV.get_template("inversion.html.j2").render(
        title=title, model=result.model, gallery=gallery, entries=entries,
        json_name=f"{inversion_slug(result)}.json", **_stamp())


def write_inversion_report(result: InversionResult | InversionGallery, out_dir: str | Path) -> Path:
    """Write ``<slug>.html``, ``<slug>.json`` and the PNGs into ``out_dir`` (atomically); return the page."""
    out = Path(out_dir)
    slug = inversion_slug(result)
    entries = _pictures(result)
    page = render_inversion_page(result, entries)  # render everything before writing anything
    document = dumps(result.to_dict()) + "\n"
    for entry in entries:
        for picture in entry["pictures"]:
            atomic_write_bytes(out / f"{slug}-{picture['file']}", picture["png"])
    atomic_write_text(out / f"{slug}.json", document)
    return atomic_write_text(out / f"{slug}.html", page)
