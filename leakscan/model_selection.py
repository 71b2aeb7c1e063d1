"""scikit-learn-shaped API: group ids for sklearn's group splitters, a leak-free
``train_test_split``, and the stratified group *shuffle* splitter scikit-learn lacks
(scikit-learn issue 12076)."""

from __future__ import annotations

import logging
import numbers
import os

import numpy as np

from .errors import ArgumentError, ConfigError, InputError
from .groups import components, join_links
from .manifest import IMAGE_EXTENSIONS, text_column, path_key
from .sources.discover import DICOM_SUFFIXES
from .split import assign_splits, check_random_state, validate_random_state

__all__ = ["find_groups", "train_test_split", "StratifiedGroupShuffleSplit"]

log = logging.getLogger(__name__)


def find_groups(images, *, groups=None, labels=None, settings=None, jobs=None, progress=None, decisions=None,
                paths=None, return_paths: bool = False):
    """One group id per image: duplicates (and images sharing a user group) share an id.

    So do the frames of one multi-frame DICOM file and georeferenced tiles whose footprints
    overlap (within one CRS), as in a re-split.

    Pass the result as ``groups=`` to ``GroupKFold``, ``StratifiedGroupKFold``,
    ``GroupShuffleSplit`` or :class:`StratifiedGroupShuffleSplit`.

    Parameters
    ----------
    images : folder, list of paths, or ndarray (N, H, W[, C])
    groups : sequence, optional
        Known groups (patient id...) to merge with the duplicate groups; a row without one
        (None, NaN, ``""``) is in no known group.
    labels : sequence, optional
        One class per image, for a list of paths or an image array: weighed as evidence, as
        the audit weighs a folder's class folders (a pair of two classes needs the stronger
        evidence the dataset's own copies and look-alikes say; ``settings.label_evidence``).
        A folder, CSV or table carries its own (``labels`` with one is an InputError). :func:`train_test_split` and
        :class:`StratifiedGroupShuffleSplit` pass their ``stratify`` and ``y`` here.
    settings : DetectSettings, optional
    jobs : int, optional
    decisions : path-like or records, optional
        Your verdicts on pairs (see :mod:`leakscan.decisions`): ``distinct`` pairs are never
        grouped, ``duplicate`` pairs always are.
    paths : sequence of path-like, optional
        With a folder or CSV: return ids aligned with these paths (your own order, the order
        of your ``X``), not with the folder's listing. Absolute paths or paths relative to the
        folder; each must be an image of ``images``.
    return_paths : bool
        Also return the path of each id (the order of the ids), to line ids up with your data.

    Returns
    -------
    ndarray of int64, shape (N,)
        Ids numbered by first occurrence. Images that fail to decode get a group of their own (or
        their known group's), with a one-line warning naming them; when none can be read, InputError.
    (ids, paths) : when ``return_paths`` is True; ``paths`` as the audit names them (relative
        to the folder; row numbers for an array) or, with ``paths=``, yours.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    >>> X[3] = X[1]
    >>> find_groups(X, jobs=1).tolist()
    [0, 1, 2, 1]
    """
    from .audit import audit  # noqa: PLC0415

    if isinstance(paths, (str, bytes, os.PathLike)):  # before the audit: one path would be read as its letters
        raise ArgumentError(f"paths must be a sequence of paths, one per row of your data, got one path: {paths!r}")
    _check_not_one_image(images)
    result = audit(images, groups=groups, labels=labels, settings=settings, jobs=jobs, progress=progress,
                   decisions=decisions)
    ids = result.groups.ids.copy()
    m = result.manifest
    _say_unreadable(m, result.features.failures)
    if m.source is not None:  # frames of one DICOM file, overlapping tiles: one group whatever the pixels
        links = [v for v in m.source.links(result.features.ok).values() if len(v)]
        if links:
            ids = join_links(ids, np.concatenate(links))
    if paths is None:
        if not return_paths:
            return ids
        names = list(range(len(m))) if m.images is not None else [str(p) for p in m.paths]
        return ids, names
    if m.images is not None:
        raise ConfigError("paths= lines ids up with image files; for an image array the ids are already in its order")
    paths = [os.fspath(p) for p in paths]
    row = {}
    for r in range(len(m)):
        row.setdefault(os.path.abspath(m.resolve(r)), r)
    out = np.empty(len(paths), np.int64)
    missing = []
    for k, p in enumerate(paths):  # relative to the folder however spelled (./a.png), or to the working one
        r = row.get(path_key(p, m.root), row.get(os.path.abspath(p)))
        if r is None:
            missing.append(p)
        else:
            out[k] = ids[r]
    if missing:
        raise ConfigError(f"{len(missing)} of the {len(paths)} paths are not images of {images}: "
                          + ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else ""))
    out = _renumber(out)
    return (out, paths) if return_paths else out


