"""Judge by eye the CIFAR-10 test images leakscan flags outside ciFAIR's list.

ciFAIR is a lower bound on the real duplicates, so precision against it alone understates
precision. This script draws a seeded random sample of the flagged test images that ciFAIR
does not list, shows each beside its train partner (the pair with the best verification
score), and records verdicts in ``bench/judgments.csv`` (``test,train,verdict`` with verdict
``same`` = the same photograph, possibly shifted/cropped/recoloured/mirrored; ``different``;
``unsure``). ``bench/run.py`` turns the verdicts into an estimated precision.

    python bench/judge.py sheet PAIRS.csv --n 48 --seed 1 --out sheet.png   # prints the numbered sample
    python bench/judge.py record sample.csv "s s d u s ..."                 # appends the verdicts
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TRUTH = ROOT.parent / "shared" / "bench" / "cifar10" / "pairs.csv"
IMAGES = ROOT / ".bench"
JUDGMENTS = HERE / "judgments.csv"
VERDICTS = {"s": "same", "d": "different", "u": "unsure"}


def _norm(p: str) -> str:
    p = p.replace("\\", "/")
    k = p.find("cifar10/")
    return p[k:] if k >= 0 else "cifar10/" + p


def flagged(pairs_csv: Path) -> dict[str, tuple[str, float]]:
    """Test image -> (its train partner with the best verification score, that score)."""
    best: dict[str, tuple[str, float]] = {}
    for r in csv.DictReader(open(pairs_csv, newline="")):
        if {r["split_a"], r["split_b"]} != {"test", "train"}:
            continue
        t, o = (r["a"], r["b"]) if r["split_a"] == "test" else (r["b"], r["a"])
        t, o = _norm(t), _norm(o)
        s = float(r.get("ncc") or 1.0)
        if t not in best or s > best[t][1]:
            best[t] = (o, s)
    return best


def cifair_tests(truth: Path = TRUTH) -> set[str]:
    return {r["a"] for r in csv.DictReader(open(truth, newline="")) if r["source"] == "train-test"}


def judgments(path: Path = JUDGMENTS) -> dict[str, tuple[str, str]]:
    if not path.exists():
        return {}
    return {r["test"]: (r["train"], r["verdict"]) for r in csv.DictReader(open(path, newline=""))}


def estimate(pairs_csv: Path, judged_csv: Path = JUDGMENTS) -> dict:
    f = flagged(pairs_csv)
    inside = set(f) & cifair_tests()
    outside = [t for t in f if t not in inside]
    j = judgments(judged_csv)
    # a verdict counts only for the pair it was given on
    seen = [j[t][1] for t in outside if t in j and j[t][0] == f[t][0]]
    same = seen.count("same")
    share = same / len(seen) if seen else 0.0
    return {"flagged": len(f), "in_cifair": len(inside), "outside": len(outside), "judged": len(seen),
            "same": same, "different": seen.count("different"), "unsure": seen.count("unsure"),
            "precision": (len(inside) + share * len(outside)) / len(f) if f else float("nan")}


def sheet(pairs_csv: Path, n: int, seed: int, out: Path) -> Path:
    f = flagged(pairs_csv)
    done = judgments()
    pool = sorted(t for t in f if t not in cifair_tests() and t not in done)
    random.Random(seed).shuffle(pool)
    pick = pool[:n]
    sample = out.with_suffix(".csv")
    with open(sample, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["k", "test", "train"])
        for k, t in enumerate(pick):
            w.writerow([k, t, f[t][0]])
            print(k, t, f[t][0])
    tiles = []
    for t in pick:
        a = np.asarray(Image.open(IMAGES / t).convert("RGB"))
        b = np.asarray(Image.open(IMAGES / f[t][0]).convert("RGB"))
        tiles.append(np.pad(np.concatenate([a, np.zeros((32, 2, 3), np.uint8), b], 1), ((2, 2), (4, 4), (0, 0))))
    while len(tiles) % 8:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + 8], 1) for i in range(0, len(tiles), 8)]
    img = np.concatenate(rows, 0)
    Image.fromarray(img).resize((img.shape[1] * 3, img.shape[0] * 3), Image.NEAREST).save(out)
    print(f"{len(pick)} pairs, 8 per row, test image left; sample list in {sample}")
    return sample


def record(sample: Path, verdicts: str) -> None:
    rows = list(csv.DictReader(open(sample, newline="")))
    v = verdicts.split()
    if len(v) != len(rows) or any(x not in VERDICTS for x in v):
        raise SystemExit(f"give one of s/d/u for each of the {len(rows)} pairs, got {len(v)}")
    new = not JUDGMENTS.exists()
    with open(JUDGMENTS, "a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["test", "train", "verdict"])
        for r, x in zip(rows, v):
            w.writerow([r["test"], r["train"], VERDICTS[x]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sheet")
    s.add_argument("pairs", type=Path)
    s.add_argument("--n", type=int, default=48)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, default=ROOT / ".bench" / "sheet.png")
    r = sub.add_parser("record")
    r.add_argument("sample", type=Path)
    r.add_argument("verdicts")
    a = ap.parse_args()
    if a.cmd == "sheet":
        sheet(a.pairs, a.n, a.seed, a.out)
    else:
        record(a.sample, a.verdicts)


if __name__ == "__main__":
    main()
