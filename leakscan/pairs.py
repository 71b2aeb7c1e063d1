"""The search: Features -> candidate pairs (a PairTable), each saying how it was found.

Four sources, merged, each pair reported once with the strongest evidence:

1. ``exact``: identical canonical pixels (which includes identical bytes).
2. ``hash``: pHash Hamming distance ``<= max_hamming`` under any allowed rotation/flip.
3. ``embedding``: gradient-histogram cosine similarity, for every view of an image
   (:mod:`leakscan.views`), and of the brightness of a picture whose colours carry it
   (:func:`value_pairs`: copies shifted in hue), and of the folded brightness of every image
   (:func:`folded_pairs`: solarized copies). A neighbour is a candidate when it is very close
   (``>= sure_cosine``), or one of the image's ``neighbours`` nearest (``>=
   neighbour_min_cosine``), or close (``>= min_cosine``) *and* distinctive: its distance is
   at most ``ratio`` times the distance to the k-th nearest neighbour of either image
   (Lowe's ratio test).
4. ``model``: an ONNX model's embeddings, when one is given.

The search finds what *looks alike*; candidates are not duplicates. :mod:`leakscan.decide`
weighs each candidate's evidence (:mod:`leakscan.evidence`) and decides.

Low-information images (flat frames) take part in exact matching only.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Callable

import numpy as np

from .errors import ConfigError
from .features import (EMBED_DIM, QUADRANTS, WINDOW_PLACES, Features, content_ranks, crop_hog, digest_greater,
                       digest_order, folded_thumbnails, hog, hue_sensitive, no_highlights,
                       value_thumbnails, window_hog)
from .index import (FEW_QUERIES, CodedCosineIndex, CosineIndex, HammingIndex, StackedHammingIndex, StackedIndex,
                    scan_knn)
from .memory import release_free_memory
from .parallel import one_ahead
from .settings import DetectSettings
from .verify import BLOCK, locate
from .views import (CROP_PLACES, CROP_SIDE, CROP_SIDE_TIGHT, INVERSE_VARIANT, N_VARIANTS, STRETCH_BOXES, THUMB,
                    TILT_ANGLES, MatchView, box_views, crop_boxes, embedding_variants, is_oblong,
                    tilted_views, transform_variants, turned_share)

log = logging.getLogger(__name__)

__all__ = ["PairTable", "Candidates", "find_candidates", "Kind", "KINDS", "measure_pairs",
           "overlap_share", "overlap_pairs", "tilted_pairs", "OVERLAP_MIN_SHARE", "OVERLAP_MAX_IMAGES",
           "TILT_MAX_IMAGES"]


class Kind(IntEnum):
    """How a pair was found (``PairTable.kind``, uint8; stored in cached search results: never renumber)."""

    EXACT = 0       # identical canonical pixels
    HASH = 1        # pHash Hamming distance
    EMBEDDING = 2   # gradient-histogram embedding
    MODEL = 3       # a learned embedding (ONNX model)
    KEYPOINT = 4    # keypoints matched on larger pictures (:func:`leakscan.keypoints.keypoint_pairs`)

    @property
    def label(self) -> str:
        """The name in ``pairs.csv`` and ``summary.json``: ``exact``, ``hash``, ``embedding``,
        ``model``, ``keypoint``."""
        return self.name.lower()


#: The kind names in code order (``KINDS[Kind.HASH] == "hash"``).
KINDS = tuple(k.label for k in Kind)
#: Bump when the search or the acceptance rule changes: cached search results of other
#: versions are then not reused.
SEARCH_VERSION = "80"


def pair_keys(i, j) -> np.ndarray:
    """One int64 per pair of rows ``(i[k], j[k])``: the key of that pair in any table."""
    return np.asarray(i, np.int64) * (1 << 32) + np.asarray(j, np.int64)


def reading_keys(pairs: "PairTable") -> np.ndarray:
    """One int64 per row of ``pairs``: the pair and the view it matched through (row numbers below 2**26)."""
    return pairs.keys() * 32 + pairs.variant.astype(np.int64)


@dataclass(frozen=True)
class PairTable:
    """Duplicate pairs as parallel arrays, rows ``i < j``, sorted by (i, j).

    Attributes
    ----------
    i, j : int64 (p,)
        Manifest rows.
    kind : uint8 (p,)
        A :class:`Kind` (index into :data:`KINDS`): how the pair was found.
    score : float32 (p,)
        Certainty in [0, 1]: 1 for exact, ``1 - hamming/64`` for hash, cosine for embedding.
    hamming : int16 (p,)
        Smallest pHash distance over the allowed transforms (-1 when not computed).
    cosine : float32 (p,)
        Largest embedding cosine over the allowed transforms (NaN when not computed).
    variant : int8 (p,)
        A :class:`~leakscan.views.MatchView`: the transform under which the pair matched
        (0-7, index into ``VARIANT_NAMES``), -1 for exact and model pairs; ``8 + v``: one
        image is a copy rotated by another angle (matched through its de-rotated view,
        :mod:`leakscan.rotation`) and then transform ``v``; ``16``: one image is a crop of the
        other (matched through a crop view); ``17``: overlapping tiles; ``18``-``22``: through
        a tilted view; ``23``: a mirrored crop view; ``24``: by brightness, one shifted in hue;
        ``25``: by folded brightness, one solarized (see :class:`~leakscan.views.MatchView`).
    same_bytes : bool (p,)
        Exact pairs whose files are byte-identical.
    ncc : float32 (p,)
        Correlation of the aligned thumbnails (:mod:`leakscan.evidence`); NaN when not computed
        (exact pairs).
    confidence : float32 (p,)
        The calibrated probability that the two images are the same picture
        (:mod:`leakscan.calibrate`); 1 for exact pairs, NaN for candidates not yet decided.
    offset : float32 (p, 2)
        Overlapping tiles (variant ``MatchView.OVERLAP``): thumbnail pixel ``(y, x)`` of ``j``
        shows what pixel ``(y + dy, x + dx)`` of ``i`` shows, ``(dy, dx)``; 0 for other pairs.
    angle : float32 (p,)
        Tilted copies (``MatchView.is_tilted``): the degrees (counter-clockwise) the picture
        was turned, before it was cropped upright or within its own frame; 0 for other pairs.
    """

    i: np.ndarray
    j: np.ndarray
    kind: np.ndarray
    score: np.ndarray
    hamming: np.ndarray
    cosine: np.ndarray
    variant: np.ndarray
    same_bytes: np.ndarray
    ncc: np.ndarray | None = None
    confidence: np.ndarray | None = None
    offset: np.ndarray | None = None
    angle: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.i)
        if self.offset is None:
            object.__setattr__(self, "offset", np.zeros((n, 2), np.float32))
        if self.angle is None:
            object.__setattr__(self, "angle", np.zeros(n, np.float32))
        if self.ncc is None:
            object.__setattr__(self, "ncc", np.full(n, np.nan, np.float32))
        if self.confidence is None:
            object.__setattr__(self, "confidence", np.where(np.asarray(self.kind) == Kind.EXACT, 1.0, np.nan)
                               .astype(np.float32))
        for name in ("j", "kind", "score", "hamming", "cosine", "variant", "same_bytes", "ncc", "confidence", "offset",
                     "angle"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"PairTable.{name} has {len(getattr(self, name))} rows, i has {n}")
        if n and not np.all(self.i < self.j):
            raise ValueError("PairTable rows must have i < j")

    def __len__(self) -> int:
        return len(self.i)

    @classmethod
    def empty(cls) -> "PairTable":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8),
                   np.zeros(0, np.float32), np.zeros(0, np.int16), np.zeros(0, np.float32),
                   np.zeros(0, np.int8), np.zeros(0, bool))

    def take(self, rows) -> "PairTable":
        """The pairs selected by a boolean mask or an array of positions, in that order."""
        rows = np.asarray(rows)
        return PairTable(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @classmethod
    def concat(cls, tables) -> "PairTable":
        """The pairs of all ``tables``, one after the other (sort with :meth:`sorted`)."""
        tables = list(tables)
        if not tables:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(t, f.name) for t in tables]) for f in fields(cls)})

    def sorted(self) -> "PairTable":
        """The same pairs sorted by (i, j)."""
        return self.take(np.lexsort((self.j, self.i)))

    def first_per_pair(self, *keys, apart=None) -> "PairTable":
        """One row per (i, j), sorted by (i, j): the first by ``keys`` (``np.lexsort`` order:
        the last key is the primary one). With ``apart`` (one value per row), one row per
        (i, j) and value."""
        if len(self) == 0:
            return self
        groups = (self.j, self.i) if apart is None else (apart, self.j, self.i)
        order = np.lexsort(tuple(keys) + groups)
        new = np.zeros(len(order), bool)
        new[0] = True
        for g in groups:
            new[1:] |= g[order][1:] != g[order][:-1]
        return self.take(order[new])

    def keys(self) -> np.ndarray:
        """One int64 per pair, the same for the same (i, j) in any table (:func:`pair_keys`)."""
        return pair_keys(self.i, self.j)

    def kind_names(self) -> np.ndarray:
        return np.array(KINDS, dtype=object)[self.kind]

    def detail(self) -> list[str]:
        """Human-readable evidence per pair: ``same bytes``, ``same pixels`` or the transform."""
        out = []
        for k, v, b in zip(self.kind, self.variant, self.same_bytes):
            if k == Kind.EXACT:
                out.append("same bytes" if b else "same pixels")
            elif k == Kind.MODEL:
                out.append("model")
            elif k == Kind.KEYPOINT:  # lined up as they are, or one mirrored
                out.append("keypoints, hflip" if v == MatchView.HFLIP else "keypoints")
            else:
                out.append(MatchView.describe(v))
        for k in np.flatnonzero(self.variant == MatchView.OVERLAP):
            out[k] = f"overlap {overlap_share(self.offset[k]):.0%}"
        for k in np.flatnonzero(MatchView.is_tilted(self.variant)):
            cropped = "" if MatchView.is_turned(self.variant[k]) else " and cropped"
            out[k] = f"rotated {abs(float(self.angle[k])):.0f} deg{cropped}"
        return out


def overlap_share(offset, slack: float = 0) -> np.ndarray | float:
    """The share of each image's area two equal tiles have in common at thumbnail ``offset``
    ``(..., 2)``; with ``slack``, at the offset that many pixels smaller on each axis."""
    o = np.maximum(np.abs(np.asarray(offset, np.float32)) - slack, 0)
    return (1 - o[..., 0] / THUMB) * (1 - o[..., 1] / THUMB)


def _exact_clusters(rows: np.ndarray, digests: np.ndarray):
    """Cluster id per row (by equal digest) and star pairs (first row, other row)."""
    if len(rows) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys = np.ascontiguousarray(digests[rows]).view(np.dtype((np.void, digests.shape[1]))).ravel()
    _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    inv = inv.ravel()
    head = rows[first][inv]           # representative (smallest row: rows are ascending) of each row
    dup = head != rows
    return head, head[dup], rows[dup]


def _dedupe_best(pairs: PairTable) -> PairTable:
    """One row per (i, j), sorted by (i, j): lowest kind code first, then highest score, then
    lowest match code (a pair found both ways, equally well, keeps the same reading in any row order)."""
    return pairs.first_per_pair(pairs.variant, -pairs.score, pairs.kind)


#: Twins: two images whose pHashes, read as they are, differ in at most this many of 64 bits
#: (a copy re-encoded, resized, brightened or turned grey). A pair found through a view of
#: one image is proposed with the other's twins too (:func:`_with_twins`), at most
#: ``TWIN_MAX`` twins an image, the nearest first.
TWIN_HAMMING = 4
TWIN_MAX = 16


def twin_pairs(pairs: PairTable) -> np.ndarray:
    """Mask: the pairs of twins (:data:`TWIN_HAMMING`)."""
    return (pairs.kind == Kind.HASH) & (pairs.variant == MatchView.IDENTITY) & (pairs.score >= 1 - TWIN_HAMMING / 64)


def _with_twins(pairs: PairTable, ranks: np.ndarray) -> tuple[PairTable, np.ndarray]:
    """``(pairs, added)``: ``pairs`` and, for each pair found through a view (turned back,
    trimmed, cropped, tilted, by brightness; overlapping tiles aside), the same reading with
    each twin of either image (:data:`TWIN_HAMMING`) in that image's place; ``added``: the
    :func:`reading_keys` of the pairs so added. Twins equally near are taken by the rows'
    ``ranks`` (:func:`~leakscan.features.content_ranks`): pictures on one layout may have
    dozens, and which of them pass ``TWIN_MAX`` must not depend on the row order.

    Where a picture has many copies, a view's nearest few are its plainest copies, and the
    picture itself may not be among them: its copy turned on a canvas is then paired with a
    resized copy of it, not with it. Each pair proposed so is measured and decided as any
    other."""
    twin = twin_pairs(pairs)
    src = np.flatnonzero(MatchView.is_other_view(pairs.variant) & (pairs.variant != MatchView.OVERLAP))
    if not twin.any() or not len(src):
        return pairs, np.zeros(0, np.int64)
    # each image's twins, nearest first, at most TWIN_MAX: (owner, twin) sorted by owner
    owner, other = np.r_[pairs.i[twin], pairs.j[twin]], np.r_[pairs.j[twin], pairs.i[twin]]
    score = np.r_[pairs.score[twin], pairs.score[twin]]
    order = np.lexsort((ranks[other], -score, owner))
    owner, other = owner[order], other[order]
    first = np.searchsorted(owner, owner)
    keep = np.arange(len(owner)) - first < TWIN_MAX
    owner, other = owner[keep], other[keep]
    parts = []
    for first_side in (True, False):  # i, then j, replaced by each of its twins
        x = (pairs.i if first_side else pairs.j)[src]
        lo, hi = np.searchsorted(owner, x, "left"), np.searchsorted(owner, x, "right")
        count = hi - lo
        rows = np.repeat(src, count)
        # each source row's twins, in turn: positions lo[k] .. hi[k] - 1 of (owner, other)
        at = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
        t = other[at]
        i, j = (t, pairs.j[rows]) if first_side else (pairs.i[rows], t)
        ok = i != j
        rows, i, j = rows[ok], i[ok], j[ok]
        swap = i > j
        variant = np.where(swap, MatchView.tilted_swapped(pairs.variant[rows]), pairs.variant[rows]).astype(np.int8)
        n = len(rows)
        parts.append(PairTable(i=np.minimum(i, j), j=np.maximum(i, j), kind=pairs.kind[rows], score=pairs.score[rows],
                               hamming=np.full(n, -1, np.int16), cosine=np.full(n, np.nan, np.float32),
                               variant=variant, same_bytes=np.zeros(n, bool), angle=pairs.angle[rows]))
    new = PairTable.concat(parts)
    new = new.take(~np.isin(reading_keys(new), reading_keys(pairs)))
    new = new.first_per_pair(-new.score, apart=new.variant)
    return PairTable.concat([pairs, new]), reading_keys(new)


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.unpackbits(x, axis=-1).sum(axis=-1)


def find_candidates(
    features: Features,
    settings: DetectSettings | None = None,
    *,
    splits: np.ndarray | None = None,
    query_rows: np.ndarray | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    tilted_search: bool = True,
    earlier: Candidates | None = None,
    twins: bool = True,
    folded_search: bool = True,
) -> Candidates:
    """Candidate pairs among the rows whose features are ``ok``: what *might* be a copy.

    Never builds an n x n matrix: exact matches go through a sort, hashes through a FAISS
    binary range search, embeddings (and model embeddings) through a k-nearest-neighbour
    search in blocks. Each candidate says how it was found, its Hamming distance and cosine;
    :mod:`leakscan.decide` weighs the evidence and decides.

    ``query_rows``: only these rows are queried (against an index of every row); default all.
    ``tilted_search``: False leaves the tilted views out (the calibration: tilted pairs are decided
    by the whole-image decision. Its ``rotate`` copies, turned 4-30 degrees on black or white
    corners, some within their own frame as the tilted views read them, are searched as they
    are and through their padding's turned-back view).
    ``earlier``: a search over much the same images. When its rows are the first of these and
    hold the same features (the calibration: the dataset, then its copies), its embedding and
    pHash indexes are searched, the other rows indexed beside them; otherwise its embedding
    lists are used, so that index is not trained again. Only row numbers are checked
    (:meth:`Candidates.leads`): the caller vouches for the features.
    ``twins``: False proposes no pair with a twin (:func:`_with_twins`; the calibration, whose
    copies are searched one of each picture).
    ``folded_search``: False leaves the folded brightness out (the calibration, whose copies are
    not solarized: folded pairs are decided by the whole-image decision, at their own share of
    copies).
    """
    settings = settings or DetectSettings()
    ok_rows = np.flatnonzero(features.ok)
    variants = transform_variants(settings.transforms)
    parts = []

    # 1. exact: identical pixels
    head, ei, ej = _exact_clusters(ok_rows, features.pixel_digest)
    parts.append(_candidates(ei, ej, Kind.EXACT, np.ones(len(ei), np.float32), MatchView.NONE))
    search_rows = ok_rows[(head == ok_rows) & ~features.low_info[ok_rows]]
    log.debug("%d usable rows, %d exact pairs, %d searched", len(ok_rows), len(ei), len(search_rows))
    query_pos = np.arange(len(search_rows))
    if query_rows is not None:
        query_pos = np.flatnonzero(np.isin(search_rows, np.asarray(query_rows, np.int64)))
    if settings.scope == "cross":
        if splits is None or len(splits) != len(features):
            raise ConfigError("scope='cross' needs splits= (one split name per row)")
        splits = np.asarray(splits, dtype=object)
        names, counts = np.unique(splits[search_rows].astype(str), return_counts=True)
        if len(names):
            biggest = names[np.argmax(counts)]
            query_pos = np.intersect1d(query_pos, np.flatnonzero(splits[search_rows].astype(str) != biggest))

    # 2. perceptual hash, all allowed transforms of each query against the plain hashes
    hash_index = None
    if settings.max_hamming >= 0 and len(search_rows) > 1:
        if progress:
            progress("hash search", 0, 1)
        if earlier is not None and isinstance(earlier.hash_index, HammingIndex) and earlier.leads(search_rows):
            hash_index = earlier.hash_index.extended(features.hashes[search_rows[len(earlier.search_rows):], 0])
        else:
            hash_index = HammingIndex(features.hashes[search_rows, 0])
        queried = search_rows[query_pos]
        q = features.hashes[queried][:, list(variants)].reshape(-1, features.hashes.shape[-1])
        qi, dj, dist = hash_index.range(q, settings.max_hamming)
        a, b = queried[qi // len(variants)], search_rows[dj]
        v = np.asarray(variants, np.int8)[qi % len(variants)]
        keep = a != b
        a, b, v, dist = a[keep], b[keep], v[keep], dist[keep]
        parts.append(_candidates(np.minimum(a, b), np.maximum(a, b), Kind.HASH,
                                 (1.0 - dist / 64.0).astype(np.float32), _of_first(v, a > b)))
        if progress:
            progress("hash search", 1, 1)

    # 3. embedding k-NN: the ratio test, and each image's nearest neighbours
    kth = np.full(len(features), -1, np.int64)
    index = None
    if settings.min_cosine <= 1.0 and len(search_rows) > 1:
        rotated = None
        if settings.transforms != "none":
            rotated = (features.derotated_rows, features.derotated_embedding, features.derotated_angle)
        ei_, ej_, es_, ev_, kth_pos, index = _embedding_pairs(
            features.embedding, search_rows, variants, settings, progress, query_pos,
            rotated=rotated, thumbs=features.thumb if settings.crops else None,
            big=features.sizes[search_rows].min(axis=1) >= OVERLAP_MIN_SIDE, earlier=earlier,
            ranks=content_ranks(features.pixel_digest[search_rows]))
        parts.append(_candidates(ei_, ej_, Kind.EMBEDDING, es_, ev_))
        has = kth_pos >= 0
        kth[search_rows[has]] = search_rows[kth_pos[has]]
        release_free_memory()  # the query blocks', before the next search allocates its own
    tilted, tilted_skipped = PairTable.empty(), 0
    if (tilted_search and settings.crops and settings.transforms == "all" and len(search_rows) > 1
            and settings.min_cosine <= 1.0):
        tilt_rows = _tile_rows(features, search_rows)
        tilted_skipped = len(tilt_rows) if len(tilt_rows) > TILT_MAX_IMAGES else 0
        if 1 < len(tilt_rows) <= TILT_MAX_IMAGES:
            if progress:
                progress("tilted search", 0, 1)
            tilted = tilted_pairs(features, search_rows[tilt_rows], search_rows[np.intersect1d(tilt_rows, query_pos)],
                                  kth, settings)
            if progress:
                progress("tilted search", 1, 1)
    hue = PairTable.empty()
    if settings.min_cosine <= 1.0 and len(search_rows) > 1:
        if progress:
            progress("brightness search", 0, 1)
        hue = value_pairs(features, search_rows, query_pos, settings)
        if folded_search:
            hue = PairTable.concat([hue, folded_pairs(features, search_rows, query_pos, settings)])
        release_free_memory()
        if progress:
            progress("brightness search", 1, 1)
    overlap = PairTable.empty()
    tiles = _tile_rows(features, search_rows) if settings.overlap else np.zeros(0, np.int64)
    too_many = len(tiles) > OVERLAP_MAX_IMAGES
    if len(tiles) > 1 and not too_many:
        if progress:
            progress("overlap search", 0, 1)
        overlap = overlap_pairs(features, search_rows, query_pos, settings.min_ncc, tiles)
        if progress:
            progress("overlap search", 1, 1)
    if features.model_embedding is not None and settings.model_min_cosine <= 1.0 and len(search_rows) > 1:
        mi, mj, ms = _model_pairs(features.model_embedding, search_rows, settings, query_pos,
                                  content_ranks(features.pixel_digest[search_rows]))
        parts.append(_candidates(mi, mj, Kind.MODEL, ms, MatchView.NONE))

    # a pair found as overlapping tiles, tilted (cropped, or turned in its frame) or by its
    # brightness, and otherwise, keeps a row for each reading: the decision keeps the likelier.
    # A pair found only tilted is read upright too (a crop, or a turn of a few degrees, a tilted
    # view may happen to match best)
    whole = _dedupe_best(PairTable.concat(parts))
    tilted = tilted.first_per_pair(-tilted.score, tilted.kind, apart=MatchView.is_turned(tilted.variant))
    alone = _dedupe_best(tilted.take(~np.isin(tilted.keys(), whole.keys())))
    n_alone = len(alone)
    upright = dataclasses.replace(alone, variant=np.full(n_alone, MatchView.UPRIGHT, np.int8),
                                  score=np.zeros(n_alone, np.float32), angle=np.zeros(n_alone, np.float32))
    pairs = PairTable.concat([whole, hue, overlap, tilted, upright])
    twin_keys = np.zeros(0, np.int64)
    if twins:
        pairs, twin_keys = _with_twins(pairs, content_ranks(features.pixel_digest))
    pairs = pairs.sorted()
    if settings.scope == "cross":
        pairs = pairs.take(splits[pairs.i] != splits[pairs.j])
    i, j, kind, score = pairs.i, pairs.j, pairs.kind, pairs.score
    hamming, cosine, _ = measure_pairs(features, i, j, variants)
    other = MatchView.is_other_view(pairs.variant)
    cosine[other] = np.fmax(cosine[other], score[other])  # the de-rotated or crop view's similarity
    same_bytes = np.zeros(len(i), bool)
    if len(i):
        same_bytes = np.all(features.file_digest[i] == features.file_digest[j], axis=1) & (kind == Kind.EXACT)
    pairs = dataclasses.replace(pairs, hamming=hamming, cosine=cosine, same_bytes=same_bytes)
    return Candidates(pairs=pairs, search_rows=search_rows, kth_neighbour=kth,
                      overlap_skipped=len(tiles) if too_many else 0, tilted_skipped=tilted_skipped,
                      index=index, hash_index=hash_index, apart=splits if settings.scope == "cross" else None,
                      twins=twin_keys)


@dataclass(frozen=True)
class Candidates:
    """What the search found: candidate pairs, the rows searched, each row's k-th neighbour.

    ``kth_neighbour[r]`` is the row of image r's k-th nearest image by embedding (-1 when r
    was not queried): a *typical* near neighbour, against which the evidence of r's pairs is
    measured (how distinctive a match is).
    """

    pairs: PairTable
    search_rows: np.ndarray
    kth_neighbour: np.ndarray
    overlap_skipped: int = 0  # images not searched for overlapping tiles: more than OVERLAP_MAX_IMAGES
    tilted_skipped: int = 0  # images whose tilted views were not searched: more than TILT_MAX_IMAGES
    # each row's split when only pairs across splits were searched (scope "cross"): pairs within
    # one split were never looked for, so the search says nothing of them; None otherwise
    apart: np.ndarray | None = field(default=None, repr=False, compare=False)
    # the embedding index over search_rows, for a search of more images beside these (find_candidates' earlier);
    # an audit's calibration, its last user, releases it (CosineIndex.release)
    index: CosineIndex | StackedIndex | None = field(default=None, repr=False, compare=False)
    # and the pHash index over search_rows (the plain hashes), kept as well
    hash_index: HammingIndex | StackedHammingIndex | None = field(default=None, repr=False, compare=False)
    # the pairs proposed with a twin (:func:`_with_twins`), as :func:`reading_keys` of them
    twins: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False, compare=False)

    def by_twins(self, pairs: PairTable) -> np.ndarray:
        """Mask of the rows of ``pairs`` (these candidates, or some of them) proposed only with
        a twin, not by the search itself: the shares of copies among candidates are the search's."""
        return np.isin(reading_keys(pairs), self.twins)

    def leads(self, search_rows: np.ndarray) -> bool:
        """Are this search's rows the first of ``search_rows`` (so that its indexes serve a
        search of these rows, the others indexed beside them)?"""
        return np.array_equal(search_rows[:len(self.search_rows)], self.search_rows)

    @property
    def centroids(self) -> np.ndarray | None:
        """The embedding index's trained lists (None: an exact search)."""
        return None if self.index is None else self.index.centroids


