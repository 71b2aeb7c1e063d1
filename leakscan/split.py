"""Group-aware stratified re-splitting.

The assignment works on *units* (duplicate groups, merged with user groups), never on single
images, so a unit never straddles two splits. Within that constraint it keeps each class's
share in each split as close as possible to the target, and moves as few images as possible.

Three entry points:

* :func:`assign_splits` — the core: units + labels (+ current splits) -> new split per row.
* :func:`resplit` — the same from an :class:`~leakscan.audit.Audit`, with a report.
* :class:`StratifiedGroupShuffleSplit`, :func:`train_test_split`, :func:`find_groups` — the
  scikit-learn-shaped API.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .errors import ConfigError
from .groups import build_groups
from .pairs import PairTable
from .decide import find_pairs
from .settings import RANDOM_STATE

log = logging.getLogger(__name__)

__all__ = ["Assignment", "assign_splits", "parse_ratios", "resplit", "Resplit"]

DROPPED = ""


def parse_ratios(text: str | Mapping[str, float] | None) -> dict[str, float] | None:
    """``"train=0.8,val=0.1,test=0.1"`` -> ``{"train": 0.8, "val": 0.1, "test": 0.1}``, normalised to sum 1.

    Examples
    --------
    >>> parse_ratios("train=8,test=2")
    {'train': 0.8, 'test': 0.2}
    """
    if text is None:
        return None
    if isinstance(text, Mapping):
        items = [(str(k), float(v)) for k, v in text.items()]
    else:
        items = []
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            name, eq, val = part.partition("=")
            try:
                if not eq:
                    raise ValueError
                items.append((name.strip(), float(val)))
            except ValueError:
                raise ConfigError(f"ratios must look like train=0.8,val=0.1,test=0.1; cannot read {part!r}") from None
    if not items:
        raise ConfigError("ratios are empty; give them as train=0.8,val=0.1,test=0.1")
    names = [n for n, _ in items]
    if len(set(names)) != len(names) or any(not n for n in names):
        raise ConfigError(f"ratios name each split once, got {', '.join(names)}")
    bad = [f"{n}={v}" for n, v in items if not (v > 0 and math.isfinite(v))]
    if bad:
        raise ConfigError(f"ratios must be positive numbers, got {', '.join(bad)}")
    total = sum(v for _, v in items)
    return {n: v / total for n, v in items}


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers summing to ``total``, proportional to ``weights``."""
    w = np.asarray(weights, dtype=np.float64)
    if total <= 0 or w.sum() <= 0:
        return np.zeros(len(w), np.int64)
    raw = w / w.sum() * total
    base = np.floor(raw).astype(np.int64)
    rest = int(total - base.sum())
    if rest:
        order = np.argsort(-(raw - base), kind="stable")
        base[order[:rest]] += 1
    return base


