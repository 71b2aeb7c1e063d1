"""Pair verification by aligned thumbnails (leakscan.verify) and its place in the search."""

import numpy as np
from PIL import Image

from leakscan.features import extract_features, thumbnail
from leakscan.discovery import discover
from leakscan.decide import find_pairs
from leakscan.settings import DetectSettings
from leakscan.verify import aligned_ncc, detail, fit_box
from conftest import photo_halves, scene


def thumb(img):
    return thumbnail(img.convert("RGB"))[None]


def crop(img, frac, dx=0.0, dy=0.0):
    w, h = img.size
    cw, ch = int(w * frac), int(h * frac)
    x0 = int((w - cw) / 2 + dx * (w - cw) / 2)
    y0 = int((h - ch) / 2 + dy * (h - ch) / 2)
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def test_edited_copies_line_up_and_other_scenes_do_not():
    base = scene(1, 128)
    a = detail(thumb(base))
    for name, edit in {
        "crop 75% of the area, off centre": crop(base, 0.866, dx=0.8, dy=-0.6),
        "resize": base.resize((77, 77), Image.LANCZOS),
        "darker, less contrast": Image.eval(base, lambda v: 40 + v // 2),
        "grayscale": base.convert("L"),
    }.items():
        assert aligned_ncc(a, detail(thumb(edit)))[0] >= 0.6, name
    others = np.stack([detail(thumb(scene(s, 128)))[0] for s in range(2, 40)])
    r = aligned_ncc(np.repeat(a, len(others), 0), others)
    assert r.max() < 0.6, r.max()


def test_aligned_ncc_rejects_bad_shapes():
    import pytest

    with pytest.raises(ValueError, match="aligned_ncc"):
        aligned_ncc(np.zeros((1, 31, 31)), np.zeros((1, 31, 31)))


def test_rotated_copies_found_by_default_and_verified():
    imgs = [scene(s, 64) for s in range(12)]
    rot = imgs[3].transpose(Image.Transpose.ROTATE_90)
    vflip = imgs[5].transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    arr = np.stack([np.asarray(i) for i in imgs + [rot, vflip]])
    feats = extract_features(discover(arr), jobs=1)
    pt = find_pairs(feats)
    got = {(int(i), int(j)) for i, j in zip(pt.i, pt.j)}
    assert got == {(3, 12), (5, 13)}
    assert np.all(pt.ncc >= DetectSettings().min_ncc)
    # the mirror-only setting misses the 90-degree rotation
    flip_only = find_pairs(feats, DetectSettings(transforms="flip"))
    assert (3, 12) not in {(int(i), int(j)) for i, j in zip(flip_only.i, flip_only.j)}


def test_a_lower_min_ncc_floor_keeps_a_superset_of_candidates():
    # min_ncc is a floor on the candidates before the decision (not the decision): lowering it
    # keeps more of them, and whatever is reported (duplicate or possible) passed the floor
    from leakscan.decide import detect
    from leakscan.evidence import EVIDENCE, pair_evidence
    from leakscan.pairs import Kind, find_candidates

    imgs = [scene(s, 64) for s in range(24)]  # 274 candidates, 45 at ncc 0.4 or more; 3 pairs reported at -1, 1 at 0.4
    arr = np.stack([np.asarray(i) for i in imgs])
    feats = extract_features(discover(arr), jobs=1)
    loose = dict(min_cosine=0.3, ratio=1.0, max_hamming=20)
    found = find_candidates(feats, DetectSettings(min_ncc=-1, **loose))  # the overlapping-tile search's floor too
    ncc = pair_evidence(feats, found.pairs, found.kth_neighbour)[:, EVIDENCE.index("ncc")]
    exact = found.pairs.kind == Kind.EXACT
    cand: dict = {}  # a pair read whole and as overlapping tiles: its better reading
    for i, j, c in zip(found.pairs.i, found.pairs.j, ncc):
        cand[(int(i), int(j))] = max(cand.get((int(i), int(j)), -2.0), float(c))

    def kept(floor):
        return {(int(i), int(j)) for i, j in zip(found.pairs.i[exact | (ncc >= floor)],
                                                 found.pairs.j[exact | (ncc >= floor)])}

    assert kept(0.4) < kept(-1)  # a strict superset: the floor removed some candidates
    for min_ncc in (-1, 0.4):
        d = detect(feats, DetectSettings(min_ncc=min_ncc, **loose))
        reported = [(int(i), int(j)) for t in (d.pairs, d.possible) for i, j in zip(t.i, t.j)]
        assert set(reported) <= kept(min_ncc)  # never a pair the floor removed
        assert all(cand[p] >= min_ncc for p in reported)
        for t in (d.pairs, d.possible):  # every non-exact pair carries its measured ncc and a confidence
            assert np.isfinite(t.ncc[t.kind != Kind.EXACT]).all()
            assert ((t.confidence >= 0) & (t.confidence <= 1)).all()


def test_without_a_calibration_the_floor_alone_decides_which_candidates_are_possible():
    """A decision that cannot be calibrated (here no picture can be read again to copy) lists
    every candidate it keeps as possible, whatever its evidence: only those at the min_ncc floor
    or more."""
    from leakscan.decide import detect

    imgs = [scene(s, 64) for s in range(12)]
    feats = extract_features(discover(np.stack([np.asarray(i) for i in imgs])), jobs=1)
    loose = dict(min_cosine=0.3, ratio=1.0, max_hamming=20)  # many candidates, most aligning poorly
    listed = {}
    for min_ncc in (-1, 0.4):
        d = detect(feats, DetectSettings(min_ncc=min_ncc, **loose), images=lambda rows: [None] * len(rows))
        assert d.calibration is None and any("too few images to calibrate" in w for w in d.warnings)
        assert len(d.pairs) == 0
        assert (d.possible.ncc >= min_ncc).all(), np.sort(d.possible.ncc)
        listed[min_ncc] = {(int(i), int(j)) for i, j in zip(d.possible.i, d.possible.j)}
    assert listed[0.4] and len(listed[0.4]) < len(listed[-1])  # the floor removed some, not all


def test_evidence_past_the_ncc_of_a_pair_under_the_floor_is_not_measured():
    """pair_evidence with min_ncc gives a pair aligning under it its ncc alone (the rest NaN: the
    decision drops it), and every other pair the evidence it gets without a floor."""
    from leakscan.evidence import ALIGNED, EVIDENCE, pair_evidence
    from leakscan.pairs import Kind, find_candidates

    imgs = [scene(s, 64) for s in range(12)]
    feats = extract_features(discover(np.stack([np.asarray(i) for i in imgs])), jobs=1)
    found = find_candidates(feats, DetectSettings(min_ncc=-1, min_cosine=0.3, ratio=1.0, max_hamming=20))
    pairs = found.pairs.take(found.pairs.kind != Kind.EXACT)
    whole = pair_evidence(feats, pairs, found.kth_neighbour)
    floored = pair_evidence(feats, pairs, found.kth_neighbour, min_ncc=0.4)
    ncc = whole[:, EVIDENCE.index("ncc")]
    under = ncc < 0.4
    assert under.any() and (~under).any()
    assert np.array_equal(floored[:, EVIDENCE.index("ncc")], ncc)
    others = [EVIDENCE.index(name) for name in ALIGNED[1:]]
    assert np.isnan(floored[np.ix_(under, others)]).all()
    assert np.array_equal(floored[~under], whole[~under], equal_nan=True)


def test_the_weighted_correlation_at_each_shift_is_the_plain_formula_over_the_overlap():
    # _ncc_at reads each shift's weighted sums from per-image moments; against the formula
    # written out, pair by pair, over the pixels both images cover
    from leakscan.verify import MIN_AREA, _moments, _ncc_at, _zoom

    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 16, 16)).astype(np.float32)
    y = (np.roll(x, (1, -2), axis=(1, 2)) + rng.normal(0, 0.3, x.shape)).astype(np.float32)
    wx = (rng.random(x.shape) > 0.2).astype(np.float32)
    wy = np.ones(x.shape, np.float32)
    wy[4] = 0  # too little common picture: scores -1
    for dy, dx in ((0, 0), (-1, 2), (3, -2)):
        got = _ncc_at(_moments(x, wx), _moments(y, wy), dy, dx)
        for p in range(len(x)):
            rows = [r for r in range(16) if 0 <= r - dy < 16]
            cols = [c for c in range(16) if 0 <= c - dx < 16]
            a = x[p][np.ix_(rows, cols)]
            b = y[p][np.ix_([r - dy for r in rows], [c - dx for c in cols])]
            w = wx[p][np.ix_(rows, cols)] * wy[p][np.ix_([r - dy for r in rows], [c - dx for c in cols])]
            if w.sum() < MIN_AREA * w.size:
                assert got[p] == -1.0
                continue
            ma, mb = (w * a).sum() / w.sum(), (w * b).sum() / w.sum()
            cov = (w * (a - ma) * (b - mb)).sum()
            want = cov / np.sqrt((w * (a - ma) ** 2).sum() * (w * (b - mb) ** 2).sum() + 1e-3)
            assert abs(got[p] - want) < 1e-4, (dy, dx, p)
    assert _ncc_at(_moments(x, wx), _moments(y, wy), -1, 2)[:4].min() > 0.8  # the shift the copy was made with
    # the zoom is a bilinear resampling about the centre: a constant stays constant
    assert np.allclose(_zoom(np.full((1, 16, 16), 7.0, np.float32), 1.19), 7.0, atol=1e-5)


