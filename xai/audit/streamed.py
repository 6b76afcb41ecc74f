"""A model audit on the user's data streamed in batches: every row counted, a stratified sample explained.

The model predicts one batch at a time; its predictions (and, for a binary task, the
positive class's softmax probability) go into the count engine's counter
(:mod:`xai.fairness.stream`), the same one ``xai fairness --data`` uses for prediction
files, so memory holds a batch, the count table and the sample, never the rows. The
group-metrics probe is the count table's (:func:`~xai.fairness.stream.tabulate_counts`),
equal to the probe on the rows in memory; explainers, other probes and method sections
run on a seeded stratified sample of ``per_group`` rows of each sensitive group
(:class:`~xai.datasets._stream.StratifiedSample`). The Ray engine
(:func:`xai.fairness._ray.count_model_ray`) runs the same counting on actors and merges.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from xai.errors import DataError

if TYPE_CHECKING:
    from xai.datasets._base import Dataset
    from xai.datasets._stream import Batch, StreamSource
    from xai.fairness.stream import CountTable, _Counter
    from xai.zoo.handle import ModelHandle

__all__ = ["Counted", "ModelCounter", "count_model"]

Engine = Literal["local", "ray"]
#: Rows of each sensitive group (their intersection) kept for explanations unless ``per_group`` says otherwise.
PER_GROUP = 32


def _spec(handle: ModelHandle, source: StreamSource, sensitive: tuple[str, ...], max_groups: int | None) -> Any:
    from xai.fairness.group import MAX_GROUPS
    from xai.fairness.stream import _Spec

    if handle.task not in ("classification", "binary-classification"):
        raise DataError(f"a streamed audit counts a classifier's predictions; {handle.name} is a {handle.task} model")
    binary = handle.task == "binary-classification"
    return _Spec(y_true="_y", sensitive=sensitive, y_pred="_pred", score=None, threshold=0.5, pos_label=None,
                 task="binary" if binary else "multiclass", limit=MAX_GROUPS if max_groups is None else max_groups,
                 text=source.text, y_score="_score" if binary else None)


class ModelCounter:
    """Predict batches and count them (a count-engine counter) while keeping the stratified sample."""

    def __init__(self, handle: ModelHandle, spec: Any, per_group: int) -> None:
        from xai.datasets._stream import StratifiedSample
        from xai.fairness.stream import _Counter

        self.handle = handle
        self.spec = spec
        self.counter: _Counter = _Counter(spec)
        self.sample = StratifiedSample(per_group)

    def feed(self, batch: Batch) -> None:
        """Predict ``batch`` and add it to the counts and the sample."""
        import pyarrow as pa
        import torch

        outputs = self.handle.predict(batch.x)  # (B, K)
        names = ["_y", "_pred"]
        arrays = [pa.array(np.asarray(batch.y, dtype=np.int64)), pa.array(outputs.argmax(1).numpy().astype(np.int64))]
        if self.spec.y_score is not None:
            names.append("_score")
            arrays.append(pa.array(torch.softmax(outputs.double(), dim=1)[:, 1].numpy()))
        for column in self.spec.sensitive:
            names.append(column)
            arrays.append(batch.groups[column])
        self.counter.feed(pa.RecordBatch.from_arrays(arrays, names=names))
        self.sample.offer(batch, self.spec.sensitive)

    def merge(self, other: ModelCounter) -> ModelCounter:
        """Add another part's counts and sample (another batch, file or worker)."""
        self.counter.merge(other.counter)
        self.sample.merge(other.sample)
        return self

    def dumps(self) -> bytes:
        """The counts and the sample, pickled for the driver (a worker's own objects, never a user's file)."""
        return pickle.dumps((self.counter, self.sample), protocol=pickle.HIGHEST_PROTOCOL)

    def load_part(self, blob: bytes) -> None:
        """Merge a part pickled by :meth:`dumps` on a worker of this run."""
        counter, sample = pickle.loads(blob)
        self.counter.merge(counter)
        self.sample.merge(sample)


@dataclass(frozen=True)
class Counted:
    """A streamed pass: the count table of every row, the stratified sample, and the data's hash."""

    table: CountTable
    sample: Dataset
    rows: int
    sha256: str


def count_model(handle: ModelHandle, source: StreamSource, *, sensitive: tuple[str, ...], seed: int,
                per_group: int = PER_GROUP, max_groups: int | None = None, engine: Engine = "local",
                address: str | None = None, num_cpus: int | None = None) -> Counted:
    """Predict every row of ``source`` in batches and count them; keep ``per_group`` rows per group.

    Raises
    ------
    DataError
        A non-classifier, a sensitive column with too many groups, data with no usable rows.
    """
    from xai.fairness import stream

    spec = _spec(handle, source, sensitive, max_groups)
    if engine == "ray":
        from xai.fairness._ray import count_model_ray

        part = count_model_ray(handle, source, spec, seed=seed, per_group=per_group, address=address,
                               num_cpus=num_cpus)
    else:
        part = ModelCounter(handle, spec, per_group)
        batches = source.batches(handle, seed)
        try:
            for batch in batches:
                part.feed(batch)
        except stream._TooMany as exc:
            raise stream._too_many(exc, part.counter, iter(())) from None
    source.finish_notes()
    if part.counter.rows == 0:
        raise DataError(f"{source.name}: no rows could be read (none of its images can be decoded?)")
    digest: list[str] = []
    stream._hash_input(source.source.path, digest)
    table = part.counter.finish(source.name, digest[0], source.source.path)
    typed = [_namer(levels, spec.text) for levels in part.counter.groups]
    sample = source.sample_dataset(handle, part.sample.resolve(typed))
    return Counted(table=table, sample=sample, rows=part.counter.rows, sha256=digest[0])


def _namer(levels: Any, text: bool) -> Any:
    """Raw value -> the group's name in the count table (pandas' typing of the whole column)."""
    from xai.fairness.stream import _typed

    names = dict(zip(levels.values, _typed(levels, text).texts, strict=True))
    return names.__getitem__


def group_metrics_result(handle: ModelHandle, counted: Counted, data_name: str, options: dict[str, Any],
                         seed: int) -> Any:
    """The group-metrics probe's :class:`~xai.fairness.FairnessResult` from the count table of every row."""
    import time

    from xai._provenance import Provenance
    from xai.fairness._base import FairnessResult
    from xai.fairness.group import BINARY_METRICS, MULTICLASS_METRICS
    from xai.fairness.stream import tabulate_counts

    start = time.perf_counter()
    binary = handle.task == "binary-classification"
    tables, intersection = tabulate_counts(counted.table, seed=seed, **options)
    return FairnessResult(
        probe="group-metrics",
        model=handle.name,
        dataset=f"{data_name}:all",
        metric_names=BINARY_METRICS if binary else MULTICLASS_METRICS,
        tables=tables,
        intersection=intersection,
        positive_class=handle.class_names[1] if binary else None,
        provenance=Provenance(model_sha256=handle.sha256, data_sha256=counted.sha256, seed=seed,
                              wall_seconds=round(time.perf_counter() - start, 4), device=str(handle.device)),
    )
