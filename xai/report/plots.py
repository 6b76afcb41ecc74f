"""Figures for the report, as PNG bytes (matplotlib, Agg backend).

Renderers never touch a model: every function here takes result objects only.
Colours are colour-blind safe (Okabe-Ito for categories, magma / RdBu for maps).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from xai.explain import AttributionResult  # noqa: E402
from xai.fairness import GroupTable  # noqa: E402

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
             "#000000")


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def image_attribution_grid(result: AttributionResult, max_samples: int = 8) -> bytes:
    """Each sample's input in grey with its attribution map overlaid, one colour bar.

    Channels are summed; unsigned maps use ``magma`` from 0, signed maps a symmetric
    ``RdBu_r`` so that zero is white.
    """
    n = min(max_samples, len(result.attributions))
    maps = result.attributions[:n].sum(axis=1)  # (N, H, W)
    images = result.inputs[:n].mean(axis=1)  # (N, H, W)
    signed = bool((maps < 0).any())
    limit = float(np.abs(maps).max()) or 1.0
    cmap, vmin = ("RdBu_r", -limit) if signed else ("magma", 0.0)
    fig, axes = plt.subplots(1, n, figsize=(1.6 * n + 0.8, 2.0), squeeze=False)
    shown = None
    for i, ax in enumerate(axes[0]):
        ax.imshow(images[i], cmap="gray", interpolation="nearest")
        shown = ax.imshow(maps[i], cmap=cmap, vmin=vmin, vmax=limit, alpha=0.65,
                          interpolation="nearest")
        pred = result.class_names[result.predictions[i]]
        label = result.class_names[result.labels[i]]
        ax.set_title(f"pred {pred}\nlabel {label}", fontsize=8,
                     color="black" if pred == label else "#D55E00")
        ax.axis("off")
    fig.colorbar(shown, ax=axes[0].tolist(), fraction=0.025, pad=0.02)
    return _png(fig)


def column_importance_bars(result: AttributionResult, highlight: Sequence[str] = (),
                           top: int = 15) -> bytes:
    """Mean |attribution| per raw column, largest on top; sensitive columns in orange."""
    importance = list(result.column_importance().items())[:top][::-1]
    names = [k for k, _ in importance]
    values = [v for _, v in importance]
    colours = [OKABE_ITO[1] if k in highlight else OKABE_ITO[0] for k in names]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(names) + 0.8))
    ax.barh(names, values, color=colours)
    ax.set_xlabel("mean |attribution|")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def row_attribution_bars(result: AttributionResult, rows: int = 3, top: int = 8) -> bytes:
    """Signed attributions of the largest columns for the first ``rows`` rows."""
    assert result.column_attributions is not None
    rows = min(rows, len(result.column_attributions))
    fig, axes = plt.subplots(1, rows, figsize=(4.2 * rows, 0.3 * top + 1.0), squeeze=False)
    for r, ax in enumerate(axes[0]):
        values = result.column_attributions[r]
        order = np.argsort(-np.abs(values), kind="stable")[:top][::-1]
        ax.barh([result.column_names[i] for i in order], values[order],
                color=[OKABE_ITO[5] if values[i] < 0 else OKABE_ITO[0] for i in order])
        ax.axvline(0, color="black", linewidth=0.6)
        pred = result.class_names[result.predictions[r]]
        label = result.class_names[result.labels[r]]
        ax.set_title(f"row {r}: pred {pred}, label {label}", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _png(fig)


def group_metric_bars(table: GroupTable) -> bytes:
    """One bar group per metric (count left out), one bar per group."""
    metrics = [m for m in table.by_group if m != "count"]
    groups = list(table.groups)
    width = 0.8 / max(len(groups), 1)
    x = np.arange(len(metrics))
    fig, ax = plt.subplots(figsize=(1.6 * len(metrics) + 2.5, 2.8))
    for g, group in enumerate(groups):
        ax.bar(x + g * width - 0.4 + width / 2,
               [table.by_group[m][group] for m in metrics], width,
               label=group, color=OKABE_ITO[g % len(OKABE_ITO)])
    ax.set_xticks(x, [m.replace("_", " ") for m in metrics], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(title=table.feature, fontsize=7, title_fontsize=8, frameon=False,
              bbox_to_anchor=(1.0, 1.0), loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)
