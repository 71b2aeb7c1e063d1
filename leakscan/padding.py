"""Padding: the flat canvas around a rotated, letterboxed, framed or scanned picture.

Padding's straight edges would make any two padded pictures line up, so the verification
leaves it out (:func:`padding_weights`: 0 on padding, 1 on the picture), and its shape tells
the rotation feature (:mod:`leakscan.rotation`) by which angle a picture was turned. A flat
border of any colour (a letterbox, a pillarbox, a frame, bars padding to a square), or a
caption bar drawn over an edge, is trimmed off to give the picture itself (:func:`unpadded`),
which is searched as a view of the image (:func:`leakscan.views.canvas_view`).

A *shared overlay* is not picture either: a logo, a frame, a caption bar or a watermark drawn
at the same place on most pictures of a dataset (:func:`shared_overlay`). Two different photos
under it line up by it, so the verification leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["padding_weights", "flat_border", "unpadded", "unpadded_all", "caption_band", "border_mask", "NO_BORDER",
           "SharedOverlay", "shared_overlay"]

#: The padding box of a canvas without a border: all of it is picture.
NO_BORDER = (0.0, 0.0, 1.0, 1.0)


def padding_weights(thumbs: np.ndarray, tol: int = 6, min_frac: float = 0.05,
                    max_frac: float = 0.7, grow: bool = True, border=None) -> np.ndarray | None:
    """Per-pixel weights, 0 on padding and 1 on the picture, of ``(p, n, n)`` uint8 thumbnails.

    Padding is either of:

    * a flat black or white region that touches the border: the canvas around a rotated
      picture, a scan's black surround. Its straight edges would otherwise make any two
      rotated pictures line up. Found as the connected regions, touching the border, within
      ``tol`` grey levels of the median border value when that value is near black (<= 24)
      or white (>= 231), when they cover ``min_frac`` to ``max_frac`` of the thumbnail;
    * ``border`` (``(p, n, n)`` bool, :func:`border_mask`): the border :func:`unpadded`
      found (a letterbox, a frame, a caption bar), unless it covers more than ``max_frac``.

    Grown by one pixel (``grow``) to cover resampling ringing. Returns None when no thumbnail
    has padding.
    """
    t = np.asarray(thumbs)
    p, n, _ = t.shape
    if p == 0:
        return None
    pad = np.zeros(t.shape, bool)
    if border is not None:
        pad |= np.asarray(border, bool) & (np.asarray(border).reshape(p, -1).mean(axis=1) <= max_frac)[:, None, None]
    extreme = _extreme_padding(t, tol, min_frac, max_frac)
    if extreme is not None:
        pad[extreme[0]] |= extreme[1]
    has = pad.reshape(p, -1).any(axis=1)
    if not has.any():
        return None
    if grow:
        from scipy import ndimage  # noqa: PLC0415

        structure = np.zeros((3, 3, 3), bool)
        structure[1] = ndimage.generate_binary_structure(2, 1)
        pad[has] = ndimage.binary_dilation(pad[has], structure=structure)
    return (~pad).astype(np.float32)


def border_mask(boxes: np.ndarray, n: int) -> np.ndarray:
    """``(p, n, n)`` bool: the pixels of an ``n``-pixel thumbnail outside each padding box
    (``(p, 4)`` left, top, right, bottom, shares of the side; :data:`NO_BORDER`: none)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    centre = (np.arange(n) + 0.5) / n
    outside_x = (centre[None, :] < b[:, 0:1]) | (centre[None, :] > b[:, 2:3])
    outside_y = (centre[None, :] < b[:, 1:2]) | (centre[None, :] > b[:, 3:4])
    return outside_y[:, :, None] | outside_x[:, None, :]


def flat_ground(thumbs: np.ndarray, tol: int = 6) -> np.ndarray:
    """``(p, n, n)`` bool: the flat black or white region touching the border of each uint8
    thumbnail, whatever its size (the ground a picture stands on, or padding)."""
    t = np.asarray(thumbs)
    out = np.zeros(t.shape, bool)
    found = _extreme_padding(t, tol, 0.0, 1.0) if len(t) else None
    if found is not None:
        out[found[0]] = found[1]
    return out


