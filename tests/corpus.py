"""A corpus of awkward and broken image files, generated on demand (tests and bench/robustness.py).

``make_corpus(root)`` writes it and returns {relative path: expectation}, where an expectation
is ``("ok", note_substring_or_None)`` or ``("skip", reason_substring)``.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def scene(seed: int, size: int = 96) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), "RGB").resize((size, size), Image.BICUBIC)
    d = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = (int(v) for v in rng.integers(0, max(1, size - 10), 2))
        x1, y1 = x0 + int(rng.integers(4, max(5, size // 2))), y0 + int(rng.integers(4, max(5, size // 2)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (d.rectangle if rng.random() < 0.5 else d.ellipse)([x0, y0, x1, y1], fill=colour)
    return img


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def make_corpus(root: Path, seed: int = 0, prefix: str = "") -> dict[str, tuple[str, str | None]]:
    root = Path(root)
    d = root / "train" / "cls"
    d.mkdir(parents=True, exist_ok=True)
    exp: dict[str, tuple[str, str | None]] = {}
    base = scene(seed)

    def put(name: str, blob: bytes, expect):
        (d / name).write_bytes(blob)
        exp[f"train/cls/{name}"] = expect

    p = prefix
    put(f"{p}zero.jpg", b"", ("skip", "empty file"))
    jpg = _save(base, "JPEG")
    put(f"{p}truncated.jpg", jpg[: len(jpg) // 3], ("skip", "truncated or corrupt"))
    png = _save(base, "PNG")
    put(f"{p}truncated.png", png[: len(png) // 2], ("skip", "corrupt"))
    put(f"{p}random.png", np.random.default_rng(seed).integers(0, 256, 3000, dtype=np.uint8).tobytes(), ("skip", "not an image"))
    put(f"{p}text.jpg", b"this is a text file, not a picture\n" * 20, ("skip", "not an image"))
    put(f"{p}png-named.jpg", png, ("ok", None))
    put(f"{p}cmyk.jpg", _save(base.convert("CMYK"), "JPEG"), ("ok", None))
    put(f"{p}16bit.png", _save(Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257)), "PNG"), ("ok", None))
    put(f"{p}1bit.png", _save(base.convert("1"), "PNG"), ("ok", None))
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE)
    put(f"{p}palette-transparent.png", _save(pal, "PNG", transparency=0), ("ok", None))
    rgba = base.copy()
    rgba.putalpha(128)
    put(f"{p}rgba.png", _save(rgba, "PNG"), ("ok", None))
    put(f"{p}la.png", _save(base.convert("LA"), "PNG"), ("ok", None))
    frames = [scene(seed + k, 48).convert("P") for k in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    put(f"{p}animated.gif", buf.getvalue(), ("ok", "first of 3 frames"))
    buf = io.BytesIO()
    scene(seed + 5, 48).save(buf, "TIFF", save_all=True, append_images=[scene(seed + 6, 48)])
    put(f"{p}multipage.tif", buf.getvalue(), ("ok", "first of 2 frames"))
    put(f"{p}tiny-1x1.png", _save(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), ("ok", None))
    put(f"{p}bomb.png", _png_header(100_000, 100_000), ("skip", "pixels"))
    # names: spaces, non-ASCII, a newline
    put(f"{p}name with spaces é ü 東京.png", _save(scene(seed + 7), "PNG"), ("ok", None))
    if os.name == "posix":
        put(f"{p}new\nline.png", _save(scene(seed + 8), "PNG"), ("ok", None))
        os.symlink(d / "does-not-exist.png", d / f"{p}broken-link.png")
        exp[f"train/cls/{p}broken-link.png"] = ("skip", "not found")
        os.symlink(d / f"{p}loop-b.png", d / f"{p}loop-a.png")
        os.symlink(d / f"{p}loop-a.png", d / f"{p}loop-b.png")
        exp[f"train/cls/{p}loop-a.png"] = ("skip", "symlink loop")
        exp[f"train/cls/{p}loop-b.png"] = ("skip", "symlink loop")
    (d / f"{p}folder.jpg").mkdir()  # a directory named like an image: not a file, not listed
    # EXIF orientation: the stored pixels are rotated, the tag turns them back upright
    upright = scene(seed + 9, 64).crop((0, 0, 64, 40))
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}
    put(f"{p}exif-upright.png", _save(upright, "PNG"), ("ok", None))
    for o, t in inverse.items():
        exif = Image.Exif()
        exif[0x0112] = o
        put(f"{p}exif-{o}.png", _save(upright.transpose(t), "PNG", exif=exif), ("ok", None))
    return exp
