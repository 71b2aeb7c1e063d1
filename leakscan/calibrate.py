"""Turn a candidate pair's evidence into one calibrated probability, learned on the user's own data.

No fixed weights and no thresholds tuned elsewhere: at run time a sample of the dataset's
own images is copied the ways users' copies are made (shifted, cropped, rescaled,
re-encoded, recoloured, blurred, flipped or rotated, letterboxed, captioned; and, for the
overlapping-tile search, the next tile of the same scene). Each copy is
searched against the dataset as a real image is (:func:`leakscan.pairs.find_candidates`), but
against every split and without the tilted views, the folded brightness, the window search and
the pairs with twins, and its evidence measured (:mod:`leakscan.evidence`):

* **positives**: a copy and the image it was made from;
* **negatives**: a copy and the other images the search proposed, plus those of its
  :data:`NEIGHBOURS` nearest neighbours by embedding the search could propose read whole
  (the look-alikes a copy must be told apart from; the farther ones only when a small
  dataset gives too few), except images the search already proposes as a pair with the
  copy's source, or with an image it proposes with the source (they may be real copies of
  it: left out of the first fit, and taught as look-alikes only when that fit calls them so).

A logistic regression on these pairs (scikit-learn's objective, solved in numpy:
:func:`logistic_fit`), with the two classes weighted equally, averaged over :data:`BAGS`
fits on resamples of the source pictures (:func:`_bagged`), gives each real candidate the
probability that the two images are the same picture, at even prior odds. The weights of the
similarity evidence keep their sign; those of the columns saying how a pair was found are
held near 0 (:data:`READING_PENALTY`). Held-out pairs (cross-validated by source
image, each fold one fit) say how well the evidence separates copies from look-alikes *on
this data* (``heldout_auc``); when it separates them poorly (images too small or too uniform), the
audit says so.

The fit weighs copies and look-alikes equally; among a dataset's real candidates copies are
rarer. :func:`adjust_to_prior` estimates their share among the candidates (the EM procedure
of Saerens, Latinne & Decaestecker, 2002) and turns each probability into the posterior at
that share: the ``confidence`` reported.

Everything is seeded by image content, so the same images give the same decisions whatever
their order, folder layout or manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from threadpoolctl import threadpool_limits

from .evidence import EVIDENCE, SIGN, EvidenceMemo, pair_evidence, typical_neighbours
from .features import Features, content_ranks, digest_order, extract_images
from .index import CosineIndex
from .memory import release_free_memory
from .output import shown_bar
from .padding import SharedOverlay
from .pairs import (OVERLAP_MIN_SIDE, Candidates, Kind, PairTable, find_candidates, overlap_pairs, pair_keys, rows_of,
                    twin_pairs)
from .parallel import run_chunks
from .settings import RANDOM_STATE, DetectSettings
from .views import N_VARIANTS, MatchView, embedding_variants, transform_variants

log = logging.getLogger(__name__)

__all__ = ["Calibration", "THUMBNAILS", "calibrate", "synthetic_copy", "tilted_copy", "CAL_SAMPLE", "sample_size",
           "MIN_AUC", "adjust_to_prior", "at_lower_share", "at_prior", "logistic_fit", "picture_share", "roc_auc"]

#: Images of a large dataset copied to calibrate (chosen by content digest; :func:`sample_size`).
#: Another sample of 400 moved CIFAR-10's flagged test images between 595 and 791
#: (bench/stability.py); of 800, between 677 and 716.
CAL_SAMPLE = 800
#: A dataset of at most this many images is copied whole (the sample of earlier versions).
CAL_SAMPLE_MIN = 400
#: Copies made of each sampled image.
COPIES = 2
#: Nearest neighbours of each copy taken as look-alike negatives.
NEIGHBOURS = 20
#: Copies are made from the image reduced to this many pixels a side: more than the evidence
#: reads (32-pixel thumbnails; a model, 224 by default).
COPY_SIDE = 256
#: A pair of the search that the first fit scores at least this is left out of the final fit
#: as a probable real copy (see :func:`calibrate`); below it, it is taught as a look-alike.
SURE_COPY = 0.9
#: With fewer look-alikes than this above the ``min_ncc`` floor, those below it are used too.
MIN_NEGATIVES = 20
#: Pseudo-pairs added (twice this many, at the ``centre`` share) when the share of copies among
#: the candidates is estimated (:func:`adjust_to_prior`): a handful of candidates cannot pull it to 0.
PRIOR_PSEUDO_COUNT = 10
#: The columns that say how a pair was found (``zoom``, ``cropped``, ``rotated``, ``overlap``:
#: either sign) are penalised this much per pair learnt from (standardised): the similarity
#: evidence decides, the reading only nudges. Free, they took large weights of either sign
#: from one sample of copies to the next.
READING_PENALTY = 0.1
#: Below this held-out AUC the evidence separates copies from look-alikes poorly on this data
#: (a warning says so).
MIN_AUC = 0.9
#: Fits averaged into the decision (:func:`_bagged`), each on a resample of the source pictures.
BAGS = 16

ImageSource = Callable[[Sequence[int]], list]


@dataclass(frozen=True)
class Calibration:
    """A fitted decision: evidence -> probability, and how well it separated copies here.

    Attributes
    ----------
    columns : tuple of str
        The evidence used (:data:`leakscan.evidence.EVIDENCE` names).
    mean, scale, coef : ndarray
        Standardisation and logistic-regression weights per column; ``intercept`` the bias.
    threshold : float
        The duplicate threshold in force (``min_confidence``, or higher as ``min_precision``
        raises it: :func:`leakscan.decide.with_bar_in_force`).
    stats : dict
        ``n_images``, ``n_copies``, ``edits``, ``n_positive``, ``n_negative``, held-out
        ``recall`` and ``false_alarm`` at 0.5, ``heldout_auc``, ``left_out_as_possible_copies``,
        ``model_floor``; :mod:`leakscan.decide` adds the shares of copies (``prior``,
        ``prior_*``), ``expected_precision``, ``raised_from`` and ``labels`` (the labels weighed:
        :func:`leakscan.decide.weigh_labels`).
    readings : dict
        The decisions for pairs read other than as a whole that have their own, fitted apart:
        ``"overlap"`` (overlapping tiles: on tile copies and the look-alikes the window search
        proposes), when that search proposed any. (Tilted pairs are decided by the whole-image
        decision, on the evidence of the tilted view: :mod:`leakscan.decide`.) With a model's
        embeddings, ``"thumbnails"``: the same decision fitted without the model's cosine,
        which :meth:`predict` never goes below (:data:`THUMBNAILS`).
    """

    columns: tuple
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float
    stats: dict = field(default_factory=dict)
    readings: dict = field(default_factory=dict)

    def predict(self, evidence: np.ndarray) -> np.ndarray:
        """Probability per row of an evidence matrix (columns as :data:`EVIDENCE`); with a
        :data:`THUMBNAILS` decision, at least what it says."""
        cols = [EVIDENCE.index(c) for c in self.columns]
        x = (np.nan_to_num(evidence[:, cols].astype(np.float64)) - self.mean) / self.scale
        z = x @ self.coef + self.intercept
        p = (1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))).astype(np.float32)
        alone = self.readings.get(THUMBNAILS)
        if alone is None:
            return p
        thumbnails = alone.predict(evidence)
        floor = self.stats.get(MODEL_FLOOR)
        if floor is not None:  # under its own bar the model says nothing: the thumbnails decide
            p = np.where(evidence[:, EVIDENCE.index("model")] >= floor, p, thumbnails)
        return np.maximum(p, thumbnails)

    def to_dict(self) -> dict:
        out = {"threshold": shown_bar(self.threshold),
               "weights": {c: round(float(w / s), 4) for c, w, s in zip(self.columns, self.coef, self.scale)},
               **self.stats}
        for name, fitted in self.readings.items():
            out[name] = fitted.to_dict()
        return out


#: The decision fitted without a model's cosine (``Calibration.readings``). A model only adds
#: evidence: the copies it does not recognise (turned then cropped, for SSCD) are copies all
#: the same, and a decision that learnt that copies mostly have a high model cosine would weigh
#: them down by it. So a pair is at least as likely a copy as the thumbnails alone say.
THUMBNAILS = "thumbnails"
#: ``Calibration.stats`` key: the model cosine (``--model-min-cosine``) under which a pair is
#: decided by the thumbnails alone. The copies the fit learns from are synthetic and the model
#: knows them well, so it reads any cosine between theirs and the look-alikes' as evidence of a
#: copy; on CIFAR-10 that let burst frames and one scene shot twice in at cosines 0.4-0.7. A
#: model raises a pair only at a cosine where it would propose the pair itself.
MODEL_FLOOR = "model_floor"


# --------------------------------------------------------------------------- synthetic copies

EDITS = ("shift", "crop", "rescale", "jpeg", "colour", "blur", "dihedral", "letterbox", "rotate", "caption")
#: Share of the sampled pictures the overlapping-tile search looks at that also get a tile
#: copy (:func:`overlapping_tile`): the positives of the overlapping-tile decision.
TILE_SHARE = 0.5


def synthetic_copy(img: Image.Image, rng: np.random.Generator, variants=tuple(range(N_VARIANTS))) -> tuple:
    """``(copy, edits)``: one plausible user's copy of ``img`` (RGB), made with 1-2 random edits.

    Examples
    --------
    >>> img = Image.new("RGB", (64, 48), (200, 30, 30))
    >>> copy, edits = synthetic_copy(img, np.random.default_rng(0))
    >>> copy.mode, len(edits) >= 1
    ('RGB', True)
    """
    names = [e for e in EDITS if e != "dihedral" or len(variants) > 1]
    edits = list(rng.choice(names, size=int(rng.integers(1, 3)), replace=False))
    out = img
    for e in edits:
        out = _EDIT[e](out, rng, variants)
    if "jpeg" not in edits and rng.random() < 0.5:
        out = _jpeg(out, rng, variants, quality=int(rng.integers(60, 96)))
    return out.convert("RGB"), tuple(edits)


def overlapping_tile(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The tile next to ``img`` in a larger scene, sharing 50-80% of its area: ``img`` shifted
    by 20-45% of its width, its height or both, the uncovered part filled with more of a like
    scene (``img`` turned half round, as the rest of a satellite scene or a slide looks like its
    neighbourhood, without lining up with it)."""
    w, h = img.size
    while True:
        fx, fy = [float(rng.uniform(0.2, 0.45)) if rng.random() < 0.7 else 0.0 for _ in range(2)]
        if fx + fy and 0.5 <= (1 - fx) * (1 - fy) <= 0.8:
            break
    dx, dy = round(fx * w), round(fy * h)
    scene = Image.new("RGB", (w + dx, h + dy))
    other = img.transpose(Image.ROTATE_180)
    for x in range(0, w + dx, w):
        for y in range(0, h + dy, h):
            scene.paste(other, (x, y))
    flip_x, flip_y = rng.random() < 0.5, rng.random() < 0.5  # which way the next tile lies
    scene.paste(img, (dx if flip_x else 0, dy if flip_y else 0))
    x0, y0 = (0 if flip_x else dx), (0 if flip_y else dy)
    return scene.crop((x0, y0, x0 + w, y0 + h))


def tilted_copy(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A copy of ``img`` turned by 4-40 degrees either way, as the tilted views find them:
    cropped to the largest upright box free of the corners, or kept on a canvas of its own
    size (corners black or white), then re-encoded as a JPEG.

    >>> tilted_copy(Image.new("RGB", (80, 60), (9, 9, 9)), np.random.default_rng(0)).mode
    'RGB'
    """
    angle = float(rng.uniform(4, 40)) * (1 if rng.random() < 0.5 else -1)
    w, h = img.size
    if rng.random() < 0.5:  # cropped free of the corners: the largest upright box of the same shape
        a = np.radians(abs(angle))
        scale = 1 / (np.cos(a) + np.sin(a) * max(w / h, h / w))
        out = img.rotate(angle, resample=Image.BICUBIC)
        cw, ch = max(8, round(w * scale)), max(8, round(h * scale))
        out = out.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
    else:
        out = img.rotate(angle, resample=Image.BICUBIC, fillcolor=(0, 0, 0) if rng.random() < 0.5 else (255, 255, 255))
    return _jpeg(out.convert("RGB"), rng, None, quality=int(rng.integers(60, 96)))


def _shift(img, rng, _v):
    w, h = img.size
    f = rng.uniform(0.85, 0.97)
    cw, ch = max(1, round(w * f)), max(1, round(h * f))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BICUBIC)


def _crop(img, rng, _v):
    w, h = img.size
    area = rng.uniform(0.55, 0.9)
    aspect = rng.uniform(0.8, 1.25)
    cw = min(w, max(1, round(w * np.sqrt(area * aspect))))
    ch = min(h, max(1, round(h * np.sqrt(area / aspect))))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x, y, x + cw, y + ch))


def _rescale(img, rng, _v):
    w, h = img.size
    f = rng.uniform(0.3, 0.8)
    small = img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.BILINEAR)
    return small if rng.random() < 0.5 else small.resize((w, h), Image.BICUBIC)


def _jpeg(img, rng, _v, quality=None):
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=int(quality or rng.integers(30, 80)))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _colour(img, rng, _v):
    a = np.asarray(img.convert("RGB"), np.float32)
    kind = rng.integers(0, 4)
    if kind == 0:  # per-channel gain and offset
        a = a * rng.uniform(0.75, 1.25, 3) + rng.uniform(-25, 25, 3)
    elif kind == 1:  # gamma
        a = 255.0 * (a / 255.0) ** rng.uniform(0.6, 1.6)
    elif kind == 2:  # grayscale
        return ImageOps.grayscale(img).convert("RGB")
    else:  # hue shift
        hsv = np.asarray(img.convert("RGB").convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(rng.integers(15, 240))) % 256
        return Image.fromarray(hsv, "HSV").convert("RGB")
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def _blur(img, rng, _v):
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2) * max(img.size) / 128))


_TRANSPOSE = {1: Image.FLIP_LEFT_RIGHT, 2: Image.FLIP_TOP_BOTTOM, 3: Image.ROTATE_180, 4: Image.TRANSPOSE,
              5: Image.ROTATE_270, 6: Image.ROTATE_90, 7: Image.TRANSVERSE}


def _dihedral(img, rng, variants):
    v = int(rng.choice([v for v in variants if v]))
    return img.transpose(_TRANSPOSE[v])


def _letterbox(img, rng, _v):
    w, h = img.size
    fill = [(0, 0, 0), (255, 255, 255), tuple(int(c) for c in rng.integers(0, 256, 3))][int(rng.integers(0, 3))]
    pad = rng.uniform(0.05, 0.25)
    if rng.random() < 0.5:
        return ImageOps.expand(img, border=(0, round(h * pad), 0, round(h * pad)), fill=fill)
    return ImageOps.expand(img, border=(round(w * pad), 0, round(w * pad), 0), fill=fill)


def _rotate(img, rng, _v):
    angle = float(rng.uniform(4, 30)) * (1 if rng.random() < 0.5 else -1)
    fill = (0, 0, 0) if rng.random() < 0.5 else (255, 255, 255)
    return img.rotate(angle, resample=Image.BICUBIC, expand=bool(rng.random() < 0.5), fillcolor=fill)


def _caption(img, rng, _v):
    out = img.copy()
    d = ImageDraw.Draw(out)
    w, h = out.size
    y = int(rng.uniform(0.6, 0.9) * h)
    d.text((int(0.05 * w), y), "copy " + str(int(rng.integers(0, 10000))),
           fill=(255, 255, 255) if rng.random() < 0.5 else (0, 0, 0))
    return out


_EDIT = {"shift": _shift, "crop": _crop, "rescale": _rescale, "jpeg": _jpeg, "colour": _colour, "blur": _blur,
         "dihedral": _dihedral, "letterbox": _letterbox, "rotate": _rotate, "caption": _caption}


def thumbnails_as_images(features: Features, rows) -> list:
    """Stand-in pictures rebuilt from the stored thumbnails (when the images are not at hand)."""
    out = []
    for r in rows:
        colour = np.asarray(Image.fromarray(features.colour[r].transpose(1, 2, 0), "RGB")
                            .resize((32, 32), Image.BICUBIC), np.float32)
        grey = colour.mean(axis=2, keepdims=True)
        rgb = np.clip(colour - grey + features.thumb[r][..., None].astype(np.float32), 0, 255)
        out.append(Image.fromarray(rgb.astype(np.uint8), "RGB").resize((96, 96), Image.BICUBIC))
    return out


# --------------------------------------------------------------------------- calibration

def sample_size(n_images: int) -> int:
    """Images of ``n_images`` copied to calibrate: :data:`CAL_SAMPLE`, or fewer of a small
    dataset of which that would be more than 5%: Cochran's finite-population correction
    (``n0 N / (N + n0)``, rounded up: 464 of 1,100 images; ignored, as is usual, below 5%),
    at least :data:`CAL_SAMPLE_MIN` (every image of a dataset that small).

    >>> [sample_size(n) for n in (10, 400, 1_100, 15_000, 16_000, 60_000)]
    [10, 400, 464, 760, 800, 800]
    """
    n = max(int(n_images), 0)
    if CAL_SAMPLE <= 0.05 * n:
        return CAL_SAMPLE
    return min(n, max(CAL_SAMPLE_MIN, -(-CAL_SAMPLE * n // (n + CAL_SAMPLE))))


def picture_share(n_rows: int) -> float:
    """Share of a dataset's pixel digests (the lowest) whose pictures are worth keeping when
    they are first decoded: the calibration's sample is the :func:`sample_size` lowest digests
    of the searchable rows, and half as many again covers rows left out of the search."""
    return min(1.0, 1.5 * CAL_SAMPLE / max(int(n_rows), 1))


def calibrate(features: Features, settings: DetectSettings, candidates: Candidates, *,
              images: ImageSource | None = None, model=None, jobs: int = 1, salt: int = 0,
              overlay: SharedOverlay | None = None, release_index: bool = False,
              memo: EvidenceMemo | None = None) -> Calibration | None:
    """Fit the pair decision on synthetic copies of a sample of ``features``' own images.

    ``images(rows)`` returns the canonical RGB pictures of those rows (None: rebuilt from the
    thumbnails). ``model``: the ONNX model spec, when model embeddings are evidence. ``salt``
    (0: the decision audits make) draws another sample and other copies, to measure how much
    the decision depends on them (``bench/stability.py``). A shared ``overlay``
    (:func:`~leakscan.evidence.shared_overlay_of`) is left out of the evidence, as for the candidates.
    ``release_index``: the caller searches ``candidates.index`` no more, so it is released once
    the copies are searched (:meth:`~leakscan.index.CosineIndex.release`), before the evidence.
    ``memo`` (:class:`~leakscan.evidence.EvidenceMemo`, of ``features``' rows) keeps the evidence
    of the pairs measured, and gives that of pairs measured before: a copy is the same copy for
    the same source (its edits come from the source's pixels), whatever else was sampled.
    Returns None when there is too little to fit: fewer than 2 searchable images, or than
    :data:`MIN_EXAMPLES` copies or look-alikes.
    """
    s = settings
    variants = transform_variants(s.transforms)
    search_rows = candidates.search_rows
    if len(search_rows) < 2:
        return None
    digests = features.pixel_digest[search_rows]
    if salt:  # another content order: another sample
        digests = digests ^ np.frombuffer(hashlib.blake2b(str(salt).encode(), digest_size=16).digest(), np.uint8)
    sample = search_rows[digest_order(digests)][:sample_size(len(search_rows))]
    pictures = list(images(sample) if images is not None else thumbnails_as_images(features, sample))
    # tile copies only when the search proposed overlapping tiles: their decision has something to decide
    wants_tiles = bool(np.any(candidates.pairs.variant == MatchView.OVERLAP))
    sources = []
    for k, r in enumerate(sample.tolist()):
        pic, pictures[k] = pictures[k], None  # each let go once read: the sample is not held twice
        if pic is not None:
            pic = pic.convert("RGB")
            pic.thumbnail((COPY_SIDE, COPY_SIDE), Image.BILINEAR)
            seed = int.from_bytes(features.pixel_digest[r, :8].tobytes(), "little") ^ salt
            tiles = wants_tiles and min(pic.size) >= OVERLAP_MIN_SIDE
            sources.append((r, np.asarray(pic), seed, tiles))
    if not sources:
        return None
    n = len(features)
    step = -(-len(sources) // (4 * max(1, jobs)))
    tasks = [(sources[k:k + step], variants, model) for k in range(0, len(sources), step)]
    origin, edit_names, parts = [], [], []
    for _, (rows, edits, part) in run_chunks(_copies_job, tasks, jobs=jobs):  # results in task order
        origin += rows
        edit_names += edits
        parts.append(part)
    del sources, tasks  # the sample's pictures: the copies are made
    made = Features.concat(parts, np.cumsum([0] + [len(p) for p in parts[:-1]]).tolist())
    if features.model_embedding is None and made.model_embedding is not None:
        made = dataclasses.replace(made, model_embedding=None)
    # the search needs no thumbnails of the dataset's images (memory: 2 GB a million) nor a
    # copy of their embeddings (it searches on the audit's index); the tile search and the
    # evidence get the few images they look at, with theirs (_compact)
    aug = features.beside(made)
    origin = np.asarray(origin, np.int64)
    tile_copy = np.zeros(len(aug), bool)
    tile_copy[n:] = np.array([e == ("tile",) for e in edit_names], bool)
    copy_rows = n + np.flatnonzero(made.ok & ~tile_copy[n:])
    tile_rows = n + np.flatnonzero(made.ok & tile_copy[n:])
    # the copies are searched as real images are, but against every split and without the tile
    # copies, the window, tilted and folded searches and the pairs with twins
    cal_settings = dataclasses.replace(s, scope="all", overlap=False)
    # the copies are searched on the search's own index of the dataset, indexed beside it
    found = find_candidates(dataclasses.replace(aug, ok=aug.ok & ~tile_copy), cal_settings, query_rows=copy_rows,
                            tilted_search=False, earlier=candidates, twins=False, folded_search=False)
    pairs = found.pairs.take((found.pairs.j >= n) & (found.pairs.kind != Kind.EXACT))
    release_free_memory()  # the search's, before the evidence takes the thumbnails it reads
    near, beyond = _neighbour_pairs(aug, search_rows, copy_rows, variants, s, candidates.index)
    if release_index and candidates.index is not None:  # its last search (memory: 256 MB a million)
        candidates.index.release()
        release_free_memory()
    parts = [pairs, near]
    if len(tile_rows):  # the tile copies' window matches among the sample, every one: the look-alikes
        pool = np.r_[sample, tile_rows]
        look, at, rows = _compact(aug, features, pool)
        tiles = overlap_pairs(look, at[pool], np.arange(len(sample), len(pool)), min_ncc=-1.0)
        parts.append(dataclasses.replace(tiles, i=rows[tiles.i], j=rows[tiles.j]))
    pairs = _unique(PairTable.concat(parts))
    beyond = _unique(beyond.take(~np.isin(beyond.keys(), pairs.keys())))
    kth = found.kth_neighbour.copy()
    kth[:n] = candidates.kth_neighbour
    involved = np.unique(np.r_[pairs.i, pairs.j, beyond.i, beyond.j])
    kth = typical_neighbours(aug, involved, kth, centroids=candidates.centroids)
    # the evidence, on the images the pairs and their typical neighbours show
    look, at, rows = _compact(aug, features, np.r_[involved, kth[involved]])
    look_kth = np.where(kth[rows] >= 0, at[np.clip(kth[rows], 0, None)], -1)
    origin_of = np.full(len(aug), -1, np.int64)
    origin_of[n:] = origin

    # two sources the search already proposes as a pair, or each with a third (or never searched
    # as one: both in one split, when only pairs across splits are searched) may be copies of
    # each other: such a pair is neither a sure copy nor a sure look-alike, so it is left out
    # of the first fit. (Not the pairs only the tilted views propose: each image's few best
    # tilted matches, most of them look-alikes, and the hardest the fit has to learn from.)
    untilted = ~MatchView.from_tilted(candidates.pairs.variant)
    proposed = (candidates.pairs.i[untilted], candidates.pairs.j[untilted])  # their ends: not a copy of the table
    # a picture's twins (pHashes as they are within TWIN_HAMMING bits) are most likely copies of it
    # the dataset holds, resized or re-encoded
    twins = candidates.pairs.take(twin_pairs(candidates.pairs)).keys()

    def labels(pairs):  # (source of j, a copy with its source?, may the sources be copies of each other? twins?)
        src_i = np.where(pairs.i >= n, origin_of[pairs.i], pairs.i)
        src_j = origin_of[pairs.j]
        label = np.all(aug.pixel_digest[src_i] == aug.pixel_digest[src_j], axis=1)
        twin = np.isin(pair_keys(np.minimum(src_i, src_j), np.maximum(src_i, src_j)), twins) & ~label
        # two copies of one picture need not look alike enough to be proposed together (a left
        # and a right crop): both proposed with one image is as good. Not for overlapping tiles:
        # the tiles of one scene all neighbour each other, and one sharing 30% is no copy
        related = _proposed(proposed, src_i, src_j, n, hops=2)
        tile = pairs.variant == MatchView.OVERLAP
        related[tile] = _proposed(proposed, src_i[tile], src_j[tile], n)
        if candidates.apart is not None:  # sources in one split were never searched as a pair
            related |= candidates.apart[src_i] == candidates.apart[src_j]
        return src_j, label, related & ~label, twin  # twins are related: the search proposes them together

    look_memo = None
    if memo is not None and not salt:  # the rows of look by what they show: an image, or a source's k-th copy
        copy = rows >= n
        ids = np.empty(len(rows), np.int64)
        ids[~copy] = memo.name_of(rows[~copy])
        ids[copy] = -1 - (memo.name_of(origin_of[rows[copy]]) * (COPIES + 1) + copy_ordinal(origin)[rows[copy] - n])
        look_memo = memo.named(ids, "calibration")

    def measured(pairs, **kw):
        return pair_evidence(look, dataclasses.replace(pairs, i=at[pairs.i], j=at[pairs.j]), look_kth, variants,
                             jobs=jobs, overlay=overlay, memo=look_memo, **kw)
    # only pairs at the min_ncc floor are learnt from (below: see MIN_NEGATIVES), so only they
    # are measured in full
    evidence = measured(pairs, min_ncc=s.min_ncc)
    src_j, label, related, twin = labels(pairs)
    whole = pairs.variant != MatchView.OVERLAP
    if len(beyond) and int((whole & (evidence[:, 0] >= s.min_ncc) & ~label & ~related).sum()) < MIN_NEGATIVES:
        # a small dataset: learn from the neighbours the search would not propose too
        pairs = PairTable.concat([pairs, beyond])
        evidence = np.concatenate([evidence, measured(beyond, min_ncc=s.min_ncc)])
        src_j, label, related, twin = labels(pairs)
    tile_reading = pairs.variant == MatchView.OVERLAP
    floor = evidence[:, 0] >= s.min_ncc
    for reading in (~tile_reading, tile_reading):  # each decision learns from enough look-alikes
        if reading.any() and int((reading & floor & ~label & ~twin).sum()) < MIN_NEGATIVES:
            # a small dataset (or one of pictures unlike each other, whose only look-alikes are
            # copies of a picture against its twins): learn from the easy look-alikes too
            below = np.flatnonzero(reading & ~floor)
            evidence[below] = measured(pairs.take(below))
            floor[below] = True
    columns = tuple(c for c in EVIDENCE if c != "model" or features.model_embedding is not None)
    stats = {"n_images": int(len(set(origin.tolist()))), "n_copies": int(made.ok.sum()),
             "edits": _edit_counts(edit_names)}
    pair_key = np.c_[aug.pixel_digest[pairs.i], aug.pixel_digest[pairs.j]]
    group = aug.pixel_digest[src_j]

    def fit(rows, columns=columns):
        o = rows[digest_order(pair_key[rows])]  # rows in content order: the same images, the same fit
        return _fit(evidence[o], label[o], group[o], columns, s.min_confidence, dict(stats))
    # A look-alike the search pairs with the copy's source may be a real copy of it. First fit
    # without such pairs; then keep those the first fit calls look-alikes as negatives and leave
    # out those it is sure are copies (a dataset full of copies must not teach copies as look-alikes).
    def fit_twice(rows, columns=columns):
        may_copy = related
        if int((rows & floor & ~related & ~label).sum()) < MIN_EXAMPLES:
            # every look-alike is related to a copy's source (an overlay on every picture makes the
            # search propose them all together): first leave out only the twins
            may_copy = twin
        first = fit(np.flatnonzero(rows & floor & ~may_copy), columns)
        ambiguous = rows & floor & may_copy
        if first is None or not ambiguous.any():
            return first
        unlike = np.zeros(len(label), bool)
        unlike[ambiguous] = first.predict(evidence[ambiguous]) < SURE_COPY
        final = fit(np.flatnonzero(rows & floor & (~may_copy | unlike)), columns)
        if final is not None:
            final.stats["left_out_as_possible_copies"] = int((ambiguous & ~unlike).sum())
        return final
    # a decision each for pairs read whole (copies other than tiles) and pairs read as overlapping tiles
    read_whole = ~tile_reading & ~tile_copy[pairs.i] & ~tile_copy[pairs.j]
    whole = fit_twice(read_whole)
    if whole is None:
        return None
    readings = {}
    if tile_reading.any():
        readings["overlap"] = fit_twice(tile_reading)
    if "model" in columns:
        readings[THUMBNAILS] = fit_twice(read_whole, tuple(c for c in columns if c != "model"))
        whole.stats[MODEL_FLOOR] = float(s.model_min_cosine)
    return dataclasses.replace(whole, readings={name: c for name, c in readings.items() if c is not None})


def copy_ordinal(origin: np.ndarray) -> np.ndarray:
    """Each copy's place among its source's copies (``origin``: the source of each, those of one
    source one after another, as :func:`_copies_job` makes them).

    >>> copy_ordinal(np.array([7, 7, 7, 3, 3, 9])).tolist()
    [0, 1, 2, 0, 1, 0]
    """
    k = np.arange(len(origin))
    first = np.r_[True, origin[1:] != origin[:-1]] if len(origin) else np.zeros(0, bool)
    return k - np.maximum.accumulate(np.where(first, k, 0))


def _copies_job(job) -> tuple:
    """``COPIES`` synthetic copies of each source picture (and sometimes a tile copy) and their
    features: ``job = ([(row, picture, seed, tiles), ...], variants, model)`` -> ``(origin rows,
    edits, Features)``. Each source's edits come from its own seed, so any split of the work
    gives the same copies."""
    sources, variants, model = job
    copies, origin, edit_names = [], [], []
    for r, pic, seed, tiles in sources:
        img = Image.fromarray(pic, "RGB")
        rng = np.random.default_rng(seed)
        for _ in range(COPIES):
            copy, edits = synthetic_copy(img, rng, variants)
            copies.append(np.asarray(copy))
            origin.append(r)
            edit_names.append(edits)
        tile_rng = np.random.default_rng([seed, 1])  # its own stream: the copies above stay as they were
        if tiles and tile_rng.random() < TILE_SHARE:
            copies.append(np.asarray(_jpeg(overlapping_tile(img, tile_rng), tile_rng, variants,
                                           quality=int(tile_rng.integers(60, 96)))))
            origin.append(r)
            edit_names.append(("tile",))
    return origin, edit_names, extract_images(copies, model=model)


def _compact(aug: Features, features: Features, rows: np.ndarray) -> tuple:
    """``(look, at, rows)``: the ``rows`` of ``aug`` (ascending, once each; -1 ignored) as
    features of their own, with the thumbnails of ``features``' rows that ``aug`` was made
    without; ``at[r]`` is where row ``r`` of ``aug`` is in them (rows keep their order)."""
    rows = np.unique(rows[rows >= 0])
    look = aug.take(rows)
    mine = rows < len(features)
    look.thumb[mine] = features.thumb[rows[mine]]
    look.colour[mine] = features.colour[rows[mine]]
    look.folded[mine] = features.folded[rows[mine]]
    at = np.full(len(aug), -1, np.int64)
    at[rows] = np.arange(len(rows))
    return look, at, rows


def _proposed(cands: tuple, a: np.ndarray, b: np.ndarray, n: int, hops: int = 1) -> np.ndarray:
    """Mask: is ``(a[k], b[k])`` (rows of the dataset) one of the search's candidate pairs, whose
    ends are ``cands = (i, j)``, or (``hops=2``) are both candidates of one image?"""
    i, j = (np.asarray(e, np.int64) for e in cands)
    if len(i) == 0 or len(a) == 0:
        return np.zeros(len(a), bool)
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if hops == 1:
        return np.isin(pair_keys(np.minimum(a, b), np.maximum(a, b)), pair_keys(i, j))
    from scipy import sparse  # noqa: PLC0415

    # each asked image's candidates and itself, a row each (only theirs: a million images'
    # candidates would be a matrix of 150 MB): rows a and b share a column when a and b are a
    # pair or have a candidate in common
    asked = np.unique(np.r_[a, b])
    from_i, from_j = np.isin(i, asked), np.isin(j, asked)
    row = np.searchsorted(asked, np.r_[i[from_i], j[from_j], asked])
    near = sparse.csr_matrix((np.ones(len(row), bool), (row, np.r_[j[from_i], i[from_j], asked])),
                             shape=(len(asked), n))
    return np.asarray(near[np.searchsorted(asked, a)].multiply(near[np.searchsorted(asked, b)]).sum(axis=1)).ravel() > 0


def _edit_counts(edit_names) -> dict:
    out: dict = {}
    for edits in edit_names:
        for e in edits:
            out[e] = out.get(e, 0) + 1
    return dict(sorted(out.items()))


def _unique(pairs: PairTable) -> PairTable:
    """One row per (i, j) and reading (as overlapping tiles, or as a whole): the lowest kind code."""
    return pairs.first_per_pair(pairs.kind, apart=pairs.variant == MatchView.OVERLAP)


def _neighbour_pairs(aug: Features, search_rows, copy_rows, variants, settings: DetectSettings,
                     index: CosineIndex | None = None) -> tuple:
    """``(near, beyond)``: each copy with its :data:`NEIGHBOURS` nearest dataset images by
    embedding (best rotation/flip), split into those the search could propose read whole (at
    the cosine of its nearest neighbours, ``neighbour_min_cosine``, or the pHash distance of
    its candidates, ``max_hamming``) and the others. The decision learns from the others
    (those the search did not propose another way) only when a small dataset gives too few
    look-alikes otherwise.
    ``index``: the search's own index over ``search_rows`` (:attr:`~leakscan.pairs.Candidates.index`;
    None: one is built)."""
    k = min(NEIGHBOURS, len(search_rows))
    if k == 0 or len(copy_rows) == 0:
        return PairTable.empty(), PairTable.empty()
    if not isinstance(index, CosineIndex):
        index = CosineIndex(rows_of(aug.embedding, search_rows))
    # dataset images equally near (one picture many times) taken in an order fixed by content
    _, ids = index.knn(aug.embedding[copy_rows], k, ranks=content_ranks(aug.pixel_digest[search_rows]))
    a = np.repeat(copy_rows, k)
    b = search_rows[np.clip(ids.ravel(), 0, None)]
    ok = ids.ravel() >= 0
    a, b = a[ok], b[ok]
    ev = embedding_variants(aug.embedding[b], variants)
    sims = np.einsum("pvd,pd->pv", ev, aug.embedding[a])
    v = np.asarray(variants, np.int8)[sims.argmax(axis=1)]
    hd = np.unpackbits(aug.hashes[b][:, list(variants)] ^ aug.hashes[a][:, None, 0], axis=-1).sum(-1).min(1)
    cos = sims.max(axis=1)
    p = len(a)
    table = PairTable(i=b.astype(np.int64), j=a.astype(np.int64), kind=np.full(p, Kind.EMBEDDING, np.uint8),
                      score=cos.astype(np.float32), hamming=hd.astype(np.int16),
                      cosine=cos.astype(np.float32), variant=v, same_bytes=np.zeros(p, bool))
    near = (cos >= settings.neighbour_min_cosine) | (hd <= settings.max_hamming)
    return table.take(near), table.take(~near)


#: Fewest copies, and fewest look-alikes, a fit learns from.
MIN_EXAMPLES = 3


def _fit(evidence, label, group_digest, columns, min_confidence, stats) -> Calibration | None:
    cols = [EVIDENCE.index(c) for c in columns]
    x = np.nan_to_num(evidence[:, cols].astype(np.float64))
    y = label.astype(int)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    stats = {**stats, "n_positive": n_pos, "n_negative": n_neg}
    if n_pos < MIN_EXAMPLES or n_neg < MIN_EXAMPLES:
        log.warning("calibration: %d copies and %d look-alikes are too few to learn from", n_pos, n_neg)
        return None
    mean = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 1e-6, x.std(axis=0), 1.0)
    z = (x - mean) / scale

    signs = np.array([SIGN.get(c, 0) for c in columns])  # similarity never speaks against a copy

    reading = signs == 0  # how the pair was found, not how alike it is: held near 0

    def fit(rows):
        return logistic_fit(z[rows], y[rows], signs=signs,
                            penalty=np.where(reading, max(1.0, READING_PENALTY * len(rows)), 1.0))

    # held-out probabilities: folds by source image, so a copy is never judged by a fit on its twin
    heldout = np.full(len(y), np.nan)
    fold_of = np.asarray(group_digest[:, 0], np.int64) % 5  # folds by content: the same for any row order
    for f in range(5):
        test = fold_of == f
        train = ~test
        if test.any() and len(np.unique(y[train])) == 2:
            coef, intercept = fit(train)
            heldout[test] = _sigmoid(z[test] @ coef + intercept)
    coef, intercept = _bagged(fit, group_digest, y)
    judged = ~np.isnan(heldout)
    if judged.any() and len(np.unique(y[judged])) == 2:
        stats["heldout_auc"] = round(roc_auc(y[judged], heldout[judged]), 4)
        stats["recall"] = round(float(np.mean(heldout[judged & (y == 1)] >= 0.5)), 4)
        stats["false_alarm"] = round(float(np.mean(heldout[judged & (y == 0)] >= 0.5)), 4)
    threshold = float(min_confidence)
    return Calibration(columns=tuple(columns), mean=mean, scale=scale, coef=coef,
                       intercept=intercept, threshold=threshold, stats=stats)


def _bagged(fit, group_digest: np.ndarray, label: np.ndarray) -> tuple:
    """``(coef, intercept)``: the mean of :data:`BAGS` fits, each on the pairs of a resample
    (with replacement) of the source pictures. The evidence columns are correlated (aligned
    detail at three scales, block by block), so one fit may share the weight among them one way
    for one sample and another way for a sample a few pairs different; the mean holds still.
    A resample without copies or without look-alikes is not fitted (the whole set is, if all are)."""
    groups, of = np.unique(group_digest, axis=0, return_inverse=True)
    of = of.ravel()
    rng = np.random.default_rng(RANDOM_STATE)  # the rows are in content order: the same draws
    members = np.split(np.argsort(of, kind="stable"), np.cumsum(np.bincount(of, minlength=len(groups)))[:-1])
    fits = []
    for _ in range(BAGS):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(groups), len(groups))])
        if len(np.unique(label[rows])) == 2:
            fits.append(fit(rows))
    if not fits:
        fits = [fit(np.arange(len(label)))]
    return np.mean([c for c, _ in fits], axis=0), float(np.mean([b for _, b in fits]))


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * t))


def logistic_fit(x: np.ndarray, y: np.ndarray, c: float = 1.0, tol: float = 1e-8, max_iter: int = 100,
                 signs=None, penalty=None) -> tuple:
    """``(coef, intercept)`` of an L2-regularised logistic regression with balanced class weights.

    The objective of scikit-learn's ``LogisticRegression(C=c, class_weight="balanced")``
    (``c`` times the weighted log-loss plus half the squared norm of ``coef``; the intercept
    is not penalised), minimised by Newton's method: a few small solves instead of importing
    scikit-learn, whose import alone takes about a second.

    ``signs`` (one per column: +1, -1 or 0) bounds the weights: a column whose evidence can
    only speak for a copy (+1) or against one (-1) never gets the other sign, however its
    sample correlates with the other columns. The same objective is then minimised within
    those bounds (projected Newton: weights held at 0 while the gradient pushes them past it).
    ``penalty`` (one per column, default 1) scales each weight's squared-norm term.

    On one BLAS thread: the products are of a few columns, and several threads on a busy
    machine (the pool's workers, other programs) took 10 to 30 times as long.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _newton(x, y, c, tol, max_iter, signs, penalty)


def _newton(x, y, c, tol, max_iter, signs, penalty) -> tuple:
    """:func:`logistic_fit`'s Newton iterations."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n, d = x.shape
    n_pos = float(y.sum())
    weight = np.where(y > 0, n / (2 * max(n_pos, 1.0)), n / (2 * max(n - n_pos, 1.0))) * c
    xa = np.asfortranarray(np.c_[x, np.ones(n)])  # column by column: the Hessian's product is faster so
    beta = np.zeros(d + 1)
    penalty = np.r_[np.ones(d) if penalty is None else np.asarray(penalty, np.float64), 0.0]
    sign = np.r_[np.zeros(d) if signs is None else np.asarray(signs, np.float64), 0.0]

    def objective(b):
        t = xa @ b
        return float(np.sum(weight * (np.logaddexp(0.0, t) - y * t)) + 0.5 * np.sum(penalty * b * b))

    for _ in range(max_iter):
        p = _sigmoid(xa @ beta)
        grad = xa.T @ (weight * (p - y)) + penalty * beta
        # a weight at its bound stays there while the gradient pushes it across
        held = (sign != 0) & (sign * beta <= 0) & (sign * grad > 0)
        free = ~held
        if np.max(np.abs(grad[free]), initial=0.0) < tol:
            break
        hess = (xa * (weight * p * (1 - p))[:, None]).T @ xa + np.diag(penalty + 1e-12)
        step = np.zeros(d + 1)
        step[free] = np.linalg.solve(hess[np.ix_(free, free)], grad[free])
        before, size = objective(beta), 1.0
        while True:  # backtrack until the bounded step lowers the objective
            cand = beta - size * step
            cand = np.where((sign != 0) & (sign * cand < 0), 0.0, cand)
            if objective(cand) <= before or size < 1e-6:
                break
            size /= 2
        moved = np.max(np.abs(cand - beta))
        beta = cand
        if moved < tol:
            break
    return beta[:d], float(beta[d])


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (ties count a half): the chance a positive outscores a negative."""
    y = np.asarray(y).astype(bool)
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    ranks = np.empty(len(s))
    # average ranks of ties
    start = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
    stop = np.r_[start[1:], len(s)]
    ranks[order] = np.repeat((start + stop + 1) / 2.0, stop - start)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def adjust_to_prior(p: np.ndarray, trained_prior: float = 0.5, iterations: int = 100,
                    pseudo: float = PRIOR_PSEUDO_COUNT, centre: float | None = None) -> tuple:
    """``(posteriors, prior)``: probabilities fitted at ``trained_prior`` moved to the share of
    positives among ``p``'s pairs, estimated by EM (Saerens, Latinne & Decaestecker, 2002).

    The share is a maximum a posteriori estimate with ``2 * pseudo`` pairs added at ``centre``
    (a Beta prior; default: the training share): with a few candidates it stays near ``centre``
    instead of collapsing to 0 or 1; with thousands it is the data's. With none it is ``centre``.

    Examples
    --------
    >>> post, prior = adjust_to_prior(np.array([0.9] * 10 + [0.1] * 90))
    >>> bool(round(prior, 2) < 0.2 and post[0] < 0.9)
    True
    """
    centre = trained_prior if centre is None else float(centre)
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    if len(p) == 0:
        return p.astype(np.float32), centre
    prior = float(np.mean(p))
    for _ in range(iterations):
        a = prior / trained_prior * p
        b = (1 - prior) / (1 - trained_prior) * (1 - p)
        post = a / (a + b)
        new = float(np.clip((post.sum() + 2 * pseudo * centre) / (len(p) + 2 * pseudo), 1e-4, 1 - 1e-4))
        if abs(new - prior) < 1e-6:
            prior = new
            break
        prior = new
    return at_prior(p, prior, trained_prior), prior


def at_lower_share(p: np.ndarray, prior: float, alone: np.ndarray | None = None) -> tuple:
    """``(posteriors, own)``: probabilities ``p`` (fitted at even odds) of pairs read one way
    (a mirrored crop, the brightness, the whole picture turned), at the lower of ``prior`` (the
    share of copies among all candidates) and ``own``, the share estimated among ``p[alone]``
    (the pairs no other way of reading proposes; all of ``p`` when there are none): a way of
    reading that mostly proposes look-alikes makes its pairs less likely copies, never more.

    Examples
    --------
    >>> p = np.r_[np.full(95, 0.2), np.full(5, 0.8)]  # mostly look-alikes
    >>> post, own = at_lower_share(p, prior=0.5)
    >>> bool(own < 0.2 and post[-1] < 0.5)
    True
    """
    p = np.asarray(p)
    _, own = adjust_to_prior(p[alone] if alone is not None and np.any(alone) else p)
    return np.minimum(at_prior(p, prior), at_prior(p, own)), own


def at_prior(p: np.ndarray, prior: float, trained_prior: float = 0.5) -> np.ndarray:
    """Probabilities fitted at ``trained_prior`` moved to the share of positives ``prior``."""
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    a = prior / trained_prior * p
    b = (1 - prior) / (1 - trained_prior) * (1 - p)
    return (a / (a + b)).astype(np.float32)
