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

from PIL import Image


def _draft(data: bytes, side: int, mode: str = "RGB") -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.draft(mode, (side, side))
    img.load()
    return img


WAYS = (
    ('`open` + `convert("L")`, full size (the baseline)', lambda d: Image.open(io.BytesIO(d)).convert("L")),
    ("`open` + `load`, full-size RGB", lambda d: Image.open(io.BytesIO(d)).load()),
    ('`draft("RGB", (256, 256))`', lambda d: _draft(d, 256)),
    ('`draft("RGB", (160, 160))`', lambda d: _draft(d, 160)),
    ('`draft("L", (160, 160))`', lambda d: _draft(d, 160, "L")),
)


def measure(files: list, rounds: int = 3) -> list:
    """``[(way, median seconds), ...]`` over the JPEG ``files``, in :data:`WAYS`' order."""
    datas = [Path(f).read_bytes() for f in files]
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
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    files = jpegs(args.folder)
    if not files:
        sys.exit(f"{args.folder}: no JPEG files")
    print(f"{len(files)} JPEGs under {args.folder}, one process, files in memory, medians of {args.rounds}\n")
    print("\n".join(markdown(measure(files, args.rounds))))


if __name__ == "__main__":
    main()