def _controlled_rounding(class_tot: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Integer (split, class) targets: each class sums to its total, each split to its share of all."""
    raw = np.outer(w / w.sum(), class_tot.astype(np.float64))  # (S, C)
    base = np.floor(raw).astype(np.int64)
    size_t = _largest_remainder(int(class_tot.sum()), w)
    frac = raw - base
    for c in np.argsort(-frac.sum(axis=0), kind="stable"):
        rest = int(class_tot[c] - base[:, c].sum())
        for _ in range(rest):
            short = size_t - base.sum(axis=1)
            s = int(np.lexsort((-frac[:, c], -short))[0])
            base[s, c] += 1
            frac[s, c] = -1.0
    return base


@dataclass(frozen=True)
class Assignment:
    """Result of :func:`assign_splits`.

    Attributes
    ----------
    split_names : list of str
    splits : ndarray of int64 (n,)
        Index into ``split_names`` per row, -1 for dropped rows.
    target : ndarray (n_splits, n_classes)
        Target image counts per split and class.
    moved : int
        Rows whose split changed (dropped rows not counted).
    forced : int
        Rows of other splits that had a duplicate in a kept split (joined it, or dropped).
    problems : list of str
        Constraints that could not all be met, with by how much.
    """

    split_names: list
    splits: np.ndarray
    target: np.ndarray
    moved: int
    forced: int
    problems: list = field(default_factory=list)
    share_target: np.ndarray | None = None  # (n_splits, n_classes) class share each split aims at

    @property
    def dropped(self) -> np.ndarray:
        return self.splits < 0

    def names(self) -> np.ndarray:
        arr = np.array(list(self.split_names) + [DROPPED], dtype=object)
        return arr[self.splits]


def check_random_state(random_state, name: str = "random_state") -> np.random.Generator:
    """A numpy Generator from None, an int >= 0, a Generator, a RandomState or a SeedSequence.

    Raises ConfigError (a ValueError) for anything else, such as ``'abc'`` or ``1.5``.
    """
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    ok = (random_state is None or isinstance(random_state, (np.random.Generator, np.random.SeedSequence,
                                                            np.random.BitGenerator))
          or (isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)
              and random_state >= 0))
    if not ok:
        raise ConfigError(f"{name} must be None, an int >= 0 or a numpy Generator, got {random_state!r}")
    return np.random.default_rng(random_state)


def assign_splits(
    units: np.ndarray,
    labels: np.ndarray,
    *,
    ratios: Mapping[str, float] | None = None,
    current: np.ndarray | None = None,
    keep: Sequence[str] = (),
    drop: bool = False,
    shuffle: bool = False,
    random_state=RANDOM_STATE,
) -> Assignment:
    """Assign each row a split so that no unit straddles two splits.

    Parameters
    ----------
    units : array of int (n,)
        Unit (group) id per row; rows of one unit end in one split.
    labels : array (n,)
        Class per row (any hashable; use one value for unlabelled data).
    ratios : mapping split -> fraction, optional
        Target shares; default: the current split sizes.
    current : array of str (n,), optional
        Current split per row. Required for the minimal-change mode and for ``keep``.
    keep : sequence of str
        Splits whose rows never change. Rows of other splits in a unit with a kept row join
        the kept split (or are dropped with ``drop=True``).
    drop : bool
        With ``keep``: drop those rows instead of moving them.
    shuffle : bool
        Ignore the current assignment and draw a fresh stratified split.
    random_state : int, numpy Generator or None
        Seed of the random choices (default 0, as :func:`resplit`); None draws a fresh one.

    Returns
    -------
    Assignment

    Examples
    --------
    >>> units = np.array([0, 0, 1, 2, 3, 4])
    >>> a = assign_splits(units, np.zeros(6), ratios={"train": 0.5, "test": 0.5}, shuffle=True, random_state=0)
    >>> bool(a.splits[0] == a.splits[1])
    True
    """
    rng = check_random_state(random_state)
    units = np.asarray(units)
    n = len(units)
    if len(labels) != n:
        raise ConfigError(f"labels has {len(labels)} entries, units has {n}")
    if current is not None:
        current = np.asarray(current, dtype=object)
        if len(current) != n:
            raise ConfigError(f"current has {len(current)} entries, units has {n}")
    keep = list(keep or [])
    if (keep or not shuffle) and current is None:
        raise ConfigError("keep and the minimal-change mode need the current splits; pass current= or shuffle=True")

    # ---- split names and target ratios
    if ratios is None:
        if current is None:
            raise ConfigError("give ratios (e.g. train=0.8,test=0.2) or the current splits")
        names, counts = np.unique(current.astype(str), return_counts=True)
        ratios = {str(k): c / n for k, c in zip(names, counts)}
        ratios_given = False
    else:
        ratios = dict(ratios)
        ratios_given = True
    from .manifest import order_splits  # noqa: PLC0415
    split_names = order_splits(ratios)
    for k in keep:
        if current is not None and k not in set(current.tolist()):
            raise ConfigError(f"--keep {k}: no image is in split {k!r} (splits: {', '.join(sorted(set(current)))})")
        if k not in ratios:
            ratios[k] = float(np.mean(current == k))
            split_names = order_splits(ratios)
    S = len(split_names)
    sidx = {s: i for i, s in enumerate(split_names)}
    if current is not None:
        unknown = sorted(set(current.tolist()) - set(split_names))
        if unknown and not shuffle:
            log.info("rows in splits %s are reassigned to %s", unknown, split_names)
        cur = np.array([sidx.get(s, -1) for s in current], np.int64)
    else:
        cur = np.full(n, -1, np.int64)

    _, ucode = np.unique(units, return_inverse=True)
    ucode = ucode.ravel()
    U = int(ucode.max()) + 1 if n else 0
    classes, y = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    y = y.ravel()
    C = int(y.max()) + 1 if n else 0
    out = np.full(n, -1, np.int64)
    problems: list[str] = []

    # ---- kept splits: their rows are fixed; rows sharing a unit with them are forced
    kept_idx = [sidx[k] for k in keep]
    fixed = np.isin(cur, kept_idx) if kept_idx else np.zeros(n, bool)
    forced = 0
    unit_free = np.ones(U, bool)
    if fixed.any():
        out[fixed] = cur[fixed]
        # the kept split each unit is tied to (a unit tied to two kept splits cannot be fixed)
        tie = np.full(U, -1, np.int64)
        tie[ucode[fixed]] = cur[fixed]
        clash = np.zeros(U, bool)
        np.logical_or.at(clash, ucode[fixed], tie[ucode[fixed]] != cur[fixed])
        if clash.any():
            problems.append(f"{int(clash.sum())} duplicate groups span two kept splits "
                            f"({', '.join(keep)}); they stay as they are")
        unit_free[ucode[fixed]] = False
        tied_rows = ~fixed & ~unit_free[ucode]
        forced = int(tied_rows.sum())
        if drop:
            out[tied_rows] = -1
        else:
            out[tied_rows] = tie[ucode[tied_rows]]
        out[tied_rows & clash[ucode]] = -1  # cannot join both: dropped, reported above

    free_rows = np.flatnonzero(unit_free[ucode])
    free_splits = [i for i in range(S) if i not in kept_idx]
    target = np.zeros((S, C), np.int64)
    if fixed.any() or forced:
        np.add.at(target, (out[out >= 0], y[out >= 0]), 1)
    if len(free_rows) and not free_splits:
        raise ConfigError("every split is kept: nothing is left to re-split")

    # ---- targets for the free rows
    yf = y[free_rows]
    class_tot = np.bincount(yf, minlength=C)
    w = np.array([ratios[split_names[i]] for i in free_splits], np.float64)
    if ratios_given or shuffle:
        target[free_splits] += _controlled_rounding(class_tot, w)
    else:  # keep each split's current class mix
        cf = cur[free_rows]
        ok = np.isin(cf, free_splits)
        np.add.at(target, (cf[ok], yf[ok]), 1)
        spill = np.bincount(yf[~ok], minlength=C)
        for c in np.flatnonzero(spill):
            target[free_splits, c] += _largest_remainder(int(spill[c]), w)

    share_target = target / np.maximum(target.sum(axis=1, keepdims=True), 1)
    if (ratios_given or shuffle) and class_tot.sum():
        share_target[free_splits] = class_tot / class_tot.sum()  # stratified: the overall mix
    tgt_free = target.copy()
    if fixed.any() or forced:
        np.subtract.at(tgt_free, (out[out >= 0], y[out >= 0]), 1)

    # ---- assign the free units
    if len(free_rows):
        _assign_free(free_rows, ucode, y, cur, out, tgt_free, free_splits, shuffle, rng)

    moved = int(np.sum((out >= 0) & (cur >= 0) & (out != cur))) if current is not None else 0
    if current is not None:
        moved += int(np.sum((out >= 0) & (cur < 0)))
    achieved = np.zeros((S, C), np.int64)
    np.add.at(achieved, (out[out >= 0], y[out >= 0]), 1)
    problems += _feasibility(achieved, target, share_target, split_names, ucode, out, classes=classes)
    return Assignment(split_names=split_names, splits=out, target=target, moved=moved,
                      forced=forced, problems=problems, share_target=share_target)


def _assign_free(rows, ucode, y, cur, out, tgt, free_splits, shuffle, rng) -> None:
    """Fill ``out[rows]`` so that per-(split, class) counts approach ``tgt``."""
    fs = np.asarray(free_splits, np.int64)
    u = ucode[rows]
    order = np.argsort(u, kind="stable")
    su, sr = u[order], rows[order]
    starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
    ends = np.r_[starts[1:], len(su)]
    sizes = ends - starts
    first_label = y[sr[starts]]
    ys = y[sr]
    pure = np.minimum.reduceat(ys, starts) == np.maximum.reduceat(ys, starts)
    count = np.zeros_like(tgt)
    k_units = len(starts)
    unit_split = np.full(k_units, -1, np.int64)

    if not shuffle:
        # minimal change: each unit goes where most of its rows already are
        cs_all = cur[sr]
        cs_all = np.where(np.isin(cs_all, fs), cs_all, -1)
        lo = np.minimum.reduceat(cs_all, starts)
        hi = np.maximum.reduceat(cs_all, starts)
        same = lo == hi
        unit_split[same] = lo[same]  # -1 where the current split is not a target split
        for k in np.flatnonzero(~same).tolist():  # straddlers: few
            cs = cs_all[starts[k]:ends[k]]
            cs = cs[cs >= 0]
            vals, cnt = np.unique(cs, return_counts=True)
            best = vals[cnt == cnt.max()]
            if len(best) > 1:  # tie: the split that needs this class most
                c = first_label[k]
                best = best[[np.argmax(tgt[best, c] - count[best, c])]]
            unit_split[k] = best[0]
        placed = unit_split >= 0
        rows_placed = placed.repeat(sizes)
        np.add.at(count, (unit_split.repeat(sizes)[rows_placed], ys[rows_placed]), 1)
        _place_greedy(np.flatnonzero(~placed), starts, ends, sizes, sr, y, pure, first_label,
                      count, tgt, fs, unit_split, rng)
        _rebalance(starts, sizes, pure, first_label, count, tgt, fs, unit_split, rng)
    else:
        _place_greedy(np.arange(k_units), starts, ends, sizes, sr, y, pure, first_label,
                      count, tgt, fs, unit_split, rng)
    out[sr] = unit_split.repeat(sizes)


def _place_greedy(ks, starts, ends, sizes, sr, y, pure, first_label, count, tgt, fs, unit_split, rng) -> None:
    """Largest units first; each to the split with the largest remaining need for its classes."""
    if len(ks) == 0:
        return
    ks = np.asarray(ks)
    ks = ks[rng.permutation(len(ks))]
    ks = ks[np.argsort(-sizes[ks], kind="stable")]
    mixed = ks[~pure[ks]]
    for k in mixed.tolist():
        cls, cnt = np.unique(y[sr[starts[k]:ends[k]]], return_counts=True)
        need = (tgt[np.ix_(fs, cls)] - count[np.ix_(fs, cls)]).astype(np.float64)
        denom = np.maximum(tgt[np.ix_(fs, cls)], 1)
        # cost increase of adding the unit: sum over classes of ((cnt - need)^2 - need^2) / target
        gain = (((cnt - need) ** 2 - need ** 2) / denom).sum(axis=1)
        s = fs[int(np.argmin(gain))]
        unit_split[k] = s
        count[s, cls] += cnt
    # pure units, class by class: a greedy fill of the remaining need (largest first)
    pk = ks[pure[ks]]
    if len(pk) == 0:
        return
    lab = first_label[pk]
    order = np.argsort(lab, kind="stable")
    pk, lab = pk[order], lab[order]
    bounds = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        c = int(lab[a])
        need = (tgt[fs, c] - count[fs, c]).astype(np.float64)
        t = np.maximum(tgt[fs, c], 1).astype(np.float64)
        group = pk[a:b]
        gsz = sizes[group]
        choice = np.empty(len(group), np.int64)
        ones = gsz == 1
        # units larger than one: one at a time
        for idx in np.flatnonzero(~ones).tolist():
            g = gsz[idx]
            s = int(np.argmax(need / t - 0.5 * g / t))  # most relative need, penalising overshoot
            choice[idx] = s
            need[s] -= g
        # singletons: fill the remaining need exactly, the rest by share of target
        n1 = int(ones.sum())
        if n1:
            alloc = np.clip(np.floor(need), 0, None).astype(np.int64)
            if alloc.sum() > n1:
                alloc = _largest_remainder(n1, alloc)
            rest = n1 - int(alloc.sum())
            if rest:
                alloc += _largest_remainder(rest, t)
            choice[np.flatnonzero(ones)] = np.repeat(np.arange(len(fs)), alloc)
        unit_split[group] = fs[choice]
        np.add.at(count[:, c], fs[choice], gsz)


def _rebalance(starts, sizes, pure, first_label, count, tgt, fs, unit_split, rng) -> None:
    """Minimal-change repair: move the fewest pure units so each (split, class) count meets its target."""
    C = count.shape[1]
    for c in range(C):
        dev = count[fs, c] - tgt[fs, c]
        if not np.any(dev):
            continue
        cand = np.flatnonzero(pure & (first_label == c))
        cand = cand[rng.permutation(len(cand))]
        cand = cand[np.argsort(sizes[cand], kind="stable")]  # singletons first
        for pos in range(len(fs)):
            if dev[pos] <= 0:
                continue
            mine = cand[unit_split[cand] == fs[pos]]
            for k in mine.tolist():
                if dev[pos] <= 0:
                    break
                g = sizes[k]
                short = np.flatnonzero(dev < 0)
                if not len(short):
                    break
                q = short[np.argmin(dev[short])]
                if g > min(dev[pos], -dev[q]):
                    continue
                unit_split[k] = fs[q]
                dev[pos] -= g
                dev[q] += g
                count[fs[pos], c] -= g
                count[fs[q], c] += g


def _feasibility(achieved, target, share_target, split_names, ucode, out, classes=None) -> list[str]:
    """Say which constraints were missed and by how much."""
    msgs = []
    size_t = target.sum(axis=1)
    size_a = achieved.sum(axis=1)
    for s, name in enumerate(split_names):
        if size_t[s] and abs(size_a[s] - size_t[s]) > max(1, 0.005 * size_t[s]):
            msgs.append(f"split {name!r} has {size_a[s]:,} images, target {size_t[s]:,} "
                        f"({100 * (size_a[s] - size_t[s]) / size_t[s]:+.1f}%)")
    # the largest groups, when one alone exceeds a split's target
    placed = out >= 0
    if placed.any():
        gsize = np.bincount(ucode[placed])
        big = int(gsize.argmax())
        smallest = int(size_t[size_t > 0].min()) if (size_t > 0).any() else 0
        if smallest and gsize[big] > smallest:
            msgs.append(f"the largest duplicate group has {int(gsize[big]):,} images, more than the smallest "
                        f"split target ({smallest:,})")
    class_tot = target.sum(axis=0)
    want = (size_t > 0).sum()
    few = np.flatnonzero((class_tot > 0) & (class_tot < want))
    if len(few):
        msgs.append(f"{len(few)} class(es) have fewer images than there are splits ({want}), so some split "
                    "lacks them")
    for s, name in enumerate(split_names):
        if not size_a[s] or not size_t[s]:
            continue
        err = np.abs(achieved[s] / size_a[s] - share_target[s])
        if err.max() > 0.01:
            msgs.append(f"split {name!r}: a class share is {100 * err.max():.1f} percentage points off target "
                        f"(class {_class_name(classes, int(err.argmax()))})")
    return msgs


def _class_name(classes, c: int) -> str:
    """A class as the user named it (``#c`` when the names are unknown, ``(none)`` for no label)."""
    if classes is None or c >= len(classes):
        return f"#{c}"
    return repr(str(classes[c])) if str(classes[c]) else "(none)"


# --------------------------------------------------------------------------- from an audit

@dataclass(frozen=True)
class Resplit:
    """A proposed split of an audited dataset; rows line up with ``audit.manifest``."""

    audit: object
    assignment: Assignment
    mode: str
    remedy: str
    seed: object
    pairs: object = None    # PairTable the split was checked against (audit's, plus any re-detected)
    groups: object = None   # Groups the assignment kept whole
    rounds: int = 1         # detection rounds (more than one when dropping images changed the neighbourhoods)

    @property
    def splits(self) -> np.ndarray:
        """New split name per row (``""`` for dropped rows)."""
        return self.assignment.names()

    @property
    def dropped(self) -> np.ndarray:
        return self.assignment.dropped

    def cross_split_pairs(self) -> int:
        """Duplicate pairs whose two images end in different splits (0 when the split is sound)."""
        p = self.pairs if self.pairs is not None else self.audit.pairs
        sp = self.assignment.splits
        keep = (sp[p.i] >= 0) & (sp[p.j] >= 0)
        return int(np.sum(keep & (sp[p.i] != sp[p.j])))

    def groups_column(self) -> np.ndarray:
        """``group`` per row: the user's group, else ``dup-<id>`` for images in a duplicate group."""
        m = self.audit.manifest
        g = self.groups if self.groups is not None else self.audit.groups
        in_dup = np.isin(g.ids, g.duplicate_groups())
        out = np.array(m.groups, dtype=object)
        for r in np.flatnonzero(in_dup & (out == "")):
            out[r] = f"dup-{int(g.ids[r])}"
        return out

    def records(self) -> list[dict]:
        m = self.audit.manifest
        names, grp, keep = self.splits, self.groups_column(), ~self.dropped
        return [{"path": m.paths[r], "split": names[r], "label": m.labels[r], "group": grp[r]}
                for r in np.flatnonzero(keep)]

    def to_dict(self) -> dict:
        """Targets vs achieved sizes and class shares, moves, drops, problems, verification."""
        a = self.assignment
        m = self.audit.manifest
        labels = sorted(set(m.labels.tolist()))
        _, y = np.unique(m.labels.astype(str), return_inverse=True)
        ach = np.zeros_like(a.target)
        ok = a.splits >= 0
        np.add.at(ach, (a.splits[ok], y.ravel()[ok]), 1)
        tsz, asz = a.target.sum(1), ach.sum(1)
        splits = {}
        for s, name in enumerate(a.split_names):
            share_t = {lab: round(float(a.share_target[s, c]), 4) for c, lab in enumerate(labels)}
            share_a = {lab: round(float(ach[s, c] / asz[s]), 4) if asz[s] else 0.0 for c, lab in enumerate(labels)}
            worst = max((abs(share_a[k] - share_t[k]) for k in labels), default=0.0)
            splits[name] = {"target": int(tsz[s]), "achieved": int(asz[s]),
                            "size_error": round(float((asz[s] - tsz[s]) / tsz[s]), 5) if tsz[s] else 0.0,
                            "max_class_share_error": round(worst, 5),
                            "class_share_target": share_t, "class_share_achieved": share_a}
        return {"mode": self.mode, "remedy": self.remedy, "seed": self.seed, "n_images": int(len(m)),
                "moved": a.moved, "dropped": int(self.dropped.sum()), "forced": a.forced,
                "splits": splits, "problems": list(a.problems),
                "cross_split_pairs_after": self.cross_split_pairs(),
                "pairs_checked": len(self.pairs if self.pairs is not None else self.audit.pairs),
                "detection_rounds": self.rounds,
                "decisions": (self.audit.decisions.to_dict()
                              if getattr(self.audit, "decisions", None) is not None else None)}


def resplit(
    audit,
    *,
    ratios=None,
    keep: Sequence[str] | str | None = None,
    drop: bool = False,
    shuffle: bool = False,
    random_state=RANDOM_STATE,
) -> Resplit:
    """Propose a split of an audited dataset in which no duplicate group straddles two splits.

    Parameters
    ----------
    audit : Audit or datasets.DatasetDict
        From :func:`leakscan.audit`. A Hugging Face ``DatasetDict`` is audited with the
        defaults and the result is a new ``DatasetDict`` (:func:`leakscan.sources.hf.resplit_dataset`).
    ratios : str or mapping, optional
        ``"train=0.8,val=0.1,test=0.1"``; default: the current split sizes and class mixes.
    keep : str or sequence of str, optional
        Splits that stay as they are (e.g. a benchmark's test set).
    drop : bool
        With ``keep``: drop the other splits' copies of kept images instead of moving them
        into the kept split.
    shuffle : bool
        A fresh stratified split instead of the minimal-change repair.
    random_state : int or None
        Seed of the random choices (default 0); None draws a fresh one.

    Returns
    -------
    Resplit

    Examples
    --------
    >>> import numpy as np, leakscan
    >>> rng = np.random.default_rng(0)
    >>> imgs = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8); imgs[5] = imgs[0]
    >>> a = leakscan.audit(imgs, splits=["train"] * 4 + ["test"] * 2, jobs=1)
    >>> r = resplit(a)
    >>> r.cross_split_pairs()
    0
    """
    if type(audit).__module__.split(".")[0] == "datasets":  # a Hugging Face DatasetDict in, one out
        from .sources.hf import resplit_dataset  # noqa: PLC0415

        return resplit_dataset(audit, ratios=ratios, keep=keep, drop=drop, shuffle=shuffle,
                               random_state=random_state)
    if isinstance(keep, str):
        keep = [keep]
    keep = list(keep or [])
    if drop and not keep:
        raise ConfigError("drop applies with keep (e.g. --keep test --drop): it drops copies of kept images")
    m = audit.manifest
    current = np.array(m.splits, dtype=object)
    parsed = parse_ratios(ratios)
    pairs, groups = audit.pairs, audit.groups
    rounds = 1
    for rounds in range(1, MAX_ROUNDS + 1):
        a = assign_splits(groups.ids, m.labels, ratios=parsed, current=current,
                          keep=keep, drop=drop, shuffle=shuffle, random_state=random_state)
        if not a.dropped.any() or rounds == MAX_ROUNDS:
            break
        # Dropping images changes the neighbourhoods the ratio test compares against, so the
        # remaining images are searched again (from the features: nothing is decoded twice).
        extra = _redetect(audit, np.flatnonzero(~a.dropped & audit.features.ok), a.splits)
        if len(extra) == 0:
            break
        pairs = PairTable.concat([pairs, extra]).sorted()
        if getattr(audit, "decisions", None) is not None:  # the user's verdicts hold for re-found pairs too
            from .decisions import apply_decisions  # noqa: PLC0415

            pairs, _ = apply_decisions(pairs, audit.decisions.matched, features=audit.features)
        groups = build_groups(len(m), pairs, m.groups)
        pairs = pairs.take(groups.kept)  # what the chaining guard cut is no longer a link
    mode = "shuffle" if shuffle else "minimal-change"
    if keep:
        remedy = (f"kept {', '.join(keep)} unchanged; {a.forced} images of other splits that duplicate "
                  + (f"them were dropped" if drop else f"them joined {', '.join(keep)}"))
    elif shuffle:
        remedy = "fresh stratified assignment of whole duplicate groups"
    else:
        remedy = ("each duplicate group joins the split holding most of it; class mixes restored "
                  "with the fewest extra moves")
    return Resplit(audit=audit, assignment=a, mode=mode, remedy=remedy, seed=random_state,
                   pairs=pairs, groups=groups, rounds=rounds)


MAX_ROUNDS = 5


def _redetect(audit, rows: np.ndarray, splits: np.ndarray) -> PairTable:
    """Pairs among ``rows`` (re-searched) that cross splits; rows are manifest rows."""
    from .features import load_pictures  # noqa: PLC0415

    sub = find_pairs(audit.features.take(rows), audit.settings, splits=np.asarray(splits)[rows],
                     images=lambda sub_rows: load_pictures(audit.manifest, rows[np.asarray(sub_rows)]))
    found = dataclasses.replace(sub, i=rows[sub.i], j=rows[sub.j])  # rows ascending: i < j still holds
    return found.take(splits[found.i] != splits[found.j])
