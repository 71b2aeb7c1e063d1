"""Reduced decodes (JPEG DCT scaling, whole-factor reduction): what the features need, and the
same answers as full decodes."""

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from leakscan import audit
from leakscan.decode import decode_bytes, decode_reduced
from leakscan.settings import DECODE_SIDE
from conftest import FIXTURES, known_duplicates, scene


def _jpeg(img, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("size, scale", [((1024, 768), 2), ((2048, 1536), 4), ((4096, 2048), 8), ((300, 200), 1)])
def test_jpeg_decodes_at_the_smallest_scale_keeping_the_side(size, scale):
    data = _jpeg(scene(5, 64).resize(size, Image.BICUBIC))
    img, _, full = decode_reduced(data, DECODE_SIDE)
    assert full == size
    assert img.size == (size[0] // scale, size[1] // scale)
    assert min(img.size) >= min(DECODE_SIDE, min(size))


def test_orientation_is_applied_and_the_full_size_is_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: shown after a quarter turn
    data = _jpeg(scene(6, 64).resize((1024, 768), Image.BICUBIC), exif=exif)
    img, _, full = decode_reduced(data, DECODE_SIDE)
    assert full == (768, 1024)
    assert img.size == (384, 512)
    reference, _ = decode_bytes(data)
    assert reference.size == full


def test_other_formats_are_box_reduced_by_a_whole_factor():
    buf = io.BytesIO()
    scene(7, 64).resize((1000, 700), Image.BICUBIC).save(buf, "PNG")
    img, _, full = decode_reduced(buf.getvalue(), DECODE_SIDE)
    assert full == (1000, 700) and img.size == (1000 // 2, 700 // 2)
    img, _, full = decode_reduced(buf.getvalue(), None)
    assert img.size == full == (1000, 700)


@pytest.fixture(scope="module")
def enlarged_fixtures(tmp_path_factory):
    """The fixtures' known duplicates and 20 other fixtures, enlarged 32x to 1024 px JPEGs (the
    reduced decode then reads them at 1/4 scale), plus a byte-identical copy of one of them."""
    root = tmp_path_factory.mktemp("enlarged")
    rels = sorted({r[k] for r in known_duplicates() for k in ("a", "b")})
    others = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*/*.jpg"))
    rels += [r for r in others if r not in rels][::4][:20]
    written = []
    for rel in rels:
        try:
            with Image.open(FIXTURES / rel) as im:
                big = im.convert("RGB").resize((1024, 1024), Image.LANCZOS)
        except OSError:  # the fixtures' deliberately broken files
            continue
        out = root / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        big.save(out, "JPEG", quality=90)
        written.append(rel)
    src = root / written[0]
    copy = root / "test" / "copies" / "identical.jpg"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, copy)
    return root, written[0]


def _pairs(result, tier="pairs"):
    paths, table = result.manifest.paths, getattr(result, tier)
    return {tuple(sorted((str(paths[i]), str(paths[j])))) for i, j in zip(table.i, table.j)}


def _candidates(result):
    """Every candidate pair of an audit's features, with its aligned-detail correlation (ncc); a
    reading that refused a pair (the folded one, where no threshold inverts part of it) read nothing."""
    from leakscan.evidence import EVIDENCE, pair_evidence
    from leakscan.pairs import find_candidates
    from leakscan.views import transform_variants

    found = find_candidates(result.features, result.settings)
    ev = pair_evidence(result.features, found.pairs, found.kth_neighbour,
                       transform_variants(result.settings.transforms), jobs=1)
    paths = result.manifest.paths
    out: dict = {}  # {pair: {reading: ncc}}: a pair is read whole, as overlapping tiles, or tilted
    for i, j, v, e in zip(found.pairs.i, found.pairs.j, found.pairs.variant, ev[:, EVIDENCE.index("ncc")]):
        if np.isnan(e):
            continue
        key = tuple(sorted((str(paths[i]), str(paths[j]))))
        out.setdefault(key, {})[_reading(v)] = float(e)
    return out


def _grouped(result, pair) -> bool:
    """The two images of ``pair`` are in one duplicate group of ``result``."""
    rows = {str(p): k for k, p in enumerate(result.manifest.paths)}
    ids = result.groups.ids
    return ids[rows[pair[0]]] == ids[rows[pair[1]]]


def _reading(variant) -> str:
    from leakscan.views import READINGS, MatchView

    return READINGS[int(MatchView.reading(variant))]


def test_reduced_decode_finds_the_same_pairs_as_full_decodes(enlarged_fixtures):
    """Every pair one decode reports, the other proposes too, lined up as well (or, a pair within
    a group that no search proposes, joins in a group); a pair the full
    decode is sure of (confidence >= 0.9) the reduced decode reports; the duplicates agree but
    for a few, and the reduced decode finds the known duplicates the full decode finds.

    Each audit fits its decision on copies of a sample drawn by the digest of its decoded
    pixels, so the two decodes learn from different samples: a borderline pair may fall on
    either side of the bar (``bench/stability.py`` measures how often, for any one data set).
    """
    root, first = enlarged_fixtures
    reduced = audit(root, jobs=1, cache=False)
    full = audit(root, jobs=1, cache=False, full_decode=True)
    assert len(reduced.pairs) >= 20  # the known duplicates are there to be found
    differ = _pairs(reduced) ^ _pairs(full)
    assert len(differ) <= 0.05 * len(_pairs(full)), differ
    for one, other in ((reduced, full), (full, reduced)):
        proposed = _candidates(other)
        reported = dict(zip(_pairs_list(one) + _pairs_list(one, "possible"),
                            one.pair_records() + one.pair_records("possible")))
        mine = _candidates(one)
        for pair, rec in reported.items():
            if pair not in mine:  # a pair within a group, which no search proposes: the other joins it too
                assert _grouped(other, pair), pair
                continue
            assert pair in proposed, pair
            if rec["kind"] == "exact":
                continue  # same pixels: nothing to line up
            reading = ("overlap" if rec["detail"].startswith("overlap")
                       else "tilted" if rec["detail"].endswith("and cropped") else "whole")
            if reading in proposed[pair]:  # the tile and tilted searches' few best matches may differ
                theirs, ours = proposed[pair][reading], mine[pair][reading]
                assert abs(theirs - ours) <= 0.05, (pair, reading, theirs, ours)
            if one is full and rec["confidence"] >= 0.9:  # the reduced decode loses no sure pair
                assert pair in _pairs(other) | _pairs(other, "possible"), (pair, rec["confidence"])
    known = {tuple(sorted((r["a"], r["b"]))) for r in known_duplicates()}
    assert len(_pairs(reduced) & known) >= len(_pairs(full) & known) - 1
    assert np.array_equal(reduced.features.sizes, full.features.sizes)
    assert (reduced.features.sizes == 1024).all()
    # a byte-identical file is still an exact copy (same bytes, same reduced decode)
    for result in (reduced, full):
        kinds = dict(zip(_pairs_list(result), result.pairs.kind_names()))
        same = [k for (a, b), k in kinds.items() if a.endswith("identical.jpg") or b.endswith("identical.jpg")]
        assert "exact" in same


def _pairs_list(result, tier="pairs"):
    paths, table = result.manifest.paths, getattr(result, tier)
    return [tuple(sorted((str(paths[i]), str(paths[j])))) for i, j in zip(table.i, table.j)]



def test_an_audit_keeps_the_pictures_its_features_need(tmp_path):
    """The pictures an audit keeps (its calibration's copies and its keypoints are made from them,
    PICTURE_SIDE px a side) are those of the decode that keeps DECODE_SIDE px on the shorter side,
    as large as the full decode's and nearly the same pixels; a decode reduced further (1/8 of a
    1024 px JPEG is 128 px) would keep smaller or blurrier ones."""
    from leakscan.decode import read_bytes
    from leakscan.features import PICTURE_SIDE, small_picture

    sizes = [(640, 480), (1024, 768), (2048, 1536), (4096, 2048)]  # read at full, 1/2, 1/4 and 1/8 scale
    for k, size in enumerate(sizes):
        path = tmp_path / "data" / ("train" if k % 2 else "test") / "a" / f"{k}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_jpeg(scene(k, 96).resize(size, Image.BICUBIC)))
    result = audit(tmp_path / "data", jobs=1, cache=False)
    kept = dict(result.features.pictures)
    assert sorted(kept) == list(range(len(sizes)))
    for r in range(len(sizes)):
        data = read_bytes(result.manifest.resolve(r))
        full = small_picture(decode_bytes(data)[0])
        assert kept[r].shape == full.shape and max(full.shape) == PICTURE_SIDE, result.manifest.paths[r]
        assert np.array_equal(kept[r], small_picture(decode_reduced(data, DECODE_SIDE)[0]))
        assert np.abs(kept[r].astype(int) - full).mean() < 1, result.manifest.paths[r]
