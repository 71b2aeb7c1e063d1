import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from leakscan import audit
from leakscan.cache import FeatureCache
from leakscan.features import FEATURE_VERSION
from conftest import ROOT, scene, without_root_reading, write_dataset


@pytest.fixture
def small(tmp_path):
    layout = {f"train/{k}.png": scene(k, 40) for k in range(12)}
    layout["test/0.png"] = scene(0, 40)
    return write_dataset(tmp_path / "d", layout)


def test_second_run_reads_the_cache_and_changed_files_are_redone(small, tmp_path):
    db = tmp_path / "c.sqlite"
    a = audit(small, cache=db, jobs=1)
    assert a.features.n_cached == 0
    b = audit(small, cache=db, jobs=1)
    assert b.features.n_cached == len(b.manifest)
    assert np.array_equal(a.features.embedding, b.features.embedding)
    assert np.array_equal(a.features.hashes, b.features.hashes)
    assert [(int(i), int(j)) for i, j in zip(a.pairs.i, a.pairs.j)] == [(int(i), int(j)) for i, j in zip(b.pairs.i, b.pairs.j)]
    # a changed file (new content, new mtime) is decoded again; an added file too
    scene(99, 40).save(small / "train" / "3.png")
    os.utime(small / "train" / "3.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    scene(100, 40).save(small / "train" / "new.png")
    c = audit(small, cache=db, jobs=1)
    assert c.features.n_cached == len(c.manifest) - 2
    assert audit(small, cache=False, jobs=1).features.n_cached == 0


def test_failures_are_cached_too(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "bad.jpg").write_bytes(b"not an image at all")
    scene(1).save(d / "good.png")
    audit(d, cache=tmp_path / "c.sqlite", jobs=1)
    r = audit(d, cache=tmp_path / "c.sqlite", jobs=1)
    assert r.features.n_cached == 2 and "not an image" in dict(r.skipped)["bad.jpg"]


def test_other_version_is_not_reused(small, tmp_path):
    db = tmp_path / "c.sqlite"
    audit(small, cache=db, jobs=1)
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET v='0' WHERE k='feature_version'")
    con.commit()
    con.close()
    r = audit(small, cache=db, jobs=1)
    assert r.features.n_cached == 0
    assert any("another leakscan version" in w for w in r.warnings)


def test_corrupt_cache_is_set_aside_and_rebuilt(small, tmp_path):
    db = tmp_path / "c.sqlite"
    audit(small, cache=db, jobs=1)
    with open(db, "r+b") as fh:  # our own database, its schema page overwritten
        fh.seek(100)
        fh.write(b"this is not a database" * 100)
    r = audit(small, cache=db, jobs=1)
    assert r.n_images == len(r.manifest)
    assert any("moved it to" in w for w in r.warnings)
    assert list(tmp_path.glob("c.sqlite.broken-*"))
    assert audit(small, cache=db, jobs=1).features.n_cached == len(r.manifest)


def test_killed_run_resumes_from_cache(tmp_path):
    d = tmp_path / "big"
    rng = np.random.default_rng(0)
    for k in range(1500):
        p = d / "train" / f"{k}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        from PIL import Image
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(p)
    db = tmp_path / "c.sqlite"
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "leakscan", "audit", str(d), "--cache", str(db), "--jobs", "1", "-q", "--out", str(out)]
    proc = subprocess.Popen(cmd)
    deadline = time.time() + 60
    n = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        try:
            con = sqlite3.connect(db)
            n = con.execute("SELECT count(*) FROM features").fetchone()[0]
            con.close()
        except sqlite3.Error:
            continue
        if n >= 256:
            break
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be interrupted")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # outputs are written through temporary files: whatever final file exists is complete
    if (out / "summary.json").exists():
        json.loads((out / "summary.json").read_text())
    FeatureCache(db, version=FEATURE_VERSION).close()  # the interrupted database opens cleanly
    r = audit(d, cache=db, jobs=1)
    assert r.features.n_cached >= 256  # the rerun resumed from what the killed run stored
    assert r.n_images == 1500


