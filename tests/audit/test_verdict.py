"""The verdict a page leads with (xai/audit/verdict.py), on hand-built audits with known numbers."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests.audit._factory import PROV, audit
from xai.audit.gates import evaluate_gates
from xai.audit.result import AuditResult
from xai.audit.spec import GateSpec
from xai.audit.verdict import audit_verdict
from xai.fairness import FairnessResult, GroupTable
from xai.fairness.metrics import FourFifths
from xai.report.html import index_row, render_audit_page, render_index_rows


def _binary_table(feature: str, rates: dict[str, tuple[float, float, float, int]], min_group_size: int = 30,
                  four_fifths: FourFifths | None = None) -> GroupTable:
    """Groups with (selection rate, TPR, FPR, count); disparities computed here by hand over all groups."""
    sel = {g: v[0] for g, v in rates.items()}
    tpr = {g: v[1] for g, v in rates.items()}
    fpr = {g: v[2] for g, v in rates.items()}
    spread = {name: max(d.values()) - min(d.values()) for name, d in (("sel", sel), ("tpr", tpr), ("fpr", fpr))}
    return GroupTable(
        feature=feature, groups=tuple(rates),
        by_group={"selection_rate": sel, "true_positive_rate": tpr, "false_positive_rate": fpr,
                  "count": {g: float(v[3]) for g, v in rates.items()}},
        overall={"selection_rate": 0.3},
        disparities={"demographic_parity_difference": spread["sel"],
                     "equalized_odds_difference": max(spread["tpr"], spread["fpr"])},
        four_fifths=four_fifths, min_group_size=min_group_size,
        disparity_intervals={"equalized_odds_difference": (0.2, 0.5)})


def _with(table: GroupTable) -> AuditResult:
    probe = FairnessResult(probe="group-metrics", model="m", dataset="d", metric_names=("selection_rate",),
                           tables=(table,), provenance=PROV)
    return dataclasses.replace(audit(), results=(probe,))


class _Untrusted(AuditResult):
    def untrusted(self) -> dict[str, str]:
        return {"integrated-gradients": "MPRT: maps barely change when the weights are randomised"}


def test_nothing_flagged_and_no_gates_is_a_pass_that_says_so():
    verdict = audit_verdict(audit())
    assert verdict.status == "pass" and verdict.summary == "no gates; nothing flagged"
    assert verdict.findings == ()


def test_a_failed_gate_fails_and_leads_the_findings():
    result = _with(_binary_table("sex", {"F": (0.1, 0.5, 0.1, 500), "M": (0.3, 0.8, 0.2, 900)}))
    gates = evaluate_gates(result, [GateSpec(metric="equalized_odds_difference", op="<=", value=0.1),
                                    GateSpec(metric="accuracy", op=">=", value=0.5)])
    verdict = audit_verdict(result, gates)
    assert verdict.status == "fail" and verdict.summary == "1 of 2 gates failed"
    first = verdict.findings[0]
    assert first.severity == "fail" and first.anchor == "gates"
    assert "equalized_odds_difference" in first.text and "= 0.3" in first.text and "<= 0.1" in first.text


def test_an_untrusted_explainer_is_never_hidden_behind_all_passed():
    base = audit()
    result = _Untrusted(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
    gates = evaluate_gates(result, [GateSpec(metric="accuracy", op=">=", value=0.5)])
    verdict = audit_verdict(result, gates)
    assert verdict.status == "warn" and verdict.summary == "all 1 gate passed; 1 warning"
    assert "integrated-gradients is not trustworthy" in verdict.findings[0].text
    page = render_audit_page(result, gates)
    box = page[page.index('class="verdict-box'):page.index("</section>")]
    assert "REVIEW" in box and "not trustworthy" in box and "PASS" not in box


def test_four_fifths_failure_names_both_groups_with_their_sizes():
    ff = FourFifths(ratio=0.1 / 0.3, threshold=0.8, passed=False, lowest_group="F", highest_group="M")
    result = _with(_binary_table("sex", {"F": (0.1, 0.5, 0.1, 4913), "M": (0.3, 0.8, 0.2, 10147)}, four_fifths=ff))
    verdict = audit_verdict(result)
    assert verdict.status == "warn"
    texts = [f.text for f in verdict.findings]
    assert "Four-fifths rule fails for sex: selection-rate ratio 0.333 < 0.8 (F n=4,913 vs M n=10,147)" in texts


def test_largest_gap_names_the_groups_behind_it_and_its_interval():
    # EO = max(TPR gap 0.3, FPR gap 0.1) = 0.3, between F (TPR 0.5) and M (TPR 0.8)
    result = _with(_binary_table("sex", {"F": (0.1, 0.5, 0.1, 500), "M": (0.3, 0.8, 0.2, 900)}))
    [gap] = [f for f in audit_verdict(result).findings if f.severity == "info"]
    assert gap.text == ("Largest gap by sex: equalized odds difference 0.3 between F n=500, M n=900, "
                        "95% interval [0.2, 0.5] (group-metrics by sex)")


def test_a_gap_set_by_a_tiny_group_says_so_and_gives_the_ranked_gap():
    # the 7-row group sets the largest gap (selection rate 0.9 - 0.2 = 0.7); among groups of >= 30 rows it is 0.1
    rates = {"A": (0.2, 0.5, 0.1, 800), "B": (0.3, 0.6, 0.15, 600), "C": (0.9, 0.95, 0.7, 7)}
    verdict = audit_verdict(_with(_binary_table("race", rates)))
    small = next(f for f in verdict.findings if "too small to rank" in f.text)
    assert small.severity == "warn" and "1 race group under 30 rows (C n=7)" in small.text
    [gap] = [f for f in verdict.findings if f.severity == "info"]
    assert "demographic parity difference 0.7, set by groups under 30 rows" in gap.text
    assert "among larger groups 0.1 between A n=800, B n=600" in gap.text


def test_findings_rank_fails_then_warnings_then_gaps_by_size():
    ff = FourFifths(ratio=0.5, threshold=0.8, passed=False, lowest_group="F", highest_group="M")
    result = _with(_binary_table("sex", {"F": (0.15, 0.5, 0.1, 500), "M": (0.3, 0.8, 0.2, 900)}, four_fifths=ff))
    gates = evaluate_gates(result, [GateSpec(metric="demographic_parity_difference", op="<=", value=0.1)])
    severities = [f.severity for f in audit_verdict(result, gates).findings]
    assert severities == sorted(severities, key=["fail", "warn", "info"].index) and severities[0] == "fail"


def test_the_page_and_the_index_lead_with_the_verdict():
    failing = _with(_binary_table("sex", {"F": (0.1, 0.5, 0.1, 500), "M": (0.3, 0.8, 0.2, 900)}))
    gates = evaluate_gates(failing, [GateSpec(metric="equalized_odds_difference", op="<=", value=0.1)])
    page = render_audit_page(failing, gates)
    main = page[page.index("<main>"):]
    assert re.match(r"<main>\s*<section class=\"verdict-box v-fail\"", main)  # before the summary table
    rows = [index_row(dataclasses.replace(audit(), slug="a-pass")),
            index_row(dataclasses.replace(failing, slug="b-fail"), gates)]
    index = render_index_rows(rows)
    assert index.index("b-fail") < index.index("a-pass")  # the failed audit leads
    assert "1 failed, 0 to review, 1 passed" in index


@pytest.mark.parametrize("verdict", [None, "pass", {"status": "maybe", "summary": "", "top": []}])
def test_index_rows_without_a_valid_verdict_fall_back_to_their_gates(verdict):
    row = {"slug": "old", "title": "t", "model": "m", "data": "d", "rows": 1, "accuracy": 0.9, "explainers": [],
           "worst_disparity": {}, "wall_seconds": 1.0, "page": "old.html", "gates": {"passed": False, "failed": 1,
                                                                                       "total": 1}}
    if verdict is not None:
        row["verdict"] = verdict
    assert "1 failed, 0 to review, 0 passed" in render_index_rows([row])


def test_a_gate_without_a_baseline_says_why_it_could_not_pass():
    result = audit()
    gates = evaluate_gates(result, [GateSpec(metric="accuracy", op=">=", regression=True, tolerance=0.01)], None)
    (finding,) = audit_verdict(result, gates).findings
    assert finding.severity == "fail" and "--update-baseline" in finding.text  # not a bare "accuracy = 0.9"


def test_small_groups_found_by_two_probes_are_one_finding_ranked_after_a_four_fifths_failure():
    ff = FourFifths(ratio=0.5, threshold=0.8, passed=False, lowest_group="A", highest_group="B")
    table = _binary_table("race", {"A": (0.2, 0.5, 0.1, 800), "B": (0.4, 0.6, 0.15, 600), "C": (0.3, 0.5, 0.1, 7)},
                          four_fifths=ff)
    probes = tuple(FairnessResult(probe=name, model="m", dataset="d", metric_names=("selection_rate",),
                                  tables=(table,), provenance=PROV)
                   for name in ("group-metrics", "counterfactual-flip"))
    warnings = [f for f in audit_verdict(dataclasses.replace(audit(), results=probes)).findings if f.severity == "warn"]
    assert warnings[0].text.startswith("Four-fifths rule fails for race")  # a failed rule before a size note
    assert sum("too small to rank" in f.text for f in warnings) == 1  # not once per probe


def test_a_significant_word_association_is_flagged_in_the_direction_it_leans():
    from xai.datasets import load_word_vectors
    from xai.fairness.embedding import weat
    from xai.report.weat import weat_audit

    result = weat(load_word_vectors("googlenews-weat"), ["career-family"], permutations=2000, seed=0)
    (score,) = result.scores
    assert score.effect_size > 0.5 and score.p_value < 0.05  # male names lean to career on GoogleNews
    verdict = audit_verdict(weat_audit(result, source="googlenews-weat"))
    assert verdict.status == "warn" and verdict.summary == "no gates; 1 warning"
    (finding,) = verdict.findings
    assert finding.severity == "warn" and finding.anchor == "weat"
    assert finding.text.startswith("WEAT career-family: Male names lean to Career and Female names to Family, "
                                   f"effect size {score.effect_size:.3g}")
    # the same effect, not significant: context, not a flag; reversed: it leans the other way
    weak = dataclasses.replace(result, scores=(dataclasses.replace(score, p_value=0.2),))
    assert audit_verdict(weat_audit(weak, source="x")).status == "pass"
    flipped = dataclasses.replace(result, scores=(dataclasses.replace(score, effect_size=-score.effect_size),))
    assert "Male names lean to Family and Female names to Career" in audit_verdict(
        weat_audit(flipped, source="x")).findings[0].text
