"""TinyML variants of the zoo's LeNet-5: pruned, int8-quantized and distilled.

Each variant starts from the committed ``lenet`` (loaded with :func:`xai.zoo.load_model`
from ``$XAI_ZOO_DIR`` or ``./zoo``) and is a zoo entry of its own:

- ``lenet-pruned50`` / ``lenet-pruned80``: global unstructured magnitude (L1) pruning
  with ``torch.nn.utils.prune`` (Han et al. 2015, https://arxiv.org/abs/1506.02626),
  fine-tuned after each pruning step, then made permanent (the safetensors hold zeros).
- ``lenet-int8``: post-training static quantization with ``torch.ao.quantization``
  (x86/fbgemm engine; per-channel symmetric int8 weights, per-tensor uint8 activations
  calibrated on the training digits; Jacob et al. 2018, https://arxiv.org/abs/1712.05877).
  The zoo module :class:`Int8LeNet` stores the int8 weights with their scales and
  simulates the int8 network in float (fake quantization with the calibrated scales and
  zero points, straight-through gradients) so captum can differentiate it;
  :func:`to_torch_int8` rebuilds the real ``torch.ao`` int8 model from the same tensors.
- ``lenet-distilled``: a 5x smaller LeNet trained on the teacher's temperature-softened
  outputs (Hinton et al. 2015, https://arxiv.org/abs/1503.02531).
- ``lenet-wint8``: weight-only int8 (per-channel symmetric, ``round(w / scale)`` with
  ``scale = max|w| / 127``), float activations (:class:`WeightInt8LeNet`).
- ``lenet-dynint8``: dynamic-range quantization, ``torch.ao.quantization.quantize_dynamic``:
  int8 linear weights, each linear layer's input quantized from its own range at run time;
  simulated in float by :class:`DynamicInt8LeNet`, rebuilt by :func:`to_torch_dynamic`.
- ``lenet-qat``: quantization-aware training (``prepare_qat``, a short seeded fine-tune
  with fake quantization, ``convert``), stored like ``lenet-int8`` (:class:`Int8LeNet`).
- ``lenet-structured50``: structured pruning -- half of the output channels of ``conv1``
  and ``conv2`` and half of the neurons of ``fc1`` and ``fc2``, smallest L2 norm first
  (``prune.ln_structured``), fine-tuned; zeros stored dense, and
  :func:`remove_pruned_channels` builds the physically smaller network (its latency is
  the card's).

Every card's metrics carry the comparison with the original measured in the same run:
``original_accuracy``, ``accuracy_change``, ``params_nonzero``, ``sparsity``,
``weights_bytes`` (the safetensors file), ``weights_gzip_bytes``, ``size_ratio``,
``latency_ms`` (one batch of 64 digits, one CPU thread) and ``latency_ratio``.
"""

from __future__ import annotations

import copy
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch
import torch.nn.functional as F
from safetensors.torch import save
from torch import nn
from torch.nn.utils import prune

from xai.datasets._digits import DIGIT_CLASSES
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, accuracy, fit_classifier, seed_everything
from xai.zoo.cnn import LeNet5, random_shift

#: The zoo entry every variant here compresses.
ORIGINAL = "lenet"
#: variant name -> the entry it compresses (the compression probe's default variants).
COMPRESSED_FROM: dict[str, str] = {}
#: Batch size of the latency measurement.
LATENCY_BATCH = 64

_LAYERS = ("conv1", "conv2", "fc1")
_PRUNABLE = ("conv1", "conv2", "fc1", "fc2", "fc3")


def load_original(name: str = ORIGINAL) -> nn.Module:
    """The committed original (a fresh copy, eval mode, CPU)."""
    from xai.zoo.loaders import load_model  # loaders imports this package: import late

    return copy.deepcopy(load_model(name).module).cpu().eval()


# ----------------------------------------------------------------------------- measuring


def weights_bytes(module: nn.Module, name: str) -> bytes:
    """The safetensors bytes :func:`~xai.zoo.train_entry` writes for ``module``."""
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    return save(state, metadata={"name": name})


def count_nonzero(module: nn.Module) -> int:
    """Non-zero entries over all parameters (int8 weights included)."""
    return sum(int(torch.count_nonzero(p)) for p in module.parameters())


@torch.inference_mode()
def cpu_latency(modules: dict[str, nn.Module], x: torch.Tensor, *, repeats: int = 40,
                warmup: int = 3) -> dict[str, float]:
    """CPU seconds of one forward pass of ``x`` for each module (fastest round), interleaved.

    Runs torch on one thread and reads that thread's CPU clock (``time.thread_time``), so
    time spent waiting for a core on a shared machine is not counted; the modules take
    turns within each round, and the fastest round (timeit's advice) is the least
    disturbed by cache pollution from other processes. Read the ratio between modules.
    """
    from xai.zoo._store import single_cpu_thread

    times: dict[str, list[float]] = {k: [] for k in modules}
    for m in modules.values():
        m.eval()
    with single_cpu_thread():
        for round_ in range(warmup + repeats):
            for key, module in modules.items():
                start = time.thread_time()
                module(x)
                if round_ >= warmup:
                    times[key].append(time.thread_time() - start)
    return {k: min(v) for k, v in times.items()}


