"""How much the decision depends on the calibration's sample of copies.

The decision is learnt at run time from synthetic copies of a sample of the dataset's own
images (leakscan.calibrate). The sample and the copies are fixed by content, so one dataset
always gives the same decision; but another, equally valid sample would give a slightly
different fit. This measures by how much: the same candidates and evidence are decided by
``--salts`` calibrations, each on another sample and other copies (``calibrate(salt=k)``;
salt 0 is the decision audits make).

Reports per salt the bar in force (``min_confidence``, raised by ``min_precision`` as the audit
raises it, :func:`leakscan.decide.with_bar_in_force`), the duplicates at it (and the pairs within their groups the audit adds,
``leakscan.decide.within_group_pairs``; with a ciFAIR truth file: recall of judgment-1 train-test
pairs, listed and in one group, test images flagged and their precision by the verdicts of
``bench/judgments.csv``, with how many flagged outside ciFAIR have none yet) and, over every two salts, the share of candidates whose tier
differs (duplicate or not) and the median and 90th percentile of the confidence difference.

    python bench/stability.py FOLDER [--salts 5] [--cache PATH] [--truth PAIRS.csv [--pairs DIR]] [--json]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def run(folder: Path, salts: int, cache, jobs, truth: Path | None, pairs_dir: Path | None = None) -> dict:
    import leakscan
    from leakscan.calibrate import adjust_to_prior, calibrate
    from leakscan.decide import with_bar_in_force, within_group_pairs
    from leakscan.evidence import EVIDENCE, pair_evidence, shared_overlay_of
    from leakscan.features import load_pictures
    from leakscan.groups import components
    from leakscan.pairs import Kind, PairTable, find_candidates
    from leakscan.parallel import check_jobs
    from leakscan.views import transform_variants

    jobs = check_jobs(jobs)
    result = leakscan.audit(folder, cache=cache if cache else False, jobs=jobs)
    if result.skipped:  # files the audit could not read are not in the figures
        print(f"{folder}: {len(result.skipped)} file(s) skipped by the audit, e.g. "
              + "; ".join(f"{p}: {why}" for p, why in result.skipped[:3]), file=sys.stderr)
    if result.n_images < 2:
        raise SystemExit(f"{folder}: need at least 2 images the audit reads, found {result.n_images}")
    features, manifest, s = result.features, result.manifest, result.settings
    splits = np.asarray(manifest.splits) if s.scope == "cross" else None
    found = find_candidates(features, s, splits=splits)
    overlay = shared_overlay_of(features, found.search_rows)  # as the audit leaves it out
    evidence = pair_evidence(features, found.pairs, found.kth_neighbour, transform_variants(s.transforms),
                             min_ncc=s.min_ncc, jobs=jobs, overlay=overlay)
    ncc = evidence[:, EVIDENCE.index("ncc")]
    keep = (found.pairs.kind != Kind.EXACT) & (ncc >= s.min_ncc)
    cands, evidence = found.pairs.take(keep), evidence[keep]
    images = lambda rows: load_pictures(manifest, rows, kept=features.pictures)  # noqa: E731
    conf, bars, per_salt = [], [], []
    scratch = tempfile.TemporaryDirectory() if truth is not None and pairs_dir is None else None  # removed when done
    out = Path(scratch.name if scratch is not None else pairs_dir or ".")
    if truth is not None:
        out.mkdir(parents=True, exist_ok=True)
    for salt in range(salts):
        t = time.perf_counter()
        cal = calibrate(features, s, found, images=images, jobs=jobs, salt=salt, overlay=overlay)
        raw = cal.predict(evidence) if cal is not None else np.zeros(len(cands), np.float32)
        c, prior = adjust_to_prior(raw) if cal is not None else (raw, None)
        conf.append(c)
        exact = found.pairs.take(found.pairs.kind == Kind.EXACT)
        bar = s.min_confidence
        if cal is not None:  # the bar in force, as the audit raises it (--min-precision)
            decided = PairTable.concat([exact, dataclasses.replace(cands, confidence=c)])
            cal, _ = with_bar_in_force(cal, decided, len(features), s.min_precision)
            bar = cal.threshold
        bars.append(bar)
        dup = c >= bar
        pairs_i, pairs_j = cands.i[dup], cands.j[dup]
        if cal is not None:  # and the pairs within the groups, as the audit lists them
            cal = dataclasses.replace(cal, stats={**cal.stats, "prior": float(prior)})
            dup_pairs = PairTable.concat([exact, dataclasses.replace(cands, confidence=c).take(dup)]).sorted()
            within = within_group_pairs(features, dup_pairs, found, s, cal, splits, jobs, overlay=overlay)
            within = within.take(within.confidence >= bar)
            pairs_i, pairs_j = np.r_[pairs_i, within.i], np.r_[pairs_j, within.j]
        row = {"salt": salt, "bar": round(float(bar), 4), "duplicates": int(dup.sum()),
               "within_groups": len(pairs_i) - int(dup.sum()),
               "seconds": round(time.perf_counter() - t, 1),
               "heldout_auc": cal.stats.get("heldout_auc") if cal is not None else None,
               "prior": round(float(prior), 4) if prior is not None else None,
               "at_even_odds": int((raw >= s.min_confidence).sum())}
        if truth is not None:
            from cifar_quality import norm, score
            from judge import estimate

            confidence = np.r_[c[dup], within.confidence] if cal is not None else c[dup]
            paths, split_of = [str(p) for p in manifest.paths], np.asarray(manifest.splits, dtype=object)
            with open(out / f"salt_{salt}.csv", "w", newline="") as f:  # to judge: bench/judge.py sheet
                w = csv.writer(f)
                w.writerow(["a", "b", "split_a", "split_b", "confidence"])
                for i, j, p in zip(pairs_i, pairs_j, confidence):
                    w.writerow([paths[i], paths[j], split_of[i], split_of[j], f"{p:.4f}"])
            group = components(len(features), pairs_i, pairs_j)  # images joined by duplicates
            q = score(Path(f.name), truth, groups={norm(p): str(g) for p, g in zip(paths, group)})
            judged = estimate(Path(f.name))
            row.update(recall_j1=q["recall_j1_train_test"], recall_j1_grouped=q["recall_j1_train_test_grouped"],
                       flagged=q["test_images_flagged"], in_cifair=q["flagged_in_cifair"],
                       judged_precision=round(judged["precision"], 4), unjudged=judged["outside"] - judged["judged"])
        per_salt.append(row)
    flips, med, p90 = [], [], []
    for a, b in itertools.combinations(range(salts), 2):
        da, db = conf[a] >= bars[a], conf[b] >= bars[b]
        flips.append(float(np.mean(da != db)) if len(da) else 0.0)
        diff = np.abs(conf[a] - conf[b])
        med.append(float(np.median(diff)) if len(diff) else 0.0)
        p90.append(float(np.percentile(diff, 90)) if len(diff) else 0.0)
    dup_any = np.any([c >= bar for c, bar in zip(conf, bars)], axis=0) if conf else np.zeros(0, bool)
    return {"folder": str(folder), "candidates": int(len(cands)), "per_salt": per_salt,
            "tier_differs": round(float(np.mean(flips)), 4) if flips else None,
            "tier_differs_max": round(float(np.max(flips)), 4) if flips else None,
            "tier_differs_among_duplicates": round(float(np.mean(
                [np.mean((conf[a] >= bars[a])[dup_any] != (conf[b] >= bars[b])[dup_any])
                 for a, b in itertools.combinations(range(salts), 2)])), 4) if flips and dup_any.any() else None,
            "confidence_diff_median": round(float(np.mean(med)), 4) if med else None,
            "confidence_diff_p90": round(float(np.mean(p90)), 4) if p90 else None}


def markdown(res: dict) -> str:
    cifar = "recall_j1" in res["per_salt"][0]
    lines = [f"{res['folder']}: {res['candidates']:,} candidates at the `min_ncc` floor, decided by "
             f"{len(res['per_salt'])} calibrations (salt 0: the audit's).", "",
             "| salt | bar | duplicates (+ within groups) | held-out AUC | copies' share (prior) | duplicates at even odds |"
             + (" recall j1 | in one group | test images flagged | in ciFAIR | judged precision (unjudged) |"
                if cifar else ""),
             "| ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: | ---: | ---: | ---: |" if cifar else "")]
    for r in res["per_salt"]:
        lines.append(f"| {r['salt']} | {r['bar']:.3f} | {r['duplicates']:,} (+{r['within_groups']:,}) | {r['heldout_auc']} | {r['prior']} | {r['at_even_odds']:,} |"
                     + (f" {r['recall_j1']:.3f} | {r['recall_j1_grouped']:.3f} | {r['flagged']} | {r['in_cifair']} |"
                        f" {r['judged_precision']:.3f} ({r['unjudged']}) |" if cifar else ""))
    lines += ["", f"Over every two calibrations: the tier differs for {_shown(res['tier_differs'], '.2%')} of the "
              f"candidates (at most {_shown(res['tier_differs_max'], '.2%')}; "
              f"{_shown(res['tier_differs_among_duplicates'], '.2%')} of the pairs any calibration calls "
              f"duplicates); confidence differs by {_shown(res['confidence_diff_median'], '.3f')} (median), "
              f"{_shown(res['confidence_diff_p90'], '.3f')} (90th percentile)."]
    return "\n".join(lines)


def _shown(value, spec: str) -> str:
    """``value`` formatted by ``spec``; "n/a" for None (no duplicate in any calibration, or fewer than two)."""
    return "n/a" if value is None else format(value, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--salts", type=int, default=5)
    ap.add_argument("--cache", default=None, help="feature cache file (default: none)")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--truth", type=Path, default=None, help="ciFAIR pairs.csv, to score CIFAR-10")
    ap.add_argument("--pairs", type=Path, default=None,
                    help="with --truth: write each salt's duplicate pairs here (salt_K.csv), to judge")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.salts < 2:
        ap.error("--salts: give 2 or more (the spread is measured between calibrations)")
    if a.truth is not None and not a.truth.is_file():
        ap.error(f"--truth {a.truth}: no such file")
    if a.pairs is not None and a.truth is None:
        ap.error("--pairs works with --truth (the pairs are written to be judged against it)")
    from leakscan.errors import LeakscanError

    try:
        res = run(a.folder, a.salts, a.cache, a.jobs, a.truth, a.pairs)
    except LeakscanError as exc:  # a folder leakscan refuses (missing, no images): its one line
        sys.exit(f"stability.py: {exc}")
    print(json.dumps(res, indent=1) if a.json else markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