def _takes_labels(images) -> bool:
    """Whether ``images`` is a list of paths or an image array, whose labels come from the caller
    (a folder, CSV or table has its own)."""
    if type(images).__module__.split(".")[0] == "pandas":
        return getattr(images, "ndim", 0) == 1  # a Series of paths, not a DataFrame
    return isinstance(images, (list, tuple, np.ndarray))


def _check_not_one_image(images) -> None:
    """Refuse the path of one image file as ``images``: the rows need one image each."""
    if isinstance(images, (str, os.PathLike)) and os.path.isfile(images):
        ext = os.path.splitext(os.fspath(images))[1].lower()
        if ext in IMAGE_EXTENSIONS or ext in DICOM_SUFFIXES:
            raise ArgumentError(f"images must be a folder, a manifest, a list of paths or an image array, one image "
                                f"per row of your data, got one image file: {os.fspath(images)!r} (for a single image: "
                                "[path])")


def _say_unreadable(m, failures) -> None:
    """Name the images that could not be read (no copy of them can be found: each keeps a group of
    its own, or its known group) in one warning; refuse when none could be, as the CLI does."""
    if not failures:
        return
    named = "; ".join(f"{m.paths[r]}: {why}" for r, why in failures[:3]) + ("; ..." if len(failures) > 3 else "")
    if len(failures) == len(m):
        raise InputError(f"no image could be read ({len(m)} tried: {named}), so no duplicate can be found")
    log.warning("%d of %d images could not be read, so no copy of them can be found (%s)", len(failures), len(m), named)


def _renumber(ids: np.ndarray) -> np.ndarray:
    """Ids numbered 0, 1, ... by first occurrence."""
    _, first, inv = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv.ravel()]


def _user_groups(groups, n: int) -> np.ndarray:
    """Ids of the user's groups; a row without one (None, NaN, ``""``) is a unit of its own, as in an audit."""
    g = text_column(groups, n, "groups")
    ids = np.unique(g.astype(str), return_inverse=True)[1].ravel()
    none = np.flatnonzero(g == "")
    ids[none] = len(g) + np.arange(len(none))
    return _renumber(ids)


def _n_train_test(n: int, test_size, train_size) -> tuple[int, int]:
    """scikit-learn's size rules: float = fraction, int = count; one of the two may be None (the rest)."""
    def count(v, name):
        if v is None:
            return None
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            if not 0 < v < n:
                raise ConfigError(f"{name}={v} must be between 1 and n_samples - 1 = {n - 1}")
            return int(v)
        if isinstance(v, numbers.Real) and 0 < v < 1:
            return float(v)
        raise ConfigError(f"{name} must be a float in (0, 1) or an int in [1, {n - 1}], got {v!r}")

    t, r = count(test_size, "test_size"), count(train_size, "train_size")
    if isinstance(t, float) and isinstance(r, float) and t + r > 1:  # before rounding, as scikit-learn
        raise ConfigError(f"The sum of test_size and train_size = {t + r:g}, should be in the (0, 1) range. "
                          "Reduce test_size and/or train_size.")
    n_test = int(np.ceil(t * n)) if isinstance(t, float) else t
    n_train = int(np.floor(r * n)) if isinstance(r, float) else r
    if n_test is None:
        n_test = n - n_train
    if n_train is None:
        n_train = n - n_test
    if n_train + n_test > n:
        raise ConfigError(f"The sum of train_size and test_size = {n_train + n_test}, should be smaller than the "
                          f"number of samples {n}. Reduce test_size and/or train_size.")
    if n_train == 0 or n_test == 0:
        raise ConfigError(f"With n_samples={n}, test_size={test_size} and train_size={train_size}, the resulting "
                          f"{'train' if n_train == 0 else 'test'} set will be empty. Adjust any of the aforementioned "
                          "parameters.")
    return n_train, n_test


