"""Words and small pictures shared by the terminal, the HTML report and notebooks.

* :func:`verdict`: the audit in one sentence ("8.7% of test has a copy in train; 46 label
  conflicts");
* :func:`cells`: the columns a string takes on a terminal (a CJK character or an emoji two, a
  combining accent none); :func:`cut`, :func:`fit`, :func:`pad` and :func:`shorten` cut and pad by it;
* :func:`shorten`: a path cut in the middle to fit a width (``trai…/0565.jpg``);
* :func:`pair_order`: the pairs to show first (most certain first);
* :func:`resplit_checks`, :func:`furthest_classes`: what a re-split's report verifies, and the
  classes it shows;
* :func:`notebook_html`: ``Audit._repr_html_``, the headline and the top pairs with
  thumbnails (no script, names escaped).
"""

from __future__ import annotations

import base64
import html
import logging
import unicodedata

import numpy as np

from .output import shown_bar, tier_rounded

log = logging.getLogger(__name__)

__all__ = ["verdict", "cells", "cut", "fit", "pad", "shorten", "pct", "pair_order", "notebook_html", "setting_flags",
           "SETTING_FLAGS", "resplit_checks", "furthest_classes", "skipped_where", "skipped_header", "SKIPPED_NAMED"]

#: DetectSettings field -> the command-line flag that sets it (None: library only).
SETTING_FLAGS = {"max_hamming": "--max-hamming", "min_cosine": "--min-cosine", "min_ncc": "--min-ncc",
                 "transforms": "--transforms", "crops": "--crops / --no-crops", "scope": "--cross-split-only",
                 "model_min_cosine": "--model-min-cosine", "min_confidence": "--min-confidence",
                 "min_precision": "--min-precision", "overlap": "--overlap / --no-overlap",
                 "label_evidence": "--label-evidence / --no-label-evidence",
                 "sure_cosine": None, "ratio": None, "k": None}


def setting_flags(settings: dict) -> list:
    """``[[flag, value], ...]``: the settings under their CLI flag names (library-only ones last)."""
    out, lib = [], []
    for name, value in settings.items():
        flag = SETTING_FLAGS.get(name, None)
        if name in ("crops", "overlap", "label_evidence"):
            flag_name = name.replace("_", "-")
            out.append([f"--{flag_name}" if value else f"--no-{flag_name}", "on" if value else "off"])
        elif name == "scope":
            out.append([flag, "on" if value == "cross" else "off"])
        elif flag:
            out.append([flag, value])
        else:
            lib.append([f"DetectSettings({name}=…) (Python only)", value])
    return out + lib

ELLIPSIS = "…"


def pct(x: float) -> str:
    """A share as a percentage with enough digits to be read: 8.7%, 0.32%, 0%, 100%; a share
    under 1 never reads 100% (99.9%). The report's page says the same (its ``pct``)."""
    if x == 0:
        return "0%"
    if x >= 1:
        return "100%"
    s = f"{100 * x:.1f}%" if x >= 0.01 else f"{100 * x:.2f}%"
    return "99.9%" if s == "100.0%" else s


def kinds_said(audit) -> dict:
    """``{kind: duplicate pairs}`` as the terminal and the headline say them: ``model`` only when
    a model was given (or found pairs), ``keypoint`` only when the keypoint search found some."""
    by_kind = dict(audit.to_dict()["pairs_by_kind"])
    if not by_kind.get("model") and audit.features.model_embedding is None:
        by_kind.pop("model", None)
    if not by_kind.get("keypoint"):
        by_kind.pop("keypoint", None)
    return by_kind


def verdict(audit) -> str:
    """The audit in one sentence, worst leak first.

    Examples: ``8.7% of test has a copy in train; 46 label conflicts``,
    ``No image has a copy in another split; no label conflicts``.
    """
    if not audit.n_images:  # nothing decoded: not "no duplicates"
        n = len(audit.skipped)
        return "No image was audited" + (f" ({n:,} file{'s' if n != 1 else ''} skipped: none could be read)" if n
                                          else "")
    d_leaks = [lk for lk in audit.leaks if lk.images]
    names = list(audit.manifest.split_names)
    parts = []
    if len(names) < 2:
        n = len(audit.pairs)
        parts.append(f"{n:,} duplicate pair{'s' if n != 1 else ''} within one split" if n
                     else "No duplicates found")
    elif not d_leaks:
        parts.append("No image has a copy in another split")
    else:
        # each split once, against the split it leaks into most; the training split last
        best: dict[str, object] = {}
        for lk in d_leaks:
            if lk.split not in best or lk.fraction > best[lk.split].fraction:
                best[lk.split] = lk
        rows = sorted(best.values(), key=lambda lk: (lk.split == "train", -lk.fraction))
        if len(rows) > 1 and rows[-1].split == "train":
            rows = rows[:-1]  # "x% of train has a copy in test" repeats the test figure from the other side
        parts.append("; ".join(f"{pct(lk.fraction)} of {lk.split} has a copy in {lk.against}" for lk in rows[:3]))
    c = len(audit.label_conflicts)
    parts.append(f"{c:,} label conflict{'s' if c != 1 else ''}" if c else "no label conflicts")
    possible = getattr(audit, "possible", None)
    if possible is not None and len(possible):
        cal = getattr(audit, "calibration", None)
        raised = cal is not None and "raised_from" in cal.stats
        parts.append(f"{len(possible):,} possible pair{'s' if len(possible) != 1 else ''} worth a look" + (
            f" (under the bar raised to {shown_bar(cal.threshold):g} so that {audit.settings.min_precision:.0%} of the "
            "duplicate links are expected to be real)" if raised else ""))
    return "; ".join(parts)


