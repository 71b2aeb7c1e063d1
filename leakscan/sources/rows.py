"""RowSource: where the pixels of each manifest row come from when a row is not a plain image file.

A row may be image bytes held in memory (a Hugging Face dataset, a Parquet column), one frame
of a DICOM file, or a multi-band GeoTIFF tile reduced to three bands. Row position is identity:
``items[r]`` belongs to manifest row ``r``. Every item is a small picklable tagged tuple, decoded
in the worker processes by :func:`decode_item`, once per image:

* ``("bytes", data)``: encoded image bytes (PNG, JPEG...), decoded like a file's;
* ``("file", path)``: an image file (decoded exactly as in a folder audit);
* ``("dicom", path, frame)``: frame ``frame`` of a DICOM file (``-1``: single-frame);
* ``("geotiff", path)``: a TIFF tile read with tifffile (bands, bit depth, percentiles).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from ..decode import DecodeError, decode_bytes, read_bytes
from ..errors import missing_extra

__all__ = ["RowSource", "decode_item", "content_key", "missing_extra", "object_array", "KINDS"]

KINDS = ("bytes", "file", "dicom", "geotiff")


def object_array(values) -> np.ndarray:
    """A 1-d object array of ``values`` (tuples stay whole items)."""
    values = list(values)
    arr = np.empty(len(values), dtype=object)
    for k, v in enumerate(values):
        arr[k] = v
    return arr


def content_key(data: bytes) -> tuple[str, int, int]:
    """Feature-cache key of in-memory image bytes: their BLAKE2b-128 digest (no path, no mtime)."""
    return "blake2b-128:" + hashlib.blake2b(data, digest_size=16).hexdigest(), len(data), 0


@dataclass(frozen=True)
class RowSource:
    """Per-row pixel sources of a Manifest built from a table, a dataset, DICOM or GeoTIFF files.

    Attributes
    ----------
    items : ndarray of object, shape (n,)
        One tagged item per manifest row (see the module docstring).
    options : tuple of (name, value)
        Decode options shared by every row (``(("bands", (4, 3, 2)),)``); part of the cache key.
    meta : dict
        Extra arrays lined up with the rows (``"footprint"`` of georeferenced tiles, ...) and
        other facts about the source (``"group_by"``, ``"dataset"``).
    files_are_paths : bool
        True when the manifest's ``paths`` name files on disk (DICOM, GeoTIFF, path columns);
        False when they are identifiers such as ``train/17`` (datasets, bytes columns).
    """

    items: np.ndarray
    options: tuple = ()
    meta: dict = field(default_factory=dict)
    files_are_paths: bool = False

    def __post_init__(self) -> None:
        bad = {it[0] for it in self.items.tolist()} - set(KINDS)
        if bad:
            raise ValueError(f"RowSource items must be tagged {', '.join(KINDS)}; got {sorted(map(str, bad))}")

    def __len__(self) -> int:
        return len(self.items)

    def take(self, rows) -> "RowSource":
        rows = np.asarray(rows, dtype=np.int64)
        n = len(self.items)
        meta = {k: (v[rows] if isinstance(v, np.ndarray) and len(v) == n else v) for k, v in self.meta.items()}
        return RowSource(items=self.items[rows], options=self.options, meta=meta,
                         files_are_paths=self.files_are_paths)

    def work_items(self, rows) -> list:
        """The items of ``rows`` as sent to the workers: ``(item, options)``."""
        return [(self.items[r], self.options) for r in rows]

    def cache_keys(self, rows) -> list:
        """Feature-cache keys ``(identity, size, mtime)`` of ``rows``; None where there is none.

        Image bytes are keyed by their content digest; files by absolute path (plus
        ``#frameN`` and the decode options), size and modification time.
        """
        opts = "" if not self.options else "?" + "&".join(f"{k}={v}" for k, v in self.options)
        keys = []
        for r in rows:
            item = self.items[r]
            tag = item[0]
            if tag == "bytes":
                keys.append(content_key(bytes(item[1])) if item[1] else None)
            elif tag == "file":
                keys.append(_file_key(item[1], ""))
            elif tag == "dicom":
                keys.append(_file_key(item[1], (f"#frame{item[2]}" if item[2] >= 0 else "") + "?dicom" + opts))
            else:
                keys.append(_file_key(item[1], "?geotiff" + opts))
        return keys

    def links(self, ok=None) -> dict:
        """Rows that belong together whatever their pixels: ``{kind: (k, 2) int64 array of rows}``.

        * ``"frames"``: rows that are frames of one DICOM file (each linked to the file's first row);
        * ``"spatial"``: georeferenced tiles whose footprints overlap within one CRS (rows
          ``ok`` only, as the audit's spatial leakage).

        Kinds this source has no rows of are left out; a kind with rows but no link maps to an
        empty array. A re-split keeps linked rows in one split, as it does duplicates.
        """
        out = {}
        first: dict = {}
        frames = []
        has_frames = False
        for r, item in enumerate(self.items.tolist()):
            if item[0] == "dicom":
                has_frames = has_frames or item[2] >= 0
                head = first.setdefault(item[1], r)
                if head != r:
                    frames.append((head, r))
        if has_frames:
            out["frames"] = np.array(frames, np.int64).reshape(-1, 2)
        if "footprint" in self.meta:
            from .geotiff import footprint_overlaps  # noqa: PLC0415 - pure numpy

            pairs = footprint_overlaps(self.meta["footprint"], self.meta["crs"], ok)
            out["spatial"] = np.array([(i, j) for i, j, _ in pairs], np.int64).reshape(-1, 2)
        return out

    def pixels(self, r: int) -> np.ndarray:
        """Canonical RGB pixels of row ``r`` (for report thumbnails); raises DecodeError."""
        _, img, _ = decode_item((self.items[r], self.options))
        return np.asarray(img)


def _file_key(path, suffix: str):
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return os.path.abspath(path) + suffix, int(st.st_size), int(st.st_mtime_ns)


def decode_item(work):
    """Decode one work item (from :meth:`RowSource.work_items`) in a worker.

    Returns ``(file_digest, image, note)``: BLAKE2b-128 of the bytes behind the image (16
    bytes), the canonical 8-bit RGB ``PIL.Image`` and a note (``""`` or a remark). Raises
    :class:`~leakscan.decode.DecodeError` with the reason shown in ``skipped.csv``.
    """
    item, options = work
    opts = dict(options)
    tag = item[0]
    if tag in ("bytes", "file"):
        if tag == "file":
            data = read_bytes(item[1])
        elif isinstance(item[1], (bytes, bytearray, memoryview)):
            data = bytes(item[1])
        else:
            raise DecodeError(f"no image bytes in this row (found {type(item[1]).__name__})")
        if not data:
            raise DecodeError("empty image bytes (0 bytes)")
        img, note = decode_bytes(data)
        return _digest(data), img, note
    if tag == "dicom":
        from .dicom import decode_frame  # noqa: PLC0415 - optional extra

        _, path, frame = item
        img, digest = decode_frame(path, frame)
        return digest, img, ""
    if tag == "geotiff":
        from .geotiff import decode_tile  # noqa: PLC0415 - optional extra

        data = read_bytes(item[1])
        img, note = decode_tile(data, **{k: v for k, v in opts.items() if k in ("bands", "percentiles")})
        return _digest(data), img, note
    raise DecodeError(f"unknown row kind {tag!r}")


def _digest(data: bytes) -> np.ndarray:
    return np.frombuffer(hashlib.blake2b(data, digest_size=16).digest(), np.uint8)
