"""Streamed model audits on the user's data: the count engine's numbers equal the rows in memory; flat memory;
a stratified sample per group that is reproducible by seed and independent of the batch size."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from tests.datasets import _user_models as models
from tests.datasets.test_user_data import write_folder
from xai.audit import parse_spec
from xai.audit.runner import run_audit
from xai.audit.streamed import count_model, group_metrics_result
from xai.datasets._stream import open_stream
from xai.datasets._user import DataSource, open_source
from xai.errors import DataError, SpecError
from xai.fairness import create_probe
from xai.zoo import load_model

MODELS = "tests.datasets._user_models"


def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.integers(0, 5, n),
                          "sex": rng.choice(["F", "M"], n), "race": rng.choice([1, 2, 3], n, p=[.5, .45, .05]),
                          "label": rng.integers(0, 2, n)})
    frame["label"] = np.where(frame["a"] + 0.5 * rng.normal(size=n) > 0, 1, frame["label"])
    return frame


def close(a, b, path: str = "", calibration: float = 1e-12) -> None:
    """Equal structures; floats within 1e-12 (NaN equals NaN), calibration errors within ``calibration``."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            close(a[key], b[key], f"{path}.{key}", calibration)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{path}[{i}]", calibration)
    elif isinstance(a, float) and isinstance(b, float):
        tolerance = calibration if "calibration" in path else 1e-12
        assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance, (path, a, b)
    else:
        assert a == b, (path, a, b)


def numbers(result) -> dict:
    document = result.to_dict()
    document.pop("provenance")
    return document


def mlp(tmp_path: Path, data_info):
    save_file(models.table_mlp().state_dict(), str(tmp_path / "mlp.safetensors"))
    return load_model(f"{MODELS}:table_mlp", weights=tmp_path / "mlp.safetensors", data=data_info)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_streamed_table_audit_equals_the_rows_in_memory(tmp_path, suffix):
    frame = table(4000)
    frame.to_csv(tmp_path / "t.csv", index=False) if suffix == "csv" else frame.to_parquet(tmp_path / "t.parquet")
    save_file(models.table_mlp().state_dict(), str(tmp_path / "mlp.safetensors"))
    text = f'''
title = "mlp"
explain = [{{ method = "saliency", samples = 4 }}]
[model]
name = "{MODELS}:table_mlp"
weights = "mlp.safetensors"
[data]
path = "t.{suffix}"
sensitive = ["sex", "race"]
ENGINE
[[probe]]
name = "group-metrics"
options = {{ n_boot = 200, min_group_size = 1 }}
'''
    memory = run_audit(parse_spec(text.replace("ENGINE", "")).resolve_paths(tmp_path), slug="m")
    streamed = run_audit(parse_spec(text.replace("ENGINE", 'engine = "local"\nper_group = 3'))
                         .resolve_paths(tmp_path), slug="s")
    assert streamed.data.rows == memory.data.rows == 4000
    assert len(streamed.fairness) == len(memory.fairness) == 1
    close(numbers(memory.fairness[0]), numbers(streamed.fairness[0]))  # by group, disparities, intervals, ECE
    assert streamed.performance["accuracy"] == pytest.approx(memory.performance["accuracy"], abs=1e-6)
    # the explanations ran on the stratified sample: 3 rows of each of the 6 (sex x race) groups
    assert any("stratified sample of 18 rows" in note for note in streamed.notes)
    assert len(streamed.explanations) == 1


def test_streamed_table_in_small_batches_equals_one_batch(tmp_path):
    frame = table(3000, seed=1)
    frame.to_csv(tmp_path / "t.csv", index=False)
    source = DataSource(path=tmp_path / "t.csv", sensitive=("sex", "race"))
    handle = mlp(tmp_path, open_source(source).info)
    options = create_probe("group-metrics", handle, n_boot=100, min_group_size=1).options
    results = []
    for rows in (250, 100_000):
        opened = open_stream(source, batch_rows=rows)
        assert sum(1 for _ in opened.record_batches()) == (1 if rows > 3000 else pytest.approx(12, abs=6))
        counted = count_model(handle, opened, sensitive=("sex", "race"), seed=0, per_group=4)
        results.append((counted, group_metrics_result(handle, counted, opened.name, options, 0)))
    close(numbers(results[0][1]), numbers(results[1][1]))
    # the sample does not depend on how the rows were batched
    assert torch.equal(results[0][0].sample.x, results[1][0].sample.x)


