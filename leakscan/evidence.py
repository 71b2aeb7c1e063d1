"""Evidence per candidate pair: how much do two thumbnails look like one picture?

The search (:mod:`leakscan.pairs`) proposes candidates that look alike in layout. For each
candidate, the two 32x32 grayscale thumbnails are first *aligned*: the detail (thumbnail
minus its blur) of one is compared with the other's over small zooms and shifts
(:func:`leakscan.verify.align`, coarse-to-fine; the best normalised cross-correlation is ``ncc``). A pair
found as a crop is also lined up through the crop view of one that best matches the other
(a crop of half the picture is more zoom and shift than whole thumbnails line up over), the
view's box fitted side by side for a picture of 64 px or more (:func:`leakscan.verify.fit_box`:
a crop of another shape, resized); the better alignment counts. Padding (a rotation's
canvas, a letterbox, a trimmed border) is left out, but where the whole pictures line up a
flat black or white ground both show in the same place counts as picture, unless one was
rotated on a canvas or the pair is read solarized. An overlay most of the dataset's pictures
carry at the same place (a logo, a frame, a caption bar: :func:`shared_overlay_of`) is left
out too. At that alignment, more evidence is measured:

* ``ncc_fine``: correlation of the finest detail (sigma 1 px): a re-encoded or shifted copy
  keeps it, two photos of similar things (silhouettes on sky, ships on a horizon) do not;
* ``ncc_raw``: correlation of the plain thumbnails (layout and shading);
* ``blocks_fine``, ``blocks_raw``: the same, block by block (8x8 pixels): a copy agrees in
  every block that has detail, a look-alike only where the outlines meet (the detail-weighted
  mean of the fine blocks, and the lower quartile of the plain blocks);
* ``colour``: how well each colour channel of one 16x16 colour thumbnail is predicted from
  the other after a per-channel gain and offset (R^2): a recoloured copy still agrees;
* ``chroma``: the same for the colour left after removing the grey (falls back to
  ``colour`` when either image is nearly grey, so grayscale copies are not punished);
* ``colour_raw``: how close the colours are as they are, only an overall brightness shift
  taken off (1 less the mean gap over :data:`COLOUR_GAP` grey levels, at least 0; each
  pixel's channels in order of value, whose brightest and darkest a hue shift keeps, and grey
  levels only when either image is nearly grey): a gain and offset per channel map one
  two-tone silhouette onto any other (a red plane on blue sky onto a black one on white), the
  colours as they are do not;
* ``cosine`` / ``hamming``: the search's own similarity (gradient histograms, pHash);
* ``distinct``: ``ncc`` minus the correlation of each image with a *typical* near neighbour
  (its k-th nearest by embedding): a silhouette that lines up with every other silhouette
  is not evidence of a copy;
* ``zoom``, ``cropped``, ``rotated``, ``overlap``: how the pair was found (``overlap``: as
  overlapping tiles, whose evidence is that of the part they have in common). A pair found
  *tilted* (one turned by an angle and cropped upright) has the evidence of the other's
  tilted view at the angle, refined (the search reads it upright too: the decision keeps the
  likelier reading);
* ``model``: the ONNX model's cosine, when a model is used.

:mod:`leakscan.calibrate` turns these into one probability.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .features import (Features, colour_at_thumbnail, content_ranks, crop_hog, digest_greater, digest_order, hog, luma,
                       phash_variants, unsolarized, value_thumbnails)
from .padding import NO_BORDER, SharedOverlay, border_mask, flat_ground, padding_weights, shared_overlay
from .parallel import even_blocks, run_chunks
from .pairs import OVERLAP_MIN_SIDE, Kind, PairTable
from .verify import BLOCK, _down2, _shift_each, _zoom, align, fit_box
from .views import (CROP_SIDE, INVERSE_VARIANT, N_VARIANTS, STRETCH_BOXES, THUMB, TILT_TIGHT, MatchView,
                    apply_dihedral, box_views, crop_boxes, embedding_variants, is_oblong, tilted_views, turned_share)

__all__ = ["measure", "pair_evidence", "background", "tilted_angles", "shared_overlay_of", "EVIDENCE", "SIGN",
           "colour_agreement"]
#: Columns of the evidence matrix, in order.
EVIDENCE = ("ncc", "ncc_fine", "ncc_raw", "blocks_fine", "blocks_raw", "colour", "chroma", "colour_raw", "cosine",
            "hamming", "distinct", "zoom", "cropped", "rotated", "overlap", "model")
#: The columns an alignment of two thumbnails measures (:func:`measure`).
ALIGNED = ("ncc", "ncc_fine", "ncc_raw", "blocks_fine", "blocks_raw", "colour", "chroma", "colour_raw", "zoom")
#: Which way each column speaks: +1, the more the likelier a copy; -1, the less; 0, either
#: (how the pair was found). The decision's weights are held to these signs.
SIGN = {"ncc": 1, "ncc_fine": 1, "ncc_raw": 1, "blocks_fine": 1, "blocks_raw": 1, "colour": 1, "chroma": 1,
        "colour_raw": 1, "cosine": 1, "hamming": -1, "distinct": 1, "zoom": 0, "cropped": 0, "rotated": 0,
        "overlap": 0, "model": 1}
#: Below this spread of chroma (grey levels) an image counts as grey for the chroma evidence.
MIN_CHROMA = 4.0
#: ``colour_raw`` is 0 at this mean gap (grey levels) between the colours of two pictures.
COLOUR_GAP = 64.0
#: A pair the folded search proposes is read as a solarized copy only when the threshold that
#: fits (:func:`~leakscan.features.unsolarized`) inverts at least this share of the original's
#: values (a bright moon on a dark sky is 3%): a threshold above them all leaves the two as they
#: are, alike or not, which the whole-image search and its reading judge (on CIFAR-10 the folded
#: search alone proposed such pairs of different pictures).
MIN_INVERTED = 0.01


def warp(a, b, wa, wb, zoom, dy, dx):
    """``a`` and ``b`` (``(p, [c,] n, n)``) at the given alignment, and the common weight ``(p, n, n)``."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    n = a.shape[-1]
    lead = a.shape[1:-2]
    reps = int(np.prod(lead)) if lead else 1
    X = np.empty_like(a)
    Y = np.empty_like(b)
    W = np.zeros((len(a), n, n), np.float32)
    for z in np.unique(zoom):
        m = np.flatnonzero(zoom == z)
        A = a[m].reshape(-1, n, n)
        B = b[m].reshape(-1, n, n)
        wA = None if wa is None else wa[m]
        wB = None if wb is None else wb[m]
        x, wx, y, wy = A, wA, B, wB
        if z < 0:
            x, wx = _zoom(A, -float(z)), (None if wA is None else _zoom(wA, -float(z)))
        elif z > 0:
            y, wy = _zoom(B, float(z)), (None if wB is None else _zoom(wB, float(z)))
        y, inside = _shift_each(y, None, np.repeat(dy[m], reps), np.repeat(dx[m], reps))
        inside = inside.reshape(len(m), reps, n, n)[:, 0]
        if wy is not None:
            wy, _ = _shift_each(wy, None, dy[m], dx[m])
            inside = inside * wy
        if wx is not None:
            inside = inside * wx
        X[m] = x.reshape((len(m),) + a.shape[1:])
        Y[m] = y.reshape((len(m),) + b.shape[1:])
        W[m] = inside
    return X, Y, W


