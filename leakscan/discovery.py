"""``discover()``: a :class:`~leakscan.manifest.Manifest` from a folder, a CSV manifest, a list of
paths or an image array; the other inputs (tables, datasets, DICOM, GeoTIFF) through
:mod:`leakscan.sources`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import stat
from pathlib import Path
from typing import Sequence

import numpy as np

from .decode import file_head, has_image_signature
from .errors import ArgumentError, InputError
from .manifest import (IMAGE_EXTENSIONS, SPLIT_ALIASES, SPLIT_SEARCH_DEPTH, UNSPLIT, CsvRows, Manifest, text_column,
                       a_url, decode_text, is_url, listed_again, path_key, split_name, url_reason)

log = logging.getLogger(__name__)

__all__ = ["discover", "check_one_source", "check_readable"]


def check_one_source(source, manifest) -> None:
    """Data and a manifest given together are refused (:class:`ArgumentError`), whatever state
    each is in: one would be ignored, and which did the user mean?"""
    if source is not None and manifest is not None:
        raise ArgumentError(f"give the data to audit ({_name(source)}) or a manifest ({manifest}), not both "
                            "(a manifest's relative paths are read from its own folder)")


def written_as_url(path) -> str | None:
    """The URL a path that names nothing was written as, else None. A path keeps one of the
    slashes after a scheme (``s3://bucket/x`` becomes ``s3:/bucket/x``), so its first part is the
    scheme's: the URL is written back whole.

    >>> written_as_url(Path("s3://bucket/train")), written_as_url("data/train")
    ('s3://bucket/train', None)
    """
    if is_url(path):
        return os.fspath(path)
    parts = Path(path).parts
    if len(parts) > 1 and is_url(parts[0] + "//"):
        return parts[0] + "//" + "/".join(parts[1:])
    return None


def check_readable(*sources, file_only: bool = False) -> None:
    """Each of ``sources`` that is a path (a dataset folder, a manifest or table file; only a file
    with ``file_only``) exists and can be read, else an :class:`InputError` naming it and why.
    Cheap (one directory opened, or one file): the command line calls it before anything slow,
    such as reaching a Dask scheduler."""
    for source in sources:
        if not isinstance(source, (str, os.PathLike)):
            continue
        p = Path(source)
        try:
            mode = os.stat(p).st_mode
            if stat.S_ISDIR(mode):
                if file_only:
                    raise InputError(f"{p}: a folder, not a file")
                with os.scandir(p):
                    pass
            elif stat.S_ISREG(mode):  # not a FIFO or device: opening one could block
                with open(p, "rb"):
                    pass
        except (FileNotFoundError, NotADirectoryError):
            url = written_as_url(p)
            if url is not None:
                raise InputError(f"{url}: {url_reason('file' if file_only else 'file or folder')}") from None
            raise InputError(f"{p}: no such file{'' if file_only else ' or folder'}") from None
        except OSError as exc:
            raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None


def discover(
    source,
    *,
    manifest: str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
    labels: Sequence | None = None,
    groups: Sequence | None = None,
    **source_options,
) -> Manifest:
    """Build a :class:`Manifest` from a folder, a CSV manifest, a list of paths or an image array.

    Parameters
    ----------
    source : path-like, sequence of path-like, or ndarray
        A folder (split folders such as ``train/``, ``val/``, ``test/`` are recognised by name up
        to three levels down; the class is the folder holding the image), a CSV file, a list of
        image paths, or an array of images shaped ``(N, H, W)`` or ``(N, H, W, C)``.
        ``None`` is allowed when ``manifest`` is given.
    manifest : path-like, optional
        CSV with columns ``path`` (relative to the CSV's folder, or absolute), ``split`` and
        optional ``label`` and ``group``. DICOM files, DICOM frames (``scan.dcm#frame3``, as
        ``resplit`` writes them) and GeoTIFF tiles in it are read as in a folder.
    splits, labels, groups : sequence, optional
        One entry per image, for list and array sources. A missing label or group (None, NaN) is
        none; a missing or blank split is a ValueError naming its position.
    **source_options
        For the other sources (:mod:`leakscan.sources`): a pandas DataFrame or a Parquet file
        (``path_column``, ``split_column``, ``label_column``, ``group_column``,
        ``image_column``; a DataFrame's ``root``), a Hugging Face ``Dataset``/``DatasetDict`` (``split``,
        ``image_column``, ``label_column``, ``group_column``), folders or CSV manifests of
        DICOM files (``group_by``) or GeoTIFF tiles (``bands``).

    Returns
    -------
    Manifest

    Examples
    --------
    >>> import numpy as np
    >>> m = discover(np.zeros((3, 8, 8), dtype=np.uint8), splits=["train", "train", "test"])
    >>> list(m.splits)
    ['train', 'train', 'test']
    """
    check_one_source(source, manifest)
    check_readable(source, manifest)
    given = [name for name, v in (("splits", splits), ("labels", labels), ("groups", groups)) if v is not None]
    special = _special_source(source, manifest, source_options)  # tables, datasets, DICOM, GeoTIFF
    if special is not None:
        _refuse_columns_given(given, _name(source if manifest is None else manifest))
        return special
    if manifest is not None:
        _refuse_columns_given(given, _name(manifest))
        return _from_csv(Path(manifest), source_options)
    if source is None:
        raise InputError("nothing to audit: give a folder, a list of paths, an image array or --manifest FILE")
    if type(source).__module__.split(".")[0] == "pandas" and getattr(source, "ndim", 0) == 1:
        source = list(source)  # a Series or Index of paths (df["path"]) or of image arrays
    if isinstance(source, np.ndarray) and source.dtype.kind in "US":
        source = source.tolist()  # paths in a numpy string array (np.array(paths)), not pixels
    if isinstance(source, np.ndarray) and source.dtype != object:
        return _from_array(source, splits, labels, groups)
    if isinstance(source, np.ndarray) and source.ndim > 1:  # dtype object, (N, H, W[, C])
        numeric = np.array(source.tolist())
        if numeric.dtype == object or numeric.shape != source.shape:
            raise ArgumentError(f"image array of dtype object, shape {source.shape}: give a numeric array "
                                "(such as arr.astype(np.uint8)) or a list of (H, W[, C]) arrays")
        return _from_array(numeric, splits, labels, groups)
    if isinstance(source, (list, tuple, np.ndarray)) and len(source) and isinstance(source[0], np.ndarray):
        return _from_image_list(list(source), splits, labels, groups)
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            _refuse_columns_given(given, "a folder")
            return _from_folder(p, source_options)
        if p.is_file() and p.suffix.lower() in (".csv", ".tsv"):
            _refuse_columns_given(given, os.fspath(source))
            return _from_csv(p, source_options)
        archive = " (an archive: unpack it, then pass the folder)" if _is_archive(p) else ""
        raise InputError(f"{p}: not a folder or a CSV manifest{archive} (pass a folder of images, "
                         "or --manifest FILE.csv)")
    if isinstance(source, (list, tuple, np.ndarray)):
        return _from_list(list(source), splits, labels, groups)
    raise InputError(
        f"cannot audit a {type(source).__name__}: give a folder, a CSV manifest, a list of paths or an image array"
    )


def _refuse_columns_given(given: list, what: str) -> None:
    """``splits``/``labels``/``groups`` given for a source that carries its own (a folder's
    split and class folders, a manifest's or table's columns): refused, not silently dropped
    (known groups dropped would let a patient straddle the split)."""
    if given:
        raise InputError(f"{'/'.join(given)} apply to a list of paths or an array, not {what}: it carries its "
                         "own (split and class folders; a manifest's split, label and group columns; a table's "
                         "split_column=, label_column=, group_column=)")


def _name(source) -> str:
    """A source as an error message names it: a path as given, else its type."""
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"a {type(source).__name__}"


def _check_pixels_dtype(dtype, what: str) -> None:
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating) or dtype == np.bool_):
        raise ArgumentError(f"{what} must hold integer, float or bool pixels, got dtype {dtype}")


def _from_image_list(items, splits, labels, groups) -> Manifest:
    """A list (or object array) of image arrays, possibly of different sizes."""
    for k, a in enumerate(items):
        if not isinstance(a, np.ndarray):
            raise ArgumentError(f"images[{k}] is a {type(a).__name__}; a list of images must hold only ndarrays")
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4)):
            raise ArgumentError(f"images[{k}] must be shaped (H, W) or (H, W, C) with C in 1, 3, 4; got {a.shape}")
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise ArgumentError(f"images[{k}] is empty: shape {a.shape}")
        _check_pixels_dtype(a.dtype, f"images[{k}]")
    if len({(a.shape, a.dtype) for a in items}) == 1:
        return _from_array(np.stack(items), splits, labels, groups)
    n = len(items)
    arr = np.empty(n, dtype=object)
    for k, a in enumerate(items):
        arr[k] = a
    m = _from_array(np.zeros((n, 1, 1), np.uint8), splits, labels, groups)
    return Manifest(paths=m.paths, splits=m.splits, labels=m.labels, groups=m.groups, images=arr, kind="array")
def _special_source(source, manifest, options: dict):
    """The Manifest of a source leakscan.sources reads (DataFrame, Parquet, dataset, DICOM/GeoTIFF folder), or None."""
    from .sources.discover import discover_special  # noqa: PLC0415

    return discover_special(source, manifest, options)


def _from_array(arr, splits, labels, groups) -> Manifest:
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4)):
        raise ArgumentError(
            f"image array must be shaped (N, H, W) or (N, H, W, C) with C in 1, 3, 4; got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ArgumentError(f"image array holds no images: shape {arr.shape}")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ArgumentError(f"image array holds empty images: shape {arr.shape} (height and width must be >= 1)")
    _check_pixels_dtype(arr.dtype, "image array")
    n = arr.shape[0]
    paths = np.array([f"array[{i}]" for i in range(n)], dtype=object)
    return Manifest(
        paths=paths,
        splits=text_column(splits if splits is not None else [UNSPLIT] * n, n, "splits", required=True),
        labels=text_column(labels if labels is not None else [""] * n, n, "labels"),
        groups=text_column(groups if groups is not None else [""] * n, n, "groups"),
        images=arr,
        kind="array",
    )


def _from_list(items, splits, labels, groups) -> Manifest:
    n = len(items)
    for k, p in enumerate(items):
        if not isinstance(p, (str, os.PathLike)):
            raise ArgumentError(f"images[{k}] is a {type(p).__name__}: give a list of paths or of image arrays")
    paths = np.array([os.fspath(p) for p in items], dtype=object)
    return Manifest(
        paths=paths,
        splits=text_column(splits if splits is not None else [UNSPLIT] * n, n, "splits", required=True),
        labels=text_column(labels if labels is not None else [""] * n, n, "labels"),
        groups=text_column(groups if groups is not None else [""] * n, n, "groups"),
        kind="list",
    )


def _is_archive(p: Path) -> bool:
    """Whether ``p`` is a zip or tar archive (read by content, whatever its name)."""
    import tarfile  # noqa: PLC0415 - only to word an error
    import zipfile  # noqa: PLC0415

    try:
        return p.is_file() and (zipfile.is_zipfile(p) or tarfile.is_tarfile(p))
    except OSError:
        return False


def _walk_files(top: str, unlisted: list | None = None, prune=frozenset()):
    """Yield (folder, file name) under ``top`` in sorted order; symlinked folders are not followed,
    hidden ones (``.ipynb_checkpoints``, ``.thumbnails``, ``.git``) and those in ``prune`` (Paths)
    not entered. Folders that cannot be listed (no permission, a path too long) are added to
    ``unlisted`` as (folder, reason)."""
    def failed(exc: OSError) -> None:
        if unlisted is not None:
            unlisted.append((os.fspath(exc.filename or top), exc.strerror or str(exc)))
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False, onerror=failed):
        # Paths, not strings: the walk of "." yields "./train" where the pruned folder is "train"
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and Path(dirpath, d) not in prune)
        for name in sorted(filenames):
            yield dirpath, name


def _find_split_dirs(root: Path) -> dict[Path, str]:
    """Split folders below root, shallowest level that has any, as {folder: split name}."""
    level = [root]
    for _ in range(SPLIT_SEARCH_DEPTH):
        nxt, found = [], {}
        for d in level:
            try:
                children = sorted(c for c in d.iterdir() if c.is_dir() and not c.is_symlink())
            except OSError as exc:
                log.warning("cannot list %s: %s", d, exc)
                continue
            for c in children:
                if c.name.startswith("."):
                    continue
                canon = SPLIT_ALIASES.get(c.name.lower())
                if canon is not None:
                    found[c] = canon
                else:
                    nxt.append(c)
        if found:
            return found
        level = nxt
    return {}


def _from_folder(root: Path, options: dict | None = None) -> Manifest:
    split_dirs = _find_split_dirs(root)
    rows: list[tuple[str, str, str]] = []
    maybe_dicom: list[tuple[str, str, str]] = []  # .dcm, extension-less, UID-named files (leakscan.sources.dicom)
    from .sources.discover import maybe_dicom_name, special_folder  # noqa: PLC0415 - DICOM files, GeoTIFF tiles

    tops = split_dirs.items() if split_dirs else [(root, UNSPLIT)]
    names_used: dict[str, list[str]] = {}
    root_s = os.fspath(root)
    unlisted: list[tuple[str, str]] = []
    subfolders: dict[str, str] = {}  # each folder's path below root, "/"-separated ("": root itself)
    for top, split in tops:
        names_used.setdefault(split, []).append(top.name)
        top_s = os.fspath(top)
        for folder, name in _walk_files(top_s, unlisted):
            ext = os.path.splitext(name)[1].lower()
            image = ext in IMAGE_EXTENSIONS
            if name.startswith(".") or not image:
                if name.startswith(".") or not maybe_dicom_name(name):
                    continue
                image = ext == "" and _unnamed_image(os.path.join(folder, name))
            sub = subfolders.get(folder)
            if sub is None:  # a path, not a prefix: the folder "." walks "test", not "./test"
                sub = os.path.relpath(folder, root_s).replace(os.sep, "/")
                sub = subfolders[folder] = "" if sub == "." else sub
            rel = (sub + "/" + name) if sub else name
            label = os.path.basename(folder) if folder != top_s else ""
            (rows if image else maybe_dicom).append((rel, split, label))
    for split, dirs in names_used.items():
        if len(dirs) > 1:
            log.info("split %r gathers the folders %s", split, ", ".join(dirs))
    if split_dirs:  # images beside the split folders are named, not silently left out
        rows_outside = _outside_splits(root_s, split_dirs, unlisted)
    # a folder that cannot be listed is named, as an unreadable file is: its images are missing
    skipped = tuple((os.path.relpath(folder, root_s).replace(os.sep, "/") + "/",
                     f"cannot list this folder ({reason}): the images in it are not audited")
                    for folder, reason in unlisted)
    if split_dirs:
        skipped += rows_outside
    special = special_folder(root, rows, maybe_dicom, options or {})
    if special is not None:
        return dataclasses.replace(special, skipped=tuple(special.skipped) + skipped)
    if not rows:
        why = f"; {skipped[0][1]}" if skipped else ""
        raise InputError(f"{root}: no image files found (looked for {', '.join(sorted(IMAGE_EXTENSIONS)[:6])}...)"
                         f"{why}")
    paths, sp, lab = zip(*rows)
    n = len(rows)
    return Manifest(
        paths=np.array(paths, dtype=object),
        splits=np.array(sp, dtype=object),
        labels=np.array(lab, dtype=object),
        groups=np.array([""] * n, dtype=object),
        root=root,
        skipped=skipped,
        kind="folder",
    )


def _unnamed_image(path: str) -> bool:
    """A regular file without an extension whose first bytes are a raster image's (not DICOM's)."""
    head = file_head(path)
    return head is not None and head[128:132] != b"DICM" and has_image_signature(head)


def _outside_splits(root: str, split_dirs: dict, unlisted: list) -> tuple:
    """(path, reason) of each image file below ``root`` in none of ``split_dirs`` (the folder
    layout gives it no split, so it is not audited)."""
    names = sorted(os.path.relpath(d, root).replace(os.sep, "/") + "/" for d in split_dirs)
    why = f"not in a split folder ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}): not audited"
    from .sources.discover import DICOM_SUFFIXES  # noqa: PLC0415 - as _from_folder imports it

    out = []
    for folder, name in _walk_files(root, unlisted, prune=frozenset(split_dirs)):
        ext = os.path.splitext(name)[1].lower()
        path = os.path.join(folder, name)
        if not name.startswith(".") and (ext in IMAGE_EXTENSIONS or ext in DICOM_SUFFIXES
                                         or (ext == "" and _unnamed_image(path))):
            out.append((os.path.relpath(path, root).replace(os.sep, "/"), why))
    return tuple(out)


def _from_csv(path: Path, options: dict | None = None) -> Manifest:
    m = _read_csv(path)
    from .sources.discover import special_csv  # noqa: PLC0415 - DICOM files and frames, GeoTIFF tiles

    special = special_csv(m, options or {})
    return special if special is not None else m


def _read_csv(path: Path) -> Manifest:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a device would hang or flood the run
            raise InputError(f"{path}: the manifest is not a regular file (a FIFO, device or folder)")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read manifest ({exc.strerror or exc})") from None
    text = decode_text(raw, str(path))
    if not text.strip():
        raise InputError(f"{path}: manifest is empty; it needs a header line with at least 'path' and 'split'")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
        delim = dialect.delimiter
    except csv.Error:
        delim = ","
    try:
        return _parse_csv(path, text, delim)
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV manifest ({exc})") from None


_GUARDED = ("'=", "'+", "'-", "'@", "'\t", "'\r")


def _unguard(v: str) -> str:
    """Undo the spreadsheet guard leakscan puts before = + - @ in the CSVs it writes."""
    return v[1:] if v.startswith(_GUARDED) else v


def _windows_separators(p: str, root: Path) -> str:
    r"""``p`` with ``\`` read as ``/`` when only that names a file: a manifest written on Windows
    (``imgs\cat.jpg``) read where ``/`` separates folders. A name that exists as written (a
    backslash is a legal character in a Linux file name) is kept as written."""
    if os.sep == "\\" or "\\" not in p:
        return p
    slashed = p.replace("\\", "/")

    def exists(name: str) -> bool:
        q = Path(name)
        return (q if q.is_absolute() else root / q).exists()
    return slashed if not exists(p) and exists(slashed) else p


_COLUMNS = ("path", "split", "label", "group")


def _rows(reader, path: Path, text: str, delim: str):
    """``(line, cells)`` for each row ``reader`` reads after the header, ``line`` the one the row
    starts on (counting blank lines, which give no cells, and line breaks within quoted cells).
    A quoted cell never closed, which the csv module (lenient) reads as holding every line after
    it, is an :class:`InputError` naming the line (as a row the csv module cannot read is, by
    ``reader``: :class:`~leakscan.manifest.CsvRows` given the file's name)."""
    start, cells = 0, []
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        start, cells = line, row
        yield start, cells
    if any("\n" in c or "\r" in c for c in cells) and _quote_left_open(text, start, delim):
        raise InputError(f"{path}: line {start}: a quoted cell opened there is never closed (a \" missing), so every "
                         "line after it would be read as that one cell; close it, or remove the stray \"")


def _quote_left_open(text: str, line: int, delim: str) -> bool:
    """Whether the CSV row starting on ``line`` (1-based; the last row) opens a quoted cell that
    the end of ``text`` finds still open."""
    lines = io.StringIO(text, newline="")
    for _ in range(line - 1):
        lines.readline()
    try:
        for _ in CsvRows(lines.read(), delim, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _parse_csv(path: Path, text: str, delim: str) -> Manifest:
    reader = CsvRows(text, delim, str(path))
    fields = [f.strip().lower() for f in next(reader, [])]
    missing = [c for c in ("path", "split") if c not in fields]
    if missing:
        raise InputError(
            f"{path}: manifest lacks column(s) {', '.join(missing)}; found {', '.join(fields) or 'none'}"
            " (needed: path, split; optional: label, group)"
        )
    twice = [c for c in _COLUMNS if fields.count(c) > 1]
    if twice:  # which of the two would be meant?
        raise InputError(f"{path}: manifest names column(s) {', '.join(twice)} more than once "
                         f"(header: {', '.join(fields)}); keep one of each")
    where = {c: fields.index(c) for c in _COLUMNS if c in fields}
    root = path.parent
    rows, skipped, seen = [], [], {}
    for lineno, cells in _rows(reader, path, text, delim):
        if not cells:  # a blank line
            continue
        if any("\0" in c for c in cells):
            skipped.append((f"{path.name}:{lineno}", "manifest row holds a NUL byte (\\0): not a file name or value; "
                            "row ignored"))
            continue
        rec = {c: _unguard(cells[k]) if k < len(cells) else "" for c, k in where.items()}
        p = rec["path"].strip()
        if not p:
            skipped.append((f"{path.name}:{lineno}", "manifest row has an empty path"))
            continue
        url = a_url(p, f"manifest line {lineno}")
        if url:
            skipped.append((p, url))
            continue
        p = _windows_separators(p, root)
        split = split_name(rec["split"].strip())
        if not split:
            skipped.append((p, f"manifest line {lineno} has no split"))
            continue
        key = path_key(p, root)
        if key in seen:
            skipped.append((p, listed_again(seen[key], (lineno, split))))
            continue
        seen[key] = (lineno, split)
        rows.append((p, split, rec.get("label", "").strip(), rec.get("group", "").strip()))
    if not rows:
        raise InputError(f"{path}: manifest has no usable rows")
    paths, sp, lab, grp = zip(*rows)
    return Manifest(
        paths=np.array(paths, dtype=object),
        splits=np.array(sp, dtype=object),
        labels=np.array(lab, dtype=object),
        groups=np.array(grp, dtype=object),
        root=root,
        skipped=tuple(skipped),
        kind="csv",
    )
