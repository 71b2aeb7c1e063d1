"""Every figure leakscan shows agrees with every other place it shows it: the result files, the
terminal, the report and the ``Audit`` object."""

from __future__ import annotations

import csv

import pytest

import leakscan
from leakscan.report import write_outputs
from conftest import FIXTURES


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
