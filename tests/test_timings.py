"""Per-stage timings: summary.json ``timings``, ``Audit.timings`` and the ``-v`` line."""

import json
import re
import subprocess
import sys
import time

import numpy as np

from leakscan import audit
from leakscan.report import write_outputs

STAGES = ["discover", "decode", "search", "verify", "calibrate", "group", "report"]
ROUNDING = 0.0005 * (len(STAGES) + 1)  # each figure is rounded to 3 decimals


def _check(timings: dict) -> None:
    assert list(timings) == STAGES + ["total"]
    assert all(isinstance(v, float) and v >= 0 for v in timings.values()), timings
    assert sum(timings[s] for s in STAGES) <= timings["total"] + ROUNDING, timings


def test_cli_writes_timings_and_prints_them_with_v(leaky_dataset, tmp_path):
    out = tmp_path / "out"
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "leakscan", "audit", str(leaky_dataset), "--out", str(out), "-q", "-v",
                        "-j", "2"], capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t
    assert r.returncode == 0, r.stderr
    timings = json.loads((out / "summary.json").read_text())["timings"]
    _check(timings)
    assert timings["total"] <= wall
    assert timings["decode"] > 0 and timings["report"] > 0  # 19 images decoded, report.html rendered
    line = [x for x in r.stderr.splitlines() if "timings:" in x]
    assert len(line) == 1, r.stderr
    assert re.search(r"INFO: timings: discover [\d.]+s, decode [\d.]+s, search [\d.]+s, verify [\d.]+s, "
                     r"calibrate [\d.]+s, group [\d.]+s, report [\d.]+s \(total [\d.]+s\)$", line[0]), line[0]


def test_library_timings_and_the_report_stage(leaky_dataset, tmp_path):
    cache = tmp_path / "cache.sqlite"
    a = audit(leaky_dataset, jobs=1, cache=cache)
    _check(a.timings)
    assert a.timings["report"] == 0.0  # nothing written yet
    assert a.timings["verify"] > 0 and a.timings["calibrate"] > 0
    assert abs(a.timings["total"] - a.elapsed) <= 0.001
    write_outputs(a, tmp_path / "out", html=True)
    _check(a.timings)
    assert a.timings["report"] > 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["timings"] == a.timings
    # a warm re-run reads the search results back: nothing is verified or calibrated again
    b = audit(leaky_dataset, jobs=1, cache=cache)
    _check(b.timings)
    assert b.features.n_cached == len(b.manifest)
    assert b.timings["verify"] == 0.0 and b.timings["calibrate"] == 0.0


def test_even_blocks_share_the_work():
    """Blocks of at most the size asked, covering every item once, their number a multiple of
    the workers, no block more than one item longer than another."""
    from leakscan.parallel import even_blocks

    for n, block, jobs in [(5934, 2048, 2), (2049, 2048, 2), (1, 2048, 2), (10, 3, 1), (8458, 2048, 4), (0, 5, 2)]:
        parts = even_blocks(n, block, jobs)
        covered = np.concatenate([np.arange(n)[p] for p in parts]) if parts else np.zeros(0, int)
        assert np.array_equal(covered, np.arange(n))
        sizes = [p.stop - p.start for p in parts]
        assert all(0 < s <= block for s in sizes)
        if n >= jobs:
            assert len(parts) % jobs == 0
        assert max(sizes, default=0) - min(sizes, default=0) <= 1
    assert len(even_blocks(300, 2048, jobs=2)) == 1  # a small job is not split: no pool for it