def test_the_detail_is_the_thumbnail_minus_its_gaussian_blur_with_reflected_edges():
    """detail() blurs by products of matrices: the same as scipy's Gaussian filter, plain and
    normalised over the picture pixels."""
    from scipy.ndimage import gaussian_filter

    x = np.stack([thumb(scene(k, 96))[0] for k in range(3)]).astype(np.float32)
    w = np.ones_like(x)
    w[1, :6] = 0  # a letterbox bar
    w[2, :, -9:] = 0
    blur = (lambda v: gaussian_filter(v, (0, 2.0, 2.0), mode="reflect"))  # noqa: E731
    assert np.allclose(detail(x), x - blur(x), atol=1e-3)
    assert np.allclose(detail(x, w), (x - blur(x * w) / np.maximum(blur(w), 1e-3)) * w, atol=1e-3)


def test_a_box_is_fitted_side_by_side_to_the_crop_it_was_resized_from():
    """The box of a crop of another shape, resized to a square thumbnail, is found from a box
    about two pixels off on every side (to within a pixel or so: a side along flat picture is
    free to move a little); a box already right stays."""
    photo = photo_halves()[0].convert("L")
    w, h = photo.size
    a = np.asarray(photo.resize((32, 32), Image.BILINEAR), np.float32)
    truths = np.array([[0.15, 0.85, 0.25, 0.90], [0.05, 0.75, 0.0, 0.65], [0.30, 0.95, 0.10, 0.90]])
    b = np.stack([np.asarray(photo.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)))
                             .resize((32, 32), Image.BILINEAR), np.float32) for y0, y1, x0, x1 in truths])
    start = np.clip(truths + [[0.07, -0.06, -0.05, 0.06], [0.06, 0.06, 0.07, -0.05], [-0.07, -0.04, 0.06, 0.07]], 0, 1)
    A = np.repeat(a[None], len(truths), axis=0)
    boxes, ncc = fit_box(A, b, start)
    _, ncc_start = fit_box(A, b, start, rounds=0)
    err = np.abs(boxes - truths)
    assert err.mean() < 0.02 and err.max() < 0.08 and err.mean() < np.abs(start - truths).mean() / 3, boxes
    assert (ncc > 0.7).all() and (ncc > ncc_start + 0.3).all(), (ncc, ncc_start)
    kept, _ = fit_box(A, b, truths)
    assert np.abs(kept - truths).max() < 0.04, kept