def _class_labels(y, name: str, rows: str, n: int) -> np.ndarray:
    """One class per row; a 2-D ``y`` (multi-label) gives each row's combination a class, as scikit-learn does."""
    y = np.asarray(y)
    if y.ndim == 2:
        y = np.array([" ".join(r) for r in y.astype(str)])
    if y.ndim != 1 or len(y) != n:
        raise ConfigError(f"{name} has shape {y.shape} but {rows} {n} rows; give one class per row")
    return y


def _not_one_per_row(images: int, rows: int) -> ConfigError:
    return ConfigError(f"images has {images} images but X has {rows} rows; give one image per row")


def _same_labels(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a.astype(str),
                                                                                             b.astype(str)))


def _check_stratify(y, n_train: int, n_test: int, name: str = "stratify") -> None:
    """As scikit-learn: every class needs at least two members, and each side at least one row per
    class, to be on both sides."""
    classes, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
    if len(counts) and counts.min() < 2:
        raise ConfigError(f"The least populated classes in {name} have only {int(counts.min())} member, which is too "
                          "few. The minimum number of groups for any class cannot be less than 2. Classes with too "
                          f"few members are: {classes[counts < 2].tolist()}")
    for side, rows in (("train", n_train), ("test", n_test)):
        if rows < len(classes):
            raise ConfigError(f"The {side}_size = {rows} should be greater or equal to the number of classes = "
                              f"{len(classes)}")


def _n_rows(a) -> int:
    """Rows of an array-like: ``shape[0]`` where there is one (a sparse matrix has no ``len``)."""
    shape = getattr(a, "shape", None)
    if shape is not None and len(shape):
        return int(shape[0])
    if not hasattr(a, "__len__") or isinstance(a, (str, bytes)):
        raise ConfigError(f"expected a sequence or array-like with one row per sample, got type {type(a).__name__}")
    return len(a)


def _index(a, idx):
    if hasattr(a, "iloc"):
        return a.iloc[idx]
    if hasattr(a, "shape") and hasattr(a, "__getitem__") and not isinstance(a, (list, tuple)):
        return a[idx]
    return [a[i] for i in idx]


def _check_achieved(n: int, n_train: int, n_test: int, train, test, sizes: str) -> None:
    """Raise (in scikit-learn's words) when whole groups make a requested side's size impossible.

    ``sizes`` names the sizes as given (``test_size=0.2``) for the message.
    """
    for side, wanted, got in (("test", n_test, len(test)), ("train", n_train, len(train))):
        if got == 0:
            raise ConfigError(
                f"With n_samples={n}, {sizes} and the duplicate groups, the resulting {side} set will be "
                f"empty: groups cannot be split. Adjust the sizes, or look at the largest groups (find_groups).")
        if got != wanted and abs(got - wanted) / n > MAX_SIZE_ERROR:
            raise ConfigError(
                f"With n_samples={n} and {sizes}, the {side} set should have {wanted} samples "
                f"({wanted / n:.1%}), but whole groups give it {got} ({got / n:.1%}), more than "
                f"{100 * MAX_SIZE_ERROR:.1f} percentage points off. Adjust the sizes, or look at the largest groups "
                f"(find_groups).")


def _sizes_given(test_size, train_size) -> str:
    """The sizes as the caller gave them, for messages."""
    return f"test_size={test_size}" + ("" if train_size is None else f", train_size={train_size}")


#: Largest difference between the requested and the achieved share of a side before a split is refused.
MAX_SIZE_ERROR = 0.005


def _two_way(units, y, n_train, n_test, rng):
    n = len(units)
    r = {"train": n_train / n, "test": n_test / n}
    if n_train + n_test < n:
        r["unused"] = (n - n_train - n_test) / n
    a = assign_splits(units, y, ratios=r, shuffle=True, random_state=rng)
    names = a.names()
    return np.flatnonzero(names == "train"), np.flatnonzero(names == "test")


