"""Synthetic scale run: features generated (not decoded) with planted duplicate groups, then
search -> groups -> leakage report. Prints one JSON line.

    python bench/scale.py N [--exact] [--thumbs]

--exact forces brute-force indexes (the reference the approximate ones are compared with).
--thumbs also generates 32x32 thumbnails and 16x16 colour and folded thumbnails (a copy is its base
shifted by up to a pixel, with noise), so every candidate is aligned, the decision is
calibrated on copies of the thumbnails, and the run measures search + verification +
calibration + groups + report, as a real audit after decoding.

Without --thumbs the features have no pixels, so the decision's calibration copies blank
pictures and learns nothing (at 10,000 images it finds too few copies to fit, and every
candidate is left possible): what that run measures is the search, ``planted_proposed`` (the
planted pairs the search proposed, as duplicates or possible), and it says so on stderr.
``planted_found_direct`` and ``planted_same_group`` count the decided duplicates only.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np


def thumbs(n: int, base_of: np.ndarray, seed: int = 1, block: int = 10_000):
    """``(thumb (n, 32, 32), colour (n, 3, 16, 16), folded (n, 16, 16))`` uint8: blocky random
    structure; row k copies row ``base_of[k]`` (shifted by up to a pixel, plus noise) where
    ``base_of[k] != k``; ``folded``: the colour folded about mid-grey (``Features.folded``)."""
    from leakscan.features import luma

    rng = np.random.default_rng(seed)
    thumb = np.empty((n, 32, 32), np.uint8)
    for s in range(0, n, block):
        m = min(block, n - s)
        coarse = rng.integers(0, 256, (m, 8, 8)).astype(np.float32)
        fine = rng.integers(-40, 41, (m, 16, 16)).astype(np.float32)
        img = np.repeat(np.repeat(coarse, 4, 1), 4, 2) + np.repeat(np.repeat(fine, 2, 1), 2, 2)
        thumb[s:s + m] = np.clip(img, 0, 255).astype(np.uint8)
    copies = np.flatnonzero(base_of != np.arange(n))
    for s in range(0, len(copies), block):
        c = copies[s:s + block]
        shifted = np.roll(thumb[base_of[c]], (int(rng.integers(-1, 2)), int(rng.integers(-1, 2))), axis=(1, 2))
        noisy = shifted.astype(np.float32) + rng.normal(0, 4, shifted.shape).astype(np.float32)
        thumb[c] = np.clip(noisy, 0, 255).astype(np.uint8)
    gains = np.random.default_rng(seed + 1).uniform(0.6, 1.2, (n, 3, 1, 1)).astype(np.float32)
    gains[copies] = gains[base_of[copies]]
    colour = np.empty((n, 3, 16, 16), np.uint8)
    for s in range(0, n, block):
        small = thumb[s:s + block].reshape(-1, 16, 2, 16, 2).mean(axis=(2, 4), dtype=np.float32)
        colour[s:s + block] = np.clip(small[:, None] * gains[s:s + block], 0, 255).astype(np.uint8)
    folded = np.empty((n, 16, 16), np.uint8)
    for s in range(0, n, block):
        c = colour[s:s + block].astype(np.float32)
        folded[s:s + block] = np.rint(2 * luma(np.minimum(c, 255 - c))).astype(np.uint8)
    return thumb, colour, folded


def synth(n: int, seed: int = 0, dup_frac: float = 0.05, with_thumbs: bool = False):
    from leakscan.features import EMBED_DIM, Features
    from leakscan.views import N_VARIANTS

    rng = np.random.default_rng(seed)
    n_centres = max(100, n // 1000)
    centres = rng.standard_normal((n_centres, EMBED_DIM)).astype(np.float32)
    emb = centres[rng.integers(0, n_centres, n)]
    emb += rng.standard_normal((n, EMBED_DIM), dtype=np.float32)  # same-cluster cosine ~0.5
    hashes = rng.integers(0, 256, (n, N_VARIANTS, 8), dtype=np.uint8)
    # planted groups: a base image and 1-3 edited copies (cosine ~0.93, 0-4 hash bits flipped)
    n_copies = int(n * dup_frac)
    bases = rng.choice(n, n_copies // 2, replace=False)
    copy_base = np.repeat(bases, rng.integers(1, 4, len(bases)))[:n_copies]
    slots = rng.choice(np.setdiff1d(np.arange(n), bases), len(copy_base), replace=False)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    emb[slots] = emb[copy_base] + 0.035 * rng.standard_normal((len(slots), EMBED_DIM), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    hashes[slots, 0] = hashes[copy_base, 0]
    flips = rng.integers(0, 5, len(slots))
    for k in range(4):
        sel = flips > k
        bit = rng.integers(0, 64, sel.sum())
        hashes[slots[sel], 0, bit // 8] ^= (1 << (7 - bit % 8)).astype(np.uint8)
    digests = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    extra = {}
    if with_thumbs:
        base_of = np.arange(n)
        base_of[slots] = copy_base
        extra["thumb"], extra["colour"], extra["folded"] = thumbs(n, base_of)
    f = Features(ok=np.ones(n, bool), file_digest=digests, pixel_digest=digests.copy(), hashes=hashes,
                 embedding=emb, low_info=np.zeros(n, bool), sizes=np.full((n, 2), 32, np.int32), **extra)
    return f, np.stack([np.minimum(slots, copy_base), np.maximum(slots, copy_base)], 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int, help="images (rows of features) to generate")
    ap.add_argument("--exact", action="store_true", help="brute-force indexes (the reference)")
    ap.add_argument("--thumbs", action="store_true", help="also generate thumbnails: verification and calibration run")
    a = ap.parse_args()
    n, exact, with_thumbs = a.n, a.exact, a.thumbs
    import leakscan.index as index
    from leakscan.audit import analyse
    from leakscan.manifest import Manifest
    from leakscan.settings import DetectSettings

    if exact:
        index.EXACT_MAX = index.HAMMING_EXACT_MAX = 10**12
    t0 = time.perf_counter()
    feats, planted = synth(n, with_thumbs=with_thumbs)
    t_synth = time.perf_counter() - t0
    peak_generate = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(1)
    m = Manifest(paths=np.array([f"img{k}" for k in range(n)], dtype=object),
                 splits=np.where(rng.random(n) < 0.8, "train", "test").astype(object),
                 labels=rng.integers(0, 10, n).astype(str).astype(object),
                 groups=np.full(n, "", dtype=object))
    t = time.perf_counter()
    # plain + mirrored queries, no crop views. Without --thumbs the features have no pixels:
    # nothing to verify, so this measures the search and the analysis, not the verification
    settings = DetectSettings(crops=False, transforms="flip") if with_thumbs else \
        DetectSettings(min_ncc=-1, crops=False, transforms="flip")
    from leakscan.decide import detect
    from leakscan.parallel import check_jobs

    det = detect(feats, settings, jobs=check_jobs(None) if with_thumbs else 1)
    pairs = det.pairs
    t_pairs = time.perf_counter() - t
    audit = analyse(m, feats, pairs, settings)
    total = time.perf_counter() - t
    found = set(zip(pairs.i.tolist(), pairs.j.tolist()))
    direct = np.mean([(a, b) in found for a, b in planted.tolist()])
    found |= set(zip(det.possible.i.tolist(), det.possible.j.tolist()))
    proposed = float(np.mean([(a, b) in found for a, b in planted.tolist()]))
    g = audit.groups.ids
    grouped = float(np.mean(g[planted[:, 0]] == g[planted[:, 1]]))
    print(json.dumps({"n": n, "exact": exact, "thumbs": with_thumbs, "seconds_generate": round(t_synth, 1),
                      "seconds_search": round(t_pairs, 1), "seconds_total": round(total, 1),
                      "timings": {k: round(v, 1) for k, v in det.timings.items()},
                      "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "peak_mb_after_generating": round(peak_generate),
                      "planted_pairs": len(planted), "planted_found_direct": round(float(direct), 4),
                      "planted_same_group": round(grouped, 4), "n_pairs": len(pairs),
                      "largest_group": int(audit.groups.sizes.max()), "planted_proposed": round(proposed, 4),
                      "calibrated": det.calibration is not None, "warnings": list(det.warnings)}))
    if not with_thumbs or det.calibration is None:
        why = ("without --thumbs the features have no pixels: the calibration copies blank pictures, so the "
               "decision is not measured" if not with_thumbs else
               f"the decision could not be calibrated at {n:,} images")
        print(f"scale.py: {why}; planted_found_direct ({direct:.4f}) counts the pairs decided duplicates, the "
              f"search proposed {proposed:.4f} of the {len(planted):,} planted pairs (planted_proposed)"
              + ("" if det.calibration is not None else
                 ": no decision was fitted, so every candidate but an exact copy is only possible"),
              file=sys.stderr)


if __name__ == "__main__":
    main()