#: Unreadable files named where a run reports them (the terminal, ``audit --quiet``); the rest
#: are in skipped.csv.
SKIPPED_NAMED = 3


def skipped_header(n: int, skipped_csv) -> str:
    """The line that introduces the files a run skipped: how many, and where their reasons are."""
    return f"{n:,} file(s) skipped ({skipped_where(skipped_csv)})"


def skipped_where(skipped_csv) -> str:
    """Where the terminal sends the reader for the reasons of the files skipped: ``skipped_csv``, or
    ``--out`` when no such list was written."""
    return f"reasons in {skipped_csv}" if skipped_csv else "--out DIR lists every reason in skipped.csv"


def resplit_checks(d: dict) -> list[tuple[bool, str]]:
    """``(sound, sentence)`` per check of a re-split's report (``Resplit.to_dict()``): the
    duplicate pairs, and the overlapping tiles and multi-frame DICOM files when it has them."""
    n = d["cross_split_pairs_after"]
    out = [(n == 0, f"{n} of the {d['pairs_checked']:,} duplicate pairs cross splits in the new manifest.")]
    if "spatial_links" in d:
        n = d["spatial_links_cross_after"]
        out.append((n == 0, f"{n} of the {d['spatial_links']:,} pairs of overlapping tiles (spatial links) cross "
                            "splits in the new manifest."))
    if d.get("multiframe_files"):
        n = d["frame_links_cross_after"]
        out.append((n == 0, f"the frames of each of the {d['multiframe_files']:,} multi-frame DICOM files lie in "
                            "one split." if n == 0 else
                            f"{n} frame links of {d['multiframe_files']:,} multi-frame DICOM files cross splits in "
                            "the new manifest."))
    return out


def furthest_classes(d: dict, top: int = 10) -> list:
    """The classes of a re-split's report whose share moved furthest from the one aimed at
    (``top`` at most, by name), and ``[]`` when there is one class only."""
    labels = list(next(iter(d["splits"].values()))["class_share_original"]) if d["splits"] else []
    if len(labels) < 2:
        return []
    return sorted(sorted(labels, key=lambda c: -max(abs(s["class_share_achieved"][c] - s["class_share_original"][c])
                                                    for s in d["splits"].values()))[:top])


_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")  # zero-width space, joiners, word joiner, BOM


def _char_cells(ch: str) -> int:
    if unicodedata.category(ch) in ("Mn", "Me") or ch in _ZERO_WIDTH:  # combining: drawn over the one before
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def cells(s: str) -> int:
    """The columns ``s`` takes on a terminal: 2 for a wide or full-width character (CJK, most
    emoji), 0 for a combining mark or a zero-width character, else 1. What the terminal output
    measures, pads and cuts text by (``len`` counts characters).

    >>> cells("写真.jpg"), cells("e\u0301"), cells("a.jpg")
    (8, 1, 5)
    """
    return len(s) if s.isascii() else sum(map(_char_cells, s))


def cut(s: str, width: int) -> str:
    """The longest start of ``s`` at most ``width`` cells wide (a combining mark stays with its letter)."""
    used = 0
    for k, ch in enumerate(s):
        used += _char_cells(ch)
        if used > width:
            return s[:k]
    return s


def _tail(s: str, width: int) -> str:
    """The longest end of ``s`` at most ``width`` cells wide, not starting with a combining mark."""
    used, k = 0, len(s)
    while k and used + _char_cells(s[k - 1]) <= width:
        k -= 1
        used += _char_cells(s[k])
    while k < len(s) and not _char_cells(s[k]):
        k += 1
    return s[k:]


def fit(s: str, width: int) -> str:
    """``s`` cut at its end to at most ``width`` cells, with ``…`` where it was cut."""
    return s if cells(s) <= width else cut(s, max(0, width - 1)) + ELLIPSIS


