"""Renderers by result type: which function draws each section of an audit page.

A result finds its section by its type (:data:`xai._results.RESULT_SECTIONS`); the section
finds its HTML renderer here, as a lazy ``"module:function"`` string, so the page needs no
knowledge of any result class and importing this table imports no renderer. JSON is every
result's own ``to_dict()``; the terminal, Markdown and JUnit views summarise the whole audit
(headline, metrics, gates), the same for every result type.

A renderer is ``render(results, page) -> Markup``: ``results`` are the audit's results of
that section, in run order, and ``page`` the :class:`PageContext`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from xai._results import RESULT_SECTIONS

if TYPE_CHECKING:
    from xai.audit.result import AuditResult

__all__ = ["HTML_RENDERERS", "PageContext", "RenderedSection", "html_renderer", "render_sections"]

#: section key -> "module:function" drawing that section's results as an HTML fragment.
HTML_RENDERERS: dict[str, str] = {
    "explanations": "xai.report.html:render_explanations",
    "sanity": "xai.report.sanity:render_section",
    "dreams": "xai.report.dream:render_section",
    "inversions": "xai.report.inversion:render_section",
    "projections": "xai.report.projection:render_section",
    "tokens": "xai.report.tokens:render_section",
    "daam": "xai.report.daam:render_section",
    "drift": "xai.report.drift:render_section",
    "recurrent": "xai.report.recurrent:render_section",
    "heads": "xai.report.heads:render_section",
    "agents": "xai.report.agents:render_section",
    "seq2seq": "xai.report.cross_attention:render_section",
    "llm": "xai.report.llm:render_section",
    "training": "xai.report.training:render_section",
    "weat": "xai.report.weat:render_section",
    "fairness": "xai.report.html:render_fairness",
    "slices": "xai.report.slices:render_section",
}


@dataclass(frozen=True)
class PageContext:
    """What a section renderer may need beyond its own results."""

    audit: AuditResult
    #: Methods whose sanity check failed, with the reason (their maps carry a warning).
    untrusted: dict[str, str]
    palette: tuple[str, ...]


@dataclass(frozen=True)
class RenderedSection:
    """One section of an audit page: its anchor, heading and escaped HTML."""

    key: str
    title: str
    html: Markup


Renderer = Callable[[Sequence[Any], PageContext], Markup]


def html_renderer(key: str) -> Renderer:
    """The HTML renderer of section ``key`` (imported on first use).

    Raises
    ------
    KeyError
        For a section without a renderer (``tests/test_methods_protocol.py`` rules that out).
    """
    module, _, attr = HTML_RENDERERS[key].partition(":")
    renderer: Renderer = getattr(importlib.import_module(module), attr)
    return renderer


def render_sections(page: PageContext) -> list[RenderedSection]:
    """Every non-empty section of the audit, in page order."""
    out = []
    for section in RESULT_SECTIONS:
        results = page.audit.section(section.key)
        if results:
            out.append(RenderedSection(section.key, section.title, html_renderer(section.key)(results, page)))
    return out