@pytest.mark.parametrize("batch_size", [64, 4])
def test_streamed_image_folder_equals_the_rows_in_memory(tmp_path, batch_size):
    manifest = write_folder(tmp_path / "photos", n=15)
    manifest[["path", "skin"]].to_csv(tmp_path / "groups.csv", index=False)
    save_file(models.image_cnn().state_dict(), str(tmp_path / "cnn.safetensors"))
    source = DataSource(path=tmp_path / "photos", side=tmp_path / "groups.csv", id="path", sensitive=("skin",),
                        size=(8, 8), mean=(0.5,), std=(0.25,), batch_size=batch_size)
    opened = open_source(source)
    handle = load_model(f"{MODELS}:image_cnn", weights=tmp_path / "cnn.safetensors", data=opened.info)
    opened.check_classes(handle)
    probe = create_probe("group-metrics", handle, n_boot=100, min_group_size=1)
    memory = probe.probe(opened.load(handle), sensitive=["skin"], seed=0)
    stream = open_stream(source)
    stream.check_classes(handle)
    counted = count_model(handle, stream, sensitive=("skin",), seed=0, per_group=2)
    assert counted.rows == 30
    # one batch is the in-memory forward itself: equal to 1e-12; a float32 convolution over batches of 4 gives
    # the same predictions (so the same counts) and softmax scores a few ulps apart (calibration to 1e-7)
    close(numbers(memory), numbers(group_metrics_result(handle, counted, stream.name, probe.options, 0)),
          calibration=1e-12 if batch_size == 64 else 1e-7)
    assert sorted(counted.sample.groups["skin"].value_counts().items()) == [("dark", 2), ("light", 2)]


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streamed_memory_does_not_grow_with_rows(tmp_path):
    paths = {}
    for n in (20_000, 200_000):
        paths[n] = tmp_path / f"t{n}.parquet"
        table(n, seed=2).to_parquet(paths[n], row_group_size=5_000)
    handle = mlp(tmp_path, open_source(DataSource(path=paths[20_000], sensitive=("sex", "race"))).info)

    def streamed(n: int) -> int:
        def run() -> None:
            opened = open_stream(DataSource(path=paths[n], sensitive=("sex", "race")), batch_rows=5_000)
            count_model(handle, opened, sensitive=("sex", "race"), seed=0, per_group=8)
        return _peak(run)

    def in_memory(n: int) -> int:
        return _peak(lambda: open_source(DataSource(path=paths[n], sensitive=("sex", "race"))).load(handle))

    small, large = streamed(20_000), streamed(200_000)
    # the same measure sees the in-memory path grow with the rows (so it could see the streamed one grow)
    assert in_memory(200_000) > 5 * in_memory(20_000)
    assert large < 1.5 * small, (small, large)


def test_stratified_sample_has_the_count_per_group_and_is_reproducible_by_seed(tmp_path):
    frame = table(5000, seed=3)
    frame.to_parquet(tmp_path / "t.parquet", row_group_size=700)
    source = DataSource(path=tmp_path / "t.parquet", sensitive=("sex", "race"))
    handle = mlp(tmp_path, open_source(source).info)

    def sample(seed: int, rows: int = 700):
        return count_model(handle, open_stream(source, batch_rows=rows), sensitive=("sex", "race"), seed=seed,
                           per_group=20).sample

    first = sample(7)
    sizes = frame.groupby(["sex", frame["race"].astype(str)]).size()
    counts = first.groups.value_counts()
    assert {k: int(v) for k, v in counts.items()} == {k: min(20, int(v)) for k, v in sizes.items()}
    # every sampled row is a row of its group, once
    x = frame[["a", "b", "c"]].to_numpy(np.float32)
    for row, (sex, race) in zip(first.x.numpy(), first.groups.itertuples(index=False), strict=True):
        match = np.flatnonzero((x == row).all(axis=1))
        assert len(match) == 1 and frame.loc[match[0], "sex"] == sex and str(frame.loc[match[0], "race"]) == race
    again, other_batches, other_seed = sample(7), sample(7, rows=3000), sample(8)
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)
    assert torch.equal(first.x, other_batches.x)
    assert not torch.equal(first.x, other_seed.x)


