"""Report integrity: unique slugs, earlier audits kept, and no report lost or mixed by a fault or a kill.

The fault tests count every call the writer makes to the ``os`` functions that change the
disk (open, write, fsync, link, rename, replace, unlink, mkdir, rmdir) and make call ``k``
fail with ``ENOSPC`` (in this process) or SIGKILL its process (in a forked child), for
every ``k`` of a whole write.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import xai.report.html as html_report
from xai._io import check_writable_dir
from xai.audit import AuditResult, spec_slugs
from xai.cli import app
from xai.errors import OutputError
from xai.report._publish import STATE_DIR, read_manifests, recover
from xai.report.html import write_report

from ..audit._factory import audit, table
from ..conftest import REPO, ZOO

runner = CliRunner()
OPS = ("open", "write", "fsync", "link", "rename", "replace", "unlink", "mkdir", "rmdir")
PUBLIC = re.compile(r"[^/]+\.(html|json)")  # the paths users and CI read: index.html, <slug>.html, <slug>.json


@pytest.fixture(autouse=True)
def _fixed_stamp(monkeypatch):
    # The index and pages carry the time of writing (to the minute); fix it so two writes compare byte for byte.
    monkeypatch.setattr(html_report, "_stamp", lambda: {"version": "test", "generated": "2026-01-01 00:00 UTC"})


def _old() -> list[AuditResult]:
    return [audit(table("sex", eo=0.11), slug="alpha", title="Alpha old", accuracy=0.81),
            audit(table("sex", eo=0.12), slug="beta", title="Beta old", accuracy=0.82)]


def _new() -> list[AuditResult]:
    # beta is rewritten, gamma is added, alpha is left alone (it stays listed from its manifest)
    return [audit(table("sex", eo=0.22), slug="beta", title="Beta new", accuracy=0.72),
            audit(table("sex", eo=0.23), slug="gamma", title="Gamma new", accuracy=0.73)]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _public(snapshot: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in snapshot.items() if PUBLIC.fullmatch(k)}


def _leftovers(folder: Path) -> list[str]:
    """Anything a finished writer does not leave: staging folders, journals, temporary and probe files."""
    state = {p.name for p in (folder / STATE_DIR).iterdir()} - {"manifests", "lock"}
    temps = [p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".xai-probe")]
    return sorted(state) + temps


def _index_rows(folder: Path) -> list[tuple[str, str]]:
    """(page link, title) of every row of the index."""
    return re.findall(r'<td><a href="([^"]+)">([^<]+)</a>', (folder / "index.html").read_text())


def _assert_consistent(folder: Path) -> None:
    """Every audit's page, JSON, manifest and index row are from one run; the index lists every manifest."""
    manifests = read_manifests(folder)
    listed = _index_rows(folder)
    assert listed == [(m["row"]["page"], m["row"]["title"]) for m in manifests]
    for manifest in manifests:
        for name, digest in manifest["files"].items():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
        slug = manifest["slug"]
        assert json.loads((folder / f"{slug}.json").read_text())["title"] == manifest["row"]["title"]
    pages = {p.name for p in folder.glob("*.html")} - {"index.html"}
    assert pages == {m["row"]["page"] for m in manifests}


@pytest.fixture
def before(tmp_path) -> Path:
    """A report folder holding the old run (alpha, beta)."""
    out = tmp_path / "before"
    write_report(_old(), out)
    return out


@pytest.fixture
def after(before, tmp_path) -> dict[str, bytes]:
    """The public files after the new run went through unharmed."""
    out = tmp_path / "after"
    shutil.copytree(before, out)
    write_report(_new(), out)
    return _public(_snapshot(out))


@contextlib.contextmanager
def _watch(action: Callable[[str, int], None]) -> Iterator[list[str]]:
    """Call ``action(op, n)`` before the ``n``-th disk-changing ``os`` call (1-based); yield the calls seen."""
    calls: list[str] = []
    originals = {name: getattr(os, name) for name in OPS}

    def wrap(name: str) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            calls.append(name)
            action(name, len(calls))
            return originals[name](*args, **kwargs)
        return call

    for name in OPS:
        setattr(os, name, wrap(name))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(os, name, original)


