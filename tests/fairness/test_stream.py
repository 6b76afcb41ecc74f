"""The streaming count engine: batch/file merges equal one pass, every format gives one table, counts files."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score

from xai.errors import DataError
from xai.fairness import _engine
from xai.fairness.predictions import audit_predictions, load_predictions
from xai.fairness.stream import CountTable, _Levels, load_counts, merge_counts, scan_predictions


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "race": rng.choice(["a", "b", "c"], n, p=[.6, .37, .03]),
                          "label": rng.integers(0, 2, n)})
    frame["score"] = np.clip(0.3 * frame["label"] + 0.7 * rng.random(n), 0, 1)
    frame["pred"] = (frame["score"] >= 0.5).astype(int)
    return frame


def _numbers(result) -> dict:
    """A result's numbers (what the report shows), without provenance."""
    document = result.to_dict()
    document.pop("provenance")
    document.pop("dataset")
    return document


def _close(a, b, rel=1e-12):
    """Equal structures; floats within ``rel`` (score sums differ in the last bits with the summation order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _close(a[key], b[key], rel)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y, rel)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=rel, abs=1e-15, nan_ok=True)
    else:
        assert a == b


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One set of rows as CSV, gzipped CSV, parquet (plain and dictionary), a hive folder, Arrow IPC file and stream."""
    frame = _frame(3000)
    folder = tmp_path_factory.mktemp("formats")
    paths = {"csv": folder / "p.csv", "csv.gz": folder / "p.csv.gz", "parquet": folder / "p.parquet",
             "dictionary": folder / "d.parquet", "folder": folder / "hive", "flat folder": folder / "flat",
             "ipc": folder / "p.arrow", "ipc stream": folder / "s.arrow"}
    frame.to_csv(paths["csv"], index=False)
    frame.to_csv(paths["csv.gz"], index=False, compression="gzip")
    frame.to_parquet(paths["parquet"], index=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.set_column(0, "sex", pa.compute.dictionary_encode(table["sex"])), paths["dictionary"],
                   row_group_size=700)
    pq.write_to_dataset(table, paths["folder"], partition_cols=["race"])  # race=a/..., race=b/...
    paths["flat folder"].mkdir()
    for i, (a, b) in enumerate([(0, 1000), (1000, 2200), (2200, 3000)]):
        frame.iloc[a:b].to_parquet(paths["flat folder"] / f"part-{i}.parquet", index=False)
    feather.write_feather(table, paths["ipc"], chunksize=1000)
    with pa.OSFile(str(paths["ipc stream"]), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=999)
    return frame, paths


# ------------------------------------------------------------------ one table from every format


@pytest.mark.parametrize("kind", ["csv.gz", "parquet", "dictionary", "folder", "flat folder", "ipc", "ipc stream"])
@pytest.mark.parametrize("prediction", [{"y_pred": "pred"}, {"score": "score"}])
def test_every_format_gives_the_csv_table(files, kind, prediction):
    _, paths = files
    args = {"y_true": "label", "sensitive": ["sex", "race"], "progress": False, **prediction}
    reference = scan_predictions(paths["csv"], **args)
    table = scan_predictions(paths[kind], batch_rows=512, **args)
    assert table.levels == (("F", "M"), ("a", "b", "c"))
    assert table.same_counts(reference, rtol=1e-12)
    assert np.array_equal(table.cells, reference.cells)  # counts are exact whatever the batches


def test_dictionary_columns_stay_codes():
    """A dictionary column is coded from its (small) dictionary; values the batch does not use never become groups."""
    levels = _Levels("g", limit=None)
    dictionary = pa.array([f"unused-{i}" for i in range(100)] + ["x", "y"])
    array = pa.DictionaryArray.from_arrays(pa.array([100, 101, 101, 100], pa.int32()), dictionary)
    assert levels.encode(array).tolist() == [0, 1, 1, 0]
    assert levels.values == ["x", "y"]
    again = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array(["y", "z"]))
    assert levels.encode(again).tolist() == [1, 2]  # another batch's dictionary maps onto the same index


# ------------------------------------------------------------------ merging is one pass


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 120), seed=st.integers(0, 2**16), cuts=st.lists(st.floats(0, 1), max_size=4),
       batch=st.integers(1, 50), by_score=st.booleans())
