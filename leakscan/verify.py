"""Pair verification: does one thumbnail line up with the other?

Candidate pairs from the hash and embedding searches are checked by *registration*: the
*detail* (the 32x32 grayscale thumbnail minus its Gaussian blur, sigma 2 px) of the two
images, the first one under the rotation/flip the search matched, are compared by
normalised cross-correlation (NCC) over a small grid of zooms (up to 1.26x either way) and
shifts (up to 1/8 of the side either way); the best alignment's NCC is the pair's ``ncc``.
A re-encoded, resized, shifted, cropped or recoloured copy lines up (detail NCC 0.6-1.0);
two different photos of similar things (two ships on a horizon, two red cars on grey)
share a coarse layout, which is all a gradient histogram or the plain pixels see, but their
details do not line up. Taking the detail removes the smooth layout (sky gradient, horizon,
vignetting) that makes unrelated pictures correlate.

NCC is invariant to brightness and contrast, so recoloured and grayscale copies still pass.

The search is coarse-to-fine: every zoom and shift is tried on 16x16 versions, then the best
zoom and shift (and their neighbours) are refined on the 32x32 thumbnails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .padding import padding_weights
from .views import MatchView, apply_dihedral

if TYPE_CHECKING:  # pragma: no cover
    from .features import Features

__all__ = ["verify_pairs", "aligned_ncc", "detail", "ZOOMS", "MAX_SHIFT", "DETAIL_SIGMA"]

#: Blur (pixels of the 32x32 thumbnail) removed by :func:`detail`.
DETAIL_SIGMA = 2.0

#: Zoom factors tried (each applied to either image, so the ratio of scales covers
#: 1/1.26 .. 1.26: a crop keeping 63% of the area or more).
ZOOMS = (1.0, 1.06, 1.12, 1.19, 1.26)
#: Largest shift tried, as a fraction of the side.
MAX_SHIFT = 0.125
#: Least share of the overlap that must be picture (not padding) on both sides.
MIN_AREA = 0.10


def detail(thumbs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``(p, n, n)`` thumbnails minus their Gaussian blur (sigma :data:`DETAIL_SIGMA`), float32.

    With ``weights`` (0 on padding), the blur is a normalised convolution of the picture
    pixels only, so the edge between picture and padding leaves no detail behind.
    """
    from scipy.ndimage import gaussian_filter  # noqa: PLC0415 - lazy: keeps `import leakscan` light

    x = np.asarray(thumbs, np.float32)
    sig = (0, DETAIL_SIGMA, DETAIL_SIGMA)
    if weights is None:
        return x - gaussian_filter(x, sig, mode="reflect")
    w = np.asarray(weights, np.float32)
    blur = gaussian_filter(x * w, sig, mode="reflect") / np.maximum(gaussian_filter(w, sig, mode="reflect"), 1e-3)
    return (x - blur) * w


def _zoom_tables(n: int, s: float):
    """Bilinear sampling of a centred zoom by ``s`` (>= 1) on an ``n``-pixel axis."""
    c = (n - 1) / 2.0
    x = (np.arange(n) - c) / s + c
    x0 = np.clip(np.floor(x).astype(np.int64), 0, n - 2)
    w = (x - x0).astype(np.float32)
    return x0, w


def _zoom(img: np.ndarray, s: float) -> np.ndarray:
    """Zoom ``(p, n, n)`` float32 images by ``s`` >= 1 about their centre (same size out)."""
    if s == 1.0:
        return img
    n = img.shape[-1]
    x0, w = _zoom_tables(n, s)
    r = img[:, x0, :] * (1 - w)[None, :, None] + img[:, x0 + 1, :] * w[None, :, None]
    return r[:, :, x0] * (1 - w)[None, None, :] + r[:, :, x0 + 1] * w[None, None, :]


