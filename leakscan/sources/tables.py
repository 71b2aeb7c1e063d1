"""Manifests from tables: a pandas DataFrame or a Parquet file (read with pyarrow).

The columns are those of the CSV manifest (``path``, ``split``, optional ``label``, ``group``);
other names are given with ``path_column=`` etc. A column of image bytes (``bytes`` cells,
or Hugging Face style ``{"bytes": ..., "path": ...}`` structs) may replace the paths: many
datasets ship that way. Its rows are decoded from those bytes, no temporary files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..manifest import SPLIT_ALIASES, UNSPLIT, Manifest
from .rows import RowSource, missing_extra

__all__ = ["from_dataframe", "from_parquet", "from_columns", "TABLE_OPTIONS", "PARQUET_SUFFIXES"]

TABLE_OPTIONS = ("path_column", "split_column", "label_column", "group_column", "image_column")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def _text(v) -> str:
    """A cell as text; missing values (None, NaN, pandas NA) are ``""``."""
    if v is None or (isinstance(v, float) and v != v) or type(v).__name__ in ("NAType", "NaTType"):
        return ""
    return str(v).strip()


def _is_image_cell(v) -> bool:
    return isinstance(v, (bytes, bytearray, memoryview)) or (isinstance(v, dict) and ("bytes" in v or "path" in v))


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
    cols = {str(c): df[c].tolist() for c in df.columns}
    return from_columns(cols, len(df), name="df", root=None if root is None else Path(root), **options)


def from_parquet(path, **options) -> Manifest:
    """A :class:`Manifest` from a Parquet file (needs pyarrow); options as :func:`from_dataframe`.

    Relative paths are resolved against the Parquet file's folder, as for a CSV manifest.
    """
    path = Path(path)
    try:
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError:
        raise InputError(str(missing_extra("a Parquet manifest", "parquet", "pyarrow"))) from None
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    return from_columns(cols, table.num_rows, name=path.name, root=path.parent, **options)


def from_columns(cols: dict, n: int, *, name: str, root: Path | None, path_column=None, split_column=None,
                 label_column=None, group_column=None, image_column=None) -> Manifest:
    """The shared core of DataFrame and Parquet manifests: ``cols`` maps column name to a list."""
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
    if image_c is not None and not any(_is_image_cell(v) for v in cols[image_c]):
        if image_column is not None:
            raise InputError(f"{name}: column {image_c!r} holds no image bytes")
        image_c = None
    if image_c is None and path_c is None:
        found = [c for c, v in cols.items() if any(_is_image_cell(x) for x in v[:50])]
        if len(found) == 1:
            image_c = found[0]
        else:
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
                elif p:
                    q = Path(p)
                    item = ("file", os.fspath(q if q.is_absolute() or root is None else root / q))
                else:
                    skipped.append((ident, "row has neither image bytes nor a path"))
                    continue
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
            if ident in seen:
                skipped.append((ident, f"listed twice in the table (rows {seen[ident]} and {i}); kept the first"))
                continue
            seen[ident] = i
        if not split:
            skipped.append((ident, f"row {i} has no split"))
            continue
        lab, grp = _text(labels_in[i]), _text(groups_in[i])
        rows.append((ident, SPLIT_ALIASES.get(split.lower(), split), lab, grp))
        items.append(item)
    if not rows:
        raise InputError(f"{name}: table has no usable rows")
    paths, sp, lab, grp = zip(*rows)
    source = None
    if image_c is not None:
        arr = np.empty(len(items), dtype=object)
        for k, it in enumerate(items):
            arr[k] = it
        source = RowSource(items=arr, meta={"image_column": image_c})
    return Manifest(paths=np.array(paths, dtype=object), splits=np.array(sp, dtype=object),
                    labels=np.array(lab, dtype=object), groups=np.array(grp, dtype=object),
                    root=root, skipped=tuple(skipped), source=source)
