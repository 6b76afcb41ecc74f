"""The Ray engine (``--engine ray``): Ray Data reads the blocks, workers count them, the driver merges the counts.

Each worker runs the local engine's counter (``stream._Counter``) over its blocks and
returns it; the driver merges the counters by their raw values and gives the values their
meaning once, exactly as the local engine does after one pass, so both engines give the
same table (integer cells exactly; score sums to the last bits of their summation order).
Ray is an optional extra (``pip install 'xai-audit[ray]'``), imported only here.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xai.errors import DataError
from xai.fairness import stream
from xai.fairness.stream import CountTable, PredictionTask

__all__ = ["scan_predictions_ray"]


def _count_block(block: Any, spec: stream._Spec) -> dict[str, list[Any]]:
    """A worker's count of one block: the pickled counter, or the one-line error it met."""
    counter = stream._Counter(spec)
    try:
        for batch in block.to_batches():
            counter.feed(batch)
    except stream._TooMany as exc:
        return {"counter": [b""], "error": [stream._too_many(exc, counter, iter(())).args[0]]}
    except DataError as exc:
        return {"counter": [b""], "error": [str(exc)]}
    # the driver unpickles what its own workers pickled (Ray itself moves every object this way)
    return {"counter": [pickle.dumps(counter, protocol=pickle.HIGHEST_PROTOCOL)], "error": [""]}


def _start_ray(address: str | None, num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    import xai

    root = str(Path(xai.__file__).resolve().parents[1])  # workers import the driver's xai
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}}, configure_logging=False)


def scan_predictions_ray(path: str | Path, *, y_true: str, sensitive: Sequence[str], y_pred: str | None = None,
                         score: str | None = None, threshold: float = 0.5, pos_label: str | None = None,
                         task: PredictionTask = "binary", max_groups: int | None = None,
                         address: str | None = None, num_cpus: int | None = None) -> CountTable:
    """:func:`~xai.fairness.stream.scan_predictions` with Ray Data: a ``.csv`` or ``.parquet`` file or folder.

    Uses the running Ray cluster, or starts one (``address``: an existing cluster's;
    ``num_cpus``: the size of a local one). Error messages are the local engine's, except
    that a missing value's first row is counted within its block.
    """
    try:
        import ray.data
    except ImportError:
        raise DataError("--engine ray needs Ray Data: pip install 'xai-audit[ray]'") from None
    from pyarrow import csv as pacsv

    stream._check_arguments(y_pred=y_pred, score=score, sensitive=sensitive, threshold=threshold,
                            pos_label=pos_label, task=task)
    path = Path(path)
    label_col = y_pred if y_pred is not None else score
    assert label_col is not None
    projected = list(dict.fromkeys([y_true, label_col, *sensitive]))
    source = stream._open(path, projected, sensitive, stream.BATCH_ROWS)  # checks the columns; reads no rows
    if path.is_file() and path.suffix.lower() not in (*stream._CSV, *stream._PARQUET):
        raise DataError(f"--engine ray reads .csv and .parquet files and folders, got {path.name}")
    spec = stream._make_spec(path, y_true=y_true, sensitive=sensitive, y_pred=y_pred, score=score,
                             threshold=threshold, pos_label=pos_label, task=task, max_groups=max_groups,
                             text=source.text)
    digest: list[str] = []
    stream._hash_input(path, digest)
    _start_ray(address, num_cpus)
    if source.text:
        convert = pacsv.ConvertOptions(include_columns=projected,
                                       column_types={c: "string" for c in projected},
                                       null_values=list(stream._PANDAS_NA), strings_can_be_null=True,
                                       quoted_strings_can_be_null=True)
        data = ray.data.read_csv(str(path), convert_options=convert)
    else:
        data = ray.data.read_parquet(str(path)).select_columns(projected)  # projection pushed down
    counts = data.map_batches(_count_block, fn_kwargs={"spec": spec},  # type: ignore[arg-type]
                              batch_format="pyarrow", batch_size=None, zero_copy_batch=True)
    counter = stream._Counter(spec)
    for row in counts.iter_rows():
        if row["error"]:
            raise DataError(row["error"])
        try:
            counter.merge(pickle.loads(row["counter"]))
        except stream._TooMany as exc:  # the blocks together have more groups than allowed
            raise stream._too_many(exc, counter, iter(())) from None
    return counter.finish(source.name, digest[0], path)