def pad(s: str, width: int) -> str:
    """``s`` with spaces after it to ``width`` cells (``f"{s:<{width}}"``, by cells)."""
    return s + " " * max(0, width - cells(s))


def shorten(path, width: int) -> str:
    """``path`` cut in the middle to at most ``width`` cells (:func:`cells`), keeping the file name.

    Examples
    --------
    >>> shorten("train/airplane/0565.jpg", 14)
    'trai…/0565.jpg'
    >>> shorten("a.jpg", 14)
    'a.jpg'
    >>> shorten("train/猫/写真0565.jpg", 16)
    'tr…/写真0565.jpg'
    """
    s = str(path)
    if width <= 0 or cells(s) <= width:
        return s
    if width < 4:
        return _tail(s, width)
    slash = s.rfind("/")
    name = s[slash:] if slash >= 0 else s
    if cells(name) + 2 <= width:
        return cut(s, width - cells(name) - 1) + ELLIPSIS + name
    head = cut(s, (width - 1) // 3)
    return head + ELLIPSIS + _tail(s, width - 1 - cells(head))


def shown_confidence(record: dict, bar: float) -> float:
    """The certainty shown beside a pair (a :meth:`~leakscan.audit.Audit.pair_records` row), to
    three decimals: its ``confidence`` on its side of ``bar`` (:func:`~leakscan.output.tier_rounded`),
    or its ``score`` where it has none (a table from before confidences)."""
    conf = record.get("confidence", "")
    if conf == "" or conf is None:
        return round(float(record["score"]), 3)
    return tier_rounded(float(conf), bar, 3)


def pair_order(audit, mask=None) -> np.ndarray:
    """Pair positions, most certain first (``confidence`` when the table has it, else score)."""
    p = audit.pairs
    idx = np.arange(len(p)) if mask is None else np.flatnonzero(mask)
    conf = getattr(p, "confidence", None)
    key = np.asarray(p.score if conf is None else np.where(np.isnan(conf), p.score, conf), np.float64)
    return idx[np.argsort(-key[idx], kind="stable")]


def _thumb_uri(audit, r: int) -> str | None:
    from .decode import DecodeError, thumbnail_data  # noqa: PLC0415

    m = audit.manifest
    if not audit.features.ok[r]:
        return None
    try:
        mime, blob = thumbnail_data(m.images[r] if m.images is not None else m.resolve(r))
    except (DecodeError, OSError) as exc:
        log.info("no thumbnail for %s: %s", m.paths[r], exc)
        return None
    return f"data:{mime};base64," + base64.b64encode(blob).decode("ascii")


def notebook_html(audit, *, top: int = 8) -> str:
    """The headline and the ``top`` most certain pairs (cross-split first) with thumbnails."""
    e = html.escape
    m, p = audit.manifest, audit.pairs
    cross = audit.cross_split()
    order = np.r_[pair_order(audit, cross), pair_order(audit, ~cross)][:top]
    cache: dict[int, str | None] = {}

    def fig(r: int) -> str:
        if r not in cache:
            cache[r] = _thumb_uri(audit, r)
        img = (f'<img src="{cache[r]}" style="width:72px;height:72px;object-fit:contain;background:#eee">'
               if cache[r] else '<div style="width:72px;height:72px;background:#eee"></div>')
        cap = e(str(m.paths[r])) + "<br>" + e(str(m.splits[r])) + (" · " + e(str(m.labels[r])) if m.labels[r] else "")
        return f'<figure style="margin:0;display:inline-block;text-align:center;max-width:160px">{img}' \
               f'<figcaption style="font-size:11px;word-break:break-all">{cap}</figcaption></figure>'

    detail = audit.pair_details() if len(order) else []
    recs = audit.pair_records() if len(order) else []
    kinds = p.kind_names() if len(order) else []
    rows = "".join(
        f"<tr><td>{fig(int(p.i[k]))}</td><td>{fig(int(p.j[k]))}</td>"
        f"<td>{e(str(kinds[k]))}<br>confidence {shown_confidence(recs[k], audit.bar):.3f}"
        f"<br>score {float(p.score[k]):.3f}<br>{e(detail[k])}</td></tr>"
        for k in order.tolist())
    n_cross = int(cross.sum())
    head = (f"<p><b>{e(verdict(audit))}</b></p><p>{audit.n_images:,} images, {len(p):,} duplicate pairs "
            f"({n_cross:,} across splits), {len(audit.skipped):,} skipped.</p>")
    table = (f"<table><thead><tr><th>a</th><th>b</th><th>evidence</th></tr></thead><tbody>{rows}</tbody></table>"
             f"<p>Top {len(order)} of {len(p):,} pairs; <code>leakscan.write_outputs(result, 'out/')</code> writes the "
             "full report.</p>") if len(order) else ""
    return f'<div class="leakscan-audit">{head}{table}</div>'
