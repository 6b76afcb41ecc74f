"""``xai check``: run audit specs, judge their gates, exit 0 (pass), 1 (a gate failed) or 2."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from xai._device import resolve_device
from xai._io import check_writable_dir
from xai._text import safe_text, strip_controls
from xai.audit import CheckedAudit, check_spec, collect_spec_paths, load_spec, spec_slugs, verdict_line
from xai.audit.check import FailedAudit, judge, run_specs_ray
from xai.audit.gates import load_baseline
from xai.audit.spec import check_spec_files
from xai.cli._common import (
    DeviceOpt,
    JsonOpt,
    QuietOpt,
    TrustPickleOpt,
    ZooDirOpt,
    check_device,
    check_output_file,
    print_json,
    stderr_console,
    stdout_console,
)
from xai.errors import SpecError, UnknownNameError, XaiError
from xai.report.html import write_report
from xai.report.junit import write_junit
from xai.report.markdown import append_step_summary, markdown_summary, write_summary
from xai.report.terminal import print_check_summary

if TYPE_CHECKING:
    import torch
    from rich.console import Console

    from xai.audit import AuditSpec
    from xai.audit.runner import AuditResult

DEFAULT_SPECS = "audits"
#: How ``xai check`` runs its audits.
ENGINES = ("local", "ray")


def _check_with_ray(plan: list[tuple[str, AuditSpec, str]], progress: Console | None, *, baselines: Path,
                    update_baseline: bool, device: torch.device, zoo_dir: str | Path | None,
                    trust_pickle: bool) -> tuple[list[CheckedAudit], list[FailedAudit]]:
    """Every spec as a Ray task; gates judged here, in spec order, exactly as the local engine judges them."""
    def done(slug: str, outcome: AuditResult | FailedAudit) -> None:
        if progress is not None:
            state = f"failed: {outcome.message}" if isinstance(outcome, FailedAudit) else "done"
            progress.print(f"[dim]{safe_text(slug)} {safe_text(state)}[/]")

    if progress is not None:
        progress.print(f"[dim]checking {len(plan)} audits as Ray tasks ...[/]")
    outcomes = run_specs_ray(plan, device=device, zoo_dir=zoo_dir, trust_pickle=trust_pickle, on_done=done)
    checked: list[CheckedAudit] = []
    failed: list[FailedAudit] = []
    for (slug, spec, _), outcome in zip(plan, outcomes, strict=True):
        if isinstance(outcome, FailedAudit):
            failed.append(outcome)
        else:
            checked.append(judge(outcome, spec, slug=slug, baselines_dir=baselines, update_baseline=update_baseline))
    return checked, failed


def check(
    specs: Annotated[
        list[str] | None,
        typer.Argument(help="Spec files or folders of *.toml [default: audits/]."),
    ] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Report folder (HTML + JSON).")] = "reports",
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here (one testcase per gate).")] = None,
    summary: Annotated[
        Path | None,
        typer.Option("--summary", help="Write a Markdown summary here (also appended to $GITHUB_STEP_SUMMARY "
                     "when set)."),
    ] = None,
    baselines: Annotated[
        Path, typer.Option("--baselines", help="Folder of baseline JSON files (<audit>.json).")
    ] = Path("reports/baselines"),
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Write each audit's metrics as its new baseline, then gate.")
    ] = False,
    device: DeviceOpt = "auto",
    zoo_dir: ZooDirOpt = None,
    trust_pickle: TrustPickleOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    engine: Annotated[
        str, typer.Option("--engine", help="local: one audit after another in this process; ray: each spec a Ray "
                          "task (a local cluster, or RAY_ADDRESS; pip install 'xai-audit[ray]'): a spec that fails "
                          "does not stop the others, whose reports are written before the exit code says so.")
    ] = "local",
) -> None:
    """Run audits and their gates; exit 0 when every gate passes, 1 when one fails, 2 on bad input."""
    if engine not in ENGINES:
        raise UnknownNameError("engine", engine, ENGINES)
    out_dir = check_writable_dir(out)  # a file or a read-only folder fails now, not after the audits
    torch_device = resolve_device(check_device(device))
    if not specs:
        if not Path(DEFAULT_SPECS).is_dir():
            raise SpecError(f"no {DEFAULT_SPECS}/ folder here: name spec files or folders, "
                            "or scaffold one with `xai init`")
        specs = [DEFAULT_SPECS]
    # Every spec, baseline and output path is validated before any model runs: a typo
    # fails in a second, not a minute, and never as a failed gate (exit 1).
    paths = collect_spec_paths(specs)
    plan = [(slug, load_spec(p), str(p)) for slug, p in zip(spec_slugs(paths), paths, strict=True)]
    for _, spec, source in plan:
        check_spec_files(spec, source)  # your data and predictions files: a typo fails before any audit runs
    if junit is not None:
        check_output_file(junit, "--junit")
    if summary is not None:
        check_output_file(summary, "--summary")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        check_output_file(Path(step_summary), "$GITHUB_STEP_SUMMARY", append=True)
    if not update_baseline:  # --update-baseline replaces them: a broken one is fixed, not read
        for slug, spec, _ in plan:
            if any(g.regression for g in spec.gate):
                load_baseline(baselines, slug)
    progress = stderr_console(enabled=not (json_out or quiet))
    checked: list[CheckedAudit] = []
    failed: list[FailedAudit] = []
    if engine == "ray":
        checked, failed = _check_with_ray(plan, progress, baselines=baselines, update_baseline=update_baseline,
                                          device=torch_device, zoo_dir=zoo_dir, trust_pickle=trust_pickle)
    else:
        for slug, spec, source in plan:
            if progress is not None:
                progress.print(f"[dim]checking {safe_text(slug)} ({len(spec.gate)} gates) ...[/]")
            checked.append(check_spec(spec, slug=slug, spec_path=source, baselines_dir=baselines,
                                      update_baseline=update_baseline, device=torch_device,
                                      zoo_dir=zoo_dir, console=progress, trust_pickle=trust_pickle))
    index = write_report([c.result for c in checked], out_dir,
                         gates={c.result.slug: c.gates for c in checked})
    if failed:
        # the local engine stops at the first failing spec; here the others' reports are written first,
        # then the first failure (in spec order) decides the exit code as it would have there
        errors = stderr_console(enabled=True)
        if errors is not None:
            for failure in failed[1:]:
                errors.print(f"error: {safe_text(failure.slug)}: {safe_text(failure.message)}", highlight=False)
            errors.print(f"Report of the other audits: {safe_text(index)}", highlight=False)
        first = failed[0]
        if first.exit_code == 2:
            raise XaiError(f"{first.slug}: {first.message}")
        raise RuntimeError(f"{first.slug}: {first.message}")
    if junit is not None:
        write_junit(checked, junit)
    markdown = markdown_summary(checked, str(index))
    if summary is not None:
        write_summary(checked, summary, str(index))
    append_step_summary(markdown)
    verdict = verdict_line(checked)
    passed = all(c.passed for c in checked)
    if json_out:
        print_json({
            "passed": passed,
            "verdict": verdict,
            "report": str(index),
            "audits": [{**c.result.headline(), "passed": c.passed,
                        "baseline_written": c.baseline_written,
                        "gates": [g.to_dict() for g in c.gates]} for c in checked],
        })
    else:
        console = stdout_console()
        if not quiet:
            print_check_summary(checked, console)
            console.print(f"Report: [bold]{safe_text(index)}[/]")
        console.print(Text(strip_controls(verdict), style="green" if passed else "bold red"), soft_wrap=True)
    if not passed:
        raise typer.Exit(1)
