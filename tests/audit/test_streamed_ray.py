"""The Ray engine of a streamed model audit on a local 2-CPU cluster started here: the local engine's numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ray
import torch
from safetensors.torch import save_file

from tests.audit.test_streamed_audit import close, numbers, table
from tests.datasets import _user_models as models
from tests.datasets.test_user_data import write_folder
from xai.audit.streamed import count_model, group_metrics_result
from xai.datasets._stream import open_stream
from xai.datasets._user import DataSource, open_source
from xai.fairness import create_probe
from xai.zoo import load_model

ROOT = Path(__file__).resolve().parents[2]
MODELS = "tests.datasets._user_models"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    # workers import this checkout's xai and its tests' models, as the driver does
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield
    ray.shutdown()


def _both(handle, source, sensitive, options):
    out = []
    for engine in ("local", "ray"):
        opened = open_stream(source, batch_rows=1000)
        opened.check_classes(handle)
        counted = count_model(handle, opened, sensitive=sensitive, seed=0, per_group=3, engine=engine)
        out.append((counted, group_metrics_result(handle, counted, opened.name, options, 0)))
    return out


def test_ray_table_partitions_equal_the_local_engine(cluster, tmp_path):
    frame = table(6000, seed=4)
    (tmp_path / "parts").mkdir()
    for i, (a, b) in enumerate([(0, 2500), (2500, 4100), (4100, 6000)]):
        frame.iloc[a:b].to_parquet(tmp_path / "parts" / f"part-{i}.parquet", index=False)
    source = DataSource(path=tmp_path / "parts", sensitive=("sex", "race"))
    save_file(models.table_mlp().state_dict(), str(tmp_path / "mlp.safetensors"))
    handle = load_model(f"{MODELS}:table_mlp", weights=tmp_path / "mlp.safetensors",
                        data=open_stream(source).info)
    options = create_probe("group-metrics", handle, n_boot=200, min_group_size=1).options
    (local, local_result), (remote, remote_result) = _both(handle, source, ("sex", "race"), options)
    assert local.rows == remote.rows == 6000
    assert local.table.same_counts(remote.table, rtol=1e-12)
    close(numbers(local_result), numbers(remote_result))
    assert torch.equal(local.sample.x, remote.sample.x)  # the same stratified sample
    assert local.sample.groups.equals(remote.sample.groups)


def test_ray_image_folder_equals_the_local_engine(cluster, tmp_path):
    manifest = write_folder(tmp_path / "photos", n=10)
    manifest.to_csv(tmp_path / "photos" / "manifest.csv", index=False)
    save_file(models.image_cnn().state_dict(), str(tmp_path / "cnn.safetensors"))
    source = DataSource(path=tmp_path / "photos" / "manifest.csv", sensitive=("skin",), size=(8, 8), batch_size=5)
    handle = load_model(f"{MODELS}:image_cnn", weights=tmp_path / "cnn.safetensors",
                        data=open_source(source).info)
    options = create_probe("group-metrics", handle, n_boot=50, min_group_size=1).options
    (local, local_result), (remote, remote_result) = _both(handle, source, ("skin",), options)
    assert local.rows == remote.rows == 20
    close(numbers(local_result), numbers(remote_result))
    assert np.array_equal(local.sample.x.numpy(), remote.sample.x.numpy())
