"""``xai fairness``: group metrics, disparities and bootstrap intervals of a model or of a predictions file."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from xai._text import safe_text
from xai.audit import AuditSpec, ModelSpec, ProbeSpec
from xai.cli._common import (
    DeviceOpt,
    IdOpt,
    JsonOpt,
    LabelOpt,
    MethodOptionsOpt,
    OutOpt,
    SeedOpt,
    SideOpt,
    StrictOpt,
    TextOpt,
    TrustPickleOpt,
    WeightsOpt,
    ZooDirOpt,
    data_spec,
    parse_options,
    print_json,
    run_cli_audit,
    stdout_console,
)
from xai.errors import DataError
from xai.fairness import PROBES
from xai.fairness.group import MAX_GROUPS, check_options
from xai.fairness.predictions import PredictionTask, audit_predictions
from xai.fairness.stream import CountTable, load_counts, merge_counts, scan_predictions
from xai.report.terminal_commands import print_verdict

if TYPE_CHECKING:
    from xai.fairness.slices import SliceResult

_PREDICTION_HELP = "Prediction-only audit (no MODEL): "


# imported on use: the report writer and the audit runner import torch, which a counts-only audit never needs
def write_report(audits: list[Any], out: Path) -> Path:
    """``xai.report.html.write_report`` (a report is written as a unit: a killed run leaves the old one whole)."""
    from xai.report.html import write_report as write

    return write(audits, out)


def prediction_audit(data: CountTable, verdict: Any, *, slug: str) -> Any:
    """``xai.audit.predictions.prediction_audit``."""
    from xai.audit.predictions import prediction_audit as wrap

    return wrap(data, verdict, slug=slug)


def _save_target(path: Path) -> Path:
    """Refuse, before any work, a ``--save-counts`` path whose folder is missing or that is a folder."""
    if path.is_dir():
        raise DataError(f"--save-counts {path} is a folder: give a file name")
    if not path.parent.is_dir():
        raise DataError(f"--save-counts: folder {path.parent} does not exist")
    return path


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
        typer.Option("--data", help="With a MODEL: bundled dataset (default: the model's own) or your own data "
                                    "(an image folder, or a .csv/.parquet manifest, feature or text table). "
                                    "Without: a .csv, .parquet or Arrow IPC file, or a folder of .parquet files, "
                                    "of labels and predictions (streamed: memory does not grow with rows)."),
    ] = None,
    label: LabelOpt = None,
    text: TextOpt = None,
    side: SideOpt = None,
    id_column: IdOpt = None,
    strict: StrictOpt = False,
    counts: Annotated[list[Path] | None, typer.Option(
        "--counts", help=_PREDICTION_HELP + "a count table saved with --save-counts; repeat to merge "
                                            "(with --data too). Reports without the rows.")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help=_PREDICTION_HELP + "local (stream in this process) or ray (Ray Data workers count "
                                            "blocks of a .csv/.parquet file or folder; pip install "
                                            "'xai-audit[ray]')")] = "local",
    save_counts: Annotated[Path | None, typer.Option(
        "--save-counts", help=_PREDICTION_HELP + "write the (merged) count table here as JSON, to merge "
                                                 "or re-report later without the rows.")] = None,
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
    min_group_size: Annotated[int, typer.Option(
        "--min-group-size", help="Flag groups with fewer rows and leave them out of disparities.")] = 30,
    max_groups: Annotated[int, typer.Option(
        "--max-groups", help="Most groups a sensitive column (or their intersection) may have.")] = MAX_GROUPS,
    slices: Annotated[bool, typer.Option(
        "--slices", help=_PREDICTION_HELP + "also search every intersection of up to 3 columns (--sensitive and "
                         "--slice-columns) for slices whose error rate departs from the rest (Benjamini-Hochberg "
                         "FDR; tune with --option KEY=VALUE, see `xai methods --kind probe`).")] = False,
    slice_columns: Annotated[list[str] | None, typer.Option(
        "--slice-columns", help=_PREDICTION_HELP + "more columns to slice by with --slices (numbers are cut in "
                                "quantile bins); repeat or comma-separate.")] = None,
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
                                       ("--task", None if task == "binary" else task),
                                       ("--slices", slices or None), ("--slice-columns", slice_columns))
                        if v is not None]
    if engine not in ("local", "ray"):
        raise DataError(f"--engine must be local or ray, got {engine!r}")
    extra_columns = [c.strip() for item in slice_columns or [] for c in item.split(",") if c.strip()]
    if extra_columns and not slices:
        raise DataError("--slice-columns applies with --slices")
    slice_options = None
    if slices and model is None:
        from xai.fairness.slices import SliceDiscovery

        slice_options = SliceDiscovery.parse_options(parse_options(option))  # checked before the file is read
    if model is None:
        if data is None and not counts:
            raise DataError("give a MODEL, or --data FILE.csv|.parquet with --y-true and --y-pred or --score "
                            "(or --counts FILE)")
        if save_counts is not None:
            _save_target(save_counts)
        tables: list[CountTable] = []
        if data is None:
            if prediction_flags or columns:
                raise DataError(f"{', '.join(prediction_flags + ['--sensitive'] * bool(columns))} describe a --data "
                                "file: a --counts table already holds its columns")
        else:
            if y_true is None:
                raise DataError("a prediction-only audit needs --y-true COL")
            if threshold is not None and score is None:
                raise DataError("--threshold applies to --score")
            if not columns:
                raise DataError("a prediction-only audit needs --sensitive COLUMN")
            scan: Callable[..., CountTable] = scan_predictions
            if engine == "ray":
                from xai.fairness._ray import scan_predictions_ray

                scan = scan_predictions_ray
            tables.append(scan(Path(data), y_true=y_true, y_pred=y_pred, score=score,
                               threshold=0.5 if threshold is None else threshold,
                               pos_label=pos_label, sensitive=columns,
                               task=cast(PredictionTask, task),  # checked there (UnknownNameError)
                               max_groups=options["max_groups"]))
        tables.extend(load_counts(path) for path in counts or [])
        table = merge_counts(tables)
        verdict = audit_predictions(table, seed=seed or 0, **options)
        if save_counts is not None:
            table.save(save_counts)
        audit = prediction_audit(table, verdict, slug="fairness-predictions")
        found: SliceResult | None = None
        if slice_options is not None and data is not None:
            # slices cross columns the count table does not hold: two more streamed passes over the file
            from xai.fairness.slice_scan import scan_slices

            found = scan_slices(Path(data), y_true=cast(str, y_true), y_pred=y_pred, score=score,
                                threshold=0.5 if threshold is None else threshold, pos_label=pos_label,
                                columns=[*columns, *(c for c in extra_columns or () if c not in columns)],
                                task=cast(PredictionTask, task), options=slice_options, seed=seed or 0)
            audit = dataclasses.replace(audit, results=(*audit.results, found))
        page = write_report([audit], out) if out is not None else None
    else:
        if counts or save_counts is not None or engine != "local":
            raise DataError("--counts, --save-counts and --engine audit predictions: leave out MODEL")
        if slices:
            raise DataError("--slices searches a predictions file; with a MODEL use --probe slices "
                            "(--option columns=... for the input columns)")
        if prediction_flags:
            raise DataError(f"{', '.join(prediction_flags)} audit a predictions file: leave out MODEL")
        if not columns and PROBES.get(probe).capabilities.needs_sensitive:
            raise DataError(f"{probe} needs --sensitive COLUMN")
        spec = AuditSpec(
            title=f"{probe} of {model}",
            model=ModelSpec(name=model, weights=str(weights) if weights else None),
            data=data_spec(data, sensitive=columns, label=label, text=text, side=side, id_column=id_column,
                           strict=strict, split=split),  # pydantic checks the split
            explain=[],
            probe=[ProbeSpec(name=probe, sensitive=columns,
                             options={**(options if probe == "group-metrics" else {}),
                                      **parse_options(option)})],
            seed=seed or 0,
        )
        result, page = run_cli_audit(spec, slug=f"fairness-{probe}", device=device, zoo_dir=zoo_dir,
                                     json_out=json_out, out=out, trust_pickle=trust_pickle)
        verdict = cast(Any, result.results[0])  # the one probe this command runs (a SliceResult for slices)
        found = cast("SliceResult", verdict) if probe == "slices" else None
    if json_out:
        extra = {} if found is None or found is verdict else {"slices": found.to_dict()}
        print_json({**verdict.to_dict(), **extra})
        return
    console = stdout_console()
    if found is not verdict:
        print_verdict(console, verdict)
    if found is not None:
        from xai.report.slices import print_slices

        print_slices(console, found)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")
