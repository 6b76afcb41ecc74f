"""One exception root for every error a user can cause.

The CLI catches :class:`XaiError` at its edge and prints its message as one line on
stderr with exit code 2; anything else is a bug: one line and exit code 3, the
traceback with ``xai --debug`` (see :mod:`xai.cli._edge`).
"""

from __future__ import annotations

from collections.abc import Iterable


class XaiError(Exception):
    """Root of all user-facing errors (bad input, unknown names, unusable files)."""


class UnknownNameError(XaiError, KeyError):
    """A name (model, method, probe, dataset, column, layer) that is not known."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known_list = sorted(known)
        shown = ", ".join(known_list) if known_list else "none"
        super().__init__(f"unknown {kind} {name!r}; known: {shown}")
        self.kind = kind
        self.name = name
        self.known = known_list

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class ModelLoadError(XaiError):
    """A model or weights file that cannot be loaded safely or does not match."""


class DataError(XaiError):
    """Input data that is missing, malformed or does not fit the request."""


class SpecError(XaiError):
    """An audit spec that does not validate."""


class OutputError(XaiError):
    """An output folder or file that cannot be written (not a folder, read-only, disk full)."""


class NotApplicableError(XaiError):
    """A method or probe that does not apply to the given model (the message says why)."""


def bad_option_error(method: str, options: dict[str, object], exc: Exception) -> DataError:
    """A ``TypeError``/``ValueError`` met while a method read its options, as a :class:`DataError`.

    Names the method and the option(s) whose value the message quotes (``int('many')``
    says ``'many'``); when none can be told apart, every option given.
    """
    said = str(exc)
    named = [k for k, v in options.items() if isinstance(v, str | bytes) and repr(v) in said]
    named = named or [k for k, v in options.items() if not isinstance(v, bool | int | float)] or list(options)
    shown = ", ".join(f"{k}={options[k]!r}" for k in named) or "(none)"
    return DataError(f"{method}: bad option value {shown} ({said})")