def compression_metrics(variant: nn.Module, original: nn.Module, ctx: TrainContext, name: str, *,
                        deployed: nn.Module | None = None) -> dict[str, float]:
    """The card's comparison of ``variant`` with ``original``, measured in this run.

    Parameters
    ----------
    deployed
        The module whose latency counts (the real int8 model for ``lenet-int8``);
        default ``variant``.
    """
    variant.cpu().eval()
    acc, acc0 = accuracy(variant, ctx.test, torch.device("cpu")), accuracy(original, ctx.test,
                                                                         torch.device("cpu"))
    blob, blob0 = weights_bytes(variant, name), weights_bytes(original, ORIGINAL)
    x = ctx.test.x[:LATENCY_BATCH]
    lat = cpu_latency({"variant": deployed if deployed is not None else variant, "original": original}, x)
    params = sum(p.numel() for p in variant.parameters())
    nonzero = count_nonzero(variant)
    gz, gz0 = len(zlib.compress(blob, 9)), len(zlib.compress(blob0, 9))
    return {
        "accuracy": acc,
        "original_accuracy": acc0,
        "accuracy_change": acc - acc0,
        "params_nonzero": nonzero,
        "original_params": sum(p.numel() for p in original.parameters()),
        "sparsity": 1 - nonzero / params,
        "weights_bytes": len(blob),
        "original_weights_bytes": len(blob0),
        "size_ratio": len(blob) / len(blob0),
        "weights_gzip_bytes": gz,
        "original_weights_gzip_bytes": gz0,
        "gzip_size_ratio": gz / gz0,
        "latency_ms": 1000 * lat["variant"],
        "original_latency_ms": 1000 * lat["original"],
        "latency_ratio": lat["variant"] / lat["original"],
    }


# ----------------------------------------------------------------------------- pruning


def prune_globally(module: nn.Module, sparsity: float, layers: tuple[str, ...] = _PRUNABLE) -> None:
    """Mask the smallest-magnitude weights of ``layers`` until ``sparsity`` of them are zero.

    One global L1 ranking over all the layers' weights (biases are kept), applied on top
    of earlier masks: the fraction pruned now is that of the weights still alive.
    """
    params = [(module.get_submodule(n), "weight") for n in layers]
    total = sum(getattr(m, p).numel() for m, p in params)
    alive = sum(int(torch.count_nonzero(getattr(m, p + "_mask", torch.ones(1).expand_as(getattr(m, p)))))
                for m, p in params)
    target_alive = round(total * (1 - sparsity))
    if alive > target_alive:
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=alive - target_alive)


def make_permanent(module: nn.Module) -> None:
    """Fold every pruning mask into its weight (zeros stay) and drop the re-parametrisation."""
    for m in module.modules():
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(m, hook._tensor_name)


def weight_sparsity(module: nn.Module, layers: tuple[str, ...] = _PRUNABLE) -> float:
    """Share of exact zeros among the weights of ``layers``."""
    weights = [cast(torch.Tensor, module.get_submodule(n).weight) for n in layers]  # conv / linear weights
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def _pruned_recipe(sparsity: float, schedule: tuple[float, ...]) -> dict[str, Any]:
    return {"original": ORIGINAL, "method": "global unstructured L1 magnitude, torch.nn.utils.prune",
            "sparsity": sparsity, "schedule": list(schedule), "finetune_epochs_per_step": 5,
            "lr": 5e-4, "batch_size": 64, "augment": "random shift +-2 px"}


