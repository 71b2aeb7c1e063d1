"""Manifest: the rows of an audit (path, split, label, group).

Row position is identity: every array produced later lines up with these rows.
:func:`leakscan.discovery.discover` builds one from a folder, CSV, list or array, and
:mod:`leakscan.sources` from the other inputs.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import ArgumentError, InputError

log = logging.getLogger(__name__)

__all__ = ["Manifest", "SPLIT_ALIASES", "IMAGE_EXTENSIONS", "UNSPLIT", "BOTH_SIDES", "order_splits", "split_name",
           "listed_again", "a_url", "is_url", "url_reason", "URL_REASON", "path_key", "decode_text", "CsvRows",
           "is_missing", "text_column"]

#: Folder names recognised as splits (case-insensitive) and the canonical split they mean.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
    "holdout": "test",
}

#: File name endings treated as images during folder discovery (content decides at decode time;
#: SVG drawings are listed so that their skip is reported, not silent). A file without an
#: extension is an image when its first bytes are one's (leakscan.decode.has_image_signature).
IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .apng .webp .bmp .dib .gif .tif .tiff .ppm .pgm .pbm .pnm "
    ".ico .tga .jp2 .j2k .sgi .pcx .qoi .dds .im .heic .heif .avif .svg".split()
)

#: How deep below the root split folders are looked for (``data/v2/train/...`` is depth 2).
SPLIT_SEARCH_DEPTH = 3

UNSPLIT = "all"

#: Said of a file a manifest or table lists in two splits (``Manifest.skipped``): the audit warns of it.
BOTH_SIDES = "one file on both sides of the split"


def listed_again(first: tuple, again: tuple, unit: str = "line", source: str = "manifest") -> str:
    """The skip reason of a file a manifest (or a table) lists again: ``first`` and ``again`` are
    its ``(line or row, split)``; two splits are said to be :data:`BOTH_SIDES`.

    >>> listed_again((2, "train"), (5, "train"))
    'listed twice in the manifest (lines 2 and 5); kept the first'
    >>> listed_again((0, "train"), (3, "test"), unit="row", source="table")
    'listed twice in the table (row 0 in train, row 3 in test: one file on both sides of the split); kept the first'
    """
    (k, split), (m, split2) = first, again
    where = (f"{unit}s {k} and {m}" if split == split2 else
             f"{unit} {k} in {split}, {unit} {m} in {split2}: {BOTH_SIDES}")
    return f"listed twice in the {source} ({where}); kept the first"


#: A path written as a URL: a scheme of two letters or more (http, https, s3, gs, file...) and ``://``.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def url_reason(what: str = "file") -> str:
    """Why a path written as a URL is refused where a local ``what`` is wanted (a manifest's row,
    a file to decode, the data or ``--manifest``)."""
    return f"a URL, not a {what}: leakscan reads local files only (download or mount it, and give its local path)"


#: Why a path written as a URL is not read as a file.
URL_REASON = url_reason()


def is_url(path) -> bool:
    """Whether ``path`` (text or path-like) is written as a URL."""
    return isinstance(path, (str, os.PathLike)) and bool(_URL.match(os.fspath(path)))


def a_url(path: str, where: str) -> str | None:
    """The skip reason of a manifest or table row (``where``: ``manifest line 3``) whose path is a
    URL, else None: leakscan reads local files only.

    >>> a_url("s3://bucket/cat.jpg", "manifest line 3")[:46]
    'manifest line 3 gives a URL, not a file: leaks'
    >>> a_url("img/cat.jpg", "manifest line 3") is None
    True
    """
    return f"{where} gives {URL_REASON}" if is_url(path) else None


def decode_text(raw: bytes, where: str, what: str = "manifest") -> str:
    """The text of a CSV a user wrote: UTF-8 (with or without its byte-order mark) or UTF-16 or
    UTF-32 with its byte-order mark (Excel's "Unicode text", Windows PowerShell's default); else
    an :class:`~leakscan.errors.InputError` naming ``where`` and the byte.

    >>> decode_text("path,split".encode("utf-16"), "m.csv")
    'path,split'
    """
    # UTF-32's little-endian mark starts with UTF-16's: looked for first
    encoding = next((name for name, boms in _WIDE_ENCODINGS if raw.startswith(boms)), "")
    try:
        text = raw.decode(encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: {what} is not {encoding.upper() or 'UTF-8'} text ({exc.reason} at byte "
                         f"{exc.start}); save it as UTF-8") from None
    end = raw.find(b"\n")
    nul = raw.find(b"\0", 0, end if end >= 0 else len(raw))
    if not encoding and nul >= 0:  # a NUL in the header: UTF-16 or UTF-32 without its mark reads as UTF-8
        raise InputError(f"{where}: {what} is not UTF-8 text (a NUL byte at byte {nul} of its first line: "
                         "UTF-16 or UTF-32 saved without its byte-order mark?); save it as UTF-8")
    return text


_WIDE_ENCODINGS = (("utf-32", (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)),
                   ("utf-16", (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)))


class CsvRows:
    r"""``csv.reader(text, delimiter, **options)`` on any Python: a NUL byte reads as itself in
    its cell, as Python 3.11 and later read it (3.10's csv module stops the whole file at the
    first one: "line contains NUL"), so the reader of the file, not the Python, decides what
    a cell holding one means. Given ``where`` (the file's name), a row the csv module cannot
    read (a cell past its size limit: most often a quote never closed) is an
    :class:`~leakscan.errors.InputError` naming the line it starts on.

    >>> list(CsvRows("path,split\na\0b.png,test\n", ","))
    [['path', 'split'], ['a\x00b.png', 'test']]
    """

    def __init__(self, text: str, delimiter: str, where: str = "", **options):
        self._where = where
        # a character the text does not hold stands for NUL while the csv module reads it
        self._mark = next(chr(c) for c in range(0xE000, 0x110000) if chr(c) not in text) if "\0" in text else ""
        if self._mark:
            text = text.replace("\0", self._mark)
        self._reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, **options)

    @property
    def line_num(self) -> int:
        """Lines read so far (``csv.reader.line_num``)."""
        return self._reader.line_num

    def __iter__(self):
        return self

    def __next__(self) -> list[str]:
        line = self._reader.line_num + 1
        try:
            row = next(self._reader)
        except csv.Error as exc:
            if not self._where:
                raise
            raise InputError(f"{self._where}: line {line}: not a readable CSV row ({exc}; a quoted cell opened "
                             "there and never closed holds every line after it)") from None
        return [c.replace(self._mark, "\0") for c in row] if self._mark else row


def path_key(path: str, root=None) -> str:
    """One key per file however a manifest spells its path (``img/a.png``, ``./img/a.png``, or
    absolute): its absolute path, a relative one taken from ``root`` (default: the working folder)."""
    return os.path.abspath(os.path.join(root, path) if root is not None else path)


def is_missing(v) -> bool:
    """None, NaN or pandas' NA/NaT: a cell with no value (no label, no group), read as ``""``."""
    return v is None or (isinstance(v, (float, np.floating)) and v != v) or type(v).__name__ in ("NAType", "NaTType")


def text_column(values: Iterable, n: int, name: str, required: bool = False) -> np.ndarray:
    """One text per image of ``values`` (``splits``, ``labels``, ``groups`` given in Python), a
    missing value (None, NaN) as ``""``; an error naming ``name`` unless there are ``n``. A
    one-column DataFrame is its column, as scikit-learn's ``GroupShuffleSplit`` reads ``groups``.
    ``required`` (``splits``: every image is in one): a missing or blank value is an error naming
    its position, as scikit-learn refuses missing values, not a split named ``""``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ArgumentError(f"{name} must be a sequence with one entry per image, got {type(values).__name__}")
    columns = getattr(values, "columns", None)
    if columns is not None and len(getattr(values, "shape", ())) == 2:  # iterating a DataFrame gives its column names
        if len(columns) != 1:
            named = ", ".join(map(str, list(columns)[:5]))
            raise ArgumentError(f"{name} should be one column, got a DataFrame of shape {tuple(values.shape)} "
                                f"(columns {named}); pass one, as df[{str(columns[0])!r}]")
        values = values[columns[0]]
    arr = np.array(["" if is_missing(v) else str(v) for v in values], dtype=object)
    if required:
        blank = next((k for k, v in enumerate(arr) if not v.strip()), None)
        if blank is not None:
            raise ArgumentError(f"{name}[{blank}] is {list(values)[blank]!r}: every image needs a split name "
                                f"(leave {name}= out for one split, {UNSPLIT!r})")
    if arr.shape != (n,):
        raise ArgumentError(f"{name} has {arr.shape[0]} entries but there are {n} images; give one per image")
    return arr


@dataclass(frozen=True)
class Manifest:
    """The images of one audit, one row each.

    Attributes
    ----------
    paths : ndarray of str, shape (n,)
        The image as the user named it (relative to ``root`` for folders and CSVs), or
        ``array[i]`` for in-memory images. Used only at the edges: input and report.
    splits : ndarray of str, shape (n,)
        Split name per row (``"all"`` when the source has no splits).
    labels : ndarray of str, shape (n,)
        Class label per row, ``""`` when unknown.
    groups : ndarray of str, shape (n,)
        User-given group (patient id, video id...) per row, ``""`` when none.
    root : Path or None
        Folder that relative paths are resolved against.
    images : ndarray or None
        In-memory pixels ``(n, H, W)`` or ``(n, H, W, C)`` when the source is an array.
    skipped : list of (path, reason)
        Entries that discovery already had to drop (missing files, bad manifest rows).
    kind : str
        Where the rows came from: ``"folder"``, ``"csv"``, ``"list"``, ``"array"`` (``""``
        when built directly). Decides which folders count as the dataset
        (:func:`leakscan.safeio.dataset_folders`).
    source : RowSource or None
        Where each row's pixels come from when rows are not plain image files: image bytes of
        a dataset or table, DICOM frames, GeoTIFF tiles (:mod:`leakscan.sources`).
    """

    paths: np.ndarray
    splits: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    root: Path | None = None
    images: np.ndarray | None = field(default=None, repr=False)
    skipped: tuple = ()
    kind: str = ""
    source: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.paths)
        for name in ("splits", "labels", "groups"):
            arr = getattr(self, name)
            if len(arr) != n:
                raise InputError(f"Manifest.{name} has {len(arr)} rows, paths has {n}")
        if self.images is not None and len(self.images) != n:
            raise InputError(f"Manifest.images has {len(self.images)} images, paths has {n}")
        if self.source is not None and len(self.source) != n:
            raise InputError(f"Manifest.source has {len(self.source)} rows, paths has {n}")

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def split_names(self) -> list[str]:
        """Split names in a stable order: train, val, test first, then the rest sorted."""
        return order_splits(set(self.splits.tolist()))

    def resolve(self, i: int) -> Path:
        """Absolute location of row ``i`` on disk."""
        p = Path(self.paths[i])
        if p.is_absolute() or self.root is None or is_url(self.paths[i]):  # a URL is no path under the root
            return p
        return self.root / p

    def resolved_paths(self, rows=None) -> list[str]:
        """Absolute paths (as strings) of ``rows`` (default: all), fast for large manifests."""
        rows = range(len(self)) if rows is None else rows
        base = os.path.abspath(self.root) if self.root is not None else os.getcwd()
        join, isabs = os.path.join, os.path.isabs
        out = []
        for r in rows:
            p = self.paths[r]
            out.append(p if isabs(p) or ("://" in p and is_url(p)) else join(base, p))
        return out

    def canonical_order(self, rows=None) -> np.ndarray:
        """``rows`` (default: all) ordered by the file each names (:func:`path_key`), not as the
        input listed them: a shuffled manifest gives the same order. In-memory images, whose
        paths name their row (``array[i]``), keep their row order."""
        rows = np.arange(len(self), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        if self.images is not None:
            return rows
        keys = [path_key(p) for p in self.resolved_paths(rows.tolist())]
        return rows[np.array(sorted(range(len(rows)), key=keys.__getitem__), np.int64)]

    def take(self, rows: np.ndarray) -> "Manifest":
        """A new manifest holding only ``rows`` (in that order)."""
        rows = np.asarray(rows, dtype=np.int64)
        return Manifest(
            paths=self.paths[rows],
            splits=self.splits[rows],
            labels=self.labels[rows],
            groups=self.groups[rows],
            root=self.root,
            images=None if self.images is None else self.images[rows],
            skipped=self.skipped,
            kind=self.kind,
            source=None if self.source is None else self.source.take(rows),
        )


def split_name(text: str) -> str:
    """The split a manifest's split value names: the canonical name of an alias (any case),
    else the value itself.

    >>> split_name("Validation"), split_name("dev"), split_name("Fold1")
    ('val', 'val', 'Fold1')
    """
    return SPLIT_ALIASES.get(text.lower(), text)


def order_splits(names) -> list[str]:
    canon = ["train", "val", "test"]
    names = set(names)
    return [s for s in canon if s in names] + sorted(names - set(canon))
