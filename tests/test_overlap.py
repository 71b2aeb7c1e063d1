"""Overlapping tiles: two crops of one large photo sharing half their area or more are
duplicates (detail ``overlap N%``); tiles sharing less are at most possible, and tiles of
different photos are never paired. Tiles are cut from the photos that ship with scikit-learn,
side by side and diagonally, with Pillow and with numpy slicing."""
import re

import numpy as np
import pytest
from PIL import Image

from leakscan import audit
from leakscan.features import QUADRANTS, WINDOW_PLACES, window_hog
from leakscan.pairs import overlap_share

from conftest import scene


def _photos():
    from sklearn.datasets import load_sample_images

    return [Image.fromarray(a) for a in load_sample_images().images]  # two 640x427 photos


def test_a_quadrant_of_one_tile_is_found_among_the_windows_of_the_other():
    rng = np.random.default_rng(0)
    big = np.asarray(_photos()[0].convert("L").resize((64, 43)), np.uint8)[:40]
    a = big[0:32, 0:32]
    b = big[8:40, 6:38]  # b's pixel (y, x) is a's (y + 8, x + 6)
    wa, wb = window_hog(np.stack([a, b]))
    quadrant = wa[QUADRANTS[3]]  # a's bottom-right quadrant: in b at (16 - 8, 16 - 6)
    sims = wb @ quadrant
    assert WINDOW_PLACES[int(np.argmax(sims))] == (8, 10)
    assert sims.max() > 0.9
    noise = rng.integers(0, 256, (32, 32)).astype(np.uint8)
    assert (window_hog(noise[None])[0] @ quadrant).max() < sims.max() - 0.3


def test_overlap_share():
    assert overlap_share(np.array([0, 0])) == 1.0
    assert overlap_share(np.array([16, 0])) == 0.5
    assert overlap_share(np.array([-8, 8])) == pytest.approx(0.75 * 0.75)


def _tiles():
    """``{name: (photo, box)}``: tiles of 200 px, side by side and diagonal."""
    out = {}
    for p, photo in enumerate(_photos()):
        for k, x in enumerate((20, 80, 140, 260, 380)):  # 70%, 40%, then apart
            out[f"p{p}_row{k}"] = (p, (x, 20, x + 200, 220))
        out[f"p{p}_diag"] = (p, (40, 60, 240, 260))  # (20, 40) from row0: 72% in common
    return out


def _share(a, b):
    (_, ba), (_, bb) = a, b
    w = max(0, min(ba[2], bb[2]) - max(ba[0], bb[0]))
    h = max(0, min(ba[3], bb[3]) - max(ba[1], bb[1]))
    return w * h / ((ba[2] - ba[0]) * (ba[3] - ba[1]))


def _write_tiles(root, others=True):
    """The tiles of :func:`_tiles` (every other one cut with numpy) and, with ``others``, 40
    other pictures."""
    photos = _photos()
    for s in ("train", "test"):
        (root / s).mkdir()
    for n, (name, (p, box)) in enumerate(sorted(_tiles().items())):
        if n % 2:  # numpy slicing
            x0, y0, x1, y1 = box
            img = Image.fromarray(np.asarray(photos[p])[y0:y1, x0:x1])
        else:
            img = photos[p].crop(box)
        img.save(root / ("test" if "row1" in name or "diag" in name else "train") / f"{name}.jpg", quality=90)
    for k in range(40 if others else 0):  # other pictures: the look-alikes the decision learns to tell tiles from
        scene(100 + k, 200).save(root / "train" / f"scene{k:02d}.jpg", quality=90)


