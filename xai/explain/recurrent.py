"""Inside a recurrent network: gate activations per time step, and how gradient decays with distance.

``nn.LSTM`` and ``nn.GRU`` return only hidden (and cell) states, not their gates. This
module unrolls the cell step by step with the module's own weights, following the
equations of the PyTorch documentation (Hochreiter & Schmidhuber 1997, Cho et al. 2014):

- LSTM: ``i, f, o = σ(W_i* x + b_i* + W_h* h + b_h*)``, ``g = tanh(...)``,
  ``c' = f ⊙ c + i ⊙ g``, ``h' = o ⊙ tanh(c')`` (weight rows ordered ``i, f, g, o``);
- GRU: ``r, z = σ(...)``, ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``,
  ``h' = (1 - z) ⊙ n + z ⊙ h`` (rows ordered ``r, z, n``);
- Elman RNN: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or ReLU).

The unrolled hidden states are checked against the module's own output
(``unroll_error``), so the gates shown are the ones the model computed.

The vanishing-gradient diagnostic (Bengio et al. 1994; Pascanu et al. 2013) is the norm
of ``d output / d x_t`` (the explained output: the predicted class's logit) at each
distance ``T - 1 - t`` from the end, averaged over sequences. The zoo's sequence models
read 8 steps, too short for decay to show, so the long sequences are ``concat`` seeded
samples of the data joined end to end (e.g. 16 digits read row by row = 128 steps): the
same long-sequence task for every recurrent model of the data.

Example
-------
>>> from xai.datasets import load_dataset
>>> from xai.zoo import load_model
>>> result = RecurrentInternals.run(load_model("lstm"), load_dataset("digits-rows").head(8), {"samples": 2})
>>> sorted(result.gates), result.gates["forget"].shape  # (samples, steps, hidden units)
(['cell', 'forget', 'hidden', 'input', 'output'], (2, 8, 64))
>>> result.unroll_error < 1e-4  # the unrolled cell reproduces nn.LSTM's hidden states
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from xai._method import Capabilities, Kind, Method, Options
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.datasets import Dataset
from xai.errors import DataError, NotApplicableError
from xai.explain._index import RECURRENT_METHODS
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = [
    "GATES",
    "RecurrentInternals",
    "RecurrentResult",
    "cell_type",
    "gradient_by_distance",
    "recurrent_layer",
    "unroll",
]

#: The per-step quantities each cell type reports (gates in [0, 1], states in [-1, 1] or unbounded for c).
GATES: dict[str, tuple[str, ...]] = {
    "lstm": ("input", "forget", "output", "cell", "hidden"),
    "gru": ("reset", "update", "candidate", "hidden"),
    "rnn": ("hidden",),
}


def cell_type(module: nn.Module) -> str:
    """``lstm``, ``gru`` or ``rnn`` for a ``torch.nn`` recurrent module."""
    if isinstance(module, nn.LSTM):
        return "lstm"
    if isinstance(module, nn.GRU):
        return "gru"
    if isinstance(module, nn.RNN):
        return "rnn"
    raise DataError(f"expected an nn.LSTM, nn.GRU or nn.RNN, got {type(module).__name__}")


def recurrent_layer(handle: ModelHandle, name: str | None = None) -> str:
    """The recurrent module to unroll: ``name``, else the first ``nn.RNNBase`` among the layers, then the modules."""
    if name is not None:
        module = handle.get_layer(name)
        cell_type(module)
        return name
    modules = dict(handle.module.named_modules())
    for candidate in (*handle.layers, *modules):
        if candidate and isinstance(modules.get(candidate), nn.RNNBase):
            return candidate
    raise NotApplicableError(f"{handle.name} has no nn.LSTM, nn.GRU or nn.RNN module to unroll")


def _check_unrollable(module: nn.RNNBase) -> None:
    if module.bidirectional:
        raise DataError("unrolling a bidirectional recurrent module is not supported")
    if getattr(module, "proj_size", 0):
        raise DataError("unrolling an LSTM with proj_size is not supported")


def unroll(module: nn.RNNBase, x: torch.Tensor, hx: Any = None, layer: int = -1) -> dict[str, torch.Tensor]:
    """Step ``module``'s cell through ``x`` with its own weights; every gate of ``layer`` per step.

    Parameters
    ----------
    module
        An ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` (unidirectional, any number of layers).
    x
        Its input, ``(B, T, F)`` when ``batch_first`` else ``(T, B, F)``.
    hx
        The initial state the module was given (``None``: zeros), as ``nn.LSTM`` takes it.
    layer
        Which stacked layer's gates to return (default the last).

    Returns
    -------
    dict
        ``{name: (B, T, H)}`` for the names of :data:`GATES` of the cell type; ``hidden``
        is that layer's output, equal to the module's output for the last layer.
    """
    kind = cell_type(module)
    _check_unrollable(module)
    if x.ndim != 3:
        raise DataError(f"expected a batched (B, T, F) sequence, got shape {tuple(x.shape)}")
    seq = x if module.batch_first else x.transpose(0, 1)  # (B, T, F)
    b, t, _ = seq.shape
    layers, hidden = module.num_layers, module.hidden_size
    which = layer % layers
    if hx is None:
        h0 = seq.new_zeros(layers, b, hidden)
        c0 = seq.new_zeros(layers, b, hidden)
    elif kind == "lstm":
        h0, c0 = hx
    else:
        h0, c0 = hx, None
    out: dict[str, torch.Tensor] = {}
    inputs = seq
    for k in range(layers):
        w_ih, w_hh = getattr(module, f"weight_ih_l{k}"), getattr(module, f"weight_hh_l{k}")
        b_ih = getattr(module, f"bias_ih_l{k}") if module.bias else torch.zeros_like(w_ih[:, 0])
        b_hh = getattr(module, f"bias_hh_l{k}") if module.bias else torch.zeros_like(w_hh[:, 0])
        h = h0[k]  # (B, H)
        c = c0[k] if c0 is not None else None
        gx = inputs @ w_ih.T + b_ih  # (B, T, G*H): the input part of every gate, all steps at once
        steps: dict[str, list[torch.Tensor]] = {name: [] for name in GATES[kind]}
        for s in range(t):
            gh = h @ w_hh.T + b_hh  # (B, G*H)
            if kind == "lstm":
                assert c is not None
                i, f, g, o = (gx[:, s] + gh).chunk(4, dim=1)  # (B, H) each
                i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                c = f * c + i * g
                h = o * torch.tanh(c)
                values = {"input": i, "forget": f, "output": o, "cell": c, "hidden": h}
            elif kind == "gru":
                xr, xz, xn = gx[:, s].chunk(3, dim=1)
                hr, hz, hn = gh.chunk(3, dim=1)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                n = torch.tanh(xn + r * hn)
                h = (1 - z) * n + z * h
                values = {"reset": r, "update": z, "candidate": n, "hidden": h}
            else:
                pre = gx[:, s] + gh
                h = torch.tanh(pre) if module.nonlinearity == "tanh" else torch.relu(pre)
                values = {"hidden": h}
            for name, value in values.items():
                steps[name].append(value)
        stacked = {name: torch.stack(v, dim=1) for name, v in steps.items()}  # (B, T, H) each
        if k == which:
            out = stacked
        inputs = stacked["hidden"]  # the next layer reads this one's hidden states (no dropout in eval)
    return out


class _InputCapture:
    """Context manager: record the recurrent module's input, initial state and output on the next forward."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.args: tuple[Any, ...] = ()
        self.output: Any = None
        self._handles: list[Any] = []

    def _pre(self, _module: nn.Module, args: tuple[Any, ...]) -> None:
        self.args = args

    def _post(self, _module: nn.Module, _args: Any, output: Any) -> None:
        self.output = output

    def __enter__(self) -> _InputCapture:
        self._handles = [self.module.register_forward_pre_hook(self._pre),
                         self.module.register_forward_hook(self._post)]
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self._handles:
            hook.remove()
        self._handles = []


def long_sequences(data: Dataset, count: int, concat: int, seed: int) -> torch.Tensor:
    """``count`` sequences, each ``concat`` seeded rows of ``data`` joined along time: ``(count, concat * T, F)``."""
    x = data.x
    if not x.is_floating_point() or x.ndim != 3:
        raise DataError(f"the gradient diagnostic joins (N, T, F) float sequences; {data.name} has shape "
                        f"{tuple(x.shape)}")
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, len(x), (count, concat), generator=generator)  # (count, concat)
    return x[picks].reshape(count, concat * x.shape[1], x.shape[2])  # (count, concat*T, F)


def gradient_by_distance(handle: ModelHandle, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``||d output / d x_t||`` per sequence and distance from the end: ``(N, T)`` norms, column ``d`` = ``T - 1 - t``.

    The output is each sequence's predicted target (the arg-max class's logit). Also
    returns the predicted targets ``(N,)``. The model's weights and mode are left as
    they were; no parameter ``.grad`` is written.
    """
    device = handle.device
    x = x.to(device).detach().requires_grad_()
    with torch.enable_grad(), eval_mode(handle.module):
        output = handle.module(x)
        target = handle.predicted_target(output.detach())
        score = handle.targets(output, target)  # (N,)
        (grad,) = torch.autograd.grad(score.sum(), x)  # samples are independent: one backward
    norms = grad.flatten(2).norm(dim=2).flip(1)  # (N, T): column 0 is the last step
    return norms.detach().cpu().double().numpy(), target.detach().cpu().numpy()


@dataclass(frozen=True)
class RecurrentResult:
    """Per-step gate activations of a few samples, and gradient norm by distance from the end.

    Attributes
    ----------
    gates
        ``{name: (S, T, H)}``: LSTM input/forget/output gates, cell and hidden state; GRU
        reset/update gates, candidate and hidden state; RNN hidden state.
    step_means
        ``{name: (T,)}``: each quantity's mean over the samples and units, per step.
    unroll_error
        Largest ``|h_unrolled - h_module|`` over the samples' steps (the unroll's own check).
    grad_norm, grad_log10
        ``(D,)``: mean ``||d output / d x_t||`` over the long sequences, and mean of its
        log10 (a geometric mean: a few exploding sequences do not dominate it), at each
        distance ``d = 0 .. D - 1`` from the last step. Empty without the diagnostic.
    window
        Steps per joined sample: the "near" distances are the first window, the "far" the last.
    """

    model: str
    layer: str
    cell: str
    rows: tuple[int, ...]
    labels: tuple[str, ...]
    predicted: tuple[str, ...]
    gates: dict[str, np.ndarray]
    step_means: dict[str, np.ndarray]
    unroll_error: float
    grad_norm: np.ndarray
    grad_log10: np.ndarray
    window: int
    sequences: int
    provenance: Provenance
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def far_near_log10(self) -> float:
        """Mean log10 gradient norm at the farthest ``window`` distances minus at the nearest (NaN without it)."""
        if self.grad_log10.size < 2 * self.window:
            return float("nan")
        return float(self.grad_log10[-self.window:].mean() - self.grad_log10[:self.window].mean())

    @property
    def far_near_ratio(self) -> float:
        """Mean gradient norm at the farthest ``window`` distances over that at the nearest (NaN without it)."""
        if self.grad_norm.size < 2 * self.window:
            return float("nan")
        return float(self.grad_norm[-self.window:].mean() / self.grad_norm[:self.window].mean())

    def metrics(self) -> dict[str, float]:
        """``unroll_error``, ``<gate>.mean`` per quantity, ``gradient.far_near_log10`` and ``..._ratio``."""
        out = {"unroll_error": self.unroll_error}
        out.update({f"{name}.mean": float(values.mean()) for name, values in self.gates.items()})
        if self.grad_norm.size:
            out["gradient.far_near_log10"] = self.far_near_log10
            out["gradient.far_near_ratio"] = self.far_near_ratio
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the gate arrays included: a few samples x steps x units)."""
        out = to_jsonable(self)
        out["far_near_log10"] = to_jsonable(self.far_near_log10)
        out["far_near_ratio"] = to_jsonable(self.far_near_ratio)
        return out


@RECURRENT_METHODS.register("recurrent-gates")
class RecurrentInternals(Method):
    """Gate activations per time step (LSTM/GRU unrolled with the module's weights) and gradient decay by distance."""

    name: ClassVar[str] = "recurrent-gates"
    kind: ClassVar[Kind] = "recurrent"
    paper: ClassVar[str] = "https://doi.org/10.1162/neco.1997.9.8.1735; https://arxiv.org/abs/1211.5063"
    result_type: ClassVar[str] = "xai.explain.recurrent:RecurrentResult"
    capabilities: ClassVar[Capabilities] = Capabilities(modalities=frozenset({"sequence", "text"}))

    class Options(Options):
        """What to unroll and how long the gradient diagnostic's sequences are."""

        layer: str | None = Field(default=None, min_length=1,
                                  description="the recurrent module (default: the first LSTM/GRU/RNN)")
        samples: int = Field(default=4, ge=1, le=64, description="samples whose gates are recorded")
        gradient: bool = Field(default=True, description="run the vanishing-gradient diagnostic (sequence inputs)")
        concat: int = Field(default=16, ge=2, le=256, description="samples joined into one long sequence")
        sequences: int = Field(default=64, ge=1, le=4096, description="long sequences the gradient is averaged over")

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """Also: the model must hold an ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``."""
        reason = super().why_not(handle)
        if reason is None and not any(isinstance(m, nn.RNNBase) for m in handle.module.modules()):
            return f"it needs an nn.LSTM, nn.GRU or nn.RNN module; {handle.name} has none"
        return reason

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> RecurrentResult:
        """Unroll the cell on the first ``samples`` rows of ``data``; the gradient diagnostic on joined rows."""
        opts = cls.parse_options(options)
        assert isinstance(opts, RecurrentInternals.Options)
        cls.check_applies(handle)
        if data is None or len(data) == 0:
            raise DataError(f"{cls.name} needs data to run the recurrent model on")
        start = time.perf_counter()
        layer = recurrent_layer(handle, opts.layer)
        module = handle.get_layer(layer)
        assert isinstance(module, nn.RNNBase)
        _check_unrollable(module)
        kind = cell_type(module)
        rows = data.head(opts.samples)
        x = rows.x.to(handle.device)
        with torch.no_grad(), eval_mode(handle.module), _InputCapture(module) as capture:
            logits = handle.module(x)
        if not capture.args:
            raise DataError(f"{layer} did not run in {handle.name}'s forward")
        seq_in = capture.args[0]
        if isinstance(seq_in, nn.utils.rnn.PackedSequence):
            raise DataError(f"{layer} reads a PackedSequence; unrolling packed sequences is not supported")
        hx = capture.args[1] if len(capture.args) > 1 else None
        with torch.no_grad():
            gates = unroll(module, seq_in, hx)
        module_out = capture.output[0]  # (B, T, H) or (T, B, H)
        if not module.batch_first:
            module_out = module_out.transpose(0, 1)
        # a stacked module's output is its last layer's hidden states: the check needs the last layer
        check = gates if module.num_layers == 1 else unroll(module, seq_in, hx, layer=-1)
        error = float((check["hidden"] - module_out).abs().max())
        notes: list[str] = []
        norms = np.zeros(0)
        logs = np.zeros(0)
        window = int(seq_in.shape[1] if module.batch_first else seq_in.shape[0])
        sequences = 0
        if opts.gradient:
            if handle.modality != "sequence" or not data.x.is_floating_point():
                notes.append("gradient diagnostic skipped: it joins float (N, T, F) sequences, "
                             f"{handle.name} reads {handle.modality} inputs")
            else:
                long = long_sequences(data, opts.sequences, opts.concat, seed)
                per_sequence, _ = gradient_by_distance(handle, long)  # (N, D)
                norms = per_sequence.mean(0)
                logs = np.log10(np.maximum(per_sequence, 1e-300)).mean(0)
                window, sequences = int(data.x.shape[1]), len(long)
        classes = rows.class_names or handle.class_names
        predicted = handle.predicted_target(logits).cpu().tolist()
        return RecurrentResult(
            model=handle.name,
            layer=layer,
            cell=kind,
            rows=tuple(range(len(rows))),
            labels=tuple(_name(classes, int(v)) for v in rows.y.tolist()) if rows.y.ndim == 1 else (),
            predicted=tuple(_name(classes, int(v)) for v in predicted),
            gates={name: v.detach().cpu().float().numpy() for name, v in gates.items()},
            step_means={name: v.detach().cpu().double().mean(dim=(0, 2)).numpy() for name, v in gates.items()},
            unroll_error=error,
            grad_norm=norms,
            grad_log10=logs,
            window=window,
            sequences=sequences,
            provenance=Provenance(model_sha256=handle.sha256, data_sha256=rows.sha256, seed=seed,
                                  wall_seconds=round(time.perf_counter() - start, 4), device=str(handle.device)),
            notes=tuple(notes),
        )


def _name(classes: tuple[str, ...] | list[str], index: int) -> str:
    return str(classes[index]) if 0 <= index < len(classes) else str(index)

