"""Terminal output reads well at 80 columns and in CI logs (non-TTY): no wrapped paths, no boxes."""

import io
import os
import shutil
import subprocess
import sys

import pytest
from rich.console import Console
from typer.testing import CliRunner

import leakscan
from leakscan.cli import app
from leakscan.present import shorten, verdict
from leakscan.report import render_resplit, render_terminal
from conftest import FIXTURES, scene, write_dataset

BOX = set("┏┃━┡│└┘")


@pytest.fixture(scope="module")
def long_names(tmp_path_factory):
    root = tmp_path_factory.mktemp("long") / "data"
    layout = {f"train/airplane/{k:04d}.jpg": scene(k) for k in range(6)}
    layout["test/airplane/a-very-long-file-name-of-a-copy-of-train-airplane-0000-resized-to-80px.jpg"] = \
        scene(0).resize((80, 80))
    layout["test/airplane/0100.jpg"] = scene(100)
    return write_dataset(root, layout, quality=90)


def test_shorten_keeps_the_file_name():
    assert shorten("train/airplane/0565.jpg", 14) == "trai…/0565.jpg"
    assert shorten("train/airplane/0565.jpg", 40) == "train/airplane/0565.jpg"
    s = shorten("test/airplane/a-very-long-file-name-of-a-copy.jpg", 20)
    assert len(s) == 20 and s.startswith("test") and s.endswith("copy.jpg")


