"""A self-contained HTML report: thumbnails embedded, no network, no external scripts or fonts.

Everything the user controls (file names, labels, split names) travels as JSON inside a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped, and is put on
the page with ``textContent`` only, so a file named ``<img src=x onerror=alert(1)>.jpg``
shows as text and runs nothing.
"""

from __future__ import annotations

import base64
import logging
import os
from urllib.parse import quote
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ._version import __version__
from .decode import DecodeError, thumbnail_data
from .output import json_text, tier_rounded
from .present import pair_order, setting_flags, verdict

log = logging.getLogger(__name__)

__all__ = ["render_html", "MAX_THUMBNAILS"]

#: Thumbnails embedded at most (beyond, images are listed by path only).
MAX_THUMBNAILS = 20_000
#: Possible pairs the page lists at most, most likely first (all of them are in possible.csv).
MAX_POSSIBLE = 5000
#: Pairs marked distinct by a decisions file the page lists at most: a side matched by digest
#: stands for every audited copy with those bytes, so one decision can make many pairs.
MAX_DISTINCT = 5000
#: Cards, galleries or table rows a section shows at a time; its pager reaches all the others.
PAGE_SIZE = 50
#: Images a gallery shows at a time; its own pager reaches all the others.
GALLERY_PAGE_SIZE = 24


