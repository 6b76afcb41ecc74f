"""``xai fairness`` and ``xai bias weat`` on bad or degenerate input: exit 2 with one line, or a flagged result."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from xai.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def _strict_json(text: str):
    def refuse(token: str):
        raise AssertionError(f"non-strict JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output and result.stdout == ""


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "site": "one", "label": rng.integers(0, 2, n),
                          "score": rng.uniform(0.05, 0.95, n)})
    frame["pred"] = (frame["score"] >= 0.5).astype(int)
    path = tmp_path_factory.mktemp("scores") / "scores.csv"
    frame.to_csv(path, index=False)
    return str(path), frame


@pytest.mark.parametrize(("args", "message"), [
    (["--threshold", "nan"], "--threshold must be a finite number, got nan"),
    (["--threshold", "inf"], "--threshold must be a finite number, got inf"),
    (["--threshold", "-1"], "--threshold -1 is outside [0, 1], but the scores in 'score' are probabilities"),
    (["--threshold", "2"], "--threshold 2 is outside [0, 1]"),
    (["--n-boot", "100000000"], "--n-boot must be between 0 (no intervals) and 100,000, got 100,000,000"),
    (["--n-boot", "-1"], "--n-boot must be between 0"),
    (["--max-groups", "0"], "--max-groups must be at least 1"),
    (["--confidence", "nan"], "--confidence must be a number strictly between 0 and 1"),
])
def test_bad_options_are_one_line_and_exit_2(scores, args, message):
    _one_line_error(run("fairness", "--data", scores[0], "--y-true", "label", "--score", "score", "-s", "sex",
                        *args), message)


def test_n_boot_is_refused_before_the_file_is_read(tmp_path):
    _one_line_error(run("fairness", "--data", str(tmp_path / "absent.csv"), "--y-true", "y", "--y-pred", "p",
                        "-s", "g", "--n-boot", "100000000"), "--n-boot must be between 0")


def test_every_row_on_one_side_is_a_warning_on_the_terminal(scores):
    result = run("fairness", "--data", scores[0], "--y-true", "label", "--score", "score", "-s", "sex",
                 "--threshold", "0.99", "--n-boot", "0")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert "warning: --threshold 0.99 predicts every row negative" in flat
    assert "four-fifths rule: pass" not in flat and "four-fifths rule: FAIL" not in flat


def test_one_group_is_not_a_four_fifths_pass(scores):
    text = run("fairness", "--data", scores[0], "--y-true", "label", "--y-pred", "pred", "-s", "site",
               "--n-boot", "50")
    assert text.exit_code == 0, text.output
    flat = " ".join(text.stdout.split())
    assert "four-fifths rule: pass" not in flat and "four-fifths rule: FAIL" not in flat
    assert "'site' has one group with rows ('one'): disparities are undefined" in flat
    assert "demographic parity difference: -" in flat
    result = run("fairness", "--data", scores[0], "--y-true", "label", "--y-pred", "pred", "-s", "site",
                 "--n-boot", "50", "--json")
    assert result.exit_code == 0, result.output
    table = _strict_json(result.stdout)["tables"][0]
    assert table["four_fifths"] is None and table["disparity_intervals"] == {}
    assert set(table["disparities"].values()) == {None} and set(table["ratios"].values()) == {None}
    assert table["by_group"]["count"] == {"one": 200}


@pytest.mark.parametrize(("text", "args", "message"), [
    ("y,p,g\n1,1,a\n0,inf,b\n1,-inf,a\n", ["--y-pred", "p"], "column 'p' has 2 infinite values (first at data row 2)"),
    ("y,s,g\n1,0.5,a\n0,inf,b\n", ["--score", "s"], "column 's' has 1 infinite values"),
    ("y,p,g\n1,1,a\nnan,0,b\n", ["--y-pred", "p"], "column 'y' has 1 missing values"),
    ("y,p,g\n1.5,1,a\ninf,0,b\n", ["--y-pred", "p", "--task", "regression"], "column 'y' has 1 infinite values"),
    ("y,g,p,g\n1,a,1,b\n", ["--y-pred", "p"], "f.csv has two columns named 'g'"),
])
def test_bad_values_and_headers_are_one_line_and_exit_2(tmp_path, text, args, message):
    path = tmp_path / "f.csv"
    path.write_text(text)
    _one_line_error(run("fairness", "--data", str(path), "--y-true", "y", "-s", "g", *args), message)


def test_groups_are_bounded_and_tables_capped(tmp_path):
    n = 120
    frame = pd.DataFrame({"id": np.repeat(np.arange(n), 4), "y": np.tile([1, 0, 1, 0], n)})
    frame["p"] = frame["y"]
    frame.loc[frame["id"].isin([5, 77]), "p"] = 1 - frame["y"]  # two groups get every prediction wrong
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    base = ["fairness", "--data", str(path), "--y-true", "y", "--y-pred", "p", "-s", "id", "--n-boot", "0"]
    _one_line_error(run(*base, "--max-groups", "100"), "sensitive column 'id' has 120 groups (limit 100)")
    text = run(*base)
    assert text.exit_code == 0, text.output
    assert "... and 70 more groups" in " ".join(text.stdout.split())
    rows = [line for line in text.stdout.splitlines() if line.startswith("│")]
    shown = {line.split("│")[1].strip() for line in rows}
    assert {"5", "77", "overall"} <= shown and len(shown) == 51
    document = _strict_json(run(*base, "--json").stdout)
    assert len(document["tables"][0]["groups"]) == n


def test_bootstrap_too_big_for_memory_says_what_to_lower(tmp_path):
    frame = pd.DataFrame({"id": np.arange(2000) % 900, "y": np.arange(2000) % 2})
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    _one_line_error(run("fairness", "--data", str(path), "--y-true", "y", "--y-pred", "y", "-s", "id",
                        "--n-boot", "100000"), "the bootstrap of 'id' (900 groups x 100,000 resamples)")


# ----------------------------------------------------------------------------- xai bias weat


@pytest.fixture
def weat_files(tmp_path):
    same = "1 1 0"
    lines = [f"x1 {same}", f"x2 {same}", f"y1 {same}", f"y2 {same}", "a1 1 0 0", "a2 1 0.1 0", "b1 0 0 1",
             "b2 0 0.2 1"]
    vectors = tmp_path / "v.txt"
    vectors.write_text("\n".join(lines) + "\n")
    paths = []
    for name, words in (("x", "x1\nx2\n"), ("y", "y1\ny2\n"), ("a", "a1\na2\n"), ("b", "b1\nb2\n")):
        path = tmp_path / f"{name}.txt"
        path.write_text(words)
        paths.append(str(path))
    return str(vectors), paths


def test_weat_with_identical_target_vectors_gives_null_not_nan(weat_files, tmp_path):
    vectors, (x, y, a, b) = weat_files
    args = ["bias", "weat", "--vectors", vectors, "--targets", x, y, "--attributes", a, b, "--permutations", "10"]
    result = run(*args, "--json", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    score = _strict_json(result.stdout)["scores"][0]
    assert score["effect_size"] is None and "effect size undefined" in score["notes"][0]
    (page_json,) = (tmp_path / "out").glob("bias-weat-*.json")  # the audit JSON beside the page
    written = _strict_json(page_json.read_text())
    assert written["weat"][0]["scores"][0]["effect_size"] is None
    assert "weat.x-y.effect_size" not in written["metrics"]  # an undefined number is no gateable metric
    text = run(*args)
    assert text.exit_code == 0, text.output
    assert "undefined" in text.stdout and "nan" not in text.stdout


@pytest.mark.parametrize(("content", "message"), [
    (b"", "has no words"),
    (b"\x00\x01\x02binary", "is a binary file"),
    (b"\xff\xfe\x00w", "is a binary file"),
    (b"w\n" * 600_000, "bytes (at most 1,048,576)"),
])
def test_weat_word_files_are_untrusted(weat_files, tmp_path, content, message):
    vectors, (x, y, a, b) = weat_files
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    _one_line_error(run("bias", "weat", "--vectors", vectors, "--targets", str(bad), y, "--attributes", a, b),
                    message)


def test_weat_words_missing_from_the_vectors(weat_files, tmp_path):
    vectors, (x, y, a, b) = weat_files
    lost = tmp_path / "lost.txt"
    lost.write_text("x1\nnot-there\nnor-this\n")
    _one_line_error(run("bias", "weat", "--vectors", vectors, "--targets", str(lost), y, "--attributes", a, b),
                    "set 'lost' has 1 of its 3 words in the vocabulary (at least 2 needed); "
                    "missing: not-there, nor-this")


@pytest.mark.parametrize("permutations", ["0", "1000001", "1000000000000"])
def test_weat_permutations_are_bounded(permutations):
    _one_line_error(run("bias", "weat", "--test", "math-arts", "--permutations", permutations),
                    "--permutations must be a whole number from 1 to 1,000,000")