def _fault_at(k: int, fault: Callable[[str], None]) -> contextlib.AbstractContextManager[list[str]]:
    """Run ``fault(op)`` instead of the ``k``-th disk-changing ``os`` call."""
    return _watch(lambda op, n: fault(op) if n == k else None)


def _count_steps(before: Path, tmp_path: Path) -> list[str]:
    out = tmp_path / "count"
    shutil.copytree(before, out)
    with _fault_at(0, lambda op: None) as calls:
        write_report(_new(), out)
    return list(calls)


def _commit_and_done(steps: list[str]) -> tuple[int, int]:
    """The steps (1-based) that commit the run (the journal's rename) and finish it (the journal's removal)."""
    commit = steps.index("rename") + 1
    last_replace = len(steps) - steps[::-1].index("replace")
    done = steps.index("unlink", last_replace) + 1
    return commit, done


def _enospc(op: str) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --- slugs ---------------------------------------------------------------------------------


def test_same_stem_specs_get_parent_folder_prefixes():
    assert spec_slugs([Path("x/a/dup.toml"), Path("x/b/dup.toml"), Path("x/lenet.toml")]) == ["a-dup", "b-dup", "lenet"]
    # still equal one level up: one more folder each
    assert spec_slugs([Path("p/q/dup.toml"), Path("r/q/dup.toml")]) == ["p-q-dup", "r-q-dup"]
    # the same file twice gets a number; case-insensitive file systems count as a collision too
    assert spec_slugs([Path("c.toml"), Path("./c.toml")]) == ["c", "c-2"]
    assert spec_slugs([Path("u/Dup.toml"), Path("v/dup.toml")]) == ["u-Dup", "v-dup"]
    # a slug is a safe file name and relative link, and never overwrites the index page
    assert spec_slugs([Path("javascript:alert(1).toml")]) == ["javascript-alert-1-"]
    assert spec_slugs([Path("audits/index.toml")]) == ["audits-index"]


def test_committed_audits_keep_their_baseline_names():
    specs = sorted((REPO / "audits").glob("*.toml"))
    slugs = spec_slugs(specs)
    assert slugs == [p.stem for p in specs]
    assert {f"{s}.json" for s in slugs} == {p.name for p in (REPO / "reports" / "baselines").glob("*.json")}