def _json_for_script(obj) -> str:
    return (json_text(obj, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _source_thumbnails(m, f, involved: list, digests, limit: int, progress=None) -> dict:
    """The thumbnails ``(mime, bytes)`` (or the exception) of the rows of a RowSource manifest that
    :func:`report_data` embeds: the same rows its loop would decode one by one (one per distinct
    digest, the first ``limit``, a failed row's slot going to the next), decoded in stored order
    (:meth:`~leakscan.sources.rows.RowSource.pictures`), since image bytes in a table are read
    a block at a time."""
    made: dict = {}
    while True:
        want, keys = [], set()
        for r in involved:
            key = digests[r].tobytes()
            if not f.ok[r] or key in keys or isinstance(made.get(r), Exception):
                continue
            if len(keys) >= limit:
                break
            keys.add(key)
            if r not in made:
                want.append(r)
        if not want:
            return made
        for k, (r, img) in enumerate(m.source.pictures(want)):
            try:
                if isinstance(img, Exception):
                    raise img
                made[r] = thumbnail_data(np.asarray(img))
            except Exception as exc:  # noqa: BLE001 - no thumbnail for this one
                made[r] = exc
            if progress and (k % 500 == 0 or k == len(want) - 1):
                progress("thumbnails", k + 1, len(want))


def report_data(audit, *, max_thumbnails: int = MAX_THUMBNAILS, progress=None, out_dir=None) -> dict:
    """The JSON document the page renders.

    ``out_dir``: the folder the report is written to; "open" links are then relative to it,
    so the report works as a CI artifact or a zipped folder.
    """
    m, p, g, f = audit.manifest, audit.pairs, audit.groups, audit.features
    cross = audit.cross_split()
    order = pair_order(audit)  # most certain first
    details = audit.pair_details()
    dup = g.duplicate_groups()
    members = [rows[f.ok[rows]] for rows in g.members()] if len(dup) else []  # audited, as in groups.csv
    within = [gid for gid in dup.tolist() if len(set(m.splits[members[gid]].tolist())) == 1]
    low = audit.low_information
    conflicts = audit.label_conflicts

    involved: list[int] = []
    seen: dict[int, int] = {}

    def ref(r: int) -> int:
        r = int(r)
        if r not in seen:
            seen[r] = len(involved)
            involved.append(r)
        return seen[r]

    kinds = p.kind_names()  # once: the page lists up to every pair
    certainty = _certainty(p)
    has_conf = ~np.isnan(np.asarray(getattr(p, "confidence", np.full(len(p), np.nan)), np.float64))
    bar = audit.bar
    pairs = [{"a": ref(p.i[k]), "b": ref(p.j[k]), "k": str(kinds[k]), "sc": round(float(p.score[k]), 4),
              "cf": tier_rounded(certainty[k], bar, 2) if has_conf[k] else round(float(certainty[k]), 2), "h": int(p.hamming[k]), "c": None if np.isnan(p.cosine[k]) else round(float(p.cosine[k]), 4),
              "v": None if np.isnan(p.ncc[k]) else round(float(p.ncc[k]), 4),
              "d": details[k], "g": int(g.ids[p.i[k]])}
             for k in order[cross[order]].tolist()]
    groups = [{"g": gid, "s": str(m.splits[members[gid][0]]), "m": [ref(r) for r in members[gid]]} for gid in within]
    confl = [{"g": c.group, "labels": c.labels, "m": [ref(r) for r in c.rows]} for c in conflicts]
    review = _review_data(audit, ref)
    lows = [ref(r) for r in low.tolist()]  # every one, last: the thumbnails of pairs to review come first
    if review["user_pairs"]:  # pairs a decisions file confirmed or added show as such
        user = set(review["user_pairs"])
        for rec, k in zip(pairs, (k for k in order.tolist() if cross[k])):
            if k in user:
                rec["u"] = 1

    thumbs: list[str] = []
    images = []
    total = len(involved)
    digests = f.file_digest if m.images is None else f.pixel_digest
    thumb_of: dict[bytes, int] = {}  # one embedded thumbnail per distinct file, however many copies
    # dataset bytes, DICOM frames, GeoTIFF tiles: made beforehand, read in the order they are stored
    made = (_source_thumbnails(m, f, involved, digests, max_thumbnails, progress)
            if m.source is not None and m.images is None else None)
    for n, r in enumerate(involved):
        t = None
        key = digests[r].tobytes()
        if f.ok[r] and key in thumb_of:
            t = thumb_of[key]
        elif f.ok[r] and len(thumbs) < max_thumbnails:
            try:
                if made is not None:
                    got = made.get(r, DecodeError("not read"))
                    if isinstance(got, Exception):
                        raise got
                    mime, blob = got
                else:
                    mime, blob = thumbnail_data(m.images[r] if m.images is not None else m.resolve(r))
                t = len(thumbs)
                thumbs.append(f"data:{mime};base64," + base64.b64encode(blob).decode("ascii"))
                thumb_of[key] = t
            except Exception as exc:  # noqa: BLE001 - the report goes on without this picture
                log.info("no thumbnail for %s: %s", m.paths[r], exc)
                t = None
        href = ""
        if m.images is None and (m.source is None or m.source.files_are_paths):
            href = _href(m, r, out_dir)
        images.append({"p": str(m.paths[r]), "s": str(m.splits[r]), "l": str(m.labels[r]), "t": t, "u": href,
                       "h": digests[r].tobytes().hex() if (f.ok[r] and m.images is None) else ""})
        if progress and (n % 500 == 0 or n == total - 1):
            progress("thumbnails", n + 1, total)
    d = audit.to_dict()
    return {
        "meta": {"version": __version__, "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 "source": str(m.root) if m.root is not None else "(in-memory images)",
                 "n_images": d["n_images"], "n_skipped": d["n_skipped"], "n_files": d["n_files"],
                 "splits": d["splits"], "n_pairs": d["n_pairs"], "pairs_by_kind": d["pairs_by_kind"],
                 "n_duplicate_groups": d["n_duplicate_groups"], "settings": d["settings"],
                 "class_counts": d["class_counts"], "n_low_information": d["n_low_information"],
                 "verdict": verdict(audit), "flags": setting_flags(d["settings"]),
                 "decisions": d.get("decisions"), "warnings": d["warnings"], "n_possible": d["n_possible"]},
        "leaks": d["leaks"],
        "images": images,
        "thumbs": thumbs,
        "pairs": pairs,
        "groups": groups,
        "conflicts": confl,
        "lowinfo": lows,
        "skipped": [{"p": str(a), "r": str(b)} for a, b in audit.skipped],
        "page": {"items": PAGE_SIZE, "gallery": GALLERY_PAGE_SIZE},
        **review,
    }


def _href(m, r: int, out_dir) -> str:
    """The "open" link of row ``r``: relative to the report's folder when known (percent-quoted)."""
    try:
        target = Path(m.resolve(r)).absolute()
        if out_dir is None:
            return target.as_uri()
        rel = Path(os.path.relpath(target, Path(out_dir).absolute())).as_posix()
    except ValueError:  # another drive (Windows) or not absolute
        return ""
    rel = quote(os.fsencode(rel))  # the name's own bytes, UTF-8 or not
    return rel if rel.startswith("../") else "./" + rel


def _review_data(audit, ref) -> dict:
    """What the review part of the page needs: decisions already applied, the possible tier."""
    out = {"decided": [], "distinct": [], "n_distinct": 0, "possible": [], "user_pairs": []}
    st = getattr(audit, "decisions", None)
    if st is not None:
        md = st.matched
        cur = _current_path(audit)
        out["decided"] = [{"a": cur(e.a, e.digest_a), "b": cur(e.b, e.digest_b), "d": e.decision, "n": e.note,
                           "da": e.digest_a, "db": e.digest_b} for e in md.entries]
        out["distinct"] = [[ref(i), ref(j)] for i, j in zip(md.cannot_i[:MAX_DISTINCT].tolist(),
                                                            md.cannot_j[:MAX_DISTINCT].tolist())]
        out["n_distinct"] = len(md.cannot_i)
        must = md.must_set()
        p = audit.pairs
        out["user_pairs"] = [k for k, ij in enumerate(zip(p.i.tolist(), p.j.tolist())) if ij in must]
    poss = getattr(audit, "possible", None)
    if poss is not None and len(poss):
        order = np.argsort(-np.asarray(getattr(poss, "confidence", None) if getattr(poss, "confidence", None) is not None
                                       else poss.score, np.float64), kind="stable")[:MAX_POSSIBLE]
        kinds = poss.kind_names()
        detail = audit.pair_details(poss)  # as possible.csv says it: ``rotated 17 deg``, not ``rotated``
        conf = getattr(poss, "confidence", None)
        out["possible"] = [{"a": ref(poss.i[k]), "b": ref(poss.j[k]), "k": str(kinds[k]), "sc": round(float(poss.score[k]), 4),
                            "cf": None if conf is None or np.isnan(conf[k]) else tier_rounded(conf[k], audit.bar, 2),
                            "d": detail[k]}
                           for k in order.tolist()]
    return out


def _current_path(audit):
    """A decision's file as the page names it (its path in ``pairs.csv``, so a decision made
    again in the page replaces it): the one image it matches, by path however spelled or by
    digest (a moved file); else the path as written."""
    from .decisions import row_finder  # noqa: PLC0415

    m = audit.manifest
    rows_of = row_finder(m, audit.features, audit.decisions.matched.file)

    def cur(path: str, digest: str) -> str:
        rows, _ = rows_of(path, digest)
        return str(m.paths[rows[0]]) if len(rows) == 1 else path
    return cur


def render_html(audit, *, progress=None, out_dir=None) -> str:
    """The whole report as one HTML string (``out_dir``: where it goes, for relative links)."""
    data = report_data(audit, progress=progress, out_dir=out_dir)
    return _PAGE.replace("/*DATA*/", _json_for_script(data))


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>leakscan report</title>
<style>
:root{--fg:#1d2433;--mut:#5c6678;--bg:#f6f7f9;--card:#fff;--acc:#c2410c;--ok:#15803d;--line:#e3e6eb;--dup:#b91c1c;--dis:#1d4ed8}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#111827;color:#fff;padding:14px 28px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}header h1{margin:0;font-size:18px}header p{margin:0;color:#c7cdd8;flex:1}
#review-bar{display:flex;gap:8px;align-items:center}#review-bar span{color:#c7cdd8;font-size:13px}
main{padding:18px 28px}section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 18px;margin:0 0 18px}
h2{font-size:16px;margin:0 0 10px}.mut{color:var(--mut)}#verdict{font-size:22px;margin:0 0 12px;font-weight:600}
.kpis{display:flex;flex-wrap:wrap;gap:10px}
.kpi{border:1px solid var(--line);border-radius:8px;padding:6px 12px;min-width:140px;font-size:13px}.kpi b{display:block;font-size:18px}
.kpi.bad b{color:var(--acc)}.kpi.good b{color:var(--ok)}
details{margin:8px 0}summary{cursor:pointer;font-weight:600}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{font-weight:600;color:var(--mut);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.bar{background:#eef0f3;border-radius:3px;height:12px;width:220px;display:inline-block;vertical-align:middle}
.bar i{display:block;height:12px;border-radius:3px;background:var(--acc)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:12px}
.pair,.ppair,.dpair{border:1px solid var(--line);border-radius:8px;padding:10px;display:grid;grid-template-columns:1fr 1fr;gap:8px;align-content:start}
.pair>.info,.ppair>.info,.dpair>.info{grid-column:1/3;font-size:12px}
.decided-dup{border-color:var(--dup);box-shadow:0 0 0 1px var(--dup)}.decided-dis{border-color:var(--dis);box-shadow:0 0 0 1px var(--dis);opacity:.8}
figure{margin:0;text-align:center;min-width:0}.thumb{width:112px;height:112px;margin:0 auto;background-color:#f0f1f4;background-size:contain;background-repeat:no-repeat;background-position:center;border-radius:4px}
.noimg{width:112px;height:112px;margin:0 auto;display:flex;align-items:center;justify-content:center;background:#f0f1f4;color:var(--mut);font-size:11px;border-radius:4px}
figcaption{font-size:11px;color:var(--mut);word-break:break-all}
.tag{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;background:#eef0f3;margin:0 4px 2px 0}
.tag.exact{background:#fde2e2}.tag.hash{background:#fdf0d5}.tag.embedding{background:#e0ecff}.tag.user{background:#fee2e2;color:var(--dup);font-weight:600}
.gal{border:1px solid var(--line);border-radius:8px;padding:10px;margin:0 0 10px}.gal .figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));gap:8px;margin-top:6px}
.filters{display:flex;gap:10px;flex-wrap:wrap;margin:0 0 10px}select{padding:4px}
.pager{margin:10px 0;display:flex;gap:8px;align-items:center}button{padding:4px 10px;border:1px solid var(--line);background:#fff;border-radius:4px;cursor:pointer;font:inherit;font-size:12px}
.dec{display:flex;gap:6px;margin-top:6px;align-items:center}.dec button.on.dup{background:var(--dup);color:#fff;border-color:var(--dup)}.dec button.on.dis{background:var(--dis);color:#fff;border-color:var(--dis)}
#warnings{margin:0 0 12px;padding-left:20px;color:var(--acc)}
#export{background:#f59e0b;border-color:#f59e0b;color:#111827;font-weight:600}
code{font-size:12px;word-break:break-all}a{color:#1d4ed8}
</style></head><body>
<header><h1>leakscan report</h1><p id="sub"></p><div id="review-bar"><span id="dec-count"></span><button id="export" type="button">Export decisions</button></div></header>
<main>
<section id="headline"><p id="verdict"></p><ul id="warnings" hidden></ul><div class="kpis" id="kpis"></div><div id="leaks"></div></section>
<section id="pairs-sec"><h2>Cross-split pairs <span class="mut" id="pairs-count"></span></h2>
<p class="mut">Mark each pair <b>duplicate</b> or <b>distinct</b>, then <b>Export decisions</b> and pass the file with <code>--decisions</code>: distinct pairs are never reported or grouped again.</p>
<div class="filters"><label>Split pair <select id="f-split"></select></label><label>Class <select id="f-class"></select></label>
<label>Kind <select id="f-kind"></select></label></div><div id="pairs" class="cards"></div><div class="pager" id="pairs-pager"></div></section>
<section id="possible-sec" hidden><h2>Possible pairs, worth a look <span class="mut" id="possible-count"></span></h2><p class="mut">Below the duplicate threshold: not counted as leakage unless you mark them duplicate.</p><div id="possible" class="cards"></div><div class="pager" id="possible-pager"></div></section>
<section id="groups-sec"><h2>Duplicate groups inside one split <span class="mut" id="groups-count"></span></h2><div id="groups"></div><div class="pager" id="groups-pager"></div></section>
<section id="conflicts-sec"><h2>Label conflicts <span class="mut" id="conflicts-count"></span></h2><div id="conflicts"></div><div class="pager" id="conflicts-pager"></div></section>
<section id="distinct-sec" hidden><h2>Marked distinct in the decisions file <span class="mut" id="distinct-count"></span></h2><p class="mut">Not reported as duplicates and never grouped.</p><div id="distinct" class="cards"></div><div class="pager" id="distinct-pager"></div></section>
<section id="low-sec"><h2>Low-information images <span class="mut" id="low-count"></span></h2><p class="mut">Near-flat images: matched by exact digest only.</p><div class="gal"><div class="figs" id="low"></div></div><div class="pager" id="low-pager"></div></section>
<section id="skipped-sec"><h2>Skipped files <span class="mut" id="skipped-count"></span></h2><table><thead><tr><th>file</th><th>reason</th></tr></thead><tbody id="skipped"></tbody></table><div class="pager" id="skipped-pager"></div></section>
<section id="settings-sec"><h2>Settings</h2><table><tbody id="settings"></tbody></table></section>
</main>
<script type="application/json" id="data">/*DATA*/</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const PAGE = D.page.items, GALLERY_PAGE = D.page.gallery;
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "class") e.className = v; else e.setAttribute(k, v); }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function pct(x) {  // as leakscan.present.pct: the verdict and the figures agree
  if (!x) return "0%"; if (x >= 1) return "100%";
  const p = 100 * x, s = (p >= 1 ? p.toFixed(1) : p.toFixed(2)) + "%";
  return s === "100.0%" ? "99.9%" : s;
}
// one CSS rule per embedded thumbnail: N copies of an image share it
(function () {
  const css = D.thumbs.map((u, k) => `.t${k}{background-image:url("${u}")}`).join("\n");
  document.head.append(el("style", {}, css));
})();
function fig(i) {
  const im = D.images[i];
  const f = el("figure", {});
  if (im.t !== null && im.t !== undefined) f.append(el("div", {class: "thumb t" + im.t, role: "img", "aria-label": im.p}));
  else f.append(el("div", {class: "noimg"}, "no preview"));
  const cap = el("figcaption", {}, im.p, el("br"), im.s + (im.l ? " · " + im.l : ""));
  if (im.u && (im.u.startsWith("./") || im.u.startsWith("../") || im.u.startsWith("file:"))) {
    const a = el("a", {target: "_blank", rel: "noopener"}, " open"); a.href = im.u; cap.append(a); }
  f.append(cap);
  return f;
}
// every list of the page is shown a page at a time, with this one pager: all a section counts can be reached
function pager(box, n, size, page, go) {
  box.replaceChildren();
  const pages = Math.max(1, Math.ceil(n / size));
  if (pages < 2) return;
  const prev = el("button", {}, "‹ prev"), next = el("button", {}, "next ›");
  prev.disabled = page === 0; next.disabled = page >= pages - 1;
  prev.onclick = () => go(page - 1); next.onclick = () => go(page + 1);
  box.append(prev, el("span", {class: "mut"}, `page ${page + 1} of ${pages}`), next);
}
function showPage(box, pagerBox, items, show, page = 0, size = PAGE) {
  box.replaceChildren(...items.slice(page * size, (page + 1) * size).map(show));
  pager(pagerBox, items.length, size, page, p => showPage(box, pagerBox, items, show, p, size));
}
// ---- review: decisions made in this page, exported as the decisions CSV
const DEC = new Map();
function dkey(a, b) { return a < b ? a + "\u0000" + b : b + "\u0000" + a; }
for (const e of D.decided) DEC.set(dkey(e.a, e.b), {a: e.a, b: e.b, d: e.d, n: e.n || "", da: e.da || "", db: e.db || "", file: true});
let changed = 0;
function refKey(ia, ib) { return dkey(D.images[ia].p, D.images[ib].p); }
function stateOf(refPairs) {
  const ds = refPairs.map(([a, b]) => (DEC.get(refKey(a, b)) || {}).d);
  return ds.length && ds.every(d => d === ds[0]) ? ds[0] : (ds.some(d => d) ? "mixed" : "");
}
function decide(refPairs, d, clear) {
  const cur = stateOf(refPairs);
  if (cur !== d) for (const [ia, ib] of clear || []) DEC.delete(refKey(ia, ib));  // a gallery is one or the other
  for (const [ia, ib] of refPairs) {
    const k = refKey(ia, ib);
    if (cur === d) { DEC.delete(k); continue; }   // pressed again: undo
    const A = D.images[ia], B = D.images[ib], old = DEC.get(k);
    DEC.set(k, {a: A.p, b: B.p, d: d, n: old ? old.n : "", da: A.h || "", db: B.h || "", file: false});
  }
  changed += 1; countDecisions();
}
function decButtons(refPairs, card, disPairs) {
  const dupP = refPairs, disP = disPairs || refPairs;
  const box = el("div", {class: "dec"});
  const dup = el("button", {type: "button", class: "dup", "data-decision": "duplicate"}, "duplicate");
  const dis = el("button", {type: "button", class: "dis", "data-decision": "distinct"}, "distinct");
  const note = el("span", {class: "mut"});
  function paint() {
    const sd = stateOf(dupP), si = stateOf(disP);
    const s = sd === "duplicate" ? "duplicate" : (si === "distinct" ? "distinct" : "");
    dup.classList.toggle("on", s === "duplicate"); dis.classList.toggle("on", s === "distinct");
    const fromFile = (s === "duplicate" ? dupP : disP).some(([a, b]) => (DEC.get(refKey(a, b)) || {}).file);
    note.textContent = s ? (fromFile ? "decided (decisions file)" : "decided here") : "";
    if (card) { card.classList.toggle("decided-dup", s === "duplicate"); card.classList.toggle("decided-dis", s === "distinct"); }
  }
  dup.onclick = () => { decide(dupP, "duplicate", disP); paint(); };
  dis.onclick = () => { decide(disP, "distinct", dupP); paint(); };
  paint();
  box.append(dup, dis, note);
  return box;
}
function csvField(v) { v = String(v == null ? "" : v); return /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; }
// a line of the decisions file starting with "#" is a comment, and a cell starting with = + - @
// is a formula to a spreadsheet: such a path is written ./#..., ./=... (the same file), a note '=...
function csvPath(p) { return /^[#=+\-@\t\r]/.test(p) ? "./" + p : p; }
function csvText(t) { t = String(t == null ? "" : t); return /^[=+\-@\t\r]/.test(t) ? "'" + t : t; }
function decisionsCSV() {
  const rows = [["a", "b", "decision", "note", "digest_a", "digest_b"]];
  for (const e of DEC.values()) rows.push([csvPath(e.a), csvPath(e.b), e.d, csvText(e.n), e.da, e.db]);
  return rows.map(r => r.map(csvField).join(",")).join("\n") + "\n";
}
window.leakscanDecisionsCSV = decisionsCSV;
function countDecisions() {
  const n = DEC.size, f = [...DEC.values()].filter(e => e.file).length;
  document.getElementById("dec-count").textContent = `${n} decision${n === 1 ? "" : "s"}` + (f ? ` (${f} from the decisions file)` : "");
}
document.getElementById("export").onclick = () => {
  const url = URL.createObjectURL(new Blob([decisionsCSV()], {type: "text/csv"}));
  const a = el("a", {download: "decisions.csv"}); a.href = url; document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  exported = decisionsCSV();
};
// the decisions live in this page only: leaving or reloading it with some not exported asks first
let exported = decisionsCSV();
window.addEventListener("beforeunload", e => { if (decisionsCSV() !== exported) { e.preventDefault(); e.returnValue = ""; } });
countDecisions();
// ---- header, verdict, KPIs, per-class tables (collapsed, 0% rows hidden)
const M = D.meta;
document.getElementById("sub").textContent = `${M.source} · ${M.n_images.toLocaleString()} images, ${M.n_skipped} skipped · leakscan ${M.version} · ${M.generated}`;
document.getElementById("verdict").textContent = M.verdict + ".";
const wl = document.getElementById("warnings");  // summary.json "warnings": worth reading before acting
for (const w of M.warnings || []) wl.append(el("li", {}, w));
wl.hidden = !wl.children.length;
const kp = document.getElementById("kpis");
const leaked = D.leaks.filter(l => l.images > 0);
kp.append(el("div", {class: "kpi"}, el("b", {}, M.n_pairs.toLocaleString()), "duplicate pairs"));
kp.append(el("div", {class: "kpi"}, el("b", {}, M.n_duplicate_groups.toLocaleString()), "duplicate groups"));
for (const l of D.leaks) kp.append(el("div", {class: "kpi " + (l.images ? "bad" : "good")}, el("b", {}, pct(l.fraction)), `of ${l.split} has a copy in ${l.against} (${l.images.toLocaleString()} of ${l.total.toLocaleString()})`));
kp.append(el("div", {class: "kpi " + (D.conflicts.length ? "bad" : "good")}, el("b", {}, D.conflicts.length), "label conflicts"));
if (M.decisions) kp.append(el("div", {class: "kpi"}, el("b", {}, M.decisions.applied), `decisions applied (${M.decisions.distinct} distinct, ${M.decisions.duplicate} duplicate, ${M.decisions.unmatched} unmatched)`));
const lk = document.getElementById("leaks");
for (const l of leaked) {
  const rows = Object.entries(l.per_class).filter(([c, v]) => v.images > 0).sort((a, b) => b[1].fraction - a[1].fraction);
  const hidden = Object.keys(l.per_class).length - rows.length;
  const det = el("details", {class: "per-class"}, el("summary", {}, `${l.split} → ${l.against}: ${pct(l.fraction)} per class (${rows.length} class${rows.length === 1 ? "" : "es"} with a copy` + (hidden ? `; ${hidden} at 0% not shown)` : ")")));
  const t = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "class"), el("th", {}, "leaked"), el("th", {}, "fraction"), el("th", {}, ""))));
  const tb = el("tbody");
  for (const [c, v] of rows) { const bar = el("span", {class: "bar"}, el("i")); bar.firstChild.style.width = Math.min(100, 100 * v.fraction) + "%";
    tb.append(el("tr", {}, el("td", {}, c || "(no label)"), el("td", {}, `${v.images} of ${v.total}`), el("td", {}, pct(v.fraction)), el("td", {}, bar))); }
  t.append(tb); det.append(t); lk.append(det);
}
// ---- pair cards
function pairCard(p, cls) {
  const card = el("div", {class: cls});
  const info = el("div", {class: "info"}, el("span", {class: "tag " + p.k}, p.k));
  if (p.sc !== undefined) info.append(el("span", {class: "tag"}, "score " + p.sc.toFixed(3)));
  if (p.cf !== undefined && p.cf !== null) info.append(el("span", {class: "tag"}, "confidence " + p.cf.toFixed(2)));
  if (p.d) info.append(el("span", {class: "tag"}, p.d));
  if (p.u) info.append(el("span", {class: "tag user"}, "duplicate: decisions file"));
  if (p.h !== undefined) info.append(el("br"), el("span", {class: "mut"}, `hamming ${p.h} · cosine ${p.c === null ? "–" : p.c.toFixed(3)} · aligned ${p.v === null ? "–" : p.v.toFixed(3)} · group ${p.g}`));
  const a = D.images[p.a], b = D.images[p.b];
  if (a.l && b.l && a.l !== b.l) info.append(el("br"), el("b", {}, `labels differ: ${a.l} / ${b.l}`));
  info.append(decButtons([[p.a, p.b]], card));
  card.append(fig(p.a), fig(p.b), info);
  return card;
}
const fs = document.getElementById("f-split"), fc = document.getElementById("f-class"), fk = document.getElementById("f-kind");
function opts(sel, values) { sel.append(el("option", {value: ""}, "all")); for (const v of values) sel.append(el("option", {value: v}, v || "(none)")); }
const sp = new Set(), cl = new Set(), kd = new Set();
for (const p of D.pairs) { const a = D.images[p.a], b = D.images[p.b]; sp.add([a.s, b.s].sort().join(" ↔ ")); cl.add(a.l); cl.add(b.l); kd.add(p.k); }
opts(fs, [...sp].sort()); opts(fc, [...cl].sort()); opts(fk, [...kd].sort());
function filtered() {  // "all" is each list's first option ("(none)", images without a label, has the value "" too)
  const all = sel => sel.selectedIndex <= 0;
  return D.pairs.filter(p => { const a = D.images[p.a], b = D.images[p.b];
    return (all(fs) || [a.s, b.s].sort().join(" ↔ ") === fs.value) && (all(fc) || a.l === fc.value || b.l === fc.value) && (all(fk) || p.k === fk.value); });
}
function drawPairs() {
  const list = filtered();
  document.getElementById("pairs-count").textContent = `(${list.length.toLocaleString()} of ${D.pairs.length.toLocaleString()}, most certain first)`;
  const box = document.getElementById("pairs");
  showPage(box, document.getElementById("pairs-pager"), list, p => pairCard(p, "pair"));
  if (!list.length) box.append(el("p", {class: "mut"}, "No cross-split pairs."));
}
for (const s of [fs, fc, fk]) s.onchange = drawPairs;
drawPairs();
// ---- the possible tier (only when the audit has one)
if (D.possible.length) { document.getElementById("possible-sec").hidden = false;
  const all = M.n_possible === undefined ? D.possible.length : M.n_possible;  // the page lists the most likely
  document.getElementById("possible-count").textContent = D.possible.length < all
    ? `(${all.toLocaleString()}; the ${D.possible.length.toLocaleString()} most likely shown, all in possible.csv)`
    : `(${all.toLocaleString()}, most likely first)`;
  showPage(document.getElementById("possible"), document.getElementById("possible-pager"), D.possible, p => pairCard(p, "ppair")); }
// ---- groups and conflicts: one decision for the whole gallery
function star(m) { return m.slice(1).map(x => [m[0], x]); }
function allPairs(m) {  // "distinct" on a gallery: no two of its images are copies (star beyond 30 images)
  if (m.length > 30) return star(m);
  const out = []; for (let x = 0; x < m.length; x++) for (let y = x + 1; y < m.length; y++) out.push([m[x], m[y]]);
  return out;
}
function gallery(title, members) {
  const gal = el("div", {class: "gal"}, el("div", {class: "mut"}, title));
  gal.append(decButtons(star(members), gal, allPairs(members)));
  const figs = el("div", {class: "figs"}), figsPager = el("div", {class: "pager"});
  showPage(figs, figsPager, members, fig, 0, GALLERY_PAGE);
  gal.append(figs, figsPager);
  return gal;
}
// a section's list (element #name, its pager #name-pager), or "None."
function section(name, items, show, none = () => el("p", {class: "mut"}, "None.")) {
  const box = document.getElementById(name);
  showPage(box, document.getElementById(name + "-pager"), items, show);
  if (!items.length) box.append(none());
}
document.getElementById("groups-count").textContent = `(${D.groups.length.toLocaleString()})`;
section("groups", D.groups, g => gallery(`group ${g.g} · ${g.s} · ${g.m.length} images`, g.m));
document.getElementById("conflicts-count").textContent = `(${D.conflicts.length.toLocaleString()})`;
section("conflicts", D.conflicts, c => gallery(`group ${c.g}: ` + Object.entries(c.labels).map(([k, v]) => `${k} ×${v}`).join(", "), c.m));
// ---- decisions already applied: distinct pairs (at most MAX_DISTINCT of them embedded, the count is all)
if (D.distinct.length) { document.getElementById("distinct-sec").hidden = false;
  const all = D.n_distinct, file = (M.decisions && M.decisions.file) || "the decisions given";
  document.getElementById("distinct-count").textContent = D.distinct.length < all
    ? `(${all.toLocaleString()}; the first ${D.distinct.length.toLocaleString()} shown, all from the decisions in ${file})`
    : `(${all.toLocaleString()})`;
  section("distinct", D.distinct, ([a, b]) => pairCard({a: a, b: b, k: "distinct", d: "decisions file"}, "dpair")); }
// ---- low information, skipped, settings (under their command-line flags)
document.getElementById("low-count").textContent = `(${M.n_low_information.toLocaleString()})`;
section("low", D.lowinfo, fig);
document.getElementById("skipped-count").textContent = `(${D.skipped.length.toLocaleString()})`;
section("skipped", D.skipped, s => el("tr", {}, el("td", {}, el("code", {}, s.p)), el("td", {}, s.r)),
        () => el("tr", {}, el("td", {class: "mut"}, "None."), el("td", {})));
const st = document.getElementById("settings");
for (const [k, v] of M.flags) st.append(el("tr", {}, el("td", {}, el("code", {}, k)), el("td", {}, String(v))));
if (M.decisions) st.append(el("tr", {}, el("td", {}, el("code", {}, "--decisions")), el("td", {}, String(M.decisions.file || "(records)"))));
for (const [k, v] of Object.entries(M.splits)) st.append(el("tr", {}, el("td", {}, "images in " + k), el("td", {}, v.toLocaleString())));
</script></body></html>
"""


def _certainty(p) -> np.ndarray:
    """Each pair's confidence (the order of :func:`leakscan.present.pair_order`; score without one)."""
    conf = getattr(p, "confidence", None)
    return np.asarray(p.score if conf is None else np.where(np.isnan(conf), p.score, conf), np.float64)
