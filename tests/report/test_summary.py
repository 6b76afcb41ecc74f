"""The CI summaries (issue 14, item 7): failing gates first, one name column, short columns.

The Markdown table must fit a GitHub job page: the long metric keys live in a details
list under the table, never in a column. ``test_browser.py`` renders the summary as
GitHub does (a 1000 px column, tables that scroll when too wide) and checks no table scrolls.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from markdown_it import MarkdownIt

from xai.audit.check import CheckedAudit
from xai.audit.gates import GateResult
from xai.report.junit import junit_xml
from xai.report.markdown import markdown_summary, short_name

from .test_page_content import _audit

LONG = "fairness.group-metrics.race x sex.calibration_error_difference"


def _gate(slug: str, metric: str, passed: bool, *, name: str | None = None, key: str = "",
          kind: str = "absolute", baseline: float | None = None) -> GateResult:
    threshold = 0.1
    return GateResult(audit=slug, name=name or f"{metric} <= {threshold:g}", metric=metric, op="<=",
                      threshold=threshold, value=0.05 if passed else 0.5225, passed=passed,
                      message=f"{metric} = {0.05 if passed else 0.5225} {'passes' if passed else 'fails'} <= 0.1",
                      kind=kind, key=key or metric, baseline=baseline)


def _checked() -> list[CheckedAudit]:
    passing = CheckedAudit(_audit(), (_gate("t", "accuracy", True),))
    failing = CheckedAudit(
        _audit(),
        (_gate("t", "accuracy", True, name="accuracy holds"),
         _gate("t", LONG, True, kind="regression", baseline=0.04),
         _gate("t", "calibration_error_difference", False, key=LONG),
         _gate("t", "demographic_parity_difference", False, name="DP gap under 0.1",
               key="fairness.group-metrics.race.demographic_parity_difference")))
    return [passing, failing]


def _tables(markdown: str) -> list[list[list[str]]]:
    rows: list[list[list[str]]] = []
    for block in markdown.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if lines:
            rows.append([[c.strip() for c in line.strip("|").split("|")] for line in lines])
    return rows


def test_markdown_lists_failed_audits_and_gates_first_with_one_name_column():
    text = markdown_summary(_checked())
    tables = _tables(text)
    assert len(tables) == 2
    first, second = tables
    assert first[0] == ["result", "gate", "value", "bound", "baseline (Δ)"]
    # the failing audit leads, and within it the two failed gates lead, in spec order
    results = [row[0] for row in first[2:]]
    assert results == ["❌ FAIL", "❌ FAIL", "✅ pass", "✅ pass"]
    names = [row[1] for row in first[2:]]
    assert names == ["calibration_error_difference", "DP gap under 0.1", "accuracy holds",
                     "race x sex calibration_error_difference (regression)"]
    assert second[2][0] == "✅ pass"
    # no metric key (dotted, unbreakable) in any table cell; each key is in the details list
    for table in tables:
        for row in table:
            assert not any("fairness." in cell for cell in row), row
    assert f"`{LONG}`" in text and "`fairness.group-metrics.race.demographic_parity_difference`" in text
    assert text.index("<details>") > text.index("| ❌ FAIL |")
    assert [row[3] for row in first[2:]] == ["≤ 0.1"] * 4
    assert first[5][4] == "0.04 (+0.01)"


def test_short_names():
    assert short_name(_gate("t", "accuracy", True)) == "accuracy"
    assert short_name(_gate("t", "explain.integrated-gradients.mean_abs_question_share", True)) == (
        "integrated-gradients mean_abs_question_share")
    assert short_name(_gate("t", "accuracy", True, name="my own gate")) == "my own gate"


def test_markdown_is_valid_gfm_with_escaped_cells():
    checked = _checked()
    hostile = CheckedAudit(_audit(), (_gate("t", "accuracy", False, name="a | b <script>"),))
    html = MarkdownIt("commonmark").enable("table").render(markdown_summary([*checked, hostile]))
    assert html.count("<table>") == 3
    assert "<script>" not in html and "a | b &lt;script&gt;" in html.replace("&amp;lt;", "&lt;")


def test_junit_lists_failed_suites_and_cases_first():
    root = ET.fromstring(junit_xml(_checked()))
    suites = root.findall("testsuite")
    assert [s.get("failures") for s in suites] == ["2", "0"]
    cases = suites[0].findall("testcase")
    assert [c.find("failure") is not None for c in cases] == [True, True, False, False]
    assert cases[0].find("failure").text.count(LONG) == 1
    assert root.get("tests") == "5" and root.get("failures") == "2"
