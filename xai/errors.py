"""One exception root for every error a user can cause.

The CLI catches :class:`XaiError` at its edge and prints its message as one line on
stderr with exit code 2; anything else is a bug and keeps its traceback.
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
