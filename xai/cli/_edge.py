"""The CLI's edge: exit codes as a contract, one error line, library warnings kept quiet.

Exit codes (DESIGN.md): 0 pass, 1 a gate failed, 2 bad input or environment (an
:class:`~xai.errors.XaiError`, a usage error, an ``OSError`` such as a full disk or a
read-only folder), 3 an unexpected internal error, 130 interrupted. Every failure is one
line on stderr starting with ``error:``; ``--debug`` (or ``XAI_DEBUG=1``) adds the
traceback. Library warnings (torch, captum, sklearn, fairlearn ...) stay off stderr
unless ``--verbose``.

Self-contained on purpose: the root group is :class:`EdgeGroup` and the root callback
calls :func:`set_flags`; nothing here imports torch.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from xai._text import one_line
from xai.errors import XaiError

__all__ = ["EXIT_BAD_INPUT", "EXIT_GATE_FAILED", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EdgeGroup", "set_flags"]

EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
_EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as if the pipe's signal had ended us


def _click_exception_types() -> tuple[type[BaseException], ...]:
    """Click's exception root as typer ships it (vendored in newer typer, click itself in older)."""
    found: list[type[BaseException]] = []
    try:
        from typer._click.exceptions import ClickException as Vendored
        found.append(Vendored)
    except ImportError:
        pass
    try:
        import click
        found.append(click.ClickException)
    except ImportError:
        pass
    return tuple(found)


_CLICK_ERRORS = _click_exception_types()
#: What EdgeGroup.invoke lets through to main(): usage errors and exits.
_PASS_THROUGH: tuple[type[BaseException], ...] = (typer.Exit, typer.Abort, *_CLICK_ERRORS)


@dataclass
class _Flags:
    debug: bool = False
    verbose: bool = False


_FLAGS = _Flags()


def set_flags(*, debug: bool, verbose: bool) -> None:
    """Record the root's ``--debug`` / ``--verbose`` (called by the root callback)."""
    _FLAGS.debug = _FLAGS.debug or debug
    _FLAGS.verbose = verbose
    if verbose:
        warnings.resetwarnings()  # the user asked for the libraries' warnings: show them again
        warnings.simplefilter("default")


def _is_validation_error(exc: BaseException) -> bool:
    """A pydantic ``ValidationError`` (a ``ValueError``), told apart without importing pydantic."""
    return type(exc).__name__ == "ValidationError" and type(exc).__module__.startswith("pydantic")


def _validation_message(exc: Any) -> str:
    """The first error of a pydantic ``ValidationError`` as one line: ``key: message``."""
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{key}: {message}{more}" if key else f"{message}{more}"


def _env_debug() -> bool:
    return os.environ.get("XAI_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def _error(message: str) -> None:
    """The one error line (plain text: control sequences removed, never parsed as markup)."""
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()


def _os_error_message(exc: OSError) -> str:
    reason = exc.strerror or (errno.errorcode.get(exc.errno or 0) if exc.errno else None) or str(exc)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p not in (None, "")]
    if paths:
        return f"{' -> '.join(paths)}: {reason}"
    return str(reason)


class EdgeGroup(TyperGroup):
    """Root group: turns every way out of a command into its exit code and one stderr line."""

    def invoke(self, ctx: Any) -> Any:  # noqa: D102
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise  # usage errors and exits: main() below
        except KeyboardInterrupt:
            self._debug_traceback()
            _error("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except XaiError as exc:
            self._debug_traceback()
            _error(str(exc))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except ValueError as exc:
            if not _is_validation_error(exc):
                self._internal(exc)
            # pydantic validating what the user typed (a spec built from flags): bad input
            self._debug_traceback()
            _error(_validation_message(exc))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # the reader went away (`xai ... | head`): nothing to say
                raise typer.Exit(_EXIT_BROKEN_PIPE) from None
            self._debug_traceback()
            _error(_os_error_message(exc))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Exception as exc:  # a bug: say so in one line, the traceback on request
            self._internal(exc)

    def _internal(self, exc: BaseException) -> NoReturn:
        self._debug_traceback()
        hint = "" if _FLAGS.debug else " (rerun with --debug for the traceback)"
        _error(f"internal error: {type(exc).__name__}: {exc}{hint}")
        raise typer.Exit(EXIT_INTERNAL) from None

    @staticmethod
    def _debug_traceback() -> None:
        if _FLAGS.debug:
            traceback.print_exc(file=sys.stderr)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:  # noqa: D102
        if not standalone_mode:  # a caller that handles exceptions itself
            return super().main(args, prog_name, complete_var, standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra)
        _FLAGS.debug, _FLAGS.verbose = _env_debug(), False
        with warnings.catch_warnings():
            # Library chatter (FutureWarning, UserWarning, DeprecationWarning ...) would come
            # before the one line that matters; --verbose (set_flags) brings it back.
            warnings.simplefilter("ignore")
            code = self._run(args, prog_name, complete_var, windows_expand_args=windows_expand_args, **extra)
        self._exit(code)

    def _run(self, args: Sequence[str] | None, prog_name: str | None, complete_var: str | None, **extra: Any) -> int:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _CLICK_ERRORS as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # the help is already printed
                return int(getattr(exc, "exit_code", EXIT_BAD_INPUT))
            _error(_usage_message(exc))
            return EXIT_BAD_INPUT
        except typer.Abort:
            _error("aborted")
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:  # while parsing, before any command ran
            _error("interrupted")
            return EXIT_INTERRUPTED
        # A command that returns normally gives None; typer.Exit(code) comes back as the code.
        return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0

    @staticmethod
    def _exit(code: int) -> NoReturn:
        sys.exit(code)


def _usage_message(exc: BaseException) -> str:
    """Click's usage error as one line, with the command's --help as the hint."""
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    ctx = getattr(exc, "ctx", None)
    hint = ""
    if ctx is not None and getattr(ctx, "command_path", None):
        hint = f" (see '{ctx.command_path} --help')"
    return f"{message}{hint}"
