"""Every figure leakscan shows agrees with every other place it shows it: the result files, the
terminal, the report and the ``Audit`` object."""

from __future__ import annotations


import pytest

import leakscan
from leakscan.report import write_outputs
from conftest import csv_rows, scene, write_dataset


def test_a_groups_weakest_link_is_its_lowest_confidence_in_pairs_csv(fixtures_audit):
    _, out = fixtures_audit
    lowest: dict[str, float] = {}
    for r in csv_rows(out / "pairs.csv"):
        lowest[r["group"]] = min(lowest.get(r["group"], 1.0), float(r["confidence"]))
    weakest = {r["group"]: float(r["weakest_link"]) for r in csv_rows(out / "groups.csv")}
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
    # the README: a group only a shared group holds together is not in groups.csv, yet it leaks
    write_outputs(result, tmp_path / "out", html=False)
    assert csv_rows(tmp_path / "out" / "groups.csv") == [] and summary["n_duplicate_groups"] == 0
    leak = next(lk for lk in summary["leaks"] if lk["split"] == "test")
    assert (leak["images"], leak["groups"]) == (1, 1)


def test_to_frame_holds_numbers_as_pairs_csv_does_whatever_the_rows(tmp_path):
    """An exact copy has no ncc: pairs.csv leaves the cell empty, and the DataFrame has NaN there
    (not "", which made ``df[df.ncc > 0.5]`` a TypeError); a run with no pairs has the same types."""
    pd = pytest.importorskip("pandas")
    layout = {f"{s}/{k}.jpg": scene(k + 10 * (s == "test")) for s in ("train", "test") for k in range(4)}
    layout["test/resized.jpg"] = scene(1).resize((80, 80))
    root = write_dataset(tmp_path / "data", layout, quality=90)
    (root / "test" / "bytes.jpg").write_bytes((root / "train" / "0.jpg").read_bytes())
    result = leakscan.audit(root, cache=False, jobs=1)
    write_outputs(result, tmp_path / "out", html=False)
    df = result.to_frame()
    from_csv = pd.read_csv(tmp_path / "out" / "pairs.csv")
    assert sorted(df["kind"]) == ["exact", "hash"]
    numbers = ["score", "hamming", "cosine", "group", "ncc", "confidence"]
    pd.testing.assert_frame_equal(df[numbers], from_csv[numbers])
    assert df.loc[df["kind"] == "exact", "ncc"].isna().all()
    assert len(df[df["ncc"] > 0.5]) == 1 and df["ncc"].mean() > 0.5

    none = leakscan.audit(root / "train", cache=False, jobs=1).to_frame()
    assert len(none) == 0 and list(none.columns) == list(df.columns)
    assert none.dtypes.to_dict() == df.dtypes.to_dict()


def test_the_wide_leakage_table_says_each_share_as_the_verdict_does(fixtures_audit):
    """The tables of a wide terminal wrote 40.78% where the verdict, the plain lines and the report
    say 40.8%, and 100.00% for 19,999 of 20,000 images, which the verdict calls 99.9%."""
    import dataclasses
    import io

    from rich.console import Console

    from leakscan.audit import Leak
    from leakscan.present import verdict
    from leakscan.report import render_terminal

    def wide(result) -> str:
        buf = io.StringIO()
        render_terminal(result, Console(file=buf, width=160, force_terminal=True, color_system=None))
        return buf.getvalue()

    result, _ = fixtures_audit
    assert verdict(result).startswith("40.8% of test has a copy in train")
    row = next(line for line in wide(result).splitlines() if line.startswith("│ test ") and "train" in line)
    assert " 40.8% " in row and "automobile 81.8%" in row

    almost = Leak(split="test", against="train", images=19_999, total=20_000,
                  per_class={"cat": {"images": 19_999, "total": 20_000, "fraction": 0.99995}})
    result = dataclasses.replace(result, leaks=[almost])
    assert verdict(result).startswith("99.9% of test has a copy in train")
    row = next(line for line in wide(result).splitlines() if line.startswith("│ test ") and "train" in line)
    assert " 99.9% " in row and "cat 99.9%" in row and "100" not in row


def test_the_notebook_view_names_a_function_the_package_has(fixtures_audit, tmp_path):
    """An Audit in a notebook says which call writes the full report: leakscan.write_outputs,
    which the package exports (it said write_outputs, found only in leakscan.report)."""
    import json
    import re

    result, _ = fixtures_audit
    call = re.search(r"<code>leakscan\.(\w+)\(result, 'out/'\)</code>", result._repr_html_())
    assert call and call.group(1) in leakscan.__all__
    written = getattr(leakscan, call.group(1))(result, tmp_path / "out")
    assert {p.name for p in written} >= {"summary.json", "pairs.csv", "report.html"}
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["n_pairs"] == len(result.pairs) > 0
