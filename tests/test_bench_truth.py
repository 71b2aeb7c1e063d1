"""The benches' ground truth: two tiles of one photo that share no pixels by their places may
share them by content, where the photo repeats itself (bench/transformed.py's repeated_share)."""
import importlib.util
import sys

import numpy as np
from PIL import Image

from conftest import ROOT


def _repeated_share():
    spec = importlib.util.spec_from_file_location("bench_transformed", ROOT / "bench" / "transformed.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.repeated_share


def test_tiles_of_a_periodic_texture_share_their_pixels_by_content_and_others_do_not():
    repeated_share = _repeated_share()
    rng = np.random.default_rng(0)
    block = rng.integers(0, 255, (120, 120), np.uint8)
    periodic = Image.fromarray(np.tile(block, (3, 3)))  # repeats itself every 120 px down and across
    noise = Image.fromarray(rng.integers(0, 255, (360, 360), np.uint8))
    sky = Image.fromarray(np.repeat(np.linspace(80, 200, 360)[:, None], 360, axis=1).astype(np.uint8))
    a, b = (0, 0, 96), (0, 120, 96)  # apart by their places: b starts where a's texture repeats
    assert repeated_share(periodic, a, b) == 1.0
    assert repeated_share(periodic, a, (0, 168, 96)) == 0.5  # half of a's texture shows in it
    assert repeated_share(noise, a, b) == 0.0
    assert repeated_share(sky, a, b) == 0.0  # a smooth sky agrees anywhere: no evidence of the same pixels
    # tiles overlapping by place share that part, counted in whole cells
    assert repeated_share(noise, a, (48, 0, 96)) == 0.5
