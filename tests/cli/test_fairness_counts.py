"""``xai fairness --data`` streamed, ``--save-counts`` and ``--counts``: merged counts report like the rows."""

from __future__ import annotations

import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from xai.cli import app
from xai.fairness import stream

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def _one_line_error(result, message: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert message in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    rng = np.random.default_rng(7)
    n = 900
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "region": rng.choice(["n", "s", "e", "w"], n),
                          "label": rng.integers(0, 2, n)})
    frame["score"] = np.clip(0.4 * frame["label"] + 0.6 * rng.random(n), 0, 1)
    frame["pred"] = (frame["score"] >= 0.5).astype(int)
    folder = tmp_path_factory.mktemp("parts")
    frame.to_parquet(folder / "all.parquet", index=False)
    frame.iloc[:400].to_csv(folder / "monday.csv", index=False)
    frame.iloc[400:].to_parquet(folder / "tuesday.parquet", index=False)
    return folder


def _numbers(stdout: str) -> dict:
    document = json.loads(stdout)
    document.pop("provenance")
    document.pop("dataset")
    return document


def _close(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _close(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)
    else:
        assert a == b


def test_saved_counts_of_two_files_merge_to_the_whole_file(parts, tmp_path):
    common = ["--y-true", "label", "--score", "score", "-s", "sex,region", "--n-boot", "300", "--seed", "2"]
    for name in ("monday.csv", "tuesday.parquet"):
        saved = run("fairness", "--data", str(parts / name), *common, "--save-counts", str(tmp_path / f"{name}.counts"))
        assert saved.exit_code == 0, saved.output
    whole = run("fairness", "--data", str(parts / "all.parquet"), *common, "--json")
    merged = run("fairness", "--counts", str(tmp_path / "monday.csv.counts"), "--counts",
                 str(tmp_path / "tuesday.parquet.counts"), "--n-boot", "300", "--seed", "2", "--json")
    assert whole.exit_code == 0 and merged.exit_code == 0, merged.output
    _close(_numbers(merged.stdout), _numbers(whole.stdout))  # counts exact; score sums to the last bits
    assert json.loads(merged.stdout)["dataset"] == "monday.csv + tuesday.parquet"
    # re-gated and re-reported without the rows, into a report folder
    page = run("fairness", "--counts", str(tmp_path / "monday.csv.counts"), "--n-boot", "0", "-o", str(tmp_path / "r"))
    assert page.exit_code == 0, page.output
    assert json.loads((tmp_path / "r" / "fairness-predictions.json").read_text())["data"]["rows"] == 400


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is not a count table (JSON)"),
    (b"\x80\x04\x95 not json", "is not a count table (JSON)"),
    (b"[1, 2]", "not a count table"),
    (b'{"format": "xai-counts", "version": 99}', "unsupported count table version 99"),
    (b'{"format": "other"}', "not a count table"),
])
def test_broken_counts_files_are_one_line_and_exit_2(tmp_path, content, message):
    path = tmp_path / "bad.counts"
    path.write_bytes(content)
    _one_line_error(run("fairness", "--counts", str(path)), message)


def _valid() -> dict:
    table = stream.CountTable(task="binary", features=("g",), levels=(("a", "b"),),
                              cells=np.array([[1, 2, 3, 4], [5, 6, 7, 8]]), calibration=None, rows=36, source="p")
    return table.to_dict()


@pytest.mark.parametrize(("change", "message"), [
    ({"cells": [1, 2, 3, 4, 5, 6, 7, -8]}, "counts from 0"),
    ({"cells": [1, 2, 3, 4, 5, 6, 7, 8.5]}, "whole counts"),
    ({"cells": [1, 2, 3, 4, 5, 6, 7, True]}, "only numbers"),
    ({"cells": [1, 2, 3]}, "cells must be a list of 8 numbers"),
    ({"cells": [[1, 2, 3, 4], [5, 6, 7, 8]]}, "cells must be a list of 8 numbers"),
    ({"rows": 35}, "is not the sum of the cells"),
    ({"levels": [["b", "a"]]}, "distinct, sorted"),
    ({"levels": [["a", "a"]]}, "distinct, sorted"),
    ({"levels": [["a", 1]]}, "list of strings"),
    ({"task": "astrology"}, "unknown task 'astrology'"),
    ({"features": []}, "at least one sensitive column"),
    ({"calibration": [0.5] * 60}, "does not fit the cells"),
    ({"calibration": [1] * 7}, "calibration must hold 60 numbers"),
    ({"score_range": [1, 0]}, "score_range must be [min, max]"),
    ({"inputs": "x"}, "inputs must be a list"),
    ({"source": None}, "field 'source' is missing"),
    ({"levels": [["a", "b"]] * 1}, None),  # unchanged: the control case loads
])
def test_malformed_counts_are_one_line_and_exit_2(tmp_path, change, message):
    document = {**_valid(), **change}
    path = tmp_path / "t.counts"
    path.write_text(json.dumps(document))
    result = run("fairness", "--counts", str(path), "--n-boot", "0", "--json")
    if message is None:
        assert result.exit_code == 0, result.output
        return
    _one_line_error(result, message)
    assert result.stdout == ""


