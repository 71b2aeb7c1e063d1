"""Copies rotated by an arbitrary angle: find the angle from the padding, and undo it.

A picture rotated by an angle that is not a multiple of 90 degrees ends up on a larger
canvas (``expand``, as Pillow's ``rotate(..., expand=True)`` and most editors do) or on a
canvas of the same size with its corners cut off (Pillow's default, most augmentation
code); either way the uncovered corners are *padding*: flat regions of one colour (black,
white, the picture's edge colour, any other) at the four corners of the canvas. Their shape
gives the angle. :func:`derotate` fits the picture area of the two rotation models, for
every angle of 3 to 45 degrees either way, to the padding of a 128x128 version of the image, checks
that no upright rectangle (a letterbox, a frame, a flat background) explains it as well,
and when the best fit is good rotates the image back. On an expanded canvas it crops the
original picture out; on a same-size canvas the corners the rotation cut off are lost, so
they are filled with the picture mirrored at the canvas edge (its texture, no hard edge
for the embedding to see). The features of that *de-rotated view* are searched like those of any
other image (their own rotations/flips included, which covers the other quadrants).

Only images whose four corners agree (or whose border is flat black or white) are
examined, so this costs almost nothing on ordinary photos. Not covered here: a rotation whose
corners were filled by repeating the edge pixels (``scipy.ndimage.rotate(mode="nearest")``,
``skimage.transform.rotate(mode="edge")``) rather than with one colour, and a rotated picture
cropped until no padding is left (the tilted views find that one:
:func:`leakscan.views.tilted_views`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from .padding import median, padding_weights

__all__ = ["derotate", "derotate_on", "canvas_fills", "content_mask", "padding_weights", "MIN_ANGLE", "MIN_IOU"]

#: Rotations smaller than this (degrees) are left to the zoom/shift tolerance of the search.
MIN_ANGLE = 3.0
#: Least intersection-over-union of the predicted and the observed picture area.
MIN_IOU = 0.7
_FIT = 128


def _canvas_to_original(theta: float, W: float, H: float, expand: bool):
    """Size (w, h) of the picture that, rotated by ``theta``, gives a W x H canvas; None if impossible."""
    if not expand:
        return W, H
    t = np.deg2rad(theta)
    c, s = abs(np.cos(t)), abs(np.sin(t))
    det = c * c - s * s
    if abs(det) < 1e-3:
        return None
    w, h = (W * c - H * s) / det, (H * c - W * s) / det
    if w <= 0 or h <= 0:
        return None
    return w, h


@lru_cache(maxsize=64)
def _masks(aspect: float, n: int, expand: bool, angles: tuple) -> np.ndarray:
    """:func:`content_mask` of each angle (all False where none is possible), stacked as
    ``(angles, n * n)`` (read-only: cached, a search's coarse or fine angles at most 180 KB)."""
    masks = (content_mask(a, aspect, 1.0, expand, n) for a in angles)
    out = np.stack([np.zeros((n, n), bool) if m is None else m for m in masks]).reshape(len(angles), -1)
    out.flags.writeable = False
    return out


# One angle a key: the fine windows (11 angles around each coarse one) overlap, and one aspect's
# coarse and fine angles on both canvases are 424 masks (16 KB at most each).
@lru_cache(maxsize=512)
def content_mask(theta: float, W: float, H: float, expand: bool, n: int) -> np.ndarray | None:
    """Where the picture is, on an ``n`` x ``n`` grid over a W x H canvas rotated by ``theta``
    degrees (read-only); None where no picture rotated by ``theta`` fills such a canvas."""
    size = _canvas_to_original(theta, W, H, expand)
    if size is None:
        return None
    w, h = size
    ys, xs = np.meshgrid((np.arange(n) + 0.5) / n * H - H / 2, (np.arange(n) + 0.5) / n * W - W / 2, indexing="ij")
    t = np.deg2rad(theta)
    u = xs * np.cos(t) - ys * np.sin(t)
    v = xs * np.sin(t) + ys * np.cos(t)
    mask = (np.abs(u) <= w / 2) & (np.abs(v) <= h / 2)
    mask.flags.writeable = False  # cached: shared by every caller
    return mask


def _fit(picture: np.ndarray, aspect: float, angles: np.ndarray):
    """Best (iou, angle, expand) of the predicted picture areas against the observed one."""
    n = picture.shape[0]
    best = (0.0, 0.0, True)
    pic = picture.reshape(1, -1)
    for expand in (True, False):
        m = _masks(round(aspect, 3), n, expand, tuple(float(a) for a in angles))
        inter = (m & pic).sum(1)
        union = (m | pic).sum(1)
        iou = inter / np.maximum(union, 1)
        k = int(np.argmax(iou))
        if iou[k] > best[0]:
            best = (float(iou[k]), float(angles[k]), expand)
    return best


#: Largest spread (grey levels) of the four corner pixels of a padded canvas's thumbnail.
CORNER_SPREAD = 12
#: Largest side of the image the same-size de-rotated view is made from (it is only thumbnailed).
_VIEW = 128


def canvas_fills(smalls: np.ndarray) -> np.ndarray:
    """The fill grey level of each image's rotation canvas, from ``(p, n, n)`` thumbnails;
    NaN where there is none (float64).

    Both canvas models leave every corner of the canvas uncovered, so the four corner pixels
    agree (any fill colour: black, white, the picture's edge colour). A flat black or white
    border (the expanded canvas's) is the other sign.
    """
    s = np.asarray(smalls)
    c = np.sort(s[:, [0, 0, -1, -1], [0, -1, 0, -1]].astype(np.int64), axis=1)
    border = np.concatenate([s[:, 0], s[:, -1], s[:, 1:-1, 0], s[:, 1:-1, -1]], axis=1).astype(np.int16)
    fill = median(border, axis=1)
    flat = ((fill <= 24) | (fill >= 231)) & (np.add.reduce(np.abs(border - fill[:, None]) <= 6, axis=1)
                                            / border.shape[1] >= 0.1)
    corners = c[:, -1] - c[:, 0] <= CORNER_SPREAD
    return np.where(corners, (c[:, 1] + c[:, 2]) / 2.0, np.where(flat, fill, np.nan))


#: The regions :func:`_padding_mask` reads: pixels joined to their four neighbours.
_FOUR_NEIGHBOURS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


def _padding_mask(big: np.ndarray, fill: float, min_frac: float = 0.02, max_frac: float = 0.7,
                  repeat: tuple = (1, 1)):
    """Where a canvas's padding is, on ``big`` (h x w x 3 RGB); None when that is too little or
    too much, or not flat.

    The fill colour is re-read from the corners of ``big`` when they agree (a thumbnail's
    corner pixels are blurred by its resampling); padding is then the regions within a few
    levels of it *in every channel* that contain a corner (a picture region of the same
    grey but another hue is not padding). A black or white fill, or no such region at a
    corner: any flat region along the border.

    ``repeat = (ry, rx)``: ``big`` stands for itself with each pixel repeated ``ry`` times down
    and ``rx`` times across (a small image enlarged by a whole factor: the result is the same,
    on the small grid, at a fraction of the cost).
    """
    from scipy import ndimage  # noqa: PLC0415

    big = big.astype(np.int16)
    corners = big[[0, 0, -1, -1], [0, -1, 0, -1]]  # (4, 3)
    if int((corners.max(axis=0) - corners.min(axis=0)).max()) <= CORNER_SPREAD:
        colour = median(corners, axis=0)
    else:
        colour = np.full(3, fill)
    grey = float(colour.mean())
    extreme = grey <= 24 or grey >= 231
    tol = 6 if extreme else 4  # tight: a fill the colour of the edge must not run into the picture
    dist = np.maximum.reduce(np.abs(big - colour), axis=2)
    labels, count = ndimage.label(dist <= tol, structure=_FOUR_NEIGHBOURS)
    if count == 0:
        return None
    at_corners = {int(v) for v in labels[[0, 0, -1, -1], [0, -1, 0, -1]]} - {0}
    keep = np.zeros(count + 1, bool)  # the labels that are padding
    if extreme or not at_corners:
        for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
            keep[edge] = True
    else:
        keep[list(at_corners)] = True
    keep[0] = False
    pad = keep[labels]
    frac = np.count_nonzero(pad) / pad.size
    if not (min_frac <= frac <= max_frac):
        return None
    # padding is flat: most of its inside (away from the resampled edge) within a few levels
    # of the fill; a dark or pale part of the picture spreads over the whole tolerance
    inside = _eroded_counts(pad, repeat)  # pixels of the enlarged grid left by an erosion
    if inside.sum() < 16:
        inside = pad.astype(np.int64)
    if (inside * (dist <= 3)).sum() / inside.sum() < 0.7:
        return None
    return pad


def _eroded_counts(mask: np.ndarray, repeat: tuple) -> np.ndarray:
    """How many of the ``ry x rx`` pixels each pixel of ``mask`` stands for are left when the
    enlarged mask is eroded (``scipy.ndimage.binary_erosion``: 4-neighbours, outside is False).

    A pixel on the block's top line needs the block above, one on its bottom line the block
    below, and likewise across: the count is a product of a count down and a count across.
    """
    m = np.pad(mask, 1).astype(np.int64)
    up, down, left, right = m[:-2, 1:-1], m[2:, 1:-1], m[1:-1, :-2], m[1:-1, 2:]

    def along(r, before, after):
        return before * after if r == 1 else (r - 2) + before + after
    ry, rx = repeat
    return mask * along(ry, up, down) * along(rx, left, right)


def _same_size_view(img: Image.Image, angle: float) -> Image.Image:
    """The same-size canvas rotated back (at most ``_VIEW`` px a side). The corners of the
    original that the rotation cut off are lost; they are filled with the picture mirrored
    at the canvas edge (each pixel of the view is sampled from the canvas, reflected back
    inside it when it falls outside), which keeps the picture's texture there: a flat or
    smooth fill would leave corners that no copy has, and lower the embedding similarity."""
    from scipy import ndimage  # noqa: PLC0415

    W, H = img.size
    scale = min(1.0, _VIEW / max(W, H))
    small = img.convert("RGB")
    if scale < 1:
        small = small.resize((max(8, round(W * scale)), max(8, round(H * scale))), Image.BOX)
    a = np.asarray(small, np.float32)
    out = np.stack([ndimage.rotate(a[:, :, c], -angle, reshape=False, order=1, mode="mirror") for c in range(3)],
                   axis=2)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def derotate(img: Image.Image, small: np.ndarray):
    """``(angle, de-rotated view)`` of a rotated picture, or None.

    ``small`` is the image's 32x32 grayscale thumbnail (a cheap first look for padding: the
    four corners of a rotation canvas are all fill). The fill can be any flat colour: black,
    white or the picture's edge colour. On an expanded canvas the view is the original
    picture cropped out of the canvas rotated back; on a same-size canvas (corners cut off)
    it is the canvas rotated back, at most 128 px a side, with the cut corners filled by
    the picture mirrored at the canvas edge.
    """
    fill = float(canvas_fills(np.asarray(small)[None])[0])
    return None if np.isnan(fill) else derotate_on(img, fill)  # the quick look: no flat corners or border


def derotate_on(img: Image.Image, fill: float):
    """:func:`derotate` of ``img``, whose canvas fill :func:`canvas_fills` read as ``fill``."""
    W, H = img.size
    aspect = W / H
    rgb = img.convert("RGB")
    if _FIT % W == 0 and _FIT % H == 0:  # enlarging by a whole factor repeats pixels: the mask on the image itself
        ry, rx = _FIT // H, _FIT // W
        pad = _padding_mask(np.asarray(rgb), fill, repeat=(ry, rx))
        if pad is not None:
            pad = np.repeat(np.repeat(pad, ry, axis=0), rx, axis=1)
    else:
        pad = _padding_mask(np.asarray(rgb.resize((_FIT, _FIT), Image.BOX)), fill)
    if pad is None:
        return None
    picture = ~pad
    coarse = np.array([a for a in np.arange(-44.0, 45.0, 2.0) if abs(a) >= MIN_ANGLE])
    iou, angle, _ = _fit(picture[::4, ::4], aspect, coarse)
    fine = np.array([a for a in np.arange(angle - 2.5, angle + 2.75, 0.5) if MIN_ANGLE <= abs(a) <= 45])
    if len(fine) == 0:
        return None
    iou, angle, expand = _fit(picture, aspect, fine)
    if iou < MIN_IOU:
        return None
    # a letterbox, a frame or a flat background is explained at least as well by an upright
    # rectangle: the picture's bounding box
    ys, xs = np.nonzero(picture)
    if len(ys) == 0 or picture.sum() / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)) >= iou:
        return None
    if not expand:
        return angle, _same_size_view(img, angle)
    size = _canvas_to_original(angle, W, H, expand)
    if size is None:
        return None
    w0, h0 = size
    back = img.rotate(-angle, resample=Image.BICUBIC, expand=False)
    x0, y0 = (W - w0) / 2, (H - h0) / 2
    box = (int(round(x0)), int(round(y0)), int(round(x0 + w0)), int(round(y0 + h0)))
    if box[2] - box[0] < 8 or box[3] - box[1] < 8:
        return None
    return angle, back.crop(box)
