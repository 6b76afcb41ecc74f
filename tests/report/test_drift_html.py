"""The drift section (xai/report/drift.py): statistics with intervals, maps on one scale, escaped strings."""

from __future__ import annotations

import re

import numpy as np

from xai._provenance import Provenance
from xai.explain.drift import DriftResult
from xai.report.drift import render_html


def _result(**changes) -> DriftResult:
    fields = dict(
        method="integrated-gradients", model="<b>new</b>", baseline="old", samples=4, top_k=2,
        region="pixels [0, 2, 0, 3]",
        statistics={"spearman": 0.5, "topk_overlap": 0.25, "mass_moved": 0.125},
        intervals={"spearman": (0.4, 0.6), "topk_overlap": (0.2, 0.3), "mass_moved": (0.1, 0.15)},
        per_sample={"spearman": np.full(4, 0.5)},
        mean_magnitude=np.arange(12, dtype=float).reshape(3, 4),
        baseline_mean_magnitude=np.ones((3, 4)),
        options={}, provenance=Provenance(model_sha256="a", data_sha256="b", seed=0, wall_seconds=0.1, device="cpu"),
        notes=("<script>alert(1)</script>",),
    )
    return DriftResult(**{**fields, **changes})


def test_image_section_shows_statistics_intervals_and_two_maps_on_one_scale():
    html = render_html(_result())
    assert "drift.integrated-gradients.mass_moved" in html and "[0.1000, 0.1500]" in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 2 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "0 (black) to 11 (light yellow)" in html  # the shared scale is the larger map's maximum
    assert "http" not in html  # nothing loads from outside


def test_user_strings_are_escaped():
    html = render_html(_result())
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>new</b>" not in html and "&lt;b&gt;new&lt;/b&gt;" in html


def test_tabular_section_lists_column_shares_on_both_sides():
    result = _result(region="columns: sex", feature_names=("age", "sex<"),
                     mean_magnitude=np.array([3.0, 1.0]), baseline_mean_magnitude=np.array([1.0, 1.0]))
    html = render_html(result)
    assert "<img" not in html
    assert re.search(r"<td>age</td><td class=\"num\">0\.750</td><td class=\"num\">0\.500</td>", html)
    assert "sex&lt;" in html
