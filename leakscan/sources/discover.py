"""Which reader a source needs: tables, Hugging Face datasets, DICOM files, GeoTIFF tiles.

Called by :func:`leakscan.discovery.discover` (and its folder scan); returns None for the
sources the core reads itself (image folders, CSV manifests, lists, arrays).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..manifest import Manifest
from ..decode import is_regular_file
from .rows import RowSource, object_array
from .tables import PARQUET_SUFFIXES, TABLE_OPTIONS

log = logging.getLogger(__name__)

__all__ = ["discover_special", "special_folder", "SOURCE_OPTIONS"]

HF_OPTIONS = ("split", "image_column", "label_column", "group_column")
FOLDER_OPTIONS = ("group_by", "bands")
SOURCE_OPTIONS = tuple(dict.fromkeys(TABLE_OPTIONS + HF_OPTIONS + FOLDER_OPTIONS))
TIFF_SUFFIXES = (".tif", ".tiff")


def _check(options: dict, allowed, what: str) -> dict:
    unknown = [k for k in options if k not in SOURCE_OPTIONS]
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(SOURCE_OPTIONS)}")
    wrong = [k for k, v in options.items() if v is not None and k not in allowed]
    if wrong:
        raise ConfigError(f"{', '.join(wrong)} do(es) not apply to {what} (they apply to: "
                          f"{', '.join(allowed) or 'nothing here'})")
    return {k: v for k, v in options.items() if v is not None and k in allowed}


def _is_dataframe(x) -> bool:
    return type(x).__module__.split(".")[0] == "pandas" and hasattr(x, "columns") and hasattr(x, "iloc")


def _is_hf(x) -> bool:
    return type(x).__module__.split(".")[0] == "datasets" and type(x).__name__ in (
        "Dataset", "DatasetDict", "IterableDataset", "IterableDatasetDict")


def is_hf_folder(p: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return (p / "dataset_dict.json").is_file() or (p / "state.json").is_file()


def discover_special(source, manifest, options: dict):
    """A Manifest for a DataFrame, a Parquet file, a dataset or a saved dataset folder; else None."""
    if _is_dataframe(source):
        from .tables import from_dataframe  # noqa: PLC0415

        return from_dataframe(source, **_check(options, TABLE_OPTIONS, "a DataFrame"))
    if _is_hf(source):
        from .hf import from_hf  # noqa: PLC0415

        return from_hf(source, **_check(options, HF_OPTIONS, "a Hugging Face dataset"))
    target = manifest if manifest is not None else source
    if isinstance(target, (str, os.PathLike)):
        p = Path(target)
        if p.suffix.lower() in PARQUET_SUFFIXES and (p.is_file() or not p.exists()):
            from .tables import from_parquet  # noqa: PLC0415

            return from_parquet(p, **_check(options, TABLE_OPTIONS, "a Parquet manifest"))
        if p.is_dir() and manifest is None and is_hf_folder(p):
            from .hf import from_hf, load_hf  # noqa: PLC0415

            opts = _check(options, HF_OPTIONS, "a saved Hugging Face dataset")
            return from_hf(load_hf(p), **opts)
        if p.is_dir() and manifest is None:
            _check(options, FOLDER_OPTIONS, "a folder")
            return None  # the folder scan calls special_folder
    _check(options, (), "this input")
    return None


def _is_dicom_file(path: str) -> bool:
    """``DICM`` at byte 128 (the DICOM preamble), or a ``.dcm``/``.dicom`` name."""
    if os.path.splitext(path)[1].lower() in (".dcm", ".dicom"):
        return True
    if not is_regular_file(path):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def special_folder(root: Path, rows: list, maybe_dicom: list, options: dict):
    """The Manifest of a folder holding DICOM files or GeoTIFF tiles, or None for a plain image folder.

    ``rows`` are the folder scan's image files, ``maybe_dicom`` its ``.dcm`` and
    extension-less files, each ``(relative path, split, label)``.
    """
    options = _check(options, FOLDER_OPTIONS, "a folder")
    root_s = os.path.abspath(root)
    dicoms = [r for r in maybe_dicom if _is_dicom_file(os.path.join(root_s, r[0]))]
    tiffs = [k for k, r in enumerate(rows) if os.path.splitext(r[0])[1].lower() in TIFF_SUFFIXES]
    geo = {}
    if tiffs:
        from . import geotiff  # noqa: PLC0415

        if geotiff.available() or "bands" in options:
            try:
                geo = geotiff.inspect_tiles([os.path.join(root_s, rows[k][0]) for k in tiffs], options.get("bands"))
            except ImportError as exc:  # --bands without tifffile
                raise InputError(str(exc)) from None
            geo = {tiffs[q]: info for q, info in geo.items()}
    if not dicoms and not geo:
        if "group_by" in options and options["group_by"] not in (None, "none"):
            log.info("--group-by %s: no DICOM files in %s", options["group_by"], root)
        return None
    out_paths, out_splits, out_labels, out_groups, items, skipped = [], [], [], [], [], []
    footprints, crs = [], []
    for k, (rel, split, label) in enumerate(rows):
        info = geo.get(k)
        out_paths.append(rel)
        out_splits.append(split)
        out_labels.append(label)
        out_groups.append("")
        path = os.path.join(root_s, rel)
        items.append(("geotiff", path) if info is not None else ("file", path))
        footprints.append(info["footprint"] if info is not None and info["footprint"] is not None
                          else (np.nan,) * 4)
        crs.append(info["crs"] if info is not None else "")
    meta = {}
    if dicoms:
        from . import dicom  # noqa: PLC0415

        group_by = options.get("group_by", "PatientID")
        try:
            headers = dicom.inspect_files([os.path.join(root_s, r[0]) for r in dicoms], group_by)
        except ImportError as exc:
            if not rows:
                raise InputError(f"{root}: holds {len(dicoms)} DICOM files; {exc}") from None
            skipped += [(r[0], str(exc)) for r in dicoms]
            headers = None
        if headers is not None:
            meta["group_by"] = group_by
            for (rel, split, label), (n_frames, group) in zip(dicoms, headers):
                path = os.path.join(root_s, rel)
                frames = [-1] if n_frames <= 1 else list(range(n_frames))
                for f in frames:
                    out_paths.append(rel if f < 0 else f"{rel}#frame{f + 1}")
                    out_splits.append(split)
                    out_labels.append(label)
                    out_groups.append(group)
                    items.append(("dicom", path, f))
                    footprints.append((np.nan,) * 4)
                    crs.append("")
    if not out_paths:
        raise InputError(f"{root}: no image files found")
    opts = []
    if geo:
        meta["footprint"] = np.array(footprints, np.float64).reshape(-1, 4)
        meta["crs"] = np.array(crs, dtype=object)
        if options.get("bands"):
            opts.append(("bands", tuple(options["bands"])))
    source = RowSource(items=object_array(items), options=tuple(opts), meta=meta, files_are_paths=True)
    return Manifest(paths=np.array(out_paths, dtype=object), splits=np.array(out_splits, dtype=object),
                    labels=np.array(out_labels, dtype=object), groups=np.array(out_groups, dtype=object),
                    root=root, skipped=tuple(skipped), source=source)
