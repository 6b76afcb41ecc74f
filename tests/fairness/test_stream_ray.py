"""The Ray engine on a local 2-CPU cluster started here: the same count table as the local engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray
from typer.testing import CliRunner

from xai.cli import app
from xai.fairness.predictions import audit_predictions
from xai.fairness.stream import scan_predictions

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    # workers import this checkout's xai, as the driver does
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(5)
    n = 6000
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "race": rng.choice(["a", "b", "c"], n, p=[.5, .4, .1]),
                          "label": rng.integers(0, 2, n)})
    frame["score"] = np.clip(0.35 * frame["label"] + 0.65 * rng.random(n), 0, 1)
    frame["pred"] = (frame["score"] >= 0.5).astype(int)
    folder = tmp_path_factory.mktemp("ray")
    (folder / "parts").mkdir()
    for i, (a, b) in enumerate([(0, 2500), (2500, 4100), (4100, n)]):
        frame.iloc[a:b].to_parquet(folder / "parts" / f"part-{i}.parquet", index=False)
    frame.to_csv(folder / "all.csv", index=False)
    return folder


def _numbers(result) -> dict:
    document = result.to_dict()
    document.pop("provenance")
    return document


def _close(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _close(a[key], b[key])
    elif isinstance(a, list | tuple):
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15, nan_ok=True)
    else:
        assert a == b


@pytest.mark.parametrize("name", ["parts", "all.csv"])
def test_ray_equals_the_local_engine(cluster, data, name):
    from xai.fairness._ray import scan_predictions_ray

    args = {"y_true": "label", "score": "score", "sensitive": ["sex", "race"]}
    local = scan_predictions(data / name, progress=False, **args)
    remote = scan_predictions_ray(data / name, **args)
    assert np.array_equal(remote.cells, local.cells) and remote.levels == local.levels
    assert remote.same_counts(local, rtol=1e-12)
    _close(_numbers(audit_predictions(remote, n_boot=200, seed=1)),
           _numbers(audit_predictions(local, n_boot=200, seed=1)))


def test_engine_ray_on_the_command_line(cluster, data):
    common = ["fairness", "--data", str(data / "parts"), "--y-true", "label", "--y-pred", "pred", "-s", "sex,race",
              "--n-boot", "100", "--json"]
    local, remote = run(*common), run(*common, "--engine", "ray")
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    a.pop("provenance"), b.pop("provenance")
    _close(b, a)
    bad = run("fairness", "--data", str(data / "parts"), "--y-true", "label", "--y-pred", "nope", "-s", "sex",
              "--engine", "ray")
    assert bad.exit_code == 2 and "unknown column in parts 'nope'" in bad.stderr


def run(*args: str):
    return CliRunner().invoke(app, list(args))
