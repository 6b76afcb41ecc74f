from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, demographic_parity_difference, selection_rate
from sklearn.calibration import calibration_curve
from typer.testing import CliRunner

from xai.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "race": rng.choice(["a", "b", "c"], n, p=[.6, .37, .03]),
                          "label": rng.integers(0, 2, n)})
    frame["score"] = np.clip(0.3 * frame["label"] + 0.7 * rng.random(n), 0, 1)
    frame["pred"] = (frame["score"] >= 0.5).astype(int)
    folder = tmp_path_factory.mktemp("preds")
    frame.to_csv(folder / "preds.csv", index=False)
    frame.to_parquet(folder / "preds.parquet")
    return folder, frame


def test_csv_predictions_json_equals_fairlearn(predictions):
    folder, frame = predictions
    result = run("fairness", "--data", str(folder / "preds.csv"), "--y-true", "label", "--y-pred", "pred",
                 "--sensitive", "sex,race", "--json", "--n-boot", "200")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [t["feature"] for t in document["tables"]] == ["sex", "race"]
    assert document["intersection"]["feature"] == "sex x race"
    for table in document["tables"]:
        groups = frame[table["feature"]].to_numpy()
        expected = MetricFrame(metrics=selection_rate, y_true=frame["label"], y_pred=frame["pred"],
                               sensitive_features=groups).by_group
        for group, value in expected.items():
            assert table["by_group"]["selection_rate"][group] == pytest.approx(value, abs=1e-12)
        # disparities rank only groups of >= 30 rows (race "c" has about 18): fairlearn on those rows
        counts = frame[table["feature"]].value_counts()
        ranked = frame[frame[table["feature"]].isin(counts[counts >= 30].index)]
        assert table["disparities"]["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(ranked["label"], ranked["pred"], sensitive_features=ranked[table["feature"]]),
            abs=1e-12)
        lo, hi = table["intervals"]["selection_rate"]["F" if table["feature"] == "sex" else "a"]
        assert lo <= hi and table["n_boot"] == 200
    assert any("has" in w and "rows (< 30)" in w for w in document["intersection"]["warnings"])


def test_parquet_and_score_threshold_give_the_same_numbers(predictions, tmp_path):
    folder, _ = predictions
    by_pred = json.loads(run("fairness", "--data", str(folder / "preds.csv"), "--y-true", "label", "--y-pred",
                             "pred", "-s", "sex", "--json", "--seed", "3").stdout)
    by_score = run("fairness", "--data", str(folder / "preds.parquet"), "--y-true", "label", "--score", "score",
                   "--threshold", "0.5", "-s", "sex", "--json", "--seed", "3")
    assert by_score.exit_code == 0, by_score.output
    a, b = by_pred["tables"][0], json.loads(by_score.stdout)["tables"][0]
    calibration = b["by_group"].pop("calibration_error")  # probabilities also give calibration
    b["intervals"].pop("calibration_error")
    assert a["by_group"] == b["by_group"]  # exact ratios of the same counts
    # Same resampled counts; compared to 1e-9 because this host's float64 division was caught
    # wrong in the 11th digit in about 1 process in 100 (benchmarks/fp_selfcheck.py, BENCHMARKS.md)
    assert _flat(a["intervals"]) == pytest.approx(_flat(b["intervals"]), rel=1e-9, abs=0)
    frame = pd.read_parquet(folder / "preds.parquet")
    for group, rows in frame.groupby("sex"):
        assert calibration[group] == pytest.approx(_ece(rows["label"].to_numpy(), rows["score"].to_numpy()), abs=1e-12)
    text = run("fairness", "--data", str(folder / "preds.csv"), "--y-true", "label", "--y-pred", "pred",
               "-s", "sex", "-o", str(tmp_path))
    assert text.exit_code == 0, text.output
    assert "four-fifths rule" in text.stdout and "demographic parity ratio" in text.stdout
    page = (tmp_path / "fairness-predictions.html").read_text()
    saved = json.loads((tmp_path / "fairness-predictions.json").read_text())
    female = saved["fairness"][0]["tables"][0]
    lo, hi = female["intervals"]["accuracy"]["F"]
    assert f"[{lo:.3f}, {hi:.3f}]" in page  # every shown interval is in the JSON


