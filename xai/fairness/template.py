"""Template bias (EEC style): identical sentences that differ only in who they are about.

Kiritchenko & Mohammad (2018, https://arxiv.org/abs/1805.04508) built the Equity
Evaluation Corpus: sentiment templates ("<person> feels <emotion>") filled with words of
two groups (female and male noun phrases, African-American and European-American first
names); a system is biased when its scores differ between the two fillings of the same
template. This probe generates those sentences, scores them with a text classifier
(the positive-class probability), and compares the groups *pairwise over identical
frames* (template x emotion word): the mean difference, a Wilcoxon signed-rank test and
a paired t-test (scipy), and the frames with the largest gaps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from scipy import stats

from xai._method import Capabilities
from xai._provenance import Provenance
from xai.datasets import Dataset
from xai.datasets._text import EMOTIONS, TEMPLATES, Person, persons
from xai.errors import DataError, UnknownNameError
from xai.fairness._base import FairnessResult, GroupTable, Probe, ProbeOptions, register_probe
from xai.zoo.handle import ModelHandle

__all__ = ["AXES", "TemplateBias", "TemplateGap", "axis_words", "template_gaps"]

#: Axis -> (group A, group B): the persons of the generator that belong to each.
AXES: dict[str, tuple[str, str]] = {"gender": ("female", "male"),
                                    "name_group": ("african-american", "european-american")}


def axis_words(axis: str) -> dict[str, tuple[Person, ...]]:
    """The persons of each group of a built-in axis (``gender``: pronouns, noun phrases and names)."""
    if axis not in AXES:
        raise UnknownNameError("template-bias axis", axis, AXES)
    people = persons()
    attribute = "gender" if axis == "gender" else "name_group"
    return {group: tuple(p for p in people if getattr(p, attribute) == group) for group in AXES[axis]}


@dataclass(frozen=True)
class TemplateGap:
    """The paired comparison of two groups over identical frames.

    Attributes
    ----------
    frames
        ``template`` with ``<person>`` in the person's place, one per frame.
    scores_a, scores_b
        Each frame's mean positive score over the group's words ``(F,)``.
    """

    axis: str
    groups: tuple[str, str]
    frames: tuple[str, ...]
    scores_a: np.ndarray
    scores_b: np.ndarray
    words: tuple[int, int]

    @property
    def differences(self) -> np.ndarray:
        """``a - b`` per frame ``(F,)``."""
        return self.scores_a - self.scores_b

    @property
    def mean_difference(self) -> float:
        """Mean paired difference (group a minus group b)."""
        return float(self.differences.mean())

    def wilcoxon_p(self) -> float:
        """Two-sided Wilcoxon signed-rank p-value (1 when every difference is 0)."""
        d = self.differences
        if np.allclose(d, 0.0, rtol=0.0, atol=1e-12):
            return 1.0
        return float(stats.wilcoxon(self.scores_a, self.scores_b).pvalue)

    def ttest_p(self) -> float:
        """Two-sided paired t-test p-value (1 when every difference is 0)."""
        d = self.differences
        if np.allclose(d, 0.0, rtol=0.0, atol=1e-12):
            return 1.0
        if np.allclose(d, d[0], rtol=0.0, atol=1e-12):  # constant non-zero shift: no variance
            return 0.0
        return float(stats.ttest_rel(self.scores_a, self.scores_b).pvalue)

    def largest(self, top: int) -> dict[str, float]:
        """The ``top`` frames with the largest |difference|, signed, largest first."""
        d = self.differences
        order = np.argsort(-np.abs(d), kind="stable")[:top]
        return {self.frames[i]: float(d[i]) for i in order}


def _frames(templates: Sequence[str], emotions: Sequence[str]) -> list[tuple[str, str]]:
    return [(t, e) for t in templates for e in emotions]


Score = Literal["probability", "log-odds"]
SCORES: tuple[Score, ...] = ("probability", "log-odds")
#: Default smallest mean gap that is flagged, per score scale.
MIN_GAP = {"probability": 0.01, "log-odds": 0.1}


@torch.no_grad()
def positive_scores(handle: ModelHandle, texts: list[str], positive: int, *, score: str = "probability",
                    batch_size: int = 512, cache: dict[str, float] | None = None) -> np.ndarray:
    """Score of class ``positive`` for each sentence ``(N,)``.

    ``probability``: its softmax probability; ``log-odds``: ``log p / (1 - p)`` computed
    from the logits (not saturated when the model is confident). ``cache`` maps sentences
    already scored to their score (filled as a side effect).
    """
    if handle.preprocess is None:
        raise DataError(f"{handle.name} has no tokenizer (handle.preprocess) to encode sentences")
    if score not in SCORES:
        raise DataError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
    cache = {} if cache is None else cache
    todo = list(dict.fromkeys(t for t in texts if t not in cache))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        logits = handle.predict(handle.preprocess(chunk)).float()  # (B, classes)
        log_p = torch.log_softmax(logits, dim=1)
        if score == "probability":
            values = log_p[:, positive].exp()
        else:
            others = torch.cat([logits[:, :positive], logits[:, positive + 1:]], dim=1)
            values = logits[:, positive] - torch.logsumexp(others, dim=1)
        cache.update(zip(chunk, values.tolist(), strict=True))
    return np.array([cache[t] for t in texts], dtype=np.float64)


def template_gaps(handle: ModelHandle, axis: str, groups: Mapping[str, Sequence[Person]], *,
                  positive: int, templates: Sequence[str] = TEMPLATES,
                  emotions: Sequence[str] = tuple(EMOTIONS), score: str = "probability",
                  cache: dict[str, float] | None = None) -> TemplateGap:
    """Score every frame filled with every word of both groups; average per frame and group."""
    if len(groups) != 2:
        raise DataError(f"template bias compares two groups; {axis} has {len(groups)}: {', '.join(groups)}")
    frames = _frames(templates, emotions)
    (name_a, people_a), (name_b, people_b) = groups.items()
    if not people_a or not people_b:
        raise DataError(f"{axis}: every group needs at least one word")
    means = []
    for people in (people_a, people_b):
        texts = [t.format(s=p.subject, o=p.object, e=e) for t, e in frames for p in people]
        scores = positive_scores(handle, texts, positive, score=score, cache=cache).reshape(len(frames), len(people))
        means.append(scores.mean(1))  # (F,)
    labels = tuple(t.format(s="<person>", o="<person>", e=e) for t, e in frames)
    return TemplateGap(axis, (name_a, name_b), labels, means[0], means[1], (len(people_a), len(people_b)))


def _custom_groups(axis: str, spec: Any) -> dict[str, tuple[Person, ...]]:
    if not isinstance(spec, Mapping) or not all(isinstance(v, list | tuple) for v in spec.values()):
        raise DataError(f"words.{axis} must map each group to a list of words")
    return {str(g): tuple(Person(str(w), str(w), "", "", "custom") for w in words) for g, words in spec.items()}


@register_probe("template-bias")
class TemplateBias(Probe):
    """EEC-style template bias of a text classifier's positive score between two groups.

    Each sensitive name is an axis: ``gender`` (female vs male pronouns, noun phrases and
    names), ``name_group`` (African-American vs European-American first names), or one
    given in ``words``. Sentences come from the sentiment templates x the emotion words
    (the data does not matter: only its name is recorded). Per axis, the table has each
    group's mean positive score, ``mean_score_difference`` (|mean paired difference|) and
    ``max_template_gap`` as disparities, and the signed ``mean_difference``, the Wilcoxon
    and paired-t p-values and ``flagged`` (1 when ``wilcoxon_p < alpha`` and the mean
    difference reaches ``min_gap``) overall; ``rankings`` lists the ``top`` frames with the
    largest gaps. Paper: https://arxiv.org/abs/1805.04508.

    Options
    -------
    positive
        Index or name of the positive class (default the class named ``positive``, else 1).
    words
        Extra axes ``{axis: {group: [word, ...]}}`` (two groups; a word fills both the
        subject and the object slot).
    templates
        Templates with ``{s}`` / ``{o}`` (the person) and ``{e}`` (the emotion word).
    score
        ``probability`` of the positive class (default) or its ``log-odds`` (which a
        confident model does not saturate; ``min_gap`` is then in log-odds).
    top, alpha, min_gap
        Frames listed (5), test level (0.05) and the smallest mean gap flagged (0.01 in
        probability, 0.1 in log-odds).

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.fairness import create_probe
    >>> from xai.zoo import load_model
    >>> probe = create_probe("template-bias", load_model("bert-mini"), templates=["{s} feels {e}"],
    ...                      words={"pronoun": {"female": ["she"], "male": ["he"]}})
    >>> table = probe.probe(load_dataset("sentiment-text"), sensitive=["pronoun"]).tables[0]
    >>> table.groups, table.by_group["count"]  # 1 template x 24 emotion words per group
    (('female', 'male'), {'female': 24.0, 'male': 24.0})
    >>> table.overall["flagged"]  # the mean gap is far below min_gap (0.01)
    0.0

    With the default templates and a built-in axis (``gender``, ``name_group``) every template
    is filled with every person word of the axis: more sentences, slower.
    """

    class Options(ProbeOptions):
        """Template bias' options."""

        #: Index or name of the positive class; ``None``: the class named ``positive``, else 1.
        positive: int | str | None = None
        #: Extra axes ``{axis: {group: [word, ...]}}`` (two groups per axis).
        words: dict[str, dict[str, list[str]]] | None = None
        #: Templates with ``{s}`` / ``{o}`` (the person) and ``{e}`` (the emotion word); ``None``: the built-in ones.
        templates: list[str] | None = None
        #: The positive class's ``probability`` or its ``log-odds``.
        score: Score = "probability"
        #: Frames with the largest gaps listed per axis.
        top: int = Field(default=5, ge=0)
        #: Level of the Wilcoxon test that flags a gap.
        alpha: float = Field(default=0.05, gt=0, le=1)
        #: Smallest mean gap flagged; ``None``: 0.01 in probability, 0.1 in log-odds.
        min_gap: float | None = Field(default=None, ge=0)

        @field_validator("templates")
        @classmethod
        def _slots(cls, templates: list[str] | None) -> list[str] | None:
            for template in templates or ():
                if "{e}" not in template or not ("{s}" in template or "{o}" in template):
                    raise ValueError(f"template {template!r} needs {{e}} and {{s}} or {{o}}")
            return templates

    paper = "https://arxiv.org/abs/1805.04508"
    #: Text classifiers with a tokenizer (the sentences are encoded by the model's own).
    capabilities: ClassVar[Capabilities] = replace(
        Probe.capabilities, modalities=frozenset({"text"}), needs_tokenizer=True)

    def resolve(self, options: Any) -> dict[str, Any]:
        """Resolve ``positive`` to a class index, ``templates`` and ``min_gap`` to their defaults."""
        self._cache: dict[str, float] = {}
        #: Custom axes from ``words``: ``{axis: {group: persons}}``.
        self.words = {str(k): _custom_groups(str(k), v) for k, v in (options.words or {}).items()}
        return {"positive": self._positive_index(options.positive), "words": options.words,
                "templates": tuple(options.templates) if options.templates else TEMPLATES,
                "score": options.score, "top": options.top, "alpha": options.alpha,
                "min_gap": options.min_gap if options.min_gap is not None else MIN_GAP[options.score]}

    def _positive_index(self, positive: int | str | None) -> int:
        names = list(self.handle.class_names)
        if positive is None:
            return names.index("positive") if "positive" in names else 1
        if isinstance(positive, str) and not positive.isdigit():
            if positive not in names:
                raise UnknownNameError("class", positive, names)
            return names.index(positive)
        index = int(positive)
        if not 0 <= index < len(names):
            raise DataError(f"positive must be a class index 0..{len(names) - 1}, got {positive!r}")
        return index

    def axes(self) -> list[str]:
        """Names of the axes this probe knows (built-in and from ``words``)."""
        return sorted({*AXES, *self.words})

    def gap(self, axis: str) -> TemplateGap:
        """The paired comparison on one axis."""
        groups = self.words[axis] if axis in self.words else axis_words(axis)
        return template_gaps(self.handle, axis, groups, positive=self.options["positive"],
                             templates=self.options["templates"], score=self.options["score"], cache=self._cache)

    def probe(self, data: Dataset, *, sensitive: list[str], seed: int = 0) -> FairnessResult:
        """Compare the groups of each axis named in ``sensitive``."""
        if not sensitive:
            raise DataError(f"name at least one axis: {', '.join(self.axes())}")
        for axis in sensitive:
            if axis not in self.axes():
                raise UnknownNameError("template-bias axis", axis, self.axes())
        start = time.perf_counter()
        tables, rankings, notes = [], {}, []
        for axis in sensitive:
            gap = self.gap(axis)
            tables.append(self._table(gap))
            rankings[axis] = gap.largest(self.options["top"])
            notes.append(f"{axis}: {len(gap.frames)} frames x {gap.words[0]} {gap.groups[0]} / "
                         f"{gap.words[1]} {gap.groups[1]} words")
        return FairnessResult(
            probe=self.name,
            model=self.handle.name,
            dataset=f"templates ({len(self.options['templates'])} x {len(EMOTIONS)} emotion words)",
            metric_names=("mean_score", "count"),
            tables=tuple(tables),
            positive_class=self.handle.class_names[self.options["positive"]],
            notes=tuple(notes),
            rankings=rankings,
            provenance=Provenance(
                model_sha256=self.handle.sha256,
                data_sha256=data.sha256,
                seed=seed,
                wall_seconds=round(time.perf_counter() - start, 4),
                device=str(self.handle.device),
            ),
        )

    def _table(self, gap: TemplateGap) -> GroupTable:
        a, b = gap.groups
        mean_diff = gap.mean_difference
        p_wilcoxon, p_t = gap.wilcoxon_p(), gap.ttest_p()
        flagged = p_wilcoxon < self.options["alpha"] and abs(mean_diff) >= self.options["min_gap"]
        frames = len(gap.frames)
        warnings = () if frames >= 10 else (f"only {frames} frames: the paired tests have little power",)
        return GroupTable(
            feature=gap.axis,
            groups=(a, b),
            by_group={"mean_score": {a: float(gap.scores_a.mean()), b: float(gap.scores_b.mean())},
                      "count": {a: float(frames * gap.words[0]), b: float(frames * gap.words[1])}},
            overall={"mean_score": float((gap.scores_a.mean() + gap.scores_b.mean()) / 2),
                     "count": float(frames * sum(gap.words)),
                     "mean_difference": mean_diff, "wilcoxon_p": p_wilcoxon, "ttest_p": p_t,
                     "flagged": float(flagged)},
            disparities={"mean_score_difference": abs(mean_diff),
                         "max_template_gap": float(np.abs(gap.differences).max())},
            min_group_size=0,
            warnings=warnings,
        )
