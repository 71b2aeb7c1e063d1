"""Safety II (issue 15): a hostile or unlucky environment never loses a leak, never touches the
user's files, never hangs. One test (or more) per numbered item of the issue."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from leakscan import audit
from leakscan.cli import app
from leakscan.decode import DecodeError, read_bytes

ROOT = os.name == "posix" and os.geteuid() == 0


def mk(path: Path, seed: int, size: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)).save(path)
    return path


def issue_dataset(d: Path) -> Path:
    """The issue's set-up: train x, y; test z and a copy of x (one cross-split leak)."""
    mk(d / "train/a/x.png", 1)
    mk(d / "train/a/y.png", 2)
    mk(d / "test/a/z.png", 3)
    shutil.copy(d / "train/a/x.png", d / "test/a/x.png")
    return d


def leaked(r) -> int:
    return sum(lk.images for lk in r.leaks)


@contextmanager
def tmpfs(size: str = "1m", options: str = ""):
    """A small tmpfs (root only; ``options`` such as ``ro``); skips the test where it cannot be mounted."""
    where = Path(tempfile.mkdtemp(prefix="leakscan-tmpfs-"))
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}"] + ([options] if options else [])),
                        "tmpfs", str(where)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip() or p.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


def fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` to the last byte."""
    for name, block in (("filler", 4096), ("filler2", 1)):
        try:
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT)
        except OSError:
            return
        try:
            while True:
                os.write(fd, b"\0" * block)
        except OSError:
            pass
        finally:
            os.close(fd)


# ---------------------------------------------------------------- 1. transient failures are not cached

def test_1_a_size_cap_failure_is_not_cached_and_the_leak_is_found_next_run(tmp_path, monkeypatch):
    # As root, permissions cannot be taken away; the size cap is another failure that is not a
    # property of the bytes: same file, same size, same mtime, and yet the next run must decode it.
    d = issue_dataset(tmp_path / "d")
    db = tmp_path / "c.sqlite"
    monkeypatch.setenv("LEAKSCAN_MAX_FILE_SIZE", "100")
    r = audit(d, cache=db, jobs=1)
    assert "cap" in dict(r.skipped)["test/a/x.png"] and leaked(r) == 0
    monkeypatch.delenv("LEAKSCAN_MAX_FILE_SIZE")
    r = audit(d, cache=db, jobs=1)
    assert "test/a/x.png" not in dict(r.skipped)
    assert leaked(r) == 2  # x in test has its copy in train, and the other way round


def test_1_a_size_cap_skips_a_file_whose_features_are_cached(tmp_path, monkeypatch):
    # a warm run served the features of files over --max-file-size from the cache: the cap
    # ("skipped, unread") held only for files not audited before
    d = issue_dataset(tmp_path / "d")
    db = tmp_path / "c.sqlite"
    assert not audit(d, cache=db, jobs=1).skipped
    monkeypatch.setenv("LEAKSCAN_MAX_FILE_SIZE", "100")
    r = audit(d, cache=db, jobs=1)
    cold = audit(d, cache=False, jobs=1)
    assert r.skipped == cold.skipped and "cap" in dict(r.skipped)["test/a/x.png"] and leaked(r) == 0


def test_1_a_permission_failure_stored_by_an_older_version_is_tried_again(tmp_path):
    d = issue_dataset(tmp_path / "d")
    db = tmp_path / "c.sqlite"
    audit(d, cache=db, jobs=1)
    con = sqlite3.connect(db)  # what leakscan <= 0.x stored after a run as another user
    con.execute("UPDATE features SET row=NULL, reason='permission denied: cannot read the file' "
                "WHERE path LIKE '%test/a/x.png'")
    con.commit()
    con.close()
    r = audit(d, cache=db, jobs=1)
    assert leaked(r) == 2 and r.features.n_cached == 3


def test_1_byte_failures_are_retried_when_the_bytes_change(tmp_path):
    d = issue_dataset(tmp_path / "d")
    (d / "test/a/x.png").write_bytes(b"half-copied file")
    db = tmp_path / "c.sqlite"
    r = audit(d, cache=db, jobs=1)
    assert "not an image" in dict(r.skipped)["test/a/x.png"]
    assert "not an image" in dict(audit(d, cache=db, jobs=1).skipped)["test/a/x.png"]  # cached
    shutil.copy(d / "train/a/x.png", d / "test/a/x.png")  # the copy completes
    r = audit(d, cache=db, jobs=1)
    assert leaked(r) == 2


@pytest.mark.skipif(not ROOT, reason="needs root to run a step as another user")
def test_1_permission_denied_as_an_unprivileged_user_is_not_cached(tmp_path):
    # The issue's reproduction: chmod 000, audit as a user, chmod 644, audit again. The first
    # audit runs in a child process that drops to 'nobody' (uid 65534).
    from leakscan.audit import _features
    from leakscan.cache import FeatureCache
    from leakscan.discovery import discover
    from leakscan.features import FEATURE_VERSION

    base = Path(tempfile.mkdtemp(prefix="leakscan-perm-"))
    try:
        d = issue_dataset(base / "d")
        db = base / "c.sqlite"
        for p in [base, *base.rglob("*")]:
            os.chmod(p, 0o777 if p.is_dir() else 0o666)
        audit(d, cache=False, jobs=1)  # every module the child needs is imported now
        x = d / "test/a/x.png"
        x.chmod(0)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 5
            try:
                os.setgid(65534)
                os.setuid(65534)
                # the audit's feature step (no search: faiss threads do not survive a fork), which
                # decides what its cache keeps
                with FeatureCache(db, version=FEATURE_VERSION) as store:
                    f = _features(discover(d), store, jobs=1, client=None, progress=None, model=None)
                code = 0 if any("permission denied" in why for _, why in f.failures) else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        x.chmod(0o644)
        r = audit(d, cache=db, jobs=1)
        assert "test/a/x.png" not in dict(r.skipped) and leaked(r) == 2
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- 2. --cache names only our own file

def test_2_cache_pointing_at_a_folder_is_an_error_and_the_folder_is_untouched(tmp_path):
    d = issue_dataset(tmp_path / "d")
    before = sorted(p.name for p in tmp_path.iterdir())
    res = CliRunner().invoke(app, ["audit", str(d), "--cache", str(d), "-q"])
    assert res.exit_code == 2
    assert "not a file" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before and (d / "train/a/x.png").is_file()


@pytest.mark.parametrize("content", [b"my notes, not a database\n" * 50, b""])
def test_2_cache_pointing_at_another_file_is_an_error_or_a_new_cache(tmp_path, content):
    d = issue_dataset(tmp_path / "d")
    notes = tmp_path / "notes.txt"
    notes.write_bytes(content)
    res = CliRunner().invoke(app, ["audit", str(d), "--cache", str(notes), "-q"])
    if content:
        assert res.exit_code == 2 and "not a leakscan feature cache" in res.stderr
        assert notes.read_bytes() == content and not list(tmp_path.glob("notes.txt.broken-*"))
    else:  # an empty file holds nothing to lose: it becomes the cache
        assert res.exit_code == 0


def test_2_another_programs_sqlite_database_is_left_alone(tmp_path):
    d = issue_dataset(tmp_path / "d")
    other = tmp_path / "app.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()
    before = other.read_bytes()
    res = CliRunner().invoke(app, ["audit", str(d), "--cache", str(other), "-q"])
    assert res.exit_code == 2 and "another program" in res.stderr
    assert other.read_bytes() == before


# ---------------------------------------------------------------- 4. special files and the size cap

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_4_a_fifo_is_skipped_not_waited_on(tmp_path):
    d = issue_dataset(tmp_path / "d")
    os.mkfifo(d / "test/a/p.png")
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("r", audit(d, cache=tmp_path / "c.sqlite", jobs=1)),
                         daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the audit hangs on a FIFO"
    r = out["r"]
    assert "not a regular file" in dict(r.skipped)["test/a/p.png"] and leaked(r) == 2


def _with_a_name_not_utf8(folder):
    """The issue dataset with a copy of train/a/y.png named ``test/a/caf\\xe9.png`` (bytes that are
    not UTF-8); skips where the file system refuses such a name."""
    d = issue_dataset(folder)
    odd = os.fsdecode(os.fsencode(str(d / "test/a")) + b"/caf\xe9.png")
    try:
        shutil.copy(d / "train/a/y.png", odd)
    except (OSError, UnicodeError) as exc:
        pytest.skip(f"this file system refuses the name: {exc}")
    return d


def test_4_a_file_name_that_is_not_utf8_is_audited_cached_and_written(tmp_path):
    """Linux names are bytes: one that is not UTF-8 (Python keeps it as surrogates) is audited,
    cached, and written in every output as ``\\xNN``; the report's link is the name's own bytes."""
    d = _with_a_name_not_utf8(tmp_path / "d")
    cache = tmp_path / "c.sqlite"
    for _ in range(2):  # the second run reads the features back from the cache
        res = CliRunner().invoke(app, ["audit", str(d), "--cache", str(cache), "--out", str(tmp_path / "o"),
                                       "--force", "-q"])
        assert res.exit_code == 0, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)
    rows = (tmp_path / "o/pairs.csv").read_text(encoding="utf-8")
    assert "test/a/caf\\xe9.png" in rows and "train/a/y.png" in rows
    assert "caf%E9.png" in (tmp_path / "o/report.html").read_text(encoding="utf-8")
    out = tmp_path / "new.csv"
    res = CliRunner().invoke(app, ["resplit", str(d), "--out", str(out), "--no-cache", "-q"])
    assert res.exit_code == 0, res.output
    assert "caf\\xe9.png" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_4_a_name_that_is_not_utf8_is_printed_as_the_csv_writes_it(tmp_path, encoding):
    """The terminal said ``caf\\udce9.png`` (Python's surrogate, escaped) for the file pairs.csv and a
    decisions file call ``caf\\xe9.png``; it now says ``caf\\xe9.png`` too, in any console encoding."""
    d = _with_a_name_not_utf8(tmp_path / "d")
    env = {**os.environ, "PYTHONIOENCODING": encoding, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "leakscan", "audit", str(d), "--no-cache"], capture_output=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert b"test/a/caf\\xe9.png" in proc.stdout and b"udce9" not in proc.stdout, proc.stdout


def test_4_a_name_that_is_not_utf8_in_summary_json_and_the_report_page(tmp_path):
    """Such a name in a label conflict reaches summary.json and the page's data: both are written
    (no crash), as JSON that parses, saying ``\\xNN`` as the CSVs do; --json prints the same."""
    import json
    import re

    d = issue_dataset(tmp_path / "d")
    odd = os.fsdecode(os.fsencode(str(d / "test")) + b"/b/caf\xe9.png")  # class b: a label conflict with y
    try:
        os.makedirs(os.path.dirname(odd))
        shutil.copy(d / "train/a/y.png", odd)
    except (OSError, UnicodeError) as exc:
        pytest.skip(f"this file system refuses the name: {exc}")
    res = CliRunner().invoke(app, ["audit", str(d), "--no-cache", "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "o/summary.json").read_text(encoding="utf-8"))
    assert "test/b/caf\\xe9.png" in summary["label_conflicts"][0]["paths"]
    html = (tmp_path / "o/report.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="data">(.*?)</script>', html, re.S).group(1))
    assert "test/b/caf\\xe9.png" in {im["p"] for im in data["images"]}
    res = CliRunner().invoke(app, ["audit", str(d), "--no-cache", "--json"])
    assert res.exit_code == 0
    printed = json.loads(res.stdout)
    assert printed["label_conflicts"] == summary["label_conflicts"]


def test_4_a_name_that_is_not_utf8_in_resplit_json_is_the_label_new_csv_writes(tmp_path):
    """resplit --json said a class folder whose name is not UTF-8 as Python's surrogate
    (``caf\\udce9``, a lone surrogate strict JSON readers refuse) where NEW.csv, summary.json and
    audit --json write ``caf\\xe9``: a script joining the two found no such class."""
    import csv
    import json

    d = issue_dataset(tmp_path / "d")
    odd = os.fsdecode(os.fsencode(str(d / "test")) + b"/caf\xe9/w.png")
    try:
        mk(Path(odd), 4)
    except (OSError, UnicodeError) as exc:
        pytest.skip(f"this file system refuses the name: {exc}")
    out = tmp_path / "new.csv"
    res = CliRunner().invoke(app, ["resplit", str(d), "--no-cache", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    labels = {row["label"] for row in csv.DictReader(out.open(encoding="utf-8", newline=""))}
    printed = json.loads(res.stdout)
    assert "caf\\xe9" in labels and set(printed["splits"]["test"]["class_share_achieved"]) == labels, (labels, printed)


def test_4_an_ascii_terminal_gets_escapes_not_a_crash(tmp_path):
    """A console that cannot show a character (ASCII here; Latin-1 or cp1252 elsewhere) gets
    escapes for the names, the ellipsis and the table rules, and the run ends normally."""
    d = issue_dataset(tmp_path / "d")
    shutil.copy(d / "train/a/y.png", d / "test/a/naïve.png")
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    for args in (["audit", str(d), "--no-cache"], ["resplit", str(d), "--out", str(tmp_path / "n.csv"), "--no-cache"]):
        p = subprocess.run([sys.executable, "-m", "leakscan", *args], capture_output=True, env=env, timeout=300)
        assert p.returncode == 0, p.stderr.decode("ascii", "replace")[-2000:]
        assert b"Traceback" not in p.stderr
    assert b"na\\xefve.png" in subprocess.run([sys.executable, "-m", "leakscan", "audit", str(d), "--no-cache"],
                                               capture_output=True, env=env, timeout=300).stdout


def test_4_json_on_an_ascii_console_is_json(tmp_path):
    """--json on a console that cannot write a character of a name (ASCII here) printed it as the
    terminal's escape (``na\\xefve``), which is not JSON: the output did not parse. Such a character
    is JSON's escape (``\\u00ef``) there, for audit and resplit."""
    import json

    d = issue_dataset(tmp_path / "d")
    mk(d / "test/naïve/w.png", 4)  # a class named so: in class_counts, class shares
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    for args in (["audit", str(d), "--no-cache", "--out", str(tmp_path / "o")],
                 ["resplit", str(d), "--out", str(tmp_path / "n.csv"), "--no-cache"]):
        p = subprocess.run([sys.executable, "-m", "leakscan", *args, "--json"], capture_output=True, env=env,
                           timeout=300)
        assert p.returncode == 0, p.stderr.decode("ascii", "replace")[-2000:]
        printed = json.loads(p.stdout.decode("ascii"))
        if args[0] == "audit":  # what summary.json says
            summary = json.loads((tmp_path / "o/summary.json").read_text(encoding="utf-8"))
            assert "naïve" in printed["class_counts"]["test"] and printed["class_counts"] == summary["class_counts"]
        else:
            assert "naïve" in printed["splits"]["test"]["class_share_achieved"], printed


def test_4_no_worker_processes_means_one_process_not_a_failure(tmp_path, monkeypatch, caplog):
    """Where worker processes cannot start (no writable /dev/shm in a container: the pool's
    semaphores fail with EROFS), the audit runs in its own process, says so once, and finds
    what it finds with them."""
    import leakscan.parallel as par

    d = issue_dataset(tmp_path / "d")
    for k in range(60):
        mk(d / f"train/a/more{k}.png", 10 + k)
    want = audit(d, cache=False, jobs=1)

    def refuse(*a, **kw):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(par, "ProcessPoolExecutor", refuse)
    monkeypatch.setattr(par, "_NO_POOL", [])
    with caplog.at_level("WARNING", logger="leakscan.parallel"):
        got = audit(d, cache=False, jobs=2)
    said = [r for r in caplog.records if "cannot start 2 worker processes" in r.getMessage()]
    assert len(said) == 1 and "Read-only file system" in said[0].getMessage()
    assert got.pairs.keys().tolist() == want.pairs.keys().tolist() and leaked(got) == leaked(want) == 2


_SECOND_WORKER_FAILS = """
import errno, sys
from multiprocessing import popen_fork
launch, made = popen_fork.Popen._launch, []
def second_fails(self, process_obj):  # as under ulimit -n (or -u): the first worker is made, not the second
    made.append(1)
    if len(made) == 2:
        raise OSError(errno.EMFILE, "Too many open files")
    return launch(self, process_obj)
popen_fork.Popen._launch = second_fails
from leakscan.cli import main
sys.argv = ["leakscan"] + sys.argv[1:]
main()
"""


@pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked on Linux")
def test_4_a_worker_that_cannot_be_made_is_a_warning_not_an_error_and_a_hang(tmp_path):
    """Under a low ``ulimit -n`` the pool was made but its second worker was not: the run ended
    with 'error: Too many open files', then hung at exit waiting for the first worker. Now the
    workers made are ended, and the run goes on in one process, with the pairs of -j 1."""
    d = issue_dataset(tmp_path / "d")
    for k in range(60):  # enough for more than one chunk
        mk(d / f"train/a/more{k}.png", 10 + k)
    want = audit(d, cache=False, jobs=1)
    proc = subprocess.run([sys.executable, "-c", _SECOND_WORKER_FAILS, "audit", str(d), "--no-cache", "-q", "-j", "2",
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "cannot start 2 worker processes ([Errno 24] Too many open files)" in proc.stderr
    rows = (tmp_path / "o/pairs.csv").read_text().splitlines()[1:]
    assert len(rows) == len(want.pairs) and leaked(want) == 2


_NO_THREAD_FOR_THE_POOL = """
import sys
from concurrent.futures import process
def no_thread(self):  # as under ulimit -u: the workers are made, the pool's own thread is not
    raise RuntimeError("can't start new thread")
process._ExecutorManagerThread.start = no_thread
from leakscan.cli import main
sys.argv = ["leakscan"] + sys.argv[1:]
main()
"""


@pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked on Linux")
def test_4_a_pool_whose_thread_cannot_start_is_a_warning_not_a_traceback_and_a_hang(tmp_path):
    """Under a low ``ulimit -u`` the pool's workers were made but its managing thread was not: a
    RuntimeError traceback (exit 1), then a hang at exit waiting for the workers. Now, as for a
    worker that cannot be made: the workers are ended and the run goes on in one process."""
    d = issue_dataset(tmp_path / "d")
    for k in range(60):  # enough for more than one chunk
        mk(d / f"train/a/more{k}.png", 10 + k)
    proc = subprocess.run([sys.executable, "-c", _NO_THREAD_FOR_THE_POOL, "audit", str(d), "--no-cache", "-q",
                           "-j", "2", "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "cannot start 2 worker processes (can't start new thread)" in proc.stderr
    assert "Traceback" not in proc.stderr and (tmp_path / "o/summary.json").is_file()


def test_4_a_deleted_working_folder_does_not_stop_a_run_with_absolute_paths(tmp_path, monkeypatch):
    d = issue_dataset(tmp_path / "d")
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    res = CliRunner().invoke(app, ["audit", str(d), "--out", str(tmp_path / "o"), "--no-cache", "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o/summary.json").is_file()


@pytest.mark.parametrize("cmd", [
    ["audit", "{d}", "--out", "rel", "--no-cache", "-q"],
    ["resplit", "{d}", "--out", "{o}/new.csv", "--materialize", "tree", "--no-cache", "-q"],
])
def test_4_relative_paths_from_a_deleted_working_folder_are_one_line(tmp_path, monkeypatch, cmd):
    """--out rel (audit) and --materialize tree (resplit) ended in a FileNotFoundError traceback,
    exit 1 (the code of "leak found"); now one line naming them, exit 2, nothing decoded or made."""
    d = issue_dataset(tmp_path / "d")
    (tmp_path / "o").mkdir()
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    res = CliRunner().invoke(app, [a.format(d=d, o=tmp_path / "o") for a in cmd])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    err = res.output.strip().splitlines()
    assert len(err) == 1 and "working folder no longer exists" in err[0] and cmd[-4] + " " + cmd[-3] in err[0]
    assert sorted(os.listdir(tmp_path)) == ["d", "o"] and not os.listdir(tmp_path / "o")


def test_4_a_name_at_the_length_limit_is_placed_and_numbered_within_it(tmp_path):
    """materialize: the temporary name and a clash's ``__2`` twin of a 250-byte name stay
    within the file system's 255 bytes (they passed it, and the run ended)."""
    from leakscan.materialize import _numbered
    from leakscan.safeio import place_file

    src = mk(tmp_path / "src" / ("x" * 246 + ".png"), 1)
    other = mk(tmp_path / "other" / src.name, 2)
    dest = tmp_path / "dest"
    dest.mkdir()
    assert place_file(src, dest / src.name, "copy")
    assert not place_file(other, dest / src.name, "copy")  # taken by another file: never overwritten
    twin = _numbered(other, 2, 255)
    assert twin.endswith("__2.png") and len(os.fsencode(twin)) <= 255
    assert place_file(other, dest / twin, "hardlink")
    assert (dest / src.name).read_bytes() == src.read_bytes() and (dest / twin).read_bytes() == other.read_bytes()
    wide = _numbered(Path("é" * 126 + ".png"), 12, 255)  # two bytes a character: cut whole characters
    assert len(os.fsencode(wide)) <= 255 and wide.endswith("é__12.png")


def test_4_out_names_at_the_length_limit_are_written(tmp_path):
    """``--out`` folders and ``resplit --out`` files whose names are at the file system's limit
    (255 bytes, of one- or two-byte characters), and materialized images of three-byte ones: the
    temporary names beside them stay within it (they failed with 'File name too long')."""
    d = issue_dataset(tmp_path / "d")
    (d / "train/a/y.png").rename(d / "train/a" / ("\u5199" * 83 + ".png"))  # 253 bytes
    for out in (tmp_path / ("o" * 255), tmp_path / ("\u00e9" * 127)):
        for _ in range(2):  # a new set, then one swapped for the old
            res = CliRunner().invoke(app, ["audit", str(d), "--out", str(out), "--force", "--no-cache", "-q", "-j", "1"])
            assert res.exit_code == 0, res.output
            assert (out / "summary.json").is_file()
    new, tree = tmp_path / ("n" * 251 + ".csv"), tmp_path / "tree"
    res = CliRunner().invoke(app, ["resplit", str(d), "--out", str(new), "--materialize", str(tree), "--link", "copy",
                                   "--no-cache", "-q", "-j", "1"])
    assert res.exit_code == 0, res.output
    assert new.is_file() and len(list(tree.rglob("*.png"))) == 4
    assert not [p for p in tmp_path.rglob("*") if "tmp" in p.name]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_4_dev_zero_and_proc_in_a_manifest_are_skipped(tmp_path):
    d = issue_dataset(tmp_path / "d")
    csv = tmp_path / "m.csv"
    csv.write_text("path,split\n"
                   f"{d}/train/a/x.png,train\n{d}/test/a/x.png,test\n/dev/zero,test\n/proc/self/status,test\n")
    t0 = time.perf_counter()
    r = audit(None, manifest=csv, cache=False, jobs=1)
    assert time.perf_counter() - t0 < 60
    why = dict(r.skipped)
    assert "not a regular file (a character device)" in why["/dev/zero"]
    assert "not an image" in why["/proc/self/status"] and "Name" not in why["/proc/self/status"]
    assert leaked(r) == 2


def test_4_size_cap_reads_at_most_cap_plus_one_bytes(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(b"\x89PNG" + b"\0" * 5000)
    with pytest.raises(DecodeError, match="cap"):
        read_bytes(p, max_bytes=4096)
    assert len(read_bytes(p, max_bytes=5004)) == 5004


def test_4_max_file_size_flag(tmp_path):
    d = issue_dataset(tmp_path / "d")
    res = CliRunner().invoke(app, ["audit", str(d), "--max-file-size", "1K", "--out", str(tmp_path / "o"),
                                   "--no-cache", "-q"])
    assert res.exit_code == 2 and "no image could be read" in res.stderr  # every PNG is ~7 KB
    assert "cap" in (tmp_path / "o" / "skipped.csv").read_text()
    res = CliRunner().invoke(app, ["audit", str(d), "--max-file-size", "1M", "--json", "--no-cache"])
    assert res.exit_code == 0 and '"n_skipped": 0' in res.stdout
    assert "LEAKSCAN_MAX_FILE_SIZE" not in os.environ  # the flag applies to its own run only
    res = CliRunner().invoke(app, ["audit", str(d), "--max-file-size", "lots", "--no-cache"])
    assert res.exit_code == 2 and "--max-file-size" in res.stderr


# ---------------------------------------------------------------- 8. a healthy cache is never set aside

def test_8_read_only_file_system_uses_the_cache_without_writing(tmp_path):
    d = issue_dataset(tmp_path / "d")
    with tmpfs("4m") as fs:
        db = fs / "c.sqlite"
        audit(d, cache=db, jobs=1)
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        mk(d / "train/a/new.png", 9)
        r = audit(d, cache=db, jobs=1)
        assert r.features.n_cached == 4 and leaked(r) == 2
        assert any("not storing new results" in w for w in r.warnings)
        assert sorted(p.name for p in fs.iterdir()) == ["c.sqlite"] or not list(fs.glob("*.broken-*"))
        subprocess.run(["mount", "-o", "remount,rw", str(fs)], check=True)
        assert not list(fs.glob("*.broken-*"))


def test_8_another_versions_cache_that_cannot_be_written_is_one_warning(tmp_path, caplog):
    """A cache of another leakscan version in a file that cannot be written: one warning that it
    cannot be used, not first 'rebuilding it' (it is not rebuilt) and then that one."""
    d = issue_dataset(tmp_path / "d")
    db = tmp_path / "c.sqlite"
    audit(d, cache=db, jobs=1)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE meta SET v='99' WHERE k='schema'")
    con.close()
    os.chmod(db, 0o444)
    immutable = False
    try:
        try:
            open(db, "ab").close()  # root writes a read-only file: make it immutable instead
            immutable = subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode == 0
            if not immutable:
                pytest.skip("cannot make a file unwritable here")
        except PermissionError:
            pass
        caplog.clear()
        r = audit(d, cache=db, jobs=1)
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(db)], capture_output=True)
    assert leaked(r) == 2 and r.features.n_cached == 0
    said = [rec.getMessage() for rec in caplog.records if "feature cache" in rec.getMessage()]
    assert len(said) == 1 and "cannot be used" in said[0] and "another leakscan version" in said[0], said
    assert [w for w in r.warnings if "feature cache" in w] == said


def test_8_full_disk_keeps_the_cache_and_warns(tmp_path):
    d = issue_dataset(tmp_path / "d")
    with tmpfs("2m") as fs:
        db = fs / "c.sqlite"
        audit(d, cache=db, jobs=1)
        size = db.stat().st_size
        fill(fs)
        for k in range(30):
            mk(d / f"train/b/n{k}.png", 100 + k, 96)
        r = audit(d, cache=db, jobs=1)
        assert leaked(r) == 2 and r.n_images == 34
        assert any("not storing new results" in w for w in r.warnings), r.warnings
        assert not list(fs.glob("*.broken-*")) and db.stat().st_size >= size
        (fs / "filler").unlink()
        assert audit(d, cache=db, jobs=1).features.n_cached >= 4


def test_8_full_disk_before_the_cache_exists_runs_without_it(tmp_path):
    d = issue_dataset(tmp_path / "d")
    with tmpfs("256k") as fs:
        fill(fs)
        r = audit(d, cache=fs / "c.sqlite", jobs=1)
        assert leaked(r) == 2 and any("decoding without it" in w or "not storing" in w for w in r.warnings)


# ---------------------------------------------------------------- 3. never write where the images are

def _outside_manifest(tmp_path: Path) -> tuple[Path, Path]:
    d = issue_dataset(tmp_path / "d")
    m = tmp_path / "m"
    m.mkdir()
    csv = m / "m.csv"
    csv.write_text("path,split,label\n../d/train/a/x.png,train,a\n../d/train/a/y.png,train,a\n"
                   "../d/test/a/z.png,test,a\n../d/test/a/x.png,test,a\n")
    return d, csv


def test_3_materialize_into_the_dataset_via_an_outside_manifest_is_refused(tmp_path):
    from conftest import tree_digest

    d, csv = _outside_manifest(tmp_path)
    before = tree_digest(d)
    runner = CliRunner()
    for target in (d, d / "new", d / "test"):
        res = runner.invoke(app, ["resplit", "--manifest", str(csv), "--out", str(tmp_path / "new.csv"),
                                  "--materialize", str(target), "--force", "--no-cache", "-q"])
        assert res.exit_code == 2, (target, res.output)
        assert "dataset folder" in res.stderr and len(res.stderr.strip().splitlines()) == 1
        # the folder itself is not said to be inside itself
        assert ("--materialize folder is the dataset folder" in res.stderr) == (target == d), res.stderr
    res = runner.invoke(app, ["audit", "--manifest", str(csv), "--out", str(d / "report"), "--no-cache", "-q"])
    assert res.exit_code == 2 and "inside the dataset folder" in res.stderr
    res = runner.invoke(app, ["audit", "--manifest", str(csv), "--out", str(tmp_path), "--no-cache", "-q",
                              "--force"])
    assert res.exit_code == 2 and "contains the dataset folder" in res.stderr
    assert tree_digest(d) == before


def test_3_project_layout_allows_reports_beside_the_images(tmp_path):
    proj = tmp_path / "project"
    issue_dataset(proj / "images")
    (proj / "splits.csv").write_text("path,split\nimages/train/a/x.png,train\nimages/train/a/y.png,train\n"
                                     "images/test/a/z.png,test\nimages/test/a/x.png,test\n")
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "--manifest", str(proj / "splits.csv"), "--out", str(proj / "reports"),
                              "--no-cache", "-q"])
    assert res.exit_code == 0, res.output
    assert (proj / "reports" / "summary.json").is_file()
    res = runner.invoke(app, ["resplit", "--manifest", str(proj / "splits.csv"), "--out", str(proj / "new.csv"),
                              "--materialize", str(proj / "resplit"), "--no-cache", "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["audit", "--manifest", str(proj / "splits.csv"),
                              "--out", str(proj / "images" / "reports"), "--no-cache", "-q"])
    assert res.exit_code == 2


# ---------------------------------------------------------------- 5. one line, exit 2

def test_5_nul_byte_in_a_manifest_path(tmp_path):
    d = issue_dataset(tmp_path / "d")
    csv = tmp_path / "m.csv"
    csv.write_text(f"path,split\n{d}/train/a/x.png,train\n{d}/test/a/x\0evil.png,test\n{d}/test/a/x.png,test\n"
                   f"{d}/test/a/z.png,te\0st\n")
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "--manifest", str(csv), "--out", str(tmp_path / "o"), "--no-cache", "-q"])
    assert res.exit_code == 0, res.output
    skipped = (tmp_path / "o" / "skipped.csv").read_text()
    assert "NUL byte" in skipped and "\0" not in skipped
    res = runner.invoke(app, ["resplit", "--manifest", str(csv), "--out", str(tmp_path / "new.csv"), "--no-cache",
                              "-q"])
    assert res.exit_code == 0, res.output
    assert "\0" not in (tmp_path / "new.csv").read_text()
    # a list of paths from Python: the NUL path is skipped with its reason
    r = audit([str(d / "train/a/x.png"), str(d / "test/a/x.png") + "\0.png"], cache=tmp_path / "c.sqlite", jobs=1)
    assert "NUL byte" in dict(r.skipped)[str(d / "test/a/x.png") + "\0.png"]


def test_5_a_library_that_cannot_be_mapped_for_want_of_memory_is_one_line(tmp_path, monkeypatch):
    """Under ``ulimit -v`` the loader can fail to map faiss's libgomp: that was a full traceback
    ending in 'leakscan needs faiss: pip install faiss-cpu', exit 1. It is out of memory: one
    line, exit 2, no folder left behind; a missing package is still its own error."""
    import leakscan.index as index

    d = issue_dataset(tmp_path / "d")

    def unmappable():
        try:
            raise ImportError("libgomp-e985bcbb.so.1.0.0: failed to map segment from shared object")
        except ImportError as exc:
            raise ImportError("leakscan needs faiss: pip install faiss-cpu") from exc

    monkeypatch.setattr(index, "_faiss", unmappable)
    for args in (["audit", str(d), "--out", str(tmp_path / "o" / "new")],
                 ["resplit", str(d), "--out", str(tmp_path / "n.csv")]):
        res = CliRunner().invoke(app, [*args, "--no-cache", "-q", "-j", "1"])
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("leakscan: error: out of memory"), res.output
        assert "failed to map segment" in lines[0] and not (tmp_path / "o").exists()

    def missing():
        raise ImportError("leakscan needs faiss: pip install faiss-cpu")

    monkeypatch.setattr(index, "_faiss", missing)
    res = CliRunner().invoke(app, ["audit", str(d), "--no-cache", "-q", "-j", "1"])
    assert isinstance(res.exception, ImportError) and "pip install faiss-cpu" in str(res.exception)


def test_5_full_disk_at_out_is_one_line_and_leaves_the_old_set(tmp_path):
    d = issue_dataset(tmp_path / "d")
    runner = CliRunner()
    with tmpfs("256k") as fs:
        out = fs / "report"
        res = runner.invoke(app, ["audit", str(d), "--out", str(out), "--no-cache", "-q", "--no-html"])
        assert res.exit_code == 0
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        fill(fs)
        mk(d / "train/a/w.png", 7)
        res = runner.invoke(app, ["audit", str(d), "--out", str(out), "--no-cache", "-q", "--force"])
        assert res.exit_code == 2, res.output
        assert "No space left" in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert "Traceback" not in res.output
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert sorted(p.name for p in fs.iterdir()) == ["filler", "filler2", "report"]


# ---------------------------------------------------------------- 6. the output folder is all-or-nothing

KILL_IN_HTML = """
import os, signal, sys
import leakscan.htmlreport as h
def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)
h.render_html = die
from leakscan.cli import app
sys.argv = ["leakscan"] + sys.argv[1:]
app()
"""


def test_6_kill_while_report_html_is_built_leaves_the_old_complete_set(tmp_path):
    d = issue_dataset(tmp_path / "d")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["audit", str(d), "--out", str(out), "--no-cache", "-q"])
    assert res.exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    mk(d / "test/a/new.png", 5)
    shutil.copy(d / "train/a/y.png", d / "test/a/y.png")  # the new result differs
    p = subprocess.run([sys.executable, "-c", KILL_IN_HTML, "audit", str(d), "--out", str(out), "--force",
                        "--no-cache", "-q"], capture_output=True)
    assert p.returncode == -9
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # the next run completes, replaces the whole set and removes nothing of the user's
    (out / "my-notes.txt").write_text("mine")
    res = CliRunner().invoke(app, ["audit", str(d), "--out", str(out), "--no-cache", "-q", "--force"])
    assert res.exit_code == 0
    assert (out / "my-notes.txt").read_text() == "mine"
    assert (out / "pairs.csv").read_bytes() != before["pairs.csv"]
    (out / "my-notes.txt").unlink()
    res = CliRunner().invoke(app, ["audit", str(d), "--out", str(out), "--no-cache", "-q", "--force"])
    assert res.exit_code == 0 and sorted(x.name for x in out.iterdir()) == sorted(before)
    assert [x.name for x in tmp_path.iterdir() if x.name.startswith(".")] == []


def test_6_two_runs_writing_one_out_give_one_clear_outcome(tmp_path, monkeypatch):
    """Two audits started together into the same new --out both pass the check made before
    decoding: without --force, the one that finishes second is refused when it writes (it
    replaced the first one's results, and both said they had written theirs); with --force its
    set replaces the first whole. Runs put their sets in place one at a time."""
    import fcntl
    import importlib
    import json

    from leakscan.errors import OutputError
    from leakscan.report import write_outputs

    d = issue_dataset(tmp_path / "d")
    other = tmp_path / "other"
    mk(other / "train/a/q.png", 11)
    mk(other / "test/a/r.png", 12)
    theirs = audit(other, cache=False, jobs=1)
    out = tmp_path / "out"
    audit_module = importlib.import_module("leakscan.audit")  # the module, not the function leakscan.audit
    real = audit_module.audit

    def meanwhile(*args, **kwargs):  # the other run writes its results while this one computes
        result = real(*args, **kwargs)
        if not (out / "summary.json").exists():
            write_outputs(theirs, out)
        return result

    monkeypatch.setattr(audit_module, "audit", meanwhile)
    res = CliRunner().invoke(app, ["audit", str(d), "--out", str(out), "--no-cache", "-q", "-j", "1"])
    assert res.exit_code == 2 and "already holds" in res.stderr and "--force" in res.stderr, res.output
    assert json.loads((out / "summary.json").read_text())["n_images"] == 2  # the other run's set, whole
    res = CliRunner().invoke(app, ["audit", str(d), "--out", str(out), "--no-cache", "-q", "-j", "1", "--force"])
    assert res.exit_code == 0 and json.loads((out / "summary.json").read_text())["n_images"] == 4
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]

    # the last check and the placing are one step: a run that set its results down between them
    # (here: while this test holds the lock) is seen
    monkeypatch.setattr(audit_module, "audit", real)
    ours, new, done = audit(d, cache=False, jobs=1), tmp_path / "new", {}
    write_outputs(theirs, tmp_path / "staged")
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)

        def write():
            try:
                write_outputs(ours, new, html=False)
            except OutputError as exc:
                done["error"] = str(exc)
        t = threading.Thread(target=write)
        t.start()
        t.join(1.0)
        assert t.is_alive() and not (new / "summary.json").exists(), "the run did not wait its turn"
        os.rmdir(new)  # made empty by the run's first check
        os.rename(tmp_path / "staged", new)
    finally:
        os.close(fd)  # the lock goes with it
    t.join(30)
    assert "already holds" in done.get("error", ""), done
    assert json.loads((new / "summary.json").read_text())["n_images"] == 2


def test_6_the_check_made_when_writing_is_the_check_made_before_decoding(tmp_path):
    """Without --force, the results a run refuses to replace are the same when it writes as
    before it decodes: an --out holding a stale pairs.parquet alone passed the first check and
    was refused after the whole audit (the second one looked at every file a set may hold)."""
    d = issue_dataset(tmp_path / "d")
    out = tmp_path / "out"
    out.mkdir()
    (out / "pairs.parquet").write_bytes(b"an earlier run's")
    res = CliRunner().invoke(app, ["audit", str(d), "--out", str(out), "--no-cache", "-q", "-j", "1"])
    assert res.exit_code == 0, res.output
    assert (out / "summary.json").is_file()


# ---------------------------------------------------------------- 7. materialize: atomic, resumable

KILL_IN_COPY = """
import os, signal, sys
import leakscan.safeio as s
n = [0]
real = s.shutil.copy2
def copy2(src, dst, **k):
    n[0] += 1
    if n[0] == 3:  # third file: half of it written, then killed
        data = open(src, "rb").read()
        with open(dst, "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, **k)
s.shutil.copy2 = copy2
from leakscan.cli import app
sys.argv = ["leakscan"] + sys.argv[1:]
app()
"""


@pytest.mark.parametrize("link", ["copy", "hardlink", "symlink"])
def test_7_materialize_rerun_places_each_source_once(tmp_path, link):
    d = issue_dataset(tmp_path / "d")
    for k in range(6):
        mk(d / f"train/b/x{k}.png", 20 + k)
    mk(d / "test/b/x.png", 40)  # same file name as test/a/x.png, another image
    tree = tmp_path / "tree"
    args = ["resplit", str(d), "--out", str(tmp_path / "new.csv"), "--materialize", str(tree), "--link", link,
            "--no-cache", "-q"]
    runner = CliRunner()
    assert runner.invoke(app, args).exit_code == 0
    files = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if not p.is_dir())
    assert len(files) == 11
    for _ in range(2):
        res = runner.invoke(app, args + ["--force"])
        assert res.exit_code == 0, res.output
        assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if not p.is_dir()) == files


@pytest.mark.parametrize("link", ["copy", "hardlink", "symlink"])
def test_7_materialize_force_refuses_a_tree_of_another_split(tmp_path, link):
    # --force over an earlier run's tree used to add the new split to the old one: 6 images of
    # 12 then sat on both sides of the tree, while the new manifest was verified leak-free
    d = tmp_path / "d"
    for k in range(12):
        mk(d / f"{('train', 'test')[k % 2]}/a/{k}.png", 100 + k)
    mk(d / "train/b/dup.png", 7)
    (d / "test/b").mkdir(parents=True)
    shutil.copy(d / "train/b/dup.png", d / "test/b/dup.png")  # one leak: --drop leaves a copy out
    tree = tmp_path / "tree"

    def resplit(*more, out="new.csv"):
        return CliRunner().invoke(app, ["resplit", str(d), "--out", str(tmp_path / out), "--materialize", str(tree),
                                        "--link", link, "--no-cache", "-q", "--ratios", "train=0.5,test=0.5", *more])
    assert resplit("--shuffle", "--seed", "1").exit_code == 0
    before = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if not p.is_dir())
    assert resplit("--shuffle", "--seed", "1", "--force").exit_code == 0  # the same split: resumed
    for more in (("--shuffle", "--seed", "2"), ("--keep", "test", "--drop")):
        res = resplit(*more, "--force", out="other.csv")
        assert res.exit_code == 2 and "holds another split" in res.output, res.output
        assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if not p.is_dir()) == before
        assert not (tmp_path / "other.csv").exists()  # refused before anything was written


def test_7_killed_materialize_leaves_no_partial_file_and_resumes(tmp_path):
    d = issue_dataset(tmp_path / "d")
    for k in range(6):
        mk(d / f"train/b/x{k}.png", 20 + k)
    tree = tmp_path / "tree"
    args = ["resplit", str(d), "--out", str(tmp_path / "new.csv"), "--materialize", str(tree), "--link", "copy",
            "--no-cache", "-q", "--force"]
    p = subprocess.run([sys.executable, "-c", KILL_IN_COPY, *args], capture_output=True)
    assert p.returncode == -9
    visible = [q for q in tree.rglob("*") if q.is_file() and not q.name.startswith(".")]
    assert len(visible) == 2
    for q in visible:  # every file under its real name is complete
        assert any(q.read_bytes() == s.read_bytes() for s in d.rglob("*.png"))
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    placed = [q for q in tree.rglob("*") if q.is_file()]
    assert len(placed) == 10 and not [q for q in placed if q.name.startswith(".")]
    assert len({q.read_bytes() for q in placed}) == 9  # x.png and its copy in test hold the same bytes


# ---------------------------------------------------------------- 9. names are plain text in the terminal

def test_9_file_names_are_plain_text_in_the_terminal(tmp_path):
    d = tmp_path / "d"
    names = ["b[/y].png", "[link=https://evil.example]click[/link].png", "[bold]x.png", "esc\x1b[31mred.png"]
    for k, n in enumerate(names):  # b[/y].png: the file y].png in the class folder b[
        mk(d / "train" / "c[red]" / n, 60 + k)
        mk(d / "test" / "c[red]" / n, 0)
        shutil.copy(d / "train" / "c[red]" / n, d / "test" / "c[red]" / n)
    (d / "test" / "c[red]" / "bad[/x].png").parent.mkdir()
    (d / "test" / "c[red]" / "bad[/x].png").write_bytes(b"junk")
    res = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["audit", str(d), "--no-cache"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "\x1b" not in out and "\\x1b[31mred.png" in out
    for n in ("b[/y].png", "[link=https:/evil.example]click[/link].png", "[bold]x.png", "bad[/x].png", "c[red]"):
        assert n in out, n


# ---------------------------------------------------------------- 10. workers die with their parent

def _children(pid: int) -> set[int]:
    out = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.add(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


IDLE_POOL = """
import sys, time
from leakscan.parallel import _start_pool  # leakscan's worker pool (parallel.run_chunks)
pool = _start_pool(2)
list(pool.map(abs, range(4)))  # both workers started, now idle
print("ready", flush=True)
time.sleep(120)
"""


def test_10_a_worker_whose_pool_maker_died_before_it_started_ends_at_once():
    """A worker adopted before its initializer ran (the run killed at that moment: once in a CI
    run, a worker of the idle pool below was left waiting for work) ends; it took its new parent
    for the pool's maker and waited forever."""
    adopted = ("import os\nfrom leakscan.parallel import _one_thread\n"
               "_one_thread(os.getppid() + 1)  # the pool's maker: not this process's parent any more\n"
               "print('alive', flush=True)\n")
    done = subprocess.run([sys.executable, "-c", adopted], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_10_idle_workers_exit_when_the_parent_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", IDLE_POOL], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    workers = _children(proc.pid)
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    deadline = time.time() + 20
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.1)
        alive = [w for w in workers if Path(f"/proc/{w}").exists()
                 and Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    for w in alive:  # do not leave them behind if the test fails
        os.kill(w, 9)
    assert not alive, f"orphaned workers: {alive}"


def _alive(pids) -> list[int]:
    return [w for w in pids if Path(f"/proc/{w}").exists()
            and Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_10_workers_work_and_end_with_the_run_under_every_start_method(method):
    """Python 3.14 starts processes through a fork server on Linux: a worker's parent is then the
    fork server, and each worker took that for its maker's death and ended at once (every run
    with --jobs 2 stopped: "a worker process ended abruptly")."""
    script = (f"import multiprocessing, time\nmultiprocessing.set_start_method({method!r})\n"
              + IDLE_POOL.split("import sys, time", 1)[1].replace("list(pool.map(abs, range(4)))",
                                                                  "print(sum(pool.map(abs, range(-4, 0))), flush=True)"))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "10", proc.stderr.read() if proc.poll() is not None else ""
        assert proc.stdout.readline().strip() == "ready"
        family, more = set(), {proc.pid}
        while more:  # the workers, and under forkserver the server between them and the run
            family |= more
            more = set().union(*(_children(p) for p in more)) - family
        family.discard(proc.pid)
        assert len(family) >= 2
    finally:
        proc.kill()
        proc.wait()
    deadline = time.time() + 20
    while _alive(family) and time.time() < deadline:
        time.sleep(0.1)
    alive = _alive(family)
    for w in alive:  # do not leave them behind if the test fails
        os.kill(w, 9)
    assert not alive, f"orphaned workers: {alive}"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_10_workers_exit_when_the_parent_is_killed(tmp_path):
    d = tmp_path / "d"
    rng = np.random.default_rng(0)
    for k in range(600):
        p = d / ("train" if k % 4 else "test") / f"{k}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(p)
    proc = subprocess.Popen([sys.executable, "-m", "leakscan", "audit", str(d), "--jobs", "2", "--no-cache", "-q"])
    workers: set = set()
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.05)
    if proc.poll() is not None or len(workers) < 2:
        proc.kill()
        pytest.skip("the run ended before its workers could be seen")
    time.sleep(0.5)  # the workers run their initializer
    workers = _children(proc.pid)
    proc.kill()
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(Path(f"/proc/{w}").exists() and
                                         "Z" not in (Path(f"/proc/{w}/stat").read_text().split()[2:3] or [""])
                                         for w in workers):
        time.sleep(0.1)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()
             and (Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z")]
    for w in alive:  # do not leave them behind if the test fails
        os.kill(w, 9)
    assert not alive, f"orphaned workers: {alive}"


# ---------------------------------------------------------------- 11. library input, scikit-learn style

def test_11_library_input_errors_are_value_errors_that_name_the_argument():
    from leakscan import ArgumentError, StratifiedGroupShuffleSplit, train_test_split
    from leakscan.discovery import discover

    imgs = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match=r"splits has 2 entries but there are 3 images"):
        audit(imgs, splits=["train", "test"], jobs=1)
    with pytest.raises(ArgumentError, match=r"groups has 4 entries but there are 3 images"):
        audit(imgs, groups=[1, 2, 3, 4], jobs=1)
    with pytest.raises(ValueError, match="random_state"):
        train_test_split(imgs, np.arange(3), random_state="abc", jobs=1)
    with pytest.raises(ValueError, match="random_state"):
        StratifiedGroupShuffleSplit(random_state="abc")
    with pytest.raises(ValueError, match="empty images"):
        discover(np.zeros((3, 0, 0)))
    with pytest.raises(ValueError, match="dtype complex"):
        discover(np.zeros((3, 8, 8), np.complex64))
    with pytest.raises(ValueError, match=r"images\[1\] is empty"):
        discover([np.zeros((8, 8), np.uint8), np.zeros((0, 8), np.uint8)])
    with pytest.raises(ValueError, match="pixels, got dtype|dtype object"):
        discover(np.array([[["a"] * 4] * 4] * 2, dtype=object))
    # stratify with a class of one sample raises, as scikit-learn does
    X = np.random.default_rng(1).integers(0, 255, (10, 16, 16), np.uint8)
    y = np.array([0] * 5 + [1] * 4 + [2])
    with pytest.raises(ValueError, match="least populated class"):
        train_test_split(X, y, stratify=y, random_state=0, jobs=1)


def test_11_a_missing_or_blank_split_is_refused_naming_its_position():
    # splits=["train", None, ...] made a split named "" (None, NaN and "" alike), silently; a
    # manifest row without a split is skipped, a Python argument refused as scikit-learn refuses NaN
    from leakscan import ArgumentError
    from leakscan.discovery import discover

    imgs = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), np.uint8)
    for bad, shown in ((None, "None"), (float("nan"), "nan"), ("", "''"), (" ", "' '")):
        with pytest.raises(ArgumentError, match=rf"^splits\[1\] is {re.escape(shown)}: every image needs a split "
                                                r"name \(leave splits= out for one split, 'all'\)$"):
            discover(imgs, splits=["train", bad, "test"])
    with pytest.raises(ValueError, match=r"splits\[2\] is None"):
        audit([f"{k}.png" for k in range(3)], splits=["train", "test", None], jobs=1)
    assert list(discover(imgs, splits=["train", "test", "test"], labels=[None, "a", "b"]).labels) == ["", "a", "b"]


def test_11_object_arrays_and_lists_of_images_work():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 255, (20, 24, 3), np.uint8), rng.integers(0, 255, (30, 18, 3), np.uint8)
    objs = np.empty(3, dtype=object)
    objs[0], objs[1], objs[2] = a, b, a.copy()
    r = audit(objs, splits=["train", "train", "test"], jobs=1)
    assert r.n_images == 3 and sum(lk.images for lk in r.leaks) == 2
    same = np.empty(2, dtype=object)
    same[0], same[1] = a, a.copy()
    assert len(audit(same, jobs=1).pairs) == 1
    assert len(audit([a, a.copy()], jobs=1).pairs) == 1


# ---------------------------------------------------------------- 12. decided and documented

def test_12_private_files_named_in_a_manifest_are_never_echoed(tmp_path):
    d = issue_dataset(tmp_path / "d")
    secret = tmp_path / "private" / "secret.png"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:TOPSECRET-TOKEN:/root:/bin/bash\n")
    csv = tmp_path / "m.csv"
    csv.write_text(f"path,split\n{d}/train/a/x.png,train\n{d}/test/a/x.png,test\n{secret},test\n/etc/passwd,test\n")
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["audit", "--manifest", str(csv), "--out", str(out), "--no-cache"])
    assert res.exit_code == 0, res.output
    for f in [*out.iterdir()]:
        text = f.read_text(errors="replace")
        assert "TOPSECRET" not in text and "root:x" not in text and "root:" not in text.replace(str(d), ""), f.name
    assert "TOPSECRET" not in res.output and "root:x" not in res.output


def test_12_file_symlinks_to_outside_are_followed_read_only(tmp_path):
    from conftest import tree_digest

    d = issue_dataset(tmp_path / "d")
    elsewhere = mk(tmp_path / "elsewhere" / "w.png", 77)
    os.symlink(elsewhere, d / "test/a/w.png")
    shutil.copy(elsewhere, d / "train/a/w.png")
    before = tree_digest(tmp_path / "elsewhere")
    r = audit(d, cache=False, jobs=1)
    assert "test/a/w.png" not in dict(r.skipped) and leaked(r) == 4
    assert tree_digest(tmp_path / "elsewhere") == before


def test_12_csv_cells_cannot_become_spreadsheet_formulas_and_read_back(tmp_path):
    import csv as csvmod

    d = tmp_path / "d"
    mk(d / "train" / "=HYPERLINK(evil)" / "+x.png", 1)
    mk(d / "test" / "@cls" / "-x.png", 2)
    shutil.copy(d / "train" / "=HYPERLINK(evil)" / "+x.png", d / "test" / "@cls" / "-x.png")
    out = tmp_path / "o"
    runner = CliRunner()
    assert runner.invoke(app, ["audit", str(d), "--out", str(out), "--no-cache", "-q"]).exit_code == 0
    for name in ("pairs.csv", "groups.csv"):
        with open(out / name, newline="") as fh:
            for row in csvmod.reader(fh):
                assert not any(c.startswith(("=", "+", "-", "@")) for c in row), (name, row)
    text = (out / "groups.csv").read_text()
    assert "./test/@cls/-x.png" not in text  # relative paths start with the split folder here
    assert "'=HYPERLINK(evil)" in text and "'@cls" in text
    # leakscan reads its own CSVs back: groups.csv as a manifest finds the same pair
    r = audit(None, manifest=out / "groups.csv", cache=False, jobs=1)
    assert set(r.manifest.labels.tolist()) == {"=HYPERLINK(evil)", "@cls"}
    # and the re-split manifest points at the same files
    assert runner.invoke(app, ["resplit", str(d), "--out", str(tmp_path / "new.csv"), "--no-cache", "-q"]).exit_code == 0
    r = audit(None, manifest=tmp_path / "new.csv", cache=False, jobs=1)
    assert r.n_images == 2 and len(r.pairs) == 1


def test_12_identical_images_give_linear_pairs_and_one_thumbnail(tmp_path):
    from leakscan.htmlreport import report_data

    n = 1500
    img = np.random.default_rng(0).integers(0, 255, (16, 16, 3), np.uint8)
    imgs = np.repeat(img[None], n, axis=0)
    r = audit(imgs, splits=["train", "test"] * (n // 2), jobs=1)
    assert len(r.pairs) == n - 1  # a star around the first copy, not n(n-1)/2 rows
    assert r.groups.sizes.max() == n
    assert len(report_data(r)["thumbs"]) == 1


@pytest.mark.skipif(os.name != "posix", reason="needs SIGINT")
def test_5_ctrl_c_is_one_line_and_exit_2_not_the_leak_code(tmp_path):
    import signal

    d = tmp_path / "d"
    rng = np.random.default_rng(0)
    for k in range(600):
        p = d / ("train" if k % 4 else "test") / f"{k}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(p)
    proc = subprocess.Popen([sys.executable, "-m", "leakscan", "audit", str(d), "--jobs", "2", "--no-cache", "-q",
                             "--out", str(tmp_path / "new" / "o")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(_children(proc.pid)) < 2:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the run ended before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "interrupted" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()  # the folders the run made for --out (it left them, empty)


@pytest.mark.skipif(os.name != "posix", reason="needs SIGINT")
def test_5_ctrl_c_says_the_warnings_held_for_the_list_it_never_printed(tmp_path):
    """The terminal holds back the audit's warnings for its list at the end; Ctrl-C ended the run
    at once and they were said nowhere (here: a split name that is not train/val/test, said of the
    input before decoding). They come before its line."""
    import signal

    d = tmp_path / "d"
    d.mkdir()
    rng = np.random.default_rng(0)
    rows = ["path,split"]
    for k in range(600):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(d / f"{k}.png")
        rows.append(f"{k}.png,{'train' if k % 4 else 'fold2'}")
    (d / "m.csv").write_text("\n".join(rows) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "leakscan", "audit", "--manifest", str(d / "m.csv"), "--jobs", "2",
                             "--no-cache"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(_children(proc.pid)) < 2:
        time.sleep(0.05)  # decoding has begun: the input's warnings were logged (and held)
    if proc.poll() is not None:
        pytest.skip("the run ended before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and out == "", err
    assert err.splitlines() == ["leakscan: WARNING: split name(s) 'fold2' are not train/val/test; used as given",
                                "leakscan: error: interrupted (complete earlier results are kept; nothing "
                                "half-written)"], err


@pytest.mark.skipif(os.name != "posix", reason="needs a pipe whose reader leaves")
def test_5_a_reader_that_stops_reading_leaves_the_exit_code_as_it_was(tmp_path):
    """``leakscan audit data | head``: the pipe breaks under the tables. The results are written
    and the command ends with the code it would have (0 without --fail-on-leak; 1 and its line
    with it), not 1 for "leak found" from the broken pipe, and without a traceback."""
    d = issue_dataset(tmp_path / "d")
    for extra, code in (([], 0), (["--json"], 0), (["--fail-on-leak", "--max-leak", "0"], 1)):
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen([sys.executable, "-m", "leakscan", "audit", str(d), "--no-cache", "--force",
                                     "--out", str(tmp_path / "o")] + extra, stdout=subprocess.PIPE, stderr=err)
            proc.stdout.close()  # the reader is gone before the first line
            assert proc.wait(timeout=300) == code, extra
            err.seek(0)
            said = err.read().decode()
        assert "Traceback" not in said and (code == 0) == ("leakage above" not in said), (extra, said)
        assert (tmp_path / "o" / "summary.json").is_file()
    r = tmp_path / "o" / "split.csv"
    proc = subprocess.Popen([sys.executable, "-m", "leakscan", "resplit", str(d), "--no-cache", "--out", str(r)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0 and r.is_file()


@pytest.mark.skipif(os.name != "posix", reason="needs a pipe whose reader leaves")
def test_5_an_error_said_to_a_reader_that_left_keeps_exit_2(tmp_path):
    """``leakscan audit missing/ 2>&1 | grep -q x``: the error line met a broken pipe, which click
    turned into exit 1 (the code of "leak found"); the line is lost, the exit code is still 2."""
    d = issue_dataset(tmp_path / "d")
    for args in (["audit", str(tmp_path / "missing")], ["audit", str(d), "--max-leak", "0.1"],
                 ["resplit", str(d), "--out", str(tmp_path / "d" / "new.csv"), "--no-cache", "-q"]):
        r, w = os.pipe()
        os.close(r)  # the reader is gone before the first line
        try:
            proc = subprocess.run([sys.executable, "-m", "leakscan"] + args, stdout=subprocess.DEVNULL, stderr=w,
                                  timeout=300)
        finally:
            os.close(w)
        assert proc.returncode == 2, args


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_5_a_printout_to_a_full_disk_is_one_line_and_exit_2(tmp_path):
    """``leakscan audit data > report.txt`` on a full disk: an environment failure, said in one
    line with exit 2 (not a traceback with exit 1, the code of "leak found"); the files are written."""
    d = issue_dataset(tmp_path / "d")
    for extra in ([], ["--json"]):
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "leakscan", "audit", str(d), "--no-cache", "--force",
                                   "--out", str(tmp_path / "o")] + extra, stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "standard output" in proc.stderr and (tmp_path / "o" / "summary.json").is_file()


@pytest.mark.skipif(os.name != "posix", reason="closes the child's descriptors")
def test_5_an_output_closed_before_the_start_is_written_to_nowhere(tmp_path):
    """``leakscan audit data 2>&-`` (a daemon, a cron line): no crash on the missing stream, the
    same exit codes, the results written."""
    d = issue_dataset(tmp_path / "d")
    cmd = [sys.executable, "-m", "leakscan", "audit", str(d), "--no-cache", "--force", "--out", str(tmp_path / "o")]
    for closed, extra, code in ((2, [], 0), (1, [], 0), ((1, 2), ["--fail-on-leak", "--max-leak", "0"], 1)):
        fds = closed if isinstance(closed, tuple) else (closed,)
        proc = subprocess.run(cmd + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300,
                              preexec_fn=lambda fds=fds: [os.close(fd) for fd in fds])
        assert proc.returncode == code, (closed, proc.stdout, proc.stderr)
        assert (tmp_path / "o" / "summary.json").is_file()
        if closed == 2:
            assert "Results written" in proc.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_4_a_fifo_as_the_manifest_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "m.csv"
    os.mkfifo(fifo)
    res: dict = {}
    t = threading.Thread(target=lambda: res.setdefault("r", CliRunner().invoke(
        app, ["audit", "--manifest", str(fifo), "--no-cache", "-q"])), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the audit hangs on a FIFO manifest"
    assert res["r"].exit_code == 2 and "not a regular file" in res["r"].stderr


def test_6_out_given_as_a_symlink_keeps_the_link(tmp_path):
    d = issue_dataset(tmp_path / "d")
    real = tmp_path / "real-report"
    real.mkdir()
    link = tmp_path / "report"
    os.symlink(real, link)
    for _ in range(2):
        res = CliRunner().invoke(app, ["audit", str(d), "--out", str(link), "--no-cache", "-q", "--force"])
        assert res.exit_code == 0, res.output
    assert link.is_symlink() and (real / "summary.json").is_file()


def test_too_many_open_files_says_the_limit(tmp_path, monkeypatch):
    """'error: /tmp/x: Too many open files' blamed the folder where the limit was met; the line now
    says the limit (ulimit -n) and that it is the one to raise."""
    import errno
    import resource

    audit_module = sys.modules[audit.__module__]  # leakscan.audit, the module (the package's audit is the function)

    def emfile(*a, **kw):
        raise OSError(errno.EMFILE, "Too many open files", str(tmp_path))
    monkeypatch.setattr(audit_module, "audit", emfile)
    res = CliRunner().invoke(app, ["audit", str(issue_dataset(tmp_path / "d")), "--no-cache", "-q"])
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert res.exit_code == 2
    assert f"Too many open files (this process may have {soft} files open at once, ulimit -n" in res.output


def _killed_on_three(x):
    import signal

    if x == 3:  # as the out-of-memory killer ends a worker
        os.kill(os.getpid(), signal.SIGKILL)
    return x


@pytest.mark.skipif(os.name != "posix", reason="kills a worker process")
def test_a_worker_killed_mid_run_is_one_line_not_a_traceback():
    """A worker killed by the system (its out-of-memory killer, or a crash under ulimit -v) was a
    BrokenProcessPool traceback and exit 1, the code of "leak found"; now a LeakscanError (one
    line, exit 2) that says what most likely happened."""
    from leakscan.errors import LeakscanError
    from leakscan.parallel import run_chunks

    with pytest.raises(LeakscanError, match="a worker process ended abruptly .*out-of-memory killer"):
        list(run_chunks(_killed_on_three, range(8), jobs=2))


def _tasks_after_a_pause():
    import time

    yield 3  # its worker is killed
    yield 5
    time.sleep(2)  # the pool is broken before the next task is handed over
    yield from (4, 6, 7)


@pytest.mark.skipif(os.name != "posix", reason="kills a worker process")
def test_a_worker_killed_before_the_next_task_is_handed_over_is_one_line_too():
    """The pool a worker died in refuses the next task (``submit``) before any result is asked
    for: that was a BrokenProcessPool traceback (a CI run met it by timing), now the same line."""
    from leakscan.errors import LeakscanError
    from leakscan.parallel import run_chunks

    with pytest.raises(LeakscanError, match="a worker process ended abruptly"):
        list(run_chunks(_killed_on_three, _tasks_after_a_pause(), jobs=2))


@pytest.mark.parametrize("where", ["out", "materialize"])
def test_resplit_into_a_folder_it_cannot_write_is_refused_before_decoding(tmp_path, monkeypatch, where):
    """resplit --out in a folder this user cannot write (another user's, a read-only file system)
    was refused only after the whole audit; --materialize there failed after NEW.csv was written
    (exit 2, and a re-run then refused: NEW.csv exists). Both are refused before any image is decoded,
    nothing written. A read-only tmpfs stands in for another user's folder (root writes anywhere)."""
    import leakscan.features as features

    d = issue_dataset(tmp_path / "d")

    def never(*a, **kw):
        raise AssertionError("decoded before the folder was checked")
    monkeypatch.setattr(features, "extract_features", never)
    monkeypatch.setattr(sys.modules[audit.__module__], "extract_features", never)
    with tmpfs(options="ro") as ro:
        out = ro / "new.csv" if where == "out" else tmp_path / "new.csv"
        cmd = ["resplit", str(d), "--out", str(out), "--no-cache", "-q"]
        if where == "materialize":
            cmd += ["--materialize", str(ro / "tree")]
        res = CliRunner().invoke(app, cmd)
        assert res.exit_code == 2, res.output
        assert "is not writable; choose another folder" in res.output
        assert not out.exists() and not os.listdir(ro)


def test_4_resplit_from_a_manifest_to_an_out_name_at_the_length_limit(tmp_path):
    # the lists beside NEW.csv would have names past the limit: nothing can be there, and the
    # check that --out is none of the run's inputs looked for them (File name too long, exit 2)
    d = issue_dataset(tmp_path / "d")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,split\n" + "".join(f"{p.relative_to(tmp_path).as_posix()},{p.parts[-3]}\n"
                                                 for p in sorted(d.rglob("*.png"))))
    new = tmp_path / ("n" * 251 + ".csv")
    res = CliRunner().invoke(app, ["resplit", "--manifest", str(manifest), "--out", str(new), "--no-cache", "-q",
                                   "-j", "1"])
    assert res.exit_code == 0, res.output
    assert new.is_file() and manifest.is_file()
