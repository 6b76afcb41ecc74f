from __future__ import annotations

import json

import pytest

from xai.audit import parse_spec, run_audit
from xai.audit.metrics import audit_metrics
from xai.errors import SpecError
from xai.explain.sanity import sanity_check
from xai.report.html import render_audit_page, write_report

SPEC = """
title = "lenet with sanity checks"
[model]
name = "lenet"
[data]
sensitive = ["ink"]
[[explain]]
method = "saliency"
samples = 4
[[explain]]
method = "integrated-gradients"
samples = 4
options = { steps = 16 }
[[sanity]]
method = "saliency"
samples = 8
steps = 8
[[sanity]]
method = "integrated-gradients"
samples = 8
steps = 8
options = { steps = 16 }
"""


@pytest.fixture(scope="module")
def audit():
    return run_audit(parse_spec(SPEC), slug="sanity")


def test_sanity_results_equal_a_direct_check(audit, lenet, digits_test):
    from xai.audit import sample_rows

    assert [s.method for s in audit.sanity] == ["saliency", "integrated-gradients"]
    direct = sanity_check(lenet, "saliency", sample_rows(digits_test, 8, 0), steps=8, seed=0)
    ours = audit.sanity[0]
    assert ours.deletion.auc == pytest.approx(direct.deletion.auc)
    assert ours.verdict.trustworthy == direct.verdict.trustworthy
    metrics = audit_metrics(audit)
    assert metrics["sanity.saliency.deletion_auc_gain"] == pytest.approx(direct.deletion.gain)
    assert metrics["sanity.integrated-gradients.trustworthy"] == float(audit.sanity[1].verdict.trustworthy)


def test_report_marks_untrusted_methods(audit, tmp_path):
    page = render_audit_page(audit)
    assert 'id="sanity"' in page
    for check in audit.sanity:
        marked = f'{check.method} <span class="pill warn">not trustworthy</span>' in page
        assert marked == (not check.verdict.trustworthy)
    assert set(audit.untrusted()) == {s.method for s in audit.sanity if not s.verdict.trustworthy}
    write_report([audit], tmp_path)
    document = json.loads((tmp_path / "sanity.json").read_text())
    assert [s["method"] for s in document["sanity"]] == ["saliency", "integrated-gradients"]
    assert document["headline"]["untrusted"] == audit.untrusted()


def test_sanity_spec_errors():
    with pytest.raises(SpecError, match="sanity.0.samples"):
        parse_spec(SPEC.replace("samples = 8\nsteps = 8\n[[sanity]]", "samples = 1\nsteps = 8\n[[sanity]]", 1))
    # an unknown explainer is a spec error naming the key (at load time, before the model loads)
    with pytest.raises(SpecError, match=r"sanity\.0\.method: unknown explainer 'nope'; known: .*saliency"):
        parse_spec(SPEC.replace('method = "saliency"\nsamples = 8', 'method = "nope"\nsamples = 8'))


def test_an_untrusted_verdict_says_not_trustworthy_once(audit):
    import dataclasses
    import html

    from xai.explain.sanity import Verdict

    reasons = ("insensitive to the model's weights (rank correlation 0.95 > 0.5 with every layer randomised)",
               "deletion no better than random (AUC gain -0.010)")
    bad = Verdict(trustworthy=False, reasons=reasons, checks={"randomisation": False, "deletion": False})
    target = audit.sanity[1]  # that sanity result alone, untrusted; every other result kept
    kept = tuple(dataclasses.replace(r, verdict=bad) if r is target else r for r in audit.results
                 if r is target or r not in audit.sanity)
    untrusted = dataclasses.replace(audit, results=kept)
    page = render_audit_page(untrusted)
    assert str(bad) == f"not trustworthy: {reasons[0]}; {reasons[1]}"
    assert "not trustworthy: not trustworthy" not in page and "not trustworthy</span>: not trustworthy" not in page
    assert f'<span class="warn">not trustworthy</span>: {reasons[0]}; {reasons[1]}' in html.unescape(page)
    assert "; not trustworthy" not in page  # the second reason is not prefixed again
