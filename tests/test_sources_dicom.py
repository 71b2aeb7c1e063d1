"""DICOM: synthetic files written with pydicom (grouped by patient, windowed, MONOCHROME1, multi-frame)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import leakscan
from leakscan.cli import app
from conftest import scene

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid  # noqa: E402

from leakscan.sources.dicom import decode_frame  # noqa: E402

NAME, BIRTH = "Doe^Jane", "19700101"


def pixels(seed: int, size: int = 64) -> np.ndarray:
    """12-bit grey pixels of a structured scene."""
    return np.asarray(scene(seed, size).convert("L"), np.uint16) * 16


def write_dcm(path, arr, patient="P1", study="1.2.3", series="1.2.3.4", photometric="MONOCHROME2",
              window=None, preamble=True, palette=None):
    """A DICOM file of 12-bit grey ``arr`` (frames when 3-d); of 8-bit ``(rows, columns, 3)`` pixels
    when ``photometric`` is RGB; of 8-bit indices into ``palette`` (256 RGB entries of 16 bits)
    when it is PALETTE COLOR."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.PatientName, ds.PatientBirthDate = patient, NAME, BIRTH
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality = "OT"
    ds.PhotometricInterpretation = photometric
    if photometric == "RGB":
        arr = np.asarray(arr, np.uint8)
        ds.Rows, ds.Columns = arr.shape[:2]
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    elif photometric == "PALETTE COLOR":
        arr = np.asarray(arr, np.uint8)
        ds.Rows, ds.Columns = arr.shape
        ds.SamplesPerPixel = 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        lut = np.asarray(palette, np.uint16)
        for k, c in enumerate(("Red", "Green", "Blue")):
            setattr(ds, f"{c}PaletteColorLookupTableDescriptor", [256, 0, 16])
            setattr(ds, f"{c}PaletteColorLookupTableData", lut[:, k].tobytes())
    else:
        arr = np.asarray(arr, np.uint16)
        if arr.ndim == 3:
            ds.NumberOfFrames = arr.shape[0]
        ds.Rows, ds.Columns = arr.shape[-2:]
        ds.SamplesPerPixel = 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ds.save_as(path, enforce_file_format=preamble)
    except TypeError:  # pydicom 2.x
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=not preamble)
    return path


@pytest.fixture
def scans(tmp_path):
    """train: patients P1-P4; test: P1 again (another image: patient leakage), P5, P6 and a copy of P2's scan."""
    root = tmp_path / "scans"
    for k in range(1, 5):
        write_dcm(root / "train" / f"p{k}.dcm", pixels(k), patient=f"P{k}", study=f"1.{k}")
    write_dcm(root / "test" / "p1_followup.dcm", pixels(11), patient="P1", study="1.99")
    write_dcm(root / "test" / "p5", pixels(5), patient="P5", study="1.5")          # extension-less
    write_dcm(root / "test" / "p6.dcm", pixels(6), patient="P6", study="1.6")
    write_dcm(root / "test" / "p7.dcm", pixels(2), patient="P7", study="1.7")       # same pixels as P2
    return root


def test_patients_group_and_are_counted(scans):
    a = leakscan.audit(scans, jobs=1)
    m = a.manifest
    assert "test/p5" in set(m.paths)
    assert dict(zip(m.paths, m.groups))["test/p1_followup.dcm"] == "P1"
    d = a.to_dict()
    assert d["group_by"] == "PatientID"
    lk = {(x["split"], x["against"]): x for x in d["leaks"]}
    t = lk[("test", "train")]
    assert t["images"] == 2 and t["total"] == 4            # P1's follow-up and P7's copy of P2
    assert t["groups"] == 2 and t["groups_total"] == 4     # patients P1 and P7 of P1, P5, P6, P7


def test_group_by_none_and_study(scans):
    d = leakscan.audit(scans, group_by="none", jobs=1).to_dict()
    lk = {(x["split"], x["against"]): x for x in d["leaks"]}
    assert lk[("test", "train")]["images"] == 1            # only the pixel copy
    d = leakscan.audit(scans, group_by="StudyInstanceUID", jobs=1).to_dict()
    assert d["group_by"] == "StudyInstanceUID"
    lk = {(x["split"], x["against"]): x for x in d["leaks"]}
    assert lk[("test", "train")]["images"] == 1