def test_nan_and_huge_counts_files_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "nan.counts"
    path.write_text(json.dumps(_valid()).replace('"threshold": null', '"threshold": NaN'))
    _one_line_error(run("fairness", "--counts", str(path)), "NaN is not a number")
    monkeypatch.setattr(stream, "MAX_COUNTS_BYTES", 100)
    path.write_text(json.dumps(_valid()))
    _one_line_error(run("fairness", "--counts", str(path)), "limit 100")


def test_a_pickle_counts_file_is_never_unpickled(tmp_path):
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.counts"
    path.write_bytes(pickle.dumps(Payload()))
    _one_line_error(run("fairness", "--counts", str(path)), "is not a count table")
    assert not marker.exists()


def test_counts_flags_do_not_mix(parts, tmp_path):
    _one_line_error(run("fairness", "--counts", str(tmp_path / "absent.counts")), "counts file not found")
    _one_line_error(run("fairness", "--counts", str(tmp_path / "x"), "--y-true", "label"),
                    "describe a --data file")
    _one_line_error(run("fairness", "adult-mlp", "-s", "sex", "--counts", str(tmp_path / "x")), "leave out MODEL")
    _one_line_error(run("fairness", "--data", str(parts / "all.parquet"), "--y-true", "label", "--y-pred", "pred",
                        "-s", "sex", "--save-counts", str(tmp_path / "no" / "such" / "t.counts")), "does not exist")
    for name in ("monday.csv", "tuesday.parquet"):
        assert run("fairness", "--data", str(parts / name), "--y-true", "label", "--y-pred", "pred", "-s", "sex",
                   "--save-counts", str(tmp_path / f"{name}.counts")).exit_code == 0
    by_score = run("fairness", "--data", str(parts / "all.parquet"), "--y-true", "label", "--score", "score",
                   "-s", "sex", "--save-counts", str(tmp_path / "score.counts"))
    assert by_score.exit_code == 0
    _one_line_error(run("fairness", "--counts", str(tmp_path / "monday.csv.counts"), "--counts",
                        str(tmp_path / "score.counts")), "cannot merge count tables with different predictions")


def test_a_killed_scan_leaves_the_previous_report_whole(parts, tmp_path, monkeypatch):
    out = tmp_path / "report"
    args = ["fairness", "--data", str(parts / "all.parquet"), "--y-true", "label", "--y-pred", "pred", "-s", "sex",
            "--n-boot", "0", "-o", str(out), "--save-counts", str(tmp_path / "t.counts")]
    assert run(*args).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    counts_before = (tmp_path / "t.counts").read_bytes()
    calls = {"n": 0}
    encode = stream._Levels.encode

    def killed(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > 3:  # mid-scan, after some batches
            raise KeyboardInterrupt
        return encode(self, *a, **k)

    monkeypatch.setattr(stream._Levels, "encode", killed)
    monkeypatch.setattr(stream, "BATCH_ROWS", 100)
    monkeypatch.setattr(stream.scan_predictions, "__kwdefaults__",
                        {**stream.scan_predictions.__kwdefaults__, "batch_rows": 100})
    assert run(*args).exit_code == 130
    assert calls["n"] > 3
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert (tmp_path / "t.counts").read_bytes() == counts_before


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_rows_per_second_only_on_a_terminal(parts, monkeypatch):
    args = {"y_true": "label", "y_pred": "pred", "sensitive": ["sex"], "batch_rows": 100}
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    stream.scan_predictions(parts / "all.parquet", **args)
    assert "rows/s" in terminal.getvalue()
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    stream.scan_predictions(parts / "all.parquet", **args)
    assert piped.getvalue() == ""
