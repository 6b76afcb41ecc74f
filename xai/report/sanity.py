"""Views of a :class:`~xai.explain.sanity.SanityResult`: a self-contained HTML page and JSON.

Like the audit page: jinja2 with autoescape, images as data URIs, curves as inline SVG,
every file written atomically. Renderers never touch a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps

from xai._io import atomic_write_text
from xai.explain.sanity import (
    MIN_DELETION_GAIN,
    MIN_INSERTION_GAIN,
    MPRT_MAX_CORRELATION,
    Curve,
    SanityResult,
)
from xai.report.html import _ENV, OKABE_ITO, _stamp, data_uri
from xai.report.images import png_bytes
from xai.report.json import dumps

__all__ = ["render_sanity_page", "sanity_json", "sanity_slug", "write_sanity"]

_W, _H, _PAD = 320, 200, 32  # SVG chart size and margin (px)


def sanity_slug(result: SanityResult) -> str:
    """File stem for a result: ``sanity-<model>-<method>``."""
    return f"sanity-{result.model}-{result.method}".replace("/", "_")


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    """SVG polyline points for values in [0, 1] x [0, 1]."""
    return " ".join(f"{_PAD + x * (_W - 2 * _PAD):.1f},{_H - _PAD - y * (_H - 2 * _PAD):.1f}"
                    for x, y in zip(xs, ys, strict=True))


_UNITS = {"image": "pixels", "text": "words"}  # what a deleted unit is, by modality (else features)


def _curve_view(curve: Curve, threshold: float, score: str, units: str = "features") -> dict[str, Any]:
    """Template values of one curve: probabilities on [0, 1], other targets' scores on their own range."""
    lo, hi = 0.0, 1.0
    if score != "target probability":
        both = np.concatenate([curve.scores, curve.random_scores])
        lo, hi = float(both.min()), float(both.max())
        hi = hi if hi > lo else lo + 1.0
    scale = hi - lo
    return {
        "kind": curve.kind,
        "auc": curve.auc,
        "random_auc": curve.random_auc,
        "gain": curve.gain,
        "threshold": threshold,
        "passed": curve.gain > threshold,
        "ours": _points(curve.fractions, (curve.scores - lo) / scale),
        "random": _points(curve.fractions, (curve.random_scores - lo) / scale),
        "width": _W, "height": _H, "pad": _PAD,
        "x_label": f"fraction of {units} {'removed' if curve.kind == 'deletion' else 'inserted'}",
        "y_label": f"{score} ({lo:.3g} to {hi:.3g})",
    }


def _map_tiles(result: SanityResult, scale: int = 3) -> list[list[dict[str, str]]]:
    """Rows of tiles: per example, its input then the map before and after each step."""
    if result.example_maps is None or result.example_inputs is None:
        return []
    cmap = colormaps["magma"]
    labels = ["original model"] + [f"up to {s.layer}" for s in result.randomisation]
    rows = []
    for j in range(result.example_maps.shape[1]):
        image = result.example_inputs[j].mean(0)  # (H, W)
        span = float(np.ptp(image)) or 1.0
        grey = np.repeat(((image - image.min()) / span)[..., None], 3, axis=2)
        tiles = [{"uri": data_uri(png_bytes(grey.repeat(scale, 0).repeat(scale, 1))),
                  "alt": f"input {j}", "caption": "input"}]
        for k, label in enumerate(labels):
            rgb = cmap(result.example_maps[k, j])[..., :3]
            tiles.append({"uri": data_uri(png_bytes(rgb.repeat(scale, 0).repeat(scale, 1))),
                          "alt": f"|{result.method}| map of input {j}, {label}", "caption": label})
        rows.append(tiles)
    return rows


def render_sanity_page(result: SanityResult, json_name: str | None = None) -> str:
    """The HTML page of one sanity result."""
    final = result.randomisation[-1]
    return _ENV.get_template("sanity.html.j2").render(
        r=result,
        verdict=result.verdict,
        summary=str(result.verdict),
        curves=[_curve_view(curve, threshold, result.score, _UNITS.get(result.modality, "features"))
                for curve, threshold in ((result.deletion, MIN_DELETION_GAIN), (result.insertion, MIN_INSERTION_GAIN))],
        steps=result.randomisation,
        final=final,
        mprt_threshold=MPRT_MAX_CORRELATION,
        tiles=_map_tiles(result),
        options={k: v for k, v in result.options.items() if k != "target"},
        json_name=json_name or f"{sanity_slug(result)}.json",
        palette=OKABE_ITO,
        **_stamp(),
    )


def sanity_json(result: SanityResult) -> str:
    """The result as JSON text."""
    return dumps(result.to_dict()) + "\n"


def write_sanity(result: SanityResult, out_dir: str | Path) -> Path:
    """Render first, then write ``<slug>.json`` and ``<slug>.html`` atomically; return the page."""
    out = Path(out_dir)
    slug = sanity_slug(result)
    page = render_sanity_page(result, f"{slug}.json")
    document = sanity_json(result)
    atomic_write_text(out / f"{slug}.json", document)
    return atomic_write_text(out / f"{slug}.html", page)