def test_streamed_spec_refuses_samples_and_side_tables(tmp_path):
    base = f'title = "t"\n[model]\nname = "{MODELS}:table_mlp"\n[data]\npath = "t.csv"\n'
    with pytest.raises(SpecError, match="`samples` does not apply"):
        parse_spec(base + 'engine = "local"\nsamples = 10\n')
    with pytest.raises(SpecError, match="`per_group` applies to a streamed audit"):
        parse_spec(base + "per_group = 3\n")
    table(50).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="side file"):
        open_stream(DataSource(path=tmp_path / "t.csv", side=tmp_path / "t.csv", id="a", sensitive=("sex",)))


def test_streamed_text_table_equals_the_rows_in_memory(tmp_path):
    texts = ["good film", "bad film", "very good", "not good film very bad", "very bad", "film"] * 40
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"review": texts, "label": rng.integers(0, 2, len(texts)),
                          "lang": rng.choice(["en", "fr"], len(texts))})
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    save_file(models.text_bag().state_dict(), str(tmp_path / "bag.safetensors"))
    source = DataSource(path=tmp_path / "reviews.csv", text="review", sensitive=("lang",))
    opened = open_source(source)
    handle = load_model(f"{MODELS}:text_bag", weights=tmp_path / "bag.safetensors", data=opened.info)
    probe = create_probe("group-metrics", handle, n_boot=100, min_group_size=1)
    memory = probe.probe(opened.load(handle), sensitive=["lang"], seed=0)
    stream = open_stream(source, batch_rows=50)  # tokenized per batch: padded to each batch's longest text
    counted = count_model(handle, stream, sensitive=("lang",), seed=0, per_group=5)
    assert counted.rows == 240 and len(counted.sample) == 10
    # the masked mean ignores padding: the same predictions; scores within float32 rounding of the head
    close(numbers(memory), numbers(group_metrics_result(handle, counted, stream.name, probe.options, 0)),
          calibration=1e-7)


def test_xai_audit_engine_option(tmp_path):
    from typer.testing import CliRunner

    from xai.cli import app

    table(600).to_parquet(tmp_path / "t.parquet")
    save_file(models.table_mlp().state_dict(), str(tmp_path / "mlp.safetensors"))
    (tmp_path / "mlp.toml").write_text(f'''
title = "mlp"
explain = [{{ method = "saliency", samples = 2 }}]
[model]
name = "{MODELS}:table_mlp"
weights = "mlp.safetensors"
[data]
path = "t.parquet"
sensitive = ["sex", "race"]
samples = 100
[[probe]]
name = "group-metrics"
options = {{ n_boot = 0, min_group_size = 1 }}
''')
    runner = CliRunner()
    out = tmp_path / "reports"
    result = runner.invoke(app, ["audit", str(tmp_path / "mlp.toml"), "--engine", "local", "--json", "-o", str(out),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "mlp.json").read_text())
    assert document["data"]["rows"] == 600  # every row counted: --engine drops the spec's `samples`
    assert any(n.startswith("streamed: 600 rows counted (local engine)") for n in document["notes"])
    bad = runner.invoke(app, ["audit", str(tmp_path / "mlp.toml"), "--engine", "spark", "-o", str(out)])
    assert bad.exit_code == 2 and "spark" in bad.output