def test_boxes_fitted_a_block_at_a_time_are_those_fitted_together(monkeypatch):
    """fit_box climbs FIT_BLOCK pairs at a time: the same boxes and NCC as all in one climb,
    with and without padding weights."""
    import leakscan.verify as verify

    photo = photo_halves()[0].convert("L")
    w, h = photo.size
    a = np.asarray(photo.resize((32, 32), Image.BILINEAR), np.float32)
    rng = np.random.default_rng(5)
    truths = np.sort(rng.uniform(0, 1, (7, 2, 2)), axis=2).reshape(7, 4) * [0.4, 1, 0.4, 1]
    truths[:, 1] = np.maximum(truths[:, 1], truths[:, 0] + 0.5)
    truths[:, 3] = np.maximum(truths[:, 3], truths[:, 2] + 0.5)
    b = np.stack([np.asarray(photo.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)))
                             .resize((32, 32), Image.BILINEAR), np.float32) for y0, y1, x0, x1 in truths])
    A = np.repeat(a[None], len(truths), axis=0)
    start = np.clip(truths + rng.uniform(-0.06, 0.06, truths.shape), 0, 1)
    wb = np.ones_like(b)
    wb[:, :4] = 0  # a letterbox bar on the crop
    for weights in ((None, None), (None, wb)):
        together = fit_box(A, b, start, *weights)
        monkeypatch.setattr(verify, "FIT_BLOCK", 3)
        apart = fit_box(A, b, start, *weights)
        monkeypatch.setattr(verify, "FIT_BLOCK", 128)
        assert np.array_equal(together[0], apart[0]) and np.array_equal(together[1], apart[1])
        assert np.abs(together[0] - start).max() > 0.01  # climbed


