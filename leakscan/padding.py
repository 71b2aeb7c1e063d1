"""Padding: the flat canvas around a rotated, letterboxed, framed or scanned picture.

Padding's straight edges would make any two padded pictures line up, so the verification
leaves it out (:func:`padding_weights`: 0 on padding, 1 on the picture), and its shape tells
the rotation feature (:mod:`leakscan.rotation`) by which angle a picture was turned. A flat
border of any colour (a letterbox, a pillarbox, a frame, bars padding to a square) is
trimmed off to give the picture itself (:func:`unpadded`), which is searched as a view of
the image (:func:`leakscan.views.canvas_view`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["padding_weights", "flat_border", "unpadded"]


def padding_weights(thumbs: np.ndarray, tol: int = 6, min_frac: float = 0.05,
                    max_frac: float = 0.7, grow: bool = True, bordered=None) -> np.ndarray | None:
    """Per-pixel weights, 0 on padding and 1 on the picture, of ``(p, n, n)`` uint8 thumbnails.

    Padding is either of:

    * a flat black or white region that touches the border: the canvas around a rotated
      picture, a scan's black surround. Its straight edges would otherwise make any two
      rotated pictures line up. Found as the connected region, touching the border, within
      ``tol`` grey levels of the median border value when that value is near black (<= 24)
      or white (>= 231), when it covers ``min_frac`` to ``max_frac`` of the thumbnail;
    * a flat border of any colour (letterbox, pillarbox, frame: :func:`_border_lines`), on
      the thumbnails ``bordered`` marks (``(p,)`` bool: images whose border
      :func:`unpadded` trims; a sky or a wall at an image's edge is picture, not padding).

    Grown by one pixel (``grow``) to cover resampling ringing. Returns None when no thumbnail
    has padding.
    """
    t = np.asarray(thumbs)
    p, n, _ = t.shape
    if p == 0:
        return None
    pad = np.zeros(t.shape, bool)
    if bordered is not None and np.any(bordered):
        rows = np.flatnonzero(bordered)
        pad[rows] = _border_lines(t[rows], tol, max_frac)
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


def _extreme_padding(t: np.ndarray, tol: int, min_frac: float, max_frac: float):
    """``(rows, masks)``: the flat black or white padding of the thumbnails that have it, or None."""
    from scipy import ndimage  # noqa: PLC0415

    n = t.shape[1]
    border = np.concatenate([t[:, 0, :], t[:, -1, :], t[:, 1:-1, 0], t[:, 1:-1, -1]], axis=1).astype(np.int16)
    fill = np.median(border, axis=1)
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


def _border_lines(t: np.ndarray, tol: int, max_frac: float) -> np.ndarray:
    """``(p, n, n)`` mask of the flat border of ``(p, n, n)`` thumbnails: from each side, the
    lines (at least two) whose pixels are nearly all within ``tol`` of that side's outermost
    line's median, when the picture starts at a straight edge (:data:`PICTURE_EDGE`); none
    where they would cover more than ``max_frac`` of the thumbnail."""
    p, n, _ = t.shape
    a = t.astype(np.int16)
    pad = np.zeros((p, n, n), bool)
    for side in range(4):
        lines = np.rot90(a, side, axes=(1, 2))  # side 0: rows from the top
        colour = np.median(lines[:, 0, :], axis=1)
        flat = (np.abs(lines - colour[:, None, None]) <= tol).mean(axis=2) >= BORDER_FLAT_THUMB
        depth = np.where(flat.all(axis=1), n, np.argmin(flat, axis=1))
        # padding ends at a straight edge: two lines further in, the picture fills much of
        # the line (a sky or a dark surround fades into its picture here and there)
        inside = lines[np.arange(p), np.minimum(depth + 1, n - 1)]
        straight = (np.abs(inside - colour[:, None]) > 3 * tol).mean(axis=1) >= PICTURE_EDGE
        depth[(depth < 2) | ~straight] = 0
        mask = np.arange(n)[None, :] < depth[:, None]  # (p, n) lines of the border
        view = np.rot90(pad, side, axes=(1, 2))
        view |= mask[:, :, None]
    pad[pad.reshape(p, -1).mean(axis=1) > max_frac] = False
    return pad


#: A thumbnail line is flat border when this share of its pixels is within the tolerance.
BORDER_FLAT_THUMB = 0.9
#: Least share of the line just inside a border that is unlike the border (by three times
#: the tolerance) for the border to count as padding in the verification.
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
    median of its outermost line.
    """
    a = np.asarray(rgb).astype(np.int16)
    h, w = a.shape[:2]
    if h < 8 or w < 8:
        return None

    def depth(lines: np.ndarray) -> int:
        """How many of ``lines`` (``(k, m, 3)``, outermost first) are flat in the first one's colour,
        plus the few lines of ringing (JPEG, resampling) where the border meets the picture."""
        colour = np.median(lines[0], axis=0)
        dist = np.abs(lines - colour).max(axis=2)
        flat = (dist <= BORDER_TOL).mean(axis=1) >= BORDER_FLAT
        d = int(np.argmin(flat)) if not flat.all() else len(flat)
        if d == 0:
            return 0
        ringing = (dist[d:d + RINGING] <= 3 * BORDER_TOL).mean(axis=1) >= 0.5
        return d + (int(np.argmin(ringing)) if not ringing.all() else len(ringing))

    top = depth(a)
    bottom = depth(a[::-1])
    left = depth(a.transpose(1, 0, 2))
    right = depth(a.transpose(1, 0, 2)[::-1])
    sides = np.array([left / w, top / h, right / w, bottom / h])
    sides[sides < MIN_BORDER] = 0.0
    x0, y0, x1, y1 = sides[0], sides[1], 1.0 - sides[2], 1.0 - sides[3]
    content = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    if content < MIN_CONTENT or 1.0 - content < MIN_TRIMMED:
        return None
    return float(x0), float(y0), float(x1), float(y1)


#: Largest side of the copy of an image its flat border is looked for on.
_BORDER_LOOK = 128


def unpadded(img, small: np.ndarray):
    """The picture inside ``img``'s flat border (a letterbox, pillarbox, frame or padding to a
    square: :func:`flat_border`), cropped out of ``img``; None when it has none.

    ``small`` is the image's 32x32 grayscale thumbnail: a cheap first look (one of its outer
    lines must be flat), so most photos cost nothing here.
    """
    from PIL import Image  # noqa: PLC0415

    s = np.asarray(small, np.int16)
    if min(int(line.max()) - int(line.min()) for line in (s[0], s[-1], s[:, 0], s[:, -1])) > 2 * BORDER_TOL:
        return None
    W, H = img.size
    look = img.convert("RGB")
    if max(W, H) > _BORDER_LOOK:
        look = look.resize((min(W, _BORDER_LOOK), min(H, _BORDER_LOOK)), Image.BOX)
    box = flat_border(np.asarray(look))
    if box is None:
        return None
    x0, y0, x1, y1 = box
    crop = (int(round(x0 * W)), int(round(y0 * H)), int(round(x1 * W)), int(round(y1 * H)))
    if crop[2] - crop[0] < 8 or crop[3] - crop[1] < 8:
        return None
    return img.crop(crop)
