"""Copies rotated by an angle in (3, 45) degrees and then cropped free of their corners (no
padding left): found through the tilted views, reported with detail ``rotated N deg and
cropped``; pictures that are not copies are not paired. Copies are made with Pillow and with
scipy.ndimage, cropped to the largest box of the picture's shape or to the largest square.

Copies turned within their own frame whose corners repeat or mirror the picture's edge (as
scikit-image's ``mode="edge"`` and OpenCV's reflect borders, albumentations' default, fill them):
found through the tilted views too, read at the centre, reported as ``rotated N deg``."""
import re

import numpy as np
import pytest
from PIL import Image

from leakscan import audit
from leakscan.features import thumbnail
from leakscan.views import TILT_ANGLES, box_views, tilted_views, turned_share

from conftest import flower_mirror_pair, middle_and_half, photo_halves, plant_copies, write_dataset


def _box(w, h, angle, square):
    """The largest centred upright box of the picture's shape (or square) inside it turned by angle."""
    t = np.deg2rad(abs(angle))
    c, s = np.cos(t), np.sin(t)
    if square:
        bw = bh = min(w, h) / (c + s)
    else:
        k = min(w / (w * c + h * s), h / (w * s + h * c))
        bw, bh = w * k, h * k
    bw, bh = 0.98 * bw, 0.98 * bh  # a margin: no corner left
    return round((w - bw) / 2), round((h - bh) / 2), round((w + bw) / 2), round((h + bh) / 2)


def _turned(img, angle, tool, square=False):
    if tool == "pil":
        turned = img.rotate(angle, resample=Image.BICUBIC)
    else:
        from scipy import ndimage

        a = np.asarray(img, np.float32)
        turned = Image.fromarray(np.clip(np.rint(np.stack(
            [ndimage.rotate(a[:, :, c], angle, reshape=False, order=3) for c in range(3)], axis=2)), 0, 255)
            .astype(np.uint8))
    return turned.crop(_box(*img.size, angle, square))


