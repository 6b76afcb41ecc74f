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
    if out is not None:
        from xai.report.daam import write_daam_report  # jinja2 only when a page is asked for

        page = write_daam_report(result, out)
    if json_out:
        print_json(result.to_dict())
        return
    from xai.report.terminal_commands import print_daam

    console = stdout_console()
    print_daam(console, result)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")
