"""Leakage across splits, label conflicts and class balance: the analysis behind ``leakscan audit``."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ._version import __version__
from .cache import SCHEMA as CACHE_SCHEMA, FeatureCache, NotACache, default_cache_path, file_key
from .calibrate import picture_share
from .parallel import check_jobs
from .decide import IMPLAUSIBLE_MIN_IMAGES, IMPLAUSIBLE_SHARE, Detection, detect, duplicate_bar, weigh_labels
from .decode import is_cacheable, max_file_size
from .errors import ConfigError
from .features import FEATURE_VERSION, Features, extract_features, load_pictures, side_for_model
from .groups import Groups, build_groups
from .keypoints import SEARCH_MAX_IMAGES
from .discovery import discover
from .manifest import BOTH_SIDES, Manifest
from .output import shown_fraction, tier_rounded, user_path
from .orb import opencv_loads
from .pairs import KINDS, SEARCH_VERSION, PairTable
from .settings import DECODE_SIDE, DetectSettings
from .views import MatchView

log = logging.getLogger(__name__)

#: A duplicate group whose images carry this many different labels or more is more likely a
#: chain of look-alikes than a label error: it is reported as suspected chaining.
CHAIN_CLASSES = 3

#: Set (True) on the log record of a warning the Audit also lists (``Audit.warnings``, summary.json
#: ``warnings``): a caller that shows that list, as the terminal output does, can leave the log line out.
LISTED = "leakscan_listed"

__all__ = ["Audit", "Leak", "LabelConflict", "audit", "analyse"]


@dataclass(frozen=True)
class Leak:
    """Images of ``split`` that have a duplicate (same group) in ``against``."""

    split: str
    against: str
    images: int
    total: int
    per_class: dict  # {label: {"images": int, "total": int, "fraction": float}}

    @property
    def fraction(self) -> float:
        return self.images / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {"split": self.split, "against": self.against, "images": self.images,
                "total": self.total, "fraction": shown_fraction(self.fraction), "per_class": self.per_class}


@dataclass(frozen=True)
class LabelConflict:
    """A duplicate group whose members carry different labels (a likely label error)."""

    group: int
    rows: np.ndarray
    labels: dict  # {label: count}

    def to_dict(self, manifest: Manifest) -> dict:
        return {"group": self.group, "n_images": int(len(self.rows)), "labels": self.labels,
                "paths": [str(manifest.paths[r]) for r in self.rows[:20]]}


@dataclass(frozen=True)
class Audit:
    """Everything an audit found. Rows line up with ``manifest``.

    Use :meth:`to_dict` for the ``summary.json`` document and :meth:`to_frame` for the pairs
    as a pandas DataFrame.
    """

    manifest: Manifest
    features: Features
    pairs: PairTable
    groups: Groups
    leaks: list
    label_conflicts: list
    class_counts: dict
    settings: DetectSettings
    elapsed: float = 0.0
    timings: dict = field(default_factory=dict)  # seconds per stage and total; write_outputs adds report
    warnings: tuple = ()
    decisions: object = None  # DecisionStats when a decisions file was applied (leakscan.decisions)
    possible: PairTable = field(default_factory=PairTable.empty)  # worth a look, never counted
    calibration: object = None  # the fitted decision (leakscan.calibrate.Calibration), None: nothing to decide

    # ---- derived views
    @property
    def all_warnings(self) -> list[str]:
        """Every warning the results list (summary.json ``warnings``, the terminal's list): the run's
        (:attr:`warnings`) and what the chaining guard did (``groups.notes``)."""
        return list(self.warnings) + list(self.groups.notes)

    @property
    def ok(self) -> np.ndarray:
        return self.features.ok

    @property
    def n_images(self) -> int:
        """Images audited (decoded successfully)."""
        return int(self.features.ok.sum())

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(path, reason) of every entry that could not be audited."""
        out = list(self.manifest.skipped)
        out += [(str(self.manifest.paths[r]), why) for r, why in self.features.failures]
        return out

    @property
    def low_information(self) -> np.ndarray:
        """Rows of flat, near-constant images (matched by exact digest only)."""
        return np.flatnonzero(self.features.ok & self.features.low_info)

    @property
    def n_leaked(self) -> int:
        return sum(lk.images for lk in self.leaks)

    @property
    def bar(self) -> float:
        """The confidence a pair needs to be a duplicate: ``settings.min_confidence``, or the
        bar the calibration raised it to (``summary.json``: ``calibration.threshold``)."""
        return duplicate_bar(self.settings, self.calibration)

    def max_leak_fraction(self) -> float:
        return max((lk.fraction for lk in self.leaks), default=0.0)

    def duplicate_group_rows(self) -> np.ndarray:
        """The audited rows of the duplicate groups, by group id then row (the rows of ``groups.csv``).

        A file that could not be read is in none of them, even when its known group (a patient
        id) joins it to one: it is in ``skipped.csv``, and no leak counts it.
        """
        g = self.groups
        dup = g.duplicate_groups()
        rows = np.flatnonzero(np.isin(g.ids, dup) & self.features.ok) if len(dup) else np.zeros(0, np.int64)
        return rows[np.lexsort((rows, g.ids[rows]))]

    def cross_split(self) -> np.ndarray:
        """Mask over pairs whose two images are in different splits."""
        sp = self.manifest.splits
        return sp[self.pairs.i] != sp[self.pairs.j]

    def to_dict(self) -> dict:
        """The ``summary.json`` document (a stable contract; new keys may be added)."""
        m, f = self.manifest, self.features
        splits = {s: int(np.sum((m.splits == s) & f.ok)) for s in m.split_names}
        kinds = self.pairs.kind_names()
        dup = self.groups.duplicate_groups()
        d = {
            "leakscan_version": __version__,
            "n_files": len(m) + len(m.skipped),
            "n_images": self.n_images,
            "n_skipped": len(self.skipped),
            "splits": splits,
            "n_pairs": len(self.pairs),
            "n_possible": len(self.possible),
            "n_cross_split_pairs": int(self.cross_split().sum()),
            "pairs_by_kind": {k: int(np.sum(kinds == k)) for k in KINDS},
            "n_duplicate_groups": int(len(dup)),
            "n_images_in_duplicate_groups": len(self.duplicate_group_rows()),
            "leaks": [lk.to_dict() for lk in self.leaks],
            "label_conflicts": [c.to_dict(m) for c in self.label_conflicts],
            "n_label_conflicts": len(self.label_conflicts),
            "class_counts": self.class_counts,
            "n_low_information": int(len(self.low_information)),
            # audited images: a file in skipped.csv is in no group, even by its manifest group
            "largest_group": int(np.bincount(self.groups.ids[f.ok]).max()) if f.ok.any() else 0,
            "settings": self.settings.to_dict(),
            "n_cached": int(self.features.n_cached),
            "warnings": self.all_warnings,
            "elapsed_seconds": round(self.elapsed, 3),
            "timings": dict(self.timings),
            "decisions": self.decisions.to_dict() if self.decisions is not None else None,
            "calibration": self.calibration.to_dict() if self.calibration is not None else None,
        }
        from .sources.summary import add_to_summary  # noqa: PLC0415 - groups per leak, spatial leaks

        return add_to_summary(self, d)

    def pair_details(self, pairs: PairTable | None = None) -> list[str]:
        """The ``detail`` of each pair (how the copy differs), with the angle of rotated copies
        (``rotated 12.5 deg``) and ``unpadded`` for a picture matched without its flat border."""
        p = self.pairs if pairs is None else pairs
        detail = p.detail()
        angle = dict(zip(self.features.derotated_rows.tolist(), self.features.derotated_angle.tolist()))
        for k in np.flatnonzero(MatchView.is_derotated(p.variant)):
            a = angle.get(int(p.i[k]), angle.get(int(p.j[k])))
            if a is not None:
                detail[k] = detail[k].replace("rotated", f"rotated {a:g} deg" if a else "unpadded", 1)
        if self.decisions is not None and self.decisions.added_pairs:
            from .decisions import USER_DETAIL  # noqa: PLC0415

            for k, ij in enumerate(zip(p.i.tolist(), p.j.tolist())):
                if ij in self.decisions.added_pairs:
                    detail[k] = USER_DETAIL
        return detail

    def pair_records(self, tier: str = "duplicates") -> list[dict]:
        """One dict per pair with the ``pairs.csv`` columns (``tier="possible"``: ``possible.csv``).

        ``a`` and ``b`` are the paths as given, or the row indices (int) for array input.
        ``decision`` is ``duplicate`` for pairs a user decision confirmed or added, else ``""``;
        ``confidence`` the estimated probability that the two are the same picture.
        """
        if tier not in ("duplicates", "possible"):
            raise ValueError(f"tier must be 'duplicates' or 'possible', got {tier!r}")
        m, p = self.manifest, (self.pairs if tier == "duplicates" else self.possible)
        detail = self.pair_details(p)
        kinds = p.kind_names()
        name = (lambda r: r) if m.images is not None else (lambda r: m.paths[r])
        user = self.decisions.matched.must_set() if self.decisions is not None else set()
        bar = self.bar
        return [
            {
                "a": name(i), "b": name(j), "split_a": m.splits[i], "split_b": m.splits[j],
                "label_a": m.labels[i], "label_b": m.labels[j], "kind": kinds[k],
                "score": round(float(p.score[k]), 4),
                "hamming": int(p.hamming[k]),
                "cosine": "" if np.isnan(p.cosine[k]) else round(float(p.cosine[k]), 4),
                "detail": detail[k], "group": int(self.groups.ids[i]),
                "ncc": "" if np.isnan(p.ncc[k]) else round(float(p.ncc[k]), 4),
                "decision": "duplicate" if (i, j) in user else "",
                "confidence": "" if np.isnan(p.confidence[k]) else tier_rounded(p.confidence[k], bar),
            }
            for k, (i, j) in enumerate(zip(p.i.tolist(), p.j.tolist()))
        ]

    def _repr_html_(self) -> str:
        """Notebooks: the verdict and the most certain pairs with thumbnails."""
        from .present import notebook_html  # noqa: PLC0415

        return notebook_html(self)

    def to_frame(self):
        """Pairs as a pandas DataFrame (needs pandas: ``pip install pandas``): the ``pairs.csv``
        columns, numbers as numbers (a cell ``pairs.csv`` leaves empty, the ``ncc`` of an exact
        copy, is NaN, as ``pd.read_csv`` reads it), each column of one type whatever the rows."""
        try:
            import pandas as pd  # noqa: PLC0415
        except ImportError as exc:
            raise ImportError("Audit.to_frame needs pandas, which is not installed: pip install pandas "
                              "(or use pair_records(), which needs nothing)") from exc
        recs = self.pair_records()
        cols = {c: [r[c] for r in recs] for c in PAIR_COLUMNS}
        for c in PAIR_NUMBERS:
            cols[c] = [np.nan if v == "" else v for v in cols[c]]
        name = "int64" if self.manifest.images is not None else "str"  # row numbers for arrays
        types = {**dict.fromkeys(PAIR_COLUMNS, "str"), "a": name, "b": name, **PAIR_NUMBERS}
        return pd.DataFrame(cols, columns=PAIR_COLUMNS).astype(types)


PAIR_COLUMNS = ["a", "b", "split_a", "split_b", "label_a", "label_b", "kind", "score",
                "hamming", "cosine", "detail", "group", "ncc", "decision", "confidence"]
#: The columns of PAIR_COLUMNS that hold numbers, and their type; the others hold text (``a`` and
#: ``b``: the row number for an image array).
PAIR_NUMBERS = {"score": "float64", "hamming": "int64", "cosine": "float64", "group": "int64", "ncc": "float64",
                "confidence": "float64"}


def analyse(manifest: Manifest, features: Features, pairs: PairTable, settings: DetectSettings,
            *, possible: PairTable | None = None, calibration=None, elapsed: float = 0.0,
            timings: dict | None = None, sure: np.ndarray | None = None) -> Audit:
    """Groups, leakage per ordered split pair (overall and per class), label conflicts, balance.

    ``pairs`` are the duplicates; the links the chaining guard cuts move to ``possible``, so the
    pairs, the groups, the leaks and any re-split tell one story. ``sure``: the pairs the user
    marked duplicate, which the guard never cuts.
    """
    n = len(manifest)
    possible = PairTable.empty() if possible is None else possible
    groups = build_groups(n, pairs, manifest.groups, sure=sure)
    if groups.kept is not None and not groups.kept.all():
        possible = PairTable.concat([possible, pairs.take(~groups.kept)]).sorted()
        pairs = pairs.take(groups.kept)
        groups = dataclasses.replace(groups, kept=np.ones(len(pairs), bool))
    ok = features.ok
    split_names = manifest.split_names
    sidx = {s: k for k, s in enumerate(split_names)}
    split_of = np.array([sidx[s] for s in manifest.splits], np.int64) if n else np.zeros(0, np.int64)
    counts = np.zeros((groups.n_groups, len(split_names)), np.int64)
    np.add.at(counts, (groups.ids[ok], split_of[ok]), 1)
    labels = manifest.labels
    # per-class counts by one bincount per split pair, never a mask per label
    label_names, label_of = np.unique(labels, return_inverse=True)
    label_of = label_of.ravel()
    leaks = []
    for a, A in enumerate(split_names):
        in_a = ok & (split_of == a)
        total = int(in_a.sum())
        class_total = np.bincount(label_of[in_a], minlength=len(label_names))
        present = np.flatnonzero(class_total).tolist()  # the classes of split A, sorted
        for b, B in enumerate(split_names):
            if a == b:
                continue
            hit = in_a & (counts[groups.ids, b] > 0)
            class_hit = np.bincount(label_of[hit], minlength=len(label_names))
            per_class = {}
            for c in present:
                h, t = int(class_hit[c]), int(class_total[c])
                per_class[label_names[c]] = {"images": h, "total": t, "fraction": shown_fraction(h / t)}
            leaks.append(Leak(split=A, against=B, images=int(hit.sum()), total=total, per_class=per_class))

    conflicts, chained = [], []
    dup_ids = groups.duplicate_groups()
    if len(dup_ids):
        members = groups.members()
        for g in dup_ids.tolist():
            rows = members[g]
            rows = rows[ok[rows]]
            labs = [labels[r] for r in rows if labels[r] != ""]
            uniq = sorted(set(labs))
            if len(uniq) >= CHAIN_CLASSES:
                chained.append((int(g), len(rows), len(uniq)))
            elif len(uniq) > 1:
                conflicts.append(LabelConflict(group=int(g), rows=rows,
                                               labels={u: labs.count(u) for u in uniq}))
    warnings = []
    for g, size, k in chained[:10]:
        warnings.append(f"suspected chaining: group {g} joins {size} images of {k} classes; it is not counted as "
                        "a label conflict (look at its pairs in the report, or raise --min-confidence)")
    if len(chained) > 10:
        warnings.append(f"suspected chaining: {len(chained) - 10} more groups join {CHAIN_CLASSES} or more classes")
    for lk in leaks:
        if lk.total >= IMPLAUSIBLE_MIN_IMAGES and lk.fraction > IMPLAUSIBLE_SHARE:
            warnings.append(f"{lk.fraction:.0%} of {lk.split} has a copy in {lk.against}: more than half a split is "
                            "rarely real leakage; check a few pairs in the report before acting on it")
    warnings += _groups_joined(manifest, pairs)

    class_counts = {}
    for s in split_names:
        m = ok & (manifest.splits == s)
        labs, cnt = np.unique(labels[m].astype(str), return_counts=True) if m.any() else ([], [])
        class_counts[s] = {str(lab): int(c) for lab, c in zip(labs, cnt)}
    return Audit(manifest=manifest, features=features, pairs=pairs, groups=groups, leaks=leaks,
                 label_conflicts=conflicts, class_counts=class_counts, settings=settings,
                 elapsed=elapsed, timings=dict(timings or {}), warnings=tuple(warnings), possible=possible,
                 calibration=calibration)


def _warn(msg: str) -> str:
    """Log ``msg`` as a warning the Audit also lists (:data:`LISTED`); returns it."""
    log.warning(msg, extra={LISTED: True})
    return msg


def _groups_joined(manifest: Manifest, pairs: PairTable) -> list[str]:
    """One line (logged) when duplicate pairs join images of two different user groups (one
    picture under two patients): a re-split keeps both groups in one split."""
    g, p = manifest.groups, manifest.paths
    across = np.flatnonzero((g[pairs.i] != "") & (g[pairs.j] != "") & (g[pairs.i] != g[pairs.j]))
    if not len(across):
        return []
    # the pair of the smallest paths, whatever the order of the manifest's rows
    ends = [sorted((int(pairs.i[k]), int(pairs.j[k])), key=lambda r: str(p[r])) for k in across.tolist()]
    a, b = min(ends, key=lambda ab: (str(p[ab[0]]), str(p[ab[1]])))
    msg = (f"{len(across)} duplicate pair(s) join images of two different groups (e.g. {p[a]} of group {g[a]} and "
           f"{p[b]} of group {g[b]}): a re-split keeps both groups in one split")
    return [_warn(msg)]


def audit(
    data=None,
    *,
    manifest=None,
    splits: Sequence[str] | None = None,
    labels: Sequence | None = None,
    groups: Sequence | None = None,
    settings: DetectSettings | None = None,
    jobs: int | None = None,
    cache=True,
    client=None,
    progress: Callable[[str, int, int], None] | None = None,
    model=None,
    decisions=None,
    model_size=None,
    model_normalize: str | None = None,
    full_decode: bool = False,
    before_decoding: Callable[[Manifest], None] | None = None,
    **source_options,
) -> Audit:
    """Find exact and near-duplicate images and the leakage they cause across splits.

    Parameters
    ----------
    data : path-like, sequence of path-like, or ndarray
        A dataset folder (``train/``, ``val/``, ``test/`` recognised by name), a CSV manifest,
        a list of image paths or an image array ``(N, H, W[, C])``.
    manifest : path-like, optional
        A CSV manifest (columns ``path, split[, label, group]``) instead of ``data``.
    splits, labels, groups : sequence, optional
        One per image, for list and array inputs. A missing label or group (None, NaN) is none;
        a missing or blank split is a ValueError naming its position.
    settings : DetectSettings, optional
        Detection thresholds; defaults are documented in the README.
    jobs : int, optional
        Worker processes for decoding (default: all cores; at most
        :data:`~leakscan.parallel.MAX_JOBS_PER_CORE` per core).
    cache : bool or path-like
        Feature cache: ``True`` (default) uses :func:`~leakscan.cache.default_cache_path`, a
        path names the database, ``False`` decodes everything. In-memory arrays are not cached.
    client : dask.distributed.Client, optional
        Decode and extract features on a Dask cluster (see the README); the search runs here.
    progress : callable, optional
        ``progress(stage, done, total)``.
    model : path-like or ModelSpec, optional
        An image-embedding ONNX model (needs ``pip install 'leakscan[onnx]'``): every image is
        also embedded by it, and pairs at ``settings.model_min_cosine`` or more are reported
        with kind ``model`` (:mod:`leakscan.model`).
    decisions : path-like, records or Decisions, optional
        The user's verdicts on pairs (a CSV ``a,b,decision[,note]``; see
        :mod:`leakscan.decisions`): ``distinct`` pairs are never reported or grouped,
        ``duplicate`` pairs are always joined. ``summary.json`` says how many applied.
    **source_options
        For a pandas DataFrame or Parquet file: ``path_column``, ``split_column``,
        ``label_column``, ``group_column``, ``image_column`` (and for a DataFrame ``root``, the
        folder its relative paths are in). For a Hugging Face
        ``Dataset``/``DatasetDict`` (or a folder saved with ``save_to_disk``): ``split``,
        ``image_column``, ``label_column``, ``group_column``. For folders of DICOM files:
        ``group_by`` (``"PatientID"``, ``"StudyInstanceUID"``, ``"SeriesInstanceUID"``,
        ``"none"``); of GeoTIFF tiles: ``bands`` (``(4, 3, 2)``). See :mod:`leakscan.sources`.
    model_size, model_normalize : optional
        For a ``model`` given by path: its input size (``224``, ``"160x128"`` or ``(W, H)``)
        and the normalisation of a float-input model (``"imagenet"``, ``"none"``, ``"clip"``);
        default: the model's metadata, else its fixed size (or 224) and ImageNet's. Without
        ``model`` they are an error, as ``--model-size`` without ``--model`` is.
    full_decode : bool
        Decode every image file at full size. By default a file decodes at the smallest scale
        that keeps :data:`~leakscan.settings.DECODE_SIDE` pixels on its shorter side (JPEG DCT
        scaling), which is all the features need; see the README for what that changes.
    before_decoding : callable, optional
        Called with the :class:`~leakscan.manifest.Manifest` found, before anything is decoded
        or cached (the command line checks its ``--out`` folder against the dataset's there,
        without looking for the images twice).

    Returns
    -------
    Audit

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> imgs = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    >>> imgs[3] = imgs[0]                       # a test image copied from train
    >>> result = audit(imgs, splits=["train", "train", "test", "test"], jobs=1)
    >>> [(lk.split, lk.against, lk.images) for lk in result.leaks]
    [('train', 'test', 1), ('test', 'train', 1)]
    """
    settings = settings or DetectSettings()
    jobs = check_jobs(jobs)  # a count out of range is refused before anything is read or written
    if model is None and (model_size is not None or model_normalize is not None):
        given = ", ".join(f"{k}={v!r}" for k, v in (("model_size", model_size), ("model_normalize", model_normalize))
                          if v is not None)
        raise ConfigError(f"{given} is for a model: give model='model.onnx' too (without it, it changes nothing)")
    if model is not None:
        from .errors import InputError  # noqa: PLC0415
        from .model import ModelSpec  # noqa: PLC0415

        if not isinstance(model, ModelSpec):
            model = ModelSpec.from_path(model, size=model_size, normalize=model_normalize)
        elif model_size is not None or model_normalize is not None:
            raise InputError("model_size and model_normalize are for a model given by path; "
                             "set them in ModelSpec.from_path(...)")
        _ = model.load().dim  # a bad file or a model that cannot run fails here, with its name, before decoding
    t0 = time.perf_counter()
    m = discover(data, manifest=manifest, splits=splits, labels=labels, groups=groups, **source_options)
    t1 = time.perf_counter()
    if before_decoding is not None:
        before_decoding(m)
    warnings: list[str] = _manifest_warnings(m)
    store = _open_cache(cache, m, warnings)
    try:
        decode_side = None if full_decode else DECODE_SIDE
        feats = _features(m, store, jobs=jobs, client=client, progress=progress, model=model,
                          decode_side=decode_side,
                          picture_share=picture_share(len(m)),
                          keypoints=settings.crops and len(m) <= SEARCH_MAX_IMAGES)
        warnings += _label_warnings(m, feats.ok)
        if settings.scope == "cross":
            warnings += _one_split_warnings(m, feats.ok)
        t2 = time.perf_counter()
        detection = None
        if store is not None:
            key = fingerprint(feats, settings, m.splits if settings.scope == "cross" else None)
            detection = _cached_detection(store, key)
        if detection is None:
            unread = []  # rows whose picture could not be read again (a file changed or unreadable since)

            def images(rows):
                pictures = load_pictures(m, rows, kept=feats.pictures, decode_side=decode_side)
                unread.extend(r for r, p in zip(np.asarray(rows).tolist(), pictures) if p is None)
                return pictures
            detection = detect(feats, settings, splits=m.splits, model=model, progress=progress, jobs=jobs,
                               images=images)
            if store is not None and not unread:  # a result made without some pictures is not kept
                store.put_arrays(key, detection.to_arrays())
    finally:
        if store is not None:
            warnings += store.notes
            store.close()
    if settings.label_evidence:  # after the cache: the labels are not in its key
        detection = weigh_labels(detection, m.labels, settings.min_precision)
    t3 = time.perf_counter()
    warnings += list(detection.warnings)
    from .decisions import decide  # noqa: PLC0415 - the user's verdicts, before groups are built

    pairs, decided = decide(detection.pairs, decisions, m, feats, possible=detection.possible)
    possible = detection.possible
    if decided is not None and getattr(decided, "possible", None) is not None:
        possible = decided.possible
    result = analyse(m, feats, pairs, settings, possible=possible, calibration=detection.calibration,
                     sure=decided.marked_duplicate(pairs) if decided is not None else None)
    t4 = time.perf_counter()
    # search: what detect did not spend verifying and calibrating, with the search-results cache
    # (its key, read and write); a detection read from the cache has no timings, so that read is all
    verify, cal = detection.timings.get("verify", 0.0), detection.timings.get("calibrate", 0.0)
    timings = {"discover": t1 - t0, "decode": t2 - t1, "search": t3 - t2 - verify - cal, "verify": verify,
               "calibrate": cal, "group": t4 - t3, "report": 0.0, "total": t4 - t0}
    timings = {k: round(max(v, 0.0), 3) for k, v in timings.items()}
    log.info("audit of %d rows took %.2fs", len(m), t4 - t0)
    return Audit(**{**result.__dict__, "elapsed": t4 - t0, "timings": timings,
                    "warnings": tuple(warnings) + result.warnings,
                    "decisions": decided})


def _manifest_warnings(m: Manifest) -> list[str]:
    """Things worth saying about the input that do not stop the run."""
    out = []
    odd = sorted(set(m.splits.tolist()) - {"train", "val", "test", "all"})
    if odd:
        out.append(f"split name(s) {', '.join(map(repr, odd))} are not train/val/test; used as given")
    both = [path for path, reason in m.skipped if BOTH_SIDES in reason]
    if both:
        out.append(f"{len(both)} file(s) are listed in two splits of the manifest ({', '.join(map(str, both[:3]))}"
                   f"{', ...' if len(both) > 3 else ''}): the same file on both sides of the split is leakage; each is "
                   "audited once, in its first split, so the figures do not count it (skipped.csv)")
    imgs = m.images
    if imgs is not None and imgs.dtype != object and np.issubdtype(imgs.dtype, np.floating) and imgs.size:
        lo, hi = float(np.nanmin(imgs)), float(np.nanmax(imgs))
        if lo < 0 or 1 < hi < 2:
            out.append(f"the image array looks normalised (values from {lo:.3g} to {hi:.3g}); leakscan reads floats as "
                       "[0, 1] or [0, 255] pixels, so pass the images before normalisation (uint8) for a sound audit")
    if imgs is not None and imgs.dtype != object and np.issubdtype(imgs.dtype, np.signedinteger) and imgs.size:
        lo = int(imgs.min())
        if lo < 0:  # Hounsfield units, differences: not pixels
            out.append(f"the image array holds negative values (down to {lo}); leakscan reads integers as [0, 255] "
                       "or [0, 65535] pixels and clips the rest to black, so scale the images to uint8 for a sound "
                       "audit")
    return [_warn(w) for w in out]


def _label_warnings(m: Manifest, ok: np.ndarray) -> list[str]:
    """One line when some of the audited images (``ok``: those that decoded) have no label: the
    figures count only those, so a file that could not be read is in neither number."""
    audited = int(ok.sum())
    no_label = int(np.sum((m.labels == "") & ok))
    if 0 < no_label < audited:
        return [_warn(f"{no_label} of {audited} images have no label; they count as class '' in per-class figures")]
    return []


def _one_split_warnings(m: Manifest, ok: np.ndarray) -> list[str]:
    """One line when only duplicates across splits are searched and the audited images (``ok``: those
    that decoded) are all in one split: none is searched. A split whose files could not be read counts
    as none, as in every figure."""
    splits = sorted(set(m.splits[ok].tolist()))
    if len(splits) != 1:
        return []
    return [_warn(f"only duplicates across splits were asked for (--cross-split-only), and every image audited "
                  f"is in one split ({splits[0]}): nothing was searched; audit without it to find the duplicates "
                  "within that split")]


def _open_cache(cache, manifest: Manifest, warnings: list):
    """The FeatureCache to use, or None (arrays, cache off, or a cache that cannot be opened)."""
    if cache is False or cache is None or manifest.images is not None:
        return None
    # "~/..." as a path is the home folder (a quoted $LEAKSCAN_CACHE, --cache=~/...), never a folder named ~;
    # a relative one is in the current folder (as pip's PIP_CACHE_DIR), made absolute here, once: what
    # the run says about its cache names it whole
    try:
        path = user_path(default_cache_path() if cache is True else cache).absolute()
    except RuntimeError:  # "~" with HOME unset and this user not in the password database (a container's uid)
        msg = ("the feature cache has no place: the home folder is unknown (HOME is not set and this user is not in "
               "the password database); set LEAKSCAN_CACHE, XDG_CACHE_HOME or HOME; decoding without it")
        warnings.append(_warn(msg))
        return None
    try:
        return FeatureCache(path, version=FEATURE_VERSION, warn=_warn)
    except NotACache as exc:  # a folder, another file or another program's database: the user's to fix
        raise ConfigError(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        msg = f"feature cache {path} cannot be used ({exc}); decoding without it"
        warnings.append(_warn(msg))
        return None


def _features(m: Manifest, store, *, jobs, client, progress, model, decode_side=DECODE_SIDE,
              picture_share: float = 0.0, keypoints: bool = False) -> Features:
    """Features of every row: cached rows from ``store``, the rest extracted (and stored per chunk);
    see :func:`~leakscan.features.extract_features` for ``decode_side``, ``picture_share`` and
    ``keypoints`` (cached rows stored without keypoints are not decoded again for them: the
    keypoint search decodes those)."""
    if store is None:
        return extract_features(m, jobs=jobs, client=client, progress=progress, model=model, decode_side=decode_side,
                                picture_share=picture_share, keypoints=keypoints)
    n = len(m)
    if m.source is None:
        keys = [file_key(p) for p in m.resolved_paths(np.arange(n))]  # paths are absolute
    else:  # source rows are keyed by content digest or path#frame
        keys = m.source.cache_keys(np.arange(n))
    if decode_side is None and m.source is None:  # full-size decodes: other features, kept beside
        keys = [None if k is None else (k[0] + "|full",) + tuple(k[1:]) for k in keys]
    elif model is not None and m.source is None:  # a model's larger input size decodes larger: the same
        side = side_for_model(decode_side, model.load())
        if side != decode_side:
            keys = [None if k is None else (k[0] + f"|side{side}",) + tuple(k[1:]) for k in keys]
    found = store.get(keys)
    # only failures that are a property of the bytes are trusted: permission, I/O, memory and
    # size-cap failures (of older runs) are tried again
    found = dataclasses.replace(found, failures={k: why for k, why in found.failures.items() if is_cacheable(why)})
    cached = Features.from_blobs(n, found.positions, found.blobs)
    hit = cached.ok.copy()
    model_emb = {}
    if model is not None:  # cached features without this model's embedding: decode again
        model_emb = store.get_model(keys, model.key)
        hit[[k for k in np.flatnonzero(hit).tolist() if k not in model_emb]] = False
    hit[list(found.failures)] = True
    if m.source is None:  # files over the size cap are skipped unread, as on a first run
        cap = max_file_size()
        hit[[r for r, k in enumerate(keys) if k is not None and k[1] > cap]] = False
    todo = np.flatnonzero(~hit)
    log.info("feature cache: %d of %d images cached, %d to decode", n - len(todo), n, len(todo))
    if model is not None and len(model_emb):
        dim = len(next(iter(model_emb.values())))
        emb = np.zeros((n, dim), np.float32)
        for r, e in model_emb.items():
            emb[r] = e
        cached = dataclasses.replace(cached, model_embedding=emb)
    if not len(todo):  # all cached (a re-run): no copies of the arrays
        return dataclasses.replace(cached, failures=tuple(sorted(found.failures.items())),
                                   notes=tuple(sorted(found.notes.items())), n_cached=n)
    hit_rows = np.flatnonzero(hit)
    where = {r: k for k, r in enumerate(hit_rows.tolist())}
    cached_part = dataclasses.replace(
        cached.take(hit_rows),
        failures=tuple(sorted((where[r], why) for r, why in found.failures.items())),
        notes=tuple(sorted((where[r], note) for r, note in found.notes.items() if r in where)))

    def store_chunk(positions: np.ndarray, part: Features) -> None:
        chunk_keys = [keys[r] for r in todo[positions]]
        failures = {r: why for r, why in part.failures if is_cacheable(why)}  # the bytes' fault only
        store.put(chunk_keys, part.to_blobs(), failures, dict(part.notes))
        if model is not None and part.model_embedding is not None:
            store.put_model(chunk_keys, model.key, part.model_embedding, part.ok)

    n_cached = n - len(todo)
    shifted = (lambda stage, done, total: progress(stage, done + n_cached, total + n_cached)) if progress else None
    fresh = extract_features(m, rows=todo, jobs=jobs, client=client, progress=shifted, model=model,
                             decode_side=decode_side, picture_share=picture_share, keypoints=keypoints,
                             on_chunk=store_chunk)
    return Features.assemble(n, [(hit_rows, cached_part), (todo, fresh)], n_cached=n_cached,
                             model_dim=None if model is None else _model_dim(model, cached_part, fresh))


def _model_dim(model, *parts: Features) -> int:
    for p in parts:
        if p.model_embedding is not None and p.model_embedding.shape[1]:
            return int(p.model_embedding.shape[1])
    return int(model.load().dim)


def _cached_detection(store, key: str) -> Detection | None:
    arrays = store.get_arrays(key)
    if arrays is None:
        return None
    try:
        detection = Detection.from_arrays(arrays)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("ignoring unreadable cached search results: %s", exc)
        return None
    log.info("search results reused from the cache (features and settings unchanged)")
    return detection


def fingerprint(features: Features, settings: DetectSettings, splits=None) -> str:
    """Digest of every feature row (in order), the detection settings, whether OpenCV loads (the
    keypoint search and the closer look need it) and, if given, the splits."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{__version__}|{SEARCH_VERSION}|opencv={opencv_loads()}".encode())
    if splits is not None:
        h.update("\x1f".join(map(str, splits)).encode())
    searched = {k: v for k, v in settings.to_dict().items() if k != "label_evidence"}  # weighed after the cache
    h.update(f"{FEATURE_VERSION}|{CACHE_SCHEMA}|{len(features)}|{sorted(searched.items())}".encode())
    # the rows that decoded: a file that failed keeps only its failure in the cache, while a cold
    # run still holds what it read before failing (the file's digest), so a warm run found no match
    ok = features.ok
    per_row = [features.pixel_digest, features.hashes, features.embedding, features.low_info, features.file_digest]
    for arr in [ok] + [a[ok] for a in per_row] + [features.derotated_rows, features.derotated_embedding]:
        h.update(np.ascontiguousarray(arr).tobytes())
    if features.model_embedding is not None:
        h.update(b"model")
        h.update(np.ascontiguousarray(features.model_embedding[ok]).tobytes())
    return h.hexdigest()
