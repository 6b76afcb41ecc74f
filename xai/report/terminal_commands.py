"""Terminal renderers of the single-method commands (``xai fairness``, ``explain``, ``zoo`` ...).

Each takes the command's result and a console and prints rich tables; the CLI only parses,
calls the core and calls one of these. No torch at import: results are annotations only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table

from xai._text import safe_text

if TYPE_CHECKING:  # annotations only: the terminal renderers import no torch
    from xai.explain import AttributionResult
    from xai.explain.daam import DaamResult
    from xai.explain.dream import DreamResult
    from xai.explain.inversion import InversionGallery, InversionResult
    from xai.explain.projection import ProjectionResult
    from xai.explain.sanity import SanityResult
    from xai.explain.tokens import TokenRelevance
    from xai.fairness import FairnessResult, GroupTable
    from xai.fairness.direct_bias import DirectBiasResult
    from xai.fairness.embedding import WeatResult
    from xai.fairness.seat import SeatResult


# --- xai fairness -------------------------------------------------------------------------------------------

def print_verdict(console: Console, verdict: FairnessResult) -> None:
    """A probe's result: its group tables with disparities and intervals, or its named numbers."""
    values = getattr(verdict, "values", None)
    if not verdict.tables and values is not None:  # embedding probes: named numbers
        view = Table(title=safe_text(f"{verdict.probe} of {verdict.model}"))
        view.add_column("metric")
        view.add_column("value", justify="right")
        for name, value in values.items():
            view.add_row(safe_text(name), f"{value:.4f}")
        console.print(view)
        if not values:
            console.print(f"[yellow]{safe_text(verdict.probe)} measured nothing on {safe_text(verdict.model)}[/]")
    for note in getattr(verdict, "notes", ()) if not verdict.tables else ():
        console.print(f"[dim]{safe_text(note)}[/]")
    for table in (*verdict.tables, *((verdict.intersection,) if verdict.intersection else ())):
        _print_table(console, f"{verdict.probe} of {verdict.model} by {table.feature}", table)
        for name, score in list(verdict.rankings.get(table.feature, {}).items())[:5]:
            console.print(f"  carries {safe_text(table.feature)}: {safe_text(name)} (NMI {score:.3f})")


def _print_table(console: Console, title: str, table: GroupTable) -> None:
    strategies = table.kind == "strategy"  # rows are mitigation strategies, not groups
    view = Table(title=safe_text(title))
    view.add_column("strategy" if strategies else safe_text(table.feature), no_wrap=strategies)
    for metric in table.by_group:
        view.add_column(safe_text(metric.replace("_", " ")), justify="right")
    shown, hidden = (table.groups, 0) if strategies else table.worst_groups()
    for group in shown:
        view.add_row(safe_text(group), *(_fmt(m, table.by_group[m][group]) for m in table.by_group))
    if not strategies:
        view.add_row("[bold]overall[/]", *(_fmt(m, table.overall.get(m)) for m in table.by_group))
    console.print(view)
    if hidden:
        console.print(f"  [dim]... and {hidden:,} more groups (the {len(shown)} farthest from overall are shown; "
                      "--json has all)[/]")
    for name, value in table.overall.items():
        if name not in table.by_group:  # overall-only numbers, e.g. a proxy probe's AUC
            console.print(f"  {safe_text(name.replace('_', ' '))}: [bold]{_fmt(name, value)}[/]")
    if table.n_boot:
        console.print(f"  [dim]brackets: {100 * table.confidence:g}% bootstrap intervals, {table.n_boot} resamples "
                      "(gaps: symmetric, of the named pair of groups)[/]")
    for name, value in (*table.disparities.items(), *table.ratios.items()):
        low_high = table.disparity_intervals.get(name)
        bracket = f" [{low_high[0]:.4f}, {low_high[1]:.4f}]" if low_high else ""
        pair = table.disparity_groups.get(name)
        between = f" ({pair[0]} vs {pair[1]})" if pair else ""
        console.print(f"  {safe_text(name.replace('_', ' '))}: [bold]{_fmt(name, value)}[/]{safe_text(bracket)}"
                      f"[dim]{safe_text(between)}[/]")
    if table.four_fifths is not None:
        rule = table.four_fifths
        console.print(f"  four-fifths rule: [bold]{'pass' if rule.passed else 'FAIL'}[/] (selection-rate ratio "
                      f"{rule.ratio:.4f}, lowest {safe_text(rule.lowest_group)}, "
                      f"highest {safe_text(rule.highest_group)})")
    for warning in table.warnings:
        console.print(f"  [yellow]warning:[/] {safe_text(warning)}")


