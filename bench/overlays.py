"""Overlay benchmark: different photos under one shared overlay, and copies among them.

Datasets scraped from one site carry its logo, watermark, frame or caption on every picture;
screenshots share the window around them; product shots share the card they sit on. Two
*different* photos under one overlay are not copies, however well the overlay lines up. Each
photo (the photos that ship with scikit-image and scikit-learn plus pictures generated from a
seed, as in ``bench/transformed.py``; or every image in ``--source FOLDER``), scaled down to
640 px on its longer side (a smaller photo keeps its size), gets the same overlay, made two ways:

==============  ==============================================================================
overlay         protocols
==============  ==============================================================================
logo            Pillow: an opaque disc with a word in it, a fifth of the picture, in a corner;
                OpenCV: ``cv2.circle`` and ``cv2.putText`` blended at 60% (``addWeighted``);
                Pillow: a small badge composited 80% opaque (``alpha_composite``); the opaque
                disc on three pictures in five only
stamp           Pillow: a camera's date stamp, orange digits, a different date on each picture
watermark       Pillow: a grid of semi-transparent words (``alpha_composite``); OpenCV: the
                same grid drawn with ``putText`` and blended at 35%
frame           Pillow: the picture pasted into a window with a title bar; numpy: ``np.pad``
                with a banner drawn over the top pad (``cv2.rectangle`` and ``putText``)
caption         Pillow: the same credit line on a dark bar over the bottom fifth; OpenCV: the
                same with ``cv2.rectangle`` and ``putText``
template        Pillow: the picture on the left 45% of a product card whose right half is the
                same for every picture (a button and text lines): a borderline case, since the
                card is more than half of each image; reported, not scored
==============  ==============================================================================

In each folder a few pictures also get a copy (the overlaid picture resized to 80% and
re-encoded at JPEG quality 70): those pairs are duplicates and must be found. One audit per
overlay and protocol, with the defaults. Reported: the duplicates that join two different
photos (target: none), the possible pairs, and the copies found.

    python bench/overlays.py [--source FOLDER] [--copies N] [--work DIR] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from transformed import check_work, fit, font, source_photos  # noqa: E402 - the bench's own photos and helpers

SIDE = 640
WORD = "STOCKPHOTO"
CREDIT = "(c) Acme Dataset 2024"


def _cv2():
    import cv2  # noqa: PLC0415 - OpenCV is a leakscan dependency; imported where drawn

    return cv2


def logo_pil(img: Image.Image) -> Image.Image:
    out = img.copy()
    w, h = out.size
    s = int(min(w, h) * 0.45)
    x0, y0 = w - s - 10, h - s - 10
    d = ImageDraw.Draw(out)
    d.ellipse([x0, y0, x0 + s, y0 + s], fill=(200, 30, 30), outline=(255, 255, 255), width=6)
    d.text((x0 + s // 6, y0 + s // 3), "LOGO", fill=(255, 255, 255), font=font(s // 3))
    return out


def logo_cv2(img: Image.Image) -> Image.Image:
    cv2 = _cv2()
    a = np.ascontiguousarray(np.asarray(img)[..., ::-1])
    h, w = a.shape[:2]
    r = int(min(w, h) * 0.22)
    layer = a.copy()
    cv2.circle(layer, (r + 12, r + 12), r, (40, 160, 20), -1)
    cv2.putText(layer, "LOGO", (r // 3, r + 24), cv2.FONT_HERSHEY_DUPLEX, r / 45, (255, 255, 255), 3, cv2.LINE_AA)
    return Image.fromarray(cv2.addWeighted(layer, 0.6, a, 0.4, 0)[..., ::-1])


def watermark_pil(img: Image.Image) -> Image.Image:
    base = img.convert("RGBA")
    w, h = base.size
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    f = font(max(12, h // 9))
    for row, y in enumerate(range(0, h, h // 4)):
        for x in range(-w // 4, w, w // 2):
            d.text((x + row % 2 * w // 4, y), WORD, fill=(255, 255, 255, 120), font=f)
    return Image.alpha_composite(base, layer).convert("RGB")


def watermark_cv2(img: Image.Image) -> Image.Image:
    cv2 = _cv2()
    a = np.ascontiguousarray(np.asarray(img)[..., ::-1])
    h, w = a.shape[:2]
    layer = a.copy()
    for row, y in enumerate(range(h // 6, h, h // 4)):
        for x in range(-w // 5, w, w // 2):
            cv2.putText(layer, WORD, (x + row % 2 * w // 5, y), cv2.FONT_HERSHEY_SIMPLEX, h / 300, (255, 255, 255), 3,
                        cv2.LINE_AA)
    return Image.fromarray(cv2.addWeighted(layer, 0.35, a, 0.65, 0)[..., ::-1])


def frame_pil(img: Image.Image) -> Image.Image:
    w, h = img.size
    top, side = h // 6, w // 20
    canvas = Image.new("RGB", (w + 2 * side, h + top + side), (236, 236, 240))
    d = ImageDraw.Draw(canvas)
    d.rectangle([0, 0, canvas.width, top], fill=(40, 60, 120))
    d.text((side, top // 4), "PhotoViewer 3.1  -  File  Edit  View  Help", fill=(255, 255, 255), font=font(top // 3))
    for k in range(3):
        x = canvas.width - (k + 1) * top // 2
        d.ellipse([x, top // 4, x + top // 3, top // 4 + top // 3], fill=(200, 200, 60))
    canvas.paste(img, (side, top))
    return canvas


def frame_numpy(img: Image.Image) -> Image.Image:
    cv2 = _cv2()
    a = np.asarray(img)
    h, w = a.shape[:2]
    top, side = h // 5, w // 16
    out = np.ascontiguousarray(np.pad(a, ((top, side), (side, side), (0, 0)), constant_values=24))
    cv2.rectangle(out, (side, top // 5), (out.shape[1] - side, top - top // 5), (230, 120, 20), -1)
    cv2.putText(out, "SAMPLE VIEWER", (side + 10, top - top // 3), cv2.FONT_HERSHEY_SIMPLEX, top / 50, (255, 255, 255),
                2, cv2.LINE_AA)
    return Image.fromarray(out)


def caption_pil(img: Image.Image) -> Image.Image:
    out = img.copy()
    w, h = out.size
    bar = h // 5
    d = ImageDraw.Draw(out)
    d.rectangle([0, h - bar, w, h], fill=(20, 20, 20))
    d.text((w // 20, h - bar + bar // 6), CREDIT, fill=(255, 255, 255), font=font(int(bar * 0.6)))
    return out


def caption_cv2(img: Image.Image) -> Image.Image:
    cv2 = _cv2()
    a = np.ascontiguousarray(np.asarray(img)[..., ::-1])
    h, w = a.shape[:2]
    bar = h // 5
    cv2.rectangle(a, (0, h - bar), (w, h), (235, 235, 235), -1)
    cv2.putText(a, CREDIT, (w // 20, h - bar // 3), cv2.FONT_HERSHEY_SIMPLEX, bar / 70, (30, 30, 30), 2, cv2.LINE_AA)
    return Image.fromarray(a[..., ::-1])


def logo_alpha(img: Image.Image) -> Image.Image:
    """A small translucent badge (a rounded box with the site's name, 80% opaque) top left, as
    an alpha-composited PNG logo is stamped."""
    base = img.convert("RGBA")
    w, h = base.size
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    bw, bh = w // 4, h // 9
    d.rounded_rectangle([12, 12, 12 + bw, 12 + bh], radius=bh // 3, fill=(10, 90, 200, 204))
    d.text((12 + bw // 10, 12 + bh // 5), "acme.io", fill=(255, 255, 255, 230), font=font(int(bh * 0.55)))
    return Image.alpha_composite(base, layer).convert("RGB")


def logo_on_most(img: Image.Image, k: int) -> Image.Image:
    """:func:`logo_pil` on three pictures in five (a dataset scraped from several sites)."""
    return logo_pil(img) if k % 5 < 3 else img


def stamp_pil(img: Image.Image, k: int) -> Image.Image:
    """A camera's date stamp: orange digits bottom right, a different date on each picture."""
    out = img.copy()
    w, h = out.size
    d = ImageDraw.Draw(out)
    date = f"'{10 + k % 14:02d}  {1 + k % 12:2d}  {1 + 7 * k % 28:2d}"
    d.text((w - w // 3, h - h // 9), date, fill=(255, 150, 30), font=font(h // 14), stroke_width=1,
           stroke_fill=(120, 50, 0))
    return out


def template_pil(img: Image.Image) -> Image.Image:
    card = Image.new("RGB", (640, 400), (250, 250, 250))
    d = ImageDraw.Draw(card)
    d.rectangle([330, 20, 620, 80], fill=(230, 120, 20))
    d.text((340, 30), "BUY NOW", fill=(255, 255, 255), font=font(40))
    for k in range(5):
        d.rectangle([330, 110 + k * 55, 620 - k * 30, 140 + k * 55], fill=(180, 180, 190))
    card.paste(img.resize((300, 360), Image.LANCZOS), (15, 20))
    return card


#: (overlay, protocol, how, scored); ``how(img)``, or ``how(img, k)`` for the k-th picture
OVERLAYS = [("logo", "pil", logo_pil, True), ("logo", "cv2 blended", logo_cv2, True),
            ("logo", "pil alpha badge", logo_alpha, True), ("logo", "pil, 3 pictures in 5", logo_on_most, True),
            ("stamp", "pil, a date each", stamp_pil, True),
            ("watermark", "pil alpha", watermark_pil, True), ("watermark", "cv2 blended", watermark_cv2, True),
            ("frame", "pil window", frame_pil, True), ("frame", "numpy pad + banner", frame_numpy, True),
            ("caption", "pil dark bar", caption_pil, True), ("caption", "cv2 light bar", caption_cv2, True),
            ("template", "pil card", template_pil, False)]


TAKES_INDEX = (logo_on_most, stamp_pil)


def copy_of(img: Image.Image) -> Image.Image:
    """A copy a user would have: resized to 80% (and re-encoded at quality 70 when saved)."""
    return img.resize((round(img.width * 0.8), round(img.height * 0.8)), Image.LANCZOS)


def audit_folder(folder: Path, out: Path) -> tuple[list[dict], list[dict], float]:
    shutil.rmtree(out, ignore_errors=True)  # a failed audit must not leave the last run's pairs to read
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "leakscan", "audit", str(folder), "--out", str(out), "--force", "--quiet",
                        "--no-cache"], check=False)
    wall = time.perf_counter() - t
    if p.returncode != 0:  # its one line is above
        raise SystemExit(f"leakscan audit {folder} failed (exit {p.returncode})")
    pairs = list(csv.DictReader(open(out / "pairs.csv", newline="")))
    possible = list(csv.DictReader(open(out / "possible.csv", newline=""))) if (out / "possible.csv").exists() else []
    return pairs, possible, wall


