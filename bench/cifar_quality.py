"""Score a leakscan pairs.csv (or any a,b pair list) against ciFAIR's judged CIFAR-10 duplicates.

Usage: python bench/cifar_quality.py PAIRS.csv [--truth ../shared/bench/cifar10/pairs.csv] [--json]

Pairs are matched by path (relative to the folder holding ``cifar10/``). Reports recall of
judgment-1 and judgment-2 train-test pairs and of test-test pairs, the number of test images
flagged with a train partner, and precision against ciFAIR (a lower bound: ciFAIR lists at
most one train partner per test image and missed real duplicates). With the audit's
``groups.csv`` beside ``pairs.csv``, also the recall of judgment-1 train-test pairs whose two
images are in one duplicate group (``recall_j1_train_test_grouped``): the leak a user acts on,
listed as a pair of its own or not (where a photograph has many copies, the search proposes
each image's nearest few, and the pairs further down are in the group without a row of
their own unless their evidence holds on its own).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

DEFAULT_TRUTH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "cifar10" / "pairs.csv"


def norm(p: str) -> str:
    p = p.replace("\\", "/")
    k = p.find("cifar10/")
    return p[k:] if k >= 0 else "cifar10/" + p.lstrip("./")


def groups_of(groups_csv: Path) -> dict[str, str]:
    """Image path (normalised) -> its duplicate group, from an audit's ``groups.csv``."""
    return {norm(r["path"]): r["group"] for r in csv.DictReader(open(groups_csv, newline=""))}


def score(pairs_csv: Path, truth_csv: Path = DEFAULT_TRUTH, groups: dict[str, str] | None = None) -> dict:
    """The figures above; ``groups`` (path -> group, :func:`groups_of`; default: the
    ``groups.csv`` beside ``pairs_csv`` if there is one) adds the grouped recall."""
    truth = list(csv.DictReader(open(truth_csv, newline="")))
    if groups is None and (Path(pairs_csv).parent / "groups.csv").exists():
        groups = groups_of(Path(pairs_csv).parent / "groups.csv")
    found = set()
    test_with_train = set()
    for r in csv.DictReader(open(pairs_csv, newline="")):
        a, b = norm(r["a"]), norm(r["b"])
        found.add((a, b))
        found.add((b, a))
        sa, sb = a.split("/")[1], b.split("/")[1]
        if {sa, sb} == {"train", "test"}:
            test_with_train.add(a if sa == "test" else b)
    out = {}
    for name, sel in {
        "recall_j1_train_test": lambda t: t["judgment"] == "1" and t["source"] == "train-test",
        "recall_j2_train_test": lambda t: t["judgment"] == "2" and t["source"] == "train-test",
        "recall_test_test": lambda t: t["source"] == "test-test",
    }.items():
        rows = [t for t in truth if sel(t)]
        hit = sum((t["a"], t["b"]) in found for t in rows)
        out[name] = round(hit / len(rows), 4) if rows else None
        out[name.replace("recall", "n")] = len(rows)
        if groups is not None and name == "recall_j1_train_test":
            together = sum(groups.get(t["a"]) is not None and groups.get(t["a"]) == groups.get(t["b"]) for t in rows)
            out["recall_j1_train_test_grouped"] = round(together / len(rows), 4) if rows else None
    gt_test = {t["a"] for t in truth if t["source"] == "train-test"}
    out["test_images_flagged"] = len(test_with_train)
    out["flagged_in_cifair"] = len(test_with_train & gt_test)
    out["precision_vs_cifair"] = round(len(test_with_train & gt_test) / len(test_with_train), 4) if test_with_train else None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", type=Path)
    ap.add_argument("--truth", type=Path, default=DEFAULT_TRUTH)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    for what, path in (("PAIRS", a.pairs), ("--truth", a.truth)):
        if not path.is_file():
            ap.error(f"{what} {path}: no such file")
    res = score(a.pairs, a.truth)
    print(json.dumps(res, indent=2) if a.json else "\n".join(f"{k}: {v}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
