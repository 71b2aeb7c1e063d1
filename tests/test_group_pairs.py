"""Every pair of a duplicate group is measured (the smallest groups first, within a budget): a
copy the search reached only through other copies of the same picture is listed as a pair
when its own evidence holds."""

import dataclasses

import numpy as np
from PIL import Image

from leakscan import DetectSettings, discover, extract_features
from leakscan.decide import within_group_pairs, detect
from leakscan.pairs import PairTable, find_candidates
from conftest import scene


def _chain(rows) -> PairTable:
    i, j = np.array(rows[:-1], np.int64), np.array(rows[1:], np.int64)
    k = len(i)
    return PairTable(i, j, np.full(k, 2, np.uint8), np.ones(k, np.float32), np.zeros(k, np.int16),
                     np.ones(k, np.float32), np.zeros(k, np.int8), np.zeros(k, bool), confidence=np.ones(k, np.float32))


def _proposing(found, pairs: PairTable):
    """``found`` as if its search had proposed only ``pairs``."""
    return dataclasses.replace(found, pairs=pairs)


def _copies(img: Image.Image) -> list:
    w, h = img.size
    return [np.asarray(img),
            np.asarray(img.resize((w * 3 // 4, h * 3 // 4), Image.LANCZOS).resize((w, h), Image.BICUBIC)),
            np.asarray(img.crop((2, 2, w, h)).resize((w, h), Image.BILINEAR)),
            np.clip(np.asarray(img, np.float32) * 0.85 + 20, 0, 255).astype(np.uint8),
            np.asarray(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]


def _setup():
    copies = _copies(scene(7, 96))
    others = [np.asarray(scene(100 + s, 96)) for s in range(40)]
    imgs = np.stack(copies + others)
    feats = extract_features(discover(imgs), jobs=1)
    s = DetectSettings()
    det = detect(feats, s)
    assert det.calibration is not None
    return feats, s, det


def test_every_pair_of_a_group_of_copies_is_measured_and_held():
    feats, s, det = _setup()
    # the search proposed only a chain through the five copies: the other six pairs are new
    chain = _chain([0, 1, 2, 3, 4])
    found = find_candidates(feats, s)
    within = within_group_pairs(feats, chain, _proposing(found, chain), s, det.calibration)
    got = set(zip(within.i.tolist(), within.j.tolist()))
    assert got == {(0, 2), (0, 3), (0, 4), (1, 3), (1, 4), (2, 4)}
    assert (within.confidence >= s.min_confidence).all()
    assert within.variant[within.j == 4].tolist() == [1, 1, 1]  # the mirrored copy lines up mirrored
    # a group chained to an unrelated picture: its pairs with that picture are not held
    chained = _chain([0, 1, 10])
    within = within_group_pairs(feats, chained, _proposing(found, chained), s, det.calibration)
    assert not ((within.j == 10) & (within.confidence >= s.min_confidence)).any()
    # pairs the search already proposed (and the decision weighed) are not measured again
    within = within_group_pairs(feats, chain, found, s, det.calibration)
    assert not np.isin(within.i * len(feats) + within.j, found.pairs.i * len(feats) + found.pairs.j).any()
    # ... but one proposed and refused by its reading (measured nothing) is
    assert found.pairs.take((found.pairs.i == 0) & (found.pairs.j == 2)).keys().size
    measured = found.pairs.take(~((found.pairs.i == 0) & (found.pairs.j == 2))).keys()
    within = within_group_pairs(feats, chain, found, s, det.calibration, measured=measured)
    assert set(zip(within.i.tolist(), within.j.tolist())) == {(0, 2)}


def test_groups_beyond_the_budget_and_cross_scope_within_a_split_are_left_alone():
    feats, s, det = _setup()
    found = find_candidates(feats, s)
    # smallest groups first while their pairs fit: a group of 4 (6 pairs) fits 8, one of 5 (10) does not
    small, big = _chain([0, 1, 2, 3]), _chain([10, 11, 12, 13, 14])
    both = PairTable.concat([small, big]).sorted()
    within = within_group_pairs(feats, both, _proposing(found, both), s, det.calibration, budget=8)
    assert set(within.i.tolist()) | set(within.j.tolist()) <= {0, 1, 2, 3}
    assert len(within) == 3  # (0, 2), (0, 3), (1, 3)
    assert len(within_group_pairs(feats, both, _proposing(found, both), s, det.calibration, budget=5)) == 0
    chain = _chain([0, 1, 2, 3, 4])
    splits = np.array(["train"] * 3 + ["test"] * 2 + ["train"] * 40, dtype=object)
    cross = dataclasses.replace(s, scope="cross")
    within = within_group_pairs(feats, chain, _proposing(found, chain), cross, det.calibration, splits)
    assert len(within) and (splits[within.i] != splits[within.j]).all()


def test_identical_pictures_stay_a_star_of_exact_pairs():
    """Only one of a set of identical pictures takes part: its copies are not paired again."""
    copies = _copies(scene(7, 96))
    others = [np.asarray(scene(100 + s, 96)) for s in range(40)]
    imgs = np.stack(copies + [copies[0], copies[0]] + others)  # rows 5 and 6: identical to row 0
    feats = extract_features(discover(imgs), jobs=1)
    s = DetectSettings()
    det = detect(feats, s)
    pairs = dict(zip(zip(det.pairs.i.tolist(), det.pairs.j.tolist()), det.pairs.kind_names()))
    assert pairs[(0, 5)] == pairs[(0, 6)] == "exact" and (5, 6) not in pairs
    assert not any(5 in p or 6 in p for p, kind in pairs.items() if kind != "exact")
    assert {(a, b) for a in range(5) for b in range(a + 1, 5)} <= set(pairs)


def test_the_detection_lists_every_pair_of_its_groups_of_copies():
    feats, s, det = _setup()
    pairs = set(zip(det.pairs.i.tolist(), det.pairs.j.tolist()))
    assert len(pairs) == len(det.pairs)  # each pair once, whichever way it was found
    assert {(a, b) for a in range(5) for b in range(a + 1, 5)} <= pairs
    assert not any(a >= 5 or b >= 5 for a, b in pairs)
