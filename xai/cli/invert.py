"""``xai invert``: feature inversion, style reconstruction and style transfer for an image model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
from xai.explain._choices import PARAMETRISATIONS

if TYPE_CHECKING:
    from xai.explain.inversion import InversionGallery, InversionResult


def invert_command(
    model: ModelArg,
    layer: Annotated[list[str] | None, typer.Option(
        "--layer", "-l", help="Layer to invert (repeat for several; the content layer with --style).")] = None,
    all_layers: Annotated[bool, typer.Option("--all-layers", help="Invert from each of the model's layers.")] = False,
    sample: Annotated[int | None, typer.Option("--sample", help="Test-split sample to invert (default 0).")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="PNG/JPEG to invert (the content image).")] = None,
    style: Annotated[Path | None, typer.Option("--style", help="Style image: Gatys style transfer.")] = None,
    style_layer: Annotated[list[str] | None, typer.Option(
        "--style-layer", help="Gram-matrix layers for --style (default: the model's layers).")] = None,
    gram: Annotated[bool, typer.Option("--gram", help="Texture only: match the Gram matrices of --layer.")] = False,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimisation steps.")] = 300,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0, help="Adam step (0.05; 0.02 with --style).")] = None,
    tv: Annotated[float | None, typer.Option(
        "--tv", min=0.0, help="Total-variation prior weight (0.02 inverting features, else 0).")] = None,
    style_weight: Annotated[float, typer.Option("--style-weight", min=0.0, help="Style vs content weight.")] = 10.0,
    param: Annotated[str, typer.Option("--param", help=f"Parametrisation: {', '.join(PARAMETRISATIONS)}.")] = "pixel",
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Reconstruct an input from a layer's features, a texture from Gram matrices, or transfer a style."""
    from xai._device import resolve_device
    from xai.explain.inversion import Invert, invert_layers, style_reconstruction, style_transfer
    from xai.zoo import load_model

    if sample is not None and image is not None:
        raise DataError("give --sample or --image, not both")
    if param not in PARAMETRISATIONS:
        raise DataError(f"--param must be one of {', '.join(PARAMETRISATIONS)}, got {param!r}")
    dev = resolve_device(check_device(device))
    handle = load_model(model, zoo_dir=zoo_dir, device=str(dev.type), train_missing=True,
                        console=stderr_console(enabled=not json_out)).to(dev)
    Invert.check_applies(handle)
    layers = list(handle.layers) if all_layers else list(layer or [])
    if not layers:
        raise DataError(f"--layer (or --all-layers) is required; {handle.name}'s layers worth explaining: "
                        f"{', '.join(handle.layers) or 'none named'}")
    source = image if image is not None else sample
    run_seed = seed or 0
    result: InversionResult | InversionGallery
    if style is not None:
        if gram:
            raise DataError("--gram reconstructs the style of one image; --style transfers it: pick one")
        result = style_transfer(handle, layers[0], style_layer or None, content=source, style=style,
                                style_weight=style_weight, lr=lr or 0.02, tv=tv or 0.0,
                                steps=steps, param=param, seed=run_seed)
    elif gram:
        result = style_reconstruction(handle, layers, image=source, lr=lr or 0.05, tv=tv or 0.0,
                                      steps=steps, param=param, seed=run_seed)
    else:
        gallery = invert_layers(handle, layers, image=source, lr=lr or 0.05, tv=0.02 if tv is None else tv,
                                steps=steps, param=param, seed=run_seed)
        result = gallery if len(layers) > 1 else gallery.results[0]
    page = _write_page(handle, result, out) if out is not None else None
    if json_out:
        print_json(result.to_dict())
        return
    from xai.report.terminal_commands import print_inversion

    console = stdout_console()
    print_inversion(console, result, handle.name, steps)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")


def _write_page(handle: Any, result: InversionResult | InversionGallery, out: Path) -> Path:
    """The run as an audit page (verdict, card, provenance, listed in the index), with its images as PNGs beside it."""
    from xai._io import atomic_write_bytes
    from xai.audit.command import command_audit
    from xai.audit.result import DataSummary
    from xai.report.html import write_report
    from xai.report.inversion import KIND_TITLES, inversion_pngs, inversion_slug

    results = list(getattr(result, "results", None) or [result])
    first = results[0]
    transfer = first.kind == "transfer"
    data = DataSummary(name=f"{first.target_name} + style {first.style_name}" if transfer else first.target_name,
                       split="", rows=2 if transfer else 1,
                       sha256=first.provenance.data_sha256, sensitive=())
    kind = KIND_TITLES.get(first.kind, "Inversion") if len({r.kind for r in results}) == 1 else "Inversion"
    audit = command_audit(handle, results, slug=inversion_slug(result), title=f"{kind}: {handle.name}", data=data)
    for name, png in inversion_pngs(results, audit.slug).items():  # before the page: the page is written last
        atomic_write_bytes(out / name, png)
    write_report([audit], out)
    return out / f"{audit.slug}.html"
