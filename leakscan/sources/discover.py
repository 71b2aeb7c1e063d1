"""Which reader a source needs: tables, Hugging Face datasets, DICOM files, GeoTIFF tiles.

Called by :func:`leakscan.discovery.discover` (and its folder scan); returns None for the
sources the core reads itself (image folders, CSV manifests, lists, arrays).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..manifest import Manifest
from ..decode import file_head, is_regular_file
from .rows import RowSource, object_array
from .tables import PARQUET_SUFFIXES, TABLE_OPTIONS

log = logging.getLogger(__name__)

__all__ = ["discover_special", "special_folder", "special_csv", "maybe_dicom_name", "SOURCE_OPTIONS", "FRAME_ROW",
           "DICOM_SUFFIXES"]

HF_OPTIONS = ("split", "image_column", "label_column", "group_column")
FOLDER_OPTIONS = ("group_by", "bands")
DATAFRAME_OPTIONS = TABLE_OPTIONS + ("root",)  # the folder a DataFrame's relative paths are in
SOURCE_OPTIONS = tuple(dict.fromkeys(DATAFRAME_OPTIONS + HF_OPTIONS + FOLDER_OPTIONS))
TIFF_SUFFIXES = (".tif", ".tiff")
#: Names of DICOM files, read as DICOM with or without the 128-byte preamble and its ``DICM``
#: marker (Siemens writes ``.IMA`` files without them); other names need the marker.
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def _check(options: dict, allowed, what: str) -> dict:
    unknown = [k for k in options if k not in SOURCE_OPTIONS]
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(SOURCE_OPTIONS)}")
    wrong = [k for k, v in options.items() if v is not None and k not in allowed]
    if wrong:
        raise ConfigError(f"{', '.join(wrong)} do(es) not apply to {what} (they apply to: "
                          f"{', '.join(allowed) or 'nothing here'})")
    out = {k: v for k, v in options.items() if v is not None and k in allowed}
    if "bands" in out:  # as --bands is: band 0 would be the last band, two bands no picture
        from .geotiff import parse_bands  # noqa: PLC0415 - no tifffile import

        out["bands"] = parse_bands(out["bands"])
        if out["bands"] is None:
            del out["bands"]
    return out


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

        return from_dataframe(source, **_check(options, DATAFRAME_OPTIONS, "a DataFrame"))
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
        if manifest is not None or p.suffix.lower() in (".csv", ".tsv"):
            _check(options, FOLDER_OPTIONS, "a CSV manifest")
            return None  # the CSV reader calls special_csv (DICOM frames, GeoTIFF tiles)
    _check(options, (), "this input")
    return None


def maybe_dicom_name(name: str) -> bool:
    """A file name DICOM files go by: ``.dcm``/``.dicom``, no extension, Siemens' ``.ima``, or a
    numeric last part (files named by their SOP instance UID, ``1.2.840.113619.2.55.3.1234``).

    >>> [maybe_dicom_name(n) for n in ("a.dcm", "IM0001", "1.2.840.10008.320", "x.IMA", "a.png")]
    [True, True, True, True, False]
    """
    ext = os.path.splitext(name)[1].lower()
    return ext == "" or ext in DICOM_SUFFIXES or ext[1:].isdigit()


def _is_dicom_file(path: str) -> bool:
    """A name of :data:`DICOM_SUFFIXES`, or ``DICM`` at byte 128 (after the DICOM preamble)."""
    if os.path.splitext(path)[1].lower() in DICOM_SUFFIXES:
        return True
    head = file_head(path)
    return head is not None and len(head) == 132 and head[128:132] == b"DICM"


def special_folder(root: Path, rows: list, maybe_dicom: list, options: dict):
    """The Manifest of a folder holding DICOM files or GeoTIFF tiles, or None for a plain image folder.

    ``rows`` are the folder scan's image files, ``maybe_dicom`` its ``.dcm`` and
    extension-less files, each ``(relative path, split, label)``.
    """
    options = _check(options, FOLDER_OPTIONS, "a folder")
    root_s = os.path.abspath(root)
    entries = [(rel, split, label, "", None) for rel, split, label in rows]
    entries += [(rel, split, label, "", -1) for rel, split, label in maybe_dicom
                if _is_dicom_file(os.path.join(root_s, rel))]
    return _special_rows(root, entries, options, skipped=(), kind="folder")


#: A DICOM frame row as written in every output: ``path#frame3`` (1-based).
FRAME_ROW = re.compile(r"^(.+)#frame(\d+)$")


def special_csv(m: Manifest, options: dict):
    """The Manifest of a CSV manifest that lists DICOM files or frames, or GeoTIFF tiles; None otherwise.

    A row ``scan.dcm#frame3`` (as the manifests leakscan writes name the frames of a
    multi-frame file) is frame 3 of ``scan.dcm``, unless a file is really named that way; a
    row naming a multi-frame file gives one row per frame. A row's ``group`` wins over the
    DICOM tag (``group_by``), which fills the rows without one.
    """
    options = _check(options, FOLDER_OPTIONS, "a CSV manifest")
    root_s = os.path.abspath(m.root) if m.root is not None else os.getcwd()
    entries, skipped = [], list(m.skipped)
    for rel, split, label, group in zip(m.paths.tolist(), m.splits.tolist(), m.labels.tolist(), m.groups.tolist()):
        path = os.path.join(root_s, rel)
        ext = os.path.splitext(rel)[1].lower()
        frame = None
        hit = FRAME_ROW.match(rel)
        if hit and not is_regular_file(path) and _is_dicom_file(os.path.join(root_s, hit.group(1))):
            number = int(hit.group(2))
            if number < 1:
                skipped.append((rel, "frame numbers start at 1 (path#frame1 is the first frame)"))
                continue
            rel, frame = hit.group(1), number - 1
        elif ext in DICOM_SUFFIXES or (maybe_dicom_name(rel) and _is_dicom_file(path)):
            frame = -1
        entries.append((rel, split, label, group, frame))
    return _special_rows(m.root, entries, options, skipped=tuple(skipped), kind="csv")


def _special_rows(root, entries: list, options: dict, *, skipped: tuple, kind: str):
    """The Manifest of ``entries`` ``(path, split, label, group, frame)`` when some need a reader
    of leakscan.sources (DICOM files and frames, GeoTIFF tiles), else None.

    ``frame`` is None for an image file, -1 for a whole DICOM file (one row per frame), ``k``
    for frame ``k`` (0-based) of a DICOM file. Rows keep the order of ``entries``.
    """
    root_s = os.path.abspath(root) if root is not None else os.getcwd()
    tiffs = [k for k, e in enumerate(entries)
             if e[4] is None and os.path.splitext(e[0])[1].lower() in TIFF_SUFFIXES]
    dicoms = [k for k, e in enumerate(entries) if e[4] is not None]
    geo = {}
    if tiffs:
        from . import geotiff  # noqa: PLC0415

        if geotiff.available() or "bands" in options:
            try:
                geo = geotiff.inspect_tiles([os.path.join(root_s, entries[k][0]) for k in tiffs], options.get("bands"))
            except ImportError as exc:  # --bands without tifffile
                raise InputError(str(exc)) from None
            geo = {tiffs[q]: info for q, info in geo.items()}
    if not dicoms and not geo:
        # an option given for files that are not there does nothing: say so (not only with -v)
        if "group_by" in options and options["group_by"] not in (None, "none"):
            log.warning("--group-by %s is ignored: no DICOM files in %s", options["group_by"], root)
        if options.get("bands") is not None:
            log.warning("--bands is ignored: no TIFF tiles whose bands it could choose in %s", root)
        return None
    skipped = list(skipped)
    meta = {}
    headers = {}  # DICOM file -> (number of frames, group id)
    if dicoms:
        from . import dicom  # noqa: PLC0415

        group_by = options.get("group_by", "PatientID")
        files = list(dict.fromkeys(os.path.join(root_s, entries[k][0]) for k in dicoms))
        try:
            headers = dict(zip(files, dicom.inspect_files(files, group_by)))
        except ImportError as exc:
            if len(dicoms) == len(entries):
                raise InputError(f"{root}: holds {len(files)} DICOM files; {exc}") from None
            skipped += [(entries[k][0] if entries[k][4] < 0 else f"{entries[k][0]}#frame{entries[k][4] + 1}",
                         str(exc)) for k in dicoms]
            entries = [e for e in entries if e[4] is None]
        else:
            meta["group_by"] = group_by
    out_paths, out_splits, out_labels, out_groups, items = [], [], [], [], []
    footprints, crs = [], []
    seen = set()

    def add(ident, split, label, group, item, box=(np.nan,) * 4, ref=""):
        if ident in seen:
            skipped.append((ident, "listed twice (as a frame and with its whole file, or twice); kept the first"))
            return
        seen.add(ident)
        out_paths.append(ident)
        out_splits.append(split)
        out_labels.append(label)
        out_groups.append(group)
        items.append(item)
        footprints.append(box)
        crs.append(ref)

    for k, (rel, split, label, group, frame) in enumerate(entries):
        path = os.path.join(root_s, rel)
        if frame is None:
            info = geo.get(k)
            if info is None:
                add(rel, split, label, group, ("file", path))
            else:
                add(rel, split, label, group, ("geotiff", path),
                    info["footprint"] if info["footprint"] is not None else (np.nan,) * 4, info["crs"])
            continue
        n_frames, tag_group = headers[path]
        group = group or tag_group
        if frame >= 0:  # one frame named in a manifest (decoding says when the file has fewer)
            add(f"{rel}#frame{frame + 1}", split, label, group, ("dicom", path, frame))
        elif n_frames <= 1:
            add(rel, split, label, group, ("dicom", path, -1))
        else:
            for f in range(n_frames):
                add(f"{rel}#frame{f + 1}", split, label, group, ("dicom", path, f))
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
                    root=root, skipped=tuple(skipped), source=source, kind=kind)
