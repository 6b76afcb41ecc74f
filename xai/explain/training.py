"""GAN training diagnostics: gradient norms and D(x) / D(G(z)) over training, and discriminator saturation.

A GAN's discriminator that wins too clearly starves its generator: ``D(G(z))`` falls
towards 0 and the generator's gradient vanishes (Goodfellow et al. 2014, section 3;
Arjovsky & Bottou 2017, https://arxiv.org/abs/1701.04862). The zoo's DCGAN recipe
records, at every step, the discriminator's and the generator's gradient norms and the
mean ``D(x)`` and ``D(G(z))`` (:func:`xai.zoo.generative.gan_step`), and writes their
per-epoch means to the model card (``details.training_history``), so they come from the
seeded recipe, not from a rerun here. This method reads that history, flags the epochs
where the discriminator saturates, and gives gateable numbers.

An epoch is *saturated* when the generator's view of its fakes, mean ``D(G(z))`` after the
discriminator's step, is below ``d_fake_below`` **and** the generator's gradient norm is
below ``vanishing_ratio`` times its largest epoch mean over the whole training.

Example
-------
>>> saturated_epochs([0.4, 0.01, 0.02], [2.0, 1.5, 0.1], d_fake_below=0.05, vanishing_ratio=0.1)
(3,)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from xai._method import Capabilities, Kind, Method, Options
from xai._provenance import Provenance, sha256_array
from xai._results import to_jsonable
from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._index import TRAINING_METHODS
from xai.zoo.handle import ModelHandle

__all__ = ["SERIES", "GanTraining", "GanTrainingResult", "read_history", "saturated_epochs"]

#: The per-epoch series a history must hold (what :class:`xai.zoo.generative.GanStepStats` measures).
SERIES = ("d_loss", "g_loss", "d_grad_norm", "g_grad_norm", "d_real", "d_fake", "d_fake_g")
#: Longest history read from a card (cards are untrusted input).
MAX_EPOCHS = 100_000


def saturated_epochs(d_fake: Sequence[float], g_grad_norm: Sequence[float], *, d_fake_below: float,
                     vanishing_ratio: float) -> tuple[int, ...]:
    """1-based epochs where ``D(G(z)) < d_fake_below`` and ``g_grad_norm < vanishing_ratio * max(g_grad_norm)``."""
    fake = np.asarray(d_fake, dtype=np.float64)
    norm = np.asarray(g_grad_norm, dtype=np.float64)
    if fake.shape != norm.shape:
        raise DataError(f"D(G(z)) has {fake.size} epochs, the generator's gradient norm {norm.size}")
    if not norm.size:
        return ()
    peak = float(norm.max())
    hit = (fake < d_fake_below) & (norm < vanishing_ratio * peak)
    return tuple(int(i) + 1 for i in np.flatnonzero(hit))


def read_history(card: dict[str, Any] | None) -> dict[str, Any]:
    """The card's ``details.training_history``, checked: every series present, the same length, finite.

    Raises
    ------
    DataError
        When the card has no history or a malformed one (one line naming the problem).
    """
    details = card.get("details") if isinstance(card, dict) else None
    history = details.get("training_history") if isinstance(details, dict) else None
    if not isinstance(history, dict):
        raise DataError("the model card records no GAN training history (details.training_history); "
                        "retrain the entry with a recipe that records it")
    lengths = set()
    for name in SERIES:
        values = history.get(name)
        if not isinstance(values, list) or not 0 < len(values) <= MAX_EPOCHS \
                or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                           for v in values):
            raise DataError(f"training history: {name!r} is not a list of 1 to {MAX_EPOCHS:,} finite numbers")
        lengths.add(len(values))
    if len(lengths) != 1:
        raise DataError(f"training history: the series have different lengths ({sorted(lengths)})")
    steps = history.get("steps_per_epoch", 0)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise DataError("training history: steps_per_epoch is not a whole number")
    return history


@dataclass(frozen=True)
class GanTrainingResult:
    """A GAN's training history (per-epoch means) and the epochs where its discriminator saturated.

    Attributes
    ----------
    series
        ``{name: (E,)}`` for each of :data:`SERIES`: losses, gradient norms (L2 over all
        of a network's parameters), mean ``D(x)`` (``d_real``), mean ``D(G(z))`` before the
        discriminator's step (``d_fake``) and after it (``d_fake_g``, what the generator's loss sees).
    saturated
        1-based epochs flagged as saturated (see the module docstring).
    """

    model: str
    steps_per_epoch: int
    series: dict[str, tuple[float, ...]]
    saturated: tuple[int, ...]
    options: dict[str, Any]
    provenance: Provenance
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def epochs(self) -> int:
        """Epochs recorded."""
        return len(self.series["d_real"])

    def metrics(self) -> dict[str, float]:
        """Gateable numbers (prefix ``training.``).

        ``final_d_real``, ``final_d_fake``, ``final_d_grad_norm``, ``final_g_grad_norm`` (the last
        epoch), ``min_d_fake`` (lowest epoch mean of ``D(G(z))`` as the generator sees it),
        ``g_grad_norm_min_ratio`` (lowest generator gradient norm over its largest),
        ``saturated_epochs`` (count) and ``saturated`` (1 when any epoch is).
        """
        s = self.series
        peak = max(s["g_grad_norm"])
        return {
            "epochs": float(self.epochs),
            "final_d_real": s["d_real"][-1],
            "final_d_fake": s["d_fake_g"][-1],
            "final_d_grad_norm": s["d_grad_norm"][-1],
            "final_g_grad_norm": s["g_grad_norm"][-1],
            "min_d_fake": min(s["d_fake_g"]),
            "g_grad_norm_min_ratio": min(s["g_grad_norm"]) / peak if peak > 0 else 0.0,
            "saturated_epochs": float(len(self.saturated)),
            "saturated": float(bool(self.saturated)),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the series, the flagged epochs, the metrics)."""
        out: dict[str, Any] = to_jsonable(self)
        out["epochs"] = self.epochs
        out["metrics"] = self.metrics()
        return out


