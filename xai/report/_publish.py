"""Report folders written as a unit: staged, committed through a journal, swapped in, recovered.

A report folder ``out`` keeps the public paths users and CI rely on, as plain files:
``out/index.html`` and, per audit, ``out/<slug>.html`` and ``out/<slug>.json``. Beside
them a hidden ``out/.xai/`` holds the folder's state:

``.xai/manifests/<slug>.json``
    one per audit: slug, run id, the row the index shows (headline and gate status) and
    the sha256 of the audit's page and JSON. The index is rebuilt from every manifest on
    each write, so audits written by earlier runs stay listed.
``.xai/lock``
    an advisory lock (POSIX ``flock``, released when its process dies): one writer at a
    time, so a writer never cleans up another one's staging folder.
``.xai/stage-<run>/``
    one run's staging folder: ``new/`` holds every file the run writes, ``old/`` hard
    links to the files they will replace (copies where links are not supported).
``.xai/journal.json``
    the run's redo log, present only while it swaps its files in.

A write goes: (1) everything is rendered in memory (a failed render writes nothing);
(2) take the lock and recover what a killed run left (below); (3) write every file into
``new/`` and fsync it, link the current files into ``old/``; (4) commit: rename the
journal (the list of moves) into place and fsync the folder; (5) ``os.replace`` each
staged file over its public path (a reader sees the old file or the new one, never part
of one): pages and JSON first, then manifests, the index last; (6) remove the journal
(the run is done), then the staging folder.

What each failure leaves:

- An error such as ``ENOSPC`` anywhere before the journal is removed: the writer undoes
  its moves from ``old/`` and raises :class:`~xai.errors.OutputError`; the folder is byte
  for byte what it was. (It renames the journal to ``journal.rollback.json`` first, so an
  undo that is itself killed is finished by the next writer.)
- A kill before the commit: no public file was touched; the next write deletes the
  staging folder.
- A kill after the commit: the next write (any ``xai`` command writing to this folder)
  reads the journal and rolls the run forward, so every audit, and the index, is entirely
  from the killed run, which had finished rendering. Until that next write, a reader may
  find some of that run's files already new and others still old (each one whole): the
  window is the handful of renames of step 5, and the journal marks the folder as mid-swap.
- Leftover staging folders and journals, and the temporary files older versions left
  (``.<name>.html.<random>.tmp``, ``.<name>.json.<random>.tmp``), are removed by the next write.

Why not a fresh folder renamed into place, or a symlink switched in one step: both change
what the public paths are (``reports/<run>/lenet.html``, or symlinks that artifact
uploads, zips and Windows handle badly). POSIX cannot rename two files as one step, so
the journal makes the renames all-or-nothing as soon as anyone writes to the folder again.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xai._io import PROBE_PREFIX
from xai.errors import OutputError

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer per folder is then up to the user
    fcntl = None  # type: ignore[assignment]  # mypy types the name as the module; users check for None

__all__ = ["STATE_DIR", "StagedAudit", "publish", "read_manifests", "recover"]

#: The hidden state folder inside a report folder.
STATE_DIR = ".xai"
MANIFESTS = "manifests"
JOURNAL = "journal.json"
ROLLBACK = "journal.rollback.json"
LOCK = "lock"
FORMAT = 1

_SAFE = r"[\w][\w.-]*"  # what xai.audit.safe_slug makes (also no leading dot)
_TARGET = re.compile(rf"(?:{_SAFE}\.(?:html|json)|{re.escape(STATE_DIR)}/{MANIFESTS}/{_SAFE}\.json)")
_STAGE = re.compile(r"stage-[0-9a-f]+")
_STALE_TMP = re.compile(r"\.(.+\.(?:html|json))\.[a-z0-9_]{8}\.tmp")  # xai._io's mkstemp names: .<target>.<random>.tmp
#: errnos of os.link that mean "no hard links here" (then the backup is a copy).
_NO_LINK = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


@dataclass(frozen=True)
class StagedAudit:
    """One audit's rendered files (public name -> bytes) and its index row (JSON-ready)."""

    slug: str
    files: Mapping[str, bytes]
    row: Mapping[str, Any]


@dataclass(frozen=True)
class _Move:
    staged: str  # file name in stage/new and stage/old
    target: str  # path relative to the report folder
    existed: bool  # whether target existed when the run committed


# --- low-level steps (every change to the disk goes through os.* so tests can inject faults) ---


