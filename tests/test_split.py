import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from leakscan import ConfigError, assign_splits
from leakscan.split import _largest_remainder, parse_ratios


def straddlers(units, splits):
    ok = splits >= 0
    seen = {}
    bad = 0
    for u, s in zip(units[ok], splits[ok]):
        if seen.setdefault(u, s) != s:
            bad += 1
    return bad


@st.composite
def dataset(draw):
    n = draw(st.integers(20, 400))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_units = draw(st.integers(max(2, n // 6), n))
    units = rng.integers(0, n_units, n)
    labels = rng.integers(0, draw(st.integers(1, 5)), n)
    current = np.where(rng.random(n) < draw(st.floats(0.5, 0.9)), "train", "test").astype(object)
    return units, labels, current


RATIOS = st.sampled_from([{"train": 0.8, "test": 0.2}, {"train": 0.7, "val": 0.15, "test": 0.15},
                          {"a": 0.5, "b": 0.5}])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=dataset(), ratios=RATIOS, seed=st.integers(0, 100), shuffle=st.booleans())
def test_no_group_straddles_and_every_row_assigned_once(data, ratios, seed, shuffle):
    units, labels, current = data
    a = assign_splits(units, labels, ratios=ratios, current=current, shuffle=shuffle, random_state=seed)
    assert a.splits.shape == (len(units),)
    assert np.all(a.splits >= 0)  # nothing dropped without keep/drop
    assert straddlers(units, a.splits) == 0
    assert sorted(a.split_names) == sorted(ratios)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), ratios=RATIOS)
def test_ratios_and_class_shares_met_when_feasible(seed, ratios):
    """Mostly singletons (the feasible case): sizes within 1% + 1 image, class shares within 2 pp."""
    rng = np.random.default_rng(seed)
    n = 2000
    units = np.arange(n)
    pairs = rng.choice(n, 100, replace=False)
    units[pairs[50:]] = units[pairs[:50]]  # 50 duplicate pairs
    labels = rng.integers(0, 4, n)
    a = assign_splits(units, labels, ratios=ratios, shuffle=True, random_state=seed)
    sizes = np.bincount(a.splits, minlength=len(a.split_names))
    for s, name in enumerate(a.split_names):
        assert abs(sizes[s] - ratios[name] * n) <= 0.01 * n + 1
        for c in range(4):
            share = np.mean(labels[a.splits == s] == c)
            assert abs(share - np.mean(labels == c)) <= 0.02
    assert straddlers(units, a.splits) == 0


@settings(max_examples=30, deadline=None)
@given(data=dataset(), seed=st.integers(0, 50))
def test_same_seed_same_split(data, seed):
    units, labels, current = data
    kw = dict(ratios={"train": 0.6, "test": 0.4}, shuffle=True)
    a = assign_splits(units, labels, random_state=seed, **kw)
    b = assign_splits(units, labels, random_state=seed, **kw)
    assert np.array_equal(a.splits, b.splits)


@settings(max_examples=60, deadline=None)
@given(data=dataset(), drop=st.booleans(), shuffle=st.booleans())
def test_keep_split_unchanged(data, drop, shuffle):
    units, labels, current = data
    assume((current == "test").any())
    a = assign_splits(units, labels, current=current, keep=["test"], drop=drop, shuffle=shuffle, random_state=0)
    names = a.names()
    assert np.all(names[current == "test"] == "test")  # no kept image leaves
    assert straddlers(units, a.splits) == 0
    test_units = set(units[current == "test"].tolist())
    tied = np.array([u in test_units for u in units]) & (current != "test")
    if drop:
        assert np.all(a.dropped == tied) and (names == "test").sum() == (current == "test").sum()
    else:
        assert not a.dropped.any() and np.all(names[tied] == "test")


def test_minimal_change_moves_only_what_it_must():
    n = 1000
    units = np.arange(n)
    units[900] = 0  # one test image duplicates train image 0
    labels = np.zeros(n, int)
    current = np.array(["train"] * 800 + ["test"] * 200, dtype=object)
    a = assign_splits(units, labels, current=current, random_state=0)
    assert straddlers(units, a.splits) == 0
    assert a.moved == 2  # the leaked image joins its twin, one image swaps back to keep sizes
    assert np.bincount(a.splits).tolist() == [800, 200]


