"""Group-aware stratified split assignment: pure numpy, no images, no pairs.

The assignment works on *units* (duplicate groups, merged with user groups), never on single
images, so a unit never straddles two splits. Within that constraint it keeps each class's
share in each split as close as possible to the target, and moves as few images as possible.

* :func:`assign_splits` — units + labels (+ current splits) -> new split per row.
* :func:`parse_ratios` — ``"train=0.8,test=0.2"`` -> target shares.

The workflow around it (from an audit, searching again after drops, the report) is
:func:`leakscan.resplit.resplit`; the scikit-learn-shaped API (:class:`StratifiedGroupShuffleSplit`,
:func:`train_test_split`, :func:`find_groups`) is :mod:`leakscan.model_selection`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .errors import ConfigError
from .manifest import order_splits, split_name
from .settings import RANDOM_STATE

log = logging.getLogger(__name__)

__all__ = ["Assignment", "assign_splits", "parse_ratios", "ratio_warnings", "check_random_state",
           "validate_random_state", "DROPPED"]

DROPPED = ""


def _listed(names, last: str = "and") -> str:
    """``a, b and c``."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def ratio_warnings(text: str | None, current=None, keep=()) -> list[str]:
    """What is worth saying about ``--ratios``: that they were rescaled (``current`` None), or
    which current splits (``current``: their names) they leave out, and which of their shares
    do not apply because ``keep`` keeps that split as it is.

    Examples
    --------
    >>> ratio_warnings("train=0.7,test=0.2")
    ['--ratios add up to 0.9, not 1; rescaled to train=0.7778,test=0.2222']
    >>> ratio_warnings("train=0.8,test=0.2", ["train", "val", "test"])[0].split(":")[0]
    'split val is not in --ratios'
    >>> ratio_warnings("train=0.6,val=0.2,test=0.2", ["train", "test"], keep=["test"])[0].split(";")[1]
    ' the other splits share the rest as train=0.75,val=0.25'
    """
    if not text:
        return []
    scaled = parse_ratios(text)
    if current is None:
        total = sum(float(part.partition("=")[2]) for part in str(text).split(",") if part.strip())
        if abs(total - 1) > 1e-6:
            return [f"--ratios add up to {total:g}, not 1; rescaled to "
                    + ",".join(f"{k}={v:.4g}" for k, v in scaled.items())]
        return []
    out = []
    free = {s: v for s, v in scaled.items() if s not in keep}  # a kept split stays as it is
    gone = [s for s in current if s not in scaled and s not in keep]
    if gone and free:
        one = len(gone) == 1
        out.append(f"{'split' if one else 'splits'} {_listed(gone)} {'is' if one else 'are'} not in --ratios: "
                   f"{'its' if one else 'their'} images are spread over {_listed(free)}, and the new manifest "
                   f"has no {_listed(gone, 'or')}")
    unused = [s for s in scaled if s in keep]
    if unused:  # the other splits divide what is left in their own proportions
        rest = ("; the other splits share the rest as "
                + ",".join(f"{k}={v / sum(free.values()):.4g}" for k, v in free.items())) if free else ""
        out.append(f"--ratios {','.join(f'{s}={scaled[s]:.4g}' for s in unused)} not applied: --keep keeps "
                   f"{', '.join(unused)} as it is{rest}")
    return out


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
                if not eq or not name.strip():  # "train", "=0.5": no share, or a share of no split
                    raise ValueError
                items.append((name.strip(), float(val)))
            except ValueError:
                raise ConfigError(f"ratios must look like train=0.8,val=0.1,test=0.1; cannot read {part!r}",
                                  keyword="ratios") from None
    if not items:
        raise ConfigError("ratios are empty; give them as train=0.8,val=0.1,test=0.1", keyword="ratios")
    names = [n for n, _ in items]
    if any(not n.strip() for n in names):
        raise ConfigError(f"ratios give a share to a split without a name, got {names}", keyword="ratios")
    if len(set(names)) != len(names):
        raise ConfigError(f"ratios name each split once, got {', '.join(names)}", keyword="ratios")
    same = {}  # the new manifest is read back with these names: val and dev would be one split
    for n in names:
        same.setdefault(split_name(n), []).append(n)
    for canon, group in same.items():
        if len(group) > 1:
            raise ConfigError(f"ratios name {' and '.join(group)}, which a manifest reads as one split ({canon}); "
                              "name each split once", keyword="ratios")
    bad = [f"{n}={v}" for n, v in items if not (v > 0 and math.isfinite(v))]
    if bad:
        zero = [n for n, v in items if v == 0]
        rest = ",".join(f"{n}={v:g}" for n, v in items if v > 0 and math.isfinite(v))
        hint = (f"; to have no {' nor '.join(zero)} split, leave {' and '.join(zero)} out of --ratios "
                f"(--ratios {rest}): the images of a split left out are spread over the others"
                if zero and rest else "")
        raise ConfigError(f"ratios must be positive numbers, got {', '.join(bad)}{hint}", keyword="ratios")
    total = sum(v for _, v in items)
    if not math.isfinite(total):  # shares near the float limit add up to inf: scaled down first
        top = max(v for _, v in items)
        items = [(n, v / top) for n, v in items]
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
    rest = class_tot.astype(np.int64) - base.sum(axis=0)  # per class, still to place
    short = size_t - base.sum(axis=1)  # per split, still to fill
    # the largest remainders first, over every (split, class) cell, as scikit-learn's stratified
    # split rounds: a small class is not left short because larger ones were placed before it
    for k in np.argsort(-frac, axis=None, kind="stable"):
        s, c = divmod(int(k), frac.shape[1])
        if frac[s, c] > 0 and rest[c] > 0 and short[s] > 0:
            base[s, c] += 1
            rest[c] -= 1
            short[s] -= 1
            frac[s, c] = -1.0
    for c in np.flatnonzero(rest):  # rarely: where the remainders left a class no split still short
        for _ in range(int(rest[c])):
            s = int(np.lexsort((-frac[:, c], -(size_t - base.sum(axis=1))))[0])
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


