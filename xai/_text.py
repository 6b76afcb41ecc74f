"""Make untrusted strings safe to show: on the terminal (rich), in XML, and as links.

Column names, group names, class names, spec titles, word lists, file names and the
messages built from them all come from files a user (or a pull request) controls. On a
terminal they must neither steer it (ANSI CSI/OSC escape sequences, C0/C1 controls) nor
be read as rich markup (``[/]`` would crash the console, ``[link=...]`` would add a
link). Torch-free on purpose: the CLI's edge imports it before anything heavy.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.text import Text

__all__ = [
    "SafeConsole",
    "http_url",
    "local_href",
    "one_line",
    "safe_text",
    "strip_controls",
    "xml_text",
]

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/SOS/PM/APC strings (ended by BEL
# or ST, or unterminated to the end), and the two-byte escapes (ESC + one char).
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|$)"  # OSC, DCS, SOS, PM, APC (hyperlinks, titles ...)
    r"|\x1b[ -/]*[0-~]",  # other escapes (charset switches, RIS ...)
    re.DOTALL,
)
# C0 controls but tab and newline, DEL, and C1 controls (0x9b is an 8-bit CSI).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def strip_controls(text: Any) -> str:
    """``str(text)`` without escape sequences and control characters (tab and newline stay)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", str(text)))


def safe_text(text: Any, *, markup: bool = True) -> str:
    r"""An untrusted string made safe to print on a rich console.

    Escape sequences and control characters are removed; with ``markup`` (the default,
    for strings printed through rich) square brackets are escaped so the string is shown
    as written. ``markup=False`` is for plain output (``typer.echo``, JSON stays raw).

    Examples
    --------
    >>> safe_text("sex=[/]\x1b[31mred\x1b[0m")
    'sex=\\[/]red'
    >>> safe_text("a\x1b]8;;http://x\x07b", markup=False)
    'ab'
    """
    clean = strip_controls(text)
    return escape(clean) if markup else clean


def one_line(text: Any) -> str:
    """Control-free text with every run of whitespace (newlines too) as one space."""
    return " ".join(strip_controls(text).split())


def xml_text(text: Any) -> str:
    r"""``str(text)`` without the characters XML 1.0 forbids (``\x01``, lone surrogates, ``\uffff`` ...)."""
    return _NOT_XML.sub("", str(text))


def http_url(value: Any) -> str | None:
    """``value`` when it is an absolute http(s) URL with a host, else ``None`` (never a link)."""
    if not isinstance(value, str) or _CONTROLS.search(value) or any(c.isspace() for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def local_href(name: Any) -> str:
    """A file name as a relative link: percent-quoted, so ``javascript:x.html`` stays a file name."""
    return quote(str(name), safe="/._-~")


class SafeConsole(Console):
    """A rich console that never lets a control sequence through and never dies of bad markup.

    Call sites escape user strings with :func:`safe_text`; this is the second line: any
    string rendered here loses escape sequences and control characters first (markup
    written on purpose never has any), and markup that does not parse is shown as text
    instead of raising :class:`~rich.errors.MarkupError`.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:  # noqa: D102
        text = strip_controls(text)
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            return super().render_str(text, **{**kwargs, "markup": False})
