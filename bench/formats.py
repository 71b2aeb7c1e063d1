"""One row per input kind: a small generated dataset with planted leaks, found / planted and time.

Kinds: a pandas DataFrame of paths, a Parquet table of image bytes, a Hugging Face
DatasetDict, a folder of DICOM files (patients on both sides), GeoTIFF tiles (overlapping
footprints and re-processed copies). Each dataset has ``--n`` distinct scenes (80% train) and
``--leaks`` planted leaks: test images that are resized, re-encoded copies of train images,
or, for DICOM, patients with other scans on both sides, and for GeoTIFF, test tiles shifted
half a tile onto a train tile (different pixels). Prints JSON; ``bench/run.py`` makes the table.

    python bench/formats.py --n 200 --leaks 10
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import leakscan  # noqa: E402


def scene(seed: int, size: int = 96) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), "RGB").resize((size, size), Image.BICUBIC)
    d = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = (int(v) for v in rng.integers(0, size - 10, 2))
        x1, y1 = x0 + int(rng.integers(4, size // 2)), y0 + int(rng.integers(4, size // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (d.rectangle if rng.random() < 0.5 else d.ellipse)([x0, y0, x1, y1], fill=colour)
    return img


def copy_of(img: Image.Image) -> Image.Image:
    """A planted leak: resized to 80% and re-encoded as JPEG q80."""
    small = img.resize((int(img.width * 0.8), int(img.height * 0.8)), Image.BICUBIC)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=80)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def plan(n: int, leaks: int, seed: int = 0):
    """(images, splits, planted (train row, test row) pairs): n distinct scenes plus `leaks` copies."""
    rng = np.random.default_rng(seed)
    n_train = int(n * 0.8)
    imgs = [scene(1000 + k) for k in range(n)]
    splits = ["train"] * n_train + ["test"] * (n - n_train)
    src = rng.choice(n_train, leaks, replace=False)
    planted = []
    for s in src.tolist():
        imgs.append(copy_of(imgs[s]))
        splits.append("test")
        planted.append((s, len(imgs) - 1))
    return imgs, splits, planted


def found_pairs(a, planted, ids) -> int:
    """Planted pairs (given as source ids) present among the audit's cross-split pairs."""
    m = a.manifest
    row_of = {p: r for r, p in enumerate(m.paths.tolist())}
    cross = a.cross_split()
    got = {frozenset((int(i), int(j))) for i, j in zip(a.pairs.i[cross], a.pairs.j[cross])}
    return sum(frozenset((row_of[ids(s)], row_of[ids(t)])) in got for s, t in planted)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_dataframe(tmp: Path, n: int, leaks: int, jobs: int):
    import pandas as pd  # noqa: PLC0415

    imgs, splits, planted = plan(n, leaks, 1)
    for k, img in enumerate(imgs):
        img.save(tmp / f"df_{k}.jpg", quality=90)
    df = pd.DataFrame({"file": [str(tmp / f"df_{k}.jpg") for k in range(len(imgs))], "fold": splits})
    a, t = timed(lambda: leakscan.audit(df, path_column="file", split_column="fold", jobs=jobs, cache=False))
    return {"kind": "pandas DataFrame of paths", "images": len(imgs), "planted": leaks,
            "found": found_pairs(a, planted, lambda k: str(tmp / f"df_{k}.jpg")), "seconds": t,
            "cross_split_pairs": int(a.cross_split().sum())}


def bench_parquet(tmp: Path, n: int, leaks: int, jobs: int):
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    imgs, splits, planted = plan(n, leaks, 2)
    (tmp / "pq").mkdir()
    pq.write_table(pa.table({"image": [{"bytes": png(i), "path": f"{k}.png"} for k, i in enumerate(imgs)],
                             "split": splits}), tmp / "pq" / "t.parquet")
    a, t = timed(lambda: leakscan.audit(manifest=tmp / "pq" / "t.parquet", jobs=jobs, cache=False))
    return {"kind": "Parquet table of image bytes", "images": len(imgs), "planted": leaks,
            "found": found_pairs(a, planted, lambda k: f"t.parquet[{k}]"), "seconds": t,
            "cross_split_pairs": int(a.cross_split().sum())}


def bench_hf(tmp: Path, n: int, leaks: int, jobs: int):
    import datasets  # noqa: PLC0415

    imgs, splits, planted = plan(n, leaks, 3)
    feats = datasets.Features({"image": datasets.Image()})
    idx = {s: [k for k, x in enumerate(splits) if x == s] for s in ("train", "test")}
    dd = datasets.DatasetDict({s: datasets.Dataset.from_dict({"image": [imgs[k] for k in rows]}, features=feats)
                               for s, rows in idx.items()})
    dd.save_to_disk(str(tmp / "hf"))
    dd = datasets.load_from_disk(str(tmp / "hf"))
    name = {k: f"{s}/{q}" for s, rows in idx.items() for q, k in enumerate(rows)}
    a, t = timed(lambda: leakscan.audit(dd, jobs=jobs, cache=False))
    return {"kind": "Hugging Face DatasetDict (save_to_disk)", "images": len(imgs), "planted": leaks,
            "found": found_pairs(a, planted, name.get), "seconds": t,
            "cross_split_pairs": int(a.cross_split().sum())}


