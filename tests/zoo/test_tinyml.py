"""TinyML variants of lenet (pruned, int8, distilled) and the prototypical network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import entropy
from torch import nn

from xai.datasets import load_dataset
from xai.zoo import load_model, read_card
from xai.zoo._store import WEIGHTS_FILE
from xai.zoo.protonet import (
    NOVEL_CLASSES,
    class_prototypes,
    dihedral_classes,
    embed_all,
    neg_sq_distance,
    sample_episode,
)
from xai.zoo.tinyml import (
    FakeQuant,
    distillation_loss,
    int8_from_torch,
    load_original,
    prune_globally,
    quantize_static,
    to_torch_int8,
)

from ..conftest import ZOO

VARIANTS = ("lenet-pruned50", "lenet-pruned80", "lenet-int8", "lenet-distilled")


@pytest.mark.parametrize("name", VARIANTS)
def test_card_sizes_and_nonzeros_are_measured_from_the_committed_weights(name):
    card = read_card(name, ZOO)["metrics"]
    module = load_model(name, zoo_dir=ZOO).module
    assert card["weights_bytes"] == (ZOO / name / WEIGHTS_FILE).stat().st_size
    assert card["original_weights_bytes"] == (ZOO / "lenet" / WEIGHTS_FILE).stat().st_size
    nonzero = sum(int(torch.count_nonzero(p)) for p in module.parameters())
    assert card["params_nonzero"] == nonzero
    assert card["original_accuracy"] == read_card("lenet", ZOO)["metrics"]["accuracy"]
    assert card["accuracy_change"] == pytest.approx(card["accuracy"] - card["original_accuracy"], abs=2e-6)
    assert card["size_ratio"] == pytest.approx(card["weights_bytes"] / card["original_weights_bytes"], abs=1e-6)
    assert card["latency_ratio"] > 0


@pytest.mark.parametrize(("name", "sparsity"), [("lenet-pruned50", 0.5), ("lenet-pruned80", 0.8)])
def test_pruned_safetensors_hold_the_zeros(name, sparsity):
    state = load_file(ZOO / name / WEIGHTS_FILE)
    weights = [state[f"{layer}.weight"] for layer in ("conv1", "conv2", "fc1", "fc2", "fc3")]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(sparsity, abs=1e-4)
    assert zeros == pytest.approx(read_card(name, ZOO)["metrics"]["weight_sparsity"], abs=1e-6)
    assert not any(k.endswith(("_orig", "_mask")) for k in state)  # pruning made permanent


def test_global_pruning_removes_the_smallest_magnitudes_across_layers():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -8.0], [3.0, 0.5]]))
        model[1].weight.copy_(torch.tensor([[-2.0, 7.0, 4.0], [6.0, -0.1, 5.0]]))
    prune_globally(model, 0.5, layers=("0", "1"))  # 10 weights: the 5 smallest |w| go
    assert model[0].weight.tolist() == [[0.0, -8.0], [0.0, 0.0]]
    assert model[1].weight.tolist() == [[0.0, 7.0, 4.0], [6.0, 0.0, 5.0]]
    prune_globally(model, 0.8, layers=("0", "1"))  # then down to 2 survivors
    assert sorted(abs(v) for v in torch.cat([model[0].weight.flatten(), model[1].weight.flatten()]).tolist()
                  if v) == [7.0, 8.0]


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_fake_quant_equals_quantize_then_dequantize():
    x = torch.linspace(-1, 3, 1001)
    ours = FakeQuant(scale=0.0125, zero_point=17)(x)
    theirs = torch.quantize_per_tensor(x, 0.0125, 17, torch.quint8).dequantize()
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def int8_handle():
    return load_model("lenet-int8", zoo_dir=ZOO)


def test_int8_weights_are_stored_as_int8_with_scales(int8_handle):
    state = load_file(ZOO / "lenet-int8" / WEIGHTS_FILE)
    for layer in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        assert state[f"{layer}.weight"].dtype == torch.int8
        assert state[f"{layer}.weight_scale"].shape == (state[f"{layer}.weight"].shape[0],)


def test_int8_simulation_matches_torch_ao_int8_kernels(int8_handle, digits_test):
    sim = int8_handle.module
    real = to_torch_int8(sim)
    with torch.inference_mode():
        ours, theirs = sim(digits_test.x), real(digits_test.x)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
    # float sums vs exact int32 sums: at most one step of the output grid apart
    assert float((ours - theirs).abs().max()) <= float(sim.out.scale) * 1.001
    assert type(real.body.conv1).__module__.startswith("torch.ao.nn.intrinsic.quantized")


# Calibration runs float32 convolutions over the training set, and the histogram observers turn
# those activations into scales; other CPUs (SIMD width, oneDNN kernels) sum them in another order,
# so a recalibrated scale can move by a few float32 ulps: on an Intel Xeon out.scale came out 3e-8
# off (relative 9e-8, under one ulp). Floats (scales, biases) are compared with rel 1e-6 (about 8
# ulps, 10x the drift seen). Integer codes are round(x / scale): bit-equal while their scale is,
# and at most 1 apart where the scale moved (a value that sat on a rounding edge).
SCALE_RTOL = 1e-6


def _scale_of(key: str) -> str:
    """The scale a code tensor was rounded with: conv1.weight -> conv1.weight_scale, act1.zero_point -> act1.scale."""
    return key.removesuffix(".zero_point") + ".scale" if key.endswith(".zero_point") else key + "_scale"


def test_int8_calibration_reproduces_the_committed_weights(int8_handle):
    original = load_original()
    quantized = quantize_static(original, load_dataset("digits", "train").x)
    rebuilt = int8_from_torch(quantized).state_dict()
    committed = int8_handle.module.state_dict()
    assert rebuilt.keys() == committed.keys()
    codes = [k for k, v in committed.items() if not v.is_floating_point()]
    assert len(codes) == 11  # 5 int8 weight tensors, 6 activation zero points
    for key, value in committed.items():
        if value.is_floating_point():
            torch.testing.assert_close(rebuilt[key], value, rtol=SCALE_RTOL, atol=0, msg=key)
    for key in codes:
        ours, theirs, scale = rebuilt[key], committed[key], _scale_of(key)
        assert ours.dtype == theirs.dtype, key
        moved = rebuilt[scale] != committed[scale]  # one flag per output channel (weights) or a scalar
        if ours.dim():
            moved = moved.reshape(-1, *[1] * (ours.dim() - 1)).expand_as(ours)
        step = (ours.long() - theirs.long()).abs()
        assert int(step.max()) <= 1, key
        assert not step[~moved].any(), f"{key}: codes differ where the scale {scale} is bit-equal"


def test_int8_gives_input_gradients_through_the_grid(int8_handle, digits_test):
    x = digits_test.x[:4].clone().requires_grad_()
    int8_handle.forward_target(x, digits_test.y[:4]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_distillation_loss_is_hintons():
    torch.manual_seed(0)
    student, teacher, y = torch.randn(5, 4), torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    t = 3.0
    p = torch.softmax(teacher / t, 1).numpy().astype(np.float64)
    q = torch.softmax(student / t, 1).numpy().astype(np.float64)
    kl = np.mean([entropy(p[i], q[i]) for i in range(5)])  # scipy: KL(p || q)
    ce = float(nn.functional.cross_entropy(student, y))
    ours = distillation_loss(student, teacher, y, temperature=t, alpha=0.7)
    assert float(ours) == pytest.approx(0.7 * t * t * kl + 0.3 * ce, rel=1e-5)


def test_distilled_student_is_five_times_smaller():
    card = read_card("lenet-distilled", ZOO)
    assert card["params"] * 4 < read_card("lenet", ZOO)["params"]
    assert card["metrics"]["accuracy"] >= 0.95


# ----------------------------------------------------------------------------- protonet


def test_episodes_draw_distinct_support_and_query_rows_of_the_chosen_classes():
    y = torch.arange(10).repeat_interleave(30)
    s_idx, s_y, q_idx, q_y = sample_episode(y, NOVEL_CLASSES, way=5, shot=5, query=15,
                                            generator=torch.Generator().manual_seed(1))
    assert len(s_idx) == 25 and len(q_idx) == 75
    assert not set(s_idx.tolist()) & set(q_idx.tolist())
    assert set(y[s_idx].tolist()) == set(NOVEL_CLASSES)
    for k in range(5):  # episode label k is one real digit in support and query alike
        assert len(set(y[s_idx[s_y == k]].tolist()) | set(y[q_idx[q_y == k]].tolist())) == 1


def test_prototypes_are_class_means_and_logits_negative_squared_distances():
    torch.manual_seed(0)
    e, labels = torch.randn(12, 6), torch.tensor([0, 1, 2] * 4)
    protos = class_prototypes(e, labels, 3)
    for k in range(3):
        torch.testing.assert_close(protos[k], e[labels == k].mean(0))
    torch.testing.assert_close(neg_sq_distance(e, protos), -torch.cdist(e, protos) ** 2, rtol=1e-5, atol=1e-5)


def test_dihedral_classes_are_the_eight_symmetries():
    x = torch.arange(2 * 16.0).view(2, 1, 4, 4)
    images, labels = dihedral_classes(x, torch.tensor([3, 7]), (3,))
    assert labels.tolist() == list(range(8)) and len(images) == 8
    assert len({tuple(i.flatten().tolist()) for i in images}) == 8
    torch.testing.assert_close(images[2], torch.rot90(x[0], 2, (1, 2)))


def test_protonet_forward_is_distance_to_the_training_means():
    handle = load_model("protonet", zoo_dir=ZOO)
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test").head(20)
    embeddings = embed_all(handle.module, train.x, torch.device("cpu"))
    means = torch.stack([embeddings[train.y == k].mean(0) for k in range(10)])
    torch.testing.assert_close(handle.module.prototypes, means, rtol=1e-4, atol=1e-4)
    expected = -torch.cdist(embed_all(handle.module, test.x, torch.device("cpu")), means) ** 2
    torch.testing.assert_close(handle.predict(test.x), expected, rtol=1e-3, atol=1e-2)


def test_cli_explains_the_int8_model_like_captum(int8_handle):
    from captum.attr import Saliency
    from typer.testing import CliRunner

    from xai.cli import app

    result = CliRunner().invoke(app, ["explain", "lenet-int8", "-m", "saliency", "-n", "3", "--target", "label",
                                      "--json", "--seed", "0"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    inputs = torch.tensor(document["inputs"], dtype=torch.float32)
    theirs = Saliency(int8_handle.module).attribute(inputs.requires_grad_(), target=torch.tensor(document["labels"]))
    np.testing.assert_allclose(np.array(document["attributions"]), theirs.numpy(), rtol=1e-4, atol=1e-6)
    assert np.abs(theirs.numpy()).sum() > 0
