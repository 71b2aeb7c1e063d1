"""User decisions about pairs: "these two are distinct", "these two are duplicates".

A decisions file is a CSV that lives in the user's repository next to the manifest and is
reviewed like code::

    a,b,decision,note
    train/cat/0565.jpg,test/cat/0012.jpg,distinct,same pose but another cat
    train/dog/0001.jpg,val/dog/0777.jpg,duplicate,

Paths are written as in ``pairs.csv``. Optional columns ``digest_a`` and ``digest_b`` (the
BLAKE2b-128 of the file bytes, hex; the report's "Export decisions" writes them) let a
decision follow a file that moved: a side whose path no longer names an audited image is
matched by content instead, and stands for every audited image with those bytes (the
decision applies to each byte-identical copy).

Three steps:

* :func:`read_decisions` / :func:`load_decisions`: file (or records) -> :class:`Decisions`;
* :meth:`Decisions.match`: decisions + manifest (+ features) -> :class:`MatchedDecisions`,
  must-link and cannot-link *row* pairs plus what did not match;
* :func:`apply_decisions`: a :class:`~leakscan.pairs.PairTable` + matched decisions -> the
  pairs every later stage uses, and :class:`DecisionStats`.

``distinct`` pairs are dropped, and are never grouped through a chain either: when A~B~C
and A/C are marked distinct, the weakest detector links on the strongest path from A to C
are cut until A and C fall apart (links confirmed by a ``duplicate`` decision are never
cut). A chain held only by ``duplicate`` decisions, or a user ``group`` column (a patient
id is a fact, not a guess), cannot be cut: A and C then stay in one group and the
``kept_together`` count says so. ``duplicate`` pairs are always joined; a pair the detector
did not find is added with kind ``exact`` (same pixels) or ``embedding`` and the detail
``user decision``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .errors import InputError
from .manifest import CsvRows, decode_text, path_key
from .output import utf8_text

__all__ = ["Decision", "Decisions", "MatchedDecisions", "DecisionStats", "read_decisions",
           "load_decisions", "apply_decisions", "row_finder", "DECISIONS", "USER_DETAIL"]

DECISIONS = ("distinct", "duplicate")
#: ``detail`` of a pair that exists only because a user said so.
USER_DETAIL = "user decision"
_ALIASES = {"not duplicate": "distinct", "not a duplicate": "distinct", "different": "distinct",
            "same": "duplicate", "dup": "duplicate"}


@dataclass(frozen=True)
class Decision:
    """One row of a decisions file."""

    a: str
    b: str
    decision: str  # "distinct" or "duplicate"
    note: str = ""
    line: int = 0
    digest_a: str = ""
    digest_b: str = ""


def _norm(p: str) -> str:
    """A path as compared: forward slashes, no leading ``./``."""
    s = str(p).strip().replace("\\", "/")
    while s.startswith("./"):
        s = s[2:]
    return str(PurePosixPath(s)) if s else s


def _hex(d: np.ndarray) -> str:
    return bytes(np.asarray(d, np.uint8)).hex()


@dataclass(frozen=True)
class MatchedDecisions:
    """Decisions resolved to manifest rows (pairs ``i < j``).

    Attributes
    ----------
    must_i, must_j : int64 (k,)
        Rows the user says are duplicates.
    cannot_i, cannot_j : int64 (m,)
        Rows the user says are distinct.
    file : str or None
        Where the decisions came from.
    n_entries, unmatched, by_digest : int
        Entries read; entries with a side that names no audited image; sides matched by
        content because the path did not match.
    unmatched_entries : tuple of Decision
        The entries that matched nothing (first 100).
    """

    must_i: np.ndarray
    must_j: np.ndarray
    cannot_i: np.ndarray
    cannot_j: np.ndarray
    file: str | None = None
    n_entries: int = 0
    n_distinct: int = 0
    n_duplicate: int = 0
    unmatched: int = 0
    by_digest: int = 0
    unmatched_entries: tuple = ()
    entries: tuple = ()  # every Decision read (the report's export writes them back)

    @property
    def applied(self) -> int:
        return self.n_distinct + self.n_duplicate

    def must_set(self) -> set:
        return set(zip(self.must_i.tolist(), self.must_j.tolist()))

    def cannot_set(self) -> set:
        return set(zip(self.cannot_i.tolist(), self.cannot_j.tolist()))


@dataclass(frozen=True)
class Decisions:
    """The entries of a decisions file (or of records given in Python)."""

    entries: tuple
    file: str | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def match(self, manifest, features=None) -> MatchedDecisions:
        """Resolve each entry to manifest rows: by path, else by file digest (moved files).

        A side matched by digest stands for every audited image with those bytes.
        """
        rows_of = row_finder(manifest, features, self.file)
        must: dict[tuple, Decision] = {}
        cannot: dict[tuple, Decision] = {}
        n_dist = n_dup = unmatched = moved = 0
        lost = []
        for e in self.entries:
            ra, da = rows_of(e.a, e.digest_a)
            rb, db = rows_of(e.b, e.digest_b)
            if not ra or not rb:
                unmatched += 1
                if len(lost) < 100:
                    lost.append(e)
                continue
            moved += int(da) + int(db)
            target, other = (cannot, must) if e.decision == "distinct" else (must, cannot)
            new = False  # a line repeating an earlier one's decision adds nothing: not counted again
            for x in ra:
                for y in rb:
                    if x == y:
                        continue
                    key = (min(x, y), max(x, y))
                    if key in other:
                        o = other[key]
                        raise InputError(
                            f"{self.file or 'decisions'}: line {e.line} marks {e.a} and {e.b} {e.decision}, "
                            f"line {o.line} marks them {o.decision}; keep one of the two")
                    new |= key not in target
                    target.setdefault(key, e)
            if not new:
                continue
            if e.decision == "distinct":
                n_dist += 1
            else:
                n_dup += 1

        def arrays(d):
            keys = sorted(d)
            return (np.array([k[0] for k in keys], np.int64), np.array([k[1] for k in keys], np.int64))

        mi, mj = arrays(must)
        ci, cj = arrays(cannot)
        return MatchedDecisions(must_i=mi, must_j=mj, cannot_i=ci, cannot_j=cj, file=self.file,
                                n_entries=len(self.entries), n_distinct=n_dist, n_duplicate=n_dup,
                                unmatched=unmatched, by_digest=moved, unmatched_entries=tuple(lost),
                                entries=tuple(self.entries))


def row_finder(manifest, features=None, file=None):
    """``rows_of(path, digest) -> (rows, by_digest)``: the manifest rows a decision's side names.

    By path, however it is spelled (``./``, backslashes, absolute); else by content: the
    digest given, or that of the file at ``path`` (relative to the manifest's root or to the
    decisions ``file``), standing for every audited image with those bytes.
    """
    m = manifest
    by_path: dict[str, list[int]] = {}
    files = m.images is None and m.source is None
    for r, p in enumerate(m.paths.tolist()):
        by_path.setdefault(_norm(p), []).append(r)
        shown = utf8_text(str(p))  # a name that is not UTF-8, as pairs.csv and the report write it
        if shown != p:
            by_path.setdefault(_norm(shown), []).append(r)
        if m.images is not None:  # arrays: "array[2]" and "2" both name row 2
            by_path.setdefault(str(r), []).append(r)
    by_abs: dict[str, list[int]] = {}  # each file's absolute path, made at the first absolute side
    by_digest: dict[str, list[int]] = {}
    if features is not None and m.images is None:
        for r in np.flatnonzero(features.ok).tolist():
            by_digest.setdefault(_hex(features.file_digest[r]), []).append(r)
    root = Path(m.root) if m.root is not None else None
    base = Path(file).parent if file else None

    def rows_of(path: str, digest: str) -> tuple[list[int], bool]:
        rows = by_path.get(_norm(path))
        if not rows and files and os.path.isabs(_norm(path)):
            if not by_abs:
                for r, p in enumerate(m.resolved_paths()):
                    by_abs.setdefault(path_key(p), []).append(r)
            rows = by_abs.get(path_key(_norm(path)))
        if rows:
            return rows, False
        if not by_digest:
            return [], False
        if not digest:  # the file may still exist where the decision says: hash it
            digest = _digest_of(path, root, base)
        return list(by_digest.get(digest.lower(), [])), True

    return rows_of


def _digest_of(path: str, root: Path | None, base: Path | None) -> str:
    """BLAKE2b-128 of a file named in a decision, if it exists (as in ``Features.file_digest``)."""
    p = Path(path)
    for cand in ([p] if p.is_absolute() else [c / p for c in (root, base) if c is not None]):
        try:
            if cand.is_file():
                return hashlib.blake2b(cand.read_bytes(), digest_size=16).hexdigest()
        except OSError:
            continue
    return ""


def _bad(where: str, line: int, msg: str) -> InputError:
    return InputError(f"{where}: line {line}: {msg}")


def read_decisions(path) -> Decisions:
    """Read a decisions CSV (``a,b,decision[,note][,digest_a,digest_b]``).

    Raises
    ------
    InputError
        The file cannot be read, has no ``a``/``b``/``decision`` columns, or a row is bad
        (the message names the file and the line).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); f = os.path.join(d, "decisions.csv")
    >>> _ = open(f, "w").write("a,b,decision,note\\nx.jpg,y.jpg,distinct,two cats\\n")
    >>> [(e.a, e.b, e.decision, e.line) for e in read_decisions(f).entries]
    [('x.jpg', 'y.jpg', 'distinct', 2)]
    """
    where = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{where}: decisions file not found") from None
    except OSError as exc:
        raise InputError(f"{where}: cannot read the decisions file ({exc})") from None
    return _parse(decode_text(raw, where, "the decisions file"), where)


_COLUMNS = ("a", "b", "decision", "note", "digest_a", "digest_b")


def _parse(text: str, where: str) -> Decisions:
    if not text.strip():
        return Decisions((), file=where)
    # the delimiter is the header's (the first line that is not blank or a comment): most of , ; tab
    header_line = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    delim = max(",;\t", key=header_line.count)
    reader = CsvRows(text, delim, where)
    header = None
    entries = []
    last_line = 0
    for row in reader:
        # the line a row starts on, counting line breaks within quoted cells
        line_no, last_line = last_line + 1, reader.line_num
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip().lower() for c in row]
            missing = [c for c in ("a", "b", "decision") if c not in header]
            if missing:
                raise _bad(where, line_no, f"the header must name columns a,b,decision[,note]; "
                                           f"missing {', '.join(missing)} (got {','.join(row)})")
            twice = [c for c in _COLUMNS if header.count(c) > 1]
            if twice:  # which of the two would be meant?
                raise _bad(where, line_no, f"the header names column(s) {', '.join(twice)} more than once "
                                           f"(got {','.join(row)}); keep one of each")
            continue
        rec = dict(zip(header, (c.strip() for c in row)))
        if len(row) < 3:
            raise _bad(where, line_no, f"expected a,b,decision[,note], got {len(row)} field(s)")
        entries.append(_entry(rec, where, line_no))
    return Decisions(tuple(entries), file=where)


def _entry(rec: dict, where: str, line_no: int) -> Decision:
    a, b = rec.get("a", ""), rec.get("b", "")
    if not a or not b:
        raise _bad(where, line_no, "both a and b must name an image")
    dec = str(rec.get("decision", "")).strip().lower()
    dec = _ALIASES.get(dec, dec)
    if dec not in DECISIONS:
        raise _bad(where, line_no, f"decision must be distinct or duplicate, got {rec.get('decision', '')!r}")
    if _norm(a) == _norm(b):
        raise _bad(where, line_no, f"a and b are the same image ({a})")
    digests = []
    for k in ("digest_a", "digest_b"):
        d = str(rec.get(k, "") or "").strip().lower()
        if d and (len(d) != 32 or any(c not in "0123456789abcdef" for c in d)):
            raise _bad(where, line_no, f"{k} must be 32 hex digits (BLAKE2b-128 of the file), got {d!r}")
        digests.append(d)
    return Decision(a=a, b=b, decision=dec, note=str(rec.get("note", "") or ""), line=line_no,
                    digest_a=digests[0], digest_b=digests[1])


def load_decisions(obj) -> Decisions | None:
    """Decisions from a path, a :class:`Decisions`, or records (dicts or ``(a, b, decision[, note])``).

    Examples
    --------
    >>> len(load_decisions([("x.jpg", "y.jpg", "distinct")]))
    1
    >>> load_decisions(None) is None
    True
    """
    if obj is None or isinstance(obj, Decisions):
        return obj
    if isinstance(obj, MatchedDecisions):
        raise TypeError("load_decisions takes a file or records; MatchedDecisions are already matched")
    if isinstance(obj, (str, os.PathLike)):
        return read_decisions(obj)
    entries = []
    for n, r in enumerate(obj, start=1):
        if isinstance(r, dict):
            rec = {str(k).lower(): ("" if v is None else str(v)) for k, v in r.items()}
        else:
            r = list(r)
            if len(r) < 3:
                raise InputError(f"decisions: record {n}: expected (a, b, decision[, note]), got {r!r}")
            rec = dict(zip(("a", "b", "decision", "note"), (str(x) for x in r)))
        entries.append(_entry(rec, "decisions", n))
    return Decisions(tuple(entries), file=None)


# --------------------------------------------------------------------------- applying


@dataclass(frozen=True)
class DecisionStats:
    """What applying decisions did (the ``decisions`` key of ``summary.json``)."""

    matched: MatchedDecisions
    removed: int = 0          # detected pairs dropped because they are marked distinct
    added: int = 0            # duplicate pairs the detector had not found
    confirmed: int = 0        # duplicate pairs the detector had found as well
    links_cut: int = 0        # detector links cut so that distinct images are not grouped via a chain
    kept_together: int = 0    # distinct pairs still joined by duplicate decisions or a user group (cannot be cut)
    promoted: int = 0         # pairs of the possible tier turned into duplicates
    possible: object = None   # the possible tier with decided pairs taken out (when one was given)
    added_pairs: frozenset = field(default_factory=frozenset)  # (i, j) that exist only by a user decision

    def marked_duplicate(self, pairs) -> np.ndarray:
        """Mask over ``pairs``: the pairs the user marked duplicate (links nothing may cut)."""
        m = self.matched
        return np.isin(_keys(pairs.i, pairs.j), _keys(m.must_i, m.must_j))

    def to_dict(self) -> dict:
        m = self.matched
        return {"file": m.file, "applied": m.applied, "distinct": m.n_distinct, "duplicate": m.n_duplicate,
                "unmatched": m.unmatched, "entries": m.n_entries, "matched_by_digest": m.by_digest,
                "pairs_removed": self.removed, "pairs_added": self.added, "links_cut": self.links_cut,
                "kept_together": self.kept_together}


def _take(pt, mask):
    """Rows of a PairTable (every per-pair array field, whatever fields the table has)."""
    n = len(pt)
    upd = {f.name: getattr(pt, f.name)[mask] for f in dataclasses.fields(pt)
           if isinstance(getattr(pt, f.name), np.ndarray) and getattr(pt, f.name).shape[:1] == (n,)}
    return dataclasses.replace(pt, **upd)


def _concat_sorted(pt, extra: dict):
    """``pt`` plus rows given as {field: array}; fields missing from ``extra`` are filled
    (NaN for floats, -1 for ints, False for bools; ``confidence`` 1: a user decision is certain;
    ``offset`` and ``angle`` 0)."""
    k = len(extra["i"])
    if k == 0:
        return pt
    n = len(pt)
    upd = {}
    for f in dataclasses.fields(pt):
        cur = getattr(pt, f.name)
        if not (isinstance(cur, np.ndarray) and cur.shape[:1] == (n,)):
            continue
        shape = (k,) + cur.shape[1:]
        if f.name in extra:
            new = np.asarray(extra[f.name], cur.dtype)
        elif f.name == "confidence":
            new = np.ones(shape, cur.dtype)
        elif f.name in ("offset", "angle"):
            new = np.zeros(shape, cur.dtype)
        elif cur.dtype.kind == "f":
            new = np.full(shape, np.nan, cur.dtype)
        elif cur.dtype.kind == "b":
            new = np.zeros(shape, bool)
        else:
            new = np.full(shape, -1, cur.dtype)
        upd[f.name] = np.concatenate([cur, new])
    order = np.lexsort((upd["j"], upd["i"]))
    return dataclasses.replace(pt, **{name: v[order] for name, v in upd.items()})


def _keys(i, j) -> np.ndarray:
    from .pairs import pair_keys  # noqa: PLC0415 - keeps `import leakscan.decisions` light

    return pair_keys(i, j)


def _measure(features, i, j) -> dict:
    """Evidence columns of user-added pairs: exact when the pixels agree, else embedding."""
    from .pairs import Kind  # noqa: PLC0415

    EXACT, EMBED = int(Kind.EXACT), int(Kind.EMBEDDING)

    k = len(i)
    out = {"i": i, "j": j, "kind": np.full(k, EMBED, np.uint8), "score": np.ones(k, np.float32),
           "hamming": np.full(k, -1, np.int16), "cosine": np.full(k, np.nan, np.float32),
           "variant": np.full(k, -1, np.int8), "same_bytes": np.zeros(k, bool)}
    if features is None or not k:
        return out
    ok = features.ok[i] & features.ok[j]
    same_px = ok & np.all(features.pixel_digest[i] == features.pixel_digest[j], axis=1)
    out["kind"][same_px] = EXACT
    out["same_bytes"] = same_px & np.all(features.file_digest[i] == features.file_digest[j], axis=1)
    cos = np.einsum("kd,kd->k", features.embedding[i].astype(np.float32), features.embedding[j].astype(np.float32))
    out["cosine"] = np.where(ok & ~same_px, cos, np.nan).astype(np.float32)
    out["score"] = np.where(same_px, 1.0, np.clip(np.nan_to_num(cos, nan=0.0), 0.0, 1.0)).astype(np.float32)
    x = np.bitwise_xor(features.hashes[i, 0], features.hashes[j, 0])
    ham = np.unpackbits(x.reshape(k, -1), axis=1).sum(axis=1, dtype=np.int16)
    out["hamming"] = np.where(ok, ham, -1).astype(np.int16)
    return out


def apply_decisions(pairs, decisions: MatchedDecisions, *, features=None, strength=None, possible=None,
                    groups=None):
    """The pairs with the user's decisions applied: a pure function.

    Parameters
    ----------
    pairs : PairTable
        Detected duplicate pairs.
    decisions : MatchedDecisions
        From :meth:`Decisions.match`.
    features : Features, optional
        Used to fill in the evidence (kind, hamming, cosine) of duplicate pairs the detector
        did not find.
    strength : ndarray (len(pairs),), optional
        How sure each detected link is (higher = surer); the weakest links are cut first when
        a chain joins two images marked distinct. Default: a ``confidence`` column if the
        table has one, else ``score``.
    possible : PairTable, optional
        A second tier of less certain pairs: distinct pairs are removed from it, duplicate
        pairs are promoted from it (keeping its evidence). The result is in
        ``stats.possible``.
    groups : array of str, optional
        The manifest's ``group`` of each row (``""``: none): rows of one group stay together
        whatever the links, so no link is cut to part them (``kept_together`` counts them).

    Returns
    -------
    (PairTable, DecisionStats)

    Examples
    --------
    >>> import numpy as np
    >>> from leakscan.pairs import PairTable
    >>> score = np.array([0.9, 0.5], np.float32)   # 0~1 is surer than 1~2
    >>> pt = PairTable(np.array([0, 1]), np.array([1, 2]), np.ones(2, np.uint8), score,
    ...                np.zeros(2, np.int16), np.ones(2, np.float32), np.zeros(2, np.int8), np.zeros(2, bool))
    >>> md = MatchedDecisions(np.array([3]), np.array([4]), np.array([0]), np.array([2]))  # 3~4 duplicate, 0/2 distinct
    >>> out, stats = apply_decisions(pt, md)       # 1~2 is cut, 3~4 added
    >>> list(zip(out.i.tolist(), out.j.tolist())), stats.links_cut
    ([(0, 1), (3, 4)], 1)
    """
    md = decisions
    if strength is None:
        conf = getattr(pairs, "confidence", None)
        strength = np.asarray(conf if conf is not None else pairs.score, np.float64)
        strength = np.where(np.isnan(strength), np.asarray(pairs.score, np.float64), strength)
    strength = np.asarray(strength, np.float64)
    pk = _keys(pairs.i, pairs.j)
    cannot = _keys(md.cannot_i, md.cannot_j)
    must = _keys(md.must_i, md.must_j)

    # 1. distinct: never a direct edge
    drop = np.isin(pk, cannot)
    removed = int(drop.sum())
    # 2. duplicate: always an edge (promoted from the possible tier, else measured)
    found = np.isin(must, pk)
    confirmed = int(found.sum())
    todo = ~found
    promoted = 0
    new_possible = possible
    extra_rows = []
    if possible is not None and len(possible):
        qk = _keys(possible.i, possible.j)
        promote = np.isin(qk, must[todo])
        promoted = int(promote.sum())
        if promoted:
            extra_rows.append(_take(possible, promote))
        new_possible = _take(possible, ~promote & ~np.isin(qk, cannot))
        todo &= ~np.isin(must, qk[promote])
    kept = _take(pairs, ~drop)
    kept_strength = strength[~drop]
    for ex in extra_rows:
        kept = _concat_sorted(kept, {f.name: getattr(ex, f.name) for f in dataclasses.fields(ex)
                                     if isinstance(getattr(ex, f.name), np.ndarray)
                                     and getattr(ex, f.name).shape[:1] == (len(ex),)})
    ai, aj = md.must_i[todo], md.must_j[todo]
    added_pairs = frozenset(zip(ai.tolist(), aj.tolist()))
    kept = _concat_sorted(kept, _measure(features, ai, aj))
    # strengths of the merged table: user-confirmed links can never be cut
    if len(kept) != len(kept_strength):
        ks = dict(zip(_keys(_take(pairs, ~drop).i, _take(pairs, ~drop).j).tolist(), kept_strength.tolist()))
        kept_strength = np.array([ks.get(k, np.inf) for k in _keys(kept.i, kept.j).tolist()], np.float64)
    kept_strength = np.where(np.isin(_keys(kept.i, kept.j), must), np.inf, kept_strength)
    # 3. distinct: never grouped through a chain either
    cut, together = _separate(kept, kept_strength, md.cannot_i, md.cannot_j, groups)
    if cut.any():
        kept = _take(kept, ~cut)
    stats = DecisionStats(matched=md, removed=removed, added=len(added_pairs), confirmed=confirmed,
                          links_cut=int(cut.sum()), kept_together=together, promoted=promoted,
                          possible=new_possible, added_pairs=added_pairs)
    return kept, stats


def _separate(pairs, strength, ci, cj, groups=None):
    """Mask of links to cut so that no (ci, cj) is connected; and how many stay connected.

    For each distinct pair still connected, the widest path (strongest weakest link) is found
    and its weakest cuttable link removed, until the two fall apart. Links of strength ``inf``
    (user duplicates) are never cut, nor are the rows of one user ``groups`` entry parted.
    """
    cut = np.zeros(len(pairs), bool)
    if not len(ci) or not len(pairs):
        return cut, 0
    from .groups import components, group_links  # noqa: PLC0415

    # a user group joins its rows as links that cannot be cut would
    gi, gj = group_links(groups)
    ei, ej = np.r_[np.asarray(pairs.i, np.int64), gi], np.r_[np.asarray(pairs.j, np.int64), gj]
    strength = np.r_[np.asarray(strength, np.float64), np.full(len(gi), np.inf)]
    cut = np.zeros(len(ei), bool)
    n = int(max(ei.max(), ej.max(), ci.max(), cj.max())) + 1
    comp = components(n, ei, ej)
    todo = [(int(a), int(c)) for a, c in zip(ci, cj) if comp[a] == comp[c]]
    if not todo:
        return cut[:len(pairs)], 0
    adj: dict[int, list[tuple[int, int]]] = {}
    hot = set(comp[[a for a, _ in todo]].tolist())
    for e in np.flatnonzero(np.isin(comp[ei], list(hot))).tolist():
        a, b = int(ei[e]), int(ej[e])
        adj.setdefault(a, []).append((b, e))
        adj.setdefault(b, []).append((a, e))
    together = 0
    for a, c in todo:
        for _ in range(10_000):
            path = _widest_path(adj, cut, strength, a, c)
            if path is None:
                break
            cuttable = [e for e in path if np.isfinite(strength[e])]
            if not cuttable:
                together += 1
                break
            cut[min(cuttable, key=lambda e: (strength[e], e))] = True
    return cut[:len(pairs)], together


def _widest_path(adj, cut, strength, src, dst):
    """Edges of the path from src to dst whose weakest link is strongest (None: not connected)."""
    best = {src: np.inf}
    via: dict[int, tuple[int, int]] = {}
    heap = [(-np.inf, src)]
    done = set()
    while heap:
        w, u = heapq.heappop(heap)
        if u in done:
            continue
        done.add(u)
        if u == dst:
            break
        for v, e in adj.get(u, ()):
            if cut[e] or v in done:
                continue
            bw = min(-w, strength[e])
            if bw > best.get(v, -np.inf):
                best[v] = bw
                via[v] = (u, e)
                heapq.heappush(heap, (-bw, v))
    if dst not in done:
        return None
    edges = []
    v = dst
    while v != src:
        u, e = via[v]
        edges.append(e)
        v = u
    return edges


def decide(pairs, decisions, manifest, features, *, possible=None):
    """Load, match and apply ``decisions`` (path, records or :class:`Decisions`) for an audit.

    Returns ``(pairs, stats)``; ``(pairs, None)`` when ``decisions`` is None.
    """
    d = load_decisions(decisions)
    if d is None:
        return pairs, None
    return apply_decisions(pairs, d.match(manifest, features), features=features, possible=possible,
                           groups=manifest.groups)
