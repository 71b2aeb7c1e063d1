import csv
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from leakscan import __version__
from leakscan.cli import app
from conftest import FIXTURES, csv_rows

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and __version__ in r.stdout


def test_audit_json_contract():
    r = run("audit", FIXTURES, "--json", "-j", "2")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for key in ("n_images", "n_skipped", "splits", "n_duplicate_groups", "leaks", "label_conflicts"):
        assert key in d
    assert d["n_skipped"] == 1 and set(d["splits"]) == {"train", "test"}
    lk = {(x["split"], x["against"]): x for x in d["leaks"]}
    assert lk[("test", "train")]["images"] > 0 and 0 < lk[("test", "train")]["fraction"] < 1
    assert set(lk[("test", "train")]) >= {"split", "against", "images", "fraction"}


def test_out_files_and_columns(tmp_path):
    out = tmp_path / "res"
    r = run("audit", FIXTURES, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    def header(name):
        return next(csv.reader(open(out / name)))
    assert header("pairs.csv")[:8] == ["a", "b", "split_a", "split_b", "label_a", "label_b", "kind", "score"]
    assert header("groups.csv")[:4] == ["path", "group", "split", "label"]
    assert header("skipped.csv") == ["path", "reason"]
    rows = list(csv.DictReader(open(out / "pairs.csv")))
    assert {r["kind"] for r in rows} <= {"exact", "hash", "embedding"}
    assert all((FIXTURES / r["a"]).exists() and (FIXTURES / r["b"]).exists() for r in rows)
    skipped = list(csv.DictReader(open(out / "skipped.csv")))
    assert skipped[0]["path"] == "test/ship/corrupt-truncated.jpg" and skipped[0]["reason"]
    assert json.load(open(out / "summary.json"))["n_images"] == 310
    # a second run refuses to overwrite without --force
    r2 = run("audit", FIXTURES, "--out", out, "-q")
    assert r2.exit_code == 2 and "--force" in r2.output
    assert run("audit", FIXTURES, "--out", out, "-q", "--force").exit_code == 0


def test_an_audit_run_inside_the_dataset_finds_its_leak(leaky_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(leaky_dataset)
    r = run("audit", ".", "--out", tmp_path / "res", "-q")
    assert r.exit_code == 0, r.output
    assert json.load(open(tmp_path / "res" / "summary.json"))["n_skipped"] == 0
    pairs = {(p["a"], p["b"]) for p in csv.DictReader(open(tmp_path / "res" / "pairs.csv"))}
    assert ("test/a/leak.jpg", "train/a/0.jpg") in pairs


def test_fail_on_leak_exit_codes():
    assert run("audit", FIXTURES, "-q", "--fail-on-leak").exit_code == 1
    assert run("audit", FIXTURES, "-q", "--fail-on-leak", "--max-leak", "0.9").exit_code == 0


def test_usage_errors_exit_2_with_one_line(tmp_path):
    r = run("audit", tmp_path / "nope")
    assert r.exit_code == 2 and "no such file" in r.output and "Traceback" not in r.output
    r = run("audit", FIXTURES, "--out", FIXTURES / "report")
    assert r.exit_code == 2 and "inside the dataset" in r.output
    assert not (FIXTURES / "report").exists()
    r = run("audit", FIXTURES, "--max-hamming", "70")
    assert r.exit_code == 2


def test_unsplit_folder_reports_within_split(tmp_path):
    from conftest import scene
    for k in range(5):
        scene(k).save(tmp_path / f"{k}.png")
    scene(0).save(tmp_path / "copy.png")
    r = run("audit", tmp_path, "--json")
    d = json.loads(r.stdout)
    assert d["splits"] == {"all": 6} and d["leaks"] == [] and d["n_pairs"] == 1


def test_every_write_failure_is_an_output_error(tmp_path):

    from leakscan.errors import OutputError
    from leakscan.output import atomic_write

    atomic_write(tmp_path / "ok.txt", "fine\n")
    assert (tmp_path / "ok.txt").read_text() == "fine\n" and not list(tmp_path.glob(".ok.txt.*"))
    with pytest.raises(OutputError, match="missing-folder.*cannot write"):
        atomic_write(tmp_path / "missing-folder" / "a.csv", "x")

    def broken(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="No space left"):
        atomic_write(tmp_path / "b.parquet", broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.txt"]  # no temporary file left behind


def test_a_failed_audit_leaves_no_output_folder_it_made(tmp_path):
    # a run that failed before writing used to leave an empty --out folder (and its parents)
    r = run("audit", tmp_path / "missing", "--out", tmp_path / "new" / "report", "-q")
    assert r.exit_code == 2 and "no such file or folder" in r.output
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()  # a folder that was there before stays
    assert run("audit", tmp_path / "missing", "--out", tmp_path / "kept", "-q").exit_code == 2
    assert (tmp_path / "kept").is_dir()
    # an option refused before the run starts: the same one line, nothing made
    r = run("audit", FIXTURES, "--min-precision", "1", "--out", tmp_path / "new2", "-q")
    assert r.exit_code == 2 and "--min-precision must be in [0, 1)" in r.output and not (tmp_path / "new2").exists()


@pytest.mark.parametrize("args, said", [
    (["--min-confidence", "nan"], "--min-confidence nan is not a number: give one in (0, 1]"),
    (["--min-confidence=NaN"], "--min-confidence NaN is not a number: give one in (0, 1]"),
    (["--min-confidence", "inf"], "--min-confidence must be in (0, 1], got inf"),
    (["--min-ncc", "-inf"], "--min-ncc must be in [-1, 1] (-1: keep every candidate), got -inf"),
    (["--min-precision", "nan"], "--min-precision nan is not a number: give one in [0, 1) (0: off)"),
    (["--min-precision", "inf"], "--min-precision must be in [0, 1) (0: off), got inf"),
    (["--min-cosine", "high"], "--min-cosine high is not a number: give one > 0 (above 1: off)"),
    (["--fail-on-leak", "--max-leak", "nan"], "--max-leak nan is not a number: give one in [0, 1]"),
])
def test_a_nan_or_infinite_number_is_refused_naming_the_option(tmp_path, args, said):
    # typer's range check said of --min-confidence nan "Input should be less than or equal to 1"
    # (NaN compares false with every bound), in three lines
    r = run("audit", FIXTURES, *args, "--out", tmp_path / "new", "-q")
    assert r.exit_code == 2 and r.output.strip() == f"leakscan: error: {said}", r.output
    assert not (tmp_path / "new").exists()


def _refused_in_one_line(tmp_path, command, args, said):
    """``leakscan COMMAND FIXTURES ARGS -q`` (``NEW.csv`` an output under ``tmp_path``) exits 2 saying
    only ``leakscan: error: SAID``."""
    r = run(command, FIXTURES, *[tmp_path / a if a == "NEW.csv" else a for a in args], "-q")
    assert r.exit_code == 2 and r.output.strip() == f"leakscan: error: {said}", r.output


@pytest.mark.parametrize("command, args, said", [
    ("audit", ["--max-hamming", "99"], "--max-hamming must be a whole number in [-1, 64] (-1: off), got 99"),
    ("audit", ["--max-hamming", "4.5"], "--max-hamming 4.5 is not a whole number: give one in [-1, 64] (-1: off)"),
    ("audit", ["-j", "0"], "--jobs must be a whole number >= 1, got 0"),
    ("audit", ["--model-batch", "0"], "--model-batch must be a whole number >= 1, got 0"),
    ("resplit", ["--out", "NEW.csv", "--seed", "-1"], "--seed must be a whole number >= 0, got -1"),
])
def test_a_whole_number_out_of_range_is_refused_in_one_line_naming_the_option(tmp_path, command, args, said):
    # typer's range check said three lines (usage, a hint, and "Input should be less than or
    # equal to 64") without the value given
    _refused_in_one_line(tmp_path, command, args, said)
    assert not (tmp_path / "NEW.csv").exists()


@pytest.mark.parametrize("args, said, shown", [
    (["--min-confidence", "0"], "--min-confidence must be in (0, 1], got 0", "[0.0<x<=1.0]"),
    (["--min-precision", "1"], "--min-precision must be in [0, 1) (0: off), got 1", "[0.0<=x<1.0]"),
    (["--min-cosine", "0"], "--min-cosine must be > 0 (above 1: off), got 0", "[0.0<x]"),
    (["--model-min-cosine", "0"], "--model-min-cosine must be > 0 (above 1: off), got 0", "[0.0<x]"),
])
def test_a_range_refusing_its_bound_is_shown_so_in_help_and_refused_at_it(tmp_path, args, said, shown):
    # --help showed [0.0<=x<=1.0] for --min-confidence, and 0 was then refused by the library
    _refused_in_one_line(tmp_path, "audit", args, said)
    page = " ".join(runner.invoke(app, ["audit", "--help"], env={"COLUMNS": "250"}).output.split())
    own_help = page.split(f"{args[0]} <float>", 1)[1]
    assert shown in own_help[:own_help.index("[default:")]


@pytest.mark.parametrize("command, args, said", [
    ("audit", ["--bands", "x"], "--bands must be band numbers such as 4,3,2 (1-based), got 'x'"),
    ("resplit", ["--out", "NEW.csv", "--ratios", "train"],
     "--ratios must look like train=0.8,val=0.1,test=0.1; cannot read 'train'"),
])
def test_a_value_the_library_refuses_is_named_by_its_option_not_its_python_keyword(tmp_path, command, args, said):
    # the line named the keyword of the library call (min_precision must be in [0, 1)...), which
    # the command line has no such name for; from Python the keyword is still said
    _refused_in_one_line(tmp_path, command, args, said)
    from leakscan import DetectSettings
    with pytest.raises(ValueError, match=r"^min_precision must be in \[0, 1\)"):
        DetectSettings(min_precision=2)


def test_cross_split_only_on_one_split_says_nothing_was_searched(tmp_path):
    # it stopped with a traceback (an empty query set reshaped) and the exit code of a leak
    r = run("audit", FIXTURES / "train", "--cross-split-only", "--json", "-q", "--no-cache", "-j", "1")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout[r.stdout.index("{"):])
    assert d["n_pairs"] == 0 and any("nothing was searched" in w for w in d["warnings"])


@pytest.mark.parametrize("args, needed", [
    (["--no-html"], "--out"), (["--max-leak", "0.1"], "--fail-on-leak"),
    (["--model-batch", "4"], "--model"), (["--model-min-cosine", "0.9"], "--model"),
    (["resplit", "--out", "NEW", "--drop"], "--keep"),
    (["resplit", "--out", "NEW", "--link", "copy"], "--materialize"),
])
def test_an_option_without_the_one_it_works_with_is_refused(tmp_path, args, needed):
    # each was silently ignored (the audit ran without what the user asked for), or, for
    # --drop, refused only after the whole audit
    args = [tmp_path / "new.csv" if a == "NEW" else a for a in args]
    cmd = args[:1] + [FIXTURES] + args[1:] if args[0] == "resplit" else ["audit", FIXTURES, *args]
    r = run(*cmd, "-q", "--cache", tmp_path / "c.sqlite")
    given = next(a for a in reversed(args) if str(a).startswith("--"))
    assert r.exit_code == 2 and needed in r.output and given in r.output, r.output
    assert r.output.count("\n") == 1 and not (tmp_path / "c.sqlite").exists()


def test_cache_and_no_cache_together_are_refused(tmp_path):
    # --no-cache won silently and --cache PATH was ignored
    r = run("audit", FIXTURES, "-q", "--cache", tmp_path / "c.sqlite", "--no-cache")
    assert r.exit_code == 2 and "--cache PATH and --no-cache" in r.output


@pytest.mark.parametrize("env, flag", [({}, "inf"), ({"LEAKSCAN_MAX_FILE_SIZE": "abc"}, None),
                                       ({"LEAKSCAN_MAX_FILE_SIZE": "inf"}, None)])
def test_a_bad_max_file_size_is_one_line_naming_it(tmp_path, env, flag):
    # --max-file-size inf stopped with a traceback (OverflowError); in the environment, abc was
    # ignored with one warning per file decoded (none when the cache held them all) and inf
    # skipped every file
    args = ["audit", str(FIXTURES), "-q", "--cache", str(tmp_path / "c.sqlite")]
    r = runner.invoke(app, args + (["--max-file-size", flag] if flag else []), env=env)
    name = "--max-file-size" if flag else "LEAKSCAN_MAX_FILE_SIZE"
    assert r.exit_code == 2 and f"{name} must be a size" in r.output and r.output.count("\n") == 1, r.output


def test_a_negative_seed_is_refused_before_the_audit(tmp_path):
    # it was refused after the whole audit, as "random_state must be None, an int >= 0 or a numpy Generator"
    r = run("resplit", FIXTURES, "--out", tmp_path / "new.csv", "--seed", "-1", "-q", "--cache", tmp_path / "c.sqlite")
    assert r.exit_code == 2 and "--seed" in r.output and "random_state" not in r.output
    assert not (tmp_path / "c.sqlite").exists()


def test_group_by_and_bands_on_plain_images_say_they_are_ignored(tmp_path, caplog):
    # on a folder with no DICOM files or TIFF tiles they did nothing, said only with -v (--group-by)
    # or not at all (--bands)
    from conftest import scene
    for k in range(3):
        scene(k).save(tmp_path / f"{k}.png")
    with caplog.at_level("WARNING", logger="leakscan"):
        r = run("audit", tmp_path, "-q", "--no-cache", "-j", "1", "--group-by", "StudyInstanceUID",
                "--bands", "4,3,2")
    assert r.exit_code == 0, r.output
    said = " ".join(rec.getMessage() for rec in caplog.records if rec.levelname == "WARNING")
    assert "--group-by StudyInstanceUID is ignored" in said and "--bands is ignored" in said


def test_the_dataset_is_looked_through_once(tmp_path, monkeypatch):
    # the --out check reads the images found by the audit's own look through the folder (a
    # second walk of millions of files, or of every DICOM header, took as long as the first)
    import leakscan.discovery as discovery

    walks = []
    walk = discovery._from_folder
    monkeypatch.setattr(discovery, "_from_folder", lambda *a, **k: walks.append(a[0]) or walk(*a, **k))
    r = run("audit", FIXTURES, "-q", "-j", "1", "--no-html", "--out", tmp_path / "res")
    assert r.exit_code == 0, r.output
    assert len(walks) == 1 and (tmp_path / "res" / "pairs.csv").is_file()
    r = run("resplit", FIXTURES, "-q", "-j", "1", "--out", tmp_path / "new.csv")
    assert r.exit_code == 0, r.output
    assert len(walks) == 2 and (tmp_path / "new.csv").is_file()
    r = run("audit", FIXTURES, "-q", "--out", FIXTURES / "report")  # still refused, after the one walk
    assert r.exit_code == 2 and "inside the dataset" in r.output and len(walks) == 3
    assert not (FIXTURES / "report").exists()


def test_fail_on_leak_compares_the_fraction_summary_json_shows(leaky_dataset):
    # 1 of 7 test images leaks: 0.14285714..., shown 0.142857. At --max-leak 0.142857 the run
    # exited 1 though the figure a script reads was not above it
    r = run("audit", leaky_dataset, "--json", "--fail-on-leak", "--max-leak", "0.142857")
    worst = max(lk["fraction"] for lk in json.loads(r.stdout)["leaks"])
    assert worst == 0.142857 and r.exit_code == 0, r.output
    r = run("audit", leaky_dataset, "-q", "--fail-on-leak", "--max-leak", "0.1428569")
    # the line says why: the bar as given and the fraction compared with it (it said "above
    # --max-leak 0.142857: ... (14.29%)", the bar rounded to the figure it was under)
    assert r.exit_code == 1 and "leakage above --max-leak 0.1428569: 1 of 7 test images (14.3%, " \
        "fraction 0.142857) have a duplicate in train" in r.output


def test_jobs_beyond_the_bound_refused_before_anything_is_written(tmp_path, monkeypatch):
    # -j 100000 started 100,000 worker processes; now one line, exit 2, nothing written
    import leakscan.parallel as parallel
    from leakscan.errors import ConfigError

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started")

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", no_pool)
    out, cache = tmp_path / "report", tmp_path / "features.sqlite"
    for command in (["audit", FIXTURES, "--out", out], ["resplit", FIXTURES, "--out", out / "new.csv"]):
        r = run(*command, "-j", "100000", "--cache", cache, "-q")
        assert r.exit_code == 2, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("leakscan: error: --jobs must be at most "), lines
        assert lines[0].endswith("cores here), got 100000"), lines
    assert not out.exists() and not cache.exists()
    most = parallel.MAX_JOBS_PER_CORE * parallel.default_jobs()  # more processes than cores, not without end
    assert parallel.check_jobs(most) == most
    with pytest.raises(ConfigError, match=f"^jobs must be at most {most} "):
        parallel.check_jobs(most + 1)


def test_path_options_written_with_equals_and_a_tilde_are_in_the_home_folder(leaky_dataset, tmp_path, monkeypatch):
    """``--out=~/res`` reaches leakscan as typed (the shell expands ``~`` only at a word's start):
    a leading ``~`` of every path option is the home folder, never a folder named ``~`` made here."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    (home / "verdicts.csv").write_text("a,b,decision\n")
    with open(home / "splits.csv", "w") as fh:
        fh.write("path,split\n" + "".join(f"{p},{p.parts[-3]}\n" for p in sorted(leaky_dataset.rglob("*.jpg"))))
    r = run("audit", "--manifest=~/splits.csv", "--out=~/res", "--decisions=~/verdicts.csv", "--cache=~/c.sqlite",
            "-q")
    assert r.exit_code == 0, r.output
    assert (home / "res" / "summary.json").is_file() and (home / "c.sqlite").is_file()
    r = run("resplit", "--manifest=~/splits.csv", "--out=~/new.csv", "--materialize=~/tree", "-q")
    assert r.exit_code == 0, r.output
    assert (home / "new.csv").is_file() and (home / "tree" / "train").is_dir()
    assert not os.listdir(work)



#: The options and argument naming a file or folder a command reads: DATA (a folder or a manifest)
#: and --hf may be folders; --manifest, --decisions and --model must be files.
READ_PATHS = [("DATA", False), ("--manifest", True), ("--decisions", True), ("--model", True), ("--hf", False)]


def _reading(command: str, name: str, path, tmp_path) -> list:
    """``command`` with ``path`` given to ``name``, and the fixtures as the data where it needs some."""
    data = [path] if name == "DATA" else [name, path] if name in ("--manifest", "--hf") else [FIXTURES, name, path]
    return [command, *data, *(["--out", tmp_path / "new.csv"] if command == "resplit" else []), "-q", "--no-cache"]


@pytest.mark.parametrize("command", ["audit", "resplit"])
@pytest.mark.parametrize("name, file_only", READ_PATHS)
def test_a_missing_input_or_a_folder_for_a_file_is_one_line_naming_the_option(tmp_path, command, name, file_only):
    # the line named the path alone, each input in its own words ("decisions file not found",
    # "cannot read model ...: No such file or directory", "no such dataset folder"); a folder
    # given for a file said "Is a directory" once the decisions or the model were read
    missing = tmp_path / "missing.csv"
    r = run(*_reading(command, name, missing, tmp_path))
    said = "no such file" if file_only else "no such file or folder"
    assert r.exit_code == 2 and r.output == f"leakscan: error: {name} {missing}: {said}\n", r.output
    if file_only:
        folder = tmp_path / "folder"
        folder.mkdir()
        r = run(*_reading(command, name, folder, tmp_path))
        assert r.exit_code == 2 and r.output == f"leakscan: error: {name} {folder}: a folder, not a file\n", r.output
    assert not (tmp_path / "new.csv").exists()


@pytest.mark.parametrize("command", ["audit", "resplit"])
@pytest.mark.parametrize("given, said", [
    (["DATA", "--hf"], "--hf PATH replaces DATA and --manifest; give one of them"),
    (["--manifest", "--hf"], "--hf PATH replaces DATA and --manifest; give one of them"),
    (["DATA", "--manifest"], "give the data to audit (MISSING) or a manifest (EXISTING), not both"),
])
def test_inputs_that_cannot_be_combined_are_refused_before_either_is_looked_at(tmp_path, command, given, said):
    # DATA that did not exist beside --hf (or --manifest) was named as missing, not refused as a
    # combination: once it existed the run was refused all the same
    missing, existing = tmp_path / "missing", tmp_path / "existing"
    existing.mkdir()
    args = [*([missing] if given[0] == "DATA" else [given[0], missing]), given[1], existing]
    r = run(command, *args, *(["--out", tmp_path / "new.csv"] if command == "resplit" else []), "-q", "--no-cache")
    said = said.replace("MISSING", str(missing)).replace("EXISTING", str(existing))
    assert r.exit_code == 2 and r.output.startswith(f"leakscan: error: {said}") and r.output.count("\n") == 1, r.output
    assert not (tmp_path / "new.csv").exists()


def _leakscan_bound_by_permissions(args, locked):
    """``leakscan *args`` run in a child that permissions bind, root included; the test is skipped
    where no such child can be made, or where it can still read ``locked``."""
    from conftest import ROOT, without_root_reading

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    reads = "import os, sys; p = sys.argv[1]; open(p, 'rb') if os.path.isfile(p) else os.listdir(p)"
    try:
        probe = subprocess.run([sys.executable, "-c", reads, str(locked)], preexec_fn=without_root_reading(),
                               capture_output=True, timeout=60)
        if probe.returncode == 0:
            pytest.skip("the child reads what permissions deny: they cannot be tested")
        return subprocess.run([sys.executable, "-m", "leakscan", *map(str, args)], env=env, capture_output=True,
                              text=True, preexec_fn=without_root_reading(), timeout=300)
    except subprocess.SubprocessError as exc:  # root without the right to drop capabilities
        pytest.skip(f"cannot run a child that permissions bind: {exc}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="drops root's reading rights the Linux way")
@pytest.mark.parametrize("name, kind", [("DATA", "file"), ("DATA", "folder"), ("--manifest", "file"),
                                        ("--decisions", "file"), ("--model", "file"), ("--hf", "folder"),
                                        ("--out", "folder"), ("--materialize", "folder")])
def test_a_path_that_cannot_be_read_is_one_line_not_clicks_usage_message(leaky_dataset, tmp_path, name, kind):
    # click's own check of every path option said "Usage: ... Try '... -h' for help. Error: Invalid
    # value for '--manifest' / '-m': path '...' is not readable." in three lines
    locked = tmp_path / ("splits.csv" if kind == "file" else "folder")
    if kind == "file":
        locked.write_text("path,split\n")
    else:
        locked.mkdir()
    if name == "--out":
        args = ["audit", leaky_dataset, "--out", locked, "-q", "--no-cache"]
    elif name == "--materialize":
        args = ["resplit", leaky_dataset, "--out", tmp_path / "new.csv", "--materialize", locked, "-q", "--no-cache"]
    else:
        args = _reading("audit", name, locked, tmp_path)
    locked.chmod(0)
    try:
        r = _leakscan_bound_by_permissions(args, locked)
    finally:
        locked.chmod(0o700)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("leakscan: error: "), r.stderr
    if name in dict(READ_PATHS):
        assert r.stderr == f"leakscan: error: {name} {locked}: cannot read (Permission denied)\n"
    else:  # a path written to: the library's own line
        assert r.stderr.startswith(f"leakscan: error: {locked}: ") and "not writable" in r.stderr, r.stderr
    assert not (tmp_path / "new.csv").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="drops root's reading rights the Linux way")
def test_a_new_manifest_replaces_one_that_cannot_be_read(leaky_dataset, tmp_path):
    # resplit --out naming an earlier manifest that cannot be read was refused by click's check
    # with --force, though it is replaced, never read
    out = tmp_path / "new.csv"
    out.write_text("path,split\n")
    out.chmod(0)
    try:
        r = _leakscan_bound_by_permissions(["resplit", leaky_dataset, "--out", out, "--force", "-q", "--no-cache"],
                                           out)
    finally:
        out.chmod(0o600)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert out.read_text().startswith("path,split,label,group") and len(csv_rows(out)) == 19


def test_quiet_runs_still_name_the_files_they_skipped(leaky_dataset, tmp_path):
    # -q printed no table, and with it the only word of an unreadable file: the run said nothing of it
    (leaky_dataset / "test" / "a" / "broken.jpg").write_bytes(b"not an image")
    r = run("audit", leaky_dataset, "-q", "-j", "1", "--no-html", "--out", tmp_path / "res")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    said = [line for line in r.stderr.splitlines() if "skipped" in line]
    assert len(said) == 1 and f"reasons in {tmp_path / 'res'}/skipped.csv" in said[0], r.stderr
    assert "test/a/broken.jpg: not an image Pillow can read" in said[0]
    r = run("resplit", leaky_dataset, "-q", "-j", "1", "--out", tmp_path / "new.csv")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert f"1 unreadable file(s) left out of the new split, listed in {tmp_path / 'new.skipped.csv'}" in r.stderr


@pytest.mark.parametrize("args, said", [
    (["s3://bucket/train"], "DATA s3://bucket/train: a URL, not a file or folder"),
    (["--manifest", "https://example.com/data/manifest.csv"],
     "--manifest https://example.com/data/manifest.csv: a URL, not a file"),
])
def test_a_url_given_for_the_data_is_named_as_a_url_not_as_a_missing_path(tmp_path, args, said):
    # the path kept one slash of the two: "DATA s3:/bucket/train: no such file or folder"
    r = run("audit", *args, "--out", tmp_path / "new", "-q")
    assert r.exit_code == 2 and r.output.startswith(f"leakscan: error: {said}: leakscan reads local files only"), r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "new").exists()
    import leakscan
    from leakscan.errors import InputError
    with pytest.raises(InputError, match="^s3://bucket/x: a URL"):
        leakscan.audit("s3://bucket/x")