def test_two_same_stem_specs_give_two_pages_and_two_index_rows(tmp_path):
    for folder, title in (("a", "Dup A"), ("b", "Dup B")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "dup.toml").write_text(textwrap.dedent(f"""\
            title = "{title}"
            explain = []
            probe = []
            [model]
            name = "adult-mlp"
            [data]
            samples = 100
            """))
    out = tmp_path / "out"
    result = runner.invoke(app, ["audit", str(tmp_path / "a" / "dup.toml"), str(tmp_path / "b" / "dup.toml"),
                                 "-o", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert [a["slug"] for a in json.loads(result.stdout)["audits"]] == ["a-dup", "b-dup"]
    assert json.loads((out / "a-dup.json").read_text())["title"] == "Dup A"
    assert json.loads((out / "b-dup.json").read_text())["title"] == "Dup B"
    assert "Dup A" in (out / "a-dup.html").read_text() and "Dup B" in (out / "b-dup.html").read_text()
    assert _index_rows(out) == [("a-dup.html", "Dup A"), ("b-dup.html", "Dup B")]
    _assert_consistent(out)

    # a second `xai audit` into the same folder keeps the first run's rows
    result = runner.invoke(app, ["audit", str(tmp_path / "a" / "dup.toml"), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert _index_rows(out) == [("a-dup.html", "Dup A"), ("b-dup.html", "Dup B"), ("dup.html", "Dup A")]
    _assert_consistent(out)
    assert _leftovers(out) == []


# --- the index keeps earlier audits ---------------------------------------------------------


def test_a_second_write_keeps_the_first_audits_row_and_files(before, tmp_path):
    alpha = {k: v for k, v in _snapshot(before).items() if "alpha" in k}
    write_report(_new(), before)
    assert _index_rows(before) == [("alpha.html", "Alpha old"), ("beta.html", "Beta new"),
                                   ("gamma.html", "Gamma new")]
    assert {k: v for k, v in _snapshot(before).items() if "alpha" in k} == alpha
    _assert_consistent(before)
    assert _leftovers(before) == []


def test_gate_column_shows_audits_without_gates(before):
    write_report([audit(table("sex", eo=0.3), slug="gated", title="Gated")], before, gates={"gated": ()})
    index = (before / "index.html").read_text()
    assert "Gates</th>" in index and index.count("no gates run") == 2 and "✓ pass" in index


def test_a_page_whose_files_are_gone_drops_out_of_the_index(before):
    (before / "alpha.html").unlink()
    write_report(_new(), before)
    assert [page for page, _ in _index_rows(before)] == ["beta.html", "gamma.html"]


def test_a_tampered_manifest_cannot_add_a_foreign_link(before):
    path = before / STATE_DIR / "manifests" / "alpha.json"
    manifest = json.loads(path.read_text())
    manifest["row"]["page"] = "javascript:alert(1)"
    path.write_text(json.dumps(manifest))
    write_report(_new(), before)
    assert "javascript:" not in (before / "index.html").read_text()
    assert [page for page, _ in _index_rows(before)] == ["beta.html", "gamma.html"]


def test_leftovers_of_older_versions_and_killed_runs_are_cleaned(before):
    stale = [before / ".alpha.html.abc123_x.tmp", before / ".xai-probe-k1l2m3n4"]
    for path in stale:
        path.write_text("partial")
    (before / STATE_DIR / "stage-0123abcd" / "new").mkdir(parents=True)
    (before / STATE_DIR / "stage-0123abcd" / "new" / "0").write_text("staged, never committed")
    # other outputs in the folder are not the writer's to clean, nor another command's temporary file
    keep = [before / "junit.xml", before / ".sanity-lenet.html.abcdefgh.tmp"]
    for path in keep:
        path.write_text("<testsuites/>")
    write_report(_new(), before)
    assert _leftovers(before) == [keep[1].name] and all(p.read_text() == "<testsuites/>" for p in keep)


def test_a_hostile_journal_cannot_move_files_outside_the_report(before, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    stage = before / STATE_DIR / "stage-00ff"
    (stage / "new").mkdir(parents=True)
    (stage / "new" / "0").write_text("overwritten")
    journal = {"format": 1, "run": "00ff", "stage": "stage-00ff",
               "moves": [{"staged": "0", "target": "../victim.txt", "existed": True}]}
    (before / STATE_DIR / "journal.json").write_text(json.dumps(journal))
    old = _snapshot(before)
    with pytest.raises(OutputError, match="outside the report"):
        write_report(_new(), before)
    assert victim.read_text() == "keep me" and _snapshot(before) == old


def test_without_hard_links_the_backups_are_copies_and_a_failed_swap_still_restores(before, after, monkeypatch):
    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "no hard links on this file system")

    monkeypatch.setattr(os, "link", no_links)
    old = _snapshot(before)
    replaced = 0

    def fault(op: str) -> None:
        nonlocal replaced
        if op == "replace":
            replaced += 1
            if replaced == 3:  # the third file of the swap
                _enospc(op)

    with pytest.raises(OutputError), _watch(lambda op, n: fault(op)):
        write_report(_new(), before)
    assert replaced >= 3 and _snapshot(before) == old and _leftovers(before) == []
    write_report(_new(), before)
    assert _public(_snapshot(before)) == after


# --- faults ------------------------------------------------------------------------------------


def test_enospc_at_every_write_step_leaves_the_previous_report_byte_identical(before, after, tmp_path):
    steps = _count_steps(before, tmp_path)
    assert len(steps) > 30 and {"write", "fsync", "link", "rename", "replace", "unlink"} <= set(steps)
    _, done = _commit_and_done(steps)
    old = _snapshot(before)
    for k in range(1, len(steps) + 1):
        out = tmp_path / f"enospc-{k}"
        shutil.copytree(before, out)
        try:
            with _fault_at(k, _enospc):
                write_report(_new(), out)
        except OutputError as exc:
            assert k <= done, f"step {k} ({steps[k - 1]}) came after the run was done"
            assert "No space left on device" in str(exc)
            assert _snapshot(out) == old, f"step {k} ({steps[k - 1]}): the previous report changed"
            assert _leftovers(out) == [], f"step {k} ({steps[k - 1]})"
        else:
            # Only the clean-up after the run is done may fail without failing the write, and the
            # creation of the state folder, which exists already (Path.mkdir(exist_ok=True) checks).
            assert k > done or (k == 1 and steps[0] == "mkdir"), f"step {k} ({steps[k - 1]}) failed silently"
            assert _public(_snapshot(out)) == after
            recover(out)  # what the next write does first
            assert _leftovers(out) == []
        _assert_consistent(out)
        shutil.rmtree(out)


def test_a_failed_first_write_leaves_nothing(tmp_path):
    out = tmp_path / "fresh" / "reports"
    with _watch(lambda op, n: None) as calls:
        write_report(_old(), out)
    shutil.rmtree(tmp_path / "fresh")
    for k in (calls.index("open") + 1, calls.index("write") + 1, calls.index("rename") + 1):  # lock, stage, commit
        with pytest.raises(OutputError), _fault_at(k, _enospc):
            write_report(_old(), out)
        assert list(tmp_path.iterdir()) == [], k


def _killed_child(k: int, out: Path) -> int:
    """Fork; the child writes the new run into ``out`` and SIGKILLs itself at step ``k``. Return its status."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        signal.alarm(120)  # a child stuck on a lock inherited from a thread dies (SIGALRM) instead of hanging the test
        try:
            with _fault_at(k, lambda op: os.kill(os.getpid(), signal.SIGKILL)):
                write_report(_new(), out)
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_sigkill_at_every_write_step_then_recovery_finds_each_audit_whole(before, after, tmp_path):
    steps = _count_steps(before, tmp_path)
    commit, _ = _commit_and_done(steps)
    old = _public(_snapshot(before))
    outcomes = []
    for k in range(1, len(steps) + 1):
        out = tmp_path / f"kill-{k}"
        shutil.copytree(before, out)
        status = _killed_child(k, out)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (k, status)
        public = _public(_snapshot(out))
        mid_swap = (out / STATE_DIR / "journal.json").exists()
        # Right after the kill: the old report, the new one, or a swap the journal marks as pending.
        assert public in (old, after) or mid_swap, f"step {k} ({steps[k - 1]}): mixed files and no journal"
        recover(out)  # the next run's first act
        public = _public(_snapshot(out))
        assert public in (old, after), f"step {k} ({steps[k - 1]}): mixed report after recovery"
        # A kill up to the commit (the journal's rename) keeps the old report; after it, recovery finishes the new.
        assert public == (old if k <= commit else after), f"step {k} ({steps[k - 1]})"
        outcomes.append("old" if public == old else "new")
        assert _leftovers(out) == [], f"step {k} ({steps[k - 1]})"
        _assert_consistent(out)
        shutil.rmtree(out)
    assert outcomes.count("old") > 20 and outcomes.count("new") > 10


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_two_writers_at_once_both_keep_their_audits(before):
    def writer(slug: str) -> int:
        pid = os.fork()
        if pid == 0:
            code = 0
            signal.alarm(120)
            try:
                for i in range(5):
                    write_report([audit(table("sex", eo=0.01 * i), slug=slug, title=f"{slug} {i}")], before)
            except BaseException:
                code = 3
            os._exit(code)
        return pid

    children = [writer("left"), writer("right")]
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert _index_rows(before) == [("alpha.html", "Alpha old"), ("beta.html", "Beta old"),
                                   ("left.html", "left 4"), ("right.html", "right 4")]
    _assert_consistent(before)
    assert _leftovers(before) == []


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_xai_audit_killed_in_the_middle_of_its_swap_is_finished_by_the_next_run(tmp_path):
    specs = {}
    for name, title in (("first", "First"), ("second", "Second"), ("third", "Third")):
        specs[name] = tmp_path / f"{name}.toml"
        specs[name].write_text(f'title = "{title}"\nexplain = []\nprobe = []\n[model]\nname = "adult-mlp"\n'
                               '[data]\nsamples = 100\n')
    out = tmp_path / "reports"
    done = runner.invoke(app, ["audit", str(specs["first"]), "-o", str(out), "--device", "cpu"])
    assert done.exit_code == 0, done.output
    old = _snapshot(out)
    # A real `xai audit` in a child process, killed at its second os.replace: one file of the swap is in.
    child = textwrap.dedent(f"""
        import os, signal, sys
        import xai.report.html as html
        publish, replaced = html.publish, []
        real_replace = os.replace
        def replace(*args, **kwargs):
            replaced.append(args)
            if len(replaced) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(*args, **kwargs)
        def armed(*args, **kwargs):
            os.replace = replace
            return publish(*args, **kwargs)
        html.publish = armed
        from xai.cli import main
        sys.argv = ["xai", "audit", {str(specs["first"])!r}, {str(specs["second"])!r}, "-o", {str(out)!r},
                    "--device", "cpu", "--quiet"]
        main()
    """)
    env = {**os.environ, "XAI_ZOO_DIR": str(ZOO),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, "-c", child], cwd=REPO, env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / STATE_DIR / "journal.json").exists()
    assert (out / "first.json").read_bytes() != old["first.json"]  # the first file of the swap is in ...
    assert (out / "first.html").read_bytes() == old["first.html"]  # ... its page is not yet
    assert not (out / "second.html").exists()

    done = runner.invoke(app, ["audit", str(specs["third"]), "-o", str(out), "--device", "cpu"])
    assert done.exit_code == 0, done.output
    assert _index_rows(out) == [("first.html", "First"), ("second.html", "Second"), ("third.html", "Third")]
    assert (out / "first.html").read_bytes() != old["first.html"]  # the killed run was rolled forward
    _assert_consistent(out)
    assert _leftovers(out) == []


# --- the output folder is checked before any work ------------------------------------------------


def test_output_folder_checks(tmp_path):
    with pytest.raises(OutputError, match="empty"):
        check_writable_dir("")
    afile = tmp_path / "report.html"
    afile.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_writable_dir(afile)
    with pytest.raises(OutputError, match="which is a file"):
        check_writable_dir(afile / "sub")
    assert check_writable_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert list(tmp_path.iterdir()) == [afile]  # and leaves no probe file


def _as_unprivileged(action: Callable[[], None]) -> None:
    """Run ``action`` where permissions apply: in this process, or in a child as ``nobody`` when root."""
    if os.geteuid() != 0:
        action()
        return
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            action()
            code = 0
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


@pytest.mark.skipif(not hasattr(os, "geteuid") or not hasattr(os, "fork"), reason="needs POSIX permissions")
def test_a_read_only_folder_is_refused_before_any_work():
    base = Path(tempfile.mkdtemp())  # under /tmp, so `nobody` can reach it
    try:
        os.chmod(base, 0o755)
        readonly = base / "ro"
        readonly.mkdir()
        os.chmod(readonly, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)

        def refused() -> None:
            for path in (readonly, readonly / "sub"):
                with pytest.raises(OutputError, match="cannot (write into|create) the output folder"):
                    check_writable_dir(path)

        _as_unprivileged(refused)
        assert list(readonly.iterdir()) == []
    finally:
        os.chmod(base / "ro", 0o755)
        shutil.rmtree(base)


def test_cli_refuses_a_bad_output_folder_before_auditing(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    for command in ("audit", "check"):
        for bad, message in (("", "empty"), (str(afile), "is a file")):
            result = runner.invoke(app, [command, str(REPO / "audits" / "lenet.toml"), "-o", bad, "--device", "cpu"])
            assert result.exit_code == 2, (command, bad, result.output)
            assert result.output.startswith("error: ") and message in result.output
            assert "auditing" not in result.output and "checking" not in result.output
    assert afile.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]