def test_parse_ratios_errors_quote_value():
    assert parse_ratios("train=8,test=2") == {"train": 0.8, "test": 0.2}
    with pytest.raises(ConfigError, match="'train:0.8'"):
        parse_ratios("train:0.8")
    with pytest.raises(ConfigError, match="test=-1"):
        parse_ratios("train=1,test=-1")
    with pytest.raises(ConfigError, match="once"):
        parse_ratios("a=1,a=2")
    # a share without a split name was said to name a split twice ("got , test")
    for text in ("=0.5,test=0.5", " =0.5,test=0.5"):
        with pytest.raises(ConfigError, match="cannot read '=0.5'"):
            parse_ratios(text)
    with pytest.raises(ConfigError, match=r"a split without a name, got \['', 'test'\]"):
        parse_ratios({"": 0.5, "test": 0.5})


def test_giant_group_reported():
    units = np.r_[np.zeros(600, int), np.arange(1, 401)]
    a = assign_splits(units, np.zeros(1000), ratios={"train": 0.5, "test": 0.5}, shuffle=True, random_state=0)
    assert straddlers(units, a.splits) == 0
    assert any("target" in p for p in a.problems)


@pytest.mark.parametrize("shuffle", [True, False])
def test_a_small_split_is_not_left_empty_when_every_image_has_a_copy(shuffle):
    # 10 pairs (every image a duplicate), two classes, val and test a tenth each: a pair per
    # split meets both sizes. The shuffle gave val every pair its first choice tied on (test
    # empty); the minimal change moved no pair out of train (larger than a split's lack of one
    # image per class): val and test empty
    units = np.repeat(np.arange(10), 2)
    labels = np.repeat(np.array(list("ababababab")), 2)
    current = np.tile(np.array(["train", "test"], dtype=object), 10)
    a = assign_splits(units, labels, ratios={"train": 0.8, "val": 0.1, "test": 0.1}, current=current,
                      shuffle=shuffle, random_state=0)
    assert straddlers(units, a.splits) == 0
    assert dict(zip(a.split_names, np.bincount(a.splits, minlength=3).tolist())) == {"train": 16, "val": 2,
                                                                                      "test": 2}
    assert not any("has 0 images" in p for p in a.problems)


def test_class_targets_round_the_largest_remainders_first_as_scikit_learn():
    # classes of 15, 9 and 6 at 70/30: the test split's exact shares are 4.5, 2.7 and 1.8. The
    # targets were rounded class by class, largest first, so the test split was full before the
    # smallest class came: 5, 3, 1. scikit-learn's stratified split gives 4, 3, 2
    from sklearn.model_selection import train_test_split as sk_split

    from leakscan.split import _controlled_rounding

    tot = np.array([15, 9, 6])
    target = _controlled_rounding(tot, np.array([0.7, 0.3]))
    y = np.repeat([0, 1, 2], tot)
    _, y_test = sk_split(y, test_size=0.3, stratify=y, random_state=0)
    assert target[1].tolist() == np.bincount(y_test).tolist() == [4, 3, 2]
    assert target.sum(axis=0).tolist() == tot.tolist() and target.sum(axis=1).tolist() == [21, 9]
    # any table: each class sums to its total, each split to its size, and every cell is within
    # one of its exact share
    rng = np.random.default_rng(0)
    for _ in range(300):
        tot, w = rng.integers(0, 40, rng.integers(1, 12)), rng.random(rng.integers(2, 5)) + 0.01
        target = _controlled_rounding(tot, w)
        exact = np.outer(w / w.sum(), tot)
        assert target.sum(axis=0).tolist() == tot.tolist()
        assert target.sum(axis=1).tolist() == _largest_remainder(int(tot.sum()), w).tolist()
        assert np.abs(target - exact).max() < 2
