"""Render an Audit: terminal tables (rich), ``summary.json``, ``pairs.csv``, ``groups.csv``, ``skipped.csv``.

The result folder is written as one set (:func:`leakscan.safeio.write_folder`: a staged folder
swapped in), each file through :func:`leakscan.output.atomic_write`, so an interrupted run never
leaves a half-written file or a mixed set behind, and a write that fails is an OutputError.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import time
from pathlib import Path

import numpy as np

from .audit import PAIR_COLUMNS, PAIR_NUMBERS, Audit
from .errors import OutputError
from .output import atomic_write, json_text, make_folder, tier_rounded, utf8_text
from .safeio import (check_target, check_writable, csv_cell, dataset_folders, one_writer, plain, refuse_earlier,
                     write_folder)

__all__ = ["write_outputs", "summary_json", "render_terminal", "OUTPUT_FILES"]

OUTPUT_FILES = ("summary.json", "pairs.csv", "possible.csv", "groups.csv", "skipped.csv", "report.html")


_PATH_COLUMNS = ("path", "a", "b")


def _csv_text(columns, rows) -> str:
    """CSV text; text cells are guarded for spreadsheets (:func:`leakscan.safeio.csv_cell`) and NUL
    bytes written as ``\\x00``."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: csv_cell(v.replace("\0", "\\x00"), path=k in _PATH_COLUMNS) if isinstance(v, str) else v
                    for k, v in r.items()})
    return buf.getvalue()


def summary_json(audit: Audit) -> str:
    return json_text(audit.to_dict(), indent=2) + "\n"


def prepare_out_dir(out: Path, *, force: bool, names=OUTPUT_FILES, protect=()) -> Path:
    """Check that ``out`` may receive our files: not inside (nor holding) the dataset, writable, no clobbering.

    ``protect``: the dataset's folders (:func:`leakscan.safeio.dataset_folders`).
    """
    out = Path(out)
    check_target(out, list(protect), what="output folder")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    make_folder(out)
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: output folder is not writable")
    if not force:
        refuse_earlier(out, names)
    return out


def write_outputs(audit: Audit, out: str | os.PathLike, *, force: bool = False, html: bool = True,
                  parquet: bool = False, progress=None) -> list[Path]:
    """Write the result files into ``out``; returns their paths.

    ``summary.json``, ``pairs.csv``, ``groups.csv``, ``skipped.csv`` and, unless ``html`` is
    False, the self-contained ``report.html``.

    The time this takes goes into ``audit.timings`` (``report``, and ``total``) before
    ``summary.json``, the last file, is written: everything but that file and the final swap
    of the folder is counted.

    Raises
    ------
    OutputError
        ``out`` is inside the dataset folder, not writable, or holds earlier results and
        ``force`` is False.
    """
    start = time.perf_counter()
    m = audit.manifest
    out = prepare_out_dir(Path(out), force=force, protect=dataset_folders(m))
    files: dict = {}
    files["pairs.csv"] = _csv_text(PAIR_COLUMNS, audit.pair_records())
    files["possible.csv"] = _csv_text(PAIR_COLUMNS, audit.pair_records("possible"))
    g = audit.groups
    rows = audit.duplicate_group_rows()
    size = np.bincount(g.ids[rows], minlength=g.n_groups)  # the images listed, not the files skipped
    weak = g.weakest if g.weakest is not None else np.full(g.n_groups, np.nan)
    bar = audit.bar  # the weakest link reads as its pair's confidence in pairs.csv
    files["groups.csv"] = _csv_text(
        ["path", "group", "split", "label", "size", "weakest_link"],
        ({"path": m.paths[r], "group": int(g.ids[r]), "split": m.splits[r], "label": m.labels[r],
          "size": int(size[g.ids[r]]),
          "weakest_link": "" if np.isnan(weak[g.ids[r]]) else tier_rounded(weak[g.ids[r]], bar)} for r in rows))
    files["skipped.csv"] = _csv_text(["path", "reason"], ({"path": p, "reason": why} for p, why in audit.skipped))
    from .sources.summary import SPATIAL_COLUMNS, spatial_records  # noqa: PLC0415 - georeferenced tiles

    spatial = spatial_records(audit)
    if spatial is not None:
        files["spatial.csv"] = _csv_text(SPATIAL_COLUMNS, spatial)
    if parquet:
        files["pairs.parquet"] = _parquet_writer(audit)
    if html:
        from .htmlreport import render_html  # noqa: PLC0415

        files["report.html"] = render_html(audit, progress=progress, out_dir=out)
    files["summary.json"] = lambda path: _write_summary(audit, path, start)  # last: marks a complete set
    # without force, the results refused before decoding (prepare_out_dir) are refused again where the set is put
    return write_folder(out, files, owned=set(OUTPUT_FILES) | {"pairs.parquet"}, refuse=() if force else OUTPUT_FILES)