def test_halving_adds_as_the_mean_does():
    """The 2x2 block means of the coarse alignment are the bits ``mean(axis=(2, 4))`` gives,
    whatever the array's layout."""
    from leakscan.verify import _down2

    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        x = (rng.random((9, 32, 32)) * 255).astype(dtype)
        for a in (x, np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1), x[:, ::-1], x[::2]):
            expected = a.reshape(len(a), 16, 2, 16, 2).mean(axis=(2, 4))
            got = _down2(a)
            assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_reads_measured_together_give_each_pair_its_own_evidence():
    """The ways a block's pairs are lined up (whole, through a crop view, rotated back) are
    measured in one go: every pair gets the evidence it gets measured alone, bit for bit,
    whether or not its read has a border, a ground, padding or an overlay the others lack."""
    from PIL import ImageOps

    from leakscan.evidence import _measure_padded, _measure_reads
    from leakscan.features import colour_thumbnail
    from leakscan.padding import border_mask

    rng = np.random.default_rng(2)
    pictures = [scene(s) for s in range(6)] + list(photo_halves())
    edits = [lambda p: crop(p, 0.8, 0.3, -0.2), lambda p: ImageOps.expand(p, border=(0, p.height // 6), fill=0),
             lambda p: p.rotate(11, fillcolor=(255, 255, 255)), lambda p: ImageOps.mirror(p)]

    def views(imgs):
        return (np.stack([thumbnail(q.convert("RGB")) for q in imgs]).astype(np.float32),
                np.stack([colour_thumbnail(q.convert("RGB")) for q in imgs]).astype(np.float32))
    reads = []
    for e, edit in enumerate(edits):
        picked = [pictures[k] for k in rng.choice(len(pictures), 5, replace=False)]
        if e == 2:  # both on a white ground
            picked = [ImageOps.expand(p, border=p.width // 5, fill=(255, 255, 255)) for p in picked]
        ta, ca = views(picked)
        tb, cb = views([edit(p) for p in picked])
        border = None if e != 1 else border_mask(np.array([[0.0, 1 / 8, 1.0, 7 / 8]] * 5, np.float32), 32)
        ground = None if e != 2 else rng.random(5) < 0.6
        drawn = None  # a shared overlay (a logo in a corner) left out of the mirrored pairs' left sides
        if e == 3:
            drawn = np.zeros((5, 32, 32), bool)
            drawn[:, 24:, 24:] = True
        reads.append((ta, tb, ca, cb, None, border, ground, drawn, None))
    together = _measure_reads(reads, min_ncc=0.3)
    for read, got in zip(reads, together):
        alone = _measure_padded(*read[:4], 0.3, *read[4:])
        assert set(got) == set(alone)
        for name in alone:
            assert np.array_equal(got[name], alone[name], equal_nan=True), name


def test_evidence_kept_in_a_memo_is_the_evidence_measured_again(fixtures_audit):
    """A re-split's rounds search subsets of one set of images: the evidence a memo keeps from
    one subset is read for the same pairs of another (numbered apart), equal to measuring them
    again; only the pairs it has not seen are measured. What another setting measures is kept apart."""
    from leakscan.evidence import EvidenceMemo, pair_evidence
    from leakscan.pairs import Kind, find_candidates

    audit, _ = fixtures_audit
    ok = np.flatnonzero(audit.features.ok)
    first, second = ok, np.delete(ok, np.arange(0, len(ok), 5))  # a fifth of the images left out
    memo = EvidenceMemo()  # what it keeps are the pairs measured
    settings = DetectSettings()
    for rows in (first, second):
        feats = audit.features.take(rows)
        found = find_candidates(feats, settings)
        before = len(memo)
        kept = pair_evidence(feats, found.pairs, found.kth_neighbour, min_ncc=settings.min_ncc,
                             memo=memo.of_rows(rows))
        n_measured = len(memo) - before
        again = pair_evidence(feats, found.pairs, found.kth_neighbour, min_ncc=settings.min_ncc)
        assert np.array_equal(kept, again, equal_nan=True)
        alone = pair_evidence(feats, found.pairs, found.kth_neighbour, min_ncc=settings.min_ncc, memo=EvidenceMemo())
        assert np.array_equal(alone, again, equal_nan=True)  # a memo of these features alone: rows as they are
    pairs = found.pairs.take(found.pairs.kind != Kind.EXACT)
    assert n_measured < len(pairs) // 2, (n_measured, len(pairs))  # most were found in the first search too
    before = len(memo)  # another floor: nothing kept holds
    floored = pair_evidence(feats, found.pairs, found.kth_neighbour, min_ncc=0.2, memo=memo.of_rows(second))
    assert len(memo) - before == len(pairs)
    assert np.array_equal(floored, pair_evidence(feats, found.pairs, found.kth_neighbour, min_ncc=0.2),
                          equal_nan=True)
    before = len(memo)  # what the first setting kept is still there
    pair_evidence(feats, found.pairs, found.kth_neighbour, min_ncc=settings.min_ncc, memo=memo.of_rows(second))
    assert len(memo) == before


def test_a_detection_kept_in_a_memo_decides_as_one_measured_afresh(fixtures_audit, monkeypatch):
    """A re-split's next round (four fifths of the images, numbered apart) with the memo of the
    round before decides exactly as a detection without it: the same pairs, confidences and
    calibration; the memo spared most of the evidence, the calibration's copies' too."""
    from leakscan.decide import detect
    from leakscan.evidence import EvidenceMemo

    audit, _ = fixtures_audit
    ok = np.flatnonzero(audit.features.ok)
    second = np.delete(ok, np.arange(0, len(ok), 5))
    memo = EvidenceMemo()
    detect(audit.features.take(ok), jobs=1, memo=memo.of_rows(ok))
    recalled = {"": [0, 0], "calibration": [0, 0]}
    recall = EvidenceMemo.recall

    def counted(self, pairs, setting):
        keys, known, rows = recall(self, pairs, setting)
        recalled[self.part][0] += int(known.sum())
        recalled[self.part][1] += len(known)
        return keys, known, rows
    monkeypatch.setattr(EvidenceMemo, "recall", counted)
    before = len(memo)  # a memo keeps the pairs measured
    kept = detect(audit.features.take(second), jobs=1, memo=memo.of_rows(second))
    with_memo = len(memo) - before
    monkeypatch.undo()  # recalls counted for that round only
    afresh = detect(audit.features.take(second), jobs=1)
    all_measured = EvidenceMemo()
    detect(audit.features.take(second), jobs=1, memo=all_measured.of_rows(second))
    for a, b in ((kept.pairs, afresh.pairs), (kept.possible, afresh.possible)):
        assert len(a) and np.array_equal(a.keys(), b.keys()) and np.array_equal(a.confidence, b.confidence)
    assert kept.calibration.threshold == afresh.calibration.threshold
    assert np.array_equal(kept.calibration.coef, afresh.calibration.coef)
    assert kept.calibration.stats == afresh.calibration.stats
    assert with_memo < len(all_measured) // 2, (with_memo, len(all_measured))
    for part, (known, asked) in recalled.items():  # the search's pairs, and the calibration's copies'
        assert known > asked // 2, (part, known, asked)
