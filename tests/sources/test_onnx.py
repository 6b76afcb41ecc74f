"""ONNX files through onnxruntime: same outputs as torch, perturbation methods and probes run, gradients refuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xai.datasets import load_dataset
from xai.errors import ModelLoadError, NotApplicableError
from xai.explain import EXPLAINERS, create_explainer
from xai.fairness import PROBES
from xai.zoo import load_model

from ..conftest import ZOO
from ._builders import onnx_export

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch_handle = load_model("adult-mlp", zoo_dir=ZOO)
    path = onnx_export(torch_handle.module, torch.zeros(2, 87), tmp_path_factory.mktemp("onnx") / "adult.onnx")
    return torch_handle, path


@pytest.fixture(scope="module")
def rows():
    return load_dataset("adult", "test").head(40)


def test_onnx_outputs_equal_torch(exported, rows):
    torch_handle, path = exported
    handle = load_model(str(path), data="adult")
    assert handle.differentiable is False and handle.modality == "tabular" and handle.input_shape == (87,)
    assert handle.class_names == torch_handle.class_names  # named after the data's labels
    np.testing.assert_allclose(handle.predict(rows.x).numpy(), torch_handle.predict(rows.x).numpy(),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["occlusion", "feature-ablation", "kernel-shap"])
def test_perturbation_methods_equal_the_torch_models(exported, rows, method):
    torch_handle, path = exported
    handle = load_model(str(path), data="adult")
    options = {"n_samples": 24} if method == "kernel-shap" else {}
    data = rows.head(4)
    ours = create_explainer(method, handle, **options).explain(data, seed=3)
    reference = create_explainer(method, torch_handle, **options).explain(data, seed=3)
    np.testing.assert_allclose(ours.attributions, reference.attributions, rtol=1e-3, atol=1e-4)
    assert np.abs(ours.attributions).sum() > 0


def test_gradient_methods_refuse_with_one_line(exported):
    _, path = exported
    handle = load_model(str(path), data="adult")
    for name in EXPLAINERS.names():
        caps = EXPLAINERS.get(name).capabilities
        if caps.needs_gradients and "tabular" in caps.modalities:
            reason = EXPLAINERS.get(name).why_not(handle)
            assert reason == "it needs gradients; adult gives none (e.g. an ONNX model)", name
            with pytest.raises(NotApplicableError, match="needs gradients"):
                create_explainer(name, handle)


def test_group_metrics_equal_the_torch_models(exported):
    torch_handle, path = exported
    handle = load_model(str(path), data="adult")
    data = load_dataset("adult", "test").head(500)
    assert PROBES.get("group-metrics").why_not(handle) is None
    ours = PROBES.get("group-metrics").run(handle, data, {"sensitive": ["sex"]})
    reference = PROBES.get("group-metrics").run(torch_handle, data, {"sensitive": ["sex"]})
    ours_doc, reference_doc = ours.to_dict(), reference.to_dict()
    for doc in (ours_doc, reference_doc):
        doc.pop("provenance")
        doc.pop("model")
    assert ours_doc == reference_doc  # the same predictions: the same count tables and gaps


def test_cli_refuses_a_gradient_method_in_one_line(exported):
    _, path = exported
    out = subprocess.run([sys.executable, "-m", "xai", "explain", str(path), "--data", "adult", "-m", "saliency"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "needs gradients" in out.stderr


def test_a_broken_onnx_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(ModelLoadError, match="not an ONNX model onnxruntime can run"):
        load_model(str(bad))
