"""How far the keypoint search alone reaches: on the pictures ``bench/transformed.py`` made (its
``--work`` folder's ``data/``), each edit's search keypoints are matched to its original's and
fitted as the search fits them (``leakscan.keypoints._fitted``), and each edit against three
other originals drawn by a seed (a fit there is a pair the closer look must turn down).

The matching is simpler than the audit's: every keypoint's nearest of the other picture within
the search's Hamming radius, the picture as it is and mirrored; there are no other pictures to
compete for a picture's fits. ``--grid`` compares ways of choosing the keypoints (1: the
strongest alone, as before the thirty-seventh session; N: rounds over an N x N grid).

    python bench/search_reach.py WORK [--grid 1,4]
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
from PIL import Image

import leakscan.orb as orb
from leakscan.features import PICTURE_SIDE
from leakscan.keypoints import SEARCH_MAX_HAMMING, _fitted


def fitted(ra, rb) -> int:
    best = 0
    for prefix in ("", "mirrored_"):
        ca, pa = ra["codes"][:ra["count"]], ra["points"][:ra["count"]]
        cb, pb = rb[prefix + "codes"][:rb[prefix + "count"]], rb[prefix + "points"][:rb[prefix + "count"]]
        if len(ca) < 2 or len(cb) < 2:
            continue
        d = np.unpackbits(ca[:, None, :] ^ cb[None], axis=2).sum(2)
        t = d.argmin(1)
        ok = d[np.arange(len(t)), t] <= SEARCH_MAX_HAMMING
        size_a, size_b = (int(ra["width"]), int(ra["height"])), (int(rb["width"]), int(rb["height"]))
        best = max(best, _fitted(pa[ok], pb[t[ok]], size_a, size_b))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path, help="a bench/transformed.py --work folder")
    ap.add_argument("--grid", default=str(orb.SPREAD_GRID), help="grid sides to compare, e.g. 1,4")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    pictures = {}
    for path in sorted((a.work / "data").glob("*.jpg")):
        im = Image.open(path).convert("RGB")
        im.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
        pictures[path.stem] = im
    originals = [n for n in pictures if "_" not in n]
    edits = [n for n in pictures if "_e" in n]
    if not edits:
        raise SystemExit(f"{a.work / 'data'}: no pictures of bench/transformed.py in it "
                         f"(make them with: python bench/transformed.py --work {a.work})")
    for grid in map(int, a.grid.split(",")):
        orb.SPREAD_GRID = grid
        rng = np.random.default_rng(a.seed)
        kept = {n: orb.strongest_keypoints(im, PICTURE_SIDE) for n, im in pictures.items()}
        per_edit, other, tried = collections.Counter(), 0, 0
        for n in edits:
            source = n.split("_")[0]
            per_edit[n.split("_e")[1]] += fitted(kept[source], kept[n]) > 0
            others = [x for x in originals if x != source]
            for o in rng.choice(others, min(3, len(others)), replace=False):  # fewer when the bench had few photos
                tried += 1
                other += fitted(kept[o], kept[n]) > 0
        print(f"grid {grid}: edits fitted to their original {sum(per_edit.values())} of {len(edits)}; "
              f"fits to another photo {other} of {tried}")


if __name__ == "__main__":
    main()
