"""Colours as they are: a gain and offset per channel map one two-tone silhouette onto any
other (a red plane on blue sky onto a black one on white sky), so ``colour`` cannot tell them
apart; ``colour_raw`` compares the colours with only an overall brightness shift taken off
(each pixel's channels in order of value, whose brightest and darkest a hue shift keeps;
grey levels when either picture is grey)."""
import numpy as np
from PIL import Image, ImageDraw

from leakscan.evidence import EVIDENCE, pair_evidence
from leakscan.features import extract_images
from leakscan.pairs import Kind, PairTable

from conftest import photo_halves


def _evidence(a: Image.Image, b: Image.Image) -> dict:
    f = extract_images([np.asarray(a), np.asarray(b)])
    pairs = PairTable(np.array([0]), np.array([1]), np.array([Kind.EMBEDDING], np.uint8), np.ones(1, np.float32),
                      np.zeros(1, np.int16), np.ones(1, np.float32), np.zeros(1, np.int8), np.zeros(1, bool))
    return dict(zip(EVIDENCE, pair_evidence(f, pairs, np.full(2, -1))[0]))


def _silhouette(sky, body) -> Image.Image:
    img = Image.new("RGB", (96, 96), sky)
    ImageDraw.Draw(img).polygon([(10, 50), (48, 30), (86, 48), (60, 54), (70, 74), (44, 58), (20, 62)], fill=body)
    return img


def test_a_silhouette_in_other_colours_agrees_by_gain_and_offset_but_not_as_it_is():
    red_on_blue = _silhouette((110, 160, 230), (200, 30, 30))
    black_on_white = _silhouette((245, 245, 245), (20, 20, 20))
    other = _evidence(red_on_blue, black_on_white)
    assert other["colour"] > 0.8, other  # any two-tone picture maps onto any other
    assert other["colour_raw"] < 0.6, other
    brighter = Image.fromarray(np.clip(np.asarray(red_on_blue, np.int16) + 30, 0, 255).astype(np.uint8))
    assert _evidence(red_on_blue, brighter)["colour_raw"] > 0.85


def test_a_photo_and_its_copies_agree_in_colour_as_it_is_and_other_photos_do_not():
    for photo in photo_halves()[:3]:
        brighter = Image.fromarray(np.clip(np.asarray(photo, np.int16) - 25, 0, 255).astype(np.uint8))
        smaller = photo.resize((photo.width // 2, photo.height // 2), Image.BILINEAR)
        hsv = np.asarray(photo.convert("HSV")).copy()
        hsv[..., 0] += 80
        hue_shifted = Image.fromarray(hsv, "HSV").convert("RGB")
        grey = photo.convert("L").convert("RGB")
        for copy in (brighter, smaller, hue_shifted, grey):
            ev = _evidence(photo, copy)
            assert ev["colour_raw"] > 0.85, ev
        # two different photos: far less colour in common
        assert _evidence(photo, photo_halves()[5])["colour_raw"] < 0.6

