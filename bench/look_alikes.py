"""Look-alike benchmark: folders of pictures that all look alike, with a few planted copies.

Real datasets are often made of pictures on one template: scanned forms, product shots on
white, handwriting crops, microscopy fields, screenshots of one app. Two *different* pictures
of such a folder share most of their pixels, so they are the hardest negatives there are;
copies among them must still be found. Each kind is generated with Pillow and numpy only,
from ``--seed``:

===========  =================================================================================
kind         pictures
===========  =================================================================================
documents    form pages, 600x800 grayscale PNG: one header bar, boxes and rules on every page,
             the same field names, different values and body text (DejaVu Sans if present)
products     product shots, 256-512 px JPEG: one centred object (bottle, box, jar or ball;
             random colour, label and cap) with a soft shadow on white
handwriting  handwritten-word crops, 96x64 grayscale PNG: random pen strokes on paper texture
             with faint ruling
cells        microscopy fields, 256 px RGB PNG: stained cells (membrane, nucleus) on a
             textured background
screenshots  one app's window, 480x320 RGB PNG: the same chrome, sidebar and toolbar, different
             text, table and chart
===========  =================================================================================

A quarter of the pictures are in ``test``, the rest in ``train`` (two classes). ``--copies``
train pictures get a copy in ``test`` (``copy_<name>``), each made one way, in turn: JPEG
re-encode (quality 40-90), rescale (0.5-0.9), shift-crop (2-8% cut), contrast/gamma,
rotation by 1-4 degrees with the frame expanded and without, blur. ``truth.csv`` lists the
planted pairs. Each folder is audited with the defaults (``leakscan.audit``, one process);
the table gives, per kind and seed: images, planted copies found as duplicates / as possible
pairs / missed, false duplicates (pairs of ``pairs.csv`` that were not planted), false
possible pairs, the warnings and the calibration's held-out AUC. ``--pictures DIR`` saves
a side-by-side PNG of every false duplicate and missed copy.

``--scale F`` draws screenshots and documents F times larger: every coordinate, font size and
line width scaled, the same layout at a higher resolution (``--scale 4``: 1920x1280 screens;
``--scale 2.75``: 1650x2200 pages, a letter page at 200 dpi). The copies' edits stay the same
relative to the picture (the blur radius is scaled too).

    python bench/look_alikes.py KIND OUT_DIR [--seed S ...] [--n N] [--copies C] [--scale F] [--pictures DIR]
    python bench/look_alikes.py --all OUT_DIR [--seed S ...]

One seed writes OUT_DIR/KIND/{data,report}; several write OUT_DIR/KIND/sS/{data,report}.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

WORDS = ("alpha bravo river stone paper light north account total amount invoice order number date "
         "client address city street phone email item price unit tax balance due notes signed "
         "approved review sample blue green table chart value level status ready pending closed "
         "open user admin report weekly monthly export import search filter settings profile").split()


def font(size: int, mono: bool = False):
    name = "DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf"
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF"):
        try:
            return ImageFont.truetype(f"{folder}/{name}", size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def words(rng, n: int) -> str:
    return " ".join(rng.choice(WORDS, n))


def smooth_noise(rng, shape, scale: int) -> np.ndarray:
    """Noise in [0, 1] smooth over about ``scale`` pixels (coarse noise upsampled bicubically)."""
    h, w = shape
    coarse = rng.random((max(2, h // scale), max(2, w // scale)))
    up = Image.fromarray(np.uint8(coarse * 255)).resize((w, h), Image.BICUBIC)
    return np.asarray(up, np.float32) / 255


# -- the kinds -------------------------------------------------------------------------------

def scaled(scale: float) -> tuple:
    """``(at, pt)`` for drawing ``scale`` times larger: ``at(*coordinates)`` in base units to
    pixels, ``pt(size, mono)`` a font of that base size."""
    def at(*v):
        return tuple(c * scale for c in v)

    def pt(size: int, mono: bool = False):
        return font(round(size * scale), mono)

    return at, pt


def documents(rng, k: int, scale: float = 1) -> Image.Image:
    W, H = 600, 800  # the page in base units; drawn ``scale`` times larger
    at, pt = scaled(scale)
    w, h = round(W * scale), round(H * scale)
    img = Image.new("L", (w, h), 250)
    d = ImageDraw.Draw(img)
    d.rectangle(at(30, 30, W - 30, 90), fill=60)
    d.text(at(50, 45), "ACME INSURANCE - CLAIM FORM", fill=250, font=pt(24))
    d.rectangle(at(W - 150, 110, W - 40, 170), outline=0, width=round(2 * scale))
    d.text(at(W - 140, 120), "Claim no.", fill=0, font=pt(12))
    d.text(at(W - 140, 140), f"{rng.integers(10000, 99999)}", fill=0, font=pt(18, mono=True))
    y = 110
    for field in ("Name", "Address", "City", "Date", "Policy"):
        d.text(at(40, y), field + ":", fill=0, font=pt(14))
        d.line([at(130, y + 17), at(W - 170, y + 17)], fill=120, width=round(1 * scale))
        d.text(at(135, y - 1), words(rng, int(rng.integers(1, 4))).title(), fill=20, font=pt(15))
        y += 30
    d.rectangle(at(30, 270, W - 30, 520), outline=0, width=round(2 * scale))
    d.text(at(40, 275), "Description of the incident", fill=0, font=pt(14))
    for line in range(9):
        text = words(rng, int(rng.integers(5, 10)))
        d.text(at(45, 300 + 24 * line), text, fill=30, font=pt(15))
    d.rectangle(at(30, 540, W - 30, 700), outline=0, width=round(2 * scale))
    for r in range(1, 5):
        d.line([at(30, 540 + 32 * r), at(W - 30, 540 + 32 * r)], fill=0, width=round(1 * scale))
    for c in (250, 400):
        d.line([at(c, 540), at(c, 700)], fill=0, width=round(1 * scale))
    d.text(at(40, 548), "Item", fill=0, font=pt(13))
    d.text(at(260, 548), "Qty", fill=0, font=pt(13))
    d.text(at(410, 548), "Amount", fill=0, font=pt(13))
    for r in range(1, 5):
        if rng.random() < 0.8:
            d.text(at(40, 548 + 32 * r), words(rng, 2), fill=30, font=pt(14))
            d.text(at(260, 548 + 32 * r), str(rng.integers(1, 20)), fill=30, font=pt(14))
            d.text(at(410, 548 + 32 * r), f"{rng.uniform(5, 900):.2f}", fill=30, font=pt(14))
    d.text(at(40, 730), "Signature:", fill=0, font=pt(14))
    pts = [at(140 + 12 * i, 745 + rng.integers(-8, 8)) for i in range(int(rng.integers(6, 14)))]
    d.line(pts, fill=20, width=round(2 * scale))
    a = np.asarray(img, np.float32) + rng.normal(0, 3, (h, w))  # scanner noise
    return Image.fromarray(np.uint8(np.clip(a, 0, 255)), "L")


def products(rng, k: int) -> Image.Image:
    side = int(rng.integers(256, 513))
    img = Image.new("RGB", (side, side), (255, 255, 255))
    cx, cy = side / 2 + rng.normal(0, side * 0.02), side / 2 + rng.normal(0, side * 0.02)
    bw, bh = side * rng.uniform(0.22, 0.4), side * rng.uniform(0.3, 0.6)
    shape = rng.choice(["bottle", "box", "jar", "ball"])
    if shape == "ball":
        bh = bw
    shadow = Image.new("L", (side, side), 0)
    ImageDraw.Draw(shadow).ellipse([cx - bw * 0.7, cy + bh / 2 - side * 0.03, cx + bw * 0.7, cy + bh / 2 + side * 0.04],
                                   fill=110)
    shadow = shadow.filter(ImageFilter.GaussianBlur(side * 0.03))
    img.paste((90, 90, 90), mask=shadow)
    d = ImageDraw.Draw(img)
    colour = tuple(int(c) for c in rng.integers(20, 230, 3))
    box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
    if shape == "ball":
        d.ellipse(box, fill=colour)
    elif shape == "box":
        d.rounded_rectangle(box, radius=side * 0.01, fill=colour)
    else:
        d.rounded_rectangle(box, radius=bw * (0.4 if shape == "bottle" else 0.15), fill=colour)
        cap = tuple(int(c) for c in rng.integers(0, 255, 3))
        cw = bw * (0.35 if shape == "bottle" else 0.9)
        d.rectangle([cx - cw / 2, cy - bh / 2 - side * 0.06, cx + cw / 2, cy - bh / 2 + 2], fill=cap)
    if shape != "ball":  # a label with a brand word and stripes
        ly0, ly1 = cy - bh * rng.uniform(0.05, 0.2), cy + bh * rng.uniform(0.1, 0.3)
        label = tuple(int(c) for c in rng.integers(150, 256, 3))
        d.rectangle([cx - bw / 2 + 3, ly0, cx + bw / 2 - 3, ly1], fill=label)
        d.text((cx - bw / 2 + 6, ly0 + 3), str(rng.choice(WORDS)).upper(), fill=(0, 0, 0),
               font=font(max(8, int(bw / 7))))
        for s in range(int(rng.integers(0, 4))):
            y = ly1 - 4 - 5 * s
            d.line([(cx - bw / 2 + 6, y), (cx + bw / 2 - 6, y)], fill=colour, width=2)
    # a highlight down the left side, then the camera's blur and noise
    a = np.asarray(img, np.float32)
    yy, xx = np.mgrid[0:side, 0:side]
    inside = (np.abs(xx - cx) < bw / 2) & (np.abs(yy - cy) < bh / 2) & (a.mean(axis=2) < 250)
    a += (inside * 40 * np.exp(-((xx - (cx - bw * 0.25)) / (bw * 0.08)) ** 2))[..., None]
    a += rng.normal(0, 2, a.shape)
    return Image.fromarray(np.uint8(np.clip(a, 0, 255))).filter(ImageFilter.GaussianBlur(0.7))


def handwriting(rng, k: int) -> Image.Image:
    w, h = 96, 64
    scale = 4  # strokes drawn 4x larger, then scaled down: smooth pen lines
    paper = 225 + 20 * smooth_noise(rng, (h * scale, w * scale), 24) + rng.normal(0, 4, (h * scale, w * scale))
    for y in (18, 46):  # faint ruling
        paper[y * scale:y * scale + 3] -= 25
    img = Image.fromarray(np.uint8(np.clip(paper, 0, 255)), "L")
    d = ImageDraw.Draw(img)
    ink = int(rng.integers(10, 70))
    x = rng.uniform(6, 14) * scale
    for _ in range(int(rng.integers(3, 7))):  # letters: one pen stroke each
        pts, px, py = [], x, rng.uniform(24, 40) * scale
        for t in range(int(rng.integers(4, 9))):
            px += rng.normal(2.0, 2.5) * scale
            py += rng.normal(0, 5) * scale
            py = float(np.clip(py, 12 * scale, 52 * scale))
            pts.append((px, py))
        d.line([(x, pts[0][1])] + pts, fill=ink, width=int(rng.integers(5, 9)), joint="curve")
        x = max(x + rng.uniform(8, 14) * scale, px)
        if x > (w - 10) * scale:
            break
    return img.resize((w, h), Image.LANCZOS)


def cells(rng, k: int) -> Image.Image:
    side = 256
    bg = smooth_noise(rng, (side, side), 32) * 0.5 + smooth_noise(rng, (side, side), 6) * 0.5
    pink, purple = np.array([235, 200, 220.0]), np.array([110, 50, 150.0])
    a = np.ones((side, side, 3)) * pink - (bg[..., None] * 30)
    yy, xx = np.mgrid[0:side, 0:side]
    for _ in range(int(rng.integers(12, 30))):
        cx, cy = rng.uniform(0, side, 2)
        r1, r2 = rng.uniform(8, 20), rng.uniform(8, 20)
        th = rng.uniform(0, np.pi)
        u = ((xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)) / r1
        v = (-(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)) / r2
        rr = u ** 2 + v ** 2
        cell = np.clip(1.2 - rr, 0, 1) ** 0.5
        a = a * (1 - 0.25 * cell[..., None]) + 0.25 * cell[..., None] * np.array([200, 120, 180.0])
        nuc = np.clip(1 - rr * rng.uniform(3, 6), 0, 1) ** 0.3
        a = a * (1 - 0.8 * nuc[..., None]) + 0.8 * nuc[..., None] * purple
    a += rng.normal(0, 5, a.shape)
    return Image.fromarray(np.uint8(np.clip(a, 0, 255))).filter(ImageFilter.GaussianBlur(0.8))


def screenshots(rng, k: int, scale: float = 1) -> Image.Image:
    W, H = 480, 320  # the window in base units; drawn ``scale`` times larger
    at, pt = scaled(scale)
    w, h = round(W * scale), round(H * scale)
    img = Image.new("RGB", (w, h), (245, 245, 247))
    d = ImageDraw.Draw(img)
    d.rectangle(at(0, 0, W, 24), fill=(222, 222, 226))
    for i, c in enumerate(((255, 95, 87), (254, 188, 46), (40, 200, 64))):
        d.ellipse(at(8 + 18 * i, 6, 20 + 18 * i, 18), fill=c)
    d.text(at(200, 5), "Dashboard", fill=(40, 40, 40), font=pt(12))
    d.rectangle(at(0, 24, 110, H), fill=(40, 44, 52))
    active = int(rng.integers(0, 6))
    for i, item in enumerate(("Home", "Reports", "Orders", "Clients", "Export", "Settings")):
        if i == active:
            d.rectangle(at(0, 40 + 26 * i, 110, 62 + 26 * i), fill=(70, 110, 200))
        d.text(at(16, 44 + 26 * i), item, fill=(230, 230, 230), font=pt(12))
    d.rectangle(at(110, 24, W, 52), fill=(255, 255, 255))
    d.rectangle(at(120, 30, 300, 46), outline=(180, 180, 180), width=round(1 * scale))
    d.text(at(126, 31), words(rng, 2), fill=(120, 120, 120), font=pt(11))
    d.text(at(120, 60), words(rng, 3).title(), fill=(20, 20, 20), font=pt(16))
    if rng.random() < 0.5:  # a table
        for r in range(7):
            y = 90 + 24 * r
            d.rectangle(at(120, y, W - 12, y + 23), fill=(255, 255, 255) if r % 2 else (236, 238, 242))
            d.text(at(126, y + 5), words(rng, 2), fill=(30, 30, 30), font=pt(11))
            d.text(at(300, y + 5), f"{rng.uniform(0, 9999):.2f}", fill=(30, 30, 30), font=pt(11, mono=True))
            d.text(at(390, y + 5), str(rng.choice(["open", "closed", "pending"])), fill=(30, 30, 30), font=pt(11))
    else:  # a bar chart
        d.rectangle(at(120, 90, W - 12, H - 40), fill=(255, 255, 255), outline=(210, 210, 210),
                    width=round(1 * scale))
        n = int(rng.integers(5, 12))
        bw = (W - 150) / n
        colour = tuple(int(c) for c in rng.integers(40, 200, 3))
        for i in range(n):
            top = rng.uniform(100, H - 60)
            d.rectangle(at(130 + i * bw, top, 130 + i * bw + bw * 0.7, H - 45), fill=colour)
    d.text(at(120, H - 30), words(rng, 6), fill=(100, 100, 100), font=pt(11))
    return img


KINDS = {"documents": (documents, "png"), "products": (products, "jpg"), "handwriting": (handwriting, "png"),
         "cells": (cells, "png"), "screenshots": (screenshots, "png")}
SCALABLE = ("documents", "screenshots")  # kinds drawn at any --scale

# -- planted copies --------------------------------------------------------------------------

PICTURES_EACH = 20  # side-by-sides saved per run and per sort, the surest false duplicates first

WAYS = ("jpeg", "rescale", "shift_crop", "contrast_gamma", "rotate_expand", "rotate", "blur")


def make_copy(img: Image.Image, way: str, rng, scale: float = 1) -> tuple[Image.Image, str, int]:
    """The copy, what was done (with its parameter) and the JPEG quality to save it at (0: PNG).

    ``scale``: how many times larger than its base size the picture was drawn (the blur follows)."""
    w, h = img.size
    if way == "jpeg":
        q = int(rng.integers(40, 91))
        return img, f"jpeg q{q}", q
    if way == "rescale":
        s = rng.uniform(0.5, 0.9)
        return img.resize((max(8, round(w * s)), max(8, round(h * s))), Image.BILINEAR), f"rescale {s:.2f}", 0
    if way == "shift_crop":
        f = rng.uniform(0.02, 0.08)
        dx, dy = round(w * f * rng.random()), round(h * f * rng.random())
        box = (dx, dy, w - (round(w * f) - dx), h - (round(h * f) - dy))
        return img.crop(box), f"crop {f:.1%} at {dx},{dy}", 0
    if way == "contrast_gamma":
        c, g = rng.uniform(0.7, 1.4), rng.uniform(0.7, 1.4)
        out = ImageEnhance.Contrast(img).enhance(c)
        out = out.point([round(255 * (v / 255) ** g) for v in range(256)] * len(out.getbands()))
        return out, f"contrast {c:.2f} gamma {g:.2f}", 0
    if way in ("rotate_expand", "rotate"):
        angle = float(rng.uniform(1, 4) * rng.choice([-1, 1]))
        return img.rotate(angle, Image.BILINEAR, expand=way == "rotate_expand"), f"{way} {angle:.1f} deg", 0
    if way == "blur":
        r = rng.uniform(0.8, 2.0) * scale
        return img.filter(ImageFilter.GaussianBlur(r)), f"blur {r:.1f}", 0
    raise ValueError(way)


def build(kind: str, data: Path, seed: int, n: int, copies: int, scale: float = 1) -> list[dict]:
    """Write the folder; return the planted pairs (paths relative to ``data``)."""
    if scale != 1 and kind not in SCALABLE:
        raise ValueError(f"{kind} is drawn at one size only (--scale is for {', '.join(SCALABLE)})")
    draw, ext = KINDS[kind]
    rng = np.random.default_rng([seed, sorted(KINDS).index(kind)])
    train = []
    for k in range(n):
        img = draw(rng, k, scale) if kind in SCALABLE else draw(rng, k)
        split = "test" if k % 4 == 0 else "train"
        rel = Path(split) / ("a", "b")[(k // 4) % 2] / f"{kind[:3]}{k:04d}.{ext}"
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        img.save(data / rel, **({"quality": 92} if ext == "jpg" else {}))
        if split == "train":
            train.append(rel)
    truth = []
    for c, j in enumerate(rng.choice(len(train), min(copies, len(train)), replace=False)):
        src = train[int(j)]
        way = WAYS[c % len(WAYS)]
        with Image.open(data / src) as im:
            copy, what, q = make_copy(im.convert(im.mode), way, rng, scale)
        rel = Path("test") / src.parent.name / f"copy_{src.stem}.{'jpg' if q or ext == 'jpg' else 'png'}"
        copy.save(data / rel, **({"quality": q or 90} if rel.suffix == ".jpg" else {}))
        truth.append({"a": str(src), "b": str(rel), "way": way, "detail": what})
    with open(data.parent / "truth.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, ["a", "b", "way", "detail"])
        wr.writeheader()
        wr.writerows(truth)
    return truth


# -- audit and score -------------------------------------------------------------------------

def side_by_side(data: Path, a: str, b: str, caption: str, out: Path) -> None:
    tiles = []
    for p in (a, b):
        with Image.open(data / p) as im:
            im = im.convert("RGB")
            s = 300 / max(im.size)
            tiles.append(im.resize((max(1, round(im.width * s)), max(1, round(im.height * s)))))
    w = sum(t.width for t in tiles) + 30
    h = max(t.height for t in tiles) + 60
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    x = 10
    for t in tiles:
        canvas.paste(t, (x, 10))
        x += t.width + 10
    d = ImageDraw.Draw(canvas)
    d.text((10, h - 46), f"{a}  |  {b}", fill=(0, 0, 0), font=font(11))
    d.text((10, h - 28), caption, fill=(160, 0, 0), font=font(11))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)


def run(kind: str, root: Path, seed: int, n: int, copies: int, pictures: Path | None, scale: float = 1) -> dict:
    import leakscan

    data, report = root / "data", root / "report"
    for p in (data, report):
        if p.exists():
            shutil.rmtree(p)
    truth = build(kind, data, seed, n, copies, scale)
    planted = {frozenset((t["a"], t["b"])): t for t in truth}
    t0 = time.perf_counter()
    result = leakscan.audit(str(data), cache=False, jobs=1)
    seconds = time.perf_counter() - t0
    leakscan.write_outputs(result, report, html=False)
    summary = result.to_dict()

    def rel(p) -> str:  # paths as leakscan gives them: relative to the folder audited
        return str(Path(p).relative_to(data) if Path(p).is_absolute() else Path(p))

    found = {}
    rows = {"duplicates": [], "possible": []}
    for tier in rows:
        for r in result.pair_records(tier):
            r = dict(r, a=rel(r["a"]), b=rel(r["b"]), tier=tier)
            key = frozenset((r["a"], r["b"]))
            if key in planted:
                found.setdefault(key, r)
            else:
                rows[tier].append(r)
    missed = [dict(t, tier="missed") for key, t in planted.items() if key not in found]
    weak = [dict(planted[key], confidence=r["confidence"], pair_detail=r["detail"], kind=r["kind"], tier="possible")
            for key, r in found.items() if r["tier"] == "possible"]
    false_dups = sorted(rows["duplicates"], key=lambda r: -float(r["confidence"] or 0))
    if pictures is not None:
        tag = f"{kind}_s{seed}"
        for i, r in enumerate(false_dups[:PICTURES_EACH]):
            side_by_side(data, r["a"], r["b"], f"FALSE DUP conf {r['confidence']} {r['kind']} {r['detail']} "
                         f"ham {r['hamming']} cos {r['cosine']} ncc {r['ncc']}", pictures / f"{tag}_falsedup{i:02d}.png")
        for i, t in enumerate((missed + weak)[:PICTURES_EACH]):
            side_by_side(data, t["a"], t["b"], f"{t['tier'].upper()} planted copy: {t['detail']}"
                         + (f"  conf {t['confidence']} {t['pair_detail']}" if t["tier"] == "possible" else ""),
                         pictures / f"{tag}_{t['tier']}{i:02d}.png")
    calibration = summary.get("calibration") or {}
    return {
        "kind": kind, "seed": seed, "images": summary["n_images"], "planted": len(truth),
        "found_dup": sum(r["tier"] == "duplicates" for r in found.values()),
        "found_possible": len(weak), "missed": len(missed),
        "false_dup": len(false_dups), "false_possible": len(rows["possible"]),
        "warnings": summary.get("warnings", []), "heldout_auc": calibration.get("heldout_auc"),
        "threshold": calibration.get("threshold"), "seconds": round(seconds, 1),
        "false_duplicates": false_dups, "missed_copies": missed, "possible_copies": weak,
        "dup_copies": [dict(planted[k], confidence=r["confidence"], pair_detail=r["detail"])
                       for k, r in found.items() if r["tier"] == "duplicates"],
    }


def table(results: list[dict]) -> str:
    head = ("kind", "seed", "images", "planted", "dup", "possible", "missed", "false dup", "false poss",
            "warnings", "auc", "bar")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        auc = "" if r["heldout_auc"] is None else f"{r['heldout_auc']:.3f}"
        bar = "" if r["threshold"] is None else f"{r['threshold']:.3f}"
        cells = (r["kind"], r["seed"], r["images"], r["planted"], r["found_dup"], r["found_possible"], r["missed"],
                 r["false_dup"], r["false_possible"], len(r["warnings"]), auc, bar)
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", nargs="?", choices=sorted(KINDS))
    ap.add_argument("out", type=Path)
    ap.add_argument("--all", action="store_true", help="every kind, into OUT/KIND")
    ap.add_argument("--seed", type=int, nargs="+", default=[0])
    ap.add_argument("--n", type=int, default=240, help="pictures per folder, copies not counted")
    ap.add_argument("--copies", type=int, default=14)
    ap.add_argument("--scale", type=float, default=1,
                    help=f"draw {' and '.join(SCALABLE)} this many times larger (same layout, higher resolution)")
    ap.add_argument("--pictures", type=Path, help="save side-by-sides of false duplicates (the 20 surest) and missed copies here")
    ap.add_argument("--json", type=Path, help="write every result, pairs included, to this file")
    args = ap.parse_args(argv)
    if args.all == bool(args.kind):
        ap.error("give one KIND or --all")
    kinds = sorted(KINDS) if args.all else [args.kind]
    if args.scale != 1 and not set(kinds) <= set(SCALABLE):
        ap.error(f"--scale is for {' and '.join(SCALABLE)} only")
    results = []
    for kind in kinds:
        for seed in args.seed:  # one audit at a time
            root = args.out / kind / (f"s{seed}" if len(args.seed) > 1 else "")
            r = run(kind, root, seed, args.n, args.copies, args.pictures, args.scale)
            results.append(r)
            print(f"{kind} seed {seed}: {r['found_dup']}/{r['planted']} copies duplicates, "
                  f"{r['false_dup']} false duplicates ({r['seconds']} s)", file=sys.stderr, flush=True)
    print(table(results))
    for r in results:
        for w in r["warnings"]:
            print(f"warning [{r['kind']} s{r['seed']}]: {w}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
