"""Every figure leakscan shows agrees with every other place it shows it: the result files, the
terminal, the report and the ``Audit`` object."""

from __future__ import annotations

import csv

import pytest

import leakscan
from leakscan.report import write_outputs
from conftest import FIXTURES, scene, write_dataset


@pytest.fixture(scope="module")
def fixtures_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("agree") / "out"
    result = leakscan.audit(FIXTURES, cache=False, jobs=1)
    write_outputs(result, out, html=False)
    return result, out


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_groups_weakest_link_is_its_lowest_confidence_in_pairs_csv(fixtures_out):
    _, out = fixtures_out
    lowest: dict[str, float] = {}
    for r in _rows(out / "pairs.csv"):
        lowest[r["group"]] = min(lowest.get(r["group"], 1.0), float(r["confidence"]))
    weakest = {r["group"]: float(r["weakest_link"]) for r in _rows(out / "groups.csv")}
    assert len(weakest) > 20 and any(w < 1 for w in weakest.values())
    assert weakest == lowest


def test_largest_group_counts_audited_images_not_the_files_skipped(tmp_path):
    """Patient p1 has two pictures and a corrupt file: its group holds 2 audited images (the
    corrupt file is in skipped.csv, and a file skipped is in no group)."""
    root = write_dataset(tmp_path / "data", {f"{k}.jpg": scene(k) for k in range(5)}, quality=90)
    (root / "corrupt.jpg").write_bytes((root / "4.jpg").read_bytes()[:200])
    (root / "m.csv").write_text("path,split,label,group\n0.jpg,train,a,p1\n1.jpg,test,a,p1\ncorrupt.jpg,test,a,p1\n"
                                "2.jpg,train,b,\n3.jpg,test,b,\n")
    result = leakscan.audit(manifest=root / "m.csv", cache=False, jobs=1)
    summary = result.to_dict()
    assert summary["n_skipped"] == 1 and summary["n_pairs"] == 0
    assert summary["largest_group"] == 2
