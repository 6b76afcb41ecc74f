"""Slice discovery streamed from a file equals the search over the same rows in memory."""

from __future__ import annotations

import dataclasses
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xai.errors import DataError
from xai.fairness import slice_scan
from xai.fairness.slices import discover_slices


def _frame(n: int, seed: int) -> pd.DataFrame:
    """Labels, predictions that err more in one planted slice, and columns of every kind the search codes."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    age[rng.random(n) < 0.03] = np.nan  # numeric with missing values: quantile bins plus (missing)
    region = rng.choice(["north", "south", "east", "west"], n)
    city = rng.choice([f"c{i:02d}" for i in range(40)], n, p=np.r_[np.full(10, 0.06), np.full(30, 0.4 / 30)])
    member = rng.random(n) < 0.4
    score_band = rng.integers(0, 3, n)  # few integer values: categories "0", "1", "2"
    income = rng.lognormal(10, 1, n)
    y = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.where((region == "south") & (age > 50), 0.45, 0.1)
    pred = np.where(wrong, 1 - y, y)
    return pd.DataFrame({"y": y, "pred": pred, "score": np.where(pred == 1, 0.75, 0.25), "age": age,
                         "region": region, "city": city, "member": member, "band": score_band, "income": income})


COLUMNS = ["region", "age", "city", "member", "band", "income"]
OPTIONS = {"min_size": 20, "max_findings": 1000, "max_levels": 12, "max_order": 3}


def _in_memory(frame: pd.DataFrame, **kwargs: object) -> object:
    return discover_slices(frame["y"].to_numpy(), frame["pred"].to_numpy(), {c: frame[c] for c in COLUMNS},
                           positive_class="1" if kwargs.get("task", "binary") == "binary" else None,
                           **{**OPTIONS, **kwargs})  # type: ignore[arg-type]


def _same(streamed: object, memory: object) -> None:
    skip = {"provenance", "model", "dataset", "notes"}
    for field in dataclasses.fields(memory):  # type: ignore[arg-type]
        if field.name not in skip:
            assert getattr(streamed, field.name) == getattr(memory, field.name), field.name


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_streamed_search_equals_the_search_in_memory(tmp_path: Path, suffix: str) -> None:
    frame = _frame(6000, seed=3)
    path = tmp_path / f"p{suffix}"
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    memory = _in_memory(pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path))
    streamed = slice_scan.scan_slices(path, y_true="y", y_pred="pred", columns=COLUMNS, options=OPTIONS,
                                      batch_rows=997, progress=False)
    assert memory.count_significant > 0  # the planted slice is there to be found
    assert any("(other)" in levels for levels in memory.levels.values())  # city's rare levels pooled
    assert "(missing)" in memory.levels["age"]
    _same(streamed, memory)


def test_score_threshold_and_multiclass_stream_as_in_memory(tmp_path: Path) -> None:
    frame = _frame(3000, seed=5)
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    by_score = slice_scan.scan_slices(path, y_true="y", score="score", threshold=0.5, columns=COLUMNS,
                                      options=OPTIONS, batch_rows=500, progress=False)
    _same(by_score, _in_memory(frame))
    multi = frame.assign(y=frame["y"] + 2 * (frame["band"] == 2), pred=frame["pred"] + 2 * (frame["band"] == 2))
    multi.to_parquet(path)
    streamed = slice_scan.scan_slices(path, y_true="y", y_pred="pred", columns=COLUMNS, task="multiclass",
                                      options=OPTIONS, batch_rows=500, progress=False)
    _same(streamed, _in_memory(multi, task="multiclass"))


@pytest.mark.parametrize("rank_values", [1 << 16, 50])
def test_a_column_with_too_many_values_to_count_gets_its_exact_quantiles(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rank_values: int) -> None:
    frame = _frame(4000, seed=7)
    frame.loc[frame.index[:1500], "income"] = 0.0  # a dominant minimum: the bins of the values above it
    frame.loc[frame.index[1500:1600], "income"] = np.nan
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    monkeypatch.setattr(slice_scan, "MAX_DISTINCT", 1000)  # income has ~2,400 distinct values: not counted
    monkeypatch.setattr(slice_scan, "RANK_VALUES", rank_values)  # 50: brackets narrow over several passes
    columns = ["region", "income", "age"]
    options = {**OPTIONS, "n_bins": 8}
    found = slice_scan.scan_slices(path, y_true="y", y_pred="pred", columns=columns, options=options,
                                   batch_rows=512, progress=False)
    memory = discover_slices(frame["y"].to_numpy(), frame["pred"].to_numpy(), {c: frame[c] for c in columns},
                             positive_class="1", **options)  # type: ignore[arg-type]
    assert "(missing)" in found.levels["income"] and len(found.levels["income"]) > 3
    _same(found, memory)
    monkeypatch.setattr(slice_scan, "MAX_DISTINCT", 10)  # city's 40 text values are too many, and not numbers
    with pytest.raises(DataError, match="'city' has more than 10 distinct values and they are not numbers"):
        slice_scan.scan_slices(path, y_true="y", y_pred="pred", columns=["city"], options=OPTIONS, progress=False)


def test_memory_does_not_grow_with_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slice_scan, "MAX_DISTINCT", 5000)  # income (a value per row) selected, not counted
    monkeypatch.setattr(slice_scan, "RANK_VALUES", 1000)  # a rank's bracket is read once it holds this few
    peaks = []
    for n in (20_000, 200_000):
        path = tmp_path / f"p{n}.parquet"
        _frame(n, seed=1).to_parquet(path)
        tracemalloc.start()
        slice_scan.scan_slices(path, y_true="y", y_pred="pred", columns=COLUMNS, options=OPTIONS,
                               batch_rows=10_000, block_cells=1 << 14, progress=False)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # ten times the rows, the same batches, tables and selections: the peak is theirs, not the file's
    assert peaks[1] < 1.5 * peaks[0], peaks



def test_the_ranker_selects_exact_order_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slice_scan, "RANK_VALUES", 20)  # brackets must narrow, not just be read
    rng = np.random.default_rng(11)
    for trial in range(30):
        n = int(rng.integers(50, 3000))
        values = np.round(rng.standard_cauchy(n), int(rng.integers(0, 3)))  # heavy tails and ties
        if trial % 3 == 0:
            values[rng.random(n) < 0.6] = values.min()  # a dominant minimum
        batches = np.array_split(values, 7)
        sample = slice_scan._Sample.start(64, seed=trial)  # a small sample: some brackets miss their rank
        for batch in batches:
            sample.add(batch)
        assert (sample.count, sample.low, sample.high) == (n, values.min(), values.max())
        assert sample.low_count == np.count_nonzero(values == values.min())
        ranks = {int(r) for r in rng.integers(0, n, 12)}
        ranker = slice_scan._Ranker(sample, ranks)
        passes = 0
        while not ranker.done:
            for batch in batches:
                ranker.feed(batch)
            ranker.finish_pass()
            passes += 1
            assert passes < 30
        ordered = np.sort(values)
        assert {r: ranker.found[r] for r in ranks} == {r: ordered[r] for r in ranks}


def test_blocks_over_the_memory_budget_take_more_passes_and_find_the_same(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame(3000, seed=9)
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    passes: list[str] = []
    original = slice_scan._batches

    def counted(source: object, what: str, progress: bool) -> object:
        passes.append(what)
        return original(source, what, progress)

    monkeypatch.setattr(slice_scan, "_batches", counted)
    monkeypatch.setattr(slice_scan, "MAX_TABLE_CELLS", 4000)  # a few blocks per pass
    found = slice_scan.scan_slices(path, y_true="y", y_pred="pred", columns=COLUMNS, options=OPTIONS,
                                   batch_rows=700, progress=False)
    assert sum(w.startswith("slice counts") for w in passes) > 2
    _same(found, _in_memory(frame))
