"""``xai audit``: run audit specs (or the bundled defaults) and write the report."""

from __future__ import annotations

from typing import Annotated

import typer

from xai._device import resolve_device
from xai._io import check_writable_dir
from xai._text import safe_text
from xai.audit import AuditResult, collect_spec_paths, default_specs, load_spec, spec_slugs
from xai.audit.check import check_spec
from xai.audit.gates import GateResult
from xai.audit.verdict import audit_verdict
from xai.cli._common import (
    DeviceOpt,
    JsonOpt,
    QuietOpt,
    SeedOpt,
    TrustPickleOpt,
    ZooDirOpt,
    check_device,
    print_json,
    stderr_console,
    stdout_console,
)
from xai.errors import DataError, UnknownNameError
from xai.report.html import write_report
from xai.report.terminal import print_audit_summary


def audit(
    specs: Annotated[
        list[str] | None,
        typer.Argument(help="Spec files or folders of *.toml; none runs the bundled default "
                       "audits (lenet and adult-mlp)."),
    ] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Report folder.")] = "reports",
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    trust_pickle: TrustPickleOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="Stream your own data ([data] path) in batches: local (this process) or ray "
                     "(Ray Data actors, one model each). Every row is counted for group metrics; explanations "
                     "and other probes run on a stratified sample ([data] per_group rows of each group); "
                     "the spec's `samples` does not apply."),
    ] = None,
) -> None:
    """Train or load the models, explain them, probe them for bias, write the report."""
    if engine is not None and engine not in ("local", "ray"):
        raise UnknownNameError("engine", engine, ("local", "ray"))
    out_dir = check_writable_dir(out)  # a file or a read-only folder fails now, not after the audits
    torch_device = resolve_device(check_device(device))
    if specs:
        paths = collect_spec_paths(specs)
        plan = [(slug, load_spec(p), str(p)) for slug, p in zip(spec_slugs(paths), paths, strict=True)]
    else:
        plan = [(slug, spec, f"default:{slug}") for slug, spec in default_specs()]
    progress = stderr_console(enabled=not (json_out or quiet))
    results: list[AuditResult] = []
    gates: dict[str, tuple[GateResult, ...]] = {}
    for slug, spec, source in plan:
        if seed is not None:
            spec = spec.model_copy(update={"seed": seed})
        if engine is not None:
            if spec.data.path is None:
                raise DataError(f"--engine streams your own data, but {source} audits a bundled dataset "
                                "([data] name)")
            spec = spec.model_copy(update={"data": spec.data.model_copy(update={"engine": engine,
                                                                                 "samples": None})})
        if progress is not None:
            progress.print(f"[dim]auditing {safe_text(slug)} ...[/]")
        # the spec's gates are judged and shown (regression gates against the baselines `xai check`
        # reads by default), but only `xai check` turns a failed gate into exit 1
        checked = check_spec(spec, slug=slug, spec_path=source, baselines_dir="reports/baselines",
                             device=torch_device, zoo_dir=zoo_dir, console=progress, trust_pickle=trust_pickle)
        results.append(checked.result)
        if spec.gate:
            gates[slug] = checked.gates
    index = write_report(results, out_dir, gates)
    verdicts = [audit_verdict(r, gates.get(r.slug)) for r in results]
    if json_out:
        print_json({"report": str(index), "audits": [{**r.headline(), "verdict": v.to_dict()}
                                                     for r, v in zip(results, verdicts, strict=True)]})
    elif quiet:
        stdout_console().print(f"Report: {safe_text(index)}")
    else:
        print_audit_summary(results, str(index), stdout_console(), verdicts)
