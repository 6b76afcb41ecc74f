"""The docstring examples under xai/ exist, none is skipped, and the one test command runs them.

The examples themselves run as doctests (``--doctest-modules`` over ``xai`` in pyproject.toml):
a wrong example fails that run. These tests guard against the run silently checking nothing.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import xai

REPO = Path(__file__).resolve().parents[1]

# What the repository's conftest.py keeps out of the doctest run (it runs the CLI on import).
NOT_COLLECTED = {"xai.__main__"}

# Floors, not exact counts: adding examples is fine, losing them fails. Counted on 2026-12-03.
MIN_DOCSTRINGS = 63  # docstrings with examples = doctest items pytest collects under xai/
MIN_EXAMPLES = 176  # ">>>" examples in them


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder()
    found = []
    for info in pkgutil.walk_packages(xai.__path__, "xai."):
        if info.name in NOT_COLLECTED:
            continue
        found.extend(t for t in finder.find(importlib.import_module(info.name)) if t.examples)
    return found


def test_the_docstring_examples_are_all_there_and_none_is_skipped():
    tests = _doctests()
    examples = [e for t in tests for e in t.examples]
    skipped = [f"{t.name}: {e.source.strip()}" for t in tests for e in t.examples if e.options.get(doctest.SKIP)]
    assert skipped == []  # an example that cannot run offline is listed here on purpose, not skipped quietly
    assert len(tests) >= MIN_DOCSTRINGS
    assert len(examples) >= MIN_EXAMPLES
    # the walk read this checkout's package, the one the doctest run collects
    assert Path(xai.__file__).resolve().parent == REPO / "xai"


def test_the_test_command_collects_the_docstring_examples():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "xai" in config["testpaths"]
    # plain `python -m pytest <module>` (no doctest flag given) collects the module's examples as items
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "xai/zoo/_frechet.py"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "xai/zoo/_frechet.py::xai.zoo._frechet.gaussian_frechet_distance" in out.stdout


def test_the_audit_spec_example_in_the_spec_module_docstring_is_a_valid_spec():
    # the one example written as a literal block (TOML, not Python), so no doctest reads it
    from xai.audit import spec

    block = spec.__doc__.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    data = tomllib.loads(textwrap.dedent(block))
    parsed = spec.AuditSpec.model_validate(data)
    assert parsed.model.name == "lenet"
    assert [g.metric for g in parsed.gate] == ["equalized_odds_difference", "accuracy"]
    assert parsed.gate[1].regression and parsed.gate[1].tolerance == 0.01