def bench_dicom(tmp: Path, n: int, leaks: int, jobs: int):
    """n/2 patients with 2 scans each; `leaks` patients have one scan in train and one in test."""
    from pydicom.dataset import Dataset, FileMetaDataset  # noqa: PLC0415
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid  # noqa: PLC0415

    def write(path, arr, patient):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.PatientID, ds.PatientName = patient, "Anon^Bench"
        ds.Rows, ds.Columns = arr.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = arr.astype(np.uint16).tobytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)

    n_pat = n // 2
    n_train = int(n_pat * 0.8)
    root = tmp / "dicom"
    leaky = set(range(leaks))  # these train patients also have their second scan in test
    for p in range(n_pat):
        for s in range(2):
            split = "test" if p >= n_train or (s == 1 and p in leaky) else "train"
            arr = np.asarray(scene(5000 + 2 * p + s).convert("L"), np.uint16) * 16
            write(root / split / f"p{p:03d}_{s}.dcm", arr, f"PAT{p:04d}")
    a, t = timed(lambda: leakscan.audit(root, jobs=jobs, cache=False))
    d = a.to_dict()
    lk = {(x["split"], x["against"]): x for x in d["leaks"]}[("test", "train")]
    return {"kind": "DICOM folder, grouped by PatientID", "images": 2 * n_pat, "planted": leaks,
            "found": lk["groups"], "seconds": t, "unit": "patients on both sides",
            "cross_split_pairs": int(a.cross_split().sum())}


def bench_geotiff(tmp: Path, n: int, leaks: int, jobs: int):
    """A grid of n 16-bit 5-band tiles (80% train); `leaks` test tiles shifted half a tile onto train ones."""
    import tifffile  # noqa: PLC0415

    size, px = 64, 10.0
    root = tmp / "geo"

    def write(path, seed, x, y):
        rgb = np.asarray(scene(seed, size), np.float64)
        b = np.stack([rgb[..., 0], rgb[..., 1], rgb[..., 2], rgb.mean(2), 255 - rgb[..., 0]], -1) * 257
        keys = (1, 1, 0, 1, 3072, 0, 1, 32633)
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, b.astype(np.uint16), photometric="minisblack", planarconfig="contig", extratags=[
            (33550, "d", 3, (px, px, 0.0), False), (33922, "d", 6, (0, 0, 0, float(x), float(y), 0), False),
            (34735, "H", len(keys), keys, False)])

    n_train = int(n * 0.8)
    cols = 20
    for k in range(n):
        split = "train" if k < n_train else "test"
        r, c = divmod(k, cols)
        x, y = c * size * px, -r * size * px
        if split == "test":
            if k - n_train < leaks:
                j = k - n_train  # shift onto train tile j by half a tile
                r, c = divmod(j, cols)
                x, y = (c + 0.5) * size * px, -r * size * px
            else:
                x += 1e6
        write(root / split / f"t{k:04d}.tif", 9000 + k, x, y)
    a, t = timed(lambda: leakscan.audit(root, jobs=jobs, cache=False))
    d = a.to_dict()
    sl = {(x["split"], x["against"]): x for x in d["spatial_leaks"]}[("test", "train")]
    return {"kind": "GeoTIFF tiles, 16-bit 5-band, georeferenced", "images": n, "planted": leaks,
            "found": sl["tiles"], "seconds": t, "unit": "test tiles overlapping train (spatial)",
            "cross_split_pairs": int(a.cross_split().sum())}


KINDS = {"dataframe": bench_dataframe, "parquet": bench_parquet, "hf": bench_hf, "dicom": bench_dicom,
         "geotiff": bench_geotiff}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="distinct images (or tiles) per kind")
    ap.add_argument("--leaks", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--kinds", default=",".join(KINDS))
    a = ap.parse_args()
    rows = []
    for kind in a.kinds.split(","):
        with tempfile.TemporaryDirectory(prefix=f"leakscan-bench-{kind}-") as tmp:
            try:
                row = KINDS[kind](Path(tmp), a.n, a.leaks, a.jobs)
            except ImportError as exc:
                row = {"kind": kind, "skipped": str(exc)}
        if "seconds" in row:
            row["seconds"] = round(row["seconds"], 2)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