def _write_summary(audit: Audit, path: str, start: float) -> None:
    """Record the report time (every other file rendered and written), then write summary.json."""
    report = time.perf_counter() - start
    audit.timings.update(report=round(report, 3), total=round(audit.elapsed + report, 3))
    with open(path, "wb") as fh:
        fh.write(summary_json(audit).encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def _parquet_writer(audit: Audit):
    """A callable writing ``pairs.parquet`` with the pairs.csv columns to a path (needs pyarrow)."""
    try:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError:
        raise OutputError("--parquet needs pyarrow: pip install pyarrow") from None
    recs = audit.pair_records()
    # one type per column whatever the rows (none, no labels, exact copies only): runs read together
    name = pa.int64() if audit.manifest.images is not None else pa.string()  # row numbers for arrays
    types = {"a": name, "b": name, **{c: pa.from_numpy_dtype(np.dtype(t)) for c, t in PAIR_NUMBERS.items()}}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in PAIR_COLUMNS])
    table = pa.table({c: [None if r[c] == "" else utf8_text(r[c]) if isinstance(r[c], str) else r[c] for r in recs]
                      for c in PAIR_COLUMNS}, schema=schema)
    return lambda path: pq.write_table(table, path)


# --------------------------------------------------------------------------- terminal

def _text(s):
    """A user string as a rich Text: printed as it is (no markup), control characters escaped."""
    from rich.text import Text  # noqa: PLC0415

    return Text(plain(s))


def _esc(s) -> str:
    """A user string to embed in a markup line: control characters and markup escaped."""
    from rich.markup import escape  # noqa: PLC0415

    return escape(plain(s))


def render_terminal(audit: Audit, console, *, max_rows: int = 10, skipped_csv: str | None = "skipped.csv") -> None:
    """Print a short summary with rich tables to ``console``.

    Paths, labels, split names and reasons are user strings: printed as plain text, never
    as rich markup, with control characters (ESC...) escaped. ``skipped_csv``: the file that lists
    the reasons of every file skipped (None: none was written; the first are shown, and --out says where).
    """
    from rich.table import Table  # noqa: PLC0415

    from .termout import render_compact, use_compact  # noqa: PLC0415

    if use_compact(console):  # narrow terminal or a log: one plain line per item, paths shortened
        return render_compact(audit, console, max_rows=max_rows, skipped_csv=skipped_csv)
    from .present import SKIPPED_NAMED, kinds_said, pair_order, pct, shown_confidence, skipped_where, verdict  # noqa: PLC0415
    from .termout import decision_lines  # noqa: PLC0415

    console.print(verdict(audit) + ".", markup=False, highlight=False, style="bold")
    for text in decision_lines(audit):
        console.print(text, markup=False, highlight=False)
    d = audit.to_dict()
    by_kind = kinds_said(audit)
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
        t.add_row(_text(s), f"{n:,}", str(len([c for c in d["class_counts"].get(s, {}) if c])))
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
            t.add_row(_text(lk["split"]), _text(lk["against"]), f"{lk['images']:,}", f"{lk['total']:,}",
                      pct(lk["fraction"]), _text(", ".join(f"{c or '(none)'} {pct(f)}" for f, c in worst[:3])))
        console.print(t)

    if d["n_label_conflicts"]:
        t = Table(title=f"Label conflicts: {d['n_label_conflicts']} duplicate groups with different labels",
                  title_justify="left")
        t.add_column("group", justify="right")
        t.add_column("labels")
        t.add_column("example")
        for c in d["label_conflicts"][:max_rows]:
            t.add_row(str(c["group"]), _text(", ".join(f"{k} x{v}" for k, v in c["labels"].items())),
                      _text(c["paths"][0]))
        console.print(t)

    cross = audit.cross_split()
    if cross.any():
        recs = audit.pair_records()
        idx = pair_order(audit, cross)[:max_rows]
        t = Table(title=f"Cross-split pairs (top {len(idx)} of {int(cross.sum()):,}, most certain first)",
                  title_justify="left")
        for col in ("a", "b", "kind", "confidence", "score", "detail"):
            t.add_column(col, overflow="fold")
        for k in idx:
            r = recs[k]
            t.add_row(_text(r["a"]), _text(r["b"]), r["kind"], f"{shown_confidence(r, audit.bar):.3f}",
                      f"{r['score']:.3f}", _text(r["detail"]))
        console.print(t)
    from .sources.summary import terminal_lines  # noqa: PLC0415 - patients on both sides, spatial leaks

    for line in terminal_lines(d):
        console.print(line, markup=False, highlight=False)
    if d["n_low_information"]:
        console.print(f"{d['n_low_information']:,} low-information images (flat frames) matched by exact digest only.")
    for w in d["warnings"]:
        console.print("[yellow]warning:[/yellow] " + _esc(w), highlight=False)
    if d["n_skipped"]:
        console.print(f"[yellow]{d['n_skipped']:,} files skipped[/yellow] ({_esc(skipped_where(skipped_csv))}): "
                      + _esc("; ".join(f"{p}: {w}" for p, w in audit.skipped[:SKIPPED_NAMED])), highlight=False)


