"""Activation maximisation: objectives recomputed with plain hooks, model untouched, CLI errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xai._provenance import sha256_state_dict
from xai.cli import app
from xai.errors import DataError, NotApplicableError, UnknownNameError
from xai.explain.dream import _Fourier, _transform, dream, total_variation
from xai.zoo import load_model

from ..conftest import ZOO
from ._hooks import hooked_output, no_hooks

runner = CliRunner()


@pytest.fixture(scope="module")
def lenet_channel(lenet):
    return dream(lenet, "conv2", channel=3, steps=64, seed=0)


def test_channel_objective_rises_5x_and_equals_an_independent_hook(lenet, lenet_channel):
    r = lenet_channel
    end = hooked_output(lenet.module, lenet.module.conv2, torch.from_numpy(r.image))[0, 3].mean().item()
    start = hooked_output(lenet.module, lenet.module.conv2, torch.from_numpy(r.start_image))[0, 3].mean().item()
    assert r.end_value == pytest.approx(end, rel=1e-5, abs=1e-6)
    assert r.start_value == pytest.approx(start, rel=1e-5, abs=1e-6)
    assert start > 0 and end / start >= 5.0
    metrics = r.metrics()
    assert metrics["dream.conv2.channel3.gain"] == pytest.approx(end / start, rel=1e-5)
    assert metrics["dream.conv2.channel3.vs_top1"] == pytest.approx(end / float(r.top_values[0]), rel=1e-5)
    assert r.image.shape == (1, 1, 32, 32) and np.isfinite(r.image).all()
    assert r.image.min() >= 0.0 and r.image.max() <= 1.0  # projected into the data range
    assert len(r.trace) == 64 and np.isfinite(r.trace).all()


def test_top_k_are_the_test_images_that_excite_the_channel_most(lenet, lenet_channel, digits_test):
    acts = hooked_output(lenet.module, lenet.module.conv2, digits_test.x)[:, 3].mean(dim=(1, 2)).numpy()
    order = np.argsort(-acts, kind="stable")[:8]
    np.testing.assert_allclose(lenet_channel.top_values, acts[order], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts[lenet_channel.top_indices], acts[order], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(lenet_channel.top_labels, digits_test.y[lenet_channel.top_indices].numpy())


def test_neuron_layer_and_class_objectives_recomputed(lenet):
    conv2 = lenet.module.conv2
    neuron = dream(lenet, "conv2", objective="neuron", channel=5, steps=16, top_k=0)
    assert neuron.position == (5, 5)  # centre of the 10x10 map
    act = hooked_output(lenet.module, conv2, torch.from_numpy(neuron.image))
    assert neuron.end_value == pytest.approx(act[0, 5, 5, 5].item(), rel=1e-5, abs=1e-6)
    corner = dream(lenet, "conv2", objective="neuron", channel=5, position=(0, 9), steps=4, top_k=0)
    act = hooked_output(lenet.module, conv2, torch.from_numpy(corner.image))
    assert corner.end_value == pytest.approx(act[0, 5, 0, 9].item(), rel=1e-5, abs=1e-6)

    layer = dream(lenet, "conv2", objective="layer", steps=16, top_k=0)
    act = hooked_output(lenet.module, conv2, torch.from_numpy(layer.image))
    assert layer.end_value == pytest.approx(float(np.sqrt((act.numpy() ** 2).sum())), rel=1e-5)
    assert layer.end_value > layer.start_value

    cls = dream(lenet, None, objective="class", channel=7, steps=16, top_k=3)
    with torch.no_grad():
        logits = lenet.module(torch.from_numpy(cls.image))
    assert cls.end_value == pytest.approx(logits[0, 7].item(), rel=1e-5)
    assert cls.layer == "output" and cls.end_value > cls.start_value


def test_token_layer_channel_is_the_feature_mean_over_tokens():
    vit = load_model("vit", zoo_dir=ZOO)
    r = dream(vit, "blocks.1", channel=4, steps=8, top_k=2, jitter=0, scales=(), degrees=0)
    act = hooked_output(vit.module, vit.module.blocks[1], torch.from_numpy(r.image))  # (1, T, D)
    assert r.end_value == pytest.approx(act[0, :, 4].mean().item(), rel=1e-5, abs=1e-6)


def test_googlenet_channel_rises_5x():
    net = load_model("googlenet", zoo_dir=ZOO)
    r = dream(net, "inception3a", channel=1, steps=64, top_k=0)
    layer = net.module.inception3a
    end = hooked_output(net.module, layer, torch.from_numpy(r.image))[0, 1].mean().item()
    start = hooked_output(net.module, layer, torch.from_numpy(r.start_image))[0, 1].mean().item()
    assert r.end_value == pytest.approx(end, rel=1e-4, abs=1e-6)
    assert start > 0 and end / start >= 5.0


def test_model_untouched_hooks_removed_no_parameter_grads(lenet):
    module = lenet.module
    before = sha256_state_dict(module)
    threads = torch.get_num_threads()
    module.train()  # the caller's mode, whatever it is, must come back
    try:
        dream(lenet, "conv2", channel=0, steps=4, top_k=2, octaves=2, param="fourier", tv=0.1, l2=0.1)
        assert all(m.training for m in module.modules())
        with pytest.raises(DataError, match="out of range"):
            dream(lenet, "conv2", channel=16, steps=2)  # raises inside the hook's context
        assert all(m.training for m in module.modules())
    finally:
        module.eval()
    assert sha256_state_dict(module) == before
    assert all(p.grad is None for p in module.parameters())
    assert no_hooks(module)
    assert torch.get_num_threads() == threads  # the one-thread CPU loop restores the count


@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_parametrisations_give_finite_images_of_the_input_shape(lenet, param):
    r = dream(lenet, "conv2", channel=2, steps=16, param=param, octaves=2, top_k=0)
    assert r.image.shape == (1, *lenet.input_shape)
    assert np.isfinite(r.image).all() and 0.0 <= r.image.min() and r.image.max() <= 1.0
    assert len(r.trace) == 32 and len(r.octave_images) == 2
    assert r.octave_images[0].shape[-1] < r.octave_images[1].shape[-1] == 32
    assert r.end_value > r.start_value
    assert bool(r.notes) == (param == "fourier")  # 1 channel: colour decorrelation is trivial


@pytest.mark.parametrize("channels", [1, 3])
def test_fourier_parametrisation_inverts_the_starting_image(channels):
    image = torch.rand(1, channels, 12, 10) * 0.9 + 0.05
    fourier = _Fourier(image, 0.0, 1.0)
    torch.testing.assert_close(fourier.image().detach(), image, rtol=1e-4, atol=1e-4)


def test_seeded_runs_are_reproducible(lenet):
    a = dream(lenet, "conv2", channel=1, steps=12, seed=3, top_k=0)
    b = dream(lenet, "conv2", channel=1, steps=12, seed=3, top_k=0)
    c = dream(lenet, "conv2", channel=1, steps=12, seed=4, top_k=0)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.trace, b.trace)
    assert not np.array_equal(a.start_image, c.start_image)


def test_from_image_starts_at_that_test_image(lenet, digits_test):
    r = dream(lenet, "conv2", channel=3, steps=4, from_image=11, top_k=0)
    np.testing.assert_array_equal(r.start_image[0], digits_test.x[11].numpy())
    with pytest.raises(DataError, match="out of range"):
        dream(lenet, "conv2", steps=1, from_image=len(digits_test))


def test_transforms_are_identity_when_off_and_total_variation_by_hand():
    x = torch.rand(1, 1, 8, 8)
    gen = torch.Generator().manual_seed(0)
    torch.testing.assert_close(_transform(x, gen, 0, (), 0.0), x)
    # 2x2 image [[0, 1], [1, 1]]: vertical diffs |1-0|, |1-1| -> mean 0.5; horizontal the same.
    img = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    assert total_variation(img).item() == pytest.approx(1.0)


def test_bad_inputs_raise_clear_errors(lenet, adult_mlp):
    with pytest.raises(UnknownNameError, match="conv1"):
        dream(lenet, "conv9")
    with pytest.raises(NotApplicableError, match="tabular"):
        dream(adult_mlp, "net.0")
    with pytest.raises(DataError, match="class 10 is out of range"):
        dream(lenet, None, objective="class", channel=10)
    with pytest.raises(DataError, match="outside"):
        dream(lenet, "conv2", objective="neuron", position=(10, 0), steps=1)


def test_cli_errors_exit_2():
    bad_layer = runner.invoke(app, ["dream", "lenet", "--layer", "conv9"])
    assert bad_layer.exit_code == 2 and "conv2" in bad_layer.stderr  # lists the valid layers
    bad_channel = runner.invoke(app, ["dream", "lenet", "--layer", "conv2", "--channel", "16"])
    assert bad_channel.exit_code == 2 and "16 channels" in bad_channel.stderr
    tabular = runner.invoke(app, ["dream", "adult-mlp", "--layer", "x"])
    assert tabular.exit_code == 2 and "image input" in tabular.stderr
    no_layer = runner.invoke(app, ["dream", "lenet"])
    assert no_layer.exit_code == 2 and "--layer" in no_layer.stderr
    bad_param = runner.invoke(app, ["dream", "lenet", "--layer", "conv2", "--param", "wavelet"])
    assert bad_param.exit_code == 2 and "pixel" in bad_param.stderr


def test_cli_json_and_html_page(tmp_path):
    done = runner.invoke(app, ["dream", "lenet", "--layer", "conv2", "--channel", "3", "--steps", "8",
                               "--top-k", "3", "--json", "-o", str(tmp_path)])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["layer"] == "conv2" and doc["channel"] == 3 and len(doc["trace"]) == 8
    assert doc["metrics"]["dream.conv2.channel3.end"] == pytest.approx(doc["end_value"])
    page = (tmp_path / "dream-lenet-conv2.channel3.html").read_text()
    saved = json.loads((tmp_path / "dream-lenet-conv2.channel3.json").read_text())  # the page's audit JSON
    assert saved["dreams"][0]["top_indices"] == doc["top_indices"]
    assert "<polyline" in page and page.count("data:image/png;base64,") >= 3 + 1 + 2
    assert not re.search(r"src=\"(https?:)?//", page)  # self-contained: loads nothing
    assert f"#{doc['top_indices'][0]}" in page


def test_a_silent_unit_is_reported_not_hidden():
    from xai.zoo.handle import ModelHandle

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(2 * 30 * 30, 10))
    with torch.no_grad():
        net[0].weight.fill_(-1.0)
        net[0].bias.fill_(-1.0)  # inputs in [0, 1]: the conv is <= -1, the ReLU always 0
    handle = ModelHandle(name="silent", module=net, task="classification", modality="image",
                         input_shape=(1, 32, 32), class_names=tuple("0123456789"), source="test",
                         sha256="0", dataset="digits")
    r = dream(handle, "1", channel=0, steps=4, top_k=3)
    assert r.start_value == r.end_value == 0.0 and np.all(r.top_values == 0.0)
    assert any("never moved" in note for note in r.notes)
    assert "dream.1.channel0.gain" not in r.metrics() and "dream.1.channel0.end" in r.metrics()  # 0/0 is not a gain


def _image_entries() -> list[str]:
    from xai.zoo import get_entry, list_models

    return [n for n in list_models() if get_entry(n).modality == "image"]


@pytest.mark.parametrize("name", _image_entries())
def test_every_image_zoo_entry_dreams_on_each_named_layer(name):
    handle = load_model(name, zoo_dir=ZOO)
    for layer in handle.layers:
        r = dream(handle, layer, channel=0, steps=3, top_k=1)
        assert r.image.shape == (1, *handle.input_shape) and np.isfinite(r.image).all()
        assert np.isfinite(r.trace).all() and len(r.top_indices) == 1
    assert no_hooks(handle.module)
