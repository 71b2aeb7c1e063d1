"""Copies rotated by any angle in (3, 45) degrees: the de-rotated view lines up with the original;
the angle from the padding, the de-rotated view's search and storage.

Both canvas models (Pillow's ``rotate(expand=True)`` and its default same-size canvas, corners
cut off), black, white and edge-coloured fills, landscape, portrait and square pictures, on
photos that ship with scikit-learn and on textures the tests draw.
"""

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from leakscan import audit
from leakscan.features import extract_features, thumbnail
from leakscan.discovery import discover
from leakscan.rotation import derotate
from leakscan.settings import DetectSettings
from leakscan.verify import aligned_ncc, detail
from conftest import scene
from test_verify import crop, thumb


def _photos():
    from sklearn.datasets import load_sample_images

    return [Image.fromarray(a) for a in load_sample_images().images]  # two 640x427 photos


PHOTOS = _photos()
SHAPES = {"landscape": (480, 320), "portrait": (260, 390), "square": (340, 340)}


def picture(source: int, shape: str) -> Image.Image:
    """A photo crop (sources 0, 1) or a drawn texture (source 2) of the given shape."""
    w, h = SHAPES[shape]
    if source < 2:
        p = PHOTOS[source]
        x, y = (p.width - w) // 3, (p.height - h) // 2
        return p.crop((x, y, x + w, y + h))
    return scene(7 + len(shape), 64).resize((w, h), Image.BICUBIC)


def edge_colour(img: Image.Image) -> tuple:
    a = np.asarray(img.convert("RGB"))
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))


def rotated(img, angle, expand, fill, quality=90):
    colour = {"black": (0, 0, 0), "white": (255, 255, 255), "edge": None}[fill] or edge_colour(img)
    out = img.rotate(angle, resample=Image.BICUBIC, expand=expand, fillcolor=colour)
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=quality)  # as shared: re-encoded
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


CASES = [(canvas, fill, shape, source)
         for canvas in ("same", "expand") for fill in ("black", "white", "edge")
         for shape in ("landscape", "portrait", "square") for source in (0, 1, 2)]


@pytest.mark.parametrize("canvas, fill, shape, source", CASES)
def test_derotated_view_lines_up_with_the_original(canvas, fill, shape, source):
    k = CASES.index((canvas, fill, shape, source))
    angle = [7.0, -12.5, 18.0, -23.0, 27.5, -31.0, 36.0, -41.5, 44.0][k % 9]
    orig = picture(source, shape)
    copy = rotated(orig, angle, canvas == "expand", fill)
    got = derotate(copy, thumbnail(copy))
    assert got is not None, "no de-rotated view"
    found, view = got
    # a square picture rotated by 44 degrees is the same canvas as one rotated by -46: the
    # view is then a quarter turn of the original (the search tries all eight rotations/flips)
    off = abs(found - angle) % 90
    assert min(off, 90 - off) <= 1.5, found
    t = thumbnail(view)
    ncc = max(float(aligned_ncc(np.rot90(t, q).copy()[None], thumbnail(orig)[None])[0]) for q in range(4))
    assert ncc >= 0.8, ncc


@pytest.mark.parametrize("source", [0, 1, 2])
def test_unrotated_pictures_get_no_view(source):
    for shape in SHAPES:
        img = picture(source, shape)
        assert derotate(img, thumbnail(img)) is None
    # a letterboxed picture is padded, but not rotated
    img = picture(source, "square")
    box = Image.new("RGB", (img.width, img.height + 120), (0, 0, 0))
    box.paste(img, (0, 60))
    assert derotate(box, thumbnail(box)) is None


