"""Dirty data: every file accounted for, clear reasons, nothing crashes, nothing is touched."""

import io
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from leakscan import InputError, audit, discover
from leakscan.cli import app
from leakscan.decode import DecodeError, decode_bytes
from conftest import ROOT, scene, tree_digest, without_root_reading
from corpus import make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "data"
    return root, make_corpus(root)


@pytest.fixture(scope="module")
def result(corpus):
    return audit(corpus[0], jobs=2, cache=False)


def test_every_file_accounted_for(corpus, result):
    root, exp = corpus
    d = result.to_dict()
    assert d["n_files"] == d["n_images"] + d["n_skipped"] == len(exp)
    assert set(result.manifest.paths) == set(exp)


def test_each_bad_file_has_its_reason(corpus, result):
    _, exp = corpus
    skipped = dict(result.skipped)
    notes = {str(result.manifest.paths[r]): n for r, n in result.features.notes}
    for path, (what, text) in exp.items():
        if what == "skip":
            assert path in skipped, path
            assert text in skipped[path], (path, skipped[path])
        else:
            assert path not in skipped, (path, skipped.get(path))
            if text:
                assert text in notes.get(path, ""), (path, notes.get(path))


def test_exif_orientations_match_the_upright_twin(result):
    m, g = result.manifest, result.groups
    rows = [k for k, p in enumerate(m.paths) if "exif-" in p]
    assert len(rows) == 8
    assert len({int(g.ids[r]) for r in rows}) == 1
    kinds = {(int(i), int(j)): k for i, j, k in zip(result.pairs.i, result.pairs.j, result.pairs.kind_names())}
    assert all(kinds.get(tuple(sorted((rows[0], r)))) == "exact" for r in rows[1:])


def test_flat_images_do_not_form_a_giant_group(tmp_path):
    d = tmp_path / "flat"
    d.mkdir()
    from PIL import Image
    for k in range(40):
        Image.new("RGB", (32, 32), (k * 3, k * 3, k * 3)).save(d / f"flat{k}.png")
        noise = np.random.default_rng(k).normal(100, 1.0, (32, 32, 3)).clip(0, 255).astype(np.uint8)
        Image.fromarray(noise).save(d / f"almostflat{k}.png")
    r = audit(d, jobs=1, cache=False)
    assert r.to_dict()["n_low_information"] == 80
    assert r.groups.sizes.max() == 1 and len(r.pairs) == 0


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads every file; permissions cannot be tested")
def test_unreadable_file(tmp_path):
    d = tmp_path / "d"
    make_corpus(d)
    p = d / "train" / "cls" / "exif-upright.png"
    p.chmod(0)
    try:
        r = audit(d, jobs=1, cache=tmp_path / "c.sqlite")
        assert "permission denied" in dict(r.skipped)["train/cls/exif-upright.png"]
    finally:
        p.chmod(0o644)
    # chmod changes no mtime: the failure must not have been cached (issue 15, item 1)
    r = audit(d, jobs=1, cache=tmp_path / "c.sqlite")
    assert "train/cls/exif-upright.png" not in dict(r.skipped)


