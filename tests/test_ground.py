"""A picture on a flat white (or black) ground: when one image's ground is taken for a border it
could trim and the other's is not, the ground both show in the same place is still measured as
picture, so a copy lines up as one. Pictures rotated on a canvas keep their corners out."""
import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from leakscan.evidence import EVIDENCE, pair_evidence
from leakscan.features import extract_images
from leakscan.pairs import Kind, PairTable

from conftest import BENCH, photo_halves


def _one_pair(pictures) -> dict:
    f = extract_images([np.asarray(p) for p in pictures])
    pairs = PairTable(np.array([0]), np.array([1]), np.array([Kind.EMBEDDING], np.uint8), np.ones(1, np.float32),
                      np.zeros(1, np.int16), np.ones(1, np.float32), np.zeros(1, np.int8), np.zeros(1, bool))
    return dict(zip(EVIDENCE, pair_evidence(f, pairs, np.full(2, -1))[0])), f


@pytest.mark.skipif(not (BENCH / "images.tar").exists(), reason="../shared/bench/cifar10 not present")
def test_a_copy_on_white_ground_lines_up_though_only_one_ground_was_trimmed():
    # ciFAIR's judgment-1 pair: a bomber on white sky, in test and in train
    with tarfile.open(BENCH / "images.tar") as tar:
        pics = [Image.open(io.BytesIO(tar.extractfile(f"cifar10/{p}").read())).convert("RGB")
                for p in ("test/airplane/0588.jpg", "train/airplane/0532.jpg")]
    ev, f = _one_pair(pics)
    assert f.canvas_mask(trimmed=True).tolist() == [False, True]  # only the train image's ground is trimmed
    assert ev["ncc"] > 0.8 and ev["colour"] > 0.9, ev


def test_two_pictures_rotated_on_white_canvases_do_not_agree_on_their_corners():
    pictures = photo_halves()
    for a, b, angle in ((0, 3, 20), (1, 4, -25), (2, 5, 30), (0, 4, 15)):
        ev, f = _one_pair([pictures[a].rotate(angle, expand=True, fillcolor=(255, 255, 255)),
                           pictures[b].rotate(angle + 3, expand=True, fillcolor=(255, 255, 255))])
        assert f.canvas_mask(trimmed=False).all()  # both read as rotated on a canvas
        # the white corners both canvases have are padding, not a ground they share
        assert ev["colour"] < 0.2, (a, b, ev)