def test_audit_finds_same_size_rotated_copies(tmp_path):
    originals = {}
    for s, p in enumerate(PHOTOS):
        for k, (x, y) in enumerate(((0, 0), (320, 0), (0, 200), (320, 200))):
            originals[f"{s}{k}"] = p.crop((x, y, x + 320, y + 227))
    for s in range(4):
        originals[f"t{s}"] = scene(20 + s, 64).resize((300, 220), Image.BICUBIC)
    train, test = tmp_path / "data" / "train", tmp_path / "data" / "test"
    train.mkdir(parents=True)
    test.mkdir()
    for name, img in originals.items():
        img.save(train / f"{name}.jpg", quality=90)
    copies = {"00": (17.0, "black"), "11": (-28.0, "white"), "13": (38.0, "edge"), "t1": (-9.0, "black")}
    for name, (angle, fill) in copies.items():
        rotated(originals[name], angle, False, fill).save(test / f"{name}_rot.jpg", quality=90)
    r = audit(tmp_path / "data", cache=False, jobs=1)
    found = {frozenset((rec["a"], rec["b"])) for rec in r.pair_records()}
    for name in copies:
        assert frozenset((f"train/{name}.jpg", f"test/{name}_rot.jpg")) in found, (name, sorted(map(sorted, found)))


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
    # a part joined blank keeps everything but its thumbnails and embeddings (the calibration
    # copies in the few thumbnails it needs, and reads the embeddings where they are: beside)
    b = Features.concat([f, f], [0, len(f)], blank=(0,))
    assert not b.thumb[:len(f)].any() and not b.colour[:len(f)].any() and not b.embedding[:len(f)].any()
    assert np.array_equal(b.thumb[len(f):], f.thumb) and np.array_equal(b.colour[len(f):], f.colour)
    assert np.array_equal(b.embedding[len(f):], f.embedding) and np.array_equal(b.derotated_thumb, c.derotated_thumb)
    both = f.beside(f)
    assert np.array_equal(both.embedding[np.arange(len(both))], c.embedding)
    assert both.derotated_rows.tolist() == [4, 9] and np.array_equal(both.hashes, c.hashes)


def test_a_failing_rotation_check_does_not_lose_the_image(monkeypatch):
    import leakscan.features as F

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(F, "canvas_views", broken)
    monkeypatch.setattr(F, "canvas_view", broken)
    arr = np.stack([np.asarray(scene(s, 64)) for s in range(3)])
    f = extract_features(discover(arr), jobs=1)
    assert f.ok.all() and not f.failures and len(f.derotated_rows) == 0


def test_a_canvas_check_failing_for_a_batch_is_made_again_one_image_at_a_time(monkeypatch):
    """Small pictures have their canvas looked at together; when that fails, each is looked at
    alone, so the others keep their views (the same as without the failure)."""
    import leakscan.features as F

    turned = [scene(s, 96).rotate(20 + s, expand=True, fillcolor=(0, 0, 0)) for s in range(3)]
    arr = [np.asarray(p) for p in turned + [scene(s, 96) for s in range(3, 6)]]
    expected = extract_features(discover(arr), jobs=1)

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(F, "canvas_views", broken)
    f = extract_features(discover(arr), jobs=1)
    assert f.ok.all() and not f.failures
    assert f.derotated_rows.tolist() == expected.derotated_rows.tolist() == [0, 1, 2]
    assert np.array_equal(f.derotated_thumb, expected.derotated_thumb)


def test_de_rotated_views_come_back_from_the_cache_unchanged(tmp_path):
    from leakscan import audit

    for s in range(4):
        scene(s, 96).save(tmp_path / f"img{s}.png")
    scene(1, 96).rotate(30, resample=Image.BICUBIC, expand=True).save(tmp_path / "rotated.png")
    db = tmp_path / "cache.sqlite"
    first = audit(tmp_path, cache=db, jobs=1)
    again = audit(tmp_path, cache=db, jobs=1)
    assert again.features.n_cached == 5 and len(first.features.derotated_rows) == 1
    for name in ("derotated_rows", "derotated_angle", "derotated_embedding", "derotated_thumb", "derotated_colour",
                 "derotated_padding", "colour", "thumb", "hashes", "embedding"):
        np.testing.assert_array_equal(getattr(first.features, name), getattr(again.features, name))


def test_small_canvas_padding_read_on_its_own_grid():
    """A picture smaller than the 128 px grid the padding is read on is enlarged by a whole
    factor (each pixel repeated): its padding, read on the picture itself, is the padding of
    the enlarged picture, pixel for pixel (the flatness test included), and costs a sixteenth."""
    from scipy import ndimage

    from leakscan.rotation import _FIT, _eroded_counts, _padding_mask

    rng = np.random.default_rng(3)
    mask = rng.random((16, 32)) < 0.6
    assert np.array_equal(_eroded_counts(mask, (1, 1)).astype(bool), ndimage.binary_erosion(mask))
    big = np.repeat(np.repeat(mask, 8, axis=0), 4, axis=1)
    per_block = ndimage.binary_erosion(big).reshape(16, 8, 32, 4).sum(axis=(1, 3))
    assert np.array_equal(_eroded_counts(mask, (8, 4)), per_block)

    compared = found = 0
    for k, (w, h) in enumerate([(32, 32), (64, 32), (32, 64), (16, 16)] * 6):
        src = picture(k % 3, ("landscape", "portrait", "square")[k % 3]).resize((w, h), Image.BILINEAR)
        fill = [(0, 0, 0), (255, 255, 255), (120, 40, 200)][k % 3]
        img = src.rotate(float(rng.uniform(5, 40)) * (-1) ** k, fillcolor=fill, expand=bool(k % 2))
        img = img.resize((w, h)) if k % 4 == 1 else img.crop((0, 0, w, h))
        small = np.asarray(img.convert("RGB"))
        ry, rx = _FIT // h, _FIT // w
        on_grid = _padding_mask(np.asarray(img.convert("RGB").resize((_FIT, _FIT), Image.BOX)), 128.0)
        on_small = _padding_mask(small, 128.0, repeat=(ry, rx))
        assert (on_grid is None) == (on_small is None)
        if on_grid is not None:
            assert np.array_equal(on_grid, np.repeat(np.repeat(on_small, ry, axis=0), rx, axis=1))
            found += 1
        compared += 1
    assert found >= compared // 2  # most of these canvases have padding to read


