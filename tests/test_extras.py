"""Optional extras: the core install pulls none of them, and each extra installs cleanly alone.

The pyproject checks always run. The fresh-venv checks are slow and need a package index, so
they run only when asked (CI does, see .ci/run):

* ``LEAKSCAN_TEST_EXTRAS=1``: ``pip install --dry-run`` of ``.`` and of each extra alone in a
  fresh venv: everything resolves, the core pulls no extra's library, each extra pulls its own.
* ``LEAKSCAN_TEST_EXTRAS=install``: also really installs each extra alone in its own fresh
  venv and audits a tiny input of that kind with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
#: extra -> the distributions it must bring (the core must bring none of them).
EXTRAS = {"hf": {"datasets"}, "parquet": {"pyarrow"}, "dicom": {"pydicom"}, "geo": {"tifffile"}}
HEAVY = {"datasets", "pyarrow", "pandas", "pydicom", "tifffile", "huggingface-hub", "huggingface_hub"}
MODE = os.environ.get("LEAKSCAN_TEST_EXTRAS", "")

#: A tiny audit per extra, run with the fresh venv's python.
SMOKE = {
    "hf": """
        import datasets, numpy as np, leakscan
        img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
        dd = datasets.DatasetDict({s: datasets.Dataset.from_dict({"image": [img]},
                                   features=datasets.Features({"image": datasets.Image()})) for s in ("train", "test")})
        assert leakscan.audit(dd, jobs=1, cache=False).to_dict()["n_cross_split_pairs"] == 1
    """,
    "parquet": """
        import io, pyarrow as pa, pyarrow.parquet as pq, numpy as np, leakscan
        from PIL import Image
        b = io.BytesIO(); Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(b, "PNG")
        pq.write_table(pa.table({"image": [b.getvalue()] * 2, "split": ["train", "test"]}), "t.parquet")
        assert leakscan.audit(manifest="t.parquet", jobs=1, cache=False).to_dict()["n_cross_split_pairs"] == 1
    """,
    "dicom": """
        import leakscan.sources.dicom as d
        assert d.available()
    """,
    "geo": """
        import numpy as np, tifffile
        from leakscan.sources.geotiff import decode_tile
        tifffile.imwrite("t.tif", np.arange(5 * 16 * 16, dtype=np.uint16).reshape(16, 16, 5), photometric="minisblack", planarconfig="contig")
        assert decode_tile(open("t.tif", "rb").read())[0].size == (16, 16)
    """,
}


def _pyproject() -> dict:
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(req: str) -> str:
    for sep in "<>=![; ":
        req = req.split(sep)[0]
    return req.lower()


def test_core_dependencies_hold_no_extra():
    project = _pyproject()["project"]
    core = {_name(r) for r in project["dependencies"]}
    assert not core & HEAVY
    extras = project["optional-dependencies"]
    for extra, needs in EXTRAS.items():
        assert needs <= {_name(r) for r in extras[extra]}, extra
        assert needs <= {_name(r) for r in extras["test"]}, f"the test extra lacks {needs}"


def test_optional_libraries_load_lazily():
    code = ("import sys, leakscan, leakscan.cli, leakscan.sources.discover; "
            "print(sorted(m for m in ('datasets', 'pydicom', 'tifffile', 'pyarrow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


def _dry_run(py: Path, target: str, tmp: Path) -> set[str]:
    report = tmp / "report.json"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--dry-run", "--report", str(report), target],
                   check=True, cwd=ROOT)
    return {i["metadata"]["name"].lower().replace("_", "-") for i in json.loads(report.read_text())["install"]}


@pytest.mark.skipif(not MODE, reason="slow: set LEAKSCAN_TEST_EXTRAS=1 (CI does) to resolve installs in a fresh venv")
def test_core_install_pulls_no_extra(tmp_path):
    got = _dry_run(_venv(tmp_path / "v"), ".", tmp_path)
    assert "leakscan" in got and not got & {h.replace("_", "-") for h in HEAVY}


@pytest.mark.skipif(not MODE, reason="slow: set LEAKSCAN_TEST_EXTRAS=1 (CI does) to resolve installs in a fresh venv")
@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_each_extra_resolves_alone(extra, tmp_path):
    py = _venv(tmp_path / "v")
    got = _dry_run(py, f".[{extra}]", tmp_path)
    assert EXTRAS[extra] <= got
    others = set().union(*(v for k, v in EXTRAS.items() if k != extra)) - EXTRAS[extra]
    if extra != "hf":  # datasets brings pyarrow itself
        assert not got & others
    if MODE == "install":
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", f".[{extra}]"], check=True, cwd=ROOT)
        subprocess.run([str(py), "-c", textwrap.dedent(SMOKE[extra])], check=True, cwd=tmp_path,
                       env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
