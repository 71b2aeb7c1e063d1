"""Compact terminal output: for narrow terminals and for logs (CI, pipes).

Rich tables wrap every long path over three or four lines at 80 columns, and box-drawing
characters make CI logs hard to read. This layout prints one line per item, never wider
than the console: paths are shortened from the middle (``trai…/0565.jpg``) so the file name
stays readable, and everything is plain text (no markup is interpreted in file names). Widths
are terminal cells (:func:`leakscan.present.cells`: ``写真.jpg`` takes 8), not characters.
"""

from __future__ import annotations

import re

from .present import (cells, cut, fit, furthest_classes, kinds_said, pad, pair_order, pct, resplit_checks, shorten,
                      shown_confidence, SKIPPED_NAMED, skipped_header, verdict)
from .safeio import plain

__all__ = ["use_compact", "render_compact", "render_resplit_compact", "decision_lines", "timings_line"]

#: Below this many columns the tables give way to the compact layout.
WIDE = 100


def use_compact(console) -> bool:
    """Compact when the console is narrow or is not a terminal (a log, a pipe)."""
    return console.width < WIDE or not console.is_terminal


def _plain(s) -> str:
    """A user string safe for a terminal: control characters escaped (:func:`leakscan.safeio.plain`)."""
    return plain(s)


def _fit(s: str, width: int) -> str:
    return fit(_plain(s), width)


def _wrap(s: str, width: int, indent: int) -> list[str]:
    """``s`` in lines of at most ``width`` cells, broken at spaces (as :func:`textwrap.wrap`, which
    counts characters), the lines after the first indented by ``indent``; a word longer than a
    line is cut."""
    chunks = [c for c in re.split(r"( +)", s) if c][::-1]  # the next one last
    lines: list[str] = []
    while chunks:
        head = " " * indent if lines else ""
        room = width - cells(head)
        if lines and not chunks[-1].strip():
            chunks.pop()  # no line after the first starts with spaces
        line, used = [], 0
        while chunks and used + cells(chunks[-1]) <= room:
            used += cells(chunks[-1])
            line.append(chunks.pop())
        if chunks and cells(chunks[-1]) > room:  # a word longer than a line: as much as fits here
            word = chunks.pop()
            part = cut(word, room - used) or (word[0] if not line else "")
            line.append(part)
            if word[len(part):]:
                chunks.append(word[len(part):])
        if line and not line[-1].strip():
            line.pop()
        if line:
            lines.append(head + "".join(line))
    return lines


def decision_lines(audit, limit: int = 3) -> list[str]:
    """What the decisions file did, and the first entries that match no audited image."""
    st = getattr(audit, "decisions", None)
    if st is None:
        return []
    dd = st.to_dict()
    out = [f"decisions: {dd['applied']} applied ({dd['distinct']} distinct, {dd['duplicate']} duplicate), "
           f"{dd['unmatched']} match no image ({_plain(dd['file'] or 'records')})"
           + (f"; {dd['links_cut']} chained link(s) cut to keep distinct images apart" if dd["links_cut"] else "")]
    for e in st.matched.unmatched_entries[:limit]:
        out.append(f"  line {e.line}: {_plain(e.a)}, {_plain(e.b)} ({e.decision}): no audited image has "
                   "this path or content; remove the line if the file is gone")
    return out


def timings_line(timings: dict) -> str:
    """``timings: discover 0.16s, decode 19.8s, ... (total 88.3s)`` from ``Audit.timings``."""
    def sec(v: float) -> str:
        return f"{v:.2f}s" if v < 10 else f"{v:.1f}s"
    stages = ", ".join(f"{k} {sec(v)}" for k, v in timings.items() if k != "total")
    return f"timings: {stages}" + (f" (total {sec(timings['total'])})" if "total" in timings else "")


def _lines(console):
    """``(out, line)``: the list of lines, and ``line(s, wrap=, indent=)`` that adds one cut to
    the console's width or (``wrap``) its words carried over to indented lines."""
    w = max(40, console.width)
    out = []

    def line(s: str = "", *, wrap: bool = False, indent: int = 4) -> None:
        if wrap and cells(_plain(s)) > w:
            out.extend(_wrap(_plain(s), w, indent))
        else:
            out.append(_fit(s, w))
    return out, line


def render_resplit_compact(rs, console) -> None:
    """A re-split's report (:func:`leakscan.report.render_resplit`) as plain lines at most
    ``console.width`` wide: sizes, the class shares furthest from their aim, problems, checks."""
    out, line = _lines(console)
    d = rs.to_dict()
    line(f"leakscan resplit ({d['mode']}, seed {d['seed']}): {rs.remedy}; {d['moved']:,} images change split, "
         f"{d['dropped']:,} dropped.", wrap=True)
    if d["splits"]:
        line()
        line("Split sizes: target -> achieved (error), worst class share error")
        sw = max(cells(_plain(name)) for name in d["splits"])
        for name, s in d["splits"].items():
            line(f"  {pad(_plain(name), sw)} {s['target']:>7,} -> {s['achieved']:<7,} ({100 * s['size_error']:+.2f}%)  "
                 f"{100 * s['max_class_share_error']:.2f} pp")
    shown = furthest_classes(d)
    if shown:
        n = len(next(iter(d["splits"].values()))["class_share_original"])
        line()
        line("Class shares per split, aimed at -> achieved" + (f" (10 furthest of {n} classes)" if n > 10 else ""))
        for c in shown:
            line(f"  {_plain(c or '(none)')}: " + ", ".join(
                f"{_plain(name)} {100 * s['class_share_original'][c]:.1f}% -> {100 * s['class_share_achieved'][c]:.1f}%"
                for name, s in d["splits"].items()), wrap=True)
    line()
    for p in d["problems"]:
        line(f"cannot fully meet: {_plain(p)}", wrap=True)
    for sound, sentence in resplit_checks(d):
        line(("verified: " if sound else "not verified: ") + sentence, wrap=True)
    console.out("\n".join(out), highlight=False)


