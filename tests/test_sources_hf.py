"""Hugging Face datasets: a DatasetDict built here (no hub), audited and re-split."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import leakscan  # noqa: E402
from leakscan.cli import app  # noqa: E402
from leakscan.errors import InputError  # noqa: E402
from conftest import scene  # noqa: E402

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def _dd(with_group: bool = False):
    """train: 10 scenes; validation: 4 scenes + a resized copy of train/3 (planted leak)."""
    feats = {"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])}
    if with_group:
        feats["owner"] = datasets.Value("string")
    feats = datasets.Features(feats)
    tr = {"image": [scene(k) for k in range(10)], "label": [k % 2 for k in range(10)]}
    va = {"image": [scene(k) for k in range(10, 14)] + [scene(3).resize((72, 72))], "label": [0, 1, 0, 1, 1]}
    if with_group:
        tr["owner"] = [f"u{k}" for k in range(10)]
        va["owner"] = ["u0", "v1", "v2", "v3", "v4"]  # validation/0 shares an owner with train/0
    return datasets.DatasetDict({"train": datasets.Dataset.from_dict(tr, features=feats),
                                 "validation": datasets.Dataset.from_dict(va, features=feats)})


def test_datasetdict_audit_rows_are_split_index():
    a = leakscan.audit(_dd(), jobs=1)
    m = a.manifest
    assert m.paths[0] == "train/0" and m.paths[-1] == "validation/4"
    assert set(m.splits) == {"train", "val"} and set(m.labels) == {"cat", "dog"}
    cross = a.cross_split()
    pairs = {(m.paths[i], m.paths[j]) for i, j in zip(a.pairs.i[cross], a.pairs.j[cross])}
    assert pairs == {("train/3", "validation/4")}
    recs = [r for r in a.pair_records() if r["split_a"] != r["split_b"]]
    assert recs[0]["a"] == "train/3" and recs[0]["b"] == "validation/4"


def test_single_dataset_with_split_and_columns():
    dd = _dd()
    a = leakscan.audit(dd["train"], split="train", jobs=1)
    assert set(a.manifest.splits) == {"train"} and a.manifest.paths[0] == "train/0"
    b = leakscan.audit(dd, split="validation", jobs=1)
    assert len(b.manifest) == 5
    with pytest.raises(InputError, match="no column 'pic'"):
        leakscan.audit(dd, image_column="pic", jobs=1)


def test_group_column_counts_groups():
    a = leakscan.audit(_dd(with_group=True), group_column="owner", jobs=1)
    d = a.to_dict()
    lk = {(x["split"], x["against"]): x for x in d["leaks"]}
    assert lk[("val", "train")]["images"] == 2          # the copy and the shared owner
    assert lk[("val", "train")]["groups"] == 2 and lk[("val", "train")]["groups_total"] == 5


def test_plain_columns_named_image_label_group_are_the_defaults(tmp_path):
    # as the options table says: the Image feature or `image`, a ClassLabel or `label`, `group`
    import io

    def png(img):
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"image": [png(scene(k)) for k in range(6)], "label": ["a", "b"] * 3,
                                             "group": [f"p{k}" for k in range(6)]}),
        "test": datasets.Dataset.from_dict({"image": [png(scene(20)), png(scene(21))], "label": ["a", "b"],
                                            "group": ["p1", "q"]})})  # p1: a patient on both sides
    d = leakscan.audit(dd, jobs=1, cache=False).to_dict()
    assert d["class_counts"] == {"train": {"a": 3, "b": 3}, "test": {"a": 1, "b": 1}}
    lk = {(x["split"], x["against"]): x for x in d["leaks"]}
    assert lk[("test", "train")]["images"] == 1 and lk[("test", "train")]["groups"] == 1


def test_image_column_of_file_paths(tmp_path):
    for k in range(5):
        scene(k).save(tmp_path / f"{k}.png")
    scene(2).resize((70, 70)).save(tmp_path / "copy.png")
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"file": [str(tmp_path / f"{k}.png") for k in range(5)]}),
        "test": datasets.Dataset.from_dict({"file": [str(tmp_path / "copy.png"), str(tmp_path / "gone.png")]})})
    a = leakscan.audit(dd, image_column="file", jobs=1, cache=False)
    assert len(a.manifest) == 6 and a.manifest.skipped == (
        ("test/1", f"row has no image bytes and its path {tmp_path / 'gone.png'} is not a file"),)
    assert {(p["a"], p["b"]) for p in a.pair_records()} == {("train/2", "test/0")}


def test_cache_is_keyed_by_content(tmp_path):
    cache = tmp_path / "c.sqlite"
    dd = _dd()
    a = leakscan.audit(dd, jobs=1, cache=cache)
    b = leakscan.audit(datasets.DatasetDict({"validation": dd["validation"], "train": dd["train"]}),
                       jobs=1, cache=cache)
    assert a.features.n_cached == 0 and b.features.n_cached == 15
    assert b.to_dict()["n_cross_split_pairs"] == 1


def test_resplit_returns_a_leak_free_datasetdict():
    dd = _dd()
    new = leakscan.resplit(dd)
    assert isinstance(new, datasets.DatasetDict) and set(new) == {"train", "validation"}
    assert sum(len(v) for v in new.values()) == 15
    again = leakscan.audit(new, jobs=1)
    assert again.to_dict()["n_cross_split_pairs"] == 0
    assert new["train"].features == dd["train"].features


def test_cli_hf_save_to_disk_audit_and_resplit(tmp_path):
    _dd().save_to_disk(str(tmp_path / "saved"))
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["audit", "--hf", str(tmp_path / "saved"), "--json", "-j", "1",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["n_images"] == 15 and d["n_cross_split_pairs"] == 1
    rows = list(csv.DictReader(open(out / "pairs.csv")))
    assert ("train/3", "validation/4") in {(x["a"], x["b"]) for x in rows}
    html = (out / "report.html").read_text()
    assert html.count("data:image/") >= 2 and "validation/4" in html   # thumbnails from the Arrow bytes
    r = CliRunner().invoke(app, ["resplit", "--hf", str(tmp_path / "saved"), "--out", str(tmp_path / "new.csv"),
                                 "-q", "-j", "1"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "new.csv")))
    assert len(rows) == 15 and all("/" in x["path"] and not x["path"].startswith(("/", ".")) for x in rows)
    split_of = {x["path"]: x["split"] for x in rows}
    assert split_of["train/3"] == split_of["validation/4"]


def test_cli_hf_out_beside_the_dataset_in_the_working_folder(tmp_path, monkeypatch):
    # rows named split/index are not files under the working folder: --out report/ there is fine
    _dd().save_to_disk(str(tmp_path / "saved"))
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["audit", "--hf", "saved", "--json", "-j", "1", "--no-html", "--out", "report"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_cross_split_pairs"] == 1 and (tmp_path / "report" / "pairs.csv").is_file()
    r = CliRunner().invoke(app, ["resplit", "--hf", "saved", "--out", "new.csv", "-q", "-j", "1"])
    assert r.exit_code == 0, r.output


def test_cli_hf_load_dataset_imagefolder_offline(tmp_path):
    root = tmp_path / "folder"
    for k in range(6):
        (root / "train" / "ab"[k % 2]).mkdir(parents=True, exist_ok=True)
        scene(k).save(root / "train" / "ab"[k % 2] / f"{k}.png")
    (root / "test" / "a").mkdir(parents=True)
    scene(0).resize((70, 70)).save(root / "test" / "a" / "copy.png")
    scene(20).save(root / "test" / "a" / "new.png")
    r = CliRunner().invoke(app, ["audit", "--hf", str(root), "--json", "-j", "1"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["n_images"] == 8 and d["n_cross_split_pairs"] == 1


def test_missing_image_column_is_a_clear_error():
    ds = datasets.Dataset.from_dict({"text": ["a", "b"]})
    with pytest.raises(InputError, match="no Image column"):
        leakscan.audit(ds, jobs=1)


def test_worker_processes_give_the_same_features():
    from leakscan.features import extract_features
    from leakscan.discovery import discover

    m = discover(_dd())
    one = extract_features(m, jobs=1)
    two = extract_features(m, jobs=2, chunk_size=4)
    assert np.array_equal(one.hashes, two.hashes) and np.array_equal(one.file_digest, two.file_digest)
    assert one.ok.all()


def _noisy_png(seed: int, side: int = 192) -> bytes:
    """A PNG of ~100 KB that compresses badly."""
    import io

    from PIL import Image

    rng = np.random.default_rng(seed)
    a = np.asarray(scene(seed, side), np.int16) + rng.integers(-40, 40, (side, side, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_image_bytes_stay_in_the_dataset(tmp_path):
    """A dataset loaded from disk (memory-mapped, concatenated, shuffled: an indices mapping) is read
    a chunk at a time: the run never holds its image bytes; rows keep their split/index names."""
    import tracemalloc

    from leakscan.discovery import discover
    from leakscan.features import extract_features

    imgs = [_noisy_png(k) for k in range(100)]
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"image": [{"bytes": b, "path": None} for b in imgs[:80]],
                                             "label": [k % 2 for k in range(80)]}, features=feats),
        "test": datasets.Dataset.from_dict({"image": [{"bytes": b, "path": None} for b in imgs[80:99] + [imgs[7]]],
                                            "label": [k % 2 for k in range(20)]}, features=feats)})
    dd.save_to_disk(str(tmp_path / "saved"))
    loaded = datasets.load_from_disk(str(tmp_path / "saved"))
    halves = [loaded["train"].select(range(40)), loaded["train"].select(range(40, 80))]   # two Arrow chunks
    loaded = datasets.DatasetDict({"train": datasets.concatenate_datasets(halves).shuffle(seed=1),
                                   "test": loaded["test"]})
    raw = loaded["train"].cast_column("image", datasets.Image(decode=False))
    at = next(i for i in range(80) if raw[i]["image"]["bytes"] == imgs[7])   # where train image 7 went
    total = sum(map(len, imgs))
    assert total > 9_000_000
    extract_features(discover(loaded), jobs=1)                 # (imports done before measuring)
    tracemalloc.start()
    f = extract_features(discover(loaded), jobs=1, chunk_size=64, chunk_bytes=300_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert f.ok.all() and peak < total / 4, (peak, total)
    a = leakscan.audit(loaded, jobs=2)
    m = a.manifest
    cross = a.cross_split()
    assert {(m.paths[i], m.paths[j]) for i, j in zip(a.pairs.i[cross], a.pairs.j[cross])} == {
        (f"train/{at}", "test/19")}


def test_cli_hf_never_writes_inside_the_saved_dataset_or_the_imagefolder(tmp_path):
    # the folder given to --hf is the dataset: --out, resplit's manifest and --materialize stay out of it
    _dd().save_to_disk(str(tmp_path / "saved"))
    root = tmp_path / "folder"
    for k in range(4):
        (root / "train" / "a").mkdir(parents=True, exist_ok=True)
        scene(k).save(root / "train" / "a" / f"{k}.png")
    (root / "test" / "a").mkdir(parents=True)
    scene(0).save(root / "test" / "a" / "copy.png")
    for hf in (tmp_path / "saved", root):
        before = sorted(p.relative_to(hf) for p in hf.rglob("*"))
        r = CliRunner().invoke(app, ["audit", "--hf", str(hf), "-q", "-j", "1", "--out", str(hf / "report")])
        assert r.exit_code == 2 and "inside the dataset folder" in r.output, r.output
        r = CliRunner().invoke(app, ["resplit", "--hf", str(hf), "-q", "-j", "1", "--out", str(hf / "new.csv")])
        assert r.exit_code == 2 and "is the dataset folder" in r.output, r.output
        r = CliRunner().invoke(app, ["resplit", "--hf", str(hf), "-q", "-j", "1", "--out", str(tmp_path / "new.csv"),
                                     "--materialize", str(hf / "tree"), "--force"])
        assert r.exit_code == 2 and "inside the dataset folder" in r.output, r.output
        assert sorted(p.relative_to(hf) for p in hf.rglob("*")) == before


def test_a_column_of_image_bytes_under_another_name_is_found_as_in_a_table():
    # a binary feature or {"bytes", "path"} structs not named image: "no Image column", where a
    # Parquet table of the same bytes finds its only column of bytes
    import io

    def png(img):
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()

    shots = [png(scene(k)) for k in range(4)] + [png(scene(2).resize((70, 70)))]
    for cells in (shots, [{"bytes": b, "path": f"{k}.png"} for k, b in enumerate(shots)]):
        ds = datasets.Dataset.from_dict({"pixels": cells, "caption": [f"c{k}" for k in range(5)]})
        a = leakscan.audit(ds, jobs=1, cache=False)
        assert len(a.manifest) == 5
        assert {(p["a"], p["b"]) for p in a.pair_records()} == {("all/2", "all/4")}
    two = datasets.Dataset.from_dict({"pixels": shots, "mask": shots})
    with pytest.raises(InputError, match=r"2 columns of bytes \(pixels, mask\); give image_column="):
        leakscan.audit(two, jobs=1)
    assert len(leakscan.audit(two, image_column="mask", jobs=1, cache=False).manifest) == 5