def test_overlapping_tiles_are_duplicates_and_others_are_not(tmp_path):
    tiles = _tiles()
    _write_tiles(tmp_path)
    r = audit(tmp_path, cache=False, jobs=1)
    assert r.calibration.readings.get("overlap") is not None  # the overlapping-tile decision was fitted on this data
    path = {name: f"{'test' if 'row1' in name or 'diag' in name else 'train'}/{name}.jpg" for name in tiles}
    dup = {frozenset((rec["a"], rec["b"])): rec for rec in r.pair_records()}
    possible = {frozenset((rec["a"], rec["b"])) for rec in r.pair_records("possible")}
    names = sorted(tiles)
    forty = []
    for x in range(len(names)):
        for y in range(x + 1, len(names)):
            a, b = names[x], names[y]
            key = frozenset((path[a], path[b]))
            share = _share(tiles[a], tiles[b]) if tiles[a][0] == tiles[b][0] else 0.0
            if share >= 0.6:
                assert key in dup, (a, b, share)
                rec = dup[key]
                m = re.fullmatch(r"overlap (\d+)%", rec["detail"])
                assert m and abs(int(m.group(1)) / 100 - share) <= 0.06, (a, b, share, rec["detail"])
            elif share < 0.45:
                assert key not in dup, (a, b, share, dup.get(key))
            if 0.35 <= share <= 0.45:
                forty.append(key)
    # tiles sharing 40% that the search proposes are worth a look, not duplicates
    assert sum(k in possible for k in forty) >= 2, (forty, possible)
    assert not any(k in dup for k in possible)
    # no distractor is paired with anything
    assert not any("scene" in p for k in dup for p in k), [sorted(k) for k in dup if any("scene" in p for p in k)]


@pytest.mark.parametrize("seed", range(4))
def test_a_tile_copy_shares_half_to_four_fifths_of_its_picture(seed):
    """The calibration's tile copy: the picture shifted by 20-45% of a side, the part in common
    unchanged, the rest other content (the picture turned half round)."""
    from leakscan.calibrate import overlapping_tile

    img = _photos()[seed % 2].resize((80, 60))
    tile = overlapping_tile(img, np.random.default_rng(seed))
    assert tile.size == img.size
    a, t = np.asarray(img, np.int16), np.asarray(tile, np.int16)
    h, w = a.shape[:2]
    # find the shift: the one under which the copy and the picture agree exactly over the most pixels
    best = None
    for dy in range(-h // 2, h // 2 + 1):
        for dx in range(-w // 2, w // 2 + 1):
            ys, xs = slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx))
            yt, xt = slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx))
            if not np.array_equal(a[ys, xs], t[yt, xt]):
                continue
            share = (h - abs(dy)) * (w - abs(dx)) / (h * w)
            if (dy or dx) and (best is None or share > best):
                best = share
    assert best is not None and 0.5 <= best <= 0.8 + 1e-9, best


def test_the_coded_window_index_finds_the_same_tiles(tmp_path, monkeypatch):
    """Past EXACT_WINDOWS windows the index keeps product-quantized codes, built in chunks."""
    import leakscan.pairs

    _write_tiles(tmp_path, others=False)  # 12 tiles: 972 windows
    exact = {frozenset((rec["a"], rec["b"])) for rec in audit(tmp_path, cache=False, jobs=1).pair_records()
             if rec["detail"].startswith("overlap")}
    monkeypatch.setattr(leakscan.pairs, "EXACT_WINDOWS", 500)
    monkeypatch.setattr(leakscan.pairs, "WINDOW_BLOCK", 4)  # three chunks
    coded = {frozenset((rec["a"], rec["b"])) for rec in audit(tmp_path, cache=False, jobs=1).pair_records()
             if rec["detail"].startswith("overlap")}
    assert len(exact) >= 8 and len(coded & exact) >= len(exact) - 1, (exact, coded)


def test_too_many_images_skip_the_tile_search_with_a_warning(tmp_path, monkeypatch):
    import leakscan.pairs

    _write_tiles(tmp_path, others=False)  # the tiles the search would pair, and no more images than that
    monkeypatch.setattr(leakscan.pairs, "OVERLAP_MAX_IMAGES", 5)
    r = audit(tmp_path, cache=False, jobs=1)
    assert any(w.startswith("overlapping tiles were not searched: 12 images") for w in r.warnings), r.warnings
    assert not any(rec["detail"].startswith("overlap") for rec in r.pair_records() + r.pair_records("possible"))