# --------------------------------------------------------------------------- re-split

def prepare_resplit_out(out: Path, *, force: bool, protect=()) -> None:
    """Check that the new manifest may be written at ``out`` (before the long part runs):
    ``protect`` as for :func:`prepare_out_dir`."""
    out = Path(out)
    check_target(out.parent, list(protect), what=f"the folder of --out {out}", contains=False)
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; --out names the CSV file to write")
    check_writable(out.parent, what=f"the folder of --out {out.name}")
    if not force:
        _refuse_existing_manifest(out)


def is_there(path: Path) -> bool:
    """Whether something is at ``path``; a name longer than the file system allows (a list's
    name beside a ``NEW.csv`` near the limit) names nothing."""
    try:
        return path.exists()
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return False
        raise


def _refuse_existing_manifest(out: Path) -> None:
    """Without ``--force``, the new manifest and the lists beside it (which a run writes or removes)
    are new files."""
    for f in (out, left_out_list(out), dropped_list(out)):
        if is_there(f):
            said = "" if f == out else f" (written or removed beside --out {out.name})"
            raise OutputError(f"{f}: exists{said}; pass --force to overwrite or choose another --out")


def write_resplit(rs, out: str | os.PathLike, *, force: bool = True) -> list[Path]:
    """Write the new manifest (paths relative to its folder) and, if any, ``<stem>.dropped.csv``
    (images dropped) and ``<stem>.skipped.csv`` (files the audit could not read, and entries it
    did not take: left out); such a list an earlier run wrote beside ``out`` is removed when this
    run has none. Runs writing the same ``out`` write their files one run at a time (never a
    mix of two runs' lists); without ``force``, an ``out`` another run wrote meanwhile is kept
    and this one is refused (OutputError)."""
    out = Path(out)
    if out.exists() and out.is_dir():
        raise OutputError(f"{out}: is a folder; --out names the CSV file to write")
    check_target(out.parent, dataset_folders(rs.audit.manifest), what=f"the folder of --out {out}", contains=False)
    make_folder(out.parent)
    with one_writer(out.parent):
        if not force:  # another run may have written it since prepare_resplit_out looked
            _refuse_existing_manifest(out)
        return _write_resplit(rs, out)


def left_out_list(out: str | os.PathLike) -> Path:
    """The list :func:`write_resplit` writes beside the new manifest ``out`` of what the new split
    leaves out: ``<stem>.skipped.csv``."""
    out = Path(out)
    return out.with_name(out.stem + ".skipped.csv")


def dropped_list(out: str | os.PathLike) -> Path:
    """The list :func:`write_resplit` writes beside the new manifest ``out`` of the images
    ``--drop`` left out: ``<stem>.dropped.csv``."""
    out = Path(out)
    return out.with_name(out.stem + ".dropped.csv")