def test_renamed_record_fields_keep_the_stored_bytes_of_older_caches():
    from leakscan.features import RECORD

    # the layout caches were written with before the fields got their full names
    old = np.dtype([("ok", np.bool_), ("low", np.bool_), ("w", np.int32), ("h", np.int32),
                    ("fd", np.uint8, 16), ("pd", np.uint8, 16), ("hashes", np.uint8, 64),
                    ("emb", np.float32, 128), ("thumb", np.uint8, 1024)])
    # the renaming moved no byte; feature version 6 appended the colour thumbnail (pair evidence),
    # version 12 the folded brightness (solarized copies)
    assert [RECORD.fields[n][:2] for n in RECORD.names[:len(old.names)]] == [old.fields[n][:2] for n in old.names]
    assert RECORD.names[len(old.names):] == ("colour", "folded") and RECORD.fields["colour"][1] == old.itemsize
    assert RECORD.fields["folded"][1] == old.itemsize + 3 * 16 * 16
    assert RECORD.itemsize == old.itemsize + 3 * 16 * 16 + 16 * 16


def test_the_cache_is_a_leaf_of_bytes_and_arrays(tmp_path):
    from leakscan.cache import file_key

    (tmp_path / "a.bin").write_bytes(b"x")
    key = file_key(str(tmp_path / "a.bin"))
    with FeatureCache(tmp_path / "c.sqlite", version="test") as c:
        c.put([key, None], [b"\x01\x02", None], {}, {0: "a note"})
        got = c.get([key, None])
        assert got.positions == [0] and got.blobs == [b"\x01\x02"] and got.notes == {0: "a note"}
        c.put_pairs("k", {"i": np.arange(3)})
        assert c.get_pairs("k")["i"].tolist() == [0, 1, 2]
    with FeatureCache(tmp_path / "c.sqlite", version="other") as c:  # another version: cleared
        assert c.get([key]).positions == [] and c.notes


def test_a_stored_row_of_another_layout_is_decoded_again(small, tmp_path):
    from leakscan.cache import file_key

    db = tmp_path / "c.sqlite"
    first = audit(small, cache=db, jobs=1)
    path = str(first.manifest.resolve(0))
    with FeatureCache(db, version=FEATURE_VERSION) as c:  # a row written by some other layout
        c.put([file_key(path)], [b"\x00" * 10], {}, {})
    again = audit(small, cache=db, jobs=1)
    assert again.features.n_cached == len(again.manifest) - 1
    np.testing.assert_array_equal(again.features.embedding, first.features.embedding)


@pytest.mark.parametrize("full_decode", [False, True])
def test_pictures_read_again_are_the_pictures_a_cold_run_keeps(tmp_path, full_decode):
    """A warm run (features cached) reads its calibration pictures again; they must be the very
    pictures a cold run keeps while decoding, or a warm search decides other confidences than
    a cold one (PNGs and --full-decode JPEGs of 512 px or more were reduced another way)."""
    from leakscan.discovery import discover
    from leakscan.features import extract_features, load_pictures
    from leakscan.settings import DECODE_SIDE

    layout = {"train/a.png": scene(1, 64).resize((900, 620)), "train/b.jpg": scene(2, 64).resize((1100, 700)),
              "train/c.png": scene(3, 64).resize((300, 280))}
    m = discover(write_dataset(tmp_path / "d", layout))
    side = None if full_decode else DECODE_SIDE
    kept = dict(extract_features(m, jobs=1, decode_side=side, picture_share=1.0).pictures)
    assert sorted(kept) == [0, 1, 2]
    again = load_pictures(m, [0, 1, 2], **({"decode_side": None} if full_decode else {}))
    for r in range(3):
        assert np.array_equal(np.asarray(again[r]), kept[r]), m.paths[r]
    # smaller than they were kept, kept or decoded again alike: reduced to the side asked
    for small in (load_pictures(m, [0, 1, 2], max_side=96), load_pictures(m, [0, 1, 2], max_side=96, kept=kept)):
        assert [max(p.size) for p in small] == [96, 96, 96], [p.size for p in small]


def _open_and_store(path, key, barrier, answers):
    barrier.wait()  # every process opens the new cache at the same moment
    try:
        with FeatureCache(path, version=FEATURE_VERSION) as c:
            c.put([key], [b"features of " + key[0].encode()], {}, {})
            answers.put((c.read_only, c.notes))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        answers.put(repr(exc))


