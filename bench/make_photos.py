"""Make folders of photo-like JPEGs for speed runs.

    python bench/make_photos.py OUT_DIR [--n 1000] [--source FOLDER]

random crops (300-500 px) of the photos that ship with scikit-learn, or of the photos in --source;

    python bench/make_photos.py OUT_DIR --cifar CIFAR_DIR [--n 1100] [--known-pairs pairs.csv]

camera-sized photos (about 2.5 megapixels: 1920x1296 or 1824x1368, landscape or portrait) made
from distinct CIFAR-10 train images (CIFAR_DIR/train/<class>/*.jpg; images in --known-pairs,
ciFAIR's duplicates, are left out): a LANCZOS upscale, then seeded camera traits (vignetting, a
light gradient, a faint surface texture, luminance grain that grows with brightness, chroma noise),
saved at JPEG quality 90; 3% carry an EXIF orientation tag with the pixels stored turned, as a
camera held sideways writes them. Laid out as OUT_DIR/{train,test}/<class>/, 80/20; about 5% of
the test photos (at least one) are edited copies of train photos, each edited a different mix of
ways (downscale to 0.5-0.8 with one of five resamplers, re-encode at quality 55-85, crop 5-15%,
mirror, brightness), listed in OUT_DIR/planted.csv (a = train photo, b = its copy, edit). The
same arguments give the same files. Written into OUT_DIR.partial, renamed when complete.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benches' helpers (transformed.py)


def sources(folder: Path | None) -> list[Image.Image]:
    if folder is not None:
        # read as the other benches read --source (files that do not decode named and counted),
        # keeping those a crop fits in (300 x 240 px or more)
        from transformed import folder_photos, say_left_out

        photos = list(folder_photos(folder))
        say_left_out([name for name, img in photos if img.width < 300 or img.height < 240],
                     "under 300 x 240 px: no crop fits")
        imgs = [img for _, img in photos if img.width >= 300 and img.height >= 240]
        if not imgs:
            raise SystemExit(f"{folder}: need at least 1 photo of 300 x 240 px or more, found 0")
        return imgs
    from sklearn.datasets import load_sample_images

    return [Image.fromarray(a) for a in load_sample_images().images]


def crops(out: Path, n: int, source: Path | None) -> None:
    rng = np.random.default_rng(0)
    imgs = sources(source)
    out.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        src = imgs[k % len(imgs)]
        w, h = src.size
        cw, ch = int(rng.integers(300, min(w, 500) + 1)), int(rng.integers(240, min(h, 400) + 1))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        src.crop((x, y, x + cw, y + ch)).save(out / f"photo_{k:05d}.jpg", quality=90)
    print(f"wrote {n} JPEGs to {out}")


# ---------------------------------------------------------------- 2.5 MP photos from CIFAR-10

SEED = 2500
#: (width, height) of the displayed photo and how often; each about 2.5 MP.
SHAPES = (((1920, 1296), 0.5), ((1824, 1368), 0.2), ((1296, 1920), 0.2), ((1368, 1824), 0.1))
EXIF_SHARE = 0.03
#: EXIF orientation -> the turn that stores a displayed picture so the tag turns it back.
STORE_TURN = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
RESAMPLERS = {"lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR,
              "box": Image.BOX, "hamming": Image.HAMMING}
EDITS = ("downscale", "reencode", "crop", "mirror", "brightness")


def _smooth(rng, w: int, h: int, step: int) -> np.ndarray:
    """Unit noise at 1/step of the size, bicubic-upscaled to (h, w): grain or texture of that scale."""
    small = rng.standard_normal((max(1, h // step), max(1, w // step)), np.float32)
    return np.asarray(Image.fromarray(small, "F").resize((w, h), Image.BICUBIC))


def camera_photo(src: Image.Image, size: tuple[int, int], rng) -> Image.Image:
    """``src`` cut to the aspect of ``size``, upscaled, with a camera's light fall-off and noise."""
    w, h = size
    sw, sh = src.size
    if w >= h:  # keep the width, cut rows
        ch = max(1, round(sw * h / w))
        y = int(rng.integers(0, sh - ch + 1))
        src = src.crop((0, y, sw, y + ch))
    else:
        cw = max(1, round(sh * w / h))
        x = int(rng.integers(0, sw - cw + 1))
        src = src.crop((x, 0, x + cw, sh))
    a = np.asarray(src.resize((w, h), Image.LANCZOS), np.float32)
    yy, xx = np.ogrid[0:h, 0:w]
    xx, yy = (xx / w - 0.5).astype(np.float32), (yy / h - 0.5).astype(np.float32)
    gain = (1 - rng.uniform(0.3, 0.7) * (xx ** 2 + yy ** 2)) * (1 + rng.uniform(-0.08, 0.08) * xx
                                                                  + rng.uniform(-0.08, 0.08) * yy)
    texture = sum(_smooth(rng, w, h, s) * np.float32((s / 8) ** 0.5) for s in (2, 4, 8, 16))
    a *= (gain * (1 + np.float32(rng.uniform(0.02, 0.05)) * texture))[..., None]
    iso = np.float32(rng.uniform(1.4, 3.0))  # sensor gain: how grainy this shot is
    sigma = iso * (1 + 3 * np.sqrt(np.clip(a.mean(axis=2), 0, 255) / 255))
    a += (sigma * rng.standard_normal((h, w), np.float32))[..., None]
    a += np.stack([_smooth(rng, w, h, 2) for _ in range(3)], -1) * iso
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))


