"""pandas DataFrames and Parquet manifests: paths or image bytes in a column."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import leakscan
from leakscan.cli import app
from leakscan.errors import ConfigError, InputError
from conftest import scene, write_dataset

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def files(tmp_path):
    """Ten distinct scenes on disk; test/leak.jpg is a resized copy of train/0.jpg."""
    layout = {f"img/{k}.jpg": scene(k) for k in range(10)}
    layout["img/leak.jpg"] = scene(0).resize((80, 80))
    return write_dataset(tmp_path / "data", layout, quality=90)


def _table(root):
    return pd.DataFrame({
        "file": [str(root / f"img/{k}.jpg") for k in range(10)] + [str(root / "img/leak.jpg")],
        "fold": ["train"] * 7 + ["test"] * 4,
        "cls": ["a", "b"] * 5 + ["a"],
        "patient": [f"p{k}" for k in range(11)],
    })


def test_dataframe_paths_finds_the_planted_leak(files):
    df = _table(files)
    a = leakscan.audit(df, path_column="file", split_column="fold", label_column="cls",
                       group_column="patient", jobs=1)
    lk = {(x.split, x.against): x for x in a.leaks}
    assert lk[("test", "train")].images == 1
    assert set(a.manifest.labels) == {"a", "b"}
    d = a.to_dict()
    lk = {(x["split"], x["against"]): x for x in d["leaks"]}
    assert lk[("test", "train")]["groups"] == 1 and lk[("test", "train")]["groups_total"] == 4


def test_dataframe_default_column_names_and_order_invariance(files):
    df = _table(files).rename(columns={"file": "path", "fold": "split", "cls": "label"})
    a = leakscan.audit(df, jobs=1)
    b = leakscan.audit(df.iloc[::-1].reset_index(drop=True), jobs=1)
    assert a.to_dict()["leaks"] == b.to_dict()["leaks"]


def test_dataframe_of_image_bytes(tmp_path):
    imgs = [scene(k) for k in range(8)]
    df = pd.DataFrame({"image": [_png(i) for i in imgs] + [_png(imgs[2].resize((70, 70)))],
                       "split": ["train"] * 6 + ["test"] * 3})
    a = leakscan.audit(df, jobs=1)
    assert list(a.manifest.paths[:2]) == ["df[0]", "df[1]"]
    lk = {(x.split, x.against): x for x in a.leaks}
    assert lk[("test", "train")].images == 1
    cross = a.pairs.i[a.cross_split()].tolist() + a.pairs.j[a.cross_split()].tolist()
    assert sorted(cross) == [2, 8]


def test_bad_rows_are_skipped_not_fatal(files):
    df = _table(files).rename(columns={"file": "path", "fold": "split"})
    df.loc[3, "split"] = None
    df.loc[4, "path"] = ""
    a = leakscan.audit(df, jobs=1)
    reasons = " ".join(r for _, r in a.skipped)
    assert "no split" in reasons and "empty path" in reasons
    assert a.n_images == 9


def test_a_url_in_a_table_is_skipped_as_a_url_naming_its_row(files):
    # it was joined to the table's folder and skipped as "file not found"
    df = _table(files).rename(columns={"file": "path", "fold": "split"})
    df.loc[2, "path"] = "https://example.com/2.jpg"
    a = leakscan.audit(df, jobs=1)
    assert dict(a.skipped) == {"https://example.com/2.jpg": "row 2 gives a URL, not a file: leakscan reads local "
                                                            "files only (download or mount it, and give its local path)"}
    hf_style = pd.DataFrame({"image": [{"bytes": None, "path": "s3://bucket/x.png"},
                                       {"bytes": None, "path": str(files / "img" / "0.jpg")}], "split": ["train"] * 2})
    assert leakscan.discover(hf_style).skipped == (
        ("s3://bucket/x.png", "row 0 gives a URL, not a file: leakscan reads local files only (download or mount it, and give "
                              "its local path)"),)


def test_a_file_listed_in_two_splits_of_a_table_is_named_and_warned_of(files):
    df = _table(files).rename(columns={"file": "path", "fold": "split"})
    again = df.iloc[[0]].assign(path=str(files / "img" / "." / "0.jpg"), split="test")  # train/0.jpg, spelt anew
    a = leakscan.audit(pd.concat([df, again], ignore_index=True), jobs=1)
    reasons = dict(a.skipped)
    assert reasons[str(files / "img" / "." / "0.jpg")] == (
        "listed twice in the table (row 0 in train, row 11 in test: one file on both sides of the split); "
        "kept the first")
    assert a.n_images == 11
    assert [w for w in a.to_dict()["warnings"] if w.startswith("1 file(s) are listed in two splits")]


def test_unknown_column_is_named(files):
    with pytest.raises(InputError, match="no column 'nope'"):
        leakscan.audit(_table(files), path_column="nope", jobs=1)
    with pytest.raises(ConfigError, match="unknown option"):
        leakscan.audit(_table(files), path_colum="file", jobs=1)


def test_parquet_manifest_with_relative_paths(files, tmp_path):
    df = _table(files).rename(columns={"file": "path", "fold": "split", "cls": "label"})
    df["path"] = [p.replace(str(files) + "/", "") for p in df["path"]]
    pq.write_table(pa.Table.from_pandas(df), files / "manifest.parquet")
    a = leakscan.audit(manifest=files / "manifest.parquet", jobs=1)
    assert a.manifest.root == files
    lk = {(x.split, x.against): x for x in a.leaks}
    assert lk[("test", "train")].images == 1


def test_parquet_with_image_bytes_column_cli(tmp_path):
    imgs = [scene(k) for k in range(8)]
    table = pa.table({
        "image": [{"bytes": _png(i), "path": f"{k}.png"} for k, i in enumerate(imgs)] +
                 [{"bytes": _png(imgs[5].resize((60, 60))), "path": "copy.png"}],
        "split": ["train"] * 6 + ["test"] * 3,
        "label": ["x", "y"] * 4 + ["y"],
    })
    (tmp_path / "src").mkdir()
    pq.write_table(table, tmp_path / "src" / "data.parquet")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["audit", "--manifest", str(tmp_path / "src" / "data.parquet"), "--json", "-j", "1",
                                 "--out", str(out), "--no-html"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    lk = {(x["split"], x["against"]): x for x in d["leaks"]}
    assert lk[("test", "train")]["images"] == 1 and d["n_images"] == 9
    rows = list(csv.DictReader(open(out / "pairs.csv")))
    assert {(r["a"], r["b"]) for r in rows if r["split_a"] != r["split_b"]} == {("data.parquet[5]", "data.parquet[8]")}


def test_parquet_bytes_out_in_the_working_folder(tmp_path, monkeypatch):
    # rows named data.parquet[i] are not files: --out report/ beside the Parquet file is fine,
    # while the folder of a file a struct cell references is still never written into
    (tmp_path / "imgs").mkdir()
    scene(7).save(tmp_path / "imgs" / "7.png")
    pq.write_table(pa.table({
        "image": [{"bytes": _png(scene(k)), "path": None} for k in range(4)] + [{"bytes": None, "path": "imgs/7.png"}],
        "split": ["train", "train", "test", "test", "test"]}), tmp_path / "data.parquet")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["audit", "--manifest", "data.parquet", "--json", "-j", "1", "--no-html",
                                 "--out", "report"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_images"] == 5
    r = CliRunner().invoke(app, ["audit", "--manifest", "data.parquet", "-q", "-j", "1", "--out", "imgs/report"])
    assert r.exit_code == 2 and "inside the dataset folder" in r.output


def test_the_only_column_of_image_bytes_is_read_beside_a_path_column(tmp_path):
    # an export keeping each image's original file name: the bytes are the images, not the names
    imgs = [scene(k) for k in range(6)]
    pq.write_table(pa.table({"path": [f"orig/{k}.png" for k in range(7)],
                             "img": pa.array([_png(i) for i in imgs] + [_png(imgs[2].resize((60, 60)))], pa.binary()),
                             "split": ["train"] * 5 + ["test"] * 2}), tmp_path / "t.parquet")
    a = leakscan.audit(tmp_path / "t.parquet", jobs=1, cache=False)
    assert len(a.manifest) == 7 and not a.manifest.skipped and a.to_dict()["n_skipped"] == 0
    assert {(p["a"], p["b"]) for p in a.pair_records()} == {("t.parquet[2]", "t.parquet[6]")}
    df = pd.DataFrame({"file": [f"orig/{k}.png" for k in range(2)], "img": [_png(imgs[0]), _png(imgs[1])]})
    m = leakscan.discover(df, path_column="file")  # paths asked for: paths are read
    assert list(m.paths) == ["orig/0.png", "orig/1.png"]


def test_a_column_of_image_bytes_empty_in_its_first_rows_is_found(tmp_path):
    """The column is told by its first present cells, not by its first rows (60 rows without an image)."""
    cells = [None] * 60 + [_png(scene(k)) for k in range(3)]
    df = pd.DataFrame({"pixels": cells, "split": ["train"] * 62 + ["test"]})
    m = leakscan.discover(df)
    assert m.source.meta["image_column"] == "pixels"
    assert list(m.paths) == ["df[60]", "df[61]", "df[62]"] and len(m.skipped) == 60
    pq.write_table(pa.table({"path": [f"orig/{k}.png" for k in range(63)], "img": pa.array(cells, pa.binary()),
                             "split": df["split"].tolist()}), tmp_path / "t.parquet")
    m = leakscan.discover(tmp_path / "t.parquet")  # beside a path column too
    assert m.source.meta["image_column"] == "img" and list(m.paths) == ["t.parquet[60]", "t.parquet[61]",
                                                                        "t.parquet[62]"]


def test_bytes_rows_use_the_content_cache(tmp_path):
    imgs = [scene(k) for k in range(5)]
    df = pd.DataFrame({"image": [_png(i) for i in imgs], "split": ["train"] * 3 + ["test"] * 2})
    cache = tmp_path / "c.sqlite"
    a = leakscan.audit(df, jobs=1, cache=cache)
    b = leakscan.audit(df.iloc[::-1].reset_index(drop=True), jobs=1, cache=cache)
    assert a.features.n_cached == 0 and b.features.n_cached == 5
    assert np.array_equal(a.features.hashes[::-1], b.features.hashes)


def _noisy_png(seed: int, side: int = 192) -> bytes:
    """A PNG of ~100 KB that compresses badly (so the table's bytes dominate what a run holds)."""
    rng = np.random.default_rng(seed)
    a = np.asarray(scene(seed, side), np.int16) + rng.integers(-40, 40, (side, side, 3))
    from PIL import Image

    return _png(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)))


