"""Overlapping tiles cut the ways the transformed-photo bench does not: one audit of them all.

From each photo that ships with scikit-image and scikit-learn (or ``--source FOLDER``), at
full resolution, square tiles of half its shorter side:

* **vertical**: two tiles one above the other, shifted by 40% (sharing 60%), Pillow crops;
* **unequal diagonal**: shifted by 35% across and 15% down (sharing 55%), numpy slices;
* **grid, 96 px**: three tiles of a grid whose stride is half a tile, each saved at 96 px
  (right and lower neighbours share 50%; the diagonal neighbour 25%, which must not be a
  duplicate);
* **row, 112 px**: the photo brought to 640 px, four 112 px tiles along one row, each 75 px
  on from the last (neighbours share 33%, tiles two apart nothing: none a duplicate).

The tiles of one photo overlap each other in other ways too (pairs scored only across
photos: any pair of tiles of *different* photos reported is false).

    python bench/tile_protocols.py [--source FOLDER] [--work DIR]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from transformed import check_work, fresh_work, no_flat, say_left_out, source_photos  # noqa: E402


def build(out: Path, source: Path | None, seed: int = 7) -> dict:
    """Write the tiles under ``out``/train and ``out``/test; ``{frozenset(a, b): (protocol, positive)}``."""
    rng = np.random.default_rng(seed)
    fresh_work(out)
    (out / "train").mkdir()
    (out / "test").mkdir()
    truth = {}

    def save(img, name, split):
        img.convert("RGB").save(out / split / name, quality=88)
        return f"{split}/{name}"

    narrow = []
    for k, name, full in no_flat(source_photos(source), source):
        W, H = full.size
        if min(W, H) * 640 < 112 * max(W, H):  # at 640 px on the longer side, no row of 112 px tiles
            narrow.append(name)
            continue
        t = int(min(W, H) * 0.5)
        x0, y0 = int(rng.integers(0, W - t + 1)), int(rng.integers(0, H - int(1.4 * t) + 1))
        d = int(0.4 * t)
        a = save(full.crop((x0, y0, x0 + t, y0 + t)), f"p{k:02d}_va.jpg", "train")
        b = save(full.crop((x0, y0 + d, x0 + t, y0 + d + t)), f"p{k:02d}_vb.jpg", "test")
        truth[frozenset((a, b))] = ("vertical, 60% (Pillow)", True)
        A = np.asarray(full.convert("RGB"))
        dx, dy = int(0.35 * t), int(0.15 * t)
        x0, y0 = int(rng.integers(0, W - t - dx + 1)), int(rng.integers(0, H - t - dy + 1))
        a = save(Image.fromarray(A[y0:y0 + t, x0:x0 + t]), f"p{k:02d}_da.jpg", "train")
        b = save(Image.fromarray(A[y0 + dy:y0 + dy + t, x0 + dx:x0 + dx + t]), f"p{k:02d}_db.jpg", "test")
        truth[frozenset((a, b))] = ("unequal diagonal, 55% (numpy)", True)
        s = t // 2
        x0, y0 = int(rng.integers(0, W - t - s + 1)), int(rng.integers(0, H - t - s + 1))
        g = {}
        for i, j in ((0, 0), (0, 1), (1, 1)):
            box = (x0 + j * s, y0 + i * s, x0 + j * s + t, y0 + i * s + t)
            g[i, j] = save(full.crop(box).resize((96, 96), Image.BILINEAR), f"p{k:02d}_g{i}{j}.jpg",
                           "train" if (i, j) == (0, 0) else "test")
        truth[frozenset((g[0, 0], g[0, 1]))] = ("grid 96 px, right neighbour, 50%", True)
        truth[frozenset((g[0, 1], g[1, 1]))] = ("grid 96 px, lower neighbour, 50%", True)
        truth[frozenset((g[0, 0], g[1, 1]))] = ("grid 96 px, diagonal neighbour, 25%", False)
        # a row of 112 px tiles of the photo brought to 640 px, each a third over the last
        small = full.resize((640, round(640 * H / W)) if W >= H else (round(640 * W / H), 640), Image.LANCZOS)
        w, h = small.size
        y0 = int(rng.integers(0, h - 112 + 1))
        row = [save(small.crop((x, y0, x + 112, y0 + 112)), f"p{k:02d}_r{n}.jpg", "train" if n % 2 else "test")
               for n, x in enumerate(range(0, min(w - 112, 3 * 75) + 1, 75))]
        for n in range(len(row) - 1):
            truth[frozenset((row[n], row[n + 1]))] = ("row of 112 px tiles, neighbours, 33%", False)
        for n in range(len(row) - 2):
            truth[frozenset((row[n], row[n + 2]))] = ("row of 112 px tiles, two apart, 0%", False)
    say_left_out(narrow, "under 112 px on a side at 640 px on the longer: no row of 112 px tiles")
    if not truth:
        raise SystemExit(f"{source}: need at least 1 photo whose shorter side is 112/640 of the longer or more, found 0")
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=HERE.parent / ".bench" / "tile_protocols")
    a = ap.parse_args()
    check_work(a.work, a.source)
    import leakscan

    truth = build(a.work, a.source)
    r = leakscan.audit(a.work, cache=False)
    found = collections.defaultdict(lambda: [0, 0])
    across = []
    photo = (lambda p: p.split("/")[1].split("_")[0])  # noqa: E731
    for tier in ("duplicates", "possible"):
        for rec in r.pair_records(tier):
            key = frozenset((rec["a"], rec["b"]))
            if key in truth:
                found[truth[key][0]][0 if tier == "duplicates" else 1] += 1
            elif tier == "duplicates" and photo(rec["a"]) != photo(rec["b"]):
                across.append(f"{rec['a']} ~ {rec['b']} ({rec['detail']})")
    n = collections.Counter(p for p, _ in truth.values())
    positive = {p: pos for p, pos in truth.values()}
    lines = ["| protocol | pairs | duplicates | possible |", "| --- | ---: | ---: | ---: |"]
    for p in n:
        dup = f"{found[p][0] / n[p]:.2f}" if positive[p] else f"{found[p][0]} reported (must be 0)"
        lines.append(f"| {p} | {n[p]} | {dup} | {found[p][1]} |")
    lines += ["", f"{len(across)} duplicate pairs across photos (false)" + (": " + "; ".join(across[:5]) if across else
                                                                         ".")]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