def test_runs_that_make_a_new_cache_at_the_same_moment_all_use_it(tmp_path):
    """Audits started together where no cache is yet (a new machine, parallel CI jobs) all make
    the same file: none may refuse it as another program's (it saw another's half-made tables),
    set it aside as broken (both stored its version) or read it without writing ("locked")."""
    from leakscan.cache import file_key

    d = write_dataset(tmp_path / "d", {f"train/{k}.png": scene(k, 32) for k in range(4)})
    keys = [file_key(str(p)) for p in sorted((d / "train").iterdir())]
    fork = multiprocessing.get_context("fork")
    for trial in range(60):
        db = tmp_path / f"c{trial}" / "features.sqlite"
        barrier, answers = fork.Barrier(len(keys)), fork.Queue()
        procs = [fork.Process(target=_open_and_store, args=(db, key, barrier, answers)) for key in keys]
        for p in procs:
            p.start()
        got = [answers.get(timeout=60) for _ in procs]
        for p in procs:
            p.join()
        assert got == [(False, [])] * len(keys), (trial, got)
        assert not list(db.parent.glob("*.broken-*"))
        with FeatureCache(db, version=FEATURE_VERSION) as c:  # every run's row is there
            assert c.get(keys).positions == list(range(len(keys)))


def test_a_cache_path_starting_with_a_tilde_is_in_the_home_folder(small, tmp_path, monkeypatch):
    """A quoted ``LEAKSCAN_CACHE="~/..."`` (or ``--cache=~/...``, which the shell leaves as it is)
    is the home folder's, as everywhere: not a folder named ``~`` made where the run starts."""
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    monkeypatch.setenv("LEAKSCAN_CACHE", "~/caches/features.sqlite")
    audit(small, jobs=1)
    assert (home / "caches" / "features.sqlite").is_file() and not os.listdir(work)
    assert audit(small, jobs=1).features.n_cached == 13  # and read back
    assert audit(small, cache="~/caches/features.sqlite", jobs=1).features.n_cached == 13
    assert not os.listdir(work)


