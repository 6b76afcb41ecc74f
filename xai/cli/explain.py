"""``xai explain``: attribute a model's decisions on bundled data."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from xai._text import safe_text
from xai.audit import AuditSpec, DataSpec, ExplainSpec, ModelSpec
from xai.cli._common import (
    DataOpt,
    DeviceOpt,
    JsonOpt,
    LayerOpt,
    MethodOptionsOpt,
    ModelArg,
    OutOpt,
    SeedOpt,
    TargetOpt,
    TrustPickleOpt,
    WeightsOpt,
    ZooDirOpt,
    parse_options,
    parse_target,
    print_json,
    run_cli_audit,
    stdout_console,
    with_layer,
)
from xai.explain import EXPLAINERS, AttributionResult


def explain(
    model: ModelArg,
    method: Annotated[str, typer.Option("--method", "-m", help=f"Attribution method: {', '.join(EXPLAINERS.names())} "
                                        "(options and what each applies to: `xai methods --kind explain`).")],
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="How many samples to explain.")] = 8,
    target: TargetOpt = "predicted",
    option: MethodOptionsOpt = None,
    layer: LayerOpt = None,
    data: DataOpt = None,
    weights: WeightsOpt = None,
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
        model=ModelSpec(name=model, weights=str(weights) if weights else None),
        data=DataSpec(name=data),
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
    if explanation.column_attributions is not None:
        table = Table(title="mean |attribution| per column",
                      caption=safe_text(f"{method} on {result.model.name}, {len(explanation.labels)} rows"))
        table.add_column("column")
        table.add_column("mean |attr|", justify="right")
        for name, value in explanation.column_importance().items():
            table.add_row(safe_text(name), f"{value:.4f}")
    elif explanation.tokens:
        table = _token_table(explanation, safe_text(f"{method} on {result.model.name}"))
    else:
        table = Table(title=safe_text(f"{method} on {result.model.name}"))
        for column in ("sample", "label", "predicted", "target", "sum", "max |attr|"):
            table.add_column(column, justify="right")
        for i, attr in enumerate(explanation.attributions):
            names = (safe_text(explanation.name_of(kind, i)) for kind in ("label", "prediction", "target"))
            table.add_row(str(i), *names, f"{attr.sum():.4f}",
                          f"{abs(attr).max():.4f}")
    console.print(table)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")


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
