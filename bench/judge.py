"""Judge by eye the CIFAR-10 test images leakscan flags outside ciFAIR's list.

ciFAIR is a lower bound on the real duplicates, so precision against it alone understates
precision. This script draws a seeded sample of the test images whose best train partner
(highest ``confidence``) is outside ciFAIR's list, *stratified by confidence* (:data:`STRATA`:
the three bands of the duplicates and one band of the possible tier, so the uncertain band is
well covered and the confidence can be checked against the verdicts), shows each beside its
partner, and records verdicts in ``bench/judgments.csv`` (``test,train,verdict`` with verdict
``same`` = the same photograph, possibly shifted/cropped/recoloured/mirrored; ``different``;
``unsure``, counted as different). :func:`estimate` weights each band's share of ``same`` by
its size (a stratified estimate); :func:`reliability` bins judged pairs by confidence.

    python bench/judge.py sheet OUT_DIR --per 40 --seed 2 --out sheet.png   # prints the numbered sample
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
#: Confidence bands sampled separately: three of the duplicates, one of the possible tier.
STRATA = ((0.5, 0.7), (0.7, 0.9), (0.9, 1.01), (0.2, 0.5))


def _norm(p: str) -> str:
    p = p.replace("\\", "/")
    k = p.find("cifar10/")
    return p[k:] if k >= 0 else "cifar10/" + p


def flagged(pairs_csv: Path) -> dict[str, tuple[str, float]]:
    """Test image -> (its train partner with the highest confidence, that confidence)."""
    best: dict[str, tuple[str, float]] = {}
    if not Path(pairs_csv).exists():
        return best
    for r in csv.DictReader(open(pairs_csv, newline="")):
        if {r["split_a"], r["split_b"]} != {"test", "train"}:
            continue
        t, o = (r["a"], r["b"]) if r["split_a"] == "test" else (r["b"], r["a"])
        t, o = _norm(t), _norm(o)
        s = float(r.get("confidence") or 1.0)
        if t not in best or s > best[t][1]:
            best[t] = (o, s)
    return best


def _out_dir(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def _band(c: float):
    return next((b for b in STRATA if b[0] <= c < b[1]), None)


def cifair_tests(truth: Path = TRUTH) -> set[str]:
    return {r["a"] for r in csv.DictReader(open(truth, newline="")) if r["source"] == "train-test"}


def judgments(path: Path = JUDGMENTS) -> dict[tuple[str, str], str]:
    """``(test, train) -> verdict``: every pair judged (a test image may be judged beside
    several train images, as audits pair it with one or another)."""
    if not path.exists():
        return {}
    return {(r["test"], r["train"]): r["verdict"] for r in csv.DictReader(open(path, newline=""))}


def estimate(pairs_csv: Path, judged_csv: Path = JUDGMENTS) -> dict:
    """Stratified precision of the flagged test images: ciFAIR's count as right, the others by
    the judged share of ``same`` in their confidence band, weighted by the band's size."""
    f = flagged(pairs_csv)
    inside = set(f) & cifair_tests()
    outside = [t for t in f if t not in inside]
    j = judgments(judged_csv)
    bands = {}
    for t in outside:  # a verdict counts only for the pair it was given on
        b = bands.setdefault(_band(f[t][1]) or STRATA[0], {"n": 0, "judged": 0, "same": 0, "different": 0,
                                                          "unsure": 0})
        b["n"] += 1
        if (t, f[t][0]) in j:
            b["judged"] += 1
            b[j[t, f[t][0]]] += 1
    est_same = sum(b["n"] * b["same"] / b["judged"] for b in bands.values() if b["judged"])
    unjudged = sum(b["n"] for b in bands.values() if not b["judged"])
    tot = {k: sum(b[k] for b in bands.values()) for k in ("judged", "same", "different", "unsure")}
    return {"flagged": len(f), "in_cifair": len(inside), "outside": len(outside), **tot,
            "bands": {f"{lo:.1f}-{min(hi, 1.0):.1f}": b for (lo, hi), b in sorted(bands.items())},
            "unjudged_bands": unjudged,
            "precision": (len(inside) + est_same) / len(f) if f else float("nan")}


def reliability(out_dir: Path, judged_csv: Path = JUDGMENTS) -> list[dict]:
    """Judged test images (duplicates and possible tier) binned by confidence: mean confidence
    against the share judged ``same``."""
    out_dir = _out_dir(Path(out_dir))
    f = flagged(out_dir / "pairs.csv")
    for t, v in flagged(out_dir / "possible.csv").items():
        f.setdefault(t, v)
    j = judgments(judged_csv)
    cif = cifair_tests()
    rows = []
    for lo, hi in ((0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01)):
        got = [(c, j[t, o]) for t, (o, c) in f.items() if lo <= c < hi and t not in cif and (t, o) in j]
        if got:
            rows.append({"band": f"{lo:.1f}-{min(hi, 1.0):.1f}", "judged": len(got),
                         "mean_confidence": round(float(np.mean([c for c, _ in got])), 3),
                         "share_same": round(sum(v == "same" for _, v in got) / len(got), 3)})
    return rows


def sheet(out_dir: Path, per: int, seed: int, out: Path) -> Path | None:
    """A contact sheet of a seeded sample of ``per`` unjudged test images from each band (None: none to judge)."""
    if not Path(out_dir).exists():
        raise SystemExit(f"{out_dir}: no such file or folder")
    out_dir = _out_dir(Path(out_dir))
    if not (out_dir / "pairs.csv").is_file():
        raise SystemExit(f"{out_dir}: no pairs.csv in it (give the --out folder of a leakscan audit of CIFAR-10)")
    f = flagged(out_dir / "pairs.csv")
    for t, v in flagged(out_dir / "possible.csv").items():
        f.setdefault(t, v)
    done = judgments()
    cif = cifair_tests()
    pick = []
    for band in STRATA:
        pool = sorted(t for t in f if t not in cif and _band(f[t][1]) == band and (t, f[t][0]) not in done)
        random.Random(f"{seed}-{band}").shuffle(pool)
        have = sum(1 for t in f if t not in cif and _band(f[t][1]) == band and (t, f[t][0]) in done)
        pick += pool[:max(0, per - have)]
    if not pick:
        print(f"{out_dir}: no unjudged test image flagged outside ciFAIR's list: nothing to judge")
        return None
    missing = next((p for t in pick for p in (t, f[t][0]) if not (IMAGES / p).is_file()), None)
    if missing is not None:  # the sheet shows the CIFAR-10 images bench/run.py unpacks
        raise SystemExit(f"{IMAGES / missing}: not found (the pairs are not of the CIFAR-10 images under {IMAGES})")
    out.parent.mkdir(parents=True, exist_ok=True)
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
    s.add_argument("out_dir", type=Path, help="an audit's --out folder (pairs.csv and possible.csv)")
    s.add_argument("--per", type=int, default=40, help="judged images wanted per confidence band")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, default=ROOT / ".bench" / "sheet.png")
    r = sub.add_parser("record")
    r.add_argument("sample", type=Path)
    r.add_argument("verdicts")
    a = ap.parse_args()
    if a.cmd == "sheet":
        sheet(a.out_dir, a.per, a.seed, a.out)
    else:
        record(a.sample, a.verdicts)


if __name__ == "__main__":
    main()
