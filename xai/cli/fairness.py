"""``xai fairness``: group metrics, disparities and bootstrap intervals of a model or of a predictions file."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

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
from xai.fairness import PROBES
from xai.fairness.group import MAX_GROUPS, check_options
from xai.fairness.predictions import PredictionTask, audit_predictions, load_predictions
from xai.report.html import write_report
from xai.report.terminal_commands import print_verdict

if TYPE_CHECKING:
    from xai.datasets import Split
    from xai.fairness.slices import SliceResult

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
    extra_columns = [c.strip() for item in slice_columns or [] for c in item.split(",") if c.strip()]
    if extra_columns and not slices:
        raise DataError("--slice-columns applies with --slices")
    slice_options = None
    if slices and model is None:
        from xai.fairness.slices import SliceDiscovery

        slice_options = SliceDiscovery.parse_options(parse_options(option))  # checked before the file is read
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
        found: SliceResult | None = None
        audit = prediction_audit(predictions, verdict, slug="fairness-predictions")
        if slice_options is not None:
            from xai.fairness.slices import slices_of_predictions

            found = slices_of_predictions(predictions, columns=extra_columns, options=slice_options, seed=seed or 0)
            # a probe result beside the group tables, as the runner adds every probe's (typed loosely there too)
            audit = dataclasses.replace(audit, fairness=(*audit.fairness, cast(Any, found)))
        page = write_report([audit], out) if out is not None else None
    else:
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
