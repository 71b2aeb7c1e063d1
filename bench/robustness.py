"""A 20,000-file folder with 5% bad files of every kind the test corpus has; audit it and
check that every file is accounted for. Then the hostile environment of issue 15: special
files (FIFOs, a symlink to /dev/zero, a folder named like an image), a full disk and a
read-only disk (a small tmpfs; skipped where it cannot be mounted, i.e. not root), and a
--materialize killed half-way and resumed. One JSON line per case.

    python bench/robustness.py [WORK_DIR] [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from corpus import make_corpus  # noqa: E402
from transformed import fresh_work  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])  # its first line stops mid-sentence
    ap.add_argument("work", type=Path, nargs="?", default=HERE.parent / ".bench" / "robustness")
    ap.add_argument("--n", type=int, default=20_000)
    a = ap.parse_args()
    fresh_work(a.work)
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
    specials = 0
    if hasattr(os, "mkfifo"):  # special files: skipped with a reason, never read, never waited on
        for k in range(3):
            os.mkfifo(data / "test" / f"fifo{k}.png")
            specials += 1
    if os.path.exists("/dev/zero"):
        os.symlink("/dev/zero", data / "test" / "zero.png")
        specials += 1
    (data / "train" / "folder.png").mkdir(exist_ok=True)  # not listed: folders are not files
    t = time.perf_counter()
    out = a.work / "out"
    p = subprocess.run([sys.executable, "-m", "leakscan", "audit", str(data), "--out", str(out), "--no-cache",
                        "--quiet", "--no-html"], capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t
    d = json.loads((out / "summary.json").read_text())
    files = sum(1 for f in data.rglob("*") if not f.is_dir() or f.is_symlink())
    print(json.dumps({"case": "dirty folder", "files_on_disk": files, "n_files": d["n_files"],
                      "n_images": d["n_images"], "n_skipped": d["n_skipped"], "bad_files_planted": n_bad,
                      "special_files_planted": specials,
                      "accounted_for": d["n_files"] == d["n_images"] + d["n_skipped"] == files,
                      "exit_code": p.returncode, "seconds": round(wall, 1)}))
    hostile(a.work)


def leakscan(*args, timeout=600):
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "leakscan", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    return p, round(time.perf_counter() - t, 2)


@contextmanager
def tmpfs(size: str):
    where = Path(tempfile.mkdtemp(prefix="leakscan-bench-tmpfs-"))
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                        capture_output=True).returncode == 0
    try:
        yield where if ok else None
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


def fill(folder: Path) -> None:
    for name, block in (("filler", 1 << 16), ("filler2", 1)):
        try:
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT)
        except OSError:
            return
        try:
            while True:
                os.write(fd, b"\0" * block)
        except OSError:
            pass
        finally:
            os.close(fd)


def small_dataset(root: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(1)
    for i in range(n):
        p = root / ("train" if i % 4 else "test") / f"c{i % 3}" / f"i{i:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(p)
        if i % 10 == 0 and i:  # a leak every ten images
            q = root / "test" / f"c{i % 3}" / f"copy{i:04d}.png"
            q.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, q)
    return root


def one_line(p) -> bool:
    return p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def hostile(work: Path) -> None:
    data = small_dataset(work / "small")
    cache = work / "c.sqlite"
    base, _ = leakscan("audit", data, "--cache", cache, "--json", "-q")
    want = json.loads(base.stdout)["n_cross_split_pairs"] if base.returncode == 0 else None
    n_files = sum(1 for _ in data.rglob("*.png"))

    with tmpfs("256k") as fs:  # full disk at --out: one line, exit 2, the old set intact
        if fs is None:
            print(json.dumps({"case": "full disk", "skipped": "cannot mount a tmpfs (needs root)"}))
        else:
            out = fs / "report"
            first, _ = leakscan("audit", data, "--out", out, "--no-cache", "-q", "--no-html")
            before = {f.name: f.read_bytes() for f in out.iterdir()} if first.returncode == 0 else {}
            fill(fs)
            p, sec = leakscan("audit", data, "--out", out, "--no-cache", "-q", "--force")
            after = {f.name: f.read_bytes() for f in out.iterdir()} if out.exists() else {}
            print(json.dumps({"case": "full disk at --out", "exit_code": p.returncode, "one_line": one_line(p),
                              "old_set_intact": bool(before) and after == before, "seconds": sec}))
            c = fs / "c.sqlite"
            p, sec = leakscan("audit", data, "--cache", c, "--json", "-q")
            d = json.loads(p.stdout) if p.returncode == 0 else {}
            print(json.dumps({"case": "full disk at the cache", "exit_code": p.returncode,
                              "same_pairs": d.get("n_cross_split_pairs") == want,
                              "warned": any("cache" in w for w in d.get("warnings", [])),
                              "nothing_set_aside": not list(fs.glob("*.broken-*")), "seconds": sec}))

    with tmpfs("8m") as fs:  # read-only disk: the cache is read, not written, not set aside
        if fs is None:
            print(json.dumps({"case": "read-only disk", "skipped": "cannot mount a tmpfs (needs root)"}))
        else:
            c = fs / "c.sqlite"
            leakscan("audit", data, "--cache", c, "-q")
            subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
            p, sec = leakscan("audit", data, "--cache", c, "--json", "-q")
            d = json.loads(p.stdout) if p.returncode == 0 else {}
            q, _ = leakscan("audit", data, "--out", fs / "report", "--no-cache", "-q")
            print(json.dumps({"case": "read-only disk", "exit_code": p.returncode,
                              "same_pairs": d.get("n_cross_split_pairs") == want, "n_cached": d.get("n_cached"),
                              "n_images": d.get("n_images"),
                              "warned": any("not storing" in w for w in d.get("warnings", [])),
                              "nothing_set_aside": not list(fs.glob("*.broken-*")),
                              "out_on_read_only_disk_exit": q.returncode, "out_one_line": one_line(q),
                              "seconds": sec}))

    # --materialize killed half-way, then resumed
    tree = work / "tree"
    args = [sys.executable, "-m", "leakscan", "resplit", str(data), "--out", str(work / "new.csv"),
            "--materialize", str(tree), "--link", "copy", "--cache", str(cache), "-q", "--force"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if tree.exists() and sum(1 for _ in tree.rglob("*.png")) >= n_files // 3:
            break
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    visible = [f for f in tree.rglob("*") if f.is_file() and not f.name.startswith(".")]
    sources = {f.read_bytes() for f in data.rglob("*.png")}
    partial = sum(1 for f in visible if f.read_bytes() not in sources)
    p = subprocess.run(args, capture_output=True, text=True)
    placed = [f for f in tree.rglob("*") if f.is_file()]
    rows = sum(1 for _ in open(work / "new.csv")) - 1
    print(json.dumps({"case": "interrupted --materialize", "killed_mid_run": killed,
                      "files_before_kill": len(visible), "partial_files": partial,
                      "rerun_exit": p.returncode, "files_after_rerun": len(placed), "manifest_rows": rows,
                      "hidden_leftovers": sum(1 for f in placed if f.name.startswith("."))}))


if __name__ == "__main__":
    main()
