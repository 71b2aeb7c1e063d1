"""Letterbox, pillarbox, frames, padding to a square and caption bars: the picture is trimmed
out of its flat border (any colour) or from under a caption bar drawn over it, and searched as
the image's canvas view, so the copy is found with full confidence; a border is left out of
the verification only where one was trimmed.

Each edit is made the ways different tools make it (Pillow canvas + paste, ``ImageOps.pad``
and ``ImageOps.expand``, ``numpy.pad``), on photos that ship with scikit-learn.
"""

import numpy as np
import pytest
from PIL import Image, ImageOps

from leakscan import audit
from leakscan.features import thumbnail
from leakscan.padding import NO_BORDER, border_mask, flat_border, padding_weights, unpadded
from leakscan.views import canvas_view
from conftest import flower_mirror_pair, scene


def _photos():
    from sklearn.datasets import load_sample_images

    out = []
    for a in load_sample_images().images:  # two 640x427 photos, cut into four pictures each
        p = Image.fromarray(a)
        out += [p.crop((x, y, x + 320, y + 213)) for x in (0, 320) for y in (0, 213)]
    return out


PHOTOS = _photos()
#: Which of PHOTOS are cut from the left and the right half of the flower photo.
FLOWER_LEFT, FLOWER_RIGHT = (4, 5), (6, 7)
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
    found = unpadded(padded, thumbnail(padded))
    assert found is not None
    view, padding = found
    # the trimmed picture has the original's aspect, within the one-pixel rows of the look
    assert abs(view.width / view.height - img.width / img.height) < 0.06, view.size
    # the picture starts at a straight edge, so all the trimmed border is padding
    assert padding == pytest.approx(flat_border(np.asarray(padded.resize(
        (min(padded.width, 128), min(padded.height, 128)), Image.BOX))), abs=1e-6)
    angle, same, same_padding = canvas_view(padded, thumbnail(padded))
    assert angle == 0.0 and same.size == view.size and same_padding == padding


def test_pictures_without_a_border_are_not_trimmed():
    for img in PHOTOS + [scene(s, 120) for s in range(12)]:
        assert unpadded(img, thumbnail(img)) is None
        assert flat_border(np.asarray(img)) is None
    # a border thinner than MIN_BORDER on every side is not worth a view
    thin = ImageOps.expand(PHOTOS[0], border=2, fill=(255, 255, 255))
    assert flat_border(np.asarray(thin)) is None


def _audit_copies(tmp_path, copies: dict, distractor=lambda s, pic: pic) -> dict:
    """Audit the photos in train, 12 drawn distractors (``distractor(s, picture)`` may edit
    them) and ``copies`` (``{test name: (image, original k)}``) in test; the pairs found by
    their two paths, after checking that each copy is found at confidence >= 0.9 with its
    original and that nothing else is found."""
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "test").mkdir()
    for k, img in enumerate(PHOTOS):
        img.save(data / "train" / f"photo{k}.jpg", quality=90)
    for s in range(12):
        distractor(s, scene(40 + s, 160)).save(data / "train" / f"scene{s:02d}.jpg", quality=90)
    for name, (img, _) in copies.items():
        img.save(data / name, quality=85)
    r = audit(data, cache=False, jobs=1)
    found = {frozenset((rec["a"], rec["b"])): rec for rec in r.pair_records()}
    planted = {frozenset((copy, f"train/photo{k}.jpg")) for copy, (_, k) in copies.items()}
    left = [f"train/photo{k}.jpg" for k in FLOWER_LEFT] + [c for c, (_, k) in copies.items() if k in FLOWER_LEFT]
    right = [f"train/photo{k}.jpg" for k in FLOWER_RIGHT] + [c for c, (_, k) in copies.items() if k in FLOWER_RIGHT]
    for copy, (_, k) in copies.items():
        rec = found.get(frozenset((copy, f"train/photo{k}.jpg")))
        assert rec is not None, (copy, sorted(map(sorted, found)))
        assert rec["confidence"] >= 0.9, rec
    # nothing else: the copies are not paired with other pictures through their borders or bars
    # (but parts of the flower's two halves, mirror images of each other: conftest.flower_mirror_pair)
    others = [key for key, rec in found.items() if key not in planted and not flower_mirror_pair(rec, left, right)]
    assert not others, sorted(map(sorted, found))
    return found


def test_padded_copies_are_duplicates_with_full_confidence(tmp_path):
    copies = {f"test/{edit.replace(' ', '_')}.jpg": (EDITS[edit](PHOTOS[k + 2], COLOURS[colour]), k + 2)
              for k, (edit, colour) in enumerate(zip(sorted(EDITS), ("teal", "white", "black", "teal")))}
    found = _audit_copies(tmp_path, copies)
    assert any(rec["detail"].startswith("unpadded") for rec in found.values()), found


