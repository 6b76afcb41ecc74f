"""Users' own data streamed in batches: a model audit whose memory does not grow with the rows.

:func:`open_stream` checks a source as :func:`~xai.datasets._user.open_source` does (columns,
labels, files) but keeps no rows: tables are read with pyarrow one record batch at a time
and only the needed columns (label, features or text, sensitive; column projection), with
one first pass over the label column alone to learn the classes; an image folder or
manifest is listed (file names, labels and groups, not pixels) and decoded per batch; a
text table is tokenized per batch. Each :class:`Batch` carries model inputs, class indices,
the raw sensitive columns (typed at the end as pandas types the whole column, by the count
engine) and a sampling key per row.

:class:`StratifiedSample` keeps a fixed number of rows per sensitive group (the
intersection of the sensitive columns) for the explanations: the rows with the smallest
keys, where a row's key is a seeded hash of its content (a table row's inputs and label,
an image's path, a text and its label). The sample is therefore a function of the rows,
the seed and the count alone: the same for any batch size, order, partitioning or engine
(local or Ray), and samples of parts merge into the sample of the whole (bottom-k
sampling; a reservoir that merges exactly).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xai.errors import DataError, UnknownNameError

if TYPE_CHECKING:
    import pyarrow as pa
    import torch

    from xai.datasets._base import Dataset
    from xai.datasets._user import DataSource, SourceKind, UserSource
    from xai.zoo.handle import ModelHandle

__all__ = ["Batch", "SampleRow", "StratifiedSample", "StreamSource", "open_stream", "row_keys"]

#: Rows per batch of a table (features are small); image and text batches use the source's ``batch_size``.
TABLE_BATCH_ROWS = 65_536
_CSV = (".csv", ".gz")
_PARQUET = (".parquet", ".pq")
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    h = (h ^ (h >> np.uint64(30))) * _M1
    h = (h ^ (h >> np.uint64(27))) * _M2
    return h ^ (h >> np.uint64(31))


def row_keys(seed: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(B,)`` uint64 sampling keys of rows ``x`` ``(B, ...)`` float32 with labels ``y``: a seeded content hash."""
    words = np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), -1).view(np.uint32).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = _mix(np.full(len(x), np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ np.uint64(0x9E3779B97F4A7C15)))
        for j in range(words.shape[1]):
            h = _mix(h ^ words[:, j])
        return _mix(h ^ np.asarray(y, dtype=np.int64).astype(np.uint64))


