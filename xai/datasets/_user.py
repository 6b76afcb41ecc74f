"""Users' own data as a :class:`~xai.datasets.Dataset`: image folders, manifests, feature and text tables.

Four kinds of source, told apart by what the path is and which keys are given:

- an **image folder**: one sub-folder per class (``photos/cat/1.png``), like torchvision's
  ``ImageFolder``; a row's id is its path relative to the folder (``cat/1.png``);
- a **manifest** (``.csv``/``.parquet``) with a column of image paths (``image``, default a
  column named ``path`` or ``image``), a ``label`` column and any group columns;
- a **feature table** (``.csv``/``.parquet``): numeric ``features`` (default: every column
  that is not the label, a sensitive column or the id), a ``label`` and sensitive columns;
  non-numeric features need a user ``preprocess = "pkg.mod:fn"`` (``fn(frame) -> (N, F)``);
- a **text table**: a ``text`` column, tokenized by the model's tokenizer (``handle.preprocess``).

Sensitive columns may come from a ``side`` file (CSV/parquet) joined on an ``id`` column.

Opening a source (:func:`open_source`) reads tables and lists files and checks every named
column, so a typo fails before a model is loaded; :meth:`UserSource.load` decodes images batch
by batch (never all at once), only the sampled rows, with the model's preprocessing.

Data files are untrusted input: tables are read as CSV or parquet only (never pickle); a
manifest's image paths must stay inside the manifest's folder (no absolute paths, no ``..``,
no symbolic link out of it) unless the spec says ``allow_outside_paths = true`` (a manifest
cannot grant it, the spec you wrote can); an image that cannot be decoded (or is a
decompression bomb) is skipped with a note, or fails the run with ``strict``.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from xai._io import read_table as _read_table
from xai._typing import Modality
from xai.errors import DataError, UnknownNameError

if TYPE_CHECKING:
    from xai.datasets._base import Dataset
    from xai.zoo.handle import ModelHandle

__all__ = ["DataInfo", "DataSource", "IMAGE_SUFFIXES", "UserSource", "open_source", "read_table"]

SourceKind = Literal["folder", "manifest", "table", "text"]
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
_IMAGE_COLUMNS = ("path", "image")


@dataclass(frozen=True)
class DataSource:
    """What the user pointed at and which columns mean what (the ``[data]`` keys of a spec).

    Attributes
    ----------
    path
        An image folder, or a ``.csv``/``.parquet`` manifest, feature table or text table.
    label
        Label column (tables); default ``label``. An image folder's labels are its sub-folders.
    sensitive
        Group columns: in the table, or in ``side``.
    features
        Feature columns of a table (default: the columns that are not label, sensitive or id).
    text
        Text column: the table is a text table, tokenized by the model's tokenizer.
    image
        Column of image paths: the table is a manifest (default: a ``path`` or ``image`` column).
    id
        Column joining ``side`` to the rows (an image folder's rows are keyed by relative path).
    side
        A CSV/parquet file of sensitive columns, joined on ``id``.
    preprocess
        ``pkg.mod:fn`` turning the feature frame into model inputs ``(N, F)``.
    classes
        Class names in the model's output order (default: the data's sorted labels).
    size, mean, std, channels
        Image preprocessing, over the model's own: ``(height, width)``, per-channel mean and
        std (after scaling to [0, 1]), 1 (grey) or 3 (RGB) channels. Unset, they come from the
        model source's ``image_config`` (timm, torchvision, Hugging Face), else its input
        shape (zoo entries), else the first image's size with no normalisation.
    strict
        Fail on an image that cannot be decoded instead of skipping it.
    allow_outside_paths
        Let a manifest name images outside its folder (absolute paths, ``..``, links out).
    """

    path: Path
    label: str | None = None
    sensitive: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None
    text: str | None = None
    image: str | None = None
    id: str | None = None
    side: Path | None = None
    preprocess: str | None = None
    classes: tuple[str, ...] | None = None
    size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channels: int | None = None
    strict: bool = False
    allow_outside_paths: bool = False
    batch_size: int = 64


@dataclass(frozen=True)
class DataInfo:
    """What a model from outside the zoo learns from its data: modality, input shape and classes."""

    name: str
    modality: Modality
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]


def read_table(path: Path, what: str = "data") -> pd.DataFrame:
    """A ``.csv`` (optionally gzipped) or ``.parquet`` file; never a pickle. Clear one-line errors."""
    return _read_table(path, what=what, wrong_kind="{name}: a " + what + " file must be .csv or .parquet "
                                                    "(or a folder of images)")


def _column(frame: pd.DataFrame, name: str, where: str) -> pd.Series:
    """Column ``name``; an unknown one lists the file's columns, a missing value is named by row."""
    if name not in frame.columns:
        raise UnknownNameError(f"column in {where}", name, map(str, frame.columns))
    column = frame[name]
    missing = column.isna().to_numpy()
    if missing.any():
        raise DataError(f"{where}: column {name!r} has {int(missing.sum())} missing values "
                        f"(first at data row {int(np.argmax(missing)) + 1})")
    return column


