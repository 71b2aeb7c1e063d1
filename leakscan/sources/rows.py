"""RowSource: where the pixels of each manifest row come from when a row is not a plain image file.

A row may be image bytes held in memory (a Hugging Face dataset, a Parquet column), one frame
of a DICOM file, or a multi-band GeoTIFF tile reduced to three bands. Row position is identity:
``items[r]`` belongs to manifest row ``r``. Every item is a small picklable tagged tuple, decoded
in the worker processes by :func:`decode_item`, once per image:

* ``("bytes", data)``: encoded image bytes (PNG, JPEG...) held in memory (a DataFrame's
  cells), decoded like a file's;
* ``("stored", store, key, digest, size)``: encoded image bytes left where they are stored
  (a Parquet file, a Hugging Face dataset's Arrow table): ``stores[store].read([key, ...])``
  reads them only when the row's chunk goes to be decoded, so memory does not grow with the
  dataset's bytes. ``digest`` (BLAKE2b-128 of the bytes, 16 bytes, taken when the source was
  listed) and ``size`` key the feature cache without reading them again;
* ``("file", path)``: an image file (decoded exactly as in a folder audit);
* ``("dicom", path, frame)``: frame ``frame`` of a DICOM file (``-1``: single-frame);
* ``("geotiff", path)``: a TIFF tile read with tifffile (bands, bit depth, percentiles).

A store is any object with ``name`` (for messages) and ``read(keys) -> list`` giving, per key,
the bytes or a reason (str) why there are none; ``release()``, if it has one, drops what it
keeps between reads.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from ..decode import DecodeError, decode_bytes, read_bytes
from ..errors import missing_extra

__all__ = ["RowSource", "decode_item", "content_key", "digest_key", "missing_extra", "object_array", "bytes_field",
           "KINDS", "READ_BLOCK"]

KINDS = ("bytes", "stored", "file", "dicom", "geotiff")
#: The version of how a GeoTIFF tile decodes, in its feature-cache key: features cached by
#: another are made again (2: the GDAL nodata value left out, as NaN is).
GEOTIFF_DECODING = 2
#: The same for a DICOM frame (2: PALETTE COLOR through its palette, no longer grey indices).
DICOM_DECODING = 2

#: Rows whose stored bytes are read at a time when pictures are wanted one by one (report, calibration).
READ_BLOCK = 32


def object_array(values) -> np.ndarray:
    """A 1-d object array of ``values`` (tuples stay whole items)."""
    values = list(values)
    arr = np.empty(len(values), dtype=object)
    for k, v in enumerate(values):
        arr[k] = v
    return arr


def bytes_field(arrow_type):
    """How a column of this Arrow type holds image bytes: ``"binary"``, ``"struct"`` (a
    ``bytes`` field, Hugging Face style) or None. Tells the image columns of a Parquet table
    and of a Hugging Face dataset (whose ``Image`` feature is such a struct)."""
    import pyarrow as pa  # noqa: PLC0415 - only called with pyarrow at hand

    def is_bin(t):
        return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)

    if is_bin(arrow_type):
        return "binary"
    if pa.types.is_struct(arrow_type):
        names = [arrow_type.field(k).name for k in range(arrow_type.num_fields)]
        if "bytes" in names and is_bin(arrow_type.field(names.index("bytes")).type):
            return "struct"
    return None


def content_key(data: bytes) -> tuple[str, int, int]:
    """Feature-cache key of in-memory image bytes: their BLAKE2b-128 digest (no path, no mtime)."""
    return digest_key(hashlib.blake2b(data, digest_size=16).digest(), len(data))


def digest_key(digest: bytes, size: int) -> tuple[str, int, int]:
    """The :func:`content_key` of bytes of this BLAKE2b-128 ``digest`` and ``size``."""
    return "blake2b-128:" + bytes(digest).hex(), int(size), 0


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
    stores : tuple
        Where the bytes of ``"stored"`` items are read from (``item[1]`` indexes it).
    """

    items: np.ndarray
    options: tuple = ()
    meta: dict = field(default_factory=dict)
    files_are_paths: bool = False
    stores: tuple = ()

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
                         files_are_paths=self.files_are_paths, stores=self.stores)

    def work_items(self, rows) -> list:
        """The items of ``rows`` as sent to the workers: ``(item, options)``.

        Stored bytes are read here, for these rows only: ``("bytes", data, digest)`` (the
        worker checks the digest), or ``("unreadable", reason)``.
        """
        items = [self.items[r] for r in rows]
        by_store: dict = {}
        for k, it in enumerate(items):
            if it[0] == "stored":
                by_store.setdefault(it[1], []).append(k)
        for s, ks in by_store.items():
            store = self.stores[s]
            try:
                got = store.read([items[k][2] for k in ks])
            except Exception as exc:  # noqa: BLE001 - a file gone or damaged since it was listed
                got = [f"{store.name}: cannot read the image bytes ({type(exc).__name__}: {exc})"] * len(ks)
            for k, data in zip(ks, got):
                items[k] = (("bytes", data, items[k][3]) if isinstance(data, (bytes, bytearray, memoryview))
                            else ("unreadable", str(data)))
        return [(it, self.options) for it in items]

    def release(self) -> None:
        """Let the stores drop what they keep for the next read (a Parquet row group)."""
        for store in self.stores:
            if hasattr(store, "release"):
                store.release()

    def nbytes(self, rows) -> np.ndarray:
        """Encoded bytes each of ``rows`` brings into a work item (0 for files read by the workers)."""
        out = np.zeros(len(rows), np.int64)
        for k, r in enumerate(rows):
            it = self.items[r]
            if it[0] == "stored":
                out[k] = it[4]
            elif it[0] == "bytes" and isinstance(it[1], (bytes, bytearray, memoryview)):
                out[k] = len(it[1])
        return out

    def pictures(self, rows, block: int = READ_BLOCK):
        """``(row, canonical RGB image or the exception that stopped it)`` for ``rows``, in ascending
        row order: stored bytes are read ``block`` rows at a time, in the order they are stored."""
        rows = sorted({int(r) for r in rows})
        try:
            for start in range(0, len(rows), block):
                part = rows[start:start + block]
                for r, work in zip(part, self.work_items(part)):
                    try:
                        yield r, decode_item(work)[1]
                    except Exception as exc:  # noqa: BLE001 - the caller reports it and goes on
                        yield r, exc
        finally:
            self.release()

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
            elif tag == "stored":
                keys.append(digest_key(item[3], item[4]))
            elif tag == "file":
                keys.append(_file_key(item[1], ""))
            elif tag == "dicom":
                frame = f"#frame{item[2]}" if item[2] >= 0 else ""
                keys.append(_file_key(item[1], f"{frame}?dicom{DICOM_DECODING}{opts}"))
            else:
                keys.append(_file_key(item[1], f"?geotiff{GEOTIFF_DECODING}" + opts))
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
        """Canonical RGB pixels of row ``r`` (for report thumbnails); raises DecodeError.

        For many rows, :meth:`pictures` reads stored bytes in blocks."""
        _, img, _ = decode_item(self.work_items([r])[0])
        return np.asarray(img)


def _file_key(path, suffix: str):
    """As :func:`leakscan.cache.file_key` (None for a file that cannot be stat'ed or read now),
    the path followed by ``suffix``."""
    try:
        st = os.stat(path)
        if not os.access(path, os.R_OK, effective_ids=os.access in os.supports_effective_ids):
            return None
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
        digest = _digest(data)
        if tag == "bytes" and len(item) > 2 and item[2] is not None and digest.tobytes() != bytes(item[2]):
            raise DecodeError("the image bytes changed since the table was listed (another digest); audit it again")
        img, note = decode_bytes(data)
        return digest, img, note
    if tag == "unreadable":  # stored bytes that could not be read (RowSource.work_items)
        raise DecodeError(item[1])
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
