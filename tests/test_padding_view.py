"""Letterbox, pillarbox, frames and padding to a square: the picture is trimmed out of its flat
border (any colour) and searched as the image's canvas view, so the padded copy is found with
full confidence; a flat border of any colour is left out of the verification only where one
was trimmed.

Each edit is made the ways different tools make it (Pillow canvas + paste, ``ImageOps.pad``
and ``ImageOps.expand``, ``numpy.pad``), on photos that ship with scikit-learn.
"""

import numpy as np
import pytest
from PIL import Image, ImageOps

from leakscan import audit
from leakscan.features import thumbnail
from leakscan.padding import flat_border, padding_weights, unpadded
from leakscan.views import canvas_view
from conftest import scene


def _photos():
    from sklearn.datasets import load_sample_images

    out = []
    for a in load_sample_images().images:  # two 640x427 photos, cut into four pictures each
        p = Image.fromarray(a)
        out += [p.crop((x, y, x + 320, y + 213)) for x in (0, 320) for y in (0, 213)]
    return out


PHOTOS = _photos()
COLOURS = {"black": (0, 0, 0), "white": (255, 255, 255), "teal": (20, 140, 150)}


def canvas_paste(img, colour, share=0.18):
    """Bars top and bottom: a larger canvas, the picture pasted in (Pillow)."""
    w, h = img.size
    bar = round(share * h)
    out = Image.new("RGB", (w, h + 2 * bar), colour)
    out.paste(img, (0, bar))
    return out


def numpy_pillarbox(img, colour, share=0.2):
    a = np.asarray(img)
    bar = round(share * img.width)
    return Image.fromarray(np.stack([np.pad(a[:, :, c], ((0, 0), (bar, bar)), constant_values=colour[c])
                                     for c in range(3)], axis=2))


def frame(img, colour, share=0.1):
    return ImageOps.expand(img, border=(round(share * img.width), round(share * img.height)), fill=colour)


def pad_square(img, colour):
    return ImageOps.pad(img, (300, 300), color=colour)


EDITS = {"canvas paste": canvas_paste, "numpy pillarbox": numpy_pillarbox, "frame": frame, "pad to square": pad_square}


def jpeg(img, tmp_path, name, quality=85):
    path = tmp_path / name
    img.save(path, quality=quality)
    return Image.open(path).convert("RGB")


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("colour", sorted(COLOURS))
def test_the_picture_is_trimmed_out_of_its_border(edit, colour, tmp_path):
    img = PHOTOS[1]
    padded = jpeg(EDITS[edit](img, COLOURS[colour]), tmp_path, "padded.jpg")
    view = unpadded(padded, thumbnail(padded))
    assert view is not None
    # the trimmed picture has the original's aspect, within the one-pixel rows of the look
    assert abs(view.width / view.height - img.width / img.height) < 0.06, view.size
    angle, same = canvas_view(padded, thumbnail(padded))
    assert angle == 0.0 and same.size == view.size


def test_pictures_without_a_border_are_not_trimmed():
    for img in PHOTOS + [scene(s, 120) for s in range(12)]:
        assert unpadded(img, thumbnail(img)) is None
        assert flat_border(np.asarray(img)) is None
    # a border thinner than MIN_BORDER on every side is not worth a view
    thin = ImageOps.expand(PHOTOS[0], border=2, fill=(255, 255, 255))
    assert flat_border(np.asarray(thin)) is None


def test_padded_copies_are_duplicates_with_full_confidence(tmp_path):
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "test").mkdir()
    for k, img in enumerate(PHOTOS):
        img.save(data / "train" / f"photo{k}.jpg", quality=90)
    for s in range(12):  # distractors: other pictures
        scene(40 + s, 160).save(data / "train" / f"scene{s:02d}.jpg", quality=90)
    made = {}
    for k, (edit, colour) in enumerate(zip(sorted(EDITS), ("teal", "white", "black", "teal"))):
        name = f"test/{edit.replace(' ', '_')}.jpg"
        EDITS[edit](PHOTOS[k + 2], COLOURS[colour]).save(data / name, quality=85)
        made[name] = f"train/photo{k + 2}.jpg"
    r = audit(data, cache=False, jobs=1)
    found = {frozenset((rec["a"], rec["b"])): rec for rec in r.pair_records()}
    for copy, original in made.items():
        rec = found.get(frozenset((copy, original)))
        assert rec is not None, (copy, sorted(map(sorted, found)))
        assert rec["confidence"] >= 0.9, rec
    assert any(rec["detail"].startswith("unpadded") for rec in found.values()), found
    # nothing else: the copies are not paired with other photos through their borders
    assert len(found) == len(made), sorted(map(sorted, found))


def test_a_flat_border_of_any_colour_is_padding_only_where_one_was_trimmed():
    t = np.stack([np.asarray(scene(s, 32).convert("L")) for s in range(2)])
    t[:, :5, :] = 120  # a grey band along the top of both
    assert padding_weights(t) is None  # grey: not the black/white canvas rule
    w = padding_weights(t, bordered=np.array([True, False]))
    assert w is not None
    assert w[0, :5].max() == 0 and w[0, 8:].min() == 1  # the band (grown by one pixel) is out
    assert w[1].min() == 1  # the other image's band is picture