def _write_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist), write all of ``data`` and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make renames and new names in ``path`` durable (a no-op where folders cannot be opened)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _backup(current: Path, backup: Path) -> None:
    """Keep the file ``current`` reachable as ``backup`` (a hard link; a copy without links)."""
    try:
        os.link(current, backup)
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        _write_file(backup, current.read_bytes())


def _remove_tree(path: Path) -> None:
    """Delete a staging folder (never following links)."""
    if not path.is_dir() or path.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            _remove_tree(Path(entry.path))
        else:
            os.unlink(entry.path)
    os.rmdir(path)


@contextlib.contextmanager
def _locked(state: Path) -> Iterator[None]:
    fd = os.open(state / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


# --- manifests ---


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifests(out: str | Path) -> list[dict[str, Any]]:
    """The manifests of the audits in report folder ``out``, sorted by slug.

    A manifest that does not parse, does not match its file name, or whose page or JSON is
    missing is left out (the index then does not link to a page that is not there).
    """
    folder = Path(out) / STATE_DIR / MANIFESTS
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if not (isinstance(manifest, dict) and manifest.get("slug") == path.stem
                and isinstance(manifest.get("row"), dict) and manifest["row"].get("slug") == path.stem
                and isinstance(manifest.get("files"), dict)):
            continue
        names = list(manifest["files"])
        if all(isinstance(n, str) and _TARGET.fullmatch(n) and "/" not in n and (Path(out) / n).is_file()
               for n in names):
            found.append(manifest)
    return found


# --- journal: commit, roll forward, roll back ---


def _journal_text(run: str, moves: Sequence[_Move]) -> bytes:
    document = {"format": FORMAT, "run": run, "stage": f"stage-{run}",
                "moves": [{"staged": m.staged, "target": m.target, "existed": m.existed} for m in moves]}
    return (json.dumps(document, indent=1) + "\n").encode("utf-8")


def _read_journal(path: Path) -> tuple[Path, list[_Move]]:
    """The staging folder and moves of a journal, checked (it decides which files get replaced)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        stage = document["stage"]
        moves = [_Move(str(m["staged"]), str(m["target"]), bool(m["existed"])) for m in document["moves"]]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise OutputError(f"{path} is not a valid report journal ({exc}); "
                          "delete it and the report folder's .xai/stage-* folders to start afresh") from None
    bad = [m.target for m in moves if not (_TARGET.fullmatch(m.target) and m.staged.isdigit())]
    if not (isinstance(stage, str) and _STAGE.fullmatch(stage)) or bad:
        raise OutputError(f"{path} names files outside the report ({stage!r}, {bad[:3]}); delete it")
    return path.parent / stage, moves


def _roll_forward(out: Path, stage: Path, moves: Sequence[_Move]) -> None:
    # A staged file that is gone was moved already: the journal exists only once all are staged.
    for move in moves:
        source = stage / "new" / move.staged
        if source.exists():
            os.replace(source, out / move.target)
    _fsync_dir(out)
    _fsync_dir(out / STATE_DIR / MANIFESTS)


def _roll_back(out: Path, stage: Path, moves: Sequence[_Move]) -> None:
    for move in reversed(moves):
        if move.existed:
            backup = stage / "old" / move.staged
            if backup.exists():  # gone: restored already
                os.replace(backup, out / move.target)
        elif not (stage / "new" / move.staged).exists():  # the new file was moved in: take it out
            with contextlib.suppress(FileNotFoundError):
                os.unlink(out / move.target)
    _fsync_dir(out)
    _fsync_dir(out / STATE_DIR / MANIFESTS)


def _recover(out: Path, slugs: Sequence[str] = ()) -> None:
    """Finish (or undo) what a killed writer left, then delete its leftovers. Caller holds the lock.

    Temporary files of older versions are removed only for the report's own files (the
    index and the pages and JSON of ``slugs`` and of the folder's manifests): another
    command may be writing its own file into the same folder right now.
    """
    state = out / STATE_DIR
    for name, finish in ((JOURNAL, _roll_forward), (ROLLBACK, _roll_back)):
        journal = state / name
        if journal.exists():
            stage, moves = _read_journal(journal)
            finish(out, stage, moves)
            os.unlink(journal)
            _fsync_dir(state)
    for entry in state.iterdir():
        if _STAGE.fullmatch(entry.name):
            _remove_tree(entry)
    owned = {"index.html"} | {f"{slug}.{ext}" for slug in (*slugs, *(m["slug"] for m in read_manifests(out)))
                              for ext in ("html", "json")}
    for entry in out.iterdir():
        stale = _STALE_TMP.fullmatch(entry.name)
        if ((stale and stale.group(1) in owned) or entry.name.startswith(PROBE_PREFIX)) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry)


def recover(out: str | Path) -> None:
    """Bring report folder ``out`` to a whole state now (what every write does first)."""
    out = Path(out)
    if not (out / STATE_DIR).is_dir():
        return
    try:
        with _locked(out / STATE_DIR):
            _recover(out)
    except OSError as exc:
        raise OutputError(f"cannot recover the report folder {out}: {exc.strerror or exc}") from exc


# --- the write ---


def publish(out: str | Path, audits: Sequence[StagedAudit],
            render_index: Callable[[list[dict[str, Any]]], str]) -> Path:
    """Write ``audits`` and the rebuilt index into ``out`` as one unit; return the index path.

    ``render_index`` gets the index rows of every audit in the folder after this write
    (earlier audits' from their manifests), sorted by slug. On an ``OSError`` the folder is
    left as it was and :class:`~xai.errors.OutputError` is raised.
    """
    out = Path(out)
    slugs = [a.slug for a in audits]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"two audits in one report share a slug: {slugs}")
    for audit in audits:
        if not re.fullmatch(_SAFE, audit.slug) or any(
                not _TARGET.fullmatch(n) or "/" in n for n in audit.files):
            raise ValueError(f"unsafe report file name for audit {audit.slug!r}: {list(audit.files)} "
                             "(xai.audit.safe_slug makes a safe slug)")
    state = out / STATE_DIR
    fresh = not state.exists()
    made = [p for p in (out, *out.parents) if not p.exists()]  # folders this write creates
    try:
        (state / MANIFESTS).mkdir(parents=True, exist_ok=True)
        with _locked(state):
            _recover(out, slugs)
            _publish(out, audits, render_index)
    except OSError as exc:
        if fresh:  # a first write that failed leaves no empty state folder (nor the folders it made)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(state / LOCK)
            with contextlib.suppress(OSError):
                for folder in (state / MANIFESTS, state, *made):
                    os.rmdir(folder)
        raise OutputError(f"cannot write the report into {out}: {exc.strerror or exc}") from exc
    return out / "index.html"


def _publish(out: Path, audits: Sequence[StagedAudit],
             render_index: Callable[[list[dict[str, Any]]], str]) -> None:
    state = out / STATE_DIR
    run = secrets.token_hex(8)
    stage = state / f"stage-{run}"
    os.mkdir(stage)
    moves: list[_Move] = []
    try:
        os.mkdir(stage / "new")
        os.mkdir(stage / "old")
        staged: list[tuple[str, bytes]] = []
        manifests = {m["slug"]: m for m in read_manifests(out)}
        for audit in audits:
            for name, data in audit.files.items():
                staged.append((name, data))
            manifest = {"format": FORMAT, "slug": audit.slug, "run": run, "row": dict(audit.row),
                        "files": {name: _sha256(data) for name, data in audit.files.items()}}
            manifests[audit.slug] = manifest
            staged.append((f"{STATE_DIR}/{MANIFESTS}/{audit.slug}.json",
                           (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")))
        index = render_index([manifests[slug]["row"] for slug in sorted(manifests)])
        staged.append(("index.html", index.encode("utf-8")))
        for number, (target, data) in enumerate(staged):
            _write_file(stage / "new" / str(number), data)
            existed = (out / target).is_file()
            if existed:
                _backup(out / target, stage / "old" / str(number))
            moves.append(_Move(str(number), target, existed))
        _fsync_dir(stage / "new")
        _fsync_dir(stage / "old")
        _write_file(stage / JOURNAL, _journal_text(run, moves))
        _fsync_dir(stage)
        os.rename(stage / JOURNAL, state / JOURNAL)  # the commit point
    except BaseException:
        with contextlib.suppress(OSError):
            _remove_tree(stage)  # no public file was touched
        raise
    try:
        _fsync_dir(state)
        _roll_forward(out, stage, moves)
        os.unlink(state / JOURNAL)  # done: from here on the new report stands
    except BaseException:
        _undo(out, stage, moves)
        raise
    with contextlib.suppress(OSError):  # leftovers are cleaned by the next write
        _fsync_dir(state)
        _remove_tree(stage)


def _undo(out: Path, stage: Path, moves: Sequence[_Move]) -> None:
    """Put the previous report back after a failed swap (best effort: else the next writer recovers)."""
    state = out / STATE_DIR
    with contextlib.suppress(OSError):
        os.rename(state / JOURNAL, state / ROLLBACK)
        _fsync_dir(state)
        _roll_back(out, stage, moves)
        os.unlink(state / ROLLBACK)
        _fsync_dir(state)
        _remove_tree(stage)
