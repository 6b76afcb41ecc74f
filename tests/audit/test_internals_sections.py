"""The ``[[recurrent]]`` and ``[[heads]]`` spec sections: validated at load, run by the audit, on the page."""

from __future__ import annotations

import pytest

from xai.audit.metrics import audit_metrics
from xai.audit.runner import run_audit
from xai.audit.spec import parse_spec
from xai.errors import NotApplicableError, SpecError
from xai.report.html import render_audit_page

GRU = '''title = "gru inside"
probe = []
explain = []
[model]
name = "gru"
[data]
samples = 40
[[recurrent]]
samples = 2
sequences = 4
concat = 4
'''

VIT = '''title = "vit heads"
probe = []
explain = []
[model]
name = "vit"
[data]
samples = 24
[[heads]]
samples = 1
importance_samples = 16
'''


def test_options_are_checked_when_the_spec_loads():
    with pytest.raises(SpecError, match=r"^a.toml: heads\.0\.importance_samples: .*line 10"):
        parse_spec(VIT.replace("importance_samples = 16", "importance_samples = 1"), "a.toml")
    with pytest.raises(SpecError, match=r"^a.toml: recurrent\.0\.window: Extra inputs"):
        parse_spec(GRU + "window = 3\n", "a.toml")


def test_recurrent_section_runs_and_reaches_metrics_json_and_page():
    audit = run_audit(parse_spec(GRU), slug="gru-inside")
    (result,) = audit.section("recurrent")
    assert result.cell == "gru" and result.gates["update"].shape == (2, 8, 64)
    metrics = audit_metrics(audit)
    assert metrics["recurrent.unroll_error"] < 1e-5
    assert "recurrent.gradient.far_near_log10" in metrics and "recurrent.update.mean" in metrics
    doc = audit.to_dict()
    assert doc["recurrent"][0]["cell"] == "gru" and len(doc["recurrent"][0]["grad_norm"]) == 32
    page = render_audit_page(audit)
    assert 'id="recurrent"' in page and 'href="#recurrent"' in page and page.count('class="recurrent"') == 1


def test_heads_section_runs_and_reaches_metrics_json_and_page():
    audit = run_audit(parse_spec(VIT), slug="vit-heads")
    (result,) = audit.section("heads")
    assert result.drop.shape == (4, 4) and result.importance_rows == 16
    metrics = audit_metrics(audit)
    assert {"heads.max_drop", "heads.drop.L3H3", "heads.loss_increase.L0H0"} <= set(metrics)
    assert "attention" not in audit.to_dict()["heads"][0]
    page = render_audit_page(audit)
    assert 'id="heads"' in page and page.count('class="heads"') == 1
    assert page.count("CLS attention over the patches") == 16


def test_a_section_that_does_not_apply_fails_before_any_work():
    spec = parse_spec(GRU.replace('name = "gru"', 'name = "lenet"').replace("[[recurrent]]", "[[heads]]")
                      .replace("sequences = 4\nconcat = 4\n", ""))
    with pytest.raises(NotApplicableError, match="heads does not apply to lenet: it needs attention modules"):
        run_audit(spec, slug="x")
