"""Import discipline (DESIGN.md): the CLI's help and listings, the fairness engine, gates and the
CI renderers load neither torch nor captum; the lazy tables that make this possible agree with
the real registrations."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import REPO

HEAVY = ("torch", "captum")

# Runs one CLI command or one import in this interpreter, then prints the heavy modules loaded.
_PROBE = textwrap.dedent("""
    import json, runpy, sys
    argv, module = json.loads(sys.argv[1])
    code = 0
    if argv is not None:
        sys.argv = ["xai", *argv]
        try:
            runpy.run_module("xai", run_name="__main__")
        except SystemExit as exc:
            code = exc.code or 0
    else:
        __import__(module)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "captum"))
    cli = sorted(m for m in sys.modules if m.startswith("xai.cli."))
    sys.stdout.write("\\n@@" + json.dumps({"code": code, "heavy": loaded, "cli": cli}) + "\\n")
""")


def _fresh(argv: list[str] | None = None, module: str | None = None) -> dict:
    """Run ``xai *argv`` or ``import module`` in a fresh interpreter importing this checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([argv, module])], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    stdout, _, report = done.stdout.rpartition("\n@@")
    return {**json.loads(report), "stdout": stdout}


@pytest.mark.parametrize("argv", [["--help"], ["zoo", "list"], ["zoo", "list", "--json"], ["zoo", "--help"],
                                  ["init", "--help"], ["methods", "--help"], ["audit", "--help"],
                                  ["check", "--help"]], ids=" ".join)
def test_cli_help_and_listings_import_no_torch(argv):
    run = _fresh(argv=argv)
    assert run["code"] == 0
    assert run["heavy"] == []


def _every_command() -> list[list[str]]:
    """Every command and sub-command of ``xai`` as an argv prefix (``["bias", "weat"]``), from the CLI's table."""
    import click

    from xai.cli import _XaiGroup
    from xai.cli._lazy import load_command

    out = []
    for name, (target, _help) in sorted(_XaiGroup.lazy_commands.items()):
        command = load_command(name, target)
        out.append([name])
        if isinstance(command, click.Group):
            out.extend([name, sub] for sub in sorted(command.list_commands(click.Context(command))))
    return out


@pytest.mark.parametrize("command", _every_command(), ids=" ".join)
def test_every_commands_help_imports_no_torch(command):
    # heavy imports live inside the command functions: asking how to call a command loads no model code
    run = _fresh(argv=[*command, "--help"])
    assert run["code"] == 0 and "Usage" in run["stdout"]
    assert run["heavy"] == [], command


def test_root_help_lists_every_command_without_importing_one():
    from xai.cli import _XaiGroup

    run = _fresh(argv=["--help"])
    assert run["cli"] == ["xai.cli._edge", "xai.cli._lazy"]  # the root group's parts, not one command module
    rows = {line.strip("│ ").split()[0]: line.strip("│ ").split()[1:]
            for line in run["stdout"].splitlines() if line.startswith("│ ") and not line.startswith("│ --")}
    for name, (_target, help_text) in _XaiGroup.lazy_commands.items():
        assert rows[name][:6] == help_text.split()[:6], name  # listed with its help (wrapped after 120 columns)


def test_a_command_imports_only_its_own_module():
    run = _fresh(argv=["zoo", "list", "--json"])
    assert run["cli"] == ["xai.cli._common", "xai.cli._edge", "xai.cli._lazy", "xai.cli.zoo"]
    assert {row["name"] for row in json.loads(run["stdout"])} >= {"lenet", "adult-mlp", "minilm"}
    run = _fresh(argv=["bias", "--help"])  # a command whose module needs torch: still only that module
    assert run["code"] == 0 and "weat" in run["stdout"]
    assert run["cli"] == ["xai.cli._common", "xai.cli._edge", "xai.cli._lazy", "xai.cli.bias"]


def test_init_imports_no_torch(tmp_path: Path):
    run = _fresh(argv=["init", str(tmp_path / "project")])
    assert run["code"] == 0
    assert (tmp_path / "project" / "audits").is_dir()
    assert run["heavy"] == []


@pytest.mark.parametrize("module", ["xai.fairness.metrics", "xai.fairness._engine", "xai.audit.gates",
                                    "xai.report.json", "xai.report.markdown", "xai.report.junit",
                                    "xai.report.terminal", "xai.zoo", "xai.explain", "xai.fairness", "xai",
                                    "xai.methods", "xai.api", "xai.report.html", "xai.audit.result",
                                    "xai.audit.verdict", "xai.report._renderers", "xai.report.sanity",
                                    "xai.report.dream", "xai.report.inversion", "xai.audit.command",
                                    "xai.report.projection", "xai.report.daam", "xai.report.tokens",
                                    "xai.fairness.slice_scan"])  # --slices on a predictions file
