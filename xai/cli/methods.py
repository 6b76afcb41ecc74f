"""``xai methods``: every explainer and probe with its capabilities and options, generated from the registries."""

from __future__ import annotations

from typing import Annotated

import typer

from xai.cli._common import DataOpt, JsonOpt, TrustPickleOpt, WeightsOpt, ZooDirOpt, print_json, stdout_console
from xai.methods import METHOD_REGISTRIES, list_methods


def methods(
    model: Annotated[str | None, typer.Option(
        "--model", help="Only the methods that apply to this model (zoo name or folder, TorchScript or "
                        "torch.export file, or package.module:factory); the others with their reason.")] = None,
    kind: Annotated[str | None, typer.Option(
        "--kind", help=f"Only methods of this kind: {', '.join(METHOD_REGISTRIES)}.")] = None,
    data: DataOpt = None,
    weights: WeightsOpt = None,
    trust_pickle: TrustPickleOpt = False,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List every method with its kind, capabilities and options, or those that apply to one model."""
    from xai.methods import registries

    registries(kind)  # an unknown kind is one line before any model loads
    handle = None
    if model is not None:
        from xai.zoo import load_model

        # what applies depends on the architecture and task; a zoo entry must be trained (no silent training)
        handle = load_model(model, weights=weights, data=data, trust_pickle=trust_pickle, zoo_dir=zoo_dir)
    rows = list_methods(kind, handle)
    if json_out:
        print_json({"model": handle.name if handle is not None else None, "methods": rows})
        return
    from xai.report.terminal import print_methods

    print_methods(rows, stdout_console(), model=handle.name if handle is not None else None)
