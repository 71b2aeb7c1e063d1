"""Costs that must not grow with the square of the data (the HTML report, per-class leak counts), and
work handed out a few tasks ahead, not all at once."""

import dataclasses
import time

import numpy as np

from leakscan.audit import analyse
from leakscan.features import Features
from leakscan.htmlreport import report_data
from leakscan.discovery import discover
from leakscan.pairs import PairTable
from leakscan.settings import DetectSettings


def synthetic_audit(n: int, n_pairs: int, n_classes: int, seed: int = 0):
    """n in-memory images (never decoded), ``n_pairs`` disjoint pairs (r, r + 1), half of them cross-split."""
    rng = np.random.default_rng(seed)
    m = discover(np.zeros((n, 1, 1, 3), np.uint8), splits=rng.choice(["train", "test"], n).tolist(),
                 labels=[f"c{k}" for k in rng.integers(0, n_classes, n)])
    feats = dataclasses.replace(Features.empty(n), ok=np.ones(n, bool))
    i = np.arange(0, 2 * n_pairs, 2, dtype=np.int64)
    pairs = PairTable(i=i, j=i + 1, kind=rng.integers(0, 3, n_pairs).astype(np.uint8),
                      score=rng.random(n_pairs, dtype=np.float32), hamming=np.zeros(n_pairs, np.int16),
                      cosine=np.ones(n_pairs, np.float32), variant=np.zeros(n_pairs, np.int8),
                      same_bytes=np.zeros(n_pairs, bool), ncc=np.ones(n_pairs, np.float32))
    return m, feats, pairs


def test_html_report_data_is_linear_in_the_pairs(monkeypatch):
    m, feats, pairs = synthetic_audit(60_000, 30_000, 10)
    result = analyse(m, feats, pairs, DetectSettings())
    calls = []
    original = PairTable.kind_names
    monkeypatch.setattr(PairTable, "kind_names", lambda self: calls.append(1) or original(self))
    t0 = time.perf_counter()
    data = report_data(result, max_thumbnails=0)
    elapsed = time.perf_counter() - t0
    assert len(data["pairs"]) == int(result.cross_split().sum()) > 10_000
    assert len(calls) <= 2  # once for the pair list, once for the summary: not once per pair
    assert elapsed < 20, elapsed  # quadratic was minutes here


def test_per_class_leak_counts_do_not_scale_with_classes_times_images():
    def run(n_classes):
        m, feats, pairs = synthetic_audit(100_000, 2_000, n_classes)
        t0 = time.perf_counter()
        result = analyse(m, feats, pairs, DetectSettings())
        return time.perf_counter() - t0, result

    run(10)  # warm up
    few, r_few = run(10)
    many, r_many = run(3000)
    # a mask per class and split pair made 3000 classes cost hundreds of times 10 classes
    assert many < 4 * few + 0.5, (few, many)
    # and the counts are the same as counting by hand
    leak = r_many.leaks[0]
    lab, sp, ok = r_many.manifest.labels, r_many.manifest.splits, r_many.features.ok
    hit = np.zeros(len(lab), bool)
    ids = r_many.groups.ids
    other = np.zeros(r_many.groups.n_groups, bool)
    other[ids[sp == leak.against]] = True
    hit = (sp == leak.split) & other[ids] & ok
    some = sorted(leak.per_class)[:50]
    for c in some:
        assert leak.per_class[c]["images"] == int(np.sum(hit & (lab == c)))
        assert leak.per_class[c]["total"] == int(np.sum((sp == leak.split) & (lab == c)))
    assert list(leak.per_class) == sorted(set(lab[sp == leak.split].tolist()))


def test_tasks_are_drawn_a_few_ahead_of_the_results():
    """A generator of tasks (image bytes read per chunk) is drawn from as workers free up."""
    from leakscan.parallel import AHEAD, run_chunks

    for jobs in (1, 2):
        drawn = []

        def tasks():
            for k in range(12):
                drawn.append(k)
                yield k

        ahead = []
        got = []
        for pos, value in run_chunks(abs, tasks(), jobs=jobs):
            ahead.append(len(drawn) - len(got))
            got.append((pos, value))
        assert got == [(k, k) for k in range(12)]
        assert max(ahead) <= (1 if jobs == 1 else AHEAD * jobs + 1), (jobs, ahead)


FREED_BLOCKS = r"""
import numpy as np
from leakscan.memory import release_free_memory

def rss_mb():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024

blocks = [np.ones(8 << 20, np.uint8) for _ in range(60)]  # 480 MB in blocks of 8 MB
keep = blocks[-1]  # the heap's top: free() alone gives nothing back
del blocks
before = rss_mb()
release_free_memory()
print(before - rss_mb())
"""


def test_memory_freed_between_stages_is_given_back_to_the_system():
    """A stage's freed arrays (a search in blocks) do not stay counted against the next stage."""
    import os
    import platform
    import subprocess
    import sys

    import pytest

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    # blocks of 8 MB on the heap, as glibc places them once it has freed a larger block, and no
    # automatic trim of its top: what is left is this function's to give back
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}
    out = subprocess.run([sys.executable, "-c", FREED_BLOCKS], capture_output=True, text=True, check=True, env=env)
    assert float(out.stdout) > 300, out.stdout  # of the 472 MB freed
