"""``xai daam``: per-token cross-attention heat maps (DAAM) of a diffusion model's samples."""

from __future__ import annotations

from typing import Annotated

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


def daam_command(
    model: ModelArg,
    class_index: Annotated[int, typer.Option("--class", "-c", help="The prompted class (index).")] = 0,
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="Images to generate.")] = 4,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="DDIM steps [default: the model's].")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", min=0.0,
                                                   help="Classifier-free guidance scale [default: the model's].")]
    = None,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate images of one class and map each prompt token's cross-attention onto them (DAAM)."""
    from xai._device import resolve_device
    from xai.explain.daam import Daam
    from xai.zoo import load_model

    options = Daam.parse_options(class_index=class_index, samples=samples, steps=steps, guidance=guidance)
    dev = resolve_device(check_device(device))
    handle = load_model(model, zoo_dir=zoo_dir, device=str(dev.type), train_missing=True,
                        console=stderr_console(enabled=not json_out)).to(dev)
    Daam.check_applies(handle)
    result = Daam.run(handle, None, options, seed=seed or 0)
    page = None
    if out is not None:  # an audit page of one prompt: verdict, card, provenance, listed in the index
        from xai.audit.command import command_audit
        from xai.audit.result import DataSummary
        from xai.report.daam import daam_slug
        from xai.report.html import write_report

        generated = DataSummary(name=f"images generated for class {result.class_name}", split="",
                                rows=len(result.images),
                                sha256=result.provenance.data_sha256, sensitive=())
        audit = command_audit(handle, [result], slug=daam_slug(result), data=generated,
                              title=f"Cross-attention maps (DAAM): class {result.class_name} of {handle.name}")
        write_report([audit], out)
        page = out / f"{audit.slug}.html"
    if json_out:
        print_json(result.to_dict())
        return
    from xai.report.terminal_commands import print_daam

    console = stdout_console()
    print_daam(console, result)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")
