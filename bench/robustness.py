"""A 20,000-file folder with 5% bad files of every kind the test corpus has; audit it and
check that every file is accounted for.

    python bench/robustness.py [WORK_DIR] [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from corpus import make_corpus  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, nargs="?", default=HERE.parent / ".bench" / "robustness")
    ap.add_argument("--n", type=int, default=20_000)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    data = a.work / "data"
    expected: dict[str, tuple] = {}
    k = 0
    while len(expected) < a.n * 0.05:  # bad and awkward files: the corpus, many times over
        expected.update(make_corpus(data, seed=k, prefix=f"c{k:03d}-"))
        k += 1
    n_bad = sum(1 for v in expected.values() if v[0] == "skip")
    rng = np.random.default_rng(0)
    good = a.n - len(expected)
    for i in range(good):
        split = "train" if i % 5 else "test"
        p = data / split / f"class{i % 7}" / f"img{i:05d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(base).resize((48, 48), Image.BICUBIC).save(p, quality=85)
    t = time.perf_counter()
    out = a.work / "out"
    p = subprocess.run([sys.executable, "-m", "leakscan", "audit", str(data), "--out", str(out), "--no-cache",
                        "--quiet", "--no-html"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    d = json.loads((out / "summary.json").read_text())
    files = sum(1 for f in data.rglob("*") if f.is_file() or f.is_symlink())
    print(json.dumps({"files_on_disk": files, "n_files": d["n_files"], "n_images": d["n_images"],
                      "n_skipped": d["n_skipped"], "bad_files_planted": n_bad,
                      "accounted_for": d["n_files"] == d["n_images"] + d["n_skipped"] == files,
                      "exit_code": p.returncode, "seconds": round(wall, 1)}))


if __name__ == "__main__":
    main()
