"""The hardening contract of issue 17, checked after every fuzzed or hostile CLI call.

For every input, whatever it is:

- the exit code is one the command may give (0 pass, 1 a gate failed, 2 bad input or
  environment): never 3 (internal error) and never an exception escaping the command;
- on exit 2, exactly one stderr line starts with ``error:`` and it is the last one; with
  ``--json`` or ``--quiet`` (no progress lines) it is the only one;
- no library warning on stderr (Python's default filters, as a user's terminal shows them);
- no ``Traceback`` anywhere, and no ESC byte (nor the 8-bit CSI/OSC introducers) on
  stdout or stderr: user strings must not drive the terminal;
- with ``--json`` and exit 0 or 1, stdout is one strict JSON document (no NaN);
- every report file left in an output folder is whole: JSON parses strictly, HTML is
  UTF-8 that ends with ``</html>``, JUnit is well-formed XML, and no ``.tmp`` file is left.

Calls run in-process through typer's ``CliRunner`` (stderr captured apart from stdout)
for speed; each call is counted per family for the summary the conftest prints.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from click.testing import Result
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

from xai.cli import app

#: Inputs tried per family (read by the conftest's terminal summary).
TRIED: Counter[str] = Counter()

_RUNNER = CliRunner()
#: Never let a fuzzed ``xai check`` append to CI's own step summary, nor colour output by force.
_ENV = {"GITHUB_STEP_SUMMARY": None, "FORCE_COLOR": None, "TTY_COMPATIBLE": None, "TTY_INTERACTIVE": None}
#: How ``warnings`` prints one: "file.py:12: FutureWarning: ...".
_WARNING = re.compile(r"\b\w*Warning: ")
#: Options that take no value (so the token after one is not its value).
_BOOLEAN = {"--json", "--quiet", "-q", "--trust-pickle", "--update-baseline", "--force", "--help", "--version",
            "--bogus", "-x", "--"}
#: Flags that turn progress output on stderr off.
_QUIET = {"--json", "--quiet", "-q"}
#: ESC, and the single-byte CSI and OSC introducers that some terminals also obey.
_TERMINAL_CONTROL = ("\x1b", "\x9b", "\x9d")


def _to_stderr(message: Warning | str, category: type[Warning], filename: str, lineno: int,
               file: object = None, line: str | None = None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def invoke(args: Sequence[str], *, family: str, env: dict[str, str | None] | None = None) -> Result:
    """Run ``xai ARGS`` in-process and count it under ``family``.

    Warnings reach the captured stderr as in a fresh ``python -m xai`` (Python's default
    filters, each shown again per call) instead of pytest's recorder, so a library warning
    on the user's terminal shows up here too.
    """
    TRIED[family] += 1
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category)
        warnings.showwarning = _to_stderr
        # color=True: click strips ANSI codes from echo() when stdout is no terminal, which would hide
        # escape sequences that a user's terminal receives; rich still sees no terminal (no styling).
        return _RUNNER.invoke(app, list(args), env={**_ENV, **(env or {})}, catch_exceptions=True, color=True)


def _strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _flags(args: Sequence[str]) -> set[str]:
    """The boolean flags given, leaving out a flag-like token that is the value of the option before it."""
    found = set()
    for index, arg in enumerate(args):
        before = args[index - 1] if index else ""
        if arg.startswith("-") and not (before.startswith("-") and before not in _BOOLEAN and "=" not in before):
            found.add(arg)
    return found


def describe(result: Result, args: Sequence[str]) -> str:
    """What the call did, for assertion messages."""
    crash = ""
    if result.exc_info is not None and result.exception is not None and not isinstance(result.exception, SystemExit):
        crash = "\n" + "".join(traceback.format_exception(*result.exc_info))
    return (f"\nargs: {list(args)!r}\nexit: {result.exit_code}\nstdout: {result.stdout[-1500:]!r}"
            f"\nstderr: {result.stderr[-1500:]!r}{crash}")


def check_reports(folders: Iterable[Path | None]) -> None:
    """Every file under each folder (when it exists) is whole, and no temp file is left."""
    for folder in folders:
        if folder is None or not folder.exists():
            continue
        files = [folder] if folder.is_file() else [p for p in folder.rglob("*") if p.is_file()]
        for path in files:
            assert not path.name.endswith(".tmp"), f"temp file left behind: {path}"
            if path.suffix == ".json":
                _strict_json(path.read_text(encoding="utf-8"))
            elif path.suffix == ".html":
                assert path.read_text(encoding="utf-8").rstrip().endswith("</html>"), f"cut-off page: {path}"
            elif path.suffix == ".xml":
                ET.fromstring(path.read_bytes())


def assert_contract(result: Result, args: Sequence[str], *, codes: Iterable[int],
                    outputs: Iterable[Path | None] = ()) -> None:
    """Assert the contract above for one call; ``codes`` are the exit codes this input may give."""
    why = describe(result, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), "uncaught exception" + why
    allowed = set(codes)
    assert result.exit_code in allowed, f"exit code not in {sorted(allowed)}" + why
    for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        assert "Traceback" not in text, f"traceback on {stream}" + why
        for char in _TERMINAL_CONTROL:
            assert char not in text, f"terminal control {char!r} on {stream}" + why
    assert not _WARNING.search(result.stderr), "a library warning on stderr" + why
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1 and lines[-1].startswith("error: "), "exit 2 needs one 'error: ' line, last" + why
        if _QUIET & _flags(args):  # no progress lines by design: the error is all there is
            assert len(lines) == 1, "--json/--quiet: stderr must be the error line alone" + why
    if "--json" in _flags(args) and result.exit_code in (0, 1) and not {"--help", "--version"} & set(args):
        try:
            _strict_json(result.stdout)
        except ValueError as exc:
            raise AssertionError(f"--json stdout is not one JSON document ({exc})" + why) from None
    try:
        check_reports(outputs)
    except (ValueError, UnicodeDecodeError, ET.ParseError) as exc:
        raise AssertionError(f"broken report file ({exc.__class__.__name__}: {exc})" + why) from None


def fresh(base: Path, name: str) -> Path:
    """A new, not yet existing path under ``base`` (one per example)."""
    index = 0
    while (base / f"{name}{index}").exists():
        index += 1
    return base / f"{name}{index}"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file under ``folder``: to prove a call left it alone."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings of one fuzz test: ``examples`` inputs (times ``$XAI_FUZZ_SCALE``), reproducible.

    ``derandomize`` makes CI draw the same inputs on every run (no example database);
    ``deadline=None`` because the first call of a family pays for imports.
    """
    scale = float(os.environ.get("XAI_FUZZ_SCALE", "1"))
    return settings(max_examples=max(1, round(examples * scale)), deadline=None, derandomize=True,
                    database=None, suppress_health_check=list(HealthCheck), print_blob=False)
