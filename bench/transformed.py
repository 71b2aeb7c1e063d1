"""Transformed-photo benchmark: every edit made at least two ways, other photos as distractors.

Each photo (default: the photos that ship with scikit-image and scikit-learn, plus a few
pictures generated from a seed; or every image in ``--source FOLDER``) becomes one
*original*, scaled down to ``--size`` px on its longer side (a smaller photo keeps its size).
Each original gets the edits below,
each made by at least two tools or protocols (Pillow, numpy/scipy.ndimage, scikit-image, OpenCV),
with the parameters drawn from a seeded generator:

=================  ===========================================================================
edit               protocols
=================  ===========================================================================
rotate, same size  Pillow ``rotate``; ``scipy.ndimage.rotate(reshape=False)``;
                   ``skimage.transform.rotate``: corners cut off, filled black, white or with
                   the picture's edge colour (in turn); skimage ``mode="edge"`` (the corners
                   filled by repeating the edge pixels); ``scipy.ndimage.rotate(mode="mirror")``
                   (the picture mirrored into the corners: OpenCV's ``BORDER_REFLECT_101``, the
                   default of albumentations' rotations) and skimage ``mode="symmetric"``
                   (mirrored, edge pixel repeated). Angle in (3, 45) degrees, either sign.
rotate, expanded   the same three tools with an expanded canvas (``expand``/``reshape``/``resize``)
rotate then crop   Pillow / skimage rotation, then the largest upright crop of the picture's
                   shape inside the rotated picture: no padding left at all; scipy.ndimage
                   rotation, a tighter centred crop (80-95% of that box) resized back to the
                   original size; Pillow rotation, then the largest centred square;
                   scikit-image rotation, then the largest-area rectangle (of another shape)
crop               50-90% of the area, centred or off-centre: Pillow ``crop``; numpy slicing
                   then ``skimage.transform.resize`` back to the original size
crop of another    50-90% of the area, width:height 3:4 to 4:3 in pixels, anywhere, resized:
shape, resized     to a 256 px square (Pillow, torchvision's ``RandomResizedCrop``); back to
                   the original size (numpy slicing, ``skimage.transform.resize``)
letterbox          Pillow canvas + paste (bars top and bottom); ``numpy.pad`` (pillarbox, bars
                   left and right); ``numpy.pad`` on all four sides (a frame). 5-25% per side,
                   black, white, grey, the edge colour or a random colour
pad to square      ``PIL.ImageOps.pad`` (resized into a square, coloured bars);
                   ``numpy.pad`` to a square with the picture's mean colour
tiles 30/50/70%    two crops of the full-resolution photo sharing 30, 50 or 70% of their
                   area: side by side (Pillow) or diagonal (numpy)
grayscale          Pillow ``convert("L")``; ``skimage.color.rgb2gray``
hue shift          Pillow HSV; ``skimage.color.rgb2hsv``/``hsv2rgb`` (30-150 degrees)
gamma              Pillow ``point``; ``skimage.exposure.adjust_gamma`` (0.5-0.7 or 1.5-2.2)
colour cast        a warm or cool white balance: Pillow per-band ``point`` gains (red and blue
                   x0.65-0.85 / x1.15-1.35); numpy gains with the shadows lifted by 10-30 levels
sepia              Pillow ``ImageOps.colorize`` of the grey picture between a dark brown and a
                   cream; numpy's classic sepia matrix (0.393, 0.769, 0.189 / ...), clipped
saturation         Pillow ``ImageEnhance.Color`` (x0.2-0.5 or x1.6-2.5); scikit-image HSV with
                   the saturation scaled as much (numpy: blended with the luminance)
JPEG q30           Pillow quality 30 (4:2:0); skimage rescale to 0.7 then quality 35 (4:4:4)
text               Pillow ``ImageDraw`` caption on a dark bar; a semi-transparent watermark
                   composited over the middle
resize             Pillow LANCZOS to 40-70%; ``skimage.transform.resize`` to a square
flip               Pillow ``transpose`` (mirror); ``numpy.flipud`` (upside down)
OpenCV             each edit again as OpenCV makes it (the augmentation libraries built on it,
                   such as albumentations, draw the same way): ``cv2.warpAffine`` rotations on
                   the same canvas and on a grown one, a rotation cropped upright, an off-centre
                   crop resized back with ``INTER_AREA``, a ``RandomResizedCrop`` to 224 px,
                   ``copyMakeBorder`` bars, the 8-bit HSV hue (0-179), a ``LUT`` gamma,
                   ``imencode`` at quality 30-40, ``putText`` straight on the picture (no bar;
                   white, black or a date stamp's orange, 5-8% of the height), a word blended
                   over the middle with ``addWeighted`` (30-45%), ``INTER_AREA`` downscaling,
                   ``flip`` on both axes
ImageMagick        each edit again as the ``magick``/``convert`` command line makes it (shell
                   scripts and web back-ends), when a real ImageMagick is installed:
                   ``-distort SRT`` on the same canvas (black, white or edge virtual pixels),
                   ``-rotate`` on a grown one, ``-distort SRT`` then ``-crop`` upright,
                   ``-gravity center -crop N%`` and an off-centre ``-crop`` resized back,
                   ``-border`` (a frame), ``-extent`` to a square, ``-resize`` and ``-sample``
                   (nearest neighbour), ``-colorspace Gray``, ``-modulate`` (hue, saturation),
                   ``-gamma``, ``-sepia-tone``, ``-brightness-contrast``, ``-normalize``,
                   ``-quality`` 25-40, ``-blur``, ``-unsharp``, ``+noise Gaussian``, ``-flop``,
                   ``-transpose``, ``-annotate`` on a translucent undercolour and as a 40%
                   white watermark, and a small ``-distort Perspective`` (corners moved up to
                   8%): the edits of the rows above, and five more
=================  ===========================================================================

Everything is saved as JPEG (quality 90 unless the edit says otherwise).

Ground truth, by construction. **Positives**: each edit with its original (these are the
recall rows), and any two images derived from the same original; the two tiles of a pair
sharing 50% or 70% of their area. **Negatives**: any two images from different photos (the
distractors: other photos, not tiles of the same one), and the two tiles of a pair sharing
30% (they must not be reported as duplicates; at most as ``possible``). **Not scored**:
other pairs within one photo (a tile and the original it was cut from, tiles of different
pairs), counted apart.

It runs ``leakscan.audit`` on the folder through the public library (``Audit.pair_records()``)
and counts a reported pair as a duplicate unless the record marks it otherwise (a
``decision``/``level`` of ``possible``, or a ``confidence`` below ``--min-confidence``), so
it keeps working when the pair decision changes. leakscan lists identical pictures as a star
(one of them paired with the rest; README, *Outputs*), so a pair with one of them counts for
each (:func:`same_pixels`): ImageMagick's ``-flop`` writes the file Pillow's mirror writes,
and in one audit only one of the two is paired with the original. A plain imagehash pHash loop (Hamming <= 8)
is scored beside it. Prints a markdown table per edit and protocol (``--json`` for JSON).

    python bench/transformed.py [--source FOLDER] [--limit N] [--size PX] [--work DIR] [--seed N]
                                [--model FILE.onnx [--model-size N]] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

HERE = Path(__file__).resolve().parent
EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
#: scikit-image's bundled photos (motorcycle_right is the stereo partner of motorcycle_left:
#: a near-duplicate, so it is left out)
SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "chelsea", "clock_motion", "coffee", "coins", "grass",
                  "gravel", "hubble_deep_field", "ihc", "moon", "motorcycle_left", "retina", "rocket", "page",
                  "microaneurysms", "cell")


# ---------------------------------------------------------------- sources

def generated(seed: int, size=(640, 480)) -> Image.Image:
    """A reproducible picture: a smooth random colour field, shapes, and fine noise."""
    rng = np.random.default_rng(1000 + seed)
    w, h = size
    base = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    d = ImageDraw.Draw(base)
    for _ in range(14):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        x1, y1 = x0 + int(rng.integers(20, w // 3)), y0 + int(rng.integers(20, h // 3))
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        [d.rectangle, d.ellipse][int(rng.integers(0, 2))]([x0, y0, x1, y1], fill=c)
        if rng.random() < 0.4:
            d.line([x0, y1, x1, y0], fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(2, 8)))
    a = np.asarray(base, np.float32) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def photo_files(folder: Path) -> list[Path]:
    """The picture files (by extension, :data:`EXTS`) under ``folder`` and its subfolders, sorted;
    hidden files and folders (``.ipynb_checkpoints``) left out and symlinked folders not entered,
    as ``leakscan audit`` does. Stops with one line when ``folder`` is not a folder or holds none;
    the files left out are counted on stderr."""
    if not folder.is_dir():
        raise SystemExit(f"{folder}: not a folder")
    files, hidden = [], 0
    for top, dirs, names in os.walk(folder, followlinks=False):
        hidden += sum(d.startswith(".") for d in dirs) + sum(n.startswith(".") for n in names)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(top, n) for n in names if not n.startswith(".")]
    files.sort()
    pictures = [p for p in files if p.suffix.lower() in EXTS]
    if hidden:
        print(f"{folder}: {hidden} hidden file(s) or folder(s) not read", file=sys.stderr)
    if not pictures:
        raise SystemExit(f"{folder}: no picture files in it or its subfolders (looked for {' '.join(EXTS)})")
    if len(pictures) < len(files):
        print(f"{folder}: {len(files) - len(pictures)} other file(s) not read (not {' '.join(EXTS)})", file=sys.stderr)
    return pictures


def spread(items: list, limit: int | None) -> list:
    """At most ``limit`` of ``items``, spread over the list (not the first few of one kind of source)."""
    if not limit or limit >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def folder_photos(folder: Path, limit: int | None = None) -> Iterator[tuple[str, Image.Image]]:
    """``(name, RGB image)`` of each picture file under ``folder`` (at most ``limit`` of them, chosen
    before any is decoded), one at a time: a folder of large photos is never all in memory.
    Each is decoded as ``leakscan audit`` decodes it (upright by its EXIF orientation, 16 bits
    scaled to 8, transparency on white) and named by its stem (``-2``, ``-3``... added when another
    file has it: the benches use names as file and class names). A file that does not decode is
    named on stderr and counted; none decoding stops the run with one line."""
    from leakscan.decode import DecodeError, decode_bytes, read_bytes

    files = spread(photo_files(folder), limit)
    named, names = [], set()
    for p in files:
        name, k = p.stem, 1
        while name in names:
            k += 1
            name = f"{p.stem}-{k}"
        names.add(name)
        named.append((name, p))
    bad = 0
    for name, p in named:
        try:
            img = decode_bytes(read_bytes(p))[0]
        except DecodeError as exc:
            print(f"{p}: left out ({exc})", file=sys.stderr)
            bad += 1
            continue
        yield name, img
    if bad == len(files):
        raise SystemExit(f"{folder}: none of its {len(files)} picture file(s) decodes (named above)")
    if bad:
        print(f"{folder}: {bad} of the {len(files)} picture files read left out: they do not decode (named above)",
              file=sys.stderr)


def source_photos(folder: Path | None, n_generated: int = 6,
                  limit: int | None = None) -> Iterator[tuple[str, Image.Image]]:
    """``(name, RGB image)`` of every photo used, one at a time: the folder's, or the bundled ones;
    ``limit``: at most that many, spread over them (:func:`spread`)."""
    if folder is not None:
        yield from folder_photos(folder, limit)
        return
    from sklearn.datasets import load_sample_images

    out = [(f"sklearn_{k}", Image.fromarray(a)) for k, a in enumerate(load_sample_images().images)]
    try:
        import skimage

        data = Path(skimage.__file__).parent / "data"
        for p in sorted(data.iterdir()):
            if p.stem in SKIMAGE_PHOTOS and p.suffix.lower() in EXTS:
                out.append((f"skimage_{p.stem}", Image.open(p).convert("RGB")))
    except ImportError:
        print("scikit-image is not installed: its photos and tools are left out", file=sys.stderr)
    out += [(f"generated_{k}", generated(k)) for k in range(n_generated)]
    yield from spread(out, limit)


#: A file a bench leaves in its work folder: the folders it may empty (all of it, or what it writes there).
WORK_MARK = ".leakscan-bench-work"
#: The benches' own data and default work folders.
BENCH_DATA = HERE.parent / ".bench"


def claim_work(work: Path) -> None:
    """Make ``work`` a bench's work folder (made, marked). A folder that holds anything, no mark
    and is not under the repository's ``.bench/`` (``--work .``, a folder of the user's) is never
    written into, since the benches empty what they write there: stop with one line."""
    if work.exists() and not work.is_dir():
        raise SystemExit(f"--work {work}: not a folder")
    ours = (work / WORK_MARK).is_file() or BENCH_DATA in work.resolve().parents
    if work.is_dir() and any(work.iterdir()) and not ours:
        raise SystemExit(f"--work {work}: holds files no bench made, and a bench empties what it writes in its work "
                         "folder: give a new or empty folder")
    work.mkdir(parents=True, exist_ok=True)
    (work / WORK_MARK).write_text("made by a leakscan bench script, which empties what it writes here on each run\n")


def fresh_work(work: Path) -> None:
    """Empty ``work`` for a new run (:func:`claim_work` first)."""
    claim_work(work)
    shutil.rmtree(work, ignore_errors=True)
    claim_work(work)


def check_work(work: Path, source: Path | None) -> None:
    """Stop with one line when ``work`` holds ``source`` (the benches empty what they write in
    their work folder: the photos would be deleted before they are read) or lies inside it
    (the pictures a run writes would be read as photos by the next); then :func:`claim_work`."""
    if source is not None:
        w, s = work.resolve(), source.resolve()
        if w == s or w in s.parents:
            raise SystemExit(f"--work {work} holds --source {source}, and the bench empties what it writes there: "
                             "give another --work")
        if s in w.parents:
            raise SystemExit(f"--work {work} is inside --source {source}: its pictures would be read as photos; "
                             "give another --work")
    claim_work(work)


def say_left_out(names: list[str], why: str) -> None:
    """One line on stderr, when ``names`` is not empty: how many photos were left out, why, and which."""
    if names:
        print(f"{len(names)} photo(s) left out ({why}): {', '.join(names[:5])}" + (" ..." if len(names) > 5 else ""),
              file=sys.stderr)


def is_flat(img: Image.Image) -> bool:
    """A picture of about one grey level (spread below 8 levels): not a photo to find."""
    return bool(np.asarray(img.convert("L")).std() < 8)


def no_flat(photos, source: Path | None):
    """``(k, name, image)`` of each of ``photos`` that is not flat (:func:`is_flat`; ``k``: its place
    among them all). The flat ones are counted and named on stderr at the end; none left stops
    the run with one line."""
    flat, kept = [], 0
    for k, (name, img) in enumerate(photos):
        if is_flat(img):
            flat.append(name)
            continue
        kept += 1
        yield k, name, img
    say_left_out(flat, "flat: nothing to find in them")
    if not kept:
        raise SystemExit(f"{source}: need at least 1 photo that is not flat, found 0 ({len(flat)} flat)")


def fit(img: Image.Image, side: int) -> Image.Image:
    s = side / max(img.size)
    return img if s >= 1 else img.resize((max(16, round(img.width * s)), max(16, round(img.height * s))), Image.LANCZOS)


#: Two tiles of one photo share the pixels where the photo repeats itself (scikit-image's grass
#: is a periodic texture): :func:`repeated_share` counts the whole cells of this many px (in the
#: part the two have in common, whose share they stand for) whose grey
#: pixels agree (NCC) at this or more, and have this much detail (standard deviation, grey levels;
#: a flat cell of sky is no evidence of the same pixels), at the best of the places a tile's
#: detail shows again in the photo (``matchTemplate`` at this NCC or more, a few best).
REPEAT_CELL = 16
REPEAT_NCC = 0.9
REPEAT_DETAIL = 4.0
REPEAT_PLACE_NCC = 0.3
REPEAT_PLACES = 20


def repeated_share(photo: Image.Image, box_a: tuple, box_b: tuple) -> float:
    """The share of the tile ``box_b``'s area that shows the same pixels as part of the tile
    ``box_a`` (or the other way round), the two cut from ``photo``: where they overlap, and where
    the photo repeats one's pixels within the other. Boxes are ``(x, y, side)`` in ``photo``'s
    pixels. Two tiles that share no pixels by their places may share them by content."""
    import cv2  # noqa: PLC0415 - OpenCV is a leakscan dependency

    grey = np.asarray(photo.convert("L"), np.float32)
    detail = grey - cv2.GaussianBlur(grey, (0, 0), 2.0)
    best = 0.0
    for (xa, ya, sa), (xb, yb, sb) in ((box_a, box_b), (box_b, box_a)):
        tile = grey[ya:ya + sa, xa:xa + sa]
        scores = cv2.matchTemplate(detail, detail[ya:ya + sa, xa:xa + sa], cv2.TM_CCOEFF_NORMED)
        ys, xs = np.nonzero(scores >= REPEAT_PLACE_NCC)
        places = []
        for k in np.argsort(-scores[ys, xs], kind="stable"):  # the best few, each 4 px from the others
            x, y = int(xs[k]), int(ys[k])
            if all(abs(x - u) > 4 or abs(y - v) > 4 for u, v in places):
                places.append((x, y))
            if len(places) == REPEAT_PLACES:
                break
        for x, y in places:  # the tile shows at (x, y): where it falls in the other, the same pixels?
            x0, x1, y0, y1 = max(x, xb), min(x + sa, xb + sb), max(y, yb), min(y + sa, yb + sb)
            cells = same = 0
            for cy in range(y0, y1 - REPEAT_CELL + 1, REPEAT_CELL):
                for cx in range(x0, x1 - REPEAT_CELL + 1, REPEAT_CELL):
                    cells += 1
                    u = tile[cy - y:cy - y + REPEAT_CELL, cx - x:cx - x + REPEAT_CELL].ravel()
                    v = grey[cy:cy + REPEAT_CELL, cx:cx + REPEAT_CELL].ravel()
                    if u.std() < REPEAT_DETAIL:
                        continue
                    u, v = u - u.mean(), v - v.mean()
                    same += float(u @ v) >= REPEAT_NCC * np.sqrt(float(u @ u) * float(v @ v))
            if cells:  # the share of the common part its whole cells show the same: of the other's area
                best = max(best, same / cells * (x1 - x0) * (y1 - y0) / sb ** 2)
    return best


# ---------------------------------------------------------------- tools

def arr(img):
    return np.asarray(img.convert("RGB"))


def img_of(a) -> Image.Image:
    a = np.asarray(a)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def edge_colour(img) -> tuple:
    a = arr(img)
    b = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return tuple(int(v) for v in np.median(b, axis=0))


def fill_colour(img, kind: str) -> tuple:
    return {"black": (0, 0, 0), "white": (255, 255, 255)}.get(kind) or edge_colour(img)


def either_way(rng, low: float, high: float) -> float:
    """A size drawn from [low, high), then its sign, either way alike (in that order: the draws
    of every edit made with it stay as they were)."""
    return float(rng.uniform(low, high)) * (1 if rng.random() < 0.5 else -1)


def per_channel(a, fn, cval):
    """Apply ``fn(channel, cval)`` to each channel of ``a`` (scipy/skimage take one scalar cval)."""
    return np.stack([fn(a[:, :, c].astype(np.float32), float(cval[c])) for c in range(3)], axis=2)


def rotate(img, angle, tool, expand, fill):
    c = fill_colour(img, fill)
    if tool == "pil":
        return img.rotate(angle, resample=Image.BICUBIC, expand=expand, fillcolor=c)
    if tool.startswith("ndi"):
        from scipy import ndimage

        mode = tool.partition("-")[2] or "constant"  # "ndi-mirror": reflect-101, OpenCV's BORDER_REFLECT_101
        return img_of(per_channel(arr(img), lambda ch, cv: ndimage.rotate(ch, angle, reshape=expand, order=3,
                                                                          mode=mode, cval=cv), c))
    from skimage.transform import rotate as sk_rotate

    if tool in ("ski-edge", "ski-symmetric"):  # corners: the edge pixels repeated, or mirrored
        return img_of(sk_rotate(arr(img).astype(np.float32), angle, resize=expand, mode=tool[4:], order=1,
                                preserve_range=True))
    return img_of(per_channel(arr(img), lambda ch, cv: sk_rotate(ch, angle, resize=expand, order=1, mode="constant",
                                                                 cval=cv, preserve_range=True), c))


def inscribed(w, h, angle):
    """The largest centred upright box of the original's aspect inside a w x h picture rotated by angle."""
    t = np.deg2rad(abs(angle))
    c, s = np.cos(t), np.sin(t)
    k = min(w / (w * c + h * s), h / (w * s + h * c)) * 0.97  # a margin: no fill at the edges
    cw, ch = w * k, h * k
    return (round((w - cw) / 2), round((h - ch) / 2), round((w + cw) / 2), round((h + ch) / 2))


