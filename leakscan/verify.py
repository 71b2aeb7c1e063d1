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

import numpy as np

__all__ = ["aligned_ncc", "detail", "ZOOMS", "MAX_SHIFT", "DETAIL_SIGMA"]

#: Blur (pixels of the 32x32 thumbnail) removed by :func:`detail`.
DETAIL_SIGMA = 2.0

#: Zoom factors tried (each applied to either image, so the ratio of scales covers
#: 1/1.26 .. 1.26: a crop keeping 63% of the area or more).
ZOOMS = (1.0, 1.06, 1.12, 1.19, 1.26)
#: Largest shift tried, as a fraction of the side.
MAX_SHIFT = 0.125


def detail(thumbs: np.ndarray) -> np.ndarray:
    """``(p, n, n)`` thumbnails minus their Gaussian blur (sigma :data:`DETAIL_SIGMA`), float32."""
    from scipy.ndimage import gaussian_filter  # noqa: PLC0415 - lazy: keeps `import leakscan` light

    x = np.asarray(thumbs, np.float32)
    return x - gaussian_filter(x, (0, DETAIL_SIGMA, DETAIL_SIGMA), mode="reflect")


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


def _ncc_at(x: np.ndarray, y: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """NCC of ``x[r, c]`` against ``y[r - dy, c - dx]`` over their overlap."""
    n = x.shape[-1]
    xa = x[:, max(0, dy):n + min(0, dy), max(0, dx):n + min(0, dx)]
    yb = y[:, max(0, -dy):n + min(0, -dy), max(0, -dx):n + min(0, -dx)]
    m = xa.shape[1] * xa.shape[2]
    xa = xa.reshape(len(x), m)
    yb = yb.reshape(len(y), m)
    sx, sy = xa.sum(1), yb.sum(1)
    sxx = np.einsum("pi,pi->p", xa, xa)
    syy = np.einsum("pi,pi->p", yb, yb)
    sxy = np.einsum("pi,pi->p", xa, yb)
    cov = sxy - sx * sy / m
    vx = np.maximum(sxx - sx * sx / m, 0)
    vy = np.maximum(syy - sy * sy / m, 0)
    return cov / np.sqrt(vx * vy + 1e-3)


def _best(a: np.ndarray, b: np.ndarray, zooms, shifts):
    """Best NCC over (zoom of a or of b) x shifts; returns (ncc, zoom index, dy, dx)."""
    p = len(a)
    best = np.full(p, -2.0, np.float32)
    bz = np.zeros(p, np.int64)
    bdy = np.zeros(p, np.int64)
    bdx = np.zeros(p, np.int64)
    for zi, s in enumerate(zooms):
        if s == 0.0:
            continue
        # signed zoom index: positive zooms b, negative zooms a
        x, y = (a, _zoom(b, s)) if s > 0 else (_zoom(a, -s), b)
        for dy, dx in shifts:
            c = _ncc_at(x, y, dy, dx)
            better = c > best
            best = np.where(better, c, best)
            bz = np.where(better, zi, bz)
            bdy = np.where(better, dy, bdy)
            bdx = np.where(better, dx, bdx)
    return best, bz, bdy, bdx


def _signed_zooms():
    return [z for z in ZOOMS] + [-z for z in ZOOMS if z != 1.0]


def _down2(x: np.ndarray) -> np.ndarray:
    p, n, _ = x.shape
    return x.reshape(p, n // 2, 2, n // 2, 2).mean(axis=(2, 4))


def aligned_ncc(a: np.ndarray, b: np.ndarray, block: int = 8192) -> np.ndarray:
    """Best NCC of ``(p, 32, 32)`` grayscale thumbnails ``a[k]`` vs ``b[k]`` over zooms and shifts.

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
    for s in range(0, len(a), block):
        A, B = a[s:s + block], b[s:s + block]
        _, bz, bdy, bdx = _best(_down2(A), _down2(B), zooms, coarse_shifts)
        best = np.full(len(A), -2.0, np.float32)
        # refine each pair at full size around its coarse optimum: the same zoom and its
        # neighbours, shifts within one pixel of twice the coarse shift
        for zi in np.unique(bz):
            sel = np.flatnonzero(bz == zi)
            z = zooms[zi]
            cand_z = {z}
            order = sorted(zooms)
            k = order.index(z)
            cand_z.update(order[max(0, k - 1):k + 2])
            for dy0 in np.unique(bdy[sel]):
                for dx0 in np.unique(bdx[sel]):
                    sub = sel[(bdy[sel] == dy0) & (bdx[sel] == dx0)]
                    if not len(sub):
                        continue
                    fine = [(2 * dy0 + ey, 2 * dx0 + ex) for ey in (-1, 0, 1) for ex in (-1, 0, 1)]
                    c, _, _, _ = _best(A[sub], B[sub], sorted(cand_z), fine)
                    best[sub] = np.maximum(best[sub], c)
        out[s:s + block] = best
    return out