def median(a, axis=None) -> np.ndarray | float:
    """``np.median`` of the small integer arrays this module looks at (a line, a border, four
    corners), from one sort: the same values without ``np.median``'s overhead, which is most
    of its cost on a few dozen pixels (it was a sixth of the feature extraction on CIFAR-10)."""
    a = np.asarray(a)
    if axis is None:
        a, axis = a.ravel(), 0
    s = np.sort(a, axis=axis)
    before = (slice(None),) * (axis % s.ndim)
    n = s.shape[axis]
    return (s[before + ((n - 1) // 2,)].astype(np.float64) + s[before + (n // 2,)]) / 2.0


def _extreme_padding(t: np.ndarray, tol: int, min_frac: float, max_frac: float):
    """``(rows, masks)``: the flat black or white padding of the thumbnails that have it, or None."""
    from scipy import ndimage  # noqa: PLC0415

    n = t.shape[1]
    border = np.concatenate([t[:, 0, :], t[:, -1, :], t[:, 1:-1, 0], t[:, 1:-1, -1]], axis=1).astype(np.int16)
    fill = median(border, axis=1)
    extreme = (fill <= 24) | (fill >= 231)
    # padding runs along the border: at least a tenth of the border pixels are the fill
    extreme &= (np.abs(border - fill[:, None]) <= tol).mean(axis=1) >= 0.1
    cand = np.flatnonzero(extreme)
    if len(cand) == 0:
        return None
    t = t[cand]
    fill = fill[cand]
    near = np.abs(t.astype(np.int16) - fill[:, None, None]) <= tol
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    labels, count = ndimage.label(near, structure=structure)
    if count == 0:
        return None
    edge = np.zeros((n, n), bool)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    touching = np.unique(labels[:, edge])
    touching = touching[touching > 0]
    pad = np.isin(labels, touching)
    frac = pad.reshape(len(cand), -1).mean(axis=1)
    # a picture that is mostly "padding" is a dark (or white) picture, not a padded one
    pad[(frac < min_frac) | (frac > max_frac)] = False
    return cand, pad


#: Least share of the line just inside a border that is unlike the border (by three times
#: ``BORDER_TOL``) for the border to count as padding in the verification.
PICTURE_EDGE = 0.2


#: A border row or column is flat when this share of its pixels is within ``BORDER_TOL`` of
#: the side's colour in every channel.
BORDER_FLAT = 0.98
BORDER_TOL = 4
#: Lines at most (of the look, ``_BORDER_LOOK`` px) past a flat border counted as its ringing:
#: at least half their pixels within three times ``BORDER_TOL`` of its colour.
RINGING = 3
#: Least depth (share of the side) of a flat border worth trimming, and least share of the
#: canvas the trimmed border covers in all.
MIN_BORDER = 0.02
MIN_TRIMMED = 0.05
#: Least share of the canvas left for the picture: below it the "border" is the picture.
MIN_CONTENT = 0.2


def flat_border(rgb: np.ndarray) -> tuple[float, float, float, float] | None:
    """``(left, top, right, bottom)`` of the picture inside a flat border, as shares of the
    width and height of ``rgb`` (``(h, w, 3)``), or None when there is no border to trim.

    A letterbox, a pillarbox, a frame or the bars of padding to a square: rows and columns
    from an edge inwards that are one flat colour (any colour, each side its own), such as
    ``PIL.ImageOps.pad``, ``numpy.pad`` or a canvas-and-paste leave. Each side's colour is the
    median of its outermost line. A caption bar drawn over an edge (:func:`caption_band`)
    counts as border too.
    """
    found = _border(rgb)
    return None if found is None else found[0]


def _sides(lines: np.ndarray) -> list:
    """For each side of ``lines`` (``(s, 3, n, m)``: its lines from that side in, per colour
    plane), how deep the border on it is and whether the picture starts at a straight edge
    there: flat lines in the first one's colour, plus the few lines of ringing (JPEG,
    resampling) where the border meets the picture; or a caption bar."""
    s, _, n, m = lines.shape
    colour = np.rint(median(lines[:, :, 0, :], axis=-1)).astype(np.int16)  # (s, 3) each outer line's
    dist = np.abs(lines[:, 0] - colour[:, 0, None, None])  # (s, n, m)
    for c in (1, 2):
        np.maximum(dist, np.abs(lines[:, c] - colour[:, c, None, None]), out=dist)
    near = np.add.reduce(dist <= 3 * BORDER_TOL, axis=2) / m
    flat = (np.add.reduce(dist <= BORDER_TOL, axis=2) >= BORDER_FLAT * m).tolist()
    bands = caption_band(near).tolist()
    near_lines = near.tolist()
    out = []
    for k in range(s):
        d = flat[k].index(False) if False in flat[k] else n  # the first line not flat
        if d:
            ringing = [v >= 0.5 for v in near_lines[k][d:d + RINGING]]
            d += ringing.index(False) if False in ringing else len(ringing)
        if bands[k] > d:
            out.append((int(bands[k]), True))
            continue
        straight = d < n and 1.0 - near_lines[k][d] >= PICTURE_EDGE
        out.append((d, bool(straight)))
    return out


def _flat_outer_lines(a: np.ndarray) -> np.ndarray:
    """``(p,)`` bool over ``(p, h, w, 3)`` pictures: is one outer line of each mostly its own colour
    (:data:`BAND_LINE` of it within three times ``BORDER_TOL``, as :func:`_sides` reads it)? A
    border of any kind, flat or a caption bar, starts with such a line: without one,
    :func:`_border` finds none."""
    p, h, w = a.shape[:3]
    rows, cols = a[:, [0, h - 1], :, :3], a[:, :, [0, w - 1], :3].transpose(0, 2, 1, 3)
    out = np.zeros(p, bool)
    for lines in ((rows, cols) if h != w else (np.concatenate([rows, cols], axis=1),)):
        lines = lines.astype(np.int16)  # (p, k, n, 3): k lines of one length at a time
        colour = np.rint(median(lines, axis=2)).astype(np.int16)
        far = np.maximum.reduce(np.abs(lines - colour[:, :, None]), axis=3) > 3 * BORDER_TOL
        n = lines.shape[2]
        out |= (n - np.add.reduce(far, axis=2).min(axis=1)) / n >= BAND_LINE  # the nearest line's share
    return out


def _border(rgb: np.ndarray):
    """``(box, padding)``: :func:`flat_border`'s box, and the same box with only the sides
    where the picture starts at a straight edge (:data:`PICTURE_EDGE`): the border the
    verification may leave out (a sky fading into its picture is picture). None: no border."""
    return _borders(np.asarray(rgb)[None])[0]


def _borders(looks: np.ndarray) -> list:
    """:func:`_border` of each of ``(p, h, w, 3)`` pictures of one size, read together."""
    a = np.asarray(looks)
    p, h, w = a.shape[:3]
    out: list = [None] * p
    if h < 8 or w < 8:
        return out
    cand = np.flatnonzero(_flat_outer_lines(a))
    if not len(cand):
        return out
    rgb16 = a[cand, :, :, :3].transpose(0, 3, 1, 2).astype(np.int16)  # (q, 3, h, w)
    cols = rgb16.transpose(0, 1, 3, 2)
    q = len(cand)

    def stacked(*sides):  # each picture's sides' lines from that side in: (q * side, plane, line, pixel)
        return np.stack(sides, axis=1).reshape((q * len(sides),) + sides[0].shape[1:])
    if h == w:  # all four sides at once: left, top, right, bottom
        found = _sides(stacked(cols, rgb16, cols[:, :, ::-1], rgb16[:, :, ::-1]))
        found = [found[4 * k:4 * k + 4] for k in range(q)]
    else:  # the sides of one length at a time
        across, down = _sides(stacked(cols, cols[:, :, ::-1])), _sides(stacked(rgb16, rgb16[:, :, ::-1]))
        found = [[across[2 * k], down[2 * k], across[2 * k + 1], down[2 * k + 1]] for k in range(q)]
    for k, sides_found in zip(cand.tolist(), found):
        out[k] = _box_of(sides_found, w, h)
    return out


def _box_of(found: list, w: int, h: int):
    """``(box, padding)`` from the four sides :func:`_sides` read (left, top, right, bottom), or None."""
    sides = np.array([d for d, _ in found], np.float64) / np.array([w, h, w, h])
    sides[sides < MIN_BORDER] = 0.0
    x0, y0, x1, y1 = sides[0], sides[1], 1.0 - sides[2], 1.0 - sides[3]
    content = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    if content < MIN_CONTENT or 1.0 - content < MIN_TRIMMED:
        return None
    pad = np.where([straight for _, straight in found], sides, 0.0)
    return ((float(x0), float(y0), float(x1), float(y1)),
            (float(pad[0]), float(pad[1]), float(1.0 - pad[2]), float(1.0 - pad[3])))


#: A caption bar drawn over an edge of the picture: lines from that edge in of which this
#: share is within three times ``BORDER_TOL`` of the bar's colour (the rest is its text), at
#: most ``BAND_MAX`` of the side deep, ending at a straight edge (``BAND_EDGE`` of the line
#: just inside unlike the bar).
BAND_FLAT = 0.6
BAND_LINE = 0.9
BAND_MAX = 0.3
BAND_EDGE = 0.8


def caption_band(near: np.ndarray) -> np.ndarray:
    """Depth (lines) of a caption bar drawn over an edge of the picture, per row of ``near``
    (``(p, n)``: the share of each line, outermost first, in the outermost line's colour), 0
    when there is none.

    A caption bar is one colour with text on it: its outer line and the line where it meets
    the picture are flat (:data:`BAND_LINE`; one line between may mix the two), its lines on
    the whole mostly so (:data:`BAND_FLAT`), and the picture starts at a straight edge
    (:data:`BAND_EDGE` of the line unlike the bar). At most :data:`BAND_MAX` of the side deep.
    """
    near = np.asarray(near, np.float64)
    p, n = near.shape
    top = min(n - 1, int(BAND_MAX * n))
    out = np.zeros(p, np.int64)
    if top < 2:
        return out
    d = np.arange(2, top + 1)
    # the picture starts at line d; the line before is the bar's, or one line mixes the two
    inner = (near[:, d - 1] >= BAND_LINE) | ((d >= 3) & (near[:, np.maximum(d - 2, 0)] >= BAND_LINE))
    edge = inner & (near[:, d] <= 1 - BAND_EDGE)
    has = edge.any(axis=1) & (near[:, 0] >= BAND_LINE)
    depth = d[np.argmax(edge, axis=1)]
    mean = np.cumsum(near, axis=1)[np.arange(p), depth - 1] / depth
    return np.where(has & (mean >= BAND_FLAT), depth, 0)


#: Largest side of the copy of an image its flat border is looked for on.
_BORDER_LOOK = 128
#: The first look (:func:`_may_have_borders`): this share of one of the thumbnail's outer lines
#: within twice ``BORDER_TOL`` of its median; or this share, and the same median three lines deep.
LOOK_FLAT = 0.5
LOOK_BAND = 0.3


def _may_have_borders(smalls: np.ndarray) -> np.ndarray:
    """The first look, ``(p,)`` bool over ``(p, 32, 32)`` thumbnails: is one side of each flat
    enough to be a border (:data:`LOOK_FLAT` of its outer line near the line's median), or one
    colour three lines deep (the median of a caption bar's lines, whatever text runs through them)?"""
    s = np.asarray(smalls, np.int16)
    tol = 2 * BORDER_TOL
    out = np.zeros(len(s), bool)
    across = s.transpose(0, 2, 1)
    for lines in (s, s[:, ::-1], across, across[:, ::-1]):
        m = median(lines[:, :3], axis=2)  # (p, 3): the medians of the three outer lines
        near = np.add.reduce(np.abs(lines[:, 0] - m[:, :1]) <= tol, axis=1) / lines.shape[2]
        band = (near >= LOOK_BAND) & (np.abs(m[:, 1] - m[:, 0]) <= tol) & (np.abs(m[:, 2] - m[:, 0]) <= tol)
        out |= (near >= LOOK_FLAT) | band
    return out


def unpadded(img, small: np.ndarray):
    """``(picture, padding)``: the picture inside ``img``'s flat border (a letterbox,
    pillarbox, frame, padding to a square or caption bar: :func:`flat_border`), cropped out of
    ``img``, and the box ``(left, top, right, bottom)`` (shares of the canvas) outside which
    the canvas is padding the verification leaves out; None when it has no border.

    ``small`` is the image's 32x32 grayscale thumbnail: a cheap first look
    (:func:`_may_have_borders`), so a picture with busy edges costs nothing more here.
    """
    return unpadded_all([img], np.asarray(small)[None])[0]


def unpadded_all(imgs: list, smalls: np.ndarray) -> list:
    """:func:`unpadded` of each image (``smalls``: their ``(p, 32, 32)`` thumbnails), the
    pictures of one size read together."""
    from PIL import Image  # noqa: PLC0415

    out: list = [None] * len(imgs)
    looks: dict = {}  # shape -> [(row, look)]
    for k in np.flatnonzero(_may_have_borders(smalls)).tolist():
        W, H = imgs[k].size
        look = imgs[k].convert("RGB")
        if max(W, H) > _BORDER_LOOK:
            look = look.resize((min(W, _BORDER_LOOK), min(H, _BORDER_LOOK)), Image.BOX)
        look = np.asarray(look)
        looks.setdefault(look.shape, []).append((k, look))
    for same_size in looks.values():
        for (k, _), found in zip(same_size, _borders(np.stack([look for _, look in same_size]))):
            if found is None:
                continue
            (x0, y0, x1, y1), padding = found
            W, H = imgs[k].size
            crop = (int(round(x0 * W)), int(round(y0 * H)), int(round(x1 * W)), int(round(y1 * H)))
            if crop[2] - crop[0] >= 8 and crop[3] - crop[1] >= 8:
                out[k] = imgs[k].crop(crop), padding
    return out


#: Grey levels within which two thumbnails show the same overlay pixel (JPEG and resampling).
OVERLAY_TOL = 12
#: An overlay pixel is shown alike by at least this share of the images ...
OVERLAY_SHARE = 0.5
#: ... within this share of how far a typical pixel is from its median (its median absolute
#: deviation over the images), at least 2 grey levels and at most OVERLAY_TOL.
OVERLAY_TIGHT = 0.25
#: Grey levels of detail (a pixel less its 3x3 mean) that make the overlay a drawn thing (a
#: logo, letters, a frame's edge), not a flat ground that many pictures share (a black scan
#: surround, a white studio backdrop: padding's business, or the pictures' own).
OVERLAY_DETAIL = 12
#: Fewest pixels of such detail (of the 32x32 thumbnail) that make an overlay.
OVERLAY_MIN_DETAIL = 4
#: Fewest pictures an overlay is looked for in: among a few, some pixels agree by chance (random
#: sets of 2-8 of the fixtures' photos "shared an overlay" in 48-100% of 300 draws, 10 in 5%,
#: 12 or more in none).
OVERLAY_MIN_IMAGES = 16
#: An overlay covers less than this share of the thumbnail: when more of it is the same in
#: most pictures (one static camera's frames, copies of one picture), that is the picture.
OVERLAY_MAX_SHARE = 0.5
#: A picture carries the overlay when it shows at least this share of its pixels within
#: twice :data:`OVERLAY_TOL` of the overlay.
OVERLAY_CARRIED = 0.5


@dataclass(frozen=True)
class SharedOverlay:
    """What most pictures of a dataset show at the same place (:func:`shared_overlay`):
    ``template`` (``(n, n)`` float32, the median thumbnail) and ``region`` (``(n, n)`` bool,
    the overlay's pixels, grown by one pixel to cover resampling)."""

    template: np.ndarray
    region: np.ndarray

    @property
    def share(self) -> float:
        """The share of the thumbnail the overlay covers."""
        return float(self.region.mean())

    def carried(self, thumbs: np.ndarray) -> np.ndarray:
        """``(p,)`` bool: do the ``(p, n, n)`` thumbnails carry the overlay?"""
        flat = np.asarray(thumbs).reshape(len(thumbs), -1)
        out = np.zeros(len(flat), bool)
        for start in range(0, len(flat), 65_536):  # in blocks: a million thumbnails as floats are 4 GB
            t = flat[start:start + 65_536, self.region.ravel()].astype(np.float32)
            out[start:start + len(t)] = (np.abs(t - self.template[self.region]) <= 2 * OVERLAY_TOL).mean(axis=1) \
                >= OVERLAY_CARRIED
        return out

    def masks(self, p: int) -> np.ndarray:
        """``(p, n, n)`` bool: the overlay's pixels, for ``p`` pictures. Every picture is
        compared without them: most carry the overlay, and one read as not carrying it (a
        blended logo over a bright picture) must not line up by it with one that does."""
        return np.broadcast_to(self.region, (p,) + self.region.shape)


def shared_overlay(thumbs: np.ndarray) -> SharedOverlay | None:
    """The overlay most of the ``(p, n, n)`` uint8 thumbnails show at the same place, or None.

    Its pixels are those at least :data:`OVERLAY_SHARE` of the thumbnails show far closer to
    their median than a typical pixel is (:data:`OVERLAY_TIGHT`), in one piece with pixels
    whose detail they share (at least :data:`OVERLAY_DETAIL` grey levels, alike within half
    :data:`OVERLAY_TOL`): a logo's letters, a frame's edge, a caption's text, and the flat
    parts around them. None
    unless at least :data:`OVERLAY_MIN_DETAIL` pixels of detail are shared and the overlay
    covers less than :data:`OVERLAY_MAX_SHARE` of the thumbnail, and none among fewer than
    :data:`OVERLAY_MIN_IMAGES` thumbnails.

    >>> rng = np.random.default_rng(0)
    >>> photos = rng.integers(0, 256, (40, 32, 32)).astype(np.uint8)
    >>> shared_overlay(photos) is None
    True
    >>> photos[:30, 26:, :] = 30                        # a dark caption bar on 30 of the 40
    >>> photos[:30, 28:30, 4:20:2] = 230                # with light letters on it
    >>> found = shared_overlay(photos)
    >>> round(found.share, 2), int(found.carried(photos).sum())
    (0.22, 30)
    """
    from scipy import ndimage  # noqa: PLC0415 - lazy: keeps `import leakscan` light

    t = np.asarray(thumbs, np.float32)
    if len(t) < OVERLAY_MIN_IMAGES:
        return None
    detail = t - ndimage.uniform_filter(t, size=(1, 3, 3), mode="nearest")
    typical = np.median(detail, axis=0)
    shared_detail = ((np.abs(typical) >= OVERLAY_DETAIL)
                     & ((np.abs(detail - typical) <= OVERLAY_TOL / 2).mean(axis=0) >= OVERLAY_SHARE))
    if shared_detail.sum() < OVERLAY_MIN_DETAIL:
        return None
    template = np.median(t, axis=0)
    gap = np.abs(t - template)
    # alike: far more alike than the pictures are (low-contrast grey pictures are all alike
    # within a few grey levels; an opaque overlay's pixels are alike within JPEG's error)
    tol = np.clip(np.median(np.median(gap, axis=0)) * OVERLAY_TIGHT, 2, OVERLAY_TOL)
    alike = (gap <= tol).mean(axis=0) >= OVERLAY_SHARE
    parts, _ = ndimage.label(alike | shared_detail)
    region = np.isin(parts, np.unique(parts[shared_detail]))
    region = ndimage.binary_dilation(region)
    if region.mean() >= OVERLAY_MAX_SHARE:
        return None
    return SharedOverlay(template=template.astype(np.float32), region=region)
