"""The closer look at pairs left in doubt: keypoints on larger pictures (leakscan.keypoints)."""

from __future__ import annotations

import dataclasses
import sys

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFilter

import leakscan
import leakscan.decide
import leakscan.features
import leakscan.decode
import leakscan.keypoints
import leakscan.orb
from leakscan.keypoints import (LOOK_ALIKES_AS_COPIES, TOO_FEW_PICTURES, KeypointLook, closer_look, fit_look,
                                keypoint_pairs, look_at, match_pictures, picture_keypoints)
from leakscan.pairs import Candidates, Kind, PairTable
from leakscan.views import MatchView
from conftest import gone_after_the_first_read, surface, under_one_logo


def texture(seed: int, size=(320, 240)) -> Image.Image:
    """A photo of gravel or grass as far as a 32 px thumbnail can tell: fine random detail
    (a few px) over a faint colour cast, every seed another patch."""
    rng = np.random.default_rng(seed)
    w, h = size
    fine = Image.fromarray(rng.integers(0, 256, (h // 3, w // 3), np.uint8)).resize(size, Image.BICUBIC)
    fine = np.asarray(fine.filter(ImageFilter.GaussianBlur(1.0)), np.float32)
    cast = rng.uniform(0.8, 1.2, 3)
    rgb = np.clip((fine[..., None] - 128) * 1.8 * cast + 128 + rng.normal(0, 10, 3), 0, 255)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def _crop_of_another_shape(img):  # RandomResizedCrop: 60% of the area, 4:3 -> square
    w, h = img.size
    return img.crop((30, 40, 30 + int(w * 0.7), 40 + int(h * 0.85))).resize((224, 224), Image.BILINEAR)


def _turned_then_cropped(img):  # turned 20 degrees on its canvas, then the corners cropped off
    w, h = img.size
    return img.rotate(20, resample=Image.BICUBIC).crop((w // 5, h // 5, w - w // 5, h - h // 5))


def _recoloured(img):  # hue turned a third round, gamma 1.8
    a = np.asarray(img, np.float32)[..., [2, 0, 1]] / 255
    return Image.fromarray((255 * a ** 1.8).astype(np.uint8), "RGB")


@pytest.mark.parametrize("edit", [_crop_of_another_shape, _turned_then_cropped, _recoloured])
def test_a_copy_lines_up_detail_for_detail_and_another_picture_does_not(edit):
    original = texture(1)
    inliers, share, detail, agree = match_pictures(picture_keypoints(original), picture_keypoints(edit(original)))
    assert inliers >= 30 and share > 0.9 and detail > 0.7, (inliers, share, detail)
    inliers, share, detail, agree = match_pictures(picture_keypoints(texture(2)), picture_keypoints(edit(original)))
    assert inliers < 15 and detail < 0.3, (inliers, share, detail)


@pytest.mark.parametrize("overlap", [0.3, 0.7])
def test_the_share_two_tiles_have_in_common_is_measured(overlap):
    scene = texture(3, (600, 240))
    step = round(240 * (1 - overlap))
    a, b = scene.crop((0, 0, 240, 240)), scene.crop((step, 0, step + 240, 240))
    inliers, share, detail, agree = match_pictures(picture_keypoints(a), picture_keypoints(b))
    assert inliers >= 10 and detail > 0.8
    assert share == pytest.approx(overlap, abs=0.05)


def _pairs(i, j, variant=0) -> PairTable:
    n = len(i)
    return PairTable(i=np.asarray(i, np.int64), j=np.asarray(j, np.int64), kind=np.full(n, Kind.EMBEDDING, np.uint8),
                     score=np.ones(n, np.float32), hamming=np.zeros(n, np.int16), cosine=np.ones(n, np.float32),
                     variant=np.full(n, variant, np.int8), same_bytes=np.zeros(n, bool))


def test_the_look_at_a_pair_does_not_depend_on_which_image_comes_first():
    original = texture(4)
    mirrored = _turned_then_cropped(original).transpose(Image.FLIP_LEFT_RIGHT)
    pictures = [original, mirrored]
    digests = np.array([[1] * 16, [2] * 16], np.uint8)
    looks, _ = look_at(_pairs([0], [1], variant=1), lambda rows: [pictures[r] for r in rows], digests)
    swapped, _ = look_at(_pairs([0], [1], variant=1), lambda rows: [pictures[1 - r] for r in rows], digests[::-1])
    assert looks[0, 0] >= 30  # matched under the mirror the pair was found through
    assert np.array_equal(looks, swapped)
    # without the mirror it reads as another picture
    plain, _ = look_at(_pairs([0], [1]), lambda rows: [pictures[r] for r in rows], digests)
    assert plain[0, 0] < looks[0, 0] / 2


def test_the_fitted_look_speaks_for_copies_and_leaves_out_look_alikes_that_read_as_copies():
    pictures = [texture(10 + k, (200, 150)) for k in range(30)]
    emb = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    rng = np.random.default_rng(1)
    alike = [(int(m), 1.0, float(d)) for m, d in zip(rng.integers(6, 14, 40), rng.uniform(-0.1, 0.3, 40))]
    copies_among = [(500, 1.0, 0.99)] * 5  # copies the search proposed and the thumbnails rejected
    fitted = fit_look(pictures, emb, 0, alike + copies_among)
    assert isinstance(fitted, KeypointLook)
    assert fitted.stats["left_out_as_possible_copies"] == 5
    ratio = fitted.log_ratio(np.array([[120, 1.0, 0.9], [10, 1.0, 0.1], [0, 0.0, 0.0]]))
    assert ratio[0] > 2 and ratio[1] < 0 and ratio[2] == 0


def test_a_look_whose_look_alikes_mostly_read_as_copies_is_not_fitted():
    """When the look-alikes read as copies (pictures on one template: forms, screenshots), too
    few are left to learn from and the look is not used (it crashed when none was left)."""
    pictures = [texture(10 + k, (200, 150)) for k in range(30)]
    emb = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    rng = np.random.default_rng(1)
    like_copies = [(int(m), 1.0, float(d)) for m, d in zip(rng.integers(300, 600, 40), rng.uniform(0.97, 1.0, 40))]
    unlike = [(int(m), 1.0, float(d)) for m, d in zip(rng.integers(6, 14, 15), rng.uniform(-0.1, 0.3, 15))]
    assert fit_look(pictures, emb, 0, like_copies) == LOOK_ALIKES_AS_COPIES
    assert fit_look(pictures, emb, 0, like_copies + unlike) == LOOK_ALIKES_AS_COPIES  # 15 left: under MIN_EXAMPLES
    more = [(int(m), 1.0, float(d)) for m, d in zip(rng.integers(6, 14, 30), rng.uniform(-0.1, 0.3, 30))]
    assert isinstance(fit_look(pictures, emb, 0, like_copies + unlike + more), KeypointLook)
    # too few pictures to make copies of: another reason
    assert fit_look(pictures[:10], emb[:10], 0, like_copies + unlike + more) == TOO_FEW_PICTURES


def test_the_look_is_not_followed_where_it_alone_would_join_most_images_on_a_fit_that_could_not_tell():
    """The pairs the closer look alone raises to duplicates stay as the thumbnails decided them
    when they would join more than half of the images and most of the look's look-alikes were
    left out as copies; not when its look-alikes read as look-alikes (a folder of edited copies)."""
    from leakscan.decide import IMPLAUSIBLE_MIN_IMAGES, _plausible_look

    n = 2 * IMPLAUSIBLE_MIN_IMAGES
    i, j = np.arange(0, n - 1, 2), np.arange(1, n, 2)  # every image in one raised pair
    m = len(i)
    pairs = PairTable(i, j, np.full(m, Kind.KEYPOINT, np.uint8), np.ones(m, np.float32), np.full(m, -1, np.int16),
                      np.full(m, np.nan, np.float32), np.zeros(m, np.int8), np.zeros(m, bool),
                      confidence=np.full(m, 0.3, np.float32))
    looked = np.full(m, 0.99, np.float32)
    alike_as_copies = {"look_alikes": 20, "left_out_as_possible_copies": 30}
    confidence, not_followed = _plausible_look(pairs, looked, 0.5, n, alike_as_copies)
    assert not_followed == (n, m) and np.array_equal(confidence, pairs.confidence)
    unlike = {"look_alikes": 40, "left_out_as_possible_copies": 1}
    confidence, not_followed = _plausible_look(pairs, looked, 0.5, n, unlike)
    assert not_followed is None and np.array_equal(confidence, looked)
    half = np.arange(m) < m // 2  # raised pairs joining half of the images: plausible
    confidence, not_followed = _plausible_look(pairs, np.where(half, 0.99, 0.3), 0.5, n, alike_as_copies)
    assert not_followed is None and (confidence[half] == 0.99).all()


def photo_tiles() -> list:
    """24 pictures of 160x120 that do not overlap: a 4x3 grid on each of scikit-learn's two
    sample photos (tiles of one photo: the hardest look-alikes there are)."""
    from sklearn.datasets import load_sample_images

    out = []
    for a in load_sample_images().images:  # 640x427
        photo = Image.fromarray(a)
        out += [photo.crop((x, y, x + 160, y + 120)) for y in (20, 150, 280) for x in (0, 160, 320, 480)]
    return out


def test_the_closer_look_raises_copies_in_doubt_and_not_tiles_of_one_photo():
    tiles = photo_tiles()
    copies = [_crop_of_another_shape(tiles[1]), _turned_then_cropped(tiles[6]), _recoloured(tiles[14])]
    pictures = tiles + copies
    features = leakscan.features.extract_images([np.asarray(p) for p in pictures])
    copy_pairs = [(1, 24), (6, 25), (14, 26)]
    neighbours = [(0, 1), (1, 2), (4, 5), (5, 6), (12, 13), (13, 14), (16, 17), (20, 21)]  # side by side
    rejected = [(a, b) for a in range(24) for b in range(a + 2, 24, 5)]
    pairs = _pairs(*zip(*(copy_pairs + neighbours + rejected)))
    n_doubt = len(copy_pairs) + len(neighbours)
    pairs = dataclasses.replace(pairs, confidence=np.r_[np.full(n_doubt, 0.3), np.full(len(rejected), 0.05)].astype(
        np.float32))
    found = Candidates(pairs=pairs, search_rows=np.arange(len(pictures)), kth_neighbour=np.full(len(pictures), -1))
    confidence, stats = closer_look(pairs, found, features, lambda rows: [pictures[r] for r in rows],
                                    threshold=0.5, floor=0.1)
    assert stats["used"] and stats["looked_at"] == n_doubt
    assert (confidence[:3] >= 0.5).all(), confidence[:3]
    assert np.array_equal(confidence[3:], pairs.confidence[3:])  # neither raised nor lowered
    assert stats["raised_to_duplicates"] == 3


def _closer_look_at(pictures, read, variant, images=None):
    """``(pairs, confidence, stats)`` of :func:`closer_look` on the pairs ``read`` of
    ``pictures`` (duplicates at 0.7, read through ``variant``) beside look-alikes at 0.05 (pairs
    of the 24 photo tiles five apart); the pictures read by ``images`` (default: as they are)."""
    features = leakscan.features.extract_images([np.asarray(p) for p in pictures])
    rejected = [(a, b) for a in range(24) for b in range(a + 2, 24, 5)]
    pairs = _pairs(*zip(*(read + rejected)))
    pairs = dataclasses.replace(
        pairs, variant=np.r_[np.full(len(read), variant), np.zeros(len(rejected))].astype(np.int8),
        confidence=np.r_[np.full(len(read), 0.7), np.full(len(rejected), 0.05)].astype(np.float32))
    found = Candidates(pairs=pairs, search_rows=np.arange(len(pictures)), kth_neighbour=np.full(len(pictures), -1))
    confidence, stats = closer_look(pairs, found, features, images or (lambda rows: [pictures[r] for r in rows]),
                                    threshold=0.5, floor=0.1)
    return pairs, confidence, stats


def test_a_turned_reading_the_keypoints_do_not_bear_out_falls_to_possible():
    # duplicates only the tilted views read (a copy turned by some degrees): a turned copy
    # shows ORB its keypoints turned; two tiles of one photo the tilted views matched do not
    tiles = photo_tiles()
    pictures = tiles + [_turned_then_cropped(tiles[5]), _turned_then_cropped(tiles[18])]
    turned = [(5, 24), (18, 25), (2, 9), (13, 22)]  # two copies, then two tiles of another place
    pairs, confidence, stats = _closer_look_at(pictures, turned, MatchView.TILTED)
    assert stats["turned_copies"] > 0 and min(stats["tilted_no_transform"].values()) < 0
    assert stats["turned_looked_at"] == 4 and stats["lowered_to_possible"] == 2
    assert np.all(confidence[:2] > 0.7) and np.all(confidence[2:4] < 0.5), confidence[:4]  # confirmed; lowered
    assert np.array_equal(confidence[4:], pairs.confidence[4:])


def test_a_turned_duplicate_whose_picture_cannot_be_read_again_keeps_the_thumbnails_confidence():
    # a turned reading with no keypoints to bear it out is lowered (two flat tiles the tilted
    # views matched); a file changed since the audit read it was lowered so too, for a picture
    # no look was had of. Not looked at, it keeps the confidence the thumbnails gave it
    tiles = photo_tiles()
    pictures = tiles + [_turned_then_cropped(tiles[5]), _turned_then_cropped(tiles[18])]
    turned = [(5, 24), (18, 25), (2, 9), (13, 22)]  # two copies (the first unread), two tiles of another place
    pairs, confidence, stats = _closer_look_at(pictures, turned, MatchView.TILTED,
                                               images=gone_after_the_first_read(pictures, {24}))
    assert confidence[0] == pairs.confidence[0], confidence[:4]  # kept
    assert confidence[1] > 0.7 and np.all(confidence[2:4] < 0.5), confidence[:4]  # confirmed; lowered
    assert stats["unread"] == 1 and stats["turned_looked_at"] == 3 and stats["lowered_to_possible"] == 2
    assert np.array_equal(confidence[4:], pairs.confidence[4:])


def test_a_turned_duplicate_opencv_fails_to_match_keeps_the_thumbnails_confidence(monkeypatch):
    # OpenCV failing on a pair (not on either picture) is no look either: it was read as a look
    # that found no transform, and the turned copy was lowered to possible for it
    tiles = photo_tiles()
    pictures = tiles + [_turned_then_cropped(tiles[5]), _turned_then_cropped(tiles[18])]
    failing = leakscan.keypoints.picture_keypoints(pictures[24]).points
    match_pictures = leakscan.keypoints.match_pictures

    def fails_on_the_first_copy(ka, kb, layout=None):
        if any(np.array_equal(k.points, failing) for k in (ka, kb)):
            raise cv2.error("OpenCV(4.x) error: (-215:Assertion failed) in function 'estimateAffine2D'")
        return match_pictures(ka, kb, layout)

    monkeypatch.setattr(leakscan.keypoints, "match_pictures", fails_on_the_first_copy)
    turned = [(5, 24), (18, 25), (2, 9), (13, 22)]  # two copies (OpenCV fails on the first), two tiles of another place
    pairs, confidence, stats = _closer_look_at(pictures, turned, MatchView.TILTED)
    assert confidence[0] == pairs.confidence[0], confidence[:4]  # kept
    assert confidence[1] > 0.7 and np.all(confidence[2:4] < 0.5), confidence[:4]  # confirmed; lowered
    assert stats["unread"] == 1 and stats["turned_looked_at"] == 3 and stats["lowered_to_possible"] == 2


def test_a_duplicate_the_thumbnails_are_unsure_of_is_confirmed_or_lowered_by_the_look():
    # duplicates read through a crop view: a copy shows ORB its detail; two tiles of one photo
    # with plenty of keypoints give no transform; a tile of plain sky has no keypoints to show,
    # and there the look says nothing
    tiles = photo_tiles()
    pictures = tiles + [_crop_of_another_shape(tiles[5]), _crop_of_another_shape(tiles[17])]
    unsure = [(5, 24), (17, 25), (4, 9), (10, 17), (2, 9)]  # two copies, two pairs of tiles, the sky
    pairs, confidence, stats = _closer_look_at(pictures, unsure, MatchView.CROPPED)
    assert stats["duplicates_looked_at"] == 5 and stats["turned_looked_at"] == 0
    assert stats["no_transform"]["500"] < stats["no_transform"]["10"] <= 0  # a textured picture's nothing says more
    assert np.all(confidence[:2] > 0.7), confidence[:2]  # confirmed
    assert np.all(confidence[2:4] < 0.5), confidence[2:4]  # lowered
    assert confidence[4] == pytest.approx(0.7)  # the sky: kept as the thumbnails decided
    assert stats["lowered_to_possible"] == 2
    assert np.array_equal(confidence[5:], pairs.confidence[5:])


def _moved_across(img, share=0.25):  # RandAugment's TranslateX: moved right, the part uncovered black
    return img.transform(img.size, Image.AFFINE, (1, 0, -share * img.width, 0, 1, 0), Image.BILINEAR)


def test_overlapping_tiles_are_confirmed_by_the_look_and_never_lowered():
    # a copy moved across its frame is read as a tile overlapping its original (a window of one
    # lines up with the other): its keypoints line the shared part up, and the look confirms it;
    # two tiles of one photo side by side give no transform, and the look says nothing against
    # them (their share of common picture is measured by the overlap reading, half by design)
    tiles = photo_tiles()
    pictures = tiles + [_moved_across(tiles[5]), _moved_across(tiles[17], 0.15)]
    read = [(5, 24), (17, 25), (4, 5), (16, 17)]  # two moved copies, two pairs of tiles side by side
    pairs, confidence, stats = _closer_look_at(pictures, read, MatchView.OVERLAP)
    assert stats["duplicates_looked_at"] == 4
    assert np.all(confidence[:2] > 0.9), confidence[:2]  # confirmed
    assert np.all(confidence[2:4] == pairs.confidence[2:4]), confidence[2:4]  # not lowered
    assert np.array_equal(confidence[4:], pairs.confidence[4:])


def _tile_folder(root):
    """The photo tiles and five copies of them (as :func:`photo_tiles`), saved as JPEGs in
    ``root``; returns the copies' pairs."""
    tiles = photo_tiles()
    pictures = {f"t{k:02d}.jpg": t for k, t in enumerate(tiles)}
    pictures.update({"c0.jpg": _crop_of_another_shape(tiles[1]), "c1.jpg": _turned_then_cropped(tiles[6]),
                     "c2.jpg": _recoloured(tiles[14]), "c3.jpg": _crop_of_another_shape(tiles[17]),
                     "c4.jpg": _turned_then_cropped(tiles[22])})
    root.mkdir()
    for name, img in pictures.items():
        img.save(root / name, quality=92)
    return {frozenset(("c0.jpg", "t01.jpg")), frozenset(("c1.jpg", "t06.jpg")), frozenset(("c2.jpg", "t14.jpg")),
            frozenset(("c3.jpg", "t17.jpg")), frozenset(("c4.jpg", "t22.jpg"))}


def test_an_audit_looks_closer_at_its_possible_pairs(tmp_path, monkeypatch):
    planted = _tile_folder(tmp_path / "tiles")

    def duplicates(result):
        return {frozenset((r["a"], r["b"])) for r in result.pair_records()}

    result = leakscan.audit(tmp_path / "tiles", cache=False)
    look = result.calibration.stats["keypoints"]
    assert look["used"] and look["raised_to_duplicates"] >= 1
    assert duplicates(result) <= planted and len(duplicates(result)) >= 4  # no two tiles of one photo
    monkeypatch.setattr(leakscan.decide, "closer_look", lambda pairs, *a, **k: (pairs.confidence, {}))
    assert duplicates(leakscan.audit(tmp_path / "tiles", cache=False)) < duplicates(result)  # the look's


def test_small_pictures_are_not_looked_at(tmp_path):
    for k, tile in enumerate(photo_tiles()):
        tile.resize((48, 36)).save(tmp_path / f"t{k:02d}.png")
    _recoloured(photo_tiles()[5].resize((48, 36))).save(tmp_path / "copy.png")
    result = leakscan.audit(tmp_path, cache=False)
    assert "keypoints" not in result.calibration.stats


def test_without_opencv_the_audit_keeps_the_thumbnails_decision_and_says_so(tmp_path, monkeypatch):
    _tile_folder(tmp_path / "tiles")
    looked = leakscan.audit(tmp_path / "tiles", cache=False)

    def broken():
        raise ImportError("libopencv_core.so: cannot open shared object file")

    monkeypatch.setattr(leakscan.keypoints, "detector", broken)
    result = leakscan.audit(tmp_path / "tiles", cache=False)
    assert result.calibration.stats["keypoints"]["used"] is False
    assert any("not looked at closer" in w and "OpenCV" in w for w in result.warnings)
    # the duplicates the look made: possible pairs it raised, and the keypoint search's it confirmed
    made = looked.calibration.stats["keypoints"]["raised_to_duplicates"]
    made += looked.calibration.stats["keypoints"].get("keypoint_duplicates", 0)
    assert len(result.pair_records()) == len(looked.pair_records()) - made


def test_a_look_left_unfitted_because_its_look_alikes_read_as_copies_is_said(tmp_path, monkeypatch):
    """The look not fitted because the folder's look-alikes match as copies do (pictures on one
    template) is a warning naming the pairs left as the thumbnails decided them, and
    ``not_used`` says why; not fitted for too few pictures, it is only said in the stats."""
    _tile_folder(tmp_path / "tiles")
    said = {}
    for reason in (LOOK_ALIKES_AS_COPIES, TOO_FEW_PICTURES):
        monkeypatch.setattr(leakscan.keypoints, "fit_look", lambda *args, reason=reason, **kw: reason)
        result = leakscan.audit(tmp_path / "tiles", cache=False)
        look = result.calibration.stats["keypoints"]
        assert look["used"] is False and look["not_used"] == reason and look["looked_at"] > 0
        said[reason] = [w for w in result.warnings if "closer look by keypoints was not used" in w]
    assert len(said[LOOK_ALIKES_AS_COPIES]) == 1 and not said[TOO_FEW_PICTURES]
    assert f"the {look['looked_at']} pairs it was to decide" in said[LOOK_ALIKES_AS_COPIES][0]


def test_a_search_made_without_opencv_is_not_reused_once_it_loads(tmp_path, monkeypatch):
    """The search results kept in the feature cache were keyed by the features and settings only:
    a run made while OpenCV could not be imported (no keypoint search, no closer look) was read
    back after it was installed, its warning to reinstall it too. Whether it loads is in the key."""
    _tile_folder(tmp_path / "tiles")
    db = tmp_path / "c.sqlite"
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "cv2", None)  # import cv2 fails, as with a broken install
        without = leakscan.audit(tmp_path / "tiles", cache=db, jobs=1)
    assert without.calibration.stats["keypoints"]["used"] is False
    looked = leakscan.audit(tmp_path / "tiles", cache=db, jobs=1)
    assert looked.features.n_cached == len(looked.manifest)  # the features are reused; the search is not
    assert looked.calibration.stats["keypoints"]["used"] is True
    assert not any("OpenCV" in w for w in looked.warnings)
    assert looked.pair_records() == leakscan.audit(tmp_path / "tiles", cache=False, jobs=1).pair_records()


def test_a_picture_opencv_fails_on_or_a_file_gone_since_it_was_read_ends_no_run(tmp_path, monkeypatch, caplog):
    planted = _tile_folder(tmp_path / "tiles")
    looked = leakscan.audit(tmp_path / "tiles", cache=False, jobs=1)
    real = leakscan.keypoints.picture_keypoints

    def fails_on_small(picture):  # the copies of a crop of another shape (224 px) fail
        if picture.size == (224, 224):
            raise RuntimeError("cv2.error: (-215:Assertion failed)")
        return real(picture)

    monkeypatch.setattr(leakscan.keypoints, "picture_keypoints", fails_on_small)
    caplog.set_level("WARNING")
    result = leakscan.audit(tmp_path / "tiles", cache=False, jobs=1)
    assert "no closer look (RuntimeError" in caplog.text
    assert "c0.jpg: no closer look (RuntimeError" in caplog.text  # the file is named
    assert {frozenset((r["a"], r["b"])) for r in result.pair_records()} <= planted
    monkeypatch.undo()

    # a file rewritten since the audit read it: named in the log, its pair not looked at
    (tmp_path / "tiles" / "t06.jpg").write_bytes(b"\xff\xd8\xff garbage")
    m = looked.manifest
    c1, t06 = [list(map(str, m.paths)).index(p) for p in ("c1.jpg", "t06.jpg")]
    caplog.clear()
    looks, unread = look_at(_pairs([min(c1, t06)], [max(c1, t06)]),
                            lambda rows: leakscan.features.load_pictures(m, rows), looked.features.pixel_digest)
    assert "t06.jpg: not read again (" in caplog.text
    assert looks.tolist() == [[0.0, 0.0, 0.0, 0.0, 1.0]] and unread.tolist() == [True]  # no look was had


def _off_centre_crop(img):  # half the picture's area, from its lower right, enlarged back
    w, h = img.size
    return img.crop((w - int(w * 0.7), h - int(h * 0.7), w, h)).resize((w, h), Image.BICUBIC)


def test_the_keypoint_search_finds_crops_of_textures_the_thumbnails_cannot_tell_apart(tmp_path, monkeypatch):
    # 24 patches of gravel and two copies: an off-centre crop of half the area, and a patch
    # turned on its canvas and cropped free of its corners. On 32 px thumbnails every patch looks
    # like every other; their keypoints do not
    root = tmp_path / "gravel"
    root.mkdir()
    for k in range(24):
        texture(100 + k).save(root / f"g{k:02d}.jpg", quality=92)
    _off_centre_crop(texture(103)).save(root / "crop.jpg", quality=92)
    _turned_then_cropped(texture(117)).save(root / "turned.jpg", quality=92)
    planted = {frozenset(("crop.jpg", "g03.jpg")), frozenset(("turned.jpg", "g17.jpg"))}

    def found(result):
        return {frozenset((r["a"], r["b"])): r["kind"] for r in result.pair_records()}

    result = leakscan.audit(root, cache=False)
    assert set(found(result)) == planted, found(result)  # both copies, no two patches of gravel
    look = result.calibration.stats["keypoints"]
    assert look["keypoint_pairs"] >= 1 and look["keypoint_duplicates"] >= 1
    assert "keypoint" in found(result).values()
    # without the keypoint search the thumbnails miss what it found
    monkeypatch.setattr(leakscan.decide, "keypoint_pairs", lambda *a, **k: (PairTable.empty(), 0))
    without = found(leakscan.audit(root, cache=False))
    assert set(without) < planted and "keypoint" not in without.values()
    # --no-crops says crops are not wanted: no keypoint search either
    monkeypatch.undo()
    no_crops = leakscan.audit(root, cache=False, settings=leakscan.DetectSettings(crops=False))
    assert "keypoint" not in found(no_crops).values()


def test_the_keypoint_search_proposes_no_pair_within_a_split_with_scope_cross(tmp_path):
    # patches of gravel in two splits, a crop of one of them in each split and one across: with
    # only pairs across splits asked for, the keypoint search (which looks at every picture, so
    # as to find those across) reports only the crop across
    root = tmp_path / "gravel"
    for split, seeds in (("train", range(300, 306)), ("test", range(306, 312))):
        (root / split).mkdir(parents=True)
        for k in seeds:
            texture(k).save(root / split / f"g{k}.jpg", quality=92)
    for split, k in (("train", 301), ("test", 308), ("test", 303)):
        _off_centre_crop(texture(k)).save(root / split / f"crop_of_g{k}.jpg", quality=92)

    result = leakscan.audit(root, cache=False, jobs=1, settings=leakscan.DetectSettings(scope="cross"))
    found = {(r["a"], r["b"]): r["kind"] for r in result.pair_records() + result.pair_records("possible")}
    assert found == {("test/crop_of_g303.jpg", "train/g303.jpg"): "keypoint"}, found
    # the search itself proposes the crops within a split too
    m = result.manifest
    pairs, _ = keypoint_pairs(result.features, np.arange(len(m)), lambda rows: leakscan.features.load_pictures(m, rows),
                              np.zeros(0, np.int64))
    proposed = {tuple(sorted((str(m.paths[i]), str(m.paths[j])))) for i, j in zip(pairs.i, pairs.j)}
    assert {("test/crop_of_g308.jpg", "test/g308.jpg"), ("train/crop_of_g301.jpg", "train/g301.jpg")} <= proposed


def test_the_keypoint_search_finds_a_mirrored_crop_recoloured_as_training_pipelines_make_them(tmp_path):
    # RandomResizedCrop, RandomHorizontalFlip, ColorJitter: a crop of gravel, mirrored and
    # recoloured. ORB's descriptors are not mirror-symmetric: only the keypoints of the picture
    # mirrored match the copy's
    root = tmp_path / "gravel"
    root.mkdir()
    for k in range(24):
        texture(600 + k).save(root / f"g{k:02d}.jpg", quality=92)
    copy = _off_centre_crop(texture(605)).transpose(Image.FLIP_LEFT_RIGHT)
    copy = Image.fromarray(np.clip(np.asarray(copy, np.float32) * [1.15, 0.95, 0.8] + 12, 0, 255).astype(np.uint8))
    copy.save(root / "augmented.jpg", quality=90)

    def found(settings=None):
        result = leakscan.audit(root, cache=False, settings=settings)
        return {frozenset((r["a"], r["b"])): (r["kind"], r["detail"]) for r in result.pair_records()}

    assert found() == {frozenset(("augmented.jpg", "g05.jpg")): ("keypoint", "keypoints, hflip")}, found()
    # mirrors do not count as copies (--transforms none): the mirrored keypoints are not matched
    assert found(leakscan.DetectSettings(transforms="none")) == {}


@pytest.mark.parametrize("back", [False, True])
def test_a_mirrored_match_lines_up_from_either_picture(monkeypatch, back):
    # a mirrored copy is matched from the first picture mirrored, or from the second mirrored (then
    # both sides are mirrored back before the fit): each side alone lines the pair up
    pictures = [texture(700), _off_centre_crop(texture(700)).transpose(Image.FLIP_LEFT_RIGHT)]
    pictures += [texture(701 + k) for k in range(6)]
    features = leakscan.features.extract_images([np.asarray(p) for p in pictures])
    features = dataclasses.replace(features, keypoint_rows=np.arange(len(pictures)), keypoints=np.array(
        [leakscan.orb.strongest_keypoints(p, leakscan.features.PICTURE_SIDE) for p in pictures]))
    real, calls = leakscan.keypoints._nearest_matches, []

    def one_side(index, queries, query_owner, owner):
        q, t = real(index, queries, query_owner, owner)
        calls.append(len(queries))
        if len(calls) == 2:  # the mirrored keypoints: only those of one side of each pair
            keep = (query_owner[q] > owner[t]) == back
            q, t = q[keep], t[keep]
        return q, t

    monkeypatch.setattr(leakscan.keypoints, "_nearest_matches", one_side)
    pairs, _ = keypoint_pairs(features, np.arange(len(pictures)), None, np.zeros(0, np.int64))
    assert len(calls) == 2
    assert [(int(i), int(j), int(v)) for i, j, v in zip(pairs.i, pairs.j, pairs.variant)] == [(0, 1, MatchView.HFLIP)]
    assert pairs.score[0] > 0.15
    # mirrors not counted: the mirrored keypoints are not matched
    calls.clear()
    assert len(keypoint_pairs(features, np.arange(len(pictures)), None, np.zeros(0, np.int64), mirrored=False)[0]) == 0
    assert len(calls) == 1


def test_the_keypoint_search_is_skipped_with_a_warning_beyond_its_size(tmp_path, monkeypatch):
    for k in range(4):
        texture(200 + k).save(tmp_path / f"g{k}.jpg", quality=92)
    texture(200).save(tmp_path / "copy.png")
    monkeypatch.setattr(leakscan.decide, "SEARCH_MAX_IMAGES", 3)
    monkeypatch.setattr(leakscan.keypoints, "SEARCH_MAX_IMAGES", 3)
    result = leakscan.audit(tmp_path, cache=False)
    assert any("not searched by their keypoints: 5 images" in w for w in result.warnings), result.warnings


def _captioned(img, number):  # a dark bar along the bottom with a credit line in it
    from PIL import ImageDraw, ImageFont

    out = img.copy()
    w, h = out.size
    bar = h // 6
    ImageDraw.Draw(out).rectangle([0, h - bar, w, h], fill=(10, 10, 30))
    try:
        font = ImageFont.load_default(size=int(bar * 0.65))
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    ImageDraw.Draw(out).text((w // 12, h - bar + bar // 6), f"Photo: archive no. {number}", fill=(240, 240, 240),
                             font=font)
    return out


def test_pictures_that_share_only_a_caption_are_not_proposed_by_their_keypoints(tmp_path, monkeypatch):
    # every other picture carries the same credit line: its letters match keypoint for keypoint,
    # but only in a strip along the bottom, where a copy matches all over the picture
    for k in range(24):
        img = texture(300 + k)
        (_captioned(img, 1000 + 37 * k) if k % 2 else img).save(tmp_path / f"g{k:02d}.jpg", quality=92)
    _off_centre_crop(texture(305)).save(tmp_path / "crop.jpg", quality=92)
    proposed = []

    def recorded(*args, **kwargs):
        pairs, skipped = keypoint_pairs(*args, **kwargs)
        proposed.append(pairs)
        return pairs, skipped

    monkeypatch.setattr(leakscan.decide, "keypoint_pairs", recorded)
    result = leakscan.audit(tmp_path, cache=False)
    names = result.manifest.paths
    assert [{names[int(i)] for i in pair} for pair in zip(proposed[0].i, proposed[0].j)] == [{"crop.jpg", "g05.jpg"}]
    found = {frozenset((r["a"], r["b"])) for r in result.pair_records()}
    assert found == {frozenset(("crop.jpg", "g05.jpg"))}, found


def test_the_keypoint_search_reads_the_keypoints_the_feature_pass_kept_and_decodes_nothing_again(tmp_path,
                                                                                                 monkeypatch):
    root = tmp_path / "gravel"
    root.mkdir()
    for k in range(24):
        texture(400 + k).save(root / f"g{k:02d}.jpg", quality=92)
    _off_centre_crop(texture(403)).save(root / "crop.jpg", quality=92)
    planted = frozenset(("crop.jpg", "g03.jpg"))
    decoded = []
    real = leakscan.keypoints._decoded_keypoints
    monkeypatch.setattr(leakscan.keypoints, "_decoded_keypoints", lambda picture: decoded.append(picture) or real(picture))

    def found(result):
        return {frozenset((r["a"], r["b"])): r["kind"] for r in result.pair_records()}

    cache = tmp_path / "features.sqlite"
    cold = leakscan.audit(root, cache=cache)
    assert found(cold).get(planted) == "keypoint" and decoded == []
    # the keypoints are stored with the features: a search run again on cached features (another
    # setting) reads them from the cache
    warm = leakscan.audit(root, cache=cache, settings=leakscan.DetectSettings(min_confidence=0.6))
    assert warm.features.n_cached == 25
    assert found(warm).get(planted) == "keypoint" and decoded == []
    # features kept without them (an older cache, or extract_features without keypoints=True):
    # the search decodes the pictures again and finds the same keypoints, so the same pairs
    m = leakscan.discovery.discover(root)

    def pictures(rows):
        return leakscan.features.load_pictures(m, rows)

    with_kept = leakscan.keypoints.search_keypoints(leakscan.extract_features(m, jobs=1, keypoints=True),
                                                    np.arange(len(m)), pictures)
    decoded.clear()
    again = leakscan.keypoints.search_keypoints(leakscan.extract_features(m, jobs=1), np.arange(len(m)), pictures)
    assert len(decoded) == len(m) and np.array_equal(again, with_kept) and (again["count"] > 0).all()


def test_a_pair_the_thumbnails_proposed_and_rejected_is_still_proposed_by_its_keypoints(tmp_path, monkeypatch):
    # on 32 px a crop of gravel reads as another patch of it: when a thumbnail search proposes the
    # pair, its decision rejects it; that must not keep the keypoint search from it
    for k in range(24):
        texture(500 + k).save(tmp_path / f"g{k:02d}.jpg", quality=92)
    _off_centre_crop(texture(503)).save(tmp_path / "crop.jpg", quality=92)
    names = [str(p) for p in leakscan.discovery.discover(tmp_path).paths]
    i, j = sorted((names.index("crop.jpg"), names.index("g03.jpg")))
    real = leakscan.decide._likelier

    def with_the_pair_rejected(pairs):  # the crop read as a crop of another patch, at confidence 0.02
        rejected = PairTable(i=np.array([i]), j=np.array([j]), kind=np.array([Kind.EMBEDDING], np.uint8),
                             score=np.float32([0.8]), hamming=np.int16([20]), cosine=np.float32([0.8]),
                             variant=np.int8([MatchView.CROPPED]), same_bytes=np.zeros(1, bool),
                             ncc=np.float32([0.5]), confidence=np.float32([0.02]))
        return real(PairTable.concat([pairs.take(~np.isin(pairs.keys(), rejected.keys())), rejected]).sorted())

    monkeypatch.setattr(leakscan.decide, "_likelier", with_the_pair_rejected)
    found = {frozenset((r["a"], r["b"])): r["kind"] for r in leakscan.audit(tmp_path, cache=False).pair_records()}
    assert found == {frozenset(("crop.jpg", "g03.jpg")): "keypoint"}, found


def test_opencv_failing_on_a_picture_in_the_feature_pass_keeps_the_image_and_names_the_file(tmp_path, monkeypatch,
                                                                                           caplog):
    for k in range(3):
        texture(600 + k).save(tmp_path / f"g{k}.jpg", quality=92)
    texture(603, size=(200, 240)).save(tmp_path / "odd.jpg", quality=92)
    real = leakscan.features.strongest_keypoints

    def fails_on_portrait(picture, side):
        if picture.height > picture.width:
            raise RuntimeError("cv2.error: (-215:Assertion failed)")
        return real(picture, side)

    monkeypatch.setattr(leakscan.features, "strongest_keypoints", fails_on_portrait)
    m = leakscan.discovery.discover(tmp_path)
    with caplog.at_level("INFO", logger="leakscan.features"):
        f = leakscan.extract_features(m, jobs=1, keypoints=True)
    odd = [str(p) for p in m.paths].index("odd.jpg")
    assert f.ok.all() and odd not in f.keypoint_rows.tolist() and len(f.keypoint_rows) == 3
    assert any("odd.jpg" in r.getMessage() and "no keypoints kept" in r.getMessage() for r in caplog.records)
    # the search then finds its keypoints on the picture decoded again
    again = leakscan.keypoints.search_keypoints(f, np.array([odd]), lambda rows: leakscan.features.load_pictures(m, rows))
    assert again["count"][0] > 0


def _with_a_dark_bar(img: Image.Image) -> Image.Image:
    from PIL import ImageDraw

    out = img.copy()
    w, h = out.size
    ImageDraw.Draw(out).rectangle([0, h - h // 7, w, h], fill=(20, 20, 20))
    return out


def test_two_pictures_under_one_logo_line_up_only_where_the_logo_is_and_a_captioned_copy_everywhere():
    # ORB finds the logo's corners in both and one transform explains them all; the detail
    # agrees only where the logo is
    a, b = under_one_logo(surface(700)), under_one_logo(surface(701))
    inliers, share, detail, agree = match_pictures(picture_keypoints(a), picture_keypoints(b))
    assert inliers >= 30 and share > 0.9 and agree < leakscan.keypoints.AGREE_MIN, (inliers, share, agree)
    inliers, share, detail, agree = match_pictures(picture_keypoints(a), picture_keypoints(_with_a_dark_bar(a)))
    assert inliers >= 30 and share > 0.9 and detail > 0.7 and agree > 0.8, (inliers, share, detail, agree)


def test_different_pictures_under_one_logo_are_not_duplicates_and_a_copy_among_them_is(tmp_path):
    for k in range(30):
        under_one_logo(surface(710 + k)).save(tmp_path / f"p{k:02d}.jpg", quality=92)
    _with_a_dark_bar(under_one_logo(surface(712))).save(tmp_path / "copy.jpg", quality=80)
    found = {frozenset((r["a"], r["b"])) for r in leakscan.audit(tmp_path, cache=False).pair_records()}
    assert found == {frozenset(("copy.jpg", "p02.jpg"))}, found


def test_pictures_under_one_logo_read_by_their_brightness_are_lowered_and_a_copy_is_kept():
    # a red logo on grey pictures: the thumbnails read by brightness see the logo and little else;
    # ORB's grey levels say nothing else of a pair read by brightness (a hue shift moves them)
    tiles = photo_tiles()
    a, b = under_one_logo(surface(720)), under_one_logo(surface(721))
    pictures = tiles + [a, b, _with_a_dark_bar(a)]
    pairs, confidence, stats = _closer_look_at(pictures, [(24, 25), (24, 26)], MatchView.VALUE)
    assert stats["duplicates_looked_at"] == 2 and stats["overlays"] == 1
    assert confidence[0] < 0.5, confidence[:2]  # lowered
    assert confidence[1] == pytest.approx(0.7), confidence[:2]  # as the thumbnails decided


def test_opencv_failing_on_a_pair_names_both_files_and_no_look_is_had(tmp_path, monkeypatch, caplog):
    texture(730).save(tmp_path / "a.jpg", quality=92)
    _crop_of_another_shape(texture(730)).save(tmp_path / "b.jpg", quality=92)
    m = leakscan.discovery.discover(tmp_path)
    f = leakscan.extract_features(m, jobs=1)

    def fails(ka, kb, layout=None):
        raise RuntimeError("cv2.error: (-215:Assertion failed)")

    monkeypatch.setattr(leakscan.keypoints, "match_pictures", fails)
    caplog.set_level("WARNING")
    looks, unread = look_at(_pairs([0], [1]), lambda rows: leakscan.features.load_pictures(m, rows), f.pixel_digest)
    assert looks[0, 0] == 0 and looks[0, 4] == 1.0  # as a pair with no look: no inliers, nothing against
    assert unread[0]  # both pictures were read, but OpenCV gave no look: the look does not judge the pair
    assert any(("a.jpg ~ b.jpg: no closer look" in r.getMessage() or "b.jpg ~ a.jpg: no closer look" in r.getMessage())
               and "RuntimeError" in r.getMessage() for r in caplog.records), caplog.text


def test_matches_bunched_at_a_few_bright_spots_still_count_where_they_spread_as_places():
    # a star field: ORB finds each of two bright galaxies many times over (scales, turns), and the
    # faint stars all over the picture once each; the copy is a crop stretched to a square
    rng = np.random.default_rng(7)
    galaxies = np.concatenate([c + rng.uniform(-1.5, 1.5, (20, 2)) for c in ([60.0, 70.0], [150.0, 160.0])])
    stars = rng.uniform(10, 240, (16, 2))
    src = np.concatenate([galaxies, stars]).astype(np.float32)
    stretch = np.float32([[1.4, 0.0], [0.0, 1.5]])
    dst = (src - 20) @ stretch.T + rng.normal(0, 0.5, src.shape).astype(np.float32)
    assert leakscan.keypoints._width(src) < leakscan.keypoints.SEARCH_MIN_WIDTH * 256  # as matches: a line
    assert leakscan.keypoints._fitted(src, dst, (256, 256), (256, 256)) >= 40
    # the galaxies alone: two spots lie on a line, however many times ORB found them
    two = len(galaxies)
    assert leakscan.keypoints._fitted(src[:two], dst[:two], (256, 256), (256, 256)) == 0


def _faint(img):  # the detail at half its contrast: a caption's letters outshine it
    return Image.blend(Image.new("RGB", img.size, (128, 128, 128)), img, 0.5)


def test_a_crop_away_from_a_caption_is_found_though_the_captions_letters_are_the_strongest_keypoints(tmp_path):
    # faint gravel under a credit line: the caption's white letters on the dark bar are the
    # picture's strongest keypoints, and a copy cut from above the caption shares none of them.
    # The search keeps keypoints from every part of a picture, so the copy still matches there
    for k in range(24):
        img = _faint(texture(500 + k))
        (_captioned(img, 2000 + 37 * k) if k % 2 else img).save(tmp_path / f"g{k:02d}.jpg", quality=92)
    captioned = _captioned(_faint(texture(507)), 2000 + 37 * 7)
    w, h = captioned.size
    captioned.crop((0, 0, int(w * 0.75), int(h * 0.7))).resize((w, h), Image.BICUBIC).save(
        tmp_path / "crop.jpg", quality=92)
    kept = leakscan.orb.strongest_keypoints(captioned, leakscan.features.PICTURE_SIDE)
    above_the_bar = kept["points"][:kept["count"], 1] < kept["height"] * 5 / 6 - 2
    assert kept["count"] == leakscan.orb.STRONGEST and above_the_bar.mean() > 0.5
    result = leakscan.audit(tmp_path, cache=False)
    found = {frozenset((r["a"], r["b"])): r["kind"] for r in result.pair_records()}
    assert found == {frozenset(("crop.jpg", "g07.jpg")): "keypoint"}, found


def _bricks(seed: int, size=(360, 300)) -> Image.Image:
    """A brick wall at a slant: one pattern over and over, as a copy's keypoints must match it."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    w, h = size
    wall = Image.new("L", (w + 80, h + 80), 205)
    draw = ImageDraw.Draw(wall)
    bw, bh = int(rng.integers(30, 44)), int(rng.integers(11, 16))
    for row in range((h + 80) // bh + 1):
        shift = (row % 2) * bw // 2 + int(rng.integers(-4, 5))
        for col in range(-1, (w + 80) // bw + 2):
            x0, y0 = col * bw + shift, row * bh
            draw.rectangle([x0 + 2, y0 + 2, x0 + bw - 1, y0 + bh - 1], fill=int(rng.integers(85, 150)))
    wall = wall.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR).crop((40, 40, 40 + w, 40 + h))
    a = np.asarray(wall.filter(ImageFilter.GaussianBlur(0.7)), np.float32) + rng.normal(0, 6, (h, w))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).convert("RGB")


@pytest.mark.parametrize("seed", [107, 108])
def test_the_search_keeps_a_copys_keypoints_off_a_box_erased_on_it(seed):
    # torchvision's RandomErasing paints a black box: ORB finds strong corners all along its
    # edges, which no copy without the box has. Kept, they took 40% of the copy's search
    # keypoints on a brick wall, and the source's keypoints found too few of theirs to line up
    source = _bricks(seed)
    erased = np.array(source)
    erased[60:150, 140:300] = 0
    erased = Image.fromarray(erased)
    side = leakscan.features.PICTURE_SIDE
    kept, of_source = (leakscan.orb.strongest_keypoints(p, side) for p in (erased, source))
    scale = kept["width"] / erased.width

    def on_the_box(kept, prefix=""):
        x0, x1 = (140, 300) if not prefix else (erased.width - 300, erased.width - 140)
        points = kept[prefix + "points"][:kept[prefix + "count"]] / scale
        return ((points[:, 0] > x0 - 6) & (points[:, 0] < x1 + 6) & (points[:, 1] > 54) & (points[:, 1] < 156)).sum()

    assert on_the_box(kept) == on_the_box(kept, "mirrored_") == 0
    # most of the copy's keypoints are the source's: the same place, a close descriptor
    points, codes = kept["points"][:kept["count"]], kept["codes"][:kept["count"]]
    source_points, source_codes = of_source["points"][:of_source["count"]], of_source["codes"][:of_source["count"]]
    close = np.linalg.norm(points[:, None] - source_points[None], axis=2) < 2
    alike = np.unpackbits(codes[:, None] ^ source_codes[None], axis=2).sum(axis=2) < 48
    assert (close & alike).any(axis=1).mean() >= 0.7
    # a box with a word on it is a panel, part of the picture: its keypoints are kept
    labelled = np.array(erased)
    labelled[95:110, 170:260] = 255
    assert on_the_box(leakscan.orb.strongest_keypoints(Image.fromarray(labelled), side)) >= 10
