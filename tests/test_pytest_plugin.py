"""The pytest plugin: ``pytest audits/`` runs specs as test items, one per gate."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

from .conftest import REPO, ZOO

pytest_plugins = ["pytester"]

SPEC = '''title = "LeNet"
explain = []
[model]
name = "lenet"
[data]
samples = 120
sensitive = ["ink"]
[[probe]]
name = "group-metrics"
[[gate]]
metric = "accuracy"
op = ">="
value = 0.5
[[gate]]
metric = "accuracy"
op = ">="
value = 1.01
name = "perfect and then some"
'''


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Load the plugin explicitly (and no other auto-loaded plugin), so the test does not depend on
    # whether this checkout's entry point is installed yet.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "XAI_ZOO_DIR": str(ZOO),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "xai.pytest_plugin", "-p", "no:cacheprovider",
                           "--xai-device", "cpu", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_entry_point_is_declared():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["pytest11"]["xai"]
    assert hasattr(import_module(target), "pytest_collect_file")


@pytest.mark.slow
def test_pytest_audits_runs_one_item_per_gate(tmp_path):
    (tmp_path / "audits").mkdir()
    (tmp_path / "audits" / "lenet.toml").write_text(SPEC)
    done = _pytest(tmp_path, "audits/", "-v")
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "audits/lenet.toml::[0] accuracy >= 0.5 PASSED" in out
    assert "audits/lenet.toml::[1] perfect and then some FAILED" in out
    assert "accuracy = " in out and "fails >= 1.01" in out  # the gate's message, not a traceback
    assert "Traceback" not in out and "1 failed, 1 passed" in out


def _inprocess(pytester, monkeypatch, *args: str):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester.runpytest_inprocess("-p", "xai.pytest_plugin", "-p", "no:cacheprovider", *args)


def test_a_broken_spec_is_a_collection_error_naming_the_key(pytester, monkeypatch):
    pytester.mkdir("audits")
    (pytester.path / "audits" / "broken.toml").write_text('title = "b"\n[model]\nname = "lenet"\nbogus = 1\n')
    result = _inprocess(pytester, monkeypatch, "audits/")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*broken.toml: model.bogus: Extra inputs are not permitted (line 4)*"])


def test_plain_pytest_run_ignores_audits(pytester, monkeypatch):
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    pytester.mkdir("audits")
    (pytester.path / "audits" / "lenet.toml").write_text(SPEC)
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    result = _inprocess(pytester, monkeypatch, "-q")
    assert result.ret == 0
    result.assert_outcomes(passed=1)
    assert "lenet" not in result.stdout.str()


def test_same_stem_specs_in_two_audits_folders_get_the_slugs_xai_check_gives(pytester, monkeypatch):
    from xai.audit import spec_slugs

    for folder in ("x", "y"):
        (pytester.path / folder / "audits").mkdir(parents=True)
        (pytester.path / folder / "audits" / "dup.toml").write_text(SPEC)
    paths = [pytester.path / f / "audits" / "dup.toml" for f in ("x", "y")]
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for selection in ((), ("-k", "x")):  # a deselection does not rename the audits (nor their baselines)
        items, _ = pytester.inline_genitems("-p", "xai.pytest_plugin", "-p", "no:cacheprovider", *selection,
                                            "x/audits", "y/audits")
        slugs = {item.parent.path: item.parent.slug for item in items}
        assert slugs == dict(zip(paths, spec_slugs(paths), strict=True))
        assert sorted(slugs.values()) == ["x-audits-dup", "y-audits-dup"]
