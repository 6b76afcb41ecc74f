"""Explanation drift (xai/explain/drift.py): the statistics against scipy and hand counts, the spec
section, stored baselines, and the planted scenarios (a shortcut, a model leaning on sex) against
reseeded retrains of the same recipes."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from tests._hostile import marker_pickle
from tests.conftest import REPO, ZOO
from xai.audit.spec import parse_spec
from xai.datasets import load_dataset
from xai.errors import DataError, SpecError
from xai.explain.drift import (
    ExplanationDrift,
    bootstrap_mean,
    mass_share,
    save_baseline_attributions,
    spearman_rows,
    topk_overlap,
)
from xai.zoo import load_model

# ---------------------------------------------------------------- the statistics


def test_spearman_rows_equals_scipy_row_by_row_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(6, 9)).astype(float)  # small integers: many ties
    b = a + rng.normal(0, 1.5, size=a.shape)
    b[2] = rng.integers(0, 3, size=9)
    ours = spearman_rows(a, b)
    for i in range(len(a)):
        assert ours[i] == pytest.approx(spearmanr(a[i], b[i]).statistic, abs=1e-12)


def test_spearman_rows_of_a_constant_row_is_nan_like_scipy():
    a = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]])
    b = np.array([[3.0, 1.0, 2.0], [3.0, 2.0, 1.0]])
    ours = spearman_rows(a, b)
    with pytest.warns(Warning):  # scipy warns on a constant input and returns NaN
        expected = spearmanr(a[0], b[0]).statistic
    assert math.isnan(ours[0]) and math.isnan(expected)
    assert ours[1] == -1.0


def test_topk_overlap_is_the_jaccard_of_hand_counted_top_sets():
    a = np.array([[5.0, 4.0, 3.0, 2.0, 1.0],
                  [0.1, 0.9, 0.8, 0.2, 0.7]])
    b = np.array([[1.0, 5.0, 4.0, 0.0, 0.0],   # top-2 {1, 2} vs a's {0, 1}: 1 shared of 3
                  [0.9, 0.8, 0.7, 0.1, 0.0]])  # top-2 {0, 1} vs a's {1, 2}: 1 of 3
    assert topk_overlap(a, b, 2).tolist() == pytest.approx([1 / 3, 1 / 3])
    # top-3: a0 {0,1,2} vs b0 {1,2,0} -> 3/3; a1 {1,2,4} vs b1 {0,1,2} -> 2/4
    assert topk_overlap(a, b, 3).tolist() == pytest.approx([1.0, 0.5])
    assert topk_overlap(a, a, 1).tolist() == [1.0, 1.0]
    with pytest.raises(DataError, match="top_k"):
        topk_overlap(a, b, 6)


def test_mass_share_counts_magnitudes_on_the_mask():
    magnitude = np.array([[1.0, -3.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    mask = np.array([False, True, False, True])
    assert mass_share(magnitude, mask).tolist() == pytest.approx([7 / 8, 0.0])


def test_bootstrap_interval_holds_the_mean_and_collapses_on_constants():
    values = np.random.default_rng(1).normal(0.3, 0.1, size=200)
    low, high = bootstrap_mean(values, seed=0)
    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * values.std() / math.sqrt(200), rel=0.2)
    assert bootstrap_mean(np.full(10, 0.25)) == (pytest.approx(0.25), pytest.approx(0.25))
    assert bootstrap_mean(np.array([0.5, math.nan, 0.5])) == (0.5, 0.5)  # NaN samples left out


# ---------------------------------------------------------------- options and the spec section


def test_options_need_exactly_one_baseline_and_a_known_explainer():
    with pytest.raises(DataError, match="name one baseline"):
        ExplanationDrift.parse_options({})
    with pytest.raises(DataError, match="name one baseline"):
        ExplanationDrift.parse_options({"baseline_model": "a", "baseline_attributions": "b.npz"})
    with pytest.raises(DataError, match="unknown explainer 'nope'"):
        ExplanationDrift.parse_options({"baseline_model": "a", "method": "nope"})
    with pytest.raises(DataError, match="region must be"):
        ExplanationDrift.parse_options({"baseline_model": "a", "region": [5, 2, 0, 4]})


SPEC = """title = "t"
[model]
name = "lenet-shortcut"
{drift}
[[gate]]
metric = "drift.integrated-gradients.mass_moved"
op = "<="
value = 0.03
"""


def test_spec_takes_one_drift_table_or_an_array_of_them():
    one = parse_spec(SPEC.format(drift='[drift]\nbaseline_model = "lenet-marked"\n'))
    many = parse_spec(SPEC.format(drift='[[drift]]\nbaseline_model = "lenet-marked"\n'
                                        '[[drift]]\nbaseline_model = "lenet"\nmethod = "saliency"\n'))
    assert [d.options.baseline_model for d in one.drift] == ["lenet-marked"]
    assert [(d.options.baseline_model, d.options.method) for d in many.drift] == [
        ("lenet-marked", "integrated-gradients"), ("lenet", "saliency")]
    assert one.drift[0].options.samples == ExplanationDrift.Options.model_fields["samples"].default
    with pytest.raises(SpecError, match=r"drift\.0\.top_kk"):
        parse_spec(SPEC.format(drift='[drift]\nbaseline_model = "lenet-marked"\ntop_kk = 3\n'))


# ---------------------------------------------------------------- runs on the zoo


@pytest.fixture(scope="module")
def marked_rows():
    return load_dataset("digits-shortcut", "test")


def test_a_model_against_itself_has_no_drift(marked_rows):
    handle = load_model("lenet-marked", zoo_dir=ZOO)
    result = ExplanationDrift.run(handle, marked_rows, {"baseline_model": "lenet-marked", "method": "saliency",
                                                        "samples": 12})
    assert result.statistics["spearman"] == pytest.approx(1.0)
    assert result.statistics["topk_overlap"] == 1.0
    assert result.statistics["mass_moved"] == 0.0
    assert result.region == "pixels [3, 6, 0, 32]"  # the dataset's mark strip
    assert result.top_k == 103  # a tenth of 32 x 32 pixels, rounded up
    assert set(result.metrics()) == {"spearman", "topk_overlap", "mass_share", "baseline_mass_share", "mass_moved"}
    json.dumps(result.to_dict())


def test_stored_baseline_attributions_give_the_same_numbers_as_the_baseline_model(marked_rows, tmp_path):
    from xai.audit.runner import sample_rows
    from xai.explain import create_explainer

    handle = load_model("lenet-shortcut", zoo_dir=ZOO)
    options = {"method": "saliency", "samples": 12}
    live = ExplanationDrift.run(handle, marked_rows, {**options, "baseline_model": "lenet-marked"}, seed=3)
    rows = sample_rows(marked_rows, 12, 3)
    baseline = create_explainer("saliency", load_model("lenet-marked", zoo_dir=ZOO)).explain(
        rows, target="label", seed=3)
    path = save_baseline_attributions(baseline, tmp_path / "lenet-marked.saliency.npz")
    stored = ExplanationDrift.run(handle, marked_rows, {**options, "baseline_attributions": str(path)}, seed=3)
    assert stored.baseline == "stored:lenet-marked"
    for name, value in live.statistics.items():
        assert stored.statistics[name] == pytest.approx(value, abs=1e-6), name
    with pytest.raises(DataError, match="other rows"):  # another seed samples other rows
        ExplanationDrift.run(handle, marked_rows, {**options, "baseline_attributions": str(path)}, seed=4)
    with pytest.raises(DataError, match="'saliency' attributions, not 'integrated-gradients'"):
        ExplanationDrift.run(handle, marked_rows, {**options, "method": "integrated-gradients",
                                                   "baseline_attributions": str(path)}, seed=3)


def test_stored_attributions_are_never_unpickled(marked_rows, tmp_path):
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.npz"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # an .npz whose member is a pickle, not an array
        archive.writestr("features.npy", marker_pickle(marker))
    hostile.write_bytes(buffer.getvalue())
    handle = load_model("lenet-marked", zoo_dir=ZOO)
    with pytest.raises(DataError, match="hostile.npz"):
        ExplanationDrift.run(handle, marked_rows, {"baseline_attributions": str(hostile), "samples": 4})
    assert not marker.exists()


def test_tabular_drift_tracks_named_columns_and_rejects_unknown_ones(adult_mlp, adult_test):
    result = ExplanationDrift.run(adult_mlp, adult_test, {"baseline_model": "adult-mlp", "method": "saliency",
                                                          "samples": 20, "columns": ["sex"]})
    assert result.region == "columns: sex" and "sex" in result.feature_names
    assert result.top_k == math.ceil(len(result.feature_names) / 4)
    assert result.statistics["mass_moved"] == 0.0
    assert 0 < result.statistics["mass_share"] < 1
    with pytest.raises(DataError, match="unknown column"):
        ExplanationDrift.run(adult_mlp, adult_test, {"baseline_model": "adult-mlp", "columns": ["gender"]})
    with pytest.raises(DataError, match="region is for images"):
        ExplanationDrift.run(adult_mlp, adult_test, {"baseline_model": "adult-mlp", "region": [0, 1, 0, 1]})


def test_a_baseline_for_other_inputs_is_a_clear_error(adult_mlp, adult_test, tmp_path):
    from xai.errors import XaiError

    with pytest.raises(XaiError, match="lenet-marked"):
        ExplanationDrift.run(adult_mlp, adult_test, {"baseline_model": "lenet-marked", "samples": 4})
    spec = tmp_path / "x.toml"
    spec.write_text('title = "t"\nexplain = []\nprobe = []\n[model]\nname = "adult-mlp"\n'
                    '[drift]\nbaseline_model = "no-such-model"\nsamples = 4\n', encoding="utf-8")
    done = _check(spec, tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "no-such-model" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------- the planted scenarios, end to end


def _check(spec: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xai", "check", str(spec), "--device", "cpu", "-q",
                           "-o", str(tmp_path / "out"), "--json"],
                          cwd=REPO, capture_output=True, text=True, env={**_env(), "XAI_ZOO_DIR": str(ZOO)})


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}


def _turned_round(source: Path, model: str, gates: str, tmp_path: Path) -> Path:
    """The canary spec with its model replaced and its gates in their real direction (the control's gates)."""
    text = source.read_text(encoding="utf-8").split("[[gate]]")[0]
    text = text.replace(f'name = "{_model_of(text)}"', f'name = "{model}"')
    path = tmp_path / f"{model}.toml"
    path.write_text(text + gates, encoding="utf-8")
    return path


def _model_of(text: str) -> str:
    return text.split("[model]")[1].split('"')[1]


ADULT_GATES = (REPO / "audits" / "drift-adult-reseed.toml").read_text(encoding="utf-8").split("[[gate]]", 1)[1]
LENET_GATES = (REPO / "audits" / "drift-lenet-reseed.toml").read_text(encoding="utf-8").split("[[gate]]", 1)[1]


@pytest.mark.slow
@pytest.mark.parametrize(("canary", "planted", "control", "gates"), [
    ("drift-adult-sex.toml", "adult-mlp-sex", "adult-mlp-reseed", ADULT_GATES),
    ("drift-lenet-shortcut.toml", "lenet-shortcut", "lenet-marked-reseed", LENET_GATES),
], ids=["adult-leaning-on-sex", "lenet-shortcut"])
def test_the_drift_gate_fails_the_planted_change_and_passes_the_reseeded_retrain(canary, planted, control, gates,
                                                                                  tmp_path):
    source = REPO / "audits" / canary
    failed = _check(_turned_round(source, planted, "[[gate]]" + gates, tmp_path), tmp_path)
    assert failed.returncode == 1, failed.stderr
    verdicts = {g["metric"]: g["passed"] for a in json.loads(failed.stdout)["audits"] for g in a["gates"]}
    assert verdicts["drift.integrated-gradients.mass_moved"] is False
    passed = _check(_turned_round(source, control, "[[gate]]" + gates, tmp_path), tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr
