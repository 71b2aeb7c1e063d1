"""A closer look at the pairs the thumbnails leave in doubt: keypoints matched on larger pictures.

The evidence of the decision is read on 32 px thumbnails. There a crop of grass, gravel or
a star field looks like any other patch of the same texture, and a crop of another shape
resized, or a picture turned and then cropped, lines up only roughly: such copies end in
``possible``. Here both pictures of each possible pair (decoded again, brought to
:data:`~leakscan.features.PICTURE_SIDE` px on their longer side) are compared by ORB
keypoints (OpenCV), matched with Lowe's ratio test, and one affine transform is fitted to
the matches by RANSAC. Under it a copy lines up detail for detail whatever its crop, scale,
turn or recolouring; two different pictures share a few matches (a brick wall's period, one
sky's gradient), not the detail. Two different pictures under one logo, frame or watermark
share many matches, and one transform explains them: a well-supported transform under which
the detail agrees in few cells (:func:`agreeing_cells`) is an overlay's, not a copy's.

What the matches and the detail mean depends on the data (how textured the pictures are),
so the look is calibrated on the data, as the decision is: synthetic copies of the
calibration's sampled pictures (:func:`~leakscan.calibrate.synthetic_copy`) against the
pairs the search proposed and the thumbnails rejected with most doubt (:class:`KeypointLook`).
The fit gives a likelihood ratio that multiplies the odds of the pair's confidence (the look
is evidence the thumbnails did not have). A look raises a possible pair's confidence, and
only for pictures that share at least half of the smaller one's area under the fitted
transform (tiles that overlap less are not copies). The duplicates the thumbnails are not
sure of are looked at too, and the look may confirm or lower them: a copy shows ORB its
detail, two tiles of one brick wall, sky or retina do not. Where the look finds no
transform (or one sharing less than half), their odds are multiplied by P(no transform | a
copy) / P(no transform | a look-alike) at the pictures' keypoint count (:class:`NoTransform`;
a flat picture gives its copy few matches), calibrated on the same synthetic copies (for a
pair the tilted views read as turned, on turned copies, :func:`~leakscan.calibrate.tilted_copy`,
whatever the keypoints). A transform that is not an overlay's confirms a duplicate; it never
lowers one (but on a layout).

Pictures on one layout (screenshots of one application, forms: :func:`folder_layout`) are
the exception. Their thumbnails show the layout, as sure of two different screens as of a
copy, and so do their keypoints and detail. So the cells the two pictures show of the layout
are not judged; what agrees off it is read too, and the look is fitted against the sample's
nearest pictures as well. It then decides every pair with a picture on a layout
(:func:`on_layouts`) alone, duplicates included, at the share of copies among them
(:attr:`KeypointLook.on_layout`); the other pairs are decided as in a folder with no layout.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .calibrate import ImageSource, adjust_to_prior, logistic_fit, roc_auc, synthetic_copy, tilted_copy
from .features import PICTURE_SIDE, Features, digest_greater, digest_order
from .index import HammingIndex
from .padding import OVERLAY_MIN_IMAGES, OVERLAY_SHARE
from .orb import KEYPOINT_RECORD, LOOK_MIN_SIDE, STRONGEST, detector, grey_at_side, strongest_keypoints
from .parallel import map_threads
from .pairs import OVERLAP_MIN_SHARE, Candidates, Kind, PairTable, pair_keys
from .views import INVERSE_VARIANT, MatchView, apply_dihedral

log = logging.getLogger(__name__)

__all__ = ["LOOK_ALIKES_AS_COPIES", "LOOK_MIN_SIDE", "KeypointLook", "Keypoints", "closer_look", "fit_look",
           "keypoint_pairs", "look_at", "match_pictures", "picture_keypoints", "SEARCH_MAX_IMAGES"]

#: Pairs looked at most: the keypoint search's, then the possible, then the unsure duplicates
#: (each costs two decodes at most).
LOOK_BUDGET = 2_000
#: Pairs looked at together: their pictures are held at once.
LOOK_BLOCK = 128
#: Duplicates this confident or more are not looked at again (but on a layout).
LOOK_CEILING = 0.99
#: Keypoint counts at which ``summary.json`` reports what a look that finds nothing says.
REPORTED_KEYPOINTS = (10, 100, 500)
#: Pictures of the calibration's sample the look is calibrated on (a synthetic copy each, and
#: a turned one of it when a pair reads as turned).
LOOK_SAMPLE = 120
#: A picture of no layout's size is on a layout when most of this many of its nearest others
#: in that sample are of a layout's size (:func:`on_layouts`).
LAYOUT_NEIGHBOURS = 5
#: Look-alikes it is calibrated on: this many rejected pairs for each possible or unsure pair,
#: at least 2 * MIN_EXAMPLES, at most LOOK_NEGATIVES; when too few (or on a layout), each
#: sampled picture against this many nearest others too.
NEGATIVES_PER = 3
LOOK_NEGATIVES = 300
#: A look-alike that reads at or above this quantile of the copies' readings (every one:
#: matches, detail and, on a layout, cells that agree) may be a copy itself: left out of the fit.
COPY_QUANTILE = 0.25
#: Fewer copies or look-alikes than this: too few to calibrate the look on; it is skipped.
MIN_EXAMPLES = 20
#: Lowe's ratio: a match counts when its best descriptor distance is below this share of the second best.
RATIO = 0.8
#: RANSAC's tolerance, px, on pictures of PICTURE_SIDE px on their longer side.
REPROJECTION_PX = 4.0
#: The detail: a picture blurred by the first sigma (px) less a blur of that by the second.
DETAIL_SIGMA = (1.0, 4.0)
#: Fewer pixels in common than this: no detail to compare.
MIN_DETAIL_PIXELS = 400
#: A transform that stretches one axis more than this against the other, or the area more
#: than its square, is no copy's.
MAX_STRETCH = 4.0
#: Matches that fix an affine transform: one that explains no more is chance, not a transform.
AFFINE_POINTS = 3
#: The detail is compared cell by cell (px a side, on pictures of PICTURE_SIDE px): a cell
#: agrees when its details correlate at AGREE_NCC or more; cells whose detail is under
#: FLAT_DETAIL grey levels (RMS) in both pictures are not judged (JPEG noise on a smooth
#: retina or sky; a textured cell against a flat one disagrees).
AGREE_CELL = 16
AGREE_NCC = 0.5
FLAT_DETAIL = 2.0
#: A transform under which fewer than this share of the judged cells agree lines up something
#: the two pictures share (a logo, a frame, a watermark, a template), not the pictures: an
#: overlay's (:meth:`KeypointLook.overlay`), which lowers a pair instead of confirming it ...
AGREE_MIN = 1 / 3
#: ... when the transform explains as many matches as this quantile of the synthetic copies'
#: transforms do, or more (a transform of a few matches on a flat picture is often chance)
OVERLAY_QUANTILE = 0.1
#: A folder's layout covers at least this share of the cells (:func:`folder_layout`). Two
#: pictures under a template agree in at least its share of their cells with detail: under
#: AGREE_MIN, an overlay's (the cell test tells it); from it on, only the cells off the
#: template can tell them, so it is a layout (at half, screens whose window was 43-48% of each
#: were neither, and their thumbnails made pairs of different screens duplicates).
LAYOUT_MIN_SHARE = AGREE_MIN



@dataclass(frozen=True)
class Keypoints:
    """One picture's keypoints (``points`` (k, 2), ``descriptors`` (k, 32) uint8 or None) and its
    detail (the picture less a blur of it: what lines up only where the pixels are the same)."""

    points: np.ndarray
    descriptors: np.ndarray | None
    detail: np.ndarray


def picture_keypoints(picture: Image.Image) -> Keypoints:
    """The :class:`Keypoints` of a picture brought to :data:`~leakscan.features.PICTURE_SIDE` px
    on its longer side (every picture at one scale: the tolerances mean the same)."""
    a = grey_at_side(picture, PICTURE_SIDE)
    kp, des = detector().detectAndCompute(a, None)
    return Keypoints(np.float32([k.pt for k in kp]).reshape(-1, 2), des, _detail(a))


def _detail(grey: np.ndarray) -> np.ndarray:
    """The picture less a blur of it (:data:`DETAIL_SIGMA`), float32."""
    import cv2  # noqa: PLC0415

    smooth = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), DETAIL_SIGMA[0])
    return smooth - cv2.GaussianBlur(smooth, (0, 0), DETAIL_SIGMA[1])


def _cells(a: np.ndarray) -> np.ndarray:
    """The :data:`AGREE_CELL` px cells of ``a`` (whole ones), one row each."""
    c = AGREE_CELL
    gy, gx = a.shape[0] // c, a.shape[1] // c
    return a[:gy * c, :gx * c].reshape(gy, c, gx, c).transpose(0, 2, 1, 3).reshape(gy * gx, c * c)


def _detailed(a: np.ndarray) -> np.ndarray:
    """Per cell of the detail ``a``: has it detail (:data:`FLAT_DETAIL` grey levels RMS or more)?"""
    c = _cells(a)
    return ((c - c.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) >= FLAT_DETAIL ** 2 * AGREE_CELL ** 2


def _cell_ncc(x: np.ndarray, y: np.ndarray) -> tuple:
    """``(ncc, energy_x, energy_y)`` per cell of the lined-up details ``x`` and ``y``."""
    a, b = _cells(x), _cells(y)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    aa, bb = (a * a).sum(axis=1), (b * b).sum(axis=1)
    return (a * b).sum(axis=1) / np.sqrt(aa * bb + 1e-9), aa, bb


@dataclass(frozen=True)
class Layout:
    """What most pictures of a folder of one layout show (forms, screenshots of one
    application): the median detail of the sample's pictures of one size, and the
    cells where at least :data:`~leakscan.padding.OVERLAY_SHARE` of them show it
    (:func:`folder_layout`). Two pictures on it agree there whatever they are; they are
    judged on the rest (:func:`agreeing_cells`)."""

    detail: np.ndarray
    cells: np.ndarray

    @property
    def share(self) -> float:
        """The share of the cells the layout covers."""
        return float(self.cells.mean())

    def shown(self, detail: np.ndarray) -> np.ndarray:
        """``(cells,)`` bool: the layout's cells that ``detail`` (lined up with it) shows."""
        if detail.shape != self.detail.shape:  # not lined up with it: none
            return np.zeros((detail.shape[0] // AGREE_CELL) * (detail.shape[1] // AGREE_CELL), bool)
        return self.cells & (_cell_ncc(detail, self.detail)[0] >= AGREE_NCC)


def folder_layout(details: list) -> Layout | None:
    """The :class:`Layout` the ``details`` (of the sample's pictures, :func:`_detail`) share,
    or None: fewer than :data:`~leakscan.padding.OVERLAY_MIN_IMAGES` of one size, most of them
    with no detail of their own off the median or off the picture most like them (copies of one
    picture or of a few), or a layout covering less than :data:`LAYOUT_MIN_SHARE` of the cells
    (a logo or a caption: an overlay, which the cell test of a look tells already)."""
    shapes = [d.shape for d in details]
    if not shapes:
        return None
    common = max(set(shapes), key=lambda shape: (shapes.count(shape), shape))
    same = np.stack([d for d in details if d.shape == common])
    if len(same) < OVERLAY_MIN_IMAGES:
        return None
    median = np.median(same, axis=0).astype(np.float32)
    agrees = np.array([_cell_ncc(d, median)[0] >= AGREE_NCC for d in same])
    # the cells of detail each picture has of its own: none in most of them, and they are copies of
    # one picture (the median is that picture), or of a few (each agrees with a copy of its own,
    # and the median of two or three pictures agrees with each in part), not pictures on a layout
    detailed = np.array([_detailed(d) for d in same])
    if np.median((detailed & ~agrees).sum(axis=1)) == 0:
        return None
    layout = Layout(median, _detailed(median) & (agrees.mean(axis=0) >= OVERLAY_SHARE))
    if layout.share < LAYOUT_MIN_SHARE or np.median(_own_off_nearest(same, detailed)) == 0:
        return None
    return layout


def _own_off_nearest(same: np.ndarray, detailed: np.ndarray) -> np.ndarray:
    """Per picture of ``same`` (details of one size; ``detailed``: their cells with detail): its
    cells with detail that disagree with the other picture agreeing with it in the most cells."""
    cells = np.stack([_cells(d) for d in same]).transpose(1, 0, 2)  # (cell, picture, pixel)
    cells = cells - cells.mean(axis=2, keepdims=True)
    cells /= np.sqrt((cells * cells).sum(axis=2, keepdims=True) + 1e-9)
    agree = np.matmul(cells, cells.transpose(0, 2, 1)) >= AGREE_NCC  # (cell, picture, picture)
    counts = agree.sum(axis=0)
    np.fill_diagonal(counts, -1)
    nearest = counts.argmax(axis=1)
    return (detailed & ~agree[:, np.arange(len(same)), nearest].T).sum(axis=1)


def folder_layouts(details: list) -> tuple[Layout, ...]:
    """The :class:`Layout` of each size the ``details`` have (:func:`folder_layout` of those of
    that size), the commonest size first: screens of two applications, forms beside photos."""
    shapes = [d.shape for d in details]
    sizes = sorted(set(shapes), key=lambda shape: (shapes.count(shape), shape), reverse=True)
    found = (folder_layout([d for d in details if d.shape == shape])
             for shape in sizes if shapes.count(shape) >= OVERLAY_MIN_IMAGES)
    return tuple(layout for layout in found if layout is not None)


def _layout_of(detail: np.ndarray, layouts: tuple) -> Layout | None:
    """The layout of ``layouts`` a picture of that ``detail`` is on: of its size, the one it
    shows most cells of; None when none is of its size."""
    return max((layout for layout in layouts if layout.detail.shape == detail.shape),
               key=lambda layout: int(layout.shown(detail).sum()), default=None)


def _detail_shape(width, height) -> tuple:
    """``(rows, columns)`` of the detail of pictures of ``width`` x ``height`` px (arrays):
    :func:`~leakscan.orb.grey_at_side` at :data:`~leakscan.features.PICTURE_SIDE`."""
    width, height = np.asarray(width, np.float64), np.asarray(height, np.float64)
    scale = PICTURE_SIDE / np.maximum(np.maximum(width, height), 1)
    kept = np.abs(scale - 1) <= 0.01
    return (np.where(kept, height, np.maximum(1, np.round(height * scale))),
            np.where(kept, width, np.maximum(1, np.round(width * scale))))


def on_layouts(features: Features, sample: np.ndarray, layouts: tuple, rows: np.ndarray) -> np.ndarray:
    """Per picture of ``features``, among ``rows``: is it on one of the ``layouts``? Of a
    layout's size (its detail within a pixel of theirs: a picture decoded reduced may round the
    other way), or of another size with most of its :data:`LAYOUT_NEIGHBOURS` nearest other
    pictures of the ``sample`` (by embedding) of one: a copy resized, turned on a grown canvas
    or cropped is on the layout of its source (two such copies are often each other's nearest);
    a copy of a microscopy field beside the screens is not."""
    rows_at, columns_at = _detail_shape(features.sizes[:, 0], features.sizes[:, 1])
    at_size = np.zeros(len(features.sizes), bool)
    for layout in layouts:
        at_size |= (np.abs(rows_at - layout.detail.shape[0]) <= 1) & (np.abs(columns_at - layout.detail.shape[1]) <= 1)
    on = at_size.copy()
    other = np.asarray(rows)[~at_size[rows]]
    emb = np.asarray(features.embedding[sample], np.float32)
    k = min(LAYOUT_NEIGHBOURS, len(sample) - 1)
    for start in range(0, len(other) if k > 0 else 0, 4096):
        chunk = other[start:start + 4096]
        sim = np.asarray(features.embedding[chunk], np.float32) @ emb.T
        sim[chunk[:, None] == sample[None, :]] = -np.inf  # its nearest other pictures
        nearest = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        on[chunk] = 2 * at_size[sample[nearest]].sum(axis=1) > k
    return on


def _detail_or_none(picture: Image.Image) -> np.ndarray | None:
    """The detail (:func:`_detail`) of a picture at :data:`~leakscan.features.PICTURE_SIDE` px,
    or None (logged, naming its file) when it cannot be had: that picture is left out of the layout."""
    try:
        return _detail(grey_at_side(picture, PICTURE_SIDE))
    except Exception as exc:
        log.warning("%s: left out of the layout (%s: %s)", picture.info.get("path", "a sampled picture"),
                    type(exc).__name__, exc)
        return None


def _keypoints_or_none(picture: Image.Image, what: str) -> Keypoints | None:
    """:func:`picture_keypoints`, or None (logged) when OpenCV fails on the picture: one
    picture never ends the run; its pairs are not looked at (:func:`look_at` says so), and the
    look does not judge them (:func:`_look_closer`)."""
    try:
        return picture_keypoints(picture)
    except Exception as exc:
        log.warning("%s: no closer look (%s: %s)", what, type(exc).__name__, exc)
        return None


def _match_or_none(ka: Keypoints, kb: Keypoints, what: str = "a pair of pictures",
                   layouts: tuple = ()) -> tuple | None:
    """A look ``(inliers, share, detail, keypoints, agree)``: :func:`match_pictures` each way round
    (the ratio test keeps other matches each way), the one with more inliers, with the fewer
    keypoints of the two; with ``layouts``, only onto a picture of a layout's size where either
    is, off that layout (:func:`_layout_of`). None (logged naming ``what``) when OpenCV fails on
    the pair: no look was had, which is not a look that found no transform."""
    keypoints = min(len(ka.points), len(kb.points))
    ways = [(ka, kb, _layout_of(kb.detail, layouts)), (kb, ka, _layout_of(ka.detail, layouts))]
    # judged in a layout's frame where one picture has it (a turned copy's is larger)
    ways = [way for way in ways if way[2] is not None] or ways
    try:
        inliers, share, detail, agree = max(match_pictures(x, y, layout) for x, y, layout in ways)
        return inliers, share, detail, keypoints, agree
    except Exception as exc:
        log.warning("%s: no closer look (%s: %s)", what, type(exc).__name__, exc)
        return None


def match_pictures(ka: Keypoints, kb: Keypoints, layout: Layout | None = None) -> tuple[int, float, float, float]:
    """``(inliers, share, detail, agree)``: the matches of ``ka`` -> ``kb`` one affine transform
    explains; the share of the smaller picture's area the two have in common under it; the
    correlation of their details there; and the share of its cells whose details agree
    (:func:`agreeing_cells`, off the ``layout``'s cells both show; 1 when none has detail).
    ``(0, 0, 0, 1)`` without a transform.

    >>> rng = np.random.default_rng(0)
    >>> img = Image.fromarray(rng.integers(0, 255, (160, 200), np.uint8)).resize((400, 320))
    >>> crop = img.crop((40, 30, 340, 270)).resize((250, 200))
    >>> inliers, share, detail, agree = match_pictures(picture_keypoints(img), picture_keypoints(crop))
    >>> inliers > 50, round(share, 1), detail > 0.8, agree > 0.9
    (True, 1.0, True, True)
    """
    import cv2  # noqa: PLC0415

    da, db = ka.descriptors, kb.descriptors
    if da is None or db is None or len(da) < 2 or len(db) < 2:
        return 0, 0.0, 0.0, 1.0
    knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(da, db, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < 6:
        return 0, 0.0, 0.0, 1.0
    src = ka.points[[g.queryIdx for g in good]]
    dst = kb.points[[g.trainIdx for g in good]]
    m, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX,
                                   maxIters=2000, confidence=0.99)
    if m is None or mask is None or mask.sum() <= AFFINE_POINTS:
        return 0, 0.0, 0.0, 1.0
    stretch = np.linalg.svd(m[:, :2], compute_uv=False)
    if stretch.min() <= 0 or stretch.max() / stretch.min() > MAX_STRETCH or not (
            1 / MAX_STRETCH ** 2 <= stretch.prod() <= MAX_STRETCH ** 2):
        return 0, 0.0, 0.0, 1.0
    (ha, wa), (hb, wb) = ka.detail.shape, kb.detail.shape
    corners = np.float32([[0, 0], [wa, 0], [wa, ha], [0, ha]])
    quad = corners @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32)
    frame = np.float32([[0, 0], [wb, 0], [wb, hb], [0, hb]])
    common, _ = cv2.intersectConvexConvex(quad, frame)
    smaller = min(float(stretch.prod()) * wa * ha, float(wb * hb))
    share = float(min(1.0, common / smaller)) if smaller > 0 else 0.0
    # the details lined up: where ka's picture covers kb's
    warped = cv2.warpAffine(ka.detail, m, (wb, hb), flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.ones((ha, wa), np.float32), m, (wb, hb), flags=cv2.INTER_LINEAR) > 0.999
    both = layout.shown(warped) & layout.shown(kb.detail) if layout is not None else None
    agree = agreeing_cells(warped, kb.detail, inside, both)
    x, y = warped[inside], kb.detail[inside]
    detail = 0.0
    if len(x) >= MIN_DETAIL_PIXELS:
        x, y = x - x.mean(), y - y.mean()
        detail = float((x @ y) / np.sqrt(float(x @ x) * float(y @ y) + 1e-9))
    return int(mask.sum()), share, detail, 1.0 if agree is None else agree


def agreeing_cells(x: np.ndarray, y: np.ndarray, inside: np.ndarray, layout: np.ndarray | None = None) -> float | None:
    """The share of the :data:`AGREE_CELL` px cells wholly ``inside`` the common part (and not
    among the ``layout`` cells, bool per cell: the folder's layout both show) whose details
    ``x`` and ``y`` (lined up) correlate at :data:`AGREE_NCC` or more, of those with detail in
    either picture; None when no cell has any. A copy agrees almost everywhere (a caption or a
    watermark covers a few cells); two pictures under one shared overlay agree only where it
    is, however many keypoints it gives them."""
    whole = _cells(inside).all(axis=1)
    if layout is not None:
        whole &= ~layout
    ncc, aa, bb = _cell_ncc(x, y)
    judged = whole & (np.maximum(aa, bb) >= FLAT_DETAIL ** 2 * AGREE_CELL ** 2)
    if not judged.any():
        return None
    return float((ncc[judged] >= AGREE_NCC).mean())


def _had(looks) -> list:
    """The looks that were had (not None: OpenCV did not fail on the pair)."""
    return [look for look in looks if look is not None]


def _looks(looks) -> np.ndarray:
    """Looks as a ``(n, 5)`` float64 array: inliers, share, detail, keypoints (unknown: 0), agree
    (unknown: 1)."""
    looks = np.asarray(looks, np.float64)
    looks = looks.reshape(-1, looks.shape[-1] if looks.ndim > 1 else 5)
    if looks.shape[1] < 4:
        looks = np.c_[looks, np.zeros((len(looks), 4 - looks.shape[1]))]
    return np.c_[looks, np.ones(len(looks))] if looks.shape[1] < 5 else looks


def usable(looks) -> np.ndarray:
    """Per look: a transform under which the two share at least half of the smaller picture
    (what a copy gives; tiles that overlap less are no copies)."""
    looks = _looks(looks)
    return (looks[:, 0] > 0) & (looks[:, 1] >= OVERLAP_MIN_SHARE)


@dataclass(frozen=True)
class NoTransform:
    """What a look that finds no usable transform says of a pair: log(P(none | copy) / P(none |
    look-alike)), at most 0 (finding nothing is never evidence of a copy), by how many keypoints
    the pair's pictures have (a flat picture gives its copy few matches, a brick wall gives
    every other tile many). Each of P(a usable transform | copy) and P(... | look-alike) is a
    logistic regression on log(1 + keypoints), at the sample's share (``(intercept, slope)``; a
    constant share without ``by_keypoints`` or where all or none give one); below the fewest
    keypoints a copy had (``least``) nothing is known: no evidence."""

    copies: tuple = (0.0, 0.0)
    alike: tuple = (0.0, 0.0)
    least: float = 0.0

    @classmethod
    def fitted(cls, copies, alike, by_keypoints: bool = True) -> "NoTransform":
        def fit(looks):
            found = usable(looks)
            n, k = len(found), int(found.sum())
            if k in (0, n) or not by_keypoints:  # the smoothed share, whatever the keypoints
                return (float(np.log((k + 0.5) / (n - k + 0.5))), 0.0)
            coef, intercept = logistic_fit(np.log1p(looks[:, 3:4]), found.astype(np.float64))
            return (float(intercept + np.log(k / (n - k))), float(coef[0]))  # balanced fit -> the sample's share
        c, a = _looks(copies), _looks(alike)
        return cls(fit(c), fit(a), float(c[:, 3].min()) if by_keypoints else 0.0) if len(c) and len(a) else cls()

    def at(self, looks) -> np.ndarray:
        """The log ratio at each look's keypoints."""
        keypoints = _looks(looks)[:, 3]
        x = np.log1p(keypoints)
        none_copy = 1.0 / (1.0 + np.exp(self.copies[0] + self.copies[1] * x))  # 1 - P(usable | copy)
        none_alike = 1.0 / (1.0 + np.exp(self.alike[0] + self.alike[1] * x))
        ratio = np.minimum(0.0, np.log(np.maximum(none_copy, 1e-9) / np.maximum(none_alike, 1e-9)))
        return np.where(keypoints >= self.least, ratio, 0.0)


def _readings(looks, on_layout: bool = False) -> np.ndarray:
    """The look's evidence columns per pair: the log count of consistent matches, and the detail
    (``on_layout``: and the share of cells that agree off the folder's layout)."""
    looks = _looks(looks)
    return np.c_[np.log1p(looks[:, 0]), looks[:, 2]] if not on_layout else \
        np.c_[np.log1p(looks[:, 0]), looks[:, 2], looks[:, 4]]


@dataclass(frozen=True)
class KeypointLook:
    """The fitted look: a look's readings (:func:`_readings`) -> log likelihood ratio of a copy, and how it was fitted.

    Many copies give no transform at all (too few keypoints, or too much edited), as most
    look-alikes do; and look-alikes as alike as the pairs in doubt give one more often than
    those the look is calibrated on. So only pairs with a transform are read, and only on what
    it shows: a logistic regression of copies against look-alikes among pairs with one
    (standardised columns, balanced classes); a transform alone is no evidence. Where
    look-alikes seldom give a transform (too few of them to learn from), the copies with one
    are fitted against every look-alike as it reads (no transform: no matches, no detail)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    stats: dict
    #: what a look that finds nothing (or a transform sharing less than half) says of a pair
    no_transform: NoTransform = NoTransform()
    #: the same for a pair the tilted views read as turned, of turned copies
    tilted_no_transform: NoTransform = NoTransform()
    #: a transform explaining this many matches or more is as well supported as nine copies' in
    #: ten (:data:`OVERLAY_QUANTILE` of their inliers): under it, detail that agrees in fewer
    #: than AGREE_MIN of the cells is an overlay's (:meth:`overlay`)
    supported: float = np.inf
    #: fitted on pictures on a layout (:class:`Layout`): the pictures' matches and detail are
    #: mostly the layout's, so the cells that agree off it are read too, and the look lowers a
    #: duplicate as well as confirming it (a copy agrees off the layout, a look-alike does not)
    on_layout: bool = False

    def overlay(self, looks) -> np.ndarray:
        """Per look: a usable transform as well supported as a copy's under which the detail
        agrees in fewer than :data:`AGREE_MIN` of the cells: a logo, a frame, a watermark or a
        template the two pictures share lines up, not the pictures. (A transform of a few
        matches on a flat picture is often chance, and its detail says nothing.)"""
        looks = _looks(looks)
        return usable(looks) & (looks[:, 4] < AGREE_MIN) & (looks[:, 0] >= self.supported)

    def lined_up(self, looks) -> np.ndarray:
        """Per look: a usable transform that is not an :meth:`overlay`'s: it can speak for a copy."""
        return usable(looks) & ~self.overlay(looks)

    def odds_change(self, looks, tilted) -> np.ndarray:
        """What the look says of each duplicate, to add to its log odds: :meth:`said`, a transform
        that can speak for a copy lowering it only :attr:`on_layout` (the look-alikes it is fitted
        on may share part of a picture), with ``nothing`` the no-transform ratio at the pictures'
        keypoints (none: 0) or, for a pair read as turned (``tilted``), :attr:`tilted_no_transform`
        whatever the keypoints."""
        looks = _looks(looks)
        # no keypoints: no look, but for a turned reading (a turned copy keeps its
        # keypoints; two flat tiles the tilted views happened to match have none to show)
        tilted = np.asarray(tilted, bool)
        nothing = np.where(tilted, self.tilted_no_transform.at(looks),
                           np.where(looks[:, 3] > 0, self.no_transform.at(looks), 0.0))
        return self.said(looks, nothing, lowering=self.on_layout)

    def said(self, looks, nothing: np.ndarray, lowering: bool = True) -> np.ndarray:
        """Per look, to add to a pair's log odds: under a transform that can speak for a copy
        (:meth:`lined_up`), :meth:`log_ratio` (only where it speaks for one unless ``lowering``);
        under an :meth:`overlay`'s, the lower of that ratio and ``nothing``, the no-transform
        ratio; else ``nothing``."""
        ratio = self.log_ratio(looks)
        return np.where(self.lined_up(looks), ratio if lowering else np.maximum(ratio, 0.0),
                        np.where(self.overlay(looks), np.minimum(ratio, nothing), nothing))

    def log_ratio(self, looks) -> np.ndarray:
        """log(P(look | copy, a transform) / P(look | look-alike, a transform)) per pair; 0 (no
        evidence) without a transform."""
        looks = _looks(looks)
        ratio = (_readings(looks, self.on_layout) - self.mean) / self.scale @ self.coef + self.intercept
        return np.where(looks[:, 0] > 0, ratio, 0.0)


#: Why a look was not fitted (:func:`fit_look`), as ``summary.json`` says it
#: (``calibration.keypoints.not_used``).
TOO_FEW_PICTURES = "too few pictures (or look-alikes) to calibrate it on"
TOO_FEW_TRANSFORMS = "too few of its synthetic copies gave a transform"
LOOK_ALIKES_AS_COPIES = "most of its look-alikes matched as its copies do"


def fit_look(pictures: list, embeddings: np.ndarray, rng_seed: int, rejected, known=frozenset(),
             jobs: int = 1, tilted: bool = False, layouts: tuple = ()) -> KeypointLook | str:
    """The look calibrated on ``pictures`` (PIL, the calibration's sample, in content order),
    each against a synthetic copy of itself (the copies), and on the looks ``rejected`` of
    pairs the search proposed and the thumbnails' decision rejected (the look-alikes: as alike
    as the pairs the look decides). Too few of those, or of those with a transform: each
    picture against its :data:`NEGATIVES_PER` nearest others of the sample by ``embeddings``
    too, leaving out the pairs of positions in ``known`` (pairs the search proposed: they may
    be copies). With ``tilted``, each picture against a turned copy of its copy too
    (:func:`~leakscan.calibrate.tilted_copy`), for :attr:`KeypointLook.tilted_no_transform`.
    With the folder's ``layouts`` (:func:`folder_layouts`), fitted :attr:`KeypointLook.on_layout`
    (the looks read the cells off them too), against the nearest others always, the proposed
    included. Where there is too little to learn from, the reason instead
    (:data:`TOO_FEW_PICTURES`, :data:`TOO_FEW_TRANSFORMS`, :data:`LOOK_ALIKES_AS_COPIES`)."""
    rng = np.random.default_rng(rng_seed)
    made = [synthetic_copy(p.convert("RGB"), rng, variants=(0,))[0] for p in pictures]  # ORB sees no mirrors
    # turned copies of copies: a turn is seldom a user's only edit
    made += [tilted_copy(m, rng) for m in made] if tilted else []
    points = map_threads(lambda p: _keypoints_or_none(p, "a sampled picture"), pictures + made, jobs)
    n = len(pictures)
    points, copied, turned = points[:n], points[n:2 * n], points[2 * n:]
    read = [k for k in range(n) if points[k] is not None and copied[k] is not None]
    copies = _had(map_threads(lambda k: _match_or_none(copied[k], points[k], layouts=layouts), read, jobs))
    turned_looks = _had(map_threads(lambda k: _match_or_none(turned[k], points[k], layouts=layouts),
                                    [k for k in range(len(turned)) if points[k] is not None and turned[k] is not None],
                                    jobs))
    alike = [tuple(r) for r in _looks(rejected).tolist()]
    emb = np.asarray(embeddings, np.float32)
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)
    # look-alikes with a transform to learn from, and enough of them in all (in a folder of
    # pictures under one logo the search proposes few pairs, and each gives a transform)
    enough = sum(look[0] > 0 for look in alike) >= MIN_EXAMPLES // 2 and len(alike) >= MIN_EXAMPLES
    # on one layout, each picture's nearest others always, proposed or not: the thumbnails cannot
    # tell them, the cells off the layout can (a copy among them reads as copies do: left out below)
    on_layout = bool(layouts)
    nearest = []
    for a in range(0 if enough and not on_layout else len(pictures)):
        for b in np.argsort(-sim[a], kind="stable")[:NEGATIVES_PER].tolist():
            if (on_layout or (min(a, b), max(a, b)) not in known) and np.isfinite(sim[a, b]) \
                    and None not in (points[a], points[b]):
                nearest.append((a, b))
                sim[b, a] = -np.inf  # each pair once
    alike += _had(map_threads(lambda ab: _match_or_none(points[ab[0]], points[ab[1]], layouts=layouts), nearest, jobs))
    if len(copies) < MIN_EXAMPLES or len(alike) < MIN_EXAMPLES:
        return TOO_FEW_PICTURES
    looks = _looks(copies + alike)
    y = np.r_[np.ones(len(copies)), np.zeros(len(alike))]

    def fit(rows):
        found = rows & (looks[:, 0] > 0)
        if int((found & (y == 1)).sum()) < MIN_EXAMPLES // 2:
            return None
        # given a transform, when enough look-alikes give one; else (look-alikes seldom do,
        # and then a transform is itself evidence) every pair as it reads
        given = int((found & (y == 0)).sum()) >= MIN_EXAMPLES // 2
        fitted_on = found if given else rows & ((y == 0) | found)
        x = _readings(looks[fitted_on], on_layout)
        mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
        coef, intercept = logistic_fit((x - mean) / scale, y[fitted_on], signs=[1] * x.shape[1])
        return KeypointLook(mean=mean, scale=scale, coef=coef, intercept=float(intercept), on_layout=on_layout,
                            stats={"fitted_on": "pairs with a transform" if given else "every look-alike"})

    # a look-alike that matches as most copies do, in count and in detail, may be one (a
    # dataset full of copies, whose search proposes copies the thumbnails then reject): left out
    readings = _readings(looks, on_layout)
    copied = readings[(y == 1) & (looks[:, 0] > 0)]
    if not len(copied):
        return TOO_FEW_TRANSFORMS
    keep = (y == 1) | np.any(readings < np.quantile(copied, COPY_QUANTILE, axis=0), axis=1)
    if int((keep & (y == 0)).sum()) < MIN_EXAMPLES:  # the look-alikes read as copies: nothing tells them apart
        return LOOK_ALIKES_AS_COPIES
    fitted = fit(keep)
    if fitted is None:
        return TOO_FEW_TRANSFORMS
    matches, found = looks[:, 0], looks[:, 0] > 0
    stats = {"copies": len(copies), "look_alikes": int((keep & (y == 0)).sum()),
             "left_out_as_possible_copies": int((~keep).sum()),
             "auc": round(roc_auc(y[keep], fitted.log_ratio(looks[keep])), 4),
             "copies_with_a_transform": int((found & (y == 1)).sum()),
             "look_alikes_with_a_transform": int((found & keep & (y == 0)).sum()),
             "copies_median_matches": float(np.median(matches[y == 1])),
             "overlay_min_matches": float(np.quantile(matches[found & (y == 1)], OVERLAY_QUANTILE)),
             "look_alikes_max_matches": int(matches[keep & (y == 0)].max())}
    # a copy the look finds no usable transform for, against a look-alike so
    alike_looks = looks[keep & (y == 0)]
    fitted = dataclasses.replace(fitted, no_transform=NoTransform.fitted(looks[y == 1], alike_looks),
                                 supported=stats["overlay_min_matches"])
    if turned_looks:  # the same of turned copies
        fitted = dataclasses.replace(fitted, tilted_no_transform=NoTransform.fitted(turned_looks, alike_looks,
                                                                                  by_keypoints=False))
        stats.update(turned_copies=len(turned_looks),
                     turned_copies_with_a_transform=int(usable(turned_looks).sum()))
    return dataclasses.replace(fitted, stats={**fitted.stats, **stats})


def look_at(pairs: PairTable, images: ImageSource, digests: np.ndarray, jobs: int = 1,
            layouts: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
    """``(looks, unread)``: per pair of ``pairs``, ``(inliers, share, detail, keypoints, agree)``
    (:func:`match_pictures` off the ``layouts``, with the fewer keypoints of the two pictures),
    and whether no look was had: a picture of it could not be read, or OpenCV failed on a
    picture or on the pair (its look then reads as no transform, no keypoints). The pictures are
    read by ``images(rows)`` a block of pairs at a time (memory: a few hundred pictures), the
    keypoints and matches on ``jobs`` threads; each pair seen from the image of the lower pixel
    digest, so the look does not depend on the images' order, and under the dihedral variant
    it matched through (or its inverse, on the image of the higher digest: whichever way round
    the rows came, the same pictures are compared the same way)."""
    looks = np.zeros((len(pairs), 5), np.float32)
    looks[:, 4] = 1.0
    unread = np.zeros(len(pairs), bool)
    order = np.lexsort((pairs.j, pairs.i))  # pairs of one image together: fewer pictures read twice
    for start in range(0, len(pairs), LOOK_BLOCK):
        at = order[start:start + LOOK_BLOCK]
        block = pairs.take(at)
        rows = np.unique(np.r_[block.i, block.j])
        pictures = dict(zip(rows.tolist(), images(rows)))
        tasks = []  # (position, first image's key, the other's keys)
        for k, (i, j, variant) in enumerate(zip(block.i.tolist(), block.j.tolist(), block.variant.tolist())):
            v = max(int(MatchView.dihedral(variant)), 0)  # 0 for the views that carry none
            if digest_greater(digests[i:i + 1], digests[j:j + 1])[0]:
                i, j = j, i
            tasks.append((at[k], (i, 0), [(j, w) for w in sorted({v, int(INVERSE_VARIANT[v])})]))
        keys = sorted({key for _, a, bs in tasks for key in [a, *bs] if pictures.get(key[0]) is not None})

        def named(row):
            return pictures[row].info.get("path", f"the image at row {row}")

        def keypoints(key):
            row, v = key
            gray = np.ascontiguousarray(apply_dihedral(np.asarray(pictures[row].convert("L")), v))
            return _keypoints_or_none(Image.fromarray(gray), named(row))

        points = {key: kp for key, kp in zip(keys, map_threads(keypoints, keys, jobs)) if kp is not None}

        def look(task):
            """The best look of the pair over the other picture's variants; None when none was had."""
            _, a, bs = task
            had = _had(_match_or_none(points[a], points[b], f"{named(a[0])} ~ {named(b[0])}", layouts)
                       for b in bs if a in points and b in points)
            return max(had) if had else None

        for (position, _, _), best in zip(tasks, map_threads(look, tasks, jobs)):
            if best is None:
                unread[position] = True
            else:
                looks[position] = best
    return looks, unread


def _with_log_odds(p: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Probabilities ``p`` with ``change`` added to their log odds (float32)."""
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return (1.0 / (1.0 + np.exp(-(np.log(q / (1 - q)) + change)))).astype(np.float32)


def _at_keypoints(no_transform: NoTransform) -> dict:
    """``{keypoints: log ratio}`` at :data:`REPORTED_KEYPOINTS`, for ``summary.json``."""
    at = no_transform.at(np.c_[np.zeros((len(REPORTED_KEYPOINTS), 3)), REPORTED_KEYPOINTS])
    return {str(k): round(float(r), 4) for k, r in zip(REPORTED_KEYPOINTS, at)}


def closer_look(pairs: PairTable, found: Candidates, features: Features, images: ImageSource, *, threshold: float,
                floor: float, jobs: int = 1) -> tuple[np.ndarray, dict]:
    """``(confidence, stats)``: the confidences of ``pairs`` (decided) between pictures of
    :data:`LOOK_MIN_SIDE` px or more with the possible ones (from ``floor`` up to ``threshold``)
    raised by what their keypoints say, and the duplicates under :data:`LOOK_CEILING` confirmed
    or lowered (:meth:`KeypointLook.odds_change`; overlapping tiles only confirmed, pairs read by
    their brightness only lowered by an overlay), and the keypoint search's pairs decided. On
    layouts (:func:`folder_layouts` of the sample) every duplicate with a picture on one
    (:func:`on_layouts`) is looked at, up to the budget, and the look decides those pairs alone
    (past the budget, or with no look fitted, their duplicates are possible at most: the
    thumbnails cannot tell them); the other pairs are decided as with no layout, by
    a look calibrated on the sample's pictures off the layouts (``stats["off_layout"]``), in what
    is left of the budget. The look is calibrated on the first :data:`LOOK_SAMPLE` such pictures
    of the search's rows (``found``) in content order (the calibration's sample: their pictures
    are kept in memory); the pairs the search proposed are left out of the look-alikes drawn
    from that sample (but on a layout)."""
    search_rows = found.search_rows
    confidence = np.asarray(pairs.confidence, np.float32).copy()
    big = features.sizes.min(axis=1) >= LOOK_MIN_SIDE
    looked = big[pairs.i] & big[pairs.j] & (pairs.kind != Kind.EXACT)
    thumbs = looked & (pairs.kind != Kind.KEYPOINT)
    doubt = (confidence >= floor) & (confidence < threshold) & thumbs
    duplicates = (confidence >= threshold) & thumbs
    keyed = (pairs.kind == Kind.KEYPOINT) & looked
    if not doubt.any() and not duplicates.any() and not keyed.any():
        return confidence, {}
    try:
        detector()
    except ImportError as exc:  # a broken OpenCV install: the thumbnails' decision stands
        unsure = duplicates & (confidence < LOOK_CEILING)
        if not doubt.any() and not unsure.any() and not keyed.any():
            return confidence, {}
        return confidence, {"looked_at": 0, "in_doubt": int(doubt.sum() + unsure.sum()), "used": False,
                            "unavailable": f"OpenCV could not be imported ({exc})"}
    digests = features.pixel_digest
    sample = search_rows[digest_order(digests[search_rows])]
    sample = sample[big[sample]][:LOOK_SAMPLE]
    pictures = images(sample) if len(sample) else []
    details = [None if p is None else _detail_or_none(p) for p in pictures]
    kept = [q for q, p in enumerate(pictures) if p is not None]
    sample, pictures = sample[kept], [pictures[q] for q in kept]
    layouts = folder_layouts([details[q] for q in kept if details[q] is not None])
    look = dict(pairs=pairs, found=found, features=features, images=images, threshold=threshold, floor=floor,
                jobs=jobs)
    if not layouts:
        return _look_closer(confidence, looked, sample, pictures, **look)
    on = on_layouts(features, sample, layouts, np.unique(np.r_[pairs.i[looked], pairs.j[looked], sample]))
    on_pair = on[pairs.i] | on[pairs.j]
    # judged off the commonest size's layout only: off both of two applications' layouts, the
    # look told their screens apart better (AUC 0.91 against 0.85), but its share of copies fell
    # (0.06 against 0.10) and both planted copies with it, under the bar
    confidence, stats = _look_closer(confidence, looked & on_pair, sample, pictures, layouts=layouts[:1], **look)
    off = ~on[sample]
    confidence, off_stats = _look_closer(confidence, looked & ~on_pair, sample[off],
                                         [p for p, o in zip(pictures, off) if o],
                                         budget=LOOK_BUDGET - stats.get("looked_at", 0) - stats.get("unread", 0),
                                         **look)
    if not stats:  # no pair on a layout to decide: as with no layout
        return confidence, off_stats
    shapes = [d.shape for d in details if d is not None]
    stats["layouts"] = [{"share": round(layout.share, 4), "pictures": shapes.count(layout.detail.shape)}
                        for layout in layouts]
    stats["layout_share"] = max(layout["share"] for layout in stats["layouts"])
    stats["layout_sampled"] = len(shapes)
    if off_stats:
        stats["off_layout"] = off_stats
    return confidence, stats


def _look_closer(confidence: np.ndarray, looked: np.ndarray, sample: np.ndarray, pictures: list, *,
                 pairs: PairTable, found: Candidates, features: Features, images: ImageSource, threshold: float,
                 floor: float, jobs: int, layouts: tuple = (), budget: int | None = None) -> tuple[np.ndarray, dict]:
    """:func:`closer_look` of the ``looked`` pairs, calibrated on the ``sample`` (rows) and its
    ``pictures``, on ``layouts`` (every duplicate looked at, decided by the look alone) or
    none, up to ``budget`` pairs (:data:`LOOK_BUDGET`): ``(confidence, stats)``."""
    budget = LOOK_BUDGET if budget is None else max(0, budget)
    known = found.pairs
    # the pairs the keypoint search proposed (:func:`keypoint_pairs`; no thumbnail reading of them
    # is kept): the look decides them
    keyed = np.flatnonzero((pairs.kind == Kind.KEYPOINT) & looked)
    looked = looked & (pairs.kind != Kind.KEYPOINT)
    doubt = np.flatnonzero((confidence >= floor) & (confidence < threshold) & looked)
    # the duplicates the thumbnails are not sure of: a copy shows ORB its detail (turned, cropped,
    # recoloured), two tiles of one brick wall or sky do not, nor two pictures under one logo;
    # on a layout every duplicate: the thumbnails are as sure of look-alikes as of copies
    duplicates = (confidence >= threshold) & looked
    unsure = np.flatnonzero(duplicates if layouts else duplicates & (confidence < LOOK_CEILING))
    if not len(doubt) and not len(unsure) and not len(keyed):
        return confidence, {}
    digests = features.pixel_digest
    a, b = np.triu_indices(len(sample), 1)
    lo, hi = np.minimum(sample[a], sample[b]), np.maximum(sample[a], sample[b])
    proposed = np.isin(pair_keys(lo, hi), known.keys())
    # the look-alikes: the pairs the thumbnails rejected with most doubt, a few for each pair looked at
    rejected = np.flatnonzero((confidence < floor) & looked)
    rejected = rejected[np.argsort(-confidence[rejected], kind="stable")][
        :min(LOOK_NEGATIVES, max(2 * MIN_EXAMPLES, NEGATIVES_PER * (len(doubt) + len(unsure))))]
    keyed = keyed[np.argsort(-pairs.score[keyed], kind="stable")][:budget]  # the most matched first
    doubt = doubt[np.argsort(-confidence[doubt], kind="stable")][:budget - len(keyed)]
    unsure = unsure[np.argsort(confidence[unsure], kind="stable")][:budget - len(keyed) - len(doubt)]
    # one pass over every pair to look at (fewer pictures read twice)
    groups = [doubt, unsure, rejected, keyed]
    looks, unread = look_at(pairs.take(np.concatenate(groups)), images, digests, jobs, layouts)
    read = np.split(~unread, np.cumsum([len(group) for group in groups])[:-1])
    # the pairs with a picture that could not be read (or that OpenCV failed on) had no look: it
    # neither judges them nor learns from them; they keep the thumbnails' confidence (on a
    # layout, possible at most, as the duplicates past the budget)
    unread = np.r_[doubt[~read[0]], unsure[~read[1]], keyed[~read[3]]]
    doubt, unsure, rejected, keyed = (group[kept] for group, kept in zip(groups, read))
    looks, unsure_looks, rejected_looks, keyed_looks = np.split(
        looks[np.concatenate(read)], np.cumsum([len(doubt), len(unsure), len(rejected)]))
    turned = MatchView.is_tilted(pairs.variant[unsure])
    seed = int.from_bytes(bytes(digests[sample[0]][:8]), "little") if len(sample) else 0
    fitted = fit_look(pictures, features.embedding[sample], seed, rejected_looks,
                      frozenset(zip(a[proposed].tolist(), b[proposed].tolist())), jobs, tilted=bool(turned.any()),
                      layouts=layouts)
    layout_share = max((layout.share for layout in layouts), default=0.0)
    if isinstance(fitted, str):  # nothing to read the looks by: the keypoint search's pairs stay possible
        confidence[keyed] = floor
        stats = {"looked_at": int(len(doubt) + len(unsure) + len(keyed)), "unread": int(len(unread)), "used": False,
                 "not_used": fitted}
        if layouts:
            # on a layout the thumbnails are as sure of two different pictures as of a copy, and
            # no look decides them: their duplicates are possible at most (as those past the budget)
            undecided = np.flatnonzero(duplicates)
            confidence[undecided] = np.minimum(confidence[undecided], threshold - 0.01)
            stats.update(layout_share=round(layout_share, 4), layout_undecided=int(len(undecided)))
        return confidence, stats
    p = confidence[doubt]
    raised = np.where(fitted.lined_up(looks), np.maximum(_with_log_odds(p, fitted.log_ratio(looks)), p), p)
    # the keypoint search's pairs: what the look says of each (a transform: its ratio, raising or
    # lowering; an overlay's: the lower of that and the no-transform ratio; none: the latter)
    said = fitted.said(keyed_looks, np.where(keyed_looks[:, 3] > 0, fitted.no_transform.at(keyed_looks), 0.0))
    layout_copies = None
    if fitted.on_layout:
        # on one layout the thumbnails see the layout, and the keypoint search matches it: the look
        # decides every pair it looked at alone, at the share of copies among them all (the keypoint
        # search proposes a few pairs of forms, copies among them, and at their own share a pair of
        # two forms it read a little as a copy was a duplicate)
        decided = np.r_[doubt, unsure, keyed]
        change = np.r_[fitted.odds_change(np.r_[looks, unsure_looks],
                                          MatchView.is_tilted(pairs.variant[np.r_[doubt, unsure]])), said]
        posterior, layout_copies = adjust_to_prior(1.0 / (1.0 + np.exp(-change)))
        # a pair the look speaks for stays worth a look, however rare copies are among them
        confidence[decided] = np.where(change > 0, np.maximum(posterior, floor), posterior)
        raised = confidence[doubt]
        # the duplicates past the budget, or unread: the thumbnails cannot tell them, so they are possible at most
        undecided = np.setdiff1d(np.flatnonzero(duplicates), unsure)
        confidence[undecided] = np.minimum(confidence[undecided], threshold - 0.01)
        past_budget = np.setdiff1d(undecided, unread)
    else:
        confidence[doubt] = raised
        # the unsure duplicates confirmed, or lowered; overlapping tiles only confirmed (a copy moved
        # across its frame, its shared part lined up by its keypoints): their share of common picture
        # is theirs to measure, half by design, and a look explaining half the matches says nothing against them
        change = fitted.odds_change(unsure_looks, turned)
        change = np.where(pairs.variant[unsure] == MatchView.OVERLAP, np.maximum(change, 0.0), change)
        # a pair read by its brightness: a hue shift (or solarizing) moves the grey levels ORB sees, so
        # what ORB finds says nothing of it, but for an overlay the two share
        quiet = MatchView.by_brightness(pairs.variant[unsure]) & ~fitted.overlay(unsure_looks)
        confidence[unsure] = _with_log_odds(confidence[unsure], np.where(quiet, 0.0, change))
    # elsewhere the keypoint search's pairs are decided at their own share of copies (EM over them, as
    # the decision's other readings: a search that mostly proposes texture look-alikes makes its
    # pairs less likely copies)
    keyed_share = layout_copies if fitted.on_layout else 0.0
    if len(keyed) and not fitted.on_layout:
        confidence[keyed], keyed_share = adjust_to_prior(1.0 / (1.0 + np.exp(-said)))
    weights = {c: round(float(w / d), 4) for c, w, d in zip(("log_matches", "detail", "agree"), fitted.coef,
                                                              fitted.scale)}
    stats = {"looked_at": int(len(doubt) + len(unsure) + len(keyed)), "unread": int(len(unread)), "used": True,
             "keypoint_pairs": int(len(keyed)), "keypoint_share": round(float(keyed_share), 5),
             "keypoint_duplicates": int((confidence[keyed] >= threshold).sum()),
             "raised_to_duplicates": int((raised >= threshold).sum()),
             "duplicates_looked_at": int(len(unsure)), "turned_looked_at": int(turned.sum()),
             "lowered_to_possible": int((confidence[unsure] < threshold).sum()),
             "overlays": int(fitted.overlay(np.r_[looks, unsure_looks, keyed_looks]).sum()),
             "weights": weights, "no_transform": _at_keypoints(fitted.no_transform),
             "tilted_no_transform": _at_keypoints(fitted.tilted_no_transform), **fitted.stats}
    if layouts:
        stats["layout_share"] = round(layout_share, 4)
        stats["layout_copy_share"] = round(float(layout_copies), 5)
        stats["layout_past_budget"] = int(len(past_budget))
    return confidence, stats


# --------------------------------------------------------------------------- the keypoint search

#: The keypoint search runs on up to this many pictures of :data:`LOOK_MIN_SIDE` px or more.
SEARCH_MAX_IMAGES = 5_000
#: Nearest descriptors looked up per keypoint, and the largest Hamming distance (of 256 bits)
#: at which one is a match.
SEARCH_NEIGHBOURS = 16
SEARCH_MAX_HAMMING = 48
#: Beyond 20,000 keypoints their index is approximate, with about sqrt(keypoints) lists (a
#: quarter of the thumbnails' indexes), trained in this many k-means rounds: training then costs
#: a fraction of the search (0.7 s for 1,100 photos' keypoints, against 7 s at the default lists
#: and rounds), and finds more of each keypoint's exact neighbours (0.93 against 0.88).
SEARCH_TRAIN_ROUNDS = 10
#: Least matches (keypoints of either picture matched in the other) for a pair to be fitted.
SEARCH_MIN_MATCHES = 8
#: Pairs fitted per picture: this many with the most matches (it may be in more: another's best).
SEARCH_PER_IMAGE = 4
#: A pair is proposed when one affine transform explains this many of its matches or more ...
SEARCH_MIN_INLIERS = 8
#: ... and those spread over at least this share of the most the two pictures can have in
#: common under it (the area of their convex hull): a copy matches all over the picture in
#: common, two pictures that share a caption, a logo or a printed label match only there ...
SEARCH_MIN_SPREAD = 0.1
#: ... and across as well as along: half of them (or half of their places) at least this share
#: of the side of that common area away from their middle line in every direction
#: (:func:`_width`). Matches all over a square are a quarter of its side away, the strongest
#: keypoints of a crop of gravel 0.06 to 0.09; the letters of a caption along the bottom less
#: than 0.01, and the odd stray match that lets a line of letters fit a sheared transform does
#: not move the median.
SEARCH_MIN_WIDTH = 0.025
#: Matches in one square of this share of the common side are one place: ORB finds a bright star or
#: a sharp corner at several scales and turns, and a few such spots can outweigh the matches
#: all over the picture (a star field read as a line). Read as places, the matches must be at
#: :data:`SEARCH_MIN_INLIERS` places at least (a few letters of a caption found many times are not).
SEARCH_PLACE = 1 / 64


def _decoded_keypoints(picture: Image.Image | None) -> np.ndarray:
    """The search keypoints (:func:`~leakscan.orb.strongest_keypoints`) of a picture decoded
    again; none (``count`` 0, logged) when it cannot be read or OpenCV fails on it."""
    if picture is not None:
        try:
            return strongest_keypoints(picture, PICTURE_SIDE)
        except Exception as exc:
            log.warning("%s: no keypoint search (%s: %s)", picture.info.get("path", "a picture"),
                        type(exc).__name__, exc)
    return np.zeros((), KEYPOINT_RECORD)


def search_keypoints(features: Features, rows: np.ndarray, images: ImageSource, jobs: int = 1) -> np.ndarray:
    """The search keypoints of ``rows``, ``(len(rows),)`` :data:`~leakscan.orb.KEYPOINT_RECORD`:
    those the feature pass kept (:attr:`~leakscan.features.Features.keypoints`), the others'
    found on their pictures decoded again (``images``), a block at a time."""
    out = np.zeros(len(rows), KEYPOINT_RECORD)
    kept = features.keypoint_rows
    at = np.searchsorted(kept, rows)
    stored = at < len(kept)
    stored[stored] = kept[at[stored]] == rows[stored]
    out[stored] = features.keypoints[at[stored]]
    missing = np.flatnonzero(~stored)
    for start in range(0, len(missing), 2 * LOOK_BLOCK):
        block = missing[start:start + 2 * LOOK_BLOCK]
        out[block] = map_threads(_decoded_keypoints, images(rows[block]), jobs)
    if len(missing):
        log.info("keypoint search: %d of %d pictures decoded again for their keypoints", len(missing), len(rows))
    return out


def _spread(points: np.ndarray, size) -> float:
    """The share of a ``(width, height)`` area the convex hull of ``points`` covers."""
    import cv2  # noqa: PLC0415

    if len(points) < 3:
        return 0.0
    hull = cv2.convexHull(np.ascontiguousarray(points, np.float32))
    return float(cv2.contourArea(hull)) / float(max(size[0] * size[1], 1))


#: The directions :func:`_width` measures across: every 5 degrees of a half turn.
_ACROSS = np.stack([np.cos(np.deg2rad(np.arange(0, 180, 5))), np.sin(np.deg2rad(np.arange(0, 180, 5)))])


def _width(points: np.ndarray) -> float:
    """How far ``points`` spread across their narrowest direction: the least, over directions,
    of their median absolute deviation along it (a few strays off a line do not widen it)."""
    along = points.astype(np.float64) @ _ACROSS
    return float(np.median(np.abs(along - np.median(along, axis=0)), axis=0).min())


def _fitted(src: np.ndarray, dst: np.ndarray, size_a, size_b) -> int:
    """The matches ``src`` (on picture a, of ``(width, height)`` ``size_a``) -> ``dst`` (on b) one
    affine transform explains, when they spread over what the two can have in common, across as
    well as along, as they are or as places (:data:`SEARCH_MIN_SPREAD`, :data:`SEARCH_MIN_WIDTH`,
    :data:`SEARCH_PLACE`) and the transform is one a copy can have (:data:`MAX_STRETCH`); else 0."""
    import cv2  # noqa: PLC0415

    if len(src) < SEARCH_MIN_INLIERS:
        return 0
    m, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX,
                                   maxIters=2000, confidence=0.99)
    if m is None or mask is None:
        return 0
    inliers = mask.ravel().astype(bool)
    stretch = np.linalg.svd(m[:, :2], compute_uv=False)
    if stretch.min() <= 0 or stretch.max() / stretch.min() > MAX_STRETCH or not (
            1 / MAX_STRETCH ** 2 <= stretch.prod() <= MAX_STRETCH ** 2):
        return 0
    # the most the two can have in common, on picture a: the smaller of a and b brought to a's scale
    common = min(float(size_a[0] * size_a[1]), float(size_b[0] * size_b[1]) / float(stretch.prod()))
    if inliers.sum() < SEARCH_MIN_INLIERS or _spread(src[inliers], (common, 1.0)) < SEARCH_MIN_SPREAD:
        return 0
    side = np.sqrt(common)
    if _width(src[inliers]) < SEARCH_MIN_WIDTH * side:
        # or as places: a few spots ORB finds many times over must not hide the matches elsewhere
        places = _places(src[inliers], SEARCH_PLACE * side)
        if len(places) < SEARCH_MIN_INLIERS or _width(places) < SEARCH_MIN_WIDTH * side:
            return 0
    return int(inliers.sum())


def _places(points: np.ndarray, cell: float) -> np.ndarray:
    """``points`` as places: the middle of those in each ``cell`` px square, one per square."""
    _, place = np.unique(np.floor(points / cell), axis=0, return_inverse=True)
    place = place.ravel()
    count = np.bincount(place)
    return np.stack([np.bincount(place, points[:, k]) / count for k in range(2)], axis=1)


def _held(found: np.ndarray, prefix: str) -> tuple:
    """``(codes, points, owner)``: the keypoints of the records ``found`` (``prefix``
    ``"mirrored_"``: of their pictures mirrored), each picture's first ``count``, and whose they are."""
    count = found[prefix + "count"].astype(np.int64)
    held = np.arange(STRONGEST) < count[:, None]
    return found[prefix + "codes"][held], found[prefix + "points"][held], np.repeat(np.arange(len(found)), count)


def _nearest_matches(index: HammingIndex, queries: np.ndarray, query_owner: np.ndarray,
                     owner: np.ndarray) -> tuple:
    """``(q, t)``: each query keypoint matched to its nearest keypoint of each other picture
    among its :data:`SEARCH_NEIGHBOURS` nearest within :data:`SEARCH_MAX_HAMMING` bits."""
    dist, found = index.knn(queries, SEARCH_NEIGHBOURS)
    q = np.repeat(np.arange(len(queries)), found.shape[1])
    t, dist = found.ravel(), dist.ravel()
    ok = (t >= 0) & (dist <= SEARCH_MAX_HAMMING)
    q, t = q[ok], t[ok]
    ok = owner[t] != query_owner[q]
    q, t = q[ok], t[ok]
    first = np.unique(q * (int(owner.max()) + 1) + owner[t], return_index=True)[1]
    return q[first], t[first]


def _best_of_each(groups: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mask of the entry with the highest score in each group (on a tie, the first)."""
    order = np.lexsort((np.arange(len(groups)), -np.asarray(scores), groups))
    best = np.zeros(len(groups), bool)
    if len(order):
        best[order[np.r_[True, groups[order][1:] != groups[order][:-1]]]] = True
    return best


def keypoint_pairs(features: Features, rows: np.ndarray, images: ImageSource, known: np.ndarray,
                   jobs: int = 1, mirrored: bool = True) -> tuple[PairTable, int]:
    """Pairs of ``rows`` but those in ``known`` (their keys: the pairs the thumbnails' decision
    keeps, so that a picture's sure copies take none of its fits) whose keypoints say they are
    one picture: ``(pairs, skipped)``, kind ``keypoint``, score the share
    of :data:`~leakscan.orb.STRONGEST` the fitted transform explains; ``skipped``: the pictures not
    searched, when there are more than :data:`SEARCH_MAX_IMAGES`.

    On 32 px thumbnails a crop of grass, gravel or a star field looks like any patch of the same
    texture, so no search there proposes it. Here the strongest ORB keypoints of every picture of
    :data:`LOOK_MIN_SIDE` px or more, from all over it (at PICTURE_SIDE px; kept by the feature
    pass, else found on the picture decoded again: :func:`search_keypoints`) are indexed together;
    each keypoint's nearest descriptors of other pictures are its matches; the pairs of pictures
    with the most matches (:data:`SEARCH_MIN_MATCHES`, each picture's :data:`SEARCH_PER_IMAGE`
    best) are fitted one affine transform by RANSAC, and proposed when it explains :data:`SEARCH_MIN_INLIERS`
    matches spread over both pictures. Proposing is not deciding: the closer look decides them
    (:func:`closer_look`, from :data:`~leakscan.settings.POSSIBLE_FLOOR`). With ``mirrored`` (mirrors
    count as copies), the keypoints of each picture mirrored are matched too (ORB's descriptors
    are not mirror-symmetric: a mirrored crop matches only them): a pair so lined up is proposed
    mirrored (``MatchView.HFLIP``), and the closer look mirrors one picture back."""
    rows = np.asarray(rows, np.int64)
    rows = rows[features.sizes[rows].min(axis=1) >= LOOK_MIN_SIDE]
    empty = PairTable.empty()
    if len(rows) < 2:
        return empty, 0
    if len(rows) > SEARCH_MAX_IMAGES:
        return empty, len(rows)
    try:
        detector()
    except ImportError:
        return empty, 0
    rows = rows[digest_order(features.pixel_digest[rows])]  # content order: the same pairs in any row order
    found = search_keypoints(features, rows, images, jobs)
    have = np.flatnonzero(found["count"] > 0)
    if len(have) < 2:
        return empty, 0
    found = found[have]
    n = len(have)
    sizes = np.stack([found["width"], found["height"]], axis=1)
    codes, points, owner = _held(found, "")
    index = HammingIndex(codes, exact_max=20_000, lists=2 ** round(np.log2(np.sqrt(len(codes)))),
                         train_rounds=SEARCH_TRAIN_ROUNDS)
    # each match: the pair key (the two pictures, and whether the first is mirrored); its points
    # are read only for the pairs chosen (memory: millions of matches)
    q, t = _nearest_matches(index, codes, owner, owner)
    key = (np.minimum(owner[q], owner[t]) * n + np.maximum(owner[q], owner[t])) * 2
    all_keys = key
    if mirrored:  # a mirrored copy's descriptors match only the mirrored picture's: its keypoints are queried too
        m_codes, m_points, m_owner = _held(found, "mirrored_")
        mq, mt = _nearest_matches(index, m_codes, m_owner, owner)
        back = m_owner[mq] > owner[mt]  # a mirrored keypoint of the pair's second picture found the first's
        m_key = (np.minimum(m_owner[mq], owner[mt]) * n + np.maximum(m_owner[mq], owner[mt])) * 2 + 1
        # both sides count, as in the search as it is; the fit reads the side with more matches (the
        # keypoints of a picture and of its mirror are found apart: one keypoint pair seen from both
        # sides is two matches, which the plain search's ids tell apart and these cannot)
        side = m_key * 2 + back
        sides, side_counts = np.unique(side, return_counts=True)
        read = np.isin(side, sides[_best_of_each(sides // 2, side_counts)])
        del side
        all_keys = np.r_[key, m_key]
    keys, counts = np.unique(all_keys, return_counts=True)
    del all_keys
    enough = counts >= SEARCH_MIN_MATCHES
    keys, counts = keys[enough], counts[enough]
    pair_lo, pair_hi = keys // 2 // n, keys // 2 % n
    row_lo, row_hi = rows[have][pair_lo], rows[have][pair_hi]
    new = ~np.isin(pair_keys(np.minimum(row_lo, row_hi), np.maximum(row_lo, row_hi)), known)
    keys, counts, pair_lo, pair_hi = keys[new], counts[new], pair_lo[new], pair_hi[new]
    # each picture's best-matched pairs (most matches first; ties by the pair's content order)
    order = np.lexsort((keys, -counts))
    chosen = np.zeros(len(keys), bool)
    taken = np.zeros(n, np.int64)
    for k in order.tolist():
        if taken[pair_lo[k]] < SEARCH_PER_IMAGE or taken[pair_hi[k]] < SEARCH_PER_IMAGE:
            chosen[k] = True
            taken[pair_lo[k]] += 1
            taken[pair_hi[k]] += 1
    keys, pair_lo, pair_hi = keys[chosen], pair_lo[chosen], pair_hi[chosen]

    def of_chosen(match_keys):
        """Per match: the position of its pair among ``keys`` (-1: a pair not chosen)."""
        at = np.searchsorted(keys, match_keys)
        inside = at < len(keys)
        inside[inside] = keys[at[inside]] == match_keys[inside]
        return np.where(inside, at, -1)

    # the matches of the chosen pairs: the keypoint on the pair's first picture and on its second,
    # and ids that tell one keypoint pair found from both pictures (it counts once in the fit)
    pair_of = of_chosen(key)
    sel = np.flatnonzero(pair_of >= 0)
    q, t, pair_of = q[sel], t[sel], pair_of[sel]
    first = owner[q] < owner[t]
    ids = np.stack([np.where(first, q, t), np.where(first, t, q)], axis=1)
    src, dst = points[ids[:, 0]], points[ids[:, 1]]
    if mirrored:
        m_pair = of_chosen(m_key)
        sel = np.flatnonzero((m_pair >= 0) & read)
        mq, mt, back, m_pair = mq[sel], mt[sel], back[sel], m_pair[sel]
        msrc, mdst = m_points[mq], points[mt]
        # read as "the first picture mirrored is the second": from the second picture's side, both
        # points are mirrored back (x -> width - 1 - x) and swapped
        msrc[back, 0] = sizes[m_owner[mq[back]], 0] - 1 - msrc[back, 0]
        mdst[back, 0] = sizes[owner[mt[back]], 0] - 1 - mdst[back, 0]
        msrc[back], mdst[back] = mdst[back], msrc[back].copy()
        src, dst, pair_of = np.r_[src, msrc], np.r_[dst, mdst], np.r_[pair_of, m_pair]
        ids = np.r_[ids, np.stack([len(codes) + mq, mt], axis=1)]
    total = int(ids[:, 0].max()) + 1 if len(ids) else 1
    once = np.unique((pair_of * total + ids[:, 0]) * len(codes) + ids[:, 1], return_index=True)[1]
    src, dst, pair_of = src[once], dst[once], pair_of[once]
    by_pair = np.argsort(pair_of, kind="stable")
    bounds = np.searchsorted(pair_of[by_pair], np.arange(len(keys) + 1))
    size_list = sizes.tolist()

    def fit(k):
        sel = by_pair[bounds[k]:bounds[k + 1]]
        return _fitted(src[sel], dst[sel], size_list[pair_lo[k]], size_list[pair_hi[k]])

    inliers = np.asarray(map_threads(fit, range(len(keys)), jobs), np.int64).reshape(-1)
    # a pair whose pictures line up both as they are and one mirrored (a symmetric picture): the
    # reading that explains more matches
    keep = (inliers > 0) & _best_of_each(keys // 2, inliers)
    i, j = rows[have][pair_lo[keep]], rows[have][pair_hi[keep]]
    n_kept = int(keep.sum())
    variant = np.where(keys[keep] % 2 == 1, MatchView.HFLIP, MatchView.NONE).astype(np.int8)
    pairs = PairTable(i=np.minimum(i, j), j=np.maximum(i, j), kind=np.full(n_kept, Kind.KEYPOINT, np.uint8),
                      score=np.minimum(inliers[keep] / STRONGEST, 1.0).astype(np.float32),
                      hamming=np.full(n_kept, -1, np.int16), cosine=np.full(n_kept, np.nan, np.float32),
                      variant=variant, same_bytes=np.zeros(n_kept, bool),
                      ncc=np.full(n_kept, np.nan, np.float32))
    log.info("keypoint search: %d pictures, %d pairs fitted, %d proposed", len(have), len(keys), n_kept)
    return pairs.sorted(), 0
