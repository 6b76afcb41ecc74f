"""The library front door: the README's Python API example runs, and its numbers are captum's and fairlearn's."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from fairlearn.metrics import MetricFrame, demographic_parity_difference, selection_rate
from sklearn.metrics import accuracy_score
from torch import nn

import xai
from xai.errors import DataError, ModelLoadError

from .conftest import REPO


def _readme_snippet() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- python-api:start -->\s*```python\n(.*?)```\s*<!-- python-api:end -->", text, re.S)
    assert block, "README.md has no Python API example between the python-api markers"
    return block.group(1)


@pytest.fixture(scope="module")
def readme():
    """The README example's namespace after running it exactly as written."""
    namespace: dict = {"__name__": "readme"}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(_readme_snippet(), "README.md", "exec"), namespace)
    namespace["_stdout"] = out.getvalue()
    return namespace


def test_readme_snippet_is_short():
    lines = [line for line in _readme_snippet().splitlines() if line.strip()]
    assert 5 <= len(lines) <= 12


def test_readme_saliency_equals_captum_on_the_same_module(readme):
    model, x, saliency = readme["model"], readme["x"], readme["saliency"]
    assert saliency.method == "saliency" and saliency.attributions.shape == (16, 4)
    rows = [int(np.flatnonzero((x == row).all(axis=1))[0]) for row in saliency.inputs]  # rows of the user's x
    assert len(set(rows)) == 16
    inputs = torch.tensor(x[rows], requires_grad=True)
    with torch.no_grad():
        predicted = model(torch.tensor(x[rows])).argmax(1)
    np.testing.assert_array_equal(saliency.targets, predicted.numpy())  # default target: the predicted class
    expected = Saliency(model).attribute(inputs, target=predicted, abs=True).detach().numpy()
    np.testing.assert_allclose(saliency.attributions, expected, rtol=1e-5, atol=1e-7)
    importance = saliency.column_importance()
    assert list(importance) == sorted(importance, key=importance.get, reverse=True)
    assert importance["a"] == pytest.approx(float(np.abs(expected[:, 0]).mean()), rel=1e-5)


def test_readme_group_metrics_equal_fairlearn(readme):
    model, x, y, sex, audit = readme["model"], readme["x"], readme["y"], readme["sex"], readme["audit"]
    with torch.no_grad():
        pred = model(torch.tensor(x)).argmax(1).numpy()
    frame = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate},
                        y_true=y, y_pred=pred, sensitive_features=sex)
    (table,) = audit.fairness[0].tables
    for group in ("f", "m"):
        assert table.by_group["accuracy"][group] == pytest.approx(frame.by_group.loc[group, "accuracy"], abs=1e-12)
        assert table.by_group["selection_rate"][group] == pytest.approx(
            frame.by_group.loc[group, "selection_rate"], abs=1e-12)
    assert table.disparities["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=sex), abs=1e-12)
    assert audit.performance["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-6)
    assert audit.explanations == () and audit.data.rows == 400 and audit.data.sensitive == ("sex",)
    assert "demographic_parity_difference" in readme["_stdout"]
    # the torch-free metric function gives the same numbers from the arrays alone
    direct = xai.group_frame(y_true=y, y_pred=pred, sensitive_features=sex)
    assert direct.by_group["selection_rate"] == table.by_group["selection_rate"]


def test_import_xai_is_torch_free_and_every_export_resolves():
    import os
    import subprocess
    import sys

    probe = ("import sys, xai; heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'captum')); "
             "print(heavy); [getattr(xai, n) for n in xai.__all__]; from xai.fairness import group_frame; "
             "print(callable(xai.explain), callable(xai.audit), xai.explain.EXPLAINERS.kind)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True True explainer"]
    assert {"load_model", "load_dataset", "explain", "audit", "check", "group_frame", "ModelHandle", "Dataset",
            "AuditSpec", "list_methods", "XaiError", "__version__"} <= set(xai.__all__)


def test_from_module_picks_layers_and_hashes_the_weights():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    handle = xai.ModelHandle.from_module(module, classes=["a", "b", "c"], input_shape=(1, 8, 8))
    assert (handle.task, handle.modality, handle.layers, handle.class_names) == (
        "classification", "image", ("0", "3"), ("a", "b", "c"))
    assert handle.sha256 == xai.ModelHandle.from_module(module, classes=3, input_shape=(1, 8, 8)).sha256
    with torch.no_grad():
        module[3].bias += 1
    assert handle.sha256 != xai.ModelHandle.from_module(module, classes=3, input_shape=(1, 8, 8)).sha256
    assert xai.ModelHandle.from_module(module, classes=2, input_shape=(1, 8, 8), layers=["3"]).task == \
        "binary-classification"
    with pytest.raises(xai.XaiError, match="layer"):
        xai.ModelHandle.from_module(module, classes=3, input_shape=(1, 8, 8), layers=["nope"])
    with pytest.raises(ModelLoadError, match="modality"):
        xai.ModelHandle.from_module(module, classes=3, input_shape=(8, 8))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"x": np.zeros((3, 2)), "y": [0, 1]}, "one label per row"),
    ({"x": np.zeros((2, 2)), "y": [0.5, 1]}, "class indices"),
    ({"x": np.zeros((2, 2)), "y": [0, 1], "groups": ["a"]}, "groups has 1 rows"),
    ({"x": np.zeros((2, 2)), "y": [0, 2], "class_names": ["a", "b"]}, "labels go up to 2"),
])
def test_from_arrays_refuses_bad_arrays(kwargs, message):
    with pytest.raises(DataError, match=message):
        xai.Dataset.from_arrays(**kwargs)


