"""Feature inversion, style reconstruction and style transfer for image models.

What does a layer keep of its input? Three optimisations on the *input* of a frozen model
answer it:

- :func:`invert` (Mahendran & Vedaldi 2015, https://arxiv.org/abs/1412.0035): find an
  image whose features at layer L match those of a target image ``x0``, minimising
  ``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + tv * TV(x)`` from seeded noise. The relative
  feature error ``||phi(x) - phi(x0)|| / ||phi(x0)||`` it reaches says how well the layer's
  features pin the image down; :func:`invert_layers` runs it for every layer (a gallery
  "what this layer keeps").
- :func:`style_reconstruction` (Gatys et al. 2015, https://arxiv.org/abs/1505.07376):
  match only the Gram matrices ``G = F F^T / (H W)`` of one or more layers, which keeps
  textures and drops the layout.
- :func:`style_transfer` (Gatys et al. 2016, https://arxiv.org/abs/1508.06576): start from
  the content image and minimise ``content_weight * content loss + style_weight * style
  loss``; random-weight shallow nets texture well (Ustyuzhaninov et al. 2016,
  https://arxiv.org/abs/1606.00021), so any image CNN of the zoo serves.

The model is never changed: it runs in eval mode inside :func:`eval_mode`, gradients are
taken with :func:`torch.autograd.grad` with respect to the image only, and every hook is a
:class:`LayerCapture` context manager, always removed.

Examples
--------
>>> from xai.zoo import load_model
>>> r = invert(load_model("lenet"), "conv1", image=0, steps=50)
>>> r.relative_error < 0.1  # conv1 features pin the digit down
True
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from xai._device import single_cpu_thread
from xai._features import gram_matrix
from xai._method import Capabilities, Method, Options
from xai._method import Kind as MethodKind
from xai._provenance import Provenance, sha256_array
from xai._results import to_jsonable
from xai.datasets import Dataset, load_dataset
from xai.errors import DataError, NotApplicableError
from xai.explain._index import INVERSIONS
from xai.explain.dream import PARAMETRISATIONS, LayerCapture, Parametrisation, _Fourier, _Pixel, total_variation
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = [
    "Invert",
    "InversionGallery",
    "InversionResult",
    "gram_matrix",
    "invert",
    "invert_layers",
    "load_image",
    "style_reconstruction",
    "style_transfer",
]

Kind = Literal["features", "style", "transfer"]
ImageSpec = int | str | Path | torch.Tensor | None


# ---------------------------------------------------------------- inputs


def load_image(path: str | Path, shape: Sequence[int], lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """A PNG/JPEG file as a model input ``(1, C, H, W)`` in ``[lo, hi]``.

    Pillow reads it, converts it to grey (``C == 1``) or RGB (``C == 3``), resizes it to
    ``H x W`` (bicubic) and maps 0..255 linearly onto ``[lo, hi]``. Anything Pillow cannot
    read is a :class:`DataError`.
    """
    from PIL import Image, UnidentifiedImageError

    c, h, w = (int(s) for s in shape)
    if c not in (1, 3):
        raise DataError(f"an image file can only feed a 1- or 3-channel input, the model takes {c}")
    file = Path(path)
    if not file.is_file():
        raise DataError(f"image file {str(file)!r} does not exist")
    try:
        with Image.open(file) as img:
            resized = img.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BICUBIC)
            array = np.asarray(resized, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read {str(file)!r} as an image: {exc}") from None
    chw = array[None] if c == 1 else array.transpose(2, 0, 1)  # (C, H, W)
    return torch.from_numpy(lo + (hi - lo) * chw).unsqueeze(0).float()


@dataclass(frozen=True)
class _Source:
    image: torch.Tensor  # (1, C, H, W)
    name: str  # "digits test #3" or the file name
    sha256: str


def _data_range(handle: ModelHandle, data: Dataset | None) -> tuple[float, float]:
    if data is not None and handle.modality == "image":
        return float(data.x.min()), float(data.x.max())
    return 0.0, 1.0


def _resolve(handle: ModelHandle, spec: ImageSpec, data: Dataset | None, lo: float, hi: float,
             what: str = "image") -> _Source:
    """A test sample by index (default 0), a file, or a tensor -> ``(1, C, H, W)``."""
    shape = tuple(handle.input_shape)
    if isinstance(spec, torch.Tensor):
        image = spec.detach().float().reshape(1, *shape) if spec.numel() == int(np.prod(shape)) else None
        if image is None:
            raise DataError(f"the {what} tensor has shape {tuple(spec.shape)}, the model takes {shape}")
        return _Source(image, "tensor", sha256_array(image))
    if isinstance(spec, str | Path):
        image = load_image(spec, shape, lo, hi)
        return _Source(image, Path(spec).name, sha256_array(image))
    index = 0 if spec is None else int(spec)
    if data is None:
        raise DataError(f"{handle.name} names no dataset: pass an image file")
    if not 0 <= index < len(data):
        raise DataError(f"sample {index} is out of range: the {data.name} {data.split} split has "
                        f"{len(data)} images (0..{len(data) - 1})")
    image = data.x[index:index + 1].float().clone()
    return _Source(image, f"{data.name} {data.split} #{index}", sha256_array(image))


def _default_data(handle: ModelHandle, data: Dataset | None, needed: bool) -> Dataset | None:
    if data is not None or handle.dataset is None:
        return data
    return load_dataset(handle.dataset, "test") if needed or handle.modality == "image" else None


# ---------------------------------------------------------------- features


class _Features:
    """Layer activations of a batch of images through several :class:`LayerCapture` hooks."""

    def __init__(self, handle: ModelHandle, captures: dict[str, LayerCapture]) -> None:
        self.handle, self.captures = handle, captures

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.handle.module(x)
        out = {}
        for name, cap in self.captures.items():
            assert cap.output is not None
            out[name] = cap.output
        return out


@contextmanager
def _features(handle: ModelHandle, layers: Sequence[str]) -> Iterator[_Features]:
    with ExitStack() as stack:
        captures = {name: stack.enter_context(LayerCapture(handle.get_layer(name)))
                    for name in dict.fromkeys(layers)}
        yield _Features(handle, captures)


def _relative(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a - b|| / ||b||`` per sample ``(B,)`` (0 when both vanish)."""
    diff = (a - b).flatten(1).norm(dim=1)
    norm = b.flatten(1).norm(dim=1)
    return torch.where(norm > 0, diff / norm.clamp_min(1e-12), diff)