def weighted_ncc(x, y, w):
    """NCC of ``(p, n, n)`` arrays over the weights ``w``."""
    sw = w.sum((1, 2)) + 1e-6
    mx = (x * w).sum((1, 2)) / sw
    my = (y * w).sum((1, 2)) / sw
    xc = (x - mx[:, None, None]) * w
    yc = (y - my[:, None, None]) * w
    return (xc * yc).sum((1, 2)) / np.sqrt((xc * xc).sum((1, 2)) * (yc * yc).sum((1, 2)) + 1e-3)


def colour_agreement(x, y, w):
    """``(colour R^2, chroma R^2, colour_raw)`` of aligned ``(p, 3, n, n)`` colour thumbnails over weights ``w``.

    Each channel of ``y`` predicts the same channel of ``x`` through its own gain and offset;
    R^2 is the share of ``x``'s variance explained. The chroma version first removes each
    pixel's grey level; where either image is nearly grey it equals the colour R^2.
    ``colour_raw`` compares the colours as they are, each image's mean over its pixels and
    channels taken off: ``max(0, 1 - mean |gap| / COLOUR_GAP)``. Each pixel's channels are
    compared in order of value (a hue shift keeps its brightest and darkest), and only the
    grey levels where either image is nearly grey.
    """
    def fit(u, v):
        W = w[:, None]
        sw = W.sum((2, 3)) + 1e-6
        mu = (u * W).sum((2, 3)) / sw
        mv = (v * W).sum((2, 3)) / sw
        uc, vc = u - mu[..., None, None], v - mv[..., None, None]
        suv = (uc * vc * W).sum((2, 3))
        svv = (vc * vc * W).sum((2, 3))
        suu = (uc * uc * W).sum((2, 3))
        gain = suv / (svv + 1e-3)
        resid = np.maximum(suu - gain * suv, 0)
        spread = np.sqrt(suu.sum(1) / (3 * sw[:, 0]))
        return 1 - resid.sum(1) / (suu.sum(1) + 1e-3), spread
    colour, _ = fit(x, y)
    cx, cy = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    chroma, spread_x = fit(cx, cy)
    _, spread_y = fit(cy, cx)
    grey = (spread_x < MIN_CHROMA) | (spread_y < MIN_CHROMA)
    # each pixel's channels in order of value (a hue shift keeps the brightest and darkest);
    # grey levels where either picture is grey
    xs = np.where(grey[:, None, None, None], x.mean(1, keepdims=True), np.sort(x, axis=1))
    ys = np.where(grey[:, None, None, None], y.mean(1, keepdims=True), np.sort(y, axis=1))
    W = w[:, None]
    sw = W.sum((1, 2, 3)) * x.shape[1] + 1e-6
    mean_x, mean_y = ((a * W).sum((1, 2, 3)) / sw for a in (xs, ys))
    gap = (xs - mean_x[:, None, None, None]) - (ys - mean_y[:, None, None, None])
    raw = np.maximum(0.0, 1.0 - (np.abs(gap) * W).sum((1, 2, 3)) / sw / COLOUR_GAP)
    return colour.astype(np.float32), np.where(grey, colour, chroma).astype(np.float32), raw.astype(np.float32)


