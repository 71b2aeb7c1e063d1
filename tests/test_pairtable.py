"""PairTable: take/concat/sorted, and the stored codes of Kind and MatchView never change."""

import numpy as np
import pytest

from leakscan.pairs import KINDS, Kind, PairTable
from leakscan.views import VARIANT_NAMES, MatchView


def table(i, j, kind=Kind.HASH, variant=MatchView.IDENTITY):
    n = len(i)
    return PairTable(i=np.asarray(i, np.int64), j=np.asarray(j, np.int64), kind=np.full(n, kind, np.uint8),
                     score=np.linspace(0.5, 1, n, dtype=np.float32), hamming=np.arange(n, dtype=np.int16),
                     cosine=np.full(n, 0.9, np.float32), variant=np.full(n, variant, np.int8),
                     same_bytes=np.zeros(n, bool), ncc=np.full(n, 0.8, np.float32))


def test_take_by_mask_and_by_position_keeps_every_column_aligned():
    t = table([0, 1, 2, 3], [5, 6, 7, 8])
    m = t.take(np.array([True, False, True, False]))
    assert m.i.tolist() == [0, 2] and m.j.tolist() == [5, 7] and m.hamming.tolist() == [0, 2]
    p = t.take([3, 0])
    assert p.i.tolist() == [3, 0] and p.score.tolist() == [t.score[3], t.score[0]]
    assert len(t.take(np.zeros(4, bool))) == 0


def test_concat_and_sorted():
    a, b = table([2, 0], [3, 9]), table([1], [4], kind=Kind.MODEL, variant=MatchView.NONE)
    c = PairTable.concat([a, b])
    assert len(c) == 3 and c.kind.tolist() == [1, 1, 3]
    s = c.sorted()
    assert list(zip(s.i.tolist(), s.j.tolist())) == [(0, 9), (1, 4), (2, 3)]
    assert s.kind.dtype == np.uint8 and s.variant.dtype == np.int8
    assert len(PairTable.concat([])) == 0


def test_stored_codes_are_stable():
    # cached search results and pairs.csv depend on these numbers: never renumber them
    assert [int(k) for k in Kind] == [0, 1, 2, 3, 4]
    assert KINDS == ("exact", "hash", "embedding", "model", "keypoint")
    assert MatchView.NONE == -1 and MatchView.CROPPED == 16
    assert [int(MatchView.derotated(v)) for v in range(8)] == list(range(8, 16))
    assert [MatchView.describe(v) for v in range(8)] == list(VARIANT_NAMES)
    assert MatchView.describe(MatchView.DEROTATED) == "rotated"
    assert MatchView.describe(MatchView.DEROTATED_HFLIP) == "rotated, hflip"
    assert MatchView.describe(MatchView.CROPPED) == "cropped"
    assert MatchView.describe(MatchView.NONE) == ""


def test_match_view_masks():
    codes = np.arange(-1, 17)
    assert MatchView.is_derotated(codes).tolist() == [c in range(8, 16) for c in codes]
    assert MatchView.is_other_view(codes).tolist() == [c >= 8 for c in codes]
    expect = [-1] + list(range(8)) + list(range(8)) + [0]
    assert MatchView.dihedral(codes).tolist() == expect
    crops = np.array([MatchView.CROPPED, MatchView.CROPPED_HFLIP, MatchView.IDENTITY, MatchView.HFLIP])
    assert MatchView.is_cropped(crops).tolist() == [True, True, False, False]
    assert MatchView.dihedral(crops).tolist() == [0, 1, 0, 1]  # a mirrored crop's whole images line up mirrored
    assert MatchView.describe(MatchView.CROPPED_HFLIP) == "cropped, hflip"


def test_detail_reads_the_codes():
    t = PairTable.concat([table([0], [1], Kind.EXACT, MatchView.NONE), table([0], [2], Kind.MODEL, MatchView.NONE),
                          table([0], [3], Kind.EMBEDDING, MatchView.CROPPED),
                          table([0], [4], Kind.HASH, MatchView.DEROTATED_ROT90)])
    assert t.detail() == ["same pixels", "model", "cropped", "rotated, rot90"]


def test_rows_must_be_ordered():
    with pytest.raises(ValueError, match="i < j"):
        table([3], [1])


def test_first_per_pair_keeps_the_first_row_of_each_pair_by_the_keys():
    i, j = np.array([0, 0, 0, 1, 1]), np.array([1, 1, 1, 2, 2])
    score = np.array([0.2, 0.9, 0.5, 0.3, 0.4], np.float32)
    tile = np.array([False, False, True, False, False])
    pt = PairTable(i, j, np.full(5, Kind.EMBEDDING, np.uint8), score, np.zeros(5, np.int16), score,
                   np.zeros(5, np.int8), np.zeros(5, bool))
    best = pt.first_per_pair(-pt.score)
    assert list(zip(best.i.tolist(), best.j.tolist(), best.score.astype(float).round(1).tolist())) == [(0, 1, 0.9), (1, 2, 0.4)]
    apart = pt.first_per_pair(-pt.score, apart=tile)
    assert sorted(zip(apart.i.tolist(), apart.score.astype(float).round(1).tolist())) == [(0, 0.5), (0, 0.9), (1, 0.4)]
