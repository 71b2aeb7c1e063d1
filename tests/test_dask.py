"""Feature extraction on a Dask cluster gives the same result as a local run."""

import numpy as np
import pytest

from leakscan import audit
from conftest import FIXTURES

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed (pip install 'leakscan[dask]')")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_dask_run_equals_local_run(client, fixtures_audit):
    local, _ = fixtures_audit  # audit(FIXTURES, cache=False, jobs=1)
    remote = audit(FIXTURES, cache=False, client=client)
    for name in ("ok", "file_digest", "pixel_digest", "hashes", "embedding", "low_info", "sizes"):
        assert np.array_equal(getattr(local.features, name), getattr(remote.features, name)), name
    assert local.features.failures == remote.features.failures
    assert np.array_equal(local.pairs.i, remote.pairs.i) and np.array_equal(local.pairs.j, remote.pairs.j)
    assert local.to_dict()["leaks"] == remote.to_dict()["leaks"]


def test_cli_dask_address(client, tmp_path):
    from typer.testing import CliRunner
    from leakscan.cli import app
    import json

    r = CliRunner().invoke(app, ["audit", str(FIXTURES), "--dask", client.scheduler.address, "--no-cache", "--json", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_images"] == 310
    import dask
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        r = CliRunner().invoke(app, ["audit", str(FIXTURES), "--dask", "tcp://127.0.0.1:1", "-q"])
    assert r.exit_code == 2 and "Dask scheduler" in r.output


def test_dask_draws_tasks_a_few_ahead(client):
    from leakscan.parallel import AHEAD, run_chunks

    drawn, got, ahead = [], [], []

    def tasks():
        for k in range(12):
            drawn.append(k)
            yield -k

    for pos, value in run_chunks(abs, tasks(), client=client):
        ahead.append(len(drawn) - len(got))
        got.append((pos, value))
    assert sorted(got) == [(k, k) for k in range(12)]
    assert max(ahead) <= AHEAD * 2 + 1, ahead


def test_cli_max_file_size_reaches_dask_workers(client, leaky_dataset, tmp_path):
    """--max-file-size is set in this process; the cluster's workers (other processes, started
    before it) skip the same large file a local run skips."""
    from typer.testing import CliRunner
    from leakscan.cli import app

    big = leaky_dataset / "train" / "a" / "big.jpg"
    big.write_bytes((leaky_dataset / "train" / "a" / "0.jpg").read_bytes() + b"\0" * 60_000)
    outs = {}
    for name, extra in (("local", ["-j", "1"]), ("dask", ["--dask", client.scheduler.address])):
        out = tmp_path / name
        r = CliRunner().invoke(app, ["audit", str(leaky_dataset), "--out", str(out), "--no-cache", "-q",
                                     "--no-html", "--max-file-size", "50K", *extra])
        assert r.exit_code == 0, r.output
        outs[name] = {f: (out / f).read_text() for f in ("pairs.csv", "groups.csv", "skipped.csv")}
    assert "train/a/big.jpg" in outs["local"]["skipped.csv"] and "cap" in outs["local"]["skipped.csv"]
    assert outs["dask"] == outs["local"]


def test_cli_cluster_failure_is_one_line(leaky_dataset, tmp_path, monkeypatch):
    """A task the cluster cannot run (here: workers without leakscan; also a lost scheduler or
    killed workers) ends the run with one line and exit 2, no traceback, no --out folder."""
    from typer.testing import CliRunner
    import leakscan.features
    from leakscan.cli import app

    def no_leakscan_there(job):
        raise ModuleNotFoundError("No module named 'leakscan'")

    monkeypatch.setattr(leakscan.features, "_extract_chunk", no_leakscan_there)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=40) as cluster:
        out = tmp_path / "report"
        r = CliRunner().invoke(app, ["audit", str(leaky_dataset), "--dask", cluster.scheduler_address,
                                     "--out", str(out), "--no-cache", "-q"])
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = r.output.strip().splitlines()
    assert lines == ["leakscan: error: the Dask cluster failed: ModuleNotFoundError: No module named 'leakscan'"]
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


SLOW_WORKER = """
import asyncio, pathlib, sys, time
import leakscan.features as f
from distributed import Worker

def slow(job):
    pathlib.Path(sys.argv[2]).touch()
    time.sleep(30)

f._extract_chunk = slow

async def main():
    async with Worker(sys.argv[1], nthreads=1) as w:
        await w.finished()

asyncio.run(main())
"""


def _subprocess_env() -> dict:
    """The environment of a leakscan or worker process a test starts: this checkout importable."""
    import os

    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(FIXTURES.parent), os.environ.get("PYTHONPATH"))
                                                       if p))