def validate_random_state(random_state, name: str = "random_state") -> None:
    """Raise ConfigError (a ValueError) unless ``random_state`` is None, an int >= 0, a numpy
    Generator, RandomState, BitGenerator or SeedSequence. Draws nothing from a generator given."""
    ok = (random_state is None or isinstance(random_state, (np.random.Generator, np.random.RandomState,
                                                            np.random.SeedSequence, np.random.BitGenerator))
          or (isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)
              and random_state >= 0))
    if not ok:
        raise ConfigError(f"{name} must be None, an int >= 0 or a numpy Generator, RandomState, BitGenerator "
                          f"or SeedSequence, got {random_state!r}")


def check_random_state(random_state, name: str = "random_state") -> np.random.Generator:
    """A numpy Generator from None, an int >= 0, a Generator, a RandomState or a SeedSequence
    (a RandomState gives one draw, so each call goes on where the last left it, as in scikit-learn).

    Raises ConfigError (a ValueError) for anything else, such as ``'abc'`` or ``1.5``.
    """
    validate_random_state(random_state, name)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
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

    ratios_given = ratios is not None
    split_names, ratios = _split_ratios(ratios, current, keep)
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
    fixed, unit_free, forced = _fix_kept(out, cur, ucode, U, kept_idx, keep, drop, problems)

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
    target_free = target.copy()
    if fixed.any() or forced:
        np.subtract.at(target_free, (out[out >= 0], y[out >= 0]), 1)

    # ---- assign the free units
    if len(free_rows):
        _assign_free(free_rows, ucode, y, cur, out, target_free, free_splits, shuffle, rng)

    moved = int(np.sum((out >= 0) & (cur >= 0) & (out != cur))) if current is not None else 0
    if current is not None:
        moved += int(np.sum((out >= 0) & (cur < 0)))
    achieved = np.zeros((S, C), np.int64)
    np.add.at(achieved, (out[out >= 0], y[out >= 0]), 1)
    problems += _feasibility(achieved, target, share_target, split_names, ucode, out, classes=classes)
    return Assignment(split_names=split_names, splits=out, target=target, moved=moved,
                      forced=forced, problems=problems, share_target=share_target)


def _split_ratios(ratios, current, keep) -> tuple[list, dict]:
    """Split names (in display order) and target share of each: ``ratios``, else the current sizes;
    kept splits not in ``ratios`` keep their current share."""
    if ratios is None:
        if current is None:
            raise ConfigError("give ratios (e.g. train=0.8,test=0.2) or the current splits")
        names, counts = np.unique(current.astype(str), return_counts=True)
        ratios = {str(k): c / len(current) for k, c in zip(names, counts)}
    else:
        ratios = dict(ratios)
    split_names = order_splits(ratios)
    for k in keep:
        if current is not None and k not in set(current.tolist()):
            raise ConfigError(f"--keep {k}: no image is in split {k!r} (splits: {', '.join(sorted(set(current)))})")
        if k not in ratios:
            ratios[k] = float(np.mean(current == k))
            split_names = order_splits(ratios)
    return split_names, ratios