# ---------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class InversionResult:
    """An image optimised to match a target's features, Gram matrices, or both.

    Attributes
    ----------
    kind
        ``features`` (:func:`invert`), ``style`` (:func:`style_reconstruction`) or
        ``transfer`` (:func:`style_transfer`).
    layers
        The layers whose features (``features``, ``transfer``'s content) or Gram matrices
        (``style``) were matched; ``style_layers`` the Gram layers of a transfer.
    reconstruction, start_image
        The final image and where the optimisation started ``(1, C, H, W)``.
    target, style_image
        The image whose features are matched (the content image of a transfer) and the
        style image (``style``: the image whose Gram matrices are matched).
    trace
        The objective (without the TV penalty) at every step.
    error_trace
        ``features``: the relative feature error ``||phi(x) - phi(x0)|| / ||phi(x0)||`` at
        every step (of the image the step started from); else the relative Gram error
        summed over style layers.
    relative_error
        The final relative feature error (``features``, ``transfer``: of the content layer).
    layer_errors
        Final relative error per layer: features for ``features``, Gram matrices
        ``||G(x) - G(s)|| / ||G(s)||`` for the style layers of ``style`` and ``transfer``.
    content_loss, style_loss
        ``transfer`` (and ``style``: style loss only): the final, unweighted losses;
        ``*_start`` the same on the start image.
    """

    model: str
    kind: str
    layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    param: str
    reconstruction: np.ndarray
    start_image: np.ndarray
    target: np.ndarray
    target_name: str
    style_image: np.ndarray | None
    style_name: str | None
    trace: np.ndarray
    error_trace: np.ndarray
    relative_error: float
    layer_errors: dict[str, float]
    content_loss: float | None
    style_loss: float | None
    content_loss_start: float | None
    style_loss_start: float | None
    options: dict[str, Any]
    provenance: Provenance
    notes: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """Short name: ``conv1`` (features), ``style.conv1+conv2``, ``transfer.conv2``."""
        joined = "+".join(self.layers)
        return joined if self.kind == "features" else f"{self.kind}.{joined}"

    def metrics(self) -> dict[str, float]:
        """Named scalars: ``invert.<layer>.relative_error``, ``style.<layer>.gram_error``, ``transfer.*``."""
        out: dict[str, float] = {}
        if self.kind == "features":
            for layer, err in self.layer_errors.items():
                out[f"invert.{layer}.relative_error"] = err
            return out
        prefix = "style" if self.kind == "style" else "transfer"
        for layer, err in self.layer_errors.items():
            out[f"{prefix}.{layer}.gram_error"] = err
        if self.kind == "transfer":
            out[f"transfer.{self.layers[0]}.relative_error"] = self.relative_error
            if self.content_loss is not None:
                out["transfer.content_loss"] = self.content_loss
        if self.style_loss is not None:
            out[f"{prefix}.style_loss"] = self.style_loss
            if self.style_loss_start:
                out[f"{prefix}.style_loss_ratio"] = self.style_loss / self.style_loss_start
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as nested lists), with the metrics."""
        out = to_jsonable(self)
        out["name"] = self.name
        out["metrics"] = to_jsonable(self.metrics())
        return out


@dataclass(frozen=True, eq=False)
class InversionGallery:
    """One feature inversion of the same image per layer: "what this layer keeps"."""

    model: str
    results: tuple[InversionResult, ...]

    @property
    def layers(self) -> tuple[str, ...]:
        """The inverted layers, in order."""
        return tuple(r.layers[0] for r in self.results)

    def metrics(self) -> dict[str, float]:
        """Every result's metrics, merged."""
        out: dict[str, float] = {}
        for r in self.results:
            out.update(r.metrics())
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"model": self.model, "kind": "gallery", "layers": list(self.layers),
                "metrics": to_jsonable(self.metrics()), "results": [r.to_dict() for r in self.results]}


