"""Small frictions a new user meets on the command line and in Python (issue 16, parts 5 and 6)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import leakscan
from leakscan.cli import app
from leakscan.split import assign_splits
from conftest import scene, write_dataset

runner = CliRunner()


@pytest.fixture
def three_splits(tmp_path):
    layout = {f"train/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(8)}
    layout.update({f"val/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(8, 10)})
    layout.update({f"test/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(10, 12)})
    layout["test/a/leak.jpg"] = scene(0).resize((80, 80))
    return write_dataset(tmp_path / "data", layout, quality=90)


# ---------------------------------------------------------------- command line


def test_verbose_after_the_subcommand(three_splits, tmp_path):
    env = {**os.environ, "LEAKSCAN_CACHE": str(tmp_path / "c.sqlite")}
    for args in (["-v", "audit", str(three_splits)], ["audit", str(three_splits), "-v"],
                 ["audit", str(three_splits), "--verbose"]):
        r = subprocess.run([sys.executable, "-m", "leakscan", *args, "--quiet", "-j", "1"], capture_output=True,
                           text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "leakscan: INFO:" in r.stderr, args


def test_keep_has_a_metavar_and_out_help_lists_report():
    r = runner.invoke(app, ["resplit", "--help"], env={"COLUMNS": "200"})
    assert "--keep SPLIT" in r.stdout and "list[str]" not in r.stdout and "<list" not in r.stdout
    r = runner.invoke(app, ["audit", "--help"], env={"COLUMNS": "200"})
    out = " ".join(r.stdout.split())
    assert "skipped.csv and report.html into this folder" in out
    assert "--decisions FILE" in out and "-v, --verbose" in out


def test_option_help_matches_readme_words():
    """The README calls search hits candidates (verified afterwards); the help must not call them duplicates."""
    r = runner.invoke(app, ["audit", "--help"], env={"COLUMNS": "200"})
    out = " ".join(r.stdout.split())
    assert "Hamming distance or less are candidates" in out
    assert "are duplicates (-1" not in out
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    assert "pHash distance (of 64 bits) at or below which two images are candidates" in readme


def test_cannot_fully_meet_names_the_class():
    units = np.arange(40)
    labels = np.array(["cat"] * 30 + ["dog"] * 8 + ["rare-bird"] * 2, object)
    units[30:38] = 30  # all dogs in one group: the class mix cannot be met
    a = assign_splits(units, labels, ratios={"train": 0.5, "test": 0.5}, shuffle=True, random_state=0)
    msgs = [p for p in a.problems if "class share" in p]
    assert msgs and all("class #" not in p for p in msgs)
    assert any("(class 'dog')" in p or "(class 'cat')" in p or "(class 'rare-bird')" in p for p in msgs), msgs


def test_ratios_warn_about_rescaling_and_lost_split(three_splits, tmp_path):
    r = runner.invoke(app, ["resplit", str(three_splits), "--out", str(tmp_path / "new.csv"),
                            "--ratios", "train=0.7,test=0.2", "--no-cache", "-q", "-j", "1"])
    assert r.exit_code == 0, r.output
    err = " ".join(r.stderr.split())
    assert "--ratios add up to 0.9, not 1; rescaled to train=0.7778,test=0.2222" in err
    assert ("split val is not in --ratios: its images are spread over train and test, and the new manifest "
            "has no val") in err
    r = runner.invoke(app, ["resplit", str(three_splits), "--out", str(tmp_path / "n2.csv"),
                            "--ratios", "train=0.8,val=0.1,test=0.1", "--no-cache", "-q", "-j", "1"])
    # ratios over every split, adding up to 1: nothing to say of them (-q still says what the split
    # cannot fully meet on so few images)
    assert r.exit_code == 0 and "--ratios" not in r.stderr and "rescaled" not in r.stderr


# ---------------------------------------------------------------- Python


def test_find_groups_lines_up_with_your_paths(three_splits):
    ids, paths = leakscan.find_groups(three_splits, jobs=1, return_paths=True)
    assert len(ids) == len(paths) and "test/a/leak.jpg" in paths
    pos = {p: k for k, p in enumerate(paths)}
    assert ids[pos["test/a/leak.jpg"]] == ids[pos["train/a/0.jpg"]]
    assert len(set(ids.tolist())) == len(paths) - 1
    # your own X in your own order, absolute or relative paths
    mine = [str(three_splits / "test/a/leak.jpg"), "val/a/8.jpg", str(three_splits / "train/a/0.jpg")]
    mine_ids = leakscan.find_groups(three_splits, paths=mine, jobs=1)
    assert mine_ids.tolist() == [0, 1, 0]
    with pytest.raises(leakscan.ConfigError, match="1 of the 2 paths are not images of"):
        leakscan.find_groups(three_splits, paths=["val/a/8.jpg", "nope.jpg"], jobs=1)
    assert isinstance(leakscan.find_groups(three_splits, jobs=1), np.ndarray)  # unchanged default


def test_pair_records_for_arrays_give_row_indices():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    imgs[3] = imgs[1]
    r = leakscan.audit(imgs, splits=["train", "train", "test", "test"], jobs=1)
    (rec,) = r.pair_records()
    assert (rec["a"], rec["b"]) == (1, 3) and isinstance(rec["a"], int)


def test_to_frame_without_pandas_says_how_to_install(monkeypatch):
    rng = np.random.default_rng(0)
    r = leakscan.audit(rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8), jobs=1)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        r.to_frame()


def test_audit_repr_html_shows_headline_and_top_pairs(three_splits):
    r = leakscan.audit(three_splits, jobs=1)
    html = r._repr_html_()
    assert "of test has a copy in train" in html
    assert html.count("data:image/") >= 2 and "test/a/leak.jpg" in html
    assert "<script" not in html
