"""The verdict an audit leads with: pass, fail or warn, and its worst findings ranked.

A reader acts on the first screen, so every page, the index and the terminal start here:

- with gates: *fail* when any gate failed, else *pass*, unless a built-in flag below
  turns it into *warn* (an untrusted explainer is never hidden behind "all passed");
- the built-in flags, with or without gates: an explainer that failed its sanity check,
  a four-fifths-rule failure, a detected shortcut, groups too small to rank, a significant
  word-embedding association of at least a medium effect (WEAT / SEAT);
- then the largest disparity of each sensitive feature, for context.

Each :class:`Finding` names the attribute, the groups and their sizes, the interval and the
threshold it was judged against, and links to its evidence on the page. Findings are
ranked: failed gates, then flags, then disparities by size. Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from xai._results import to_jsonable

if TYPE_CHECKING:
    from xai.audit.gates import GateResult
    from xai.audit.result import AuditResult
    from xai.fairness import FairnessResult, GroupTable

__all__ = ["Finding", "Verdict", "audit_verdict"]

Severity = Literal["fail", "warn", "info"]
_RANK = {"fail": 0, "warn": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """One thing a reviewer should know, in one sentence, with where to read more."""

    severity: Severity
    #: The sentence: what, for which attribute and groups, against which threshold.
    text: str
    #: The page anchor of its evidence (``gates``, ``fairness``, ``sanity`` ...).
    anchor: str
    #: Orders findings of one severity: larger first (a disparity's size, a gate's overshoot).
    weight: float = 0.0
    #: Orders kinds within a severity: lower first (an untrusted explainer or a four-fifths failure
    #: before a note that some groups are too small to rank).
    priority: int = 0


@dataclass(frozen=True)
class Verdict:
    """The audit's status and its findings, worst first."""

    status: Literal["pass", "fail", "warn"]
    #: One line: ``"2 of 8 gates failed"``, ``"all 8 gates passed; 1 warning"``, ``"no gates; 3 flags"``.
    summary: str
    findings: tuple[Finding, ...]
    gates_total: int | None = None
    gates_failed: int = 0

    def top(self, n: int = 3) -> tuple[Finding, ...]:
        """The ``n`` worst findings."""
        return self.findings[:n]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (kept in the audit's JSON and the index manifest)."""
        return to_jsonable(self)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "undefined"


def _gate_findings(gates: Sequence[GateResult]) -> list[Finding]:
    out = []
    for g in gates:
        if g.passed:
            continue
        value = "no value" if g.value is None else _fmt(g.value)
        # no bound: the gate could not be judged (no baseline yet, a metric missing); its message says why
        bound = f"; {g.message}" if g.threshold is None else f"; must be {g.op} {_fmt(g.threshold)}"
        overshoot = 0.0 if g.value is None or g.threshold is None else abs(g.value - g.threshold)
        out.append(Finding("fail", f"Gate failed: {g.name} ({g.key or g.metric} = {value}{bound})", "gates",
                           overshoot))
    return out


def _sizes(table: GroupTable, groups: Sequence[str]) -> str:
    counts = table.by_group.get("count", {})
    return ", ".join(f"{g} n={int(counts[g]):,}" if g in counts and math.isfinite(counts[g]) else str(g)
                     for g in groups)


#: The per-group rates a difference compares (equalized odds: the larger of the TPR and FPR gaps).
_BASES = {"demographic_parity_difference": ("selection_rate",),
          "equalized_odds_difference": ("true_positive_rate", "false_positive_rate")}


def _extreme_pair(table: GroupTable, difference: str) -> tuple[str, str, float] | None:
    """The two groups behind ``difference``: lowest and highest of its rate, among groups large enough to rank."""
    pairs = [p for m in _BASES.get(difference, (difference.removesuffix("_difference"),))
             if (p := _pair_of(table, m)) is not None]
    return max(pairs, key=lambda p: p[2]) if pairs else None


def _pair_of(table: GroupTable, metric: str) -> tuple[str, str, float] | None:
    values = table.by_group.get(metric, {})
    counts = table.by_group.get("count", {})
    eligible = {g: v for g, v in values.items()
                if math.isfinite(v) and counts.get(g, math.inf) >= table.min_group_size}
    if len(eligible) < 2:
        return None
    low, high = min(eligible, key=eligible.__getitem__), max(eligible, key=eligible.__getitem__)
    return low, high, eligible[high] - eligible[low]


def _table_findings(probe: FairnessResult, table: GroupTable) -> list[Finding]:
    out: list[Finding] = []
    where = f"{probe.probe} by {table.feature}"
    counts = table.by_group.get("count", {})
    small = sorted((g for g, n in counts.items() if math.isfinite(n) and 0 < n < table.min_group_size),
                   key=lambda g: counts[g])
    if small and table.kind == "group":
        out.append(Finding("warn", f"{_plural(len(small), table.feature + ' group')} under "
                           f"{table.min_group_size} rows ({_sizes(table, small[:4])}"
                           f"{', ...' if len(small) > 4 else ''}): too small to rank, read their numbers "
                           f"as anecdotes ({where})", "fairness", float(len(small)), priority=1))
    ff = table.four_fifths
    if ff is not None and not ff.passed:
        out.append(Finding("warn", f"Four-fifths rule fails for {table.feature}: selection-rate ratio "
                           f"{_fmt(ff.ratio)} < {ff.threshold:g} ({_sizes(table, [ff.lowest_group])} "
                           f"vs {_sizes(table, [ff.highest_group])})", "fairness", 1 - ff.ratio))
    if table.disparities.get("shortcut_detected") == 1.0:
        out.append(Finding("warn", f"Shortcut detected by {table.feature}: accuracy gap "
                           f"{_fmt(table.disparities.get('accuracy_difference', math.nan))} and attribution mass "
                           f"{_fmt(table.disparities.get('region_mass_ratio', math.nan))}x on the marked region",
                           "fairness", 1.0))
    if table.kind != "group":
        return out
    gaps = {k: v for k, v in table.disparities.items() if k.endswith("_difference") and math.isfinite(v)}
    if gaps:
        name, value = max(gaps.items(), key=lambda kv: kv[1])
        pair = _extreme_pair(table, name)
        if pair is None:
            groups = ""
        elif math.isclose(pair[2], value, rel_tol=1e-6, abs_tol=1e-9):
            groups = f" between {_sizes(table, pair[:2])}"
        else:  # the table's gap includes groups too small to rank: say so, and give the ranked one
            groups = (f", set by groups under {table.min_group_size} rows; among larger groups "
                      f"{_fmt(pair[2])} between {_sizes(table, pair[:2])}")
        interval = table.disparity_intervals.get(name)
        ci = (f", {100 * table.confidence:g}% interval [{_fmt(interval[0])}, {_fmt(interval[1])}]"
              if interval and all(map(math.isfinite, interval)) else "")
        out.append(Finding("info", f"Largest gap by {table.feature}: {name.replace('_', ' ')} "
                           f"{_fmt(value)}{groups}{ci} ({where})", "fairness", value))
    return out


#: A WEAT / SEAT test is flagged when its one-sided p-value is under this and its effect is at least
#: medium (Cohen's d 0.5, the size Caliskan et al. read as a bias).
WEAT_ALPHA, WEAT_EFFECT = 0.05, 0.5


def _association_findings(result: object) -> list[Finding]:
    """Significant associations of a WEAT or SEAT result, in the direction they lean."""
    weat = getattr(result, "weat", result)
    kind = "SEAT" if weat is not result else "WEAT"
    out = []
    for score in getattr(weat, "scores", ()):
        d, p = score.effect_size, score.p_value
        if not (math.isfinite(d) and math.isfinite(p)):
            continue
        (x, y), (a, b) = score.targets, score.attributes
        lean = f"{x} lean to {a} and {y} to {b}" if d >= 0 else f"{x} lean to {b} and {y} to {a}"
        severity: Severity = "warn" if p < WEAT_ALPHA and abs(d) >= WEAT_EFFECT else "info"
        out.append(Finding(severity, f"{kind} {score.test}: {lean}, effect size {_fmt(d)} (p {p:.2g}, "
                           f"{'flagged at' if severity == 'warn' else 'under the flag of'} p < {WEAT_ALPHA:g} "
                           f"and |d| >= {WEAT_EFFECT:g})", "weat", abs(d)))
    return out


def _first_of_each(findings: list[Finding]) -> list[Finding]:
    """Drop repeats: the same small groups found by two probes over one feature are one finding."""
    seen: set[str] = set()
    out = []
    for finding in findings:
        key = finding.text.rsplit(" (", 1)[0] if finding.priority == 1 else finding.text  # without "(probe by x)"
        if key not in seen:
            seen.add(key)
            out.append(finding)
    return out


def audit_verdict(audit: AuditResult, gates: Sequence[GateResult] | None = None) -> Verdict:
    """The verdict of one audit (``gates``: its gate results, when the spec has any and they ran).

    Examples
    --------
    With no gates and nothing flagged the verdict is a pass with no findings; see
    ``tests/audit/test_verdict.py`` for the flags.
    """
    findings = _gate_findings(gates or ())
    for method, reason in audit.untrusted().items():
        reason = reason.removeprefix("not trustworthy: ")  # str(verdict) starts with it; say it once
        findings.append(Finding("warn", f"{method} is not trustworthy on this model: {reason}", "sanity", 1.0))
    for probe in audit.fairness:
        for table in (*probe.tables, *((probe.intersection,) if probe.intersection else ())):
            findings.extend(_table_findings(probe, table))
    for result in audit.section("weat"):
        findings.extend(_association_findings(result))
    findings = _first_of_each(findings)
    findings.sort(key=lambda f: (_RANK[f.severity], f.priority, -f.weight))
    failed = sum(not g.passed for g in gates or ())
    flags = sum(f.severity == "warn" for f in findings)
    warnings = f"; {_plural(flags, 'warning')}" if flags else ""
    if gates:
        status: Literal["pass", "fail", "warn"] = "fail" if failed else ("warn" if flags else "pass")
        summary = (f"{failed} of {_plural(len(gates), 'gate')} failed" if failed
                   else f"all {_plural(len(gates), 'gate')} passed") + warnings
    else:
        status = "warn" if flags else "pass"
        summary = "no gates" + (warnings or "; nothing flagged")
    return Verdict(status=status, summary=summary, findings=tuple(findings),
                   gates_total=None if gates is None else len(gates), gates_failed=failed)
