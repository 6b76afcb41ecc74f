"""The CLI's edge: exit codes as a contract (0/1/2/3/130), one error line, output hygiene.

Every failure case asserts the exit code, exactly one stderr line starting with
``error:`` (the whole of stderr when nothing ran before the failure) and no traceback.
"""

from __future__ import annotations

import dataclasses
import errno
import importlib
import json
import os
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from xai.cli import app
from xai.errors import DataError

REPO = Path(__file__).resolve().parents[2]
# the modules (``xai.cli.check`` as an attribute is the command function of the same name)
check_cli = importlib.import_module("xai.cli.check")
fairness_cli = importlib.import_module("xai.cli.fairness")
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_one_error(result, code: int, *, alone: bool = True) -> str:
    """Exit ``code``, one ``error:`` line (the only stderr line when ``alone``), no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    if alone:
        assert result.stderr.splitlines() == lines, result.stderr
    assert "╭" not in result.stderr  # no rich error box
    return lines[0]


@pytest.fixture(scope="module")
def preds(tmp_path_factory) -> Path:
    """A predictions CSV whose group values carry escape sequences and rich markup."""
    rng = np.random.default_rng(0)
    n = 200
    hostile = ["\x1b[31mred\x1b[0m", "osc\x1b]8;;http://evil.example\x07link\x1b]8;;\x07", "[/]", "[bold]b\x9b2J"]
    frame = pd.DataFrame({"grp\x1b[2Jcol": rng.choice(hostile, n), "label": rng.integers(0, 2, n)})
    frame["pred"] = rng.integers(0, 2, n)
    path = tmp_path_factory.mktemp("preds") / "preds.csv"
    frame.to_csv(path, index=False)
    return path


def fairness_args(preds: Path, *extra: str) -> list[str]:
    return ["fairness", "--data", str(preds), "--y-true", "label", "--y-pred", "pred",
            "--sensitive", "grp\x1b[2Jcol", "--n-boot", "20", *extra]


def _boom(*_args, **_kwargs):
    raise RuntimeError("boom [/] \x1b[31m")


# ---------------------------------------------------------------- exit codes


def test_internal_error_is_exit_3_in_one_line(preds, monkeypatch):
    monkeypatch.setattr(fairness_cli, "audit_predictions", _boom)
    line = assert_one_error(run(*fairness_args(preds)), 3)
    assert line == "error: internal error: RuntimeError: boom [/] (rerun with --debug for the traceback)"


def test_debug_flag_and_env_show_the_traceback(preds, monkeypatch):
    monkeypatch.setattr(fairness_cli, "audit_predictions", _boom)
    for result in (run("--debug", *fairness_args(preds)), run(*fairness_args(preds), env={"XAI_DEBUG": "1"})):
        assert result.exit_code == 3
        assert "Traceback" in result.stderr and "_boom" in result.stderr
        assert error_lines(result.stderr) == ["error: internal error: RuntimeError: boom [/]"]


def test_keyboard_interrupt_is_130(preds, monkeypatch):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(fairness_cli, "audit_predictions", interrupted)
    assert assert_one_error(run(*fairness_args(preds)), 130) == "error: interrupted"


def test_os_error_while_writing_is_2_naming_the_path(preds, monkeypatch, tmp_path):
    target = tmp_path / "out" / "fairness-predictions.html"

    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
    monkeypatch.setattr(fairness_cli, "write_report", full_disk)
    line = assert_one_error(run(*fairness_args(preds, "-o", str(tmp_path / "out"))), 2)
    assert str(target) in line and os.strerror(errno.ENOSPC) in line


def test_full_disk_in_a_real_write_names_the_file_and_leaves_no_temp(preds, monkeypatch, tmp_path):
    def no_space(_fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what write/fsync raise: no file name
    monkeypatch.setattr(os, "fsync", no_space)
    out = tmp_path / "out"
    line = assert_one_error(run(*fairness_args(preds, "-o", str(out))), 2)
    assert str(out) in line and os.strerror(errno.ENOSPC) in line
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_xai_error_stays_2(preds, monkeypatch):
    def bad(*_args, **_kwargs):
        raise DataError("column [/] \x1b]0;title\x07is bad")
    monkeypatch.setattr(fairness_cli, "audit_predictions", bad)
    assert assert_one_error(run(*fairness_args(preds)), 2) == "error: column [/] is bad"


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["check", "--bogus"],
    ["explain"],  # missing MODEL
    ["explain", "lenet", "-m", "saliency", "--seed", "abc"],
    ["explain", "lenet", "-m", "saliency", "--seed", "-1"],
    ["audit", "--seed", str(2**32)],
    ["sanity", "lenet", "-m", "saliency", "--samples", "many"],
    ["fairness", "--n-boot", "1.5"],
    ["zoo", "train", "--seed", "-1"],
    ["zoo", "card"],  # missing NAME
    ["bias", "weat", "--permutations", "lots"],
    ["bias", "seat", "--seed", "-3"],
    ["bias", "eec", "bert-mini", "--top", "0"],
])
def test_usage_errors_are_one_line_exit_2(args):
    line = assert_one_error(run(*args), 2)
    assert "--help" in line  # the hint names the command's help


def test_seed_bounds_name_the_range():
    line = assert_one_error(run("explain", "lenet", "-m", "saliency", "--seed", "-1"), 2)
    assert "--seed" in line and "0" in line


def test_bad_option_value_names_method_and_option():
    line = assert_one_error(run("explain", "adult-mlp", "-m", "integrated-gradients", "-n", "1",
                                "--option", "steps=abc", "--device", "cpu"), 2, alone=False)
    assert "integrated-gradients: option steps:" in line and "(got 'abc')" in line


def test_library_warnings_only_with_verbose(preds, monkeypatch):
    def noisy(*_args, **_kwargs):
        warnings.warn("torch says something about the future", FutureWarning, stacklevel=1)
        raise DataError("bad input")
    monkeypatch.setattr(fairness_cli, "audit_predictions", noisy)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet = run(*fairness_args(preds))
    assert_one_error(quiet, 2)
    assert not [w for w in seen if issubclass(w.category, FutureWarning)]
    with pytest.warns(FutureWarning, match="about the future"):
        loud = run("--verbose", *fairness_args(preds))
    assert loud.exit_code == 2


# ---------------------------------------------------------------- xai check never says 1 for broken input

FAST_SPEC = ('title = "{title}"\nexplain = []\nprobe = []\n[model]\nname = "adult-mlp"\n'
             '[data]\nname = "adult"\nsamples = 40\n')
ACCURACY_GATE = '[[gate]]\nmetric = "accuracy"\nop = ">="\nvalue = 0.0\nname = "{name}"\n'
REGRESSION_GATE = '[[gate]]\nmetric = "accuracy"\nop = ">="\nregression = true\n'


@pytest.fixture
def no_audit(monkeypatch) -> list[str]:
    """Record every audit ``xai check`` starts (the cases below must fail before any)."""
    started: list[str] = []

    def refuse(spec, *, slug, **_kwargs):
        started.append(slug)
        raise AssertionError("an audit ran")
    monkeypatch.setattr(check_cli, "check_spec", refuse)
    return started


def _spec(folder: Path, text: str, stem: str = "s") -> Path:
    path = folder / f"{stem}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_bad_option_type_in_spec_is_2(tmp_path):
    spec = _spec(tmp_path, FAST_SPEC.format(title="t").replace("explain = []\n", "")
                 + '[[explain]]\nmethod = "integrated-gradients"\nsamples = 1\noptions = { steps = "many" }\n')
    line = assert_one_error(run("check", str(spec), "-o", str(tmp_path / "r"), "--quiet", "--device", "cpu"), 2)
    assert "integrated-gradients: option steps:" in line and "(got 'many')" in line


@pytest.mark.parametrize("metrics", ['"accuracy"', '[0.5, 0.6]', '{"accuracy": NaN}', '{"accuracy": Infinity}',
                                     '{"accuracy": "0.9"}', '{"accuracy": true}'])
def test_check_bad_baseline_is_2_before_any_audit(tmp_path, no_audit, metrics):
    spec = _spec(tmp_path, FAST_SPEC.format(title="t") + REGRESSION_GATE)
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "s.json").write_text('{"slug": "s", "metrics": ' + metrics + "}", encoding="utf-8")
    line = assert_one_error(run("check", str(spec), "--baselines", str(baselines), "-o", str(tmp_path / "r")), 2)
    assert "s.json" in line and "not a baseline file" in line and "metrics" in line
    assert no_audit == []


@pytest.mark.parametrize("flag", ["--junit", "--summary", "-o", "GITHUB_STEP_SUMMARY"])
def test_check_unwritable_outputs_are_2_before_any_audit(tmp_path, no_audit, flag):
    spec = _spec(tmp_path, FAST_SPEC.format(title="t"))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    for bad in (folder, a_file / "under-a-file.xml") if flag != "-o" else (a_file, a_file / "sub"):
        env = {"GITHUB_STEP_SUMMARY": str(bad)} if flag == "GITHUB_STEP_SUMMARY" else None
        args = ["check", str(spec)] + ([] if env else [flag, str(bad)])
        line = assert_one_error(run(*args, env=env), 2)
        assert str(bad.name) in line
    assert no_audit == []


def test_check_spec_seed_and_nan_gate_are_2(tmp_path, no_audit):
    seed = _spec(tmp_path, FAST_SPEC.format(title="t").replace('title = "t"\n', 'title = "t"\nseed = -1\n'), "a")
    assert "seed" in assert_one_error(run("check", str(seed)), 2)
    nan_gate = _spec(tmp_path, FAST_SPEC.format(title="t") + '[[gate]]\nmetric = "accuracy"\nop = ">="\nvalue = nan\n',
                     "b")
    assert "finite" in assert_one_error(run("check", str(nan_gate)), 2)
    assert no_audit == []


# ---------------------------------------------------------------- output hygiene


def test_escape_sequences_and_markup_from_csv_never_reach_the_terminal(preds):
    result = run(*fairness_args(preds))
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x9b" not in result.stdout and "\x07" not in result.stdout
    assert "\x1b" not in result.stderr
    # the strings are shown as written, without their control sequences
    for shown in ("red", "osclink", "[/]", "[bold]b2J", "grpcol"):
        assert shown in result.stdout, result.stdout
    document = json.loads(run(*fairness_args(preds, "--json")).stdout)  # JSON keeps the data as it is
    assert "[/]" in document["tables"][0]["groups"]


def test_check_title_and_gate_names_xml_markdown_terminal_and_links(tmp_path):
    title = "t\\u0001 \\u001b[31m[/] | ok"
    gate = "g\\u0001|pipe\\u001b]0;x\\u0007[/]"
    spec = _spec(tmp_path, FAST_SPEC.format(title=title) + ACCURACY_GATE.format(name=gate), "javascript:alert(1)")
    junit, summary, out = tmp_path / "junit.xml", tmp_path / "summary.md", tmp_path / "reports"
    result = run("check", str(spec), "--junit", str(junit), "--summary", str(summary), "-o", str(out),
                 "--device", "cpu")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\x01" not in result.stdout
    assert "[/]" in result.stdout  # shown, not parsed as markup
    root = ET.fromstring(junit.read_bytes())  # valid XML although the title holds \x01
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["title"] == "t \x1b[31m[/] | ok".replace("\x1b", "")  # ESC is not valid XML 1.0 either
    assert [c.get("name") for c in root.iter("testcase")] == ["g|pipe]0;x[/]"]
    rows = [line for line in summary.read_text(encoding="utf-8").splitlines() if line.startswith("| ✅")]
    assert len(rows) == 1 and "g\\|pipe" in rows[0] and "\x1b" not in rows[0]
    index = (out / "index.html").read_text(encoding="utf-8")
    # The slug is made safe (xai.audit.safe_slug) and the href quoted: never a javascript: link.
    assert 'href="javascript-alert-1-.html"' in index and 'href="javascript:' not in index


def test_report_links_only_for_http_urls(tmp_path):
    from xai.audit import AuditSpec, DataSpec, ModelSpec, run_audit
    from xai.report.html import render_audit_page

    spec = AuditSpec(title="t", model=ModelSpec(name="adult-mlp"), data=DataSpec(name="adult", samples=20),
                     explain=[], probe=[])
    result = run_audit(spec, slug="javascript:x", zoo_dir=REPO / "zoo")
    assert result.model.card is not None
    for paper, linked in (("javascript:alert(1)", False), ("data:text/html,<b>x</b>", False),
                          ("https://arxiv.org/abs/1", True)):
        card = {**result.model.card, "paper": paper}
        page = render_audit_page(dataclasses.replace(result, model=dataclasses.replace(result.model, card=card)))
        assert (f'<a href="{paper}"' in page) is linked
        assert 'href="javascript:' not in page and 'href="data:' not in page
        assert 'href="javascript%3Ax.json"' in page


def test_every_template_link_from_data_is_quoted_or_http_only():
    """No template builds an href from data without ``local_href`` or an ``is http_url`` guard."""
    import re

    for template in (REPO / "xai" / "report" / "templates").glob("*.j2"):
        text = template.read_text(encoding="utf-8")
        for match in re.finditer(r'href="\{\{\s*([^}]*?)\s*\}\}', text):
            expression = match.group(1)
            guarded = re.search(r"\{%\s*if\s+" + re.escape(expression) + r"\s+is\s+http_url\s*%\}[^{]*$",
                                text[:match.start()])
            assert expression.endswith("|local_href") or guarded, (template.name, expression)


# ---------------------------------------------------------------- the real entry point


def test_python_dash_m_usage_error_is_one_line():
    done = subprocess.run([sys.executable, "-m", "xai", "explain", "lenet", "-m", "saliency", "--seed", "-1"],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          timeout=600)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(done.stderr.splitlines()) == 1 and "--seed" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["explain", "lenet", "-m", "saliency", "-n", "2"],
                                     ["dream", "lenet", "--layer", "conv2", "--steps", "2"],
                                     ["project", "lenet", "--layer", "fc1"]], ids=lambda c: c[0])
def test_one_off_commands_refuse_an_empty_or_file_output_before_any_work(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    line = assert_one_error(run(*command, "-o", ""), 2)
    assert "output folder name is empty" in line
    line = assert_one_error(run(*command, "-o", "afile"), 2)
    assert "afile is a file" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing written in the working directory
