"""``xai check --engine ray``: the same gates, metrics, index and exit code as the local engine.

A local Ray cluster (2 CPUs) is started inside the test module and shut down after it.
"""

from __future__ import annotations

import json
import re

import pytest
import ray  # in the dev extra: no skip
import torch
from typer.testing import CliRunner

from tests.cli.test_check import Constant, SexRule  # the same unfair and constant models
from xai.cli import app
from xai.datasets import load_dataset

runner = CliRunner()
ROWS = 1500


GATES = ('[[gate]]\nmetric = "fairness.group-metrics.sex.demographic_parity_difference"\nop = "<="\nvalue = 0.1\n'
         '[[gate]]\nmetric = "accuracy"\nop = ">="\nvalue = 0.5\n')


def _spec(path, model, sensitive: str = '"sex", "race"', probes: str = '[[probe]]\nname = "group-metrics"\n'):
    path.write_text(f'title = "{path.stem}"\nexplain = []\n[model]\nname = "{model}"\n'
                    f'[data]\nname = "adult"\nsamples = {ROWS}\nsensitive = [{sensitive}]\n' + probes + GATES)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    male = load_dataset("adult", "test").feature_names.index("sex=Male")
    torch.jit.script(SexRule(male)).save(str(folder / "unfair.pt"))
    torch.jit.script(Constant()).save(str(folder / "fair.pt"))
    _spec(folder / "a-unfair.toml", folder / "unfair.pt")
    _spec(folder / "b-fair.toml", folder / "fair.pt",
          probes='[[probe]]\nname = "group-metrics"\n[[probe]]\nname = "slices"\noptions = { max_order = 2 }\n')
    # valid TOML and spec, but the data has no column "religion": fails while running (exit 2)
    _spec(folder / "c-broken.toml", folder / "fair.pt", sensitive='"religion"')
    return folder


def _check(*args: str):
    return runner.invoke(app, ["check", *map(str, args), "--json"])


def test_ray_engine_equals_local_engine(cluster, specs, tmp_path):
    good = [specs / "a-unfair.toml", specs / "b-fair.toml"]
    local = _check(*good, "-o", tmp_path / "local", "--engine", "local")
    remote = _check(*good, "-o", tmp_path / "ray", "--engine", "ray")
    assert local.exit_code == remote.exit_code == 1, (local.output, remote.output)  # the unfair model fails
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert a["verdict"] == b["verdict"] and a["passed"] is b["passed"] is False
    for x, y in zip(a["audits"], b["audits"], strict=True):
        assert x["slug"] == y["slug"] and x["passed"] == y["passed"]
        assert [(g["name"], g["value"], g["passed"]) for g in x["gates"]] == \
            [(g["name"], g["value"], g["passed"]) for g in y["gates"]]
    for slug in ("a-unfair", "b-fair"):  # every metric of every audit, as the local engine wrote it
        m_local = json.loads((tmp_path / "local" / f"{slug}.json").read_text())["metrics"]
        m_ray = json.loads((tmp_path / "ray" / f"{slug}.json").read_text())["metrics"]
        assert m_local == m_ray
    assert "fairness.slices.count_significant" in m_ray
    index_local = (tmp_path / "local" / "index.html").read_text()
    index_ray = (tmp_path / "ray" / "index.html").read_text()
    strip = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC|<td class=\"num\">\d+\.\d</td>")  # stamp, wall times
    assert strip.sub("", index_local) == strip.sub("", index_ray)


def test_a_failing_spec_keeps_the_others_results_and_exits_as_local_would(cluster, specs, tmp_path):
    every = [specs / "a-unfair.toml", specs / "b-fair.toml", specs / "c-broken.toml"]
    local = runner.invoke(app, ["check", *map(str, every), "-o", str(tmp_path / "local"), "--engine", "local"])
    remote = runner.invoke(app, ["check", *map(str, every), "-o", str(tmp_path / "ray"), "--engine", "ray"])
    assert local.exit_code == remote.exit_code == 2
    assert "unknown sensitive column 'religion'" in local.output
    assert "c-broken: unknown sensitive column 'religion'" in remote.output
    assert "Traceback" not in remote.output
    # the local engine stops with nothing written; Ray wrote the two audits that ran, and their index
    assert not (tmp_path / "local" / "index.html").exists()
    for slug in ("a-unfair", "b-fair"):
        assert json.loads((tmp_path / "ray" / f"{slug}.json").read_text())["slug"] == slug
    assert not (tmp_path / "ray" / "c-broken.json").exists()
    assert "b-fair" in (tmp_path / "ray" / "index.html").read_text()


def test_unknown_engine_is_exit_2(specs, tmp_path):
    result = runner.invoke(app, ["check", str(specs / "b-fair.toml"), "-o", str(tmp_path), "--engine", "dask"])
    assert result.exit_code == 2
    assert "unknown engine 'dask'; known: local, ray" in result.output