def _train_pruned(recipe: dict[str, Any], name: str) -> Callable[[nn.Module, TrainContext], dict[str, float]]:
    def train(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
        original = load_original()
        module.load_state_dict(original.state_dict())
        for step, target in enumerate(recipe["schedule"]):
            prune_globally(module, float(target))
            fit_classifier(module, ctx, epochs=int(recipe["finetune_epochs_per_step"]),
                           lr=float(recipe["lr"]), batch_size=int(recipe["batch_size"]),
                           augment=random_shift, label=f"{name} step {step + 1}")
        make_permanent(module)
        metrics = compression_metrics(module, original, ctx, name)
        metrics["weight_sparsity"] = weight_sparsity(module)
        return metrics

    return train


for _sparsity, _schedule in ((0.5, (0.5,)), (0.8, (0.5, 0.8))):
    _name = f"lenet-pruned{round(100 * _sparsity)}"
    _recipe = _pruned_recipe(_sparsity, _schedule)
    COMPRESSED_FROM[_name] = ORIGINAL
    register_model(
        ZooEntry(
            name=_name,
            uses=(ORIGINAL,),
            family="tinyml",
            task="classification",
            modality="image",
            dataset="digits",
            build=LeNet5,
            train=_train_pruned(_recipe, _name),
            input_shape=(1, 32, 32),
            class_names=DIGIT_CLASSES,
            layers=_LAYERS,
            metric="accuracy",
            floor=0.95,
            paper="https://arxiv.org/abs/1506.02626",
            description=f"lenet with {round(100 * _sparsity)}% of its weights magnitude-pruned "
                        "(global, unstructured) and fine-tuned; zeros stored dense",
            recipe=_recipe,
        )
    )


# ----------------------------------------------------------------------------- int8


class FakeQuant(nn.Module):
    """Round to a fixed 8-bit grid: ``(clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale``.

    The scale and zero point are buffers (calibrated, not learned); the gradient is
    straight-through inside the grid's range and zero outside
    (``torch.fake_quantize_per_tensor_affine``), so explainers see the int8 network's
    decisions and still get input gradients.
    """

    scale: torch.Tensor  # buffers (register_buffer), declared for the type checker
    zero_point: torch.Tensor

    def __init__(self, scale: float = 1 / 255, zero_point: int = 0, quant_min: int = 0,
                 quant_max: int = 255) -> None:
        super().__init__()
        self.quant_min, self.quant_max = quant_min, quant_max
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.register_buffer("zero_point", torch.tensor(zero_point, dtype=torch.int32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same shape as ``x``, on the grid."""
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.quant_min,
                                                     self.quant_max)


class _Int8Weight(nn.Module):
    """Per-output-channel symmetric int8 weights with float scales and a float bias."""

    weight_scale: torch.Tensor  # a buffer (register_buffer), declared for the type checker

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        # int8 values are parameters that take no gradient: they count in the model's size
        self.weight = nn.Parameter(torch.zeros(shape, dtype=torch.int8), requires_grad=False)
        self.register_buffer("weight_scale", torch.ones(shape[0]))
        self.bias = nn.Parameter(torch.zeros(shape[0]))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random int8 weights scaled like PyTorch's default init (also the sanity checks' reset)."""
        fan_in = self.weight[0].numel()
        with torch.no_grad():
            self.weight.copy_(torch.randint(-127, 128, self.weight.shape, dtype=torch.int8))
            self.weight_scale.fill_(1 / (127 * fan_in ** 0.5))
            self.bias.uniform_(-(fan_in ** -0.5), fan_in ** -0.5)

    def dequantized(self) -> torch.Tensor:
        """The float weights the int8 values stand for ``(out, ...)``."""
        scale = self.weight_scale.view(-1, *([1] * (self.weight.ndim - 1)))
        return self.weight.to(scale.dtype) * scale


class Int8Conv2d(_Int8Weight):
    """A convolution with int8 weights (no padding, stride 1, like LeNet's)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__((out_channels, in_channels, kernel_size, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H - k + 1, W - k + 1)``."""
        return F.conv2d(x, self.dequantized(), self.bias)


class Int8Linear(_Int8Weight):
    """A linear layer with int8 weights."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__((out_features, in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in)`` -> ``(B, out)``."""
        return F.linear(x, self.dequantized(), self.bias)


class Int8LeNet(nn.Module):
    """LeNet-5 as its post-training int8 version computes it, in float.

    The input and every layer output (after its fused ReLU) are rounded to the uint8 grid
    the calibration chose; weights are int8 with one scale per output channel. This is the
    arithmetic of ``torch.ao``'s converted model up to float rounding inside the sums
    (see :func:`to_torch_int8`, and the tests comparing the two), but differentiable.

    Examples
    --------
    >>> Int8LeNet()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.quant = FakeQuant()
        self.conv1 = Int8Conv2d(1, 6, 5)  # (B, 6, 28, 28)
        self.relu1 = nn.ReLU()
        self.act1 = FakeQuant(1 / 32)
        self.pool1 = nn.MaxPool2d(2)  # (B, 6, 14, 14)
        self.conv2 = Int8Conv2d(6, 16, 5)  # (B, 16, 10, 10)
        self.relu2 = nn.ReLU()
        self.act2 = FakeQuant(1 / 32)
        self.pool2 = nn.MaxPool2d(2)  # (B, 16, 5, 5)
        self.flatten = nn.Flatten()
        self.fc1 = Int8Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.act3 = FakeQuant(1 / 32)
        self.fc2 = Int8Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.act4 = FakeQuant(1 / 32)
        self.fc3 = Int8Linear(84, num_classes)
        self.out = FakeQuant(1 / 8, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``, each a multiple of the output scale."""
        x = self.pool1(self.act1(self.relu1(self.conv1(self.quant(x)))))
        x = self.pool2(self.act2(self.relu2(self.conv2(x))))
        x = self.act3(self.relu3(self.fc1(self.flatten(x))))
        x = self.act4(self.relu4(self.fc2(x)))
        return self.out(self.fc3(x))


#: Int8LeNet's (layer, its output quantizer) pairs, input side first.
_INT8_PAIRS = (("conv1", "act1"), ("conv2", "act2"), ("fc1", "act3"), ("fc2", "act4"), ("fc3", "out"))


class _Quantizable(nn.Module):
    """``QuantStub -> LeNet5 -> DeQuantStub``: the eager-mode ``torch.ao`` wrapper."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.quant = QuantStub()
        self.body = body
        self.dequant = DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float in, float out; quantized in between once converted."""
        return self.dequant(self.body(self.quant(x)))


@contextmanager
def _quiet_eager_quantization() -> Iterator[None]:
    """Silence torch.ao's deprecation notices for eager-mode quantization (it still works)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        yield


_FUSE = [["body.conv1", "body.relu1"], ["body.conv2", "body.relu2"], ["body.fc1", "body.relu3"],
         ["body.fc2", "body.relu4"]]


def quantize_static(original: nn.Module, calibration: torch.Tensor, *, engine: str = "x86",
                    batch_size: int = 256) -> nn.Module:
    """``torch.ao`` eager-mode post-training static quantization of a LeNet5.

    Fuses conv/linear with their ReLU, observes ``calibration`` with the engine's default
    qconfig (histogram observers for activations, per-channel min/max for weights) and
    converts: the result runs int8 kernels on the CPU (float in, float out).
    """
    import torch.ao.quantization as tq

    torch.backends.quantized.engine = engine
    with _quiet_eager_quantization():
        model = _Quantizable(copy.deepcopy(original)).eval()
        model = tq.fuse_modules(model, _FUSE)
        model.qconfig = tq.get_default_qconfig(engine)
        tq.prepare(model, inplace=True)
        with torch.inference_mode():
            for start in range(0, len(calibration), batch_size):
                model(calibration[start:start + batch_size])
        return tq.convert(model)


def int8_from_torch(quantized: nn.Module) -> Int8LeNet:
    """Copy a converted ``torch.ao`` LeNet's int8 weights, scales and zero points into an :class:`Int8LeNet`."""
    from torch.ao.nn.quantized import Quantize

    sim = Int8LeNet()
    source_quant = cast(Quantize, quantized.quant)  # what tq.convert makes of the QuantStub
    with torch.no_grad():
        sim.quant.scale.fill_(float(source_quant.scale))
        sim.quant.zero_point.fill_(int(source_quant.zero_point))
        for layer, act in _INT8_PAIRS:
            source = getattr(quantized.body, layer)
            weight = source.weight()
            if (weight.qscheme() not in (torch.per_channel_affine, torch.per_channel_symmetric)
                    or weight.q_per_channel_axis() != 0 or weight.q_per_channel_zero_points().any()):
                raise ValueError(f"{layer}: expected per-output-channel symmetric int8 weights")
            target = getattr(sim, layer)
            target.weight.copy_(weight.int_repr())
            target.weight_scale.copy_(weight.q_per_channel_scales().float())
            target.bias.copy_(source.bias().detach())
            getattr(sim, act).scale.fill_(float(source.scale))
            getattr(sim, act).zero_point.fill_(int(source.zero_point))
    return sim.eval()


def to_torch_int8(sim: Int8LeNet, engine: str = "x86") -> nn.Module:
    """The real ``torch.ao`` int8 model holding exactly ``sim``'s int8 weights and quantizers.

    Built by converting a prepared copy of LeNet5 and then overwriting each quantized
    module's packed weights, bias, scale and zero point with ``sim``'s, so no calibration
    runs and the two models share every number.
    """
    import torch.ao.quantization as tq

    torch.backends.quantized.engine = engine
    with _quiet_eager_quantization():
        model = _Quantizable(LeNet5()).eval()
        model = tq.fuse_modules(model, _FUSE)
        model.qconfig = tq.get_default_qconfig(engine)
        tq.prepare(model, inplace=True)
        with torch.inference_mode():
            model(torch.rand(4, 1, 32, 32))  # any data: the observers only need to have seen some
        model = tq.convert(model)
    model.quant.scale = torch.tensor([float(sim.quant.scale)])
    model.quant.zero_point = torch.tensor([int(sim.quant.zero_point)])
    for layer, act in _INT8_PAIRS:
        target, source, quantizer = getattr(model.body, layer), getattr(sim, layer), getattr(sim, act)
        with _quiet_eager_quantization():
            qweight = torch._make_per_channel_quantized_tensor(
                source.weight.detach(), source.weight_scale.double(),
                torch.zeros(source.weight.shape[0], dtype=torch.int64), 0)
            target.set_weight_bias(qweight, source.bias.detach().clone())
        target.scale, target.zero_point = float(quantizer.scale), int(quantizer.zero_point)
    return model.eval()


def int8_agreement(sim: Int8LeNet, quantized: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """How closely the float simulation matches the int8 kernels on ``x``.

    ``int8_prediction_agreement``: share of equal arg-max classes;
    ``int8_max_logit_steps``: largest output difference in units of the output scale.
    """
    with torch.inference_mode():
        ours, theirs = sim(x), quantized(x)
    steps = (ours - theirs).abs().max() / sim.out.scale
    return {"int8_prediction_agreement": float((ours.argmax(1) == theirs.argmax(1)).float().mean()),
            "int8_max_logit_steps": float(steps)}


_INT8_RECIPE = {"original": ORIGINAL, "method": "post-training static quantization, torch.ao eager mode",
                "engine": "x86 (fbgemm)", "weights": "int8, per-channel symmetric",
                "activations": "uint8, per-tensor affine, histogram observer, reduce_range",
                "calibration": "all training digits", "fused": "conv/linear + ReLU"}


def _train_int8(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    seed_everything(ctx.seed)
    original = load_original()
    quantized = quantize_static(original, ctx.train.x)
    sim = int8_from_torch(quantized)
    module.load_state_dict(sim.state_dict())
    metrics = compression_metrics(module, original, ctx, "lenet-int8", deployed=quantized)
    x = ctx.test.x[:LATENCY_BATCH]
    seconds = cpu_latency({"sim": module, "original": original}, x)
    metrics["simulation_latency_ratio"] = seconds["sim"] / seconds["original"]
    assert isinstance(module, Int8LeNet)  # the entry builds one
    metrics.update(int8_agreement(module, quantized, ctx.test.x))
    metrics["torch_int8_accuracy"] = accuracy(quantized, ctx.test, torch.device("cpu"))
    return metrics


COMPRESSED_FROM["lenet-int8"] = ORIGINAL
register_model(
    ZooEntry(
        name="lenet-int8",
        uses=(ORIGINAL,),
        family="tinyml",
        task="classification",
        modality="image",
        dataset="digits",
        build=Int8LeNet,
        train=_train_int8,
        input_shape=(1, 32, 32),
        class_names=DIGIT_CLASSES,
        layers=_LAYERS,
        metric="accuracy",
        floor=0.95,
        paper="https://arxiv.org/abs/1712.05877",
        description="lenet after int8 post-training static quantization (torch.ao, x86); "
                    "int8 weights + scales, simulated in float for gradients",
        recipe=_INT8_RECIPE,
    )
)


# ----------------------------------------------------------------------------- weight-only int8


def quantize_weight(weight: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric quantization: int values ``round(w / scale)`` and ``scale = max|w| / 127``.

    Returns the int8 values and the ``(out,)`` scales; a channel of zeros gets scale 1
    (its values stay 0).

    Examples
    --------
    >>> q, scale = quantize_weight(torch.tensor([[0.5, -1.0], [0.0, 0.0]]))
    >>> q.tolist(), scale.tolist()
    ([[64, -127], [0, 0]], [0.007874015718698502, 1.0])
    """
    qmax = 2 ** (bits - 1) - 1
    amax = weight.detach().abs().flatten(1).amax(1)  # (out,)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax)).float()
    shaped = scale.view(-1, *([1] * (weight.ndim - 1)))
    return torch.clamp(torch.round(weight.detach() / shaped), -qmax, qmax).to(torch.int8), scale


class WeightInt8LeNet(nn.Module):
    """LeNet-5 with int8 weights (one scale per output channel) and float activations.

    Weight-only quantization: storage shrinks about 4x, the arithmetic stays float (the
    weights are dequantized, ``int8 * scale``, as they are used), so only the weights'
    rounding error changes the outputs.

    Examples
    --------
    >>> WeightInt8LeNet()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = Int8Conv2d(1, 6, 5)  # (B, 6, 28, 28)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # (B, 6, 14, 14)
        self.conv2 = Int8Conv2d(6, 16, 5)  # (B, 16, 10, 10)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # (B, 16, 5, 5)
        self.flatten = nn.Flatten()
        self.fc1 = Int8Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = Int8Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = Int8Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``."""
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))


def weight_only_int8(original: nn.Module) -> WeightInt8LeNet:
    """A :class:`WeightInt8LeNet` holding :func:`quantize_weight` of each of ``original``'s layers."""
    model = WeightInt8LeNet()
    with torch.no_grad():
        for layer in _PRUNABLE:
            source, target = original.get_submodule(layer), cast(Any, model.get_submodule(layer))
            q, scale = quantize_weight(cast(torch.Tensor, source.weight))
            target.weight.copy_(q)
            target.weight_scale.copy_(scale)
            target.bias.copy_(cast(torch.Tensor, source.bias))
    return model.eval()


_WEIGHT_INT8_RECIPE = {"original": ORIGINAL, "method": "weight-only int8, no calibration, no training",
                       "weights": "int8, per-channel symmetric, scale = max|w| / 127, round to nearest",
                       "activations": "float32"}


def _train_weight_int8(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    original = load_original()
    module.load_state_dict(weight_only_int8(original).state_dict())
    metrics = compression_metrics(module, original, ctx, "lenet-wint8")
    with torch.no_grad():
        errors = [(cast(_Int8Weight, module.get_submodule(n)).dequantized()
                   - cast(torch.Tensor, original.get_submodule(n).weight)).abs().max() for n in _PRUNABLE]
    metrics["max_weight_error"] = float(max(errors))
    return metrics


# ----------------------------------------------------------------------------- dynamic-range int8


class DynamicQuant(nn.Module):
    """Round a tensor to a uint8 grid chosen from its own range at run time (dynamic quantization).

    Like fbgemm's dynamic linear layer (``torch.ao.nn.quantized.dynamic.Linear``): the
    range ``[min(x.min(), 0), max(x.max(), 0)]`` of the whole input tensor -- all rows of
    the batch together -- maps onto ``[0, 127]`` (``reduce_range``), the zero point is
    the nudged one of ``ChooseQuantizationParams``. Gradients are straight-through.
    Because the range is the batch's, a row's output can depend on the other rows in its
    batch.
    """

    def __init__(self, quant_min: int = 0, quant_max: int = 127) -> None:
        super().__init__()
        self.quant_min, self.quant_max = quant_min, quant_max

    def qparams(self, x: torch.Tensor) -> tuple[float, int]:
        """Scale and zero point fbgemm would pick for ``x``."""
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        qmin, qmax = self.quant_min, self.quant_max
        scale = (hi - lo) / (qmax - qmin)
        if scale == 0 or not torch.isfinite(torch.tensor(scale)):
            scale = 0.1
        scale = float(torch.tensor(scale, dtype=torch.float32))
        from_min, from_max = qmin - lo / scale, qmax - hi / scale
        zero = from_min if abs(qmin) + abs(lo / scale) < abs(qmax) + abs(hi / scale) else from_max
        return scale, int(min(max(round(zero), qmin), qmax))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same shape as ``x``, on this tensor's grid."""
        scale, zero = self.qparams(x.detach())
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


class DynamicInt8Linear(_Int8Weight):
    """A linear layer with int8 weights whose input is quantized dynamically (:class:`DynamicQuant`)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__((out_features, in_features))
        self.quant = DynamicQuant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in)`` -> ``(B, out)``: uint8 input times int8 weights, float out."""
        return F.linear(self.quant(x), self.dequantized(), self.bias)


class DynamicInt8LeNet(nn.Module):
    """LeNet-5 after ``torch.ao.quantization.quantize_dynamic``, computed in float.

    ``quantize_dynamic`` replaces the linear layers only: ``fc1``-``fc3`` hold int8
    weights (per-tensor symmetric, the scale stored once per channel) and quantize their
    input on the fly from its range; the convolutions stay float. :func:`to_torch_dynamic`
    rebuilds the real ``torch.ao`` model from the same numbers.

    Examples
    --------
    >>> DynamicInt8LeNet()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)  # (B, 6, 28, 28)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # (B, 6, 14, 14)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)  # (B, 16, 10, 10)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # (B, 16, 5, 5)
        self.flatten = nn.Flatten()
        self.fc1 = DynamicInt8Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = DynamicInt8Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = DynamicInt8Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``."""
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))


_LINEARS = ("fc1", "fc2", "fc3")


def quantize_dynamic(original: nn.Module, *, engine: str = "x86") -> nn.Module:
    """``torch.ao.quantization.quantize_dynamic`` of a LeNet5's linear layers to int8 (a copy)."""
    import torch.ao.quantization as tq

    torch.backends.quantized.engine = engine
    with _quiet_eager_quantization():
        return tq.quantize_dynamic(copy.deepcopy(original).eval(), {nn.Linear}, dtype=torch.qint8)


def dynamic_from_torch(quantized: nn.Module) -> DynamicInt8LeNet:
    """Copy a ``quantize_dynamic`` LeNet5's float convolutions and int8 linear weights into the simulation."""
    sim = DynamicInt8LeNet()
    with torch.no_grad():
        for layer in ("conv1", "conv2"):
            sim.get_submodule(layer).load_state_dict(quantized.get_submodule(layer).state_dict())
        for layer in _LINEARS:
            weight, bias = cast(Any, quantized.get_submodule(layer))._packed_params._weight_bias()
            if weight.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric) or weight.q_zero_point():
                raise ValueError(f"{layer}: expected per-tensor symmetric int8 weights")
            target = cast(DynamicInt8Linear, sim.get_submodule(layer))
            target.weight.copy_(weight.int_repr())
            target.weight_scale.fill_(weight.q_scale())
            target.bias.copy_(bias)
    return sim.eval()


def to_torch_dynamic(sim: DynamicInt8LeNet, engine: str = "x86") -> nn.Module:
    """The real ``torch.ao`` dynamic int8 model holding exactly ``sim``'s weights."""
    float_model = LeNet5()
    with torch.no_grad():
        for layer in ("conv1", "conv2"):
            float_model.get_submodule(layer).load_state_dict(sim.get_submodule(layer).state_dict())
    model = quantize_dynamic(float_model, engine=engine)
    for layer in _LINEARS:
        source = cast(DynamicInt8Linear, sim.get_submodule(layer))
        with _quiet_eager_quantization():
            qweight = torch._make_per_tensor_quantized_tensor(source.weight.detach(),
                                                              float(source.weight_scale[0]), 0)
            cast(Any, model.get_submodule(layer)).set_weight_bias(qweight, source.bias.detach().clone())
    return model.eval()


_DYNAMIC_RECIPE = {"original": ORIGINAL, "method": "dynamic-range quantization, torch.ao quantize_dynamic",
                   "engine": "x86 (fbgemm)", "quantized": "linear layers (fc1-fc3); convolutions stay float",
                   "weights": "int8, per-tensor symmetric",
                   "activations": "uint8, range of each input tensor at run time, reduce_range"}


def _train_dynamic(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    original = load_original()
    quantized = quantize_dynamic(original)
    module.load_state_dict(dynamic_from_torch(quantized).state_dict())
    metrics = compression_metrics(module, original, ctx, "lenet-dynint8", deployed=quantized)
    metrics["torch_dynamic_accuracy"] = accuracy(quantized, ctx.test, torch.device("cpu"))
    with torch.inference_mode():
        ours, theirs = module(ctx.test.x), quantized(ctx.test.x)
    metrics["dynamic_prediction_agreement"] = float((ours.argmax(1) == theirs.argmax(1)).float().mean())
    metrics["dynamic_max_logit_diff"] = float((ours - theirs).abs().max())
    return metrics


# ----------------------------------------------------------------------------- quantization-aware training


def fit_qat(model: nn.Module, ctx: TrainContext, *, epochs: int, lr: float, batch_size: int,
            observer_epochs: int, label: str = "qat") -> float:
    """Fine-tune a ``prepare_qat`` model (seeded, shifted digits); return the last epoch's loss.

    The observers follow the activations' ranges for ``observer_epochs`` epochs and are
    then frozen, so the last epochs train against fixed quantization grids.
    """
    import torch.ao.quantization as tq

    generator = seed_everything(ctx.seed)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    x_all, y_all = ctx.train.x, ctx.train.y
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task(label, total=epochs, status="")
        for epoch in range(epochs):
            if epoch == observer_epochs:
                model.apply(tq.disable_observer)
            order = torch.randperm(len(x_all), generator=generator)
            total = 0.0
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                optimiser.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(random_shift(x_all[idx], generator)), y_all[idx])
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(idx)
            running = total / len(order)
            progress.update(task, advance=1, status=f"loss {running:.4f}")
    model.apply(tq.disable_observer)  # evaluation must not move the grids
    return running


def quantize_qat(original: nn.Module, ctx: TrainContext, *, epochs: int, lr: float, batch_size: int,
                 observer_epochs: int, engine: str = "x86") -> tuple[nn.Module, float]:
    """``torch.ao`` eager-mode quantization-aware training of a LeNet5, converted to int8.

    Fuses conv/linear with their ReLU (``fuse_modules_qat``), inserts fake quantization
    with the engine's default QAT qconfig (``prepare_qat``), fine-tunes (:func:`fit_qat`)
    and converts. Returns the int8 model and the last training loss.
    """
    import torch.ao.quantization as tq

    torch.backends.quantized.engine = engine
    with _quiet_eager_quantization():
        model = _Quantizable(copy.deepcopy(original)).train()
        model = tq.fuse_modules_qat(model, _FUSE)
        model.qconfig = tq.get_default_qat_qconfig(engine)
        tq.prepare_qat(model, inplace=True)
        loss = fit_qat(model, ctx, epochs=epochs, lr=lr, batch_size=batch_size, observer_epochs=observer_epochs,
                       label="lenet-qat")
        return tq.convert(model.eval()), loss


_QAT_RECIPE: dict[str, Any] = {"original": ORIGINAL, "method": "quantization-aware training, torch.ao eager mode "
                               "(fuse_modules_qat, prepare_qat, convert)", "engine": "x86 (fbgemm)",
                               "weights": "int8, per-channel symmetric", "activations": "uint8, per-tensor affine",
                               "epochs": 3, "observer_epochs": 2, "lr": 1e-4, "batch_size": 64,
                               "augment": "random shift +-2 px"}


def _train_qat(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    original = load_original()
    r = _QAT_RECIPE
    quantized, loss = quantize_qat(original, ctx, epochs=int(r["epochs"]), lr=float(r["lr"]),
                                   batch_size=int(r["batch_size"]), observer_epochs=int(r["observer_epochs"]))
    sim = int8_from_torch(quantized)
    module.load_state_dict(sim.state_dict())
    metrics = compression_metrics(module, original, ctx, "lenet-qat", deployed=quantized)
    assert isinstance(module, Int8LeNet)  # the entry builds one
    metrics.update(int8_agreement(module, quantized, ctx.test.x))
    metrics["torch_int8_accuracy"] = accuracy(quantized, ctx.test, torch.device("cpu"))
    metrics["train_loss"] = loss
    return metrics


# ----------------------------------------------------------------------------- structured pruning

#: Layers whose output channels (convolutions) or neurons (linear) structured pruning removes;
#: fc3's outputs are the classes and stay.
_STRUCTURED = ("conv1", "conv2", "fc1", "fc2")


def prune_channels(module: nn.Module, amount: float, layers: tuple[str, ...] = _STRUCTURED, n: int = 2) -> None:
    """Mask the ``amount`` share of each layer's output channels with the smallest L``n`` norm.

    ``torch.nn.utils.prune.ln_structured`` over ``dim=0`` ranks each output channel by the
    norm of its weights; the bias of a pruned channel is masked as well, so the channel
    outputs exactly zero and can be removed (:func:`remove_pruned_channels`).
    """
    for name in layers:
        layer = module.get_submodule(name)
        prune.ln_structured(layer, "weight", amount=amount, n=n, dim=0)
        keep = cast(torch.Tensor, layer.weight_mask).flatten(1).any(1).to(torch.float32)  # (out,)
        prune.custom_from_mask(layer, "bias", mask=keep)


def alive_channels(module: nn.Module, layer: str) -> torch.Tensor:
    """Indices of ``layer``'s output channels with any non-zero weight or bias."""
    sub = module.get_submodule(layer)
    weight, bias = cast(torch.Tensor, sub.weight), cast(torch.Tensor, sub.bias)
    return torch.nonzero(weight.detach().flatten(1).ne(0).any(1) | bias.detach().ne(0)).flatten()


def remove_pruned_channels(module: nn.Module) -> nn.Module:
    """A physically smaller LeNet (:class:`SmallLeNet` widths) without ``module``'s dead channels.

    Same outputs as ``module`` up to float rounding: a dead channel is zero after its ReLU
    and pooling, so the next layer's weights on it never contributed.
    """
    keep = {name: alive_channels(module, name) for name in _STRUCTURED}
    small = SmallLeNet(widths=tuple(len(keep[n]) for n in _STRUCTURED))  # type: ignore[arg-type]
    # input channels of each layer: the alive outputs of the previous one (fc1 reads 25 per conv2 channel)
    conv2_inputs = (keep["conv2"][:, None] * 25 + torch.arange(25)).flatten()
    inputs = {"conv1": None, "conv2": keep["conv1"], "fc1": conv2_inputs, "fc2": keep["fc1"], "fc3": keep["fc2"]}
    with torch.no_grad():
        for name, columns in inputs.items():
            source, target = module.get_submodule(name), cast(Any, small.get_submodule(name))
            weight = cast(torch.Tensor, source.weight)
            bias = cast(torch.Tensor, source.bias)
            if name in keep:
                weight, bias = weight[keep[name]], bias[keep[name]]
            if columns is not None:
                weight = weight[:, columns]
            target.weight.copy_(weight)
            target.bias.copy_(bias)
    return small.eval()


_STRUCTURED_RECIPE: dict[str, Any] = {
    "original": ORIGINAL, "method": "structured L2 pruning of output channels / neurons, "
    "torch.nn.utils.prune.ln_structured (dim 0), biases masked with their channel",
    "layers": list(_STRUCTURED), "amount": 0.5, "finetune_epochs": 5, "lr": 5e-4, "batch_size": 64,
    "augment": "random shift +-2 px"}


def _train_structured(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    r = _STRUCTURED_RECIPE
    original = load_original()
    module.load_state_dict(original.state_dict())
    prune_channels(module, float(r["amount"]))
    fit_classifier(module, ctx, epochs=int(r["finetune_epochs"]), lr=float(r["lr"]), batch_size=int(r["batch_size"]),
                   augment=random_shift, label="lenet-structured50")
    make_permanent(module)
    small = remove_pruned_channels(module)
    metrics = compression_metrics(module, original, ctx, "lenet-structured50", deployed=small)
    metrics["weight_sparsity"] = weight_sparsity(module)
    metrics["removed_params"] = metrics["original_params"] - sum(p.numel() for p in small.parameters())
    metrics["removed_size_ratio"] = len(weights_bytes(small, "small")) / metrics["original_weights_bytes"]
    return metrics


def _register_variant(name: str, build: Callable[[], nn.Module], train: Callable[[nn.Module, TrainContext],
                      dict[str, float]], paper: str, description: str, recipe: dict[str, Any]) -> None:
    COMPRESSED_FROM[name] = ORIGINAL
    register_model(ZooEntry(
        name=name, uses=(ORIGINAL,), family="tinyml", task="classification", modality="image", dataset="digits",
        build=build, train=train, input_shape=(1, 32, 32), class_names=DIGIT_CLASSES, layers=_LAYERS,
        metric="accuracy", floor=0.95, paper=paper, description=description, recipe=recipe,
    ))


# ----------------------------------------------------------------------------- distillation


class SmallLeNet(nn.Module):
    """A narrow LeNet (4 and 8 feature maps, 48 and 32 hidden units): the distilled student.

    Same layer names as :class:`~xai.zoo.cnn.LeNet5`, about a fifth of its parameters.

    Examples
    --------
    >>> SmallLeNet()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int, int] = (4, 8, 48, 32)) -> None:
        super().__init__()
        c1, c2, h1, h2 = widths
        self.conv1 = nn.Conv2d(1, c1, kernel_size=5)  # (B, c1, 28, 28)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # (B, c1, 14, 14)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)  # (B, c2, 10, 10)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # (B, c2, 5, 5)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * 5 * 5, h1)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(h1, h2)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(h2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``."""
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
                      temperature: float, alpha: float) -> torch.Tensor:
    """Hinton et al.'s loss: ``alpha T^2 KL(teacher_T || student_T) + (1 - alpha) CE(student, y)``.

    ``_T`` is a softmax at temperature ``T``; the ``T^2`` keeps the soft term's gradients
    on the scale of the hard one's.
    """
    soft = F.kl_div(F.log_softmax(student_logits / temperature, 1), F.log_softmax(teacher_logits / temperature, 1),
                    reduction="batchmean", log_target=True)
    return alpha * temperature ** 2 * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


def fit_distilled(student: nn.Module, teacher: nn.Module, ctx: TrainContext, *, epochs: int, lr: float,
                  batch_size: int, temperature: float, alpha: float, label: str = "distill") -> float:
    """Train ``student`` on ``teacher``'s softened outputs (same augmented batches); return the last epoch's loss."""
    generator = seed_everything(ctx.seed)
    teacher.eval()
    student.train()
    optimiser = torch.optim.Adam(student.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    x_all, y_all = ctx.train.x, ctx.train.y
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task(label, total=epochs, status="")
        for _ in range(epochs):
            order = torch.randperm(len(x_all), generator=generator)
            total = 0.0
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                xb = random_shift(x_all[idx], generator)
                with torch.no_grad():
                    soft = teacher(xb)
                optimiser.zero_grad(set_to_none=True)
                loss = distillation_loss(student(xb), soft, y_all[idx], temperature=temperature, alpha=alpha)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(idx)
            scheduler.step()
            running = total / len(order)
            progress.update(task, advance=1, status=f"loss {running:.4f}")
    student.eval()
    return running


_DISTILLED_RECIPE: dict[str, Any] = {"teacher": ORIGINAL, "student": "SmallLeNet widths (4, 8, 48, 32)", "epochs": 30,
                                     "lr": 3e-3, "batch_size": 64, "temperature": 4.0, "alpha": 0.9,
                                     "augment": "random shift +-2 px"}


def _train_distilled(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    teacher = load_original()
    r = _DISTILLED_RECIPE
    loss = fit_distilled(module, teacher, ctx, epochs=int(r["epochs"]), lr=float(r["lr"]),
                         batch_size=int(r["batch_size"]), temperature=float(r["temperature"]),
                         alpha=float(r["alpha"]), label="lenet-distilled")
    metrics = compression_metrics(module, teacher, ctx, "lenet-distilled")
    metrics["train_loss"] = loss
    return metrics


COMPRESSED_FROM["lenet-distilled"] = ORIGINAL
register_model(
    ZooEntry(
        name="lenet-distilled",
        uses=(ORIGINAL,),
        family="tinyml",
        task="classification",
        modality="image",
        dataset="digits",
        build=SmallLeNet,
        train=_train_distilled,
        input_shape=(1, 32, 32),
        class_names=DIGIT_CLASSES,
        layers=_LAYERS,
        metric="accuracy",
        floor=0.95,
        paper="https://arxiv.org/abs/1503.02531",
        description="a 5x smaller LeNet distilled from lenet's temperature-softened outputs (T=4)",
        recipe=_DISTILLED_RECIPE,
    )
)



# registered last: remove_pruned_channels builds a SmallLeNet
_register_variant("lenet-wint8", WeightInt8LeNet, _train_weight_int8, "https://arxiv.org/abs/1712.05877",
                  "lenet with weight-only int8 quantization (per-channel symmetric); float activations",
                  _WEIGHT_INT8_RECIPE)
_register_variant("lenet-dynint8", DynamicInt8LeNet, _train_dynamic,
                  "https://pytorch.org/docs/stable/generated/torch.ao.quantization.quantize_dynamic.html",
                  "lenet after dynamic-range int8 quantization of its linear layers (torch.ao quantize_dynamic); "
                  "simulated in float for gradients", _DYNAMIC_RECIPE)
_register_variant("lenet-qat", Int8LeNet, _train_qat, "https://arxiv.org/abs/1712.05877",
                  "lenet after int8 quantization-aware training (torch.ao prepare_qat, 3 epochs) and conversion; "
                  "simulated in float for gradients", _QAT_RECIPE)
_register_variant("lenet-structured50", LeNet5, _train_structured, "https://arxiv.org/abs/1608.08710",
                  "lenet with half of its conv channels and hidden neurons pruned by L2 norm (structured) and "
                  "fine-tuned; zeros stored dense", _STRUCTURED_RECIPE)