def _fmt(metric: str, value: float | None) -> str:
    if value is None or value != value:  # missing, or NaN for an empty intersection
        return "-"
    return f"{int(value):,}" if metric == "count" else f"{value:.4f}"


# --- xai explain --------------------------------------------------------------------------------------------


def print_explanation(console: Console, explanation: AttributionResult, method: str, model_name: str) -> None:
    """Per-column importance (tables), per-sentence top tokens (text), or per-sample sums (images)."""
    if explanation.column_attributions is not None:
        table = Table(title="mean |attribution| per column",
                      caption=safe_text(f"{method} on {model_name}, {len(explanation.labels)} rows"))
        table.add_column("column")
        table.add_column("mean |attr|", justify="right")
        for name, value in explanation.column_importance().items():
            table.add_row(safe_text(name), f"{value:.4f}")
    elif explanation.tokens:
        table = _token_table(explanation, safe_text(f"{method} on {model_name}"))
    else:
        table = Table(title=safe_text(f"{method} on {model_name}"))
        for column in ("sample", "label", "predicted", "target", "sum", "max |attr|"):
            table.add_column(column, justify="right")
        for i, attr in enumerate(explanation.attributions):
            names = (safe_text(explanation.name_of(kind, i)) for kind in ("label", "prediction", "target"))
            table.add_row(str(i), *names, f"{attr.sum():.4f}",
                          f"{abs(attr).max():.4f}")
    console.print(table)


def _token_table(explanation: AttributionResult, title: str, top: int = 3) -> Table:
    """Text models: each sentence with the scores of its ``top`` tokens by |attribution|.

    Multimodal (VQA) models: each question, and the share of |attribution| on it vs the image.
    """
    share = explanation.question_share
    caption = f"top {top} tokens by |attribution| in brackets"
    if share is not None:
        caption += "; question share: |attribution| on the words / on words and image"
    table = Table(title=title, caption=caption)
    columns = ["sample", "label", "predicted", "target", "sum", "tokens"]
    if share is not None:
        columns.append("question share")
    for column in columns:
        table.add_column(column, justify="left" if column == "tokens" else "right")
    per_token = explanation.attributions if explanation.token_attributions is None else explanation.token_attributions
    for i, tokens in enumerate(explanation.tokens):
        scores = per_token[i][:len(tokens)]
        best = set(np.argsort(-np.abs(scores), kind="stable")[:top].tolist())
        words = [f"{t}({scores[j]:+.2f})" if j in best else t for j, t in enumerate(tokens)]
        row = [str(i), *(safe_text(explanation.name_of(kind, i)) for kind in ("label", "prediction", "target")),
               f"{scores.sum():.4f}", safe_text(" ".join(words))]
        if share is not None:
            row.append(f"{share[i]:.2f}")
        table.add_row(*row)
    return table


# --- xai zoo ------------------------------------------------------------------------------------------------


def print_zoo_list(console: Console, rows: list[dict[str, Any]]) -> None:
    """One row per zoo entry (from ``xai.cli.zoo.zoo_rows``): family, task, data, size, headline metric."""
    table = Table(title="xai zoo")
    for column in ("name", "family", "task", "dataset", "params", "trained", "metric"):
        table.add_column(column, justify="right" if column == "params" else "left", no_wrap=column == "name")
    for r in rows:
        metric = (f"{r['metric']} {r['value']:.4f} (floor {r['floor']})" if r["value"] is not None
                  else f"{r['metric']} - (floor {r['floor']})")
        table.add_row(r["name"], r["family"], r["task"], r["dataset"], f"{r['params']:,}",
                      "yes" if r["trained"] else "no", metric)
    console.print(table)


