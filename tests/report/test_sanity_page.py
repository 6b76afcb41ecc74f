"""The sanity section of an audit page is a self-contained, escaped view of the SanityResult's numbers.

``xai sanity -o`` writes it as a one-result audit (:func:`xai.audit.command.command_audit`):
the verdict first, the card, the section, provenance, and a row in the folder's index.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np

from xai._provenance import Provenance
from xai.audit.command import command_audit
from xai.audit.result import DataSummary
from xai.explain.sanity import Curve, RandomisationStep, SanityResult, verdict
from xai.report.html import render_audit_page, write_report
from xai.report.sanity import sanity_slug


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


def _audit(result: SanityResult):
    handle = SimpleNamespace(name=result.model, source="test", sha256="a" * 64, task="classification",
                             modality="image", module=None, card=None)
    return command_audit(handle, [result], slug=sanity_slug(result), title=f"Sanity checks: {result.method}",
                         data=DataSummary("digits", "test", 2, "b" * 64, ()))


def test_page_escapes_and_loads_nothing():
    page = render_audit_page(_audit(_result()))
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert not re.search(r"src=\"(https?:)?//", page)
    assert page.count("data:image/png;base64,") == 2 * (1 + 3)  # per example: input + 3 maps
    assert page.count("<polyline") == 4  # two curves, each with its random twin
    assert page.count('class="axis-x"') == 2  # the curves are charts with titled axes


def test_page_leads_with_the_verdict_and_shows_the_failed_checks():
    result = _result("lenet")
    page = render_audit_page(_audit(result))
    assert not result.verdict.trustworthy
    verdict = page.index('class="verdict-box v-warn"')
    assert verdict < page.index("<h2")  # the first thing after the title
    assert "saliency is not trustworthy on this model" in page[verdict:page.index("</section>", verdict)]
    assert "insensitive to the model&#39;s weights" in page and "insertion no better than random" in page
    # the result's own numbers, each beside its threshold
    assert "+0.2500" in page and "-0.1000" in page and "0.700" in page and "&le; 0.5" in page
    assert "0.5000 (0.7500)" in page and "0.6667 (0.5000)" in page  # AUC (random AUC) in the summary row


def test_write_report_writes_page_json_and_index(tmp_path):
    result = _result("lenet")
    write_report([_audit(result)], tmp_path)
    page = (tmp_path / "sanity-lenet-saliency.html").read_text()
    saved = json.loads((tmp_path / "sanity-lenet-saliency.json").read_text())
    assert saved["sanity"] == [json.loads(json.dumps(result.to_dict()))]
    assert saved["provenance"]["model_sha256"] == "a" * 64 and saved["verdict"]["status"] == "warn"
    assert 'href="sanity-lenet-saliency.json"' in page and 'id="provenance"' in page
    assert 'href="sanity-lenet-saliency.html"' in (tmp_path / "index.html").read_text()
    assert not list(tmp_path.glob(".*.tmp"))