def _of_first(variant: np.ndarray, query_second: np.ndarray) -> np.ndarray:
    """The match codes of pairs stored as (i, j), i < j: a query's rotation or flip as a
    transform of ``i``, so inverted where ``j`` was the query (``query_second``). Other codes
    are kept (a de-rotated view's code names the view's own variant, whichever image has it)."""
    v = np.asarray(variant).astype(np.int64)
    plain = query_second & (v >= 0) & (v < N_VARIANTS)
    return np.where(plain, INVERSE_VARIANT[np.clip(v, 0, N_VARIANTS - 1)], v).astype(np.int8)


def _candidates(i, j, kind: Kind, score, variant) -> PairTable:
    """Candidate pairs of one kind (hamming, cosine and ncc not measured yet)."""
    n = len(i)
    return PairTable(i=np.asarray(i, np.int64), j=np.asarray(j, np.int64), kind=np.full(n, kind, np.uint8),
                     score=np.asarray(score, np.float32), hamming=np.full(n, -1, np.int16),
                     cosine=np.full(n, np.nan, np.float32),
                     variant=np.broadcast_to(np.asarray(variant, np.int8), (n,)).copy(),
                     same_bytes=np.zeros(n, bool))


def rows_of(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``a[rows]``, without a copy when ``rows`` is a run of consecutive rows (searching every
    image is the common case; a million embeddings are 512 MB)."""
    rows = np.asarray(rows)
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.array_equal(rows, np.arange(rows[0], rows[-1] + 1)):
        return a[rows[0]:rows[-1] + 1]
    return a[rows]


def _embedding_pairs(emb_all, search_rows, variants, settings: DetectSettings, progress, query_pos=None,
                     block: int = 4096, rotated=None, thumbs=None, big=None, earlier=None, ranks=None):
    """Embedding k-NN pairs with the ratio test, and the index searched (``earlier``: see
    :func:`find_candidates`).

    Queries: every image under each of ``variants``; the de-rotated views ``rotated`` =
    (rows, embeddings, angles; angle 0: a border trimmed) under each of ``variants``; and,
    when ``thumbs`` (all rows) is given, the crop views of every image, and the tighter and
    stretched crop views of those ``big`` marks (a mask over ``search_rows``), each plain
    and, when ``variants`` hold the mirror, mirrored (a crop then flipped, as training
    pipelines make them). Neighbours of equal similarity are taken by ``ranks`` (one per
    search row, fixed by content).
    """
    index = None
    if earlier is not None and isinstance(earlier.index, CosineIndex) and earlier.leads(search_rows):
        index = earlier.index.extended(emb_all[search_rows[len(earlier.search_rows):]])
    if index is None:
        index = CosineIndex(rows_of(emb_all, search_rows), centroids=None if earlier is None else earlier.centroids)
    n = len(search_rows)
    query_pos = np.arange(n) if query_pos is None else np.asarray(query_pos, np.int64)
    query_pos = query_pos[index.search_order(query_pos)]  # faster; the same neighbours
    kk = min(settings.k + 1, n)
    out_i, out_j, out_s, out_v, out_dk, out_near = [], [], [], [], [], []
    kth = np.full(n, -1, np.int64)  # position of each queried image's k-th neighbour
    # distance to the k-th neighbour of each image (plain orientation, self excluded); 0 for
    # images that were not queried, so their side of the ratio test accepts nothing
    dk_plain = np.zeros(n, np.float32)
    # query sets: (positions in search_rows, a function of (start, stop) giving their embeddings,
    # the variants to apply, the match code of each variant, which queries take their nearest
    # few whatever the ratio test says: each image as it is, and turned back off its canvas (the
    # canvas says it was edited, and its nearest may all be copies, which the ratio test refuses))
    sets = [(query_pos, lambda a, b: emb_all[search_rows[query_pos[a:b]]], variants, {v: v for v in variants},
             np.ones(len(query_pos), bool))]
    if rotated is not None and len(rotated[0]):
        # where each de-rotated view's row is among the rows searched (ascending)
        at = np.minimum(np.searchsorted(search_rows, rotated[0]), len(search_rows) - 1)
        keep = np.flatnonzero(search_rows[at] == rotated[0])
        if len(keep):
            rpos = at[keep].astype(np.int64)
            wanted = np.isin(rpos, query_pos)
            derotated_q = rotated[1][keep[wanted]]
            turned = rotated[2][keep[wanted]] != 0  # turned back, not only trimmed
            sets.append((rpos[wanted], lambda a, b: derotated_q[a:b], variants,
                         {v: MatchView.derotated(v) for v in variants}, turned))
    if thumbs is not None:
        def crop_set(pos, boxes, mirrored):
            nc = len(boxes)
            crop_pos = np.repeat(pos, nc)
            codes = {0: MatchView.CROPPED, 1: MatchView.CROPPED_HFLIP} if mirrored else {0: MatchView.CROPPED}

            def crop_emb(a, b):
                rows = search_rows[crop_pos[a:b:nc]]  # a and b are multiples of nc
                return crop_hog(thumbs[rows], boxes).reshape(-1, EMBED_DIM)
            return crop_pos, crop_emb, tuple(codes), codes, np.zeros(len(crop_pos), bool)
        is_big = np.zeros(len(query_pos), bool) if big is None else big[query_pos]
        # pictures large enough to crop to half the picture, or to another shape, are queried with
        # those crop views too, each also mirrored when mirrors count (tiny pictures: a mirrored
        # crop of them is a shifted mirror, which the whole image's alignment lines up)
        mirrored = 1 in variants
        sets.append(crop_set(query_pos[~is_big], crop_boxes(CROP_SIDE), False))
        if is_big.any():
            big_pos = query_pos[is_big]
            sets.append(crop_set(big_pos, crop_boxes(CROP_SIDE), mirrored))
            sets.append(crop_set(big_pos, crop_boxes(CROP_SIDE_TIGHT), mirrored))
            sets.append(crop_set(big_pos, STRETCH_BOXES, mirrored))
    total = sum(len(q) * len(vs) for q, _, vs, _, _ in sets)
    done = 0
    if progress:
        progress("embedding search", 0, total)
    block -= block % math.lcm(len(CROP_PLACES), len(STRETCH_BOXES))  # whole images of each crop set
    blocks = [(qpos_all, qemb, vs, codes, nearest, start) for qpos_all, qemb, vs, codes, nearest in sets
              for start in range(0, len(qpos_all), block)]

    def queries(b):  # a block's query embeddings (crop views: gradient histograms of crops), made ahead
        qpos_all, qemb, vs, _, _, start = b
        return embedding_variants(qemb(start, start + len(qpos_all[start:start + block])), vs)
    for (qpos_all, qemb, vs, codes, nearest, start), qvs in zip(blocks, one_ahead(queries, blocks)):
        qrows = qpos_all[start:start + block]
        take_nearest = nearest[start:start + block]
        for q, v in enumerate(vs):
            qv = qvs[:, q]
            sims, ids = index.knn(qv, kk, ranks=ranks)
            selfm = ids == qrows[:, None]
            sims = np.where(selfm | (ids < 0), -np.inf, sims)
            order = np.argsort(-sims, axis=1, kind="stable")
            sims = np.take_along_axis(sims, order, 1)
            ids = np.take_along_axis(ids, order, 1)
            dist = 1.0 - sims  # inf where missing
            if settings.k <= dist.shape[1]:
                dk = dist[:, settings.k - 1]
            else:
                dk = np.full(len(qrows), np.inf, np.float32)
            plain = codes[v] == MatchView.IDENTITY
            if plain:
                dk_plain[qrows] = dk
                if settings.k <= ids.shape[1]:
                    kth[qrows] = np.where(np.isfinite(sims[:, settings.k - 1]), ids[:, settings.k - 1], -1)
            near = np.zeros(sims.shape, bool)
            if v == MatchView.IDENTITY and settings.neighbours:  # as it is, not turned or flipped
                near[:, :settings.neighbours] = ((sims[:, :settings.neighbours] >= settings.neighbour_min_cosine)
                                                 & take_nearest[:, None])
            r, c = np.nonzero((sims >= settings.min_cosine) | near)
            out_i.append(qrows[r])
            out_j.append(ids[r, c])
            out_s.append(sims[r, c])
            out_dk.append(dk[r])  # the query's own ratio-test reference
            out_near.append(near[r, c])
            out_v.append(np.full(len(r), codes[v], np.int8))
            done += len(qrows)
            if progress:
                progress("embedding search", done, total)
    if not out_i:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.float32), np.zeros(0, np.int8), kth, index
    qi = np.concatenate(out_i)
    dj = np.concatenate(out_j)
    sim = np.concatenate(out_s)
    dk_q = np.concatenate(out_dk)
    v = np.concatenate(out_v)
    d = 1.0 - sim
    near = np.concatenate(out_near)
    accept = near | (sim >= settings.sure_cosine) | (d <= settings.ratio * dk_q) | (d <= settings.ratio * dk_plain[dj])
    qi, dj, sim, v = qi[accept], dj[accept], sim[accept], v[accept]
    a, b = search_rows[qi], search_rows[dj]
    return np.minimum(a, b), np.maximum(a, b), sim.astype(np.float32), _of_first(v, a > b), kth, index


#: Queries looked up at a time in an index of every image (no copy of them all).
QUERY_BLOCK = 8192
#: Colour thumbnails read at a time (a million are 768 MB).
COLOUR_BLOCK = 4096
#: Thumbnails whose gradient histograms are made at a time (their intermediates are larger).
HOG_BLOCK = 1024


def _positions_where(test, colour: np.ndarray, search_rows: np.ndarray) -> np.ndarray:
    """Positions in ``search_rows`` whose ``colour`` thumbnails pass ``test``, read a block at a time."""
    return np.concatenate([start + np.flatnonzero(test(colour[search_rows[start:start + COLOUR_BLOCK]]))
                           for start in range(0, len(search_rows), COLOUR_BLOCK)] or [np.zeros(0, np.int64)])


def value_pairs(features: Features, search_rows: np.ndarray, query_pos: np.ndarray,
                settings: DetectSettings) -> PairTable:
    """Candidate copies shifted in hue (``MatchView.VALUE``): among the images whose colours
    carry their picture (:func:`~leakscan.features.hue_sensitive`), neighbours by the gradient
    histogram of their brightness (:func:`~leakscan.features.value_thumbnails`), which a hue
    shift leaves as it is while it moves the grey levels the other searches read.

    A neighbour at ``min_cosine`` or more is a candidate when it is very close
    (``sure_cosine``) or passes the ratio test against the query's ``k``-th neighbour (a colour
    field's brightness is coarse: only a distinctive match says much). Queried: the sensitive
    rows among ``query_pos``.
    """
    sensitive = _positions_where(hue_sensitive, features.colour, search_rows)
    queried = np.intersect1d(sensitive, query_pos)
    if len(sensitive) < 2 or not len(queried):
        return PairTable.empty()
    rows = search_rows[sensitive]
    q = np.searchsorted(sensitive, queried)

    def brightness(start, stop):  # the rows' gradient histograms of brightness, a block at a time: memory
        return np.concatenate([hog(value_thumbnails(features.colour[rows[a:min(a + HOG_BLOCK, stop)]]))
                               for a in range(start, stop, HOG_BLOCK)])
    k, ranks = min(settings.k + 1, len(rows)), content_ranks(features.pixel_digest[rows])
    if len(q) * FEW_QUERIES <= len(rows):  # the calibration's copies among many images: scanned, no index
        sims, ids = scan_knn(brightness, len(rows), hog(value_thumbnails(features.colour[rows[q]])), k, ranks=ranks)
    else:
        emb = brightness(0, len(rows))
        index = CosineIndex(emb)
        order = index.search_order(q)  # faster; the same neighbours
        parts = [index.knn(emb[q[order[a:a + QUERY_BLOCK]]], k, ranks=ranks, tie_floor=settings.min_cosine)
                 for a in range(0, len(q), QUERY_BLOCK)]  # _distinct_neighbours takes none under it
        del emb, index
        sims, ids = np.empty((len(q), k), np.float32), np.empty((len(q), k), np.int64)
        sims[order], ids[order] = (np.concatenate([p[t] for p in parts]) for t in (0, 1))
    r, found, sim = _distinct_neighbours(sims, ids, q, settings)
    a, b = rows[q[r]], rows[found]
    pairs = _candidates(np.minimum(a, b), np.maximum(a, b), Kind.EMBEDDING, sim, MatchView.VALUE)
    return pairs.first_per_pair(-pairs.score)


def _distinct_neighbours(sims: np.ndarray, found: np.ndarray, own: np.ndarray, settings: DetectSettings) -> tuple:
    """The neighbours a brightness search accepts (:func:`value_pairs`, :func:`folded_pairs`):
    of each query's ``(sims, found)`` (``found`` -1 where missing; the query itself, ``own``,
    left out), those at ``min_cosine`` or more that are very close (``sure_cosine``) or pass the
    ratio test against the query's ``k``-th neighbour. Returns ``(query, neighbour, cosine)``."""
    sims = np.where((found == own[:, None]) | (found < 0), -np.inf, sims)
    order = np.argsort(-sims, axis=1, kind="stable")
    sims, found = np.take_along_axis(sims, order, 1), np.take_along_axis(found, order, 1)
    dist = 1.0 - sims
    dk = dist[:, settings.k - 1] if settings.k <= dist.shape[1] else np.full(len(own), np.inf, np.float32)
    close = (sims >= settings.sure_cosine) | (dist <= settings.ratio * dk[:, None])
    r, c = np.nonzero((sims >= settings.min_cosine) & close)
    return r, found[r, c], sims[r, c]


