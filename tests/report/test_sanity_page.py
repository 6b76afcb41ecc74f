"""The sanity page is a self-contained, escaped view of the SanityResult's numbers."""

from __future__ import annotations

import json
import re

import numpy as np

from xai._provenance import Provenance
from xai.explain.sanity import Curve, RandomisationStep, SanityResult, verdict
from xai.report.sanity import render_sanity_page, write_sanity


def _result(model: str = "m<script>x</script>") -> SanityResult:
    f = np.linspace(0, 1, 5)
    deletion = Curve("deletion", f, 1 - f, 1 - f / 2, auc=0.5, random_auc=0.75, gain=0.25)
    insertion = Curve("insertion", f, f ** 0.5, f, auc=0.6667, random_auc=0.5, gain=-0.1)
    steps = (RandomisationStep("fc", ("fc",), 0.8, 0.5, np.array([0.8, 0.8])),
             RandomisationStep("conv", ("fc", "conv"), 0.7, 0.4, np.array([0.7, 0.7])))
    rng = np.random.default_rng(0)
    return SanityResult(
        method="saliency", model=model, modality="image", samples=2, options={"target": "predicted"},
        targets=np.array([1, 2]), deletion=deletion, insertion=insertion, randomisation=steps,
        infidelity=0.12, sensitivity_max=0.3, verdict=verdict(deletion, insertion, list(steps)),
        provenance=Provenance("a" * 64, "b" * 64, 0, 1.0, "cpu"),
        example_inputs=rng.random((2, 1, 8, 8)), example_maps=rng.random((3, 2, 8, 8)))


def test_page_escapes_and_loads_nothing():
    page = render_sanity_page(_result())
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert page.count("data:image/png;base64,") == 2 * (1 + 3)  # per example: input + 3 maps
    assert page.count("<polyline") == 4  # two curves, each with its random twin


def test_page_shows_the_verdict_and_the_failed_checks():
    result = _result("lenet")
    page = render_sanity_page(result)
    assert not result.verdict.trustworthy
    assert "Not trustworthy" in page
    assert "insensitive to the model&#39;s weights" in page and "insertion no better than random" in page
    assert "+0.2500" in page and "-0.1000" in page and "0.700" in page


def test_write_sanity_writes_page_and_json(tmp_path):
    result = _result("lenet")
    page = write_sanity(result, tmp_path)
    assert page == tmp_path / "sanity-lenet-saliency.html"
    saved = json.loads((tmp_path / "sanity-lenet-saliency.json").read_text())
    assert saved == json.loads(json.dumps(result.to_dict()))
    assert 'href="sanity-lenet-saliency.json"' in page.read_text()
    assert not list(tmp_path.glob(".*.tmp"))