def _fix_kept(out, cur, ucode, n_units, kept_idx, keep, drop, problems):
    """Rows of kept splits stay (``out`` set); rows sharing a unit with them join them, or are dropped.

    Returns ``(fixed, unit_free, forced)``: the kept rows, which units are still free, and how
    many rows of other splits were forced.
    """
    fixed = np.isin(cur, kept_idx) if kept_idx else np.zeros(len(cur), bool)
    unit_free = np.ones(n_units, bool)
    if not fixed.any():
        return fixed, unit_free, 0
    out[fixed] = cur[fixed]
    # the kept split each unit is tied to (a unit tied to two kept splits cannot be fixed)
    tie = np.full(n_units, -1, np.int64)
    tie[ucode[fixed]] = cur[fixed]
    clash = np.zeros(n_units, bool)
    np.logical_or.at(clash, ucode[fixed], tie[ucode[fixed]] != cur[fixed])
    if clash.any():
        problems.append(f"{int(clash.sum())} duplicate groups span two kept splits "
                        f"({', '.join(keep)}); they stay as they are")
    unit_free[ucode[fixed]] = False
    tied_rows = ~fixed & ~unit_free[ucode]
    if drop:
        out[tied_rows] = -1
    else:
        out[tied_rows] = tie[ucode[tied_rows]]
    out[tied_rows & clash[ucode]] = -1  # cannot join both: dropped, reported above
    return fixed, unit_free, int(tied_rows.sum())


@dataclass
class _Units:
    """The free units being placed: their rows (grouped by unit), labels, and the running counts.

    ``rows[starts[k]:ends[k]]`` are the rows of unit ``k``; ``count`` and ``target`` are
    (split, class) image counts; ``free`` are the splits units may go to; ``split[k]`` is
    where unit ``k`` went (-1: not placed yet).
    """

    rows: np.ndarray         # (m,) rows, sorted by unit
    starts: np.ndarray       # (k,) first position of each unit in rows
    ends: np.ndarray         # (k,) one past its last
    sizes: np.ndarray        # (k,) images per unit
    pure: np.ndarray         # (k,) bool: every image of the unit has one class
    first_label: np.ndarray  # (k,) class of the unit's first image (its class when pure)
    labels: np.ndarray       # (n,) class per manifest row
    count: np.ndarray        # (S, C) images placed per split and class
    target: np.ndarray       # (S, C) images wanted per split and class
    free: np.ndarray         # split indices units may be placed in
    split: np.ndarray        # (k,) split of each unit, -1 while unplaced

    @classmethod
    def of(cls, rows, ucode, y, target, free_splits) -> "_Units":
        u = ucode[rows]
        order = np.argsort(u, kind="stable")
        su, by_unit = u[order], rows[order]
        starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
        ends = np.r_[starts[1:], len(su)]
        ys = y[by_unit]
        pure = np.minimum.reduceat(ys, starts) == np.maximum.reduceat(ys, starts)
        return cls(rows=by_unit, starts=starts, ends=ends, sizes=ends - starts, pure=pure,
                   first_label=y[by_unit[starts]], labels=y, count=np.zeros_like(target), target=target,
                   free=np.asarray(free_splits, np.int64), split=np.full(len(starts), -1, np.int64))

    def __len__(self) -> int:
        return len(self.starts)

    def classes_of(self, k: int) -> np.ndarray:
        return self.labels[self.rows[self.starts[k]:self.ends[k]]]


def _assign_free(rows, ucode, y, cur, out, target, free_splits, shuffle, rng) -> None:
    """Fill ``out[rows]`` so that per-(split, class) counts approach ``target``."""
    units = _Units.of(rows, ucode, y, target, free_splits)
    if not shuffle:
        # minimal change: each unit goes where most of its rows already are
        current = cur[units.rows]
        current = np.where(np.isin(current, units.free), current, -1)
        lo = np.minimum.reduceat(current, units.starts)
        hi = np.maximum.reduceat(current, units.starts)
        same = lo == hi
        units.split[same] = lo[same]  # -1 where the current split is not a target split
        for k in np.flatnonzero(~same).tolist():  # straddlers: few
            here = current[units.starts[k]:units.ends[k]]
            here = here[here >= 0]
            vals, cnt = np.unique(here, return_counts=True)
            best = vals[cnt == cnt.max()]
            if len(best) > 1:  # tie: the split that needs this class most
                c = units.first_label[k]
                best = best[[np.argmax(target[best, c] - units.count[best, c])]]
            units.split[k] = best[0]
        placed = units.split >= 0
        rows_placed = placed.repeat(units.sizes)
        np.add.at(units.count, (units.split.repeat(units.sizes)[rows_placed], y[units.rows][rows_placed]), 1)
        _place_greedy(units, np.flatnonzero(~placed), rng)
        _rebalance(units, rng)
    else:
        _place_greedy(units, np.arange(len(units)), rng)
    out[units.rows] = units.split.repeat(units.sizes)


