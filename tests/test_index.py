"""The FAISS indexes: exact and approximate search, independent of the order of the rows."""

import numpy as np

from leakscan.index import CosineIndex, HammingIndex, _content_sample, _n_lists, scan_knn


def _hits(q, d):
    return set(zip(q.tolist(), d.tolist()))


def test_hamming_exact_range_search_matches_brute_force():
    rng = np.random.default_rng(1)
    db = rng.integers(0, 256, (500, 8), dtype=np.uint8)
    idx = HammingIndex(db)
    assert idx.exact
    q, d, dist = idx.range(db[:50], 20)
    brute = np.unpackbits(db[:50, None, :] ^ db[None, :, :], axis=-1).sum(-1)
    assert _hits(q, d) == set(zip(*np.nonzero(brute <= 20)))
    assert np.array_equal(dist, brute[q, d])


def test_hamming_search_by_quarters_misses_nothing_at_any_radius():
    """64-bit codes are looked up by their 16-bit quarters with bits flipped: at every radius
    the hits are those of comparing every code, near codes planted at each distance."""
    rng = np.random.default_rng(2)
    db = rng.integers(0, 256, (400, 8), dtype=np.uint8)
    bits = np.unpackbits(db[:200], axis=1)
    for r in range(200):  # a copy of a code with 0-13 bits flipped, anywhere
        bits[r, rng.choice(64, r % 14, replace=False)] ^= 1
    db = np.r_[db, np.packbits(bits, axis=1)]
    idx = HammingIndex(db)
    assert idx.exact and idx._quarters is not None
    brute = np.unpackbits(db[:, None, :] ^ db[None, :, :], axis=-1).sum(-1)
    for radius in (0, 3, 4, 6, 7, 8, 11, 12, 20):
        q, d, dist = idx.range(db, radius)
        assert _hits(q, d) == set(zip(*np.nonzero(brute <= radius))), radius
        assert np.array_equal(dist, brute[q, d])
        assert len(q) > len(db) or radius == 0  # planted copies within the radius are among them


def test_approximate_hamming_index_does_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    db = rng.integers(0, 256, (3000, 8), dtype=np.uint8)
    perm = rng.permutation(len(db))
    # one list probed: which codes are found depends on the trained lists, hence on the sample
    a = HammingIndex(db, exact_max=100, nprobe=1)
    b = HammingIndex(db[perm], exact_max=100, nprobe=1)
    assert not a.exact and not b.exact
    qa, da, _ = a.range(db[:300], 24)
    qb, db_, _ = b.range(db[:300], 24)
    assert len(qa) > 600  # more than the self matches
    assert _hits(qa, da) == _hits(qb, perm[db_])


def test_approximate_cosine_index_does_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(len(x))
    a, b = CosineIndex(x, exact_max=100), CosineIndex(x[perm], exact_max=100)
    assert not a.exact
    _, ia = a.knn(x[:200], 5)
    _, ib = b.knn(x[:200], 5)
    np.testing.assert_array_equal(ia, perm[ib])


