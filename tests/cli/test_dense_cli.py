"""`xai explain` end to end on the segmentation and detection entries."""

from __future__ import annotations

import json

import numpy as np
import torch
from captum.attr import IntegratedGradients
from typer.testing import CliRunner

from xai.cli import app
from xai.zoo import load_model

from ..conftest import ZOO

runner = CliRunner()


def test_explain_unet_grad_cam_writes_a_page_with_the_segmentation_metrics(tmp_path):
    result = runner.invoke(app, ["explain", "unet", "-m", "grad-cam", "--layer", "bottleneck",
                                 "-n", "2", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "explain-grad-cam.json").read_text())
    explanation = document["explanations"][0]
    attributions = np.array(explanation["attributions"])
    assert attributions.shape == (2, 3, 64, 64) and np.isfinite(attributions).all()
    assert explanation["options"]["layer"] == "bottleneck"
    assert set(document["performance"]) == {"miou", "pixel_accuracy"}
    assert "miou" in (tmp_path / "explain-grad-cam.html").read_text()


def test_explain_faster_rcnn_integrated_gradients_equals_captum():
    result = runner.invoke(app, ["explain", "faster-rcnn", "-m", "integrated-gradients", "-n", "2",
                                 "--option", "steps=8", "--json", "--seed", "0"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    ours = np.array(document["attributions"])
    assert ours.shape == (2, 3, 64, 64) and np.isfinite(ours).all() and np.abs(ours).sum() > 0
    handle = load_model("faster-rcnn", zoo_dir=ZOO)
    inputs = torch.tensor(document["inputs"], dtype=torch.float32)
    targets = torch.tensor(document["targets"])
    theirs = IntegratedGradients(handle.forward_target).attribute(
        inputs, baselines=torch.zeros_like(inputs), additional_forward_args=(targets,), n_steps=8)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-6)


def test_explain_espcn_defaults_to_the_lam_blurred_baseline_and_equals_captum():
    from xai.zoo.vision import blurred_baseline

    result = runner.invoke(app, ["explain", "espcn", "-m", "integrated-gradients", "-n", "3",
                                 "--option", "steps=16", "--option", "sigma=1.5", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["options"]["baseline"] == "blurred" and document["options"]["sigma"] == 1.5
    ours = np.array(document["attributions"])
    handle = load_model("espcn", zoo_dir=ZOO)
    inputs = torch.tensor(document["inputs"], dtype=torch.float32)
    targets = torch.tensor(document["targets"])
    baseline = blurred_baseline(inputs, 1.5)
    theirs = IntegratedGradients(handle.forward_target).attribute(
        inputs, baselines=baseline, additional_forward_args=(targets,), n_steps=16)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-6)
    # completeness from the blurred image, not from black
    with torch.no_grad():
        gap = handle.forward_target(inputs, targets) - handle.forward_target(baseline, targets)
    np.testing.assert_allclose(ours.reshape(3, -1).sum(1), gap.numpy(), atol=5e-3)
    np.testing.assert_allclose(document["convergence_delta"], ours.reshape(3, -1).sum(1) - gap.numpy(), atol=1e-5)


def test_blurred_baseline_option_errors_name_the_problem():
    tabular = runner.invoke(app, ["explain", "adult-mlp", "-m", "integrated-gradients", "-n", "2",
                                  "--option", "baseline=blurred"])
    assert tabular.exit_code == 2 and "blurs images" in tabular.output
    stray = runner.invoke(app, ["explain", "lenet", "-m", "integrated-gradients", "-n", "2",
                                "--option", "baseline=zeros", "--option", "sigma=2"])
    assert stray.exit_code == 2 and "sigma is the blur of baseline=blurred" in stray.output
