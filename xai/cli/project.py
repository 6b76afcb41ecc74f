"""``xai project``: PCA or t-SNE of one layer's activations, coloured by class and groups."""

from __future__ import annotations

from typing import Annotated, cast, get_args

import typer

from xai._text import safe_text
from xai.cli._common import (
    DeviceOpt,
    JsonOpt,
    ModelArg,
    OutOpt,
    SeedOpt,
    ZooDirOpt,
    check_device,
    print_json,
    stderr_console,
    stdout_console,
)
from xai.errors import DataError
from xai.explain._choices import PROJECTION_METHODS as METHODS


def project_command(
    model: ModelArg,
    layer: Annotated[str | None, typer.Option(
        "--layer", "-l", help="Layer whose activations to map [default: the model's last named layer].")] = None,
    method: Annotated[str, typer.Option("--method", "-m", help=f"One of {', '.join(METHODS)}.")] = "pca",
    samples: Annotated[int, typer.Option("--samples", "-n", min=5, help="Seeded rows to map.")] = 500,
    color: Annotated[list[str] | None, typer.Option("--color", "-c", help="Grouping column to colour by; "
                                                                          "repeat [default: all].")] = None,
    data: Annotated[str | None, typer.Option("--data", help="Bundled dataset [default: the model's own].")] = None,
    split: Annotated[str, typer.Option("--split", help="train, test or all.")] = "test",
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Map a layer's activations to 2-D; silhouette scores say which columns it separates."""
    from xai._device import resolve_device
    from xai.datasets import Split, load_dataset
    from xai.explain.projection import Projection
    from xai.zoo import check_model_on_data, load_model

    if split not in get_args(Split):  # not every loader checks its split (digits, photos accept any)
        raise DataError(f"--split must be train, test or all, got {split!r}")
    options = Projection.parse_options(
        layer=layer, method=method, samples=samples,
        color_by=[c.strip() for item in color for c in item.split(",")] if color else None)
    dev = resolve_device(check_device(device))
    handle = load_model(model, zoo_dir=zoo_dir, data=data, device=str(dev.type), train_missing=True,
                        seed=seed or 0, console=stderr_console(enabled=not json_out)).to(dev)
    name = data or handle.dataset
    if name is None:
        raise DataError(f"say which data to map with --data; {handle.name} names no dataset")
    dataset = load_dataset(name, cast("Split", split))  # checked above
    check_model_on_data(handle, dataset)
    Projection.check_applies(handle)
    result = Projection.run(handle, dataset, options, seed=seed or 0)
    page = None
    if out is not None:  # an audit page of one map: verdict, card, provenance, listed in the index
        from xai.audit.command import command_audit, data_summary
        from xai.report.html import write_report
        from xai.report.projection import projection_slug

        audit = command_audit(handle, [result], slug=projection_slug(result),
                              title=f"Representation map: {result.layer} of {handle.name}", data=data_summary(dataset))
        write_report([audit], out)
        page = out / f"{audit.slug}.html"
    if json_out:
        print_json(result.to_dict())
        return
    from xai.report.terminal_commands import print_projection

    console = stdout_console()
    print_projection(console, result)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")
