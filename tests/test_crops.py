"""Crops of half to two thirds of a picture, towards a corner: proposed by the tighter crop views
(pictures of 64 px or more), lined up through the crop view that matched, and reported as
``cropped`` duplicates; a crop of another picture does not line up. Crops of another shape
resized to a fixed size (torchvision's ``RandomResizedCrop``) likewise, through the stretched
crop views; and crops then mirrored (a training pipeline's crop and flip), through the crop views
mirrored."""
import numpy as np
from PIL import Image

from leakscan import audit
from leakscan.evidence import EVIDENCE, pair_evidence
from leakscan.features import extract_images
from leakscan.pairs import Kind, PairTable
from leakscan.settings import DetectSettings
from leakscan.views import MatchView

from conftest import flower_mirror_pair, middle_and_half, photo_halves, plant_copies


def _corner_crop(img: Image.Image, share: float, corner: tuple) -> Image.Image:
    """The box keeping ``share`` of the area at ``corner`` ((0, 0) top left, (1, 1) bottom right)."""
    w, h = img.size
    k = np.sqrt(share)
    cw, ch = round(w * k), round(h * k)
    x = 0 if corner[1] == 0 else w - cw
    y = 0 if corner[0] == 0 else h - ch
    return img.crop((x, y, x + cw, y + ch))


def _resized_crop(img: Image.Image, area: float, ratio: float, at: tuple, size: tuple) -> Image.Image:
    """A crop keeping ``area`` of the picture, ``ratio`` wide to high in pixels, placed at ``at``
    ((0, 0) top left, (1, 1) bottom right), resized to ``size``: the picture stretched."""
    w, h = img.size
    cw = min(w, round(np.sqrt(area * w * h * ratio)))
    ch = min(h, round(np.sqrt(area * w * h / ratio)))
    x, y = round(at[1] * (w - cw)), round(at[0] * (h - ch))
    return img.crop((x, y, x + cw, y + ch)).resize(size, Image.BILINEAR)


def _planted_found(root, pictures: list, copies: dict, detail: str, min_confidence: float = 0.0) -> dict:
    """Audit ``pictures`` with their planted ``copies`` (:func:`conftest.plant_copies`), check that
    each copy is reported with its picture, read as ``detail``, at a confidence above
    ``min_confidence``; the reported pairs (pair -> record)."""
    plant_copies(root, pictures, copies)
    r = audit(root, cache=False, jobs=1)
    dup = {frozenset((rec["a"], rec["b"])): rec for rec in r.pair_records()}
    for k in copies:
        rec = dup.get(frozenset((f"train/pic{k}.jpg", f"test/copy{k}.jpg")))
        assert rec is not None, (k, sorted(map(sorted, dup)))
        assert rec["detail"] == detail and rec["confidence"] > min_confidence, (k, rec)
    return dup


def _unexpected(dup: dict, copies) -> list:
    """The reported pairs other than each planted copy with its picture (``dup``: pair -> record),
    the known mirror-image pair of the flower's halves (:func:`conftest.flower_mirror_pair`) and a
    photo's middle with one of its halves, which share half the middle (:func:`conftest.middle_and_half`)."""
    planted = {frozenset((f"train/pic{k}.jpg", f"test/copy{k}.jpg")) for k in copies}
    return [(rec["a"], rec["b"], rec["detail"]) for key, rec in dup.items()
            if key not in planted and not flower_mirror_pair(rec)
            and not middle_and_half(rec)]


def _ncc(pictures, variant) -> np.ndarray:
    """``ncc`` of picture 0 against each other picture, the pairs read as ``variant``."""
    f = extract_images([np.asarray(p) for p in pictures])
    m = len(pictures) - 1
    pairs = PairTable(np.zeros(m, np.int64), np.arange(1, m + 1), np.full(m, Kind.EMBEDDING, np.uint8),
                      np.ones(m, np.float32), np.zeros(m, np.int16), np.ones(m, np.float32),
                      np.full(m, variant, np.int8), np.zeros(m, bool))
    return pair_evidence(f, pairs, np.full(len(pictures), -1))[:, EVIDENCE.index("ncc")]