def test_module_imports_no_torch(module):
    assert _fresh(module=module)["heavy"] == []


@pytest.mark.parametrize("modules", [
    "xai.fairness._engine",
    # a streamed prediction audit: the command, the scan, the count tables and the group tables
    "xai.cli.fairness, xai.fairness.stream, xai.fairness.group, xai.fairness.predictions",
])
def test_fairness_engine_loads_numpy_only(modules):
    # pandas is imported where rows are read whole (xai.fairness.predictions.load_predictions, group_frame)
    probe = (f"import sys, {modules}; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'captum', 'torchvision', 'sklearn', "
             "'scipy', 'numpy', 'pandas'}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.stdout.split() == ["['numpy']"], done.stderr


# --------------------------------------------------------------------------- lazy tables vs registrations


def _import_package(package: str) -> None:
    """Import every module of ``package`` so that a registration missing from a table shows up."""
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__, prefix=f"{package}."):
        if not info.name.split(".")[-1].startswith("_build"):  # offline data builders, not run-time code
            importlib.import_module(info.name)


@pytest.mark.parametrize(("package", "registry"), [("xai.explain", "EXPLAINERS"), ("xai.fairness", "PROBES"),
                                                   ("xai.datasets", "DATASETS"), ("xai.explain", "DREAMS"),
                                                   ("xai.explain", "INVERSIONS"), ("xai.explain", "SANITY_CHECKS"),
                                                   ("xai.explain", "DAAMS"), ("xai.explain", "PROJECTIONS"),
                                                   ("xai.explain", "TOKEN_METHODS"),
                                                   ("xai.explain", "RECURRENT_METHODS"),
                                                   ("xai.explain", "HEAD_METHODS"),
                                                   ("xai.explain", "AGENT_METHODS"),
                                                   ("xai.explain", "SEQ2SEQ_METHODS"),
                                                   ("xai.explain", "LLM_METHODS"),
                                                   ("xai.explain", "TRAINING_METHODS")])
def test_lazy_table_matches_the_registrations(package, registry):
    table = getattr(importlib.import_module(f"{package}._index"), registry)
    lazy = table.lazy_table
    for name, target in lazy.items():
        module, _, attr = target.partition(":")
        assert getattr(importlib.import_module(module), attr) is table.get(name), name
    _import_package(package)
    assert set(table.registered()) >= set(lazy)
    builtin = {n for n, item in table.registered().items() if item.__module__.startswith(f"{package}.")}
    assert builtin == set(lazy)  # every built-in registration has its row


def test_zoo_table_matches_the_registrations():
    from xai.zoo import MODELS
    from xai.zoo._index import build_table
    from xai.zoo._table import ENTRY_TABLE

    assert build_table() == ENTRY_TABLE, "stale xai/zoo/_table.py: run python -m xai.zoo._index"
    assert MODELS.lazy_table == {name: row["module"] for name, row in ENTRY_TABLE.items()}


def test_zoo_info_agrees_with_the_entry():
    from xai.zoo import create_model, entry_info, get_entry

    info, entry = entry_info("lenet"), get_entry("lenet")
    assert (info.family, info.task, info.dataset, info.metric, info.floor) == (
        entry.family, entry.task, entry.dataset, entry.metric, entry.floor)
    assert info.params == sum(p.numel() for p in create_model("lenet").parameters())
    assert info.meets_floor(entry.floor) and not info.meets_floor(entry.floor - 0.01)


def test_cli_table_matches_each_commands_help():
    from xai.cli import _XaiGroup
    from xai.cli._lazy import load_command

    for name, (target, help_text) in _XaiGroup.lazy_commands.items():
        command = load_command(name, target)
        first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
        assert help_text == first_paragraph, name
    commands = {p.stem for p in (REPO / "xai" / "cli").glob("*.py") if not p.stem.startswith("_")}
    assert {t.split(":")[0].rsplit(".", 1)[1] for t, _ in _XaiGroup.lazy_commands.values()} == commands


def test_package_exports_resolve():
    for package in ("xai.zoo", "xai.explain", "xai.fairness", "xai.datasets", "xai.audit"):
        module = importlib.import_module(package)
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{package}.{name}"
        with pytest.raises(AttributeError):
            module.no_such_name  # noqa: B018