def print_zoo_reproduce(console: Console, rows: list[dict[str, Any]], failed: list[str], tolerance: float) -> None:
    """Card vs retrained headline per entry, then the verdict line."""
    table = Table(title=f"xai zoo reproduce (tolerance {tolerance:g})")
    for column in ("entry", "headline", "card", "retrained", "difference", "weights"):
        table.add_column(column, justify="right" if column in ("card", "retrained", "difference") else "left",
                         no_wrap=column == "entry")
    for r in rows:
        mark = "[red]" if r["name"] in failed else ""
        table.add_row(r["name"], r["metric"], f"{r['card']:.6f}", f"{r['retrained']:.6f}",
                      f"{mark}{r['difference']:+.2e}", "bit-identical" if r["weights_identical"] else "differ")
    console.print(table)
    verdict = (f"[red]NOT REPRODUCED[/]: {', '.join(failed)}" if failed
               else f"[green]REPRODUCED[/]: {len(rows)} {'entry' if len(rows) == 1 else 'entries'} "
                    f"within {tolerance:g}")
    console.print(verdict)


def print_zoo_card(console: Console, name: str, data: dict[str, Any]) -> None:
    """A trained entry's model card, one field a row."""
    table = Table(title=f"model card: {name}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("architecture", "family", "task", "params", "dataset", "split", "metrics",
                "headline", "seed", "recipe", "train_seconds", "layers", "paper", "weights_sha256"):
        table.add_row(key, safe_text(data.get(key)))
    for key, value in data.get("details", {}).items():  # non-numeric results (nearest neighbours ...)
        table.add_row(safe_text(key), safe_text(value))
    considerations = data.get("considerations", {})
    for key in ("intended_use", "users", "out_of_scope", "limitations", "tradeoffs", "training_data",
                "evaluation_data"):
        value = considerations.get(key)
        if value:
            table.add_row(key, safe_text("\n".join(f"- {v}" for v in value) if isinstance(value, list) else value))
    risks = [f"- {r.get('risk', '')} (mitigation: {r.get('mitigation', '')})"
             for r in considerations.get("ethical_considerations", []) if isinstance(r, dict)]
    if risks:
        table.add_row("ethical_considerations", safe_text("\n".join(risks)))
    for row in data.get("group_results", []):
        groups = ", ".join(f"{g} (n={v.get('count', 0):.0f}, acc {v['accuracy']:.3f})" if "accuracy" in v
                           else str(g) for g, v in row["groups"].items())
        table.add_row(f"groups: {safe_text(row['feature'])}", safe_text(f"{groups} [audit {row['audit']}]"))
    console.print(table)


# --- xai bias -----------------------------------------------------------------------------------------------

_SETS = ("X", "Y", "A", "B")


def print_direct_bias(console: Console, result: DirectBiasResult) -> None:
    """``xai bias direct``: the gender direction, DirectBias_c and the most positive / negative projections."""
    ratios = ", ".join(f"{r:.3f}" for r in result.explained_variance_ratio[:5])
    console.print(f"Direct bias on [bold]{safe_text(result.embedding)}[/] ({result.vocab_size:,} words, "
                  f"{result.dim} dimensions)")
    console.print(f"gender direction: first principal component of {len(result.pairs)} definitional pairs; "
                  f"explained variance ratios {ratios}")
    console.print(f"DirectBias_{result.c:g} = [bold]{result.direct_bias:.4f}[/] over "
                  f"{len(result.neutral_words)} neutral words")
    view = Table(title="projections cos(w, g) (positive: towards the pairs' first words)", title_justify="left")
    view.add_column("most positive")
    view.add_column("cos", justify="right")
    view.add_column("most negative")
    view.add_column("cos", justify="right")
    for i in range(max(len(result.top), len(result.bottom))):
        high = result.top[i] if i < len(result.top) else ""
        low = result.bottom[i] if i < len(result.bottom) else ""
        view.add_row(safe_text(high), f"{result.projections[high]:+.3f}" if high else "",
                     safe_text(low), f"{result.projections[low]:+.3f}" if low else "")
    console.print(view)
    for label, lost in (("pairs", [f"{f}/{m}" for f, m in result.missing_pairs]),
                        ("neutral words", list(result.missing_neutral)),
                        ("projected words", list(result.missing_projected))):
        if lost:
            console.print(f"[yellow]missing {label} ({len(lost)}):[/] {safe_text(', '.join(lost))}")


