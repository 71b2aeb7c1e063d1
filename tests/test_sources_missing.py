"""A missing optional library is one clear error naming the pip install that fixes it."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

import leakscan
from leakscan.cli import app
from leakscan.errors import InputError
from conftest import scene


@pytest.fixture
def without(monkeypatch):
    def hide(*names):
        for n in names:
            for mod in [m for m in sys.modules if m == n or m.startswith(n + ".")]:
                monkeypatch.delitem(sys.modules, mod)
            monkeypatch.setitem(sys.modules, n, None)  # import raises ImportError
    return hide


def test_parquet_without_pyarrow(tmp_path, without):
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    without("pyarrow")
    with pytest.raises(InputError, match=r"pip install 'leakscan\[parquet\]'"):
        leakscan.audit(manifest=tmp_path / "t.parquet", jobs=1)


def test_hf_folder_without_datasets(tmp_path, without):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "dataset_dict.json").write_text('{"splits": ["train"]}')
    without("datasets")
    r = CliRunner().invoke(app, ["audit", "--hf", str(tmp_path / "ds")])
    assert r.exit_code == 2 and "pip install 'leakscan[hf]'" in r.output


def test_dicom_without_pydicom(tmp_path, without):
    d = tmp_path / "scans" / "train"
    d.mkdir(parents=True)
    (d / "a.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    without("pydicom")
    with pytest.raises(InputError, match=r"pip install 'leakscan\[dicom\]'"):
        leakscan.audit(tmp_path / "scans", jobs=1)
    scene(1).save(d / "b.png")  # with other images: the DICOM files are skipped, saying why
    a = leakscan.audit(tmp_path / "scans", jobs=1)
    assert a.n_images == 1 and "leakscan[dicom]" in dict(a.skipped)["train/a.dcm"]


def test_bands_without_tifffile(tmp_path, without):
    d = tmp_path / "tiles" / "train"
    d.mkdir(parents=True)
    scene(1).save(d / "a.tif")
    without("tifffile")
    r = CliRunner().invoke(app, ["audit", str(tmp_path / "tiles"), "--bands", "3,2,1"])
    assert r.exit_code == 2 and "pip install 'leakscan[geo]'" in r.output
    a = leakscan.audit(tmp_path / "tiles", jobs=1)   # without --bands: Pillow reads plain TIFFs
    assert a.n_images == 1 and a.manifest.source is None
