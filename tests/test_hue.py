"""Copies shifted in hue: a picture whose colours carry it changes its grey levels with a hue
shift (a red field on green turns into a blue one on purple), so its copy is matched by
brightness, each pixel's brightest channel (HSV value), which the shift keeps.

Each shift is made two ways: Pillow's HSV mode, and the HSV rotation of colour science
(:func:`numpy_hue`, as scikit-image's ``rgb2hsv``/``hsv2rgb`` and torchvision's hue jitter make it).
"""

import numpy as np
from PIL import Image

from leakscan import audit
from leakscan.features import colour_thumbnail, hue_sensitive
from conftest import scene


def colour_field(seed: int) -> Image.Image:
    """A picture drawn in saturated colours on a smooth colour field (its grey levels are
    mostly what the hues make them): conftest's scene, at 200 px."""
    return scene(seed, 200)


def pillow_hue(img: Image.Image, degrees: float) -> Image.Image:
    h, s, v = img.convert("HSV").split()
    h = h.point(lambda x: (x + round(degrees / 360 * 256)) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def numpy_hue(img: Image.Image, degrees: float) -> Image.Image:
    """The hue turned in floating point: HSV from RGB, the hue moved, back to RGB."""
    a = np.asarray(img, np.float64) / 255
    v, low = a.max(axis=2), a.min(axis=2)
    c = v - low
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    safe = np.where(c > 0, c, 1)
    hue = np.where(v == r, ((g - b) / safe) % 6, np.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = np.where(c > 0, hue, 0) / 6
    hue = (hue + degrees / 360) % 1.0
    k = lambda n: (n + hue * 6) % 6  # noqa: E731
    f = lambda n: v - c * np.clip(np.minimum(k(n), 4 - k(n)), 0, 1)  # noqa: E731
    return Image.fromarray(np.clip(np.stack([f(5), f(3), f(1)], axis=2) * 255 + 0.5, 0, 255).astype(np.uint8))


def test_a_hue_shift_leaves_an_image_as_hue_sensitive_as_it_was():
    fields = [colour_field(s) for s in range(6)]
    colour = np.stack([colour_thumbnail(im) for im in fields])
    for shift in (pillow_hue, numpy_hue):
        shifted = np.stack([colour_thumbnail(shift(im, 120)) for im in fields])
        assert (hue_sensitive(shifted) == hue_sensitive(colour)).all()
    assert hue_sensitive(colour).all()
    grey = np.stack([colour_thumbnail(im.convert("L").convert("RGB")) for im in fields])
    assert not hue_sensitive(grey).any()


def test_hue_shifted_copies_are_duplicates(tmp_path):
    """Copies of six colour fields shifted by 60-180 degrees, both ways, among 40 other colour
    pictures: every copy is a duplicate of its original, and no two different pictures are."""
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "test").mkdir()
    for k in range(6):
        colour_field(k).save(data / "train" / f"field{k}.jpg", quality=92)
    for s in range(40):
        scene(500 + s, 160).save(data / "train" / f"scene{s:02d}.jpg", quality=90)
    copies = {}
    for k, (shift, degrees) in enumerate(zip((pillow_hue, numpy_hue) * 3, (60, 90, 120, 150, 180, 100))):
        name = f"test/copy{k}.jpg"
        shift(colour_field(k), degrees).save(data / name, quality=90)
        copies[name] = f"train/field{k}.jpg"
    r = audit(data, cache=False, jobs=1)
    found = {frozenset((rec["a"], rec["b"])): rec for rec in r.pair_records()}
    for copy, original in copies.items():
        rec = found.get(frozenset((copy, original)))
        assert rec is not None, (copy, sorted(map(sorted, found)))
    assert any(rec["detail"] == "hue shifted" for rec in found.values()), found
    others = [sorted(key) for key in found if sorted(key) not in [sorted((c, o)) for c, o in copies.items()]]
    assert not others, others


def test_colour_pictures_each_rotated_on_a_canvas_are_not_copies_by_brightness(tmp_path):
    """Ten different colour pictures, each turned 25 degrees on a same-size canvas (black
    corners): their brightness is read upright, each rotated back, so the corners the turn cut
    alike do not make them copies (three such pairs were reported as `hue shifted`)."""
    data = tmp_path / "data"
    for k in range(10):
        folder = data / ("train", "test")[k % 2]
        folder.mkdir(parents=True, exist_ok=True)
        scene(k, 200).rotate(25).save(folder / f"i{k:03d}.png")
    r = audit(data, cache=False, jobs=1)
    assert r.features.canvas_mask(trimmed=False).all()
    assert r.pair_records() == [], r.pair_records()