def _save(img: Image.Image, path: Path, quality: int, orientation: int | None) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    if orientation is None:
        img.save(path, quality=quality)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.transpose(STORE_TURN[orientation]).save(path, quality=quality, exif=exif.tobytes())
    return path.stat().st_size


def _make_one(job: tuple) -> int:
    k, src, dest, size, orientation = job
    rng = np.random.default_rng([SEED, k])
    return _save(camera_photo(Image.open(src).convert("RGB"), size, rng), dest, 90, orientation)


def edit_copy(img: Image.Image, kinds: list[str], rng) -> tuple[Image.Image, int, str]:
    """``img`` edited each of ``kinds`` ways; the JPEG quality to save at and what was done."""
    done, quality = [], 90
    if "crop" in kinds:
        w, h = img.size
        f = rng.uniform(0.05, 0.15)
        cw, ch = round(w * (1 - f)), round(h * (1 - f))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = img.crop((x, y, x + cw, y + ch))
        done.append(f"crop {f:.0%}")
    if "mirror" in kinds:
        img = ImageOps.mirror(img)
        done.append("mirror")
    if "brightness" in kinds:
        f = rng.choice([rng.uniform(0.75, 0.9), rng.uniform(1.1, 1.25)])
        img = ImageEnhance.Brightness(img).enhance(f)
        done.append(f"brightness x{f:.2f}")
    if "downscale" in kinds:
        f = rng.uniform(0.5, 0.8)
        name = str(rng.choice(list(RESAMPLERS)))
        img = img.resize((round(img.width * f), round(img.height * f)), RESAMPLERS[name])
        done.append(f"downscale {f:.2f} {name}")
    if "reencode" in kinds:
        quality = int(rng.integers(55, 86))
        done.append(f"quality {quality}")
    return img, quality, "; ".join(done)


