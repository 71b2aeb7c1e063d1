"""Padding: the flat black or white canvas around a rotated, letterboxed or scanned picture.

Padding's straight edges would make any two padded pictures line up, so the verification
leaves it out (weights 0 on padding, 1 on the picture), and its shape tells the rotation
feature (:mod:`leakscan.rotation`) by which angle a picture was turned.
"""

from __future__ import annotations

import numpy as np

__all__ = ["padding_weights"]


def padding_weights(thumbs: np.ndarray, tol: int = 6, min_frac: float = 0.05,
                    max_frac: float = 0.7, grow: bool = True) -> np.ndarray | None:
    """Per-pixel weights, 0 on padding and 1 on the picture, of ``(p, n, n)`` uint8 thumbnails.

    Padding is a flat black or white region that touches the border: the canvas around a
    rotated or letterboxed picture, a scan's black surround. Its straight edges would
    otherwise make any two rotated pictures line up. Found as the connected region, touching
    the border, within ``tol`` grey levels of the median border value when that value is near
    black (<= 24) or white (>= 231), when it covers ``min_frac`` to ``max_frac`` of the thumbnail;
    grown by one pixel (``grow``) to cover resampling ringing. Returns None when no thumbnail
    has padding.
    """
    from scipy import ndimage  # noqa: PLC0415

    t = np.asarray(thumbs)
    p, n, _ = t.shape
    if p == 0:
        return None
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
    if not pad.any():
        return None
    if grow:
        pad = ndimage.binary_dilation(pad, structure=structure)
    out = np.ones((p, n, n), np.float32)
    out[cand] = (~pad).astype(np.float32)
    return out
