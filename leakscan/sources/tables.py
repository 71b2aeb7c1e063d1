"""Manifests from tables: a pandas DataFrame or a Parquet file (read with pyarrow).

The columns are those of the CSV manifest (``path``, ``split``, optional ``label``, ``group``);
other names are given with ``path_column=`` etc. A column of image bytes (``bytes`` cells,
or Hugging Face style ``{"bytes": ..., "path": ...}`` structs) may replace the paths: many
datasets ship that way. Its rows are decoded from those bytes, no temporary files.

A Parquet file's image bytes stay in the file: listing it reads them once, a row group at a
time, for their digests (the cache keys), and decoding reads them again, a row group at a time,
as their chunks go to the workers (:class:`ParquetBytes`). Memory holds one row group of the
image column, not the table.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..manifest import UNSPLIT, Manifest, a_url, is_missing, listed_again, path_key, split_name
from .rows import RowSource, bytes_field, missing_extra

__all__ = ["from_dataframe", "from_parquet", "from_columns", "ParquetBytes", "StoredCell", "TABLE_OPTIONS",
           "PARQUET_SUFFIXES"]

TABLE_OPTIONS = ("path_column", "split_column", "label_column", "group_column", "image_column")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
#: Present (not missing) cells of a column looked at to tell whether it holds images.
SNIFF_CELLS = 50


def _text(v) -> str:
    """A cell as text; missing values (None, NaN, pandas NA) are ``""``."""
    if is_missing(v):
        return ""
    return str(v).strip()


class StoredCell(NamedTuple):
    """A cell whose image bytes stay where they are stored: row ``key`` of a store, their
    BLAKE2b-128 ``digest`` and ``size`` (what the cache needs without reading them again)."""

    key: int
    digest: bytes
    size: int


def _is_image_cell(v) -> bool:
    return isinstance(v, (bytes, bytearray, memoryview, StoredCell)) or (
        isinstance(v, dict) and ("bytes" in v or "path" in v))


def _holds_images(values) -> bool:
    """Whether a column holds image cells, told by its first :data:`SNIFF_CELLS` present cells
    (not its first rows: a column may be empty in its first rows)."""
    present = (v for v in values if not is_missing(v))
    return any(_is_image_cell(v) for v in itertools.islice(present, SNIFF_CELLS))


def _values(column, how: str):
    """``(bytes array, path array or None)`` of an Arrow column (or chunk) holding image bytes.

    Chunks are never combined (that would copy the bytes, and a binary array holds 2 GB at most).
    """
    import pyarrow as pa  # noqa: PLC0415

    if isinstance(column, pa.ChunkedArray) and column.num_chunks == 1:
        column = column.chunk(0)
    if how == "binary":
        return column, None
    names = [column.type.field(k).name for k in range(column.type.num_fields)]
    fields = column.flatten()  # a null struct gives null fields (field() would not); data not copied
    return fields[names.index("bytes")], (fields[names.index("path")] if "path" in names else None)


#: How Parquet files are opened to read image bytes: no pre-buffering of whole column chunks
#: and buffered page reads (less memory when a row group is large).
_PARQUET_READ = {"pre_buffer": False, "buffer_size": 1 << 20}


def _release_arrow_memory() -> None:
    """Hand the memory of row groups let go back to the system (Arrow's allocator keeps it)."""
    import pyarrow as pa  # noqa: PLC0415

    pa.default_memory_pool().release_unused()


def _buffer(scalar):
    """The bytes of a binary Arrow scalar as a zero-copy buffer (None when null)."""
    if not scalar.is_valid:
        return None
    return scalar.as_buffer()


class ParquetBytes:
    """The image bytes of one column of a Parquet file, read a row group at a time.

    ``read(rows)`` returns each row's bytes (or a reason, str, when the row has none). The row
    group last read is kept, so rows asked in stored order read each group once. The Parquet
    reader decodes a column a whole row group at a time: memory holds one row group of this
    column (files written by ``datasets`` hold 100 images per group; a file written as one
    row group holds the whole column).
    """

    def __init__(self, path, column: str, how: str, starts):
        self.path = os.fspath(path)
        self.column = column
        self.how = how
        self.starts = np.asarray(starts, np.int64)  # first row of each row group, then the row count
        self.name = Path(path).name
        self._group = (None, None)

    def __getstate__(self):  # never pickle a row group along
        d = dict(self.__dict__)
        d["_group"] = (None, None)
        return d

    def _read_group(self, g: int):
        if self._group[0] != g:
            import pyarrow.parquet as pq  # noqa: PLC0415

            self.release()  # let the previous group go before the next is read
            table = pq.ParquetFile(self.path, **_PARQUET_READ).read_row_group(g, columns=[self.column],
                                                                               use_threads=False)
            self._group = (g, _values(table.column(0), self.how)[0])
        return self._group[1]

    def read(self, rows) -> list:
        rows = [int(r) for r in rows]
        out: list = [None] * len(rows)
        n = int(self.starts[-1])
        for k in sorted(range(len(rows)), key=rows.__getitem__):
            r = rows[k]
            if not 0 <= r < n:
                out[k] = f"{self.name}: no row {r} (the file has {n} rows now)"
                continue
            g = int(np.searchsorted(self.starts, r, side="right")) - 1
            buf = _buffer(self._read_group(g)[r - int(self.starts[g])])
            out[k] = buf.to_pybytes() if buf is not None and buf.size else "row has no image bytes"
        return out

    def release(self) -> None:
        """Let go of the row group kept for the next read."""
        if self._group[0] is not None:
            self._group = (None, None)
            _release_arrow_memory()


def _stored_cells(pf, column: str, how: str) -> list:
    """One cell per row of a Parquet column of image bytes, read a row group at a time:
    :class:`StoredCell` (digest and size, the bytes left in the file), ``{"path": p}`` for a
    struct cell that only references a file, or None."""
    cells = []
    for g in range(pf.metadata.num_row_groups):
        data, paths = _values(pf.read_row_group(g, columns=[column], use_threads=False).column(0), how)
        base = len(cells)
        for q in range(len(data)):
            buf = _buffer(data[q])
            if buf is not None and buf.size:
                cells.append(StoredCell(base + q, hashlib.blake2b(memoryview(buf), digest_size=16).digest(), buf.size))
            elif paths is not None and paths[q].is_valid and paths[q].as_py():
                cells.append({"bytes": None, "path": paths[q].as_py()})
            else:
                cells.append(None)
        del data, paths
        _release_arrow_memory()
    return cells


def from_dataframe(df, *, root=None, **options) -> Manifest:
    """A :class:`Manifest` from a pandas DataFrame (one row per image).

    Parameters
    ----------
    df : pandas.DataFrame
    root : path-like, optional
        Folder that relative paths are resolved against (default: the working directory).
    path_column, split_column, label_column, group_column : str, optional
        Column names; default ``path``, ``split``, ``label``, ``group`` (label and group
        only when present). Without a split column every row is split ``all``.
    image_column : str, optional
        A column of image bytes to decode instead of reading files (auto-detected when the
        path column is missing and one column holds bytes).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"file": ["a.png", "b.png"], "fold": ["train", "test"]})
    >>> m = from_dataframe(df, path_column="file", split_column="fold")
    >>> list(m.paths), list(m.splits)
    (['a.png', 'b.png'], ['train', 'test'])
    """
    names = [str(c) for c in df.columns]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise InputError(f"df: column {twice[0]!r} appears {names.count(twice[0])} times; give the columns "
                         "distinct names (df.columns)")
    cols = {name: _column(df.iloc[:, k]) for k, name in enumerate(names)}
    # columns are named as text (a DataFrame's may be 0, 1...): so are the columns asked for
    options = {k: (v if v is None or isinstance(v, str) else str(v)) for k, v in options.items()}
    return from_columns(cols, len(df), name="df", root=None if root is None else Path(root), **options)


def _column(series) -> list:
    """A DataFrame column as a list (see :func:`_integers`)."""
    values = series.tolist()
    return _integers(values) if getattr(series.dtype, "kind", "") == "f" else values


def _integers(values: list) -> list:
    """A float column's values; integers that pandas made floats for a missing value (labels
    ``1.0``, ``2.0``, NaN) are integers again, as a CSV file or an integer column gives them."""
    present = [v for v in values if not is_missing(v)]
    if present and all(float(v).is_integer() and abs(v) < 2 ** 53 for v in present):
        return [None if is_missing(v) else int(v) for v in values]
    return values


def from_parquet(path, **options) -> Manifest:
    """A :class:`Manifest` from a Parquet file (needs pyarrow); options as :func:`from_dataframe`.

    Relative paths are resolved against the Parquet file's folder, as for a CSV manifest.
    """
    path = Path(path)
    try:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError:
        raise InputError(str(missing_extra("a Parquet manifest", "parquet", "pyarrow"))) from None
    try:
        pf = pq.ParquetFile(path, **_PARQUET_READ)
        schema = pf.schema_arrow
        how = {f.name: bytes_field(f.type) for f in schema}
        # image bytes stay in the file (StoredCell: digest and size); the other columns are read
        table = pf.read(columns=[c for c in schema.names if how[c] is None], use_threads=False)
        cols = {name: table.column(name).to_pylist() for name in table.column_names}
        for name in table.column_names:
            if pa.types.is_floating(table.column(name).type):
                cols[name] = _integers(cols[name])
        stores = {}
        for c in schema.names:
            if how[c] is not None:
                cols[c] = _stored_cells(pf, c, how[c])
                starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)])
                stores[c] = ParquetBytes(path, c, how[c], starts)
        n = pf.metadata.num_rows
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    cols = {name: cols[name] for name in schema.names}  # the file's column order
    return from_columns(cols, n, name=path.name, root=path.parent, stores=stores, **options)