def text_keys(seed: int, texts: Sequence[str], y: np.ndarray) -> np.ndarray:
    """``(B,)`` uint64 keys of texts (an image's path, a text): a seeded BLAKE2b of the text and the label."""
    salt = int(seed & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    return np.array([int.from_bytes(hashlib.blake2b(f"{t}\0{int(c)}".encode(), digest_size=8, key=salt).digest(),
                                    "little") for t, c in zip(texts, y, strict=True)], dtype=np.uint64)


@dataclass
class Batch:
    """Model-ready rows of one batch.

    Attributes
    ----------
    x
        Model inputs ``(B, ...)``.
    y
        Class indices ``(B,)`` int64.
    groups
        Raw sensitive columns (Arrow arrays), typed later as pandas would type the whole column.
    keys
        ``(B,)`` uint64 sampling keys (see :class:`StratifiedSample`).
    texts
        A text table's texts (the sample keeps these and tokenizes them again), else None.
    """

    x: torch.Tensor
    y: np.ndarray
    groups: dict[str, pa.Array]
    keys: np.ndarray
    texts: list[str] | None = None


@dataclass(frozen=True)
class SampleRow:
    """One kept row: its key, label, raw group values and what rebuilds it (inputs, or a text)."""

    key: int
    y: int
    group: tuple[Any, ...]
    payload: Any


class StratifiedSample:
    """At most ``per_group`` rows of every group: those with the smallest keys (mergeable bottom-k sampling)."""

    def __init__(self, per_group: int) -> None:
        if per_group < 1:
            raise DataError(f"per_group must be at least 1, got {per_group}")
        self.per_group = per_group
        self.rows: dict[tuple[Any, ...], list[SampleRow]] = {}

    def offer(self, batch: Batch, sensitive: Sequence[str]) -> None:
        """Keep the candidates of ``batch`` (per group, its ``per_group`` smallest keys)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(batch.y)
        if not n:
            return
        flat = np.zeros(n, dtype=np.int64)
        dictionaries: list[list[Any]] = []
        for name in sensitive:
            column = batch.groups[name]
            if not pa.types.is_dictionary(column.type):
                column = pc.dictionary_encode(column)
            indices = np.asarray(column.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
            dictionaries.append(column.dictionary.to_pylist())
            flat = flat * len(dictionaries[-1]) + indices
        order = np.lexsort((batch.keys, flat))  # by group, then by key
        flat_sorted = flat[order]
        starts = np.flatnonzero(np.r_[True, flat_sorted[1:] != flat_sorted[:-1]])
        for begin, end in zip(starts, [*starts[1:], n], strict=True):
            code = int(flat_sorted[begin])
            group = []
            for dictionary in reversed(dictionaries):
                code, index = divmod(code, len(dictionary))
                group.append(dictionary[index])
            picked = order[begin:min(end, begin + self.per_group)]
            rows = [SampleRow(int(batch.keys[i]), int(batch.y[i]), tuple(reversed(group)),
                              batch.texts[i] if batch.texts is not None else batch.x[i].numpy().copy())
                    for i in picked.tolist()]
            self._keep(tuple(reversed(group)), rows)

    def _keep(self, group: tuple[Any, ...], rows: list[SampleRow]) -> None:
        kept = self.rows.get(group, []) + rows
        kept.sort(key=lambda r: r.key)
        self.rows[group] = kept[: self.per_group]

    def merge(self, other: StratifiedSample) -> StratifiedSample:
        """The sample of both parts' rows (exact: the smallest keys of a union are among each part's smallest)."""
        for group, rows in other.rows.items():
            self._keep(group, rows)
        return self

    def resolve(self, typed: Sequence[Callable[[Any], str]]) -> list[tuple[tuple[str, ...], list[SampleRow]]]:
        """Rows per group named as the report names it (``typed[i]``: raw value -> group text), groups sorted.

        Raw values that name one group (a CSV's ``1`` and ``1.0``) are merged, keeping the smallest keys.
        """
        merged: dict[tuple[str, ...], list[SampleRow]] = {}
        for group, rows in self.rows.items():
            name = tuple(fn(v) for fn, v in zip(typed, group, strict=True))
            merged[name] = sorted(merged.get(name, []) + rows, key=lambda r: r.key)[: self.per_group]
        return sorted(merged.items())


@dataclass
class StreamSource:
    """An opened source to stream: columns checked, classes known, no rows kept (image file names aside).

    ``text`` says the raw values are CSV text (typed at the end as pandas types the whole
    column); ``listing`` is an image source's list of files (names, labels, groups).
    """

    source: DataSource
    kind: SourceKind
    class_names: tuple[str, ...]
    text: bool = False
    listing: UserSource | None = None
    label_values: list[Any] = field(default_factory=list)
    label_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    feature_names: tuple[str, ...] = ()
    feature_columns: tuple[str, ...] = ()
    #: The table columns the features are computed from (what ``preprocess`` receives, or the features).
    input_columns: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    rows_seen: int = 0
    batch_rows: int = TABLE_BATCH_ROWS
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """What the data is called in reports: the file or folder name."""
        return self.source.path.name or str(self.source.path)

    @property
    def modality(self) -> str:
        """``image``, ``tabular`` or ``text``."""
        return {"folder": "image", "manifest": "image", "table": "tabular", "text": "text"}[self.kind]

    @property
    def info(self) -> Any:
        """:class:`~xai.datasets._user.DataInfo`: modality, input shape and classes."""
        from xai.datasets._user import DataInfo

        if self.listing is not None:
            return self.listing.info
        shape = (len(self.feature_names),) if self.kind == "table" else (0,)
        return DataInfo(name=self.name, modality=self.modality, input_shape=shape,  # type: ignore[arg-type]
                        class_names=self.class_names)

    def check_classes(self, handle: ModelHandle) -> None:
        """:meth:`UserSource.check_classes`: the data's labels matched to the model's classes, before any work."""
        if self.listing is not None:
            self.listing.check_classes(handle)
            self.class_names = self.listing.class_names
            return
        import pandas as pd

        from xai.datasets._user import UserSource

        probe = UserSource(source=self.source, kind=self.kind, frame=pd.DataFrame({"_y": self.label_index}),
                           class_names=self.class_names)
        probe.check_classes(handle)
        self.label_index = probe.frame["_y"].to_numpy(np.int64)
        self.class_names = probe.class_names

    # -- batches ----------------------------------------------------------------------------------

    @property
    def projected(self) -> list[str]:
        """The columns a table batch needs."""
        src = self.source
        label = src.label or "label"
        inputs = [src.text] if self.kind == "text" and src.text else list(self.input_columns)
        return list(dict.fromkeys([label, *inputs, *src.sensitive]))

    def record_batches(self) -> Iterator[pa.RecordBatch]:
        """The table's record batches, only the projected columns."""
        return _record_batches(self.source.path, self.projected, self._types(), self.batch_rows,
                               list(self.source.sensitive))

    def _types(self) -> dict[str, Any]:
        import pyarrow as pa

        if not self.text:
            return {}
        types: dict[str, Any] = {c: pa.string() for c in [self.source.label or "label", *self.source.sensitive]}
        if self.kind == "text" and self.source.text:
            types[self.source.text] = pa.string()
        elif self.source.preprocess is None:
            types.update({c: pa.float64() for c in self.input_columns})
        return types

    def batches(self, handle: ModelHandle | None, seed: int) -> Iterator[Batch]:
        """Model-ready batches of every row, in file order."""
        if self.listing is not None:
            yield from self._image_batches(handle, seed)
            return
        offset = 0
        for record in self.record_batches():
            batch = self.table_batch(record, handle, seed, offset)
            offset += record.num_rows
            if len(batch.y):
                yield batch

    def table_batch(self, record: pa.RecordBatch | pa.Table, handle: ModelHandle | None, seed: int,
                    offset: int = 0) -> Batch:
        """One record batch of a feature or text table as a :class:`Batch` (``offset``: rows before it)."""
        import pyarrow as pa
        import torch

        src = self.source
        where = self.name
        label = src.label or "label"
        column = record.column(label)
        if column.null_count:
            raise DataError(f"{where}: column {label!r} has missing values (first at data row "
                            f"{offset + _first_null(column) + 1})")
        from xai.fairness.stream import _Levels

        levels = _Levels(label, None)
        levels.values, levels._index = list(self.label_values), {v: i for i, v in enumerate(self.label_values)}
        y = self.label_index[levels.encode(column if not isinstance(column, pa.ChunkedArray)
                                           else column.combine_chunks())]
        groups = {name: _array(record.column(name)) for name in src.sensitive}
        for name, array in groups.items():
            if array.null_count:
                raise DataError(f"{where}: column {name!r} has missing values (first at data row "
                                f"{offset + _first_null(array) + 1})")
        if self.kind == "text":
            assert src.text is not None
            text_column = record.column(src.text)
            if text_column.null_count:
                raise DataError(f"{where}: column {src.text!r} has missing values (first at data row "
                                f"{offset + _first_null(text_column) + 1})")
            texts = [str(t) for t in text_column.to_pylist()]
            x = _encode_texts(texts, handle, where, src.text)
            return Batch(x=x, y=y, groups=groups, keys=text_keys(seed, texts, y), texts=texts)
        features = self._features(record, offset)
        return Batch(x=torch.from_numpy(features), y=y, groups=groups, keys=row_keys(seed, features, y))

    def _features(self, record: Any, offset: int) -> np.ndarray:
        src, where = self.source, self.name
        if src.preprocess is not None:
            from xai.datasets._user import _import_callable

            fn = _import_callable(src.preprocess, "preprocess")
            frame = record.select(list(self.input_columns)).to_pandas()
            try:
                result = fn(frame)
                x = np.asarray(result, dtype=np.float32)
            except Exception as exc:  # user code
                raise DataError(f"preprocess {src.preprocess} failed: {type(exc).__name__}: {exc}") from None
            if x.ndim != 2 or len(x) != len(frame) or x.shape[1] != len(self.feature_names):
                raise DataError(f"preprocess {src.preprocess} returned shape {x.shape} for a batch of {len(frame)} "
                                f"rows; expected ({len(frame)}, {len(self.feature_names)}) as for the first rows "
                                "(a streamed audit calls it once per batch: it must map rows independently)")
        else:
            parts = []
            for name in self.input_columns:
                array = _array(record.column(name))
                if array.null_count:
                    raise DataError(f"{where}: column {name!r} has missing values (first at data row "
                                    f"{offset + _first_null(array) + 1})")
                parts.append(_float_column(array, name, where))
            x = np.stack(parts, axis=1).astype(np.float32) if parts else np.zeros((record.num_rows, 0), np.float32)
        if not np.isfinite(x).all():
            raise DataError(f"{where}: the model inputs hold NaN or infinite values")
        return x

    def _image_batches(self, handle: ModelHandle | None, seed: int) -> Iterator[Batch]:
        assert self.listing is not None
        frame = self.listing.frame
        step = self.source.batch_size
        for start in range(0, len(frame), step):
            batch = self.image_batch(frame.iloc[start:start + step].reset_index(drop=True), handle, seed)
            if len(batch.y):
                yield batch

    def image_batch(self, chunk: Any, handle: ModelHandle | None, seed: int) -> Batch:
        """Rows ``chunk`` of the image listing (``_file``, ``_id``, ``_y``, groups) decoded into a :class:`Batch`."""
        import pyarrow as pa

        listing = self.listing
        assert listing is not None
        known = len(listing.notes)
        x, keep = _decode_chunk(listing, chunk, handle)
        self.skipped.extend(chunk["_id"][~keep].astype(str).tolist())
        del listing.notes[known:]  # one note for the whole pass (finish_notes)
        chunk = chunk[keep].reset_index(drop=True)
        y = chunk["_y"].to_numpy(np.int64)
        groups = {name: pa.array(chunk[name].astype(str).tolist(), pa.string()) for name in self.source.sensitive}
        return Batch(x=x, y=y, groups=groups, keys=text_keys(seed, chunk["_id"].astype(str).tolist(), y))

    def finish_notes(self) -> None:
        """One note for the images skipped over the whole pass (undecodable files)."""
        if self.skipped:
            listed = ", ".join(self.skipped[:5]) + (f" and {len(self.skipped) - 5} more"
                                                    if len(self.skipped) > 5 else "")
            self.notes.append(f"skipped {len(self.skipped)} image(s) that cannot be decoded: {listed} "
                              "(set strict to fail instead)")

    def head(self, handle: ModelHandle | None, seed: int, rows: int = 8) -> Dataset:
        """The first ``rows`` decodable rows as a :class:`~xai.datasets.Dataset` (to check the model on)."""
        for batch in self.batches(handle, seed):
            kept = StratifiedSample(rows)
            kept.rows[()] = [SampleRow(int(batch.keys[i]), int(batch.y[i]), (),
                                       batch.texts[i] if batch.texts is not None else batch.x[i].numpy().copy())
                             for i in range(min(rows, len(batch.y)))]
            self.skipped.clear()
            return self.sample_dataset(handle, [((), kept.rows[()])], sensitive=())
        raise DataError(f"{self.name} has no rows")

    def sample_dataset(self, handle: ModelHandle | None, groups: list[tuple[tuple[str, ...], list[SampleRow]]],
                       sensitive: Sequence[str] | None = None) -> Dataset:
        """The kept rows as a :class:`~xai.datasets.Dataset` (groups in order, rows by key within a group)."""
        import pandas as pd
        import torch

        from xai.datasets._base import Dataset

        columns = list(self.source.sensitive if sensitive is None else sensitive)
        rows = [(name, row) for name, kept in groups for row in kept]
        if not rows:
            raise DataError(f"{self.name}: no rows to sample")
        if self.kind == "text":
            x = _encode_texts([r.payload for _, r in rows], handle, self.name, self.source.text or "text")
        else:
            x = torch.from_numpy(np.stack([r.payload for _, r in rows]))
        frame = pd.DataFrame([list(name) for name, _ in rows], columns=columns) if columns else (
            pd.DataFrame(index=range(len(rows))))
        kinds = {"folder": "image folder", "manifest": "image manifest", "table": "feature table",
                 "text": "text table"}
        return Dataset(name=self.name, split="sample", modality=self.modality, x=x,  # type: ignore[arg-type]
                       y=torch.tensor([r.y for _, r in rows], dtype=torch.int64), class_names=self.class_names,
                       groups=frame, feature_names=self.feature_names, feature_columns=self.feature_columns,
                       description=f"{kinds[self.kind]} {self.source.path} (stratified sample)")


def _decode_chunk(listing: UserSource, chunk: Any, handle: ModelHandle | None) -> tuple[torch.Tensor, np.ndarray]:
    """Decode one chunk of an image listing; a chunk with no decodable image is empty, not an error."""
    try:
        return listing._decode(chunk, handle)
    except DataError as exc:
        if listing.source.strict or "none of its" not in str(exc):
            raise
        import torch

        return torch.zeros((0,)), np.zeros(len(chunk), dtype=bool)


def _encode_texts(texts: list[str], handle: ModelHandle | None, where: str, column: str) -> torch.Tensor:
    from xai.datasets._user import encode_texts

    return encode_texts(texts, handle, where, column)


def _array(column: Any) -> pa.Array:
    import pyarrow as pa

    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _first_null(array: Any) -> int:
    mask = _array(array).is_null().to_numpy(zero_copy_only=False)
    return int(np.argmax(mask))


def _float_column(array: pa.Array, name: str, where: str) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    kind = array.type
    if pa.types.is_boolean(kind) or not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                                         or pa.types.is_decimal(kind)):
        raise DataError(f"{where}: feature columns {name!r} are not numeric; encode them or give "
                        "preprocess = \"pkg.mod:fn\" (fn(frame) -> numbers (N, F))")
    return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _record_batches(path: Path, columns: list[str], types: dict[str, Any], batch_rows: int,
                    dictionary: list[str]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import csv as pacsv

    from xai.fairness.stream import _PANDAS_NA

    try:
        if path.is_dir():
            dataset = _parquet_folder(path)
            yield from dataset.to_batches(columns=columns, batch_size=batch_rows)
        elif path.suffix.lower() in _CSV:
            convert = pacsv.ConvertOptions(include_columns=columns, column_types=types,
                                           null_values=list(_PANDAS_NA), strings_can_be_null=True,
                                           quoted_strings_can_be_null=True)
            read = pacsv.ReadOptions(block_size=max(1 << 14, min(batch_rows * 64, 64 << 20)))  # about batch_rows
            yield from pacsv.open_csv(path, read_options=read, convert_options=convert)
        else:
            schema = pq.read_schema(path)
            keep = [n for n in dictionary if n in schema.names and pa.types.is_string(schema.field(n).type)]
            with pq.ParquetFile(path, read_dictionary=keep, pre_buffer=False) as reader:
                yield from reader.iter_batches(batch_size=batch_rows, columns=columns)
    except pa.ArrowInvalid as err:
        message = " ".join(str(err).split())[:200]
        if "conversion error to double" in message:
            raise DataError(f"{path.name}: feature columns are not numeric ({message}); encode them or give "
                            "preprocess = \"pkg.mod:fn\" (fn(frame) -> numbers (N, F))") from None
        raise DataError(f"cannot read {path}: {message}") from None
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"cannot read {path}: {' '.join(str(err).split())[:200]}") from None


