"""The ways an image is queried: its 8 rotations/flips, its crops, the picture off its canvas.

Every view is made from what one decode already gives (the 32x32 thumbnail and its
features), never by decoding again:

* the eight **dihedral variants** (rotations by multiples of 90 degrees and flips) of a
  thumbnail are :func:`apply_dihedral`; those of the gradient-histogram embedding are a
  permutation of its numbers (:func:`embedding_variants`);
* **crops** of the thumbnail, enlarged back to full size, find cropped copies
  (:func:`crop_views`, :data:`CROP_PLACES`), and stretched crops (:data:`STRETCH_BOXES`)
  find crops of another shape resized to a fixed size; their mirror images (a permutation
  of their embedding, as for any flip) find crops then flipped;
* **tilted views** (:func:`tilted_views`, :data:`TILT_ANGLES`): the thumbnail turned by
  an angle and cropped to the largest upright box inside, as a copy rotated and then cropped
  free of its corners looks;
* the **canvas view** (:func:`canvas_view`): the picture taken off its canvas, either
  rotated back when it was rotated by another angle on a padded canvas
  (:func:`leakscan.rotation.derotate`), or with a flat border (letterbox, pillarbox, frame,
  padding to a square) or a caption bar trimmed off (:func:`leakscan.padding.unpadded`);
  the second is stored with angle 0 and the box of its border.

Which view a pair matched through is recorded as a :class:`MatchView`.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from .padding import NO_BORDER, unpadded_all
from .rotation import canvas_fills, derotate_on

__all__ = ["apply_dihedral", "embedding_variants", "crop_views", "box_views", "box_taps", "resampling_matrix",
           "sample_rows", "sample_columns", "tilted_views", "transform_variants", "canvas_view", "canvas_views",
           "is_oblong", "turned_share", "MatchView", "READINGS", "TILT_ANGLES",
           "TILT_BOXES", "TILT_TIGHT", "VARIANT_NAMES", "N_VARIANTS", "CROP_PLACES", "CROP_SIDE", "CROP_SIDE_TIGHT",
           "STRETCH_BOXES", "crop_boxes", "THUMB", "CELL", "BINS", "INVERSE_VARIANT"]

#: Side (pixels) of the grayscale thumbnail every feature and view comes from.
THUMB = 32
#: Side (pixels) of a cell of the embedding's grid, and its number of orientation bins: the
#: layout a rotation/flip permutes (:func:`embedding_variants`).
CELL = 8
BINS = 8
N_VARIANTS = 8
#: Names of the eight rotations/flips, in the order of the variant axis.
VARIANT_NAMES = ("identity", "hflip", "vflip", "rot180", "transpose", "rot90", "rot270", "antitranspose")
#: The variant that undoes each variant (rot90 and rot270 undo each other).
INVERSE_VARIANT = np.array([0, 1, 2, 3, 4, 6, 5, 7], np.int64)


def canvas_view(img, small: np.ndarray):
    """``(angle, picture, padding)``: ``img``'s picture off its canvas, or None when it has no canvas.

    A picture rotated by ``angle`` degrees on a padded canvas is rotated back
    (:func:`~leakscan.rotation.derotate`); else a flat border or a caption bar is trimmed off
    (angle 0, :func:`~leakscan.padding.unpadded`), and ``padding`` is the box of the canvas
    outside which the verification leaves the border out (:data:`~leakscan.padding.NO_BORDER`
    for a rotated picture). ``small`` is the 32x32 grayscale thumbnail (both take a cheap
    first look at it).
    """
    return canvas_views([img], np.asarray(small)[None])[0]


def canvas_views(imgs: list, smalls: np.ndarray) -> list:
    """:func:`canvas_view` of each image (``smalls``: their ``(p, 32, 32)`` thumbnails): the first
    looks at all the thumbnails at once, and the borders of pictures of one size read together
    (on small pictures, most of the cost is in the calls, not the pixels)."""
    fills = canvas_fills(smalls)
    out: list = [None] * len(imgs)
    rest = []
    for k, img in enumerate(imgs):
        view = None if np.isnan(fills[k]) else derotate_on(img, float(fills[k]))
        if view is None:
            rest.append(k)
        else:
            out[k] = view[0], view[1], NO_BORDER
    for k, found in zip(rest, unpadded_all([imgs[k] for k in rest], np.asarray(smalls)[rest])):
        if found is not None:
            out[k] = 0.0, found[0], found[1]
    return out


class MatchView(IntEnum):
    """The view through which a pair matched, stored as ``PairTable.variant`` (int8).

    ``0-7``: the whole image under dihedral variant ``v`` (:data:`VARIANT_NAMES`);
    ``8 + v``: the de-rotated view of a copy rotated by another angle, then variant ``v``;
    ``16``: a crop view; ``17``: a quadrant of one is a window of the other (overlapping
    tiles, ``PairTable.offset``); ``18``: ``j`` is ``i`` turned by ``PairTable.angle`` degrees and
    cropped upright (a tilted view, :func:`tilted_views`), ``19``: ``i`` is ``j`` turned and
    cropped; ``20``: found through a tilted view only, and read upright as well (lined up as
    it is); ``21``: ``j`` is ``i`` turned within a frame of its own size, its corners filled any
    way (black, a colour, the edge pixels repeated or mirrored), read at the centre both share
    (:func:`turned_share`), ``22``: ``i`` is ``j`` turned so; ``23``: a crop view of one,
    mirrored left to right, is the other (a crop then flipped, as training pipelines make
    them); ``24``: the two match by brightness (each pixel's brightest channel, HSV value),
    as they are: one is the other shifted in hue; ``25``: the two match by folded brightness
    (each channel folded about mid-grey, :func:`~leakscan.features.folded_thumbnail`): one is
    the other solarized; ``-1``: none (exact and model pairs). The
    values are stored in cached search results: never renumber them.
    """

    NONE = -1
    IDENTITY = 0
    HFLIP = 1
    VFLIP = 2
    ROT180 = 3
    TRANSPOSE = 4
    ROT90 = 5
    ROT270 = 6
    ANTITRANSPOSE = 7
    DEROTATED = 8
    DEROTATED_HFLIP = 9
    DEROTATED_VFLIP = 10
    DEROTATED_ROT180 = 11
    DEROTATED_TRANSPOSE = 12
    DEROTATED_ROT90 = 13
    DEROTATED_ROT270 = 14
    DEROTATED_ANTITRANSPOSE = 15
    CROPPED = 16
    OVERLAP = 17
    TILTED = 18
    TILTED_BACK = 19
    UPRIGHT = 20
    TURNED = 21
    TURNED_BACK = 22
    CROPPED_HFLIP = 23
    VALUE = 24
    FOLDED = 25

    @classmethod
    def derotated(cls, dihedral):
        """Code of a match through the de-rotated view under dihedral variant(s) ``dihedral``."""
        return cls.DEROTATED + dihedral

    @staticmethod
    def is_derotated(codes: np.ndarray) -> np.ndarray:
        """Mask of the codes that matched through a de-rotated view."""
        codes = np.asarray(codes)
        return (codes >= MatchView.DEROTATED) & (codes < MatchView.CROPPED)

    @staticmethod
    def is_cropped(codes: np.ndarray) -> np.ndarray:
        """Mask of the codes that matched through a crop view (plain or mirrored)."""
        return np.isin(codes, (MatchView.CROPPED, MatchView.CROPPED_HFLIP))

    @staticmethod
    def is_partial(codes: np.ndarray) -> np.ndarray:
        """Mask of the codes that line up as they are, with no rotation or flip (a crop view,
        overlapping tiles, a tilted view, a tilted match read upright)."""
        return np.isin(codes, (MatchView.CROPPED, MatchView.OVERLAP, MatchView.UPRIGHT)) | MatchView.is_tilted(codes)

    @staticmethod
    def from_tilted(codes: np.ndarray) -> np.ndarray:
        """Mask of the pairs only the tilted views proposed (read tilted, or upright)."""
        return MatchView.is_tilted(codes) | (np.asarray(codes) == MatchView.UPRIGHT)

    @staticmethod
    def is_tilted(codes: np.ndarray) -> np.ndarray:
        """Mask of the codes that matched through a tilted view (either way round; the copy
        cropped upright, or turned within its frame)."""
        return np.isin(codes, (MatchView.TILTED, MatchView.TILTED_BACK, MatchView.TURNED, MatchView.TURNED_BACK))

    @staticmethod
    def is_turned(codes: np.ndarray) -> np.ndarray:
        """Mask of the tilted codes whose copy was turned within its frame (read at the centre)."""
        return np.isin(codes, (MatchView.TURNED, MatchView.TURNED_BACK))

    @staticmethod
    def tilted_back(codes: np.ndarray) -> np.ndarray:
        """Mask of the tilted codes whose turned copy is ``i`` (the original ``j``)."""
        return np.isin(codes, (MatchView.TILTED_BACK, MatchView.TURNED_BACK))

    @staticmethod
    def tilted_swapped(codes: np.ndarray) -> np.ndarray:
        """The tilted codes with ``i`` and ``j`` swapped (other codes as they are)."""
        codes = np.asarray(codes)
        out = np.where(np.isin(codes, (MatchView.TILTED, MatchView.TILTED_BACK)),
                       MatchView.TILTED + MatchView.TILTED_BACK - codes, codes)
        return np.where(MatchView.is_turned(codes), MatchView.TURNED + MatchView.TURNED_BACK - codes, out)

    @staticmethod
    def reading(codes: np.ndarray) -> np.ndarray:
        """How each pair is read by the decision, an index into :data:`READINGS`: as a whole
        (0), as overlapping tiles (1), as a tilted copy (2). Each has its own share of copies;
        overlapping tiles have their own fit too, a tilted pair is decided by the whole-image one."""
        codes = np.asarray(codes)
        return np.where(codes == MatchView.OVERLAP, 1, np.where(MatchView.is_tilted(codes), 2, 0)).astype(np.int8)

    @staticmethod
    def is_other_view(codes: np.ndarray) -> np.ndarray:
        """Mask of the codes that matched through a view other than the whole image (de-rotated,
        crop, overlap, tilted, brightness)."""
        return np.asarray(codes) >= MatchView.DEROTATED

    @staticmethod
    def by_brightness(codes: np.ndarray) -> np.ndarray:
        """Mask of the codes that matched by a brightness other than the grey levels (one
        shifted in hue, one solarized): read so only where no other reading makes them copies."""
        return np.isin(codes, (MatchView.VALUE, MatchView.FOLDED))

    @staticmethod
    def dihedral(codes: np.ndarray) -> np.ndarray:
        """The dihedral variant to apply when lining the pair up: a crop, overlap or match by
        brightness lines up as it is (0), a mirrored crop mirrored (1), a de-rotated match under its variant, none (-1)
        for exact and model pairs."""
        codes = np.asarray(codes).astype(np.int8)
        out = np.where(MatchView.is_derotated(codes), codes - MatchView.DEROTATED, codes)
        out = np.where(codes == MatchView.CROPPED_HFLIP, 1, out)
        return np.where(MatchView.is_partial(codes) | MatchView.by_brightness(codes), 0, out).astype(np.int8)

    @staticmethod
    def describe(code: int) -> str:
        """``identity``, ``hflip``, ..., ``rotated``, ``rotated, hflip``, ``cropped``, ``overlap``,
        ``rotated and cropped``, ``hue shifted``, ``solarized`` or ``""``."""
        code = int(code)
        if code == MatchView.CROPPED:
            return "cropped"
        if code == MatchView.CROPPED_HFLIP:
            return "cropped, hflip"
        if code == MatchView.OVERLAP:
            return "overlap"
        if code in (MatchView.TILTED, MatchView.TILTED_BACK):
            return "rotated and cropped"
        if code in (MatchView.TURNED, MatchView.TURNED_BACK):
            return "rotated"
        if code == MatchView.UPRIGHT:
            return "identity"
        if code == MatchView.VALUE:
            return "hue shifted"
        if code == MatchView.FOLDED:
            return "solarized"
        if code >= MatchView.DEROTATED:
            v = code - MatchView.DEROTATED
            return "rotated" + (f", {VARIANT_NAMES[v]}" if v else "")
        return VARIANT_NAMES[code] if code >= 0 else ""


#: The readings of a pair (:meth:`MatchView.reading`), by name.
READINGS = ("whole", "overlap", "tilted")

#: Variants searched for each ``DetectSettings.transforms`` value.
_TRANSFORM_VARIANTS = {"none": (0,), "flip": (0, 1), "all": tuple(range(N_VARIANTS))}


def transform_variants(transforms: str) -> tuple[int, ...]:
    """The dihedral variants searched for a ``transforms`` setting (``"all"``, ``"flip"``, ``"none"``)."""
    return _TRANSFORM_VARIANTS[transforms]


def apply_dihedral(a: np.ndarray, v: int) -> np.ndarray:
    """Apply dihedral transform ``v`` to the last two axes of ``a``."""
    if v == 0:
        return a
    if v == 1:
        return a[..., :, ::-1]
    if v == 2:
        return a[..., ::-1, :]
    if v == 3:
        return a[..., ::-1, ::-1]
    t = np.swapaxes(a, -1, -2)
    if v == 4:
        return t
    if v == 5:
        return t[..., :, ::-1]  # rotate 90 degrees clockwise
    if v == 6:
        return t[..., ::-1, :]  # rotate 90 degrees counter-clockwise
    return t[..., ::-1, ::-1]


def _embedding_permutations() -> np.ndarray:
    """``perm[v]`` such that ``hog(variant(x, v)) == hog(x)[perm[v]]``."""
    c = THUMB // CELL
    cells = np.arange(c * c).reshape(c, c)
    # bin maps: a flip maps orientation t -> pi - t (bin b -> -b); a transpose t -> pi/2 - t (b -> 4 - b)
    flip_bins = (-np.arange(BINS)) % BINS
    tr_bins = (BINS // 2 - np.arange(BINS)) % BINS
    perms = []
    for v in range(N_VARIANTS):
        cell_map = apply_dihedral(cells, v).reshape(-1)  # new cell k takes old cell cell_map[k]
        if v == 0:
            bins = np.arange(BINS)
        elif v in (1, 2):
            bins = flip_bins
        elif v == 3:
            bins = np.arange(BINS)  # two flips cancel
        elif v == 4:
            bins = tr_bins
        elif v in (5, 6):  # transpose then one flip
            bins = flip_bins[tr_bins]
        else:  # transpose then both flips
            bins = tr_bins
        perms.append((cell_map[:, None] * BINS + bins[None, :]).reshape(-1))
    return np.stack(perms)


_PERMS = _embedding_permutations()


def embedding_variants(emb: np.ndarray, variants) -> np.ndarray:
    """Embeddings of the rotated/flipped images, ``(n, len(variants), EMBED_DIM)``, from the plain ones."""
    emb = np.asarray(emb, dtype=np.float32)
    return np.stack([emb[:, _PERMS[v]] for v in variants], axis=1)


#: Crop views searched for every image (:func:`crop_views`): side as a share of the
#: thumbnail (0.84: a crop keeping 70% of the area) and where the crop sits (centre, corners).
CROP_SIDE = 0.84
#: ... and, for pictures of 64 px or more, tighter ones (0.7: a crop keeping half the area).
CROP_SIDE_TIGHT = 0.7
CROP_PLACES = ((0.5, 0.5), (0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))
#: Stretched crop views, for pictures of 64 px or more: the whole height and a share of the
#: width (left, centre, right), or the whole width and a share of the height, as boxes
#: ``(y0, y1, x0, x1)``. A crop of another shape than the picture's, resized to a fixed size
#: (torchvision's ``RandomResizedCrop``, a square crop of a landscape photo), is the picture
#: stretched along one axis: these views line it up, the alignment's zoom does the rest.
STRETCH_SHARES = (0.75, 0.56)
STRETCH_BOXES = tuple(box for share in STRETCH_SHARES for at in (0.0, 0.5, 1.0)
                      for box in ((0.0, 1.0, at * (1 - share), at * (1 - share) + share),
                                  (at * (1 - share), at * (1 - share) + share, 0.0, 1.0)))


def _sample_axis(lo: np.ndarray, hi: np.ndarray, n: int, side: int):
    """Bilinear sampling of ``side`` points spread over ``[lo, hi]`` (shares of an axis of ``n``
    pixels, one span per row): the lower pixel ``(p, side)`` int64 and the upper's weight."""
    t = (np.arange(side) + 0.5) / side
    u = np.clip((lo[:, None] + t * (hi - lo)[:, None]) * n - 0.5, 0, n - 1)
    u0 = np.minimum(np.floor(u).astype(np.int64), n - 2)
    return u0, (u - u0).astype(np.float32)


def crop_boxes(side: float = CROP_SIDE, places=CROP_PLACES) -> tuple:
    """The boxes ``(y0, y1, x0, x1)`` (shares of the side) of square crops of ``side`` at ``places``."""
    return tuple((fy * (1 - side), fy * (1 - side) + side, fx * (1 - side), fx * (1 - side) + side)
                 for fy, fx in places)


def resampling_matrix(u0: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """``u0.shape + (n,)`` float32: a bilinear sampling of an ``n``-pixel axis as a matrix (one
    per leading index), row ``k`` weighting pixel ``u0[k]`` by ``1 - w[k]`` and the next by
    ``w[k]``, so that ``m @ image`` resamples the rows of an image and ``image @ m.T`` its columns."""
    u0 = np.asarray(u0)
    out = np.zeros(u0.shape + (n,), np.float32)
    at = tuple(np.indices(u0.shape, sparse=True))
    out[(*at, u0)] = 1 - w
    out[(*at, u0 + 1)] += w
    return out


def box_taps(lo: np.ndarray, hi: np.ndarray, n: int, side: int) -> tuple:
    """What :func:`resampling_matrices` holds as matrices, as taps ``(u0, w)`` (each ``(p, side)``):
    each sampled point weighs pixel ``u0`` by ``1 - w`` and the next by ``w``. For
    :func:`sample_rows` and :func:`sample_columns`, which read two pixels where a product reads ``n``."""
    return _sample_axis(np.asarray(lo, np.float64), np.asarray(hi, np.float64), n, side)


def sample_rows(x: np.ndarray, taps: tuple) -> np.ndarray:
    """``resampling_matrix(*taps, n) @ x`` of ``(p, n, m)`` images ``x``: each sampled row read
    from the two rows it weighs (:func:`box_taps`)."""
    u0, w = taps
    at = u0 + (np.arange(len(x)) * x.shape[1])[:, None]  # rows of the images stacked
    stacked = x.reshape(-1, x.shape[-1])
    lo = np.take(stacked, at, axis=0)
    return lo + w[..., None] * (np.take(stacked, at + 1, axis=0) - lo)


def sample_columns(x: np.ndarray, taps: tuple) -> np.ndarray:
    """``x @ resampling_matrix(*taps, n).T`` of ``(p, m, n)`` images ``x`` (:func:`sample_rows`
    of their transposes)."""
    return sample_rows(x.transpose(0, 2, 1), taps).transpose(0, 2, 1)


def resampling_matrices(lo: np.ndarray, hi: np.ndarray, n: int, side: int) -> np.ndarray:
    """``(p, side, n)`` float32: :func:`resampling_matrix` of ``side`` points spread over each
    ``[lo[k], hi[k]]`` (shares of an axis of ``n`` pixels, :func:`_sample_axis`)."""
    return resampling_matrix(*_sample_axis(np.asarray(lo, np.float64), np.asarray(hi, np.float64), n, side), n)


def crop_views(thumbs: np.ndarray, boxes=None) -> np.ndarray:
    """Crops of ``(m, n, n)`` thumbnails enlarged back to n x n (bilinear): ``(m, len(boxes), n, n)``.

    The embedding of a crop of image A is close to that of a cropped copy of A, which the
    whole-image embedding (whose grid cells no longer line up) may miss. ``boxes`` (default:
    :func:`crop_boxes`) are the same for every image, so each is a product of matrices,
    ``rows @ thumbnail @ columns.T`` (:func:`box_views`: one box per image).
    """
    boxes = crop_boxes() if boxes is None else boxes
    t = np.asarray(thumbs, np.float32)
    n = t.shape[-1]
    out = np.empty((len(t), len(boxes), n, n), np.float32)
    for k, (by0, by1, bx0, bx1) in enumerate(boxes):
        rows, cols = (resampling_matrices([lo], [hi], n, n)[0] for lo, hi in ((by0, by1), (bx0, bx1)))
        out[:, k] = np.matmul(np.matmul(rows, t), cols.T)
    return out


def box_views(images: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """Box ``(y0, y1, x0, x1)`` (shares of the side) of each ``(p, [c,] n, n)`` image, enlarged
    bilinearly to ``side`` x ``side``: ``(p, [c,] side, side)`` float32 (the part two
    overlapping tiles have in common), as ``rows @ image @ columns.T``."""
    img = np.asarray(images, np.float32)
    p, n = len(img), img.shape[-1]
    if p == 0:  # no pairs: no views (a reshape of nothing cannot infer its middle axis)
        return np.zeros(img.shape[:-2] + (side, side), np.float32)
    flat = img.reshape(p, -1, n, n)
    boxes = np.asarray(boxes, np.float64)
    rows = resampling_matrices(boxes[:, 0], boxes[:, 1], n, side)[:, None]
    cols = resampling_matrices(boxes[:, 2], boxes[:, 3], n, side)[:, None]
    out = np.matmul(np.matmul(rows, flat), cols.transpose(0, 1, 3, 2))
    return out.reshape(img.shape[:-2] + (side, side))


#: Angles (degrees, counter-clockwise) of the tilted views: every 8.4 degrees, so that any
#: rotation in (3, 45) degrees either way is within 4.2 degrees of one.
TILT_ANGLES = tuple(float(a) * sign for a in (7.2, 15.6, 24.0, 32.4, 40.8) for sign in (1, -1))


#: Pictures whose width and height differ by more than this factor are *oblong*: their tilted
#: views are also cropped square (and, in the evidence, to the largest-area rectangle).
TILT_OBLONG = 1.1


def is_oblong(sizes: np.ndarray) -> np.ndarray:
    """``(m,)`` bool of ``(m, 2)`` width, height: pictures far enough from square (:data:`TILT_OBLONG`)
    for another box than their own shape to crop them otherwise."""
    sizes = np.asarray(sizes, np.float64)
    return np.abs(np.log(sizes[:, 0] / np.maximum(sizes[:, 1], 1))) > np.log(TILT_OBLONG)


#: The upright boxes a tilted view can crop (:func:`tilted_views`): the largest of the picture's
#: own shape, the largest square, the largest in area (another shape: the usual recipe).
TILT_BOXES = ("shape", "square", "area")
#: A tilted view's box cropped tighter: this share of its side (a crop well inside the box,
#: enlarged back).
TILT_TIGHT = 0.88


def _box_size(a: np.ndarray, c: np.ndarray, s: np.ndarray, box: str):
    """Width and height of the largest centred upright ``box`` inside an ``a`` x 1 picture
    turned by an angle of cosine ``c`` and |sine| ``s``."""
    if box == "square":
        side = np.minimum(a, 1) / (c + s)
        return side, side
    if box == "area":
        long_side, short_side = np.maximum(a, 1), np.minimum(a, 1)
        touches_long = short_side <= 2 * s * c * long_side  # only the long sides bound it
        half = 0.5 * short_side
        safe_s = np.maximum(s, 1e-9)
        narrow_w = np.where(a >= 1, half / safe_s, half / c)
        narrow_h = np.where(a >= 1, half / c, half / safe_s)
        det = np.where(np.abs(c * c - s * s) < 1e-9, 1e-9, c * c - s * s)
        return (np.where(touches_long, narrow_w, (a * c - s) / det),
                np.where(touches_long, narrow_h, (c - a * s) / det))
    height = np.minimum(1 / (c + s / a), 1 / (a * s + c))
    return height * a, height


def turned_share(sizes: np.ndarray, angles) -> np.ndarray:
    """``(m,)``: the share of each side of the largest centred box of each picture's own shape
    that stays inside it when it is turned by ``angles`` degrees (one per picture) within its
    own frame. A copy turned so shows no fill there, whatever filled its corners."""
    sizes = np.asarray(sizes, np.float64)
    a = sizes[:, 0] / np.maximum(sizes[:, 1], 1)
    t = np.deg2rad(np.abs(np.asarray(angles, np.float64)))
    return _box_size(a, np.cos(t), np.sin(t), "shape")[1]


def _tilt_grid(aspect: np.ndarray, theta: np.ndarray, n: int, side: int, box: str = "shape", scale: float = 1.0):
    """Where each point of the tilted views samples an ``n`` x ``n`` thumbnail: the upper-left of
    its four pixels (flat index, ``(m, views * side * side)``) and the weights across and down.
    ``aspect`` ``(m,)`` width over height, ``theta`` ``(m, views)`` radians; ``box`` one of
    :data:`TILT_BOXES`, ``scale`` a share of its side (a number, or ``(m, 1)``)."""
    a = aspect[:, None]
    c, s = np.cos(theta), np.sin(theta)
    width, height = _box_size(a, c, np.abs(s), box)
    width, height = width * scale, height * scale
    g = (np.arange(side) + 0.5) / side - 0.5
    # the view's point (x, y), in the picture's pixels of height 1, is the picture's point
    # turned back: Pillow turns counter-clockwise on screen (y down)
    x = width[..., None, None] * g[None, None, None, :]
    y = height[..., None, None] * g[None, None, :, None]
    c, s = c[..., None, None], s[..., None, None]
    u = np.clip(((c * x - s * y) / a[..., None, None] + 0.5) * n - 0.5, 0, n - 1)
    v = np.clip((s * x + c * y + 0.5) * n - 0.5, 0, n - 1)
    u0, v0 = np.minimum(np.floor(u).astype(np.int64), n - 2), np.minimum(np.floor(v).astype(np.int64), n - 2)
    m = len(aspect)
    return ((v0 * n + u0).reshape(m, -1), (u - u0).astype(np.float32).reshape(m, -1),
            (v - v0).astype(np.float32).reshape(m, -1))


def _bilinear(pixels: np.ndarray, at: np.ndarray, wu: np.ndarray, wv: np.ndarray, n: int) -> np.ndarray:
    """``pixels`` ``(m, c, n * n)`` sampled at ``at``/``wu``/``wv`` (one row for all, or one per image)."""
    if at.ndim == 1:
        def take(shift):
            return pixels[..., at + shift]
    else:
        at, wu, wv = at[:, None], wu[:, None], wv[:, None]

        def take(shift):
            return np.take_along_axis(pixels, np.broadcast_to(at + shift, pixels.shape[:2] + at.shape[2:]), axis=2)
    return (take(0) * (1 - wu) + take(1) * wu) * (1 - wv) + (take(n) * (1 - wu) + take(n + 1) * wu) * wv


def tilted_views(images: np.ndarray, sizes: np.ndarray, angles, side: int | None = None, box: str = "shape",
                 scale: float = 1.0) -> np.ndarray:
    """Each ``(m, [c,] n, n)`` thumbnail's picture turned by each angle (degrees,
    counter-clockwise, as Pillow's ``rotate``) and cropped to the largest centred upright
    ``box`` inside it (:data:`TILT_BOXES`: of the picture's own shape, square, or of the largest
    area; ``scale`` times its side), sampled bilinearly at ``side`` (default ``n``) a side.

    A thumbnail squeezes its picture to a square, so the turn is made in the picture's own
    proportions (``sizes``: ``(m, 2)`` width, height). ``angles``: a tuple of angles for every
    image (``(m, len(angles), [c,] side, side)`` float32), or an array of one angle per image
    (``(m, [c,] side, side)``; then ``scale`` may be one per image too).
    """
    img = np.asarray(images, np.float32)
    m, n = len(img), img.shape[-1]
    side = side or n
    lead = (m, len(angles)) if isinstance(angles, tuple) else (m,)
    if m == 0:
        return np.zeros(lead + img.shape[1:-2] + (side, side), np.float32)
    pixels = img.reshape(m, -1, n * n)
    sizes = np.asarray(sizes, np.float64)
    aspect = sizes[:, 0] / np.maximum(sizes[:, 1], 1)
    if isinstance(angles, tuple):  # one grid for every image of one aspect (to 1/1000)
        theta = np.deg2rad(np.asarray(angles, np.float64))
        out = np.empty((m, pixels.shape[1], len(angles) * side * side), np.float32)
        shapes, which = np.unique(np.round(aspect, 3), return_inverse=True)
        for g, shape in enumerate(shapes):
            rows = np.flatnonzero(which.ravel() == g)
            at, wu, wv = (x[0] for x in _tilt_grid(np.array([shape]), theta[None, :], n, side, box, scale))
            out[rows] = _bilinear(pixels[rows], at, wu, wv, n)
        out = out.reshape(m, pixels.shape[1], len(angles), side, side).swapaxes(1, 2)
        return np.ascontiguousarray(out).reshape(lead + img.shape[1:-2] + (side, side))
    theta = np.deg2rad(np.asarray(angles, np.float64)).reshape(m, 1)
    scale = np.broadcast_to(np.asarray(scale, np.float64), (m,)).reshape(m, 1)
    out = _bilinear(pixels, *_tilt_grid(aspect, theta, n, side, box, scale), n)
    return out.reshape(lead + img.shape[1:-2] + (side, side))
