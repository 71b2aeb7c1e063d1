"""Pairs (plus user-given groups) -> connected components."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from .pairs import PairTable

__all__ = ["Groups", "build_groups"]


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


def build_groups(n: int, pairs: PairTable, user_groups: np.ndarray | None = None) -> Groups:
    """Connected components of the graph whose edges are the duplicate pairs and user groups.

    Examples
    --------
    >>> import numpy as np
    >>> from leakscan.pairs import PairTable
    >>> pt = PairTable.empty()
    >>> g = build_groups(3, pt, np.array(["p1", "", "p1"], dtype=object))
    >>> g.ids.tolist()
    [0, 1, 0]
    """
    from scipy.sparse import coo_matrix  # noqa: PLC0415 - lazy: keeps `import leakscan` light
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415

    rows = [pairs.i]
    cols = [pairs.j]
    if user_groups is not None and len(user_groups):
        ug = np.asarray(user_groups, dtype=object)
        has = np.flatnonzero(ug != "")
        if len(has):
            _, first, inv = np.unique(ug[has].astype(str), return_index=True, return_inverse=True)
            head = has[first][inv.ravel()]
            link = head != has
            rows.append(head[link]); cols.append(has[link])
    r = np.concatenate(rows).astype(np.int64)
    c = np.concatenate(cols).astype(np.int64)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n, n))
    _, raw = connected_components(graph, directed=False)
    # relabel by smallest row: first occurrence order of raw labels
    _, first = np.unique(raw, return_index=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    ids = rank[raw] if n else np.zeros(0, np.int64)
    sizes = np.bincount(ids, minlength=len(first)).astype(np.int64)
    has_pair = np.zeros(len(first), bool)
    if len(pairs):
        has_pair[ids[pairs.i]] = True
    return Groups(ids=ids, sizes=sizes, has_pair=has_pair)
