"""Family (d): argument lists for several commands, and random token lists at the root.

Each input starts from a call that works (a predictions audit, a cheap ``xai check``,
``xai explain lenet``, ``xai zoo card``, ``xai init``) and appends random options with
values of the right and the wrong kind: negative, NaN and overflowing numbers, empty
strings, rich markup and escapes, output paths that are files, folders, or lie under a
file, ``$GITHUB_STEP_SUMMARY`` pointing at a folder. Other inputs are random token lists
given to ``xai`` itself (typer's usage errors must be one line too). Every call runs in
a fresh working folder, and the committed zoo must be left untouched. Values stay
small where they set an amount of work (steps, resamples): those are resource limits,
not parsing, and are left to their own tests.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from ..conftest import ZOO
from ._contract import assert_contract, describe, fuzz_settings, invoke, snapshot
from ._strategies import HOSTILE_TEXT

EXAMPLES = 70
SPEC = """title = "argv"
explain = []
probe = []
[model]
name = "german-mlp"
[data]
samples = 40
[[gate]]
metric = "accuracy"
op = ">="
value = 0.0
"""

JUNK = ("", "-1", "0", "nan", "inf", "abc", "99999999999999999999", "[/]", "\x1b[31mx", "é", "--json", "-")


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("argv-assets")
    (folder / "preds.csv").write_text("label,pred,score,sex\n" + "".join(
        f"{i % 2},{(i // 2) % 2},{(i % 7) / 7:.3f},{'FM'[i % 3 == 0]}\n" for i in range(40)))
    (folder / "argv.toml").write_text(SPEC)
    (folder / "file.txt").write_text("not a folder\n")
    (folder / "folder").mkdir()
    return {"csv": folder / "preds.csv", "spec": folder / "argv.toml", "file": folder / "file.txt",
            "folder": folder / "folder"}


def _paths(assets: dict[str, Path], work: Path, name: str) -> st.SearchStrategy[str]:
    """An output path: fresh, an existing file, a folder, under a file, empty, or the working folder."""
    return st.sampled_from([str(work / name), str(assets["file"]), str(assets["folder"]),
                            str(assets["file"] / name), "", ".", str(work / "deep" / "er" / name)])


def _options(draw: st.DrawFn, table: dict[str, st.SearchStrategy[str] | None], most: int = 4) -> list[str]:
    """Up to ``most`` options from ``table`` (``None``: a flag), values drawn from their strategy or junk."""
    args: list[str] = []
    for option in draw(st.lists(st.sampled_from(sorted(table)), max_size=most)):
        values = table[option]
        args.append(option)
        if values is not None:
            args.append(draw(st.one_of(values, st.sampled_from(JUNK))))
    return args


@st.composite
def calls(draw: st.DrawFn, assets: dict[str, Path], work: Path) -> tuple[list[str], dict[str, Any], set[int]]:
    """``(args, env, allowed exit codes)`` for one call."""
    command = draw(st.sampled_from(["fairness", "check", "root", "zoo", "init", "fairness", "root", "explain"]))
    event(f"argv command: {command}")
    out = _paths(assets, work, "out")
    env: dict[str, Any] = {}
    if command == "fairness":
        args = ["fairness", "--data", str(assets["csv"]), "--y-true", "label", "--y-pred", "pred", "-s", "sex",
                "--n-boot", "5"]
        args += _options(draw, {
            "--data": st.sampled_from([str(assets["file"]), str(assets["folder"]), str(work / "none.csv")]),
            "--y-true": st.sampled_from(["label", "pred", "sex", "nope"]),
            "--y-pred": st.sampled_from(["pred", "label", "score"]),
            "--score": st.sampled_from(["score", "label", "sex"]),
            "--threshold": st.sampled_from(["0.5", "0", "1", "-1", "2", "1e308", "-inf"]),
            "-s": st.sampled_from(["sex", "sex,sex", "label", ",", "sex,nope"]),
            "--n-boot": st.sampled_from(["0", "2", "-5"]),
            "--confidence": st.sampled_from(["0.5", "0.99", "1", "0", "-0.5"]),
            "--min-group-size": st.sampled_from(["1", "1000", "-1"]),
            "--pos-label": st.sampled_from(["1", "0", "2"]),
            "--task": st.sampled_from(["multiclass", "regression", "Binary"]),
            "--seed": st.sampled_from(["1", "-1", str(2**64)]),
            "--probe": st.sampled_from(["group-metrics", "proxy", "nope"]),
            "--split": st.sampled_from(["train", "all", "nope"]),
            "--option": st.sampled_from(["n_boot=3", "k=v", "=", "novalue"]),
            "--device": st.sampled_from(["cpu", "cuda", "tpu"]),
            "--weights": st.just(str(assets["file"])),
            "--trust-pickle": None, "--json": None, "-o": out, "--bogus": None,
        })
        return args, env, {0, 2}
    if command == "check":
        args = ["check", str(assets["spec"]), "-o", str(work / "reports"), "--baselines", str(work / "baselines"),
                "--device", "cpu"]
        args += _options(draw, {
            "-o": out, "--junit": _paths(assets, work, "junit.xml"), "--summary": _paths(assets, work, "summary.md"),
            "--baselines": _paths(assets, work, "baselines"), "--update-baseline": None,
            "--device": st.sampled_from(["cpu", "cuda", "tpu", "auto"]),
            "--zoo-dir": st.sampled_from([str(ZOO), str(assets["file"]), str(work / "zoo-typo")]),
            "--json": None, "--quiet": None, "--bogus": None,
        })
        if draw(st.booleans()):
            env["GITHUB_STEP_SUMMARY"] = draw(_paths(assets, work, "step-summary.md"))
        return args, env, {0, 2}
    if command == "explain":
        args = ["explain", "lenet", "-m", "saliency", "-n", "2", "--device", "cpu"]
        args += _options(draw, {
            "-m": st.sampled_from(["integrated-gradients", "grad-cam", "nope", "[/]"]),
            "-n": st.sampled_from(["1", "3", "0", "-2"]),
            "--target": st.sampled_from(["label", "3", "10", "-1"]),
            "--option": st.sampled_from(["steps=4", "steps=abc", "steps=-1", "nope=1", "=x", "novalue", "steps=nan"]),
            "--layer": st.sampled_from(["conv1", "nope", "[/]"]),
            "--seed": st.sampled_from(["3", "-1", str(2**64)]),
            "--device": st.sampled_from(["cuda", "tpu"]),
            "--data": st.sampled_from(["digits", "adult", "nope"]),
            "--weights": st.just(str(assets["file"])),
            "--zoo-dir": st.sampled_from([str(ZOO), str(assets["folder"])]),
            "--trust-pickle": None, "--json": None, "-o": out, "--bogus": None,
        }, most=3)
        return args, env, {0, 2}
    if command == "zoo":
        args = ["zoo", draw(st.sampled_from(["card", "list"]))]
        if args[1] == "card":
            args.append(draw(st.sampled_from(["lenet", "german-mlp", "nope", "", "../zoo/lenet", *HOSTILE_TEXT[:8]])))
        args += _options(draw, {"--zoo-dir": st.sampled_from([str(ZOO), str(assets["file"]), str(work / "none")]),
                                "--json": None, "--bogus": None}, most=2)
        return args, env, {0, 2}
    if command == "init":
        args = ["init", draw(_paths(assets, work, "repo"))]
        args += _options(draw, {"--force": None, "--json": None, "--bogus": None}, most=2)
        return args, env, {0, 2}
    tokens = st.sampled_from(["fairness", "check", "zoo", "card", "list", "init", "explain", "bias", "--help",
                              "--version", "-o", "--out=", "--json", "--quiet", "--device", "cpu", "--seed", "-1",
                              "--seed=abc", "--n-boot", "5", "--option", "steps=abc", "lenet", "-m", "saliency",
                              "--samples", "2", "--", "=", "--bogus", "-x", str(assets["spec"]), *HOSTILE_TEXT[:12]])
    return draw(st.lists(tokens, max_size=6)), env, {0, 1, 2}


#: A bare group prints its help (click's ``no_args_is_help``, exit 2 with the help on stdout):
#: a usage convention, not an error report, so the one-line rule does not apply to it.
BARE_GROUPS = ([], ["zoo"], ["bias"])


@given(data=st.data())
@fuzz_settings(EXAMPLES)
def test_fuzzed_command_lines_keep_the_contract(data: st.DataObject, assets: dict[str, Path]) -> None:
    before = snapshot(ZOO)
    home = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="xai-fuzz-") as tmp:
        work = Path(tmp)
        args, env, codes = data.draw(calls(assets, work), label="call")
        os.chdir(work)  # `-o ''`, `init .` and relative defaults land here, never in the repository
        try:
            result = invoke(args, family="argv", env=env)
        finally:
            os.chdir(home)
        if args in BARE_GROUPS and result.exit_code == 2 and not result.stderr:
            assert "Usage" in result.stdout and "\x1b" not in result.stdout, describe(result, args)
        else:
            outputs = [work, assets["folder"], *(Path(p) for p in (env.get("GITHUB_STEP_SUMMARY"),) if p)]
            assert_contract(result, args, codes=codes, outputs=outputs)
    assert snapshot(ZOO) == before, f"the committed zoo changed under {args!r}"
