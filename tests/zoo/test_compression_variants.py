"""lenet's weight-only int8, dynamic-range int8, QAT and structured-pruning variants, each checked on its own terms."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from xai.datasets import load_dataset
from xai.zoo import get_entry, load_model, read_card
from xai.zoo._store import WEIGHTS_FILE
from xai.zoo._train import TrainContext
from xai.zoo.tinyml import (
    COMPRESSED_FROM,
    DynamicQuant,
    SmallLeNet,
    int8_from_torch,
    load_original,
    prune_channels,
    quantize_qat,
    quantize_static,
    remove_pruned_channels,
    to_torch_dynamic,
    to_torch_int8,
)

from ..conftest import ZOO

NEW = ("lenet-wint8", "lenet-dynint8", "lenet-qat", "lenet-structured50")
LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")


@pytest.fixture(scope="module")
def original():
    return load_original()


@pytest.fixture(scope="module")
def test_x():
    return load_dataset("digits", "test").x


def _torch_quantize_dynamic(model):
    # torch's own API, called directly (not through xai.zoo.tinyml.quantize_dynamic)
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear},
                                                      dtype=torch.qint8)


@pytest.mark.parametrize("name", NEW)
def test_new_variants_are_compressions_of_lenet_with_measured_cards(name):
    assert COMPRESSED_FROM[name] == "lenet"
    card = read_card(name, ZOO)
    metrics = card["metrics"]
    module = load_model(name, zoo_dir=ZOO).module
    assert metrics["weights_bytes"] == (ZOO / name / WEIGHTS_FILE).stat().st_size
    assert metrics["params_nonzero"] == sum(int(torch.count_nonzero(p)) for p in module.parameters())
    assert metrics["original_accuracy"] == read_card("lenet", ZOO)["metrics"]["accuracy"]
    assert get_entry(name).meets_floor(metrics["accuracy"])


# ---- weight-only int8 ------------------------------------------------------------------


def test_weight_only_int8_weights_are_round_w_over_scale_times_scale(original):
    state = load_file(ZOO / "lenet-wint8" / WEIGHTS_FILE)
    for layer in LAYERS:
        w = original.get_submodule(layer).weight.detach().numpy().astype(np.float64)
        flat = w.reshape(len(w), -1)
        scale = np.abs(flat).max(1) / 127  # by hand: symmetric, one scale per output channel
        codes = state[f"{layer}.weight"]
        assert codes.dtype == torch.int8
        np.testing.assert_allclose(state[f"{layer}.weight_scale"].numpy(), scale, rtol=1e-6)
        expected = np.round(flat / scale[:, None])
        assert np.abs(codes.numpy().reshape(len(w), -1) - expected).max() <= 1  # a .5 tie in float32 may flip
        assert (codes.numpy().reshape(len(w), -1) == expected).mean() > 0.999
        deq = load_model("lenet-wint8", zoo_dir=ZOO).module.get_submodule(layer).dequantized().detach().numpy()
        np.testing.assert_allclose(deq.reshape(len(w), -1), expected * scale[:, None], rtol=1e-6, atol=1e-9)
        # the rounding error is at most half a step per weight
        assert np.all(np.abs(deq.reshape(len(w), -1) - flat) <= scale[:, None] / 2 * (1 + 1e-5))
        torch.testing.assert_close(state[f"{layer}.bias"], original.get_submodule(layer).bias.detach())


def test_weight_only_int8_keeps_float_activations_close_to_the_original(original, test_x):
    module = load_model("lenet-wint8", zoo_dir=ZOO).module
    with torch.no_grad():
        ours, float_out = module(test_x), original(test_x)
    # same network with slightly rounded weights: same decisions almost everywhere, small logit moves
    assert float((ours.argmax(1) == float_out.argmax(1)).float().mean()) >= 0.99
    assert float((ours - float_out).abs().max()) < 0.05 * float(float_out.abs().max())
    assert not torch.equal(ours, float_out)


# ---- dynamic-range int8 ----------------------------------------------------------------


def test_dynamic_int8_equals_torch_quantize_dynamic_called_directly(original, test_x):
    sim = load_model("lenet-dynint8", zoo_dir=ZOO).module
    theirs = _torch_quantize_dynamic(original)
    for layer in ("fc1", "fc2", "fc3"):
        weight, bias = theirs.get_submodule(layer)._packed_params._weight_bias()
        ours = sim.get_submodule(layer)
        assert torch.equal(ours.weight, weight.int_repr())
        assert torch.all(ours.weight_scale == torch.tensor(weight.q_scale(), dtype=torch.float32))
        torch.testing.assert_close(ours.bias.detach(), bias)
    for layer in ("conv1", "conv2"):  # quantize_dynamic leaves convolutions float
        torch.testing.assert_close(sim.get_submodule(layer).weight, original.get_submodule(layer).weight)
    with torch.inference_mode():
        for batch in (test_x[:1], test_x[:64], test_x):
            a, b = sim(batch), theirs(batch)
            # float sums of the dequantized values vs fbgemm's int32 sums: float rounding apart
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
            assert torch.equal(a.argmax(1), b.argmax(1))
        rebuilt = to_torch_dynamic(sim)(test_x)
    torch.testing.assert_close(rebuilt, theirs(test_x), rtol=0, atol=0)


def test_dynamic_int8_output_is_close_to_float(original, test_x):
    sim = load_model("lenet-dynint8", zoo_dir=ZOO).module
    with torch.no_grad():
        ours, float_out = sim(test_x), original(test_x)
    assert float((ours.argmax(1) == float_out.argmax(1)).float().mean()) >= 0.99
    assert float((ours - float_out).abs().max()) < 0.05 * float(float_out.abs().max())
    assert not torch.equal(ours, float_out)


def test_dynamic_quant_picks_torchs_qparams_from_the_whole_batch():
    quant = DynamicQuant()
    for x in (torch.tensor([0.0, 0.5, 2.54]), torch.tensor([-1.0, 0.3, 3.0]), torch.tensor([-2.0, -0.5]),
              torch.zeros(3)):
        scale, zero = quant.qparams(x)
        ref_scale, ref_zero = torch._choose_qparams_per_tensor(x, True)  # reduce_range, as fbgemm's dynamic linear
        assert scale == pytest.approx(ref_scale, rel=1e-6) and zero == ref_zero, x
    # non-negative input: zero point 0, scale = max / 127 (by hand)
    assert quant.qparams(torch.tensor([0.0, 1.27]))[0] == pytest.approx(0.01, rel=1e-6)
    # the range is the batch's: the same row rounds differently next to a larger row
    row = torch.tensor([[0.3, 0.7]])
    alone, together = quant(row), quant(torch.cat([row, torch.tensor([[0.0, 12.7]])]))[:1]
    torch.testing.assert_close(alone, row, atol=0.7 / 127 / 2 + 1e-7, rtol=0)
    torch.testing.assert_close(together, torch.tensor([[0.3, 0.7]]).div(0.1).round().mul(0.1))
    assert not torch.equal(alone, together)


def test_dynamic_int8_gives_input_gradients():
    handle = load_model("lenet-dynint8", zoo_dir=ZOO)
    digits = load_dataset("digits", "test")
    x = digits.x[:4].clone().requires_grad_()
    handle.forward_target(x, digits.y[:4]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# ---- quantization-aware training ------------------------------------------------------


def test_qat_simulation_matches_torch_int8_kernels_and_differs_from_post_training(test_x):
    sim = load_model("lenet-qat", zoo_dir=ZOO).module
    real = to_torch_int8(sim)
    with torch.inference_mode():
        ours, theirs = sim(test_x), real(test_x)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
    assert float((ours - theirs).abs().max()) <= float(sim.out.scale) * 1.001
    state = load_file(ZOO / "lenet-qat" / WEIGHTS_FILE)
    static = load_file(ZOO / "lenet-int8" / WEIGHTS_FILE)
    assert state.keys() == static.keys()
    for layer in LAYERS:
        assert state[f"{layer}.weight"].dtype == torch.int8
        assert (state[f"{layer}.weight"].abs() <= 127).all()
    # the fine-tune moved the weights: QAT's codes are not post-training quantization's
    changed = sum(int((state[f"{layer}.weight"] != static[f"{layer}.weight"]).sum()) for layer in LAYERS)
    assert changed > 0.1 * sum(state[f"{layer}.weight"].numel() for layer in LAYERS)


def test_qat_fine_tune_is_seeded_and_trains_through_fake_quantization(original):
    train = load_dataset("digits", "train").head(256)
    ctx = TrainContext(train=train, test=train, seed=3, device=torch.device("cpu"))
    runs = [quantize_qat(original, ctx, epochs=1, lr=1e-4, batch_size=64, observer_epochs=1) for _ in range(2)]
    a, b = (int8_from_torch(q).state_dict() for q, _ in runs)
    for key in a:
        assert torch.equal(a[key], b[key]), key  # same seed, same int8 model
    assert runs[0][1] == runs[1][1] and np.isfinite(runs[0][1])
    other = int8_from_torch(quantize_qat(original, dataclasses.replace(ctx, seed=4), epochs=1, lr=1e-4,
                                         batch_size=64, observer_epochs=1)[0]).state_dict()
    assert any(not torch.equal(a[k], other[k]) for k in a)  # the seed matters
    # trained, not only converted: the codes differ from post-training quantization of the same weights
    ptq = int8_from_torch(quantize_static(original, train.x)).state_dict()
    assert any(not torch.equal(a[f"{layer}.weight"], ptq[f"{layer}.weight"]) for layer in LAYERS)


# ---- structured pruning -----------------------------------------------------------------


def test_structured_pruning_zeroes_the_channels_with_the_smallest_l2_norms(original):
    model = copy.deepcopy(original)
    prune_channels(model, 0.5)
    for layer, out in (("conv1", 6), ("conv2", 16), ("fc1", 120), ("fc2", 84)):
        w = original.get_submodule(layer).weight.detach().numpy().reshape(out, -1).astype(np.float64)
        norms = np.sqrt((w ** 2).sum(1))  # by hand
        dropped = set(np.argsort(norms)[:round(out / 2)].tolist())
        pruned = model.get_submodule(layer)
        weight = pruned.weight.detach().numpy().reshape(out, -1)
        bias = pruned.bias.detach().numpy()
        zero = {c for c in range(out) if not weight[c].any() and bias[c] == 0}
        assert zero == dropped, layer
        keep = sorted(set(range(out)) - dropped)
        np.testing.assert_array_equal(weight[keep], w[keep].astype(np.float32))  # survivors untouched
    fc3 = model.get_submodule("fc3")
    assert torch.equal(fc3.weight, original.fc3.weight)  # the class outputs stay


def test_committed_structured_variant_has_half_of_each_layer_dead_and_shrinks_exactly(test_x):
    module = load_model("lenet-structured50", zoo_dir=ZOO).module
    state = load_file(ZOO / "lenet-structured50" / WEIGHTS_FILE)
    assert not any(k.endswith(("_orig", "_mask")) for k in state)
    for layer, out in (("conv1", 6), ("conv2", 16), ("fc1", 120), ("fc2", 84)):
        w, b = state[f"{layer}.weight"].reshape(out, -1), state[f"{layer}.bias"]
        dead = (w == 0).all(1) & (b == 0)
        assert int(dead.sum()) == out // 2, layer
        assert not (w[~dead] == 0).all(1).any()  # the others are alive
    small = remove_pruned_channels(module)
    assert isinstance(small, SmallLeNet)
    assert [small.conv1.out_channels, small.conv2.out_channels, small.fc1.out_features,
            small.fc2.out_features] == [3, 8, 60, 42]
    with torch.no_grad():
        torch.testing.assert_close(small(test_x), module(test_x), rtol=1e-5, atol=1e-5)
    card = read_card("lenet-structured50", ZOO)["metrics"]
    assert card["removed_params"] == sum(p.numel() for p in module.parameters()) - sum(
        p.numel() for p in small.parameters())
