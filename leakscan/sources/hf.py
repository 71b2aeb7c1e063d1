"""Hugging Face ``datasets`` (needs ``pip install 'leakscan[hf]'``). The only module importing datasets.

A ``DatasetDict`` gives one split per key; a single ``Dataset`` is the split named by
``split=`` (or its own ``.split``, else ``all``). Rows are identified as ``split/index`` (the
key as the dataset names it, and the row's position in that split) in every output.

Images are read straight from the Arrow storage (the encoded bytes or, for datasets that only
reference files, the path) and decoded once, in the worker processes; the feature cache keys
them by content digest since they have no path or mtime. The bytes stay in the dataset (its
memory-mapped Arrow files): listing reads them once for their digests, a batch at a time, and
decoding reads each chunk's rows as it goes to the workers (:class:`DatasetBytes`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..manifest import UNSPLIT, Manifest, is_missing, split_name
from .rows import RowSource, bytes_field, missing_extra, object_array

log = logging.getLogger(__name__)

__all__ = ["from_hf", "load_hf", "to_dataset_dict", "DatasetBytes"]

#: Rows read at a time when listing a dataset's image column.
LIST_BATCH = 256


def _datasets():
    try:
        import datasets  # noqa: PLC0415
    except ImportError:
        raise InputError(str(missing_extra("auditing a Hugging Face dataset", "hf", "datasets"))) from None
    return datasets


def load_hf(path):
    """A dataset from a folder: written by ``save_to_disk``, else whatever ``load_dataset`` reads there.

    ``load_dataset`` is given the local folder, so a dataset script or an ``imagefolder``
    layout is read without the hub (set ``HF_DATASETS_OFFLINE=1`` to be sure).
    """
    datasets = _datasets()
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such dataset folder")
    try:
        if (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
            return datasets.load_from_disk(os.fspath(p))
        return datasets.load_dataset(os.fspath(p))
    except Exception as exc:  # noqa: BLE001 - datasets raises many types
        raise InputError(f"{p}: not a dataset that datasets can load offline ({type(exc).__name__}: {exc})") from None


def _image_column(features, given, where: str) -> str:
    datasets = _datasets()
    if given is not None:
        if given not in features:
            raise InputError(f"{where}: no column {given!r}; columns are {', '.join(features)}")
        return given
    found = [c for c, f in features.items() if isinstance(f, datasets.Image)] or (
        ["image"] if "image" in features else [])  # else a column named image (bytes or paths)
    if not found:  # else the only column of image bytes (binary, or {"bytes", "path"} structs), as in a table
        schema = features.arrow_schema
        found = [c for c in features if bytes_field(schema.field(c).type) is not None]
        if len(found) > 1:
            raise InputError(f"{where}: no Image column, and {len(found)} columns of bytes ({', '.join(found)}); "
                             "give image_column=")
    if not found:
        raise InputError(f"{where}: no Image column; columns are {', '.join(features)} (give image_column=)")
    if len(found) > 1:
        log.info("%s: several Image columns (%s); using %s", where, ", ".join(found), found[0])
    return found[0]


def _label_column(features, given, where: str):
    datasets = _datasets()
    if given is not None:
        if given not in features:
            raise InputError(f"{where}: no column {given!r} for labels; columns are {', '.join(features)}")
        return given
    found = [c for c, f in features.items() if isinstance(f, datasets.ClassLabel)]
    return found[0] if found else ("label" if "label" in features else None)


def _group_column(features, given, where: str):
    if given is not None:
        if given not in features:
            raise InputError(f"{where}: no column {given!r} for groups; columns are {', '.join(features)}")
        return given
    return "group" if "group" in features else None


def _arrow_values(table):
    """``(bytes array, path array or None)`` of a one-column Arrow table of images as stored:
    ``{"bytes", "path"}`` structs (an ``Image`` feature), plain binary, or strings (file paths)."""
    import pyarrow as pa  # noqa: PLC0415 - a dependency of datasets

    col = table.column(0)  # chunks are never combined: that would copy the bytes
    if col.num_chunks == 1:
        col = col.chunk(0)
    if pa.types.is_struct(col.type):
        names = [col.type.field(k).name for k in range(col.type.num_fields)]
        fields = col.flatten()  # null structs give null fields
        data = fields[names.index("bytes")] if "bytes" in names else pa.nulls(len(col), pa.binary())
        return data, (fields[names.index("path")] if "path" in names else None)
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        return col, None
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return pa.nulls(len(col), pa.binary()), col
    return pa.nulls(len(col), pa.binary()), None


class DatasetBytes:
    """The image bytes of one column of a ``Dataset``, read from its Arrow table by row.

    The table of a dataset loaded from disk is memory-mapped: reading a chunk's rows copies
    those rows' bytes only.
    """

    def __init__(self, ds, column: str, name: str):
        self.arrow = ds.select_columns([column]).with_format("arrow")
        self.name = name

    def read(self, rows) -> list:
        rows = [int(r) for r in rows]
        if not rows:
            return []
        data, _ = _arrow_values(self.arrow[rows])
        out = []
        for q in range(len(data)):
            v = data[q]
            buf = v.as_buffer() if v.is_valid else None
            out.append(buf.to_pybytes() if buf is not None and buf.size else "row has no image bytes")
        return out


def _cells(ds, column: str) -> list:
    """One cell per row of an image column, the bytes left in the dataset: ``(digest, size)``
    of the encoded bytes, else the path of the file it references (``str``), else None.
    Read :data:`LIST_BATCH` rows at a time."""
    arrow = ds.select_columns([column]).with_format("arrow")
    out = []
    for start in range(0, len(ds), LIST_BATCH):
        data, paths = _arrow_values(arrow[start:start + LIST_BATCH])
        for q in range(len(data)):
            v = data[q]
            buf = v.as_buffer() if v.is_valid else None
            if buf is not None and buf.size:
                out.append((hashlib.blake2b(memoryview(buf), digest_size=16).digest(), buf.size))
            elif paths is not None and paths[q].is_valid and paths[q].as_py():
                out.append(paths[q].as_py())
            else:
                out.append(None)
    return out


def from_hf(data, *, split=None, image_column=None, label_column=None, group_column=None) -> Manifest:
    """A :class:`Manifest` of a ``Dataset`` or ``DatasetDict``.

    Parameters
    ----------
    data : datasets.Dataset or datasets.DatasetDict
    split : str, optional
        The split name of a single Dataset; for a DatasetDict, audit only this split.
    image_column : str, optional
        Default: the (first) column with an ``Image`` feature, else a column named ``image``,
        else the only column of image bytes (``binary``, or ``{"bytes", "path"}`` structs).
    label_column : str, optional
        Default: the (first) ``ClassLabel`` column (its names are the labels), else ``label``.
    group_column : str, optional
        A column of group ids (patient, video, ...): images of one group count as one unit.
        Default: a column named ``group``.
    """
    datasets = _datasets()
    if isinstance(data, (datasets.IterableDataset, datasets.IterableDatasetDict)):
        raise InputError("a streaming (Iterable) dataset cannot be audited: load it without streaming=True")
    if isinstance(data, datasets.DatasetDict):
        if split is not None:
            if split not in data:
                raise InputError(f"no split {split!r} in the DatasetDict; it has {', '.join(data)}")
            parts = [(split, data[split])]
        else:
            parts = list(data.items())
    else:
        name = split or (str(data.split) if getattr(data, "split", None) else UNSPLIT)
        parts = [(name, data)]
    paths, splits, labels, groups, items, skipped, stores = [], [], [], [], [], [], []
    origin_split, origin_index = [], []
    for key, ds in parts:
        where = f"split {key!r}"
        col = _image_column(ds.features, image_column, where)
        lab = _label_column(ds.features, label_column, where)
        grp = _group_column(ds.features, group_column, where)
        cells = _cells(ds, col)
        if lab is not None:
            raw = ds.select_columns([lab])[lab]
            feat = ds.features[lab]
            names = feat.names if isinstance(feat, datasets.ClassLabel) else None
            labs = ["" if v is None or (names is not None and v < 0) else (names[v] if names else str(v)) for v in raw]
        else:
            labs = [""] * len(ds)
        grps = ["" if is_missing(v) else str(v) for v in ds.select_columns([grp])[grp]] \
            if grp is not None else [""] * len(ds)
        canon = split_name(str(key))
        store = len(stores)
        stores.append(DatasetBytes(ds, col, f"split {key!r}"))
        for i, cell in enumerate(cells):
            ident = f"{key}/{i}"
            p = cell if isinstance(cell, str) else None
            if isinstance(cell, tuple):
                item = ("stored", store, i, cell[0], cell[1])
            elif p and os.path.isfile(p):
                item = ("file", p)
            else:
                skipped.append((ident, "row has no image bytes" + (f" and its path {p} is not a file" if p else "")))
                continue
            paths.append(ident)
            splits.append(canon)
            labels.append(labs[i])
            groups.append(grps[i])
            items.append(item)
            origin_split.append(str(key))
            origin_index.append(i)
    if not paths:
        raise InputError("the dataset has no readable image rows")
    meta = {"dataset": data, "hf_split": np.array(origin_split, dtype=object),
            "hf_index": np.array(origin_index, np.int64)}
    return Manifest(paths=np.array(paths, dtype=object), splits=np.array(splits, dtype=object),
                    labels=np.array(labels, dtype=object), groups=np.array(groups, dtype=object),
                    root=None, skipped=tuple(skipped),
                    source=RowSource(items=object_array(items), meta=meta, files_are_paths=False,
                                     stores=tuple(stores)))


def to_dataset_dict(rs):
    """The DatasetDict of a :class:`~leakscan.split.Resplit` of a dataset audit: one key per new split.

    Rows keep their columns; a new split gathers rows of the old splits in their order. Split
    names follow the original keys where a key was an alias (``validation`` stays ``validation``).
    """
    datasets = _datasets()
    m = rs.audit.manifest
    src = m.source
    if src is None or "dataset" not in src.meta:
        raise InputError("to_dataset_dict needs the Resplit of an audit of a Hugging Face dataset")
    data = src.meta["dataset"]
    orig_split, orig_index = src.meta["hf_split"], src.meta["hf_index"]
    only = str(orig_split[0]) if len(orig_split) else UNSPLIT
    dsets = data if isinstance(data, datasets.DatasetDict) else {only: data}
    back = {}
    for key in dsets:
        back.setdefault(split_name(str(key)), str(key))
    new = rs.splits
    keep = np.isin(np.arange(len(m)), rs.kept_rows())
    out = {}
    for name in m.split_names + sorted(set(new[keep].tolist()) - set(m.split_names)):
        rows = np.flatnonzero(keep & (new == name))
        if not len(rows):
            continue
        parts = []
        for key in dict.fromkeys(orig_split[rows].tolist()):
            sel = rows[orig_split[rows] == key]
            parts.append(dsets[key].select(orig_index[sel].tolist()))
        out[back.get(name, name)] = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    return datasets.DatasetDict(out)
