"""``xai rollout``: attention rollout, attention flow or gradient-weighted rollout of a model."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from xai.audit import AuditSpec, DataSpec, ExplainSpec, ModelSpec
from xai.cli._common import (
    DataOpt,
    DeviceOpt,
    JsonOpt,
    ModelArg,
    OutOpt,
    SeedOpt,
    TargetOpt,
    TrustPickleOpt,
    WeightsOpt,
    ZooDirOpt,
    parse_target,
    print_json,
    run_cli_audit,
    stdout_console,
)
from xai.errors import DataError, NotApplicableError
from xai.explain.rollout import HEAD_FUSIONS, MODES

METHOD = "attention-rollout"


def rollout(
    model: ModelArg,
    samples: Annotated[int | None, typer.Option("--samples", "-n", min=1,
                                                help="How many samples to explain [default: 8].")] = None,
    text: Annotated[str | None, typer.Option("--text", help="Explain this sentence (text models).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="rollout, flow (slow; small T) or grad (Chefer 2021).")]
    = "rollout",
    head_fusion: Annotated[str, typer.Option("--head-fusion", help="Fuse heads by mean, max or min.")] = "mean",
    discard_ratio: Annotated[float, typer.Option("--discard-ratio",
                                                 help="Share of the lowest attentions zeroed per layer, [0, 1).")]
    = 0.0,
    target: TargetOpt = "predicted",
    data: DataOpt = None,
    weights: WeightsOpt = None,
    trust_pickle: TrustPickleOpt = False,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Which input patches the CLS token draws on, through every attention layer."""
    if text is not None and samples is not None:
        raise DataError("give --samples or --text, not both")
    if text is not None:
        raise NotApplicableError("--text needs a text model; none in the zoo yet (use --samples on an image model)")
    if mode not in MODES:
        raise DataError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if head_fusion not in HEAD_FUSIONS:
        raise DataError(f"--head-fusion must be one of {', '.join(HEAD_FUSIONS)}, got {head_fusion!r}")
    options = {"mode": mode, "head_fusion": head_fusion, "discard_ratio": discard_ratio}
    spec = AuditSpec(
        title=f"attention {mode} on {model}",
        model=ModelSpec(name=model, weights=str(weights) if weights else None, trust_pickle=trust_pickle),
        data=DataSpec(name=data),
        explain=[ExplainSpec(method=METHOD, samples=samples or 8, target=parse_target(target), options=options)],
        probe=[],
        seed=seed or 0,
    )
    result, page = run_cli_audit(spec, slug=f"rollout-{mode}", device=device, zoo_dir=zoo_dir,
                                 json_out=json_out, out=out)
    explanation = result.explanations[0]
    if json_out:
        print_json(explanation.to_dict())
        return
    table = Table(title=f"attention {mode} on {result.model.name} (heads: {head_fusion}, "
                        f"discard {discard_ratio:g})",
                  caption="CLS-to-patch relevance; top pixel (row, col) of the most relevant patch")
    for column in ("sample", "label", "predicted", "target", "sum", "max", "top (row, col)"):
        table.add_column(column, justify="right")
    names = explanation.class_names
    for i, attr in enumerate(explanation.attributions):
        plane = attr[0]  # (H, W): the relevance is the same on every channel
        row, col = divmod(int(plane.argmax()), plane.shape[1])
        table.add_row(str(i), names[explanation.labels[i]], names[explanation.predictions[i]],
                      names[explanation.targets[i]], f"{plane.sum():.4f}", f"{plane.max():.4f}",
                      f"({row}, {col})")
    console = stdout_console()
    console.print(table)
    if page is not None:
        console.print(f"Report: [bold]{page}[/]")