def test_a_flat_border_of_any_colour_is_padding_only_where_one_was_trimmed():
    t = np.stack([np.asarray(scene(s, 32).convert("L")) for s in range(2)])
    t[:, :5, :] = 120  # a grey band along the top of both
    assert padding_weights(t) is None  # grey: not the black/white canvas rule
    w = padding_weights(t, border=border_mask(np.array([[0, 5 / 32, 1, 1], NO_BORDER]), 32))
    assert w is not None
    assert w[0, :5].max() == 0 and w[0, 8:].min() == 1  # the band (grown by one pixel) is out
    assert w[1].min() == 1  # the other image's band is picture


def pil_caption(img, bar_colour=(20, 20, 20), share=0.15, top=False):
    """A caption bar drawn over the bottom (or top) of the picture with Pillow, text on it."""
    from PIL import ImageDraw

    out = img.copy()
    w, h = out.size
    bar = round(share * h)
    y0 = 0 if top else h - bar
    d = ImageDraw.Draw(out)
    d.rectangle((0, y0, w, y0 + bar), fill=bar_colour)
    text = tuple(255 - c for c in bar_colour)
    d.text((w // 20, y0 + bar // 4), "(c) sample caption 2026", fill=text, font_size=max(8, bar // 2))
    return out


def numpy_caption(img, bar_colour=(250, 250, 250), share=0.2, top=True):
    """The bar written into the array (numpy), the text drawn on it with Pillow."""
    from PIL import ImageDraw

    a = np.asarray(img).copy()
    bar = round(share * a.shape[0])
    rows = slice(0, bar) if top else slice(a.shape[0] - bar, None)
    a[rows] = bar_colour
    out = Image.fromarray(a)
    ImageDraw.Draw(out).text((5, (0 if top else a.shape[0] - bar) + 2), "watermark 0042", fill=(0, 0, 0),
                             font_size=max(8, int(bar * 0.5)))
    return out


CAPTIONS = {"pil, dark, bottom": pil_caption, "numpy, white, top": numpy_caption,
            "pil, white, top": lambda img: pil_caption(img, (245, 245, 245), 0.12, top=True)}


def _edge_stands_out(img, copy, top: bool) -> bool:
    """Does the picture where a bar ends stand out from the bar (most of the line a few
    pixels in from the bar unlike the bar's colour)? Where it does not, there is no edge to find."""
    a, c = np.asarray(img).astype(int), np.asarray(copy).astype(int)
    rows = np.flatnonzero(np.abs(a - c).max(axis=(1, 2)) > 40)  # the rows the bar changed
    inside = rows.max() + 3 if top else rows.min() - 3
    colour = np.median(c[0 if top else -1], axis=0)
    return (np.abs(a[inside] - colour).max(axis=1) > 12).mean() >= 0.9


@pytest.mark.parametrize("edit", sorted(CAPTIONS))
def test_a_caption_bar_drawn_over_the_picture_is_left_out(edit, tmp_path):
    top = "top" in edit
    checked = 0
    for k, img in enumerate(PHOTOS):
        made = CAPTIONS[edit](img)
        copy = jpeg(made, tmp_path, f"caption{k}.jpg")
        found = canvas_view(copy, thumbnail(copy))
        if not _edge_stands_out(img, made, top):
            continue
        checked += 1
        assert found is not None, k
        angle, picture, (x0, y0, x1, y1) = found
        # only the bar, on its side, is the border: the rest of the canvas is picture
        assert angle == 0.0 and (x0, x1) == (0.0, 1.0)
        bar = 1 - picture.height / copy.height
        assert 0.1 <= bar <= 0.22, (k, bar)
        assert (y0 if top else 1 - y1) == pytest.approx(bar, abs=0.02)
    assert checked >= 4


def test_captioned_copies_are_duplicates_with_full_confidence(tmp_path):
    copies = {f"test/caption{k}.jpg": (CAPTIONS[edit](PHOTOS[k + 4]), k + 4) for k, edit in enumerate(sorted(CAPTIONS))}
    # some distractors carry caption bars of their own: pictures are not paired through their bars
    _audit_copies(tmp_path, copies, distractor=lambda s, pic: pil_caption(pic) if s % 3 == 0 else pic)


def test_median_of_small_integer_arrays_is_numpys():
    """The border and corner looks take medians of a few dozen pixels from one sort: the same
    values as ``np.median``, for odd and even lengths, along an axis or over all."""
    from leakscan.padding import median

    rng = np.random.default_rng(4)
    for shape in ((4,), (31,), (32,), (3, 32), (3, 31), (5, 2)):
        a = rng.integers(0, 256, shape).astype(np.int16)
        assert np.array_equal(median(a), np.median(a))
        if a.ndim == 2:
            for axis in (0, 1):
                assert np.array_equal(median(a, axis=axis), np.median(a, axis=axis))


def test_each_side_of_a_square_canvas_is_read_on_its_own():
    # the four sides of a square canvas are read together: each keeps its own depth and colour
    left, right = 30, 46
    canvas = np.zeros((256, 256, 3), np.uint8)
    canvas[:, 256 - right:] = (20, 140, 150)
    canvas[:, left:256 - right] = np.asarray(PHOTOS[1].resize((256 - left - right, 256)))
    box = (left / 256, 0.0, 1 - right / 256, 1.0)
    assert flat_border(canvas) == pytest.approx(box, abs=1.5 / 256)
    # the same canvas transposed (bars top and bottom): the box transposed
    assert flat_border(canvas.transpose(1, 0, 2)) == pytest.approx((0.0, box[0], 1.0, box[2]), abs=1.5 / 256)
    # and bars of other depths and colours on all four sides (a frame)
    framed = np.asarray(ImageOps.expand(Image.fromarray(canvas[:, left:256 - right]), border=(12, 20, 28, 36),
                                        fill=(250, 250, 250)))
    h, w = framed.shape[:2]
    assert flat_border(framed) == pytest.approx((12 / w, 20 / h, 1 - 28 / w, 1 - 36 / h), abs=1.5 / 180)


def test_first_look_at_the_outer_lines_loses_no_border(monkeypatch):
    """A border starts with an outer line mostly of one colour: the look at the four outer
    lines that skips the rest when none is changes no answer, on bordered, captioned and
    plain pictures alike (compared with the full reading, the first look turned off)."""
    import leakscan.padding as padding

    rng = np.random.default_rng(5)
    pictures = []
    for k, p in enumerate(PHOTOS):
        fill = [(0, 0, 0), (255, 255, 255), tuple(int(c) for c in rng.integers(0, 256, 3))][k % 3]
        w, h = p.size
        pictures += [p, ImageOps.expand(p, border=(0, h // 8, 0, h // 8), fill=fill),
                     ImageOps.expand(p, border=(w // 10, 0, w // 10, 0), fill=fill)]
        barred = np.array(p)
        barred[-h // 6:] = fill  # a bar over the bottom, with text-like specks on it
        barred[-h // 10, ::7] = 255 - np.array(fill)
        pictures.append(Image.fromarray(barred))

    looks = [np.asarray(q.resize((128, 96))) for q in pictures] + [np.asarray(q.resize((32, 32))) for q in pictures]
    for a in [a for a in looks if flat_border(a) is not None]:  # specks on the outer line too: a caption bar
        specked = a.copy()
        specked[-1, ::15] = 255 - specked[-1, ::15]
        looks.append(specked)
    quick = [flat_border(a) for a in looks]
    skipped = sum(not padding._flat_outer_lines(a[None])[0] for a in looks)
    monkeypatch.setattr(padding, "_flat_outer_lines", lambda a: np.ones(len(a), bool))
    assert quick == [flat_border(a) for a in looks]
    assert sum(b is not None for b in quick) >= len(PHOTOS) * 2  # the bordered ones are found
    assert skipped >= len(PHOTOS) // 2  # busy edges: the rest is skipped


def test_canvas_views_read_together_are_each_image_read_alone():
    """The first looks and the borders of many pictures are read at once (pictures of one size
    together): each image's canvas view is the one it has read alone, whatever else is read
    beside it. Bordered, captioned, rotated and plain pictures, of several sizes, in a shuffled
    order (a side or a box read for the wrong picture would show here)."""
    from leakscan.views import canvas_views

    rng = np.random.default_rng(11)
    pictures = []
    for k, p in enumerate(PHOTOS):
        colour = list(COLOURS.values())[k % 3]
        for side in (32, 48, 96, 200):
            small = p.resize((side, round(side * p.height / p.width)))
            barred = np.array(small)
            barred[-max(2, small.height // 6):] = colour
            pictures += [small, list(EDITS.values())[k % len(EDITS)](small, colour), Image.fromarray(barred),
                         small.rotate(20 + k, expand=k % 2 == 0, fillcolor=colour)]
    order = rng.permutation(len(pictures))
    pictures = [pictures[k] for k in order]
    smalls = np.stack([thumbnail(p) for p in pictures])
    together = canvas_views(pictures, smalls)
    alone = [canvas_view(p, s) for p, s in zip(pictures, smalls)]

    def same(a, b):
        if a is None or b is None:
            return a is None and b is None
        return a[0] == b[0] and a[2] == b[2] and a[1].size == b[1].size and a[1].tobytes() == b[1].tobytes()
    assert all(same(a, b) for a, b in zip(together, alone))
    assert sum(v is not None and v[0] == 0 for v in alone) >= len(PHOTOS) * 4  # borders trimmed
    assert sum(v is not None and v[0] != 0 for v in alone) >= len(PHOTOS)  # pictures rotated back
    assert sum(v is None for v in alone) >= len(PHOTOS) * 2  # plain pictures: none
