"""HTML partial of generation attribution: per prompt, a generated-token x prompt-token table per method.

Every user string (prompts, tokens, model name) is escaped; colours are inline styles
(Okabe-Ito orange for positive scores, blue for negative), each row scaled to its own
largest absolute value, the number in the cell's title.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from markupsafe import Markup, escape

if TYPE_CHECKING:  # annotations only: renderers never import torch or a method
    from xai.explain.llm import GenerationAttributionResult, PromptAttribution
    from xai.report._renderers import PageContext

__all__ = ["render_html", "render_section"]

_LABELS = {"feature-ablation": "feature ablation (LLMAttribution)", "shapley": "Shapley value sampling "
           "(LLMAttribution)", "layer-ig": "layer integrated gradients on the token embedding (LLMGradientAttribution)",
           "rollout": "causal attention rollout"}


def _cell(value: float, top: float) -> str:
    alpha = 0.0 if top == 0 or not np.isfinite(value) else min(1.0, abs(value) / top)
    colour = "230, 159, 0" if value >= 0 else "0, 114, 178"
    return (f'<td class="num" title="{value:+.4f}" style="background: rgba({colour}, {alpha:.2f})">'
            f"{value:+.2f}</td>")


def _table(prompt: PromptAttribution, method: str) -> str:
    e = escape
    scores = prompt.scores[method]  # (G, P)
    head = "".join(f'<th scope="col">{e(t)}</th>' for t in prompt.prompt_tokens)
    rows = []
    for g, token in enumerate(prompt.generated_tokens):
        row = scores[g]
        top = float(np.nanmax(np.abs(row))) if row.size else 0.0
        log_p = prompt.log_probs[g] if g < len(prompt.log_probs) else float("nan")
        rows.append(f'<tr><th scope="row" title="log p {log_p:.3f}">{e(token)}</th>'
                    f'{"".join(_cell(float(v), top) for v in row)}</tr>')
    return (f'<table class="llm-attr"><caption>{e(_LABELS.get(method, method))}: rows are generated tokens, '
            f'columns prompt tokens</caption><thead><tr><th scope="col">generated</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def render_html(result: GenerationAttributionResult) -> str:
    """The section: per prompt, its continuation and one table per method."""
    e = escape
    parts = [f'<section class="llm"><h3>Generation attribution · <code>{e(result.model)}</code> · '
             f"{len(result.prompts)} prompts · {', '.join(e(m) for m in result.methods)}</h3>",
             f"<p>Which prompt tokens drive each generated (greedy) token. Ablation and Shapley scores are "
             f"changes of the generated token's log-probability when a prompt token is replaced by "
             f"<code>{e(result.baseline_token)}</code>; rollout rows are shares of the attention flow.</p>"]
    for i, prompt in enumerate(result.prompts):
        parts.append(f"<h4>Prompt {i}: <q>{e(prompt.prompt)}</q> → <q>{e(' '.join(prompt.generated_tokens))}</q>"
                     "</h4>")
        parts.extend(_table(prompt, method) for method in result.methods if method in prompt.scores)
    parts.extend(f'<p class="warn">{e(note)}</p>' for note in result.notes)
    parts.append("</section>")
    return str(Markup("".join(parts)))


def render_section(results: Sequence[GenerationAttributionResult], page: PageContext | None = None) -> Markup:
    """The audit page's section: each result's :func:`render_html` (the renderer ``HTML_RENDERERS`` names)."""
    return Markup("".join(render_html(r) for r in results))