def run(work: Path, source: Path | None, n_copies: int) -> dict:
    photos = [(name, fit(img.convert("RGB"), SIDE)) for name, img in source_photos(source, n_generated=20)]
    rng = np.random.default_rng(0)
    copied = sorted(rng.choice(len(photos), size=min(n_copies, len(photos)), replace=False).tolist())
    rows = []
    for overlay, protocol, how, scored in OVERLAYS:
        folder = work / f"{overlay}_{protocol.replace(',', '').replace(' ', '_').replace('+', 'and')}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        photo_of = {}
        for k, (name, img) in enumerate(photos):
            made = how(img, k) if how in TAKES_INDEX else how(img)
            made.save(folder / f"p{k:03d}.jpg", quality=90)
            photo_of[f"p{k:03d}.jpg"] = k
            if k in copied:
                copy_of(made).save(folder / f"p{k:03d}_copy.jpg", quality=70)
                photo_of[f"p{k:03d}_copy.jpg"] = k
        pairs, possible, wall = audit_folder(folder, work / (folder.name + "_out"))
        across = [(p["a"], p["b"], p["confidence"]) for p in pairs if photo_of[p["a"]] != photo_of[p["b"]]]
        found = {photo_of[p["a"]] for p in pairs if photo_of[p["a"]] == photo_of[p["b"]]}
        rows.append({"overlay": overlay, "protocol": protocol, "scored": scored, "images": len(photo_of),
                     "copies": len(copied), "found": len(found & set(copied)), "duplicates": len(pairs),
                     "different_photos": len(across), "possible": len(possible), "wall_s": round(wall, 1),
                     "false_pairs": across})
    scored_rows = [r for r in rows if r["scored"]]
    true = sum(r["duplicates"] - r["different_photos"] for r in scored_rows)
    false = sum(r["different_photos"] for r in scored_rows)
    copies = sum(r["copies"] for r in scored_rows)
    # None, not 0, when there is nothing to divide: no duplicate reported, no copy made
    return {"photos": len(photos), "rows": rows, "true": true, "false": false,
            "precision": round(true / (true + false), 4) if true + false else None,
            "recall": round(sum(r["found"] for r in scored_rows) / copies, 4) if copies else None}


