"""Render an Audit: terminal tables (rich), ``summary.json``, ``pairs.csv``, ``groups.csv``, ``skipped.csv``.

Files are written atomically through :func:`leakscan.output.atomic_write`, so an interrupted
run never leaves a half-written file behind, and a write that fails is an OutputError.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from .audit import PAIR_COLUMNS, Audit
from .errors import OutputError
from .output import atomic_write, inside, make_folder

__all__ = ["write_outputs", "summary_json", "render_terminal", "OUTPUT_FILES"]

OUTPUT_FILES = ("summary.json", "pairs.csv", "groups.csv", "skipped.csv", "report.html")


def _csv_text(columns, rows) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def summary_json(audit: Audit) -> str:
    return json.dumps(audit.to_dict(), indent=2, ensure_ascii=False) + "\n"


def prepare_out_dir(out: Path, *, force: bool, data_root: Path | None, names=OUTPUT_FILES) -> Path:
    """Check that ``out`` may receive our files: not inside the dataset, writable, no clobbering."""
    out = Path(out)
    if data_root is not None and inside(out, data_root):
        raise OutputError(
            f"{out}: output folder is inside the dataset folder {data_root}; leakscan never writes there "
            "(choose --out outside it)")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    make_folder(out)
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: output folder is not writable")
    existing = [n for n in names if (out / n).exists()]
    if existing and not force:
        raise OutputError(
            f"{out}: already holds {', '.join(existing)}; pass --force to overwrite or choose another --out")
    return out


def write_outputs(audit: Audit, out: str | os.PathLike, *, force: bool = False, html: bool = True,
                  parquet: bool = False, progress=None) -> list[Path]:
    """Write the result files into ``out``; returns their paths.

    ``summary.json``, ``pairs.csv``, ``groups.csv``, ``skipped.csv`` and, unless ``html`` is
    False, the self-contained ``report.html``.

    Raises
    ------
    OutputError
        ``out`` is inside the dataset folder, not writable, or holds earlier results and
        ``force`` is False.
    """
    m = audit.manifest
    out = prepare_out_dir(Path(out), force=force, data_root=m.root)
    written = []

    def put(name, text):
        p = out / name
        atomic_write(p, text)
        written.append(p)

    put("pairs.csv", _csv_text(PAIR_COLUMNS, audit.pair_records()))
    g = audit.groups
    dup = g.duplicate_groups()
    in_dup = np.isin(g.ids, dup) if len(dup) else np.zeros(len(m), bool)
    rows = np.flatnonzero(in_dup)
    rows = rows[np.lexsort((rows, g.ids[rows]))]
    weak = g.weakest if g.weakest is not None else np.full(g.n_groups, np.nan)
    put("groups.csv", _csv_text(
        ["path", "group", "split", "label", "size", "weakest_link"],
        ({"path": m.paths[r], "group": int(g.ids[r]), "split": m.splits[r], "label": m.labels[r],
          "size": int(g.sizes[g.ids[r]]),
          "weakest_link": "" if np.isnan(weak[g.ids[r]]) else round(float(weak[g.ids[r]]), 3)} for r in rows)))
    put("skipped.csv", _csv_text(["path", "reason"], ({"path": p, "reason": why} for p, why in audit.skipped)))
    if parquet:
        written += _write_parquet(audit, out)
    if html:
        from .htmlreport import render_html  # noqa: PLC0415

        put("report.html", render_html(audit, progress=progress))
    put("summary.json", summary_json(audit))
    return written


def _write_parquet(audit: Audit, out: Path) -> list[Path]:
    """``pairs.parquet`` with the pairs.csv columns (needs pyarrow)."""
    try:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError:
        raise OutputError("--parquet needs pyarrow: pip install pyarrow") from None
    recs = audit.pair_records()
    table = pa.table({c: [r[c] if r[c] != "" else None for r in recs] for c in PAIR_COLUMNS})
    return [atomic_write(out / "pairs.parquet", lambda tmp: pq.write_table(table, tmp))]


# --------------------------------------------------------------------------- terminal

def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def render_terminal(audit: Audit, console, *, max_rows: int = 10) -> None:
    """Print a short summary with rich tables to ``console``."""
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    d = audit.to_dict()
    by_kind = dict(d["pairs_by_kind"])
    if not by_kind.get("model") and audit.features.model_embedding is None:
        by_kind.pop("model", None)  # no model given: say nothing about model pairs
    console.print(
        f"[bold]leakscan[/bold] audited [bold]{d['n_images']:,}[/bold] images "
        f"({d['n_skipped']:,} skipped) in {d['elapsed_seconds']:.1f}s: "
        f"{d['n_pairs']:,} duplicate pairs ({', '.join(f'{n:,} {k}' for k, n in by_kind.items())}) in "
        f"{d['n_duplicate_groups']:,} groups.", highlight=False)

    t = Table(title="Images per split", title_justify="left")
    t.add_column("split")
    t.add_column("images", justify="right")
    t.add_column("classes", justify="right")
    for s, n in d["splits"].items():
        t.add_row(s, f"{n:,}", str(len([c for c in d["class_counts"].get(s, {}) if c])))
    console.print(t)

    leaks = [lk for lk in d["leaks"] if lk["images"]]
    if len(d["splits"]) < 2:
        console.print("One split only: within-split duplicates are reported, no cross-split leakage.")
    elif not leaks:
        console.print("[green]No leakage:[/green] no image has a duplicate in another split.")
    else:
        t = Table(title="Leakage: images of a split with a duplicate in another", title_justify="left")
        for col, just in (("split", "left"), ("has a copy in", "left"), ("images", "right"),
                          ("of", "right"), ("fraction", "right"), ("worst classes", "left")):
            t.add_column(col, justify=just)
        for lk in leaks:
            worst = sorted(((v["fraction"], c) for c, v in lk["per_class"].items() if v["images"]), reverse=True)
            t.add_row(lk["split"], lk["against"], f"{lk['images']:,}", f"{lk['total']:,}", _pct(lk["fraction"]),
                      ", ".join(f"{c or '(none)'} {_pct(f)}" for f, c in worst[:3]))
        console.print(t)

    if d["n_label_conflicts"]:
        t = Table(title=f"Label conflicts: {d['n_label_conflicts']} duplicate groups with different labels",
                  title_justify="left")
        t.add_column("group", justify="right")
        t.add_column("labels")
        t.add_column("example")
        for c in d["label_conflicts"][:max_rows]:
            t.add_row(str(c["group"]), ", ".join(f"{k} x{v}" for k, v in c["labels"].items()), c["paths"][0])
        console.print(t)

    cross = audit.cross_split()
    if cross.any():
        recs = audit.pair_records()
        idx = np.flatnonzero(cross)
        idx = idx[np.argsort(-audit.pairs.score[idx], kind="stable")][:max_rows]
        t = Table(title=f"Cross-split pairs (top {len(idx)} of {int(cross.sum()):,} by score)", title_justify="left")
        for col in ("a", "b", "kind", "score", "detail"):
            t.add_column(col, overflow="fold")
        for k in idx:
            r = recs[k]
            t.add_row(f"{r['a']}", f"{r['b']}", r["kind"], f"{r['score']:.3f}", r["detail"])
        console.print(t)
    if d["n_low_information"]:
        console.print(f"{d['n_low_information']:,} low-information images (flat frames) matched by exact digest only.")
    for w in d["warnings"]:
        console.print("[yellow]warning:[/yellow] " + escape(w), highlight=False)
    if d["n_skipped"]:
        console.print(f"[yellow]{d['n_skipped']:,} files skipped[/yellow] (reasons in skipped.csv): "
                      + "; ".join(f"{p}: {w}" for p, w in audit.skipped[:3]), highlight=False)


# --------------------------------------------------------------------------- re-split

def prepare_resplit_out(out: Path, *, force: bool, data_root: Path | None) -> None:
    """Check that the new manifest may be written at ``out`` (before the long part runs)."""
    out = Path(out)
    if data_root is not None and inside(out.parent, data_root):
        raise OutputError(f"{out}: inside the dataset folder {data_root}; leakscan never writes there "
                          "(choose --out outside it)")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; --out names the CSV file to write")
    if out.exists() and not force:
        raise OutputError(f"{out}: exists; pass --force to overwrite or choose another --out")


def write_resplit(rs, out: str | os.PathLike) -> list[Path]:
    """Write the new manifest (paths relative to its folder) and, if any, ``<stem>.dropped.csv``."""
    out = Path(out)
    if out.exists() and out.is_dir():
        raise OutputError(f"{out}: is a folder; --out names the CSV file to write")
    make_folder(out.parent)
    m = rs.audit.manifest
    base = out.parent.resolve()

    def rel(r: int) -> str:
        if m.images is not None:
            return str(m.paths[r])
        return Path(os.path.relpath(m.resolve(r).absolute(), base)).as_posix()

    rows = np.flatnonzero(~rs.dropped)
    names, grp = rs.splits, rs.groups_column()
    atomic_write(out, _csv_text(["path", "split", "label", "group"],
                                ({"path": rel(r), "split": names[r], "label": m.labels[r], "group": grp[r]}
                                 for r in rows)))
    written = [out]
    if rs.dropped.any():
        dropped = out.with_name(out.stem + ".dropped.csv")
        atomic_write(dropped, _csv_text(
            ["path", "split", "label", "group", "reason"],
            ({"path": rel(r), "split": m.splits[r], "label": m.labels[r], "group": grp[r],
              "reason": "duplicate of an image in a kept split"} for r in np.flatnonzero(rs.dropped))))
        written.append(dropped)
    return written


def render_resplit(rs, console) -> None:
    """Target vs achieved sizes and class shares, moves, remedy, problems, verification."""
    from rich.table import Table  # noqa: PLC0415

    d = rs.to_dict()
    console.print(f"[bold]leakscan resplit[/bold] ({d['mode']}, seed {d['seed']}): {rs.remedy}; "
                  f"{d['moved']:,} images change split, {d['dropped']:,} dropped.", highlight=False)
    t = Table(title="Split sizes", title_justify="left")
    for col, just in (("split", "left"), ("target", "right"), ("achieved", "right"), ("error", "right"),
                      ("worst class share error", "right")):
        t.add_column(col, justify=just)
    for name, s in d["splits"].items():
        t.add_row(name, f"{s['target']:,}", f"{s['achieved']:,}", f"{100 * s['size_error']:+.2f}%",
                  f"{100 * s['max_class_share_error']:.2f} pp")
    console.print(t)
    labels = list(next(iter(d["splits"].values()))["class_share_target"]) if d["splits"] else []
    if 1 < len(labels):
        worst = sorted(labels, key=lambda c: -max(abs(s["class_share_achieved"][c] - s["class_share_target"][c])
                                                  for s in d["splits"].values()))[:10]
        t = Table(title="Class shares per split, target -> achieved" +
                  (f" (10 furthest of {len(labels)} classes)" if len(labels) > 10 else ""), title_justify="left")
        t.add_column("class")
        for name in d["splits"]:
            t.add_column(name, justify="right")
        for c in sorted(worst):
            t.add_row(c or "(none)", *(f"{100 * s['class_share_target'][c]:.1f}% -> "
                                       f"{100 * s['class_share_achieved'][c]:.1f}%" for s in d["splits"].values()))
        console.print(t)
    for p in d["problems"]:
        console.print(f"[yellow]cannot fully meet:[/yellow] {p}", highlight=False)
    n = d["cross_split_pairs_after"]
    console.print(("[green]verified:[/green] " if n == 0 else "[red]not verified:[/red] ")
                  + f"{n} of the {d['pairs_checked']:,} duplicate pairs cross splits in the new manifest.",
                  highlight=False)
