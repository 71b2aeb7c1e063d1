"""Solarized copies: every value at or above a threshold inverted (torchvision's
``RandomSolarize``, RandAugment's ``Solarize``), which turns the bright half of a picture's grey
levels upside down. Folding each channel about mid-grey, ``min(c, 255 - c)``, maps a value and
its inverse to one, so a picture and its solarized copy fold alike at any threshold.

Each copy is made two ways: Pillow's ``ImageOps.solarize`` (as torchvision does) and numpy.
"""

import numpy as np
from PIL import Image, ImageOps

from leakscan import audit
from leakscan.features import colour_thumbnail, folded_thumbnails, no_highlights
from conftest import scene


def numpy_solarize(img: Image.Image, threshold: int) -> Image.Image:
    a = np.asarray(img.convert("RGB"))
    return Image.fromarray(np.where(a >= threshold, 255 - a, a).astype(np.uint8))


def pillow_solarize(img: Image.Image, threshold: int) -> Image.Image:
    return ImageOps.solarize(img.convert("RGB"), threshold)


def test_a_solarized_picture_folds_as_its_original_and_has_no_highlights():
    """Folded, each copy correlates with its original at 0.85 or more (the fold is taken on the
    16 px colour thumbnail, after the averaging) and far better than with any other picture."""
    pictures = [scene(s, 200) for s in range(6)]
    folded = folded_thumbnails(np.stack([colour_thumbnail(im) for im in pictures])).reshape(6, -1)
    for solarize in (pillow_solarize, numpy_solarize):
        for threshold in (96, 128, 160, 192):
            colour = np.stack([colour_thumbnail(solarize(im, threshold)) for im in pictures])
            assert no_highlights(colour).all()
            corr = np.corrcoef(np.r_[folded, folded_thumbnails(colour).reshape(6, -1)])[6:, :6]
            own = np.diag(corr)
            assert (own >= 0.85).all(), (solarize.__name__, threshold, own)
            assert (own > (corr - 2 * np.eye(6)).max(axis=1) + 0.3).all(), (solarize.__name__, threshold, corr)
    assert not no_highlights(np.stack([colour_thumbnail(im) for im in pictures])).all()


def test_solarized_copies_are_duplicates(tmp_path):
    """Copies of six pictures solarized at 96-192, both ways, among 40 other pictures: every
    copy is a duplicate of its original, and no two different pictures are."""
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "test").mkdir()
    for k in range(6):
        scene(k, 200).save(data / "train" / f"picture{k}.jpg", quality=92)
    for s in range(40):
        scene(500 + s, 160).save(data / "train" / f"scene{s:02d}.jpg", quality=90)
    copies = {}
    for k, (solarize, threshold) in enumerate(zip((pillow_solarize, numpy_solarize) * 3, (96, 112, 128, 150, 170, 192))):
        name = f"test/copy{k}.jpg"
        solarize(scene(k, 200), threshold).save(data / name, quality=90)
        copies[name] = f"train/picture{k}.jpg"
    r = audit(data, cache=False, jobs=1)
    found = {frozenset((rec["a"], rec["b"])): rec for rec in r.pair_records()}
    missed = [c for c, o in copies.items() if frozenset((c, o)) not in found]
    assert not missed, (missed, sorted(map(sorted, found)))
    assert any(rec["detail"] == "solarized" for rec in found.values()), found
    others = [sorted(key) for key in found if sorted(key) not in [sorted((c, o)) for c, o in copies.items()]]
    assert not others, others