def markdown(res: dict) -> str:
    lines = ["| overlay | protocol | images | copies found | duplicates | of them different photos | possible | "
             "audit s |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in res["rows"]:
        name = r["overlay"] if r["scored"] else f"{r['overlay']} (not scored)"
        lines.append(f"| {name} | {r['protocol']} | {r['images']} | {r['found']} / {r['copies']} | {r['duplicates']} | "
                     f"{r['different_photos']} | {r['possible']} | {r['wall_s']} |")
    share = (lambda v: "n/a" if v is None else f"{v:.3f}")  # noqa: E731
    lines += ["", f"Scored overlays: precision {share(res['precision'])} ({res['true']} true, {res['false']} false "
              f"duplicates), copies found {share(res['recall'])}; {res['photos']} photos per folder."]
    for r in res["rows"]:
        if r["false_pairs"]:
            shown = ", ".join(f"{a} ~ {b} ({c})" for a, b, c in r["false_pairs"][:6])
            lines.append(f"- {r['overlay']}, {r['protocol']}: {shown}" + (" ..." if len(r["false_pairs"]) > 6 else ""))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=None)
    ap.add_argument("--copies", type=int, default=6)
    ap.add_argument("--work", type=Path, default=HERE.parent / ".bench" / "overlays")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    check_work(a.work, a.source)
    a.work.mkdir(parents=True, exist_ok=True)
    res = run(a.work, a.source, a.copies)
    print(json.dumps(res, indent=2) if a.json else markdown(res))


if __name__ == "__main__":
    main()
