import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import leakscan
from leakscan import ConfigError, StratifiedGroupShuffleSplit, find_groups, train_test_split
from conftest import scene


@pytest.fixture(scope="module")
def images():
    base = np.stack([np.asarray(scene(s, 40)) for s in range(30)])
    return np.concatenate([base, base[:10, :, ::-1]])  # 10 mirrored copies


def test_find_groups_links_copies(images):
    g = find_groups(images, jobs=1)
    assert len(g) == 40
    assert all(g[k] == g[30 + k] for k in range(10))
    assert len(set(g[:30].tolist())) == 30


def test_train_test_split_keeps_copies_together_and_fits_a_pipeline(images):
    X = images.reshape(len(images), -1).astype(np.float32) / 255
    y = np.arange(40) % 2
    paths = [f"img{k}" for k in range(40)]
    X_tr, X_te, y_tr, y_te, p_tr, p_te = train_test_split(
        X, y, paths, images=images, test_size=0.25, stratify=y, random_state=0, jobs=1)
    assert len(X_tr) + len(X_te) == 40 and len(p_te) == len(y_te)
    assert isinstance(p_tr, list)
    g = find_groups(images, jobs=1)
    test_groups = {g[int(p[3:])] for p in p_te}
    assert not any(g[int(p[3:])] in test_groups for p in p_tr)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(X_tr, y_tr)
    assert 0.0 <= model.score(X_te, y_te) <= 1.0
    assert abs(np.mean(y_te) - 0.5) < 0.2  # stratified


def test_train_test_split_same_seed_same_result(images):
    y = np.arange(40) % 2
    a = train_test_split(y, images=images, random_state=3, jobs=1)
    b = train_test_split(y, images=images, random_state=3, jobs=1)
    assert np.array_equal(a[0], b[0])


def test_splitter_in_cross_val_score(images):
    X = images.reshape(len(images), -1).astype(np.float32) / 255
    y = np.arange(40) % 2
    groups = find_groups(images, jobs=1)
    cv = StratifiedGroupShuffleSplit(n_splits=3, test_size=0.25, random_state=0)
    scores = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)), X, y,
                             groups=groups, cv=cv)
    assert len(scores) == 3
    for tr, te in cv.split(X, y, groups):
        assert not set(groups[tr]) & set(groups[te])
        assert abs(len(te) - 10) <= 2


def test_errors_quote_the_bad_value(images):
    with pytest.raises(ConfigError, match="1.5"):
        train_test_split(np.arange(40), images=images, test_size=1.5, jobs=1)
    with pytest.raises(ConfigError, match="groups="):
        list(StratifiedGroupShuffleSplit().split(np.zeros(4)))
    with pytest.raises(ConfigError, match="images="):
        train_test_split([1, 2, 3], [4, 5, 6])


def test_groups_only_without_images():
    groups = np.repeat(np.arange(6), 2)
    tr, te = train_test_split(np.arange(12), groups=groups, test_size=4, random_state=0)
    assert not set(groups[tr]) & set(groups[te]) and len(te) == 4


def test_train_test_split_with_a_folder_of_images(tmp_path):
    from leakscan import discover
    for k in range(10):
        scene(k, 40).save(tmp_path / f"{k}.png")
    scene(0, 40).resize((48, 48)).save(tmp_path / "z-copy-of-0.png")
    paths = list(discover(tmp_path).paths)  # the order find_groups uses for a folder
    tr, te = train_test_split(np.array(paths), images=tmp_path, test_size=0.3, random_state=0, jobs=1)
    assert len(tr) + len(te) == 11
    assert ("0.png" in tr) == ("z-copy-of-0.png" in tr)


def test_paths_as_a_numpy_string_array_or_a_pandas_series(tmp_path):
    pd = pytest.importorskip("pandas")
    for k in range(5):
        scene(k, 40).save(tmp_path / f"{k}.png")
    scene(0, 40).resize((48, 48)).save(tmp_path / "copy-of-0.png")
    paths = sorted(str(p) for p in tmp_path.glob("*.png"))
    want = find_groups(paths, jobs=1)
    assert want[0] == want[5]  # 0.png and copy-of-0.png
    # np.array(paths) was read as a (6,) image array, a Series as an unknown source
    assert find_groups(np.array(paths), jobs=1).tolist() == want.tolist()
    assert find_groups(pd.Series(paths, index=range(10, 16)), jobs=1).tolist() == want.tolist()
    tr, te = train_test_split(np.arange(6), images=pd.Series(paths), test_size=2, random_state=0, jobs=1)
    assert (0 in tr) == (5 in tr)


