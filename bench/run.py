"""`make bench`: leakscan against a decode-only loop and a plain imagehash loop, in one run.

Writes bench/results.md (and prints it). Sections:

1. CIFAR-10 + ciFAIR (needs ../shared/bench/cifar10; skipped otherwise): wall time, peak
   memory, images/s and detection quality of `leakscan audit`, beside a single-process
   decode-only Pillow loop and an imagehash pHash loop + FAISS at Hamming <= 8.
   Precision from ciFAIR plus the pairs judged by eye (bench/judge.py, bench/judgments.csv),
   the threshold sweep, and `--model` when a model file is given.
2. Re-split on CIFAR-10: `--ratios train=0.8333,test=0.1667` and `--keep test`, each
   re-audited from the written manifest.
3. Photos: decode-only loop vs leakscan on 1,000 photo-sized JPEGs.
4. Transformed photos: per-transform recall and precision (bench/transformed.py).
5. Synthetic re-split scale: 1,000,000 images in 200,000 groups.
6. Synthetic search scale: 100k, 300k and 1M images of generated features with planted copies.

Times are for this machine in this run; compare the ratios, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tarfile
import time
from datetime import date
from pathlib import Path


HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH = ROOT.parent / "shared" / "bench" / "cifar10"
WORK = ROOT / ".bench"
sys.path.insert(0, str(HERE))
from cifar_quality import score  # noqa: E402

LEAKSCAN = [sys.executable, "-m", "leakscan"]


def timed(cmd: list[str], **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run ``cmd``; wall seconds and peak RSS (MB) of the process and its children."""
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t
    if p.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak, p


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
    Image.open(root + '/' + r['path']).convert('RGB').load(); n += 1
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


