"""Make a folder of photo-sized JPEGs for speed runs: random crops (300-500 px) of the photos
that ship with scikit-learn, or of the photos in --source.

    python bench/make_photos.py OUT_DIR [--n 1000] [--source FOLDER]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def sources(folder: Path | None) -> list[Image.Image]:
    if folder is not None:
        return [Image.open(p).convert("RGB") for p in sorted(folder.rglob("*"))
                if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp")]
    from sklearn.datasets import load_sample_images

    return [Image.fromarray(a) for a in load_sample_images().images]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--source", type=Path, default=None)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    imgs = sources(a.source)
    a.out.mkdir(parents=True, exist_ok=True)
    for k in range(a.n):
        src = imgs[k % len(imgs)]
        w, h = src.size
        cw, ch = int(rng.integers(300, min(w, 500) + 1)), int(rng.integers(240, min(h, 400) + 1))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        src.crop((x, y, x + cw, y + ch)).save(a.out / f"photo_{k:05d}.jpg", quality=90)
    print(f"wrote {a.n} JPEGs to {a.out}")


if __name__ == "__main__":
    main()