def test_a_relative_cache_path_is_taken_from_the_current_folder_and_named_whole(small, tmp_path, monkeypatch):
    """A relative ``$LEAKSCAN_CACHE`` (or ``cache=``) is in the folder the run starts from, as pip
    reads a relative ``PIP_CACHE_DIR``; it is made absolute once, so what the run says names it whole."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("LEAKSCAN_CACHE", "caches/features.sqlite")
    audit(small, jobs=1)
    assert (work / "caches" / "features.sqlite").is_file()
    (work / "blocker").write_text("a file where the cache's folder would be")
    for env, given in (("blocker/c.sqlite", True), ("caches/features.sqlite", "blocker/c.sqlite")):
        monkeypatch.setenv("LEAKSCAN_CACHE", env)
        said = [w for w in audit(small, cache=given, jobs=1).warnings if "cannot be used" in w]
        assert said and f"feature cache {work / 'blocker' / 'c.sqlite'} cannot be used" in said[0], said


def test_a_cache_of_another_table_layout_is_rebuilt_in_this_ones(small, tmp_path):
    """A cache another schema wrote (a newer leakscan's, after a downgrade; or this one's after
    an upgrade that changes the tables) is rebuilt in this version's layout: clearing its rows
    kept the other layout, where nothing could be stored, ever (a warning on every run)."""
    db = tmp_path / "c.sqlite"
    audit(small, cache=db, jobs=1)
    with sqlite3.connect(db) as con:  # as a newer schema lays it out: another column, another table
        con.execute("DROP TABLE features")
        con.execute("CREATE TABLE features (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER, digest BLOB, "
                    "row BLOB, reason TEXT, note TEXT)")
        con.execute("CREATE TABLE thumbs (path TEXT PRIMARY KEY, png BLOB)")
        con.execute("UPDATE meta SET v='2' WHERE k='schema'")
    con.close()
    first = audit(small, cache=db, jobs=1)
    assert first.features.n_cached == 0 and [w for w in first.warnings if "feature cache" in w] == [
        f"feature cache {db} was written by another leakscan version (schema 2, features {FEATURE_VERSION}); "
        "rebuilding it"]
    again = audit(small, cache=db, jobs=1)
    assert again.features.n_cached == len(again.manifest) and not again.warnings
    assert [(int(i), int(j)) for i, j in zip(first.pairs.i, first.pairs.j)] == [
        (int(i), int(j)) for i, j in zip(again.pairs.i, again.pairs.j)]


def test_a_cache_path_that_links_to_a_file_not_made_yet_makes_it_there(small, tmp_path):
    """``features.sqlite`` as a symlink to a bigger disk, made before the first run: the cache is
    made where the link points (it was refused as "not a file (a folder or a special file)")."""
    link, real = tmp_path / "caches" / "features.sqlite", tmp_path / "big" / "real.sqlite"
    link.parent.mkdir()
    real.parent.mkdir()
    link.symlink_to(real)
    assert audit(small, cache=link, jobs=1).features.n_cached == 0
    assert link.is_symlink() and real.is_file()
    assert audit(small, cache=link, jobs=1).features.n_cached == 13
    with open(real, "r+b") as fh:  # broken: set aside and made anew where the link points, still linked
        fh.seek(100)
        fh.write(b"this is not a database" * 100)
    assert any("moved it to real.sqlite.broken-" in w for w in audit(small, cache=link, jobs=1).warnings)
    assert link.is_symlink() and audit(small, cache=link, jobs=1).features.n_cached == 13
    assert len(list(real.parent.glob("real.sqlite.broken-*"))) == 1
    loop = tmp_path / "loop.sqlite"
    loop.symlink_to(loop)
    from leakscan.errors import ConfigError

    with pytest.raises(ConfigError, match="is not a file"):  # a link to itself is still refused
        audit(small, cache=loop, jobs=1)


def test_a_cache_path_that_cannot_be_looked_at_is_warned_about_not_called_a_folder(small, tmp_path):
    """Only a symlink loop is refused as "not a file": a cache path under a file (or a folder
    that cannot be searched) is a cache that cannot be used, with a warning, as before the
    symlink fix; it was refused, exit 2, as "not a file (a folder or a special file)"."""
    (tmp_path / "afile").write_text("x")
    result = audit(small, cache=tmp_path / "afile" / "features.sqlite", jobs=1)
    assert any("cannot be used" in w for w in result.warnings), result.warnings
    assert result.n_images == 13


def test_a_run_stores_nothing_in_a_cache_another_version_made_anew_meanwhile(small, tmp_path, monkeypatch):
    """A run of another leakscan version (an upgrade while a long audit goes on; two CI jobs
    pinning two versions, one cache) that opens the cache clears it for its own features: the
    run that was going on may not store its rows there, which the other version would read
    as its own features (same layout, other meaning: other pairs than a cold run)."""
    from leakscan.cache import file_key

    db = tmp_path / "c.sqlite"
    put = FeatureCache.put

    def another_version_opens_it_first(self, *args, **kwargs):
        FeatureCache(db, version="another").close()
        return put(self, *args, **kwargs)

    monkeypatch.setattr(FeatureCache, "put", another_version_opens_it_first)
    r = audit(small, cache=db, jobs=1)
    assert r.n_images == 13 and r.features.n_cached == 0
    assert [w for w in r.warnings if "feature cache" in w] == [
        f"feature cache {db} was made anew by a run of another leakscan version (features another) while this "
        "one went on; reading it but not storing new results"]
    keys = [file_key(str(p)) for p in sorted(small.rglob("*.png"))]
    with FeatureCache(db, version="another") as c:
        assert c.get(keys).positions == []
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM pairs").fetchone()[0] == 0  # nor its search results
    con.close()


def test_the_second_run_reuses_the_search_of_a_dataset_with_a_broken_file(small, tmp_path, caplog):
    """A dataset holding a file that cannot be decoded (a truncated JPEG): its second audit
    reuses the first one's search result as the README says of an unchanged dataset (the key
    held the digest the cold run read before the file failed, which the cache does not keep)."""
    import io
    import logging

    buf = io.BytesIO()
    scene(50, 64).save(buf, "JPEG", quality=90)
    (small / "test" / "cut.jpg").write_bytes(buf.getvalue()[:200])
    db = tmp_path / "c.sqlite"
    cold = audit(small, cache=db, jobs=1)
    assert "test/cut.jpg" in dict(cold.skipped)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="leakscan.audit"):
        warm = audit(small, cache=db, jobs=1)
    assert warm.features.n_cached == 14
    assert any("search results reused" in rec.getMessage() for rec in caplog.records)
    assert [(int(i), int(j)) for i, j in zip(cold.pairs.i, cold.pairs.j)] == [
        (int(i), int(j)) for i, j in zip(warm.pairs.i, warm.pairs.j)]


def test_a_search_made_while_pictures_could_not_be_read_is_not_kept(tmp_path, caplog):
    """A warm run reads pictures again (to calibrate, to look closer). When some cannot be read
    (unreadable for a while, rewritten with their size and time kept), the run decides without
    them; that result was kept and reused by the next runs, which could read them, so their
    pairs differed from a cold run's for good."""
    import logging

    from leakscan.settings import DetectSettings

    layout = {f"train/{k}.png": scene(k, 48) for k in range(30)}
    layout.update({f"test/{k}.jpg": scene(k, 48).resize((40, 40)) for k in range(0, 30, 3)})
    d = write_dataset(tmp_path / "d", layout, quality=85)
    db = tmp_path / "c.sqlite"
    audit(d, cache=db, jobs=1)  # the features are cached
    files = sorted(d.rglob("*.png"))[::2]
    saved = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    for p, (data, mtime) in saved.items():  # unreadable for a while, cached features kept
        p.write_bytes(bytes(len(data)))
        os.utime(p, ns=(mtime, mtime))
    settings = DetectSettings(min_confidence=0.6)  # a search not cached yet
    with caplog.at_level(logging.WARNING, logger="leakscan.features"):
        audit(d, cache=db, jobs=1, settings=settings)
    assert any("not read again" in rec.getMessage() for rec in caplog.records)
    for p, (data, mtime) in saved.items():
        p.write_bytes(data)
        os.utime(p, ns=(mtime, mtime))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="leakscan.audit"):
        warm = audit(d, cache=db, jobs=1, settings=settings)
    assert not any("search results reused" in rec.getMessage() for rec in caplog.records)
    cold = audit(d, cache=False, jobs=1, settings=settings)
    assert warm.pair_records() == cold.pair_records()
    assert warm.to_dict()["calibration"] == cold.to_dict()["calibration"]


