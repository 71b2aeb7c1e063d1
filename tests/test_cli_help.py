"""Every command and every option explains itself."""

import os
import subprocess
import sys

import click
import pytest
import typer
from typer.testing import CliRunner

from leakscan.cli import app

runner = CliRunner()
COMMAND = typer.main.get_command(app)


def test_every_command_and_option_has_help():
    assert COMMAND.help
    missing = []
    for name, cmd in COMMAND.commands.items():
        if not cmd.help:
            missing.append(name)
        assert "Example" in cmd.help, name
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.help:
                missing.append(f"{name} {p.opts}")
            if isinstance(p, click.Argument) and not getattr(p, "help", None):
                missing.append(f"{name} {p.name}")
    for p in COMMAND.params:
        if isinstance(p, click.Option) and not p.help and "--help" not in p.opts:
            missing.append(str(p.opts))
    assert not missing, missing


@pytest.mark.parametrize("cmd", [[], ["audit"], ["resplit"]])
def test_help_runs(cmd):
    r = runner.invoke(app, cmd + ["--help"])
    assert r.exit_code == 0 and "Usage" in r.stdout


@pytest.mark.parametrize("option", ["--parquet", "--no-html", "--force"])
def test_out_options_need_out(option):
    # each would do nothing without --out (--force overwrote nothing and said so nowhere)
    r = runner.invoke(app, ["audit", "fixtures", option])
    assert r.exit_code == 2 and "need --out DIR given without it: " + option in r.output


def test_parquet_output_or_clear_error(tmp_path):
    r = runner.invoke(app, ["audit", "fixtures", "--out", str(tmp_path), "--parquet", "-q", "--no-html"])
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert r.exit_code == 2 and "pip install pyarrow" in r.output
        return
    assert r.exit_code == 0, r.output
    t = pq.read_table(tmp_path / "pairs.parquet")
    assert t.column_names[:8] == ["a", "b", "split_a", "split_b", "label_a", "label_b", "kind", "score"]


def test_out_help_names_every_result_file():
    # the README's --out row: summary.json, pairs.csv, possible.csv, groups.csv, skipped.csv, report.html
    out = next(p for p in COMMAND.commands["audit"].params if "--out" in p.opts)
    for name in ("summary.json", "pairs.csv", "possible.csv", "groups.csv", "skipped.csv", "report.html"):
        assert name in out.help, name
    assert "possible.csv" in COMMAND.commands["audit"].help.split("--out report/")[1].splitlines()[0]


def test_cache_help_names_the_default_the_cache_uses(tmp_path, monkeypatch):
    from leakscan.cache import default_cache_path

    monkeypatch.delenv("LEAKSCAN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "leakscan" / "features.sqlite"
    monkeypatch.setenv("XDG_CACHE_HOME", "relcache")  # relative: ignored, as the XDG specification says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "leakscan" / "features.sqlite"
    cache = next(p for p in COMMAND.commands["audit"].params if "--cache" in p.opts)
    assert "$XDG_CACHE_HOME/leakscan/features.sqlite" in cache.help


def test_jobs_help_names_every_stage_it_runs_in_parallel():
    # README: processes for decoding, the pair evidence and the calibration, threads for the closer look
    jobs = next(p for p in COMMAND.commands["audit"].params if "--jobs" in p.opts)
    for stage in ("decoding", "pair evidence", "calibration", "closer look"):
        assert stage in jobs.help, stage


@pytest.mark.parametrize("cmd", [[], ["audit"], ["resplit"]])
def test_help_is_whole_under_python_OO(cmd):
    """``python -OO`` (PYTHONOPTIMIZE=2 in some images) strips docstrings: the commands' help,
    taken from them, lost its text, examples and exit codes, and the command list its lines."""
    def help_text(*flags):
        return subprocess.run([sys.executable, *flags, "-m", "leakscan", *cmd, "--help"], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "COLUMNS": "120"}).stdout
    full, stripped = help_text(), help_text("-OO")
    assert stripped == full
    assert ("Exit codes" in stripped) if cmd == ["audit"] else True
    assert ("Example" in stripped) if cmd else ("audit    Audit a dataset" in stripped)


@pytest.mark.skipif(os.name != "posix", reason="needs a pipe whose reader leaves")
@pytest.mark.parametrize("args", [["--help"], ["audit", "--help"], ["resplit", "-h"], ["--version"]])
def test_help_to_a_reader_that_left_ends_as_the_help_does(args):
    """``leakscan --help | head -c 10``: click turned the broken pipe into exit 1 (the code of
    "leak found"); it is exit 0, said nothing, as a reader that leaves the results is. With standard
    output closed (``>&-``) as well; a full disk is one line and exit 2, as for the results."""
    def run(stdout, preexec_fn=None):
        return subprocess.run([sys.executable, "-m", "leakscan", *args], stdout=stdout, stderr=subprocess.PIPE,
                              text=True, timeout=120, preexec_fn=preexec_fn)
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first line
    try:
        left = run(w)
    finally:
        os.close(w)
    assert (left.returncode, left.stderr) == (0, "")
    closed = run(subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
    assert (closed.returncode, closed.stderr) == (0, "")
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            failed = run(full)
        assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1 and "standard output" in failed.stderr, failed.stderr