@TRAINING_METHODS.register("gan-training")
class GanTraining(Method):
    """GAN training diagnostics from the model card: gradient norms, D(x) and D(G(z)) per epoch, saturation flag."""

    name: ClassVar[str] = "gan-training"
    kind: ClassVar[Kind] = "training"
    paper: ClassVar[str] = "https://arxiv.org/abs/1701.04862"
    result_type: ClassVar[str] = "xai.explain.training:GanTrainingResult"
    #: A generative model with a sampler; the numbers come from its card, so no gradients are taken here.
    capabilities: ClassVar[Capabilities] = Capabilities(tasks=frozenset({"generation"}), needs_sampler=True,
                                                        needs_gradients=False)

    class Options(Options):
        """Thresholds of the saturation flag."""

        d_fake_below: float = Field(default=0.05, gt=0, lt=1,
                                    description="D(G(z)) under this (the discriminator rejects the fakes) ...")
        vanishing_ratio: float = Field(default=0.1, gt=0, lt=1,
                                       description="... and the generator's gradient norm under this share of "
                                                   "its largest epoch mean: a saturated epoch")

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """Also: the model card must hold the recipe's training history."""
        reason = super().why_not(handle)
        if reason is None:
            details = handle.card.get("details") if isinstance(handle.card, dict) else None
            if not isinstance(details, dict) or "training_history" not in details:
                return f"it reads the training history of the model card; {handle.name}'s card records none"
        return reason

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> GanTrainingResult:
        """Read the card's history and flag saturated epochs (``data`` is not read)."""
        opts = cls.parse_options(options)
        assert isinstance(opts, GanTraining.Options)
        cls.check_applies(handle)
        start = time.perf_counter()
        history = read_history(handle.card)
        series = {name: tuple(float(v) for v in history[name]) for name in SERIES}
        flagged = saturated_epochs(series["d_fake_g"], series["g_grad_norm"], d_fake_below=opts.d_fake_below,
                                   vanishing_ratio=opts.vanishing_ratio)
        notes: list[str] = []
        if flagged:
            shown = ", ".join(map(str, flagged[:20])) + (" ..." if len(flagged) > 20 else "")
            notes.append(f"discriminator saturated in {len(flagged)} of {len(series['d_real'])} epochs ({shown}): "
                         f"D(G(z)) < {opts.d_fake_below:g} with the generator's gradient norm under "
                         f"{opts.vanishing_ratio:g} x its largest")
        card = handle.card or {}
        digest = sha256_array(np.array([series[name] for name in SERIES], dtype=np.float64))
        provenance = Provenance(model_sha256=handle.sha256, data_sha256=digest,
                                seed=int(card.get("seed", seed)) if isinstance(card.get("seed", seed), int) else seed,
                                wall_seconds=round(time.perf_counter() - start, 4), device="cpu")
        return GanTrainingResult(model=handle.name, steps_per_epoch=int(history.get("steps_per_epoch", 0)),
                                 series=series, saturated=flagged, options=opts.model_dump(),
                                 provenance=provenance, notes=tuple(notes))