def test_cosine_index_built_on_another_index_lists_is_not_trained_again():
    """The calibration searches the dataset and its copies on the search's trained lists: over
    the same vectors that is the same index, and over more vectors it keeps those lists."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a = CosineIndex(x, exact_max=100, nprobe=2)
    assert a.centroids is not None and a.centroids.shape[1] == 16
    same = CosineIndex(x, exact_max=100, nprobe=2, centroids=a.centroids)
    sa, ia = a.knn(x[:300], 5)
    ss, is_ = same.knn(x[:300], 5)
    np.testing.assert_array_equal(ia, is_)
    np.testing.assert_allclose(sa, ss, rtol=1e-6)
    copies = x[:100] + 0.05 * rng.standard_normal((100, 16)).astype(np.float32)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    more = CosineIndex(np.r_[x, copies], exact_max=100, nprobe=2, centroids=a.centroids)
    np.testing.assert_array_equal(more.centroids, a.centroids)
    _, ids = more.knn(copies, 2)
    assert (ids[:, 0] == np.arange(3000, 3100)).all()  # each copy first finds itself,
    assert (ids[:, 1] == np.arange(100)).mean() > 0.9  # then its source
    assert CosineIndex(x[:50]).centroids is None  # exact: no lists


def test_an_index_extended_by_more_rows_searches_as_one_index_over_both():
    """The calibration searches its copies beside the dataset on the search's own index: the
    same neighbours, in the same order, as an index over the dataset and the copies built on
    the same lists (approximate) or exact; and the search's index stays as it was."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    copies = x[:200] + 0.05 * rng.standard_normal((200, 16)).astype(np.float32)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    queries = np.r_[copies, x[1000:1300]]
    for exact_max in (100, 10_000):  # approximate, exact
        first = CosineIndex(x, exact_max=exact_max, nprobe=3)
        alone = first.knn(queries, 6)
        stacked = first.extended(copies)
        whole = CosineIndex(np.r_[x, copies], exact_max=exact_max, nprobe=3, centroids=first.centroids)
        assert len(stacked) == len(whole) == 3200 and stacked.exact == whole.exact == (exact_max > 3200)
        s_sims, s_ids = stacked.knn(queries, 6)
        w_sims, w_ids = whole.knn(queries, 6)
        np.testing.assert_array_equal(s_ids, w_ids)
        np.testing.assert_allclose(s_sims, w_sims, rtol=1e-6)
        assert (s_ids[:200, 0] == np.arange(3000, 3200)).all()  # each copy finds itself first
        again = first.knn(queries, 6)
        np.testing.assert_array_equal(again[1], alone[1])  # the first index is not changed
        assert len(first) == 3000
    one = CosineIndex(x[:50]).extended(x[50:60])  # fewer rows than asked for: -1, -inf
    sims, ids = one.knn(x[:3], 80)
    assert (ids[:, 60:] == -1).all() and np.isneginf(sims[:, 60:]).all() and set(ids[0, :60]) == set(range(60))


def test_a_tie_running_past_the_rows_looked_up_is_taken_by_rank_too():
    """With ranks, twice k rows are looked up; where the k-th similarity runs on past them (one
    picture held dozens of times) more are looked up, so the k taken are the lowest ranks of the
    whole tie, not of the rows the index happened to add first."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 16)).astype(np.float32)
    x[:60] = x[0]  # one vector 60 times
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ranks = np.arange(len(x))[::-1].copy()  # the rows added last rank first
    for index in (CosineIndex(x), CosineIndex(x, exact_max=0, n_lists=4, nprobe=4)):
        sims, ids = index.knn(x[:3], 5, ranks=ranks)
        assert (np.sort(ids, axis=1) == np.arange(55, 60)).all()
        assert (sims[:, 4] == sims[:, 0]).all()
    sims, ids = CosineIndex(x).knn(x[:1], 70, ranks=ranks)  # the whole tie and the rest by similarity
    assert sorted(ids[0, :60]) == list(range(60)) and (np.diff(sims[0]) <= 1e-6).all()


def _tied_index_counting_look_ups(monkeypatch):
    """``(x, index, asked)``: 400 unit vectors, the first 60 one vector (a tie of 60), their exact
    index, and the list to which each search of the FAISS index appends how many rows it looked up."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 16)).astype(np.float32)
    x[:60] = x[0]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = CosineIndex(x)
    asked = []
    search = index._index.search
    monkeypatch.setattr(index._index, "search", lambda q, kk: (asked.append(kk), search(q, kk))[1], raising=False)
    return x, index, asked


def test_a_tie_is_looked_up_past_the_rows_asked_for_only_up_to_a_bound(monkeypatch):
    """A tie of thousands would have each query look up thousands of rows (their memory): the
    look-ups stop at TIE_LOOKUP_MAX rows, where the tie is cut as the index holds it."""
    import leakscan.index as index_module

    x, index, asked = _tied_index_counting_look_ups(monkeypatch)
    monkeypatch.setattr(index_module, "TIE_LOOKUP_MAX", 20)
    sims, ids = index.knn(x[:3], 5, ranks=np.arange(len(x))[::-1].copy())
    assert max(asked) == 20 and ids.shape == (3, 5) and (sims[:, 4] == sims[:, 0]).all()
    monkeypatch.setattr(index_module, "TIE_LOOKUP_MAX", 4096)
    asked.clear()
    index.knn(x[:3], 5, ranks=np.arange(len(x))[::-1].copy())
    assert max(asked) == 80  # 10, 20, 40, 80: past the tie of 60


