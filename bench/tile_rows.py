"""Rows of tiles a third over each other: no pair is a duplicate, so every reported pair is false.

Each photo (the bundled ones of scikit-image and scikit-learn, or every image in ``--source``)
is scaled down to 640 px on its longer side (a smaller one keeps its size) and cut into
``--side`` px tiles along rows 150 px apart, each tile ``--step`` px on from the last (112 and
75: neighbours share 33% of their area, tiles two apart nothing). Tiles sharing less than half
are not duplicates (issue 13), so the bench reports every duplicate pair ``leakscan audit``
gives, with the share of area the two tiles really have in common and how the pair was read;
and the count of possible pairs. Two tiles with the same pixels (of a flat sky or border) are
duplicates: counted apart, not as false. So are two tiles of a photo that repeats itself
(scikit-image's grass is a periodic texture): where one tile's pixels show again in the photo
over half the other's area (transformed.repeated_share), the pair shares them by content.

    python bench/tile_rows.py [--source FOLDER] [--side 112] [--step 75] [--work DIR]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from transformed import check_work, fresh_work, fit, repeated_share, say_left_out, source_photos  # noqa: E402


def build(out: Path, source: Path | None, side: int, step: int) -> tuple[dict, dict, dict]:
    """Write the tiles under ``out``; ``{file name: (photo, x, y)}``, ``{file name: its pixels'
    digest}`` and ``{photo: the photo as cut}``."""
    fresh_work(out)
    where, pixels, small, photos = {}, {}, [], {}
    for name, img in source_photos(source, n_generated=0):
        img = fit(img, 640)
        photos[name] = img
        w, h = img.size
        if min(w, h) < side:  # not one tile in it
            small.append(name)
            continue
        for y in range(0, h - side + 1, 150):
            for x in range(0, w - side + 1, step):
                tile = f"{name}_{y}_{x}.jpg"
                crop = img.crop((x, y, x + side, y + side))
                crop.save(out / tile, quality=90)
                where[tile] = (name, x, y)
                pixels[tile] = hashlib.blake2b(crop.tobytes(), digest_size=16).digest()
    say_left_out(small, f"under {side} px on a side once at most 640 px on the longer: not one tile")
    if len(where) < 2:
        raise SystemExit(f"{source}: need at least 2 tiles of {side} px, found {len(where)}")
    return where, pixels, photos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=None)
    ap.add_argument("--side", type=int, default=112)
    ap.add_argument("--step", type=int, default=75)
    ap.add_argument("--work", type=Path, default=HERE.parent / ".bench" / "tile_rows")
    a = ap.parse_args()
    check_work(a.work, a.source)
    import leakscan

    where, pixels, photos = build(a.work, a.source, a.side, a.step)

    def share(p, q):
        (pa, xa, ya), (pb, xb, yb) = where[p], where[q]
        if pa != pb:
            return None
        return max(0, a.side - abs(xa - xb)) * max(0, a.side - abs(ya - yb)) / a.side ** 2

    r = leakscan.audit(a.work, cache=False)
    counts = collections.Counter()
    lines = []
    for rec in r.pair_records():
        s = share(rec["a"], rec["b"])
        if pixels[rec["a"]] == pixels[rec["b"]]:  # two tiles of a flat sky or border: a true duplicate
            counts["same pixels (not false)"] += 1
            lines.append(f"- {rec['a']} ~ {rec['b']}: {rec['confidence']:.3f}, {rec['detail']}, same pixels")
            continue
        if s is not None and s < 0.5:  # apart by their places: do they show the same pixels?
            (photo, xa, ya), (_, xb, yb) = where[rec["a"]], where[rec["b"]]
            repeated = repeated_share(photos[photo], (xa, ya, a.side), (xb, yb, a.side))
            if repeated >= 0.5:  # the photo repeats itself: a true duplicate
                counts["the photo repeating itself (not false)"] += 1
                lines.append(f"- {rec['a']} ~ {rec['b']}: {rec['confidence']:.3f}, {rec['detail']}, sharing {s:.0%} "
                             f"by place, {repeated:.0%} by content (the photo repeats itself there)")
                continue
            s = max(s, repeated)  # what they do share, by place or by content
        counts["across photos" if s is None else "sharing 50% or more" if s >= 0.5 else "sharing less than half"] += 1
        lines.append(f"- {rec['a']} ~ {rec['b']}: {rec['confidence']:.3f}, {rec['detail']}, "
                     f"{'other photos' if s is None else f'sharing {s:.0%}'}")
    print(f"{len(where)} tiles; duplicates: {dict(counts) or 0}; possible: {len(r.possible)}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
