import imagehash
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from leakscan import discover, extract_features
from leakscan.views import N_VARIANTS, apply_dihedral, embedding_variants
from leakscan.features import (extract_images, features_of_image, hog,
                               phash_variants, thumbnail)
from conftest import FIXTURES, scene


def test_phash_matches_imagehash_on_fixtures():
    files = sorted(FIXTURES.glob("t*/*/*.jpg"))[:60]
    for f in files:
        img = Image.open(f).convert("RGB")
        small = thumbnail(img)
        ours = phash_variants(small[None])[0, 0]
        theirs = np.packbits(imagehash.phash(img).hash.flatten())
        assert np.array_equal(ours, theirs), f


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), v=st.integers(0, N_VARIANTS - 1), as_uint8=st.booleans())
def test_embedding_of_transformed_image_is_a_permutation(seed, v, as_uint8):
    gray = np.random.default_rng(seed).random((32, 32)).astype(np.float32) * 255
    if as_uint8:  # the lookup-table path used on real thumbnails
        gray = gray.astype(np.uint8)
    direct = hog(apply_dihedral(gray, v)[None])[0]
    permuted = embedding_variants(hog(gray[None]), [v])[0, 0]
    assert np.allclose(direct, permuted, atol=1e-5)


def test_uint8_and_float_paths_agree():
    gray = np.random.default_rng(1).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    assert np.allclose(hog(gray), hog(gray.astype(np.float32)), atol=1e-5)


@pytest.mark.parametrize("v, op", [(1, Image.Transpose.FLIP_LEFT_RIGHT), (2, Image.Transpose.FLIP_TOP_BOTTOM),
                                   (3, Image.Transpose.ROTATE_180), (4, Image.Transpose.TRANSPOSE)])
def test_hash_variant_predicts_transformed_image(v, op):
    img = scene(5, 64)
    _, hashes, _, _ = features_of_image(img)
    _, moved, _, _ = features_of_image(img.transpose(op))
    bits = np.unpackbits(hashes[v] ^ moved[0]).sum()
    assert bits <= 4


def test_low_information_flagged():
    _, _, _, low_flat = features_of_image(Image.new("RGB", (50, 50), (30, 60, 90)))
    _, _, _, low_scene = features_of_image(scene(1))
    assert low_flat and not low_scene


def test_extract_features_reports_failures_and_keeps_rows(tmp_path):
    scene(1).save(tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"garbage")
    m = discover([tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg"])
    f = extract_features(m, jobs=1)
    assert f.ok.tolist() == [True, False, False]
    reasons = dict(f.failures)
    assert "not an image" in reasons[1] and "not found" in reasons[2]
    assert np.isclose(np.linalg.norm(f.embedding[0]), 1.0)


def test_parallel_equals_serial():
    m = discover(FIXTURES)
    a = extract_features(m, jobs=1, chunk_size=64)
    b = extract_features(m, jobs=2, chunk_size=64)
    assert np.array_equal(a.hashes, b.hashes) and np.array_equal(a.embedding, b.embedding)
    assert a.failures == b.failures


def test_features_beside_more_read_as_one_without_copying_the_embeddings():
    """The calibration's dataset and its copies: every row's embedding as the joined array
    holds it, however the rows are asked for, and the dataset's own array is not copied."""
    rng = np.random.default_rng(2)
    pictures = [Image.fromarray(rng.integers(0, 256, (40 + 4 * k, 48, 3), dtype=np.uint8)) for k in range(7)]
    data, more = extract_images(pictures[:5]), extract_images(pictures[5:])
    both = data.beside(more)
    joined = np.r_[data.embedding, more.embedding]
    assert both.embedding.first is data.embedding and len(both) == len(both.embedding) == 7
    for rows in (np.array([6, 0, 5, 4, 6]), slice(3, None), slice(None, None, -2), 5, -1, np.arange(7) % 2 == 0,
                 np.zeros(0, np.int64)):
        np.testing.assert_array_equal(both.embedding[rows], joined[rows])
    np.testing.assert_array_equal(both.take(np.array([1, 6])).embedding, joined[[1, 6]])
    np.testing.assert_array_equal(both.hashes, np.r_[data.hashes, more.hashes])
    assert not both.thumb[:5].any() and np.array_equal(both.thumb[5:], more.thumb)  # the dataset's left out
    with pytest.raises(IndexError):
        both.embedding[np.array([7])]