def test_explain_options_are_validated_before_any_work():
    model = nn.Sequential(nn.Linear(2, 2))
    data = xai.Dataset.from_arrays(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(DataError, match="integrated-gradients: option steps"):
        xai.explain(model, data, method="integrated-gradients", steps="many")
    with pytest.raises(xai.XaiError, match="unknown explainer 'nope'"):
        xai.explain(model, data, method="nope")
    with pytest.raises(ModelLoadError, match="needs a Dataset"):
        xai.explain(model, None, method="saliency")


def test_check_runs_a_spec_and_judges_its_gates(tmp_path):
    spec = xai.AuditSpec.model_validate({
        "title": "api check", "model": {"name": "lenet"}, "data": {"samples": 64},
        "explain": [], "probe": [],
        "gate": [{"metric": "accuracy", "op": ">=", "value": 0.5},
                 {"metric": "accuracy", "op": ">", "value": 1.0}],
    })
    (checked,) = xai.check(spec, baselines=tmp_path)
    assert [g.passed for g in checked.gates] == [True, False] and not checked.passed
    assert checked.result.data.rows == 64 and checked.result.model.name == "lenet"


def test_list_methods_with_a_model_says_why_not():
    rows = {m["name"]: m for m in xai.list_methods("explain", model="lenet")}
    assert rows["attention-rollout"]["why_not"] == "it needs attention modules; lenet has none"
    assert rows["saliency"]["applies"]


def test_audit_in_memory_runs_the_applicable_defaults_and_refuses_unknown_columns():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    rng = np.random.default_rng(1)
    data = xai.Dataset.from_arrays(rng.normal(size=(60, 3)), rng.integers(0, 2, 60),
                                   groups={"g": rng.choice(["u", "v"], 60)})
    handle = xai.ModelHandle.from_module(model, classes=2, input_shape=(3,))
    result = xai.audit(handle, data, sensitive=["g"], probe=[{"name": "group-metrics", "options": {"n_boot": 0}}])
    from xai.explain import list_explainers

    assert [e.method for e in result.explanations] == list_explainers(handle=handle)
    assert "attention-rollout" not in [e.method for e in result.explanations]
    assert all(len(e.attributions) == 8 for e in result.explanations)  # the spec default: 8 samples
    assert result.fairness[0].probe == "group-metrics" and result.metrics()  # gates can address it
    with pytest.raises(DataError, match="no column 'race'"):
        xai.audit(handle, data, sensitive=["race"], explain=[], probe=["group-metrics"])


def test_explain_a_zoo_model_by_name_equals_the_audit_of_the_same_spec():
    direct = xai.explain("lenet", "digits", method="saliency", samples=3, seed=5)
    spec = xai.AuditSpec.model_validate({"title": "t", "model": {"name": "lenet"}, "data": {"name": "digits"},
                                         "explain": [{"method": "saliency", "samples": 3}], "probe": [], "seed": 5})
    from xai.audit import run_audit

    (via_runner,) = run_audit(spec, slug="t").explanations
    np.testing.assert_array_equal(direct.inputs, via_runner.inputs)
    np.testing.assert_allclose(direct.attributions, via_runner.attributions, rtol=1e-6, atol=1e-8)