def folded_pairs(features: Features, search_rows: np.ndarray, query_pos: np.ndarray,
                 settings: DetectSettings) -> PairTable:
    """Candidate solarized copies (``MatchView.FOLDED``): the images without highlights
    (:func:`~leakscan.features.no_highlights`, as a solarized copy has none) are indexed by the
    gradient histogram of their folded brightness (``Features.folded``,
    :func:`~leakscan.features.folded_thumbnail`: a picture solarizing leaves as it is), and every
    image is looked up among them, a block at a time.

    Its neighbours are accepted as the hue search's are (:func:`_distinct_neighbours`); a pair
    is kept when either image is among ``query_pos``.
    """
    dark = _positions_where(no_highlights, features.colour, search_rows)
    if not len(dark) or len(search_rows) < 2:
        return PairTable.empty()
    queried = np.zeros(len(search_rows), bool)
    queried[np.asarray(query_pos, np.int64)] = True
    folded = np.concatenate([hog(folded_thumbnails(features.folded[search_rows[dark[a:a + COLOUR_BLOCK]]]))
                             for a in range(0, len(dark), COLOUR_BLOCK)])
    # a flat folded brightness has no gradient (its histogram is zero): nothing to match by, and
    # thousands of them would fill one list of the index that every query then scans
    shaped = folded.any(axis=1)
    dark, folded = dark[shaped], folded[shaped]
    if not len(dark):
        return PairTable.empty()
    index = CosineIndex(folded)
    del folded
    ranks = content_ranks(features.pixel_digest[search_rows[dark]])
    kk = min(settings.k + 1, len(dark))
    out_a, out_b, out_s = [], [], []
    for start in range(0, len(search_rows), COLOUR_BLOCK):
        pos = np.arange(start, min(start + COLOUR_BLOCK, len(search_rows)))
        sims, ids = index.knn(hog(folded_thumbnails(features.folded[search_rows[pos]])), kk, ranks=ranks,
                              tie_floor=settings.min_cosine)  # _distinct_neighbours takes none under it
        r, found, sim = _distinct_neighbours(sims, np.where(ids >= 0, dark[np.clip(ids, 0, None)], -1), pos, settings)
        keep = queried[pos[r]] | queried[found]
        out_a.append(search_rows[pos[r[keep]]])
        out_b.append(search_rows[found[keep]])
        out_s.append(sim[keep])
    a, b = np.concatenate(out_a), np.concatenate(out_b)
    pairs = _candidates(np.minimum(a, b), np.maximum(a, b), Kind.EMBEDDING, np.concatenate(out_s), MatchView.FOLDED)
    return pairs.first_per_pair(-pairs.score)