def test_merging_the_tables_of_any_split_equals_one_pass(n, seed, cuts, batch, by_score):
    frame = _frame(n, seed)
    prediction = {"score": "score"} if by_score else {"y_pred": "pred"}
    args = {"y_true": "label", "sensitive": ["sex", "race"], "progress": False, **prediction}
    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    with tempfile.TemporaryDirectory() as folder:
        whole = Path(folder) / "all.parquet"
        frame.to_parquet(whole, index=False)
        one = scan_predictions(whole, **args)
        parts = []
        for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
            if b > a:
                path = Path(folder) / f"part-{i}.parquet"
                frame.iloc[a:b].to_parquet(path, index=False)
                parts.append(scan_predictions(path, batch_rows=batch, **args))
    merged = merge_counts(parts)
    assert merged.same_counts(one, rtol=1e-12)
    assert np.array_equal(merged.cells, one.cells)
    # associative and commutative up to the group order, which is sorted
    assert merge_counts(parts[::-1]).same_counts(one, rtol=1e-12)
    if len(parts) >= 3:
        assert (parts[0] + (parts[1] + parts[2])).same_counts((parts[0] + parts[1]) + parts[2], rtol=1e-12)


# ------------------------------------------------------------------ streaming = in memory = fairlearn


@pytest.mark.parametrize("prediction", [{"y_pred": "pred"}, {"score": "score"}])
def test_streaming_equals_in_memory_equals_fairlearn(files, prediction):
    frame, paths = files
    args = {"y_true": "label", "sensitive": ["sex", "race"], **prediction}
    streamed = audit_predictions(scan_predictions(paths["parquet"], batch_rows=256, progress=False, **args),
                                 n_boot=200, seed=4)
    in_memory = audit_predictions(load_predictions(paths["parquet"], **args), n_boot=200, seed=4)
    _close(_numbers(streamed), _numbers(in_memory))
    pred = frame["pred"]
    for table in streamed.tables:
        expected = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate,
                                        "true_positive_rate": true_positive_rate,
                                        "false_positive_rate": false_positive_rate},
                               y_true=frame["label"], y_pred=pred, sensitive_features=frame[table.feature])
        for metric, values in expected.by_group.items():
            for group, value in values.items():
                assert table.by_group[metric][group] == pytest.approx(value, abs=1e-12)
        assert table.disparities["equalized_odds_difference"] == pytest.approx(
            max(expected.difference()[["true_positive_rate", "false_positive_rate"]]), abs=1e-12)


@pytest.mark.parametrize(("task", "columns"), [
    ("multiclass", {"y": ["cat", "dog", "eel", "dog"], "p": ["cat", "eel", "eel", "dog"]}),
    ("regression", {"y": [1.5, 2.0, 0.25, 4.0], "p": [1.0, 2.5, 0.25, 3.0]}),
])
def test_multiclass_and_regression_stream_like_pandas(tmp_path, task, columns):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({k: np.resize(v, 400) for k, v in columns.items()})
    frame["g"] = rng.choice(["u", "v", "w"], 400)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    args = {"y_true": "y", "y_pred": "p", "sensitive": ["g"], "task": task}
    streamed = audit_predictions(scan_predictions(path, batch_rows=64, progress=False, **args), n_boot=50)
    _close(_numbers(streamed), _numbers(audit_predictions(load_predictions(path, **args), n_boot=50)), rel=1e-9)


def test_csv_values_are_typed_as_pandas_types_the_column(tmp_path):
    """"1" and "1.0" in one CSV column are both 1.0 for pandas; True/False labels are booleans."""
    path = tmp_path / "mixed.csv"
    path.write_text("y,p,age\n" + "True,False,1\nFalse,False,1.0\nTrue,True,2\nFalse,True,2.5\n" * 20)
    args = {"y_true": "y", "y_pred": "p", "sensitive": ["age"]}
    table = scan_predictions(path, batch_rows=3, progress=False, **args)
    assert table.levels == (("1.0", "2.0", "2.5"),) and table.positive_label == "True"
    _close(_numbers(audit_predictions(table, n_boot=30)),
           _numbers(audit_predictions(load_predictions(path, **args), n_boot=30)))