def cifar_photos(out: Path, n: int, cifar: Path, known_pairs: Path | None, jobs: int | None) -> None:
    if out.exists():
        raise SystemExit(f"{out} exists; remove it first")
    stage = out.with_name(out.name + ".partial")
    if stage.exists():
        import shutil

        shutil.rmtree(stage)  # our own leftover of an interrupted run
    t0 = time.perf_counter()
    rng = np.random.default_rng(SEED)
    known = set()
    if known_pairs is not None:
        for r in csv.DictReader(open(known_pairs, newline="")):
            known |= {"/".join(Path(r[c]).parts[-3:]) for c in ("a", "b")}
    pool = [p for p in sorted(cifar.glob("train/*/*.jpg")) if "/".join(p.parts[-3:]) not in known]
    if not 20 <= n <= len(pool):
        raise SystemExit(f"--n {n}: give 20 to {len(pool)} (the CIFAR train images in {cifar})")
    n_test = round(0.2 * n)
    n_leaks = max(1, round(0.05 * n_test))
    n_distinct = n - n_leaks
    picked = [pool[i] for i in rng.choice(len(pool), n_distinct, replace=False)]
    shapes = rng.choice(len(SHAPES), n_distinct, p=[p for _, p in SHAPES])
    tagged = rng.random(n_distinct) < EXIF_SHARE
    n_train = n_distinct - (n_test - n_leaks)
    jobs_ = []
    for k, src in enumerate(picked):
        split = "train" if k < n_train else "test"
        dest = stage / split / src.parent.name / f"p{k:04d}.jpg"
        orientation = int(rng.choice(list(STORE_TURN))) if tagged[k] else None
        jobs_.append((k, src, dest, SHAPES[shapes[k]][0], orientation))
    with ProcessPoolExecutor(jobs or os.cpu_count()) as ex:
        sizes = list(ex.map(_make_one, jobs_, chunksize=8))
    planted, n_tagged = [], int(tagged.sum())
    for q, k in enumerate(sorted(rng.choice(n_train, n_leaks, replace=False).tolist())):
        erng = np.random.default_rng([SEED, n + q])
        kinds = [EDITS[q % len(EDITS)]] + [e for e in EDITS if e != EDITS[q % len(EDITS)] and erng.random() < 0.3]
        a = jobs_[k][2]
        img, quality, what = edit_copy(ImageOps.exif_transpose(Image.open(a)).convert("RGB"), kinds, erng)
        orientation = 6 if q == 1 else None  # one copy is stored turned, with its EXIF tag
        b = stage / "test" / a.parent.name / f"p{n_distinct + q:04d}.jpg"
        sizes.append(_save(img, b, quality, orientation))
        n_tagged += orientation is not None
        planted.append({"a": a.relative_to(stage).as_posix(), "b": b.relative_to(stage).as_posix(),
                        "edit": what + ("; EXIF orientation 6" if orientation else "")})
    with open(stage / "planted.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["a", "b", "edit"], lineterminator="\n")
        w.writeheader()
        w.writerows(planted)
    stage.rename(out)
    print(f"wrote {n} JPEGs to {out} in {time.perf_counter() - t0:.1f}s: train {n_train}, test {n_test} "
          f"({n_leaks} planted copies in planted.csv), {n_tagged} with an EXIF orientation; "
          f"mean size {np.mean(sizes) / 1e6:.2f} MB (min {min(sizes) / 1e6:.2f}, max {max(sizes) / 1e6:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=None, help="photos to write [default: 1000; with --cifar 1100]")
    ap.add_argument("--source", type=Path, default=None, help="photos to crop [default: scikit-learn's]")
    ap.add_argument("--cifar", type=Path, default=None, help="make 2.5 MP photos from CIFAR_DIR/train/<class>/")
    ap.add_argument("--known-pairs", type=Path, default=None, help="with --cifar: CSV a,b of images to leave out")
    ap.add_argument("--jobs", type=int, default=None, help="with --cifar: processes [default: all cores]")
    a = ap.parse_args()
    if a.cifar is not None and a.source is not None:
        ap.error("give --source or --cifar, not both (--cifar makes its photos from CIFAR-10 alone)")
    if a.cifar is None and (a.known_pairs is not None or a.jobs is not None):
        ap.error("--known-pairs and --jobs work with --cifar")
    if a.known_pairs is not None and not a.known_pairs.is_file():
        ap.error(f"--known-pairs {a.known_pairs}: no such file")
    if a.cifar is not None:
        cifar_photos(a.out, a.n or 1100, a.cifar, a.known_pairs, a.jobs)
    else:
        crops(a.out, a.n or 1000, a.source)


if __name__ == "__main__":
    main()