# ---------------------------------------------------------------- the optimisation


def _check(handle: ModelHandle, layers: Sequence[str], steps: int, lr: float, tv: float, param: str) -> None:
    reason = Invert.why_not(handle)
    if reason:
        raise NotApplicableError(f"inversion does not apply to {handle.name}: {reason}")
    if not layers:
        raise DataError(f"name at least one layer; {handle.name} suggests {', '.join(handle.layers) or 'none'}")
    for layer in layers:
        handle.get_layer(layer)  # an unknown name lists the valid ones
    if steps < 1 or lr <= 0 or tv < 0:
        raise DataError("steps must be >= 1, lr > 0 and tv >= 0")
    if param not in PARAMETRISATIONS:
        raise DataError(f"param must be one of {', '.join(PARAMETRISATIONS)}, got {param!r}")


def _noise(shape: tuple[int, ...], like: torch.Tensor, lo: float, hi: float, seed: int, noise: float) -> torch.Tensor:
    """Seeded noise around the target's mean intensity per channel, clamped to ``[lo, hi]``."""
    gen = torch.Generator().manual_seed(seed)
    mean = like.float().mean(dim=(0, 2, 3)).view(1, -1, 1, 1)  # (1, C, 1, 1)
    return (mean + noise * (hi - lo) * torch.randn((1, *shape), generator=gen)).clamp(lo, hi)


def _optimise(start: torch.Tensor, objective: Any, *, steps: int, lr: float, tv: float, param: str,
              lo: float, hi: float) -> tuple[torch.Tensor, list[float], list[float]]:
    """Adam on the image parametrisation; ``objective(x) -> (loss, error)`` scalars."""
    parametrised = _Pixel(start, lo, hi) if param == "pixel" else _Fourier(start, lo, hi)
    optimiser = torch.optim.Adam([parametrised.param], lr=lr)
    trace: list[float] = []
    errors: list[float] = []
    for _ in range(steps):
        x = parametrised.image()  # (1, C, H, W)
        loss, error = objective(x)
        total = loss + tv * total_variation(x).sum() if tv else loss
        (grad,) = torch.autograd.grad(total, [parametrised.param])  # the model gets no .grad
        parametrised.param.grad = grad
        optimiser.step()
        parametrised.project()
        trace.append(float(loss.detach()))
        errors.append(float(error))
    with torch.no_grad():
        return parametrised.image().detach(), trace, errors


def _threads(device: torch.device) -> Any:
    # One image through a small net: on the CPU, intra-op threads only add synchronisation.
    return single_cpu_thread() if device.type == "cpu" else nullcontext()


def _provenance(handle: ModelHandle, data_sha: str, seed: int, clock: float) -> Provenance:
    return Provenance(model_sha256=handle.sha256, data_sha256=data_sha, seed=seed,
                      wall_seconds=round(time.perf_counter() - clock, 4), device=str(handle.device))