def _import_callable(spec: str, what: str) -> Callable[..., Any]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not attr or not all(p.isidentifier() for p in module_name.split(".")):
        raise DataError(f"{what} must be package.module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # user code: any import failure is "cannot use it"
        raise DataError(f"{what}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise DataError(f"{what}: {module_name!r} has no function {attr!r}")
    return fn


def _label_index(values: pd.Series, classes: tuple[str, ...] | None, where: str
                 ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels as class indices, and the class names (given, or the data's own in sorted order).

    Labels match ``classes`` by name; integer labels 0..K-1 are indices when they are not names.
    """
    text = values.astype(str).to_numpy()
    integral = pd.api.types.is_integer_dtype(values) or (
        pd.api.types.is_float_dtype(values) and bool(np.all(values.to_numpy() == np.round(values.to_numpy()))))
    if classes is not None:
        position = {c: i for i, c in enumerate(classes)}
        if all(t in position for t in set(text)):
            return np.array([position[t] for t in text], np.int64), classes
        if integral and values.min() >= 0 and values.max() < len(classes):
            return values.to_numpy().astype(np.int64), classes
        unknown = sorted(set(text) - set(position))[:5]
        raise DataError(f"{where}: labels {', '.join(map(repr, unknown))} are not among the classes "
                        f"{', '.join(classes)}")
    if integral and values.min() >= 0:
        ints = values.to_numpy().astype(np.int64)
        return ints, tuple(str(i) for i in range(int(ints.max()) + 1))
    names = tuple(sorted(set(text)))
    position = {c: i for i, c in enumerate(names)}
    return np.array([position[t] for t in text], np.int64), names


def _inside(path: Path, root: Path) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


@dataclass
class UserSource:
    """An opened source: rows listed, columns checked, nothing decoded yet.

    ``frame`` holds one row per sample with the columns the source needs (``_file`` for
    images, the label codes in ``_y``, sensitive columns by name); images are decoded and
    texts tokenized by :meth:`load`.
    """

    source: DataSource
    kind: SourceKind
    frame: pd.DataFrame
    class_names: tuple[str, ...]
    x_table: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    feature_columns: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    #: The columns a sensitive attribute may come from (the table's, the side file's), for error messages.
    columns: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """What the data is called in reports: the file or folder name."""
        return self.source.path.name or str(self.source.path)

    @property
    def modality(self) -> Modality:
        """``image``, ``tabular`` or ``text``."""
        return {"folder": "image", "manifest": "image", "table": "tabular", "text": "text"}[self.kind]  # type: ignore[return-value]

    @cached_property
    def info(self) -> DataInfo:
        """Modality, input shape and classes (a model outside the zoo takes these from its data).

        The image size is the spec's ``size``, else the first image's own size (decoded once).
        """
        if self.kind == "table":
            assert self.x_table is not None
            shape: tuple[int, ...] = (int(self.x_table.shape[1]),)
        elif self.kind == "text":
            shape = (0,)  # the tokenizer decides the length: set once the texts are encoded
        else:
            channels, size = self._image_geometry(None)
            shape = (channels, *size)
        return DataInfo(name=self.name, modality=self.modality, input_shape=shape, class_names=self.class_names)

    def check_classes(self, handle: ModelHandle) -> None:
        """Refuse a model whose classes the data's labels cannot be matched to (one line, before any work)."""
        if handle.task not in ("classification", "binary-classification"):
            return
        model, data = handle.class_names, self.class_names
        if model == data:
            return
        if data == tuple(str(i) for i in range(len(data))) and len(data) <= len(model):
            self.class_names = model  # integer labels are the model's class indices
            return
        if set(data) <= set(model):
            position = {c: i for i, c in enumerate(model)}
            self.frame["_y"] = [position[data[int(i)]] for i in self.frame["_y"]]
            self.class_names = model
            return
        if len(data) != len(model):
            shown = ", ".join(data[:8]) + (" ..." if len(data) > 8 else "")
            raise DataError(f"{self.name}: the data has {len(data)} classes ({shown}) but {handle.name} scores "
                            f"{len(model)}; name the classes in the model's order with `classes = [...]`")
        self.class_names = model  # same count, other names: positional (as ImageFolder does)

    def rows(self, samples: int | None, seed: int) -> np.ndarray:
        """The row indices to load: all, or the seeded random subset :func:`~xai.audit.sample_rows` would draw."""
        n = len(self.frame)
        if samples is None or samples >= n:
            return np.arange(n)
        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(n, generator=generator)[:samples].sort().values.numpy()

    def load(self, handle: ModelHandle | None = None, *, samples: int | None = None, seed: int = 0) -> Dataset:
        """The model-ready :class:`~xai.datasets.Dataset` (images decoded per batch, only the rows used).

        Undecodable images are skipped (their names go to :attr:`notes`) or, with ``strict``,
        fail the run naming the file.
        """
        from xai.datasets._base import Dataset

        index = self.rows(samples, seed)
        frame = self.frame.iloc[index].reset_index(drop=True)
        if self.kind == "table":
            assert self.x_table is not None
            x = torch.as_tensor(self.x_table[index])
        elif self.kind == "text":
            x = self._encode(frame, handle)
        else:
            x, keep = self._decode(frame, handle)
            frame = frame[keep].reset_index(drop=True)
        groups = frame[list(self.source.sensitive)].astype(str).reset_index(drop=True)
        kinds = {"folder": "image folder", "manifest": "image manifest", "table": "feature table",
                 "text": "text table"}
        return Dataset(name=self.name, split="all", modality=self.modality, x=x,
                       y=torch.tensor(frame["_y"].to_numpy(np.int64)), class_names=self.class_names,
                       groups=groups, feature_names=self.feature_names, feature_columns=self.feature_columns,
                       description=f"{kinds[self.kind]} {self.source.path}")

    # -- images -----------------------------------------------------------------------------------

    def _image_geometry(self, handle: ModelHandle | None) -> tuple[int, tuple[int, int]]:
        """Channels and ``(height, width)``: the spec's, else the model's input shape, else the first image's."""
        src = self.source
        shape = tuple(handle.input_shape) if handle is not None and handle.modality == "image" else ()
        config = _image_config(handle)
        if config is not None:
            shape = tuple(config.input_size)
        channels = src.channels or (int(shape[0]) if len(shape) == 3 and shape[0] in (1, 3) else 3)
        size = src.size or (_handle_size(handle) if handle is not None else None)
        if size is None and len(shape) == 3 and all(int(d) > 0 for d in shape[1:]):
            size = (int(shape[1]), int(shape[2]))
        if size is None:
            size = self._first_size()
        return channels, size

    def _first_size(self) -> tuple[int, int]:
        from PIL import Image

        for file in self.frame["_file"]:
            try:
                with _image_guard(), Image.open(file) as image:
                    return int(image.height), int(image.width)
            except Exception:  # an undecodable first image: try the next (load() names it)
                continue
        raise DataError(f"{self.name}: none of its {len(self.frame)} images can be decoded")

    def _decode(self, frame: pd.DataFrame, handle: ModelHandle | None) -> tuple[torch.Tensor, np.ndarray]:
        """Decode ``frame``'s images batch by batch into one preallocated tensor ``(N, C, H, W)``."""
        from PIL import Image

        channels, (height, width) = self._image_geometry(handle)
        mean, std = _normalisation(self.source, handle, channels)
        x = _allocate((len(frame), channels, height, width))
        keep = np.ones(len(frame), dtype=bool)
        skipped: list[str] = []
        files = frame["_file"].tolist()
        shown = frame["_id"].tolist()
        mode = "L" if channels == 1 else "RGB"
        config = _image_config(handle)
        resample = (Image.Resampling.BICUBIC if getattr(config, "interpolation", "") == "bicubic"
                    else Image.Resampling.BILINEAR)
        for start in range(0, len(files), self.source.batch_size):
            batch = []
            for i in range(start, min(start + self.source.batch_size, len(files))):
                try:
                    with _image_guard(), Image.open(files[i]) as image:
                        resized = image.convert(mode).resize((width, height), resample)
                        batch.append((i, np.asarray(resized, dtype=np.float32)))
                except Exception as exc:  # PIL raises many types for a bad file (OSError, ValueError, bombs)
                    reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
                    if self.source.strict:
                        raise DataError(f"{self.name}: cannot decode image {shown[i]} ({reason})") from None
                    keep[i] = False
                    skipped.append(str(shown[i]))
            for i, pixels in batch:  # (H, W) or (H, W, C) in 0..255
                chw = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
                x[i] = (torch.from_numpy(chw / 255.0) - mean) / std
        if skipped:
            listed = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            self.notes.append(f"skipped {len(skipped)} image(s) that cannot be decoded: {listed} "
                              "(set strict to fail instead)")
        if not keep.any():
            raise DataError(f"{self.name}: none of its {len(frame)} images can be decoded (e.g. {shown[0]})")
        kept = np.flatnonzero(keep)
        for row, source_row in enumerate(kept.tolist()):  # compact in place: no copy of a disk-backed tensor
            if row != source_row:
                x[row] = x[source_row]
        return x[: len(kept)], keep

    # -- text -------------------------------------------------------------------------------------

    def _encode(self, frame: pd.DataFrame, handle: ModelHandle | None) -> torch.Tensor:
        return encode_texts(frame["_text"].astype(str).tolist(), handle, self.name, self.source.text)


def encode_texts(texts: list[str], handle: ModelHandle | None, where: str, column: str | None) -> torch.Tensor:
    """``texts`` as token ids ``(N, T)`` by the model's tokenizer (``handle.preprocess`` or ``module.tokenizer``)."""
    encode = handle.preprocess if handle is not None else None
    if encode is None and handle is not None:  # a model that carries its tokenizer (module.tokenizer.encode)
        candidate = getattr(getattr(handle.module, "tokenizer", None), "encode", None)
        encode = candidate if callable(candidate) else None
    if handle is None or encode is None:
        name = handle.name if handle is not None else "the model"
        raise DataError(f"{where} is a text table, but {name} has no tokenizer to encode its "
                        f"{column!r} column (a text model carries one: module.tokenizer.encode)")
    ids = encode(texts)
    if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or len(ids) != len(texts):
        raise DataError(f"{handle.name}'s tokenizer must turn {len(texts)} texts into a (N, T) tensor")
    return ids


#: Decoded images larger than this go to a temporary file mapped into memory (the OS pages them in and
#: out), so a folder larger than the machine's memory still audits; below it, a plain tensor.
MEMMAP_BYTES = 512 * 2**20


def _allocate(shape: tuple[int, ...]) -> torch.Tensor:
    """A float32 tensor of ``shape``: in memory, or backed by an unlinked temporary file when large."""
    if int(np.prod(shape)) * 4 <= MEMMAP_BYTES:
        return torch.empty(shape, dtype=torch.float32)
    with tempfile.TemporaryFile(prefix="xai-images-") as file:  # unlinked: gone when the mapping goes
        mapped = np.memmap(file, dtype=np.float32, mode="w+", shape=shape)
    return torch.from_numpy(mapped)


def _image_config(handle: ModelHandle | None) -> Any:
    """The model source's own image config (``handle.image_config``: input size, mean, std), if it has one."""
    return getattr(handle, "image_config", None) if handle is not None else None


def _handle_size(handle: ModelHandle) -> tuple[int, int] | None:
    """An image size the model source declares (its image config's, or ``image_size``/``input_size``), if any."""
    config = _image_config(handle)
    if config is not None:
        return int(config.input_size[-2]), int(config.input_size[-1])
    for attr in ("image_size", "input_size"):
        value = getattr(handle, attr, None)
        if isinstance(value, int):
            return value, value
        if isinstance(value, Sequence) and len(value) >= 2:
            return int(value[-2]), int(value[-1])
    return None


def _normalisation(source: DataSource, handle: ModelHandle | None, channels: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std ``(C, 1, 1)``: the spec's, else the model's, else none (0 and 1)."""
    values = []
    for key, default in (("mean", 0.0), ("std", 1.0)):
        config = _image_config(handle)
        given = getattr(source, key) or (getattr(config, key, None) if config is not None else
                                         getattr(handle, key, None) if handle is not None else None)
        seq = [default] * channels if given is None else [float(v) for v in given]
        if len(seq) == 1:
            seq = seq * channels
        if len(seq) != channels:
            raise DataError(f"{key} has {len(seq)} values for {channels}-channel images")
        if key == "std" and any(v <= 0 for v in seq):
            raise DataError(f"std must be positive, got {seq}")
        values.append(torch.tensor(seq, dtype=torch.float32).view(-1, 1, 1))
    return values[0], values[1]


@contextmanager
def _image_guard() -> Iterator[None]:
    """Decompression bombs are errors (PIL only warns below twice its pixel limit)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def open_source(source: DataSource, frame: pd.DataFrame | None = None) -> UserSource:
    """List and check ``source`` (files, columns, labels, side file) without decoding anything.

    Raises
    ------
    DataError
        An empty or missing folder or file, an unknown column (the message lists the
        file's columns), missing labels, non-numeric features without ``preprocess``, a
        manifest path outside its folder, ids missing from the side file.
    """
    path = source.path
    if frame is not None:  # a table already in memory (Python: xai.audit(model, data=frame))
        if len(frame) == 0:
            raise DataError("the DataFrame has no rows")
        opened = _open_table(source, frame.rename(columns=str))
    elif path.is_dir():
        opened = _open_folder(source)
    elif not path.exists():
        raise DataError(f"data not found: {path} (a bundled dataset's name, an image folder, or a .csv/.parquet)")
    else:
        opened = _open_table(source)
    if source.side is not None:
        _join_side(opened, source)
    for column in source.sensitive:
        if column not in opened.frame.columns or column.startswith("_"):
            known = opened.columns or [c for c in opened.frame.columns if not c.startswith("_")]
            raise UnknownNameError(f"sensitive column in {opened.name}" + (f" or {source.side.name}"
                                   if source.side is not None else ""), column, known)
        _column(opened.frame, column, opened.name)
    return opened


def _open_folder(source: DataSource) -> UserSource:
    root = source.path
    if source.text or source.features or source.image:
        raise DataError(f"{root} is an image folder: text, features and image apply to tables")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    rows: list[tuple[str, str, str]] = []
    for name in classes:
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for file in sorted(filenames):
                full = Path(dirpath) / file
                if file.startswith(".") or full.suffix.lower() not in IMAGE_SUFFIXES or not full.is_file():
                    continue  # not an image file (a FIFO named x.png would block the decoder forever)
                if not source.allow_outside_paths and not _inside(full, root):
                    raise DataError(f"{root}: {full.relative_to(root).as_posix()} links outside the folder "
                                    "(allow it with allow_outside_paths = true in the spec)")
                rows.append((str(full), full.relative_to(root).as_posix(), name))
    if not rows:
        raise DataError(f"{root}: no images found (an image folder holds one sub-folder per class with "
                        f"{', '.join(sorted(IMAGE_SUFFIXES))} files)")
    used = sorted({r[2] for r in rows})
    frame = pd.DataFrame(rows, columns=["_file", "_id", "label"])
    y, names = _label_index(frame["label"], source.classes, str(root))
    frame["_y"] = y
    frame["path"] = frame["_id"]
    if len(names) < 2 and source.classes is None:
        raise DataError(f"{root}: images of only one class ({used[0]}); a classifier's data needs a "
                        "sub-folder per class")
    return UserSource(source=source, kind="folder", frame=frame, class_names=names)


def _open_table(source: DataSource, table: pd.DataFrame | None = None) -> UserSource:
    path = source.path
    table = read_table(path) if table is None else table
    where = path.name
    columns = list(table.columns)
    image = source.image
    if image is None and source.text is None and source.features is None:
        image = next((c for c in _IMAGE_COLUMNS if c in columns), None)
    kind: SourceKind = "text" if source.text is not None else "manifest" if image is not None else "table"
    if source.text is not None and (image is not None or source.features is not None):
        raise DataError(f"{where}: text names a text table; image and features apply to other tables")
    if source.side is None:  # before features: a typo must not turn a sensitive column into a feature
        for column in source.sensitive:
            if column not in columns:
                raise UnknownNameError(f"sensitive column in {where}", column, columns)
    label = source.label or "label"
    y, names = _label_index(_column(table, label, where), source.classes, where)
    frame = pd.DataFrame({"_y": y})
    used = {label, *source.sensitive, *([source.id] if source.id else [])}
    for column in source.sensitive:
        if column in columns:
            frame[column] = table[column].to_numpy()
    if source.id is not None:
        frame["_key"] = _column(table, source.id, where).astype(str).to_numpy()
    out = UserSource(source=source, kind=kind, frame=frame, class_names=names, columns=columns)
    if kind == "manifest":
        assert image is not None
        frame["_id"] = _column(table, image, where).astype(str).to_numpy()
        frame["_file"] = [str(_manifest_file(path, p, source.allow_outside_paths)) for p in frame["_id"]]
    elif kind == "text":
        assert source.text is not None
        frame["_text"] = _column(table, source.text, where).astype(str).to_numpy()
    else:
        features = list(source.features) if source.features is not None else [c for c in columns if c not in used]
        for column in features:
            _column(table, column, where)
        if not features:
            raise DataError(f"{where}: no feature columns left besides the label and sensitive columns")
        _table_inputs(out, table[features], where)
    return out


def _manifest_file(manifest: Path, raw: str, allow_outside: bool) -> Path:
    """A manifest row's image file: relative to the manifest's folder, and (unless allowed) inside it."""
    folder = manifest.parent
    given = Path(raw)
    full = given if given.is_absolute() else folder / given
    if not allow_outside:
        if given.is_absolute():
            raise DataError(f"{manifest.name}: image path {raw!r} is absolute; paths are relative to the "
                            "manifest's folder (allow others with allow_outside_paths = true in the spec)")
        if not _inside(full, folder):
            raise DataError(f"{manifest.name}: image path {raw!r} leaves the manifest's folder "
                            "(allow it with allow_outside_paths = true in the spec)")
    if not full.is_file():
        raise DataError(f"{manifest.name}: image file not found: {raw}")
    return full


def _table_inputs(out: UserSource, features: pd.DataFrame, where: str) -> None:
    """Model inputs of a feature table: numeric columns as they are, or the user's ``preprocess``."""
    if out.source.preprocess is not None:
        fn = _import_callable(out.source.preprocess, "preprocess")
        try:
            result = fn(features.copy())
        except Exception as exc:  # user code
            raise DataError(f"preprocess {out.source.preprocess} failed: {type(exc).__name__}: {exc}") from None
        names = tuple(map(str, result.columns)) if isinstance(result, pd.DataFrame) else ()
        try:
            x = np.asarray(result, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataError(f"preprocess {out.source.preprocess} must return numbers (N, F): {exc}") from None
        if x.ndim != 2 or len(x) != len(features):
            raise DataError(f"preprocess {out.source.preprocess} returned shape {x.shape}; expected "
                            f"({len(features)}, features)")
        out.feature_names = names if len(names) == x.shape[1] else tuple(f"f{i}" for i in range(x.shape[1]))
        out.feature_columns = out.feature_names
    else:
        text = [c for c in features.columns
                if not pd.api.types.is_numeric_dtype(features[c]) or features[c].dtype == bool]
        if text:
            shown = ", ".join(repr(c) for c in text[:6]) + (" ..." if len(text) > 6 else "")
            raise DataError(f"{where}: feature columns {shown} are not numeric; encode them or give "
                            "preprocess = \"pkg.mod:fn\" (fn(frame) -> numbers (N, F))")
        x = features.to_numpy(np.float32)
        out.feature_names = out.feature_columns = tuple(map(str, features.columns))
    if not np.isfinite(x).all():
        raise DataError(f"{where}: the model inputs hold NaN or infinite values")
    out.x_table = x


def _join_side(out: UserSource, source: DataSource) -> None:
    """Add the side file's sensitive columns to the rows, matched on the id column."""
    assert source.side is not None
    if source.id is None:
        raise DataError(f"side file {source.side.name} needs `id`: the column that joins it to the rows")
    side = read_table(source.side, "side")
    where = source.side.name
    keys = _column(side, source.id, where).astype(str)
    duplicated = keys.duplicated()
    if duplicated.any():
        raise DataError(f"{where}: id {keys[duplicated].iloc[0]!r} appears more than once in column {source.id!r}")
    if out.kind == "folder" or out.kind == "manifest" and "_key" not in out.frame:
        rows = out.frame["_id"].astype(str)  # image rows are keyed by their path as written
    elif "_key" in out.frame:
        rows = out.frame["_key"]
    else:
        raise UnknownNameError(f"column in {out.name}", source.id, map(str, out.frame.columns))
    position = pd.Index(keys.to_numpy())
    found = position.get_indexer(rows.to_numpy())
    if (found < 0).any():
        first = rows.to_numpy()[np.argmax(found < 0)]
        raise DataError(f"{where}: no row with {source.id} = {first!r} ({int((found < 0).sum())} of "
                        f"{len(rows)} rows have none)")
    for column in side.columns:
        if column in source.sensitive and column != source.id:
            out.frame[column] = side[column].to_numpy()[found]
    base = out.columns or [c for c in out.frame.columns if not c.startswith("_")]
    out.columns = [*base, *(c for c in side.columns if c not in base)]