def print_weat(console: Console, result: WeatResult) -> None:
    """One table per WEAT test: effect size, p-value, statistic, words used and missing."""
    console.print(f"WEAT on [bold]{safe_text(result.embedding)}[/] ({result.vocab_size:,} words, "
                  f"{result.dim} dimensions)")
    for score in result.scores:
        view = Table(title=safe_text(f"{score.test}: {score.targets[0]} vs {score.targets[1]} / "
                                     f"{score.attributes[0]} vs {score.attributes[1]}"), title_justify="left")
        view.add_column("effect size", justify="right")
        view.add_column("p-value", justify="right")
        view.add_column("statistic", justify="right")
        view.add_column("words X/Y/A/B", justify="right")
        view.add_column("missing words")
        lost = "; ".join(f"{name}: {', '.join(m)}" for name, m in zip(_SETS, score.missing, strict=True) if m)
        effect = f"{score.effect_size:.3f}" if math.isfinite(score.effect_size) else "undefined"
        view.add_row(effect, f"{score.p_value:.2g} ({score.p_method})", f"{score.statistic:.4f}",
                     "/".join(str(len(u)) for u in score.used), safe_text(lost) or "none")
        console.print(view)
        for note in score.notes:
            console.print(f"  [yellow]warning:[/] {safe_text(note)}")
        if score.reference:
            console.print(f"  [dim]published (human IAT): d {safe_text(score.reference.get('d', '?'))}, "
                          f"p {safe_text(score.reference.get('p', '?'))}[/]")
    for name, reason in result.skipped.items():
        console.print(f"[yellow]not run:[/] {safe_text(name)}: {safe_text(reason)}")


def print_template_bias(console: Console, probe: FairnessResult, score: str) -> None:
    """``xai bias eec``: per axis, the mean scores, difference and p-values, then the largest template gaps."""
    console.print(f"Template bias of [bold]{safe_text(probe.model)}[/] ({safe_text(probe.dataset)}); score: "
                  f"{safe_text(score)} of {safe_text(probe.positive_class)}")
    for table in probe.tables:
        a, b = table.groups
        view = Table(title=safe_text(f"{table.feature}: {a} vs {b}"), title_justify="left", show_header=False)
        view.add_column("measure")
        view.add_column("value", justify="right")
        mean = table.by_group["mean_score"]
        overall = table.overall
        rows = [(f"mean score, {a}", f"{mean[a]:.4g}"), (f"mean score, {b}", f"{mean[b]:.4g}"),
                (f"mean difference ({a} - {b})", f"{overall['mean_difference']:+.4g}"),
                ("Wilcoxon signed-rank p", f"{overall['wilcoxon_p']:.3g}"),
                ("paired t-test p", f"{overall['ttest_p']:.3g}"),
                ("largest template gap", f"{table.disparities['max_template_gap']:.4g}"),
                ("flagged", "[red]yes[/]" if overall["flagged"] else "no")]
        for name, value in rows:
            view.add_row(safe_text(name), value)
        console.print(view)
        gaps = Table(title=safe_text(f"largest gaps ({a} - {b})"), title_justify="left", show_header=False)
        gaps.add_column("template")
        gaps.add_column("gap", justify="right")
        for frame, gap in probe.rankings.get(table.feature, {}).items():
            gaps.add_row(safe_text(frame), f"{gap:+.4g}")
        console.print(gaps)


def print_seat(console: Console, result: SeatResult) -> None:
    """``xai bias seat``: the templates, the WEAT tables over sentences, and the words the tokenizer cannot spell."""
    console.print(f"SEAT on [bold]{safe_text(result.model)}[/]: templates "
                  + ", ".join(safe_text(repr(t)) for t in result.templates))
    print_weat(console, result.weat)
    for name, missing in result.missing_words.items():
        lost = "; ".join(f"{key}: {', '.join(m)}" for key, m in zip(_SETS, missing, strict=True) if m)
        console.print(f"{safe_text(name)}: words the tokenizer cannot spell: {safe_text(lost) if lost else 'none'}")