# ------------------------------------------------------------------ counts files


def test_saved_and_reloaded_counts_give_the_same_numbers(files, tmp_path):
    _, paths = files
    table = scan_predictions(paths["parquet"], y_true="label", score="score", sensitive=["sex", "race"],
                             progress=False)
    saved = table.save(tmp_path / "t.counts")
    loaded = load_counts(saved)
    assert loaded.same_counts(table) and loaded.inputs == table.inputs and loaded.score_range == table.score_range
    assert _numbers(audit_predictions(loaded, n_boot=100, seed=2)) == _numbers(
        audit_predictions(table, n_boot=100, seed=2))
    assert saved.stat().st_size < 100_000  # tens of kB (the AUC histogram) whatever the rows


def test_tables_of_different_predictions_do_not_merge(files):
    _, paths = files
    by_pred = scan_predictions(paths["csv"], y_true="label", y_pred="pred", sensitive=["sex"], progress=False)
    by_score = scan_predictions(paths["csv"], y_true="label", score="score", sensitive=["sex"], progress=False)
    with pytest.raises(DataError, match="cannot merge count tables with different predictions"):
        by_pred.merge(by_score)
    other = scan_predictions(paths["csv"], y_true="label", y_pred="pred", sensitive=["race"], progress=False)
    with pytest.raises(DataError, match="different sensitive columns"):
        _ = by_pred + other


def test_poisson_bootstrap_reproduces_the_row_bootstrap():
    """Interval widths of count-based metrics from per-cell Poisson draws match resampled rows."""
    rng = np.random.default_rng(11)
    n, n_boot = 4000, 2000
    codes = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    y = (rng.random(n) < 0.4).astype(np.int64)
    p = np.where(rng.random(n) < 0.2 + 0.1 * codes, 1 - y, y)
    cell = codes * 4 + y * 2 + p
    cells = np.bincount(cell, minlength=12).reshape(3, 4)
    rows = rng.integers(0, n, size=(n_boot, n))  # the row bootstrap, resample by resample
    by_rows = np.stack([np.bincount(cell[r], minlength=12).reshape(3, 4) for r in rows])
    by_cells = _engine.poisson_bootstrap_cells(cells, n_boot=n_boot, seed=5)
    assert by_cells.shape == (n_boot, 3, 4) and by_cells.dtype == np.int64
    for metric in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"):
        widths = []
        for samples in (by_rows, by_cells):
            group = _engine.compute(samples, [metric], "binary")[metric]  # (R, G)
            lo, hi = _engine.percentile_interval(group, 0.95)
            gap = _engine.difference(group, _engine.compute(samples.sum(axis=1), [metric], "binary")[metric])
            glo, ghi = _engine.percentile_interval(gap, 0.95)
            widths.append(np.append(hi - lo, ghi - glo))
        np.testing.assert_allclose(widths[1], widths[0], rtol=0.12)
    # same seed, same draws; the table is never touched
    assert np.array_equal(_engine.poisson_bootstrap_cells(cells, n_boot=10, seed=5), by_cells[:10])


