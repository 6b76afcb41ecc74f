"""``xai sanity``: check whether one method's explanations of a model can be trusted."""

from __future__ import annotations

from typing import Annotated

import typer

from xai._text import safe_text
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
    TrustPickleOpt,
    WeightsOpt,
    ZooDirOpt,
    check_device,
    data_spec,
    parse_classes,
    parse_options,
    parse_target,
    print_json,
    stderr_console,
    stdout_console,
    with_layer,
)
from xai.errors import DataError
from xai.explain._index import EXPLAINERS


def sanity(
    model: ModelArg,
    method: Annotated[str, typer.Option("--method", "-m",
                                        help=f"Attribution method to check: {', '.join(EXPLAINERS.names())}.")],
    samples: Annotated[int, typer.Option("--samples", "-n", min=2, help="How many samples to check on.")] = 16,
    target: TargetOpt = "predicted",
    steps: Annotated[int, typer.Option("--steps", min=2, help="Deletion/insertion steps.")] = 20,
    option: MethodOptionsOpt = None,
    layer: LayerOpt = None,
    data: OwnDataOpt = None,
    label: LabelOpt = None,
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
    """Check a method's explanations: deletion/insertion, weight randomisation, infidelity."""
    from xai._device import resolve_device
    from xai.audit.runner import sample_rows
    from xai.datasets import load_dataset
    from xai.datasets._user import open_source
    from xai.explain.sanity import SanityChecks, sanity_check
    from xai.zoo import check_model_on_data, load_model

    # the one options model: an unknown method lists the known ones before the model loads
    checks = SanityChecks.parse_options(method=method, samples=samples, steps=steps, target=parse_target(target),
                                        options=with_layer(parse_options(option), layer))
    assert isinstance(checks, SanityChecks.Options)
    names = parse_classes(classes)
    console = stderr_console(enabled=not json_out)
    run_seed = seed or 0
    own = data_spec(data, label=label, side=side, id_column=id_column, strict=strict)
    source = open_source(own.source()) if own.path is not None else None  # your data: checked before the model
    handle = load_model(model, weights=str(weights) if weights else None,
                        data=source.info if source is not None else data,
                        trust_pickle=trust_pickle, zoo_dir=zoo_dir, train_missing=True, seed=run_seed,
                        device=check_device(device), console=console, classes=names)
    handle.to(resolve_device(check_device(device)))
    if source is not None:
        source.check_classes(handle)
        rows = source.load(handle, samples=checks.samples, seed=run_seed)  # the rows sample_rows would draw
    else:
        data_name = data or handle.dataset
        if data_name is None:
            raise DataError(f"say which data to check {model} on (--data)")
        from xai.sources import prepare_bundled

        rows = sample_rows(prepare_bundled(handle, load_dataset(data_name, "test")), checks.samples, run_seed)
    check_model_on_data(handle, rows)
    notes = tuple(source.notes) if source is not None else ()  # e.g. images that could not be decoded
    note = (lambda text: console.print(f"[dim]{safe_text(text)}[/]")) if console is not None else None
    # SanityChecks.run's core call, with progress notes on the terminal
    result = sanity_check(handle, checks.method, rows, options=checks.options, target=checks.target,
                          steps=checks.steps, mprt_steps=checks.mprt_steps,
                          sensitivity_samples=checks.sensitivity_samples, batch_size=checks.batch_size,
                          seed=run_seed, progress=note)
    page = None
    if out is not None:  # an audit page of one check: verdict, card, provenance, listed in the index
        from xai.audit.command import command_audit, data_summary
        from xai.report.html import write_report
        from xai.report.sanity import sanity_slug

        audit = command_audit(handle, [result], slug=sanity_slug(result),
                              title=f"Sanity checks: {result.method} on {handle.name}", data=data_summary(rows),
                              notes=notes)
        write_report([audit], out)
        page = out / f"{audit.slug}.html"
    if json_out:
        print_json(result.to_dict())
        return
    from xai.report.terminal_commands import print_sanity

    stdout = stdout_console()
    print_sanity(stdout, result, method, run_seed)
    if page is not None:
        stdout.print(f"Report: [bold]{safe_text(page)}[/]")