def _corr(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


@pytest.mark.parametrize("angle, square", [(12.0, False), (-31.0, False), (24.0, True)])
def test_the_tilted_view_of_the_original_is_the_turned_and_cropped_copy(angle, square):
    img = photo_halves()[0]
    copy = _turned(img, angle, "pil", square)
    thumb = thumbnail(img)
    sizes = np.array([img.size])
    at = tilted_views(thumb[None], sizes, np.array([angle]), box="square" if square else "shape")[0]
    other_way = tilted_views(thumb[None], sizes, np.array([-angle]), box="square" if square else "shape")[0]
    upright = tilted_views(thumb[None], sizes, np.array([0.0]), box="square" if square else "shape")[0]
    target = thumbnail(copy)
    assert _corr(at, target) > 0.9
    assert _corr(at, target) > max(_corr(other_way, target), _corr(upright, target)) + 0.15
    # one angle per image and every angle for every image sample the same points
    views = tilted_views(thumb[None], sizes, TILT_ANGLES, box="square" if square else "shape")
    assert views.shape == (1, len(TILT_ANGLES), 32, 32)
    k = 3
    assert np.allclose(views[0, k], tilted_views(thumb[None], sizes, np.array([TILT_ANGLES[k]]), box="square" if square else "shape")[0],
                       atol=0.6)


def test_tilted_views_of_no_images():
    assert tilted_views(np.zeros((0, 32, 32), np.uint8), np.zeros((0, 2)), np.zeros(0)).shape == (0, 32, 32)
    assert tilted_views(np.zeros((0, 3, 16, 16)), np.zeros((0, 2)), TILT_ANGLES).shape == (0, len(TILT_ANGLES), 3,
                                                                                              16, 16)


def _planted(copies) -> set:
    return {frozenset((f"train/pic{k}.jpg", f"test/copy{k}.jpg")) for k in copies}


def _write(root, others=True):
    """The pictures and their turned copies (as :func:`plant_copies` writes them), and, with
    ``others``, its 40 other scenes."""
    pictures = photo_halves()
    copies = {0: (14.0, "pil", False), 1: (-37.0, "ndi", False), 2: (22.0, "pil", True), 3: (-9.0, "ndi", True),
              4: (41.0, "pil", False)}
    turned = {k: _turned(pictures[k], angle, tool, square) for k, (angle, tool, square) in copies.items()}
    if others:
        plant_copies(root, pictures, turned)
    else:
        write_dataset(root, {**{f"train/pic{k}.jpg": img for k, img in enumerate(pictures)},
                             **{f"test/copy{k}.jpg": img for k, img in turned.items()}}, quality=92)
    return copies


def test_rotated_then_cropped_copies_are_found_and_other_pictures_are_not_paired(tmp_path):
    copies = _write(tmp_path)
    r = audit(tmp_path, cache=False, jobs=1)
    dup = {frozenset((rec["a"], rec["b"])): rec for rec in r.pair_records()}
    for k, (angle, _, _) in copies.items():
        rec = dup.get(frozenset((f"train/pic{k}.jpg", f"test/copy{k}.jpg")))
        assert rec is not None, (k, angle, sorted(map(sorted, dup)))
        m = re.fullmatch(r"rotated (\d+) deg and cropped", rec["detail"])
        assert m and abs(int(m.group(1)) - abs(angle)) <= 2, (k, angle, rec["detail"])
    # nothing else: no two different pictures, no look-alike (but the flower's mirror-image halves)
    others = [key for key, rec in dup.items() if key not in _planted(copies) and not flower_mirror_pair(rec)
            and not middle_and_half(rec)]
    assert not others, sorted(map(sorted, dup))


def test_too_many_images_skip_the_tilted_search_with_a_warning(tmp_path, monkeypatch):
    import leakscan.pairs

    _write(tmp_path, others=False)  # the copies the search would find, and no more images than that
    monkeypatch.setattr(leakscan.pairs, "TILT_MAX_IMAGES", 5)
    r = audit(tmp_path, cache=False, jobs=1)
    assert any(w.startswith("copies rotated and then cropped free of their corners, or with their corners filled "
                            "from the picture (edge pixels repeated or mirrored), were not searched: 11 images")
               for w in r.warnings), r.warnings
    assert not any(rec["detail"].startswith("rotated") for rec in r.pair_records() + r.pair_records("possible"))


def _turned_in_frame(img, angle, mode):
    """``img`` turned by ``angle`` degrees within its own frame, the corners filled by
    scipy.ndimage's ``mode`` ("nearest": the edge pixels repeated; "mirror": OpenCV's reflect-101)."""
    from scipy import ndimage

    a = np.asarray(img, np.float32)
    return Image.fromarray(np.clip(np.rint(np.stack(
        [ndimage.rotate(a[:, :, c], angle, reshape=False, order=3, mode=mode) for c in range(3)], axis=2)), 0, 255)
        .astype(np.uint8))


@pytest.mark.parametrize("angle, mode", [(18.0, "nearest"), (-33.0, "mirror")])
def test_the_centre_of_a_copy_turned_in_its_frame_is_the_tilted_view_of_that_share(angle, mode):
    img = photo_halves()[1]
    copy = thumbnail(_turned_in_frame(img, angle, mode))
    sizes = np.array([img.size])
    share = turned_share(sizes, [angle])[0]
    assert 0.5 < share < 0.85
    centre = box_views(copy[None], np.array([[0.5 - share / 2, 0.5 + share / 2] * 2]), 32)[0]
    view = tilted_views(thumbnail(img)[None], sizes, np.array([angle]))[0]
    other_way = tilted_views(thumbnail(img)[None], sizes, np.array([-angle]))[0]
    assert _corr(view, centre) > 0.95
    assert _corr(view, centre) > _corr(other_way, centre) + 0.15


def test_copies_turned_in_their_frame_with_the_picture_in_their_corners_are_found(tmp_path):
    pictures = photo_halves()
    copies = {0: (17.0, "nearest"), 2: (-28.0, "mirror"), 4: (36.0, "reflect"), 5: (-11.0, "mirror")}
    plant_copies(tmp_path, pictures, {k: _turned_in_frame(pictures[k], angle, mode)
                                      for k, (angle, mode) in copies.items()})
    r = audit(tmp_path, cache=False, jobs=1)
    dup = {frozenset((rec["a"], rec["b"])): rec for rec in r.pair_records()}
    for k, (angle, mode) in copies.items():
        rec = dup.get(frozenset((f"train/pic{k}.jpg", f"test/copy{k}.jpg")))
        assert rec is not None, (k, angle, mode, sorted(map(sorted, dup)))
        m = re.fullmatch(r"rotated (\d+) deg", rec["detail"])
        assert m and abs(int(m.group(1)) - abs(angle)) <= 2, (k, angle, rec["detail"])
    others = [key for key, rec in dup.items() if key not in _planted(copies) and not flower_mirror_pair(rec)
            and not middle_and_half(rec)]
    assert not others, sorted(map(sorted, dup))


def _area_box(w, h, angle):
    """The largest-area upright rectangle inside a w x h picture turned by angle (of another shape)."""
    t = np.deg2rad(abs(angle))
    s, c = np.sin(t), np.cos(t)
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 2 * s * c * long_side:
        x = 0.5 * short_side
        bw, bh = (x / s, x / c) if w >= h else (x / c, x / s)
    else:
        cos2 = c * c - s * s
        bw, bh = (w * c - h * s) / cos2, (h * c - w * s) / cos2
    bw, bh = 0.97 * bw, 0.97 * bh
    return round((w - bw) / 2), round((h - bh) / 2), round((w + bw) / 2), round((h + bh) / 2)


def test_copies_turned_then_cropped_to_the_largest_area_rectangle_are_found(tmp_path):
    """Turned by 22 degrees and cropped to the largest-area upright rectangle inside (the usual
    recipe; another shape than the picture's): found through the largest-area tilted views of
    oblong pictures, and nothing else paired."""
    pictures = photo_halves()
    copies = {k: img.rotate(22.0, resample=Image.BICUBIC).crop(_area_box(*img.size, 22.0))
              for k, img in enumerate(pictures)}
    plant_copies(tmp_path, pictures, copies)
    dup = {frozenset((rec["a"], rec["b"])): rec for rec in audit(tmp_path, cache=False, jobs=1).pair_records()}
    found = {k for k in copies if frozenset((f"train/pic{k}.jpg", f"test/copy{k}.jpg")) in dup}
    assert found == set(copies), sorted(map(sorted, dup))
    others = [key for key, rec in dup.items() if key not in _planted(copies) and not flower_mirror_pair(rec)
            and not middle_and_half(rec)]
    assert not others, sorted(map(sorted, dup))


def _look_alike_radiographs(folder, n=80, side=192, seed=10, copies=10):
    """``n`` chest-radiograph-like pictures (one template; each its own anatomy, ribs and noise),
    a quarter in test, and ``copies`` train pictures copied into test with a contrast change,
    a crop and a re-encode. Every picture looks like every other: pairs of them lined up by a
    tilted view are look-alikes, never copies."""
    from PIL import ImageFilter

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    train = []
    for k in range(n):
        cx, cy = 0.5 + rng.normal(0, 0.02), 0.55 + rng.normal(0, 0.02)
        body = np.exp(-(((xx - cx) / (0.38 + rng.normal(0, .02))) ** 2
                        + ((yy - cy) / (0.5 + rng.normal(0, .03))) ** 2) ** 2)
        img = 0.15 + 0.6 * body
        for side_of in (-1, 1):
            lx, ly = cx + side_of * (0.17 + rng.normal(0, .015)), cy - 0.05 + rng.normal(0, .02)
            img -= 0.35 * np.exp(-(((xx - lx) / (0.11 + rng.normal(0, .01))) ** 2
                                   + ((yy - ly) / (0.22 + rng.normal(0, .015))) ** 2) ** 1.5)
        for r in range(rng.integers(8, 11)):  # ribs
            y0 = 0.25 + r * 0.045 + rng.normal(0, 0.006)
            img += 0.08 * (np.abs(yy - (y0 + 0.25 * (xx - cx) ** 2)) < 0.008) * body
        img += 0.2 * (0.8 + 0.4 * rng.random()) * np.exp(
            -(((xx - cx - 0.04) / 0.1) ** 2 + ((yy - cy - 0.08) / 0.12) ** 2) ** 2)
        img += rng.normal(0, 0.02, img.shape)
        pic = Image.fromarray(np.uint8(np.clip(img, 0, 1) * 255), "L").filter(ImageFilter.GaussianBlur(1.2))
        split = "test" if k % 4 == 0 else "train"
        path = folder / split / ("normal", "pneumonia")[(k // 4) % 2] / f"x{k:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pic.save(path)
        if split == "train":
            train.append((path, pic))
    for j in rng.choice(len(train), copies, replace=False):
        path, pic = train[j]
        brighter = np.clip((np.asarray(pic, np.float32) - 10) * 1.2, 0, 255).astype(np.uint8)
        copy = Image.fromarray(brighter).crop((6, 4, side - 6, side - 4)).resize((side * 7 // 8,) * 2, Image.BILINEAR)
        copy.save(folder / "test" / path.parent.name / f"copy_{path.stem}.jpg", quality=80)


def test_look_alikes_lined_up_by_a_tilted_view_are_not_duplicates(tmp_path):
    """Every tilted pair of these look-alikes is also proposed whole: the tilted reading has no
    pair of its own to estimate its share of copies from. It takes the share of the candidates
    as a whole (a fraction of a percent here), not even odds, at which pairs of different
    radiographs 'rotated 3 deg' were duplicates (3 of them before)."""
    _look_alike_radiographs(tmp_path)
    result = audit(tmp_path, cache=False, jobs=1)
    records = result.pair_records()
    tilted = [r for r in records if re.search(r"rotated [\d.]+ deg", r["detail"])]
    different = [r for r in tilted if r["a"].rsplit("/", 1)[-1].removeprefix("copy_").split(".")[0]
                 != r["b"].rsplit("/", 1)[-1].removeprefix("copy_").split(".")[0]]
    assert not different, different
    copies = {r["a"] for r in records if "/copy_" in r["a"]} | {r["b"] for r in records if "/copy_" in r["b"]}
    assert len(copies) >= 8  # the copies are still found (by their keypoints, whole or tilted)