def test_monochrome1_is_inverted_and_window_applied(tmp_path):
    arr = pixels(3)
    a, _ = decode_frame(str(write_dcm(tmp_path / "m2.dcm", arr)))
    b, _ = decode_frame(str(write_dcm(tmp_path / "m1.dcm", arr, photometric="MONOCHROME1")))
    ga, gb = np.asarray(a)[..., 0].astype(int), np.asarray(b)[..., 0].astype(int)
    assert np.abs(ga + gb - 255).max() <= 1
    assert ga.min() == 0 and ga.max() == 255                  # full range without a window
    w, _ = decode_frame(str(write_dcm(tmp_path / "w.dcm", arr, window=(2048, 1024))))
    g = np.asarray(w)[..., 0]
    assert np.all(g[arr <= 1536] == 0) and np.all(g[arr >= 2560] == 255)


def test_palette_colour_is_decoded_to_the_colours_of_its_lut(tmp_path):
    """A PALETTE COLOR file shows its palette's colours: it decodes as the same picture stored as RGB,
    and as a copy whose indices and palette are permuted alike."""
    rgb = np.asarray(scene(4, 64).quantize(64).convert("RGB"))
    colours, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    index = index.reshape(rgb.shape[:2])
    lut = np.zeros((256, 3), np.uint16)
    lut[:len(colours)] = colours.astype(np.uint16) * 257            # 16-bit entries: 255 is 65535
    shuffle = np.random.default_rng(0).permutation(256)             # index k of the copy is shuffle[k]
    lut2 = np.empty_like(lut)
    lut2[shuffle] = lut
    want, _ = decode_frame(str(write_dcm(tmp_path / "rgb.dcm", rgb, photometric="RGB")))
    assert np.array_equal(np.asarray(want), rgb)
    for name, idx, pal in (("p.dcm", index, lut), ("p2.dcm", shuffle[index], lut2)):
        got, _ = decode_frame(str(write_dcm(tmp_path / name, idx, photometric="PALETTE COLOR", palette=pal)))
        assert np.array_equal(np.asarray(got), rgb), name


def test_files_cached_by_an_earlier_decoding_are_decoded_again(tmp_path, monkeypatch):
    """Features cached when palette files were read as grey (decoding 1) are not reused."""
    import leakscan.sources.rows as rows

    root = tmp_path / "scans"
    for k in range(3):
        write_dcm(root / ("train" if k else "test") / f"p{k}.dcm", pixels(k), patient=f"P{k}")
    cache = tmp_path / "c.sqlite"
    monkeypatch.setattr(rows, "DICOM_DECODING", 1)
    assert leakscan.audit(root, jobs=1, cache=cache).features.n_cached == 0
    assert leakscan.audit(root, jobs=1, cache=cache).features.n_cached == 3
    monkeypatch.setattr(rows, "DICOM_DECODING", 2)
    assert leakscan.audit(root, jobs=1, cache=cache).features.n_cached == 0


def test_multiframe_rows_share_the_group(tmp_path):
    root = tmp_path / "mf"
    frames = np.stack([pixels(k) for k in (1, 2, 3)])
    write_dcm(root / "train" / "cine.dcm", frames, patient="P9")
    write_dcm(root / "test" / "single.dcm", pixels(2), patient="P8")
    a = leakscan.audit(root, jobs=1)
    m = a.manifest
    rows = [k for k, p in enumerate(m.paths) if p.startswith("train/")]
    assert [m.paths[k] for k in rows] == ["train/cine.dcm#frame1", "train/cine.dcm#frame2", "train/cine.dcm#frame3"]
    assert {m.groups[k] for k in rows} == {"P9"} and a.n_images == 4
    cross = a.cross_split()
    assert {frozenset((m.paths[i], m.paths[j])) for i, j in zip(a.pairs.i[cross], a.pairs.j[cross])} == {
        frozenset(("train/cine.dcm#frame2", "test/single.dcm"))}