# --- xai rollout --------------------------------------------------------------------------------------------


def print_rollout(console: Console, explanation: AttributionResult, mode: str, model_name: str, head_fusion: str,
                  discard_ratio: float) -> None:
    """Image models: each sample's CLS-to-patch relevance and top pixel; image + question models: the shares."""
    if explanation.token_attributions is not None and explanation.image_channels:
        console.print(_multimodal_table(explanation, f"attention {mode} on {model_name} "
                                                     f"(heads: {head_fusion}, discard {discard_ratio:g})"))
        return
    table = Table(title=safe_text(f"attention {mode} on {model_name} (heads: {head_fusion}, "
                                  f"discard {discard_ratio:g})"),
                  caption="CLS-to-patch relevance; top pixel (row, col) of the most relevant patch")
    for column in ("sample", "label", "predicted", "target", "sum", "max", "top (row, col)"):
        table.add_column(column, justify="right")
    names = explanation.class_names
    for i, attr in enumerate(explanation.attributions):
        plane = attr[0]  # (H, W): the relevance is the same on every channel
        row, col = divmod(int(plane.argmax()), plane.shape[1])
        table.add_row(str(i), safe_text(names[explanation.labels[i]]), safe_text(names[explanation.predictions[i]]),
                      safe_text(names[explanation.targets[i]]), f"{plane.sum():.4f}", f"{plane.max():.4f}",
                      f"({row}, {col})")
    console.print(table)


def _multimodal_table(explanation: AttributionResult, title: str) -> Table:
    """Packed image + question: the CLS's relevance on the image and on each question word."""
    table = Table(title=safe_text(title), caption="CLS-to-token relevance: image = sum over the patches, "
                                               "question = sum over the words, share = question / both")
    for column in ("#", "label", "pred", "image", "question", "share", "question words (relevance)"):
        table.add_column(column, justify="left" if column.startswith("question words") else "right")
    token_attributions = explanation.token_attributions
    assert token_attributions is not None  # the caller only passes packed image + question results
    c = explanation.image_channels
    for i, tokens in enumerate(explanation.tokens):
        words = token_attributions[i, :len(tokens)]
        share = explanation.question_share[i] if explanation.question_share is not None else float("nan")
        table.add_row(str(i), safe_text(explanation.name_of("label", i)),
                      safe_text(explanation.name_of("prediction", i)),
                      f"{explanation.attributions[i, :c].sum():.3f}", f"{words.sum():.3f}", f"{share:.2f}",
                      safe_text(" ".join(f"{t}({v:.3f})" for t, v in zip(tokens, words, strict=True))))
    return table


def print_token_relevance(console: Console, result: TokenRelevance) -> None:
    """Text models: one table per sentence, each token with its relevance and a bar."""
    options = result.options
    for i, (text, explained) in enumerate(zip(result.texts, result.explained, strict=True)):
        table = Table(title=safe_text(f"attention {options['mode']} on {result.model}: {text}"), title_justify="left",
                      caption=safe_text(f"{explained}; heads: {options['head_fusion']}, "
                                     f"discard {options['discard_ratio']:g}"))
        table.add_column("#", justify="right")
        table.add_column("token")
        table.add_column("relevance", justify="right")
        table.add_column("")
        top = max(result.relevance[i], default=0.0) or 1.0
        for j, (token, value) in enumerate(zip(result.tokens[i], result.relevance[i], strict=True)):
            table.add_row(str(j), safe_text(token), f"{value:.4f}", "█" * max(0, round(20 * value / top)))
        console.print(table)


# --- xai daam -----------------------------------------------------------------------------------------------


