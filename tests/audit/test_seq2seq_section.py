"""The ``[[seq2seq]]`` spec section: validated at load, run by the audit, in the metrics, JSON and page."""

from __future__ import annotations

import pytest

from xai.audit.metrics import audit_metrics
from xai.audit.runner import run_audit
from xai.audit.spec import parse_spec
from xai.errors import NotApplicableError, SpecError
from xai.report.html import render_audit_page

DATES = '''title = "dates cross-attention"
probe = []
explain = []
[model]
name = "seq2seq-dates"
[data]
samples = 48
[[seq2seq]]
samples = 2
rows = 48
'''


def test_options_are_checked_when_the_spec_loads():
    with pytest.raises(SpecError, match=r"^a.toml: seq2seq\.0\.samples: .*line 9"):
        parse_spec(DATES.replace("samples = 2", "samples = 0"), "a.toml")
    with pytest.raises(SpecError, match=r"^a.toml: seq2seq\.0\.baseline: "):
        parse_spec(DATES + 'baseline = "mask"\n', "a.toml")


def test_seq2seq_section_runs_and_reaches_metrics_json_and_page():
    audit = run_audit(parse_spec(DATES), slug="dates")
    (result,) = audit.section("seq2seq")
    assert result.rows == 48 and result.cross.shape == (2, 2, 4, 11, 10)
    metrics = audit_metrics(audit)
    assert metrics["exact_match"] >= 0.95  # the card's headline, from the model's own evaluate
    assert {"seq2seq.alignment", "seq2seq.alignment.L0", "seq2seq.alignment.L1", "seq2seq.rollout_alignment",
            "seq2seq.ablation_alignment", "seq2seq.shapley_alignment", "seq2seq.ig_alignment",
            "seq2seq.ig_max_delta", "seq2seq.exact_match"} <= set(metrics)
    doc = audit.to_dict()
    assert "cross" not in doc["seq2seq"][0] and len(doc["seq2seq"][0]["maps"]) == 2
    page = render_audit_page(audit)
    assert 'id="seq2seq"' in page and 'href="#seq2seq"' in page and page.count('class="seq2seq"') == 1
    assert page.count('class="s2s-cross"') == 2 * 2 and page.count('class="s2s-ablation"') == 2
    assert page.count('class="s2s-shapley"') == 2 and page.count('class="s2s-ig"') == 2
    assert result.attribution_rows == 16 and len(doc["seq2seq"][0]["shapley"]) == 2


def test_the_section_does_not_apply_to_a_classifier():
    spec = parse_spec(DATES.replace('name = "seq2seq-dates"', 'name = "lstm-text"').replace("rows = 48\n", ""))
    with pytest.raises(NotApplicableError, match="seq2seq does not apply to lstm-text: it applies to generation"):
        run_audit(spec, slug="x")