#: Each image's best matching tilted views, at most this many other images (by embedding cosine).
TILT_NEIGHBOURS = 4
#: Images whose tilted views are made at a time (ten 32x32 views each).
TILT_BLOCK = 256
#: Above this many images of ``OVERLAP_MIN_SIDE`` or more, the tilted views are not searched
#: (their index holds ten views an image).
TILT_MAX_IMAGES = 20_000


def tilted_pairs(features: Features, rows: np.ndarray, queried: np.ndarray, kth: np.ndarray,
                 settings: DetectSettings) -> PairTable:
    """Candidate copies turned by an angle in (3, 45) degrees, with no corner left to find the
    angle from: the tilted views (:func:`~leakscan.views.tilted_views`,
    :data:`~leakscan.views.TILT_ANGLES`) of ``rows``, looked up by the ``queried`` rows.

    * A copy cropped free of its corners after the turn (``MatchView.TILTED``): the query's
      embedding among every tilted view (the largest box of the picture's shape, and of an
      oblong picture the largest square and the largest-area box).
    * A copy turned within its own frame, its corners filled any way: black or a colour (the
      canvas views see those), the edge pixels repeated or mirrored (``MatchView.TURNED``): the
      query's centre, as much as a turn by the view's angle leaves free of fill
      (:func:`~leakscan.views.turned_share`), among the views of that angle.

    Queries with a canvas view are not looked up. A neighbour is a candidate on the
    embedding search's terms (``min_cosine``, and the ratio test against the query's k-th
    neighbour ``kth``, or ``sure_cosine``), at most ``TILT_NEIGHBOURS`` per query and way.
    ``PairTable.angle`` is the view's angle.
    """
    # a query with padding, a flat border or a caption bar is left to the canvas views (two
    # rotated canvases line up by their corners)
    canvas = features.canvas_mask()
    queried = queried[~canvas[queried]]
    if not len(queried):  # every picture has a canvas view (rotated, letterboxed, framed, captioned)
        return PairTable.empty()
    n_angles = len(TILT_ANGLES)
    # the views: each picture's box of its own shape; pictures far from square also cropped
    # square (as augmentation code crops) and to the largest area (the usual recipe). The
    # boxes of their own shape come first (the turned copies' views below are those)
    oblong = rows[is_oblong(features.sizes[rows])]
    blocks = []
    for box, which in (("shape", rows), ("square", oblong), ("area", oblong)):
        for start in range(0, len(which), TILT_BLOCK):  # memory: ten views of a block of images at a time
            part = which[start:start + TILT_BLOCK]
            views = tilted_views(features.thumb[part], features.sizes[part], TILT_ANGLES, box=box)
            blocks.append(hog(np.rint(views.reshape(-1, THUMB, THUMB)).astype(np.uint8)))
    views = np.concatenate(blocks)
    ranks = content_ranks(features.pixel_digest)  # equal matches: taken in an order fixed by content
    owners = np.r_[rows, oblong, oblong]
    found = [_tilted_matches(CosineIndex(views), owners, TILT_ANGLES, features.embedding[queried],
                             queried, kth, features, settings, ranks) + (MatchView.TILTED,)]
    shape_views = views[:len(rows) * n_angles].reshape(len(rows), n_angles, -1)
    turned = []
    for size in sorted({abs(a) for a in TILT_ANGLES}):
        turns = [k for k, a in enumerate(TILT_ANGLES) if abs(a) == size]
        share = turned_share(features.sizes[queried], np.full(len(queried), size))
        centre = np.c_[0.5 - share / 2, 0.5 + share / 2, 0.5 - share / 2, 0.5 + share / 2]
        centres = hog(np.rint(box_views(features.thumb[queried], centre, THUMB)).astype(np.uint8))
        index = CosineIndex(shape_views[:, turns].reshape(len(rows) * len(turns), -1))
        turned.append(_tilted_matches(index, rows, tuple(TILT_ANGLES[k] for k in turns), centres, queried, kth,
                                      features, settings, ranks))
    copy, orig, sim, angle = (np.concatenate(col) for col in zip(*turned))
    keep = _best_few(copy, orig, sim, TILT_NEIGHBOURS, ranks)  # each query's best few over every angle
    found.append((copy[keep], orig[keep], sim[keep], angle[keep], MatchView.TURNED))
    copy, orig, sim, angle, code = (np.concatenate(col) for col in
                                    zip(*[m[:4] + (np.full(len(m[0]), m[4], np.int8),) for m in found]))
    if not len(copy):
        return PairTable.empty()
    back = np.where(code == MatchView.TILTED, MatchView.TILTED_BACK, MatchView.TURNED_BACK).astype(np.int8)
    view = np.where(orig < copy, code, back).astype(np.int8)
    pairs = _candidates(np.minimum(orig, copy), np.maximum(orig, copy), Kind.EMBEDDING, sim, view)
    return dataclasses.replace(pairs, angle=angle.astype(np.float32))


