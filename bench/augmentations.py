"""Augmentation benchmark: copies made the way training pipelines make them, among distractors.

Users who save augmented images, or whose data came through someone's pipeline, hold copies
made by torchvision, albumentations or their own code, not by an image editor. Each photo (the
photos that ship with scikit-image and scikit-learn plus a few generated ones, as in
``bench/transformed.py``; or every image in ``--source FOLDER``), scaled down to 640 px (a
smaller one keeps its size), gets one copy per augmentation below; each augmentation is audited
on its own folder: the originals, their copies, and ``--distractors N`` other photos (default:
the first 300 of the 2.5 MP photos ``bench/run.py`` makes from CIFAR-10, when present), so the
decision has look-alikes to learn from as on real data.

====================  ====================================================================
augmentation          how it is made (seeded)
====================  ====================================================================
random_resized_crop   torchvision ``RandomResizedCrop(256, scale=(0.5, 0.9))``: a crop of
                      50-90% of the area, width:height 3:4 to 4:3, resized to 256x256
eval_centre_crop      ``Resize(256)`` then ``CenterCrop(224)``, the usual evaluation transform
colour_jitter         ``ColorJitter(0.4, 0.4, 0.4, 0.1)``: brightness, contrast, saturation, hue
perspective           ``RandomPerspective(0.2)``: each corner moved up to 10% of the side
jpeg_q10              JPEG quality 10
blur                  Gaussian blur, radius 2.5 px
tiny                  resized to 64 px on the longer side
crop_flip_jitter      a training pipeline: the random resized crop, mirrored, colour jitter
====================  ====================================================================

and RandAugment's (AutoAugment's) point and affine operations and the histogram edits of
image tools, each made at least two ways (a group of their own, totalled apart):

====================  ====================================================================
equalize              torchvision ``RandomEqualize`` (``ImageOps.equalize``, each channel);
equalize_luma_cv2     OpenCV ``equalizeHist`` on the luma; clahe_cv2: OpenCV CLAHE on L*
autocontrast          torchvision ``RandomAutocontrast``; stretch_numpy: each channel's 2nd-98th
                      percentile stretched to 0-255
posterize             torchvision ``RandomPosterize`` (3-4 bits); posterize_numpy: 8 levels
solarize              torchvision ``RandomSolarize`` (threshold 128-192); solarize_numpy: the same
                      in numpy; solarize_deep_cv2: OpenCV, threshold 64-127 (most of the picture
                      inverted); solarize_grey: Pillow's solarize of the grey picture
gaussian_noise        additive, sigma 10-20 grey levels; speckle_noise: multiplicative, 15%
shear                 RandAugment ``ShearX`` (0.1-0.3, Pillow, black fill); shear_cv2: vertical,
                      OpenCV ``warpAffine``, edges mirrored
translate             RandAugment ``TranslateX`` (10-30% of the width, black fill, as
                      torchvision's); translate_timm: the same, filled with the ImageNet mean
                      colour (timm's); translate_wrap: ``numpy.roll`` down 10-30%
====================  ====================================================================

and the occlusions, filters and slips of training pipelines and image tools, and their small
turns (a third group):

====================  ====================================================================
random_erasing        torchvision ``RandomErasing`` (2-33% of the area, width:height 0.3 to
                      3.3, filled black); random_erasing_noise: timm's ``RandomErasing``
                      (``mode="pixel"``: per-pixel noise around the ImageNet mean colour);
                      coarse_dropout: albumentations ``CoarseDropout`` (4-8 black holes of
                      8-12% of each side)
pixelate              Pillow: ``reduce`` by 6-10 then ``NEAREST`` back; pixelate_cv2: OpenCV
                      ``INTER_AREA`` down, ``INTER_NEAREST`` back
vignette              numpy: a radial fall-off to 30-50% at the corners; vignette_cv2: the
                      OpenCV tutorial's mask, the outer product of two ``getGaussianKernel``
median_cv2            OpenCV ``medianBlur`` (5 px); unsharp: Pillow ``UnsharpMask`` (radius 2-3,
                      150-250%)
bgr_swap              an OpenCV (BGR) array saved as RGB: red and blue swapped
webp_q30              WebP at quality 30 (Pillow); palette_64: 64 colours, dithered (GIF-like)
small_rotation        torchvision ``RandomRotation(3)``: 0.5-3 degrees either way, nearest
                      neighbour, same canvas, black corners; small_rotation_cv2:
                      albumentations' ``Rotate(limit=3)`` (OpenCV, bilinear, edges mirrored)
====================  ====================================================================

Prints, per augmentation, the copies reported as duplicates and the false pairs (a copy or
an original paired with a picture of another photo; pairs of two distractors are not scored),
beside a plain imagehash pHash loop (Hamming <= 8) on the same folders.

    python bench/augmentations.py [--source FOLDER] [--distractors N] [--work DIR] [--only A,B] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from transformed import check_work, either_way, fit, hue_pil, phash_found, source_photos  # noqa: E402 - on the path just above


def random_resized_crop(img, rng, out=256):
    w, h = img.size
    for _ in range(10):
        area = w * h * rng.uniform(0.5, 0.9)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return img.crop((x, y, x + cw, y + ch)).resize((out, out), Image.BILINEAR)
    return img.resize((out, out), Image.BILINEAR)


def eval_centre_crop(img, rng):
    w, h = img.size
    s = 256 / min(w, h)
    im = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
    x, y = (im.width - 224) // 2, (im.height - 224) // 2
    return im.crop((x, y, x + 224, y + 224))


def colour_jitter(img, rng):
    im = ImageEnhance.Brightness(img).enhance(rng.uniform(0.6, 1.4))
    im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.6, 1.4))
    im = ImageEnhance.Color(im).enhance(rng.uniform(0.6, 1.4))
    return hue_pil(im, rng.uniform(-36, 36))


def perspective(img, rng, distortion=0.2):
    w, h = img.size
    dx, dy = distortion * w / 2, distortion * h / 2
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(rng.uniform(0, dx), rng.uniform(0, dy)), (w - rng.uniform(0, dx), rng.uniform(0, dy)),
           (w - rng.uniform(0, dx), h - rng.uniform(0, dy)), (rng.uniform(0, dx), h - rng.uniform(0, dy))]
    rows = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coef = np.linalg.solve(np.array(rows, float), np.array([c for p in src for c in p], float))
    return img.transform((w, h), Image.PERSPECTIVE, tuple(coef), Image.BILINEAR)


def jpeg_q10(img, rng):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=10)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def blur(img, rng):
    return img.filter(ImageFilter.GaussianBlur(2.5))


def tiny(img, rng):
    s = 64 / max(img.size)
    return img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BICUBIC)


def crop_flip_jitter(img, rng):
    return colour_jitter(random_resized_crop(img, rng).transpose(Image.FLIP_LEFT_RIGHT), rng)


# RandAugment's and AutoAugment's point and affine operations (torchvision's on PIL images call
# PIL.ImageOps), and the histogram edits of image tools, each made at least two ways


def equalize(img, rng):  # torchvision RandomEqualize: each channel on its own
    return ImageOps.equalize(img)


def equalize_luma_cv2(img, rng):  # OpenCV: the luma equalized, the chroma kept
    import cv2

    ycc = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2YCrCb)
    ycc[..., 0] = cv2.equalizeHist(ycc[..., 0])
    return Image.fromarray(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB))


def clahe_cv2(img, rng):  # OpenCV CLAHE on the lightness
    import cv2

    lab = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=float(rng.uniform(2, 4)), tileGridSize=(8, 8)).apply(lab[..., 0])
    return Image.fromarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))


def autocontrast(img, rng):  # torchvision RandomAutocontrast
    return ImageOps.autocontrast(img)


def stretch_numpy(img, rng):  # each channel's 2nd to 98th percentile stretched to 0-255
    a = np.asarray(img, np.float32)
    lo, hi = np.percentile(a, 2, axis=(0, 1)), np.percentile(a, 98, axis=(0, 1))
    return Image.fromarray(np.clip((a - lo) / np.maximum(hi - lo, 1) * 255, 0, 255).astype(np.uint8))


def posterize(img, rng):  # torchvision RandomPosterize
    return ImageOps.posterize(img, int(rng.integers(3, 5)))


def posterize_numpy(img, rng):  # eight levels a channel, each at its middle
    a = np.asarray(img)
    return Image.fromarray((a // 32 * 32 + 16).astype(np.uint8))


def solarize(img, rng):  # torchvision RandomSolarize
    return ImageOps.solarize(img, int(rng.integers(128, 193)))


def solarize_numpy(img, rng):
    a = np.asarray(img)
    t = int(rng.integers(128, 193))
    return Image.fromarray(np.where(a >= t, 255 - a, a).astype(np.uint8))


def solarize_deep_cv2(img, rng):  # OpenCV, a low threshold (64-127): most of the picture inverted
    import cv2

    a = np.asarray(img)
    _, above = cv2.threshold(a, int(rng.integers(64, 128)) - 1, 255, cv2.THRESH_BINARY)
    return Image.fromarray(np.where(above > 0, cv2.bitwise_not(a), a))


def solarize_grey(img, rng):  # a grayscale pipeline: Pillow's solarize of the grey picture
    return ImageOps.solarize(img.convert("L"), int(rng.integers(128, 193))).convert("RGB")


def gaussian_noise(img, rng):  # albumentations GaussNoise
    a = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(10, 20), (img.height, img.width, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def speckle_noise(img, rng):  # multiplicative
    a = np.asarray(img, np.float32) * (1 + rng.normal(0, 0.15, (img.height, img.width, 1)))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def shear(img, rng):  # RandAugment ShearX: about the centre, the uncovered part black
    s = either_way(rng, 0.1, 0.3)
    return img.transform(img.size, Image.AFFINE, (1, s, -s * img.height / 2, 0, 1, 0), Image.BILINEAR)


def shear_cv2(img, rng):  # OpenCV, vertical shear, the edges mirrored into the uncovered part
    import cv2

    s = either_way(rng, 0.1, 0.3)
    m = np.float32([[1, 0, 0], [s, 1, -s * img.width / 2]])
    return Image.fromarray(cv2.warpAffine(np.asarray(img), m, img.size, flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REFLECT_101))


def translate(img, rng):  # RandAugment TranslateX: 10-30% of the width, the uncovered part black
    d = either_way(rng, 0.1, 0.3) * img.width
    return img.transform(img.size, Image.AFFINE, (1, 0, d, 0, 1, 0), Image.BILINEAR)


def translate_timm(img, rng):  # timm's RandAugment: the uncovered part the ImageNet mean colour
    d = either_way(rng, 0.1, 0.3) * img.width
    return img.transform(img.size, Image.AFFINE, (1, 0, d, 0, 1, 0), Image.BILINEAR, fillcolor=(124, 116, 104))


def translate_wrap(img, rng):  # numpy roll down: what leaves one edge comes back at the other
    return Image.fromarray(np.roll(np.asarray(img), int(rng.uniform(0.1, 0.3) * img.height), axis=0))


# occlusions, filters and slips of training pipelines and image tools


def _erase_box(img, rng, scale=(0.02, 0.33), ratio=(0.3, 3.3)):  # torchvision's RandomErasing draw
    w, h = img.size
    for _ in range(10):
        area = w * h * rng.uniform(*scale)
        r = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        eh, ew = int(round(math.sqrt(area * r))), int(round(math.sqrt(area / r)))
        if 0 < ew < w and 0 < eh < h:
            x, y = int(rng.integers(0, w - ew + 1)), int(rng.integers(0, h - eh + 1))
            return x, y, ew, eh
    return 0, 0, 0, 0


def random_erasing(img, rng):  # torchvision RandomErasing(value=0)
    x, y, ew, eh = _erase_box(img, rng)
    a = np.array(img)
    a[y:y + eh, x:x + ew] = 0
    return Image.fromarray(a)


def random_erasing_noise(img, rng):  # timm RandomErasing(mode="pixel"): normal noise, normalised space
    x, y, ew, eh = _erase_box(img, rng)
    a = np.array(img)
    mean, std = np.array([0.485, 0.456, 0.406]) * 255, np.array([0.229, 0.224, 0.225]) * 255
    a[y:y + eh, x:x + ew] = np.clip(mean + std * rng.normal(size=(eh, ew, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def coarse_dropout(img, rng):  # albumentations CoarseDropout: several small black holes
    a = np.array(img)
    h, w = a.shape[:2]
    for _ in range(int(rng.integers(4, 9))):
        hh, hw = int(h * rng.uniform(0.08, 0.12)), int(w * rng.uniform(0.08, 0.12))
        y, x = int(rng.integers(0, h - hh + 1)), int(rng.integers(0, w - hw + 1))
        a[y:y + hh, x:x + hw] = 0
    return Image.fromarray(a)


def pixelate(img, rng):  # Pillow: blocks of 6-10 px
    return img.reduce(int(rng.integers(6, 11))).resize(img.size, Image.NEAREST)


def pixelate_cv2(img, rng):
    import cv2

    f = int(rng.integers(6, 11))
    small = cv2.resize(np.asarray(img), (max(1, img.width // f), max(1, img.height // f)), interpolation=cv2.INTER_AREA)
    return Image.fromarray(cv2.resize(small, img.size, interpolation=cv2.INTER_NEAREST))


def vignette(img, rng):  # a radial fall-off to 30-50% at the corners
    w, h = img.size
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)) / math.sqrt(2)
    gain = 1 - (1 - rng.uniform(0.3, 0.5)) * r ** 2
    return Image.fromarray(np.clip(np.asarray(img, np.float32) * gain[..., None], 0, 255).astype(np.uint8))


def vignette_cv2(img, rng):  # the outer product of two Gaussian kernels, its peak 1
    import cv2

    w, h = img.size
    s = rng.uniform(0.5, 0.8)
    mask = cv2.getGaussianKernel(h, s * h) @ cv2.getGaussianKernel(w, s * w).T
    mask /= mask.max()
    return Image.fromarray(np.clip(np.asarray(img, np.float32) * mask[..., None], 0, 255).astype(np.uint8))


def median_cv2(img, rng):
    import cv2

    return Image.fromarray(cv2.medianBlur(np.asarray(img), 5))


def unsharp(img, rng):
    return img.filter(ImageFilter.UnsharpMask(float(rng.uniform(2, 3)), int(rng.integers(150, 251)), 3))


def bgr_swap(img, rng):  # an OpenCV array written as if it were RGB
    return Image.fromarray(np.ascontiguousarray(np.asarray(img)[..., ::-1]))


def webp_q30(img, rng):
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=30)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def palette_64(img, rng):  # 64 colours, Floyd-Steinberg dithered, as a GIF holds it
    return img.quantize(64, dither=Image.Dither.FLOYDSTEINBERG).convert("RGB")


def small_rotation(img, rng):  # torchvision RandomRotation(3): nearest neighbour, black corners
    return img.rotate(either_way(rng, 0.5, 3), Image.NEAREST)


def small_rotation_cv2(img, rng):  # albumentations Rotate(limit=3): bilinear, BORDER_REFLECT_101
    import cv2

    m = cv2.getRotationMatrix2D((img.width / 2, img.height / 2), either_way(rng, 0.5, 3), 1.0)
    return Image.fromarray(cv2.warpAffine(np.asarray(img), m, img.size, flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REFLECT_101))


AUGMENTATIONS = {"random_resized_crop": random_resized_crop, "eval_centre_crop": eval_centre_crop,
                 "colour_jitter": colour_jitter, "perspective": perspective, "jpeg_q10": jpeg_q10, "blur": blur,
                 "tiny": tiny, "crop_flip_jitter": crop_flip_jitter}
#: RandAugment's point and affine operations and the histogram edits (a group of their own: the
#: totals of the training pipelines above stay comparable with earlier runs)
RANDAUGMENT = {"equalize": equalize, "equalize_luma_cv2": equalize_luma_cv2, "clahe_cv2": clahe_cv2,
               "autocontrast": autocontrast, "stretch_numpy": stretch_numpy, "posterize": posterize,
               "posterize_numpy": posterize_numpy, "solarize": solarize, "solarize_numpy": solarize_numpy,
               "solarize_deep_cv2": solarize_deep_cv2, "solarize_grey": solarize_grey,
               "gaussian_noise": gaussian_noise, "speckle_noise": speckle_noise, "shear": shear,
               "shear_cv2": shear_cv2, "translate": translate, "translate_timm": translate_timm,
               "translate_wrap": translate_wrap}
#: occlusions (random erasing, cutout), filters, the slips of pipelines and tools, and the small
#: rotations of augmentation pipelines (under the transformed bench's 3 degrees)
OCCLUSIONS = {"random_erasing": random_erasing, "random_erasing_noise": random_erasing_noise,
              "coarse_dropout": coarse_dropout, "pixelate": pixelate, "pixelate_cv2": pixelate_cv2,
              "vignette": vignette, "vignette_cv2": vignette_cv2, "median_cv2": median_cv2, "unsharp": unsharp,
              "bgr_swap": bgr_swap, "webp_q30": webp_q30, "palette_64": palette_64, "small_rotation": small_rotation,
              "small_rotation_cv2": small_rotation_cv2}
GROUPS = {"training pipelines": AUGMENTATIONS, "RandAugment's operations and histogram edits": RANDAUGMENT,
          "occlusions, filters, slips and small turns": OCCLUSIONS}


def default_distractors() -> Path | None:
    folder = HERE.parent / ".bench" / "photos2500" / "train"
    return folder if folder.is_dir() else None


def _scored(pairs, original_of: dict) -> tuple[int, int]:
    """(copies found, false pairs) among ``pairs`` of file stems: a copy with its original
    (``original_of``: each copy's stem -> its original's, recorded as the copy is made); any
    other pair of a picture of the bench with another photo (two distractors are not scored)."""
    bench = set(original_of) | set(original_of.values())
    found = false = 0
    for a, b in pairs:
        if original_of.get(a) == b or original_of.get(b) == a:
            found += 1
        elif a in bench or b in bench:
            false += 1
    return found, false


def run(source: Path | None, distractors: list[Path], work: Path, only: set | None = None) -> dict:
    """Audit each augmentation's folder (``only``: those named) and score it."""
    import leakscan
    photos = [fit(im, 640) for _, im in source_photos(source)]
    out = {"photos": len(photos), "distractors": len(distractors), "rows": []}
    made = [(group, name, make) for group, augs in GROUPS.items() for name, make in augs.items()
            if only is None or name in only]
    for group, name, make in made:
        rng = np.random.default_rng(7)
        folder = work / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for q, path in enumerate(distractors):
            try:
                os.link(path, folder / f"d{q:04d}{path.suffix}")
            except OSError:
                shutil.copyfile(path, folder / f"d{q:04d}{path.suffix}")
        original_of = {}
        for k, img in enumerate(photos):
            img.save(folder / f"p{k:03d}.jpg", quality=90)
            make(img, rng).convert("RGB").save(folder / f"p{k:03d}_copy.jpg", quality=90)
            original_of[f"p{k:03d}_copy"] = f"p{k:03d}"
        t = time.perf_counter()
        result = leakscan.audit(folder, cache=False)
        wall = time.perf_counter() - t
        found, false = _scored([(Path(rec["a"]).stem, Path(rec["b"]).stem) for rec in result.pair_records()],
                               original_of)
        names = sorted(p.name for p in folder.iterdir())
        ph_found, ph_false = _scored([tuple(Path(n).stem for n in pair) for pair in phash_found(folder, names)],
                                     original_of)
        out["rows"].append({"group": group, "augmentation": name, "copies": len(photos), "found": found, "false_pairs": false,
                            "wall_s": round(wall, 1), "phash_found": ph_found, "phash_false_pairs": ph_false})
        print(f"{name}: {found} of {len(photos)} found, {false} false pairs ({wall:.1f} s)", file=sys.stderr)
    return out


