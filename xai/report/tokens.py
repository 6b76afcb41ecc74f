"""The token-relevance section of an audit page (``[[tokens]]`` and ``xai rollout --text -o DIR``): token heat maps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from xai.report.html import _ENV

if TYPE_CHECKING:  # annotations only: renderers never import torch
    from xai.explain.tokens import TokenRelevance
    from xai.report._renderers import PageContext

__all__ = ["render_section"]


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


def render_section(results: Sequence[TokenRelevance], page: PageContext) -> Markup:
    """The audit page's section: each sentence's tokens shaded by relevance."""
    views = [{"result": r, "rows": _rows(r)} for r in results]
    return Markup(_ENV.get_template("sections/tokens.html.j2").render(results=views))  # noqa: S704
