"""Activation maximisation ("DeepDream", feature visualisation) for image models.

Gradient ascent on the *input* of a frozen model so that one unit of one layer fires
as strongly as possible:

- objectives: ``channel`` (mean activation of channel C of layer L), ``neuron`` (one
  spatial position / token of that channel), ``layer`` (DeepDream: the L2 norm of the
  whole activation, Mordvintsev et al. 2015) and ``class`` (one class logit);
- parametrisations: ``pixel`` (the image itself, projected back into the data range
  after each step) and ``fourier`` (a spectrum scaled by 1/frequency, decorrelated
  colour and a sigmoid into the data range; Olah et al. 2017,
  https://distill.pub/2017/feature-visualization/);
- robustness transforms (random jitter, scale and rotation, seeded torch ops), octaves
  (coarse to fine: optimise a small image, upsample it, continue) and total-variation /
  L2 penalties.

The model is never changed: it runs in eval mode inside :func:`eval_mode`, gradients are
taken with :func:`torch.autograd.grad` with respect to the input parametrisation only (no
parameter ever gets a ``.grad``), and the layer hook is a context manager that is always
removed.

Examples
--------
>>> from xai.zoo import load_model
>>> result = dream(load_model("lenet"), "conv2", channel=3, steps=64)
>>> result.image.shape
(1, 1, 32, 32)
>>> result.metrics()["dream.conv2.channel3.gain"] > 5  # end / start activation of the channel
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from pydantic import Field, model_validator
from torch import nn

from xai._device import single_cpu_thread
from xai._method import Capabilities, Kind, Method, Options
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.datasets import Dataset, load_dataset
from xai.errors import DataError, NotApplicableError
from xai.explain import _choices
from xai.explain._index import DREAMS
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = [
    "OBJECTIVES",
    "PARAMETRISATIONS",
    "Dream",
    "DreamResult",
    "LayerCapture",
    "activation_objective",
    "dream",
]

Objective = Literal["channel", "neuron", "layer", "class"]
Parametrisation = Literal["pixel", "fourier"]
OBJECTIVES: tuple[str, ...] = _choices.OBJECTIVES  # kept torch-free in _choices for the CLI's --help
PARAMETRISATIONS: tuple[str, ...] = _choices.PARAMETRISATIONS

#: Square root of ImageNet's RGB colour covariance (Lucid's ``color_correlation_svd_sqrt``),
#: normalised so its largest column has unit norm: the Fourier parametrisation optimises
#: decorrelated colour and maps it back with this matrix.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_SQRT = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


class LayerCapture:
    """Context manager: a forward hook that keeps the last output of one module.

    The hook is removed on exit, also when the body raises, and the kept output is
    dropped then (it may hold an autograd graph): read it inside the block.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    >>> with LayerCapture(net[0]) as cap:
    ...     _ = net(torch.zeros(1, 2))
    ...     cap.output.shape
    torch.Size([1, 3])
    >>> cap.output is None
    True
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.output: torch.Tensor | None = None
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    def _hook(self, _module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, tuple | list):  # e.g. an RNN's (output, state): keep the first
            output = output[0]
        if not isinstance(output, torch.Tensor):
            raise DataError(f"layer output is a {type(output).__name__}, not a tensor")
        self.output = output

    def __enter__(self) -> LayerCapture:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.output = None