def test_rows_without_a_known_group_are_not_one_group(images):
    # None, NaN or "" (a patient id column with gaps) means no known group, as in a manifest:
    # the audit counted every such row as one patient on both sides of the split (false leakage),
    # the splitter and a groups-only split put them all on one side (or refused the test size)
    for missing in (None, np.nan, ""):
        groups = [missing] * 40
        groups[0] = groups[1] = "p1"
        res = leakscan.audit(images, splits=["train"] * 20 + ["test"] * 20, groups=groups, jobs=1)
        assert {(lk.split, lk.against): lk.images for lk in res.leaks} == {("train", "test"): 10, ("test", "train"): 10}
        y = np.arange(40) % 2
        for _, te in StratifiedGroupShuffleSplit(n_splits=2, test_size=0.25, random_state=0).split(images, y, groups):
            assert len(te) == 10 and (0 in te) == (1 in te)
        cv = StratifiedGroupShuffleSplit(n_splits=1, test_size=0.25, random_state=0, images=images, jobs=1)
        assert [len(te) for _, te in cv.split(images, y, groups)] == [10]
        tr, te = train_test_split(np.arange(40), groups=groups, test_size=0.25, random_state=0)
        assert len(te) == 10 and (0 in te) == (1 in te)


def test_sparse_matrices_as_the_docstring_says():
    sparse = pytest.importorskip("scipy.sparse")
    X = sparse.csr_matrix(np.eye(12))  # len() of a sparse matrix raises TypeError
    groups = np.repeat(np.arange(6), 2)
    X_tr, X_te, g_tr, g_te = train_test_split(X, groups, groups=groups, test_size=4, random_state=0)
    assert X_tr.shape == (8, 12) and X_te.shape == (4, 12) and not set(g_tr) & set(g_te)
    cv = StratifiedGroupShuffleSplit(n_splits=2, test_size=4, random_state=0)
    assert [len(te) for _, te in cv.split(X, np.arange(12) % 2, groups)] == [4, 4]
    with pytest.raises(ConfigError, match="type int"):
        train_test_split(5, groups=groups)


def test_every_sparse_format_splits_as_csr_as_scikit_learn(images):
    sparse = pytest.importorskip("scipy.sparse")
    rows = np.arange(40)
    for to_format in (sparse.coo_matrix, sparse.dia_matrix):
        X = to_format(np.diag(rows + 1.0))  # COO and DIA: TypeError 'not subscriptable'
        X_tr, X_te, r_tr, r_te = train_test_split(X, rows, images=images, test_size=10, random_state=0, jobs=1)
        assert X_tr.format == X_te.format == "csr" and X_te.shape == (10, 40)
        assert (X_te.toarray().sum(axis=1) - 1).tolist() == r_te.tolist()  # the rows the other array has
        assert all((k in r_te) == (k + 30 in r_te) for k in range(10))  # copies on one side


