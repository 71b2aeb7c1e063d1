"""Hugging Face ``datasets`` (needs ``pip install 'leakscan[hf]'``). The only module importing datasets.

A ``DatasetDict`` gives one split per key; a single ``Dataset`` is the split named by
``split=`` (or its own ``.split``, else ``all``). Rows are identified as ``split/index`` (the
key as the dataset names it, and the row's position in that split) in every output.

Images are read straight from the Arrow storage (``Image(decode=False)``: the encoded bytes
or, for datasets that only reference files, the path) and decoded once, in the worker
processes; the feature cache keys them by content digest since they have no path or mtime.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..manifest import SPLIT_ALIASES, UNSPLIT, Manifest
from .rows import RowSource, missing_extra, object_array

log = logging.getLogger(__name__)

__all__ = ["from_hf", "load_hf", "to_dataset_dict"]


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
    found = [c for c, f in features.items() if isinstance(f, datasets.Image)]
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
    return found[0] if found else None


def _cells(ds, column: str) -> list:
    """The image cells of a column as stored: ``{"bytes": ..., "path": ...}`` (no decoding)."""
    datasets = _datasets()
    feat = ds.features[column]
    if isinstance(feat, datasets.Image):
        ds = ds.cast_column(column, datasets.Image(decode=False))
    return ds.select_columns([column])[column]


def from_hf(data, *, split=None, image_column=None, label_column=None, group_column=None) -> Manifest:
    """A :class:`Manifest` of a ``Dataset`` or ``DatasetDict``.

    Parameters
    ----------
    data : datasets.Dataset or datasets.DatasetDict
    split : str, optional
        The split name of a single Dataset; for a DatasetDict, audit only this split.
    image_column : str, optional
        Default: the (first) column with an ``Image`` feature.
    label_column : str, optional
        Default: the (first) ``ClassLabel`` column; its names are the labels.
    group_column : str, optional
        A column of group ids (patient, video, ...): images of one group count as one unit.
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
    paths, splits, labels, groups, items, skipped = [], [], [], [], [], []
    origin_split, origin_index = [], []
    for key, ds in parts:
        where = f"split {key!r}"
        col = _image_column(ds.features, image_column, where)
        lab = _label_column(ds.features, label_column, where)
        if group_column is not None and group_column not in ds.features:
            raise InputError(f"{where}: no column {group_column!r} for groups; columns are {', '.join(ds.features)}")
        cells = _cells(ds, col)
        if lab is not None:
            raw = ds.select_columns([lab])[lab]
            feat = ds.features[lab]
            names = feat.names if isinstance(feat, datasets.ClassLabel) else None
            labs = ["" if v is None or (names is not None and v < 0) else (names[v] if names else str(v)) for v in raw]
        else:
            labs = [""] * len(ds)
        grps = ["" if v is None else str(v) for v in ds.select_columns([group_column])[group_column]] \
            if group_column is not None else [""] * len(ds)
        canon = SPLIT_ALIASES.get(str(key).lower(), str(key))
        for i, cell in enumerate(cells):
            ident = f"{key}/{i}"
            if isinstance(cell, dict):
                data_b, p = cell.get("bytes"), cell.get("path")
            elif isinstance(cell, (bytes, bytearray)):
                data_b, p = cell, None
            else:
                data_b, p = None, None
            if data_b:
                item = ("bytes", bytes(data_b))
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
                    source=RowSource(items=object_array(items), meta=meta, files_are_paths=False))


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
        back.setdefault(SPLIT_ALIASES.get(str(key).lower(), str(key)), str(key))
    new = rs.splits
    keep = ~rs.dropped
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