def test_a_corner_crop_of_half_the_picture_lines_up_through_its_crop_view():
    pictures = photo_halves()
    for k in (0, 2, 4):
        img = pictures[k]
        crop = _corner_crop(img, 0.52, (1, 0))
        other = _corner_crop(pictures[(k + 3) % 6], 0.52, (1, 0))
        as_crop = _ncc([img, crop, other], MatchView.CROPPED)
        whole = _ncc([img, crop], 0)
        assert as_crop[0] > 0.65 and as_crop[0] > whole[0] + 0.1, (k, as_crop, whole)
        assert as_crop[1] < 0.45, (k, as_crop)


def test_crops_of_half_to_two_thirds_of_a_picture_are_found(tmp_path):
    pictures = photo_halves()
    copies = {0: (0.52, (1, 0)), 1: (0.55, (0, 1)), 3: (0.52, (0, 0)), 4: (0.58, (1, 1))}
    dup = _planted_found(tmp_path, pictures, {k: _corner_crop(pictures[k], share, corner)
                                              for k, (share, corner) in copies.items()}, "cropped")
    assert not _unexpected(dup, copies), _unexpected(dup, copies)


def test_a_square_crop_of_a_wide_picture_resized_lines_up_through_a_stretched_view():
    """A square crop of 60% of a 3:2 picture resized to 256x256 is the picture stretched 1.6 times
    along one axis: more than the zooms line up; a stretched crop view lines it up."""
    pictures = photo_halves()
    for k in range(6):
        copy = _resized_crop(pictures[k], 0.6, 1.0, (0.5, 0.0), (256, 256))
        other = _resized_crop(pictures[(k + 3) % 6], 0.6, 1.0, (0.5, 0.0), (256, 256))
        as_crop = _ncc([pictures[k], copy, other], MatchView.CROPPED)
        whole = _ncc([pictures[k], copy], 0)
        assert as_crop[0] > 0.65 and as_crop[0] > whole[0] + 0.05, (k, as_crop, whole)
        assert as_crop[1] < 0.45, (k, as_crop)


def test_a_crop_whose_box_no_crop_view_has_lines_up_once_its_box_is_fitted():
    """Crops keeping 55-70% of the picture, off-centre, of another shape, resized back to the
    picture's size: no crop view has their box, the zoom alone cannot line them up; the box
    fitted side by side does, and a crop of another picture still does not line up."""
    pictures = photo_halves()
    for k in range(6):
        for area, ratio, at in ((0.62, 0.8, (0.3, 0.7)), (0.7, 1.25, (0.8, 0.2)), (0.55, 1.0, (0.4, 0.6))):
            copy = _resized_crop(pictures[k], area, ratio, at, pictures[k].size)
            other = _resized_crop(pictures[(k + 3) % 6], area, ratio, at, pictures[k].size)
            as_crop = _ncc([pictures[k], copy, other], MatchView.CROPPED)
            assert as_crop[0] > 0.78 and as_crop[1] < 0.45, (k, area, ratio, as_crop)


def test_crops_of_another_shape_resized_to_a_fixed_size_are_found(tmp_path):
    pictures = photo_halves()
    copies = {0: _resized_crop(pictures[0], 0.6, 1.0, (0.5, 0.0), (256, 256)),
              1: _resized_crop(pictures[1], 0.7, 0.8, (0.0, 1.0), (224, 224)),
              3: _resized_crop(pictures[3], 0.65, 1.2, (1.0, 0.5), (300, 200)),
              4: _resized_crop(pictures[4], 0.55, 0.9, (0.5, 1.0), (256, 256))}
    dup = _planted_found(tmp_path, pictures, copies, "cropped", min_confidence=0.9)
    assert not _unexpected(dup, copies), sorted(map(sorted, dup))


def _mirrored(img: Image.Image) -> Image.Image:
    return img.transpose(Image.FLIP_LEFT_RIGHT)