def test_a_quarter_turn_is_named_the_same_whichever_image_searched(tmp_path):
    # with --scope cross only the smaller split searches; here its rows come after the train
    # rows, so the query is the second image of each pair: its turn must be inverted for the first
    from sklearn.datasets import load_sample_images

    rows = []
    for p, a in enumerate(load_sample_images().images):
        for k, (y, x) in enumerate((y, x) for y in (0, 150, 300) for x in (0, 160, 320, 480)):
            Image.fromarray(a[y:y + 100, x:x + 120]).save(tmp_path / f"tr{p}{k:02d}.jpg", quality=95)
            rows.append((f"tr{p}{k:02d}.jpg", "train"))
    for name, turn in (("tr005", Image.Transpose.ROTATE_90), ("tr107", Image.Transpose.ROTATE_270)):
        Image.open(tmp_path / f"{name}.jpg").transpose(turn).save(tmp_path / f"te_{name}.jpg", quality=95)
        rows.append((f"te_{name}.jpg", "test"))
    with open(tmp_path / "m.csv", "w", newline="") as fh:
        fh.write("path,split\n" + "".join(f"{p},{s}\n" for p, s in rows))

    def turns(scope):
        r = audit(manifest=tmp_path / "m.csv", cache=False, settings=DetectSettings(scope=scope))
        return {(str(r.manifest.paths[i]), str(r.manifest.paths[j])): d
                for i, j, d in zip(r.pairs.i.tolist(), r.pairs.j.tolist(), r.pairs.detail())}

    everything, cross = turns("all"), turns("cross")
    assert everything[("tr005.jpg", "te_tr005.jpg")] == cross[("tr005.jpg", "te_tr005.jpg")] == "rot270"
    assert everything[("tr107.jpg", "te_tr107.jpg")] == cross[("tr107.jpg", "te_tr107.jpg")] == "rot90"


@pytest.mark.parametrize("canvas", ["rotated", "padded to a square"])
def test_a_folder_where_every_picture_has_a_canvas(canvas, tmp_path):
    """Every picture turned on a canvas, or padded to a square (a folder of augmented or
    preprocessed images): the tilted search has no picture without a canvas to look up (the
    audit ended on that empty lookup before), and a copy re-encoded smaller is found."""
    train, test = tmp_path / "data" / "train", tmp_path / "data" / "test"
    train.mkdir(parents=True)
    test.mkdir()
    pictures = [p.crop((x, 0, x + 320, 427)) for p in PHOTOS for x in (0, 320)] + [
        scene(40 + s, 64).resize((300, 220), Image.BICUBIC) for s in range(4)]
    for k, p in enumerate(pictures):
        fill = (255, 255, 255) if k % 2 else (0, 0, 0)
        if canvas == "rotated":
            edited = p.rotate(20 + 3 * k, resample=Image.BICUBIC, expand=True, fillcolor=fill)
        else:
            edited = ImageOps.pad(p, (max(p.size), max(p.size)), color=fill)
        edited.save(train / f"pic{k}.jpg", quality=90)
        if k in (1, 4):
            edited.resize((edited.width * 2 // 3, edited.height * 2 // 3), Image.LANCZOS).save(test / f"copy{k}.jpg",
                                                                                             quality=85)
    r = audit(tmp_path / "data", cache=False, jobs=1)
    assert r.features.canvas_mask().all()
    found = {frozenset((rec["a"], rec["b"])) for rec in r.pair_records()}
    for k in (1, 4):
        assert frozenset((f"train/pic{k}.jpg", f"test/copy{k}.jpg")) in found, (k, sorted(map(sorted, found)))