def from_columns(cols: dict, n: int, *, name: str, root: Path | None, path_column=None, split_column=None,
                 label_column=None, group_column=None, image_column=None, stores=None) -> Manifest:
    """The shared core of DataFrame and Parquet manifests: ``cols`` maps column name to a list.

    ``stores`` maps a column of :class:`StoredCell` cells to where their bytes are read from.
    """
    lower = {c.strip().lower(): c for c in cols}

    def pick(given, default, what):
        if given is not None:
            if given not in cols:
                raise InputError(f"{name}: no column {given!r} for {what}; columns are {', '.join(map(str, cols))}")
            return given
        return lower.get(default)

    path_c = pick(path_column, "path", "path_column")
    split_c = pick(split_column, "split", "split_column")
    label_c = pick(label_column, "label", "label_column")
    group_c = pick(group_column, "group", "group_column")
    image_c = pick(image_column, "image", "image_column")
    if image_c is not None and not _holds_images(cols[image_c]):
        if image_column is not None:
            raise InputError(f"{name}: column {image_c!r} holds no image bytes")
        image_c = None
    if image_c is None and path_column is None:  # the only column of image bytes, even beside a `path` column
        found = [c for c, v in cols.items() if _holds_images(v)]
        if len(found) == 1:
            image_c = found[0]
        elif path_c is None:
            raise InputError(f"{name}: no 'path' column and no column of image bytes; columns are "
                             f"{', '.join(map(str, cols)) or 'none'} (give path_column= or image_column=)")
    splits_in = cols[split_c] if split_c else [UNSPLIT] * n
    labels_in = cols[label_c] if label_c else [""] * n
    groups_in = cols[group_c] if group_c else [""] * n
    rows, skipped, seen, items = [], [], {}, []
    for i in range(n):
        split = _text(splits_in[i])
        if image_c is not None:
            cell = cols[image_c][i]
            ident = f"{name}[{i}]"
            if isinstance(cell, dict):
                data, p = cell.get("bytes"), cell.get("path")
                if data:
                    item = ("bytes", bytes(data))
                elif p and a_url(p, f"row {i}"):  # a Hugging Face image stored by its URL
                    skipped.append((p, a_url(p, f"row {i}")))
                    continue
                elif p:
                    q = Path(p)
                    item = ("file", os.fspath(q if q.is_absolute() or root is None else root / q))
                else:
                    skipped.append((ident, "row has neither image bytes nor a path"))
                    continue
            elif isinstance(cell, StoredCell):
                item = ("stored", 0, cell.key, cell.digest, cell.size)
            elif isinstance(cell, (bytes, bytearray, memoryview)) and len(cell):
                item = ("bytes", bytes(cell))
            else:
                skipped.append((ident, "row has no image bytes"))
                continue
        else:
            ident = _text(cols[path_c][i])
            item = None
            if not ident:
                skipped.append((f"{name}[{i}]", "row has an empty path"))
                continue
            url = a_url(ident, f"row {i}")
            if url:
                skipped.append((ident, url))
                continue
        if not split:
            skipped.append((ident, f"row {i} has no split"))
            continue
        split = split_name(split)
        if item is None:  # a path: one file however it is spelled, listed once
            key = path_key(ident, root)
            if key in seen:
                skipped.append((ident, listed_again(seen[key], (i, split), unit="row", source="table")))
                continue
            seen[key] = (i, split)
        lab, grp = _text(labels_in[i]), _text(groups_in[i])
        rows.append((ident, split, lab, grp))
        items.append(item)
    if not rows:
        raise InputError(f"{name}: table has no usable rows")
    paths, sp, lab, grp = zip(*rows)
    source = None
    if image_c is not None:
        arr = np.empty(len(items), dtype=object)
        for k, it in enumerate(items):
            arr[k] = it
        store = (stores or {}).get(image_c)
        source = RowSource(items=arr, meta={"image_column": image_c}, stores=(store,) if store is not None else ())
    return Manifest(paths=np.array(paths, dtype=object), splits=np.array(sp, dtype=object),
                    labels=np.array(lab, dtype=object), groups=np.array(grp, dtype=object),
                    root=root, skipped=tuple(skipped), source=source)