def _flat(intervals: dict) -> dict:
    return {(metric, group, end): value for metric, groups in intervals.items()
            for group, bounds in groups.items() for end, value in zip(("lo", "hi"), bounds, strict=True)}


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, ["--y-true", "y", "--y-pred", "p"], "data file not found"),
        ("", ["--y-true", "y", "--y-pred", "p"], "is empty"),
        ("y,p,g\n", ["--y-true", "y", "--y-pred", "p"], "no rows"),
        ("y,p,g\n1,0,a\n", ["--y-true", "label", "--y-pred", "p"], "unknown column in f.csv 'label'; known: g, p, y"),
        ("y,p,g\n1,0,a\n", ["--y-true", "y", "--y-pred", "p", "-s", "sex"], "unknown column in f.csv 'sex'"),
        ("y,p,g\n2,0,a\n1,1,b\n0,1,a\n", ["--y-true", "y", "--y-pred", "p"], "must hold binary labels 0/1"),
        ("y,p,g\n1,,a\n1,1,b\n", ["--y-true", "y", "--y-pred", "p"], "'p' has 1 missing values"),
        ("y,p,g\n1,0,\n1,1,b\n", ["--y-true", "y", "--y-pred", "p"], "'g' has 1 missing values"),
        ("y,p,g\n1,0,a\n", ["--y-true", "y", "--y-pred", "p", "--score", "p"], "exactly one of --y-pred"),
        ("y,p,g\n1,0,a\n", ["--y-true", "y"], "exactly one of --y-pred"),
        ("y,p,g\n1,0,a\n", ["--y-true", "y", "--score", "g"], "must be numeric"),
        ("y,p,g\n1,0,a\n", ["--y-pred", "p"], "needs --y-true"),
    ],
)
def test_bad_prediction_input_is_one_line_and_exit_2(tmp_path, content, args, message):
    path = str(tmp_path / "f.csv") if content is None else _write(tmp_path, "f.csv", content)
    if "-s" not in args:
        args = [*args, "-s", "g"]
    result = run("fairness", "--data", path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def test_model_or_data_is_required_and_flags_do_not_mix():
    neither = run("fairness", "-s", "sex")
    assert neither.exit_code == 2 and "give a MODEL, or --data" in neither.stderr
    mixed = run("fairness", "adult-mlp", "-s", "sex", "--y-true", "y")
    assert mixed.exit_code == 2 and "leave out MODEL" in mixed.stderr


def _ece(y, score, n_bins=10):
    """ECE from scikit-learn's calibration_curve and the bin counts of the same bins."""
    prob_true, prob_pred = calibration_curve(y, score, n_bins=n_bins, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], score), minlength=n_bins)
    counts = counts[counts > 0]
    return float((counts * np.abs(prob_true - prob_pred)).sum() / counts.sum())


def test_multiclass_and_regression_predictions_equal_fairlearn(tmp_path):
    from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error

    rng = np.random.default_rng(1)
    n = 500
    frame = pd.DataFrame({"site": rng.choice(["north", "south"], n),
                          "truth": rng.choice(["cat", "dog", "eel"], n),
                          "y": rng.normal(size=n)})
    frame["guess"] = np.where(rng.random(n) < 0.7, frame["truth"], rng.choice(["cat", "dog", "fox"], n))
    frame["y_hat"] = frame["y"] + rng.normal(scale=np.where(frame["site"] == "north", 0.5, 1.0))
    path = tmp_path / "multi.csv"
    frame.to_csv(path, index=False)
    result = run("fairness", "--data", str(path), "--y-true", "truth", "--y-pred", "guess", "-s", "site",
                 "--task", "multiclass", "--json", "--n-boot", "100")
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)["tables"][0]
    expected = MetricFrame(metrics=accuracy_score, y_true=frame["truth"], y_pred=frame["guess"],
                           sensitive_features=frame["site"])
    for group, value in expected.by_group.items():
        assert table["by_group"]["accuracy"][group] == pytest.approx(value, abs=1e-12)
    assert table["disparities"]["accuracy_difference"] == pytest.approx(expected.difference(), abs=1e-12)
    assert table["intervals"]["accuracy"]["north"][0] <= table["by_group"]["accuracy"]["north"]

    result = run("fairness", "--data", str(path), "--y-true", "y", "--y-pred", "y_hat", "-s", "site",
                 "--task", "regression", "--json")
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)["tables"][0]
    for metric, fn in (("mean_absolute_error", mean_absolute_error), ("mean_squared_error", mean_squared_error)):
        expected = MetricFrame(metrics=fn, y_true=frame["y"], y_pred=frame["y_hat"], sensitive_features=frame["site"])
        for group, value in expected.by_group.items():
            assert table["by_group"][metric][group] == pytest.approx(value, rel=1e-12)
        assert table["disparities"][f"{metric}_difference"] == pytest.approx(expected.difference(), rel=1e-9)
    page = run("fairness", "--data", str(path), "--y-true", "y", "--y-pred", "y_hat", "-s", "site",
               "--task", "regression", "-o", str(tmp_path / "out"))
    assert page.exit_code == 0, page.output
    assert "mean absolute error" in page.stdout

    for args, message in ((["--task", "regression", "--y-true", "truth", "--y-pred", "guess"], "must be numeric"),
                          (["--task", "multiclass", "--y-true", "truth", "--score", "y"], "apply to binary"),
                          (["--task", "ordinal", "--y-true", "y", "--y-pred", "y_hat"], "unknown task")):
        bad = run("fairness", "--data", str(path), "-s", "site", *args)
        assert bad.exit_code == 2 and message in bad.output.lower(), bad.output