def activation_objective(
    activation: torch.Tensor,
    objective: Objective,
    channel: int = 0,
    position: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """One scalar per sample from a layer's activation ``(B, ...)`` -> ``(B,)``.

    The channel axis is 1 for conv maps ``(B, C, H, W)`` and features ``(B, F)``, and the
    last axis for token sequences ``(B, T, D)`` (a transformer block's output); the other
    non-batch axes are positions. ``channel`` averages the channel over positions,
    ``neuron`` reads it at ``position`` (the centre when ``None``), ``layer`` is the L2 norm
    of the whole activation. (``class`` is a logit, taken from the model output instead.)
    """
    if objective == "layer":
        return activation.flatten(1).norm(dim=1)  # (B,)
    fmap = _channels_first(activation)  # (B, C, *positions)
    if not 0 <= channel < fmap.shape[1]:
        raise DataError(f"channel {channel} is out of range: this layer has {fmap.shape[1]} "
                        f"channels (0..{fmap.shape[1] - 1})")
    unit = fmap[:, channel]  # (B, *positions)
    if objective == "channel":
        return unit.flatten(1).mean(1) if unit.ndim > 1 else unit
    if objective == "neuron":
        pos = _position(unit.shape[1:], position)
        index: tuple[slice | int, ...] = (slice(None), *pos)  # every row, at the neuron's position
        return unit[index] if pos else unit
    raise DataError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def _channels_first(activation: torch.Tensor) -> torch.Tensor:
    if activation.ndim == 3:  # (B, T, D) tokens -> (B, D, T)
        return activation.transpose(1, 2)
    return activation  # (B, C, ...) already


def _position(shape: torch.Size, position: tuple[int, ...] | None) -> tuple[int, ...]:
    if position is None:
        return tuple(s // 2 for s in shape)
    if len(position) != len(shape) or any(not 0 <= p < s for p, s in zip(position, shape, strict=False)):
        raise DataError(f"position {tuple(position)} is outside this layer's positions {tuple(shape)}")
    return tuple(position)


# ---------------------------------------------------------------- parametrisations


def _spectrum_scale(h: int, w: int, decay: float = 1.0) -> torch.Tensor:
    """``1 / max(f, 1/max(h, w)) ** decay`` over the rfft2 frequencies ``(H, W // 2 + 1)``."""
    fy = torch.fft.fftfreq(h)[:, None]  # (H, 1)
    fx = torch.fft.rfftfreq(w)[None, :]  # (1, W // 2 + 1)
    freq = torch.sqrt(fx * fx + fy * fy)
    return 1.0 / torch.clamp(freq, min=1.0 / max(h, w)) ** decay


class _Pixel:
    """The image itself; projected back into ``[lo, hi]`` after every step."""

    def __init__(self, image: torch.Tensor, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        self.param = image.detach().clone().requires_grad_()  # (1, C, H, W)

    def image(self) -> torch.Tensor:
        return self.param

    @torch.no_grad()
    def project(self) -> None:
        self.param.clamp_(self.lo, self.hi)


class _Fourier:
    """Scaled spectrum -> decorrelated colour -> sigmoid into ``[lo, hi]`` (Olah et al. 2017).

    The 1/f scaling makes every frequency equally easy to change, so the ascent is not
    dominated by high-frequency patterns. For 3 channels the spectrum lives in a
    decorrelated colour basis (``_COLOR_SQRT``); for 1-channel images (the digits zoo)
    colour decorrelation is the identity and only the spectral scaling applies.
    """

    def __init__(self, image: torch.Tensor, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        _, c, h, w = image.shape
        self.size = (h, w)
        self.scale = _spectrum_scale(h, w).to(image.device)  # (H, W // 2 + 1)
        self.colour = _COLOR_SQRT.to(image.device) if c == 3 else None
        # Invert image = lo + (hi - lo) * sigmoid(colour(irfft(spectrum * scale))).
        unit = ((image.detach() - lo) / (hi - lo)).clamp(1e-3, 1 - 1e-3)
        logits = torch.log(unit) - torch.log1p(-unit)  # (1, C, H, W)
        if self.colour is not None:
            logits = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(self.colour), logits)
        spectrum = torch.fft.rfft2(logits, norm="ortho") / self.scale
        self.param = torch.view_as_real(spectrum).clone().requires_grad_()  # (1, C, H, W//2+1, 2)

    def image(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.param) * self.scale
        logits = torch.fft.irfft2(spectrum, s=self.size, norm="ortho")  # (1, C, H, W)
        if self.colour is not None:
            logits = torch.einsum("ij,bjhw->bihw", self.colour, logits)
        return self.lo + (self.hi - self.lo) * torch.sigmoid(logits)

    def project(self) -> None:  # the sigmoid keeps the image in range already
        return None


# ---------------------------------------------------------------- transforms and penalties


def _transform(x: torch.Tensor, gen: torch.Generator, jitter: int, scales: tuple[float, ...],
               degrees: float) -> torch.Tensor:
    """Random jitter (roll), scale and rotation of ``x`` ``(1, C, H, W)``; draws from ``gen``."""
    if jitter > 0:
        dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    scale = 1.0
    if scales:
        scale = float(scales[int(torch.randint(len(scales), (1,), generator=gen))])
    angle = 0.0
    if degrees > 0:
        angle = math.radians(float(torch.empty(1).uniform_(-degrees, degrees, generator=gen)))
    if scale != 1.0 or angle != 0.0:
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        theta = torch.tensor([[[cos, -sin, 0.0], [sin, cos, 0.0]]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return x


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of ``(B, C, H, W)`` -> ``(B,)``."""
    dy = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().flatten(1).mean(1)
    dx = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().flatten(1).mean(1)
    return dy + dx


# ---------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class DreamResult:
    """An input optimised to excite one unit, with how far it got and the data's best.

    Attributes
    ----------
    image
        The final image ``(1, C, H, W)`` in the model's input range.
    start_image
        Where the ascent started ``(1, C, H, W)`` (seeded noise or a dataset image).
    octave_images
        The image at the end of each octave, at that octave's resolution.
    trace
        The objective at every step (on the transformed image the step optimised).
    start_value, end_value
        The objective on ``start_image`` and on ``image`` (no transforms, no penalties).
    top_indices, top_values, top_labels
        The ``k`` test-split examples that excite the same unit most, with their objective.
    """

    model: str
    layer: str
    objective: str
    channel: int | None
    position: tuple[int, ...] | None
    param: str
    image: np.ndarray
    start_image: np.ndarray
    octave_images: tuple[np.ndarray, ...]
    trace: np.ndarray
    start_value: float
    end_value: float
    dataset: str
    top_indices: np.ndarray
    top_values: np.ndarray
    top_labels: np.ndarray
    top_images: np.ndarray
    class_names: tuple[str, ...]
    options: dict[str, Any]
    provenance: Provenance
    notes: tuple[str, ...] = field(default=())

    @property
    def gain(self) -> float:
        """``end / start`` (NaN when the start is not positive: a ratio then means nothing)."""
        return self.end_value / self.start_value if self.start_value > 0 else float("nan")

    @property
    def unit(self) -> str:
        """What was maximised, as a short name (``conv2.channel3``, ``class7`` ...)."""
        if self.objective == "class":
            return f"class{self.channel}"
        if self.objective == "layer":
            return self.layer
        where = "" if self.position is None else "@" + ",".join(map(str, self.position))
        return f"{self.layer}.{self.objective}{self.channel}{where}"

    def metrics(self) -> dict[str, float]:
        """Named scalars: ``dream.<unit>.{start,end,gain,increase,vs_top1}`` (``dream.conv2.channel3.gain``)."""
        base = f"dream.{self.unit}"
        out = {f"{base}.start": self.start_value, f"{base}.end": self.end_value,
               f"{base}.increase": self.end_value - self.start_value}
        if self.start_value > 0:
            out[f"{base}.gain"] = self.gain
        if len(self.top_values) and self.top_values[0] > 0:
            out[f"{base}.vs_top1"] = self.end_value / float(self.top_values[0])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as nested lists), with the metrics."""
        out = to_jsonable(self)
        out["gain"] = to_jsonable(self.gain)
        out["metrics"] = to_jsonable(self.metrics())
        return out


# ---------------------------------------------------------------- the ascent


class _Scorer:
    """Objective of a batch of model-ready images, through a :class:`LayerCapture`."""

    def __init__(self, handle: ModelHandle, capture: LayerCapture | None, objective: Objective,
                 channel: int, position: tuple[int, ...] | None) -> None:
        self.handle, self.capture = handle, capture
        self.objective, self.channel, self.position = objective, channel, position

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B,)
        output = self.handle.module(x)
        if self.objective == "class":
            index = torch.full((len(x),), self.channel, dtype=torch.long, device=x.device)
            return self.handle.targets(output, index)
        assert self.capture is not None and self.capture.output is not None
        return activation_objective(self.capture.output, self.objective, self.channel, self.position)


@contextmanager
def _scorer(handle: ModelHandle, layer: str | None, objective: Objective, channel: int,
            position: tuple[int, ...] | None) -> Iterator[_Scorer]:
    if objective == "class":
        yield _Scorer(handle, None, objective, channel, position)
        return
    assert layer is not None
    with LayerCapture(handle.get_layer(layer)) as capture:
        yield _Scorer(handle, capture, objective, channel, position)


def _to_input(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Resize an octave's image to the model's input size (identity at full size)."""
    if tuple(x.shape[-2:]) == tuple(shape[-2:]):
        return x
    return F.interpolate(x, size=tuple(shape[-2:]), mode="bilinear", align_corners=False)


@torch.no_grad()
def _top_examples(scorer: _Scorer, data: Dataset, k: int, device: torch.device,
                  batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    values = torch.cat([scorer(data.x[i:i + batch_size].to(device)).float().cpu()
                        for i in range(0, len(data), batch_size)])  # (N,)
    k = min(k, len(values))
    top = torch.topk(values, k)  # largest first; ties keep index order
    return top.indices.numpy(), top.values.numpy()


def dream(
    handle: ModelHandle,
    layer: str | None,
    *,
    objective: Objective = "channel",
    channel: int = 0,
    position: tuple[int, ...] | None = None,
    steps: int = 128,
    lr: float = 0.05,
    param: Parametrisation = "pixel",
    octaves: int = 1,
    octave_scale: float = 1.4,
    jitter: int = 1,
    scales: tuple[float, ...] = (1.0, 0.975, 1.025, 0.95, 1.05),
    degrees: float = 5.0,
    tv: float = 0.0,
    l2: float = 0.0,
    from_image: int | None = None,
    noise: float = 0.1,
    top_k: int = 8,
    data: Dataset | None = None,
    seed: int = 0,
) -> DreamResult:
    """Optimise an input so that one unit of ``layer`` (or one class logit) is maximal.

    Parameters
    ----------
    layer
        Module name (``handle.get_layer`` lists the valid ones); ignored for ``class``.
    channel
        The channel for ``channel`` / ``neuron``; the class index for ``class``.
    position
        The spatial position (or token) for ``neuron``; the centre when ``None``.
    steps
        Adam steps per octave.
    octaves
        Coarse to fine: octave ``i`` of ``K`` optimises an image ``octave_scale ** (K-1-i)``
        times smaller (resized up to the model's input size for the forward pass), then
        upsamples it to start the next octave.
    jitter, scales, degrees
        Per-step random roll (pixels), zoom factors and rotation range (degrees).
    tv, l2
        Weights of the total-variation penalty and of the L2 penalty on the image's
        distance from the middle of the data range.
    from_image
        Start from this test-split example instead of seeded noise.
    noise
        Standard deviation of the starting noise (around the data's mean intensity per
        channel), as a fraction of the data range.
    data
        The split to draw ``from_image`` and the top-k examples from (default: the
        model's own dataset, test split).
    """
    reason = Dream.why_not(handle, objective)
    if reason:
        raise NotApplicableError(f"dream does not apply to {handle.name}: {reason}")
    if objective not in OBJECTIVES:
        raise DataError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if param not in PARAMETRISATIONS:
        raise DataError(f"--param must be one of {', '.join(PARAMETRISATIONS)}, got {param!r}")
    if steps < 1 or octaves < 1 or octave_scale <= 1.0 or top_k < 0:
        raise DataError("steps and octaves must be >= 1, octave_scale > 1 and top_k >= 0")
    if objective == "class":
        if not 0 <= channel < len(handle.class_names):
            raise DataError(f"class {channel} is out of range: {handle.name} has "
                            f"{len(handle.class_names)} classes (0..{len(handle.class_names) - 1})")
        layer_name = "output"
    else:
        if layer is None:
            raise DataError(f"objective {objective} needs a layer; {handle.name} suggests "
                            f"{', '.join(handle.layers) or 'none'}")
        handle.get_layer(layer)  # an unknown name lists the valid ones
        layer_name = layer
    if data is None:
        if handle.dataset is None:
            raise DataError(f"{handle.name} names no dataset; pass data=")
        data = load_dataset(handle.dataset, "test")
    if from_image is not None and not 0 <= from_image < len(data):
        raise DataError(f"--from-image {from_image} is out of range: the {data.name} test split "
                        f"has {len(data)} images (0..{len(data) - 1})")

    start_clock = time.perf_counter()
    device = handle.device
    shape = tuple(handle.input_shape)  # (C, H, W)
    lo, hi = float(data.x.min()), float(data.x.max())
    gen = torch.Generator().manual_seed(seed)
    if from_image is None:
        # Noise around the data's mean intensity per channel: statistically an average
        # input, with no structure that favours one unit.
        mean = data.x.float().mean(dim=(0, 2, 3)).view(1, -1, 1, 1)  # (1, C, 1, 1)
        start = mean + noise * (hi - lo) * torch.randn((1, *shape), generator=gen)
        start = start.clamp(lo, hi)  # (1, C, H, W)
    else:
        start = data.x[from_image:from_image + 1].float().clone()
    start = start.to(device)
    notes = []
    if param == "fourier" and shape[0] != 3:
        notes.append(f"{shape[0]}-channel input: colour decorrelation is the identity; the "
                     "Fourier parametrisation only rescales the spectrum")

    trace: list[float] = []
    octave_images: list[np.ndarray] = []
    # One batch-1 image through a small net: on the CPU, intra-op threads only add
    # synchronisation (35x slower with 2 threads on the shared 2-core machine; BENCHMARKS.md).
    threads = single_cpu_thread() if device.type == "cpu" else nullcontext()
    with threads, eval_mode(handle.module), _scorer(handle, layer, objective, channel, position) as score:
        # Validate channel / position once, with a clear error, before any optimisation.
        with torch.no_grad():
            start_value = float(score(start)[0])
        sizes = [(max(4, round(shape[1] / octave_scale ** i)), max(4, round(shape[2] / octave_scale ** i)))
                 for i in reversed(range(octaves))]
        image = start
        for size in sizes:
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False) \
                if tuple(image.shape[-2:]) != size else image
            parametrised = _Pixel(image, lo, hi) if param == "pixel" else _Fourier(image, lo, hi)
            optimiser = torch.optim.Adam([parametrised.param], lr=lr)
            for _ in range(steps):
                x = parametrised.image()  # (1, C, h, w)
                value = score(_to_input(_transform(x, gen, jitter, scales, degrees), shape))  # (1,)
                loss = -value.sum()
                if tv:
                    loss = loss + tv * total_variation(x).sum()
                if l2:
                    loss = loss + l2 * ((x - (lo + hi) / 2) ** 2).mean()
                # Gradient for the input only: the model's parameters never get a .grad.
                (grad,) = torch.autograd.grad(loss, [parametrised.param])
                parametrised.param.grad = grad
                optimiser.step()
                parametrised.project()
                trace.append(float(value.detach()[0]))
            with torch.no_grad():
                image = parametrised.image().detach()
            octave_images.append(image.cpu().numpy())
        final = _to_input(image, shape).detach()  # (1, C, H, W)
        with torch.no_grad():
            end_value = float(score(final)[0])
        top_idx, top_val = _top_examples(score, data, top_k, device) if top_k else (
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

    if end_value <= start_value and not any(trace[i] != trace[0] for i in range(len(trace))):
        notes.append("the objective never moved: the unit is silent on this start (e.g. a dead ReLU "
                     "gives no gradient); try another channel or --from-image")
    options = {"steps": steps, "lr": lr, "octaves": octaves, "octave_scale": octave_scale,
               "jitter": jitter, "scales": list(scales), "degrees": degrees, "tv": tv, "l2": l2,
               "from_image": from_image, "noise": noise, "top_k": top_k}
    provenance = Provenance(model_sha256=handle.sha256, data_sha256=data.sha256, seed=seed,
                            wall_seconds=round(time.perf_counter() - start_clock, 4), device=str(device))
    return DreamResult(
        model=handle.name,
        layer=layer_name,
        objective=objective,
        channel=None if objective == "layer" else channel,
        position=(_position_of(handle, layer, position) if objective == "neuron" else None),
        param=param,
        image=final.cpu().numpy(),
        start_image=start.cpu().numpy(),
        octave_images=tuple(octave_images),
        trace=np.asarray(trace, dtype=np.float32),
        start_value=start_value,
        end_value=end_value,
        dataset=data.name,
        top_indices=np.asarray(top_idx, dtype=np.int64),
        top_values=np.asarray(top_val, dtype=np.float32),
        top_labels=data.y[torch.as_tensor(top_idx, dtype=torch.long)].numpy(),
        top_images=data.x[torch.as_tensor(top_idx, dtype=torch.long)].numpy(),
        class_names=handle.class_names,
        options=options,
        provenance=provenance,
        notes=tuple(notes),
    )


def _position_of(handle: ModelHandle, layer: str | None, position: tuple[int, ...] | None) -> tuple[int, ...]:
    """The neuron's position as used (the centre of the layer's map when none was given)."""
    if position is not None:
        return tuple(position)
    assert layer is not None
    with torch.no_grad(), eval_mode(handle.module), LayerCapture(handle.get_layer(layer)) as cap:
        handle.module(torch.zeros((1, *handle.input_shape), device=handle.device))
        assert cap.output is not None
        return tuple(s // 2 for s in _channels_first(cap.output).shape[2:])


# ---------------------------------------------------------------- the method


@DREAMS.register("activation-maximisation")
class Dream(Method):
    """Activation maximisation: the input that most excites one unit (DeepDream, feature visualisation)."""

    name: ClassVar[str] = "activation-maximisation"
    kind: ClassVar[Kind] = "dream"
    result_type: ClassVar[str] = "xai.explain.dream:DreamResult"
    paper: ClassVar[str] = "Olah et al. 2017, Feature Visualization (Distill); Mordvintsev et al. 2015"
    capabilities: ClassVar[Capabilities] = Capabilities(modalities=frozenset({"image"}))

    class Options(Options):
        """One panel; the one source of :func:`dream`'s defaults (the ``[[dream]]`` spec section's keys)."""

        layer: str | None = Field(default=None, min_length=1)
        objective: Objective = "channel"
        channel: int = Field(default=0, ge=0)
        position: tuple[int, ...] | None = None
        steps: int = Field(default=128, gt=0)
        lr: float = Field(default=0.05, gt=0)
        param: Parametrisation = "pixel"
        octaves: int = Field(default=1, gt=0)
        octave_scale: float = Field(default=1.4, gt=1)
        jitter: int = Field(default=1, ge=0)
        scales: tuple[float, ...] = (1.0, 0.975, 1.025, 0.95, 1.05)
        degrees: float = Field(default=5.0, ge=0)
        tv: float = Field(default=0.0, ge=0)
        l2: float = Field(default=0.0, ge=0)
        from_image: int | None = Field(default=None, ge=0)
        noise: float = Field(default=0.1, ge=0)
        top_k: int = Field(default=8, ge=0)

        @model_validator(mode="after")
        def _layer_unless_class(self) -> Dream.Options:
            if self.objective != "class" and self.layer is None:
                raise ValueError(f"a {self.objective} objective needs `layer`")
            return self

    @classmethod
    def why_not(cls, handle: ModelHandle, objective: str = "channel") -> str | None:
        """The capability check, then the input shape and (``class`` objective) the class names."""
        reason = super().why_not(handle)
        if reason:
            return reason
        if len(handle.input_shape) != 3:
            return f"it needs a (C, H, W) input shape, {handle.name} has {handle.input_shape}"
        if objective == "class" and not handle.class_names:
            return f"the class objective needs class logits and {handle.name} names no classes"
        return None

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> DreamResult:
        """:func:`dream` with validated options (``data``: where the start image and top-k come from)."""
        opts = cls.parse_options(options)
        assert isinstance(opts, Dream.Options)
        values = opts.model_dump(exclude={"layer"})
        return dream(handle, opts.layer, data=data, seed=seed, **values)
