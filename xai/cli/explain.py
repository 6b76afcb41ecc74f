"""``xai explain``: attribute a model's decisions on bundled data or your own."""

from __future__ import annotations

from typing import Annotated

import typer

from xai._text import safe_text
from xai.audit import AuditSpec, ExplainSpec, ModelSpec
from xai.cli._common import (
    ClassesOpt,
    DeviceOpt,
    IdOpt,
    JsonOpt,
    LabelOpt,
    LayerOpt,
    MethodOptionsOpt,
    ModelArg,
    OutOpt,
    OwnDataOpt,
    SeedOpt,
    SideOpt,
    StrictOpt,
    TargetOpt,
    TextOpt,
    TrustPickleOpt,
    WeightsOpt,
    ZooDirOpt,
    data_spec,
    parse_classes,
    parse_options,
    parse_target,
    print_json,
    run_cli_audit,
    stdout_console,
    with_layer,
)
from xai.explain import EXPLAINERS
from xai.report.terminal_commands import print_explanation


def explain(
    model: ModelArg,
    method: Annotated[str, typer.Option("--method", "-m", help=f"Attribution method: {', '.join(EXPLAINERS.names())} "
                                        "(options and what each applies to: `xai methods --kind explain`).")],
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="How many samples to explain.")] = 8,
    target: TargetOpt = "predicted",
    option: MethodOptionsOpt = None,
    layer: LayerOpt = None,
    data: OwnDataOpt = None,
    label: LabelOpt = None,
    text: TextOpt = None,
    side: SideOpt = None,
    id_column: IdOpt = None,
    strict: StrictOpt = False,
    weights: WeightsOpt = None,
    classes: ClassesOpt = None,
    trust_pickle: TrustPickleOpt = False,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Explain a model's outputs with one attribution method."""
    EXPLAINERS.get(method)  # an unknown method lists the known ones
    options = with_layer(parse_options(option), layer)
    spec = AuditSpec(
        title=f"{method} on {model}",
        model=ModelSpec(name=model, weights=str(weights) if weights else None, classes=parse_classes(classes)),
        data=data_spec(data, label=label, text=text, side=side, id_column=id_column, strict=strict),
        explain=[ExplainSpec(method=method, samples=samples, target=parse_target(target),
                             options=options)],
        probe=[],
        seed=seed or 0,
    )
    result, page = run_cli_audit(spec, slug=f"explain-{method}", device=device, zoo_dir=zoo_dir,
                                 json_out=json_out, out=out, trust_pickle=trust_pickle)
    explanation = result.explanations[0]
    if json_out:
        print_json(explanation.to_dict())
        return
    console = stdout_console()
    print_explanation(console, explanation, method, result.model.name)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")