def print_daam(console: Console, result: DaamResult) -> None:
    """The metrics of one DAAM run (class, samples, steps, guidance in the caption)."""
    table = Table(title=safe_text(f"daam: class {result.class_name} of {result.model}"),
                  caption=f"{len(result.images)} samples, {result.steps} steps, guidance {result.guidance:g}, "
                          f"{result.provenance.wall_seconds:.2f} s")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics().items():
        table.add_row(safe_text(name), f"{value:.4g}")
    console.print(table)


# --- xai dream ----------------------------------------------------------------------------------------------


def print_dream(console: Console, result: DreamResult) -> None:
    """The metrics of one dream, the test images that excite the unit most, and the notes."""
    table = Table(title=safe_text(f"dream: {result.unit} of {result.model}"),
                  caption=safe_text(f"{result.param}, {len(result.trace)} steps, "
                                    f"{result.provenance.wall_seconds:.2f} s"))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics().items():
        table.add_row(safe_text(name), f"{value:.4g}")
    for idx, value in zip(result.top_indices, result.top_values, strict=True):
        table.add_row(f"test image #{int(idx)}", f"{float(value):.4g}")
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {safe_text(note)}")


# --- xai invert ---------------------------------------------------------------------------------------------


def print_inversion(console: Console, result: InversionResult | InversionGallery, model_name: str,
                    steps: int) -> None:
    """The metrics of an inversion (or a gallery of them) and their notes."""
    from xai.explain.inversion import InversionGallery  # at call time: the module imports torch

    results = result.results if isinstance(result, InversionGallery) else (result,)
    table = Table(title=safe_text(f"invert: {model_name}"),
                  caption=f"{steps} steps, {sum(r.provenance.wall_seconds for r in results):.2f} s")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics().items():
        table.add_row(safe_text(name), f"{value:.4g}")
    console.print(table)
    for r in results:
        for note in r.notes:
            console.print(f"[yellow]note:[/] {safe_text(note)}")


# --- xai project --------------------------------------------------------------------------------------------


def print_projection(console: Console, result: ProjectionResult) -> None:
    """Silhouette per grouping column, and the variance the PCA components explain."""
    table = Table(title=safe_text(f"{result.method} of {result.model} · {result.layer}"),
                  caption=f"{len(result.coords)} samples x {result.features} activations, "
                          f"trustworthiness {result.trust:.3f}, "
                          f"{result.provenance.wall_seconds:.2f} s")
    table.add_column("coloured by")
    table.add_column("silhouette", justify="right")
    for column, score in result.separation.items():
        table.add_row(safe_text(column), f"{score:.3f}" if score == score else "-")
    console.print(table)
    if result.explained_variance:
        console.print(f"  PCA components explain {100 * sum(result.explained_variance):.1f}% of the variance")


# --- xai sanity ---------------------------------------------------------------------------------------------


def print_sanity(console: Console, result: SanityResult, method: str, seed: int) -> None:
    """The sanity checks against their pass conditions, then the verdict."""
    table = Table(title=safe_text(f"sanity checks: {method} on {result.model}"),
                  caption=f"{result.samples} samples · seed {seed}")
    for column in ("check", "measured", "passes when", "result"):
        table.add_column(column)
    checks = result.verdict.checks
    final = result.randomisation[-1]
    table.add_row("randomisation (Spearman, all layers random)", f"{final.spearman:.3f}", "<= 0.5",
                  "pass" if checks["randomisation"] else "[bold red]FAIL[/]")
    for curve in (result.deletion, result.insertion):
        table.add_row(f"{curve.kind} AUC gain over random", f"{curve.gain:+.4f}",
                      f"> 0 (ours {curve.auc:.3f}, random {curve.random_auc:.3f})",
                      "pass" if checks[curve.kind] else "[bold red]FAIL[/]")
    if result.infidelity is not None and result.sensitivity_max is not None:
        table.add_row("infidelity (normalised)", f"{result.infidelity:.4g}", "reported", "-")
        table.add_row("max-sensitivity", f"{result.sensitivity_max:.4g}", "reported", "-")
    else:
        table.add_row("infidelity, max-sensitivity", "n/a", "not defined on token ids", "-")
    console.print(table)
    colour = "green" if result.verdict.trustworthy else "red"
    console.print(f"[bold {colour}]{safe_text(result.verdict)}[/]")
