"""Our wrappers equal captum called directly on the same model and inputs; bad input says why."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import (
    DeepLift,
    FeatureAblation,
    GradientShap,
    GuidedGradCam,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)

from xai.errors import DataError, NotApplicableError, UnknownNameError
from xai.explain import conv_layers, create_explainer, list_explainers


@pytest.fixture(scope="module")
def digits6(digits_test):
    return digits_test.head(6)


def _ours(name, handle, data, **options):
    return create_explainer(name, handle, **options).explain(data, target="label", batch_size=64)


def test_smoothgrad_equals_captum_noise_tunnel(lenet, digits6):
    ours = _ours("smoothgrad", lenet, digits6, nt_samples=6)
    stdevs = 0.15 * float(digits6.x.max() - digits6.x.min())  # the documented default
    torch.manual_seed(0)
    theirs = NoiseTunnel(Saliency(lenet.module)).attribute(
        digits6.x.clone().requires_grad_(), nt_type="smoothgrad", nt_samples=6, stdevs=stdevs,
        target=digits6.y)
    np.testing.assert_allclose(ours.attributions, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert ours.options["nt_samples"] == 6


def test_gradient_shap_equals_captum_with_data_baselines(lenet, digits6):
    ours = _ours("gradient-shap", lenet, digits6, n_samples=8, n_baselines=4)
    torch.manual_seed(0)
    np.random.seed(0)  # captum's GradientShap draws baselines and path points with NumPy
    baselines = digits6.x[torch.randperm(len(digits6))[:4]]
    theirs = GradientShap(lenet.module).attribute(digits6.x, baselines=baselines, n_samples=8,
                                                  target=digits6.y)
    np.testing.assert_allclose(ours.attributions, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_deeplift_equals_captum_and_sums_to_delta(lenet, digits6):
    ours = _ours("deeplift", lenet, digits6)
    theirs = DeepLift(lenet.module).attribute(digits6.x, baselines=torch.zeros_like(digits6.x),
                                              target=digits6.y)
    np.testing.assert_allclose(ours.attributions, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        fx = lenet.module(digits6.x).gather(1, digits6.y.view(-1, 1)).squeeze(1)
        f0 = lenet.module(torch.zeros_like(digits6.x)).gather(1, digits6.y.view(-1, 1)).squeeze(1)
    np.testing.assert_allclose(ours.attributions.reshape(6, -1).sum(1), (fx - f0).numpy(), atol=1e-3)


def test_deeplift_tabular_uses_the_mean_row(adult_mlp, adult_test):
    data = adult_test.head(20)
    ours = _ours("deeplift", adult_mlp, data)
    theirs = DeepLift(adult_mlp.module).attribute(
        data.x, baselines=data.x.mean(0, keepdim=True).expand_as(data.x), target=data.y)
    np.testing.assert_allclose(ours.attributions, theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_occlusion_image_equals_captum_with_default_window(lenet, digits6):
    ours = _ours("occlusion", lenet, digits6)
    assert (ours.options["window"], ours.options["stride"]) == (4, 2)  # 32 / 8, half overlap
    theirs = Occlusion(lenet.module).attribute(digits6.x, sliding_window_shapes=(1, 4, 4),
                                               strides=(1, 2, 2), baselines=0.0, target=digits6.y)
    # atol 1e-5: we push 16 occluded copies per forward pass, captum 1 (float32 summation order)
    np.testing.assert_allclose(ours.attributions, theirs.numpy(), rtol=1e-5, atol=1e-5)


def test_occlusion_tabular_one_raw_column_at_a_time(adult_mlp, adult_test):
    data = adult_test.head(12)
    ours = _ours("occlusion", adult_mlp, data)
    names = list(dict.fromkeys(data.feature_columns))
    mask = torch.tensor([[names.index(c) for c in data.feature_columns]])
    baseline = data.x.mean(0, keepdim=True)
    theirs = FeatureAblation(adult_mlp.module).attribute(data.x, baselines=baseline, feature_mask=mask,
                                                         target=data.y)  # (N, F): column effect per input
    # Each raw column's effect is shared equally by its inputs, so the column totals are the effect.
    first = [data.feature_columns.index(n) for n in names]
    np.testing.assert_allclose(ours.column_attributions, theirs[:, first].numpy(), rtol=1e-5, atol=1e-6)
    sizes = np.array([data.feature_columns.count(c) for c in data.feature_columns])
    np.testing.assert_allclose(ours.attributions * sizes, theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_occlusion_tabular_one_input_at_a_time(adult_mlp, adult_test):
    data = adult_test.head(8)
    ours = _ours("occlusion", adult_mlp, data, group="input", baseline="zeros")
    theirs = Occlusion(adult_mlp.module).attribute(data.x, sliding_window_shapes=(1,), baselines=0.0,
                                                   target=data.y)
    np.testing.assert_allclose(ours.attributions, theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_grad_cam_equals_captum_upsampled(lenet, digits6):
    assert conv_layers(lenet) == ["conv1", "conv2"]
    ours = _ours("grad-cam", lenet, digits6)
    assert ours.options["layer"] == "conv2"  # the last conv layer among handle.layers
    cam = LayerGradCam(lenet.module, lenet.module.conv2).attribute(digits6.x, target=digits6.y,
                                                                   relu_attributions=True)
    assert cam.shape == (6, 1, 10, 10)
    theirs = F.interpolate(cam, size=(32, 32), mode="bilinear")
    np.testing.assert_allclose(ours.attributions, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)
    conv1 = _ours("grad-cam", lenet, digits6, layer="conv1")
    cam1 = LayerGradCam(lenet.module, lenet.module.conv1).attribute(digits6.x, target=digits6.y,
                                                                    relu_attributions=True)
    np.testing.assert_allclose(conv1.attributions, F.interpolate(cam1, size=(32, 32), mode="bilinear")
                               .detach().numpy(), rtol=1e-5, atol=1e-7)


def test_guided_grad_cam_equals_captum(lenet, digits6):
    ours = _ours("guided-grad-cam", lenet, digits6)
    theirs = GuidedGradCam(lenet.module, lenet.module.conv2).attribute(digits6.x, target=digits6.y)
    np.testing.assert_allclose(ours.attributions, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_bad_layer_lists_the_valid_ones(lenet):
    with pytest.raises(UnknownNameError, match="unknown layer 'conv9'; known: conv1, conv2, fc1"):
        create_explainer("grad-cam", lenet, layer="conv9")
    with pytest.raises(DataError, match="fc1 .Linear. has no convolution; convolutional layers: conv1, conv2"):
        create_explainer("guided-grad-cam", lenet, layer="fc1")


def test_cam_on_a_model_without_convolutions_says_why(adult_mlp):
    assert "grad-cam" not in list_explainers(handle=adult_mlp)
    with pytest.raises(NotApplicableError, match="grad-cam needs a convolutional layer; adult-mlp has none"):
        create_explainer("grad-cam", adult_mlp)


# Options models validate every method alike: the message names the method, the option and what it accepts.
@pytest.mark.parametrize(("method", "options", "match"), [
    ("smoothgrad", {"nt_samples": 0}, r"smoothgrad: option nt_samples: Input should be greater than 0 \(got 0\)"),
    ("smoothgrad", {"sigma": 1}, "smoothgrad: unknown option 'sigma'; it takes target, nt_samples, stdevs, abs"),
    ("gradient-shap", {"baselines": "blur"}, r"gradient-shap: option baselines: Input should be 'data' or 'zeros'"),
    ("deeplift", {"baseline": "ones"}, "deeplift: option baseline: Input should be 'zeros' or 'mean'"),
    ("occlusion", {"window": 40}, "window 40 is larger than the 32x32 input"),
    ("occlusion", {"stride": 1.5}, "occlusion: option stride: Input should be a valid integer"),
    ("occlusion", {"group": "column"}, "occlusion on image inputs takes window, stride"),
    ("grad-cam", {"interpolate": "cubic"}, "grad-cam: option interpolate: Input should be 'bilinear' or 'nearest'"),
    ("saliency", {"layer": "conv1"}, "saliency: unknown option 'layer'"),
    ("integrated-gradients", {"steps": "many"}, "integrated-gradients: option steps: Input should be a valid integer"),
])
def test_bad_options_are_refused(lenet, method, options, match):
    with pytest.raises(DataError, match=match):
        create_explainer(method, lenet, **options)


def test_occlusion_on_sequences_hides_whole_steps():
    from torch import nn

    from xai.zoo import ModelHandle

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(8, 16, batch_first=True)
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    torch.manual_seed(0)
    module = Seq().eval()
    handle = ModelHandle(name="seq", module=module, task="classification", modality="sequence",
                         input_shape=(8, 8), class_names=("a", "b", "c"), source="test", sha256="0")
    explainer = create_explainer("occlusion", handle, window=2)
    assert (explainer.options["window"], explainer.options["stride"]) == (2, 2)
    x, t = torch.rand(3, 8, 8), torch.tensor([0, 1, 2])
    theirs = Occlusion(module).attribute(x, sliding_window_shapes=(2, 8), strides=(2, 8), baselines=0.0, target=t)
    np.testing.assert_allclose(explainer.attribute(x, t).numpy(), theirs.numpy(), atol=1e-6)
    with pytest.raises(DataError, match="window 9 is larger than the 8-step input"):
        create_explainer("occlusion", handle, window=9)