def _ncc_at(x, y, wx, wy, dy: int, dx: int) -> np.ndarray:
    """Weighted NCC of ``x[r, c]`` against ``y[r - dy, c - dx]`` over their overlap.

    ``wx``/``wy`` are per-pixel weights (1 = picture, 0 = padding or outside) or None (all
    1). Pairs whose common weighted area is under :data:`MIN_AREA` of the overlap score -1.
    """
    n = x.shape[-1]
    ys = (slice(None), slice(max(0, dy), n + min(0, dy)), slice(max(0, dx), n + min(0, dx)))
    yt = (slice(None), slice(max(0, -dy), n + min(0, -dy)), slice(max(0, -dx), n + min(0, -dx)))
    xa, yb = x[ys], y[yt]
    m = xa.shape[1] * xa.shape[2]
    if wx is None and wy is None:
        sw = np.float32(m)
        sx, sy = xa.sum((1, 2)), yb.sum((1, 2))
        sxx = np.einsum("pij,pij->p", xa, xa)
        syy = np.einsum("pij,pij->p", yb, yb)
        sxy = np.einsum("pij,pij->p", xa, yb)
    else:
        w = (1.0 if wx is None else wx[ys]) * (1.0 if wy is None else wy[yt])
        w = np.broadcast_to(w, xa.shape)
        sw = np.maximum(w.sum((1, 2)), 1e-6)
        u, v = w * xa, w * yb
        sx, sy = u.sum((1, 2)), v.sum((1, 2))
        sxx = np.einsum("pij,pij->p", u, xa)
        syy = np.einsum("pij,pij->p", v, yb)
        sxy = np.einsum("pij,pij->p", u, yb)
    cov = sxy - sx * sy / sw
    vx = np.maximum(sxx - sx * sx / sw, 0)
    vy = np.maximum(syy - sy * sy / sw, 0)
    out = cov / np.sqrt(vx * vy + 1e-3)
    if wx is not None or wy is not None:
        out = np.where(sw >= MIN_AREA * m, out, -1.0)
    return out


def _shift_each(img: np.ndarray, w, dy: np.ndarray, dx: np.ndarray):
    """``out[p, r, c] = img[p, r - dy[p], c - dx[p]]`` (0 outside), and the matching weights."""
    p, n, _ = img.shape
    r = np.arange(n)
    rows = r[None, :, None] - dy[:, None, None]
    cols = r[None, None, :] - dx[:, None, None]
    inside = ((rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)).astype(np.float32)
    pi = np.arange(p)[:, None, None]
    rows, cols = np.clip(rows, 0, n - 1), np.clip(cols, 0, n - 1)
    out = img[pi, rows, cols] * inside
    ww = inside if w is None else w[pi, rows, cols] * inside
    return out, ww


def _best(a, b, wa, wb, zooms, shifts):
    """Best NCC over (zoom of a or of b) x shifts; returns (ncc, zoom index, dy, dx)."""
    p = len(a)
    best = np.full(p, -2.0, np.float32)
    bz = np.zeros(p, np.int64)
    bdy = np.zeros(p, np.int64)
    bdx = np.zeros(p, np.int64)
    zw = (lambda w, s: None if w is None else _zoom(w, s))  # noqa: E731
    for zi, s in enumerate(zooms):
        # signed zoom: positive zooms b, negative zooms a
        if s > 0:
            x, wx, y, wy = a, wa, _zoom(b, s), zw(wb, s)
        else:
            x, wx, y, wy = _zoom(a, -s), zw(wa, -s), b, wb
        for dy, dx in shifts:
            c = _ncc_at(x, y, wx, wy, dy, dx)
            better = c > best
            best = np.where(better, c, best)
            bz = np.where(better, zi, bz)
            bdy = np.where(better, dy, bdy)
            bdx = np.where(better, dx, bdx)
    return best, bz, bdy, bdx


def _signed_zooms():
    return [z for z in ZOOMS] + [-z for z in ZOOMS if z != 1.0]