_AUDIT_IN_A_CHILD = """
import json, sys
from leakscan import audit
data, cache, name = sys.argv[1:]
try:
    open(f"{data}/{name}", "rb").close()
    readable = True
except PermissionError:
    readable = False
r = audit(data, jobs=1, cache=cache)
print(json.dumps({"readable": readable, "skipped": dict(r.skipped)}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="drops root's reading rights the Linux way")
def test_a_file_made_unreadable_since_it_was_cached_is_skipped_as_on_a_first_run(tmp_path):
    """chmod keeps a file's size and modification time, the cache's key: its cached features
    were audited though the file could not be read any more (a first run skips it)."""
    d, db, name = tmp_path / "d", tmp_path / "c.sqlite", "train/cls/exif-upright.png"
    make_corpus(d)
    audit(d, jobs=1, cache=db)
    (d / name).chmod(0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        r = subprocess.run([sys.executable, "-c", _AUDIT_IN_A_CHILD, str(d), str(db), name], env=env,
                           preexec_fn=without_root_reading(), capture_output=True, text=True, timeout=300)
    except subprocess.SubprocessError as exc:  # root without the right to drop capabilities
        pytest.skip(f"cannot run a child that obeys permissions: {exc}")
    finally:
        (d / name).chmod(0o644)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.splitlines()[-1])
    if got["readable"]:
        pytest.skip("the child reads every file: permissions cannot be tested")
    assert "permission denied" in got["skipped"].get(name, ""), got["skipped"]


def test_commands_never_touch_the_dataset(corpus, tmp_path):
    root, _ = corpus
    before = tree_digest(root)
    runner = CliRunner()
    assert runner.invoke(app, ["audit", str(root), "--out", str(tmp_path / "a"), "-q"]).exit_code == 0
    assert runner.invoke(app, ["resplit", str(root), "--out", str(tmp_path / "r.csv"), "-q", "--ratios",
                               "train=0.5,test=0.5", "--shuffle", "--materialize", str(tmp_path / "m"),
                               "--link", "copy"]).exit_code == 0
    assert tree_digest(root) == before
    assert sorted(os.listdir(root)) == ["train"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=2048))
def test_fuzz_decode_random_bytes(blob):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img, _ = decode_bytes(blob)
        except DecodeError as exc:
            assert str(exc)
        else:
            assert img.mode == "RGB"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.text(max_size=400))
def test_fuzz_manifest_text(tmp_path, text):
    p = tmp_path / "m.csv"
    p.write_text(text, encoding="utf-8")
    try:
        m = discover(None, manifest=p)
    except InputError as exc:
        assert str(exc)
    else:
        assert len(m) >= 1


@pytest.mark.parametrize("content, message", [
    ("path,split\n", "no usable rows"),
    ("split,label\nx,train\n", "lacks column"),
    ("", "empty"),
])
def test_manifest_errors_exit_2(tmp_path, content, message):
    p = tmp_path / "m.csv"
    p.write_text(content)
    r = CliRunner().invoke(app, ["audit", "--manifest", str(p), "-q"])
    assert r.exit_code == 2 and message in r.output


def test_manifest_missing_files_and_missing_labels_go_on(tmp_path):
    from PIL import Image
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "a.png")
    from conftest import scene
    scene(1).save(tmp_path / "b.png")
    (tmp_path / "m.csv").write_text("path,split,label\na.png,train,x\nb.png,test,\nmissing.png,train,y\n")
    r = audit(None, manifest=tmp_path / "m.csv", jobs=1, cache=False)
    assert r.n_images == 2 and dict(r.skipped)["missing.png"].startswith("file not found")
    assert any("label" in w for w in r.warnings)


def test_unknown_split_names_warn_and_go_on(tmp_path):
    from conftest import scene
    scene(1).save(tmp_path / "a.png")
    scene(2).save(tmp_path / "b.png")
    (tmp_path / "m.csv").write_text("path;split\na.png;trian\nb.png;test\n")
    r = CliRunner().invoke(app, ["audit", "--manifest", str(tmp_path / "m.csv"), "--json", "--no-cache"])
    assert r.exit_code == 0
    import json
    d = json.loads(r.stdout)
    assert d["splits"] == {"test": 1, "trian": 1}
    assert any("'trian'" in w for w in d["warnings"])


def test_nothing_readable_exits_2_after_listing_the_files(tmp_path):
    d = tmp_path / "d" / "train"
    d.mkdir(parents=True)
    (d / "a.jpg").write_text("x")
    r = CliRunner().invoke(app, ["audit", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "-q", "--no-cache"])
    assert r.exit_code == 2 and "no image could be read" in r.output
    assert "not an image" in (tmp_path / "o" / "skipped.csv").read_text()


def test_a_cut_tiff_is_one_line_naming_it_not_the_notes_of_the_libraries_that_read_it(tmp_path):
    # tifffile logged "invalid offset to first page" (as "leakscan: WARNING:") and Pillow warned
    # "Corrupt EXIF data" with its own source lines: neither named the file, whose reason is said
    d = tmp_path / "d"
    for k, split in enumerate(("train", "train", "test")):
        (d / split).mkdir(parents=True, exist_ok=True)
        scene(k).save(d / split / f"{k}.png")
    buf = io.BytesIO()
    scene(5).save(buf, "TIFF", compression="tiff_lzw")
    (d / "train" / "cut.tif").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": ""}
    p = subprocess.run([sys.executable, "-m", "leakscan", "audit", str(d), "-q", "-j", "1", "--no-cache"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines() == [
        "leakscan: 1 file(s) skipped (--out DIR lists every reason in skipped.csv): train/cut.tif: not an image "
        "Pillow can read (unknown format)"]
