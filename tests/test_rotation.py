"""Copies rotated by other angles: the angle from the padding, the de-rotated view, its search and storage."""

import numpy as np
from PIL import Image

from leakscan.features import extract_features
from leakscan.manifest import discover
from leakscan.verify import aligned_ncc, detail
from conftest import scene
from test_verify import crop, thumb


def test_rotation_by_any_angle_is_undone_from_the_padding():
    from leakscan.rotation import derotate

    base = scene(7, 160)
    rotated = base.rotate(25, resample=Image.BICUBIC, expand=True)
    angle, view = derotate(rotated, thumb(rotated)[0])
    assert abs(angle - 25) <= 1.0
    assert abs(view.size[0] - 160) <= 4 and abs(view.size[1] - 160) <= 4
    assert aligned_ncc(detail(thumb(base)), detail(thumb(view)))[0] > 0.8
    # ordinary pictures (no flat black/white border) are not examined
    assert all(derotate(scene(s, 96), thumb(scene(s, 96))[0]) is None for s in range(10))


def test_rotated_and_cropped_copies_found_by_default(tmp_path):
    from leakscan import audit

    base = [scene(s, 160) for s in range(30)]
    for s, img in enumerate(base):
        img.save(tmp_path / f"img{s:02d}.jpg", quality=90)
    base[4].rotate(-20, resample=Image.BICUBIC, expand=True).save(tmp_path / "rotated.jpg", quality=90)
    crop(base[9], 0.85, dx=0.9, dy=0.9).save(tmp_path / "cropped.jpg", quality=90)
    r = audit(tmp_path, cache=False)
    found = {frozenset((r.manifest.paths[i], r.manifest.paths[j])): d
             for i, j, d in zip(r.pairs.i, r.pairs.j, r.pairs.detail())}
    assert found.get(frozenset(("img04.jpg", "rotated.jpg")), "").startswith("rotated")
    assert frozenset(("img09.jpg", "cropped.jpg")) in found
    assert len(found) == 2, found
    assert r.features.derotated_rows.tolist() == [list(r.manifest.paths).index("rotated.jpg")]
    assert abs(float(r.features.derotated_angle[0]) + 20) <= 1.0


def test_sparse_rotated_views_survive_take_and_concat():
    base = [scene(s, 96) for s in range(4)]
    imgs = base + [base[1].rotate(30, resample=Image.BICUBIC, expand=True).resize((96, 96))]
    arr = np.stack([np.asarray(i) for i in imgs])
    f = extract_features(discover(arr), jobs=1)
    assert f.derotated_rows.tolist() == [4]
    t = f.take(np.array([4, 0, 1]))
    assert t.derotated_rows.tolist() == [0] and np.array_equal(t.derotated_thumb[0], f.derotated_thumb[0])
    from leakscan.features import Features

    c = Features.concat([f, f], [0, len(f)])
    assert c.derotated_rows.tolist() == [4, 9]


def test_a_failing_rotation_check_does_not_lose_the_image(monkeypatch):
    import leakscan.features as F

    def broken(img, small):
        raise RuntimeError("boom")

    monkeypatch.setattr(F, "derotate", broken)
    arr = np.stack([np.asarray(scene(s, 64)) for s in range(3)])
    f = extract_features(discover(arr), jobs=1)
    assert f.ok.all() and not f.failures and len(f.derotated_rows) == 0


def test_de_rotated_views_come_back_from_the_cache_unchanged(tmp_path):
    from leakscan import audit

    for s in range(4):
        scene(s, 96).save(tmp_path / f"img{s}.png")
    scene(1, 96).rotate(30, resample=Image.BICUBIC, expand=True).save(tmp_path / "rotated.png")
    db = tmp_path / "cache.sqlite"
    first = audit(tmp_path, cache=db, jobs=1)
    again = audit(tmp_path, cache=db, jobs=1)
    assert again.features.n_cached == 5 and len(first.features.derotated_rows) == 1
    for name in ("derotated_rows", "derotated_angle", "derotated_embedding", "derotated_thumb", "thumb", "hashes", "embedding"):
        np.testing.assert_array_equal(getattr(first.features, name), getattr(again.features, name))
