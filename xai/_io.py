"""Atomic file writes (a reader never sees a half-written file) and output-folder checks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from xai.errors import DataError, OutputError

if TYPE_CHECKING:
    import pandas as pd

#: Prefix of the probe file :func:`check_writable_dir` creates and removes at once.
PROBE_PREFIX = ".xai-probe-"


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise _naming(exc, target) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _naming(exc, target) from exc
        raise
    return target


def _naming(exc: OSError, target: Path) -> OSError:
    """``exc`` naming the file we meant to write (a full disk's error names no file)."""
    if exc.filename is not None and exc.filename != "":
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(target))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_writable_dir(out: str | os.PathLike[str]) -> Path:
    """Check, before any work starts, that ``out`` is (or can become) a writable folder.

    Raises :class:`~xai.errors.OutputError` for an empty name (``-o ''`` would
    otherwise mean the working directory), a path that is a file or lies under one,
    and a folder that cannot be written (read-only, permissions). An existing folder is
    probed with a real temporary file, which also catches read-only mounts and ACLs; a
    folder still to be made needs a writable nearest existing parent. Nothing is created.
    """
    raw = os.fspath(out)
    if not raw.strip():
        raise OutputError("the output folder name is empty: name a folder, e.g. -o reports")
    path = Path(raw)
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: writing through it fails later
            raise OutputError(f"output folder {path}: {existing} is a broken symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"lies under {existing}, which is a file"
        raise OutputError(f"output folder {path} {where}, not a folder")
    if existing == path:
        try:
            fd, probe = tempfile.mkstemp(dir=path, prefix=PROBE_PREFIX)
        except OSError as exc:
            raise OutputError(f"cannot write into the output folder {path}: {exc.strerror or exc}") from None
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):  # a report writer may have cleaned it up already
            os.unlink(probe)
    elif not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create the output folder {path}: {existing} is not writable")
    return path


#: Table files users hand us: CSV (optionally gzipped) or parquet, never a pickle.
TABLE_SUFFIXES = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: Path, *, what: str = "data", wrong_kind: str = "") -> pd.DataFrame:
    """A ``.csv`` (optionally gzipped) or ``.parquet`` file as a DataFrame, with one-line errors.

    ``what`` names the file in messages ("data", "manifest", "side"); ``wrong_kind`` is the
    message for another suffix (``{name}`` is the file name). A repeated header, an empty file
    or a file with no rows is refused (pandas would rename a repeated CSV column silently).
    """
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{what} file not found: {path}")
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError((wrong_kind or "{name}: a " + what + " file must be .csv or .parquet").format(name=path.name))
    try:
        frame = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
        header = (pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0].tolist()
                  if kind == "csv" else list(frame.columns))
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except ImportError as err:
        raise DataError(f"reading {path.name} needs a parquet engine: pip install pyarrow ({err})") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise DataError(f"cannot read {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
                        ) from None
    seen: set[str] = set()
    for name in map(str, header):
        if name in seen:
            raise DataError(f"{path.name} has two columns named {name!r}: rename one (which one to use is ambiguous)")
        seen.add(name)
    if len(frame) == 0:
        raise DataError(f"{path} has a header but no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame
