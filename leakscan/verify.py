"""Pair verification: does one thumbnail line up with the other?

Candidate pairs from the hash and embedding searches are checked by *registration*: the
*detail* (the 32x32 grayscale thumbnail minus its Gaussian blur, sigma 2 px) of the two
images, the first one under the rotation/flip the search matched, are compared by
normalised cross-correlation (NCC) over a small grid of zooms (up to 1.26x either way) and
shifts (up to 1/8 of the side and a pixel either way); the best alignment's NCC is the pair's ``ncc``.
A re-encoded, resized, shifted, cropped or recoloured copy lines up (detail NCC 0.6-1.0);
two different photos of similar things (two ships on a horizon, two red cars on grey)
share a coarse layout, which is all a gradient histogram or the plain pixels see, but their
details do not line up. Taking the detail removes the smooth layout (sky gradient, horizon,
vignetting) that makes unrelated pictures correlate.

NCC is invariant to brightness and contrast, so recoloured and grayscale copies still pass.

The search is coarse-to-fine: every zoom and shift is tried on 16x16 versions, then the best
zoom and shift (and their neighbours) are refined on the 32x32 thumbnails. For pairs without
padding, the sums over each overlap come from summed-area tables, so a shift costs one
product per pixel: the same correlations, several times faster. With padding, each shift's
weighted sums are products of per-image moments (weight, weighted pixel and its square),
made once per zoom. A zoom is a product of small resampling matrices, the blur another.

A crop of another shape, resized, is a box of the picture whose sides are all free:
:func:`fit_box` climbs them one step at a time while the two details line up better.
"""

from __future__ import annotations

import numpy as np

from .views import box_taps, resampling_matrix, sample_columns, sample_rows

__all__ = ["align", "aligned_ncc", "detail", "fit_box", "ZOOMS", "MAX_SHIFT", "DETAIL_SIGMA"]

#: Blur (pixels of the 32x32 thumbnail) removed by :func:`detail`.
DETAIL_SIGMA = 2.0

#: Zoom factors tried (each applied to either image, so the ratio of scales covers
#: 1/1.26 .. 1.26: a crop keeping 63% of the area or more).
ZOOMS = (1.0, 1.06, 1.12, 1.19, 1.26)
#: Largest shift of the coarse search, as a fraction of the side (the refinement adds a pixel).
MAX_SHIFT = 0.125
#: Least share of the overlap that must be picture (not padding) on both sides.
MIN_AREA = 0.10


_BLUR_MATRICES: dict = {}


def _blur_matrix(n: int) -> np.ndarray:
    """``(n, n)`` float32: the Gaussian blur (sigma :data:`DETAIL_SIGMA`, edges reflected) of an
    ``n``-pixel axis as a matrix: ``m @ image @ m.T`` blurs an image."""
    from scipy.ndimage import gaussian_filter1d  # noqa: PLC0415 - lazy: keeps `import leakscan` light

    if n not in _BLUR_MATRICES:
        _BLUR_MATRICES[n] = gaussian_filter1d(np.eye(n, dtype=np.float32), DETAIL_SIGMA, axis=0, mode="reflect")
    return _BLUR_MATRICES[n]


def detail(thumbs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``(p, n, n)`` thumbnails minus their Gaussian blur (sigma :data:`DETAIL_SIGMA`), float32.

    With ``weights`` (0 on padding), the blur is a normalised convolution of the picture
    pixels only, so the edge between picture and padding leaves no detail behind.
    """
    x = np.asarray(thumbs, np.float32)
    rows, cols = _blur_matrix(x.shape[-2]), _blur_matrix(x.shape[-1])

    def blur(v):
        return np.matmul(np.matmul(rows, v), cols.T)

    if weights is None:
        return x - blur(x)
    w = np.asarray(weights, np.float32)
    return (x - blur(x * w) / np.maximum(blur(w), 1e-3)) * w


def _zoom_tables(n: int, s: float):
    """Bilinear sampling of a centred zoom by ``s`` (>= 1) on an ``n``-pixel axis."""
    c = (n - 1) / 2.0
    x = (np.arange(n) - c) / s + c
    x0 = np.clip(np.floor(x).astype(np.int64), 0, n - 2)
    w = (x - x0).astype(np.float32)
    return x0, w


_ZOOM_MATRICES: dict = {}


def _zoom_matrix(n: int, s: float) -> np.ndarray:
    """``(n, n)`` float32: :func:`_zoom_tables`' bilinear sampling as a matrix, two weights a row."""
    key = (n, float(s))
    if key not in _ZOOM_MATRICES:
        _ZOOM_MATRICES[key] = resampling_matrix(*_zoom_tables(n, s), n)
    return _ZOOM_MATRICES[key]


def _zoom(img: np.ndarray, s: float) -> np.ndarray:
    """Zoom ``(p, n, n)`` float32 images by ``s`` >= 1 about their centre (same size out): the
    same resampling on both axes, ``zoom @ img @ zoom.T``."""
    if s == 1.0:
        return img
    z = _zoom_matrix(img.shape[-1], s)
    return np.matmul(np.matmul(z, img), z.T)


def _moments(img: np.ndarray, w) -> tuple:
    """``(w, w * img, w * img**2)`` of ``(p, n, n)`` images and their weights (None: all 1), for
    :func:`_ncc_at`: each shift's weighted sums are then products of two of them."""
    w = np.ones(img.shape, np.float32) if w is None else np.asarray(w, np.float32)
    wi = w * img
    return w, wi, wi * img


def _ncc_at(mx: tuple, my: tuple, dy: int, dx: int) -> np.ndarray:
    """Weighted NCC of ``x[r, c]`` against ``y[r - dy, c - dx]`` over their overlap, from the
    :func:`_moments` ``mx`` of ``x`` and ``my`` of ``y`` (per-pixel weights: 1 = picture, 0 =
    padding). Pairs whose common weighted area is under :data:`MIN_AREA` of the overlap score -1.
    """
    n = mx[0].shape[-1]
    ys = (slice(None), slice(max(0, dy), n + min(0, dy)), slice(max(0, dx), n + min(0, dx)))
    yt = (slice(None), slice(max(0, -dy), n + min(0, -dy)), slice(max(0, -dx), n + min(0, -dx)))
    # each side's weight u, weighted pixel p and weighted square q over the overlap
    (ux, px, qx), (uy, py, qy) = (a[ys] for a in mx), (a[yt] for a in my)
    m = ux.shape[1] * ux.shape[2]

    def total(a, b):  # the sum over the overlap of a product of the two sides' moments
        return np.einsum("pij,pij->p", a, b)
    sw = np.maximum(total(ux, uy), 1e-6)  # the common weight
    sx, sy = total(px, uy), total(ux, py)
    cov = total(px, py) - sx * sy / sw
    var_x = np.maximum(total(qx, uy) - sx * sx / sw, 0)
    var_y = np.maximum(total(ux, qy) - sy * sy / sw, 0)
    out = cov / np.sqrt(var_x * var_y + 1e-3)
    return np.where(sw >= MIN_AREA * m, out, -1.0)


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
    unweighted = wa is None and wb is None
    tables: dict = {}
    zw = (lambda w, s: None if w is None else _zoom(w, s))  # noqa: E731
    for zi, s in enumerate(zooms):
        # signed zoom: positive zooms b, negative zooms a
        if s > 0:
            x, wx, y, wy = a, wa, _zoom(b, s), zw(wb, s)
        else:
            x, wx, y, wy = _zoom(a, -s), zw(wa, -s), b, wb
        if unweighted:  # summed-area tables of the plain side, once; of the zoomed side, per zoom
            if s > 0 and "a" not in tables:
                tables["a"] = _tables(a)
            if (s < 0 or s == 1.0) and "b" not in tables:
                tables["b"] = _tables(b)
            tx = tables["a"] if s > 0 else _tables(x)
            ty = tables["b"] if s < 0 or s == 1.0 else _tables(y)
        else:
            mx, my = _moments(x, wx), _moments(y, wy)
        for dy, dx in shifts:
            c = _ncc_tables(x, y, tx, ty, dy, dx) if unweighted else _ncc_at(mx, my, dy, dx)
            better = c > best
            best = np.where(better, c, best)
            bz = np.where(better, zi, bz)
            bdy = np.where(better, dy, bdy)
            bdx = np.where(better, dx, bdx)
    return best, bz, bdy, bdx


_UPPER: dict = {}


def _tables(img: np.ndarray) -> tuple:
    """Summed-area tables ``(p, n + 1, n + 1)`` float32 of ``img`` and of its square."""
    n = img.shape[-1]
    u = _UPPER.get(n)
    if u is None:
        u = _UPPER[n] = np.triu(np.ones((n, n), np.float32))  # x @ u: running sums along the last axis
    out = []
    for a in (img, img * img):
        t = np.zeros((len(img), n + 1, n + 1), np.float32)
        t[:, 1:, 1:] = np.matmul(np.matmul(u.T, a), u)
        out.append(t)
    return tuple(out)


def _box(t: np.ndarray, r0, r1, c0, c1) -> np.ndarray:
    """Sums over rows ``r0:r1`` and columns ``c0:c1`` (scalars, or one per image) from summed-area tables."""
    if np.ndim(r0) == 0:
        return t[:, r1, c1] - t[:, r0, c1] - t[:, r1, c0] + t[:, r0, c0]
    k = np.arange(len(t))
    return t[k, r1, c1] - t[k, r0, c1] - t[k, r1, c0] + t[k, r0, c0]


def _ncc_from_sums(sxy, sx, sxx, sy, syy, m):
    cov = sxy - sx * sy / m
    vx = np.maximum(sxx - sx * sx / m, 0)
    vy = np.maximum(syy - sy * sy / m, 0)
    return (cov / np.sqrt(vx * vy + 1e-3)).astype(np.float32)


def _span(n: int, d: int) -> tuple:
    return max(0, d), n + min(0, d)


def _ncc_tables(x, y, tx, ty, dy: int, dx: int) -> np.ndarray:
    """:func:`_ncc_at` without weights, the overlap's sums read from summed-area tables."""
    n = x.shape[-1]
    xr0, xr1 = _span(n, dy)
    xc0, xc1 = _span(n, dx)
    yr0, yr1 = _span(n, -dy)
    yc0, yc1 = _span(n, -dx)
    sxy = np.einsum("pij,pij->p", x[:, xr0:xr1, xc0:xc1], y[:, yr0:yr1, yc0:yc1])
    return _ncc_from_sums(sxy, _box(tx[0], xr0, xr1, xc0, xc1), _box(tx[1], xr0, xr1, xc0, xc1),
                          _box(ty[0], yr0, yr1, yc0, yc1), _box(ty[1], yr0, yr1, yc0, yc1),
                          np.float32((xr1 - xr0) * (xc1 - xc0)))


def _refine_unweighted(x, y, by, bx, fine, tx=None, ty=None):
    """Best NCC of ``x[r, c]`` against ``y[r - by - ey, c - bx - ex]`` over the ``fine`` steps
    ``(ey, ex)``, each pair with its own base shift ``(by, bx)``: ``(ncc, ey, ex)``.

    The same overlaps as shifting ``y`` by the base (zero outside) and correlating with
    weights; the sums come from summed-area tables of the unshifted images (``tx``/``ty`` when
    the caller has them already).
    """
    n = x.shape[-1]
    tx = _tables(x) if tx is None else tx
    ty = _tables(y) if ty is None else ty
    ysh, _ = _shift_each(y, None, by, bx)
    best = np.full(len(x), -2.0, np.float32)
    bey = np.zeros(len(x), np.int64)
    bex = np.zeros(len(x), np.int64)
    for ey, ex in fine:
        sr0, sr1 = _span(n, ey)
        sc0, sc1 = _span(n, ex)
        sy_, sx_ = by + ey, bx + ex  # each pair's whole shift
        r0, r1 = np.maximum(sr0, np.maximum(0, sy_)), np.minimum(sr1, n + np.minimum(0, sy_))
        c0, c1 = np.maximum(sc0, np.maximum(0, sx_)), np.minimum(sc1, n + np.minimum(0, sx_))
        r1, c1 = np.maximum(r1, r0), np.maximum(c1, c0)
        sxy = np.einsum("pij,pij->p", x[:, sr0:sr1, sc0:sc1], ysh[:, sr0 - ey:sr1 - ey, sc0 - ex:sc1 - ex])
        c = _ncc_from_sums(sxy, _box(tx[0], r0, r1, c0, c1), _box(tx[1], r0, r1, c0, c1),
                           _box(ty[0], r0 - sy_, r1 - sy_, c0 - sx_, c1 - sx_),
                           _box(ty[1], r0 - sy_, r1 - sy_, c0 - sx_, c1 - sx_),
                           np.maximum((r1 - r0) * (c1 - c0), 1).astype(np.float32))
        better = c > best
        best = np.where(better, c, best)
        bey = np.where(better, ey, bey)
        bex = np.where(better, ex, bex)
    return best, bey, bex


def locate(a: np.ndarray, b: np.ndarray, dy: np.ndarray, dx: np.ndarray, radius: int = 2, climbs: int = 6):
    """Where each thumbnail ``b`` sits on ``a`` (overlapping tiles): ``(ncc, oy, ox)``, float32.

    ``b``'s pixel ``(y, x)`` shows ``a``'s ``(y + oy, x + ox)``. The shift is searched within
    ``radius`` pixels of ``(dy, dx)`` by the correlation of the two details over their
    overlap (again around the best while it lies on the search's edge, up to ``climbs``
    times), then refined to a fraction of a pixel by a parabola through the peak and its
    neighbours on each axis.
    """
    x, y = detail(a), detail(b)
    tx, ty = _tables(x), _tables(y)
    n = x.shape[-1]
    steps = [(ey, ex) for ey in range(-radius, radius + 1) for ex in range(-radius, radius + 1)]
    by, bx = np.array(dy, np.int64), np.array(dx, np.int64)
    best = np.zeros(len(x), np.float32)
    todo = np.arange(len(x))
    for _ in range(climbs):
        t = (tx[0][todo], tx[1][todo]), (ty[0][todo], ty[1][todo])
        best[todo], ey, ex = _refine_unweighted(x[todo], y[todo], by[todo], bx[todo], steps, *t)
        by[todo] = np.clip(by[todo] + ey, 2 - n, n - 2)
        bx[todo] = np.clip(bx[todo] + ex, 2 - n, n - 2)
        todo = todo[(np.abs(ey) == radius) | (np.abs(ex) == radius)]
        if not len(todo):
            break

    def at(sy, sx):
        return _refine_unweighted(x, y, by + sy, bx + sx, [(0, 0)], tx, ty)[0]

    def vertex(minus, plus):
        curve = minus - 2 * best + plus
        step = np.where(curve < -1e-6, 0.5 * (minus - plus) / np.where(curve < -1e-6, curve, -1.0), 0.0)
        return np.clip(step, -0.5, 0.5)
    oy = by + vertex(at(-1, 0), at(1, 0))
    ox = bx + vertex(at(0, -1), at(0, 1))
    return best, oy.astype(np.float32), ox.astype(np.float32)


def _signed_zooms():
    return [z for z in ZOOMS] + [-z for z in ZOOMS if z != 1.0]


def _down2(x):
    """``(p, n, n)`` -> ``(p, n/2, n/2)``: the mean of each 2x2 block. Of a C-ordered array it is
    added as ``mean(axis=(2, 4))`` of the blocks adds it (each row's two, then the rows), to
    the same bits, in a tenth of the time."""
    if x is None:
        return None
    x = np.asarray(x)
    p, n, _ = x.shape
    if not x.flags.c_contiguous or x.dtype.kind != "f":
        return x.reshape(p, n // 2, 2, n // 2, 2).mean(axis=(2, 4))
    return ((x[:, ::2, ::2] + x[:, ::2, 1::2]) + (x[:, 1::2, ::2] + x[:, 1::2, 1::2])) / x.dtype.type(4)


def _zoomed(a, b, wa, wb, z):
    """``(x, wx, y, wy)``: ``a`` and ``b`` (and weights) with signed zoom ``z`` applied."""
    zw = (lambda w, s: None if w is None else _zoom(w, s))  # noqa: E731
    if z > 0:
        return a, wa, _zoom(b, z), zw(wb, z)
    return _zoom(a, -z), zw(wa, -z), b, wb


#: Pairs aligned at a time: bounds the memory of the temporaries (~50 KB a pair).
BLOCK = 2048

#: Pairs :func:`fit_box` climbs at a time (measured on 32 px thumbnails: 128 to 256 fastest).
FIT_BLOCK = 128
#: Steps (shares of the side), coarse to fine, by which :func:`fit_box` moves a box's sides.
BOX_STEPS = (1 / 16, 1 / 32)
#: Least side of a fitted box, as a share of the picture's.
BOX_MIN_SIDE = 0.3
#: The moves :func:`fit_box` tries, in steps on ``(y0, y1, x0, x1)``: each side out or in, the
#: box slid along each axis, the box grown or shrunk on all sides.
_BOX_MOVES = np.array([m for k in range(4) for m in (np.eye(4)[k], -np.eye(4)[k])]
                      + [[1, 1, 0, 0], [-1, -1, 0, 0], [0, 0, 1, 1], [0, 0, -1, -1],
                         [-1, 1, -1, 1], [1, -1, 1, -1]], np.float64)


def fit_box(a: np.ndarray, b: np.ndarray, boxes: np.ndarray, wa: np.ndarray | None = None,
            wb: np.ndarray | None = None, rounds: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Each box ``(y0, y1, x0, x1)`` (shares of the side) of ``(p, n, n)`` thumbnails ``a``,
    moved side by side to where its view (:func:`~leakscan.views.box_views`, enlarged to n x n)
    lines up best with the whole of ``b``: ``(boxes, ncc)``, the NCC of the two details.

    A crop of another shape than the picture's, resized (torchvision's ``RandomResizedCrop``),
    is a box whose four sides are free; :func:`align` zooms both axes alike. A coordinate
    climb over :data:`BOX_STEPS`, ``rounds`` climbs a step. ``wa``/``wb`` weight the pixels
    (0 on padding). A view is ``rows @ a @ cols.T``, each product read as two pixels a sampled
    point (:func:`~leakscan.views.box_taps`); a move of one axis keeps the other's from the
    climb's start.
    """
    a = np.asarray(a, np.float32)
    p, n = len(a), a.shape[-1]
    if p > FIT_BLOCK:  # a block at a time: its temporaries stay in the processor's cache
        fitted = [fit_box(a[s:s + FIT_BLOCK], b[s:s + FIT_BLOCK], np.asarray(boxes)[s:s + FIT_BLOCK],
                          *(None if w is None else w[s:s + FIT_BLOCK] for w in (wa, wb)), rounds=rounds)
                  for s in range(0, p, FIT_BLOCK)]
        return np.concatenate([f[0] for f in fitted]), np.concatenate([f[1] for f in fitted])
    weighted = wa is not None or wb is not None
    if weighted:
        wb = np.ones(a.shape, np.float32) if wb is None else np.asarray(wb, np.float32)
    B = detail(b, wb)
    blur = _blur_matrix(n)
    if not weighted:  # centred once: each view's detail is then one product with it
        B = B - B.mean(axis=(1, 2), keepdims=True)
        BB = (B * B).sum((1, 2))

    def taps(bx):  # the sampling of the boxes' rows and columns
        return box_taps(bx[:, 0], bx[:, 1], n, n), box_taps(bx[:, 2], bx[:, 3], n, n)

    def view_of(x, rows, cols):  # rows @ x @ cols.T, reading two pixels a tap
        return sample_columns(sample_rows(x, rows), cols)

    def score(k, rows, cols, moved=None):
        """NCC of the details of ``a[k]``'s views and ``b[k]``; ``moved``: ``"rows"`` or ``"cols"``
        when only that axis moved from the climb's start (whose other products are kept)."""
        if weighted:
            view = view_of(a[k], rows, cols)
            w = wb[k] if wa is None else view_of(wa[k], rows, cols) * wb[k]
            A = detail(view, w)
            sw = w.sum((1, 2)) + 1e-6
            x = (A - ((A * w).sum((1, 2)) / sw)[:, None, None]) * w
            y = (B[k] - ((B[k] * w).sum((1, 2)) / sw)[:, None, None]) * w
            return (x * y).sum((1, 2)) / np.sqrt((x * x).sum((1, 2)) * (y * y).sum((1, 2)) + 1e-3)
        if moved == "rows":  # blur @ view @ blur.T = blur @ rows @ (a @ cols.T @ blur.T)
            A = sample_rows(kept["rows"][0], rows) - np.matmul(blur, sample_rows(kept["rows"][1], rows))
        elif moved == "cols":
            A = sample_columns(kept["cols"][0], cols) - np.matmul(sample_columns(kept["cols"][1], cols), blur.T)
        else:
            view = view_of(a[k], rows, cols)
            A = view - np.matmul(np.matmul(blur, view), blur.T)
        # B is centred: A's mean leaves the product unchanged, and comes off its sum of squares
        squares = np.einsum("pij,pij->p", A, A) - np.square(A.sum((1, 2))) / (n * n)
        return np.einsum("pij,pij->p", A, B[k]) / np.sqrt(np.maximum(squares, 0) * BB[k] + 1e-3)

    kept: dict = {}
    boxes = np.array(boxes, np.float64).reshape(p, 4)
    best = score(np.arange(p), *taps(boxes))
    for step in BOX_STEPS:
        k = np.arange(p)  # climbing: the pairs whose box moved in the last climb
        for _ in range(rounds):
            start = boxes[k]
            rows0, cols0 = taps(start)
            if not weighted:  # the start's views along one axis, for the moves of the other
                t, u = sample_columns(a[k], cols0), sample_rows(a[k], rows0)
                kept.update(rows=(t, np.matmul(t, blur.T)), cols=(u, np.matmul(blur, u)))
            moved = np.zeros(len(k), bool)
            for move in _BOX_MOVES:
                cand = np.clip(start + step * move, 0.0, 1.0)
                if not move[2:].any():
                    c = score(k, box_taps(cand[:, 0], cand[:, 1], n, n), cols0, None if weighted else "rows")
                elif not move[:2].any():
                    c = score(k, rows0, box_taps(cand[:, 2], cand[:, 3], n, n), None if weighted else "cols")
                else:
                    c = score(k, *taps(cand))
                better = (np.minimum(cand[:, 1] - cand[:, 0], cand[:, 3] - cand[:, 2]) >= BOX_MIN_SIDE) & (c > best[k])
                best[k[better]] = c[better]
                boxes[k[better]] = cand[better]
                moved |= better
            k = k[moved]
            if not len(k):
                break
    return boxes, best.astype(np.float32)


def align(a: np.ndarray, b: np.ndarray, wa: np.ndarray | None = None, wb: np.ndarray | None = None,
          block: int | None = None, details: bool = True):
    """Best alignment of ``(p, n, n)`` thumbnails: ``(ncc, zoom, dy, dx)``.

    ``ncc`` is the best normalised cross-correlation of the two details (of the images as
    given, with ``details=False``) over zooms and shifts; ``zoom`` is signed (positive: ``b``
    was enlarged, negative: ``a`` was);
    ``(dy, dx)``: ``a[r, c]`` lines up with ``b[r - dy, c - dx]``, the one ``zoom`` names zoomed. ``wa``/``wb`` weight
    pixels (0 on padding). Pairs with too little common picture score -1.
    """
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    p = len(a)
    out = np.full(p, -1.0, np.float32)
    oz = np.ones(p, np.float32)
    ody = np.zeros(p, np.int64)
    odx = np.zeros(p, np.int64)
    if p == 0:
        return out, oz, ody, odx
    n = a.shape[1]
    zooms = _signed_zooms()
    r = max(1, int(round(MAX_SHIFT * n / 2)))
    coarse = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    order = sorted(range(len(zooms)), key=lambda k: zooms[k])
    rank = {k: q for q, k in enumerate(order)}
    fine = [(ey, ex) for ey in (-1, 0, 1) for ex in (-1, 0, 1)]
    block = block or BLOCK
    for s in range(0, p, block):
        sl = slice(s, s + block)
        WA = None if wa is None else np.asarray(wa[sl], np.float32)
        WB = None if wb is None else np.asarray(wb[sl], np.float32)
        A, B = (detail(a[sl], WA), detail(b[sl], WB)) if details else (a[sl], b[sl])
        _, bz, bdy, bdx = _best(_down2(A), _down2(B), _down2(WA), _down2(WB), zooms, coarse)
        best = np.full(len(A), -2.0, np.float32)
        Z = np.ones(len(A), np.float32)
        DY = np.zeros(len(A), np.int64)
        DX = np.zeros(len(A), np.int64)
        # refine at full size around the coarse optimum: that zoom and its neighbours, shifts
        # within one pixel of twice the coarse shift
        for zi in np.unique(bz):
            sel = np.flatnonzero(bz == zi)
            r0 = rank[int(zi)]
            by, bx = 2 * bdy[sel], 2 * bdx[sel]
            plain: dict = {}  # tables of the side a zoom leaves as it is, made once per group
            for zk in order[max(0, r0 - 1):r0 + 2]:
                z = zooms[zk]
                x, wx, y, wy = _zoomed(A[sel], B[sel], None if WA is None else WA[sel],
                                       None if WB is None else WB[sel], z)
                if wx is None and wy is None:
                    if z > 0 and "a" not in plain:
                        plain["a"] = _tables(x)
                    if (z < 0 or z == 1.0) and "b" not in plain:
                        plain["b"] = _tables(y)
                    tx = plain["a"] if z > 0 else None
                    ty = plain["b"] if z < 0 or z == 1.0 else None
                    c, ey, ex = _refine_unweighted(x, y, by, bx, fine, tx, ty)
                else:
                    y, wy = _shift_each(y, wy, by, bx)
                    c = np.full(len(sel), -2.0, np.float32)
                    ey = np.zeros(len(sel), np.int64)
                    ex = np.zeros(len(sel), np.int64)
                    mx, my = _moments(x, wx), _moments(y, wy)
                    for fy, fx in fine:
                        cc = _ncc_at(mx, my, fy, fx)
                        better = cc > c
                        c, ey, ex = np.where(better, cc, c), np.where(better, fy, ey), np.where(better, fx, ex)
                better = c > best[sel]
                hit = sel[better]
                best[hit] = c[better]
                Z[hit] = z
                DY[hit] = by[better] + ey[better]
                DX[hit] = bx[better] + ex[better]
        out[sl], oz[sl], ody[sl], odx[sl] = best, Z, DY, DX
    return out, oz, ody, odx


def aligned_ncc(a: np.ndarray, b: np.ndarray, wa: np.ndarray | None = None, wb: np.ndarray | None = None,
                block: int | None = None) -> np.ndarray:
    """Best NCC of ``(p, n, n)`` images (n even) ``a[k]`` vs ``b[k]``, as given, over zooms and shifts.

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
    return align(a, b, wa, wb, block, details=False)[0]
