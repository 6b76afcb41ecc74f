"""HTML section of an :class:`~xai.explain.agents.AgentComparison`: what each agent attends to, side by side.

Computation and rendering apart: this module reads the result's arrays only (no model,
no torch). Every string from the result is escaped (``markupsafe.escape``); the bars are
inline-styled ``<span>`` elements; nothing is fetched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from markupsafe import Markup, escape

if TYPE_CHECKING:  # annotations only: renderers never import torch or a method
    from xai.explain.agents import AgentComparison
    from xai.report._renderers import PageContext

__all__ = ["render_html", "render_section"]

_KIND_TEXT = {
    "action": "the chosen action (a Q-value for a value-based agent, a log-probability for a policy)",
    "value": "the state's value (max<sub>a</sub> Q(s, a) for a value-based agent, V(s) for a critic or baseline)",
}


def _number(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _share_cell(share: float, magnitude: float) -> str:
    width = max(0.0, min(1.0, share)) * 100
    return (f'<td class="num" title="mean |attribution| {magnitude:.4g}">{share:.2f}'
            f'<span style="display: block; height: 6px; width: {width:.0f}%; background: #0072B2"></span></td>')


def _matrix(title: str, agents: tuple[str, ...], table: np.ndarray) -> str:
    e = escape
    head = "".join(f'<th scope="col"><code>{e(a)}</code></th>' for a in agents)
    rows = "".join(f'<tr><th scope="row"><code>{e(a)}</code></th>'
                   + "".join(f'<td class="num">{_number(float(v))}</td>' for v in table[i]) + "</tr>"
                   for i, a in enumerate(agents))
    return (f"<table><caption>{e(title)}</caption><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def render_html(result: AgentComparison) -> str:
    """The section: per target kind, each agent's share of attribution per state variable and the rank agreement."""
    e = escape
    agents = result.agents
    parts = [f'<section class="agents"><h3>Agent comparison · <code>{e(result.method)}</code> · '
             f"{len(agents)} agents on the same {result.samples} states</h3>",
             "<p>Each agent explained on the same states with the same explainer. A cell is the state "
             "variable's share of the agent's mean |attribution| (its outputs have their own scales, so "
             "shares and ranks compare across agents; hover for the raw mean). Spearman compares the "
             "agents' rankings of the state variables.</p>"]
    features = result.feature_names
    for kind, importance in result.importance.items():
        shares = result.shares(kind)
        parts.append(f"<h4>Target: {e(kind)}</h4><p class=\"muted\">{Markup(_KIND_TEXT.get(kind, ''))}</p>")
        head = "".join(f'<th scope="col">{e(f)}</th>' for f in features)
        rows = []
        for a, agent in enumerate(agents):
            top = features[int(np.argmax(importance[a]))] if importance[a].size else ""
            cells = "".join(_share_cell(float(shares[a, f]), float(importance[a, f])) for f in range(len(features)))
            target = result.target_columns.get(kind, ())
            explained = target[a] if a < len(target) else ""
            rows.append(f'<tr><th scope="row"><code>{e(agent)}</code><br><span class="muted">{e(explained)}'
                        f"</span></th>{cells}<td>{e(top)}</td></tr>")
        parts.append(f'<table><caption>Share of mean |attribution| per state variable ({e(kind)})</caption>'
                     f'<thead><tr><th scope="col">agent</th>{head}<th scope="col">reads most</th></tr></thead>'
                     f"<tbody>{''.join(rows)}</tbody></table>")
        parts.append(_matrix(f"Spearman rank correlation of the importances ({kind})", agents,
                             result.spearman[kind]))
        parts.append(_matrix(f"Mean per-state Spearman rank correlation of |attribution| ({kind})", agents,
                             result.state_spearman[kind]))
    parts.append(_matrix("Share of states where the greedy actions agree", agents, result.action_agreement))
    parts.extend(f'<p class="warn">{e(note)}</p>' for note in result.notes)
    parts.append("</section>")
    return str(Markup("".join(parts)))


def render_section(results: Sequence[AgentComparison], page: PageContext | None = None) -> Markup:
    """The audit page's section: each result's :func:`render_html` (the renderer ``HTML_RENDERERS`` names)."""
    return Markup("".join(render_html(r) for r in results))
