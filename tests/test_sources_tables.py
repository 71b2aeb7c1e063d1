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


def test_bytes_rows_use_the_content_cache(tmp_path):
    imgs = [scene(k) for k in range(5)]
    df = pd.DataFrame({"image": [_png(i) for i in imgs], "split": ["train"] * 3 + ["test"] * 2})
    cache = tmp_path / "c.sqlite"
    a = leakscan.audit(df, jobs=1, cache=cache)
    b = leakscan.audit(df.iloc[::-1].reset_index(drop=True), jobs=1, cache=cache)
    assert a.features.n_cached == 0 and b.features.n_cached == 5
    assert np.array_equal(a.features.hashes[::-1], b.features.hashes)