def train_test_split(*arrays, images=None, groups=None, test_size=None, train_size=None,
                     random_state=None, shuffle=True, stratify=None, settings=None, jobs=None, decisions=None):
    """Like ``sklearn.model_selection.train_test_split``, but duplicates never straddle the split.

    Parameters
    ----------
    *arrays : sequence of indexables with the same length
        Lists, numpy arrays, scipy-sparse matrices or pandas frames.
    images : folder, list of paths, or ndarray, optional
        The images the rows stand for; duplicates among them are found and kept together.
        Defaults to the first array when it is an image array ``(N, H, W[, C])`` and no ``groups``.
    groups : sequence, optional
        Known groups (patient id...) kept together as well; without ``images``, only these.
        A row without one (None, NaN, ``""``) is a group of its own.
    test_size, train_size : float or int, optional
        As in scikit-learn (default ``test_size=0.25``). Achieved sizes can differ slightly
        because whole groups move together; a side more than ``MAX_SIZE_ERROR`` (0.5 percentage
        points of the rows) off its size is refused (ConfigError).
    random_state : int, optional
    shuffle : bool
        ``False`` assigns groups in order of first appearance (no stratification).
    stratify : array-like, optional
        Class labels; each class's share on both sides is kept as close as groups allow. As in
        scikit-learn, each side needs at least one row per class (else ConfigError). With
        ``images`` as paths or an array, they also weigh as evidence (:func:`find_groups`'s
        ``labels``); a folder's class folders already do.
    settings : DetectSettings, optional
    jobs : int, optional
    decisions : path-like or records, optional
        Your verdicts on pairs (:mod:`leakscan.decisions`), with ``images``.

    Returns
    -------
    list
        ``[a_train, a_test, b_train, b_test, ...]``, like scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    >>> X[10:] = X[:10]                                 # every image twice
    >>> y = np.arange(20) % 2
    >>> X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, jobs=1)
    >>> len(X_tr) + len(X_te), len(X_te)
    (20, 6)
    """
    if not arrays:
        raise ConfigError("At least one array required as input")
    validate_random_state(random_state)
    lengths = [_n_rows(a) for a in arrays]
    if len(set(lengths)) > 1:
        raise ConfigError(f"Found input variables with inconsistent numbers of samples: {lengths}")
    n = lengths[0]
    if images is None and groups is None:
        first = arrays[0]
        if isinstance(first, np.ndarray) and first.ndim in (3, 4):
            images = first
        else:
            raise ConfigError("give images= (paths or an image array) or groups= so duplicates can be kept together")
    if images is not None:
        if not isinstance(images, (str, os.PathLike)) and len(images) != n:
            raise ConfigError(f"images has {len(images)} entries but the arrays have {n} rows")
        # the classes weigh as evidence, as a folder's class folders do in the audit
        labels = (_class_labels(stratify, "stratify", "the arrays have", n)
                  if stratify is not None and _takes_labels(images) else None)
        units = find_groups(images, groups=groups, labels=labels, settings=settings, jobs=jobs, decisions=decisions)
    else:
        units = _user_groups(groups, n)
    if len(units) != n:
        raise ConfigError(f"images gave {len(units)} entries but the arrays have {n} rows")
    if test_size is None and train_size is None:
        test_size = 0.25  # scikit-learn's default
    n_train, n_test = _n_train_test(n, test_size, train_size)
    if shuffle:
        y = np.zeros(n) if stratify is None else _class_labels(stratify, "stratify", "the arrays have", n)
        if stratify is not None:
            _check_stratify(y, n_train, n_test)
        tr, te = _two_way(units, y, n_train, n_test, check_random_state(random_state))
    else:
        if stratify is not None:
            raise ConfigError("Stratified train/test split is not implemented for shuffle=False; pass shuffle=True")
        _, first = np.unique(units, return_index=True)
        order = np.argsort(first)
        sizes = np.bincount(units)[order]
        end = np.cumsum(sizes)  # the rows after train_size are the test set up to test_size, as in scikit-learn
        tr = np.flatnonzero(np.isin(units, order[end <= n_train]))
        te = np.flatnonzero(np.isin(units, order[(end > n_train) & (end <= n_train + n_test)]))
    _check_achieved(n, n_train, n_test, tr, te, _sizes_given(test_size, train_size))
    out = []
    for a in arrays:
        if hasattr(a, "tocsr"):  # scipy sparse, as CSR as scikit-learn returns it: COO and DIA cannot be indexed
            a = a.tocsr()
        out += [_index(a, tr), _index(a, te)]
    return out