def render_compact(audit, console, *, max_rows: int = 10, skipped_csv="skipped.csv") -> None:
    """The audit summary as plain lines at most ``console.width`` wide (``skipped_csv``: as
    :func:`leakscan.report.render_terminal`'s)."""
    w = max(40, console.width)
    out, line = _lines(console)

    d = audit.to_dict()
    k = kinds_said(audit)
    line(f"leakscan: {verdict(audit)}.", wrap=True)
    line(f"{d['n_images']:,} images ({d['n_skipped']:,} skipped) in {d['elapsed_seconds']:.1f}s; "
         f"{d['n_pairs']:,} duplicate pairs ({', '.join(f'{n:,} {name}' for name, n in k.items())}) "
         f"in {d['n_duplicate_groups']:,} groups.", wrap=True)
    line("splits: " + ", ".join(f"{s} {n:,} ({len([c for c in d['class_counts'].get(s, {}) if c])} classes)"
                                for s, n in d["splits"].items()), wrap=True)
    for text in decision_lines(audit):
        line(text, wrap=True)
    leaks = sorted((lk for lk in d["leaks"] if lk["images"]), key=lambda lk: -lk["fraction"])
    if leaks:
        line()
        line("Leakage: images of a split with a copy in another")
        sw = max(cells(_plain(lk["split"])) for lk in leaks)
        aw = max(cells(_plain(lk["against"])) for lk in leaks)
        for lk in leaks:
            worst = sorted(((v["fraction"], c) for c, v in lk["per_class"].items() if v["images"]), reverse=True)
            head = (f"  {pad(_plain(lk['split']), sw)} -> {pad(_plain(lk['against']), aw)}  {lk['images']:>6,} of "
                    f"{lk['total']:<6,} {pct(lk['fraction']):>6}")
            tail = ", ".join(f"{c or '(none)'} {pct(f)}" for f, c in worst[:3])
            line(head + ("  worst: " + tail if tail else ""), wrap=True,
                 indent=cells(head) + 2 if w - cells(head) >= 40 else 4)
    from .sources.summary import terminal_lines  # noqa: PLC0415 - patients on both sides, spatial leaks

    extra = terminal_lines(d)
    if extra:
        line()
        for text in extra:
            line(_plain(text), wrap=True)
    if d["n_label_conflicts"]:
        line()
        line(f"Label conflicts: {d['n_label_conflicts']} duplicate group(s) with different labels")
        for c in d["label_conflicts"][:max_rows]:
            labels = ", ".join(f"{k} x{v}" for k, v in c["labels"].items())
            head = f"  group {c['group']:<5} {_plain(labels)}  "
            line(head + shorten(_plain(c["paths"][0]), w - cells(head)))
    cross = audit.cross_split()
    if cross.any():
        idx = pair_order(audit, cross)[:max_rows]
        recs = audit.pair_records()
        line()
        line(f"Cross-split pairs: top {len(idx)} of {int(cross.sum()):,}, most certain first")
        kw = max(cells(str(recs[i]["kind"])) for i in idx)
        dw = min(14, max(cells(str(recs[i]["detail"])) for i in idx))
        fixed = 2 + 5 + 1 + kw + 1 + dw + 1 + 2
        apart = (w - fixed) // 2 < 12  # no room for the two paths beside the evidence: a line of their own
        pw = (w - 6) // 2 if apart else (w - fixed) // 2
        for i in idx:
            r = recs[i]
            head = f"  {shown_confidence(r, audit.bar):.3f} {pad(r['kind'], kw)} {pad(_fit(r['detail'], dw), dw)}"
            paths = f"{pad(shorten(_plain(r['a']), pw), pw)}  {shorten(_plain(r['b']), pw)}"
            if apart:
                line(head.rstrip())
                line("    " + paths)
            else:
                line(f"{head} {paths}")
    if d["n_low_information"]:
        line(f"{d['n_low_information']:,} low-information images (flat frames) matched by exact digest only.")
    for wmsg in d["warnings"]:
        line("warning: " + _plain(wmsg), wrap=True)
    if d["n_skipped"]:
        line()
        line(_plain(skipped_header(d["n_skipped"], skipped_csv)) + ":", wrap=True)
        for p, why in audit.skipped[:SKIPPED_NAMED]:
            sp = shorten(_plain(p), max(20, w // 2))
            line(f"  {sp}: {_plain(why)}", wrap=True)
    console.out("\n".join(out), highlight=False)