def _down2(x):
    if x is None:
        return None
    p, n, _ = x.shape
    return x.reshape(p, n // 2, 2, n // 2, 2).mean(axis=(2, 4))


def aligned_ncc(a: np.ndarray, b: np.ndarray, wa: np.ndarray | None = None, wb: np.ndarray | None = None,
                block: int = 8192) -> np.ndarray:
    """Best NCC of ``(p, 32, 32)`` grayscale thumbnails ``a[k]`` vs ``b[k]`` over zooms and shifts.

    ``wa``/``wb`` optionally weight each pixel (0 = padding, ignored; see
    :func:`leakscan.padding.padding_weights`).
    Returns float32 ``(p,)`` in [-1, 1]; 1 means the two line up exactly (up to brightness
    and contrast).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 255, (1, 32, 32)).astype(np.uint8)
    >>> float(aligned_ncc(a, a)[0]) > 0.99
    True
    >>> float(aligned_ncc(a, 255 - a)[0]) < 0.5    # a negative does not line up
    True
    """
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    if a.shape != b.shape or a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape[1] % 2:
        raise ValueError(f"aligned_ncc needs two (p, n, n) arrays with even n, got {a.shape} and {b.shape}")
    out = np.zeros(len(a), np.float32)
    n = a.shape[1]
    zooms = _signed_zooms()
    r = max(1, int(round(MAX_SHIFT * n / 2)))
    coarse_shifts = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    sl = (lambda w, start: None if w is None else np.asarray(w, np.float32)[start:start + block])  # noqa: E731
    for start in range(0, len(a), block):
        A, B, WA, WB = a[start:start + block], b[start:start + block], sl(wa, start), sl(wb, start)
        _, bz, bdy, bdx = _best(_down2(A), _down2(B), _down2(WA), _down2(WB), zooms, coarse_shifts)
        best = np.full(len(A), -2.0, np.float32)
        # refine each pair at full size around its coarse optimum: the same zoom and its
        # neighbours, shifts within one pixel of twice the coarse shift (the second image
        # is moved by twice the coarse shift first, so one search serves every pair)
        order = sorted(range(len(zooms)), key=lambda k: zooms[k])
        rank = {k: r for r, k in enumerate(order)}
        fine = [(ey, ex) for ey in (-1, 0, 1) for ex in (-1, 0, 1)]
        for zi in np.unique(bz):
            sel = np.flatnonzero(bz == zi)
            r0 = rank[int(zi)]
            for zk in order[max(0, r0 - 1):r0 + 2]:
                z = zooms[zk]
                wa_s = None if WA is None else WA[sel]
                wb_s = None if WB is None else WB[sel]
                if z > 0:
                    x, wx = A[sel], wa_s
                    y, wy = _zoom(B[sel], z), (None if wb_s is None else _zoom(wb_s, z))
                else:
                    x, wx = _zoom(A[sel], -z), (None if wa_s is None else _zoom(wa_s, -z))
                    y, wy = B[sel], wb_s
                y, wy = _shift_each(y, wy, 2 * bdy[sel], 2 * bdx[sel])
                for ey, ex in fine:
                    best[sel] = np.maximum(best[sel], _ncc_at(x, y, wx, wy, ey, ex))
        out[start:start + block] = best
    return out


# --------------------------------------------------------------------------- candidate pairs

def verify_pairs(features: Features, i: np.ndarray, j: np.ndarray, variant: np.ndarray,
                 block: int = 8192) -> np.ndarray:
    """Aligned-thumbnail correlation of each candidate pair, row ``i`` under rotation/flip ``variant[k]``.

    The variant was found by querying row i's transformed features against row j's plain
    ones, or the other way round. Row ``i`` is transformed and compared with row ``j`` as
    it is; for the two variants that are not their own inverse (rot90, rot270) row ``j``
    transformed against row ``i`` as it is is tried too and the better kept, which covers
    both directions. Pairs matched through a de-rotated view compare that view with the
    other image; pairs matched through a crop view line up as they are.
    """
    out = np.zeros(len(i), np.float32)
    if len(i) == 0:
        return out
    rotated = MatchView.is_derotated(variant)
    variant = MatchView.dihedral(variant)  # a crop lines up as it is
    if rotated.any():
        out[rotated] = _verify_rotated(features, i[rotated], j[rotated], variant[rotated])
    plain = np.flatnonzero(~rotated)
    if len(plain) == 0:
        return out
    i, j, variant = i[plain], j[plain], variant[plain]
    res_plain = np.zeros(len(i), np.float32)
    # padding (rotation canvas, letterbox) per image, once per image
    rows, inv = np.unique(np.concatenate([i, j]), return_inverse=True)
    w_rows = padding_weights(features.thumb[rows])
    padded = np.zeros(len(rows), bool) if w_rows is None else (w_rows.min(axis=(1, 2)) < 1)
    pos_i, pos_j = inv[:len(i)], inv[len(i):]
    for start in range(0, len(i), block):
        sl = slice(start, start + block)
        a, b, v = i[sl], j[sl], variant[sl]
        pa, pb = pos_i[sl], pos_j[sl]
        res = np.zeros(len(a), np.float32)
        # pairs without padding on either side take the (faster) unweighted path
        weighted = padded[pa] | padded[pb]
        for use_w in (False, True):
            k = np.flatnonzero(weighted == use_w)
            if not len(k):
                continue
            wa = w_rows[pa[k]] if use_w else None
            wb = w_rows[pb[k]] if use_w else None
            res[k] = _verify_block(features.thumb[a[k]], features.thumb[b[k]], wa, wb, v[k])
        res_plain[sl] = res
    out[plain] = res_plain
    return out


def _verify_rotated(features: Features, i, j, v):
    """Pairs where one side matched through its de-rotated view: that view against the other image."""
    where = {int(r): q for q, r in enumerate(features.derotated_rows.tolist())}
    best = np.full(len(i), -1.0, np.float32)
    for x, y in ((i, j), (j, i)):
        k = np.flatnonzero([int(r) in where for r in x.tolist()])
        if not len(k):
            continue
        q = np.array([where[int(r)] for r in x[k].tolist()], np.int64)
        ra, rb = features.derotated_thumb[q], features.thumb[y[k]]
        wa, wb = padding_weights(ra), padding_weights(rb)
        if wa is not None or wb is not None:
            wa = np.ones(ra.shape, np.float32) if wa is None else wa
            wb = np.ones(rb.shape, np.float32) if wb is None else wb
        best[k] = np.maximum(best[k], _verify_block(ra, rb, wa, wb, v[k]))
    return best


def _verify_block(ra, rb, wa, wb, v):
    ta, tb = detail(ra, wa), detail(rb, wb)
    ta_v, tb_v = ta.copy(), tb.copy()
    wa_v = None if wa is None else wa.copy()
    wb_v = None if wb is None else wb.copy()
    for vv in np.unique(v):
        m = v == vv
        ta_v[m] = _apply_variant(ta[m], int(vv))
        tb_v[m] = _apply_variant(tb[m], int(vv))
        if wa is not None:
            wa_v[m] = _apply_variant(wa[m], int(vv))
            wb_v[m] = _apply_variant(wb[m], int(vv))
    r1 = aligned_ncc(ta_v, tb, wa_v, wb)
    asym = np.flatnonzero(np.isin(v, (MatchView.ROT90, MatchView.ROT270)))  # each other's inverse
    if len(asym):
        pick = (lambda w: None if w is None else w[asym])  # noqa: E731
        r1[asym] = np.maximum(r1[asym], aligned_ncc(ta[asym], tb_v[asym], pick(wa), pick(wb_v)))
    return r1


def _apply_variant(a: np.ndarray, v: int) -> np.ndarray:
    return np.ascontiguousarray(apply_dihedral(a, v)) if v >= 0 else a