def test_a_crop_then_mirrored_lines_up_through_the_mirrored_crop_view():
    """Read as a mirrored crop, a crop of half the picture then flipped lines up; read as a plain
    crop, it does not (a mirrored picture is not its copy unless mirrors count), nor does a
    mirrored crop of another picture."""
    pictures = photo_halves()
    for k in (0, 2, 4):
        copy = _mirrored(_corner_crop(pictures[k], 0.52, (1, 0)))
        other = _mirrored(_corner_crop(pictures[(k + 3) % 6], 0.52, (1, 0)))
        mirrored = _ncc([pictures[k], copy, other], MatchView.CROPPED_HFLIP)
        plain = _ncc([pictures[k], copy], MatchView.CROPPED)
        assert mirrored[0] > 0.65 and mirrored[0] > plain[0] + 0.2, (k, mirrored, plain)
        assert mirrored[1] < 0.45, (k, mirrored)


def test_crops_then_mirrored_are_found_and_said_so(tmp_path):
    """RandomResizedCrop then a horizontal flip, the standard training augmentation: found, with
    detail ``cropped, hflip``; with ``transforms='none'`` mirrors are not copies."""
    pictures = photo_halves()
    copies = {0: _mirrored(_resized_crop(pictures[0], 0.6, 1.0, (0.5, 0.0), (256, 256))),
              2: _mirrored(_corner_crop(pictures[2], 0.55, (1, 1))),
              5: _mirrored(_resized_crop(pictures[5], 0.7, 0.8, (0.0, 1.0), (224, 224)))}
    dup = _planted_found(tmp_path, pictures, copies, "cropped, hflip", min_confidence=0.9)
    assert not _unexpected(dup, copies), _unexpected(dup, copies)
    plain = audit(tmp_path, cache=False, jobs=1, settings=DetectSettings(transforms="none"))
    assert not [rec for rec in plain.pair_records() if rec["detail"] == "cropped, hflip"]


def test_sampling_by_taps_is_the_product_with_the_resampling_matrices():
    """sample_rows and sample_columns read two pixels a sampled point where a product with the
    resampling matrices reads the whole axis: the same views, boxes of any shape and place."""
    from leakscan.views import box_taps, resampling_matrices, sample_columns, sample_rows

    rng = np.random.default_rng(3)
    x = (rng.random((7, 32, 24)) * 255).astype(np.float32)
    lo = rng.uniform(0, 0.6, 7)
    hi = np.minimum(lo + rng.uniform(0.3, 0.9, 7), 1.0)
    rows = sample_rows(x, box_taps(lo, hi, 32, 20))
    assert rows.shape == (7, 20, 24)
    assert np.abs(rows - np.matmul(resampling_matrices(lo, hi, 32, 20), x)).max() < 1e-3
    cols = sample_columns(x, box_taps(lo, hi, 24, 16))
    assert cols.shape == (7, 32, 16)
    assert np.abs(cols - np.matmul(x, resampling_matrices(lo, hi, 24, 16).transpose(0, 2, 1))).max() < 1e-3
    assert np.abs(rows[:, :, 0] - x[:, :20, 0]).mean() > 1  # sampled, not the first rows


def test_the_crop_views_are_the_boxes_of_each_thumbnail_enlarged():
    # crop_views (one resampling for all thumbnails, as matrix products) against box_views (a
    # box per thumbnail, sampled pixel by pixel): the same bilinear views
    from conftest import scene
    from leakscan.features import thumbnail
    from leakscan.views import STRETCH_BOXES, box_views, crop_boxes, crop_views

    thumbs = np.stack([thumbnail(scene(s, 96)) for s in range(6)])
    boxes = crop_boxes() + crop_boxes(0.7) + STRETCH_BOXES
    views = crop_views(thumbs, boxes)
    assert views.shape == (6, len(boxes), 32, 32)
    for k, box in enumerate(boxes):
        each = box_views(thumbs, np.tile(np.asarray(box, np.float64), (len(thumbs), 1)), 32)
        assert np.abs(views[:, k] - each).max() < 1e-3
    assert np.abs(views[:, 0] - thumbs).mean() > 5  # a crop, not the thumbnail
    # no thumbnails, no views (grey and colour): an empty batch is not an error
    assert box_views(thumbs[:0], np.zeros((0, 4)), 32).shape == (0, 32, 32)
    assert box_views(np.zeros((0, 3, 16, 16)), np.zeros((0, 4)), 16).shape == (0, 3, 16, 16)