def block_agreement(x, y, w, side: int = 8):
    """``(detail-weighted mean NCC of the blocks, lower quartile of the block NCCs)``.

    ``x``, ``y``: aligned ``(p, n, n)`` images, ``w`` their common weight; only blocks that
    are (almost) wholly inside the common picture count.
    """
    p, n, _ = x.shape
    k = n // side

    def tiles(a):
        return a.reshape(p, k, side, k, side).transpose(0, 1, 3, 2, 4).reshape(p, k * k, side * side)
    x, y, w = tiles(x), tiles(y), tiles(w)
    sw = w.sum(2) + 1e-6
    xc = (x - ((x * w).sum(2) / sw)[..., None]) * w
    yc = (y - ((y * w).sum(2) / sw)[..., None]) * w
    vx, vy = (xc * xc).sum(2), (yc * yc).sum(2)
    c = (xc * yc).sum(2) / np.sqrt(vx * vy + 1e-3)
    inside = w.mean(2) > 0.9
    weight = np.sqrt(vx / sw) * inside
    mean = (c * weight).sum(1) / np.maximum(weight.sum(1), 1e-6)
    c = np.where(inside, c, np.inf)
    counted = inside.sum(1)
    q = np.sort(c, axis=1)
    quart = q[np.arange(p), np.maximum(0, (counted - 1) // 4)]
    quart = np.where(counted > 0, quart, 0.0)
    return mean.astype(np.float32), quart.astype(np.float32)


def _fine_detail(x):
    from scipy.ndimage import gaussian_filter  # noqa: PLC0415 - lazy: keeps `import leakscan` light

    return x - gaussian_filter(x, (0, 1.0, 1.0), mode="reflect")


def measure(ta, tb, ca, cb, wa=None, wb=None, min_ncc=None):
    """Alignment evidence of thumbnails ``ta``/``tb`` ``(p, 32, 32)`` and colour ``ca``/``cb`` ``(p, 3, 16, 16)``.

    Returns a dict of ``(p,)`` float32 arrays, one per :data:`ALIGNED` column (``zoom``:
    |log zoom|). With ``min_ncc``, pairs aligning below it get only
    their ``ncc`` (the rest NaN): the decision drops them anyway.
    """
    ncc, zoom, dy, dx = align(ta, tb, wa, wb)
    out = {"ncc": ncc}
    out.update({name: np.full(len(ncc), np.nan, np.float32) for name in ALIGNED[1:]})
    k = np.arange(len(ncc)) if min_ncc is None else np.flatnonzero(ncc >= min_ncc)
    if not len(k):
        return out
    pick = (lambda w: None if w is None else w[k])  # noqa: E731
    ta, tb, ca, cb, wa, wb = ta[k], tb[k], ca[k], cb[k], pick(wa), pick(wb)
    zoom, dy, dx = zoom[k], dy[k], dx[k]
    X, Y, W = warp(ta, tb, wa, wb, zoom, dy, dx)
    FX, FY = _fine_detail(X), _fine_detail(Y)
    fine = weighted_ncc(FX, FY, W)
    raw = weighted_ncc(X, Y, W)
    blocks_fine, _ = block_agreement(FX, FY, W)
    _, blocks_raw = block_agreement(X, Y, W)
    half = (lambda w: None if w is None else _down2(np.asarray(w, np.float32)))  # noqa: E731
    cdy = np.floor_divide(dy + 1, 2)
    cdx = np.floor_divide(dx + 1, 2)
    CX, CY, CW = warp(ca, cb, half(wa), half(wb), zoom, cdy, cdx)
    colour, chroma, colour_raw = colour_agreement(CX, CY, CW)
    bad = ncc[k] <= -1  # too little common picture: no evidence
    for arr in (fine, raw, colour, chroma, colour_raw, blocks_fine, blocks_raw):
        arr[bad] = 0.0
    for name, arr in (("ncc_fine", fine), ("ncc_raw", raw), ("blocks_fine", blocks_fine), ("blocks_raw", blocks_raw),
                      ("colour", colour), ("chroma", chroma), ("colour_raw", colour_raw),
                      ("zoom", np.abs(np.log(np.abs(zoom))))):
        out[name][k] = arr
    return out


def _dihedral(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each ``a[k]`` under dihedral variant ``v[k]`` (last two axes)."""
    out = np.array(a, copy=True)
    for vv in np.unique(v):
        m = v == vv
        out[m] = apply_dihedral(a[m], int(vv))
    return out


def _measure_padded(ta, tb, ca, cb, min_ncc=None, border_a=None, border_b=None, ground=None,
                    drawn_a=None, drawn_b=None):
    """:func:`measure`, leaving padding (rotation canvas, letterbox) out where there is any;
    ``border_a``/``_b`` (``(p, 32, 32)`` bool or None) mark the border each image's canvas
    view trimmed off (a flat border of any colour, a caption bar): padding too. For the pairs
    ``ground`` marks (``(p,)`` bool), a flat black or white ground both images show in the same
    place is kept as picture. ``drawn_a``/``_b`` (``(p, 32, 32)`` bool or None) mark a shared
    overlay (:class:`~leakscan.padding.SharedOverlay`): never picture."""
    p = len(ta)
    ua, ub = ta.astype(np.uint8), tb.astype(np.uint8)
    wa = padding_weights(ua, border=border_a)
    wb = padding_weights(ub, border=border_b)
    if wa is None and wb is None and drawn_a is None and drawn_b is None:
        return measure(ta, tb, ca, cb, min_ncc=min_ncc)
    wa = np.ones(ta.shape, np.float32) if wa is None else wa
    wb = np.ones(tb.shape, np.float32) if wb is None else wb
    if ground is not None and ground.any():
        # a flat black or white ground both show in the same place is picture they share, not
        # the padding of one (a plane on white sky, trimmed in one image and not the other)
        k = np.flatnonzero(ground)
        shared = flat_ground(ua[k]) & flat_ground(ub[k])
        wa[k] = np.where(shared, 1.0, wa[k])
        wb[k] = np.where(shared, 1.0, wb[k])
    for w, drawn in ((wa, drawn_a), (wb, drawn_b)):
        if drawn is not None:
            w[drawn] = 0.0
    padded = (wa.min(axis=(1, 2)) < 1) | (wb.min(axis=(1, 2)) < 1)
    out = {}
    for use_w in (False, True):
        k = np.flatnonzero(padded == use_w)
        if not len(k):
            continue
        r = measure(ta[k], tb[k], ca[k], cb[k], wa[k] if use_w else None, wb[k] if use_w else None, min_ncc)
        for name, arr in r.items():
            out.setdefault(name, np.zeros(p, np.float32))[k] = arr
    return out


def _measure_reads(reads: list, min_ncc=None) -> list:
    """:func:`_measure_padded` of each read ``(ta, tb, ca, cb, border_a, border_b, ground,
    drawn_a, drawn_b)`` (all but the first four may be None), all in one go: a list of result
    dicts, one per read.
    Each pair's evidence is its own, whatever else is measured with it."""
    if not reads:
        return []
    sizes = [len(r[0]) for r in reads]
    cat = [np.concatenate([np.asarray(r[c], np.float32) for r in reads]) for c in range(4)]  # float32, as each is

    def joined(c, empty):  # a column that some reads leave out (None): theirs all empty
        if all(r[c] is None for r in reads):
            return None
        return np.concatenate([empty(len(r[0])) if r[c] is None else r[c] for r in reads])
    no_border = (lambda p: np.zeros((p, THUMB, THUMB), bool))  # noqa: E731
    out = _measure_padded(*cat, min_ncc, joined(4, no_border), joined(5, no_border),
                          joined(6, lambda p: np.zeros(p, bool)), joined(7, no_border), joined(8, no_border))
    edges = np.cumsum([0] + sizes)
    return [{name: arr[a:b] for name, arr in out.items()} for a, b in zip(edges[:-1], edges[1:])]


def _align_job(job) -> np.ndarray:
    return align(*job)[0]


def _views(features: Features, i, j, v, padding):
    """Thumbnails and colour thumbnails of the pairs, row ``i`` under variant ``v`` (0-7), and
    the border of each (:func:`_border`, from the rows' ``padding`` boxes)."""
    ta = _dihedral(features.thumb[i], v).astype(np.float32)
    ca = _dihedral(features.colour[i], v).astype(np.float32)
    ba = _border(padding[i])
    return (ta, features.thumb[j].astype(np.float32), ca, features.colour[j].astype(np.float32),
            None if ba is None else _dihedral(ba, v), _border(padding[j]))


def _crop_read(features: Features, i, j, boxes: tuple, croppable=None, mirrored=None, fitted=None, padding=None,
               overlay: SharedOverlay | None = None):
    """``(ta, tb, ca, cb, drawn_a, drawn_b)``: for each pair, the crop view (:func:`~leakscan.views.crop_views`)
    in ``boxes`` of one image (of those ``croppable`` marks, default any) whose gradient
    histogram is nearest the other's embedding, and the other whole (thumbnails and colour
    thumbnails), mirrored left to right for the pairs ``mirrored`` marks: the crop search's
    match, to line up. The box of a view of an image ``fitted`` marks is then fitted side by
    side (:func:`~leakscan.verify.fit_box`): a crop of another shape, resized, lines up whole,
    its padding (``padding``: :meth:`Features.canvas_padding`, and flat black or white) left out.
    A shared ``overlay`` is marked where the view and the whole show it."""
    p = len(i)
    mirrored = np.zeros(p, bool) if mirrored is None else np.asarray(mirrored, bool)
    rows, at = np.unique(np.r_[i, j], return_inverse=True)
    ok = np.ones(len(rows), bool) if croppable is None else croppable[rows]
    emb = np.zeros((len(rows), len(boxes), features.embedding.shape[1]), np.float32)  # (u, boxes, d)
    emb[ok] = crop_hog(features.thumb[rows[ok]], boxes)  # the croppable images' views only

    def whole_emb(rows_):  # the whole side's embedding, mirrored where the pair is
        e = features.embedding[rows_]
        return np.where(mirrored[:, None], embedding_variants(e, [1])[:, 0], e)

    # the cropped side and the box: (i's view, j whole) or (j's view, i whole)
    sims = np.concatenate([np.where(ok[at[:p], None], np.einsum("pkd,pd->pk", emb[at[:p]], whole_emb(j)), -2),
                           np.where(ok[at[p:], None], np.einsum("pkd,pd->pk", emb[at[p:]], whole_emb(i)), -2)],
                          axis=1)
    best = sims.argmax(axis=1)
    side, box = best // len(boxes), best % len(boxes)
    cropped = rows[np.where(side == 0, at[:p], at[p:])]
    whole = np.where(side == 0, j, i)
    chosen = np.array(boxes, np.float64)[box]
    flip = mirrored.astype(np.int64)  # dihedral variant 1 (hflip) or 0
    whole_thumb = _dihedral(features.thumb[whole], flip).astype(np.float32)
    k = np.flatnonzero(np.zeros(p, bool) if fitted is None else fitted[cropped])
    if len(k):
        padding = features.canvas_padding() if padding is None else padding
        wa, wb = (padding_weights(features.thumb[rows_], border=_border(padding[rows_]))
                  for rows_ in (cropped[k], whole[k]))
        wb = None if wb is None else _dihedral(wb, flip[k])
        padded = np.zeros(len(k), bool)
        for w in (wa, wb):
            if w is not None:
                padded |= w.min(axis=(1, 2)) < 1
        for weighted in (False, True):  # the pairs without padding fit faster unweighted
            q = np.flatnonzero(padded == weighted)
            if len(q):
                wq = [w[q] if weighted and w is not None else None for w in (wa, wb)]
                chosen[k[q]], _ = fit_box(features.thumb[cropped[k[q]]], whole_thumb[k[q]], chosen[k[q]], *wq)
    thumb = box_views(features.thumb[cropped], chosen, features.thumb.shape[-1])
    colour = box_views(features.colour[cropped], chosen, features.colour.shape[-1])
    drawn_a = drawn_b = None
    if overlay is not None:  # any pixel of the view the overlay reaches into
        drawn_a = box_views(overlay.masks(p).astype(np.float32), chosen, features.thumb.shape[-1]) > 0
        drawn_b = _dihedral(overlay.masks(p), flip)
    return thumb, whole_thumb, colour, _dihedral(features.colour[whole], flip).astype(np.float32), drawn_a, drawn_b


def _common_part(features: Features, i, j, offset):
    """Thumbnails and colour thumbnails of the part two overlapping tiles have in common, each
    enlarged back to full size: ``j``'s pixel ``(y, x)`` shows ``i``'s ``(y + dy, x + dx)``."""
    o = offset.astype(np.float32) / THUMB
    box_i = np.stack([np.maximum(o[:, 0], 0), 1 + np.minimum(o[:, 0], 0),
                      np.maximum(o[:, 1], 0), 1 + np.minimum(o[:, 1], 0)], axis=1)
    box_j = np.stack([np.maximum(-o[:, 0], 0), 1 - np.maximum(o[:, 0], 0),
                      np.maximum(-o[:, 1], 0), 1 - np.maximum(o[:, 1], 0)], axis=1)
    cside = features.colour.shape[-1]
    return (box_views(features.thumb[i], box_i, THUMB), box_views(features.thumb[j], box_j, THUMB),
            box_views(features.colour[i], box_i, cside), box_views(features.colour[j], box_j, cside))


#: A tilted pair is measured at the search's angle moved by these (degrees; its views are 8.4
#: degrees apart).
TILT_REFINE = tuple(np.arange(-4.0, 4.5, 1.0))
#: ... and through these boxes (:data:`~leakscan.views.TILT_BOXES`, a share of the side): the
#: search's three, and each a little tighter (a crop well inside the box).
TILT_LOOKS = (("shape", 1.0), ("square", 1.0), ("area", 1.0),
              ("shape", TILT_TIGHT), ("square", TILT_TIGHT), ("area", TILT_TIGHT))


#: A copy turned within its own frame is read at its centre: as much as a turn by the search's
#: angle and this many degrees more leaves free of fill (half the views' spacing).
TURN_SLACK = 4.2


def _copy_read(features: Features, orig, copy, angle, turned):
    """``(thumb, colour, share)``: each copy as its tilted evidence reads it, whole (share 1)
    or, ``turned`` within its frame, its centre that stays free of fill (a share of the side,
    in the original's proportions)."""
    share = np.where(turned, turned_share(features.sizes[orig], np.minimum(np.abs(angle) + TURN_SLACK, 45.0)), 1.0)
    box = np.c_[0.5 - share / 2, 0.5 + share / 2, 0.5 - share / 2, 0.5 + share / 2]
    return (box_views(features.thumb[copy], box, THUMB),
            box_views(features.colour[copy], box, features.colour.shape[-1]), share)


def _look_scale(sizes, turn, share, scale: float) -> np.ndarray:
    """The scale of a tilted view's box: ``scale`` for a copy read whole (``share`` 1), and
    for one read at its centre the box of that share, whatever the turn."""
    return np.where(share < 1, share / turned_share(sizes, turn), scale)


def _tilted_look(features: Features, orig, copy_thumb, angle, share):
    """The angle around ``angle`` (:data:`TILT_REFINE`) and the box (an index into
    :data:`TILT_LOOKS`) whose tilted view of ``orig`` correlates best with the copy read as
    :func:`_copy_read` reads it (``copy_thumb``, ``share``): a quick look at the detail, before
    any alignment. A copy read at its centre is looked at through that centre only."""
    sizes = features.sizes[orig]
    detail_b = _fine_detail(copy_thumb)
    turns = np.stack([np.asarray(angle, np.float64) + d for d in TILT_REFINE], axis=1)
    whole = share >= 1
    oblong = is_oblong(sizes) & whole
    quick = np.full((len(copy_thumb), len(TILT_LOOKS), len(TILT_REFINE)), -np.inf, np.float32)
    for b, (box, scale) in enumerate(TILT_LOOKS):
        # one shape for a square picture, and for a copy read at its centre
        k = np.flatnonzero(whole | (b == 0)) if box == "shape" else np.flatnonzero(oblong)
        if b > 0:
            k = k[whole[k]]
        for r in range(len(TILT_REFINE)):
            view = tilted_views(features.thumb[orig[k]], sizes[k], turns[k, r], box=box,
                                scale=_look_scale(sizes[k], turns[k, r], share[k], scale))
            quick[k, b, r] = weighted_ncc(_fine_detail(view), detail_b[k], np.ones_like(view))
    pick = quick.reshape(len(copy_thumb), -1).argmax(axis=1)
    return turns[np.arange(len(turns)), pick % len(TILT_REFINE)], pick // len(TILT_REFINE)


def _tilted_sides(variant, i, j):
    """``(orig, copy)`` of tilted pairs: the picture whose views matched, and the turned copy."""
    back = MatchView.tilted_back(variant)
    return np.where(back, j, i), np.where(back, i, j)


def tilted_angles(features: Features, pairs: PairTable) -> np.ndarray:
    """The angle (degrees) of each tilted pair of ``pairs`` (``MatchView.is_tilted``) refined
    to the degree, as its evidence measures it; other pairs keep theirs."""
    out = np.array(pairs.angle, np.float32, copy=True)
    k = np.flatnonzero(MatchView.is_tilted(pairs.variant))
    if len(k):
        orig, copy = _tilted_sides(pairs.variant[k], pairs.i[k], pairs.j[k])
        tb, _, share = _copy_read(features, orig, copy, pairs.angle[k], MatchView.is_turned(pairs.variant[k]))
        out[k] = _tilted_look(features, orig, tb, pairs.angle[k], share)[0]
    return out


def _measure_tilted(features: Features, orig, copy, angle, turned, min_ncc) -> dict:
    """:func:`measure` of ``orig``'s tilted view against ``copy`` (at its centre when it was
    ``turned`` within its frame), at the angle and through the box of :func:`_tilted_look`;
    ``cosine`` and ``hamming`` are those of that view."""
    tb, cb, share = _copy_read(features, orig, copy, angle, turned)
    sizes = features.sizes[orig]
    turn, look = _tilted_look(features, orig, tb, angle, share)
    ta = np.empty_like(tb)
    ca = np.empty_like(cb)
    for b, (box, scale) in enumerate(TILT_LOOKS):
        k = look == b
        at = _look_scale(sizes[k], turn[k], share[k], scale)
        ta[k] = tilted_views(features.thumb[orig[k]], sizes[k], turn[k], box=box, scale=at)
        ca[k] = tilted_views(features.colour[orig[k]], sizes[k], turn[k], box=box, scale=at)
    cosine, hamming = _search_similarity(ta, tb)
    return {**measure(ta, tb, ca, cb, min_ncc=min_ncc), "cosine": cosine, "hamming": hamming}


def _search_similarity(ta: np.ndarray, tb: np.ndarray) -> tuple:
    """The search's own similarity of two thumbnails ``(p, 32, 32)``: the cosine of their
    gradient histograms and their pHash distance (a share of 64 bits)."""
    ua, ub = np.rint(ta).astype(np.uint8), np.rint(tb).astype(np.uint8)
    cosine = np.einsum("pd,pd->p", hog(ua), hog(ub))
    hamming = np.unpackbits(phash_variants(ua)[:, 0] ^ phash_variants(ub)[:, 0], axis=1).sum(axis=1) / 64.0
    return cosine, hamming


def _border(boxes: np.ndarray):
    """``(p, 32, 32)`` bool: the trimmed border of each row's canvas (padding boxes
    ``(p, 4)``), or None when none of them has one."""
    if not np.any(boxes != np.float32(NO_BORDER)):
        return None
    return border_mask(boxes, THUMB)


def _best_of(a: dict, b: dict) -> dict:
    take = b["ncc"] > a["ncc"]
    return {k: np.where(take, b[k], a[k]) for k in a}


def typical_neighbours(features: Features, rows: np.ndarray, kth_neighbour: np.ndarray, k: int = 10,
                       centroids: np.ndarray | None = None) -> np.ndarray:
    """``kth_neighbour`` (a copy) with an entry for each of ``rows`` the search did not query
    (-1: the large split with ``scope="cross"``): its k-th nearest neighbour by embedding, of
    equal ones the first in an order fixed by content (``centroids``: as
    :class:`~leakscan.index.CosineIndex`)."""
    rows = np.asarray(rows, np.int64)
    kth_neighbour = np.asarray(kth_neighbour, np.int64).copy()
    unknown = np.unique(rows[kth_neighbour[rows] < 0])
    pool = np.flatnonzero(features.ok & ~features.low_info)
    if len(unknown) and len(pool) > k:
        from .index import FEW_QUERIES, CosineIndex, scan_knn  # noqa: PLC0415 - only when the search left rows unqueried

        ranks = content_ranks(features.pixel_digest[pool])  # equal neighbours: taken in an order fixed by content
        if len(unknown) * FEW_QUERIES <= len(pool):  # a few (copies of the calibration): no index of every image
            sims, ids = scan_knn(lambda a, b: features.embedding[pool[a:b]], len(pool), features.embedding[unknown],
                                 k + 1, ranks=ranks)
        else:
            sims, ids = CosineIndex(features.embedding[pool], centroids=centroids).knn(features.embedding[unknown],
                                                                                       k + 1, ranks=ranks)
        order = np.argsort(-np.where(ids < 0, -np.inf, sims), axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, 1)
        col = np.where(pool[np.clip(ids[:, 0], 0, None)] == unknown, k, k - 1)  # the image itself comes first
        pick = ids[np.arange(len(unknown)), col]
        kth_neighbour[unknown] = np.where(pick >= 0, pool[np.clip(pick, 0, None)], -1)
    return kth_neighbour


def background(features: Features, rows: np.ndarray, kth_neighbour: np.ndarray, k: int = 10,
               jobs: int = 1) -> np.ndarray:
    """Aligned-detail correlation of each row with its k-th nearest neighbour
    (:func:`typical_neighbours`)."""
    out = np.zeros(len(features), np.float32)
    rows = np.asarray(rows, np.int64)
    kth_neighbour = typical_neighbours(features, rows, kth_neighbour, k)
    rows = rows[kth_neighbour[rows] >= 0]
    parts = even_blocks(len(rows), BLOCK, jobs)
    tasks = [(features.thumb[rows[part]], features.thumb[kth_neighbour[rows[part]]]) for part in parts]
    for q, ncc in run_chunks(_align_job, tasks, jobs=jobs):
        out[rows[parts[q]]] = ncc
    return np.maximum(out, 0)


#: The most thumbnails :func:`shared_overlay_of` looks at.
OVERLAY_SAMPLE = 4000


def shared_overlay_of(features: Features, rows: np.ndarray) -> SharedOverlay | None:
    """The shared overlay (:func:`~leakscan.padding.shared_overlay`) of the ``rows``'
    thumbnails: of at most :data:`OVERLAY_SAMPLE` of them, chosen by their content (the same
    images in any order, the same overlay)."""
    rows = np.asarray(rows, np.int64)
    if len(rows) > OVERLAY_SAMPLE:
        rows = rows[digest_order(features.pixel_digest[rows])][:OVERLAY_SAMPLE]
    return shared_overlay(features.thumb[np.sort(rows)])


class EvidenceMemo:
    """The evidence of pairs measured before, kept for detections of subsets of one set of
    images (a re-split's rounds, each searching the images left): a pair of the same two images
    proposed the same way is read from it, not measured again. Images are named by ``ids``: their
    rows in the whole set (:meth:`of_rows` gives the memo of a subset), or any other number that
    names one picture whatever the round (the calibration's copies). What is kept holds for the
    ``variants``, ``min_ncc`` and shared overlay it was measured with, and is kept apart for each,
    and for each ``part`` (the calibration's pairs apart from the search's)."""

    #: What the evidence of a pair reads of it besides the two images' features.
    KEY = np.dtype([("i", "<i8"), ("j", "<i8"), ("variant", "<i8"), ("offset", "<f4", (2,)), ("angle", "<f4"),
                    ("cosine", "<f4"), ("hamming", "<i8")])

    def __init__(self, ids: np.ndarray | None = None, store: list | None = None, part: str = ""):
        self.ids, self.part = ids, part
        self._store = [] if store is None else store  # [[(part, setting), sorted keys, their evidence], ...]

    def __len__(self) -> int:
        """Pairs kept, of every part and setting."""
        return sum(len(keys) for _, keys, _ in self._store)

    def name_of(self, rows: np.ndarray) -> np.ndarray:
        """What names ``rows`` (those of the features this memo is for) in the store."""
        rows = np.asarray(rows, np.int64)
        return rows if self.ids is None else self.ids[rows]

    def of_rows(self, rows: np.ndarray) -> "EvidenceMemo":
        """The memo for features taken at ``rows`` of the whole set (kept in the same store)."""
        return self.named(self.name_of(rows), self.part)

    def named(self, ids: np.ndarray, part: str) -> "EvidenceMemo":
        """The memo of ``part`` for features whose rows ``ids`` name (kept in the same store)."""
        return EvidenceMemo(np.asarray(ids, np.int64), self._store, part)

    def _keys(self, pairs: PairTable) -> np.ndarray:
        """One fixed-width byte string per pair (sortable: bytes compare)."""
        rec = np.zeros(len(pairs), self.KEY)
        rec["i"], rec["j"] = self.name_of(pairs.i), self.name_of(pairs.j)
        rec["variant"], rec["offset"], rec["angle"] = pairs.variant, pairs.offset, pairs.angle
        rec["cosine"], rec["hamming"] = pairs.cosine, pairs.hamming
        return rec.view(f"S{self.KEY.itemsize}")

    def _kept(self, setting: tuple) -> list:
        entry = next((e for e in self._store if e[0][0] == self.part and _same_setting(e[0][1], setting)), None)
        if entry is None:
            entry = [(self.part, setting), np.zeros(0, f"S{self.KEY.itemsize}"),
                     np.zeros((0, len(EVIDENCE)), np.float32)]
            self._store.append(entry)
        return entry

    def recall(self, pairs: PairTable, setting: tuple) -> tuple:
        """``(keys, known, evidence)``: each pair's key, whether it was measured before under
        ``setting``, and the evidence of those that were."""
        _, kept, evidence = self._kept(setting)
        keys = self._keys(pairs)
        at = np.minimum(np.searchsorted(kept, keys), max(len(kept) - 1, 0))
        known = kept[at] == keys if len(kept) else np.zeros(len(keys), bool)
        return keys, known, evidence[at[known]]

    def keep(self, keys: np.ndarray, evidence: np.ndarray, setting: tuple) -> None:
        entry = self._kept(setting)
        all_keys = np.concatenate([entry[1], keys])
        order = np.argsort(all_keys, kind="stable")
        entry[1], entry[2] = all_keys[order], np.concatenate([entry[2], evidence])[order]


def _same_setting(a: tuple, b: tuple) -> bool:
    """Whether two ``(variants, min_ncc, overlay)`` measure pairs alike."""
    if a[:2] != b[:2] or (a[2] is None) != (b[2] is None):
        return False
    return a[2] is None or all(np.array_equal(getattr(a[2], f.name), getattr(b[2], f.name))
                               for f in dataclasses.fields(a[2]))


def pair_evidence(features: Features, pairs: PairTable, kth_neighbour: np.ndarray,
                  variants=tuple(range(N_VARIANTS)), block: int | None = None,
                  min_ncc: float | None = None, jobs: int = 1, overlay: SharedOverlay | None = None,
                  memo: EvidenceMemo | None = None) -> np.ndarray:
    """The evidence matrix ``(len(pairs), len(EVIDENCE))`` float32 of candidate pairs.

    Exact pairs get a row of NaN (they need no evidence). ``kth_neighbour`` comes from the
    search (:class:`~leakscan.pairs.Candidates`); ``variants`` are the rotations/flips allowed.
    With ``min_ncc``, pairs that align below it get only their ``ncc`` (the decision drops
    them), which spares most of the work on a search's many weak candidates. ``overlay``
    (:func:`shared_overlay_of`) is left out of every picture read in one frame (not of the
    overlapping-tile and tilted readings, which move one picture against the other).
    Memory stays bounded: pairs are measured ``block`` (default :data:`BLOCK`) at a time,
    on ``jobs`` processes. With ``memo``, pairs measured before are read from it, and those
    measured now are kept in it.
    """
    E = np.full((len(pairs), len(EVIDENCE)), np.nan, np.float32)
    candidates = todo = np.flatnonzero(pairs.kind != Kind.EXACT)
    if not len(todo):
        return E
    setting = (tuple(variants), min_ncc, overlay)
    if memo is not None:
        keys, known, recalled = memo.recall(pairs.take(todo), setting)
        E[todo[known]] = recalled
        todo = todo[~known]
    blocks = [todo[part] for part in even_blocks(len(todo), block or BLOCK, jobs)]
    if jobs <= 1 or len(blocks) <= 1:
        for rows in blocks:
            E[rows] = _evidence_block(features, pairs.take(rows), variants, min_ncc, overlay)
    else:  # each worker gets the features of its block's rows only
        tasks = _evidence_tasks(features, pairs, blocks, variants, min_ncc, overlay)
        for k, e in run_chunks(_evidence_job, tasks, jobs=jobs):
            E[blocks[k]] = e
    if memo is not None:
        memo.keep(keys[~known], E[todo], setting)
    # distinctiveness: the pair's ncc against each image's with a typical near neighbour
    # (its neighbours are those of this search: measured again)
    measured = candidates[~np.isnan(E[candidates, EVIDENCE.index("ncc_fine")])]
    i, j = pairs.i[measured], pairs.j[measured]
    bg = background(features, np.unique(np.r_[i, j]), kth_neighbour, jobs=jobs)
    E[measured, EVIDENCE.index("distinct")] = E[measured, EVIDENCE.index("ncc")] - np.maximum(bg[i], bg[j])
    return E


def _evidence_job(job) -> np.ndarray:
    """The evidence of one block of pairs: ``job = (features of the rows they name, pairs renumbered
    to those rows, variants, min_ncc, overlay)`` (small enough to send to a worker process)."""
    return _evidence_block(*job)


def _evidence_tasks(features: Features, pairs: PairTable, blocks, variants, min_ncc, overlay):
    for rows in blocks:
        part = pairs.take(rows)
        used, inverse = np.unique(np.r_[part.i, part.j], return_inverse=True)
        part = dataclasses.replace(part, i=inverse[:len(rows)].astype(np.int64), j=inverse[len(rows):].astype(np.int64))
        yield features.take(used), part, variants, min_ncc, overlay


def _evidence_block(features: Features, pairs: PairTable, variants, min_ncc=None,
                    overlay: SharedOverlay | None = None) -> np.ndarray:
    todo = np.arange(len(pairs))
    E = np.zeros((len(pairs), len(EVIDENCE)), np.float32)
    i, j = pairs.i.copy(), pairs.j.copy()
    v = pairs.variant[todo].astype(np.int64)
    # measure each pair in one direction fixed by content (the image with the smaller pixel
    # digest is transformed), so the evidence does not depend on the order of the rows
    swap = digest_greater(features.pixel_digest[i], features.pixel_digest[j])
    i[swap], j[swap] = pairs.j[swap], pairs.i[swap]
    plain_swap = swap & (v >= 0) & (v < N_VARIANTS)
    v[plain_swap] = INVERSE_VARIANT[v[plain_swap]]
    rot_swap = swap & MatchView.is_derotated(v)
    v[rot_swap] = MatchView.DEROTATED + INVERSE_VARIANT[v[rot_swap] - MatchView.DEROTATED]
    v[swap] = MatchView.tilted_swapped(v[swap])
    # model pairs carry no transform: take the rotation/flip under which the embeddings agree best
    model = v < 0
    if model.any():
        ev = embedding_variants(features.embedding[i[model]], variants)
        best = np.einsum("pvd,pd->pv", ev, features.embedding[j[model]]).argmax(axis=1)
        v[model] = np.asarray(variants)[best]
    overlap = v == MatchView.OVERLAP
    tilted = MatchView.is_tilted(v)
    rotated = MatchView.is_derotated(v)
    plain_v = MatchView.dihedral(v).astype(np.int64)  # how the whole images line up
    padding = features.canvas_padding()  # a trimmed border is padding, not picture
    on_canvas = features.canvas_mask(trimmed=False)  # pictures rotated on a canvas (rotated back)
    res = {name: np.zeros(len(todo), np.float32) for name in ALIGNED}
    # each way of lining pairs up is a *read*: its inputs are gathered first and measured all
    # at once (one alignment of many pairs costs far less than several of a few), then each
    # pair keeps its best read, in the order below
    reads: list = []  # (ta, tb, ca, cb, border_a, border_b, ground, drawn_a, drawn_b)

    def read(ta, tb, ca, cb, ba=None, bb=None, ground=None, da=None, db=None) -> int:
        reads.append((ta, tb, ca, cb, ba, bb, ground, da, db))
        return len(reads) - 1

    def drawn_on(rows, v=None):  # a shared overlay's pixels in the rows (under variants v), or None
        drawn = None if overlay is None else overlay.masks(len(rows))
        return drawn if drawn is None or v is None else _dihedral(drawn, v)
    by_value = v == MatchView.VALUE
    plain = np.flatnonzero(~rotated & ~overlap & ~tilted & ~MatchView.by_brightness(v))
    asym = np.zeros(0, np.int64)
    if len(plain):
        # not the canvas of a picture rotated on it: two such canvases share flat corners
        ground = ~(on_canvas[i] | on_canvas[j])
        plain_read = read(*_views(features, i[plain], j[plain], plain_v[plain], padding), ground[plain],
                          drawn_on(i[plain], plain_v[plain]), drawn_on(j[plain]))
        asym = plain[np.isin(plain_v[plain], (5, 6))]  # rot90/rot270: try the other side too
        if len(asym):
            tb, ta, cb, ca, bb, ba = _views(features, j[asym], i[asym], plain_v[asym], padding)
            asym_read = read(ta, tb, ca, cb, ba, bb, ground[asym], drawn_on(i[asym]),
                             drawn_on(j[asym], plain_v[asym]))
    where = np.full(len(features), -1, np.int64)
    where[features.derotated_rows] = np.arange(len(features.derotated_rows))
    hue = np.flatnonzero(by_value)
    if len(hue):  # shifted in hue: the brightness of each, and the colour of each pixel's brightest
        # and darkest channels (which a hue shift keeps), the channels sorted. Two pictures each
        # rotated on a canvas are read upright, each rotated back: in the brightness enlarged
        # from 16 px the canvas corners are not found as padding, and two canvases turned alike
        # line up by them (different pictures turned alike were read as hue-shifted copies)
        both = on_canvas[i[hue]] & on_canvas[j[hue]]

        def hue_side(rows):
            colour = features.colour[rows].copy()
            colour[both] = features.derotated_colour[where[rows[both]]]
            border = _border(padding[rows])
            if border is not None:
                border[both] = False
            return colour, border
        (hca, hba), (hcb, hbb) = hue_side(i[hue]), hue_side(j[hue])
        hue_read = read(value_thumbnails(hca), value_thumbnails(hcb), np.sort(hca, axis=1).astype(np.float32),
                        np.sort(hcb, axis=1).astype(np.float32), hba, hbb, ~(on_canvas[i[hue]] | on_canvas[j[hue]]),
                        drawn_on(i[hue]), drawn_on(j[hue]))
    folded = np.flatnonzero(v == MatchView.FOLDED)
    unread = np.zeros(0, np.int64)
    if len(folded):  # solarized: the original solarized as the copy is (found folded, read in full
        # detail). A flat black or white ground is never picture here: solarizing turns white black.
        # A pair the fitting threshold barely inverts is no solarized copy: not read (no evidence)
        sa, sb, inverted = unsolarized(colour_at_thumbnail(features.colour[i[folded]], features.thumb[i[folded]]),
                                       colour_at_thumbnail(features.colour[j[folded]], features.thumb[j[folded]]))
        solarized = inverted >= MIN_INVERTED
        folded, unread = folded[solarized], folded[~solarized]
    if len(folded):
        fa, fb, _ = unsolarized(features.colour[i[folded]], features.colour[j[folded]])
        folded_read = read(luma(sa[solarized]), luma(sb[solarized]), fa, fb, _border(padding[i[folded]]),
                           _border(padding[j[folded]]), None, drawn_on(i[folded]), drawn_on(j[folded]))
    crop = np.flatnonzero(MatchView.is_cropped(v))
    crop_reads = []
    if len(crop):  # also read through the crop view that matched: a crop of half the picture is
        # more zoom and shift than the whole thumbnails line up over; pictures of 64 px or more
        # also through a stretched crop view (a crop of another shape resized), as the search
        # reads them. A view of a picture of 64 px or more has its box fitted side by side, from
        # the square view and from the stretched one: the climb finds the nearer best box
        mirrored = v == MatchView.CROPPED_HFLIP
        big = features.sizes.min(axis=1) >= OVERLAP_MIN_SIDE
        for rows, boxes, croppable in ((crop, crop_boxes(CROP_SIDE), None),
                                       (crop[big[i[crop]] | big[j[crop]]], STRETCH_BOXES, big)):
            if len(rows):  # a letterbox in a view is padding too
                ta, tb, ca, cb, da, db = _crop_read(features, i[rows], j[rows], boxes, croppable, mirrored[rows], big,
                                                    padding, overlay)
                crop_reads.append((rows, read(ta, tb, ca, cb, da=da, db=db)))
    rot = np.flatnonzero(rotated)
    rot_reads = []
    if len(rot):
        trimmed_view = features.canvas_mask(trimmed=True)
        for x, y in ((i[rot], j[rot]), (j[rot], i[rot])):
            k = np.flatnonzero(where[x] >= 0)
            if not len(k):
                continue
            q = where[x[k]]
            vv = plain_v[rot][k]
            ta = _dihedral(features.derotated_thumb[q], vv).astype(np.float32)
            ca = _dihedral(features.derotated_colour[q], vv).astype(np.float32)
            rot_reads.append((k, read(ta, features.thumb[y[k]].astype(np.float32), ca,
                                      features.colour[y[k]].astype(np.float32), None, _border(padding[y[k]]),
                                      db=drawn_on(y[k]))))
        # a border trimmed off may have been drawn over the picture (a caption bar), not added
        # around it: then the whole canvases line up, with the border left out
        trimmed = np.flatnonzero(trimmed_view[i[rot]] | trimmed_view[j[rot]])
        if len(trimmed):
            k = rot[trimmed]
            # the variant lines j's view up with i
            vt = np.where(trimmed_view[i[k]], plain_v[k], INVERSE_VARIANT[plain_v[k]])
            rot_reads.append((trimmed, read(*_views(features, i[k], j[k], vt, padding), None, drawn_on(i[k], vt),
                                            drawn_on(j[k]))))
    measured = _measure_reads(reads, min_ncc)
    if len(plain):
        for name, arr in measured[plain_read].items():
            res[name][plain] = arr
        if len(asym):
            cur = {name: arr[asym] for name, arr in res.items()}
            for name, arr in _best_of(cur, measured[asym_read]).items():
                res[name][asym] = arr
    if len(hue):
        for name, arr in measured[hue_read].items():
            res[name][hue] = arr
    if len(folded):
        for name, arr in measured[folded_read].items():
            res[name][folded] = arr
    for arr in res.values():
        arr[unread] = np.nan
    for rows, r in crop_reads:
        cur = {name: arr[rows] for name, arr in res.items()}
        for name, arr in _best_of(cur, measured[r]).items():
            res[name][rows] = arr
    if len(rot):
        best = {name: np.full(len(rot), -1.0 if name == "ncc" else 0.0, np.float32) for name in res}
        for k, r in rot_reads:
            cur = {name: arr[k] for name, arr in best.items()}
            for name, arr in _best_of(cur, measured[r]).items():
                best[name][k] = arr
        for name, arr in best.items():
            res[name][rot] = arr
    cols = dict(res)
    cols["cosine"] = np.nan_to_num(pairs.cosine[todo], nan=0.0)
    cols["hamming"] = np.where(pairs.hamming[todo] >= 0, pairs.hamming[todo] / 64.0, 0.5)
    ov = np.flatnonzero(overlap)
    if len(ov):  # overlapping tiles: the evidence of the part they have in common
        offset = np.where(swap[ov, None], -pairs.offset[ov], pairs.offset[ov])
        ta, tb, ca, cb = _common_part(features, i[ov], j[ov], offset)
        for name, arr in measure(ta, tb, ca, cb, min_ncc=min_ncc).items():
            cols[name][ov] = arr
        cols["cosine"][ov], cols["hamming"][ov] = _search_similarity(ta, tb)
    tl = np.flatnonzero(tilted)
    if len(tl):  # one turned (and cropped): the other's tilted view
        orig, copy = _tilted_sides(v[tl], i[tl], j[tl])
        turned = MatchView.is_turned(v[tl])
        for name, arr in _measure_tilted(features, orig, copy, pairs.angle[tl], turned, min_ncc).items():
            cols[name][tl] = arr
    cols["distinct"] = np.zeros(len(todo), np.float32)  # set by pair_evidence
    cols["cropped"] = MatchView.is_cropped(v).astype(np.float32)
    cols["overlap"] = overlap.astype(np.float32)
    # a view rotated back (interpolated), not one only trimmed out of its flat border
    cols["rotated"] = (rotated & (on_canvas[i] | on_canvas[j])).astype(np.float32)
    if features.model_embedding is not None:
        me = features.model_embedding
        cols["model"] = np.einsum("pd,pd->p", me[i], me[j])
    else:
        cols["model"] = np.zeros(len(todo), np.float32)
    for c, name in enumerate(EVIDENCE):
        E[:, c] = cols[name]
    return E