def _bytes_table(root, n: int, side: int):
    """``n`` images of ``side`` px in a Parquet bytes column, 10 rows per row group, the last
    quarter test; the last row (test) copies row 3."""
    imgs = [_noisy_png(k, side) for k in range(n - 1)] + [_noisy_png(3, side)]
    table = pa.table({"image": [{"bytes": b, "path": None} for b in imgs],
                      "split": ["train" if k < n * 3 // 4 else "test" for k in range(n)],
                      "label": [str(k % 2) for k in range(n)]})
    path = root / "src" / "imgs.parquet"
    path.parent.mkdir()
    pq.write_table(table, path, row_group_size=10)
    return path, imgs


@pytest.fixture
def bytes_table(tmp_path):
    """120 images (12 MB) in a Parquet bytes column, 10 rows per row group; row 119 (test) copies row 3."""
    return _bytes_table(tmp_path, 120, 192)


@pytest.fixture
def small_bytes_table(tmp_path):
    """As :func:`bytes_table`, 32 images of 96 px (three row groups and two more rows); row 31
    (test) copies row 3: for what does not need the table's size."""
    return _bytes_table(tmp_path, 32, 96)


def test_parquet_bytes_stay_in_the_file(bytes_table):
    """Listing and decoding hold a few chunks' bytes at a time, never the table's; the results
    equal those of the same bytes given in memory."""
    import tracemalloc

    from leakscan.discovery import discover
    from leakscan.features import extract_features

    path, imgs = bytes_table
    total = sum(map(len, imgs))
    assert total > 10_000_000
    extract_features(discover(None, manifest=path), jobs=1)      # (imports done before measuring)
    tracemalloc.start()
    m = discover(None, manifest=path)
    f = extract_features(m, jobs=1, chunk_size=64, chunk_bytes=200_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert f.ok.all() and peak < total / 4, (peak, total)       # held in memory: the table's bytes and more
    df = pd.DataFrame({"image": imgs, "split": m.splits, "label": m.labels})
    g = extract_features(discover(df), jobs=1)
    assert np.array_equal(f.pixel_digest, g.pixel_digest) and np.array_equal(f.file_digest, g.file_digest)
    a = leakscan.audit(manifest=path, jobs=2)
    cross = a.cross_split()
    assert {(a.manifest.paths[i], a.manifest.paths[j]) for i, j in zip(a.pairs.i[cross], a.pairs.j[cross])} == {
        ("imgs.parquet[3]", "imgs.parquet[119]")}


def test_parquet_bytes_are_cached_by_content(small_bytes_table, tmp_path):
    path, imgs = small_bytes_table
    cache = tmp_path / "c.sqlite"
    a = leakscan.audit(manifest=path, jobs=1, cache=cache)
    df = pd.DataFrame({"image": imgs[::-1], "split": ["test"] * 8 + ["train"] * 24})
    b = leakscan.audit(df, jobs=1, cache=cache)          # the same bytes in memory: the same keys
    assert a.features.n_cached == 0 and b.features.n_cached == 32
    assert np.array_equal(a.features.hashes[::-1], b.features.hashes)


def test_parquet_changed_or_gone_after_listing_is_reported_per_row(bytes_table):
    from leakscan.discovery import discover
    from leakscan.features import extract_features

    path, imgs = bytes_table
    m = discover(None, manifest=path)
    t = pq.read_table(path)
    cells = t.column("image").to_pylist()
    cells[5] = {"bytes": _noisy_png(500), "path": None}         # another image in row 5
    pq.write_table(t.set_column(0, "image", pa.array(cells, t.schema.field("image").type)), path,
                   row_group_size=10)
    f = extract_features(m, jobs=1)
    assert dict(f.failures) == {5: "the image bytes changed since the table was listed (another digest); "
                                   "audit it again"}
    assert int(f.ok.sum()) == 119
    path.unlink()
    f = extract_features(m, jobs=1)
    assert not f.ok.any() and len(f.failures) == 120
    assert all(why.startswith("imgs.parquet: cannot read the image bytes") for _, why in f.failures)


def test_report_thumbnails_of_parquet_rows(small_bytes_table, tmp_path):
    from leakscan.htmlreport import report_data

    path, _ = small_bytes_table
    a = leakscan.audit(manifest=path, jobs=1)
    d = report_data(a)
    shown = {img["p"]: img["t"] for img in d["images"]}
    assert shown["imgs.parquet[3]"] is not None and shown["imgs.parquet[31]"] is not None
    assert d["thumbs"] and all(t.startswith("data:image/") for t in d["thumbs"])
    one = report_data(a, max_thumbnails=1)                   # the slot goes to the first row listed
    assert len(one["thumbs"]) == 1


def test_resplit_of_parquet_bytes_writes_rows_and_refuses_to_materialize(small_bytes_table, tmp_path):
    path, _ = small_bytes_table
    out = tmp_path / "new.csv"
    r = CliRunner().invoke(app, ["resplit", "--manifest", str(path), "--out", str(out), "-j", "1", "-q",
                                 "--materialize", str(tmp_path / "tree")])
    assert r.exit_code == 2 and "materialize needs one image file per row" in r.output
    assert not (tmp_path / "tree").exists() or not any((tmp_path / "tree").iterdir())
    out = tmp_path / "again.csv"
    r = CliRunner().invoke(app, ["resplit", "--manifest", str(path), "--out", str(out), "-j", "1", "--json", "-q"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out, newline="")))
    split = {row["path"]: row["split"] for row in rows}
    assert len(rows) == 32 and split["imgs.parquet[3]"] == split["imgs.parquet[31]"]


def test_dataframe_relative_paths_with_root(files, tmp_path, monkeypatch):
    """The README's `root=` for a DataFrame of relative paths: leakscan.audit(df, root=...) said
    'unknown option(s) root'. It applies to DataFrames only."""
    monkeypatch.chdir(tmp_path)
    df = _table(files)
    df["file"] = [p.replace(str(files) + "/", "") for p in df["file"]]
    a = leakscan.audit(df, root=files, path_column="file", split_column="fold", jobs=1)
    assert not a.skipped and a.n_images == 11
    assert {(x.split, x.against): x.images for x in a.leaks}[("test", "train")] == 1
    df.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(ConfigError, match="root do"):
        leakscan.audit(tmp_path / "t.parquet", root=files, jobs=1)


def test_integer_labels_and_groups_with_a_missing_value_stay_integers(files, tmp_path):
    """pandas makes an integer column with one NaN float: labels were '1.0', '2.0' (in per_class and in
    the re-split manifest, where int(label) fails), while the same table as CSV gave '1', '2'."""
    df = _table(files)
    df["cls"] = [1, 2] * 5 + [np.nan]
    df["patient"] = [float(k) for k in range(10)] + [0.0]
    a = leakscan.audit(df, path_column="file", split_column="fold", label_column="cls", group_column="patient", jobs=1)
    assert list(a.manifest.labels) == ["1", "2"] * 5 + [""]
    assert list(a.manifest.groups) == [str(k) for k in range(10)] + ["0"]
    df.to_parquet(tmp_path / "t.parquet")                  # float64 in the file as well
    b = leakscan.audit(tmp_path / "t.parquet", path_column="file", split_column="fold", label_column="cls",
                       group_column="patient", jobs=1)
    assert list(b.manifest.labels) == list(a.manifest.labels) and list(b.manifest.groups) == list(a.manifest.groups)
    df["cls"] = [0.5, 1.0] * 5 + [np.nan]                  # real fractions stay as they are
    assert list(leakscan.discover(df, path_column="file", split_column="fold", label_column="cls").labels)[:2] == [
        "0.5", "1.0"]


def test_dataframe_with_a_column_name_twice_is_named(files):
    """pd.concat of tables sharing a column: an AttributeError ('DataFrame' object has no attribute
    'tolist') instead of one line naming the column."""
    df = _table(files).rename(columns={"file": "path", "fold": "split"})
    twice = pd.concat([df, df[["split"]]], axis=1)
    with pytest.raises(InputError, match="column 'split' appears 2 times"):
        leakscan.audit(twice, jobs=1)


def test_dataframe_with_integer_column_names(files):
    """pd.read_csv(header=None) names columns 0, 1...: path_column=0 said 'no column 0; columns are 0, 1'."""
    df = _table(files)[["file", "fold"]]
    df.columns = [0, 1]
    a = leakscan.audit(df, path_column=0, split_column=1, jobs=1)
    assert a.n_images == 11 and {(x.split, x.against): x.images for x in a.leaks}[("test", "train")] == 1