def _tilted_matches(index: CosineIndex, owners: np.ndarray, angles: tuple, queries: np.ndarray, queried: np.ndarray,
                    kth: np.ndarray, features: Features, settings: DetectSettings, ranks: np.ndarray) -> tuple:
    """``(copy, orig, sim, angle)`` arrays: each of the ``queried`` rows' best few matches
    (``queries``: their embeddings) among ``index``, whose entries are the views of each of
    ``owners`` at each of ``angles`` in turn; equal matches taken by the rows' ``ranks``."""
    n_angles = len(angles)
    kk = min(len(index), 4 * TILT_NEIGHBOURS + 2)
    view_ranks = (ranks[owners][:, None] * n_angles + np.arange(n_angles)).ravel()
    out = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))]
    for s in range(0, len(queried), BLOCK):
        q = queried[s:s + BLOCK]
        sims, ids = index.knn(queries[s:s + BLOCK], kk, ranks=view_ranks)
        owner = owners[np.clip(ids, 0, None) // n_angles]
        angle = np.asarray(angles, np.float32)[np.clip(ids, 0, None) % n_angles]
        ref = np.where(kth[q] >= 0, 1 - np.einsum("pd,pd->p", features.embedding[q],
                                                  features.embedding[np.clip(kth[q], 0, None)]), 0)
        ok = ((ids >= 0) & (owner != q[:, None]) & (sims >= settings.min_cosine)
              & ((sims >= settings.sure_cosine) | (1 - sims <= settings.ratio * ref[:, None])))
        r, c = np.nonzero(ok)
        out.append((q[r], owner[r, c], sims[r, c], angle[r, c]))
    copy, orig, sim, angle = (np.concatenate(col) for col in zip(*out))
    keep = _best_few(copy, orig, sim, TILT_NEIGHBOURS, ranks)  # each query's best view per other image
    return copy[keep], orig[keep], sim[keep], angle[keep]


#: Overlapping tiles are searched among images at least this many pixels a side: a window
#: of a smaller image holds too little picture to tell an overlap from a look-alike.
OVERLAP_MIN_SIDE = 64
#: Each image's quadrants are looked up among the windows of every image (the
#: ``OVERLAP_K`` most similar windows); its ``OVERLAP_NEIGHBOURS`` best matching other
#: images, at window cosine ``>= OVERLAP_MIN_COSINE``, are candidates.
OVERLAP_K = 64
OVERLAP_NEIGHBOURS = 4
OVERLAP_MIN_COSINE = 0.45
#: Offsets (thumbnail pixels) this small are left to the whole-image search.
OVERLAP_MIN_OFFSET = 3
#: Tiles sharing less than this share of their area are not duplicates (at most possible).
OVERLAP_MIN_SHARE = 0.5
#: Above this many images of ``OVERLAP_MIN_SIDE`` or more, the overlapping-tile search is
#: skipped, and a warning says so: it costs about 1.4 ms an image at 20,000 images (2 cores)
#: and grows faster than the data.
OVERLAP_MAX_IMAGES = 20_000


def _tile_rows(features: Features, search_rows: np.ndarray) -> np.ndarray:
    """Positions in ``search_rows`` of the images the overlapping-tile search looks at."""
    return np.flatnonzero(features.sizes[search_rows].min(axis=1) >= OVERLAP_MIN_SIDE)


def overlap_pairs(features: Features, search_rows, query_pos, min_ncc: float, tiles=None) -> PairTable:
    """Candidate overlapping tiles among ``search_rows`` (``query_pos``: the positions in it
    queried; ``tiles``: the positions of the images to look at, when known): a quadrant of
    one image is a window of the other.

    Only images of ``OVERLAP_MIN_SIDE`` pixels or more are searched, and not two that both
    have a canvas view.
    Two tiles cut from one large image that share half their area or more share a whole
    quadrant of each (:func:`leakscan.features.window_hog`); the quadrant's place in one
    and the window's place in the other give the offset between the tiles (``PairTable.offset``).
    """
    pos = _tile_rows(features, search_rows) if tiles is None else tiles
    if len(pos) < 2:
        return PairTable.empty()
    rows = search_rows[pos]
    index, quadrants = _window_index(features, rows)
    queried = np.flatnonzero(np.isin(pos, query_pos))
    if not len(queried):
        return PairTable.empty()
    ranks = content_ranks(features.pixel_digest[rows])  # equal matches: taken in an order fixed by content
    found = [_best_windows(index, quadrants[queried[s:s + WINDOW_BLOCK]], queried[s:s + WINDOW_BLOCK], ranks)
             for s in range(0, len(queried), WINDOW_BLOCK)]
    a, b, sim, dy, dx = (np.concatenate(col) for col in zip(*found))
    query_rank = ranks[a]
    a, b = rows[a], rows[b]
    # two images with a canvas view (padding, a flat border, a caption bar) line up by their
    # borders: such a pair is left to the whole-image search
    canvas = features.canvas_mask()
    keep = ~(canvas[a] & canvas[b])
    a, b, sim, dy, dx, query_rank = a[keep], b[keep], sim[keep], dy[keep], dx[keep], query_rank[keep]
    # one row per pair (found from either side: its best window match; equally good both ways,
    # the one its image first by content found), i < j
    flip = a > b  # j's pixel (y, x) shows i's (y + dy, x + dx): swapping the pair negates it
    offset = np.stack([np.where(flip, -dy, dy), np.where(flip, -dx, dx)], axis=1)
    pairs = _candidates(np.minimum(a, b), np.maximum(a, b), Kind.EMBEDDING, sim, MatchView.OVERLAP)
    pairs = dataclasses.replace(pairs, offset=offset.astype(np.float32)).first_per_pair(query_rank, -pairs.score)
    ncc = np.empty(len(pairs), np.float32)
    offset = np.empty((len(pairs), 2), np.float32)
    for s in range(0, len(pairs), BLOCK):
        i, j, base = pairs.i[s:s + BLOCK], pairs.j[s:s + BLOCK], pairs.offset[s:s + BLOCK].astype(np.int64)
        # lined up one way round fixed by content (the climb may end elsewhere the other way)
        swap = digest_greater(features.pixel_digest[i], features.pixel_digest[j])
        sign = np.where(swap, -1, 1)
        found, dy, dx = locate(features.thumb[np.where(swap, j, i)], features.thumb[np.where(swap, i, j)],
                               sign * base[:, 0], sign * base[:, 1])
        ncc[s:s + BLOCK], offset[s:s + BLOCK, 0], offset[s:s + BLOCK, 1] = found, sign * dy, sign * dx
    pairs = dataclasses.replace(pairs, offset=offset)
    dy, dx = offset[:, 0], offset[:, 1]
    # the floor of aligned detail, as for every candidate; small offsets are the whole-image
    # search's, and tiles sharing under a quarter are not worth a look
    keep = ((ncc >= min_ncc) & ((np.abs(dy) >= OVERLAP_MIN_OFFSET) | (np.abs(dx) >= OVERLAP_MIN_OFFSET))
            & (overlap_share(pairs.offset) >= 0.25))
    return pairs.take(keep)


#: Above this many windows, the window index keeps product-quantized codes, built in chunks
#: of ``WINDOW_BLOCK`` images (float windows take 41 kB an image); below, the windows as they are.
EXACT_WINDOWS = 200_000
WINDOW_BLOCK = 2048
#: Images whose windows train the coded index (the lowest pixel digests: chosen by content).
WINDOW_TRAIN_IMAGES = 2048


def _window_index(features: Features, rows: np.ndarray):
    """The index of every window of ``rows`` (window ``k`` of ``rows[r]`` is entry
    ``r * len(WINDOW_PLACES) + k``) and their quadrants ``(len(rows), 4, d)``."""
    quads = np.asarray(QUADRANTS, np.int64)
    n_windows = len(rows) * len(WINDOW_PLACES)
    if n_windows <= EXACT_WINDOWS:
        windows = window_hog(features.thumb[rows])
        index = CosineIndex(windows.reshape(n_windows, -1), n_lists=int(np.sqrt(n_windows)))  # a coarse index
        return index, windows[:, quads]
    sample = rows[digest_order(features.pixel_digest[rows])[:WINDOW_TRAIN_IMAGES]]
    train = window_hog(features.thumb[sample])
    index = CodedCosineIndex(train.reshape(-1, train.shape[-1]), n_lists=int(np.sqrt(n_windows)))
    quadrants = np.empty((len(rows), len(quads), train.shape[-1]), np.float32)
    for s in range(0, len(rows), WINDOW_BLOCK):
        windows = window_hog(features.thumb[rows[s:s + WINDOW_BLOCK]])
        index.add(windows.reshape(-1, windows.shape[-1]))
        quadrants[s:s + WINDOW_BLOCK] = windows[:, quads]
    return index, quadrants


def _best_windows(index, quadrants: np.ndarray, images: np.ndarray, ranks: np.ndarray):
    """Each of ``images``' (positions in the index's rows) ``OVERLAP_NEIGHBOURS`` best
    matching other images, by their quadrants ``(len(images), 4, d)``: ``(a, b, window
    cosine, dy, dx)``, ``b``'s pixel ``(y, x)`` showing ``a``'s ``(y + dy, x + dx)``. Equal
    matches are taken by ``ranks`` (of the index's rows, fixed by content)."""
    n_places = len(WINDOW_PLACES)
    quads = np.asarray(QUADRANTS, np.int64)
    window_ranks = (ranks[:, None] * n_places + np.arange(n_places)).ravel()
    sims, ids = index.knn(quadrants.reshape(len(images) * len(quads), -1), min(OVERLAP_K, len(index)),
                          ranks=window_ranks)
    owner, place = ids // n_places, ids % n_places
    q_image = np.repeat(images, len(quads))
    places = np.asarray(WINDOW_PLACES, np.int64)
    q_place = places[np.tile(quads, len(images))]
    dy = q_place[:, None, 0] - places[place, 0]
    dx = q_place[:, None, 1] - places[place, 1]
    ok = ((ids >= 0) & (owner != q_image[:, None]) & (sims >= OVERLAP_MIN_COSINE)
          & ((np.abs(dy) >= OVERLAP_MIN_OFFSET) | (np.abs(dx) >= OVERLAP_MIN_OFFSET)))
    r, c = np.nonzero(ok)
    a, b, sim = q_image[r], owner[r, c], sims[r, c]
    dy, dx = dy[r, c], dx[r, c]
    keep = _best_few(a, b, sim, OVERLAP_NEIGHBOURS, ranks)  # each query image's best window match per other image
    return a[keep], b[keep], sim[keep], dy[keep], dx[keep]


def _best_few(query: np.ndarray, other: np.ndarray, sim: np.ndarray, few: int, ranks: np.ndarray) -> np.ndarray:
    """Positions of the matches to keep: each query's best match per other image, then the
    best ``few`` other images of each query (by ``sim``; equal ones by the others' ``ranks``,
    indexed like ``other``), in that order."""
    order = np.lexsort((-sim, other, query))
    q, o = query[order], other[order]
    first = np.ones(len(order), bool)
    first[1:] = (q[1:] != q[:-1]) | (o[1:] != o[:-1])
    order = order[first]
    order = order[np.lexsort((ranks[other[order]], -sim[order], query[order]))]
    q = query[order]
    start = np.r_[0, np.flatnonzero(q[1:] != q[:-1]) + 1]
    rank = np.arange(len(q)) - np.repeat(start, np.diff(np.r_[start, len(q)]))
    return order[rank < few]


def _model_pairs(model_emb, search_rows, settings: DetectSettings, query_pos, ranks: np.ndarray):
    """Pairs of rows whose model embeddings have cosine >= ``model_min_cosine`` (among each query's k nearest;
    equal ones taken by ``ranks``, of ``search_rows``, fixed by content)."""
    index = CosineIndex(model_emb[search_rows])
    kk = min(settings.k + 1, len(search_rows))
    sims, ids = index.knn(model_emb[search_rows[query_pos]], kk, ranks=ranks)
    r, c = np.nonzero((sims >= settings.model_min_cosine) & (ids != query_pos[:, None]) & (ids >= 0))
    a, b = search_rows[query_pos[r]], search_rows[ids[r, c]]
    keep = a != b
    a, b, sim = a[keep], b[keep], sims[r, c][keep]
    i, j = np.minimum(a, b), np.maximum(a, b)
    if len(i) == 0:
        return i.astype(np.int64), j.astype(np.int64), sim.astype(np.float32)
    order = np.lexsort((-sim, j, i))
    i, j, sim = i[order], j[order], sim[order]
    first = np.ones(len(i), bool)
    first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
    return i[first].astype(np.int64), j[first].astype(np.int64), sim[first].astype(np.float32)


def measure_pairs(features: Features, i, j, variants, block: int = 8192):
    """``(hamming, cosine, variant)`` of every pair: the pHash distance (least over ``variants``,
    either image transformed), the embedding cosine (greatest over ``variants`` of one image,
    the one of the smaller pixel digest: the same whatever the order of the rows) and the
    variant of ``i`` it is greatest at."""
    ham = np.full(len(i), -1, np.int16)
    cos = np.full(len(i), np.nan, np.float32)
    best = np.zeros(len(i), np.int8)
    ok = features.ok
    variants = np.asarray(variants, np.int64)
    for start in range(0, len(i), block):
        a, b = np.asarray(i[start:start + block]), np.asarray(j[start:start + block])
        good = ok[a] & ok[b]
        a, b = a[good], b[good]
        idx = np.flatnonzero(good) + start
        # a pHash of a flipped picture is not the flipped pHash: both ways round, the nearer
        h = features.hashes[a][:, variants] ^ features.hashes[b][:, None, 0]
        h_back = features.hashes[b][:, variants] ^ features.hashes[a][:, None, 0]
        ham[idx] = np.minimum(_popcount(h).min(axis=1), _popcount(h_back).min(axis=1))
        swap = digest_greater(features.pixel_digest[a], features.pixel_digest[b])
        first, second = np.where(swap, b, a), np.where(swap, a, b)
        ev = embedding_variants(features.embedding[first], variants)
        sims = np.einsum("pvd,pd->pv", ev, features.embedding[second])
        cos[idx] = sims.max(axis=1)
        v = variants[sims.argmax(axis=1)]
        best[idx] = np.where(swap, INVERSE_VARIANT[v], v)
    return ham, cos, best