def test_cli_never_prints_other_tag_values(scans, tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["audit", str(scans), "--group-by", "PatientID", "-j", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "patients: 2 of 4 test patients also have images in train" in r.output
    texts = [r.output] + [p.read_text(errors="replace") for p in out.iterdir()]
    for t in texts:
        assert NAME not in t and "Doe" not in t and BIRTH not in t
    summary = json.loads((out / "summary.json").read_text())
    assert summary["group_by"] == "PatientID"
    r = CliRunner().invoke(app, ["audit", str(scans), "--group-by", "Name", "-j", "1"])
    assert r.exit_code == 2 and "--group-by must be one of" in r.output


def test_a_broken_dicom_file_is_skipped(scans):
    (scans / "test" / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    a = leakscan.audit(scans, jobs=1)
    assert any(p == "test/broken.dcm" for p, _ in a.skipped)
    assert a.n_images == 8


def test_worker_processes_give_the_same_features(scans):
    from leakscan.features import extract_features
    from leakscan.discovery import discover

    m = discover(scans)
    one = extract_features(m, jobs=1)
    two = extract_features(m, jobs=2, chunk_size=3)
    assert np.array_equal(one.hashes, two.hashes) and np.array_equal(one.file_digest, two.file_digest)


@pytest.fixture
def cine_scans(tmp_path):
    """train: six patients and a 3-frame cine file (P9); test: four patients, one of whose scans
    (P10) has the pixels of the cine's second frame: a cross-split leak through a frame."""
    root = tmp_path / "scans"
    for k in range(1, 7):
        write_dcm(root / "train" / f"p{k}.dcm", pixels(k), patient=f"P{k}", study=f"1.{k}")
    write_dcm(root / "train" / "cine.dcm", np.stack([pixels(k) for k in (20, 21, 22)]), patient="P9")
    for k in range(7, 10):
        write_dcm(root / "test" / f"p{k}.dcm", pixels(k), patient=f"P{k}", study=f"1.{k}")
    write_dcm(root / "test" / "leak.dcm", pixels(21), patient="P10")
    return root


def _digests(a) -> dict:
    """Pixel digest of each readable row, by the absolute file and frame it names."""
    m, f = a.manifest, a.features
    return {os.path.normpath(os.path.abspath(m.resolve(r))): f.pixel_digest[r].tobytes()
            for r in range(len(m)) if f.ok[r]}


def test_resplit_manifest_with_frame_rows_is_re_audited(cine_scans, tmp_path):
    before = leakscan.audit(cine_scans, jobs=1)
    assert before.to_dict()["n_cross_split_pairs"] == 1          # cine frame 2 <-> test/leak.dcm
    out = tmp_path / "new" / "new.csv"
    r = CliRunner().invoke(app, ["resplit", str(cine_scans), "--out", str(out), "-j", "1", "--json", "-q"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["cross_split_pairs_after"] == 0
    assert d["multiframe_files"] == 1 and d["frame_links_cross_after"] == 0
    rows = list(csv.DictReader(open(out, newline="")))
    frames = [x for x in rows if "cine.dcm#frame" in x["path"]]
    assert [x["path"] for x in frames] == [f"../scans/train/cine.dcm#frame{k}" for k in (1, 2, 3)]
    leak_split = next(x["split"] for x in rows if x["path"].endswith("leak.dcm"))
    assert {x["split"] for x in frames} == {leak_split}            # the leak went with its frame
    # the written manifest reads back: the same images, the frames as frames, no leak left
    again = leakscan.audit(manifest=out, jobs=1)
    m = again.manifest
    assert [p for p in m.paths if "#frame" in p] == [x["path"] for x in frames]
    assert all(it[0] == "dicom" for it in m.source.items.tolist())
    assert again.n_images == before.n_images == 13 and not again.skipped
    assert _digests(again) == _digests(before)
    d2 = again.to_dict()
    assert d2["n_cross_split_pairs"] == 0 and all(lk["images"] == 0 for lk in d2["leaks"])
    assert d2["group_by"] == "PatientID" and all(lk["groups"] == 0 for lk in d2["leaks"])
    r = CliRunner().invoke(app, ["audit", "--manifest", str(out), "-j", "1", "--json", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_cross_split_pairs"] == 0



def test_resplit_materializes_single_frame_dicom_files_and_refuses_frames(scans, tmp_path):
    # every DICOM row was refused as a frame ("materialize needs one image file per row"), though
    # a folder of single-frame files, the usual layout, is one file per row
    import filecmp

    out, tree = tmp_path / "new.csv", tmp_path / "tree"
    r = CliRunner().invoke(app, ["resplit", str(scans), "--out", str(out), "--materialize", str(tree), "--link", "copy",
                                 "-j", "1", "--json", "-q"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out, newline="")))
    placed = {p.relative_to(tree): p for p in tree.rglob("*") if p.is_file()}
    assert json.loads(r.stdout)["materialized"]["files"] == len(placed) == len(rows) == 8
    for x in rows:  # each file in the folder of its new split, byte for byte
        src = tmp_path / x["path"]
        assert filecmp.cmp(placed[Path(x["split"], x["label"] or "_unlabelled", src.name)], src, shallow=False)
    write_dcm(scans / "train" / "cine.dcm", np.stack([pixels(k) for k in (20, 21, 22)]), patient="P9")
    r = CliRunner().invoke(app, ["resplit", str(scans), "--out", str(tmp_path / "cine.csv"), "--materialize",
                                 str(tmp_path / "cine-tree"), "-j", "1", "-q"])
    assert r.exit_code == 2 and "frames of multi-frame DICOM files" in r.output, r.output

def test_frames_of_one_file_never_straddle_a_resplit(cine_scans):
    from leakscan.split import assign_splits

    a = leakscan.audit(cine_scans, group_by="none", jobs=1)         # no tag holds the frames together
    m = a.manifest
    cine = np.array(["cine.dcm#frame" in p for p in m.paths])
    apart = 0
    for seed in range(6):
        rs = leakscan.resplit(a, ratios="train=0.5,test=0.5", shuffle=True, random_state=seed)
        assert len(set(rs.splits[cine].tolist())) == 1, seed
        assert rs.to_dict()["frame_links_cross_after"] == 0
        plain = assign_splits(a.groups.ids, m.labels, ratios={"train": 0.5, "test": 0.5}, shuffle=True,
                              random_state=seed)                     # duplicate groups only
        apart += len(set(plain.splits[cine].tolist())) > 1
    assert apart                                                     # without the frame links they would part


def test_csv_manifest_of_dicom_files_and_frames(cine_scans, tmp_path):
    (tmp_path / "m").mkdir()
    man = tmp_path / "m" / "rows.csv"
    man.write_text("path,split,group\n"
                   "../scans/train/cine.dcm,train,\n"                  # a whole file: one row per frame
                   "../scans/test/leak.dcm,test,visit-7\n"             # the row's group wins over PatientID
                   "../scans/test/p7.dcm#frame2,test,\n"               # no frame 2 in a single-frame file
                   "../scans/test/p8.dcm#frame0,test,\n")
    a = leakscan.audit(manifest=man, jobs=1)
    m = a.manifest
    assert list(m.paths) == [f"../scans/train/cine.dcm#frame{k}" for k in (1, 2, 3)] + [
        "../scans/test/leak.dcm", "../scans/test/p7.dcm#frame2"]
    assert list(m.groups) == ["P9", "P9", "P9", "visit-7", "P7"]
    why = dict(a.skipped)
    assert why["../scans/test/p7.dcm#frame2"] == "frame 2 asked of a file with 1 frame"
    assert "frame numbers start at 1" in why["../scans/test/p8.dcm#frame0"]
    assert a.n_images == 4 and a.to_dict()["n_cross_split_pairs"] == 1
    assert list(leakscan.audit(manifest=man, group_by="none", jobs=1).manifest.groups) == ["", "", "", "visit-7", ""]


def test_dicom_files_named_by_uid_or_ima_are_found(tmp_path):
    """PACS exports name files by their SOP instance UID (a numeric 'extension'), Siemens by .IMA."""
    root = tmp_path / "scans"
    write_dcm(root / "train" / "1.2.840.113619.2.55.3.604688119.969.1268071029.320", pixels(1), patient="P1")
    write_dcm(root / "train" / "IM0002.IMA", pixels(2), patient="P2")
    (root / "train" / "notes.txt").write_text("not an image")
    write_dcm(root / "test" / "copy.dcm", pixels(1), patient="P3")
    a = leakscan.audit(root, jobs=1)
    assert sorted(a.manifest.paths) == ["test/copy.dcm", "train/1.2.840.113619.2.55.3.604688119.969.1268071029.320",
                                        "train/IM0002.IMA"]
    assert a.to_dict()["n_cross_split_pairs"] == 1 and not a.skipped
    man = tmp_path / "rows.csv"
    man.write_text("path,split\nscans/train/1.2.840.113619.2.55.3.604688119.969.1268071029.320,train\n"
                   "scans/test/copy.dcm,test\n")
    b = leakscan.audit(manifest=man, jobs=1)
    assert list(b.manifest.groups) == ["P1", "P3"] and not b.skipped


def test_ima_and_dcm_files_without_the_preamble_are_read(tmp_path):
    """Siemens .IMA files (and some .dcm) lack the 128-byte preamble and DICM marker: their name
    says DICOM and pydicom reads them. A file without an extension still needs the marker."""
    root = tmp_path / "scans"
    write_dcm(root / "train" / "IM0001.IMA", pixels(1), patient="P1", preamble=False)
    write_dcm(root / "train" / "b.dcm", pixels(2), patient="P2", preamble=False)
    write_dcm(root / "test" / "IM0003.ima", pixels(1), patient="P3", preamble=False)
    write_dcm(root / "test" / "IM0004", pixels(3), patient="P4", preamble=False)
    assert (root / "train" / "IM0001.IMA").read_bytes()[128:132] != b"DICM"
    a = leakscan.audit(root, jobs=1)
    assert sorted(a.manifest.paths) == ["test/IM0003.ima", "train/IM0001.IMA", "train/b.dcm"]
    assert a.to_dict()["n_cross_split_pairs"] == 1 and not a.skipped
    man = tmp_path / "rows.csv"
    man.write_text("path,split\nscans/train/IM0001.IMA,train\nscans/test/IM0003.ima,test\n")
    b = leakscan.audit(manifest=man, jobs=1)
    assert list(b.manifest.groups) == ["P1", "P3"] and b.to_dict()["n_cross_split_pairs"] == 1


def test_undecodable_compressed_pixel_data_gives_one_line_and_no_traceback(tmp_path, caplog):
    """A compressed syntax without its plugin (JPEG-LS), or one whose plugin fails (a broken JPEG):
    one line in skipped.csv naming the syntax and every plugin that would do; no pydicom traceback."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, JPEGLSLossless

    root = tmp_path / "scans"
    write_dcm(root / "train" / "a.dcm", pixels(1), patient="P1")
    for name, ts in (("jls.dcm", JPEGLSLossless), ("jpg.dcm", JPEGBaseline8Bit)):
        p = write_dcm(root / "test" / name, pixels(2), patient="P2")
        ds = pydicom.dcmread(p)
        ds.file_meta.TransferSyntaxUID = ts
        ds.PixelData = encapsulate([b"\xff\xd8" + b"\0" * 100])
        ds["PixelData"].VR = "OB"
        ds.save_as(p)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["audit", str(root), "-j", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output and "ERROR" not in r.output
    assert not [x for x in caplog.records if x.name.startswith("pydicom")]
    why = {x["path"]: x["reason"] for x in csv.DictReader(open(out / "skipped.csv", newline=""))}
    assert all("\n" not in v and "\t" not in v for v in why.values())
    assert "(JPEG-LS Lossless Image Compression, transfer syntax 1.2.840.10008.1.2.4.80)" in why["test/jls.dcm"]
    assert why["test/jls.dcm"].endswith("pyjpegls>=1.2")                   # every plugin named, none cut
    assert "JPEG Baseline" in why["test/jpg.dcm"]


def test_a_file_named_dcm_or_ima_that_is_not_dicom_is_said_to_be_so(tmp_path):
    """A PNG named .dcm or a text file named .ima was skipped as 'DICOM file has no pixel data (a
    report or a structured document?)'; a DICOM file without pixels keeps that reason."""
    root = tmp_path / "scans"
    write_dcm(root / "train" / "a.dcm", pixels(1), patient="P1")
    write_dcm(root / "test" / "b.dcm", pixels(2), patient="P2")
    scene(3).save(root / "test" / "photo.dcm", "PNG")
    (root / "test" / "notes.ima").write_text("exported notes, not an image\n" * 5)
    (root / "test" / "zeros.dcm").write_bytes(b"\0" * 300)
    for name, preamble in (("report.dcm", True), ("report.ima", False)):  # a DICOM file without pixels
        p = write_dcm(root / "test" / name, pixels(4), patient="P4", preamble=preamble)
        ds = pydicom.dcmread(p, force=True)
        del ds.PixelData
        ds.save_as(p)
        assert (p.read_bytes()[128:132] == b"DICM") == preamble
    why = dict(leakscan.audit(root, jobs=1, cache=False).skipped)
    for name in ("photo.dcm", "notes.ima", "zeros.dcm"):
        assert why[f"test/{name}"] == "not a DICOM file (no DICM preamble and no readable header)"
    for name in ("report.dcm", "report.ima"):
        assert why[f"test/{name}"] == "DICOM file has no pixel data (a report or a structured document?)"
    assert len(why) == 5
