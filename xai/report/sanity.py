"""The sanity-check section of an audit page (``[[sanity]]`` entries and ``xai sanity -o DIR``).

Computation and rendering apart: this module reads :class:`SanityResult` objects only.
First one row per checked explainer with its verdict; then, per explainer, each check
against the threshold it must pass, the deletion and insertion curves (inline SVG charts
with axes), the randomisation cascade with its maps, and infidelity and sensitivity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup
from matplotlib import colormaps

from xai.explain._sanity_thresholds import MIN_DELETION_GAIN, MIN_INSERTION_GAIN, MPRT_MAX_CORRELATION
from xai.report.charts import lines_chart
from xai.report.html import _ENV, data_uri, options_items
from xai.report.images import png_bytes

if TYPE_CHECKING:
    from xai.explain.sanity import Curve, SanityResult
    from xai.report._renderers import PageContext

__all__ = ["render_section", "sanity_slug", "sanity_view"]


def sanity_slug(result: SanityResult) -> str:
    """Report name of one ``xai sanity`` run: ``sanity-<model>-<method>``."""
    return f"sanity-{result.model}-{result.method}".replace("/", "_")


_UNITS = {"image": "pixels", "text": "words"}  # what a deleted unit is, by modality (else features)


def _curve_view(curve: Curve, threshold: float, result: SanityResult) -> dict[str, Any]:
    """One curve: the method's and the random order's scores over the fraction removed or inserted."""
    units = _UNITS.get(result.modality, "features")
    moved = "removed" if curve.kind == "deletion" else "inserted"
    ours, random = f"{result.method} order (AUC {curve.auc:.3f})", f"random order (AUC {curve.random_auc:.3f})"
    return {
        "kind": curve.kind, "auc": curve.auc, "random_auc": curve.random_auc, "gain": curve.gain,
        "threshold": threshold, "passed": curve.gain > threshold,
        "chart": lines_chart({ours: curve.scores, random: curve.random_scores},
                             x=curve.fractions, dashed={random}, width=360, height=220,
                             x_label=f"fraction of {units} {moved}", y_label=result.score,
                             label=f"{curve.kind} curve of {result.method}: AUC {curve.auc:.3f}, "
                                   f"random AUC {curve.random_auc:.3f}"),
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


def sanity_view(result: SanityResult) -> dict[str, Any]:
    """Template values of one explainer's checks."""
    return {
        "r": result,
        "metrics": result.metrics(),
        "final": result.randomisation[-1] if result.randomisation else None,
        "curves": [_curve_view(curve, threshold, result) for curve, threshold in
                   ((result.deletion, MIN_DELETION_GAIN), (result.insertion, MIN_INSERTION_GAIN))],
        "tiles": _map_tiles(result),
        "options": options_items({k: v for k, v in result.options.items() if k != "target"}),
    }


def render_section(results: Sequence[SanityResult], page: PageContext) -> Markup:
    """The audit page's section: a verdict row per explainer, then each explainer's checks in full."""
    return Markup(_ENV.get_template("sections/sanity.html.j2").render(  # noqa: S704
        results=[sanity_view(r) for r in results], mprt_threshold=MPRT_MAX_CORRELATION, palette=page.palette))
