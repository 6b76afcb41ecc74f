"""``ModelHandle``: a model plus what explainers and probes need to use it."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, get_args

import numpy as np
import torch
from torch import nn

from xai._typing import Modality, Task
from xai.errors import DataError, ModelLoadError, UnknownNameError

Target = int | torch.Tensor | None


class TargetsAdapter(Protocol):
    """Turns a model output into one scalar per sample ("explain this output")."""

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``(B, ...)`` output and ``(B,)`` targets -> ``(B,)`` scalars."""
        ...


def class_logit(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The logit of class ``target[i]`` for each sample ``i``."""
    if output.ndim != 2:
        raise DataError(f"a class-logit target needs (batch, classes) outputs, got "
                        f"{tuple(output.shape)}")
    return output.gather(1, target.view(-1, 1).to(output.device)).squeeze(1)  # (B,)


def arg_max(output: torch.Tensor) -> torch.Tensor:
    """The predicted class of each sample: the arg-max over ``(batch, classes)`` outputs."""
    return output.argmax(1)


TARGETS_BY_TASK: dict[str, TargetsAdapter] = {
    "classification": class_logit,
    "binary-classification": class_logit,
}


class ModalitySplit(NamedTuple):
    """Packed multimodal inputs and their attributions, split into image and question.

    ``image_inputs`` / ``image_attributions`` are ``(N, C, H, W)``, the first ``C`` channels
    of the packed input; ``tokens`` holds each
    question's words (padding dropped) and ``token_attributions`` ``(N, L)`` their scores,
    a row's first ``len(tokens[i])`` entries being its words' (the text-model convention).
    """

    image_inputs: np.ndarray
    image_attributions: np.ndarray
    tokens: tuple[tuple[str, ...], ...]
    token_attributions: np.ndarray


def set_eval(module: nn.Module) -> None:
    """``module.eval()``, except for exported programs, which are frozen in their mode."""
    try:
        module.eval()
    except NotImplementedError:  # torch.export's module() refuses train()/eval()
        pass


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode and restore each submodule's own mode afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    set_eval(module)
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


#: Module types worth explaining when a model names no layers of its own (grad-cam, probes read these).
EXPLAINABLE_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.MultiheadAttention)


def explainable_layers(module: nn.Module) -> tuple[str, ...]:
    """Names of ``module``'s convolutions, linear and attention layers, in definition order."""
    return tuple(n for n, m in module.named_modules() if isinstance(m, EXPLAINABLE_LAYERS))


_MODALITY_BY_RANK = {1: "tabular", 3: "image"}


@dataclass(frozen=True)
class ImageConfig:
    """How raw images in ``[0, 1]`` become this model's inputs (the architecture's own data config).

    Data sources resize to ``input_size`` and normalise with ``mean`` / ``std``, so a
    ``Dataset`` handed to the model is model-ready (see :func:`xai.sources.prepare_images`).
    """

    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"input_size": list(self.input_size), "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation}


@dataclass(frozen=True)
class TokenGrid:
    """Maps a transformer layer's token output onto a ``(B, D, h, w)`` grid and back (for CAM methods).

    ``prefix`` leading tokens (class / distillation tokens) are dropped from the grid and kept
    as they are on the way back. ``channels_last`` layers (Swin) output ``(B, h, w, D)`` already
    on a grid; the others ``(B, T, D)`` with ``T - prefix`` tokens on a square (or
    ``grid``-shaped) patch grid.
    """

    prefix: int = 1
    channels_last: bool = False
    grid: tuple[int, int] | None = None

    def to_grid(self, out: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` or ``(B, h, w, D)`` -> ``(B, D, h, w)``."""
        if self.channels_last:
            return out.permute(0, 3, 1, 2)
        tokens = out[:, self.prefix:]  # (B, h*w, D)
        b, n, d = tokens.shape
        h, w = self.grid or (int(round(n ** 0.5)),) * 2
        if h * w != n:
            raise DataError(f"{n} tokens do not form a {h}x{w} patch grid")
        return tokens.reshape(b, h, w, d).permute(0, 3, 1, 2)

    def from_grid(self, grid: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_grid`: ``(B, D, h, w)`` back to ``out``'s layout (prefix tokens from ``out``)."""
        if self.channels_last:
            return grid.permute(0, 2, 3, 1)
        b, d = grid.shape[:2]
        tokens = grid.permute(0, 2, 3, 1).reshape(b, -1, d)  # (B, h*w, D)
        return torch.cat([out[:, :self.prefix], tokens], dim=1)


@dataclass(eq=False)
class ModelHandle:
    """Any model wrapped with its task, input spec, classes and targets adapter.

    Attributes
    ----------
    source
        How it was loaded (``zoo:lenet``, ``torchscript:model.pt`` ...).
    sha256
        Hash of the weights that were loaded (file hash where there is one).
    dataset
        The bundled dataset this model is audited on by default.
    layers
        Module names worth explaining.
    attention
        Module names whose outputs are attention probabilities ``(B, heads, T, T)``.
    target_names
        What each target index means for the targets adapter (a class, a segmentation
        class mask, an action, a latent dimension ...); empty: the class names.
    predicted_target
        Model output -> the target index explained by default ``(B,)`` (the predicted
        class, the greedy action, ...); default arg-max over classes.
    evaluate
        ``evaluate(module, data, device)`` -> task metrics (zoo entries of non-classification
        tasks); ``None``: accuracy of the arg-max class.
    preprocess
        Raw input -> model-ready tensor, when the model expects an encoding.
    split_modalities
        Multimodal models whose inputs pack an image and a question into one tensor:
        ``(inputs, attributions)`` -> :class:`ModalitySplit` (``None`` for the others).
    image_config
        Input size, mean and std of an image model loaded from an architecture's own data
        config (timm, torchvision, Hugging Face image processors); data sources use it.
    differentiable
        ``False`` for models that give no gradients (ONNX): gradient methods refuse.
    cam_layer
        The layer CAM methods explain by default (zero configuration: the last stage).
    layer_reshapes
        Layers whose outputs are tokens, with the :class:`TokenGrid` that maps them onto a
        spatial grid (ViT, DeiT, Swin), so CAM methods can read them.
    """

    name: str
    module: nn.Module
    task: Task
    modality: Modality
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    source: str
    sha256: str
    dataset: str | None = None
    layers: tuple[str, ...] = ()
    preprocess: Callable[[Any], torch.Tensor] | None = None
    card: dict[str, Any] | None = None
    targets_adapter: TargetsAdapter = field(default=class_logit)
    attention: tuple[str, ...] = ()
    target_names: tuple[str, ...] = ()
    predicted_target: Callable[[Any], torch.Tensor] = field(default=arg_max)
    evaluate: Callable[[nn.Module, Any, torch.device], dict[str, float]] | None = None
    split_modalities: Callable[[np.ndarray, np.ndarray], ModalitySplit] | None = None
    image_config: ImageConfig | None = None
    differentiable: bool = True
    cam_layer: str | None = None
    layer_reshapes: dict[str, TokenGrid] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.target_names:
            self.target_names = self.class_names

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        *,
        task: Task | None = None,
        classes: int | Sequence[str],
        input_shape: Sequence[int],
        modality: Modality | None = None,
        layers: Sequence[str] | None = None,
        name: str | None = None,
    ) -> ModelHandle:
        """Wrap your own ``nn.Module`` (a classifier) in a handle every explainer and probe takes.

        Parameters
        ----------
        task
            Default: ``binary-classification`` with two classes, ``classification`` otherwise.
        classes
            The class names, or how many classes (named ``"0"``, ``"1"``, ...).
        input_shape
            One sample's shape, without the batch: ``(F,)`` rows, ``(C, H, W)`` images.
        modality
            Default: ``tabular`` for ``(F,)`` and ``image`` for ``(C, H, W)`` inputs.
        layers
            Module names worth explaining; default: every convolution, linear and attention
            layer (what loading a user model picks).
        name
            Default: the module's class name.

        The module is put in eval mode; ``sha256`` hashes its weights, so results record
        which weights they came from.

        Examples
        --------
        >>> from torch import nn
        >>> handle = ModelHandle.from_module(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)),
        ...                                  classes=3, input_shape=(4,))
        >>> handle.task, handle.modality, handle.layers, handle.class_names
        ('classification', 'tabular', ('0', '2'), ('0', '1', '2'))
        """
        from xai._provenance import sha256_state_dict

        if not isinstance(module, nn.Module):
            raise ModelLoadError(f"from_module takes a torch.nn.Module, got {type(module).__name__}")
        if isinstance(classes, int):
            if classes < 2:
                raise ModelLoadError(f"a classifier needs at least 2 classes, got {classes}")
            class_names = tuple(str(i) for i in range(classes))
        elif isinstance(classes, str):
            raise ModelLoadError("classes takes a count or a sequence of names, not one string")
        else:
            class_names = tuple(str(c) for c in classes)
        task = task or ("binary-classification" if len(class_names) == 2 else "classification")
        if task not in get_args(Task):
            raise ModelLoadError(f"unknown task {task!r}; known: {', '.join(get_args(Task))}")
        shape = tuple(int(d) for d in input_shape)
        modality = modality or _MODALITY_BY_RANK.get(len(shape))  # type: ignore[assignment]
        if modality is None:
            raise ModelLoadError(f"say which modality inputs of shape {shape} are ({', '.join(get_args(Modality))})")
        if modality not in get_args(Modality):
            raise ModelLoadError(f"unknown modality {modality!r}; known: {', '.join(get_args(Modality))}")
        modules = dict(module.named_modules())
        chosen = tuple(layers) if layers is not None else explainable_layers(module)
        for layer in chosen:
            if layer not in modules or layer == "":
                raise UnknownNameError("layer", layer, [n for n in modules if n])
        set_eval(module)
        return cls(
            name=name or type(module).__name__,
            module=module,
            task=task,
            modality=modality,
            input_shape=shape,
            class_names=class_names,
            source=f"module:{type(module).__module__}.{type(module).__qualname__}",
            sha256=sha256_state_dict(module),
            layers=chosen,
            targets_adapter=TARGETS_BY_TASK.get(task, class_logit),
        )

    @property
    def device(self) -> torch.device:
        """Device of the first parameter (CPU for parameter-free modules)."""
        for param in self.module.parameters():
            return param.device
        return torch.device("cpu")

    def to(self, device: torch.device) -> ModelHandle:
        """Move the module to ``device`` (in place) and return the handle."""
        self.module.to(device)
        return self

    def targets(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One scalar per sample for the requested target ``(B,)``."""
        return self.targets_adapter(output, target)

    def forward_target(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``targets(module(x), target)``: the scalar function explainers differentiate."""
        return self.targets(self.module(x), target)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Model outputs for ``x`` in eval mode, batched; returned on the CPU."""
        device = self.device
        with eval_mode(self.module):
            outs = [self.module(x[i:i + batch_size].to(device)).float().cpu()
                    for i in range(0, len(x), batch_size)]
        return torch.cat(outs) if outs else torch.empty(0)

    @torch.no_grad()
    def predict_targets(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Default target index of every sample ``(N,)`` (works for any output structure)."""
        device = self.device
        with eval_mode(self.module):
            outs = [self.predicted_target(self.module(x[i:i + batch_size].to(device))).cpu()
                    for i in range(0, len(x), batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, dtype=torch.long)

    def performance(self, data: Any) -> dict[str, float]:
        """Task metrics on ``data`` (a :class:`~xai.datasets.Dataset`): accuracy by default."""
        if self.evaluate is not None:
            with eval_mode(self.module):
                return self.evaluate(self.module, data, self.device)
        outputs = self.predict(data.x)
        return {"accuracy": float((outputs.argmax(1) == data.y).float().mean())}

    def get_layer(self, name: str) -> nn.Module:
        """Submodule ``name``; an unknown name lists the valid ones."""
        modules = dict(self.module.named_modules())
        if name not in modules or name == "":
            raise UnknownNameError("layer", name, [n for n in modules if n])
        return modules[name]


_CLASS_TASKS = ("classification", "binary-classification")


def check_model_on_data(handle: ModelHandle, data: Any, rows: int = 4) -> None:
    """Run the model on a first batch of ``data`` and refuse a model that does not fit it.

    Cheap (two forwards on ``rows`` rows and on one row) and done before any work, so a
    mismatch is one line instead of a traceback minutes later or, worse, a silent wrong
    audit. Checked: the forward runs at two batch sizes (a TorchScript traced for another
    input size, a ``.pt2`` exported with a static batch); a classifier scores as many
    classes as the data has labels; the outputs are finite. Zoo entries of other tasks
    that bring their own ``evaluate`` call their model their own way and are not run here.

    Raises
    ------
    ModelLoadError
        Naming the model, the input shape and what went wrong.
    """
    from xai.errors import ModelLoadError

    x = getattr(data, "x", None)
    if handle.evaluate is not None or not isinstance(x, torch.Tensor) or len(x) == 0:
        return
    where = f"{handle.name} on {getattr(data, 'name', 'the data')}"
    for batch in (x[:rows], x[:1]):
        try:
            with torch.no_grad(), eval_mode(handle.module), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = handle.module(batch.to(handle.device))
        except Exception as exc:  # any failure of user code: the model cannot run on this data
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ModelLoadError(f"{where}: the model fails on inputs of shape {tuple(batch.shape)} "
                                 f"({type(exc).__name__}: {first}); was it made for other inputs "
                                 "or a fixed batch size?") from None
        if not isinstance(out, torch.Tensor):
            if handle.task in _CLASS_TASKS:
                raise ModelLoadError(f"{where}: the model returns {type(out).__name__}, not a tensor of "
                                     "class scores")
            continue
        if handle.task in _CLASS_TASKS:
            classes = len(handle.class_names)
            if out.ndim != 2 or out.shape[0] != len(batch) or out.shape[1] != classes:
                raise ModelLoadError(f"{where}: the model gives outputs of shape {tuple(out.shape)} for "
                                     f"inputs {tuple(batch.shape)}, expected ({len(batch)}, {classes}): "
                                     f"one score per class of {classes}")
            labels = getattr(data, "y", None)
            if isinstance(labels, torch.Tensor) and labels.numel() and int(labels.max()) >= classes:
                raise ModelLoadError(f"{where}: labels go up to {int(labels.max())} but the model scores "
                                     f"{classes} classes")
        if out.is_floating_point() and (torch.isnan(out).any() or not torch.isfinite(out).any()):
            raise ModelLoadError(f"{where}: the model's outputs on inputs {tuple(batch.shape)} are not "
                                 "finite (NaN or all infinite)")