def _header(path: Path) -> tuple[list[str], bool]:
    """The column names of a table file, and whether it is CSV (values arrive as text); repeated names refused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xai._io import TABLE_SUFFIXES

    names: list[str] | None = None
    kind: str | None = "parquet"
    if path.is_dir():
        names = list(_parquet_folder(path).schema.names)
    elif not path.is_file():
        raise DataError(f"data file not found: {path}")
    else:
        kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path.name}: a data file must be .csv or .parquet (or a folder of images)")
    if path.is_dir():
        pass
    elif kind == "csv":
        opener: Any = gzip.open if path.suffix.lower() == ".gz" else open
        try:
            with opener(path, "rt", newline="", encoding="utf-8") as handle:
                names = next(csv.reader(handle), None)
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise DataError(f"cannot read {path}: {' '.join(str(err).split())[:200]}") from None
        if not names:
            raise DataError(f"{path} is empty")
    else:
        try:
            names = list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as err:
            raise DataError(f"cannot read {path}: {' '.join(str(err).split())[:200]}") from None
    assert names is not None
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{path.name} has two columns named {name!r}: rename one (which one to use is ambiguous)")
        seen.add(name)
    return names, kind == "csv"


def open_stream(source: DataSource, batch_rows: int | None = None) -> StreamSource:
    """Check ``source`` for a streamed audit (columns, classes, files) without keeping its rows.

    Image folders and manifests are listed by :func:`~xai.datasets._user.open_source`
    (names, labels and groups; decoding waits for the batches). Feature and text tables are
    read only for their header and, in a first pass over that column alone, their labels.

    Raises
    ------
    DataError
        As :func:`~xai.datasets._user.open_source`, and for a ``side`` file with a table
        (streamed tables take their sensitive columns from the table itself).
    """
    from xai.datasets._user import _IMAGE_COLUMNS, open_source

    path = source.path
    batch_rows = TABLE_BATCH_ROWS if batch_rows is None else batch_rows
    for column in source.sensitive:
        if column.startswith("_"):
            raise DataError(f"sensitive column {column!r}: names starting with _ are reserved")
    if path.is_dir() and not _is_parquet_folder(path):
        listing = open_source(source)
        return StreamSource(source=source, kind=listing.kind, class_names=listing.class_names, listing=listing)
    if not path.exists():
        raise DataError(f"data not found: {path} (a bundled dataset's name, an image folder, or a .csv/.parquet)")
    columns, text = _header(path)
    image = source.image
    if image is None and source.text is None and source.features is None:
        image = next((c for c in _IMAGE_COLUMNS if c in columns), None)
    if image is not None and source.text is None:
        listing = open_source(source)  # a manifest: its rows are file names (decoded per batch)
        return StreamSource(source=source, kind=listing.kind, class_names=listing.class_names, listing=listing)
    if source.side is not None:
        raise DataError(f"{path.name}: a streamed audit takes the sensitive columns from the table itself; "
                        "join the side file into it first (or audit without --engine)")
    where = path.name
    label = source.label or "label"
    for name in [label, *source.sensitive, *([source.text] if source.text else []),
                 *(source.features or ())]:
        if name not in columns:
            raise UnknownNameError(f"column in {where}", name, columns)
    kind: SourceKind = "text" if source.text is not None else "table"
    used = {label, *source.sensitive, *([source.id] if source.id else [])}
    features: tuple[str, ...] = ()
    if kind == "table":
        features = tuple(source.features) if source.features is not None else tuple(c for c in columns
                                                                                     if c not in used)
        if not features:
            raise DataError(f"{where}: no feature columns left besides the label and sensitive columns")
    out = StreamSource(source=source, kind=kind, class_names=(), text=text, feature_names=features,
                       feature_columns=features, input_columns=features, columns=tuple(columns),
                       batch_rows=batch_rows)
    _learn_labels(out)
    if kind == "table" and source.preprocess is not None:
        first = next(out.record_batches(), None)
        if first is None:
            raise DataError(f"{path} has a header but no rows")
        out.feature_names = out.feature_columns = _first_preprocess(out, first)
    return out


def _first_preprocess(out: StreamSource, record: Any) -> tuple[str, ...]:
    """The names of ``preprocess``'s outputs on the first batch (its width fixes every batch's)."""
    import pandas as pd

    from xai.datasets._user import _import_callable

    src = out.source
    fn = _import_callable(src.preprocess or "", "preprocess")
    frame = record.select(list(out.input_columns)).to_pandas()
    try:
        result = fn(frame.copy())
    except Exception as exc:  # user code
        raise DataError(f"preprocess {src.preprocess} failed: {type(exc).__name__}: {exc}") from None
    try:
        width = np.asarray(result, dtype=np.float32).shape
    except (TypeError, ValueError) as exc:
        raise DataError(f"preprocess {src.preprocess} must return numbers (N, F): {exc}") from None
    if len(width) != 2 or width[0] != len(frame):
        raise DataError(f"preprocess {src.preprocess} returned shape {width}; expected ({len(frame)}, features)")
    names = tuple(map(str, result.columns)) if isinstance(result, pd.DataFrame) else ()
    return names if len(names) == width[1] else tuple(f"f{i}" for i in range(width[1]))


def _learn_labels(out: StreamSource) -> None:
    """One pass over the label column alone: its distinct values, typed as pandas types the whole column."""
    import pyarrow as pa

    from xai.datasets._user import _label_index
    from xai.fairness.stream import _Levels

    src = out.source
    label = src.label or "label"
    where = out.name
    levels = _Levels(label, None)
    rows = missing = 0
    first_missing = -1
    types = {label: pa.string()} if out.text else {}
    for record in _record_batches(src.path, [label], types, out.batch_rows, []):
        column = _array(record.column(0))
        if column.null_count:
            if first_missing < 0:
                first_missing = rows + _first_null(column)
            missing += column.null_count
            column = column.drop_null()
        levels.encode(column)
        rows += record.num_rows
    if rows == 0:
        raise DataError(f"{src.path} has a header but no rows")
    if missing:
        raise DataError(f"{where}: column {label!r} has {missing} missing values (first at data row "
                        f"{first_missing + 1})")
    typed = levels.typed(out.text)
    index, names = _label_index(typed, src.classes, where)
    out.label_values = list(levels.values)
    out.label_index = index
    out.class_names = names
    out.rows_seen = rows


def _is_parquet_folder(path: Path) -> bool:
    """A folder of ``.parquet`` files (e.g. hive partitions), not an image folder."""
    return any(p.suffix.lower() in _PARQUET for p in path.rglob("*") if p.is_file())


def _parquet_folder(path: Path) -> Any:
    """A partitioned parquet folder as a pyarrow dataset (hive partition values become columns)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        partitioning = ds.HivePartitioning.discover(infer_dictionary=True)
        return ds.dataset(path, format="parquet", partitioning=partitioning)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"cannot read the parquet folder {path}: {' '.join(str(err).split())[:200]}") from None
