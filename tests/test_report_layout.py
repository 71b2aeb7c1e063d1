"""The report is laid out for acting: verdict first, thumbnails once per file, relative links, flags."""

import json
import re
import shutil

from leakscan import audit
from leakscan.htmlreport import report_data
from leakscan.report import write_outputs
from conftest import scene, write_dataset


def _dataset(tmp_path):
    layout = {f"train/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(6)}
    layout.update({f"test/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(6, 10)})
    root = write_dataset(tmp_path / "data", layout, quality=90)
    for n in range(5):  # five byte-identical copies of a training image, labelled b: a conflict lists them all
        shutil.copy(root / "train/a/0.jpg", root / f"test/b/copy{n}.jpg")
    return root


def test_copies_share_one_thumbnail_links_are_relative_settings_are_flags(tmp_path):
    root = _dataset(tmp_path)
    r = audit(root, jobs=1)
    out = tmp_path / "out"
    write_outputs(r, out)
    html = (out / "report.html").read_text()
    data = json.loads(re.search(r'id="data">(.*?)</script>', html, re.S).group(1))
    copies = [im for im in data["images"] if im["p"].startswith("test/b/copy") or im["p"] == "train/a/0.jpg"]
    assert len(copies) == 6 and len({im["t"] for im in copies}) == 1  # embedded once
    assert len(data["thumbs"]) == len({im["h"] for im in data["images"]})
    assert html.count("data:image/") == len(data["thumbs"])
    assert all(im["u"].startswith("../data/") for im in data["images"])
    flags = dict(map(tuple, data["meta"]["flags"]))
    assert flags["--max-hamming"] == 6 and flags["--min-ncc"] == 0.4 and flags["--crops"] == "on"
    assert data["meta"]["verdict"].startswith("55.6% of test has a copy in train")
    assert html.index('id="verdict"') < html.index('id="pairs-sec"') < html.index('id="groups-sec"')
    # without a folder (render_html from Python) the links stay absolute file URIs
    assert report_data(r)["images"][0]["u"].startswith("file://")


def test_possible_tier_section_only_when_the_audit_has_one(tmp_path):
    import dataclasses

    root = _dataset(tmp_path)
    r = audit(root, jobs=1)
    assert len(r.possible) == 0 and report_data(r)["possible"] == []

    rp = dataclasses.replace(r, possible=r.pairs)  # the audit's possible tier (Audit.possible)
    d = report_data(rp)
    assert len(d["possible"]) == len(r.pairs) and {"a", "b", "k", "sc", "d"} <= set(d["possible"][0])


def test_a_file_skipped_is_in_no_duplicate_group_even_by_its_known_group(tmp_path):
    """A manifest puts a missing file and a corrupt one in patient p1, whose images are copies:
    groups.csv lists the two audited images (size 2), as summary.json and the page count them,
    and the two files skipped only in skipped.csv."""
    import csv

    root = write_dataset(tmp_path / "data", {f"{k}.jpg": scene(k) for k in range(4)}, quality=90)
    shutil.copy(root / "0.jpg", root / "copy.jpg")
    (root / "corrupt.jpg").write_bytes((root / "1.jpg").read_bytes()[:200])
    (root / "m.csv").write_text("path,split,label,group\n0.jpg,train,a,p1\ncopy.jpg,train,a,\n"
                                "corrupt.jpg,val,b,p1\nmissing.jpg,test,b,p1\n1.jpg,train,a,\n2.jpg,val,b,\n"
                                "3.jpg,test,b,\n")
    r = audit(manifest=root / "m.csv", jobs=1, cache=False)
    write_outputs(r, tmp_path / "out")
    with open(tmp_path / "out" / "groups.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(row["path"] for row in rows) == ["0.jpg", "copy.jpg"] and {row["size"] for row in rows} == {"2"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_images_in_duplicate_groups"] == 2 and summary["n_skipped"] == 2
    assert all(lk["images"] == 0 for lk in summary["leaks"])
    html = (tmp_path / "out" / "report.html").read_text()
    data = json.loads(re.search(r'id="data">(.*?)</script>', html, re.S).group(1))
    assert [[data["images"][i]["p"] for i in g["m"]] for g in data["groups"]] == [["0.jpg", "copy.jpg"]]


def test_pairs_parquet_has_one_type_per_column_whatever_the_rows(tmp_path):
    """No pairs, or exact copies without labels (every ncc, label and decision empty): each
    column keeps the type pairs.csv's values have, so the files of several runs read together."""
    pa = __import__("pytest").importorskip("pyarrow")
    import pyarrow.parquet as pq

    tables = []
    for name, copies in (("none", 0), ("exact", 2)):
        root = write_dataset(tmp_path / name, {f"{s}/{k}.jpg": scene(k + 3 * (s == "test"))
                                               for s in ("train", "test") for k in range(3)}, quality=90)
        for k in range(copies):
            shutil.copy(root / f"train/{k}.jpg", root / f"test/copy{k}.jpg")
        write_outputs(audit(root, jobs=1, cache=False), tmp_path / f"out-{name}", parquet=True, html=False)
        tables.append(pq.read_table(tmp_path / f"out-{name}" / "pairs.parquet"))
    assert [t.num_rows for t in tables] == [0, 2]
    assert tables[0].schema == tables[1].schema
    types = dict(zip(tables[1].schema.names, map(str, tables[1].schema.types)))
    assert types == {"a": "string", "b": "string", "split_a": "string", "split_b": "string", "label_a": "string",
                     "label_b": "string", "kind": "string", "score": "double", "hamming": "int64", "cosine": "double",
                     "detail": "string", "group": "int64", "ncc": "double", "decision": "string",
                     "confidence": "double"}
    assert pa.concat_tables(tables).num_rows == 2
