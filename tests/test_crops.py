"""Crops of half to two thirds of a picture, towards a corner: proposed by the tighter crop views
(pictures of 64 px or more), lined up through the crop view that matched, and reported as
``cropped`` duplicates; a crop of another picture does not line up."""
import numpy as np
from PIL import Image

from leakscan import audit
from leakscan.evidence import EVIDENCE, pair_evidence
from leakscan.features import extract_images
from leakscan.pairs import Kind, PairTable
from leakscan.views import MatchView

from conftest import photo_halves, plant_copies


def _corner_crop(img: Image.Image, share: float, corner: tuple) -> Image.Image:
    """The box keeping ``share`` of the area at ``corner`` ((0, 0) top left, (1, 1) bottom right)."""
    w, h = img.size
    k = np.sqrt(share)
    cw, ch = round(w * k), round(h * k)
    x = 0 if corner[1] == 0 else w - cw
    y = 0 if corner[0] == 0 else h - ch
    return img.crop((x, y, x + cw, y + ch))


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
    plant_copies(tmp_path, pictures, {k: _corner_crop(pictures[k], share, corner)
                                      for k, (share, corner) in copies.items()})
    r = audit(tmp_path, cache=False, jobs=1)
    dup = {frozenset((rec["a"], rec["b"])): rec for rec in r.pair_records()}
    for k in copies:
        rec = dup.get(frozenset((f"train/pic{k}.jpg", f"test/copy{k}.jpg")))
        assert rec is not None, (k, sorted(map(sorted, dup)))
        assert rec["detail"] == "cropped", (k, rec["detail"])
    assert len(dup) == len(copies), sorted(map(sorted, dup))
