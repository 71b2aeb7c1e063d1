"""The only module that imports faiss: Hamming range search and cosine k-nearest-neighbour search
(exact, inverted-file, or over product-quantized codes).

Searches run in blocks (of queries; a scan's of rows) so memory stays bounded; results come
back as flat arrays (query row, database row, distance) or ``(m, k)`` neighbours, never as an
n x n matrix.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["HammingIndex", "StackedHammingIndex", "CosineIndex", "StackedIndex", "CodedCosineIndex", "scan_knn",
           "FEW_QUERIES"]

BLOCK = 8192


def _content_sample(db: np.ndarray, m: int, seed: int) -> np.ndarray:
    """The ``m`` rows of ``db`` whose content hashes lowest, lowest first.

    Chosen by content, not position: the same vectors in any order give the same sample, so
    the trained index, and hence the approximate search, does not depend on the order of the
    input. And a subset of the vectors (a re-split's manifest) keeps the sample of the whole
    but for the rows it lacks, so its index stays close to the one of the whole. The hash reads
    every byte of a row (sparse vectors often share their first ones).
    """
    x = np.ascontiguousarray(db).view(np.uint8).reshape(len(db), -1)
    w = np.random.default_rng(seed).integers(1, 2**20, x.shape[1]).astype(np.float64)
    key = np.empty(len(x), np.float64)
    for s in range(0, len(x), BLOCK):  # exact: each sum stays below 2**53
        key[s:s + BLOCK] = x[s:s + BLOCK].astype(np.float64) @ w
    return np.lexsort((np.arange(len(x)), np.mod(key, 2_147_483_647)))[:m]


def _n_lists(n: int) -> int:
    """Inverted lists of an approximate index over ``n`` vectors: the power of two nearest
    ``4 * sqrt(n)`` (a dataset and most of its subsets get the same number), and at most one
    per 39 vectors (the fewest FAISS trains a list on without a warning)."""
    lists = 2 ** max(0, round(np.log2(4 * np.sqrt(max(n, 1)))))
    while lists > 1 and lists > n / 39:
        lists //= 2
    return lists


def _trained(index, db: np.ndarray, nprobe: int, seed: int, rounds: int | None = None):
    """``index`` (an IVF index) trained on 40 rows per list chosen by content, probing ``nprobe``
    lists; its k-means runs ``rounds`` rounds (None: FAISS's 25).

    A float index's k-means starts from the sample's first rows (by content too, where FAISS
    would start from rows drawn by their position in the sample), so that a subset of the
    vectors trains lists close to those of the whole."""
    faiss = _faiss()
    sample = np.ascontiguousarray(db[_content_sample(db, min(len(db), index.nlist * 40), seed)])
    index.cp.seed = seed
    if rounds is not None:
        index.cp.niter = rounds
    if isinstance(index, faiss.IndexBinary):
        index.train(sample)
    else:
        clustering = faiss.Clustering(index.d, index.nlist, index.cp)
        faiss.copy_array_to_vector(sample[:index.nlist].ravel(), clustering.centroids)
        clustering.train(sample, index.quantizer)
        index.is_trained = True
    index.nprobe = min(nprobe, index.nlist)
    return index


def _faiss():
    try:
        import faiss  # noqa: PLC0415 - lazy: heavy import kept out of `import leakscan`
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise ImportError("leakscan needs faiss: pip install faiss-cpu") from exc
    return faiss


#: Up to this many codes the Hamming search is exact; beyond, a binary inverted-file index
#: with about ``4 * sqrt(n)`` lists (:func:`_n_lists`), ``HAMMING_NPROBE`` probed.
HAMMING_EXACT_MAX = 100_000
HAMMING_NPROBE = 16
#: The exact search of 64-bit codes looks codes up by their four 16-bit quarters (multi-index
#: hashing), each with up to ``radius // 4`` bits flipped: two codes within the radius agree
#: to that many bits in at least one quarter, so nothing is missed. Beyond this many flips
#: (a radius of 8 or more) the lookups cost more than comparing every code (CIFAR-10's
#: hashes at radius 6: 8-10 s against 14-15 s; at radius 8: 4.4 times as long).
HASH_QUARTERS = 4
HASH_MAX_FLIPS = 1


class HammingIndex:
    """Hamming search over packed binary codes ``(n, nbytes)``.

    Exact up to ``exact_max`` codes (64-bit codes: FAISS ``IndexBinaryMultiHash``, see
    :data:`HASH_QUARTERS`, for radii it serves; otherwise every code compared,
    ``IndexBinaryFlat``), approximate beyond (``IndexBinaryIVF``), trained on a sample chosen
    by content (as :class:`CosineIndex`), so the pairs found do not depend on the order of the rows.
    ``lists`` and ``train_rounds`` set the approximate index's lists and k-means rounds (None:
    about ``4 * sqrt(n)`` lists, FAISS's 25 rounds).
    """

    def __init__(self, db: np.ndarray, *, exact_max: int | None = None, nprobe: int | None = None,
                 seed: int = 0, lists: int | None = None, train_rounds: int | None = None):
        exact_max = HAMMING_EXACT_MAX if exact_max is None else exact_max
        nprobe = HAMMING_NPROBE if nprobe is None else nprobe
        self.db = np.ascontiguousarray(db, dtype=np.uint8)
        if self.db.ndim != 2:
            raise ValueError(f"binary codes must be (n, nbytes) uint8, got {self.db.shape}")
        self.nbits = self.db.shape[1] * 8
        self._index = self._quarters = None
        self.exact = True
        n = len(self.db)
        if not n:
            return
        faiss = _faiss()
        if n <= exact_max:
            self._index = faiss.IndexBinaryFlat(self.nbits)
            if self.nbits == 64:
                self._quarters = faiss.IndexBinaryMultiHash(self.nbits, HASH_QUARTERS, self.nbits // HASH_QUARTERS)
                self._quarters.add(self.db)
        else:
            self.exact = False
            nlist = _n_lists(n) if lists is None else max(1, min(int(lists), n // 39))
            self._quantizer = faiss.IndexBinaryFlat(self.nbits)  # keep alive: the IVF index refers to it
            self._index = _trained(faiss.IndexBinaryIVF(self._quantizer, self.nbits, nlist), self.db, nprobe, seed,
                                   train_rounds)
        self._index.add(self.db)

    def range(self, queries: np.ndarray, max_distance: int, *, block: int = BLOCK):
        """All (query, db) pairs whose Hamming distance is ``<= max_distance``.

        Returns
        -------
        q, d : ndarray of int64
            Query row and database row of each hit.
        dist : ndarray of int32
            Hamming distance of each hit.
        """
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        if not 0 <= max_distance <= self.nbits:
            raise ValueError(
                f"max_distance must be in [0, {self.nbits}] for {self.nbits}-bit hashes, got {max_distance}")
        if self._index is None or len(queries) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
        index = self._index
        if self._quarters is not None and max_distance // HASH_QUARTERS <= HASH_MAX_FLIPS:
            index = self._quarters
            index.nflip = int(max_distance) // HASH_QUARTERS
        qs, ds, dists = [], [], []
        for start in range(0, len(queries), block):
            # faiss keeps distances strictly below the radius: pass max + 1
            lims, dist, ids = index.range_search(queries[start:start + block], int(max_distance) + 1)
            counts = np.diff(lims).astype(np.int64)
            qs.append(np.repeat(np.arange(start, start + len(counts), dtype=np.int64), counts))
            ds.append(ids.astype(np.int64))
            dists.append(dist.astype(np.int32))
        return np.concatenate(qs), np.concatenate(ds), np.concatenate(dists)

    def knn(self, queries: np.ndarray, k: int, *, block: int = BLOCK):
        """The ``k`` nearest codes of each query: ``(dist, ids)``, each ``(m, k)`` (int32 and
        int64), nearest first; ``-1`` ids where fewer than ``k`` were found."""
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        m = len(queries)
        dist = np.full((m, k), self.nbits + 1, np.int32)
        ids = np.full((m, k), -1, np.int64)
        if self._index is None or m == 0:
            return dist, ids
        for start in range(0, m, block):
            d, i = self._index.search(queries[start:start + block], k)
            dist[start:start + block], ids[start:start + block] = d, i
        return dist, ids

    def __len__(self) -> int:
        return len(self.db)

    def extended(self, more: np.ndarray) -> "StackedHammingIndex":
        """This index and ``more`` codes (numbered after its own), searched as one; the codes
        added are compared exactly (they are few: the calibration's copies). An exact index
        so extended finds what one exact index over both finds. This index is not changed."""
        more = np.ascontiguousarray(more, dtype=np.uint8)
        return StackedHammingIndex(self, HammingIndex(more, exact_max=len(more)))


class StackedHammingIndex:
    """Two Hamming indexes searched as one (:meth:`HammingIndex.extended`): the codes of
    ``rest`` numbered after those of ``first``."""

    def __init__(self, first: HammingIndex, rest: HammingIndex):
        self.first, self.rest = first, rest

    def __len__(self) -> int:
        return len(self.first) + len(self.rest)

    def range(self, queries: np.ndarray, max_distance: int, *, block: int = BLOCK):
        """As :meth:`HammingIndex.range` over the codes of both, each query's hits together."""
        q, d, dist = self.first.range(queries, max_distance, block=block)
        q2, d2, dist2 = self.rest.range(queries, max_distance, block=block)
        q, d, dist = np.r_[q, q2], np.r_[d, d2 + len(self.first)], np.r_[dist, dist2]
        order = np.argsort(q, kind="stable")
        return q[order], d[order], dist[order]


#: Up to this many vectors the cosine search is exact (brute force); beyond, an inverted-file
#: index (IVF) with about ``4 * sqrt(n)`` lists (:func:`_n_lists`) is used, searching ``nprobe`` of them. Measured on
#: CIFAR-10's 60,000 images (1,024 lists, the whole audit's decision, features cached, one run
#: each): probing 16 or 32 lists finds 0.940 of ciFAIR's judgment-1 pairs either way, the
#: search taking 48.8 and 67.4 s.
EXACT_MAX = 20_000
NPROBE = 16


def _half_precision_ivf(quantizer, d: int, n_lists: int):
    """An inverted-file inner-product index over ``quantizer``'s lists that keeps each vector as
    16-bit floats, not residuals: half the memory of float32 (a million embeddings: 256 MB), and
    its lists are scanned faster, memory being the bound (a million: 0.61x the time; CIFAR-10's
    60,000: 0.84x); similarities differ from float32's by under 2e-4. Its lists' centres are
    trained apart (:func:`_trained`); 16-bit floats need no training."""
    faiss = _faiss()
    return faiss.IndexIVFScalarQuantizer(quantizer, d, n_lists, faiss.ScalarQuantizer.QT_fp16,
                                         faiss.METRIC_INNER_PRODUCT, False)


class CosineIndex:
    """Inner-product search over unit vectors ``(n, d)``.

    Exact (FAISS ``IndexFlatIP``) up to ``exact_max`` vectors, approximate beyond
    (``IndexIVFScalarQuantizer`` holding the vectors as 16-bit floats, ``n_lists`` lists,
    default about ``4 * sqrt(n)``, ``nprobe`` probed), trained
    on a sample chosen by content so results are deterministic; or, given ``centroids`` (of
    another index, :attr:`centroids`), on those lists without training.
    """

    def __init__(self, db: np.ndarray, *, exact_max: int | None = None, nprobe: int | None = None, seed: int = 0,
                 n_lists: int | None = None, centroids: np.ndarray | None = None):
        exact_max = EXACT_MAX if exact_max is None else exact_max
        nprobe = NPROBE if nprobe is None else nprobe
        db = np.ascontiguousarray(db, dtype=np.float32)  # not kept: the index holds its own copy
        self._index = self._quantizer = None
        self._released = False
        self._list_of = None  # the inverted list of each row, once asked (search_order)
        self.exact = True
        self._n = n = len(db)
        if not n:
            return
        faiss = _faiss()
        d = db.shape[1]
        if n <= exact_max:
            self._index = faiss.IndexFlatIP(d)
        else:
            self.exact = False
            self._quantizer = faiss.IndexFlatIP(d)  # keep alive: the IVF index refers to it
            if centroids is not None and centroids.shape[1] == d:  # lists trained on other data
                self._quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
                ivf = _half_precision_ivf(self._quantizer, d, len(centroids))
                ivf.is_trained = True
                ivf.nprobe = min(nprobe, len(centroids))
                self._index = ivf
            else:
                ivf = _half_precision_ivf(self._quantizer, d, n_lists or _n_lists(n))
                self._index = _trained(ivf, db, nprobe, seed)
        self._index.add(db)

    @property
    def centroids(self) -> np.ndarray | None:
        """The trained lists' centres of an approximate index (None: exact), to build another
        index over much the same vectors without training again (``centroids=``)."""
        if self.exact or self._quantizer is None:
            return None
        return self._quantizer.reconstruct_n(0, self._quantizer.ntotal)

    def __len__(self) -> int:
        return self._n

    def release(self) -> None:
        """Free the vectors the index holds (a million embeddings: 256 MB) once its last search
        is done; its lists' centres stay (:attr:`centroids`). Searching it afterwards is an error."""
        self._index = self._list_of = None
        self._released = True

    def search_order(self, rows: np.ndarray) -> np.ndarray:
        """An order in which to query the index with its own ``rows`` (positions into ``rows``):
        those of one inverted list together, lists in turn. Neighbouring queries then probe much
        the same lists, which stay in the processor's cache (a million embeddings: 0.8x the
        time). Each query's neighbours are the same in any order. An exact index: as they are."""
        rows = np.asarray(rows, np.int64)
        if self.exact:
            return np.arange(len(rows))
        return np.argsort(self._lists()[rows], kind="stable")

    def _lists(self) -> np.ndarray:
        """The inverted list holding each database row."""
        if self._list_of is None:
            faiss, index = _faiss(), self._searchable()
            self._list_of = np.empty(index.ntotal, np.int64)
            for at in range(index.nlist):
                size = index.invlists.list_size(at)
                if size:
                    self._list_of[faiss.rev_swig_ptr(index.invlists.get_ids(at), size)] = at
        return self._list_of

    def _searchable(self):
        if self._released:
            raise RuntimeError("this index was released: it holds no vectors to search")
        return self._index

    def extended(self, more: np.ndarray) -> "StackedIndex":
        """This index and ``more`` rows (numbered after its own), searched as one index over
        both would be: on the same lists, probing as many (an approximate index), or exactly.
        This index is neither copied nor changed."""
        more = np.ascontiguousarray(more, dtype=np.float32)
        self._searchable()  # a released index is not extended (its vectors are gone)
        if self.exact:
            rest = CosineIndex(more, exact_max=len(more))
        else:
            rest = CosineIndex(more, exact_max=0, nprobe=self._index.nprobe, centroids=self.centroids)
        return StackedIndex(self, rest)

    def knn(self, queries: np.ndarray, k: int, *, block: int = BLOCK, ranks: np.ndarray | None = None,
            tie_floor: float = -np.inf):
        """The ``k`` most similar database rows of each query. With ``ranks`` (one per database
        row, in an order fixed by content), rows of equal similarity are taken lowest rank first,
        not in the order they were added (identical windows of different images, say); a tie
        under ``tie_floor`` (a similarity the caller accepts nothing at) is not looked past:
        its rows are any of the tied ones, at the same similarity.

        Returns
        -------
        sims : ndarray of float32, shape (m, k)
            Similarities, best first; ``-inf`` where fewer than ``k`` database rows exist.
        ids : ndarray of int64, shape (m, k)
            Database rows; ``-1`` where fewer than ``k`` exist.
        """
        return _knn(self._searchable(), queries, k, block, ranks, tie_floor)


class StackedIndex:
    """Two cosine indexes searched as one (:meth:`CosineIndex.extended`): the rows of ``rest``
    numbered after those of ``first``. The calibration searches the dataset and its copies so,
    on the audit's own index (a million embeddings: 256 MB not copied, not indexed again)."""

    def __init__(self, first: CosineIndex, rest: CosineIndex):
        self.first, self.rest = first, rest
        self.exact = first.exact

    def __len__(self) -> int:
        return len(self.first) + len(self.rest)

    @property
    def centroids(self) -> np.ndarray | None:
        return self.first.centroids

    def release(self) -> None:
        """As :meth:`CosineIndex.release`, both indexes."""
        self.first.release()
        self.rest.release()

    def search_order(self, rows: np.ndarray) -> np.ndarray:
        """As :meth:`CosineIndex.search_order` (the rows of ``first`` by its lists, then the rest's)."""
        rows = np.asarray(rows, np.int64)
        n = len(self.first)
        head = np.flatnonzero(rows < n)
        tail = np.flatnonzero(rows >= n)
        return np.concatenate([head[self.first.search_order(rows[head])],
                               tail[self.rest.search_order(rows[tail] - n)]])

    def knn(self, queries: np.ndarray, k: int, *, block: int = BLOCK, ranks: np.ndarray | None = None):
        """As :meth:`CosineIndex.knn` over the rows of both (``ranks`` over both, ``first``'s rows first)."""
        n = len(self.first)
        sims, ids = self.first.knn(queries, k, block=block, ranks=None if ranks is None else ranks[:n])
        more_sims, more_ids = self.rest.knn(queries, k, block=block, ranks=None if ranks is None else ranks[n:])
        sims = np.concatenate([sims, more_sims], axis=1)
        ids = np.concatenate([ids, np.where(more_ids >= 0, more_ids + n, -1)], axis=1)
        if ranks is not None:
            return _ties_by_rank(sims, ids, ranks, k)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, order, 1), np.take_along_axis(ids, order, 1)


def _ties_by_rank(sims: np.ndarray, ids: np.ndarray, ranks, k: int) -> tuple:
    """The ``k`` best of each row of ``(sims, ids)``, rows of equal similarity lowest rank first
    (``ids`` -1, missing, last)."""
    rank = np.where(ids >= 0, np.asarray(ranks, np.int64)[np.clip(ids, 0, None)], np.iinfo(np.int64).max)
    order = np.lexsort((rank, -sims), axis=1)[:, :k]
    return np.take_along_axis(sims, order, 1), np.take_along_axis(ids, order, 1)


#: A search with at most one query per this many database rows scans them (:func:`scan_knn`)
#: rather than index them all: the calibration's copies among a million images.
FEW_QUERIES = 16


def scan_knn(database, n: int, queries: np.ndarray, k: int, *, block: int = BLOCK,
             ranks: np.ndarray | None = None):
    """As :meth:`CosineIndex.knn` over an exact index of ``n`` database rows, with no index:
    ``database(start, stop)`` returns rows ``start:stop`` (made a block at a time, so the
    database is never whole in memory). For a few queries among many rows (the calibration's
    copies among a million images), a scan costs less than training lists, and far less memory."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    m = len(queries)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    kk = min(k if ranks is None else 2 * k, n)
    if m == 0 or n == 0:
        return np.full((m, k), -np.inf, np.float32), np.full((m, k), -1, np.int64)
    block = max(256, min(block, (1 << 21) // m))  # a block's similarities: 16 MB, or 256 rows
    q64 = queries.astype(np.float64)
    sims = np.full((m, 0), -np.inf, np.float32)
    ids = np.zeros((m, 0), np.int64)
    for start in range(0, n, block):
        part = np.asarray(database(start, min(start + block, n)), dtype=np.float64)
        s = (q64 @ part.T).astype(np.float32)  # in double: equal rows score equal wherever they sit
        take = min(kk, s.shape[1])
        if take == s.shape[1]:
            best = np.broadcast_to(np.arange(s.shape[1]), s.shape)
        elif ranks is None:
            best = np.argpartition(-s, take - 1, axis=1)[:, :take]
        else:  # every row tied with the take-th best too: the ranks choose among them below
            pivot = -np.partition(-s, take - 1, axis=1)[:, take - 1]
            tied = s >= pivot[:, None]
            best = np.argsort(~tied, axis=1, kind="stable")[:, :int(tied.sum(axis=1).max())]
        found = np.take_along_axis(s, best, 1)
        if ranks is not None and take < s.shape[1]:
            found = np.where(np.take_along_axis(tied, best, 1), found, -np.inf)
        sims = np.concatenate([sims, found], axis=1)
        ids = np.concatenate([ids, start + best], axis=1)
        # ties: the lowest ranks, or the first rows, as a flat index takes them
        after = ids if ranks is None else np.where(np.isneginf(sims), np.iinfo(np.int64).max, np.asarray(ranks)[ids])
        order = np.lexsort((after, -sims), axis=1)[:, :kk]
        sims, ids = np.take_along_axis(sims, order, 1), np.take_along_axis(ids, order, 1)
    sims, ids = (sims[:, :k], ids[:, :k]) if ranks is None else _ties_by_rank(sims, ids, ranks, k)
    if ids.shape[1] < k:  # fewer rows than k
        sims = np.concatenate([sims, np.full((m, k - ids.shape[1]), -np.inf, np.float32)], axis=1)
        ids = np.concatenate([ids, np.full((m, k - ids.shape[1]), -1, np.int64)], axis=1)
    return sims, ids


def _knn(index, queries: np.ndarray, k: int, block: int, ranks: np.ndarray | None = None,
         tie_floor: float = -np.inf):
    """``(sims, ids)`` of the ``k`` best database rows of each query (see :meth:`CosineIndex.knn`);
    with ``ranks``, twice as many are looked up (more where a tie at ``tie_floor`` or more runs
    past them) and ties taken lowest rank first."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    m = len(queries)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if index is None or m == 0:
        return np.full((m, k), -np.inf, np.float32), np.full((m, k), -1, np.int64)
    kk = k if ranks is None else max(k, min(2 * k, int(index.ntotal)))
    sims = np.empty((m, k), np.float32)
    ids = np.empty((m, k), np.int64)
    for start in range(0, m, block):
        if ranks is None:
            found_sims, found_ids = index.search(queries[start:start + block], kk)
        else:
            found_sims, found_ids = _search_past_ties(index, queries[start:start + block], k, kk, ranks, tie_floor)
        sims[start:start + block] = found_sims
        ids[start:start + block] = found_ids
    sims[ids < 0] = -np.inf
    return sims, ids


#: Most rows :func:`_search_past_ties` looks up for a query: it bounds the memory of a tie of
#: thousands (one picture held that many times, each file with pixels of its own), cut there by row.
TIE_LOOKUP_MAX = 4096


def _search_past_ties(index, queries: np.ndarray, k: int, kk: int, ranks, tie_floor: float = -np.inf) -> tuple:
    """The ``k`` best of each query, ties lowest rank first, looking up ``kk`` rows and more
    (twice as many, in turn, up to :data:`TIE_LOOKUP_MAX`) for the queries whose ``k``-th
    similarity the last row looked up still equals: the index keeps rows of equal similarity in
    the order they were added, so a tie running past the rows looked up (one picture held dozens
    of times) would be cut by row. A tie under ``tie_floor`` is left cut: the caller takes no row at it
    (a hundred thousand pictures with no folded brightness, each looking up 4,096 rows: minutes)."""
    found_sims, found_ids = index.search(queries, kk)
    found_sims[found_ids < 0] = -np.inf
    open_tie = (found_sims[:, k - 1] == found_sims[:, -1]) & (found_sims[:, -1] > -np.inf) & \
        (found_sims[:, -1] >= tie_floor)
    sims, ids = _ties_by_rank(found_sims, found_ids, ranks, k)
    more = min(2 * kk, int(index.ntotal), max(TIE_LOOKUP_MAX, kk))
    if more > kk and open_tie.any():
        sims[open_tie], ids[open_tie] = _search_past_ties(index, queries[open_tie], k, more, ranks, tie_floor)
    return sims, ids


#: Bytes per vector of a :class:`CodedCosineIndex` (product-quantizer codes).
CODE_BYTES = 16


class CodedCosineIndex:
    """Approximate inner-product search over many unit vectors kept as product-quantized
    codes of :data:`CODE_BYTES` bytes (FAISS ``IndexIVFPQ``): for window descriptors, dozens
    per image, whose float copies would not fit in memory. Trained on ``train`` (a sample
    chosen by content), with ``n_lists`` inverted lists; vectors are added in chunks
    (:meth:`add`), numbered in the order they come.
    """

    def __init__(self, train: np.ndarray, n_lists: int, *, nprobe: int | None = None, seed: int = 0):
        faiss = _faiss()
        train = np.ascontiguousarray(train, dtype=np.float32)
        d = train.shape[1]
        self._quantizer = faiss.IndexFlatIP(d)  # keep alive: the IVF index refers to it
        n_lists = max(1, min(int(n_lists), len(train) // 39))  # faiss wants 39 training vectors per list
        index = faiss.IndexIVFPQ(self._quantizer, d, n_lists, CODE_BYTES, 8, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.pq.cp.seed = seed
        index.train(train)
        index.nprobe = min(NPROBE if nprobe is None else nprobe, n_lists)
        self._index = index
        self._n = 0

    def add(self, vectors: np.ndarray) -> None:
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._n += len(vectors)

    def __len__(self) -> int:
        return self._n

    def knn(self, queries: np.ndarray, k: int, *, block: int = BLOCK, ranks: np.ndarray | None = None):
        """As :meth:`CosineIndex.knn` (similarities estimated from the codes)."""
        return _knn(self._index, queries, k, block, ranks)
