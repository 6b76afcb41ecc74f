"""Hypothesis strategies shared by the fuzz families: hostile text, numbers and a TOML writer."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from hypothesis import strategies as st

#: Strings that have broken a terminal, a markup parser, a CSV reader or a page before.
HOSTILE_TEXT: tuple[str, ...] = (
    "[/]", "[bold red]x[/]", "[link=javascript:alert(1)]x[/link]", "[", "]", "\\[x]",
    "\x1b[31mred\x1b[0m", "\x1b[2J\x1b[H", "\x1b]0;owned\x07", "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "\x9b31m", "\x9d0;t\x07", "\x07", "\r", "\x00", "\x7f", "\u202eevil", "\ufeffbom",
    "é", "性别", "👩\u200d🔬", "Ω" * 3, "<script>alert(1)</script>", "javascript:alert(1)",
    "a,b", '"', "'", "=1+1", " ", "", "nan", "NaN", "inf", "-inf", "None", "null", "true", "0", "1",
    "x" * 300,
)

hostile_text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=12))
#: Floats a schema must refuse or bound, next to ordinary ones.
hostile_float = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 0.5, 1.0, 2.0, 1e308, -1e-308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
)
#: Integers without the huge ones: a count of 10**12 is a resource test, not a parse test.
small_int = st.one_of(st.sampled_from([-(2**63), -1, 0, 1, 2, 3]), st.integers(-5, 40))


def toml_string(text: str) -> str:
    """A TOML basic string holding ``text`` exactly (control characters escaped)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    """A TOML literal for a Python value (inline tables and arrays; datetimes as TOML dates)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")


def toml_document(document: dict[str, Any]) -> str:
    """A whole TOML file: one ``key = value`` line per top-level key."""
    return "".join(f"{toml_string(str(k))} = {toml_value(v)}\n" for k, v in document.items())


_scalar = st.one_of(
    hostile_text, hostile_float, small_int, st.booleans(),
    st.sampled_from([dt.datetime(1979, 5, 27, 7, 32, tzinfo=dt.UTC), dt.date(2024, 2, 29), dt.time(12, 0)]),
)
#: Any TOML value: scalars, arrays and inline tables, a few levels deep.
toml_any = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)),
    max_leaves=6,
)
#: Any JSON value, NaN and huge numbers included.
json_any = st.recursive(
    st.one_of(st.none(), st.booleans(), hostile_float, st.integers(), st.sampled_from([10**400, -(10**400)]),
              hostile_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)),
    max_leaves=6,
)
