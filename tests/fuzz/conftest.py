"""Fuzz suite (issue 17): prints how many inputs each family tried, for the issue note."""

from __future__ import annotations

import pytest

from ._contract import TRIED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TRIED:
        return
    terminalreporter.section("xai fuzz: CLI calls per input family")
    for family, count in sorted(TRIED.items()):
        terminalreporter.write_line(f"{family:>10}: {count}")
    terminalreporter.write_line(f"{'total':>10}: {sum(TRIED.values())}")
