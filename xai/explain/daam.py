"""DAAM: token-to-pixel heat maps from a diffusion model's cross-attention.

Diffusion Attentive Attribution Maps (Tang et al. 2023, https://arxiv.org/abs/2210.04885):
while a prompt is being rendered, every cross-attention layer of the denoiser says, for
each latent pixel, how much it draws on each prompt token. DAAM hooks those attention
probabilities at every sampling step, upsamples each layer's ``h x w`` map to the image
size and aggregates over steps, heads and layers, giving one heat map per prompt token.

What a model must offer (the zoo's ``latent-diffusion`` does)
--------------------------------------------------------------
- ``module.cross_attention``: names of the modules whose outputs are the cross-attention
  probabilities ``(B, heads, h * w, tokens)`` (queries: latent pixels, row-major; keys:
  prompt tokens; each row sums to 1);
- ``module.sample(n, generator, classes, sample_steps=..., guidance=...)``: deterministic
  sampling whose denoiser batch holds the ``n`` prompted rows first (then, with
  classifier-free guidance, the unconditional rows, which DAAM ignores);
- ``module.tokens`` and ``module.prompt_tokens(classes)``: the token vocabulary and the
  prompt of each class, to name the maps.

Normalisation
-------------
``maps[i, k, y, x]`` is the *mean* attention probability that pixel ``(y, x)`` of sample
``i`` gives token ``k``: the mean over sampling steps, layers and heads of the layer's map,
bilinearly upsampled (``align_corners=False``) to the image. Bilinear weights are convex,
so every map is in [0, 1] and, at every pixel, the maps of the prompt's tokens sum to 1.
(The paper sums instead of averaging and upsamples bicubically; the mean keeps maps of
models with different depths comparable and bilinear keeps them non-negative.)

Examples
--------
>>> from xai.zoo import load_model
>>> result = daam(load_model("latent-diffusion"), 3, samples=2, sample_steps=2)
>>> result.maps.shape, result.tokens
((2, 2, 32, 32), ('digit', '<3>'))
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from pydantic import Field
from torch import nn

from xai._method import Capabilities, Kind, Method, Options
from xai._provenance import Provenance, sha256_array
from xai._results import to_jsonable
from xai.errors import DataError, NotApplicableError
from xai.explain._hooks import NamedForwardHooks
from xai.explain._index import DAAMS
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = ["CrossAttentionMaps", "Daam", "DaamResult", "daam", "ink_lift"]

#: Pixels whose generated intensity is above this count as ink (for :func:`ink_lift`).
INK_THRESHOLD = 0.5


class CrossAttentionMaps(NamedForwardHooks):
    """Context manager: hooks that sum upsampled cross-attention maps over calls, heads and layers.

    Parameters
    ----------
    module
        The model.
    names
        Submodule names whose outputs are cross-attention probabilities
        ``(B, heads, h * w, tokens)``; ``h x w`` has the aspect ratio of ``size``.
    size
        ``(H, W)`` of the image the maps are upsampled to.
    rows
        Keep only the first ``rows`` rows of each batch (the prompted half of a
        classifier-free-guidance batch); ``None``: all rows.

    The hooks are removed on exit, even after an error. :meth:`maps` gives the mean over
    every recorded (call, layer, head): ``(rows, tokens, H, W)``.

    Examples
    --------
    >>> from xai.zoo import load_model
    >>> model = load_model("latent-diffusion").module
    >>> generator, classes = torch.Generator().manual_seed(0), torch.tensor([3, 7])
    >>> with CrossAttentionMaps(model, model.cross_attention, (32, 32), rows=2) as rec:
    ...     _ = model.sample(2, generator, classes, sample_steps=2)
    >>> rec.maps().shape  # (rows, prompt tokens, H, W)
    torch.Size([2, 2, 32, 32])
    """

    what = "cross-attention"

    def __init__(self, module: nn.Module, names: Sequence[str], size: tuple[int, int],
                 rows: int | None = None) -> None:
        if not names:
            raise DataError("no cross-attention modules to hook")
        super().__init__(module, names)
        self.size = (int(size[0]), int(size[1]))
        self.rows = rows
        self.total: torch.Tensor | None = None  # (rows, tokens, H, W), sum over maps
        self.count = 0  # how many (call, layer, head) maps were added
        self.calls = 0

    def _grid(self, queries: int) -> tuple[int, int]:
        height, width = self.size
        h = round(math.sqrt(queries * height / width))
        if h < 1 or queries % h:
            raise DataError(f"{queries} attention queries do not tile a grid of aspect {height}:{width}")
        return h, queries // h

    @torch.no_grad()
    def _hook(self, _module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        if output.ndim != 4:
            raise DataError(f"cross-attention should be (B, heads, queries, tokens), got {tuple(output.shape)}")
        attn = output.detach().float()
        if self.rows is not None:
            attn = attn[:self.rows]
        b, heads, queries, tokens = attn.shape
        h, w = self._grid(queries)
        grid = attn.sum(1).transpose(1, 2).reshape(b, tokens, h, w)  # (B, K, h, w), summed heads
        up = F.interpolate(grid, size=self.size, mode="bilinear", align_corners=False)  # (B, K, H, W)
        self.total = up if self.total is None else self.total + up
        self.count += heads
        self.calls += 1

    def _reset(self) -> None:
        self.total, self.count, self.calls = None, 0, 0

    def __enter__(self) -> CrossAttentionMaps:
        super().__enter__()
        return self

    def maps(self) -> torch.Tensor:
        """Mean upsampled attention per row and token ``(rows, tokens, H, W)``."""
        if self.total is None:
            raise DataError("no cross-attention was recorded (did the model run inside the block?)")
        return self.total / self.count


def ink_lift(images: np.ndarray, maps: np.ndarray, threshold: float = INK_THRESHOLD) -> np.ndarray:
    """How much more heat each token puts on ink than on the average pixel ``(N, tokens)``.

    ``mean(map on pixels with image > threshold) / mean(map)``: 1 = no preference, above 1 =
    the token is drawn to the strokes, below 1 = to the background. NaN for a sample
    without ink.

    Parameters
    ----------
    images
        ``(N, 1, H, W)`` generated images in [0, 1].
    maps
        ``(N, tokens, H, W)`` heat maps.
    """
    ink = (images.mean(1, keepdims=True) > threshold).astype(np.float64)  # (N, 1, H, W)
    on_ink = (maps * ink).sum((2, 3)) / np.maximum(ink.sum((2, 3)), 1e-12)  # (N, K)
    overall = maps.mean((2, 3))  # (N, K)
    lift = on_ink / np.maximum(overall, 1e-12)
    return np.where(ink.sum((2, 3)) > 0, lift, np.nan)


@dataclass(frozen=True, eq=False)
class DaamResult:
    """Per-token heat maps of ``N`` samples generated from one class prompt.

    Attributes
    ----------
    tokens
        The prompt's tokens, in order (``("digit", "<3>")``).
    images
        The generated images ``(N, C, H, W)``.
    maps
        ``(N, tokens, H, W)``: mean attention probability per pixel (see the module's
        normalisation; the tokens' maps sum to 1 at every pixel).
    mean_maps
        ``maps`` averaged over the samples ``(tokens, H, W)``.
    ink_lift
        :func:`ink_lift` per sample and token ``(N, tokens)``.
    layers
        The hooked cross-attention modules.
    steps
        Number of denoiser calls recorded per layer (the DDIM steps).
    """

    model: str
    class_index: int
    class_name: str
    tokens: tuple[str, ...]
    images: np.ndarray
    maps: np.ndarray
    mean_maps: np.ndarray
    ink_lift: np.ndarray
    layers: tuple[str, ...]
    steps: int
    guidance: float
    options: dict[str, Any]
    provenance: Provenance

    def metrics(self) -> dict[str, float]:
        """Gateable numbers: ``daam.<token>.share`` (mean map) and ``daam.<token>.ink_lift``."""
        out: dict[str, float] = {}
        for k, token in enumerate(self.tokens):
            key = token.strip("<>")
            out[f"daam.{key}.share"] = float(self.maps[:, k].mean())
            lifts = self.ink_lift[:, k]
            if np.isfinite(lifts).any():
                out[f"daam.{key}.ink_lift"] = float(np.nanmean(lifts))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as nested lists) with the metrics."""
        out = to_jsonable(self)
        out["metrics"] = self.metrics()
        return out


class PromptedSampler(Protocol):
    """What :meth:`Daam.why_not` checks a diffusion module declares (``LatentDiffusion`` has it all)."""

    cross_attention: Sequence[str]
    tokens: Sequence[str]

    def prompt_tokens(self, classes: torch.Tensor) -> torch.Tensor: ...

    def sample(self, n: int, generator: torch.Generator | None = None, classes: torch.Tensor | None = None, *,
               sample_steps: int | None = None, guidance: float | None = None) -> torch.Tensor: ...


def daam(handle: ModelHandle, class_index: int, *, samples: int = 4, seed: int = 0,
         sample_steps: int | None = None, guidance: float | None = None) -> DaamResult:
    """Generate ``samples`` images of class ``class_index`` and their per-token DAAM heat maps.

    Parameters
    ----------
    handle
        A diffusion model (see the module docstring for what it must offer).
    class_index
        The prompted class (an index into ``handle.class_names``).
    samples
        How many images to generate (seeded by ``seed``).
    sample_steps, guidance
        DDIM steps and classifier-free guidance scale (default: the model's).

    Examples
    --------
    >>> from xai.zoo import load_model
    >>> m = daam(load_model("latent-diffusion"), 7, samples=1, sample_steps=4).metrics()
    >>> round(m["daam.digit.share"] + m["daam.7.share"], 4)  # the tokens' maps split every pixel
    1.0
    >>> m["daam.7.ink_lift"] > 1  # the class token's map lies on the digit's ink
    True
    """
    reason = Daam.why_not(handle)
    if reason:
        raise NotApplicableError(f"daam does not apply to {handle.name}: {reason}")
    n_classes = len(handle.class_names)
    if isinstance(class_index, bool) or not 0 <= int(class_index) < n_classes:
        raise DataError(f"class must be an index 0..{n_classes - 1}, got {class_index!r}")
    if samples < 1:
        raise DataError(f"samples must be at least 1, got {samples}")
    start = time.perf_counter()
    module = handle.module
    sampler = cast(PromptedSampler, module)  # why_not above checked these attributes
    classes = torch.full((samples,), int(class_index), dtype=torch.long)
    token_ids = sampler.prompt_tokens(classes[:1])[0].tolist()
    tokens = tuple(sampler.tokens[i] for i in token_ids)
    height, width = handle.input_shape[-2:]
    size = (height, width)
    recorder = CrossAttentionMaps(module, sampler.cross_attention, size, rows=samples)
    with eval_mode(module), recorder:
        images = sampler.sample(samples, torch.Generator().manual_seed(seed), classes,
                                sample_steps=sample_steps, guidance=guidance)
    maps = recorder.maps().cpu().numpy()  # (N, K, H, W)
    if maps.shape[1] != len(tokens):
        raise DataError(f"the attention has {maps.shape[1]} keys but the prompt {len(tokens)} tokens")
    images_np = images.detach().float().cpu().numpy()
    steps = recorder.calls // len(recorder.names)
    provenance = Provenance(model_sha256=handle.sha256, data_sha256=sha256_array(images_np), seed=seed,
                            wall_seconds=round(time.perf_counter() - start, 4), device=str(handle.device))
    used_guidance = float(guidance if guidance is not None else getattr(module, "guidance", 1.0))
    return DaamResult(
        model=handle.name,
        class_index=int(class_index),
        class_name=handle.class_names[int(class_index)],
        tokens=tokens,
        images=images_np,
        maps=maps,
        mean_maps=maps.mean(0),
        ink_lift=ink_lift(images_np, maps),
        layers=recorder.names,
        steps=steps,
        guidance=used_guidance,
        options={"samples": samples, "sample_steps": sample_steps, "guidance": guidance},
        provenance=provenance,
    )


@DAAMS.register("daam")
class Daam(Method):
    """Per-token cross-attention heat maps of a diffusion model's samples (DAAM)."""

    name: ClassVar[str] = "daam"
    kind: ClassVar[Kind] = "daam"
    result_type: ClassVar[str] = "xai.explain.daam:DaamResult"
    paper: ClassVar[str] = "Tang et al. 2023, What the DAAM: Interpreting Stable Diffusion Using Cross Attention"
    capabilities: ClassVar[Capabilities] = Capabilities(needs_sampler=True, needs_gradients=False)

    class Options(Options):
        """The one source of :func:`daam`'s defaults (``xai daam``'s options)."""

        class_index: int = Field(default=0, ge=0)
        samples: int = Field(default=4, gt=0)
        steps: int | None = Field(default=None, gt=0, description="DDIM steps (default: the model's)")
        guidance: float | None = Field(default=None, ge=0, description="guidance scale (default: the model's)")

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """The capability check (a sampler), then declared cross-attention and prompt tokens."""
        reason = super().why_not(handle)
        if reason:
            return reason
        module = handle.module
        if not getattr(module, "cross_attention", ()):
            return "it needs a diffusion model that declares its cross-attention modules (module.cross_attention)"
        for attr in ("prompt_tokens", "tokens"):
            if not hasattr(module, attr):
                return f"the model declares cross-attention but has no {attr!r} to sample prompts with"
        return None

    @classmethod
    def run(cls, handle: ModelHandle, data: Any, options: Any, seed: int = 0) -> DaamResult:
        """:func:`daam` with validated options (``data`` is not read: the model generates its images)."""
        opts = cls.parse_options(options)
        assert isinstance(opts, Daam.Options)
        return daam(handle, opts.class_index, samples=opts.samples, seed=seed, sample_steps=opts.steps,
                    guidance=opts.guidance)