def test_a_tie_under_the_floor_the_caller_accepts_is_not_looked_past(monkeypatch):
    """A tie the caller takes no row of (under its least cosine) was looked up to 4,096 rows per
    query all the same: a hundred thousand pictures without folded brightness (the scale bench's)
    tied at one similarity took minutes. Under ``tie_floor`` the rows looked up first stand; at or
    over it the tie is looked past and taken by rank, as before."""
    x, index, asked = _tied_index_counting_look_ups(monkeypatch)
    ranks = np.arange(len(x))[::-1].copy()
    tie = float(x[0] @ x[0])  # the query is one of the 60: the tie is at its own similarity, ~1
    sims, ids = index.knn(x[:3], 5, ranks=ranks, tie_floor=tie + 1e-3)
    assert max(asked) == 10 and (sims[:, 4] == sims[:, 0]).all() and set(ids.ravel()) <= set(range(60))
    asked.clear()
    sims, ids = index.knn(x[:3], 5, ranks=ranks, tie_floor=tie - 1e-3)
    assert max(asked) == 80 and (np.sort(ids, axis=1) == np.arange(55, 60)).all()


def test_a_scan_takes_a_tie_longer_than_the_rows_it_keeps_by_rank():
    """A scan keeps twice k rows of each block: of a tie longer than that (one picture held
    dozens of times), the lowest ranks, not the rows a partition happened to pick."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1000, 16)).astype(np.float32)
    x[[*range(0, 1000, 20)]] = x[0]  # one vector 50 times, in every block
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for ranks in (np.arange(len(x))[::-1].copy(), rng.permutation(len(x))):
        tie = np.arange(0, 1000, 20)
        want = tie[np.argsort(ranks[tie])][:5]
        for block in (256, 4096):
            sims, ids = scan_knn(lambda a, b: x[a:b], len(x), x[[0, 20]], 5, block=block, ranks=ranks)
            assert (ids == want).all()


def test_a_scan_in_blocks_finds_what_an_exact_index_finds():
    """A few queries among many rows are scanned a block at a time (no index built): the same
    neighbours, in the same order (ties by rank), as an exact index over every row."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5000, 16)).astype(np.float32)
    x[4000:4100] = x[:100]  # identical rows: ties the ranks must break
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries = np.r_[x[:100] + 0.01, x[2000:2050]]
    ranks = rng.permutation(len(x))
    calls = []

    def rows(start, stop):
        calls.append(stop - start)
        return x[start:stop]
    for k, block in ((6, 300), (1, 4096)):
        e_sims, e_ids = CosineIndex(x, exact_max=10_000).knn(queries, k, ranks=ranks)
        s_sims, s_ids = scan_knn(rows, len(x), queries, k, block=block, ranks=ranks)
        np.testing.assert_array_equal(s_ids, e_ids)
        np.testing.assert_allclose(s_sims, e_sims, rtol=1e-5)
    sims, ids = scan_knn(rows, len(x), queries, 5100)  # k above the rows: every row, then -1 and -inf
    assert (np.sort(ids[:, :5000], axis=1) == np.arange(5000)).all() and (ids[:, 5000:] == -1).all()
    assert (np.diff(sims[:, :5000], axis=1) <= 0).all() and np.isneginf(sims[:, 5000:]).all()
    assert max(calls) <= 8192 and min(calls[:10]) >= 256  # read a block at a time
    tied = scan_knn(rows, len(x), x[:3], 2, ranks=ranks)[1]  # each row and its twin: lower rank first
    for q in range(3):
        twins = [q, 4000 + q]
        assert tied[q].tolist() == sorted(twins, key=lambda r: ranks[r])
    sims, ids = scan_knn(rows, 0, queries, 3)
    assert (ids == -1).all() and np.isneginf(sims).all()


