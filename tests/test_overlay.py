"""A shared overlay (a logo, a caption bar, a frame drawn at the same place on most pictures) is
left out when pictures are compared; a small folder of pictures unlike each other still
calibrates its decision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

import leakscan
from leakscan.features import extract_images
from leakscan.pairs import Kind, PairTable
from conftest import font, surface, under_one_logo

CREDIT = "(c) Acme Photo Archive"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def shaded_scene(seed: int, size=(320, 240)) -> Image.Image:
    """A picture unlike any other seed's: a shaded ground of its own colour, shapes of their
    own colours and places, and fine grain."""
    rng = np.random.default_rng(seed)
    w, h = size
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, h)[:, None, None]
    ground = (top * (1 - ramp) + bottom * ramp) * np.ones((1, w, 1))
    img = Image.fromarray(ground.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(6, 12))):
        x0, y0 = int(rng.integers(-40, w)), int(rng.integers(-40, h))
        x1, y1 = x0 + int(rng.integers(20, 160)), y0 + int(rng.integers(20, 120))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)([x0, y0, x1, y1], fill=fill)
    grain = rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img.filter(ImageFilter.GaussianBlur(1.5)), np.float32) + grain, 0, 255)
                           .astype(np.uint8), "RGB")


def captioned(img: Image.Image) -> Image.Image:
    """A credit line on a dark bar over the bottom fifth, as an archive stamps every picture."""
    out = img.copy()
    w, h = out.size
    d = ImageDraw.Draw(out)
    d.rectangle([0, h - h // 5, w, h], fill=(20, 20, 20))
    d.text((w // 20, h - h // 5 + h // 30), CREDIT, fill=(255, 255, 255), font=font(h // 9))
    return out


def resized_copy(img: Image.Image) -> Image.Image:
    return img.resize((img.width * 4 // 5, img.height * 4 // 5), Image.LANCZOS)


def thumbs(pictures) -> np.ndarray:
    return extract_images([np.asarray(p) for p in pictures]).thumb


def test_an_overlay_most_pictures_carry_is_found_and_plain_pictures_have_none():
    from leakscan.padding import shared_overlay

    plain = [shaded_scene(k) for k in range(30)] + [surface(100 + k) for k in range(10)]
    assert shared_overlay(thumbs(plain)) is None
    marked = [captioned(p) if k % 4 else p for k, p in enumerate(plain)]  # 30 of the 40
    found = shared_overlay(thumbs(marked))
    assert found is not None
    assert 0.15 <= found.share <= 0.35, found.share  # the bottom fifth, grown by a pixel
    rows = np.flatnonzero(found.region.any(axis=1))
    assert rows.min() >= 22 and rows.max() == 31, rows  # the bottom rows of the 32 px thumbnail
    carried = found.carried(thumbs(marked))
    assert carried.tolist() == [bool(k % 4) for k in range(40)]
    # more than half of every picture the same: that is the picture, not an overlay on it
    assert shared_overlay(thumbs([shaded_scene(1)] * 20 + [shaded_scene(k) for k in range(2, 12)])) is None


def test_different_pictures_under_one_overlay_line_up_by_it_and_not_once_it_is_left_out():
    from leakscan.evidence import EVIDENCE, pair_evidence, shared_overlay_of

    pictures = [under_one_logo(surface(200 + k)) for k in range(30)]
    pictures.append(resized_copy(pictures[3]))
    f = extract_images([np.asarray(p) for p in pictures])
    overlay = shared_overlay_of(f, np.arange(len(f)))
    assert overlay is not None
    pairs = PairTable(i=np.array([3, 3, 5]), j=np.array([30, 4, 6]), kind=np.full(3, Kind.EMBEDDING, np.uint8),
                      score=np.zeros(3, np.float32), hamming=np.zeros(3, np.int16), cosine=np.zeros(3, np.float32),
                      variant=np.zeros(3, np.int8), same_bytes=np.zeros(3, bool))
    kth = np.full(len(f), -1)
    seen, left_out = pair_evidence(f, pairs, kth), pair_evidence(f, pairs, kth, overlay=overlay)
    for column in ("ncc", "colour"):
        c = EVIDENCE.index(column)
        assert seen[1, c] > 0.7 and seen[2, c] > 0.7, (column, seen[:, c])  # the logo lines up
        assert left_out[1, c] < 0.4 and left_out[2, c] < 0.4, (column, left_out[:, c])  # the surfaces do not
        assert left_out[0, c] > 0.85, (column, left_out[:, c])  # the copy does


def test_an_audit_leaves_a_shared_caption_out_says_so_and_finds_the_copy_among_them(tmp_path):
    for k in range(30):
        captioned(surface(300 + k)).save(tmp_path / f"p{k:02d}.jpg", quality=90)
    resized_copy(captioned(surface(307))).save(tmp_path / "copy.jpg", quality=75)
    result = leakscan.audit(tmp_path, cache=False)
    found = {frozenset((r["a"], r["b"])) for r in result.pair_records()}
    assert found == {frozenset(("copy.jpg", "p07.jpg"))}, found
    warnings = result.to_dict()["warnings"]
    assert any("carry one overlay" in w and "shown plainly by 31 of 31" in w for w in warnings), warnings


def test_a_small_folder_of_pictures_unlike_each_other_calibrates_and_reports_its_copies(tmp_path):
    # twenty photos of ten classes, enlarged, three with a resized copy: the only look-alikes at
    # the evidence's floor are copies of one photo against its resized copy (a copy of a picture
    # is a copy of its twins too), so the decision learns from the easy look-alikes
    pictures = []
    for f in sorted(FIXTURES.glob("*/*/*.jpg"))[::13]:
        try:
            pictures.append(Image.open(f).convert("RGB").resize((256, 256), Image.LANCZOS))
        except OSError:  # the fixtures' broken files
            continue
    copied = {k for k in range(20) if k % 8 == 3}
    for k, img in enumerate(pictures[:20]):
        img.save(tmp_path / f"p{k:02d}.jpg", quality=90)
        if k in copied:
            img.resize((204, 204), Image.LANCZOS).save(tmp_path / f"p{k:02d}_copy.jpg", quality=70)
    result = leakscan.audit(tmp_path, cache=False)
    found = {frozenset((r["a"], r["b"])) for r in result.pair_records()}
    assert found == {frozenset((f"p{k:02d}.jpg", f"p{k:02d}_copy.jpg")) for k in copied}, found
    calibration = result.to_dict()["calibration"]
    assert calibration is not None and calibration["n_negative"] >= 20, calibration


def test_a_transform_no_more_matches_explain_than_fix_it_is_no_transform(monkeypatch):
    # an affine transform is fixed by three matches: RANSAC always finds one that explains three
    import cv2

    import leakscan.keypoints as kp

    a = shaded_scene(500)
    b = resized_copy(a)
    ka, kb = kp.picture_keypoints(a), kp.picture_keypoints(b)
    real = cv2.estimateAffine2D

    def explains(n):
        def fake(src, dst, **kw):
            m, _ = real(src, dst, **kw)
            mask = np.zeros((len(src), 1), np.uint8)
            mask[:n] = 1
            return (np.array([[1.0, 0, 0], [0, 1.0, 0]]) if m is None else m), mask
        return fake
    monkeypatch.setattr(cv2, "estimateAffine2D", explains(kp.AFFINE_POINTS))
    assert kp.match_pictures(ka, kb) == (0, 0.0, 0.0, 1.0)
    monkeypatch.setattr(cv2, "estimateAffine2D", explains(kp.AFFINE_POINTS + 1))
    assert kp.match_pictures(ka, kb)[0] == kp.AFFINE_POINTS + 1


def test_an_overlay_on_three_pictures_in_five_is_found_and_read_as_carried_by_those():
    from leakscan.padding import shared_overlay

    pictures = [shaded_scene(600 + k) for k in range(40)]
    marked = [captioned(p) if k % 5 < 3 else p for k, p in enumerate(pictures)]
    found = shared_overlay(thumbs(marked))
    assert found is not None
    carried = found.carried(thumbs(marked))
    assert carried.tolist() == [k % 5 < 3 for k in range(40)]


def test_a_few_photos_share_no_overlay_by_chance():
    # among a few pictures some pixels agree by chance: 3 of the fixtures' photos (and a copy)
    # "carried one overlay" covering a fifth of the picture, which was then left out of every
    # comparison, with a warning
    photos = sorted((FIXTURES / "train").rglob("*.jpg"))
    rng = np.random.default_rng(0)
    said = 0
    for _ in range(5):
        few = [str(p) for p in rng.choice(photos, 4, replace=False)]
        r = leakscan.audit(few + [few[0]], splits=["train"] * 4 + ["test"], jobs=1, cache=False)
        said += any("overlay" in w for w in r.warnings)
        assert r.n_images == 5 and len(r.leaks) and r.leaks[0].images == 1
    assert said == 0
