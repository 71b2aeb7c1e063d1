"""Odd dataset compositions: does an audit finish, and does it report any pair of different pictures?

Each composition is a small folder (train/test) of pictures the script draws: identical
images, flat images, 1x1 and 2x2 images, one or two images, long strips, letterboxed,
grayscale, 16-bit, palette and transparent images, noise, every picture rotated on a canvas
(same size or grown, black or white, at one angle or many), mirrored pairs, hue-shifted pairs,
pictures just under and at the 64 px the larger-picture searches need. Each is audited with
the defaults (``leakscan.audit``, one process); a row says whether it finished, how many
duplicate and possible pairs it reported, how many of the duplicates join two different
pictures (``false``: only the compositions whose pictures are all different, or whose copies
are known, are scored), and its warnings.

    python bench/compositions.py [NAME ...]      # all compositions, or those named
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from transformed import generated, hue_pil  # noqa: E402


def scene(seed: int, size: int = 200) -> Image.Image:
    """A structured picture of ``size`` px (the transformed bench's generated pictures; drawn at
    64 px at least, then reduced)."""
    img = generated(seed, (max(size, 64), max(size, 64)))
    return img if size >= 64 else img.resize((size, size), Image.LANCZOS)


def compositions() -> dict:
    """name -> (pictures, which pictures are the same picture: a list of source ids, or None
    when the composition is not scored)."""
    rng = np.random.default_rng(0)
    out = {}

    def different(name, pictures):
        out[name] = (pictures, list(range(len(pictures))))

    out["identical x12"] = ([scene(1)] * 12, [0] * 12)
    out["flat grey x8"] = ([Image.new("RGB", (120, 90), (128, 128, 128))] * 8, [0] * 8)
    different("flat colours x8", [Image.new("RGB", (120, 90), tuple(int(v) for v in rng.integers(0, 255, 3)))
                                  for _ in range(8)])
    out["2x2 noise x6"] = ([Image.fromarray(rng.integers(0, 255, (2, 2, 3), np.uint8)) for _ in range(6)], None)
    different("1x1 x4", [Image.new("RGB", (1, 1), (k * 40, 0, 0)) for k in range(4)])
    different("two images", [scene(1), scene(2)])
    different("one image", [scene(1)])
    different("strips 1000x12", [Image.fromarray(rng.integers(0, 255, (12, 1000, 3), np.uint8)) for _ in range(6)])
    different("strips 12x1000", [Image.fromarray(rng.integers(0, 255, (1000, 12, 3), np.uint8)) for _ in range(6)])
    different("letterboxed, black", [ImageOps.pad(scene(s), (300, 200), color=(0, 0, 0)) for s in range(10)])
    different("framed, white", [ImageOps.expand(scene(s), 25, (255, 255, 255)) for s in range(12)])
    different("caption bars", [Image.fromarray(np.r_[np.asarray(scene(s))[:170], np.full((30, 200, 3), 20, np.uint8)])
                               for s in range(12)])
    different("grayscale", [scene(s).convert("L") for s in range(10)])
    different("16-bit grayscale", [Image.fromarray(np.asarray(scene(s).convert("L"), np.uint16) * 257) for s in range(8)])
    different("palette", [scene(s).convert("P") for s in range(8)])
    out["transparent"] = ([Image.new("RGBA", (100, 100), (0, 0, 0, 0))] * 3 + [scene(s).convert("RGBA") for s in range(5)],
                          [0, 0, 0, 1, 2, 3, 4, 5])
    different("noise 64 px x20", [Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)) for _ in range(20)])
    different("rotated 25 deg, same size, black", [scene(s).rotate(25) for s in range(10)])
    different("rotated 20 deg, same size, white", [scene(s).rotate(20, fillcolor=(255, 255, 255)) for s in range(12)])
    different("rotated 25-27 deg, grown, white", [scene(s).rotate(25 + s % 3, expand=True, fillcolor=(255, 255, 255))
                                                  for s in range(12)])
    different("rotated 30-32 deg, grown, black", [scene(s).rotate(-30 + s % 3, expand=True) for s in range(12)])
    different("rotated 5-40 deg, either canvas", [scene(s).rotate(float(a), expand=bool(s % 2))
                                                  for s, a in zip(range(14), np.linspace(5, 40, 14))])
    out["mirrored pairs"] = (sum(([scene(s), ImageOps.mirror(scene(s))] for s in range(6)), []),
                             [s for s in range(6) for _ in range(2)])
    out["hue-turned pairs"] = ([scene(s) for s in range(6)] + [hue_pil(scene(s), 110) for s in range(6)],
                               list(range(6)) * 2)
    different("64 px", [scene(s, 64) for s in range(20)])
    different("63 px", [scene(s, 63) for s in range(20)])
    different("8 px and 200 px", [scene(s) for s in range(5)] + [scene(100 + s, 8) for s in range(5)])
    return out


def audit_one(pictures, source) -> dict:
    import leakscan

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        names = []
        for k, img in enumerate(pictures):
            folder = data / ("train", "test")[k % 2]
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / f"i{k:03d}.png")
            names.append(f"{folder.name}/i{k:03d}.png")
        try:
            r = leakscan.audit(data, cache=False, jobs=1)
        except Exception as exc:  # the row says so; the other compositions still run
            traceback.print_exc(limit=-2)
            return {"finished": False, "error": f"{type(exc).__name__}: {exc}"}
        pairs = r.pair_records()
        of = dict(zip(names, source)) if source is not None else None
        false = None if of is None else sum(of[p["a"]] != of[p["b"]] for p in pairs)
        return {"finished": True, "pairs": len(pairs), "possible": len(r.pair_records("possible")), "false": false,
                "warnings": len(r.warnings)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="compositions to run (default: all)")
    a = ap.parse_args()
    comps = compositions()
    unknown = [n for n in a.names if n not in comps]
    if unknown:
        sys.exit(f"unknown composition(s): {', '.join(unknown)}; known: {', '.join(comps)}")
    print("| composition | images | finished | duplicate pairs | of them different pictures | possible | warnings |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for name, (pictures, source) in comps.items():
        if a.names and name not in a.names:
            continue
        r = audit_one(pictures, source)
        if not r["finished"]:
            print(f"| {name} | {len(pictures)} | no: {r['error']} | - | - | - | - |")
            continue
        false = "-" if r["false"] is None else r["false"]
        print(f"| {name} | {len(pictures)} | yes | {r['pairs']} | {false} | {r['possible']} | {r['warnings']} |")


if __name__ == "__main__":
    main()