def test_a_hamming_index_extended_by_more_codes_finds_what_one_index_over_both_finds():
    """The calibration's hash search: the audit's pHash index and its copies' codes beside it.
    Exact, it finds the very hits of one index over both, each query's together; approximate,
    the hits of the audit's index, and every hit among the codes added."""
    rng = np.random.default_rng(11)
    db = rng.integers(0, 256, (3000, 8), dtype=np.uint8)
    flips = np.unpackbits(db[:300], axis=1)
    flips[np.arange(300), rng.integers(0, 64, 300)] ^= 1  # each copy one bit away from its source
    more = np.packbits(flips, axis=1)
    queries = np.r_[more[:100], db[500:700]]
    for radius in (4, 10):  # the quarter lookups, every code compared
        one = HammingIndex(np.r_[db, more], exact_max=10_000)
        stacked = HammingIndex(db, exact_max=10_000).extended(more)
        assert len(stacked) == 3300
        got, want = stacked.range(queries, radius), one.range(queries, radius)
        assert _hits(*got[:2]) == _hits(*want[:2])
        assert np.all(np.diff(got[0]) >= 0)  # each query's hits together
        dist = dict(zip(zip(got[0].tolist(), got[1].tolist()), got[2].tolist()))
        assert all(dist[(a, b)] == c for a, b, c in zip(*[w.tolist() for w in want]))
    first = HammingIndex(db, exact_max=100)  # approximate
    assert not first.exact
    q, d, _ = first.extended(more).range(queries, 6)
    q1, d1, _ = first.range(queries, 6)
    assert _hits(q[d < 3000], d[d < 3000]) == _hits(q1, d1)
    brute = np.unpackbits(queries[:, None, :] ^ more[None, :, :], axis=-1).sum(-1)
    assert _hits(q[d >= 3000], d[d >= 3000] - 3000) == set(zip(*np.nonzero(brute <= 6)))


def test_most_of_the_vectors_train_on_the_same_sample_and_lists_as_all_of_them():
    """A re-split's manifest holds most of the audited images: its index is trained on the
    whole's sample but for the rows it lacks, into as many lists, so both search alike."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    kept = np.flatnonzero(rng.random(len(x)) > 0.02)
    whole = set(_content_sample(x, 800, 0).tolist())
    part = set(kept[_content_sample(x[kept], 800, 0)].tolist())
    lost = whole - set(kept.tolist())
    assert lost and whole - lost <= part  # the whole's sample, but for the rows not kept,
    assert len(part - whole) == len(lost)  # which the next rows by content replace
    assert _n_lists(len(x)) == _n_lists(len(kept)) == 128  # a power of two, at most n / 39
    assert _n_lists(60_000) == _n_lists(56_000) == 1024  # near 4 * sqrt(n)
    assert _n_lists(100) == 2  # at least 39 vectors a list
    # k-means starts from the sample's first rows: the lists, then the neighbours found, agree
    a, b = CosineIndex(x, exact_max=100), CosineIndex(x[kept], exact_max=100)
    assert len(a.centroids) == len(b.centroids)
    _, ia = a.knn(x[kept[:2000]], 2)
    _, ib = b.knn(x[kept[:2000]], 2)
    # random vectors, each far from all others (the hardest case): 0.90 of the nearest
    # neighbours agree (0.87 when each index drew its own sample and starting rows)
    assert (ia[:, 1] == kept[ib[:, 1]]).mean() > 0.885


RELEASED = r"""
import numpy as np
from leakscan.index import CosineIndex
from leakscan.memory import release_free_memory

def rss_mb():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024

