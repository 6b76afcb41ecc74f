"""HTML and JSON of a WEAT result: one self-contained page beside its JSON (atomic writes)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from xai._io import atomic_write_text
from xai.fairness.embedding import WeatResult
from xai.report.html import _ENV, _stamp
from xai.report.json import dumps

if TYPE_CHECKING:  # annotations only: SEAT's module imports torch
    from xai.fairness.seat import SeatResult

__all__ = ["render_weat_page", "write_seat_report", "write_weat_report"]


def render_weat_page(result: WeatResult, json_name: str = "weat.json") -> str:
    """The HTML page of a WEAT result (every user word escaped by jinja2's autoescape)."""
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
    return _ENV.get_template("weat.html.j2").render(result=result, rows=rows, json_name=json_name, **_stamp())


def write_weat_report(result: WeatResult, out_dir: str | Path) -> Path:
    """Write ``weat.json`` and ``weat.html`` into ``out_dir`` (rendered first, then written atomically)."""
    out = Path(out_dir)
    page = render_weat_page(result)
    document = dumps(result.to_dict(), indent=2)
    atomic_write_text(out / "weat.json", document)
    atomic_write_text(out / "weat.html", page)
    return out / "weat.html"


def write_seat_report(result: SeatResult, out_dir: str | Path) -> Path:
    """Write ``seat.json`` and ``seat.html`` (the WEAT page over sentences) into ``out_dir``, atomically."""
    out = Path(out_dir)
    page = render_weat_page(result.weat, json_name="seat.json")
    atomic_write_text(out / "seat.json", dumps(result.to_dict(), indent=2))
    atomic_write_text(out / "seat.html", page)
    return out / "seat.html"