def _wait_until(check, failure: str, seconds: float = 60) -> None:
    """Poll ``check()`` every 0.1 s until it is true; fail the test with ``failure`` after ``seconds``."""
    import time

    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


def _kill(procs) -> None:
    """Kill the processes a test started that are still running."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_cli_scheduler_lost_mid_run(leaky_dataset, tmp_path):
    """The scheduler dies while the workers decode: one line, exit 2 (not 1, "leak found"), no
    traceback (not even one logged by the cluster's client), no --out folder."""
    import json
    import signal
    import subprocess
    import sys

    env = _subprocess_env()
    sched_file, started = tmp_path / "scheduler.json", tmp_path / "started"
    (tmp_path / "worker.py").write_text(SLOW_WORKER)
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--dashboard-address", ":0", "--scheduler-file", str(sched_file)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_until(lambda: sched_file.exists() and sched_file.stat().st_size, "the scheduler never started", 30)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), address, str(started)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address, timeout=60) as client:  # else the run may say it waits for one
            client.wait_for_workers(1, timeout=120)
        out = tmp_path / "report"
        run = subprocess.Popen([sys.executable, "-m", "leakscan", "audit", str(leaky_dataset), "--dask", address,
                                "--out", str(out), "--no-cache", "-q"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        procs.append(run)
        _wait_until(started.exists, "the worker never started a task")
        procs[0].send_signal(signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        _kill(procs)
    assert run.returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("leakscan: error: the Dask cluster failed: "), stderr
    assert "scheduler" in lines[0]
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_workers_lost_mid_run(leaky_dataset, tmp_path):
    """Every worker killed mid-run, with no nanny to restart it: the run says it waits for
    workers, then, none joining, ends with one line and exit 2, no --out folder (it waited in
    silence, without end)."""
    import subprocess
    import sys

    env = _subprocess_env()
    started, out = tmp_path / "started", tmp_path / "report"
    (tmp_path / "worker.py").write_text(SLOW_WORKER)
    wait_two_seconds = "import leakscan.cli, leakscan.parallel; leakscan.parallel.WAIT_FOR_WORKERS = 2; leakscan.cli.main()"
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as cluster:
        address = cluster.scheduler_address
        procs = [subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), address, str(started)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        try:
            _wait_until(lambda: cluster.scheduler.workers, "the worker never joined")
            run = subprocess.Popen([sys.executable, "-c", wait_two_seconds, "audit", str(leaky_dataset), "--dask",
                                    address, "--out", str(out), "--no-cache", "-q"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(run)
            _wait_until(started.exists, "the worker never started a task")
            procs[0].kill()
            stdout, stderr = run.communicate(timeout=60)
        finally:
            _kill(procs)
    assert run.returncode == 2, stderr
    assert stderr.strip().splitlines() == [
        f"leakscan: WARNING: the Dask scheduler at {address} has no workers left: waiting up to 2 s for some to "
        "join (Ctrl-C stops)",
        f"leakscan: error: the Dask cluster failed: the scheduler at {address} lost all its workers and none joined "
        "in 2 s"], stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_bad_max_file_size_before_connecting(leaky_dataset):
    """A --max-file-size that is not a size is refused at once, not after waiting out the
    scheduler's connect timeout (and then blamed on the scheduler)."""
    import dask
    from typer.testing import CliRunner
    from leakscan.cli import app

    with dask.config.set({"distributed.comm.timeouts.connect": "5s"}):
        r = CliRunner().invoke(app, ["audit", str(leaky_dataset), "--dask", "tcp://127.0.0.1:1", "--no-cache", "-q",
                                     "--max-file-size", "lots"])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == "leakscan: error: --max-file-size must be a size such as 512M or 20000000, got 'lots'"


def test_cli_missing_dataset_before_connecting(tmp_path):
    """A dataset path that is not there is named at once, not after waiting out an unreachable
    scheduler's connect timeout (and then blamed on the scheduler)."""
    import time

    import dask
    from typer.testing import CliRunner
    from leakscan.cli import app

    missing = tmp_path / "datta"
    with dask.config.set({"distributed.comm.timeouts.connect": "10s"}):
        for said, command in ((f"DATA {missing}: no such file or folder", ["audit", str(missing)]),
                              (f"--manifest {missing}.csv: no such file", ["audit", "--manifest", f"{missing}.csv"]),
                              (f"DATA {missing}: no such file or folder",
                               ["resplit", str(missing), "--out", str(tmp_path / "new.csv")])):
            t0 = time.monotonic()
            r = CliRunner().invoke(app, [*command, "--dask", "tcp://127.0.0.1:1", "--no-cache", "-q"])
            took = time.monotonic() - t0
            assert r.exit_code == 2, r.output
            assert r.output.strip() == f"leakscan: error: {said}"
            assert took < 3, took  # the connect timeout is 10 s
    assert list(tmp_path.iterdir()) == []


def test_dask_without_workers_says_it_waits(caplog):
    """A scheduler with no workers (not started yet, or all lost) holds the tasks until some
    join: the run says so rather than hanging in silence, and goes on when one joins."""
    import logging
    import threading

    from leakscan.parallel import run_chunks

    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as c:
        joined = threading.Timer(1.0, lambda: cluster.scale(1))
        joined.start()
        try:
            with caplog.at_level(logging.WARNING, logger="leakscan"):
                got = sorted(run_chunks(abs, [-1, -2, -3], client=c))
        finally:
            joined.cancel()
    assert got == [(0, 1), (1, 2), (2, 3)]
    assert any("no workers" in r.getMessage() and cluster.scheduler_address in r.getMessage() for r in caplog.records)


def _refuse(task):
    from leakscan.errors import InputError

    raise InputError(f"model m.onnx: its first output is () for task {task}")


def test_a_tasks_own_error_is_not_called_a_cluster_failure(client):
    # leakscan's own errors raised in a task (a model that cannot run) keep their words; only the
    # cluster's failures are "the Dask cluster failed"
    from leakscan.errors import InputError
    from leakscan.parallel import run_chunks

    with pytest.raises(InputError, match=r"^model m.onnx: its first output is \(\) for task 1$"):
        list(run_chunks(_refuse, [1], client=client))


def test_the_clusters_own_log_lines_are_not_printed_beside_the_one_line(client, caplog):
    # "Failed to reconnect to scheduler after 30.00 seconds, closing client" (distributed.client,
    # no traceback) was printed above the one-line error when the scheduler was lost
    import logging

    from leakscan.cli import _dask_client

    caplog.set_level(logging.WARNING)
    with _dask_client(client.scheduler.address):
        logging.getLogger("distributed.client").error("Failed to reconnect to scheduler after 30.00 seconds")
        logging.getLogger("leakscan.features").warning("a file was skipped")
    assert "Failed to reconnect" not in caplog.text and "a file was skipped" in caplog.text
    logging.getLogger("distributed.client").error("after the run")  # the filter goes with the client
    assert "after the run" in caplog.text


class _LosingClient:
    """A client whose scheduler had a worker, then none (no cluster started)."""

    status = "running"
    scheduler = type("Scheduler", (), {"address": "tcp://10.0.0.1:8786"})()

    def __init__(self):
        self.counts = [{"w": 1}]

    def nthreads(self):
        return self.counts.pop(0) if self.counts else {}


def test_the_wait_for_lost_workers_is_set_by_leakscan_dask_wait(monkeypatch, caplog):
    """The 10 minutes a run waits for workers after losing them all had no setting:
    ``$LEAKSCAN_DASK_WAIT`` (seconds) sets it."""
    import logging
    import time

    from leakscan.errors import LeakscanError
    from leakscan.parallel import _Workers

    monkeypatch.setenv("LEAKSCAN_DASK_WAIT", "0.2")
    workers = _Workers(_LosingClient())
    assert workers.threads() == 1
    with caplog.at_level(logging.WARNING, logger="leakscan"):
        assert workers.threads() == 0
    assert "waiting up to 0.2 s for some to join" in caplog.text
    time.sleep(0.3)
    with pytest.raises(LeakscanError, match="lost all its workers and none joined in 0.2 s$"):
        workers.threads()


@pytest.mark.parametrize("value", ["soon", "-5", "nan", ""])
def test_a_bad_leakscan_dask_wait_is_one_line_before_connecting(leaky_dataset, monkeypatch, value):
    import dask
    from typer.testing import CliRunner

    from leakscan.cli import app

    monkeypatch.setenv("LEAKSCAN_DASK_WAIT", value)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        r = CliRunner().invoke(app, ["audit", str(leaky_dataset), "--dask", "tcp://127.0.0.1:1", "--no-cache", "-q"])
    if not value:  # set but empty: the default, as an empty LEAKSCAN_MAX_FILE_SIZE is
        assert r.exit_code == 2 and "cannot reach the Dask scheduler" in r.output, r.output
        return
    assert r.exit_code == 2, r.output
    assert r.output.strip() == ("leakscan: error: LEAKSCAN_DASK_WAIT must be a number of seconds (0 or more, "
                                f"such as 600), got {value!r}")