x = np.random.default_rng(0).standard_normal((300_000, 128)).astype(np.float32)  # 146 MB
x /= np.linalg.norm(x, axis=1, keepdims=True)
index = CosineIndex(x, exact_max=0, n_lists=64)
del x
before = rss_mb()
index.release()
release_free_memory()
print(before - rss_mb())
"""


def test_a_released_index_gives_its_vectors_back_and_keeps_its_lists():
    """The search's index is released once the calibration, its last user, has searched it: its
    memory comes back, its lists' centres stay, and a search of it is an error, not empty hits."""
    import platform
    import subprocess
    import sys

    import pytest

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for exact_max in (100, 10_000):  # approximate, exact
        index = CosineIndex(x, exact_max=exact_max, nprobe=2)
        centroids = index.centroids
        stacked = index.extended(x[:10])
        index.release()
        assert len(index) == 3000
        if centroids is None:  # exact: no lists
            assert index.centroids is None
        else:
            np.testing.assert_array_equal(index.centroids, centroids)
        for search in (lambda: index.knn(x[:5], 3), lambda: index.extended(x[:5]), lambda: stacked.knn(x[:5], 3)):
            with pytest.raises(RuntimeError, match="released"):
                search()
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":  # freed memory given back: glibc's trim
        out = subprocess.run([sys.executable, "-c", RELEASED], capture_output=True, text=True, check=True)
        assert float(out.stdout) > 50, out.stdout  # of the 73 MB of half-precision vectors the index held


def test_an_approximate_index_holds_half_precision_vectors_and_finds_what_float32_finds():
    """The approximate index keeps its vectors as 16-bit floats (half the memory, a faster scan):
    its similarities are those of float32 to within 2e-4, and over well-separated neighbours
    (copies of rows) it finds the same rows in the same order as the same lists in float32."""
    import faiss

    rng = np.random.default_rng(11)
    x = rng.standard_normal((4000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    copies = x[:300] + 0.1 * rng.standard_normal((300, 64)).astype(np.float32)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    db = np.r_[x, copies]
    index = CosineIndex(db, exact_max=100, nprobe=4)
    assert not index.exact
    codes = faiss.downcast_index(index._index)
    assert isinstance(codes, faiss.IndexIVFScalarQuantizer) and codes.sq.qtype == faiss.ScalarQuantizer.QT_fp16
    assert codes.code_size == 2 * 64  # two bytes a dimension, not four
    reference = faiss.IndexIVFFlat(faiss.IndexFlatIP(64), 64, len(index.centroids), faiss.METRIC_INNER_PRODUCT)
    reference.quantizer.add(index.centroids)
    reference.is_trained = True
    reference.add(db)
    reference.nprobe = 4
    sims, ids = index.knn(x[:300], 2)
    ref_sims, ref_ids = reference.search(x[:300], 2)
    np.testing.assert_array_equal(ids, ref_ids)
    assert (ids[:, 0] == np.arange(300)).all()  # each row finds itself first
    assert np.abs(sims - ref_sims).max() < 2e-4


def test_an_approximate_index_orders_its_own_rows_by_list_and_finds_the_same_neighbours_in_that_order():
    """``search_order`` puts rows of one inverted list together (queried so, their probed lists
    stay in the cache); each row's neighbours are the same as in the rows' own order. An exact
    index, and a stacked one, order rows too (the stacked: each part's rows by its own lists)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = CosineIndex(x, exact_max=100, nprobe=4)
    rows = rng.permutation(6000)[:2500]
    order = index.search_order(rows)
    assert sorted(order.tolist()) == list(range(len(rows)))
    lists = index._lists()
    assert (np.diff(lists[rows[order]]) >= 0).all()  # list by list
    assert len(np.unique(lists)) > 20  # many lists, so the order is not the given one
    assert not (order == np.arange(len(rows))).all()
    ids_as_given = index.knn(x[rows], 5)[1]
    ids_ordered = index.knn(x[rows[order]], 5)[1]
    np.testing.assert_array_equal(ids_ordered, ids_as_given[order])
    exact = CosineIndex(x[:50])
    np.testing.assert_array_equal(exact.search_order(np.array([7, 3, 9])), [0, 1, 2])
    stacked = index.extended(x[:700])
    both = np.array([6650, 12, 6001, 4000, 3])
    order = stacked.search_order(both)
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4]
    assert set(both[order[:3]]) == {12, 4000, 3} and set(both[order[3:]]) == {6650, 6001}
    assert (np.diff(lists[both[order[:3]]]) >= 0).all()