def test_multilabel_y_and_wrong_lengths_are_named(images):
    groups = np.repeat(np.arange(20), 2)
    Y = np.c_[np.arange(40) % 2, np.arange(40) // 20]  # 2-D y: a class per row's combination, as scikit-learn
    cv = StratifiedGroupShuffleSplit(n_splits=1, test_size=0.2, random_state=0)
    [(tr, te)] = list(cv.split(images, Y, groups))  # was an IndexError from deep inside the assignment
    assert len(te) == 8 and not set(groups[tr]) & set(groups[te])
    tr_, te_ = train_test_split(np.arange(40), groups=groups, stratify=Y, test_size=0.2, random_state=0)
    assert len(te_) == 8
    with pytest.raises(ConfigError, match=r"y has shape \(5,\) but X has 40 rows"):
        list(cv.split(images, Y[:5, 0], groups))
    with_images = StratifiedGroupShuffleSplit(n_splits=1, test_size=0.2, images=images, jobs=1)
    with pytest.raises(ConfigError, match="images has 40 images but X has 20 rows"):  # said "groups has ..."
        list(with_images.split(images[:20]))


def test_paths_relative_to_the_folder_however_spelled(tmp_path, monkeypatch):
    for k in range(4):
        scene(k, 40).save(tmp_path / f"{k}.png")
    scene(0, 40).resize((48, 48)).save(tmp_path / "copy.png")
    monkeypatch.chdir(tmp_path.parent)  # "./copy.png" is not a path from the working folder
    ids = find_groups(tmp_path, paths=["./copy.png", "1.png", "x/../0.png"], jobs=1)  # was "not images of"
    assert ids.tolist() == [0, 1, 0]


def test_no_shuffle_with_both_sizes_leaves_the_rest_out_as_scikit_learn():
    groups = np.r_[0, 0, np.arange(1, 19)]  # rows 0 and 1 together
    tr, te = train_test_split(np.arange(20), groups=groups, train_size=10, test_size=5, shuffle=False)
    assert tr.tolist() == list(range(10)) and te.tolist() == list(range(10, 15))  # test held all 10 left


def test_both_sizes_given_are_checked_like_one(images):
    # with train_size and test_size adding up to less than the data, the achieved sizes went
    # unchecked: 5 test rows for test_size=3, and the splitter yielded an empty test set
    groups = np.arange(40) // 5  # with the mirrored copies: one unit of 20 rows and four of 5
    y = np.arange(40) % 2
    with pytest.raises(ConfigError, match="test_size=3, train_size=20"):
        train_test_split(np.arange(40), images=images, groups=groups, test_size=3, train_size=20,
                         random_state=0, jobs=1)
    cv = StratifiedGroupShuffleSplit(n_splits=3, test_size=3, train_size=20, random_state=0)
    with pytest.raises(ConfigError, match="test set"):
        list(cv.split(images, y, groups))
    tr, te = train_test_split(np.arange(40), images=images, test_size=0.25, train_size=0.5, random_state=0, jobs=1)
    assert (len(tr), len(te)) == (20, 10)
    cv = StratifiedGroupShuffleSplit(n_splits=2, test_size=0.25, train_size=0.5, random_state=0, images=images, jobs=1)
    assert [(len(a), len(b)) for a, b in cv.split(images, y)] == [(20, 10), (20, 10)]


def test_fractions_adding_up_to_more_than_one_are_refused_as_scikit_learn(images):
    # 0.5 + 0.51 of 4 rows rounds to 2 + 2 rows, which fit: the sizes were accepted
    with pytest.raises(ValueError, match=r"The sum of test_size and train_size = 1.01"):
        train_test_split(np.arange(4), groups=np.arange(4), test_size=0.5, train_size=0.51)
    cv = StratifiedGroupShuffleSplit(n_splits=1, test_size=0.5, train_size=0.51, images=images, jobs=1)
    with pytest.raises(ValueError, match=r"The sum of test_size and train_size = 1.01"):
        next(cv.split(images))
    tr, te = train_test_split(np.arange(4), groups=np.arange(4), test_size=0.5, train_size=0.5, random_state=0)
    assert len(tr) == len(te) == 2


def test_unreadable_images_are_named_and_none_readable_is_refused(tmp_path, caplog):
    # find_groups said nothing: paths given from the wrong folder gave every row a group of its
    # own, and train_test_split a plain random split with no copy kept together
    for k in range(4):
        scene(k, 40).save(tmp_path / f"{k}.png")
    scene(0, 40).resize((48, 48)).save(tmp_path / "copy.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    paths = [tmp_path / f"{k}.png" for k in range(4)] + [tmp_path / "copy.png", tmp_path / "broken.png",
                                                          str(tmp_path / "gone.png")]
    with caplog.at_level("WARNING", logger="leakscan"):
        ids = find_groups(paths, jobs=1)
    assert ids.tolist() == [0, 1, 2, 3, 0, 4, 5]  # still one id per row
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "2 of 7 images could not be read" in said[0]
    assert "broken.png" in said[0] and "gone.png" in said[0]
    with pytest.raises(leakscan.InputError, match="no image could be read"):
        train_test_split(np.arange(3), images=["a.png", "b.png", "c.png"], test_size=1, random_state=0, jobs=1)


def test_one_path_as_paths_is_refused_by_name(tmp_path):
    # paths="0.png" was read letter by letter: "5 of the 5 paths are not images of ...: 0, ., p ..."
    for k in range(3):
        scene(k, 40).save(tmp_path / f"{k}.png")
    for one in ("0.png", tmp_path / "0.png"):
        with pytest.raises(ValueError, match="paths must be a sequence of paths"):
            find_groups(tmp_path, paths=one, jobs=1)
    assert find_groups(tmp_path, paths=["0.png"], jobs=1).tolist() == [0]


def test_input_errors_in_scikit_learns_words(images):
    # a drop-in raises what scikit-learn raises: code that catches its messages keeps working
    y = np.arange(40) % 2
    with pytest.raises(ValueError, match=r"Found input variables with inconsistent numbers of samples: \[40, 39\]"):
        train_test_split(images, y[:39], test_size=0.25, jobs=1)
    with pytest.raises(ValueError, match="At least one array required as input"):
        train_test_split(images=images)
    with pytest.raises(ValueError, match="The sum of train_size and test_size = 41, should be smaller than the "
                                         "number of samples 40"):
        train_test_split(y, images=images, test_size=11, train_size=30)
    with pytest.raises(ValueError, match="the resulting train set will be empty"):
        train_test_split(y[:3], groups=[1, 2, 3], test_size=0.9)
    with pytest.raises(ValueError, match=r"Classes with too few members are: \['2'\]"):
        train_test_split(y, images=images, stratify=np.r_[y[:39], 2], random_state=0, jobs=1)
    with pytest.raises(ValueError, match="Stratified train/test split is not implemented for shuffle=False"):
        train_test_split(y, images=images, stratify=y, shuffle=False, jobs=1)


def test_a_random_state_given_is_drawn_from_once_per_split_as_scikit_learn():
    # the checks of random_state drew from a RandomState given: creating the splitter moved the
    # caller's generator, and train_test_split drew twice where it uses one draw
    from leakscan.model_selection import StratifiedGroupShuffleSplit

    def state(rs):
        return rs.get_state()[1].tolist(), rs.get_state()[2]

    rs, untouched = np.random.RandomState(3), np.random.RandomState(3)
    cv = StratifiedGroupShuffleSplit(n_splits=2, test_size=0.2, random_state=rs)
    assert state(rs) == state(untouched)  # made, not yet used
    groups = np.repeat(np.arange(10), 2)
    first = [te.tolist() for _, te in cv.split(np.zeros(20), np.arange(20) % 2, groups)]
    untouched.randint(0, 2**31 - 1)  # one draw for the split() call
    assert state(rs) == state(untouched)
    again = [te.tolist() for _, te in cv.split(np.zeros(20), np.arange(20) % 2, groups)]
    assert again != first  # each call goes on where the last left it, as scikit-learn's splitters
    rs, untouched = np.random.RandomState(5), np.random.RandomState(5)
    train_test_split(np.arange(20), groups=groups, test_size=0.2, random_state=rs)
    untouched.randint(0, 2**31 - 1)
    assert state(rs) == state(untouched)


def test_a_side_smaller_than_the_number_of_classes_is_refused_as_scikit_learn():
    # test_size=3 with 5 classes gave a test set lacking two classes, where scikit-learn refuses
    y = np.arange(20) % 5
    groups = np.arange(20)
    for sizes, side, rows in (({"test_size": 3}, "test", 3), ({"train_size": 3}, "train", 3),
                              ({"test_size": 0.1}, "test", 2)):
        said = rf"The {side}_size = {rows} should be greater or equal to the number of classes = 5"
        with pytest.raises(ValueError, match=said):
            train_test_split(np.arange(20), groups=groups, stratify=y, random_state=0, **sizes)
        cv = StratifiedGroupShuffleSplit(n_splits=1, random_state=0, **sizes)
        with pytest.raises(ValueError, match=said):
            next(cv.split(np.zeros(20), y, groups))
        train_test_split(np.arange(20), groups=groups, random_state=0, **sizes)  # not stratified: no such rule
        next(StratifiedGroupShuffleSplit(n_splits=1, random_state=0, **sizes).split(np.zeros(20), None, groups))
    tr, te = train_test_split(np.arange(20), groups=groups, stratify=y, test_size=5, random_state=0)
    assert sorted(y[te].tolist()) == [0, 1, 2, 3, 4]


def test_a_one_column_dataframe_as_groups_is_its_column_as_scikit_learn(tmp_path):
    # iterating a DataFrame gives its column names: "groups has 1 entries but there are 6 images",
    # where scikit-learn's GroupShuffleSplit takes the column
    pd = pytest.importorskip("pandas")
    groups = pd.DataFrame({"patient": ["p0", "p0", "p1", "p1", "p2", None]})
    tr, te = train_test_split(np.arange(6), groups=groups, test_size=2, random_state=0)
    assert sorted(te.tolist()) in ([0, 1], [2, 3])
    [(tr, te)] = list(StratifiedGroupShuffleSplit(n_splits=1, test_size=2, random_state=0).split(np.zeros(6), None,
                                                                                                 groups))
    assert sorted(te.tolist()) in ([0, 1], [2, 3])
    for k in range(6):
        scene(k, 40).save(tmp_path / f"{k}.png")
    paths = [tmp_path / f"{k}.png" for k in range(6)]
    assert find_groups(paths, groups=groups, jobs=1).tolist() == [0, 0, 1, 1, 2, 3]
    with pytest.raises(ValueError, match=r"groups should be one column, got a DataFrame of shape \(6, 2\)"):
        train_test_split(np.arange(6), groups=groups.assign(visit=range(6)), test_size=2)


def test_one_image_file_as_images_is_refused_by_name(tmp_path):
    # images="a.png" said "not a folder or a CSV manifest (... or --manifest FILE.csv)", an InputError
    # in the command line's words, not a ValueError naming images=
    for k in range(4):
        scene(k, 40).save(tmp_path / f"{k}.png")
    one = tmp_path / "0.png"
    said = "images must be a folder, a manifest, a list of paths or an image array, one image per row"
    for images in (one, str(one)):
        with pytest.raises(ValueError, match=said):
            train_test_split(np.arange(4), images=images, test_size=1, random_state=0, jobs=1)
        with pytest.raises(ValueError, match=said):
            find_groups(images, jobs=1)
        with pytest.raises(ValueError, match=said):
            next(StratifiedGroupShuffleSplit(n_splits=1, test_size=1, images=images, jobs=1).split(np.zeros(4)))
    assert find_groups(tmp_path, jobs=1).tolist() == [0, 1, 2, 3]


def test_the_classes_given_weigh_as_evidence_as_a_folders_class_folders_do(images, tmp_path, monkeypatch):
    """train_test_split's ``stratify`` and the splitter's ``y`` reach the audit as the images'
    labels (weighed as evidence, as the command line weighs class folders) when the images are
    an array or paths; a folder keeps its own; the splitter finds groups once per ``y``."""
    import sys

    module = sys.modules["leakscan.audit"]  # the package's ``audit`` is the function
    real, seen = module.audit, []

    def spy(*args, **kwargs):
        seen.append(None if kwargs.get("labels") is None else [str(v) for v in kwargs["labels"]])
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "audit", spy)
    y = np.array(["cat", "dog"] * 20)
    train_test_split(np.arange(40), images=images, stratify=y, test_size=0.25, random_state=0, jobs=1)
    train_test_split(np.arange(40), images=images, test_size=0.25, random_state=0, jobs=1)
    assert seen == [y.tolist(), None]
    cv = StratifiedGroupShuffleSplit(n_splits=2, test_size=0.25, random_state=0, images=images, jobs=1)
    for _ in range(2):
        list(cv.split(np.zeros(40), y))
    other = y[::-1]
    list(cv.split(np.zeros(40), other))
    assert seen[2:] == [y.tolist(), other.tolist()]  # once per y
    assert find_groups(images, labels=y, jobs=1).tolist() == find_groups(images, jobs=1).tolist()
    assert seen[-2:] == [y.tolist(), None]
    for k in range(6):
        scene(k, 40).save(tmp_path / f"{k}.png")
    seen.clear()
    train_test_split(np.arange(6), images=tmp_path, stratify=np.arange(6) % 2, test_size=2, random_state=0, jobs=1)
    assert seen == [None]  # a folder's labels are its own
    with pytest.raises(leakscan.InputError, match="labels apply to a list of paths or an array, not a folder"):
        find_groups(tmp_path, labels=["a"] * 6, jobs=1)
    with pytest.raises(ValueError, match="images has 40 images but X has 30 rows"):
        next(StratifiedGroupShuffleSplit(n_splits=1, test_size=0.25, images=images, jobs=1).split(np.zeros(30),
                                                                                                 y[:30]))