def cifar_section(lines: list[str], jobs: int | None) -> None:
    data = WORK / "cifar10"
    if not (data / "test").exists():
        WORK.mkdir(exist_ok=True)
        with tarfile.open(BENCH / "images.tar") as tar:
            tar.extractall(WORK, filter="data")
    manifest = str(BENCH / "manifest.csv")
    n = 60000
    res = {}
    w, m, _ = child(DECODE_LOOP.format(root=str(WORK), manifest=manifest))
    res["decode-only loop (Pillow, 1 process)"] = (w, m, None)
    ph_out = WORK / "phash_pairs.csv"
    w, m, _ = child(PHASH_LOOP.format(root=str(WORK), manifest=manifest, out=str(ph_out)))
    res["imagehash pHash loop + FAISS, Hamming <= 8"] = (w, m, score(ph_out))
    out = WORK / "audit"
    cache = WORK / "cache.sqlite"
    for p in WORK.glob("cache.sqlite*"):
        p.unlink()
    cmd = LEAKSCAN + ["audit", str(data), "--out", str(out), "--force", "--quiet", "--cache", str(cache)]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    w, m, _ = timed(cmd)
    res["leakscan audit (defaults, cold cache)"] = (w, m, score(out / "pairs.csv"))
    w, m, _ = timed(cmd)
    res["leakscan audit again (warm cache)"] = (w, m, score(out / "pairs.csv"))
    summary = json.loads((out / "summary.json").read_text())
    base = res["decode-only loop (Pillow, 1 process)"][0]
    ph = res["imagehash pHash loop + FAISS, Hamming <= 8"][0]
    cold = res["leakscan audit (defaults, cold cache)"][0]
    warm = res["leakscan audit again (warm cache)"][0]
    lines += ["## CIFAR-10 (60,000 JPEGs, 32x32) with ciFAIR's judged duplicates", "",
              "| tool | wall s | x decode-only | peak MB | images/s | recall j1 train-test | recall j2 | recall test-test | test images flagged | of them in ciFAIR |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, (w, m, q) in res.items():
        cells = [name, f"{w:.1f}", f"{w / base:.2f}", f"{m:.0f}", f"{n / w:,.0f}"]
        if q:
            cells += [f"{q['recall_j1_train_test']:.3f}", f"{q['recall_j2_train_test']:.3f}",
                      f"{q['recall_test_test']:.3f}", str(q["test_images_flagged"]), str(q["flagged_in_cifair"])]
        else:
            cells += ["-"] * 5
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"leakscan (cold) takes {cold / base:.2f}x the time of the decode-only loop and {cold / ph:.2f}x "
              f"that of the imagehash loop; the warm-cache re-run takes {100 * warm / cold:.0f}% of the cold run. "
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


def photos_section(lines: list[str]) -> None:
    folder = WORK / "photos"
    if not folder.exists():
        subprocess.run([sys.executable, str(HERE / "make_photos.py"), str(folder), "--n", "1000"], check=True,
                       capture_output=True)
    files = sorted(str(p) for p in folder.glob("*.jpg"))
    listing = WORK / "photos.csv"
    listing.write_text("path,split\n" + "".join(f"{Path(f).name},all\n" for f in files))
    w0, _, _ = child(DECODE_LOOP.format(root=str(folder), manifest=str(listing)))
    w1, m1, _ = timed(LEAKSCAN + ["audit", str(folder), "--no-cache", "--quiet"])
    lines += ["## Photos: 1,000 JPEGs of 300-500 px (bench/make_photos.py)", "",
              "| tool | wall s | images/s | x decode-only |", "| --- | ---: | ---: | ---: |",
              f"| decode-only loop (Pillow, 1 process) | {w0:.1f} | {len(files) / w0:,.0f} | 1.00 |",
              f"| leakscan audit --no-cache | {w1:.1f} | {len(files) / w1:,.0f} | {w1 / w0:.2f} |", ""]


def big_scale_section(lines: list[str]) -> None:
    lines += ["## Search scale: synthetic features with planted duplicate groups (bench/scale.py)", "",
              "Features are generated, not decoded: clustered 128-d embeddings and random 64-bit hashes; 5% of "
              "images are edited copies (cosine ~0.93, 0-4 hash bits flipped). Time is search + groups + "
              "leakage report. Generated features have no pixels, so this runs the search with "
              "`min_ncc=-1, crops=False, transforms=\"flip\"` (no verification, no crop views, plain and "
              "mirrored queries): it measures how the index search scales, not the verification.", "",
              "| images | index | seconds | peak MB | planted pairs | found (direct pair) | found (same group) | largest group |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, exact in ((100_000, True), (100_000, False), (300_000, False), (1_000_000, False)):
        p = subprocess.run([sys.executable, str(HERE / "scale.py"), str(n)] + (["--exact"] if exact else []),
                           capture_output=True, text=True, check=True)
        d = json.loads(p.stdout.strip().splitlines()[-1])
        lines.append(f"| {n:,} | {'exact' if exact else 'default'} | {d['seconds_total']} | {d['peak_mb']:,} | "
                     f"{d['planted_pairs']:,} | {d['planted_found_direct']:.4f} | {d['planted_same_group']:.4f} | "
                     f"{d['largest_group']} |")
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
    sweeps = [("defaults (--max-hamming 6 --min-cosine 0.70 --min-ncc 0.60 --transforms all --crops)", [])]
    sweeps += [(f"--min-ncc {c}", ["--min-ncc", str(c)]) for c in (0.5, 0.55, 0.65, 0.7, -1)]
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
            "--min-cosine 2", "--min-cosine 2 (hash only)").replace("--min-ncc -1", "--min-ncc -1 (no verification)")
        lines.append(f"| `{label}` | {n:,} | {q['recall_j1_train_test']:.3f} | {q['recall_j2_train_test']:.3f} | "
                     f"{q['recall_test_test']:.3f} | {q['test_images_flagged']} | {q['flagged_in_cifair']} |")
    lines.append("")


def judged_section(lines: list[str]) -> None:
    """Precision of the default audit on CIFAR-10: ciFAIR's list plus the pairs judged by eye."""
    sys.path.insert(0, str(HERE))
    from judge import estimate  # noqa: PLC0415

    e = estimate(WORK / "audit" / "pairs.csv", HERE / "judgments.csv")
    lines += ["## Precision on CIFAR-10 (defaults): ciFAIR plus a sample judged by eye", "",
              "ciFAIR lists at most one train partner per test image and missed real copies, so a flagged test "
              "image outside its list is not necessarily wrong. `bench/judge.py` draws a seeded random sample of "
              "them and shows each beside its partner; our verdicts are in `bench/judgments.csv` (same picture, "
              "different, unsure). Estimated precision = (in ciFAIR + outside x share judged same) / flagged; "
              "unsure counts as different.", "",
              "| test images flagged | in ciFAIR | outside | outside, judged | judged same | judged different | unsure "
              "| estimated precision |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
              f"| {e['flagged']} | {e['in_cifair']} | {e['outside']} | {e['judged']} | {e['same']} | "
              f"{e['different']} | {e['unsure']} | {e['precision']:.3f} |", ""]


def model_section(lines: list[str], model: str | None) -> None:
    """`--model`: a learned embedding on CIFAR-10, when a model file is on this machine."""
    lines += ["## Learned embedding (`--model`, the onnx extra)", ""]
    if not model:
        lines += ["No image-embedding ONNX model file is on this machine (nothing is downloaded), so this row "
                  "is not measured. Run `python bench/run.py --model PATH.onnx` to add it. The backend itself is "
                  "tested on small ONNX graphs that the tests build (tests/test_model.py).", ""]
        return
    data, cache = WORK / "cifar10", WORK / "cache.sqlite"
    out = WORK / "model"
    w, m, _ = timed(LEAKSCAN + ["audit", str(data), "--out", str(out), "--force", "--quiet", "--no-html",
                                "--cache", str(cache), "--model", model])
    q = score(out / "pairs.csv")
    lines += ["| run | wall s | peak MB | recall j1 | recall j2 | recall test-test | flagged | in ciFAIR |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
              f"| defaults + `--model {Path(model).name}` | {w:.1f} | {m:.0f} | {q['recall_j1_train_test']:.3f} | "
              f"{q['recall_j2_train_test']:.3f} | {q['recall_test_test']:.3f} | {q['test_images_flagged']} | "
              f"{q['flagged_in_cifair']} |", ""]


def transformed_section(lines: list[str]) -> None:
    """Per-transform recall and precision on edited photos (bench/transformed.py)."""
    p = subprocess.run([sys.executable, str(HERE / "transformed.py")], capture_output=True, text=True, check=True)
    d = json.loads(p.stdout)
    lines += [f"## Transformed photos: {d['originals']} originals x 5 edits, JPEG q85 (bench/transformed.py)", "",
              "Originals are non-overlapping 256x256 tiles of the photos shipped with scikit-learn and "
              "scikit-image; the other originals are the distractors. Ground truth is complete.", "",
              "| tool | pairs | precision | crop 70-80% | hflip | vflip | rotate 25 deg | resize to square |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in d.items():
        if isinstance(r, dict):
            lines.append(f"| {name} | {r['pairs']} | {r['precision']} | {r['recall_crop']} | {r['recall_hflip']} | "
                         f"{r['recall_vflip']} | {r['recall_rot25']} | {r['recall_square']} |")
    lines.append("")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--skip-cifar", action="store_true")
    ap.add_argument("--skip-scale", action="store_true", help="skip the synthetic 100k-1M search runs")
    ap.add_argument("--only", choices=["thresholds", "transformed", "peers", "judged"],
                    help="run one section and print it")
    ap.add_argument("--model", default=os.environ.get("LEAKSCAN_BENCH_MODEL"),
                    help="an image-embedding ONNX model to add to the CIFAR-10 run")
    a = ap.parse_args()
    lines = [f"# leakscan benchmark — {date.today()} — {platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}", ""]
    if a.only:
        {"thresholds": thresholds_section, "transformed": transformed_section, "peers": peers_section,
         "judged": judged_section}[a.only](lines)
        print("\n".join(lines))
        return 0
    if BENCH.exists() and not a.skip_cifar:
        cifar_section(lines, a.jobs)
        judged_section(lines)
        thresholds_section(lines)
        model_section(lines, a.model)
        peers_section(lines)
    else:
        lines += [f"CIFAR-10 section skipped: {BENCH} not found.", ""]
    photos_section(lines)
    transformed_section(lines)
    scale_section(lines)
    if not a.skip_scale:
        big_scale_section(lines)
    text = "\n".join(lines)
    (HERE / "results.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
