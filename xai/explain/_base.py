"""The explainer protocol, its result object and the registry."""

from __future__ import annotations

import time
import warnings
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field

from xai._method import ALL_TASKS, Capabilities, Kind, Method, Options
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._index import EXPLAINERS
from xai.zoo.handle import ModalitySplit, ModelHandle, eval_mode

TargetChoice = Literal["predicted", "label"] | int


class ExplainerOptions(Options):
    """Options every explainer takes: which output to explain."""

    #: ``predicted`` (the model's own answer), ``label`` (the true class) or a class index.
    target: Literal["predicted", "label"] | int = Field(default="predicted")


@dataclass(frozen=True, eq=False)
class AttributionResult:
    """Attributions for ``N`` samples, with what was explained and on what.

    Attributes
    ----------
    attributions
        Same shape as ``inputs``: ``(N, C, H, W)`` or ``(N, F)``.
    column_attributions
        Tabular (and named state variables) only: attributions summed over the input
        columns of each raw column ``(N, len(column_names))`` (one-hot levels add up to
        their column).
    convergence_delta
        Integrated Gradients' completeness gap per sample, when the method has one.
    tokens
        Text: the token strings of each sample (``module.tokenizer.tokens``), for heat
        maps; padding left out, so a row's first ``len(tokens[i])`` scores are its tokens'.
        Multimodal (packed image + question): the question's words.
    token_attributions
        Multimodal only: each question word's score ``(N, L)`` (first ``len(tokens[i])``
        entries), split out of ``attributions`` by the model's ``split_modalities``.
    question_share
        Multimodal only: ``sum |word scores| / (sum |word scores| + sum |image attributions|)``
        per sample ``(N,)``; near 0 the answer was read off the image, near 1 off the
        question alone (a language prior).
    image_channels
        Multimodal only: the first ``image_channels`` input channels are the image (for maps).
    probabilities
        Classifiers: the model's probability of each sample's predicted class ``(N,)``
        (softmax over the class scores, sigmoid of a single logit), for the report's
        captions; ``None`` where the output is not a class score vector. No gate reads it.
    """

    method: str
    model: str
    modality: str
    inputs: np.ndarray
    attributions: np.ndarray
    targets: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    options: dict[str, Any]
    provenance: Provenance
    feature_names: tuple[str, ...] = ()
    column_names: tuple[str, ...] = ()
    column_attributions: np.ndarray | None = None
    convergence_delta: np.ndarray | None = None
    tokens: tuple[tuple[str, ...], ...] = ()
    #: Names of the dataset's labels when they differ from the targets' (``class_names``),
    #: e.g. digits explained through a GAN discriminator's single "real" target.
    label_names: tuple[str, ...] = ()
    token_attributions: np.ndarray | None = None
    question_share: np.ndarray | None = None
    image_channels: int = 0
    probabilities: np.ndarray | None = None

    def name_of(self, kind: Literal["label", "prediction", "target"], i: int) -> str:
        """Display name of sample ``i``'s label, predicted target or explained target."""
        names = (self.label_names or self.class_names) if kind == "label" else self.class_names
        index = int({"label": self.labels, "prediction": self.predictions, "target": self.targets}[kind][i])
        return names[index] if 0 <= index < len(names) else str(index)

    def column_importance(self) -> dict[str, float]:
        """Mean absolute attribution per raw column, largest first (tabular)."""
        if self.column_attributions is None:
            return {}
        scores = np.abs(self.column_attributions).mean(axis=0)
        order = np.argsort(-scores, kind="stable")
        return {self.column_names[i]: float(scores[i]) for i in order}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as nested lists)."""
        out = to_jsonable(self)
        out["column_importance"] = self.column_importance()
        return out

    def metrics(self) -> dict[str, float]:
        """Gate names relative to ``explain.<method>``: the per-sample diagnostics, as mean and max of |x|.

        ``mean_abs_convergence_delta`` (Integrated Gradients' completeness gap) and, for packed
        image + question inputs, ``mean_abs_question_share``. (``sensitive_share`` needs the
        audit's sensitive columns: :func:`xai.audit.metrics.sensitive_share` adds it.)
        """
        out: dict[str, float] = {}
        for name in ("convergence_delta", "question_share"):
            value = getattr(self, name)
            if value is not None and np.asarray(value).size:
                magnitude = np.abs(np.asarray(value, dtype=np.float64).reshape(-1))
                out[f"mean_abs_{name}"] = float(magnitude.mean())
                out[f"max_abs_{name}"] = float(magnitude.max())
        return out


class Explainer(Method):
    """One attribution method bound to one model.

    Subclasses declare their :class:`~xai._method.Capabilities` and their ``Options``
    model, fill option defaults that depend on the model in :meth:`resolve`, and
    implement :meth:`attribute` for a batch; :meth:`explain` streams a dataset through it
    and :meth:`run` is the one protocol call the runner and the CLI use.
    """

    kind: ClassVar[Kind] = "explain"
    result_type: ClassVar[str] = "xai.explain._base:AttributionResult"
    default: ClassVar[bool] = True
    #: Any task whose targets adapter turns outputs into one scalar per sample.
    capabilities: ClassVar[Capabilities] = Capabilities(
        tasks=ALL_TASKS - {"embedding"}, modalities=frozenset({"image", "tabular", "sequence", "state", "multimodal"}))
    Options: ClassVar[type[Options]] = ExplainerOptions
    #: How one-hot levels of a raw column add up: ``sum`` of every level (methods with a
    #: baseline, where absent levels carry signal) or only the row's ``active`` level
    #: (pure gradients, where absent levels would only add noise).
    column_reduce: ClassVar[Literal["sum", "active"]] = "sum"
    #: Whether :meth:`attribute` wants its input to require grad (gradient-of-input methods);
    #: path and perturbation methods build their own inputs, and tracking the original
    #: through their construction only costs time.
    input_grad: ClassVar[bool] = True

    def __init__(self, handle: ModelHandle, options: BaseModel | Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        self.check_applies(handle)
        self.handle = handle
        parsed = self.parse_options(options, **kwargs)
        self.target: TargetChoice = getattr(parsed, "target", "predicted")
        #: The resolved options, as recorded in the result (without ``target``).
        self.options: dict[str, Any] = self.resolve(parsed)

    def resolve(self, options: Any) -> dict[str, Any]:
        """Fill defaults that depend on the model and check combinations; return a plain dict.

        The base keeps every field but ``target`` as it is.
        """
        return options.model_dump(exclude={"target"})

    @classmethod
    def run(
            cls, handle: ModelHandle, data: Dataset | None, options: Any = None, seed: int = 0) -> AttributionResult:
        """Explain every row of ``data`` (the protocol entry point)."""
        if data is None:
            raise DataError(f"{cls.name} needs data to explain")
        explainer = cls(handle, options)
        return explainer.explain(data, target=explainer.target, seed=seed)

    @abstractmethod
    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Attributions for one batch ``x`` (on the model's device), same shape as ``x``."""

    def convergence(self) -> torch.Tensor | None:
        """Per-sample completeness gap of the last :meth:`attribute` call, if any."""
        return None

    def prepare(self, data: Dataset) -> None:  # noqa: B027  (optional hook)
        """Look at the whole dataset once before batching (e.g. to fix a baseline)."""

    def attribute_all(self, x: torch.Tensor, targets: torch.Tensor, *,
                      batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attributions (and completeness gaps, if any) for every row of ``x``, in batches.

        Runs in eval mode on the model's device and returns CPU float tensors; call
        :meth:`prepare` first when the method fixes something on the whole data.
        """
        device = self.handle.device
        attributions, deltas = [], []
        with eval_mode(self.handle.module):
            for begin in range(0, len(x), batch_size):
                xb = x[begin:begin + batch_size].to(device).requires_grad_(self.input_grad)
                tb = targets[begin:begin + batch_size].to(device)
                attributions.append(self.attribute(xb, tb).detach().float().cpu())
                delta = self.convergence()
                if delta is not None:
                    deltas.append(delta.detach().float().cpu())
        return torch.cat(attributions), (torch.cat(deltas) if deltas else None)

    def explain(
        self,
        data: Dataset,
        *,
        target: TargetChoice = "predicted",
        batch_size: int = 64,
        seed: int = 0,
    ) -> AttributionResult:
        """Attribute every row of ``data``, streaming batches through the model."""
        if len(data) == 0:
            raise DataError("no samples to explain")
        start = time.perf_counter()
        handle = self.handle
        device = handle.device
        predictions, probabilities = _predict(handle, data.x)
        targets = _choose_targets(target, predictions, data.y, len(handle.target_names))
        with seeded(seed, device):
            self.prepare(data)
            attr_tensor, delta_tensor = self.attribute_all(data.x, targets, batch_size=batch_size)
        attr = attr_tensor.numpy()
        split = handle.split_modalities(data.x.numpy(), attr) if handle.split_modalities else None
        column_names, column_attr = _columns(data, attr, self.column_reduce)
        provenance = Provenance(
            model_sha256=handle.sha256,
            data_sha256=data.sha256,
            seed=seed,
            wall_seconds=round(time.perf_counter() - start, 4),
            device=str(device),
        )
        return AttributionResult(
            method=self.name,
            model=handle.name,
            modality=handle.modality,
            inputs=data.x.numpy(),
            attributions=attr,
            targets=targets.numpy(),
            predictions=predictions.numpy(),
            labels=data.y.numpy(),
            class_names=handle.target_names,
            options={"target": target, **self.options},
            provenance=provenance,
            feature_names=data.feature_names,
            column_names=column_names,
            column_attributions=column_attr,
            convergence_delta=delta_tensor.numpy() if delta_tensor is not None else None,
            tokens=split.tokens if split is not None else token_strings(handle, data.x),
            label_names=data.class_names if data.class_names != handle.target_names else (),
            token_attributions=split.token_attributions if split is not None else None,
            question_share=_question_share(split) if split is not None else None,
            image_channels=split.image_inputs.shape[1] if split is not None else 0,
            probabilities=probabilities,
        )


_CLASS_TASKS = frozenset({"classification", "binary-classification"})


def _predict(handle: ModelHandle, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray | None]:
    """Predicted targets ``(N,)`` and, for a classifier scoring every class, each one's probability ``(N,)``.

    One forward pass: the targets come from the same outputs the probabilities do, through
    the handle's own ``predicted_target`` (so they equal :meth:`ModelHandle.predict_targets`).
    """
    if handle.task not in _CLASS_TASKS:
        return handle.predict_targets(x), None
    try:
        outputs = handle.predict(x)  # (N, C) class scores
    except (AttributeError, TypeError, RuntimeError, ValueError):  # a structured output (tuple, dict): no scores
        return handle.predict_targets(x), None
    predictions = handle.predicted_target(outputs).cpu()
    if outputs.ndim != 2 or len(outputs) != len(predictions):
        return predictions, None
    if outputs.shape[1] == 1:  # one logit: the positive class's probability is its sigmoid
        positive = torch.sigmoid(outputs[:, 0])
        chosen = torch.where(predictions.reshape(-1) > 0, positive, 1 - positive)
    else:
        probs = torch.softmax(outputs.double(), dim=1)  # (N, C)
        index = predictions.reshape(-1).long().clamp(0, outputs.shape[1] - 1)
        chosen = probs.gather(1, index[:, None])[:, 0]
    return predictions, chosen.double().numpy()


def _question_share(split: ModalitySplit) -> np.ndarray:
    words = np.abs(split.token_attributions).sum(1).astype(np.float64)
    image = np.abs(split.image_attributions).reshape(len(words), -1).sum(1)
    total = words + image
    return np.divide(words, total, out=np.zeros_like(words), where=total > 0)


def token_strings(handle: ModelHandle, x: torch.Tensor) -> tuple[tuple[str, ...], ...]:
    """Each row's token strings for a text model with a ``tokenizer`` (else ``()``)."""
    tokens = getattr(getattr(handle.module, "tokenizer", None), "tokens", None)
    if handle.modality != "text" or not callable(tokens) or x.is_floating_point():
        return ()
    return tuple(tuple(str(t) for t in tokens(row)) for row in x.cpu())


def _choose_targets(target: TargetChoice, predictions: torch.Tensor, labels: torch.Tensor,
                    n_classes: int) -> torch.Tensor:
    if target == "predicted":
        return predictions.clone()
    if target == "label":
        return labels.clone()
    if isinstance(target, int) and not isinstance(target, bool) and 0 <= target < n_classes:
        return torch.full_like(predictions, target)
    raise DataError(f"target must be 'predicted', 'label' or a class index 0..{n_classes - 1}, "
                    f"got {target!r}")


def _columns(data: Dataset, attr: np.ndarray,
             reduce: Literal["sum", "active"]) -> tuple[tuple[str, ...], np.ndarray | None]:
    if data.modality not in ("tabular", "state") or not data.feature_columns:
        return (), None
    names = tuple(dict.fromkeys(data.feature_columns))
    index = {name: i for i, name in enumerate(names)}
    member = np.zeros((attr.shape[1], len(names)), dtype=np.float32)
    for j, column in enumerate(data.feature_columns):
        member[j, index[column]] = 1.0
    if reduce == "active":
        one_hot = member[:, member.sum(0) > 1].sum(1) > 0  # (F,) inputs that are levels
        weight = np.where(one_hot[None, :], data.x.numpy(), 1.0)  # (N, F)
        attr = attr * weight
    return names, attr @ member  # (N, F) @ (F, columns)




def register_explainer(name: str) -> Callable[[type[Explainer]], type[Explainer]]:
    """Class decorator: register an :class:`Explainer` under ``name``."""

    def decorator(cls: type[Explainer]) -> type[Explainer]:
        cls.name = name
        return EXPLAINERS.register(name)(cls)

    return decorator


def list_explainers(pattern: str = "*", handle: ModelHandle | None = None) -> list[str]:
    """Registered explainer names; with ``handle``, only those that apply to it."""
    names = EXPLAINERS.names(pattern)
    if handle is None:
        return names
    return [n for n in names if EXPLAINERS.get(n).why_not(handle) is None]


def create_explainer(name: str, handle: ModelHandle, **options: Any) -> Explainer:
    """Build explainer ``name`` for ``handle`` (errors say why it does not apply)."""
    return EXPLAINERS.get(name)(handle, **options)


class TargetModule(torch.nn.Module):
    """``handle.forward_target`` as an ``nn.Module`` for captum methods that need one.

    DeepLift and guided backpropagation hook the nonlinearities they find in
    ``model.modules()``; wrapping keeps the model as a child (not a copy), so the hooks
    land on its own ReLUs and are removed by captum after each call.
    """

    def __init__(self, handle: ModelHandle) -> None:
        super().__init__()
        self.model = handle.module
        self._targets = handle.targets

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One scalar per sample ``(B,)``: the explained output."""
        return self._targets(self.model(x), target)


@contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Seed torch's and NumPy's global generators inside the block, restoring them after.

    captum draws from both (GradientSHAP picks baselines with NumPy), so a run is
    reproducible from its seed without changing the caller's random state.
    """
    state = np.random.get_state()
    devices = [device] if device is not None and device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            np.random.seed(seed)
            yield
    finally:
        np.random.set_state(state)


@contextmanager
def quiet_hook_warnings() -> Iterator[None]:
    """Silence captum's notes that it sets (and will remove) hooks on activations."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Setting (forward, )?backward hooks", category=UserWarning)
        yield


def data_baseline(kind: str, data: Dataset) -> torch.Tensor:
    """A ``(1, ...)`` reference input: ``zeros`` or the ``mean`` row of ``data``."""
    if kind == "mean":
        return data.x.float().mean(0, keepdim=True)
    return torch.zeros((1, *data.x.shape[1:]))