def invert(
    handle: ModelHandle,
    layer: str,
    *,
    image: ImageSpec = None,
    steps: int = 300,
    lr: float = 0.05,
    tv: float = 0.02,
    param: str = "pixel",
    noise: float = 0.1,
    data: Dataset | None = None,
    seed: int = 0,
) -> InversionResult:
    """Reconstruct an image from its features at ``layer`` (Mahendran & Vedaldi 2015).

    Parameters
    ----------
    layer
        Module name (``handle.get_layer`` lists the valid ones).
    image
        The target ``x0``: a test-split index of the model's dataset (default 0), a PNG/JPEG
        path (converted to the model's input shape and range) or a tensor.
    steps, lr
        Adam steps and learning rate on the image.
    tv
        Weight of the total-variation prior (mean absolute neighbour difference) that
        keeps the reconstruction natural where the features do not constrain it.
    param
        ``pixel`` (the image, clamped to the data range) or ``fourier``.
    noise
        Standard deviation of the seeded starting noise as a fraction of the data range.
    """
    _check(handle, [layer], steps, lr, tv, param)
    data = _default_data(handle, data, needed=not isinstance(image, str | Path | torch.Tensor))
    lo, hi = _data_range(handle, data)
    source = _resolve(handle, image, data, lo, hi)
    clock = time.perf_counter()
    device = handle.device
    shape = tuple(handle.input_shape)
    target = source.image.to(device)
    start = _noise(shape, source.image, lo, hi, seed, noise).to(device)
    with _threads(device), eval_mode(handle.module), _features(handle, [layer]) as phi:
        with torch.no_grad():
            phi0 = phi(target)[layer].detach()  # (1, ...)
        norm2 = phi0.pow(2).sum().clamp_min(1e-12)

        def objective(x: torch.Tensor) -> tuple[torch.Tensor, float]:
            feats = phi(x)[layer]
            sq = (feats - phi0).pow(2).sum() / norm2
            return sq, float(sq.detach().sqrt())

        final, trace, errors = _optimise(start, objective, steps=steps, lr=lr, tv=tv, param=param, lo=lo, hi=hi)
        with torch.no_grad():
            error = float(_relative(phi(final)[layer], phi0)[0])
    notes = []
    if error >= 0.5:
        notes.append(f"the relative feature error stayed at {error:.3g}: more --steps or a larger --lr may help")
    options = {"steps": steps, "lr": lr, "tv": tv, "noise": noise, "image": source.name, "range": [lo, hi]}
    return InversionResult(
        model=handle.name, kind="features", layers=(layer,), style_layers=(), param=param,
        reconstruction=final.cpu().numpy(), start_image=start.cpu().numpy(),
        target=source.image.numpy(), target_name=source.name, style_image=None, style_name=None,
        trace=np.asarray(trace, dtype=np.float32), error_trace=np.asarray(errors, dtype=np.float32),
        relative_error=error, layer_errors={layer: error}, content_loss=None, style_loss=None,
        content_loss_start=None, style_loss_start=None, options=options,
        provenance=_provenance(handle, source.sha256, seed, clock), notes=tuple(notes))


def invert_layers(handle: ModelHandle, layers: Sequence[str] | None = None, **kwargs: Any) -> InversionGallery:
    """:func:`invert` the same image from each layer (default: the model's ``layers``)."""
    names = tuple(layers) if layers else tuple(handle.layers)
    if not names:
        raise DataError(f"{handle.name} names no layers worth explaining; pass layers")
    return InversionGallery(handle.name, tuple(invert(handle, name, **kwargs) for name in names))


