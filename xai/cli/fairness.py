"""``xai fairness``: group metrics and disparities of a model on bundled data."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from xai._device import resolve_device
from xai.audit import AuditSpec, DataSpec, ModelSpec, ProbeSpec, run_audit
from xai.cli._common import (
    DataOpt,
    DeviceOpt,
    JsonOpt,
    ModelArg,
    OutOpt,
    SeedOpt,
    TrustPickleOpt,
    WeightsOpt,
    ZooDirOpt,
    check_device,
    print_json,
    stderr_console,
    stdout_console,
)
from xai.fairness import PROBES
from xai.report.html import write_report


def fairness(
    model: ModelArg,
    sensitive: Annotated[
        list[str], typer.Option("--sensitive", "-s", help="Sensitive column; repeat or comma-separate.")
    ],
    probe: Annotated[str, typer.Option("--probe", help="Probe to run.")] = "group-metrics",
    data: DataOpt = None,
    split: Annotated[str, typer.Option("--split", help="train, test or all.")] = "test",
    weights: WeightsOpt = None,
    trust_pickle: TrustPickleOpt = False,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Per-group accuracy, selection rate, TPR, FPR and disparities by sensitive feature."""
    PROBES.get(probe)
    columns = [c.strip() for item in sensitive for c in item.split(",") if c.strip()]
    spec = AuditSpec(
        title=f"{probe} of {model}",
        model=ModelSpec(name=model, weights=str(weights) if weights else None,
                        trust_pickle=trust_pickle),
        data=DataSpec(name=data, split=split, sensitive=columns),
        explain=[],
        probe=[ProbeSpec(name=probe, sensitive=columns)],
        seed=seed or 0,
    )
    result = run_audit(spec, slug=f"fairness-{probe}", spec_path="cli",
                       device=resolve_device(check_device(device)), zoo_dir=zoo_dir,
                       console=stderr_console(enabled=not json_out))
    verdict = result.fairness[0]
    page = write_report([result], out) if out is not None else None
    if json_out:
        print_json(verdict.to_dict())
        return
    console = stdout_console()
    for table in verdict.tables:
        view = Table(title=f"{probe} of {result.model.name} by {table.feature}")
        view.add_column(table.feature)
        for metric in table.by_group:
            view.add_column(metric.replace("_", " "), justify="right")
        for group in table.groups:
            view.add_row(group, *(_fmt(m, table.by_group[m][group]) for m in table.by_group))
        view.add_row("[bold]overall[/]", *(_fmt(m, table.overall.get(m)) for m in table.by_group))
        console.print(view)
        for name, value in table.overall.items():
            if name not in table.by_group:
                console.print(f"  {name.replace('_', ' ')}: [bold]{_fmt(name, value)}[/]")
        for name, score in list(verdict.rankings.get(table.feature, {}).items())[:5]:
            console.print(f"  carries {table.feature}: {name} (NMI {score:.3f})")
        for name, value in table.disparities.items():
            console.print(f"  {name.replace('_', ' ')}: [bold]{value:.4f}[/]")
    if page is not None:
        console.print(f"Report: [bold]{page}[/]")


def _fmt(metric: str, value: float | None) -> str:
    if value is None or value != value:  # missing or NaN
        return "-"
    return f"{int(value):,}" if metric == "count" else f"{value:.4f}"