def largest_area_box(w, h, angle):
    """Width and height of the largest-area upright rectangle inside a w x h picture turned by angle."""
    t = np.deg2rad(abs(angle))
    s, c = np.sin(t), np.cos(t)
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 2 * s * c * long_side:  # the rectangle touches the long sides only
        x = 0.5 * short_side
        return (x / s, x / c) if w >= h else (x / c, x / s)
    return (w * c - h * s) / (c * c - s * s), (h * c - w * s) / (c * c - s * s)


def crop_box(w, h, frac, where, rng):
    k = np.sqrt(frac)
    cw, ch = round(w * k), round(h * k)
    if where == "centre":
        x, y = (w - cw) // 2, (h - ch) // 2
    else:  # off-centre: towards a random corner, not touching the centre line
        x = int(rng.integers(0, max(1, (w - cw) // 4) + 1)) if rng.random() < 0.5 else w - cw - int(
            rng.integers(0, max(1, (w - cw) // 4) + 1))
        y = int(rng.integers(0, max(1, (h - ch) // 4) + 1)) if rng.random() < 0.5 else h - ch - int(
            rng.integers(0, max(1, (h - ch) // 4) + 1))
    return x, y, x + cw, y + ch


def pad_colour(img, rng):
    kind = ["black", "white", "grey", "edge", "random"][int(rng.integers(0, 5))]
    return kind, {"black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "edge": edge_colour(img),
                  "random": tuple(int(v) for v in rng.integers(0, 256, 3))}[kind]


def np_pad(img, top, bottom, left, right, colour):
    a = arr(img)
    return img_of(np.stack([np.pad(a[:, :, c], ((top, bottom), (left, right)), constant_values=colour[c])
                            for c in range(3)], axis=2))


def font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def caption(img, rng):
    out = img.copy()
    w, h = out.size
    d = ImageDraw.Draw(out)
    bar = max(12, h // 7)
    d.rectangle([0, h - bar, w, h], fill=(20, 20, 20))
    d.text((w // 20, h - bar + bar // 8), "© leakscan bench %04d" % int(rng.integers(0, 9999)), fill=(255, 255, 255),
           font=font(int(bar * 0.7)))
    return out


def watermark(img, rng):
    base = img.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    w, h = base.size
    d.text((w // 10, h // 2 - h // 10), "SAMPLE %d" % int(rng.integers(10, 99)), fill=(255, 255, 255, 110),
           font=font(max(10, h // 5)))
    return Image.alpha_composite(base, layer).convert("RGB")


def hue_pil(img, shift):
    h, s, v = img.convert("HSV").split()
    h = h.point(lambda x: (x + int(round(shift / 360 * 256))) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def hue_ski(img, shift):
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(arr(img))
    hsv[..., 0] = (hsv[..., 0] + shift / 360) % 1.0
    return img_of(hsv2rgb(hsv) * 255)


COLOUR_EDITS = ("colour cast", "sepia", "saturation")


def colour_edits(img: Image.Image, rng, ski: bool) -> list:
    """``(edit, protocol, detail, image)``: colour casts, sepia and saturation, two ways each."""
    a = arr(img).astype(np.float64)
    warm = rng.random() < 0.5
    red, blue = (float(rng.uniform(1.15, 1.35)), float(rng.uniform(0.65, 0.85)))[:: 1 if warm else -1]
    bands = [b.point(lambda x, g=g: min(255, round(x * g))) for b, g in zip(img.split(), (red, 1.0, blue))]
    out = [("colour cast", "pil per-band point", f"{'warm' if warm else 'cool'}: R x{red:.2f}, B x{blue:.2f}",
            Image.merge("RGB", bands))]
    warm = rng.random() < 0.5
    red, blue = (float(rng.uniform(1.15, 1.35)), float(rng.uniform(0.65, 0.85)))[:: 1 if warm else -1]
    lift = float(rng.uniform(10, 30))
    out.append(("colour cast", "numpy gains, shadows lifted", f"{'warm' if warm else 'cool'}: R x{red:.2f}, "
                f"B x{blue:.2f}, +{lift:.0f}", img_of(lift + a * np.array([red, 1.0, blue]) * (255 - lift) / 255)))
    dark = tuple(int(v) for v in rng.integers([30, 15, 0], [70, 45, 25]))
    light = tuple(int(v) for v in rng.integers([235, 215, 170], [256, 241, 211]))
    out.append(("sepia", "pil ImageOps.colorize", f"{dark} to {light}",
                ImageOps.colorize(img.convert("L"), dark, light)))
    sepia = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    out.append(("sepia", "numpy matrix", "", img_of(a @ sepia.T)))
    for tool in ("pil", "ski" if ski else "numpy"):
        f = float(rng.uniform(0.2, 0.5) if rng.random() < 0.5 else rng.uniform(1.6, 2.5))
        if tool == "pil":
            out.append(("saturation", "pil ImageEnhance.Color", f"x{f:.2f}", ImageEnhance.Color(img).enhance(f)))
        elif tool == "ski":
            from skimage.color import hsv2rgb, rgb2hsv

            hsv = rgb2hsv(arr(img))
            hsv[..., 1] = np.clip(hsv[..., 1] * f, 0, 1)
            out.append(("saturation", "ski HSV", f"x{f:.2f}", img_of(hsv2rgb(hsv) * 255)))
        else:
            grey = a @ np.array([0.299, 0.587, 0.114])
            out.append(("saturation", "numpy, blended with the luminance", f"x{f:.2f}",
                        img_of(grey[..., None] + f * (a - grey[..., None]))))
    return out


def gamma_value(rng):
    return float(rng.uniform(0.5, 0.7) if rng.random() < 0.5 else rng.uniform(1.5, 2.2))


# ---------------------------------------------------------------- the set

@dataclass
class Item:
    path: str
    source: int          # which photo
    family: str          # "orig": the original and its edits; "tiles<r>-<p>": one tile pair
    edit: str = "original"
    protocol: str = ""
    detail: str = ""


@dataclass
class Built:
    items: list = field(default_factory=list)
    pairs: list = field(default_factory=list)  # (edit, protocol, path a, path b, positive)


def edits_of(img: Image.Image, full: Image.Image, k: int, rng, ski: bool, later):
    """``(edit, protocol, detail, image)`` of every edit of one original (``full``: full resolution, for tiles)."""
    w, h = img.size
    fills = ("black", "white", "edge")
    out = []
    tools = ("pil", "ndi", "ski") if ski else ("pil", "ndi")
    for t, tool in enumerate(tools):
        a = either_way(rng, 4, 44)
        f = fills[(k + t) % 3]
        out.append(("rotate, same size", f"{tool}", f"{a:+.1f} deg, {f} fill", rotate(img, a, tool, False, f)))
    if ski:
        a = either_way(rng, 4, 44)
        out.append(("rotate, same size", "ski, edge pixels repeated", f"{a:+.1f} deg",
                    rotate(img, a, "ski-edge", False, "black")))
    for t, tool in enumerate(tools):
        a = either_way(rng, 4, 44)
        f = fills[(k + t + 1) % 3]
        out.append(("rotate, expanded", tool, f"{a:+.1f} deg, {f} fill", rotate(img, a, tool, True, f)))
    for tool in ("pil", "ski") if ski else ("pil", "ndi"):
        a = either_way(rng, 4, 44)
        r = rotate(img, a, tool, False, "black")
        out.append(("rotate then crop", tool, f"{a:+.1f} deg", r.crop(inscribed(w, h, a))))
    for where in ("centre", "off-centre"):
        frac = float(rng.uniform(0.5, 0.9))
        box = crop_box(w, h, frac, where, rng)
        out.append(("crop 50-90%", f"pil, {where}", f"{frac:.0%}", img.crop(box)))
        frac = float(rng.uniform(0.5, 0.9))
        x0, y0, x1, y1 = crop_box(w, h, frac, where, rng)
        a = arr(img)[y0:y1, x0:x1]
        if ski:
            from skimage.transform import resize

            out.append(("crop 50-90%", f"numpy + ski resize, {where}", f"{frac:.0%}",
                        img_of(resize(a, (h, w), anti_aliasing=True, preserve_range=True))))
        else:
            out.append(("crop 50-90%", f"numpy, {where}", f"{frac:.0%}", img_of(a)))
    kind, c = pad_colour(img, rng)
    p = float(rng.uniform(0.05, 0.25))
    canvas = Image.new("RGB", (w, h + 2 * round(p * h)), c)
    canvas.paste(img, (0, round(p * h)))
    out.append(("letterbox", "pil, top and bottom", f"{p:.0%} {kind}", canvas))
    kind, c = pad_colour(img, rng)
    p = float(rng.uniform(0.05, 0.25))
    out.append(("letterbox", "numpy, left and right", f"{p:.0%} {kind}", np_pad(img, 0, 0, round(p * w), round(p * w), c)))
    kind, c = pad_colour(img, rng)
    p = float(rng.uniform(0.05, 0.15))
    out.append(("letterbox", "numpy, frame", f"{p:.0%} {kind}",
                np_pad(img, round(p * h), round(p * h), round(p * w), round(p * w), c)))
    kind, c = pad_colour(img, rng)
    side = int(rng.integers(200, 360))
    out.append(("pad to square", "pil ImageOps.pad", f"{side}px {kind}", ImageOps.pad(img, (side, side), color=c)))
    m = tuple(int(v) for v in arr(img).reshape(-1, 3).mean(axis=0))
    s = max(w, h)
    out.append(("pad to square", "numpy, mean colour", "", np_pad(img, (s - h) // 2, s - h - (s - h) // 2,
                                                                 (s - w) // 2, s - w - (s - w) // 2, m)))
    out.append(("grayscale", "pil", "", img.convert("L")))
    if ski:
        from skimage.color import rgb2gray

        out.append(("grayscale", "ski", "", img_of(rgb2gray(arr(img)) * 255)))
    else:
        out.append(("grayscale", "numpy", "", img_of(arr(img) @ np.array([0.2125, 0.7154, 0.0721]))))
    sh = float(rng.uniform(30, 150))
    out.append(("hue shift", "pil", f"{sh:.0f} deg", hue_pil(img, sh)))
    sh = float(rng.uniform(30, 150))
    out.append(("hue shift", "ski" if ski else "pil", f"{sh:.0f} deg", hue_ski(img, sh) if ski else hue_pil(img, -sh)))
    g = gamma_value(rng)
    out.append(("gamma", "pil", f"{g:.2f}", img.point(lambda x: 255 * (x / 255) ** g)))
    g = gamma_value(rng)
    if ski:
        from skimage.exposure import adjust_gamma

        out.append(("gamma", "ski", f"{g:.2f}", img_of(adjust_gamma(arr(img), g))))
    else:
        out.append(("gamma", "numpy", f"{g:.2f}", img_of(255 * (arr(img) / 255.0) ** g)))
    out.append(("JPEG q30", "pil q30 4:2:0", "", ("jpeg", img, dict(quality=30, subsampling=2))))
    if ski:
        from skimage.transform import rescale

        small = img_of(rescale(arr(img), 0.7, channel_axis=2, anti_aliasing=True, preserve_range=True))
    else:
        small = img.resize((round(w * 0.7), round(h * 0.7)), Image.BILINEAR)
    out.append(("JPEG q30", "rescale 0.7 + q35 4:4:4", "", ("jpeg", small, dict(quality=35, subsampling=0))))
    out.append(("text", "pil caption", "", caption(img, rng)))
    out.append(("text", "pil watermark", "", watermark(img, rng)))
    f = float(rng.uniform(0.4, 0.7))
    out.append(("resize", "pil LANCZOS", f"{f:.0%}", img.resize((round(w * f), round(h * f)), Image.LANCZOS)))
    side = int(rng.integers(150, 400))
    if ski:
        from skimage.transform import resize

        out.append(("resize", "ski to square", f"{side}px",
                    img_of(resize(arr(img), (side, side), anti_aliasing=True, preserve_range=True))))
    else:
        out.append(("resize", "pil to square", f"{side}px", img.resize((side, side), Image.BICUBIC)))
    out.append(("flip", "pil mirror", "", img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    out.append(("flip", "numpy flipud", "", img_of(np.flipud(arr(img)))))
    # protocols added later come last, with their own draws: the earlier edits, and which
    # run of leakscan each lands in, stay as they were
    # a tighter centred crop, enlarged back to the original size (augmentation code's way)
    a = float(later.uniform(4, 44)) * (1 if later.random() < 0.5 else -1)
    share = float(later.uniform(0.8, 0.95))
    x0, y0, x1, y1 = inscribed(w, h, a)
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * share / 2, (y1 - y0) * share / 2
    box = tuple(round(v) for v in (cx - hw, cy - hh, cx + hw, cy + hh))
    out.append(("rotate then crop", "ndi, tighter crop resized back", f"{a:+.1f} deg, {share:.0%} of the box",
                rotate(img, a, "ndi", False, "black").crop(box).resize((w, h), Image.BICUBIC)))
    # the largest centred square inside the turned picture, whatever the picture's shape
    a = float(later.uniform(4, 44)) * (1 if later.random() < 0.5 else -1)
    t = np.deg2rad(abs(a))
    side = 0.97 * min(w, h) / (np.cos(t) + np.sin(t))
    box = tuple(round(v) for v in ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2))
    out.append(("rotate then crop", "pil, square crop", f"{a:+.1f} deg", rotate(img, a, "pil", False, "black").crop(box)))
    # the largest-area upright rectangle inside the turned picture (the well-known recipe; its
    # shape is not the picture's), with scikit-image's rotation
    a = float(later.uniform(4, 44)) * (1 if later.random() < 0.5 else -1)
    bw, bh = (0.98 * v for v in largest_area_box(w, h, a))
    box = tuple(round(v) for v in ((w - bw) / 2, (h - bh) / 2, (w + bw) / 2, (h + bh) / 2))
    out.append(("rotate then crop", "ski, largest-area rectangle", f"{a:+.1f} deg",
                rotate(img, a, "ski" if ski else "ndi", False, "black").crop(box)))
    # corners filled with the picture mirrored: OpenCV's BORDER_REFLECT_101 (albumentations'
    # default for rotations), and reflected with the edge pixel repeated
    mirrored = {"ndi-mirror": "ndi, corners mirrored (reflect-101)", "ski-symmetric": "ski, corners mirrored (symmetric)",
                "ndi-reflect": "ndi, corners mirrored (reflect)"}
    for tool in ("ndi-mirror", "ski-symmetric" if ski else "ndi-reflect"):
        a = float(later.uniform(4, 44)) * (1 if later.random() < 0.5 else -1)
        out.append(("rotate, same size", mirrored[tool], f"{a:+.1f} deg", rotate(img, a, tool, False, "black")))
    # a crop of another shape than the picture's, resized to a fixed size: torchvision's
    # RandomResizedCrop (PIL crop + bilinear resize) to a square; a numpy crop resized back to
    # the picture's size by scikit-image
    for tool in ("pil", "ski" if ski else "pil-back"):
        area = float(later.uniform(0.5, 0.9))
        ratio = float(np.exp(later.uniform(np.log(3 / 4), np.log(4 / 3))))
        cw, ch = min(w, round(np.sqrt(area * w * h * ratio))), min(h, round(np.sqrt(area * w * h / ratio)))
        x, y = int(later.integers(0, w - cw + 1)), int(later.integers(0, h - ch + 1))
        detail = f"{cw * ch / (w * h):.0%}, {cw}x{ch}"
        if tool == "pil":
            out.append(("crop of another shape, resized", "pil, RandomResizedCrop to a square", detail,
                        img.crop((x, y, x + cw, y + ch)).resize((256, 256), Image.BILINEAR)))
        elif tool == "ski":
            from skimage.transform import resize

            out.append(("crop of another shape, resized", "numpy + ski resize back", detail,
                        img_of(resize(arr(img)[y:y + ch, x:x + cw], (h, w), anti_aliasing=True) * 255)))
        else:
            out.append(("crop of another shape, resized", "pil resize back", detail,
                        img.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BICUBIC)))
    return out



def opencv_edits(img: Image.Image, k: int, rng) -> list:
    """``(edit, protocol, detail, image)``: the edits again, made as OpenCV (and the augmentation
    libraries built on it, such as albumentations) makes them, from their own draws ``rng``.
    Empty without OpenCV."""
    try:
        import cv2
    except ImportError:
        return []
    b = np.ascontiguousarray(arr(img)[:, :, ::-1])  # OpenCV's channel order
    h, w = b.shape[:2]
    rgb = (lambda a: img_of(np.ascontiguousarray(a[:, :, ::-1])) if a.ndim == 3 else img_of(a))  # noqa: E731

    def angle():
        return either_way(rng, 4, 44)

    def turned(degrees, fill, expand=False):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        W, H = w, h
        if expand:  # the canvas grown to hold the turned picture (imutils' rotate_bound)
            c, s_ = abs(m[0, 0]), abs(m[0, 1])
            W, H = int(round(h * s_ + w * c)), int(round(h * c + w * s_))
            m[0, 2] += (W - w) / 2
            m[1, 2] += (H - h) / 2
        colour = tuple(float(v) for v in fill_colour(img, fill)[::-1])
        return cv2.warpAffine(b, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=colour)

    fills = ("black", "white", "edge")
    out = []
    a, f = angle(), fills[k % 3]
    out.append(("rotate, same size", "cv2 warpAffine", f"{a:+.1f} deg, {f} fill", rgb(turned(a, f))))
    a, f = angle(), fills[(k + 1) % 3]
    out.append(("rotate, expanded", "cv2 warpAffine, canvas grown", f"{a:+.1f} deg, {f} fill",
                rgb(turned(a, f, expand=True))))
    a = angle()
    x0, y0, x1, y1 = inscribed(w, h, a)
    out.append(("rotate then crop", "cv2", f"{a:+.1f} deg", rgb(turned(a, "black")[y0:y1, x0:x1])))
    frac = float(rng.uniform(0.5, 0.9))
    x0, y0, x1, y1 = crop_box(w, h, frac, "off-centre", rng)
    out.append(("crop 50-90%", "cv2 resize back (INTER_AREA), off-centre", f"{frac:.0%}",
                rgb(cv2.resize(b[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA))))
    area = float(rng.uniform(0.5, 0.9))
    ratio = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    cw, ch = min(w, round(np.sqrt(area * w * h * ratio))), min(h, round(np.sqrt(area * w * h / ratio)))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out.append(("crop of another shape, resized", "cv2 RandomResizedCrop to 224 px", f"{cw * ch / (w * h):.0%}, {cw}x{ch}",
                rgb(cv2.resize(b[y:y + ch, x:x + cw], (224, 224), interpolation=cv2.INTER_LINEAR))))
    kind, c = pad_colour(img, rng)
    p = float(rng.uniform(0.05, 0.25))
    out.append(("letterbox", "cv2 copyMakeBorder, top and bottom", f"{p:.0%} {kind}",
                rgb(cv2.copyMakeBorder(b, round(p * h), round(p * h), 0, 0, cv2.BORDER_CONSTANT, value=c[::-1]))))
    sh = int(rng.integers(15, 76))  # OpenCV's 8-bit hue runs 0-179: 30-150 degrees
    hsv = cv2.cvtColor(b, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + sh) % 180).astype(np.uint8)
    out.append(("hue shift", "cv2 HSV", f"{2 * sh} deg", rgb(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR))))
    g = gamma_value(rng)
    out.append(("gamma", "cv2 LUT", f"{g:.2f}",
                rgb(cv2.LUT(b, np.clip(np.rint(255 * (np.arange(256) / 255) ** g), 0, 255).astype(np.uint8)))))
    q = int(rng.integers(30, 41))
    ok, buf = cv2.imencode(".jpg", b, [cv2.IMWRITE_JPEG_QUALITY, q])
    out.append(("JPEG q30", "cv2 imencode", f"q{q}", ("bytes", buf.tobytes())))
    # text straight on the picture, no bar: a line 5-8% of the height near the bottom
    text = "leakscan %04d" % int(rng.integers(0, 9999))
    colour = ((255, 255, 255), (0, 0, 0), (0, 200, 255))[int(rng.integers(0, 3))]  # white, black, a date stamp's orange
    scale = h * float(rng.uniform(0.05, 0.08)) / cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][1]
    thick = max(1, round(scale * 1.5))
    capt = b.copy()
    cv2.putText(capt, text, (w // 20, h - h // 15), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)
    out.append(("text", "cv2 putText, no bar", "", rgb(capt)))
    # a word across the middle, 60-80% of the width, blended at 30-45% (addWeighted)
    word = "SAMPLE"
    tw = cv2.getTextSize(word, cv2.FONT_HERSHEY_DUPLEX, 1.0, 2)[0][0]
    scale = w * float(rng.uniform(0.6, 0.8)) / tw
    th = cv2.getTextSize(word, cv2.FONT_HERSHEY_DUPLEX, scale, 2)[0][1]
    marked = b.copy()
    cv2.putText(marked, word, (w // 10, (h + th) // 2), cv2.FONT_HERSHEY_DUPLEX, scale, (255, 255, 255),
                max(2, round(scale * 2)), cv2.LINE_AA)
    alpha = float(rng.uniform(0.3, 0.45))
    out.append(("text", "cv2 watermark (addWeighted)", f"{alpha:.0%}", rgb(cv2.addWeighted(b, 1 - alpha, marked, alpha, 0))))
    f = float(rng.uniform(0.4, 0.7))
    out.append(("resize", "cv2 INTER_AREA", f"{f:.0%}", rgb(cv2.resize(b, (round(w * f), round(h * f)),
                                                                       interpolation=cv2.INTER_AREA))))
    out.append(("flip", "cv2 flip (both axes)", "", rgb(cv2.flip(b, -1))))
    return out

def magick_binary() -> list | None:
    """The command of a real ImageMagick (``magick``, else ``convert``), or None."""
    import subprocess

    for cmd in (["magick"], ["convert"], ["/usr/bin/convert"]):
        exe = shutil.which(cmd[0])
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if out.startswith("Version: ImageMagick"):
            return [exe]
    return None


def magick_edits(img: Image.Image, k: int, rng) -> list:
    """``(edit, protocol, detail, image)``: the edits again, made by the ImageMagick command line
    (``magick``/``convert``, as shell scripts and web back-ends make them), from their own
    draws ``rng``. Empty without a real ImageMagick."""
    import subprocess
    import tempfile

    exe = magick_binary()
    if exe is None:
        return []
    w, h = img.size

    def run(*args, ext="png"):  # None, said in one line, when ImageMagick fails: the edit is left out
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "in.png", Path(tmp) / f"out.{ext}"
            img.save(src)
            try:
                subprocess.run([*exe, str(src), *map(str, args), str(dst)], check=True, capture_output=True,
                               timeout=120)
            except (OSError, subprocess.SubprocessError) as exc:
                said = (getattr(exc, "stderr", None) or b"").decode(errors="replace").strip().splitlines()
                print(f"photo {k}: ImageMagick {' '.join(map(str, args))} failed, edit left out: "
                      f"{said[0] if said else exc}", file=sys.stderr)
                return None
            if ext == "jpg":
                return ("bytes", dst.read_bytes())
            with Image.open(dst) as out:
                return out.convert("RGB")

    def angle():
        return either_way(rng, 4, 44)

    fills = ("black", "white", "edge")
    out = []
    a, f = angle(), fills[k % 3]
    vp = {"black": "black", "white": "white", "edge": "edge"}[f]
    out.append(("rotate, same size", "magick -distort SRT", f"{a:+.1f} deg, {f} fill",
                run("-virtual-pixel", vp, "-distort", "SRT", f"{a:.2f}")))
    a, f = angle(), ("white", "black")[k % 2]
    out.append(("rotate, expanded", "magick -rotate", f"{a:+.1f} deg, {f} fill",
                run("-background", f, "-rotate", f"{a:.2f}")))
    a = angle()
    x0, y0, x1, y1 = inscribed(w, h, a)
    out.append(("rotate then crop", "magick -distort SRT -crop", f"{a:+.1f} deg",
                run("-distort", "SRT", f"{a:.2f}", "-crop", f"{x1 - x0}x{y1 - y0}+{x0}+{y0}", "+repage")))
    frac = float(rng.uniform(0.5, 0.9))
    side = round(100 * np.sqrt(frac))
    out.append(("crop 50-90%", "magick -gravity center -crop N%", f"{side * side / 100:.0f}%",
                run("-gravity", "center", "-crop", f"{side}%x{side}%+0+0", "+repage")))
    frac = float(rng.uniform(0.5, 0.9))
    x0, y0, x1, y1 = crop_box(w, h, frac, "off-centre", rng)
    out.append(("crop 50-90%", "magick -crop, -resize back", f"{frac:.0%}",
                run("-crop", f"{x1 - x0}x{y1 - y0}+{x0}+{y0}", "+repage", "-resize", f"{w}x{h}!")))
    kind, c = pad_colour(img, rng)
    p = float(rng.uniform(0.05, 0.25))
    hexc = "#%02x%02x%02x" % tuple(int(v) for v in c)
    out.append(("letterbox", "magick -border (a frame)", f"{p:.0%} {kind}",
                run("-bordercolor", hexc, "-border", f"{round(p * w)}x{round(p * h)}")))
    kind, c = pad_colour(img, rng)
    hexc = "#%02x%02x%02x" % tuple(int(v) for v in c)
    s = max(w, h)
    out.append(("pad to square", "magick -gravity center -extent", kind,
                run("-background", hexc, "-gravity", "center", "-extent", f"{s}x{s}")))
    f = float(rng.uniform(0.4, 0.7))
    out.append(("resize", "magick -resize", f"{f:.0%}", run("-resize", f"{f * 100:.0f}%")))
    f = float(rng.uniform(0.3, 0.6))
    out.append(("resize", "magick -sample (nearest)", f"{f:.0%}", run("-sample", f"{f * 100:.0f}%")))
    out.append(("grayscale", "magick -colorspace Gray", "", run("-colorspace", "Gray")))
    sh = either_way(rng, 30, 150)  # -modulate's hue: 200 is a full turn
    out.append(("hue shift", "magick -modulate", f"{sh:+.0f} deg", run("-modulate", f"100,100,{100 + sh / 1.8:.0f}")))
    g = gamma_value(rng)
    out.append(("gamma", "magick -gamma", f"{g:.2f}", run("-gamma", f"{1 / g:.3f}")))
    out.append(("sepia", "magick -sepia-tone", "80%", run("-sepia-tone", "80%")))
    sat = float(rng.choice([rng.uniform(20, 50), rng.uniform(160, 250)]))
    out.append(("saturation", "magick -modulate", f"{sat:.0f}%", run("-modulate", f"100,{sat:.0f},100")))
    bc = (int(rng.integers(-20, 21)), int(rng.integers(10, 31)))
    out.append(("brightness/contrast", "magick -brightness-contrast", f"{bc[0]}x{bc[1]}",
                run("-brightness-contrast", f"{bc[0]}x{bc[1]}")))
    out.append(("auto level", "magick -normalize", "", run("-normalize")))
    q = int(rng.integers(25, 41))
    out.append(("JPEG q30", "magick -quality", f"q{q}", run("-quality", str(q), ext="jpg")))
    r = float(rng.uniform(1.0, 2.5))
    out.append(("blur", "magick -blur", f"sigma {r:.1f}", run("-blur", f"0x{r:.1f}")))
    out.append(("sharpen", "magick -unsharp", "", run("-unsharp", "0x2+1.5+0")))
    n = float(rng.uniform(0.5, 1.5))
    out.append(("noise", "magick +noise Gaussian", f"attenuate {n:.1f}", run("-attenuate", f"{n:.1f}", "+noise",
                                                                            "Gaussian")))
    out.append(("flip", "magick -flop", "", run("-flop")))
    out.append(("flip", "magick -transpose", "", run("-transpose")))
    pt = max(10, round(h * float(rng.uniform(0.05, 0.08))))
    out.append(("text", "magick -annotate on an undercolour", f"{pt} pt",
                run("-gravity", "south", "-fill", "white", "-undercolor", "#00000080", "-pointsize", pt,
                    "-annotate", "+0+4", "leakscan %04d" % int(rng.integers(0, 9999)))))
    pt = max(12, round(h * float(rng.uniform(0.12, 0.2))))
    out.append(("text", "magick watermark (-annotate, 40% white)", f"{pt} pt",
                run("-gravity", "center", "-fill", "rgba(255,255,255,0.4)", "-pointsize", pt, "-annotate", "0",
                    "SAMPLE")))
    d = [float(v) for v in rng.uniform(0.0, 0.08, 4)]
    pts = (f"0,0 {d[0] * w:.1f},{d[1] * h:.1f}  {w - 1},0 {w - 1 - d[2] * w:.1f},0  "
           f"{w - 1},{h - 1} {w - 1},{h - 1 - d[3] * h:.1f}  0,{h - 1} 0,{h - 1}")
    out.append(("perspective", "magick -distort Perspective", "corners up to 8%",
                run("-virtual-pixel", "black", "-distort", "Perspective", pts)))
    return [edit for edit in out if edit[3] is not None]


def tile_pairs(full: Image.Image, side: int, rng):
    """``(overlap, protocol, tile a, tile b)``: two crops of ``full`` sharing ``overlap`` of their area."""
    W, H = full.size
    out = []
    for r in (0.3, 0.5, 0.7):
        # side by side: tiles 0.5 W x 0.75 H, shifted by (1 - r) of their width
        tw, th = round(0.5 * W), round(0.75 * H)
        dx = round((1 - r) * tw)
        x0 = int(rng.integers(0, W - tw - dx + 1))
        y0 = int(rng.integers(0, H - th + 1))
        a, b = full.crop((x0, y0, x0 + tw, y0 + th)), full.crop((x0 + dx, y0, x0 + dx + tw, y0 + th))
        out.append((r, "pil, side by side", fit(a, side), fit(b, side)))
        # diagonal: tiles 0.5 W x 0.5 H, shifted by d of each side, (1 - d)^2 = r
        tw, th = round(0.5 * W), round(0.5 * H)
        d = 1 - np.sqrt(r)
        dx, dy = round(d * tw), round(d * th)
        x0 = int(rng.integers(0, W - tw - dx + 1))
        y0 = int(rng.integers(0, H - th + 1 - dy))
        A = arr(full)
        a, b = A[y0:y0 + th, x0:x0 + tw], A[y0 + dy:y0 + dy + th, x0 + dx:x0 + dx + tw]
        out.append((r, "numpy, diagonal", fit(img_of(a), side), fit(img_of(b), side)))
    return out


def save(im, path: Path):
    if isinstance(im, tuple) and im[0] == "bytes":  # a file encoded by the tool itself
        path.write_bytes(im[1])
    elif isinstance(im, tuple):  # ("jpeg", image, save options)
        im[1].convert("RGB").save(path, "JPEG", **im[2])
    else:
        im.save(path, "JPEG", quality=90)


def build(work: Path, source: Path | None, limit: int | None, side: int, seed: int = 0) -> Built:
    rng = np.random.default_rng(seed)
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    try:
        import skimage  # noqa: F401

        ski = True
    except ImportError:
        ski = False
    out = Built()
    for k, name, full in no_flat(source_photos(source, limit=limit), source):
        img = fit(full, side)
        stem = f"p{k:03d}"
        img.save(data / f"{stem}.jpg", quality=90)
        out.items.append(Item(f"{stem}.jpg", k, "orig"))
        # the protocols added later draw from their own stream: the earlier ones keep their draws
        later = np.random.default_rng([seed, k, 1])
        # OpenCV's protocols: a third stream, so the earlier edits keep their draws
        edits = edits_of(img, full, k, rng, ski, later) + opencv_edits(img, k, np.random.default_rng([seed, k, 2]))
        edits += colour_edits(img, np.random.default_rng([seed, k, 3]), ski)  # a fourth stream
        edits += magick_edits(img, k, np.random.default_rng([seed, k, 4]))  # ImageMagick's: a fifth, added last
        for e, (edit, protocol, detail, im) in enumerate(edits):
            path = f"{stem}_e{e:02d}.jpg"
            save(im, data / path)
            out.items.append(Item(path, k, "orig", edit, protocol, detail))
            out.pairs.append((edit, protocol, f"{stem}.jpg", path, True))
        for t, (r, protocol, a, b) in enumerate(tile_pairs(full, round(side * 0.8), rng)):
            fam = f"tiles{t}"
            pa, pb = f"{stem}_t{t}a.jpg", f"{stem}_t{t}b.jpg"
            a.save(data / pa, quality=90)
            b.save(data / pb, quality=90)
            edit = f"tiles {round(r * 100)}% overlap"
            out.items += [Item(pa, k, fam, edit, protocol), Item(pb, k, fam, edit, protocol)]
            out.pairs.append((edit, protocol, pa, pb, r >= 0.5))
    return out


# ---------------------------------------------------------------- scoring

POSSIBLE = {"possible", "maybe", "review", "candidate"}


def is_duplicate(rec: dict, min_confidence: float | None) -> bool:
    """A reported pair counts as a duplicate unless its record says it is only worth a look."""
    for key in ("decision", "level", "verdict"):
        if str(rec.get(key, "")).lower() in POSSIBLE:
            return False
    if min_confidence is not None and rec.get("confidence") not in (None, ""):
        return float(rec["confidence"]) >= min_confidence
    return True


def relation(ia: Item, ib: Item, tile_truth: dict) -> str:
    """``true``, ``false`` or ``unscored`` for a reported pair of two items."""
    if ia.source != ib.source:
        return "false"
    if ia.family == ib.family == "orig":
        return "true"
    if ia.family == ib.family:
        return "true" if tile_truth[frozenset((ia.path, ib.path))] else "false"
    return "unscored"


def score(built: Built, found: dict) -> dict:
    """``found``: frozenset(path a, path b) -> is reported as a duplicate (True) or only possible (False)."""
    items = {it.path: it for it in built.items}
    tile_truth = {frozenset((a, b)): pos for e, _, a, b, pos in built.pairs if e.startswith("tiles")}
    rows: dict = {}
    for edit, protocol, a, b, positive in built.pairs:
        r = rows.setdefault((edit, protocol), {"n": 0, "dup": 0, "possible": 0, "positive": positive})
        r["n"] += 1
        key = frozenset((a, b))
        if key in found:
            r["dup" if found[key] else "possible"] += 1
    counts = {"true": 0, "false": 0, "unscored": 0}
    false_examples = []
    for key, dup in found.items():
        if not dup:
            continue
        a, b = sorted(key)
        rel = relation(items[a], items[b], tile_truth)
        counts[rel] += 1
        if rel == "false" and len(false_examples) < 8:
            false_examples.append((a, b))
    flagged = counts["true"] + counts["false"]
    pos = [r for r in rows.values() if r["positive"]]
    return {"rows": {f"{e} | {p}": r for (e, p), r in rows.items()},
            "precision": round(counts["true"] / flagged, 4) if flagged else None,
            "flagged_true": counts["true"], "flagged_false": counts["false"], "unscored": counts["unscored"],
            "recall_all_edits": round(sum(r["dup"] for r in pos) / max(1, sum(r["n"] for r in pos)), 4),
            "false_examples": false_examples}


def rounds(built: Built, per_round: int, grouping: int = 0) -> list[list[str]]:
    """The images of each leakscan run: every original, plus the edits of a few rows.

    leakscan's ratio test compares a pair with each image's 10th nearest neighbour, so 40
    copies of one original in one folder would hide one another; real datasets rarely hold
    that many. Each run therefore holds every original (each other's distractors) and at most
    ``per_round`` edits of each. ``grouping`` > 0 deals the rows into runs in another, seeded
    order: which edits share an audit (and so the dataset the decision is calibrated on) should
    not change what is found.
    """
    keys = list(dict.fromkeys((e, p) for e, p, *_ in built.pairs))
    # rows added later (OpenCV's, then the colour casts) in runs of their own: the earlier rows
    # keep their runs, and so their figures
    later = {"cv2": [k for k in keys if k[1].startswith("cv2")],
             "colour": [k for k in keys if k[0] in COLOUR_EDITS and not k[1].startswith("magick")],
             "magick": [k for k in keys if k[1].startswith("magick")]}
    batches = [[k for k in keys if not any(k in v for v in later.values())], *later.values()]
    if grouping:
        order = np.random.default_rng(grouping).permutation(len(keys))
        batches = [[keys[q] for q in order]]
    which, n = {}, 0
    for batch in batches:
        runs = max(1, -(-len(batch) // per_round)) if batch is batches[0] else -(-len(batch) // per_round)
        which.update({k: n + q % runs for q, k in enumerate(batch)})
        n += runs
    out = [[it.path for it in built.items if it.edit == "original"] for _ in range(n)]
    for it in built.items:
        if it.edit != "original":
            out[which[(it.edit, it.protocol)]].append(it.path)
    return out


def leakscan_found(data: Path, work: Path, groups: list[list[str]], args) -> tuple[dict, float, dict | None]:
    """Pairs reported over all runs: frozenset(a, b) -> reported as a duplicate; with
    ``--model``, also the pairs the model alone puts at ``--model-min-cosine`` or more."""
    import leakscan

    kw = {}
    if args.model:
        kw["model"] = args.model
        if args.model_size:
            kw["model_size"] = args.model_size
    found: dict = {}
    model_found: dict | None = {} if args.model else None
    wall = 0.0
    for r, paths in enumerate(groups):
        folder = work / "runs" / f"r{r:02d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for p in paths:
            try:
                os.link(data / p, folder / p)
            except OSError:
                shutil.copyfile(data / p, folder / p)
        t = time.perf_counter()
        result = leakscan.audit(folder, cache=False, jobs=args.jobs, **kw)
        wall += time.perf_counter() - t
        possible = result.pair_records("possible") if hasattr(result, "possible") else []
        records = result.pair_records() + [dict(r, decision="possible") for r in possible]
        same = same_pixels(records)
        for rec in records:
            dup = is_duplicate(rec, args.min_confidence)
            for a in same.get(rec["a"], [rec["a"]]):
                for b in same.get(rec["b"], [rec["b"]]):
                    if a != b:
                        key = frozenset((a, b))
                        found[key] = found.get(key, False) or dup
        emb = getattr(result.features, "model_embedding", None)
        if model_found is not None and emb is not None:
            names = [Path(p).name for p in result.manifest.paths]
            sim = emb @ emb.T
            for x, y in zip(*np.nonzero(np.triu(sim >= args.model_min_cosine, 1))):
                model_found[frozenset((names[x], names[y]))] = True
    return found, wall, model_found


def same_pixels(records: list[dict]) -> dict:
    """Path -> every path with the same pixels (itself included), from the ``exact`` pairs.

    leakscan lists identical pictures as a star of exact pairs and pairs one of them with
    the rest (README, *Outputs*), so a pair with one picture is a pair with each: an edit
    that makes the same file another edit made (ImageMagick's ``-flop``, Pillow's mirror) is
    found when its twin is."""
    parent: dict = {}

    def root(x):
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for rec in records:
        if rec.get("kind") == "exact" and is_duplicate(rec, None):
            ra, rb = root(rec["a"]), root(rec["b"])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    members: dict = {}
    for x in list(parent):
        members.setdefault(root(x), set()).add(x)
    for r, ms in members.items():
        ms.add(r)
    return {x: sorted(ms) for ms in members.values() for x in ms}


def phash_found(data: Path, paths: list[str], radius: int = 8) -> dict:
    import faiss
    import imagehash

    H = np.stack([np.packbits(imagehash.phash(Image.open(data / p)).hash.flatten()) for p in paths])
    index = faiss.IndexBinaryFlat(64)
    index.add(H)
    lims, _, ids = index.range_search(H, radius + 1)
    return {frozenset((paths[q], paths[j])): True for q in range(len(paths)) for j in ids[lims[q]:lims[q + 1]]
            if j > q}


def markdown(built: Built, res: dict, ph: dict, wall: float, n_orig: int, n_runs: int, mo: dict | None = None,
             mo_name: str = "") -> str:
    held = ("one audit of every image" if n_runs == 1 else
             f"{n_runs} runs of leakscan audit (defaults; every run holds every original and at most a few edits of each)")
    lines = [f"{n_orig} originals, {len(built.items)} images in {held}, {wall:.1f} s in all. "
             "Recall: the edit's pair reported as a duplicate (`possible` pairs in brackets when the decision "
             "reports them). Tiles at 30% must *not* be duplicates: their row counts how many were.", "",
             "| edit | protocol | pairs | leakscan recall | pHash <= 8 recall |" + (f" {mo_name} |" if mo else ""),
             "| --- | --- | ---: | ---: | ---: |" + (" ---: |" if mo else "")]
    for key, r in res["rows"].items():
        edit, protocol = key.split(" | ")
        p = ph["rows"][key]
        m = mo["rows"][key] if mo else None
        extra = f" (+{r['possible']} possible)" if r["possible"] else ""
        if r["positive"]:
            lines.append(f"| {edit} | {protocol} | {r['n']} | {r['dup'] / r['n']:.2f}{extra} | {p['dup'] / p['n']:.2f} |"
                         + (f" {m['dup'] / m['n']:.2f} |" if m else ""))
        else:
            lines.append(f"| {edit} (must not be found) | {protocol} | {r['n']} | {r['dup']} reported{extra} | "
                         f"{p['dup']} reported |" + (f" {m['dup']} reported |" if m else ""))
    lines += ["", f"Overall, leakscan: recall over every edit {res['recall_all_edits']:.3f}; precision "
              f"{res['precision']} ({res['flagged_true']} true, {res['flagged_false']} false reported pairs; "
              f"{res['unscored']} unscored pairs within one photo). pHash <= 8: recall {ph['recall_all_edits']:.3f}, "
              f"precision {ph['precision']} ({ph['flagged_true']} true, {ph['flagged_false']} false)."]
    if mo:
        lines.append(f"{mo_name}: recall {mo['recall_all_edits']:.3f}, precision {mo['precision']} "
                     f"({mo['flagged_true']} true, {mo['flagged_false']} false).")
    if res["false_examples"]:
        lines.append("False pairs (first few): " + "; ".join(f"{a} ~ {b}" for a, b in res["false_examples"]) + ".")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=None, help="a folder of photos (default: the bundled ones)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many photos (spread over the sources)")
    ap.add_argument("--size", type=int, default=320, help="longer side of each original, px")
    ap.add_argument("--work", type=Path, default=HERE.parent / ".bench" / "transformed")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--model", default=None, help="also pass this ONNX model to leakscan.audit")
    ap.add_argument("--model-size", default=None)
    ap.add_argument("--model-min-cosine", type=float, default=0.75,
                    help="with --model: the model-alone column counts pairs at this cosine or more")
    ap.add_argument("--min-confidence", type=float, default=None,
                    help="count a pair as a duplicate only at this confidence (when the pairs carry one)")
    ap.add_argument("--per-round", type=int, default=4,
                    help="edits of one original per leakscan run (every run holds every original)")
    ap.add_argument("--seed", type=int, default=0, help="another seed draws other parameters for every edit")
    ap.add_argument("--grouping", type=int, default=0,
                    help="deal the edits into the runs in another seeded order (0: each row keeps its run)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    ap.add_argument("--misses", action="store_true",
                    help="also list each positive pair not reported as a duplicate (edit | protocol | a | b | possible/none), "
                         "and the first pairs of two photos reported")
    a = ap.parse_args()
    check_work(a.work, a.source)
    t = time.perf_counter()
    built = build(a.work, a.source, a.limit, a.size, seed=a.seed)
    t_build = time.perf_counter() - t
    data = a.work / "data"
    groups = rounds(built, a.per_round, a.grouping)
    found, wall, model_found = leakscan_found(data, a.work, groups, a)
    res = score(built, found)
    ph = score(built, phash_found(data, [it.path for it in built.items]))
    mo = None if model_found is None else score(built, model_found)
    n_orig = sum(it.family == "orig" and it.edit == "original" for it in built.items)
    if a.json:
        print(json.dumps({"originals": n_orig, "images": len(built.items), "build_s": round(t_build, 1),
                          "leakscan_s": round(wall, 1), "leakscan": res, "phash": ph, "model_alone": mo},
                         indent=1, default=str))
    else:
        print(markdown(built, res, ph, wall, n_orig, len(groups), mo,
                       f"{Path(a.model).name} alone, cosine >= {a.model_min_cosine}" if a.model else ""))
    if a.misses:
        print("\nMissed (edit | protocol | original | copy | reported as):")
        for edit, protocol, x, y, positive in built.pairs:
            key = frozenset((x, y))
            if positive and not found.get(key):
                print(" | ".join((edit, protocol, x, y, "possible" if key in found else "none")))
        if res["false_examples"]:
            print("\nReported pairs of two photos (the first 8):")
            for x, y in res["false_examples"]:
                print(f"{x} | {y}")


if __name__ == "__main__":
    main()
