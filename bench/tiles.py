"""Photo-tile benchmark: tiles of public sample photos split into train/test, plus planted copies.

Photo-like data is where look-alikes abound: tiles of one sky, one brick wall, one forest.
Each source photo (the photos shipped with scikit-image and scikit-learn, or every image in
``--source FOLDER``) is cut into non-overlapping square tiles; each tile is an image whose
class is its photo. Tiles go to train or test at random (seeded). Then some test images are
*planted*: an edited copy of a train tile (re-encode, resize, shift, crop, colour, flip,
caption), each edit made with Pillow or numpy.

Ground truth is complete by construction: the planted pairs and tiles with the same pixels
are the only duplicates (tiles do not overlap), unless a source photo repeats itself
(scikit-image's grass does: a 96 px block at (0, 288) reappears at (162, 291)); such copies
of part of a photo show among the other pairs of the same photo, and those whose tiles share
half their area or more by content (transformed.repeated_share) are counted apart. The bench
reports, for ``leakscan audit`` with its defaults:

* planted copies found (recall); tiles with the same pixels (a photo's flat black surround)
  found as the duplicates they are; and every other reported pair, split into pairs of tiles
  of the *same* photo (look-alikes) and of *different* photos (target: zero);
* label conflicts reported (a planted copy never changes class, so every one is spurious
  unless the bench planted it with a new label: it does not), the largest group, the
  headline test leak against the true one;
* ``resplit --keep test``: images moved against the copies to fix, and classes that lose
  more than half of their test images.

    python bench/tiles.py [--source FOLDER] [--side PX] [--work DIR] [--json]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from transformed import check_work, repeated_share, say_left_out, source_photos  # noqa: E402


def planted_copy(tile: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """An edited copy of ``tile``, one edit, made with Pillow or numpy (chosen by ``rng``)."""
    kind = ["jpeg", "resize", "shift", "crop", "colour", "flip", "caption"][int(rng.integers(0, 7))]
    w, h = tile.size
    pil = bool(rng.random() < 0.5)
    if kind == "jpeg":
        buf = io.BytesIO()
        tile.save(buf, "JPEG", quality=int(rng.integers(35, 70)))
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), "jpeg"
    if kind == "resize":
        f = rng.uniform(0.4, 0.8)
        return tile.resize((int(w * f), int(h * f)), Image.LANCZOS if pil else Image.BILINEAR), "resize"
    if kind == "shift":
        d = int(w * rng.uniform(0.04, 0.1))
        a = np.asarray(tile)
        return (tile.crop((d, d, w, h)).resize((w, h)) if pil else Image.fromarray(np.roll(a, d, axis=1))), "shift"
    if kind == "crop":
        f = np.sqrt(rng.uniform(0.6, 0.85))
        cw, ch = int(w * f), int(h * f)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return tile.crop((x, y, x + cw, y + ch)), "crop"
    if kind == "colour":
        if pil:
            return ImageOps.grayscale(tile).convert("RGB"), "colour"
        a = np.asarray(tile, np.float32) * rng.uniform(0.8, 1.2, 3) + rng.uniform(-20, 20, 3)
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)), "colour"
    if kind == "flip":
        return (ImageOps.mirror(tile) if pil else Image.fromarray(np.ascontiguousarray(np.asarray(tile)[::-1]))), "flip"
    out = tile.copy()
    d = ImageDraw.Draw(out)
    d.rectangle((0, int(h * 0.82), w, h), fill=(0, 0, 0))
    d.text((int(w * 0.05), int(h * 0.85)), "sample " + str(int(rng.integers(0, 999))), fill=(255, 255, 255))
    return out, "caption"


def build(work: Path, source: Path | None, side: int, seed: int = 0) -> dict:
    """Write the dataset under ``work/data``; returns the ground truth. One photo and one tile
    are in memory at a time: the train tiles' pixels wait in a file under ``work`` until the
    planted ones are drawn (the draws, and so the files, as when every tile was kept)."""
    rng = np.random.default_rng(seed)
    data = work / "data"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    spill = work / "train-tiles.raw"  # each train tile's RGB bytes, in the order of the tiles
    at: dict = {}  # tile -> (its photo's name, where its bytes start in spill)
    place: dict = {}  # tile's path -> (its photo's name, x, y)
    info: dict = {}  # each photo's info, which its tiles carry (crop copies it)
    paths, split, small = [], [], []
    with open(spill, "wb") as raw:
        for name, img in source_photos(source, n_generated=0):
            img = img.convert("RGB")
            w, h = img.size
            if min(w, h) < side:  # not one tile in it
                small.append(name)
                continue
            info[name] = img.info
            for y in range(0, h - side + 1, side):
                for x in range(0, w - side + 1, side):
                    k = len(paths)
                    tile = img.crop((x, y, x + side, y + side))
                    sp = "test" if rng.random() < 0.25 else "train"  # one draw a tile, as one draw of all
                    p = data / sp / name / f"tile{k:04d}.jpg"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    tile.save(p, quality=92)
                    paths.append(p.relative_to(data).as_posix())
                    place[paths[-1]] = (name, x, y)
                    split.append(sp)
                    if sp == "train":
                        at[k] = (name, raw.tell())
                        raw.write(tile.tobytes())
            del img  # let go before the next photo is decoded
    say_left_out(small, f"under {side} px on a side: not one --side tile")
    if len(paths) < 2:
        spill.unlink()
        raise SystemExit(f"{source}: need at least 2 tiles of {side} px, found {len(paths)} (a smaller --side cuts more)")
    split = np.array(split)
    train = np.flatnonzero(split == "train")
    n_plant = max(1, len(paths) // 20)
    planted = []
    with open(spill, "rb") as raw:
        for k in rng.choice(train, size=min(n_plant, len(train)), replace=False).tolist():
            name, start = at[k]
            raw.seek(start)
            tile = Image.frombytes("RGB", (side, side), raw.read(side * side * 3))
            tile.info = info[name].copy()
            copy, kind = planted_copy(tile, rng)
            p = data / "test" / name / f"planted{k:04d}-{kind}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            copy.convert("RGB").save(p, quality=92)
            planted.append((paths[k], p.relative_to(data).as_posix(), kind))
    spill.unlink()
    photo_of = {p: p.split("/")[1] for p in paths}
    photo_of.update({b: b.split("/")[1] for _, b, _ in planted})
    n_test = int((split == "test").sum()) + len(planted)
    # images whose files decode to the same pixels (tiles of a photo's flat black surround, and
    # a mirrored copy of one) are duplicates too: each pair of them is a true pair
    by_pixels: dict = {}  # by a digest of the pixels: not every image's pixels at once
    for rel in paths + [b for _, b, _ in planted]:
        with Image.open(data / rel) as im:
            rgb = im.convert("RGB")
            key = rgb.size, hashlib.blake2b(rgb.tobytes(), digest_size=16).digest()
            by_pixels.setdefault(key, []).append(rel)
    identical = {frozenset((a, b)) for same in by_pixels.values() for a in same for b in same if a < b}
    identical_sets = [same for same in by_pixels.values() if len(same) > 1]
    # test images whose pixels a train image has: leaked as much as a planted copy is
    twinned = {a for same in by_pixels.values() for a in same
               if a.startswith("test/") and any(b.startswith("train/") for b in same)}
    return {"data": data, "planted": planted, "photo_of": photo_of, "n_images": len(paths) + len(planted),
            "n_test": n_test, "n_photos": len(info), "identical": identical, "identical_sets": identical_sets,
            "twinned": twinned, "place": place}


def repeating(pairs: list, place: dict, source: Path | None, side: int) -> list:
    """The ``pairs`` (rows with ``a`` and ``b``) of two tiles of one photo that share half their
    area or more by content: the photo repeats itself there (:func:`transformed.repeated_share`)."""
    wanted = {place[r["a"]][0] for r in pairs if r["a"] in place and r["b"] in place
              and place[r["a"]][0] == place[r["b"]][0]}
    if not wanted:
        return []
    photos = {name: img.convert("RGB") for name, img in source_photos(source, n_generated=0) if name in wanted}
    out = []
    for r in pairs:
        (pa, xa, ya), (pb, xb, yb) = place.get(r["a"], (None, 0, 0)), place.get(r["b"], (None, 0, 0))
        if pa is not None and pa == pb and repeated_share(photos[pa], (xa, ya, side), (xb, yb, side)) >= 0.5:
            out.append(r)
    return out


def run(work: Path, source: Path | None, side: int) -> dict:
    truth = build(work, source, side)
    out = work / "out"
    cmd = [sys.executable, "-m", "leakscan", "audit", str(truth["data"]), "--out", str(out), "--force",
           "--no-cache", "--quiet"]
    import subprocess  # noqa: PLC0415

    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode not in (0, 1):
        raise RuntimeError(p.stderr[-2000:])
    summary = json.loads((out / "summary.json").read_text())
    rows = list(csv.DictReader(open(out / "pairs.csv", newline="")))
    possible = list(csv.DictReader(open(out / "possible.csv", newline=""))) if (out / "possible.csv").exists() else []
    planted = {frozenset((a, b)) for a, b, _ in truth["planted"]}
    found = {frozenset((r["a"], r["b"])) for r in rows}
    in_possible = {frozenset((r["a"], r["b"])) for r in possible}
    photo = truth["photo_of"]
    identical = truth["identical"]
    group_of = {r["path"]: r["group"] for r in csv.DictReader(open(out / "groups.csv", newline=""))}
    joined = sum(len({group_of.get(p) for p in same}) == 1 and None not in {group_of.get(p) for p in same}
                 for same in truth["identical_sets"])
    other = [r for r in rows if frozenset((r["a"], r["b"])) not in planted | identical]
    cross_photo = [r for r in other if photo.get(r["a"]) != photo.get(r["b"])]
    repeated = repeating(other, truth["place"], source, side)
    true_leak = len({b for _, b, _ in truth["planted"]} | truth["twinned"]) / truth["n_test"]
    test_leak = next((lk["fraction"] for lk in summary["leaks"] if lk["split"] == "test"), 0.0)
    by_kind: dict = {}
    for a, b, kind in truth["planted"]:
        k = by_kind.setdefault(kind, [0, 0])
        k[0] += 1
        k[1] += frozenset((a, b)) in found
    res = {"images": truth["n_images"], "photos": truth["n_photos"], "planted": len(planted),
           "found": len(planted & found), "planted_in_possible": len(planted & in_possible),
           "identical_sets": len(truth["identical_sets"]), "identical_sets_joined": joined,
           "other_pairs": len(other), "other_pairs_repeated": len(repeated), "pairs_across_photos": len(cross_photo),
           "label_conflicts": summary["n_label_conflicts"], "largest_group": summary["largest_group"],
           "test_leak": round(test_leak, 4), "true_test_leak": round(true_leak, 4),
           "n_possible": summary.get("n_possible"), "wall_s": round(wall, 1), "by_edit": by_kind,
           "warnings": summary.get("warnings", [])}
    new = work / "resplit.csv"
    p = subprocess.run([sys.executable, "-m", "leakscan", "resplit", str(truth["data"]), "--out", str(new),
                        "--keep", "test", "--force", "--no-cache", "--quiet", "--json"],
                       capture_output=True, text=True)
    if p.returncode in (0, 1) and p.stdout.strip():
        try:
            rs = json.loads(p.stdout)
            res["resplit_moved"] = rs.get("moved")
            res["resplit_warnings"] = [w for w in rs.get("problems", []) + rs.get("warnings", [])][:5]
        except json.JSONDecodeError:
            res["resplit_moved"] = None
    return res


def markdown(res: dict) -> str:
    lines = ["| images | photos | planted | found | in possible | sets of identical images in one group | "
             "other pairs (of them sharing half by content) | across photos | "
             "label conflicts | largest group | test leak (true) | resplit moved | wall s |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
             f"| {res['images']} | {res['photos']} | {res['planted']} | {res['found']} | {res['planted_in_possible']} | "
             f"{res['identical_sets_joined']} of {res['identical_sets']} | "
             f"{res['other_pairs']} ({res['other_pairs_repeated']}) | {res['pairs_across_photos']} | {res['label_conflicts']} | {res['largest_group']} | "
             f"{res['test_leak']:.1%} ({res['true_test_leak']:.1%}) | {res.get('resplit_moved')} | {res['wall_s']} |"]
    lines.append("")
    lines.append("Planted copies found, per edit: " + ", ".join(
        f"{k} {v[1]}/{v[0]}" for k, v in sorted(res["by_edit"].items())) + ".")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=None)
    ap.add_argument("--side", type=int, default=96)
    ap.add_argument("--work", type=Path, default=HERE.parent / ".bench" / "tiles")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    check_work(a.work, a.source)
    a.work.mkdir(parents=True, exist_ok=True)
    res = run(a.work, a.source, a.side)
    print(json.dumps(res, indent=2) if a.json else markdown(res))


if __name__ == "__main__":
    main()