def test_hostile_counts_file_is_not_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    import pickle

    path = tmp_path / "evil.counts"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(DataError, match="not a count table"):
        load_counts(path)
    np.save(tmp_path / "evil.npy", np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a count table"):
        load_counts(tmp_path / "evil.npy")
    assert not marker.exists()


def test_count_table_round_trips_its_dict():
    table = CountTable(task="binary", features=("g",), levels=(("a", "b"),),
                       cells=np.array([[1, 2, 3, 4], [0, 0, 0, 5]]), calibration=None, rows=15, source="p")
    document = json.loads(json.dumps(table.to_dict()))
    assert document["cells"] == [1, 2, 3, 4, 0, 0, 0, 5] and document["format"] == "xai-counts"


def test_auc_from_the_score_histogram_is_sklearns_within_its_bound(files):
    from sklearn.metrics import roc_auc_score

    frame, paths = files
    table = scan_predictions(paths["csv"], y_true="label", score="score", sensitive=["sex", "race"],
                             batch_rows=700, progress=False)
    assert table.score_histogram is not None and int(table.score_histogram.sum()) == len(frame)
    for feature in ("sex", "race"):
        groups, auc, bound = table.auc(feature)
        for group, value, slack in zip(groups, auc, bound, strict=True):
            rows = frame[frame[feature] == group]
            assert abs(value - roc_auc_score(rows["label"], rows["score"])) <= slack + 1e-12
            assert slack < 5e-3  # 1000 bins: few pairs share one
    # the intersection, and scores that are already on the bin grid are exact
    grid = frame.assign(score=np.round(frame["score"] * 1000 - 0.5).clip(0, 999) / 1000 + 0.0005)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grid.parquet"
        grid.to_parquet(path, index=False)
        exact = scan_predictions(path, y_true="label", score="score", sensitive=["sex", "race"], progress=False)
    groups, auc, _ = exact.auc()
    for group, value in zip(groups, auc, strict=True):
        sex, race = group.split(" x ")
        rows = grid[(grid["sex"] == sex) & (grid["race"] == race)]
        assert value == pytest.approx(roc_auc_score(rows["label"], rows["score"]), abs=1e-12)


def test_integer_and_boolean_columns_are_coded_like_pandas(tmp_path):
    """Small-range integers use a lookup table (negative minimum, unsigned, wide ranges and booleans included)."""
    rng = np.random.default_rng(3)
    n = 500
    frame = pd.DataFrame({"y": rng.integers(0, 2, n).astype(bool), "p": rng.integers(0, 2, n).astype(np.uint8),
                          "small": rng.integers(-100, 101, n).astype(np.int8),
                          "wide": rng.choice(np.array([0, 2**40, 2**63 - 1], dtype=np.uint64), n),
                          "flag": rng.integers(0, 2, n).astype(bool)})
    path = tmp_path / "ints.parquet"
    frame.to_parquet(path, index=False)
    for sensitive in (["small"], ["wide", "flag"]):
        args = {"y_true": "y", "y_pred": "p", "sensitive": sensitive, "max_groups": 5000}
        table = scan_predictions(path, batch_rows=37, progress=False, **args)
        assert table.positive_label == "True"
        _close(_numbers(audit_predictions(table, n_boot=20, max_groups=5000)),
               _numbers(audit_predictions(load_predictions(path, **{k: v for k, v in args.items()
                                                                    if k != "max_groups"}), n_boot=20,
                                          max_groups=5000)))


def test_counters_of_blocks_merge_like_one_pass(files):
    """What Ray workers return: counters of separate blocks, merged by raw value, resolve to the one-pass table."""
    from xai.fairness import stream

    frame, paths = files
    args = {"y_true": "label", "score": "score", "sensitive": ["sex", "race"]}
    one = scan_predictions(paths["csv"], progress=False, **args)
    source = stream._open(paths["dictionary"], ["label", "score", "sex", "race"], ["sex", "race"], 256)
    spec = stream._make_spec(paths["dictionary"], y_pred=None, threshold=0.5, pos_label=None, task="binary",
                             max_groups=None, text=False, **args)
    counters = []
    for batch in source.batches():  # one counter per batch, as one per Ray block
        counter = stream._Counter(spec)
        counter.feed(batch)
        counters.append(counter)
    assert len(counters) > 10
    merged = counters[-1]
    for counter in counters[-2::-1]:  # merged out of order: groups first seen late get new raw codes
        merged = merged.merge(counter)
    assert merged.finish("p.csv", "").same_counts(one, rtol=1e-12)


def test_a_streamed_parquet_audit_never_imports_pandas_or_torch(files):
    import subprocess
    import sys

    _, paths = files
    root = Path(__file__).resolve().parents[2]
    probe = ("import sys\n"
             "from xai.fairness.stream import scan_predictions\n"
             "from xai.fairness.predictions import audit_predictions\n"
             f"table = scan_predictions({str(paths['dictionary'])!r}, y_true='label', score='score',\n"
             "                         sensitive=['sex', 'race'], progress=False)\n"
             "result = audit_predictions(table, n_boot=50).to_dict()\n"
             "print(result['tables'][0]['overall']['count'], 'pandas' in sys.modules, 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert done.stdout.split() == ["3000.0", "False", "False"], done.stderr
