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


def test_dask_run_equals_local_run(client):
    local = audit(FIXTURES, cache=False, jobs=1)
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