def _style_terms(feats: dict[str, torch.Tensor], grams: dict[str, torch.Tensor],
                 norms: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Style loss: sum over layers of ``||G(x) - G(s)||^2 / ||G(s)||^2``; and the relative errors."""
    loss = torch.zeros(())
    rel = {}
    for name, g_s in grams.items():
        g_x = gram_matrix(feats[name])
        sq = (g_x - g_s).pow(2).sum() / norms[name]
        loss = loss.to(sq.device) + sq
        rel[name] = sq.detach().sqrt()
    return loss, rel


def style_reconstruction(
    handle: ModelHandle,
    layers: Sequence[str],
    *,
    image: ImageSpec = None,
    steps: int = 300,
    lr: float = 0.05,
    tv: float = 0.0,
    param: str = "pixel",
    noise: float = 0.1,
    data: Dataset | None = None,
    seed: int = 0,
) -> InversionResult:
    """Synthesise a texture from seeded noise that matches the Gram matrices of ``layers``.

    Gatys et al. 2015 (https://arxiv.org/abs/1505.07376). The loss is the sum over layers of
    the squared relative Gram error ``||G(x) - G(s)||^2 / ||G(s)||^2``; ``image`` as in
    :func:`invert`.
    """
    layers = tuple(dict.fromkeys(layers))
    _check(handle, layers, steps, lr, tv, param)
    data = _default_data(handle, data, needed=not isinstance(image, str | Path | torch.Tensor))
    lo, hi = _data_range(handle, data)
    source = _resolve(handle, image, data, lo, hi, "style")
    clock = time.perf_counter()
    device = handle.device
    style = source.image.to(device)
    start = _noise(tuple(handle.input_shape), source.image, lo, hi, seed, noise).to(device)
    with _threads(device), eval_mode(handle.module), _features(handle, layers) as phi:
        with torch.no_grad():
            grams = {k: gram_matrix(v).detach() for k, v in phi(style).items()}
            norms = {k: g.pow(2).sum().clamp_min(1e-12) for k, g in grams.items()}
            start_loss = float(_style_terms(phi(start), grams, norms)[0])

        def objective(x: torch.Tensor) -> tuple[torch.Tensor, float]:
            loss, rel = _style_terms(phi(x), grams, norms)
            return loss, float(sum(rel.values()))

        final, trace, errors = _optimise(start, objective, steps=steps, lr=lr, tv=tv, param=param, lo=lo, hi=hi)
        with torch.no_grad():
            end_loss_t, rel = _style_terms(phi(final), grams, norms)
    options = {"steps": steps, "lr": lr, "tv": tv, "noise": noise, "image": source.name, "range": [lo, hi]}
    layer_errors = {k: float(v) for k, v in rel.items()}
    return InversionResult(
        model=handle.name, kind="style", layers=layers, style_layers=layers, param=param,
        reconstruction=final.cpu().numpy(), start_image=start.cpu().numpy(),
        target=source.image.numpy(), target_name=source.name,
        style_image=source.image.numpy(), style_name=source.name,
        trace=np.asarray(trace, dtype=np.float32), error_trace=np.asarray(errors, dtype=np.float32),
        relative_error=float(sum(layer_errors.values())), layer_errors=layer_errors,
        content_loss=None, style_loss=float(end_loss_t), content_loss_start=None, style_loss_start=start_loss,
        options=options, provenance=_provenance(handle, source.sha256, seed, clock))


def style_transfer(
    handle: ModelHandle,
    content_layer: str,
    style_layers: Sequence[str] | None = None,
    *,
    content: ImageSpec = None,
    style: ImageSpec,
    content_weight: float = 1.0,
    style_weight: float = 10.0,
    steps: int = 300,
    lr: float = 0.02,
    tv: float = 0.0,
    param: str = "pixel",
    data: Dataset | None = None,
    seed: int = 0,
) -> InversionResult:
    """Gatys style transfer: the content image repainted with the style image's Gram matrices.

    Gatys, Ecker & Bethge 2016 (https://arxiv.org/abs/1508.06576). Starts from the content
    image and minimises ``content_weight * ||phi_L(x) - phi_L(c)||^2 / ||phi_L(c)||^2 +
    style_weight * sum_l ||G_l(x) - G_l(s)||^2 / ||G_l(s)||^2``.

    Parameters
    ----------
    content_layer
        The layer whose features keep the content.
    style_layers
        The layers whose Gram matrices carry the style (default: the model's ``layers``).
    content, style
        As ``image`` in :func:`invert` (a test index, a file or a tensor).
    """
    styles = tuple(dict.fromkeys(style_layers or handle.layers))
    _check(handle, [content_layer, *styles], steps, lr, tv, param)
    if content_weight < 0 or style_weight < 0:
        raise DataError("content and style weights must be >= 0")
    files = str | Path | torch.Tensor
    data = _default_data(handle, data, needed=not (isinstance(content, files) and isinstance(style, files)))
    lo, hi = _data_range(handle, data)
    content_src = _resolve(handle, content, data, lo, hi, "content")
    style_src = _resolve(handle, style, data, lo, hi, "style")
    clock = time.perf_counter()
    device = handle.device
    c_img, s_img = content_src.image.to(device), style_src.image.to(device)
    gen = torch.Generator().manual_seed(seed)  # a tiny seeded jitter breaks ties on flat regions
    start = (c_img + 1e-3 * (hi - lo) * torch.randn(c_img.shape, generator=gen).to(device)).clamp(lo, hi)
    with _threads(device), eval_mode(handle.module), _features(handle, [content_layer, *styles]) as phi:
        with torch.no_grad():
            phi_c = phi(c_img)[content_layer].detach()
            c_norm = phi_c.pow(2).sum().clamp_min(1e-12)
            s_feats = phi(s_img)
            grams = {k: gram_matrix(s_feats[k]).detach() for k in styles}
            norms = {k: g.pow(2).sum().clamp_min(1e-12) for k, g in grams.items()}
            f0 = phi(start)
            c_start = float((f0[content_layer] - phi_c).pow(2).sum() / c_norm)
            s_start = float(_style_terms(f0, grams, norms)[0])

        def objective(x: torch.Tensor) -> tuple[torch.Tensor, float]:
            feats = phi(x)
            c_loss = (feats[content_layer] - phi_c).pow(2).sum() / c_norm
            s_loss, rel = _style_terms(feats, grams, norms)
            return content_weight * c_loss + style_weight * s_loss, float(sum(rel.values()))

        final, trace, errors = _optimise(start, objective, steps=steps, lr=lr, tv=tv, param=param, lo=lo, hi=hi)
        with torch.no_grad():
            feats = phi(final)
            c_end = float((feats[content_layer] - phi_c).pow(2).sum() / c_norm)
            s_end_t, rel = _style_terms(feats, grams, norms)
    options = {"steps": steps, "lr": lr, "tv": tv, "content_weight": content_weight,
               "style_weight": style_weight, "content": content_src.name, "style": style_src.name,
               "range": [lo, hi]}
    return InversionResult(
        model=handle.name, kind="transfer", layers=(content_layer,), style_layers=styles, param=param,
        reconstruction=final.cpu().numpy(), start_image=start.cpu().numpy(),
        target=content_src.image.numpy(), target_name=content_src.name,
        style_image=style_src.image.numpy(), style_name=style_src.name,
        trace=np.asarray(trace, dtype=np.float32), error_trace=np.asarray(errors, dtype=np.float32),
        relative_error=float(np.sqrt(c_end)), layer_errors={k: float(v) for k, v in rel.items()},
        content_loss=c_end, style_loss=float(s_end_t), content_loss_start=c_start, style_loss_start=s_start,
        options=options,
        provenance=_provenance(handle, sha256_array(content_src.image, style_src.image), seed, clock))


# ---------------------------------------------------------------- the method


@INVERSIONS.register("feature-inversion")
class Invert(Method):
    """Feature inversion: an image reconstructed from one layer's features (Mahendran & Vedaldi 2015)."""

    name: ClassVar[str] = "feature-inversion"
    kind: ClassVar[MethodKind] = "invert"
    result_type: ClassVar[str] = "xai.explain.inversion:InversionResult"
    paper: ClassVar[str] = "Mahendran & Vedaldi 2015, Understanding Deep Image Representations by Inverting Them"
    capabilities: ClassVar[Capabilities] = Capabilities(modalities=frozenset({"image"}))

    class Options(Options):
        """One panel; the one source of :func:`invert`'s defaults (the ``[[invert]]`` spec section's keys)."""

        layer: str = Field(min_length=1)
        sample: int = Field(default=0, ge=0)
        steps: int = Field(default=300, gt=0)
        lr: float = Field(default=0.05, gt=0)
        tv: float = Field(default=0.02, ge=0)
        param: Parametrisation = "pixel"
        noise: float = Field(default=0.1, ge=0)

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """The capability check, then a ``(C, H, W)`` input shape."""
        reason = super().why_not(handle)
        if reason is None and len(handle.input_shape) != 3:
            reason = f"it needs a (C, H, W) input shape, {handle.name} has {handle.input_shape}"
        return reason

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> InversionResult:
        """:func:`invert` of test sample ``options.sample`` of ``data`` (default: the model's test split)."""
        opts = cls.parse_options(options)
        assert isinstance(opts, Invert.Options)
        return invert(handle, opts.layer, image=opts.sample, data=data, steps=opts.steps, lr=opts.lr, tv=opts.tv,
                      param=opts.param, noise=opts.noise, seed=seed)
