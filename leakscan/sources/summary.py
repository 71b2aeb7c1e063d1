"""What the special sources add to an audit's results (new keys, new files; nothing renamed).

* Leaks count *groups* as well as images when rows carry groups (patients for DICOM):
  ``groups`` / ``groups_total`` in each ``leaks`` entry, and ``group_by`` at the top.
* Georeferenced tiles add ``spatial_leaks`` (per ordered split pair: tiles whose footprint
  overlaps a tile of the other split), ``n_spatial_pairs`` and the file ``spatial.csv``.
"""

from __future__ import annotations

import numpy as np

from ..output import shown_fraction

__all__ = ["add_to_summary", "terminal_lines", "spatial_records", "SPATIAL_COLUMNS"]

SPATIAL_COLUMNS = ["a", "b", "split_a", "split_b", "overlap", "crs"]


def _spatial(audit):
    src = audit.manifest.source
    if src is None or "footprint" not in src.meta:
        return None
    from .geotiff import spatial_pairs  # noqa: PLC0415 - pure numpy

    m = audit.manifest
    return spatial_pairs(src.meta["footprint"], src.meta["crs"], m.splits, audit.features.ok)


def spatial_records(audit) -> list[dict] | None:
    """Rows of ``spatial.csv`` (None when no tile is georeferenced)."""
    pairs = _spatial(audit)
    if pairs is None:
        return None
    m = audit.manifest
    crs = m.source.meta["crs"]
    return [{"a": m.paths[i], "b": m.paths[j], "split_a": m.splits[i], "split_b": m.splits[j],
             "overlap": ov, "crs": crs[i]} for i, j, ov in pairs]


def add_to_summary(audit, d: dict) -> dict:
    """Add the source-specific keys to the ``summary.json`` document ``d`` (in place; returns it)."""
    m, ok = audit.manifest, audit.features.ok
    src = m.source
    if src is not None and src.meta.get("group_by"):
        d["group_by"] = src.meta["group_by"]
    if len(m) and np.any(m.groups != ""):
        ids = audit.groups.ids
        for lk in d["leaks"]:
            in_a = ok & (m.splits == lk["split"])
            in_b_groups = set(ids[ok & (m.splits == lk["against"])].tolist())
            units = [g for g in m.groups[in_a].tolist() if g != ""]
            hit = m.groups[in_a & np.isin(ids, list(in_b_groups))]
            lk["groups"] = len(set(g for g in hit.tolist() if g != ""))
            lk["groups_total"] = len(set(units))
    pairs = _spatial(audit)
    if pairs is not None:
        fp_ok = np.all(np.isfinite(src.meta["footprint"]), axis=1) & ok
        d["n_georeferenced"] = int(fp_ok.sum())
        d["n_spatial_pairs"] = len(pairs)
        partners: dict[int, set] = {}
        best: dict[tuple, float] = {}
        for i, j, ov in pairs:
            for a, b in ((i, j), (j, i)):
                partners.setdefault(a, set()).add(m.splits[b])
                key = (a, m.splits[b])
                best[key] = max(best.get(key, 0.0), ov)
        out = []
        names = m.split_names
        for A in names:
            total = int(np.sum(fp_ok & (m.splits == A)))
            for B in names:
                if A == B:
                    continue
                rows = [r for r, s in partners.items() if m.splits[r] == A and B in s]
                out.append({"split": A, "against": B, "tiles": len(rows), "total": total,
                            "fraction": shown_fraction(len(rows) / total) if total else 0.0,
                            "max_overlap": round(max((best[(r, B)] for r in rows), default=0.0), 6)})
        d["spatial_leaks"] = out
    return d


def terminal_lines(d: dict) -> list[str]:
    """Plain lines for the terminal summary (patients/groups on both sides, spatial leakage)."""
    lines = []
    unit = {"PatientID": "patients", "StudyInstanceUID": "studies", "SeriesInstanceUID": "series"}.get(
        d.get("group_by", ""), "groups")
    for lk in d["leaks"]:
        if lk.get("groups"):
            lines.append(f"{unit}: {lk['groups']} of {lk['groups_total']} {lk['split']} {unit} also have "
                         f"images in {lk['against']}")
    for sl in d.get("spatial_leaks", []):
        if sl["tiles"]:
            lines.append(f"spatial leakage: {sl['tiles']} of {sl['total']} {sl['split']} tiles overlap a "
                         f"{sl['against']} tile (up to {100 * sl['max_overlap']:.0f}% of the smaller footprint; "
                         "see spatial.csv)")
    if "spatial_leaks" in d and not any(sl["tiles"] for sl in d["spatial_leaks"]):
        lines.append(f"No spatial leakage: no footprints of {d['n_georeferenced']} georeferenced tiles "
                     "overlap across splits.")
    return lines
