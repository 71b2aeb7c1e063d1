"""Pairs (plus user-given groups) -> connected components."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pairs import Kind, PairTable

__all__ = ["Groups", "build_groups", "components", "group_links", "join_links", "joining_links", "link_strength"]


@dataclass(frozen=True)
class Groups:
    """One component id per manifest row.

    Ids are numbered 0, 1, ... in order of each component's smallest row, so they are
    deterministic. A component of size 1 is an image with no duplicate.

    Attributes
    ----------
    ids : int64 (n,)
    sizes : int64 (n_components,)
    has_pair : bool (n_components,)
        The component holds at least one duplicate pair (not only a user-given group).
    """

    ids: np.ndarray
    sizes: np.ndarray
    has_pair: np.ndarray
    weakest: np.ndarray | None = None   # (n_components,) weakest link's strength in [0, 1], NaN: none
    notes: tuple = ()                   # what the chaining guard did
    kept: np.ndarray | None = None      # (n_pairs,) bool: the pair is a link of its group (False: cut by the guard)

    def __post_init__(self) -> None:
        if self.ids.ndim != 1 or (len(self.ids) and self.ids.max() >= len(self.sizes)):
            raise ValueError("Groups.ids must be 1-d ids into sizes")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_groups(self) -> int:
        return len(self.sizes)

    def duplicate_groups(self) -> np.ndarray:
        """Ids of components that hold two or more images linked by duplicate pairs."""
        return np.flatnonzero((self.sizes > 1) & self.has_pair)

    def members(self) -> list[np.ndarray]:
        """Rows of each component (index = group id), rows ascending."""
        order = np.argsort(self.ids, kind="stable")
        bounds = np.cumsum(self.sizes)[:-1]
        return np.split(order, bounds)


def link_strength(pairs: PairTable) -> np.ndarray:
    """How sure each pair is, in [0, 1]: its confidence (1 for exact copies).

    Pairs made without a confidence (a hand-built table) count as sure.
    """
    conf = np.asarray(pairs.confidence, np.float64)
    return np.clip(np.where(np.isnan(conf), 1.0, conf), 0.0, 1.0)


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` rows in the graph whose edges are ``(i, j)``.

    >>> components(4, np.array([0]), np.array([2])).tolist()
    [0, 1, 0, 2]
    """
    from scipy.sparse import coo_matrix  # noqa: PLC0415 - lazy: keeps `import leakscan` light
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415

    graph = coo_matrix((np.ones(len(i), np.int8), (np.asarray(i, np.int64), np.asarray(j, np.int64))), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def joining_links(n: int, i: np.ndarray, j: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """The strengths (in (0, 1]) of the links that join ``n`` rows into groups, the strongest
    kept where several would join the same two groups (a maximum spanning forest: its links
    of a strength ``s`` or more join the rows exactly as all links of ``s`` or more do),
    strongest first. A pair listed twice counts once, at its strongest.

    >>> links = joining_links(4, np.array([0, 1, 0, 2]), np.array([1, 2, 2, 3]), np.float32([0.9, 0.8, 0.6, 0.7]))
    >>> [round(float(x), 2) for x in links]  # 0-2 at 0.6 joins nothing 0-1 and 1-2 did not
    [0.9, 0.8, 0.7]
    """
    from scipy.sparse import coo_matrix  # noqa: PLC0415
    from scipy.sparse.csgraph import minimum_spanning_tree  # noqa: PLC0415

    lo, hi = np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)
    strength = np.asarray(strength, np.float32)
    order = np.lexsort((-strength, hi, lo))  # each pair's strongest first
    first = np.r_[True, (np.diff(lo[order]) != 0) | (np.diff(hi[order]) != 0)] if len(order) else np.zeros(0, bool)
    keep = order[first]
    # a minimum tree of 2 - strength is a maximum one of strength (all weights positive)
    graph = coo_matrix((2.0 - strength[keep].astype(np.float64), (lo[keep], hi[keep])), shape=(n, n)).tocsr()
    tree = minimum_spanning_tree(graph)
    return np.sort((2.0 - tree.data).astype(np.float32))[::-1]


def _by_smallest_row(raw: np.ndarray):
    """Component labels renumbered 0, 1, ... in order of each component's smallest row; and
    the smallest row of each input label."""
    raw = np.asarray(raw, np.int64)
    _, first = np.unique(raw, return_index=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return (rank[raw] if len(raw) else np.zeros(0, np.int64)), first


def join_links(ids: np.ndarray, links: np.ndarray) -> np.ndarray:
    """Group ids after joining the groups that ``links`` (row pairs, shape ``(k, 2)``) connect.

    For rows that belong together whatever their pixels (frames of one file, overlapping
    tiles): a re-split keeps them in one split as it keeps a duplicate group. Ids are numbered
    by smallest row, as :func:`build_groups` numbers them.

    Examples
    --------
    >>> join_links(np.array([0, 1, 1, 2]), np.array([[0, 3]])).tolist()
    [0, 1, 1, 0]
    """
    ids = np.asarray(ids, np.int64)
    links = np.asarray(links, np.int64).reshape(-1, 2)
    n = len(ids)
    if not n:
        return ids.copy()
    if len(links) and (links.min() < 0 or links.max() >= n):
        raise ValueError(f"links must be rows in [0, {n}), got {int(links.min())}..{int(links.max())}")
    uniq, first = np.unique(ids, return_index=True)
    head = first[np.searchsorted(uniq, ids)]  # each row's group's first row
    raw = components(n, np.r_[head, links[:, 0]], np.r_[np.arange(n), links[:, 1]])
    return _by_smallest_row(raw)[0]


def group_links(user_groups) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs ``(head, row)`` joining the rows of each user-given group (``""``: none) to its first row.

    >>> [a.tolist() for a in group_links(np.array(["p1", "", "p2", "p1", "p1"], dtype=object))]
    [[0, 0], [3, 4]]
    """
    ur, uc = [], []
    if user_groups is not None and len(user_groups):
        ug = np.asarray(user_groups, dtype=object)
        has = np.flatnonzero(ug != "")
        if len(has):
            _, first, inv = np.unique(ug[has].astype(str), return_index=True, return_inverse=True)
            head = has[first][inv.ravel()]
            link = head != has
            ur, uc = head[link], has[link]
    return np.asarray(ur, np.int64), np.asarray(uc, np.int64)


def build_groups(n: int, pairs: PairTable, user_groups: np.ndarray | None = None, *,
                 max_size: int | None = None, sure: np.ndarray | None = None) -> Groups:
    """Connected components of the graph whose edges are the duplicate pairs and user groups.

    Chaining guard: a component of more than ``max_size`` images (default: 1,000 or 1% of the
    images, whichever is larger) that is held together by near-duplicate links is split by
    dropping its weakest links (see :func:`link_strength`) until every part fits or none under
    strength 1 is left (exact links, user groups and the ``sure`` pairs, those the user marked
    duplicate, are never dropped). What it did is listed in ``notes``.

    Examples
    --------
    >>> import numpy as np
    >>> from leakscan.pairs import PairTable
    >>> pt = PairTable.empty()
    >>> g = build_groups(3, pt, np.array(["p1", "", "p1"], dtype=object))
    >>> g.ids.tolist()
    [0, 1, 0]
    """
    if max_size is None:
        max_size = max(1000, n // 100)
    strength = link_strength(pairs)
    sure = np.zeros(len(pairs), bool) if sure is None else np.asarray(sure, bool)
    ur, uc = group_links(user_groups)
    keep = np.ones(len(pairs), bool)
    notes = []
    raw = components(n, np.r_[pairs.i, ur], np.r_[pairs.j, uc]) if n else np.zeros(0, np.int64)
    for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        sizes = np.bincount(raw) if n else np.zeros(0, np.int64)
        big = np.flatnonzero(sizes > max_size)
        if not len(big):
            break
        in_big = np.isin(raw[pairs.i], big)
        drop = keep & in_big & (strength < t) & (pairs.kind != Kind.EXACT) & ~sure
        if not drop.any():
            continue
        keep &= ~drop
        notes.append(f"chaining guard: {len(big)} group(s) over {max_size:,} images; dropped "
                     f"{int(drop.sum()):,} links weaker than {t:.1f}")
        raw = components(n, np.r_[pairs.i[keep], ur], np.r_[pairs.j[keep], uc])
    ids, first = _by_smallest_row(raw)
    sizes = np.bincount(ids, minlength=len(first)).astype(np.int64)
    has_pair = np.zeros(len(first), bool)
    weakest = np.full(len(first), np.nan)
    if keep.any():
        gi = ids[pairs.i[keep]]
        has_pair[gi] = True
        w = np.full(len(first), np.inf)
        np.minimum.at(w, gi, strength[keep])
        weakest = np.where(np.isfinite(w), w, np.nan)
    return Groups(ids=ids, sizes=sizes, has_pair=has_pair, weakest=weakest, notes=tuple(notes), kept=keep)