class _ModelCounting:
    """A Ray Data actor: the model loaded once (its handle unpickled at start), each block predicted and counted.

    Returns one row per block: the pickled counts and stratified sample of its rows, or the
    one-line error it met.
    """

    def __init__(self, handle: Any, source: Any, spec: stream._Spec, seed: int, per_group: int) -> None:
        self.handle, self.source, self.spec, self.seed, self.per_group = handle, source, spec, seed, per_group

    def __call__(self, block: Any) -> dict[str, list[Any]]:
        from xai.audit.streamed import ModelCounter

        part = ModelCounter(self.handle, self.spec, self.per_group)
        self.source.skipped = []  # this block's undecodable images only (the actor serves many blocks)
        try:
            if self.source.listing is not None:
                batch = self.source.image_batch(block.to_pandas(), self.handle, self.seed)
                if len(batch.y):
                    part.feed(batch)
            else:
                for record in block.to_batches():
                    batch = self.source.table_batch(record, self.handle, self.seed)
                    if len(batch.y):
                        part.feed(batch)
        except stream._TooMany as exc:
            return {"part": [b""], "skipped": [[]], "error": [stream._too_many(exc, part.counter, iter(())).args[0]]}
        except DataError as exc:
            return {"part": [b""], "skipped": [[]], "error": [str(exc)]}
        return {"part": [part.dumps()], "skipped": [list(self.source.skipped)], "error": [""]}


def count_model_ray(handle: Any, source: Any, spec: stream._Spec, *, seed: int, per_group: int,
                    address: str | None = None, num_cpus: int | None = None, concurrency: int = 2) -> Any:
    """Count a model's predictions on ``source`` with Ray Data: ``concurrency`` actors, one model each.

    Ray Data reads the table's partitions (only the projected columns), or the image
    listing's rows; each actor predicts its blocks and counts them with the local
    engine's counter; the driver merges the counters and samples
    (:class:`~xai.audit.streamed.ModelCounter`), so the numbers are the local engine's.
    """
    try:
        import ray.data
    except ImportError:
        raise DataError("--engine ray needs Ray Data: pip install 'xai-audit[ray]'") from None
    import dataclasses

    from pyarrow import csv as pacsv

    from xai.audit.streamed import ModelCounter

    _start_ray(address, num_cpus)
    if source.listing is not None:
        listing = source.listing
        frame = listing.frame[["_file", "_id", "_y", *spec.sensitive]].astype({c: str for c in spec.sensitive})
        data = ray.data.from_pandas(frame).repartition(max(1, -(-len(frame) // source.source.batch_size)))
        # the actors decode with the listing's rules; its frame stays on the driver
        channels, size = listing._image_geometry(handle)  # fixed here: the actors see no listing to measure
        fixed = dataclasses.replace(listing.source, size=size, channels=channels)
        shipped = dataclasses.replace(source, listing=dataclasses.replace(listing, frame=frame.iloc[:0],
                                                                          source=fixed, notes=[]),
                                      skipped=[], notes=[])
    else:
        path = str(source.source.path)
        if source.text:
            convert = pacsv.ConvertOptions(include_columns=source.projected, column_types=source._types(),
                                           null_values=list(stream._PANDAS_NA), strings_can_be_null=True,
                                           quoted_strings_can_be_null=True)
            data = ray.data.read_csv(path, convert_options=convert)
        else:
            files = sum(1 for f in Path(path).rglob("*.parquet")) if Path(path).is_dir() else 1
            # projection pushed down; at least one block per actor, one per file of a partitioned folder
            data = ray.data.read_parquet(path, override_num_blocks=max(concurrency, files)
                                         ).select_columns(source.projected)
        shipped = dataclasses.replace(source, skipped=[], notes=[])
    parts = data.map_batches(_ModelCounting, fn_constructor_kwargs={
        "handle": handle, "source": shipped, "spec": spec, "seed": seed, "per_group": per_group},
        batch_format="pyarrow", batch_size=None, compute=ray.data.ActorPoolStrategy(size=concurrency),
        # half a CPU each: the actors' reservations must leave room for Ray Data's listing and read tasks
        # (two whole-CPU actors on a 2-CPU cluster wait forever for a CPU to list the files)
        num_cpus=0.5)
    merged = ModelCounter(handle, spec, per_group)
    for row in parts.iter_rows():
        if row["error"]:
            raise DataError(row["error"])
        source.skipped.extend(row["skipped"])
        try:
            merged.load_part(row["part"])
        except stream._TooMany as exc:  # the blocks together have more groups than allowed
            raise stream._too_many(exc, merged.counter, iter(())) from None
    return merged
