"""What compressed networks forget: per-group accuracy of a model and its compressed variants.

Pruning, quantization and distillation usually cost little overall accuracy, but the
cost can fall unevenly: Hooker et al. 2019 ("What do compressed deep neural networks
forget?", https://arxiv.org/abs/1911.05248) found it concentrated on a small set of
examples and underrepresented groups. This probe compares, on the same rows, the
original's accuracy in each group (each sensitive column, and each class) with each
variant's, and names the group each variant hurts most.

Intervals come from one paired bootstrap: every row's joint outcome (which of the models
got it right) is a cell of a ``(groups, 2^(1 + variants))`` count table, and
resampling rows is a multinomial draw of those counts (the engine's
:func:`~xai.fairness._engine.bootstrap_cells`), so the original and all variants are
resampled together and the interval of a drop reflects the pairing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, InstanceOf

from xai._provenance import Provenance
from xai.datasets import Dataset
from xai.errors import DataError, NotApplicableError, UnknownNameError
from xai.fairness import _engine, _intervals
from xai.fairness._base import FairnessResult, GroupTable, Probe, ProbeOptions, register_probe
from xai.fairness.metrics import MIN_GROUP_SIZE
from xai.zoo.handle import ModelHandle

#: Name of the per-class table (the rows grouped by their true class).
CLASS_FEATURE = "class"
#: At most this many variants in one probe (the joint bootstrap table has 2^(1 + V) cells per group).
MAX_VARIANTS = 8


def compression_table(y_true: Any, original: Any, variants: Mapping[str, Any], groups: Any, feature: str, *,
                      n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                      min_group_size: int = MIN_GROUP_SIZE) -> GroupTable:
    """Per-group accuracy of ``original`` and each variant's predictions, and the changes.

    Parameters
    ----------
    y_true, original
        ``(N,)`` labels and the original model's predictions.
    variants
        ``{name: (N,) predictions}`` of the compressed variants on the same rows.
    groups
        ``(N,)`` group of each row.
    feature
        Name of the grouping (``ink``, ``class``).
    n_boot
        Paired bootstrap resamples for the intervals (0: none).

    Returns
    -------
    GroupTable
        ``by_group``: ``accuracy`` (the original's) and ``count``, and per variant ``v``:
        ``v_accuracy`` and ``v_change`` (variant minus original, negative = forgotten).
        ``disparities``: per variant ``v_worst_group_drop`` (the largest accuracy drop of
        any group of at least ``min_group_size`` rows) and ``v_drop_spread`` (largest minus
        smallest such drop: how unevenly the cost falls), and ``worst_group_drop`` over all
        variants; smaller groups are shown, flagged and listed in ``small_groups``.
        ``intervals``: percentile intervals of the paired bootstrap; ``disparity_intervals``:
        symmetric intervals of the observed worst group (and pair), which contain the
        estimate (see :mod:`xai.fairness._intervals`).

    Examples
    --------
    >>> t = compression_table([0, 1, 0, 1], [0, 1, 0, 1], {"small": [0, 1, 1, 1]},
    ...                       ["a", "a", "b", "b"], "g", n_boot=0, min_group_size=1)
    >>> t.by_group["small_change"], t.disparities["small_worst_group_drop"]
    ({'a': 0.0, 'b': -0.5}, 0.5)
    """
    y = np.asarray(y_true)
    names = list(variants)
    if not names:
        raise DataError("name at least one compressed variant to compare with the original")
    if len(names) > MAX_VARIANTS:
        raise DataError(f"compare at most {MAX_VARIANTS} variants at once, got {len(names)}")
    preds = [np.asarray(original), *(np.asarray(variants[n]) for n in names)]
    for name, p in zip(["original", *names], preds, strict=True):
        if p.shape != y.shape:
            raise DataError(f"{name}: {p.shape[0] if p.ndim else 0} predictions for {len(y)} rows")
    coded = _engine.encode_groups({feature: np.asarray(groups)})
    if len(coded.codes) != len(y):
        raise DataError(f"{feature}: {len(coded.codes)} group values for {len(y)} rows")
    n_models = len(preds)
    # joint outcome of each row: bit m set when model m (0 = the original) is right
    pattern = sum((p == y).astype(np.int64) << m for m, p in enumerate(preds))
    cells = np.bincount(coded.codes * 2 ** n_models + pattern,
                        minlength=len(coded) * 2 ** n_models).reshape(len(coded), 2 ** n_models)
    labels = coded.labels
    right = _right_by_model(cells, n_models)  # (M, G)
    count = cells.sum(-1).astype(np.float64)  # (G,)
    acc = _rate(right, count)  # (M, G)
    acc_all = _rate(right.sum(-1), count.sum())  # (M,)
    by_group: dict[str, dict[str, float]] = {"accuracy": _named(labels, acc[0]), "count": _named(labels, count)}
    overall: dict[str, float] = {"accuracy": float(acc_all[0]), "count": float(count.sum())}
    disparities: dict[str, float] = {}
    ranked = _intervals.eligible(count, min_group_size)  # small groups never set a worst drop
    extremes: dict[str, _intervals.Extreme | None] = {}
    for m, name in enumerate(names, start=1):
        by_group[f"{name}_accuracy"] = _named(labels, acc[m])
        # changes from the difference of counts: exactly 0 where the models agree row by row
        drops = _rate(right[0] - right[m], count)
        by_group[f"{name}_change"] = _named(labels, _rate(right[m] - right[0], count))  # not -drops: no -0.0
        overall[f"{name}_accuracy"] = float(acc_all[m])
        overall[f"{name}_change"] = float(_rate(right[m].sum() - right[0].sum(), count.sum()))
        for kind, key in (("group_max", f"{name}_worst_group_drop"), ("difference", f"{name}_drop_spread")):
            found = _intervals.extreme(key, {f"{name}_drop": drops}, {f"{name}_drop": np.nan}, ranked,
                                       kind=kind)  # type: ignore[arg-type]
            extremes[key] = found
            disparities[key] = float("nan") if found is None else found.value
    worst_of = [f"{n}_worst_group_drop" for n in names if extremes[f"{n}_worst_group_drop"] is not None]
    top = max(worst_of, key=disparities.__getitem__) if worst_of else None  # ties: the first variant
    disparities["worst_group_drop"] = float("nan") if top is None else disparities[top]
    intervals: dict[str, dict[str, tuple[float, float]]] = {}
    overall_iv: dict[str, tuple[float, float]] = {}
    disparity_iv: dict[str, tuple[float, float]] = {}
    if n_boot:
        if not 0 < confidence < 1:
            raise DataError(f"confidence must be in (0, 1), got {confidence}")
        samples = _engine.bootstrap_cells(cells, n_boot=n_boot, seed=seed)  # (R, G, P)
        b_right = np.moveaxis(_right_by_model(samples, n_models), 0, 1)  # (R, M, G)
        b_count = samples.sum(-1).astype(np.float64)[:, None, :]  # (R, 1, G)
        b_acc = _rate(b_right, b_count)  # (R, M, G), NaN where a resample empties a group
        b_all = _rate(b_right.sum(-1), b_count.sum(-1))  # (R, M)

        def pairs(values: np.ndarray) -> dict[str, tuple[float, float]]:
            lo, hi = _engine.percentile_interval(values, confidence)
            return {g: (float(lo[i]), float(hi[i])) for i, g in enumerate(labels)}

        def pair(values: np.ndarray) -> tuple[float, float]:
            lo, hi = _engine.percentile_interval(values, confidence)
            return (float(lo), float(hi))

        intervals["accuracy"] = pairs(b_acc[:, 0])
        overall_iv["accuracy"] = pair(b_all[:, 0])
        for m, name in enumerate(names, start=1):
            drops = _rate(b_right[:, 0] - b_right[:, m], b_count[:, 0])  # (R, G)
            intervals[f"{name}_accuracy"] = pairs(b_acc[:, m])
            intervals[f"{name}_change"] = pairs(_rate(b_right[:, m] - b_right[:, 0], b_count[:, 0]))
            overall_iv[f"{name}_accuracy"] = pair(b_all[:, m])
            overall_iv[f"{name}_change"] = pair(_rate(b_right[:, m].sum(-1) - b_right[:, 0].sum(-1),
                                                      b_count.sum(-1)[:, 0]))
            # the observed worst group (and pair), fixed: a percentile interval of a max over
            # groups is biased upward and can exclude the estimate (see _intervals)
            for key in (f"{name}_worst_group_drop", f"{name}_drop_spread"):
                found = extremes[key]
                if found is not None:
                    disparity_iv[key] = _intervals.symmetric_interval(
                        found.value, _intervals.extreme_samples(found, {f"{name}_drop": drops},
                                                                {f"{name}_drop": np.full(n_boot, np.nan)}),
                        confidence, bounds=_intervals.RANGES[found.kind])
        if top is not None and top in disparity_iv:
            disparity_iv["worst_group_drop"] = disparity_iv[top]
    warnings = tuple(f"group {g!r} has {int(c)} rows (< {min_group_size}): its accuracy changes are unreliable "
                     "and it is left out of the worst drop and the spread"
                     for g, c in zip(labels, count, strict=True) if 0 < c < min_group_size)
    small = tuple(g for g, c, ok in zip(labels, count, ranked, strict=True) if c > 0 and not ok)
    return GroupTable(feature=feature, groups=labels, by_group=by_group, overall=overall, disparities=disparities,
                      intervals=intervals, overall_intervals=overall_iv, disparity_intervals=disparity_iv,
                      n_boot=n_boot, confidence=confidence, min_group_size=min_group_size, warnings=warnings,
                      small_groups=small)


def _right_by_model(cells: np.ndarray, n_models: int) -> np.ndarray:
    """``(..., G, 2^M)`` joint-outcome counts -> ``(M, ..., G)`` rows each model got right."""
    patterns = np.arange(cells.shape[-1])
    return np.stack([cells[..., (patterns >> m) & 1 == 1].sum(-1) for m in range(n_models)])


def _rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def _named(labels: Sequence[str], values: np.ndarray) -> dict[str, float]:
    return {g: float(v) for g, v in zip(labels, values, strict=True)}


def worst_hit(table: GroupTable, variant: str) -> tuple[str, float]:
    """The group ``variant`` hurts most in ``table`` and its accuracy drop (original minus variant)."""
    changes = table.by_group.get(f"{variant}_change")
    if changes is None:
        raise UnknownNameError("variant", variant, [k.removesuffix("_change") for k in table.by_group
                                                    if k.endswith("_change")])
    finite = {g: -v for g, v in changes.items() if np.isfinite(v)}
    group = max(finite, key=finite.__getitem__)
    return group, finite[group]


def default_variants(handle: ModelHandle) -> list[str]:
    """The trained zoo entries registered as compressions of ``handle``'s model."""
    from xai.zoo import is_trained
    from xai.zoo.tinyml import COMPRESSED_FROM

    return [v for v, original in COMPRESSED_FROM.items() if original == handle.name and is_trained(v)]


@register_probe("compression")
class CompressionProbe(Probe):
    """Per-group accuracy change between a model and its pruned, quantized or distilled variants.

    For each sensitive column (and, with ``per_class``, each true class) the table gives the
    original's accuracy, each variant's accuracy and change, the worst group drop of each
    variant and how unevenly the drops spread, with paired bootstrap intervals; the notes
    name each variant's worst-hit group. Options: ``variants`` (zoo names, entry folders
    or handles; default: the trained zoo entries that compress this model, e.g.
    ``lenet-pruned80``), ``per_class`` (default true), ``n_boot`` (1000, 0 for none),
    ``confidence`` (0.95), ``min_group_size`` (30). Gate on ``worst_group_drop``.
    Paper: https://arxiv.org/abs/1911.05248.
    """

    class Options(ProbeOptions):
        """The compression probe's options."""

        #: Zoo names, entry folders or handles of the variants; ``None``: the trained zoo
        #: entries that compress the model.
        variants: list[str | InstanceOf[ModelHandle]] | str | InstanceOf[ModelHandle] | None = None
        #: Also tabulate the rows grouped by their true class.
        per_class: bool = True
        #: Paired bootstrap resamples for the intervals (0: none).
        n_boot: int = Field(default=1000, ge=0, le=_engine.MAX_N_BOOT)
        #: Nominal coverage of the intervals.
        confidence: float = Field(default=0.95, gt=0, lt=1)
        #: Groups with fewer rows are flagged.
        min_group_size: int = Field(default=MIN_GROUP_SIZE, ge=0)

    paper = "https://arxiv.org/abs/1911.05248"

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """Not a classifier, or (without the option ``variants``) no trained compressed variant known."""
        reason = super().why_not(handle)
        if reason is None and not default_variants(handle):
            reason = (f"no trained compressed variant of {handle.name} is known; pass the option "
                      "variants = [\"NAME\", ...]")
        return reason

    @classmethod
    def check_applies_given(cls, handle: ModelHandle, options: Any) -> None:
        """With explicit ``variants`` only the capabilities matter; without, the zoo must know some."""
        reason = super().why_not(handle) if options.variants is not None else cls.why_not(handle)
        if reason:
            raise NotApplicableError(f"{cls.name} does not apply to {handle.name}: {reason}")

    def resolve(self, options: Any) -> dict[str, Any]:
        """Load the variants (default: the zoo's compressions of the model) and check they match it."""
        specs = options.variants
        if specs is None:
            specs = default_variants(self.handle)
        if isinstance(specs, str | ModelHandle):
            specs = [specs]
        self.variants = [self._load(spec) for spec in specs]
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names) or self.handle.name in names:
            raise DataError(f"variants must be distinct from each other and from {self.handle.name}: {names}")
        return {"variants": names, **options.model_dump(exclude={"sensitive", "variants"})}

    def _load(self, spec: str | ModelHandle) -> ModelHandle:
        if isinstance(spec, ModelHandle):
            variant = spec
        else:
            from xai.zoo import load_model

            variant = load_model(str(spec))
        if variant.task != self.handle.task or tuple(variant.class_names) != tuple(self.handle.class_names):
            raise DataError(f"variant {variant.name} ({variant.task}, classes {', '.join(variant.class_names)}) "
                            f"does not classify like {self.handle.name}")
        if tuple(variant.input_shape) != tuple(self.handle.input_shape):
            raise DataError(f"variant {variant.name} takes inputs {tuple(variant.input_shape)}, "
                            f"{self.handle.name} takes {tuple(self.handle.input_shape)}")
        return variant

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> FairnessResult:
        """Predict ``data`` with the original and every variant; tabulate each sensitive column (and class)."""
        if len(data) == 0:
            raise DataError("no rows to probe")
        for column in sensitive:
            if column not in data.groups.columns:
                raise UnknownNameError("sensitive column", column, data.groups.columns)
        if not sensitive and not self.options["per_class"]:
            raise DataError("name a sensitive column or keep per_class on")
        start = time.perf_counter()
        y = data.y.numpy()
        original = self.handle.predict(data.x).argmax(1).numpy()
        variants = {v.name: v.predict(data.x).argmax(1).numpy() for v in self.variants}
        options = {"n_boot": self.options["n_boot"], "confidence": self.options["confidence"], "seed": seed,
                   "min_group_size": self.options["min_group_size"]}
        columns: dict[str, np.ndarray] = {c: data.groups[c].astype(str).to_numpy() for c in sensitive}
        if self.options["per_class"] and CLASS_FEATURE not in columns:
            columns[CLASS_FEATURE] = np.asarray(self.handle.class_names, dtype=object)[y].astype(str)
        tables = tuple(compression_table(y, original, variants, values, feature, **options)
                       for feature, values in columns.items())
        notes = []
        for table in tables:
            for name in variants:
                group, drop = worst_hit(table, name)
                before = table.by_group["accuracy"][group]
                overall = table.overall[f"{name}_change"]
                if drop > 0:
                    notes.append(f"{table.feature}: {name} hits {group!r} hardest: accuracy {before:.3f} -> "
                                 f"{before - drop:.3f} ({-drop:+.3f}; overall {overall:+.3f})")
                else:
                    notes.append(f"{table.feature}: {name} costs no group accuracy (overall {overall:+.3f})")
            notes.extend(table.warnings)
        metric_names = ("accuracy", "count", *(f"{n}_{k}" for n in variants for k in ("accuracy", "change")))
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"{data.name}:{data.split}",
            metric_names=metric_names,
            tables=tables,
            notes=tuple(notes),
            provenance=Provenance(
                model_sha256=self.handle.sha256,
                data_sha256=data.sha256,
                seed=seed,
                wall_seconds=round(time.perf_counter() - start, 4),
                device=str(self.handle.device),
            ),
        )


def compare_predictions(y_true: Any, original: Any, variants: Mapping[str, Any], groups: pd.DataFrame, *,
                        seed: int = 0, **options: Any) -> tuple[GroupTable, ...]:
    """:func:`compression_table` for each column of ``groups`` (predictions already made)."""
    return tuple(compression_table(y_true, original, variants, groups[c].astype(str).to_numpy(), str(c),
                                   seed=seed, **options) for c in groups.columns)
