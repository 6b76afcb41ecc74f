"""Checks on explanations: can this method's attributions of this model be trusted.

Four checks, each a function, and :func:`sanity_check` that runs them all for one
(model, method) pair and returns a frozen :class:`SanityResult` with a :class:`Verdict`:

- **Deletion / insertion curves** (Samek et al. 2017, https://arxiv.org/abs/1509.06321;
  Petsiuk et al. 2018, RISE, https://arxiv.org/abs/1806.07421): remove (or insert)
  features in attribution order in ``K`` steps and follow the target class probability.
  A faithful ranking makes the deletion curve fall faster (smaller AUC) and the insertion
  curve rise faster (larger AUC) than a seeded random ranking.
- **Model-parameter randomisation** (Adebayo et al. 2018, https://arxiv.org/abs/1810.03292):
  re-initialise the layers of a deep copy of the model, cascading from the output layer
  down, and compare the attributions with the original ones (Spearman rank correlation
  of absolute attributions, SSIM of normalised image maps). A method whose maps survive
  randomising every weight explains the input, not the model.
- **Infidelity** and **max-sensitivity** (Yeh et al. 2019, https://arxiv.org/abs/1901.09392):
  captum's ``infidelity`` and ``sensitivity_max``, reported (no absolute threshold exists).

Classifiers are followed through the explained class's probability; other tasks
(segmentation, detection, super-resolution, policies) through the explained target's own
scalar (the targets adapter's output), so their AUCs are in that target's units. Token
models (integer ids) remove a word by replacing it with the explanation's baseline token
(``[PAD]``, which the zoo's text models mask out, or ``[MASK]``); special tokens and
padding are never units, each sentence's fraction counts its own words, and infidelity
and max-sensitivity (Gaussian noise on the input) are not defined on token ids.

Verdict thresholds are the module constants below.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from captum.metrics import infidelity, sensitivity_max
from pydantic import Field, field_validator
from scipy.ndimage import uniform_filter
from scipy.stats import spearmanr
from torch import nn

from xai._method import Capabilities, Kind, Method, Options
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.datasets import Dataset
from xai.errors import DataError, NotApplicableError
from xai.explain._base import (
    AttributionResult,
    Explainer,
    TargetChoice,
    create_explainer,
    data_baseline,
    seeded,
)
from xai.explain._index import EXPLAINERS, SANITY_CHECKS
from xai.explain._sanity_thresholds import MIN_DELETION_GAIN, MIN_INSERTION_GAIN, MPRT_MAX_CORRELATION
from xai.explain.text import token_baseline
from xai.zoo.handle import ModelHandle, eval_mode

__all__ = [
    "SanityChecks",
    "MIN_DELETION_GAIN",
    "MIN_INSERTION_GAIN",
    "MPRT_MAX_CORRELATION",
    "Curve",
    "RandomisationStep",
    "SanityResult",
    "Verdict",
    "perturbation_curves",
    "randomisation_test",
    "sanity_check",
    "ssim",
]

#: Gaussian noise for infidelity, as a fraction of the data's scale (value range for images,
#: mean column standard deviation for tabular rows).
INFIDELITY_NOISE = 0.1
#: L-infinity radius for max-sensitivity, as a fraction of the data's scale.
SENSITIVITY_RADIUS = 0.02


@dataclass(frozen=True, eq=False)
class Curve:
    """One deletion or insertion curve, the random-ranking curve and their areas.

    Attributes
    ----------
    fractions
        Fraction of features removed (deletion) or inserted (insertion), ``(K + 1,)``.
    scores, random_scores
        Mean target-class probability (classifiers; else the target's scalar) at each
        fraction, for the method's ranking and for a seeded random ranking.
    gain
        How much better than random, always "higher is better": ``random_auc - auc`` for
        deletion and ``auc - random_auc`` for insertion. For classifiers both AUCs lie in [0, 1].
    """

    kind: Literal["deletion", "insertion"]
    fractions: np.ndarray
    scores: np.ndarray
    random_scores: np.ndarray
    auc: float
    random_auc: float
    gain: float


@dataclass(frozen=True, eq=False)
class RandomisationStep:
    """Attribution similarity after randomising the top layers down to ``layer``.

    Attributes
    ----------
    randomised
        Every layer re-initialised so far (the cascade, output side first).
    spearman
        Mean over samples of the Spearman rank correlation of ``|attribution|``.
    ssim
        Mean SSIM of the per-sample maps (images only; ``None`` for tabular rows).
    """

    layer: str
    randomised: tuple[str, ...]
    spearman: float
    ssim: float | None
    spearman_per_sample: np.ndarray


@dataclass(frozen=True)
class Verdict:
    """Whether a method's explanations of a model can be trusted, and why (not).

    ``reasons`` are the failed checks in plain words, without a "not trustworthy" prefix,
    so pages that print the verdict and then the reasons do not repeat it.
    """

    trustworthy: bool
    reasons: tuple[str, ...]
    checks: dict[str, bool]

    def __str__(self) -> str:
        if self.trustworthy:
            return "trustworthy: passes " + ", ".join(self.checks)
        return "not trustworthy: " + "; ".join(self.reasons)  # the reasons themselves carry no prefix


@dataclass(frozen=True, eq=False)
class SanityResult:
    """Every check on one method's explanations of one model, with the verdict.

    ``example_maps`` holds, for images, the normalised ``|attribution|`` maps of the first
    few samples before randomisation and after each cascade step ``(S + 1, n, H, W)``.
    ``infidelity`` and ``sensitivity_max`` are ``None`` for token inputs (no Gaussian noise
    on ids); ``score`` names what the deletion and insertion curves follow.
    """

    method: str
    model: str
    modality: str
    samples: int
    options: dict[str, Any]
    targets: np.ndarray
    deletion: Curve
    insertion: Curve
    randomisation: tuple[RandomisationStep, ...]
    infidelity: float | None
    sensitivity_max: float | None
    verdict: Verdict
    provenance: Provenance
    example_inputs: np.ndarray | None = None
    example_maps: np.ndarray | None = None
    score: str = "target probability"

    def metrics(self) -> dict[str, float]:
        """Named numbers for gates (``sanity.<method>.<name>`` in an audit)."""
        final = self.randomisation[-1] if self.randomisation else None
        out = {
            "trustworthy": float(self.verdict.trustworthy),
            "deletion_auc": self.deletion.auc,
            "deletion_auc_gain": self.deletion.gain,
            "insertion_auc": self.insertion.auc,
            "insertion_auc_gain": self.insertion.gain,
        }
        if self.infidelity is not None and self.sensitivity_max is not None:
            out["infidelity"] = self.infidelity
            out["sensitivity_max"] = self.sensitivity_max
        if final is not None:
            out["mprt_final_spearman"] = final.spearman
            if final.ssim is not None:
                out["mprt_final_ssim"] = final.ssim
        return {k: float(v) for k, v in out.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as nested lists)."""
        out = to_jsonable(self)
        out["verdict"]["summary"] = str(self.verdict)
        out["metrics"] = self.metrics()
        return out


# ---------------------------------------------------------------------------- SSIM


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float, win_size: int = 7,
         k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean structural similarity of two equally shaped arrays (Wang et al. 2004).

    The uniform-window variant with sample covariance, as ``skimage.metrics.
    structural_similarity`` computes it by default (tested against it).

    Examples
    --------
    >>> x = np.random.default_rng(0).random((16, 16))
    >>> round(ssim(x, x, data_range=1.0), 6)
    1.0
    """
    if a.shape != b.shape:
        raise DataError(f"ssim needs equal shapes, got {a.shape} and {b.shape}")
    if min(a.shape) < win_size:
        raise DataError(f"ssim needs every side >= {win_size}, got {a.shape}")
    x, y = a.astype(np.float64), b.astype(np.float64)
    n = win_size ** x.ndim
    cov_norm = n / (n - 1)  # sample covariance
    ux, uy = uniform_filter(x, win_size), uniform_filter(y, win_size)
    uxx, uyy, uxy = (uniform_filter(p, win_size) for p in (x * x, y * y, x * y))
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return float(s[tuple(slice(pad, -pad) for _ in range(s.ndim))].mean())


# ------------------------------------------------------------ deletion / insertion


def _units(result: AttributionResult, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature units to remove together and their scores.

    Returns ``groups`` (the unit index of every input element, shaped like one input)
    and ``scores`` ``(N, G)``: image pixels (all channels at once, attributions summed
    over channels), tabular raw columns (one-hot levels together, scored as the
    explanation's column attributions), or token positions.
    """
    shape = tuple(data.x.shape[1:])
    attr = torch.from_numpy(result.attributions).float()
    if not data.x.is_floating_point():  # token ids (N, T): one unit per position
        return torch.arange(shape[0]), attr.reshape(len(attr), -1)
    if data.modality == "image" and len(shape) == 3:
        c, h, w = shape
        groups = torch.arange(h * w).view(1, h, w).expand(c, h, w)  # (C, H, W)
        return groups, attr.sum(1).reshape(len(attr), h * w)  # (N, H*W)
    if result.column_attributions is not None and data.feature_columns:
        names = list(dict.fromkeys(data.feature_columns))
        groups = torch.tensor([names.index(c) for c in data.feature_columns])  # (F,)
        return groups, torch.from_numpy(result.column_attributions).float()  # (N, G)
    groups = torch.arange(math.prod(shape)).view(shape)
    return groups, attr.reshape(len(attr), -1)


CLASSIFIERS = ("classification", "binary-classification")


def _target_score(handle: ModelHandle, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """What the curves follow ``(B,)``: a classifier's target-class probability, else the target's scalar."""
    output = handle.module(x.to(handle.device))
    if handle.task in CLASSIFIERS:
        output = output.float().softmax(1)
    return handle.targets(output, target.to(handle.device)).float().cpu()


@torch.no_grad()
def perturbation_curves(
    handle: ModelHandle,
    x: torch.Tensor,
    scores: torch.Tensor,
    groups: torch.Tensor,
    targets: torch.Tensor,
    baseline: torch.Tensor,
    *,
    valid: torch.Tensor | None = None,
    steps: int = 20,
    seed: int = 0,
    batch_size: int = 64,
) -> tuple[Curve, Curve]:
    """Deletion and insertion curves of a ranking against a seeded random ranking.

    Parameters
    ----------
    x
        Inputs ``(N, ...)``.
    scores
        Importance of each unit ``(N, G)``; units are removed highest score first.
    groups
        Unit index of every input element, shaped like one input (``x.shape[1:]``).
    baseline
        What a removed (or not yet inserted) unit is set to, ``(1, ...)`` or per sample ``(N, ...)``.
    valid
        Optional ``(N, G)`` mask of the units that take part (token models: the words of
        each sentence); the others rank last and are never removed, and a fraction counts
        each sample's own valid units.
    steps
        ``K``: the curves have ``K + 1`` points at fractions ``0, 1/K, ..., 1``.

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.zoo import load_model
    >>> lenet, x = load_model("lenet"), load_dataset("digits").head(4).x
    >>> targets = lenet.module(x).argmax(1)
    >>> pixels = torch.arange(32 * 32).view(1, 32, 32)  # one unit per pixel
    >>> ink = x.reshape(4, -1)  # rank the pixels by their ink
    >>> deletion, insertion = perturbation_curves(lenet, x, ink, pixels, targets, torch.zeros(1, 1, 32, 32), steps=4)
    >>> deletion.fractions
    array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    >>> deletion.gain > 0, insertion.gain > 0  # both beat a random order
    (True, True)
    """
    if steps < 1:
        raise DataError(f"steps must be at least 1, got {steps}")
    n, g = scores.shape
    generator = torch.Generator().manual_seed(seed)
    random_scores = torch.stack([torch.randperm(g, generator=generator) for _ in range(n)]).float()
    scores = scores.float()
    if valid is not None:  # units outside the mask rank last in both rankings
        scores = scores.masked_fill(~valid, -torch.inf)
        random_scores = random_scores.masked_fill(~valid, -torch.inf)
    units = (valid.sum(1) if valid is not None else torch.full((n,), g)).double()  # (N,)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    curves = {key: np.zeros((steps + 1, n)) for key in ("del", "ins", "rdel", "rins")}
    flat_groups = groups.reshape(-1).to(handle.device)  # (E,)
    per_sample = baseline.shape[0] == n and n > 1
    with eval_mode(handle.module):
        for begin in range(0, n, batch_size):
            xb = x[begin:begin + batch_size].to(handle.device)
            tb = targets[begin:begin + batch_size]
            flat = xb.reshape(len(xb), -1)  # (B, E)
            base = (baseline[begin:begin + len(xb)] if per_sample else baseline).to(handle.device)
            base = base.reshape(len(base), -1).to(flat.dtype)  # (B or 1, E)
            sample_units = units[begin:begin + len(xb)]
            for name, ranking in (("", scores), ("r", random_scores)):
                order = ranking[begin:begin + batch_size].argsort(dim=1, descending=True, stable=True)  # (B, G)
                rank = torch.empty_like(order).scatter_(1, order, torch.arange(g).expand_as(order))
                rank = rank.to(handle.device)[:, flat_groups]  # (B, E) rank of each element's unit
                for k, fraction in enumerate(fractions):
                    count = torch.round(fraction * sample_units).long().to(handle.device).view(-1, 1)  # (B, 1)
                    gone = rank < count  # (B, E) units among each sample's first `count`
                    deleted = torch.where(gone, base, flat).view_as(xb)
                    inserted = torch.where(gone, flat, base).view_as(xb)
                    curves[f"{name}del"][k, begin:begin + len(xb)] = _target_score(handle, deleted, tb)
                    curves[f"{name}ins"][k, begin:begin + len(xb)] = _target_score(handle, inserted, tb)
    out = []
    for kind, key in (("deletion", "del"), ("insertion", "ins")):
        ours, rand = curves[key].mean(1), curves[f"r{key}"].mean(1)
        auc, random_auc = float(np.trapezoid(ours, fractions)), float(np.trapezoid(rand, fractions))
        gain = random_auc - auc if kind == "deletion" else auc - random_auc
        out.append(Curve(kind=kind, fractions=fractions, scores=ours, random_scores=rand,  # type: ignore[arg-type]
                         auc=auc, random_auc=random_auc, gain=gain))
    return out[0], out[1]


# ------------------------------------------------- model-parameter randomisation


def _parameter_layers(module: nn.Module) -> list[str]:
    """Names of modules that own parameters, in registration (roughly forward) order."""
    return [name for name, m in module.named_modules()
            if name and any(True for _ in m.parameters(recurse=False))]


def _reinitialise(module: nn.Module) -> None:
    """Fresh random weights: the layer's own initialiser, else noise of the same scale."""
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()
        return
    with torch.no_grad():
        for param in module.parameters(recurse=False):
            scale = float(param.std()) if param.numel() > 1 else 1.0
            param.normal_(0.0, scale or 1.0)


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two flat maps; a constant map has no ranking (rho 0, or 1 if equal)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(spearmanr(a, b).statistic)


def _maps(attr: torch.Tensor) -> np.ndarray:
    """``|attribution|`` summed over channels and scaled to [0, 1] per sample ``(N, H, W)``."""
    maps = attr.abs().sum(1).numpy().astype(np.float64)  # (N, H, W)
    peak = maps.reshape(len(maps), -1).max(1).reshape(-1, 1, 1)
    return maps / np.where(peak > 0, peak, 1.0)


def randomisation_test(
    handle: ModelHandle,
    method: str,
    data: Dataset,
    targets: torch.Tensor,
    reference: torch.Tensor,
    *,
    options: dict[str, Any] | None = None,
    valid: torch.Tensor | None = None,
    max_steps: int = 8,
    seed: int = 0,
    batch_size: int = 64,
) -> tuple[list[RandomisationStep], np.ndarray | None]:
    """Cascading model-parameter randomisation test on a deep copy of ``handle.module``.

    Layers that own parameters are re-initialised one by one from the output side; the
    attributions are recomputed (same targets, same seed) at up to ``max_steps`` evenly
    spaced points of the cascade, always including the fully randomised model, and
    compared with ``reference``. The caller's module is never touched. ``valid`` ``(N, E)``
    restricts the rank correlation to the elements that take part (token models: the
    words, not padding that both runs score 0).

    Returns the steps and, for images, the maps of the first 4 samples per step
    ``(S + 1, n, H, W)`` (the reference first).
    """
    model = copy.deepcopy(handle.module)
    twin = dataclasses.replace(handle, module=model)
    cascade = list(reversed(_parameter_layers(model)))
    if not cascade:
        raise NotApplicableError(f"{handle.name} has no parameters to randomise")
    modules = dict(model.named_modules())
    stops = set(np.unique(np.linspace(0, len(cascade) - 1, min(max_steps, len(cascade))).round().astype(int)))
    image = data.modality == "image" and reference.ndim == 4
    ref_abs = reference.abs().reshape(len(reference), -1).numpy()
    keep = valid.reshape(len(reference), -1).numpy() if valid is not None else np.ones_like(ref_abs, dtype=bool)
    ref_maps = _maps(reference) if image else None
    shown = [ref_maps[:4]] if ref_maps is not None else []
    steps = []
    for i, name in enumerate(cascade):
        with seeded(seed + 1 + i, twin.device):
            _reinitialise(modules[name])
        if i not in stops:
            continue
        explainer = create_explainer(method, twin, **(options or {}))
        with seeded(seed, twin.device):  # the same noise / baselines as the reference run
            explainer.prepare(data)
            attr, _ = explainer.attribute_all(data.x, targets, batch_size=batch_size)
        flat = attr.abs().reshape(len(attr), -1).numpy()
        rho = np.array([_rank_correlation(ref_abs[j][keep[j]], flat[j][keep[j]]) for j in range(len(flat))])
        mean_ssim = None
        if ref_maps is not None:
            maps = _maps(attr)
            mean_ssim = float(np.mean([ssim(ref_maps[j], maps[j], data_range=1.0) for j in range(len(maps))]))
            shown.append(maps[:4])
        steps.append(RandomisationStep(layer=name, randomised=tuple(cascade[:i + 1]),
                                       spearman=float(rho.mean()), ssim=mean_ssim, spearman_per_sample=rho))
    return steps, (np.stack(shown) if shown else None)


# ---------------------------------------------------------- infidelity / sensitivity


def _data_scale(data: Dataset) -> float:
    """Value range of image data, mean column standard deviation of tabular rows."""
    x = data.x.float()
    if data.modality == "tabular":
        return float(x.std(0).mean()) if len(x) > 1 else 1.0
    return float(x.max() - x.min()) or 1.0


def infidelity_and_sensitivity(
    explainer: Explainer,
    data: Dataset,
    targets: torch.Tensor,
    attributions: torch.Tensor,
    *,
    n_perturb_samples: int = 10,
    sensitivity_samples: int = 8,
    batch_size: int = 16,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean normalised infidelity and mean max-sensitivity (captum.metrics).

    Infidelity uses Gaussian input noise of ``INFIDELITY_NOISE`` x the data's scale over
    every explained sample; max-sensitivity re-runs the explainer under uniform noise of
    radius ``SENSITIVITY_RADIUS`` x scale on the first ``sensitivity_samples`` samples
    (it costs ``n_perturb_samples`` explanations per sample).
    """
    handle = explainer.handle
    device = handle.device
    scale = _data_scale(data)
    std = INFIDELITY_NOISE * scale

    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn_like(inputs) * std
        return noise, inputs - noise

    def explain(inputs: torch.Tensor | tuple[torch.Tensor, ...], target: torch.Tensor) -> tuple[torch.Tensor]:
        x = inputs[0] if isinstance(inputs, tuple) else inputs
        # a tuple: sensitivity_max iterates over the unperturbed explanation as a tuple of tensors
        return (explainer.attribute(x.detach().requires_grad_(), target),)

    infid, sens = [], []
    with seeded(seed, device), eval_mode(handle.module):
        for begin in range(0, len(data), batch_size):
            xb = data.x[begin:begin + batch_size].to(device)
            tb = targets[begin:begin + batch_size].to(device)
            ab = attributions[begin:begin + batch_size].to(device)
            infid.append(infidelity(handle.forward_target, perturb, xb, ab, additional_forward_args=(tb,),
                                    n_perturb_samples=n_perturb_samples, normalize=True).detach().cpu())
        for begin in range(0, min(sensitivity_samples, len(data)), batch_size):
            end = min(begin + batch_size, sensitivity_samples)
            xb = data.x[begin:end].to(device)
            tb = targets[begin:end].to(device)
            sens.append(sensitivity_max(explain, xb, perturb_radius=SENSITIVITY_RADIUS * scale,
                                        n_perturb_samples=n_perturb_samples, target=tb).detach().cpu())
    return float(torch.cat(infid).mean()), float(torch.cat(sens).mean())


# -------------------------------------------------------------------- the verdict


def verdict(deletion: Curve, insertion: Curve, randomisation: list[RandomisationStep]) -> Verdict:
    """Apply the thresholds (module constants) to the checks' numbers."""
    final = randomisation[-1].spearman
    checks = {
        "randomisation": final <= MPRT_MAX_CORRELATION,
        "deletion": deletion.gain > MIN_DELETION_GAIN,
        "insertion": insertion.gain > MIN_INSERTION_GAIN,
    }
    reasons = []
    if not checks["randomisation"]:
        reasons.append(f"insensitive to the model's weights (rank correlation {final:.2f} "
                       f"> {MPRT_MAX_CORRELATION} with every layer randomised)")
    if not checks["deletion"]:
        reasons.append(f"deletion no better than random (AUC gain {deletion.gain:+.3f})")
    if not checks["insertion"]:
        reasons.append(f"insertion no better than random (AUC gain {insertion.gain:+.3f})")
    return Verdict(trustworthy=not reasons, reasons=tuple(reasons), checks=checks)


def sanity_check(
    handle: ModelHandle,
    method: str,
    data: Dataset,
    *,
    options: dict[str, Any] | None = None,
    target: TargetChoice = "predicted",
    steps: int = 20,
    mprt_steps: int = 8,
    sensitivity_samples: int = 8,
    seed: int = 0,
    batch_size: int = 64,
    progress: Callable[[str], None] | None = None,
) -> SanityResult:
    """Run every check on ``method``'s explanations of ``handle`` over ``data``.

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.zoo import load_model
    >>> digits = load_dataset("digits").head(8)
    >>> result = sanity_check(load_model("lenet"), "saliency", digits, steps=5, mprt_steps=3)
    >>> print(result.verdict)
    trustworthy: passes randomisation, deletion, insertion
    """
    start = time.perf_counter()
    note = progress or (lambda _: None)
    explainer = create_explainer(method, handle, **(options or {}))
    note(f"explaining {len(data)} samples with {method}")
    explained = explainer.explain(data, target=target, batch_size=batch_size, seed=seed)
    targets = torch.from_numpy(explained.targets)
    attributions = torch.from_numpy(explained.attributions)
    note(f"deletion and insertion curves ({steps} steps)")
    groups, scores = _units(explained, data)
    tokens = not data.x.is_floating_point()
    if tokens:  # a removed word becomes the explanation's baseline token; specials and padding stay
        baseline = token_baseline(data.x, explainer.options.get("baseline", "pad"),
                                  getattr(handle.module, "tokenizer", None))
        valid = baseline != data.x  # (N, T)
    else:
        baseline = data_baseline("mean" if data.modality == "tabular" else "zeros", data)
        valid = None
    deletion, insertion = perturbation_curves(handle, data.x, scores, groups, targets, baseline, valid=valid,
                                              steps=steps, seed=seed, batch_size=batch_size)
    note("model-parameter randomisation (cascading)")
    cascade, maps = randomisation_test(handle, method, data, targets, attributions, options=explainer.options,
                                       valid=valid, max_steps=mprt_steps, seed=seed, batch_size=batch_size)
    if tokens:
        infid = sens = None
    else:
        note("infidelity and max-sensitivity")
        infid, sens = infidelity_and_sensitivity(explainer, data, targets, attributions,
                                                 sensitivity_samples=sensitivity_samples, seed=seed)
    provenance = Provenance(model_sha256=handle.sha256, data_sha256=data.sha256, seed=seed,
                            wall_seconds=round(time.perf_counter() - start, 4), device=str(handle.device))
    return SanityResult(
        method=method,
        model=handle.name,
        modality=handle.modality,
        samples=len(data),
        options={"target": target, **explainer.options},
        targets=explained.targets,
        deletion=deletion,
        insertion=insertion,
        randomisation=tuple(cascade),
        infidelity=infid,
        sensitivity_max=sens,
        verdict=verdict(deletion, insertion, cascade),
        provenance=provenance,
        example_inputs=explained.inputs[:4] if maps is not None else None,
        example_maps=maps,
        score="target probability" if handle.task in CLASSIFIERS else f"target score ({handle.task})",
    )


# ---------------------------------------------------------------- the method


@SANITY_CHECKS.register("sanity-checks")
class SanityChecks(Method):
    """Sanity checks of one explainer: deletion/insertion, cascading weight randomisation, infidelity."""

    name: ClassVar[str] = "sanity-checks"
    kind: ClassVar[Kind] = "sanity"
    result_type: ClassVar[str] = "xai.explain.sanity:SanityResult"
    paper: ClassVar[str] = ("Adebayo et al. 2018, Sanity Checks for Saliency Maps; "
                            "Yeh et al. 2019, On the (In)fidelity and Sensitivity of Explanations")
    capabilities: ClassVar[Capabilities] = Capabilities()

    class Options(Options):
        """One check; the one source of :func:`sanity_check`'s defaults (the ``[[sanity]]`` section's keys)."""

        method: str = Field(min_length=1)
        samples: int = Field(default=16, gt=1)
        steps: int = Field(default=20, gt=1)
        target: Literal["predicted", "label"] | int = "predicted"
        options: dict[str, Any] = Field(default_factory=dict)
        mprt_steps: int = Field(default=8, gt=0)
        sensitivity_samples: int = Field(default=8, gt=0)
        batch_size: int = Field(default=64, gt=0)

        @field_validator("method")
        @classmethod
        def _known_explainer(cls, value: str) -> str:
            if value not in EXPLAINERS:  # the lazy table: no explainer module is imported
                raise ValueError(f"unknown explainer {value!r}; known: {', '.join(EXPLAINERS.names())}")
            return value

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> SanityResult:
        """:func:`sanity_check` on ``options.samples`` seeded rows of ``data``."""
        from xai.audit.runner import sample_rows  # the audit's row sampler (imported on use: no cycle)

        opts = cls.parse_options(options)
        assert isinstance(opts, SanityChecks.Options)
        if data is None:
            raise DataError(f"{cls.name} needs data to explain")
        return sanity_check(handle, opts.method, sample_rows(data, opts.samples, seed), options=opts.options,
                            target=opts.target, steps=opts.steps, mprt_steps=opts.mprt_steps,
                            sensitivity_samples=opts.sensitivity_samples, batch_size=opts.batch_size, seed=seed)