def test_a_user_without_a_home_folder_runs_without_the_cache(small, monkeypatch):
    """A container's user id with no entry in the password database and no HOME (OpenShift's
    random uids): the default cache ~/.cache/... ended in a RuntimeError traceback, exit 1; now
    the run decodes without a cache and says why and what to set."""
    import pwd

    def unknown(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")
    for name in ("HOME", "XDG_CACHE_HOME", "LEAKSCAN_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", unknown)
    assert os.path.expanduser("~") == "~"  # what such a user meets
    result = audit(small, jobs=1)
    assert result.n_images == 13
    assert any("home folder is unknown" in w and "LEAKSCAN_CACHE" in w for w in result.warnings), result.warnings


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="drops root's reading rights the Linux way")
def test_a_cache_that_cannot_be_read_is_warned_about_whether_given_by_cache_or_by_the_environment(small, tmp_path):
    """A feature cache that cannot be opened is a warning and a run without it (README, *Caches*):
    so it was through ``$LEAKSCAN_CACHE``, but ``--cache`` naming the same file was refused by the
    option's own check, exit 2 with click's three lines."""
    db = tmp_path / "c.sqlite"
    audit(small, cache=db, jobs=1)
    kept = db.read_bytes()
    db.chmod(0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def run(args, **more_env):
        cmd = [sys.executable, "-m", "leakscan", "audit", str(small), "--json", "-j", "1", *args]
        try:
            return subprocess.run(cmd, env={**env, **more_env}, preexec_fn=without_root_reading(),
                                  capture_output=True, text=True, timeout=300)
        except subprocess.SubprocessError as exc:  # root without the right to drop capabilities
            pytest.skip(f"cannot run a child that obeys permissions: {exc}")
    try:
        probe = subprocess.run([sys.executable, "-c", f"open({str(db)!r}, 'rb')"], preexec_fn=without_root_reading(),
                               capture_output=True)
        if probe.returncode == 0:
            pytest.skip("the child reads every file: permissions cannot be tested")
        given, from_env = run(["--cache", str(db)]), run([], LEAKSCAN_CACHE=str(db))
    finally:
        db.chmod(0o644)
    said = f"leakscan: WARNING: feature cache {db} cannot be used ([Errno 13] Permission denied: '{db}'); " \
           "decoding without it"
    for r in (given, from_env):
        assert r.returncode == 0 and r.stderr.strip() == said, r.stderr
        summary = json.loads(r.stdout)
        assert summary["n_images"] == 13 and summary["n_cached"] == 0
        assert any("cannot be used" in w for w in summary["warnings"]), summary["warnings"]
    assert db.read_bytes() == kept