class StratifiedGroupShuffleSplit:
    """Random train/test splits that keep groups whole and class shares stratified.

    scikit-learn has ``StratifiedGroupKFold`` and ``GroupShuffleSplit`` but no splitter that
    is both stratified and shuffle-style (scikit-learn issue 12076). Usable wherever a
    scikit-learn ``cv=`` is, with ``groups=`` passed to ``split`` (``cross_val_score(...,
    groups=g)``).

    Parameters
    ----------
    n_splits : int, default 5
    test_size, train_size : float or int, optional
        As in ``ShuffleSplit`` (default ``test_size=0.1``).
    random_state : int, optional
    images : folder, list of paths, or ndarray, optional
        The images the rows stand for: groups are then found from them (once, on the first
        ``split`` of a ``y``), so ``split(X, y)`` needs no ``groups=``; given ``groups`` are
        merged in. Given as paths or an array, ``y`` weighs as evidence (:func:`find_groups`'s
        ``labels``).
    decisions : path-like or records, optional
        With ``images``: your verdicts on pairs (:mod:`leakscan.decisions`).
    settings : DetectSettings, optional
    jobs : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> groups = np.repeat(np.arange(10), 2)
    >>> y = np.arange(20) % 2
    >>> cv = StratifiedGroupShuffleSplit(n_splits=2, test_size=0.2, random_state=0)
    >>> [len(te) for _, te in cv.split(np.zeros(20), y, groups)]
    [4, 4]
    """

    def __init__(self, n_splits: int = 5, *, test_size=None, train_size=None, random_state=None,
                 images=None, decisions=None, settings=None, jobs=None):
        if not isinstance(n_splits, numbers.Integral) or n_splits < 1:
            raise ConfigError(f"n_splits must be a positive int, got {n_splits!r}")
        self.n_splits = int(n_splits)
        self.test_size = test_size
        self.train_size = train_size
        validate_random_state(random_state)  # drawing nothing: split() draws, as scikit-learn's splitters
        self.random_state = random_state
        self.images = images
        self.decisions = decisions
        self.settings = settings
        self.jobs = jobs
        self._found = None

    def __repr__(self) -> str:
        return (f"StratifiedGroupShuffleSplit(n_splits={self.n_splits}, test_size={self.test_size}, "
                f"train_size={self.train_size}, random_state={self.random_state})")

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.n_splits

    def split(self, X, y=None, groups=None):
        """Yield ``(train_index, test_index)`` ``n_splits`` times."""
        n = _n_rows(X)
        if self.images is not None:
            # y weighs as evidence, as a folder's class folders do in the audit; groups found for
            # one y serve every split of it
            labels = None
            if y is not None and _takes_labels(self.images):
                if len(self.images) != n:
                    raise _not_one_per_row(len(self.images), n)
                labels = _class_labels(y, "y", "X has", n)
            if self._found is None or not _same_labels(self._found[0], labels):
                self._found = labels, find_groups(self.images, labels=labels, settings=self.settings, jobs=self.jobs,
                                                  decisions=self.decisions)
            found = self._found[1]
            if len(found) != n:
                raise _not_one_per_row(len(found), n)
            if groups is not None:  # user groups merge with the duplicate groups
                if len(groups) != n:
                    raise ConfigError(f"groups has {len(groups)} entries but X has {n} rows")
                ug = _user_groups(groups, n)
                rows = np.arange(n)
                # rows, duplicate groups and user groups as the nodes of one graph
                found = _renumber(components(3 * n, np.r_[rows, rows], np.r_[n + found, 2 * n + ug])[:n])
            groups = found
        elif groups is not None:
            if len(groups) != n:
                raise ConfigError(f"groups has {len(groups)} entries but X has {n} rows")
            groups = _user_groups(groups, n)
        if groups is None:
            raise ConfigError("StratifiedGroupShuffleSplit.split needs groups= (e.g. leakscan.find_groups(images)), "
                              "or images= when it is made")
        yy = np.zeros(n) if y is None else _class_labels(y, "y", "X has", n)
        test_size = 0.1 if self.test_size is None and self.train_size is None else self.test_size
        n_train, n_test = _n_train_test(n, test_size, self.train_size)
        if y is not None:
            _check_stratify(yy, n_train, n_test, "y")
        rng = check_random_state(self.random_state)
        for _ in range(self.n_splits):
            tr, te = _two_way(groups, yy, n_train, n_test, rng)
            _check_achieved(n, n_train, n_test, tr, te, _sizes_given(test_size, self.train_size))
            yield tr, te
