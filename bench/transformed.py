"""Transformed-photo benchmark (in the style of imagededup's UKBench protocol).

For every photo in a folder (default: the photos shipped with scikit-learn and, if installed,
scikit-image, cut into non-overlapping 256x256 tiles so each tile is a distinct picture), it
writes the original and five edits, all JPEG quality 85:

    crop (70-80% of the area), hflip, vflip, rot25 (25 degrees, expanded canvas), square
    (resized to a square of another size)

The originals of one source are distractors for each other. Ground truth is complete: a pair
is a true duplicate iff both images come from the same original. It then runs leakscan (and a
plain imagehash pHash loop at Hamming <= 8 for reference) and prints precision overall and
recall per transform.

    python bench/transformed.py [--source FOLDER] [--work DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
EDITS = ("crop", "hflip", "vflip", "rot25", "square")


def source_photos(folder: Path | None) -> list[Image.Image]:
    exts = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
    if folder is not None:
        return [Image.open(p).convert("RGB") for p in sorted(folder.rglob("*")) if p.suffix.lower() in exts]
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]
    try:
        import skimage
        data = Path(skimage.__file__).parent / "data"
        keep = ("coffee", "camera", "astronaut", "clock_motion", "gravel", "brick", "motorcycle_left",
                "hubble_deep_field", "moon", "grass", "retina", "ihc", "cell", "rocket", "chelsea", "coins")
        photos += [Image.open(p).convert("RGB") for p in sorted(data.iterdir()) if p.stem in keep]
    except ImportError:
        pass
    return photos


def tiles(img: Image.Image, size: int = 256) -> list[Image.Image]:
    w, h = img.size
    if min(w, h) < size:
        return [img]
    return [img.crop((x, y, x + size, y + size)) for y in range(0, h - size + 1, size)
            for x in range(0, w - size + 1, size)]


def edit(img: Image.Image, kind: str, rng) -> Image.Image:
    w, h = img.size
    if kind == "crop":
        f = np.sqrt(rng.uniform(0.70, 0.80))
        cw, ch = int(w * f), int(h * f)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return img.crop((x, y, x + cw, y + ch))
    if kind == "hflip":
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if kind == "vflip":
        return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if kind == "rot25":
        return img.rotate(25, resample=Image.BICUBIC, expand=True)
    side = int(rng.integers(150, 400))
    return img.resize((side, side), Image.LANCZOS)


def build(work: Path, source: Path | None) -> list[dict]:
    rng = np.random.default_rng(0)
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    rows = []
    k = 0
    for photo in source_photos(source):
        for t in tiles(photo):
            if np.asarray(t.convert("L")).std() < 8:  # skip near-flat tiles (sky, black space)
                continue
            name = f"o{k:04d}"
            t.save(data / f"{name}.jpg", quality=85)
            rows.append({"path": f"{name}.jpg", "orig": name, "edit": "original"})
            for e in EDITS:
                edit(t, e, rng).save(data / f"{name}_{e}.jpg", quality=85)
                rows.append({"path": f"{name}_{e}.jpg", "orig": name, "edit": e})
            k += 1
    return rows


def score(rows: list[dict], pairs: set[tuple[str, str]]) -> dict:
    orig = {r["path"]: r["orig"] for r in rows}
    tp = sum(1 for a, b in pairs if orig[a] == orig[b])
    res = {"pairs": len(pairs), "precision": round(tp / len(pairs), 4) if pairs else None}
    found = {frozenset(p) for p in pairs}
    originals = [r for r in rows if r["edit"] == "original"]
    for e in EDITS:
        hit = sum(frozenset((o["path"], o["path"].replace(".jpg", f"_{e}.jpg"))) in found for o in originals)
        res[f"recall_{e}"] = round(hit / len(originals), 4)
    # a group view: edits linked to their original through any chain
    return res


def leakscan_pairs(data: Path, out: Path, extra: list[str]) -> set:
    subprocess.run([sys.executable, "-m", "leakscan", "audit", str(data), "--out", str(out), "--force", "--quiet",
                    "--no-html", "--no-cache"] + extra, check=True)
    return {(r["a"], r["b"]) for r in csv.DictReader(open(out / "pairs.csv"))}


def phash_pairs(data: Path, rows: list[dict], radius: int = 8) -> set:
    import faiss
    import imagehash

    H = np.stack([np.packbits(imagehash.phash(Image.open(data / r["path"])).hash.flatten()) for r in rows])
    index = faiss.IndexBinaryFlat(64)
    index.add(H)
    lims, _, ids = index.range_search(H, radius + 1)
    return {(rows[q]["path"], rows[j]["path"]) for q in range(len(rows)) for j in ids[lims[q]:lims[q + 1]] if j > q}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=HERE.parent / ".bench" / "transformed")
    a = ap.parse_args()
    rows = build(a.work, a.source)
    data = a.work / "data"
    n_orig = sum(r["edit"] == "original" for r in rows)
    out = {"originals": n_orig, "images": len(rows)}
    out["leakscan (defaults)"] = score(rows, leakscan_pairs(data, a.work / "out1", []))
    out["leakscan --min-ncc -1 (no verification)"] = score(rows, leakscan_pairs(data, a.work / "out2",
                                                                               ["--min-ncc", "-1"]))
    out["leakscan --no-crops"] = score(rows, leakscan_pairs(data, a.work / "out3", ["--no-crops"]))
    out["leakscan --transforms flip"] = score(rows, leakscan_pairs(data, a.work / "out4", ["--transforms", "flip"]))
    out["imagehash pHash, Hamming <= 8"] = score(rows, phash_pairs(data, rows))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
