"""The decode floor: how long each way of decoding a folder's JPEGs takes, against the baseline.

The baseline is the speed issue's: one process running Pillow ``open(p).convert("L")`` over
the files. The other rows decode at full size in colour, and at reduced scale inside the
JPEG decoder (``Image.draft``): 1/4 scale keeps 256 px on the shorter side of a 2.5 MP photo
(leakscan's ``DECODE_SIDE``), 1/8 scale 160 px. The files are read into memory first, so the
rows time decoding only; each row is the median of ``--rounds`` passes.

    python bench/decode_floor.py .bench/photos2500
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, UnidentifiedImageError


def _draft(data: bytes, side: int, mode: str = "RGB") -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.draft(mode, (side, side))
    img.load()
    return img


def _full_rgb(data: bytes) -> Image.Image:
    """Decoded at full size and in RGB: a grey or CMYK JPEG converted (an RGB one is not copied)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img if img.mode == "RGB" else img.convert("RGB")


WAYS = (
    ('`open` + `convert("L")`, full size (the baseline)', lambda d: Image.open(io.BytesIO(d)).convert("L")),
    ("`open` + `load`, full-size RGB", _full_rgb),
    ('`draft("RGB", (256, 256))`', lambda d: _draft(d, 256)),
    ('`draft("RGB", (160, 160))`', lambda d: _draft(d, 160)),
    ('`draft("L", (160, 160))`', lambda d: _draft(d, 160, "L")),
)


def readable(files: list) -> list:
    """The bytes of each of ``files`` that every way in :data:`WAYS` decodes (a first pass, which
    also warms the decoder); a file that cannot be read or decoded is left out, with a line on
    stderr naming it and the reason."""
    out = []
    for f in files:
        try:
            data = Path(f).read_bytes()
            for _, decode in WAYS:
                decode(data)
        except UnidentifiedImageError:
            print(f"{f}: left out (not an image Pillow can read)", file=sys.stderr)
            continue
        except Exception as exc:  # a bench over any folder: one bad file does not end it
            print(f"{f}: left out ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        out.append(data)
    return out


def measure(datas: list, rounds: int = 3) -> list:
    """``[(way, median seconds), ...]`` over the files' bytes ``datas`` (:func:`readable`), in
    :data:`WAYS`' order."""
    if not datas:
        raise ValueError("no JPEG file that every way decodes")
    out = []
    for name, decode in WAYS:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            for data in datas:
                decode(data)
            times.append(time.perf_counter() - start)
        out.append((name, statistics.median(times)))
    return out


def markdown(rows: list) -> list:
    """The rows of :func:`measure` as a markdown table, each against the first (the baseline)."""
    base = rows[0][1]
    return (["| decode of each file | s | × the baseline |", "| --- | ---: | ---: |"]
            + [f"| {name} | {seconds:.2f} | {seconds / base:.2f} |" for name, seconds in rows])


def jpegs(folder: Path) -> list:
    """The JPEG files under ``folder``, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"{args.folder}: not a folder (the 2.5 MP photos are made by `python bench/run.py --only photos`)")
    files = jpegs(args.folder)
    if not files:
        sys.exit(f"{args.folder}: no JPEG files under it")
    datas = readable(files)
    if not datas:
        sys.exit(f"{args.folder}: no JPEG file under it that Pillow decodes")
    rows = measure(datas, args.rounds)
    left = f" ({len(files) - len(datas)} left out, named above)" if len(datas) < len(files) else ""
    print(f"{len(datas)} JPEGs under {args.folder}{left}, one process, files in memory, medians of {args.rounds}\n")
    print("\n".join(markdown(rows)))


if __name__ == "__main__":
    main()
