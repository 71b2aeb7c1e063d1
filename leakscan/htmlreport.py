"""A self-contained HTML report: thumbnails embedded, no network, no external scripts or fonts.

Everything the user controls (file names, labels, split names) travels as JSON inside a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped, and is put on
the page with ``textContent`` only, so a file named ``<img src=x onerror=alert(1)>.jpg``
shows as text and runs nothing.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ._version import __version__
from .decode import DecodeError, thumbnail_data

log = logging.getLogger(__name__)

__all__ = ["render_html", "MAX_THUMBNAILS"]

#: Thumbnails embedded at most (beyond, images are listed by path only).
MAX_THUMBNAILS = 20_000


def _json_for_script(obj) -> str:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def report_data(audit, *, max_thumbnails: int = MAX_THUMBNAILS, progress=None) -> dict:
    """The JSON document the page renders."""
    m, p, g, f = audit.manifest, audit.pairs, audit.groups, audit.features
    cross = audit.cross_split()
    order = np.argsort(-p.score, kind="stable")
    details = audit.pair_details()
    dup = g.duplicate_groups()
    members = g.members() if len(dup) else []
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
    pairs = [{"a": ref(p.i[k]), "b": ref(p.j[k]), "k": str(kinds[k]), "sc": round(float(p.score[k]), 4),
              "h": int(p.hamming[k]), "c": None if np.isnan(p.cosine[k]) else round(float(p.cosine[k]), 4),
              "v": None if np.isnan(p.ncc[k]) else round(float(p.ncc[k]), 4),
              "d": details[k], "g": int(g.ids[p.i[k]])}
             for k in order[cross[order]].tolist()]
    groups = [{"g": gid, "s": str(m.splits[members[gid][0]]), "m": [ref(r) for r in members[gid]]} for gid in within]
    confl = [{"g": c.group, "labels": c.labels, "m": [ref(r) for r in c.rows]} for c in conflicts]
    lows = [ref(r) for r in low.tolist()[:2000]]

    thumbs: list[str] = []
    images = []
    total = len(involved)
    for n, r in enumerate(involved):
        t = None
        if f.ok[r] and len(thumbs) < max_thumbnails:
            try:
                src = m.images[r] if m.images is not None else m.resolve(r)
                t = len(thumbs)
                mime, blob = thumbnail_data(src)
                thumbs.append(f"data:{mime};base64," + base64.b64encode(blob).decode("ascii"))
            except (DecodeError, OSError) as exc:
                log.info("no thumbnail for %s: %s", m.paths[r], exc)
                t = None
        href = ""
        if m.images is None:
            try:
                href = Path(m.resolve(r)).absolute().as_uri()
            except ValueError:
                href = ""
        images.append({"p": str(m.paths[r]), "s": str(m.splits[r]), "l": str(m.labels[r]), "t": t, "u": href})
        if progress and (n % 500 == 0 or n == total - 1):
            progress("thumbnails", n + 1, total)
    d = audit.to_dict()
    return {
        "meta": {"version": __version__, "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 "source": str(m.root) if m.root is not None else "(in-memory images)",
                 "n_images": d["n_images"], "n_skipped": d["n_skipped"], "n_files": d["n_files"],
                 "splits": d["splits"], "n_pairs": d["n_pairs"], "pairs_by_kind": d["pairs_by_kind"],
                 "n_duplicate_groups": d["n_duplicate_groups"], "settings": d["settings"],
                 "class_counts": d["class_counts"], "n_low_information": d["n_low_information"]},
        "leaks": d["leaks"],
        "images": images,
        "thumbs": thumbs,
        "pairs": pairs,
        "groups": groups,
        "conflicts": confl,
        "lowinfo": lows,
        "skipped": [{"p": str(a), "r": str(b)} for a, b in audit.skipped],
    }


def render_html(audit, *, progress=None) -> str:
    """The whole report as one HTML string."""
    data = report_data(audit, progress=progress)
    return _PAGE.replace("/*DATA*/", _json_for_script(data))


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>leakscan report</title>
<style>
:root{--fg:#1d2433;--mut:#5c6678;--bg:#f6f7f9;--card:#fff;--acc:#c2410c;--ok:#15803d;--line:#e3e6eb}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#111827;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#c7cdd8}
main{padding:18px 28px;max-width:1400px}section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 18px;margin:0 0 18px}
h2{font-size:16px;margin:0 0 10px}.mut{color:var(--mut)}.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:150px}.kpi b{display:block;font-size:22px}
.kpi.bad b{color:var(--acc)}.kpi.good b{color:var(--ok)}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{font-weight:600;color:var(--mut);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.bar{background:#eef0f3;border-radius:3px;height:12px;width:220px;display:inline-block;vertical-align:middle}
.bar i{display:block;height:12px;border-radius:3px;background:var(--acc)}
.pair{display:grid;grid-template-columns:130px 130px 1fr;gap:12px;padding:10px 0;border-bottom:1px solid var(--line)}
.pair figure,.gal figure{margin:0;text-align:center}.pair img,.gal img{width:112px;height:112px;object-fit:contain;background:#f0f1f4;border-radius:4px;image-rendering:auto}
.noimg{width:112px;height:112px;display:flex;align-items:center;justify-content:center;background:#f0f1f4;color:var(--mut);font-size:11px;border-radius:4px}
figcaption{font-size:11px;color:var(--mut);word-break:break-all;max-width:130px}
.tag{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;background:#eef0f3;margin-right:4px}
.tag.exact{background:#fde2e2}.tag.hash{background:#fdf0d5}.tag.embedding{background:#e0ecff}
.gal{display:flex;flex-wrap:wrap;gap:10px;padding:10px 0;border-bottom:1px solid var(--line)}
.filters{display:flex;gap:10px;flex-wrap:wrap;margin:0 0 10px}select{padding:4px}
.pager{margin:10px 0;display:flex;gap:8px;align-items:center}button{padding:4px 10px;border:1px solid var(--line);background:#fff;border-radius:4px;cursor:pointer}
code{font-size:12px;word-break:break-all}a{color:#1d4ed8}
</style></head><body>
<header><h1>leakscan report</h1><p id="sub"></p></header>
<main>
<section id="headline"><h2>Leakage</h2><div class="kpis" id="kpis"></div><div id="leaks"></div></section>
<section id="pairs-sec"><h2>Cross-split pairs <span class="mut" id="pairs-count"></span></h2>
<div class="filters"><label>Split pair <select id="f-split"></select></label><label>Class <select id="f-class"></select></label>
<label>Kind <select id="f-kind"></select></label></div><div id="pairs"></div><div class="pager" id="pairs-pager"></div></section>
<section id="groups-sec"><h2>Duplicate groups inside one split <span class="mut" id="groups-count"></span></h2><div id="groups"></div><div class="pager" id="groups-pager"></div></section>
<section id="conflicts-sec"><h2>Label conflicts <span class="mut" id="conflicts-count"></span></h2><div id="conflicts"></div></section>
<section id="low-sec"><h2>Low-information images <span class="mut" id="low-count"></span></h2><p class="mut">Near-flat images: matched by exact digest only.</p><div class="gal" id="low"></div></section>
<section id="skipped-sec"><h2>Skipped files <span class="mut" id="skipped-count"></span></h2><table><thead><tr><th>file</th><th>reason</th></tr></thead><tbody id="skipped"></tbody></table></section>
<section id="settings-sec"><h2>Settings</h2><table><tbody id="settings"></tbody></table></section>
</main>
<script type="application/json" id="data">/*DATA*/</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const PAGE = 50;
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "class") e.className = v; else e.setAttribute(k, v); }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function pct(x) { return (100 * x).toFixed(2) + "%"; }
function fig(i) {
  const im = D.images[i];
  const f = el("figure", {});
  if (im.t !== null && im.t !== undefined) { const img = el("img", {alt: im.p, loading: "lazy"}); img.src = D.thumbs[im.t]; f.append(img); }
  else f.append(el("div", {class: "noimg"}, "no preview"));
  const cap = el("figcaption", {}, im.p, el("br"), im.s + (im.l ? " · " + im.l : ""));
  if (im.u && im.u.startsWith("file:")) { const a = el("a", {target: "_blank", rel: "noopener"}, " open"); a.href = im.u; cap.append(a); }
  f.append(cap);
  return f;
}
function pager(box, n, page, go) {
  box.replaceChildren();
  const pages = Math.max(1, Math.ceil(n / PAGE));
  if (pages < 2) return;
  const prev = el("button", {}, "‹ prev"), next = el("button", {}, "next ›");
  prev.disabled = page === 0; next.disabled = page >= pages - 1;
  prev.onclick = () => go(page - 1); next.onclick = () => go(page + 1);
  box.append(prev, el("span", {class: "mut"}, `page ${page + 1} of ${pages}`), next);
}
// header + KPIs
const M = D.meta;
document.getElementById("sub").textContent = `${M.source} · ${M.n_images.toLocaleString()} images, ${M.n_skipped} skipped · leakscan ${M.version} · ${M.generated}`;
const kp = document.getElementById("kpis");
const leaked = D.leaks.filter(l => l.images > 0);
kp.append(el("div", {class: "kpi"}, el("b", {}, M.n_pairs.toLocaleString()), "duplicate pairs"));
kp.append(el("div", {class: "kpi"}, el("b", {}, M.n_duplicate_groups.toLocaleString()), "duplicate groups"));
for (const l of D.leaks) kp.append(el("div", {class: "kpi " + (l.images ? "bad" : "good")}, el("b", {}, pct(l.fraction)), `of ${l.split} has a copy in ${l.against} (${l.images.toLocaleString()} of ${l.total.toLocaleString()})`));
kp.append(el("div", {class: "kpi " + (D.conflicts.length ? "bad" : "good")}, el("b", {}, D.conflicts.length), "label conflicts"));
const lk = document.getElementById("leaks");
if (!leaked.length) lk.append(el("p", {}, Object.keys(M.splits).length < 2 ? "One split only: no cross-split leakage to report." : "No image has a duplicate in another split."));
for (const l of leaked) {
  const t = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, `${l.split} → ${l.against}: class`), el("th", {}, "leaked"), el("th", {}, "fraction"), el("th", {}, ""))));
  const tb = el("tbody");
  const rows = Object.entries(l.per_class).sort((a, b) => b[1].fraction - a[1].fraction);
  for (const [c, v] of rows) { const bar = el("span", {class: "bar"}, el("i")); bar.firstChild.style.width = Math.min(100, 100 * v.fraction) + "%";
    tb.append(el("tr", {}, el("td", {}, c || "(no label)"), el("td", {}, `${v.images} of ${v.total}`), el("td", {}, pct(v.fraction)), el("td", {}, bar))); }
  t.append(tb); lk.append(t);
}
// pairs with filters
const fs = document.getElementById("f-split"), fc = document.getElementById("f-class"), fk = document.getElementById("f-kind");
function opts(sel, values) { sel.append(el("option", {value: ""}, "all")); for (const v of values) sel.append(el("option", {value: v}, v || "(none)")); }
const sp = new Set(), cl = new Set(), kd = new Set();
for (const p of D.pairs) { const a = D.images[p.a], b = D.images[p.b]; sp.add([a.s, b.s].sort().join(" ↔ ")); cl.add(a.l); cl.add(b.l); kd.add(p.k); }
opts(fs, [...sp].sort()); opts(fc, [...cl].sort()); opts(fk, [...kd].sort());
let pairPage = 0;
function filtered() {
  return D.pairs.filter(p => { const a = D.images[p.a], b = D.images[p.b];
    return (!fs.value || [a.s, b.s].sort().join(" ↔ ") === fs.value) && (!fc.value || a.l === fc.value || b.l === fc.value) && (!fk.value || p.k === fk.value); });
}
function drawPairs(page) {
  const list = filtered(); pairPage = page;
  document.getElementById("pairs-count").textContent = `(${list.length.toLocaleString()} of ${D.pairs.length.toLocaleString()}, most certain first)`;
  const box = document.getElementById("pairs"); box.replaceChildren();
  if (!list.length) box.append(el("p", {class: "mut"}, "No cross-split pairs."));
  for (const p of list.slice(page * PAGE, (page + 1) * PAGE)) {
    const info = el("div", {}, el("span", {class: "tag " + p.k}, p.k), el("span", {class: "tag"}, "score " + p.sc.toFixed(3)),
      el("span", {class: "tag"}, p.d), el("br"), el("span", {class: "mut"}, `hamming ${p.h} · cosine ${p.c === null ? "–" : p.c.toFixed(3)} · aligned ${p.v === null ? "–" : p.v.toFixed(3)} · group ${p.g}`));
    const a = D.images[p.a], b = D.images[p.b];
    if (a.l && b.l && a.l !== b.l) info.append(el("br"), el("b", {}, `labels differ: ${a.l} / ${b.l}`));
    box.append(el("div", {class: "pair"}, fig(p.a), fig(p.b), info));
  }
  pager(document.getElementById("pairs-pager"), list.length, page, drawPairs);
}
for (const s of [fs, fc, fk]) s.onchange = () => drawPairs(0);
drawPairs(0);
// groups
function drawGroups(page) {
  document.getElementById("groups-count").textContent = `(${D.groups.length.toLocaleString()})`;
  const box = document.getElementById("groups"); box.replaceChildren();
  if (!D.groups.length) box.append(el("p", {class: "mut"}, "None."));
  for (const g of D.groups.slice(page * PAGE, (page + 1) * PAGE)) {
    const gal = el("div", {class: "gal"}, el("div", {class: "mut"}, `group ${g.g} · ${g.s} · ${g.m.length} images`));
    for (const i of g.m.slice(0, 24)) gal.append(fig(i));
    box.append(gal);
  }
  pager(document.getElementById("groups-pager"), D.groups.length, page, drawGroups);
}
drawGroups(0);
// conflicts
document.getElementById("conflicts-count").textContent = `(${D.conflicts.length})`;
const cb = document.getElementById("conflicts");
if (!D.conflicts.length) cb.append(el("p", {class: "mut"}, "None."));
for (const c of D.conflicts.slice(0, 500)) {
  const gal = el("div", {class: "gal"}, el("div", {class: "mut"}, `group ${c.g}: ` + Object.entries(c.labels).map(([k, v]) => `${k} ×${v}`).join(", ")));
  for (const i of c.m.slice(0, 24)) gal.append(fig(i));
  cb.append(gal);
}
// low information, skipped, settings
document.getElementById("low-count").textContent = `(${M.n_low_information})`;
const lo = document.getElementById("low"); for (const i of D.lowinfo.slice(0, 200)) lo.append(fig(i));
if (!D.lowinfo.length) lo.append(el("p", {class: "mut"}, "None."));
document.getElementById("skipped-count").textContent = `(${D.skipped.length})`;
const sk = document.getElementById("skipped");
for (const s of D.skipped.slice(0, 5000)) sk.append(el("tr", {}, el("td", {}, el("code", {}, s.p)), el("td", {}, s.r)));
if (!D.skipped.length) sk.append(el("tr", {}, el("td", {class: "mut"}, "None."), el("td", {})));
const st = document.getElementById("settings");
for (const [k, v] of Object.entries(M.settings)) st.append(el("tr", {}, el("td", {}, k), el("td", {}, String(v))));
for (const [k, v] of Object.entries(M.splits)) st.append(el("tr", {}, el("td", {}, "images in " + k), el("td", {}, v.toLocaleString())));
</script></body></html>
"""
