"""timm:NAME and torchvision:NAME with a weights file: built offline, numbers checked against the same module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from captum.attr import LayerAttribution, LayerGradCam

from xai.datasets import Dataset
from xai.errors import ModelLoadError, NotApplicableError
from xai.explain import create_explainer
from xai.sources import load_source
from xai.sources._common import prepare_images
from xai.zoo import load_model

from .._hostile import marker_pickle
from ._builders import timm_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    path = tmp_path_factory.mktemp("timm") / "resnet10t.safetensors"
    return timm_model("resnet10t", path, classes=5), path


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    path = tmp_path_factory.mktemp("timm") / "vit.safetensors"
    return timm_model("vit_tiny_patch16_224", path, classes=3, img_size=32), path


def _images(n: int = 2, side: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def test_timm_classes_from_the_weights_and_data_config_from_the_architecture(resnet):
    import timm

    model, path = resnet
    handle = load_model("timm:resnet10t", weights=path)
    assert handle.class_names == tuple(f"class {i}" for i in range(5))  # 5 read off the classifier's shape
    assert handle.task == "classification" and handle.modality == "image"
    config = timm.data.resolve_data_config({}, model=model)
    assert handle.image_config.input_size == tuple(config["input_size"])
    assert handle.image_config.mean == pytest.approx(config["mean"])
    assert handle.image_config.std == pytest.approx(config["std"])
    assert handle.cam_layer == model.feature_info[-1]["module"] == "layer4"
    x = _images(side=64)
    assert torch.allclose(handle.module(x), model(x), atol=1e-5)


def test_classes_are_named_and_counted(resnet):
    _, path = resnet
    names = ["a", "b", "c", "d", "e"]
    assert load_source("timm:resnet10t", weights=path, classes=names).class_names == tuple(names)
    with pytest.raises(ModelLoadError, match="scores 5 classes but 2 class names"):
        load_source("timm:resnet10t", weights=path, classes=["a", "b"])


def test_grad_cam_zero_config_equals_captum_on_the_last_stage(resnet):
    model, path = resnet
    handle = load_source("timm:resnet10t", weights=path, input_size=32)
    x = prepare_images(_images(), handle.image_config)
    result = create_explainer("grad-cam", handle).explain(Dataset.from_arrays(x, [0, 1]))
    assert result.options["layer"] == "layer4"
    target = torch.as_tensor(result.targets)
    cam = LayerGradCam(model, model.layer4).attribute(x, target=target, relu_attributions=True)
    expected = LayerAttribution.interpolate(cam, (32, 32), "bilinear").expand_as(x)
    np.testing.assert_allclose(result.attributions, expected.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_vit_grad_cam_reads_the_last_norm_as_a_patch_grid(vit):
    """The class token is dropped and the tokens put on their 2x2 grid; equal to Grad-CAM computed by hand."""
    model, path = vit
    handle = load_source("timm:vit_tiny_patch16_224", weights=path)
    assert handle.image_config.input_size == (3, 32, 32)  # img_size read off the position embedding
    assert handle.cam_layer == "blocks.11.norm1"
    assert handle.attention == tuple(f"blocks.{i}.attn.attn_drop" for i in range(12))
    x = prepare_images(_images(), handle.image_config)
    result = create_explainer("grad-cam", handle).explain(Dataset.from_arrays(x, [0, 1]))
    seen = []
    hook = model.blocks[11].norm1.register_forward_hook(lambda _m, _i, out: seen.append(out))
    logits = model(x)
    hook.remove()
    target = torch.as_tensor(result.targets)
    (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), seen[0])
    acts, grads = seen[0][:, 1:].reshape(2, 2, 2, -1), grad[:, 1:].reshape(2, 2, 2, -1)  # (B, h, w, D)
    weights = grads.mean(dim=(1, 2), keepdim=True)
    cam = F.relu((weights * acts).sum(-1))[:, None]  # (B, 1, h, w)
    expected = F.interpolate(cam, size=(32, 32), mode="bilinear").expand_as(x)
    np.testing.assert_allclose(result.attributions, expected.detach().numpy(), rtol=1e-4, atol=1e-6)
    assert dict(model.blocks[11].norm1._forward_hooks) == {}  # the grid hook is gone


def test_vit_rollout_reads_the_explicit_softmax(vit):
    model, path = vit
    handle = load_source("timm:vit_tiny_patch16_224", weights=path)
    x = prepare_images(_images(), handle.image_config)
    assert torch.allclose(handle.module(x), model(x), atol=1e-5)  # unfused attention: same numbers
    result = create_explainer("attention-rollout", handle).explain(Dataset.from_arrays(x, [0, 1]))
    assert result.attributions.shape == (2, 3, 32, 32) and np.isfinite(result.attributions).all()


def test_torchvision_resnet_from_a_weights_only_state_dict(tmp_path):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4).eval()
    path = tmp_path / "resnet18.pt"
    torch.save(model.state_dict(), path)
    handle = load_model("torchvision:resnet18", weights=path, classes=["w", "x", "y", "z"])
    meta = torchvision.models.ResNet18_Weights.DEFAULT.transforms()
    assert handle.image_config.mean == tuple(meta.mean) and handle.image_config.std == tuple(meta.std)
    assert handle.image_config.input_size == (3, *meta.crop_size, *meta.crop_size)
    assert handle.class_names == ("w", "x", "y", "z") and handle.cam_layer == "layer4"
    x = _images(side=64)
    assert torch.allclose(handle.module(x), model(x), atol=1e-5)


def test_pickled_weights_are_refused_without_trust(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "weights.pt"
    path.write_bytes(marker_pickle(marker))
    with pytest.raises(ModelLoadError, match="could run arbitrary code"):
        load_model("timm:resnet10t", weights=path)
    with pytest.raises(ModelLoadError, match="could run arbitrary code"):
        load_model("torchvision:resnet18", weights=path)
    assert not marker.exists()


def test_unknown_architecture_and_foreign_weights_are_one_line(resnet):
    _, path = resnet
    with pytest.raises(ModelLoadError, match="unknown timm architecture 'resnet9000'"):
        load_model("timm:resnet9000", weights=path)
    with pytest.raises(ModelLoadError, match="convnext_atto"):
        load_model("timm:convnext_atto", weights=path)
    with pytest.raises(ModelLoadError, match="needs --weights"):
        load_model("timm:resnet10t")


def test_gradient_methods_are_refused_with_the_why_not_reason_only_for_onnx(resnet):
    _, path = resnet
    handle = load_source("timm:resnet10t", weights=path)
    with pytest.raises(NotApplicableError, match="needs attention modules"):
        create_explainer("attention-rollout", handle)


def test_cli_explains_a_vit_without_layer_or_target(vit, tmp_path):
    _, path = vit
    out = subprocess.run(
        [sys.executable, "-m", "xai", "explain", "timm:vit_tiny_patch16_224", "--weights", str(path),
         "--data", "style-content", "-m", "grad-cam", "-n", "2", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["options"]["layer"] == "blocks.11.norm1"
    assert np.asarray(doc["attributions"]).shape == (2, 3, 32, 32)
    assert doc["class_names"] == ["red", "green", "blue"]  # the data's labels: as many as the model's classes


def test_cli_missing_weights_is_one_line_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "xai", "explain", "timm:resnet10t", "--weights",
                          str(tmp_path / "none.safetensors"), "--data", "style-content", "-m", "grad-cam"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("error: weights file not found")
