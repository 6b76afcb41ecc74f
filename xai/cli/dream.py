"""``xai dream``: activation maximisation (DeepDream) for one unit of an image model."""

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
from xai.errors import DataError, NotApplicableError
from xai.explain._choices import OBJECTIVES, PARAMETRISATIONS


def dream_command(
    model: ModelArg,
    layer: Annotated[str | None, typer.Option("--layer", "-l", help="Layer to excite (not for class).")] = None,
    channel: Annotated[int, typer.Option("--channel", "-c", help="Channel, or class index for class.")] = 0,
    objective: Annotated[str, typer.Option("--objective", help=f"One of {', '.join(OBJECTIVES)}.")] = "channel",
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimisation steps per octave.")] = 128,
    octaves: Annotated[int, typer.Option("--octaves", min=1, help="Scales, coarse to fine.")] = 1,
    param: Annotated[str, typer.Option("--param", help=f"Parametrisation: {', '.join(PARAMETRISATIONS)}.")] = "pixel",
    from_image: Annotated[int | None, typer.Option("--from-image", help="Start from this test image.")] = None,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Adam learning rate.")] = 0.05,
    tv: Annotated[float, typer.Option("--tv", min=0.0, help="Total-variation penalty weight.")] = 0.0,
    l2: Annotated[float, typer.Option("--l2", min=0.0, help="L2 penalty weight.")] = 0.0,
    top_k: Annotated[int, typer.Option("--top-k", min=0, help="Test images that excite the unit most.")] = 8,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Optimise an input that maximises one channel, neuron, layer or class of an image model."""
    from xai._device import resolve_device
    from xai._method import Options
    from xai.explain.dream import Dream
    from xai.zoo import load_model

    values = {"objective": objective, "channel": channel, "steps": steps, "octaves": octaves, "param": param,
              "from_image": from_image, "lr": lr, "tv": tv, "l2": l2, "top_k": top_k}
    options: Options | None = None
    if layer is not None or objective == "class" or objective not in OBJECTIVES:
        options = Dream.parse_options(values, layer=layer)  # bad values fail before the model loads
    dev = resolve_device(check_device(device))
    handle = load_model(model, zoo_dir=zoo_dir, device=str(dev.type), train_missing=True,
                        console=stderr_console(enabled=not json_out)).to(dev)
    reason = Dream.why_not(handle, objective)
    if reason:
        raise NotApplicableError(f"dream does not apply to {handle.name}: {reason}")
    if options is None:  # the one rule that needs the model: name the layers it could excite
        raise DataError(f"--layer is required for --objective {objective}; {handle.name}'s layers "
                        f"worth explaining: {', '.join(handle.layers) or 'none named'}")
    if handle.dataset is None:
        raise DataError(f"{handle.name} names no dataset: dream starts from and compares with its test images")
    from xai.datasets import load_dataset

    data = load_dataset(handle.dataset, "test")  # where the start image and the top-k come from
    result = Dream.run(handle, data, options, seed=seed or 0)
    page = None
    if out is not None:  # an audit page of one panel: verdict, card, provenance, listed in the index
        from xai.audit.command import command_audit, data_summary
        from xai.report.dream import dream_slug
        from xai.report.html import write_report

        audit = command_audit(handle, [result], slug=dream_slug(result),
                              title=f"Activation maximisation: {result.unit} of {handle.name}",
                              data=data_summary(data))
        write_report([audit], out)
        page = out / f"{audit.slug}.html"
    if json_out:
        print_json(result.to_dict())
        return
    from xai.report.terminal_commands import print_dream

    console = stdout_console()
    print_dream(console, result)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")

