"""WEAT and SEAT results on a page: the audit page's ``weat`` section, and the audits ``xai bias weat|seat`` write.

``xai bias weat`` and ``xai bias seat`` wrap their result in a one-result
:class:`~xai.audit.result.AuditResult`, so their page is an audit page like every other
command's: verdict first, provenance, the audit JSON beside it, and a row in the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from markupsafe import Markup

from xai.audit.result import AuditResult, DataSummary, ModelSummary
from xai.audit.spec import safe_slug

if TYPE_CHECKING:  # annotations only: SEAT's module imports torch
    from xai.fairness.embedding import WeatResult
    from xai.fairness.seat import SeatResult
    from xai.report._renderers import PageContext
    from xai.zoo import ModelHandle

__all__ = ["render_section", "seat_audit", "weat_audit", "write_seat_report", "write_weat_report"]


def _rows(result: WeatResult) -> list[dict[str, Any]]:
    rows = []
    for score in result.scores:
        pooled = (*score.association_x, *score.association_y)
        limit = max((abs(v) for v in pooled), default=0.0) or 1.0
        rows.append({
            "score": score,
            "sets": list(zip(("X", "Y", "A", "B"), (*score.targets, *score.attributes), score.used, score.missing,
                             strict=True)),
            "bars": [{"word": w, "value": v, "width": 50 * abs(v) / limit, "set": "X"}
                     for w, v in zip(score.used[0], score.association_x, strict=True)]
                    + [{"word": w, "value": v, "width": 50 * abs(v) / limit, "set": "Y"}
                       for w, v in zip(score.used[1], score.association_y, strict=True)],
        })
    return rows


def render_section(results: Sequence[WeatResult | SeatResult], page: PageContext) -> Markup:
    """The audit page's ``weat`` section: per result its summary, coverage and per-word associations."""
    from xai.report.html import _partial

    views = []
    for i, result in enumerate(results):
        weat = cast("WeatResult", getattr(result, "weat", result))  # a SEAT result holds its sentences' WEAT
        views.append({"weat": weat, "seat": result if weat is not result else None, "rows": _rows(weat),
                      "anchor": f"weat-{i}"})
    return _partial("weat", views, page)


def _words(result: WeatResult) -> int:
    return sum(len(words) for score in result.scores for words in score.used)


def weat_audit(result: WeatResult, *, source: str) -> AuditResult:
    """A one-result audit of ``xai bias weat`` on word vectors (``source``: the file, or the shipped name)."""
    return AuditResult(
        slug=safe_slug(f"bias-weat-{result.embedding}"), title=f"WEAT on {result.embedding}", spec_path="cli",
        model=ModelSummary(name=result.embedding, source=source, sha256=result.provenance.model_sha256,
                           task="embedding", modality="text", params=result.vocab_size * result.dim, card=None),
        data=DataSummary(name="WEAT word sets", split="", rows=_words(result),
                         sha256=result.provenance.data_sha256 or "", sensitive=()),
        performance={}, results=(result,), provenance=result.provenance)


def seat_audit(result: SeatResult, handle: ModelHandle) -> AuditResult:
    """A one-result audit of ``xai bias seat`` on a sentence encoder."""
    from xai.audit.command import command_audit

    sentences = DataSummary(name="SEAT sentences (word sets in bleached templates)", split="",
                            rows=_words(result.weat) * len(result.templates), sha256=result.provenance.data_sha256,
                            sensitive=())
    return command_audit(handle, [result], slug=f"bias-seat-{handle.name}", title=f"SEAT on {handle.name}",
                         data=sentences)


def write_weat_report(result: WeatResult, out_dir: str | Path, *, source: str) -> Path:
    """Write the WEAT audit page, its JSON and the index into ``out_dir``; the page's path."""
    from xai.report.html import write_report

    audit = weat_audit(result, source=source)
    write_report([audit], out_dir)
    return Path(out_dir) / f"{audit.slug}.html"


def write_seat_report(result: SeatResult, handle: ModelHandle, out_dir: str | Path) -> Path:
    """Write the SEAT audit page, its JSON and the index into ``out_dir``; the page's path."""
    from xai.report.html import write_report

    audit = seat_audit(result, handle)
    write_report([audit], out_dir)
    return Path(out_dir) / f"{audit.slug}.html"