def markdown(res: dict) -> str:
    lines = [f"{res['photos']} photos, each with one copy per augmentation, audited per augmentation among "
             f"{res['distractors']} distractor photos (`leakscan.audit`, defaults).", "",
             "| augmentation | leakscan: copies found | false pairs | wall s | pHash <= 8: copies found | false pairs |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in res["rows"]:
        lines.append(f"| {r['augmentation']} | {r['found']} / {r['copies']} | {r['false_pairs']} | {r['wall_s']} | "
                     f"{r['phash_found']} / {r['copies']} | {r['phash_false_pairs']} |")
    lines.append("")
    for group in GROUPS:
        rows = [r for r in res["rows"] if r["group"] == group]
        if not rows:
            continue
        total = sum(r["copies"] for r in rows)
        lines.append(f"{group[0].upper()}{group[1:]}: leakscan {sum(r['found'] for r in rows)} of {total} copies "
                     f"found, {sum(r['false_pairs'] for r in rows)} false pairs; a plain imagehash pHash loop "
                     f"(Hamming <= 8) on the same folders {sum(r['phash_found'] for r in rows)} of {total}, "
                     f"{sum(r['phash_false_pairs'] for r in rows)} false pairs.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=None, help="a folder of photos (default: the bundled ones)")
    ap.add_argument("--distractors", type=int, default=300, help="how many distractor photos (default 300)")
    ap.add_argument("--distractor-folder", type=Path, default=None,
                    help="where the distractors come from (default: .bench/photos2500/train)")
    ap.add_argument("--work", type=Path, default=HERE.parent / ".bench" / "augmentations")
    ap.add_argument("--only", default=None, help="comma-separated augmentations to run (default: all)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    check_work(a.work, a.source)
    only = None if a.only is None else set(a.only.split(","))
    unknown = (only or set()) - {name for augs in GROUPS.values() for name in augs}
    if unknown:
        ap.error(f"unknown augmentation(s): {', '.join(sorted(unknown))}")
    if a.distractor_folder is not None and not a.distractor_folder.is_dir():
        ap.error(f"--distractor-folder {a.distractor_folder}: not a folder")
    folder = a.distractor_folder or default_distractors()
    pool = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if folder else []
    if a.distractors and not pool:
        print("no distractor photos found (run `python bench/run.py --only photos` first, or pass "
              "--distractor-folder); auditing without them", file=sys.stderr)
    if a.source:  # a source picture among the distractors would be scored as a false pair with itself
        digests = {hashlib.blake2b(p.read_bytes(), digest_size=16).digest() for p in a.source.rglob("*") if p.is_file()}
        kept = [p for p in pool if hashlib.blake2b(p.read_bytes(), digest_size=16).digest() not in digests]
        if len(kept) < len(pool):
            print(f"{len(pool) - len(kept)} distractor(s) are files of --source; left out", file=sys.stderr)
        pool = kept
    res = run(a.source, pool[:a.distractors], a.work, only)
    print(json.dumps(res, indent=2) if a.json else markdown(res))


if __name__ == "__main__":
    main()
