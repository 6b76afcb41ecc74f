"""pytest plugin: audit specs as test items, so ``pytest audits/`` reads like failing tests.

Registered through the ``pytest11`` entry point. It collects ``*.toml`` files inside a
folder named ``audits`` (the convention ``xai init`` scaffolds), one test item per gate
(one item for the whole audit when the spec has no gate). The audit runs once per spec,
when its first item runs. The normal test run (``testpaths = tests``) never looks into
``audits/``, so the plugin only acts when asked to.

Each spec's audit name (its slug, which names its baseline) comes from
:func:`xai.audit.spec_slugs` over every spec collected in the session, as ``xai check``
names them: the file stem, with parent folders prefixed when two stems collide.

Options: ``--xai-baselines DIR`` (default ``reports/baselines`` under the rootdir) and
``--xai-device`` (default ``auto``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["AuditFile", "GateFailed", "GateItem"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's command-line options."""
    group = parser.getgroup("xai", "xai-audit specs as tests")
    group.addoption("--xai-baselines", default=None,
                    help="Folder of audit baselines [default: <rootdir>/reports/baselines].")
    group.addoption("--xai-device", default="auto", help="Device for the audits: auto, cpu or cuda.")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect ``audits/*.toml`` as audit specs."""
    if file_path.suffix == ".toml" and file_path.parent.name == "audits":
        return AuditFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)  # before -k / --deselect: a slug must not depend on the selection
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Name every collected spec's audit, unique across the session (as ``xai check`` would)."""
    from xai.audit import spec_slugs

    files = list(dict.fromkeys(item.parent for item in items if isinstance(item.parent, AuditFile)))
    for file, slug in zip(files, spec_slugs([f.path for f in files]), strict=True):
        file.slug = slug


class GateFailed(Exception):
    """A gate of an audit spec did not hold."""


class AuditFile(pytest.File):
    """One spec file; its items share one audit run."""

    _outcome: Any = None
    slug: str | None = None  # set once collection is complete (pytest_collection_modifyitems)

    def collect(self) -> Iterator[pytest.Item]:
        """One item per gate, named by the gate's label."""
        from xai.audit import load_spec
        from xai.errors import XaiError

        try:
            self.spec = load_spec(self.path)
        except XaiError as exc:
            raise self.CollectError(str(exc)) from None
        if not self.spec.gate:
            yield GateItem.from_parent(self, name="audit runs", index=None)
        for i, gate in enumerate(self.spec.gate):
            yield GateItem.from_parent(self, name=f"[{i}] {gate.label}", index=i)

    def outcome(self) -> Any:
        """Run the audit and its gates once (cached); an input error is re-raised per item."""
        if self._outcome is None:
            from xai._device import resolve_device
            from xai.audit import check_spec
            from xai.errors import XaiError

            config = self.config
            baselines = config.getoption("xai_baselines") or config.rootpath / "reports" / "baselines"
            try:
                self._outcome = check_spec(self.spec, slug=self.slug or self.path.stem, spec_path=str(self.path),
                                           baselines_dir=baselines,
                                           device=resolve_device(config.getoption("xai_device")))
            except XaiError as exc:
                self._outcome = exc
        return self._outcome


class GateItem(pytest.Item):
    """One gate of one audit spec."""

    def __init__(self, *, index: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index

    def runtest(self) -> None:
        """Fail with the gate's message when it does not hold."""
        assert isinstance(self.parent, AuditFile)
        outcome = self.parent.outcome()
        if isinstance(outcome, Exception):
            raise outcome
        if self.index is None:
            return
        gate = outcome.gates[self.index]
        if not gate.passed:
            raise GateFailed(f"{gate.audit}: {gate.name}\n{gate.message}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        """The gate's message (or the input error), not a traceback into the plugin."""
        from xai.errors import XaiError

        if isinstance(excinfo.value, GateFailed | XaiError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item comes from, for pytest's report."""
        return self.path, None, self.name
