"""``xai fairness``: group metrics, disparities and bootstrap intervals of a model or of a predictions file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from xai._text import safe_text
from xai.audit import AuditSpec, DataSpec, ModelSpec, ProbeSpec
from xai.audit.predictions import prediction_audit
from xai.cli._common import (
    DeviceOpt,
    JsonOpt,
    MethodOptionsOpt,
    OutOpt,
    SeedOpt,
    TrustPickleOpt,
    WeightsOpt,
    ZooDirOpt,
    parse_options,
    print_json,
    run_cli_audit,
    stdout_console,
)
from xai.errors import DataError
from xai.fairness import PROBES, FairnessResult, GroupTable
from xai.fairness.group import MAX_GROUPS, check_options
from xai.fairness.predictions import PredictionTask, audit_predictions, load_predictions
from xai.report.html import write_report

if TYPE_CHECKING:
    from xai.datasets import Split

_PREDICTION_HELP = "Prediction-only audit (no MODEL): "


def fairness(
    sensitive: Annotated[
        list[str] | None, typer.Option("--sensitive", "-s", help="Sensitive column; repeat or comma-separate.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Argument(help="Zoo name or folder, TorchScript or torch.export file, or package.module:factory. "
                            "Leave out to audit a predictions file given with --data."),
    ] = None,
    probe: Annotated[str, typer.Option("--probe", help=f"Probe to run: {', '.join(PROBES.names())} "
                                       "(options and what each applies to: `xai methods --kind probe`).")
                     ] = "group-metrics",
    data: Annotated[
        str | None,
        typer.Option("--data", help="With a MODEL: bundled dataset (default: the model's own). "
                                    "Without: a .csv or .parquet file of labels and predictions."),
    ] = None,
    y_true: Annotated[str | None, typer.Option("--y-true", help=_PREDICTION_HELP + "column of labels.")] = None,
    y_pred: Annotated[str | None, typer.Option(
        "--y-pred", help=_PREDICTION_HELP + "column of predictions (0/1 when binary).")] = None,
    score: Annotated[str | None, typer.Option("--score", help=_PREDICTION_HELP + "column of scores, "
                                                              "predicted positive when >= --threshold.")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Score threshold [default: 0.5].")] = None,
    pos_label: Annotated[str | None, typer.Option("--pos-label", help="Positive label when labels are not 0/1.")
                         ] = None,
    task: Annotated[str, typer.Option("--task", help=_PREDICTION_HELP + "binary, multiclass (any labels) or "
                                                            "regression (numbers).")] = "binary",
    n_boot: Annotated[int, typer.Option(
        "--n-boot", help="Bootstrap resamples for the intervals (0: none; at most 100,000).")] = 1000,
    confidence: Annotated[float, typer.Option("--confidence", help="Nominal coverage of the intervals.")] = 0.95,
    min_group_size: Annotated[int, typer.Option("--min-group-size", help="Warn about groups with fewer rows.")
                              ] = 30,
    max_groups: Annotated[int, typer.Option(
        "--max-groups", help="Most groups a sensitive column (or their intersection) may have.")] = MAX_GROUPS,
    split: Annotated[str, typer.Option("--split", help="train, test or all.")] = "test",
    weights: WeightsOpt = None,
    trust_pickle: TrustPickleOpt = False,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    option: MethodOptionsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Per-group accuracy, selection rate, TPR, FPR, disparities and bootstrap intervals.

    Audit a MODEL on bundled data, or, without a model, the predictions of any system:
    xai fairness --data preds.csv --y-true label --y-pred pred --sensitive sex,race
    """
    columns = [c.strip() for item in sensitive or [] for c in item.split(",") if c.strip()]
    # checked here, before a model is loaded or a file read
    options = check_options(n_boot=n_boot, confidence=confidence, min_group_size=min_group_size,
                            max_groups=max_groups)
    if threshold is not None and not math.isfinite(threshold):
        raise DataError(f"--threshold must be a finite number, got {threshold}")
    prediction_flags = [f for f, v in (("--y-true", y_true), ("--y-pred", y_pred), ("--score", score),
                                       ("--threshold", threshold), ("--pos-label", pos_label),
                                       ("--task", None if task == "binary" else task)) if v is not None]
    if model is None:
        if data is None:
            raise DataError("give a MODEL, or --data FILE.csv|.parquet with --y-true and --y-pred or --score")
        if y_true is None:
            raise DataError("a prediction-only audit needs --y-true COL")
        if threshold is not None and score is None:
            raise DataError("--threshold applies to --score")
        if not columns:
            raise DataError("a prediction-only audit needs --sensitive COLUMN")
        predictions = load_predictions(Path(data), y_true=y_true, y_pred=y_pred, score=score,
                                       threshold=0.5 if threshold is None else threshold,
                                       pos_label=pos_label, sensitive=columns,
                                       task=cast(PredictionTask, task))  # checked there (UnknownNameError)
        verdict = audit_predictions(predictions, seed=seed or 0, **options)
        page = (write_report([prediction_audit(predictions, verdict, slug="fairness-predictions")], out)
                if out is not None else None)
    else:
        if prediction_flags:
            raise DataError(f"{', '.join(prediction_flags)} audit a predictions file: leave out MODEL")
        if not columns and PROBES.get(probe).capabilities.needs_sensitive:
            raise DataError(f"{probe} needs --sensitive COLUMN")
        spec = AuditSpec(
            title=f"{probe} of {model}",
            model=ModelSpec(name=model, weights=str(weights) if weights else None),
            data=DataSpec(name=data, split=cast("Split", split), sensitive=columns),  # pydantic checks it
            explain=[],
            probe=[ProbeSpec(name=probe, sensitive=columns,
                             options={**(options if probe == "group-metrics" else {}),
                                      **parse_options(option)})],
            seed=seed or 0,
        )
        result, page = run_cli_audit(spec, slug=f"fairness-{probe}", device=device, zoo_dir=zoo_dir,
                                     json_out=json_out, out=out, trust_pickle=trust_pickle)
        verdict = result.fairness[0]
    if json_out:
        print_json(verdict.to_dict())
        return
    console = stdout_console()
    _print_verdict(console, verdict)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")


def _print_verdict(console: Console, verdict: FairnessResult) -> None:
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
        console.print(f"  [dim]brackets: {100 * table.confidence:g}% percentile bootstrap intervals, "
                      f"{table.n_boot} resamples[/]")
    for name, value in (*table.disparities.items(), *table.ratios.items()):
        low_high = table.disparity_intervals.get(name)
        bracket = f" [{low_high[0]:.4f}, {low_high[1]:.4f}]" if low_high else ""
        console.print(f"  {safe_text(name.replace('_', ' '))}: [bold]{_fmt(name, value)}[/]{safe_text(bracket)}")
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
