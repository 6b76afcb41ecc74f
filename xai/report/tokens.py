"""HTML and JSON of per-token relevance (text attention rollout): a token heat map page beside its JSON."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from xai._io import atomic_write_text
from xai.explain.tokens import TokenRelevance
from xai.report.html import _ENV, _stamp
from xai.report.json import dumps

if TYPE_CHECKING:
    from xai.report._renderers import PageContext

__all__ = ["render_section", "render_tokens_page", "write_tokens_report"]


def _rows(result: TokenRelevance) -> list[dict[str, Any]]:
    rows = []
    for text, explained, tokens, relevance in zip(result.texts, result.explained, result.tokens, result.relevance,
                                                  strict=True):
        top = max((abs(v) for v in relevance), default=0.0) or 1.0
        rows.append({
            "text": text,
            "explained": explained,
            "cells": [{"token": t, "value": v, "alpha": round(0.85 * abs(v) / top, 3)}
                      for t, v in zip(tokens, relevance, strict=True)],
        })
    return rows


def render_tokens_page(result: TokenRelevance, json_name: str = "rollout-text.json") -> str:
    """The HTML page: each sentence's tokens shaded by relevance (every token and text escaped)."""
    return _ENV.get_template("tokens.html.j2").render(result=result, rows=_rows(result), json_name=json_name,
                                                      **_stamp())


def render_section(results: Sequence[TokenRelevance], page: PageContext) -> Markup:
    """The audit page's section: each sentence's tokens shaded by relevance."""
    views = [{"result": r, "rows": _rows(r)} for r in results]
    return Markup(_ENV.get_template("sections/tokens.html.j2").render(results=views))  # noqa: S704


def write_tokens_report(result: TokenRelevance, out_dir: str | Path, slug: str = "rollout-text") -> Path:
    """Write ``<slug>.json`` and ``<slug>.html`` into ``out_dir`` (rendered first, then written atomically)."""
    out = Path(out_dir)
    page = render_tokens_page(result, json_name=f"{slug}.json")
    document = dumps(result.to_dict(), indent=2)
    atomic_write_text(out / f"{slug}.json", document)
    atomic_write_text(out / f"{slug}.html", page)
    return out / f"{slug}.html"