def _place_greedy(units: _Units, todo, rng) -> None:
    """Units ``todo`` to the splits that most need their classes: mixed-class units first, then each
    class's, largest first."""
    if len(todo) == 0:
        return
    todo = np.asarray(todo)
    todo = todo[rng.permutation(len(todo))]
    todo = todo[np.argsort(-units.sizes[todo], kind="stable")]
    free, count, target = units.free, units.count, units.target
    for k in todo[~units.pure[todo]].tolist():  # mixed-class units, one at a time
        cls, cnt = np.unique(units.classes_of(k), return_counts=True)
        need = (target[np.ix_(free, cls)] - count[np.ix_(free, cls)]).astype(np.float64)
        denom = np.maximum(target[np.ix_(free, cls)], 1)
        # cost increase of adding the unit: sum over classes of ((cnt - need)^2 - need^2) / target
        gain = (((cnt - need) ** 2 - need ** 2) / denom).sum(axis=1)
        s = free[int(np.argmin(gain))]
        units.split[k] = s
        count[s, cls] += cnt
    # pure units, class by class: a greedy fill of the remaining need (largest first)
    pure_units = todo[units.pure[todo]]
    if len(pure_units) == 0:
        return
    lab = units.first_label[pure_units]
    order = np.argsort(lab, kind="stable")
    pure_units, lab = pure_units[order], lab[order]
    bounds = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        c = int(lab[a])
        need = (target[free, c] - count[free, c]).astype(np.float64)
        t = np.maximum(target[free, c], 1).astype(np.float64)
        group = pure_units[a:b]
        gsz = units.sizes[group]
        choice = np.empty(len(group), np.int64)
        ones = gsz == 1
        # what each split still lacks in size, relative to its size: breaks ties between splits
        # that need the class equally (else the first would take every unit: a split left empty)
        size_t = target[free].sum(axis=1)
        size_left = (size_t - count[free].sum(axis=1)) / np.maximum(size_t, 1)
        # units larger than one: one at a time
        for idx in np.flatnonzero(~ones).tolist():
            g = gsz[idx]
            score = need / t - 0.5 * g / t  # most relative need, penalising overshoot
            s = int(np.lexsort((-size_left, -np.round(score, 9)))[0])
            choice[idx] = s
            need[s] -= g
            size_left[s] -= g / max(size_t[s], 1)
        # singletons: fill the remaining need exactly, the rest by share of target
        n1 = int(ones.sum())
        if n1:
            alloc = np.clip(np.floor(need), 0, None).astype(np.int64)
            if alloc.sum() > n1:
                alloc = _largest_remainder(n1, alloc)
            rest = n1 - int(alloc.sum())
            if rest:
                alloc += _largest_remainder(rest, t)
            choice[np.flatnonzero(ones)] = np.repeat(np.arange(len(free)), alloc)
        units.split[group] = free[choice]
        np.add.at(count[:, c], free[choice], gsz)


def _rebalance(units: _Units, rng) -> None:
    """Minimal-change repair: move pure units, smallest first, so each (split, class) count nears its target.

    A unit moves from a split with too many images of its class to the one lacking most (of
    equal lacks, the one lacking most in size) when that brings the two counts closer to their
    targets, overshooting or not: units larger than a small split's target still reach it.
    """
    free, count, target = units.free, units.count, units.target
    size_t = target[free].sum(axis=1)
    for c in range(count.shape[1]):
        dev = count[free, c] - target[free, c]
        if not np.any(dev):
            continue
        cand = np.flatnonzero(units.pure & (units.first_label == c))
        cand = cand[rng.permutation(len(cand))]
        cand = cand[np.argsort(units.sizes[cand], kind="stable")]  # singletons first
        for pos in range(len(free)):
            if dev[pos] <= 0:
                continue
            mine = cand[units.split[cand] == free[pos]]
            for k in mine.tolist():
                if dev[pos] <= 0:
                    break
                g = units.sizes[k]
                short = np.flatnonzero(dev < 0)
                if not len(short):
                    break
                size_lack = (size_t[short] - count[free[short]].sum(axis=1)) / np.maximum(size_t[short], 1)
                q = short[np.lexsort((-size_lack, dev[short]))[0]]
                if g >= dev[pos] - dev[q]:  # no closer: (dev_p - g)^2 + (dev_q + g)^2 < dev_p^2 + dev_q^2
                    continue
                units.split[k] = free[q]
                dev[pos] -= g
                dev[q] += g
                count[free[pos], c] -= g
                count[free[q], c] += g


def _feasibility(achieved, target, share_target, split_names, ucode, out, classes=None) -> list[str]:
    """Say which constraints were missed and by how much."""
    msgs = []
    size_t = target.sum(axis=1)
    size_a = achieved.sum(axis=1)
    for s, name in enumerate(split_names):
        if not size_t[s] and not size_a[s]:  # a share too small for one image, or all of it dropped
            msgs.append(f"split {name!r} is left empty: it gets none of the {int(size_a.sum()):,} images")
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