def _write_resplit(rs, out: Path) -> list[Path]:
    m = rs.audit.manifest
    base = out.parent.resolve()

    def rel(r: int) -> str:
        if m.images is not None or (m.source is not None and not m.source.files_are_paths):
            return str(m.paths[r])  # array[i], split/index of a dataset, table[i] of a bytes column
        return Path(os.path.relpath(m.resolve(r).absolute(), base)).as_posix()

    def rel_entry(p: str) -> str:  # a skipped entry: relative to the input's folder (a row: m.csv:7)
        if m.images is not None or (m.source is not None and not m.source.files_are_paths) or m.root is None:
            return p
        q = Path(os.path.relpath(os.path.join(os.path.abspath(m.root), p), base)).as_posix()
        return q + "/" if p.endswith("/") else q

    names, grp = rs.splits, rs.groups_column()
    atomic_write(out, _csv_text(["path", "split", "label", "group"],
                                ({"path": rel(r), "split": names[r], "label": m.labels[r], "group": grp[r]}
                                 for r in rs.kept_rows())))
    written = [out]
    unreadable, not_audited = rs.unreadable_rows(), rs.not_audited()
    if len(unreadable) or not_audited:  # left out of the new split, listed so that nothing is lost silently
        why = dict(rs.audit.features.failures)
        skipped = left_out_list(out)
        atomic_write(skipped, _csv_text(
            ["path", "split", "label", "group", "reason"],
            [*({"path": rel(r), "split": m.splits[r], "label": m.labels[r], "group": m.groups[r],
                "reason": why.get(int(r), "could not be read")} for r in unreadable),
             *({"path": rel_entry(p), "split": "", "label": "", "group": "", "reason": reason}
               for p, reason in not_audited)]))
        written.append(skipped)
    if rs.dropped.any():
        dropped = dropped_list(out)
        why = rs.drop_reasons()
        atomic_write(dropped, _csv_text(
            ["path", "split", "label", "group", "reason"],
            ({"path": rel(r), "split": m.splits[r], "label": m.labels[r], "group": grp[r],
              "reason": why[r]} for r in np.flatnonzero(rs.dropped))))
        written.append(dropped)
    for stale in (left_out_list(out), dropped_list(out)):
        if stale not in written:  # an earlier run's list would describe another split
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno == errno.ENAMETOOLONG:  # NEW.csv's name near the limit: no such list can exist
                    continue
                raise OutputError(f"{stale}: cannot remove this list of an earlier run ({exc.strerror or exc}); "
                                  f"it does not describe {out}") from None
    return written


def render_resplit(rs, console) -> None:
    """Target vs achieved sizes and class shares, moves, remedy, problems, verification.

    As :func:`render_terminal`: plain lines on a narrow console or one that is not a terminal."""
    from rich.table import Table  # noqa: PLC0415

    from .present import furthest_classes, resplit_checks  # noqa: PLC0415
    from .termout import render_resplit_compact, use_compact  # noqa: PLC0415

    if use_compact(console):  # narrow terminal or a log: one plain line per item
        return render_resplit_compact(rs, console)
    d = rs.to_dict()
    console.print(f"[bold]leakscan resplit[/bold] ({d['mode']}, seed {d['seed']}): {_esc(rs.remedy)}; "
                  f"{d['moved']:,} images change split, {d['dropped']:,} dropped.", highlight=False)
    t = Table(title="Split sizes", title_justify="left")
    for col, just in (("split", "left"), ("target", "right"), ("achieved", "right"), ("error", "right"),
                      ("worst class share error", "right")):
        t.add_column(col, justify=just)
    for name, s in d["splits"].items():
        t.add_row(_text(name), f"{s['target']:,}", f"{s['achieved']:,}", f"{100 * s['size_error']:+.2f}%",
                  f"{100 * s['max_class_share_error']:.2f} pp")
    console.print(t)
    # the shares the worst class share error is measured from: each split's mix before (a kept
    # split's, or any with the minimal change), else the overall mix (stratified)
    shown = furthest_classes(d)
    if shown:
        n = len(next(iter(d["splits"].values()))["class_share_original"])
        t = Table(title="Class shares per split, aimed at -> achieved" +
                  (f" (10 furthest of {n} classes)" if n > 10 else ""), title_justify="left")
        t.add_column("class")
        for name in d["splits"]:
            t.add_column(_text(name), justify="right")
        for c in shown:
            t.add_row(_text(c or "(none)"), *(f"{100 * s['class_share_original'][c]:.1f}% -> "
                                              f"{100 * s['class_share_achieved'][c]:.1f}%"
                                              for s in d["splits"].values()))
        console.print(t)
    for p in d["problems"]:
        console.print(f"[yellow]cannot fully meet:[/yellow] {_esc(p)}", highlight=False)
    for sound, sentence in resplit_checks(d):
        console.print(("[green]verified:[/green] " if sound else "[red]not verified:[/red] ") + sentence,
                      highlight=False)