def test_cli_at_80_columns_in_a_pipe(long_names, tmp_path):
    r = CliRunner().invoke(app, ["audit", str(long_names), "--no-cache", "-j", "1"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "leakscan: 50.0% of test has a copy in train; no label conflicts."
    assert all(len(x) <= 80 for x in lines), [x for x in lines if len(x) > 80]
    assert not BOX & set(r.stdout)
    pair = next(x for x in lines if "train/airplane/0000.jpg" in x)  # one line per pair, shortened in the middle
    assert "…" in pair and pair.rstrip().endswith("train/airplane/0000.jpg") and "80px.jpg" in pair


def test_columns_0_is_no_width_and_the_printout_is_not_lost(long_names, tmp_path):
    """COLUMNS=0 (an unsized terminal of a CI runner or a container) printed nothing at all, exit 0:
    rich took it as a width of 0. It is read as rich reads a terminal that says 0: 80 columns."""
    for args in (["audit", str(long_names)], ["resplit", str(long_names), "--out", str(tmp_path / "n.csv")]):
        r = CliRunner().invoke(app, [*args, "--no-cache", "-j", "1"], env={"COLUMNS": "0"})
        assert r.exit_code == 0, r.output
        lines = r.stdout.splitlines()
        assert len(lines) > 3 and all(len(x) <= 80 for x in lines), r.stdout
    assert "New manifest written to " in r.stdout


def test_real_pipe_uses_compact_layout(tmp_path):
    env = {"COLUMNS": "80", "LEAKSCAN_CACHE": str(tmp_path / "c.sqlite"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "leakscan", "audit", str(FIXTURES), "-j", "2"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("leakscan: ") and "% of test has a copy in train" in lines[0]
    assert all(len(x) <= 80 for x in lines) and not BOX & set(r.stdout)
    assert "Cross-split pairs: top 10 of" in r.stdout


def test_a_pair_on_a_narrow_terminal_keeps_both_file_names(long_names):
    """On a narrow terminal the line of a pair had no room left for its second path: it read
    ``tes…80px.jpg  tr……``, which train image it copies said nowhere. There the two paths go on a
    line of their own, each shortened in the middle to keep its file name."""
    res = leakscan.audit(long_names, jobs=1)
    for width in (40, 50, 80):
        buf = io.StringIO()
        render_terminal(res, Console(file=buf, width=width))  # a pipe as narrow as a small terminal
        lines = buf.getvalue().splitlines()
        at = next(k for k, x in enumerate(lines) if x.startswith("Cross-split pairs"))
        pair = " ".join(lines[at + 1:at + 3])  # the one pair, on one line or two
        assert "80px.jpg" in pair and "/0000.jpg" in pair and "1.000 hash" in pair, (width, lines[at:])
        assert all(len(x) <= width for x in lines), (width, lines)


def _columns(text: str) -> int:
    """Terminal columns of a line, measured here on its own: 2 for a wide or full-width character."""
    import unicodedata

    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_names_of_wide_characters_fit_the_terminal_and_keep_their_columns(tmp_path):
    """The compact layout measured its lines by characters: a name of CJK characters (two columns
    each) overflowed the terminal (a pair's line 56 columns wide at 50, 90 at 80) and padded its
    columns short, so the lines after it no longer lined up. Every line fits, by columns."""
    layout = {f"train/猫/写真{k:04d}.jpg": scene(k) for k in range(6)}
    layout["test/猫/写真の非常に長いファイル名のコピー_訓練用の猫の写真を縮小したもの.jpg"] = scene(0).resize((80, 80))
    layout["test/猫/写真0100.jpg"] = scene(100)
    d = write_dataset(tmp_path / "d", layout, quality=90)
    for width in (40, 50, 80):
        r = CliRunner().invoke(app, ["audit", str(d), "-j", "1"], env={"COLUMNS": str(width)})
        assert r.exit_code == 0, r.output
        lines = r.stdout.splitlines()
        assert all(_columns(x) <= width for x in lines), (width, [x for x in lines if _columns(x) > width])
        at = next(k for k, x in enumerate(lines) if x.startswith("Cross-split pairs"))
        pair = " ".join(lines[at + 1:at + 3])
        assert "もの.jpg" in pair and "0000.jpg" in pair, (width, lines[at:])
    # the split names (wide characters) line up: each column at one place in every line
    rows = ["path,split,label"] + [f"{p},{'学習' if p.startswith('train') else 'テスト'},{p.split('/')[1]}"
                                   for p in layout]
    (d / "m.csv").write_text("\n".join(rows) + "\n")
    res = leakscan.audit(manifest=d / "m.csv", jobs=1)
    rs = leakscan.resplit(res, keep="テスト")
    for draw, shown, at in ((render_terminal, res, "Leakage:"), (render_resplit, rs, "Split sizes:")):
        buf = io.StringIO()
        draw(shown, Console(file=buf, width=80))
        lines = buf.getvalue().splitlines()
        k = next(k for k, x in enumerate(lines) if x.startswith(at))
        table = lines[k + 1:k + 3]
        assert all(_columns(x) <= 80 for x in lines), lines
        assert "テスト" in " ".join(table) and "学習" in " ".join(table), table
        marks = {_columns(x[:x.index("->")]) for x in table}
        assert len(marks) == 1, table


def test_wide_terminal_keeps_tables(long_names):
    res = leakscan.audit(long_names, jobs=1)
    buf = io.StringIO()
    render_terminal(res, Console(file=buf, width=160, force_terminal=True, color_system=None))
    out = buf.getvalue()
    assert out.splitlines()[0] == verdict(res) + "." and BOX & set(out)
    buf = io.StringIO()
    render_terminal(res, Console(file=buf, width=80, force_terminal=True, color_system=None))  # narrow TTY
    assert not BOX & set(buf.getvalue()) and all(len(x) <= 80 for x in buf.getvalue().splitlines())


def test_terminal_says_which_decisions_match_nothing(long_names, tmp_path):
    f = tmp_path / "decisions.csv"
    f.write_text("a,b,decision,note\ntrain/airplane/0000.jpg,test/airplane/0100.jpg,distinct,\n"
                 "train/airplane/gone.jpg,test/airplane/0100.jpg,distinct,\n")
    r = CliRunner().invoke(app, ["audit", str(long_names), "--no-cache", "-j", "1", "--decisions", str(f)],
                           env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "decisions: 1 applied (1 distinct, 0 duplicate), 1 match no image" in out
    assert "line 3: train/airplane/gone.jpg, test/airplane/0100.jpg (distinct): no audited image" in out


def test_the_skipped_files_point_at_a_list_that_exists(long_names, tmp_path):
    """The terminal sent the reader to "skipped.csv" for the reasons of the files skipped, also when
    no --out was given and no such file was written; it names the file written, else --out."""
    d = tmp_path / "d"
    shutil.copytree(long_names, d)
    (d / "test/airplane/broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "o"
    for args, said in ((["--out", str(out)], f"1 file(s) skipped (reasons in {out}/skipped.csv):"),
                       ([], "1 file(s) skipped (--out DIR lists every reason in skipped.csv):")):
        r = CliRunner().invoke(app, ["audit", str(d), "--no-cache", "-j", "1", *args], env={"COLUMNS": "300"})
        assert r.exit_code == 0, r.output
        assert said in r.stdout.splitlines(), r.stdout
    assert "test/airplane/broken.jpg" in (out / "skipped.csv").read_text()
    res = leakscan.audit(d, jobs=1)
    for where, said in (("o/skipped.csv", "1 files skipped (reasons in o/skipped.csv): test/airplane/broken.jpg"),
                        (None, "1 files skipped (--out DIR lists every reason in skipped.csv): test/airplane/")):
        buf = io.StringIO()
        render_terminal(res, Console(file=buf, width=300, force_terminal=True, color_system=None), skipped_csv=where)
        assert said in buf.getvalue(), buf.getvalue()


def test_the_pairs_shown_carry_their_confidence_most_certain_first(fixtures_audit):
    # the lines used to show the search's score (0.938 for a brightened copy decided at 1.000)
    res, _ = fixtures_audit  # the fixtures' audit with the defaults
    cross = res.cross_split()
    recs = [r for r, c in zip(res.pair_records(), cross) if c]
    assert any(abs(r["confidence"] - r["score"]) > 0.01 for r in recs)  # the two differ on these pairs
    top = sorted((round(r["confidence"], 3) for r in recs), reverse=True)[:10]
    for width in (80, 200):
        buf = io.StringIO()
        render_terminal(res, Console(file=buf, width=width, force_terminal=True, color_system=None))
        lines = buf.getvalue().splitlines()
        at = next(k for k, x in enumerate(lines) if x.startswith("Cross-split pairs"))
        if width == 80:  # one line a pair, the confidence first
            shown = [float(x.split()[0]) for x in lines[at + 1:at + 11]]
        else:  # a table with a confidence column
            head = [c.strip() for c in lines[at + 2].split("┃")]
            rows = [[c.strip() for c in x.split("│")] for x in lines[at + 4:at + 14]]
            shown = [float(r[head.index("confidence")]) for r in rows]
        assert shown == top, (width, shown)


def test_resplit_prints_plain_lines_where_audit_does(leaky_dataset):
    # resplit drew its boxed tables into a pipe or a log (and a narrow terminal), where audit
    # prints plain lines (termout.use_compact)
    from leakscan.report import render_resplit

    rs = leakscan.resplit(leakscan.audit(leaky_dataset, jobs=1, cache=False), keep="test")
    for console in (Console(file=io.StringIO(), width=200),  # a pipe
                    Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)):
        render_resplit(rs, console)
        out = console.file.getvalue()
        assert not BOX & set(out) and all(len(x) <= console.width for x in out.splitlines()), out
        assert "4.55 pp" in out and "a: train 50.0% -> 45.5%" in out
        assert out.splitlines()[-1] == "verified: 0 of the 1 duplicate pairs cross splits in the new manifest."
    wide = Console(file=io.StringIO(), width=200, force_terminal=True, color_system=None)
    render_resplit(rs, wide)
    assert BOX & set(wide.file.getvalue())


def test_each_warning_is_said_once_in_the_terminal(tmp_path):
    """The warnings of the input (rows without a label), of duplicate pairs joining two groups and of
    the feature cache were logged on stderr as they happened and listed again at the end of the
    terminal output: each was read twice. The terminal says each once, in its list; --json keeps the
    log line (summary.json lists them too), -q says the list on stderr after the run."""
    import json

    from leakscan.cache import FeatureCache
    from conftest import ROOT

    rows = ["path,split,label,group"]
    for k in range(6):
        scene(k).save(tmp_path / f"{k}.png")
        rows.append(f"{k}.png,{'train' if k < 4 else 'test'},{'' if k == 3 else 'ab'[k % 2]},p{k}")
    scene(0).resize((80, 80)).save(tmp_path / "copy.png")
    rows.append("copy.png,test,a,p9")  # train's 0.png under another patient
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    said = ("have no label", "join images of two different groups", "written by another leakscan version")

    def run(*flags):
        cache = tmp_path / f"cache{''.join(flags)}.sqlite"
        FeatureCache(cache, version="an older one").close()  # rebuilt, with a warning
        env = {**os.environ, "COLUMNS": "100", "LEAKSCAN_CACHE": str(cache),
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        r = subprocess.run([sys.executable, "-m", "leakscan", "audit", "--manifest", str(tmp_path / "m.csv"),
                            "-j", "1", *flags], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        return " ".join(r.stdout.split()), " ".join(r.stderr.split())

    out, err = run()
    assert out.startswith("leakscan: 33.3% of test has a copy in train") and "warning: " in out
    for text in said:
        assert (out + err).count(text) == 1 and out.count(text) == 1, (text, out, err)
    out, err = run("--json")
    warnings = " ".join(json.loads(out)["warnings"])
    for text in said:
        assert warnings.count(text) == 1 and err.count(text) == 1, (text, warnings, err)
    out, err = run("-q")
    for text in said:
        assert out == "" and err.count(text) == 1, (text, err)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, a pipe and an output closed")
def test_warnings_held_for_a_printout_never_read_are_said_on_stderr(tmp_path):
    """The terminal holds the audit's warnings back for its list after the tables. A printout that
    never reached standard output (a full disk, a reader gone, the output closed) took them with it:
    they were said nowhere. They are said on stderr then, once, before the line of a failure."""
    from conftest import ROOT

    d = write_dataset(tmp_path / "d", {**{f"train/a/{k}.jpg": scene(k) for k in range(4)},
                                       **{f"test/{k}.jpg": scene(10 + k) for k in range(2)}})  # test's: no class
    said = "leakscan: WARNING: 2 of 6 images have no label; they count as class '' in per-class figures"
    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def run(**stdout):
        r = subprocess.run([sys.executable, "-m", "leakscan", "audit", str(d), "-j", "1", "--no-cache"],
                           stderr=subprocess.PIPE, text=True, env=env, timeout=300, **stdout)
        return r.returncode, r.stdout, r.stderr.splitlines()

    code, out, err = run(stdout=subprocess.PIPE)  # read: the list says it
    assert code == 0 and err == [] and " ".join(out.split()).count(said[19:]) == 1, (out, err)
    read, write = os.pipe()
    os.close(read)  # the reader gone before the tables
    try:
        assert run(stdout=write) == (0, None, [said])
    finally:
        os.close(write)
    assert run(preexec_fn=lambda: os.close(1)) == (0, None, [said])  # leakscan audit d >&-
    with open("/dev/full", "w") as full:
        assert run(stdout=full) == (2, None, [said, "leakscan: error: the printout could not be written to standard "
                                                    "output: No space left on device"])


def test_resplit_says_the_audits_warnings_once(tmp_path):
    """resplit audits first, and re-splits by the audit's pairs, but said none of the warnings
    the audit lists without logging them (suspected chaining, more than half a split copied, one
    layout...): a user re-split by pairs the audit itself doubted, and was not told. They are said
    on stderr after the new split, each once (a warning the audit logs too, rows without a label,
    included), and are `audit_warnings` in --json."""
    import json

    from conftest import ROOT

    data = _chained_and_vanishing(tmp_path / "data")
    env = {**os.environ, "COLUMNS": "100",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def run(*flags):
        r = subprocess.run([sys.executable, "-m", "leakscan", "resplit", "--manifest", str(data / "m.csv"),
                            "--out", str(tmp_path / f"new{''.join(flags)}.csv"), "--no-cache", "-j", "1", *flags],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout, " ".join(r.stderr.split())

    _, err = run()
    assert err.count("suspected chaining: group") == 1, err
    assert err.count("have no label") == 1, err
    out, err = run("--json")
    assert any(w.startswith("suspected chaining: group") for w in json.loads(out)["audit_warnings"])
    assert "suspected chaining" not in err


def _chained_and_vanishing(data):
    """A manifest ``data/m.csv`` whose audit suspects chaining (train's 0.png under four labels) and
    warns of a row without a label, and whose re-split empties test of class e (its images are all
    copies of train's: they join train) and misses the split sizes."""
    data.mkdir()
    rows = ["path,split,label"]
    for k in range(8):
        scene(k).save(data / f"{k}.png")
        rows.append(f"{k}.png,train,{'' if k == 3 else 'a'}")
    for c in "bcd":  # train's 0.png under three other labels: a group of four classes
        scene(0).save(data / f"{c}.png")
        rows.append(f"{c}.png,test,{c}")
    for k in range(3):  # all of test's class e are copies of train's images: they join train
        scene(4 + k).resize((80, 80)).save(data / f"e{k}.png")
        rows.append(f"e{k}.png,test,e")
    for k in range(20, 24):
        scene(k).save(data / f"{k}.png")
        rows.append(f"{k}.png,test,a")
    (data / "m.csv").write_text("\n".join(rows) + "\n")
    return data


def test_resplit_quiet_still_says_the_warnings(tmp_path):
    """``resplit -q`` dropped the tables, and with them the audit's warnings it does not log
    (suspected chaining: the split was made from pairs the audit doubted) and the classes the new
    split empties ("class 'e' vanishes from test"): the user was told neither; then only those classes
    of all the tables list under "cannot fully meet" ("split 'train' has 11 images, target 8"). -q drops
    progress bars and tables only: each warning is said once on stderr, as without it, and each thing
    the new split cannot fully meet is one."""
    import json

    from conftest import ROOT

    data = _chained_and_vanishing(tmp_path / "data")
    env = {**os.environ, "COLUMNS": "100",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def run(*flags):
        r = subprocess.run([sys.executable, "-m", "leakscan", "resplit", "--manifest", str(data / "m.csv"),
                            "--out", str(tmp_path / f"new{''.join(flags)}.csv"), "--no-cache", "-j", "1", *flags],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        return " ".join(r.stdout.split()), " ".join(r.stderr.split())

    said = ("have no label", "suspected chaining: group")
    unmet = json.loads(run("--json")[0])["problems"]
    assert "class 'e' vanishes from test: 3 images before, none after" in unmet, unmet
    assert any(p.startswith("split 'train' has 11 images, target 8") for p in unmet), unmet
    out, err = run()
    for text in said:  # the audit's on stderr, what the split cannot meet in the tables
        assert err.count(text) == 1 and text not in out, (text, out, err)
    for p in unmet:
        assert out.count(f"cannot fully meet: {p}") == 1 and p not in err, (p, out, err)
    out, err = run("-q")
    assert out == "", out
    for text in said:
        assert err.count(text) == 1, (text, err)
    for p in unmet:
        assert err.count(p) == 1 and f"leakscan: warning: cannot fully meet: {p}" in err, (p, err)
    # each a line of its own, nothing else
    assert err.count("leakscan: warning: ") == len(said) + len(unmet), err


def test_audit_quiet_still_says_the_warnings(tmp_path):
    """``audit -q`` logged the warnings the audit logs (rows without a label) and said the others
    nowhere (suspected chaining: the figures rest on pairs the audit doubts), with ``--out`` only in
    summary.json. -q drops progress bars and tables only: the audit's list is said on stderr after
    the run, each warning once, as resplit says it."""
    import json

    from conftest import ROOT

    data = _chained_and_vanishing(tmp_path / "data")
    env = {**os.environ, "COLUMNS": "100",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def run(*flags):
        r = subprocess.run([sys.executable, "-m", "leakscan", "audit", "--manifest", str(data / "m.csv"),
                            "--no-cache", "-j", "1", *flags], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        return " ".join(r.stdout.split()), " ".join(r.stderr.split())

    said = ("have no label", "suspected chaining: group 0 joins 4 images of 4 classes")
    out, err = run()
    for text in said:  # the tables' list
        assert out.count(text) == 1 and text not in err, (text, out, err)
    report = tmp_path / "report"
    for flags in (("-q",), ("-q", "--out", str(report))):
        out, err = run(*flags)
        assert out == "", out
        for text in said:
            assert err.count(text) == 1, (flags, text, err)
        assert err.count("leakscan: warning: ") == len(said) and "WARNING" not in err, err
    warnings = " ".join(json.loads((report / "summary.json").read_text())["warnings"])
    assert all(warnings.count(text) == 1 for text in said), warnings
