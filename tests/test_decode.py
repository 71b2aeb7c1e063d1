import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from leakscan.decode import DecodeError, canonical_from_array, decode_bytes, read_bytes
from conftest import scene


def encode(img, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP", "TIFF", "GIF", "JPEG"])
def test_formats_decode_to_rgb(fmt):
    img, note = decode_bytes(encode(scene(1, 40), fmt, **({"lossless": True} if fmt == "WEBP" else {})))
    assert img.mode == "RGB" and img.size == (40, 40)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_restores_upright_pixels(orientation):
    upright = scene(3, 48).crop((0, 0, 48, 32))
    # store the pixels as a camera would, so that applying the tag gives `upright` back
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
               7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}[orientation]
    stored = upright if inverse is None else upright.transpose(inverse)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out, _ = decode_bytes(encode(stored, "PNG", exif=exif))
    assert np.array_equal(np.asarray(out), np.asarray(upright))


def test_alpha_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    out, _ = decode_bytes(encode(rgba, "PNG"))
    assert np.asarray(out)[0, 0].tolist() == [255, 255, 255]


def test_16bit_png_is_scaled_not_clipped():
    arr = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    out, _ = decode_bytes(encode(Image.fromarray(arr), "PNG"))
    assert np.asarray(out)[..., 0].max() > 200 and np.asarray(out)[..., 0].min() == 0


def test_float_images_with_nodata_decode_and_one_of_nodata_only_is_refused():
    """A float TIFF (Pillow mode F, as read without tifffile) with NaN or infinite pixels at an edge
    decodes, the nodata shown as its darkest value; one with no finite pixel at all is refused."""
    grey = np.asarray(scene(4, 40).convert("L"), np.float32) * 4.0  # beyond 8 bits: stretched
    grey[:8] = np.nan
    grey[8:10] = np.inf
    img, _ = decode_bytes(encode(Image.fromarray(grey, "F"), "TIFF"))
    a = np.asarray(img)
    assert img.mode == "RGB" and a[:10].max() == 0 and a[10:].std() > 20
    with pytest.raises(DecodeError, match="no data: every pixel"):
        decode_bytes(encode(Image.fromarray(np.full((8, 8), np.nan, np.float32), "F"), "TIFF"))


def test_a_float_image_in_0_1_reads_as_its_array_does():
    grey = np.asarray(scene(5, 40).convert("L"), np.float32) / 255.0
    img, _ = decode_bytes(encode(Image.fromarray(grey, "F"), "TIFF"))
    assert np.array_equal(np.asarray(img), np.asarray(canonical_from_array(grey)))
    assert np.asarray(img).std() > 20


def test_cmyk_jpeg():
    out, _ = decode_bytes(encode(scene(2, 32).convert("CMYK"), "JPEG"))
    assert out.mode == "RGB"


def test_animated_gif_first_frame_noted():
    frames = [scene(k, 16).convert("P") for k in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    _, note = decode_bytes(buf.getvalue())
    assert "first of 3 frames" in note


@pytest.mark.parametrize("blob, reason", [
    (b"hello, not an image", "not an image"),
    (encode(scene(1, 64), "JPEG")[:300], "truncated|corrupt"),
    (encode(scene(1, 64), "PNG")[:200], "truncated|corrupt"),
])
def test_bad_bytes_give_reasons(blob, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_bytes(blob)


def test_a_postscript_file_is_skipped_with_a_reason_and_ghostscript_is_never_run(tmp_path, monkeypatch):
    # Pillow draws EPS by running Ghostscript on the file's bytes (where gs is installed), and where
    # it is not, the file was "truncated or corrupt image data (EPS)"; a .jpg may hold one
    from PIL import EpsImagePlugin

    ran = tmp_path / "gs-ran"
    gs = tmp_path / "gs"
    gs.write_text(f"#!/bin/sh\ntouch {ran}\nexit 1\n")
    gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # found again on PATH: the fake one
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n0 0 moveto 10 10 lineto stroke\nshowpage\n"
    for blob in (eps, b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIII", 30, len(eps), 0, 0, 0, 0) + b"\xff\xff" + eps):
        with pytest.raises(DecodeError, match=r"a PostScript or EPS drawing, which only Ghostscript can draw"):
            decode_bytes(blob)
    assert not ran.exists()


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def test_huge_header_refused_before_decoding():
    with pytest.raises(DecodeError, match="pixels"):
        decode_bytes(_png_header(100_000, 100_000))


def test_a_100_megapixel_photo_is_decoded_not_refused_as_a_bomb():
    # 95 MP is over Pillow's warning (89 MP) but under MAX_PIXELS: a camera photo, not a bomb
    from leakscan.decode import MAX_PIXELS, decode_reduced

    assert 10_000 * 9_500 < MAX_PIXELS
    data = encode(Image.new("L", (10_000, 9_500), 90), "JPEG", quality=50)
    img, _, size = decode_reduced(data, 256)
    assert size == (10_000, 9_500) and img.mode == "RGB" and min(img.size) >= 256


def test_read_errors(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DecodeError, match="empty file"):
        read_bytes(tmp_path / "empty.jpg")
    with pytest.raises(DecodeError, match="not found"):
        read_bytes(tmp_path / "missing.jpg")
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(DecodeError, match="folder"):
        read_bytes(tmp_path / "dir.jpg")


def test_arrays_of_several_dtypes():
    f = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    assert canonical_from_array(f).mode == "RGB"
    assert np.asarray(canonical_from_array(f))[-1, -1, 0] == 255
    assert canonical_from_array(np.zeros((8, 8, 4), np.uint8)).mode == "RGB"
    with pytest.raises(DecodeError, match="NaN"):
        canonical_from_array(np.full((4, 4), np.nan))


def test_arrays_of_16_bit_values_in_wider_dtypes_are_scaled_not_clipped():
    # int32 (or float) pixels of 16-bit data read as the same uint16 pixels: clipped at 255,
    # every pixel above 1/257 of the range was white and different pictures looked alike
    g = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    want = np.asarray(canonical_from_array(g))
    assert len(np.unique(want)) > 32
    for dtype in (np.int32, np.int64, np.uint32, np.float32, np.float64):
        assert np.array_equal(np.asarray(canonical_from_array(g.astype(dtype))), want), dtype
    small = np.arange(64, dtype=np.int64).reshape(8, 8) * 4  # 8-bit values in a wide dtype: as they are
    assert np.array_equal(np.asarray(canonical_from_array(small))[..., 0], small)


def test_importing_leakscan_leaves_pillow_global_settings_alone():
    import subprocess
    import sys

    code = ("from PIL import ImageFile; ImageFile.LOAD_TRUNCATED_IMAGES = True\n"
            "import leakscan, leakscan.decode, leakscan.features, leakscan.cli\n"
            "assert ImageFile.LOAD_TRUNCATED_IMAGES is True, ImageFile.LOAD_TRUNCATED_IMAGES\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_truncated_images_are_still_refused_by_default():
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # Pillow's default, which leakscan does not change
    with pytest.raises(DecodeError, match="truncated|corrupt"):
        decode_bytes(encode(scene(2, 64), "JPEG")[:400])


def test_a_heic_photo_without_its_plugin_is_skipped_with_a_reason_that_names_it(tmp_path):
    """HEIC (phones' photos) needs pillow-heif; without it the reason says so, and is not cached
    (installing the plugin must help the next run). AVIF, which Pillow reads itself, still decodes."""
    import importlib.util

    from leakscan import audit
    from leakscan.decode import HEIF_REASON, is_cacheable

    if importlib.util.find_spec("pillow_heif") is not None:
        pytest.skip("pillow-heif is installed: HEIC files decode here")
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)  # a HEIC file's first box
    with pytest.raises(DecodeError) as err:
        decode_bytes(heic)
    assert str(err.value) == HEIF_REASON and "pillow-heif" in HEIF_REASON and not is_cacheable(HEIF_REASON)
    for split in ("train", "test"):
        (tmp_path / split / "a").mkdir(parents=True)
        scene(1 if split == "train" else 2).save(tmp_path / split / "a" / "x.png")
    (tmp_path / "test" / "a" / "phone.heic").write_bytes(heic)
    assert dict(audit(tmp_path, cache=False, jobs=1).skipped) == {"test/a/phone.heic": HEIF_REASON}
    buf = io.BytesIO()
    scene(3).save(buf, "AVIF")
    assert decode_bytes(buf.getvalue())[0].size == scene(3).size


def test_a_bmp_whose_header_gives_a_negative_or_zero_side_is_an_invalid_header_naming_the_file(tmp_path):
    # Pillow reads a BMP's signed width as unsigned: -8 was 4294967288 and the file "claims too many
    # pixels to decode safely"; a zero side was "not an image Pillow can read (unknown format)"
    from leakscan import audit
    from leakscan.decode import is_cacheable

    good = encode(scene(1, 8), "BMP")  # Pillow writes BITMAPINFOHEADER: signed width, height at 18, 22

    def patched(w, h):
        return good[:18] + struct.pack("<ii", w, h) + good[26:]

    for w, h in ((-8, 8), (0, 8), (8, 0), (-2 ** 31, 8)):
        with pytest.raises(DecodeError) as err:
            decode_bytes(patched(w, h))
        assert str(err.value).startswith(f"invalid image header: a BMP {w} pixels wide and {h} high"), str(err.value)
        assert is_cacheable(str(err.value))  # the bytes' fault
    assert decode_bytes(patched(8, -8))[0].size == (8, 8)  # a negative height is a top-down BMP
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        scene(1 if split == "train" else 2).save(tmp_path / split / "x.png")
    (tmp_path / "test" / "bad.bmp").write_bytes(patched(-8, 8))
    assert dict(audit(tmp_path, cache=False, jobs=1).skipped) == {
        "test/bad.bmp": "invalid image header: a BMP -8 pixels wide and 8 high (the width must be 1 or more, "
                        "the height not 0)"}


def test_a_bad_size_in_the_environment_is_warned_about_once(monkeypatch, caplog):
    # the library read it again for every file and warned each time (42 warnings on 42 images)
    from leakscan.decode import DEFAULT_MAX_FILE_SIZE, max_file_size

    monkeypatch.setenv("LEAKSCAN_MAX_FILE_SIZE", "not-a-size-7")
    with caplog.at_level("WARNING", logger="leakscan.decode"):
        assert [max_file_size() for _ in range(5)] == [DEFAULT_MAX_FILE_SIZE] * 5
    assert sum("not-a-size-7" in r.getMessage() for r in caplog.records) == 1


def _colour_key_pair(kind: str) -> tuple[bytes, bytes]:
    """One picture with a fully transparent box, saved twice: with an alpha channel (RGBA or LA),
    and as ``kind`` (grey or RGB, 4 to 16 bits) whose tRNS chunk names the box's colour transparent."""
    box = (100, 80, 300, 260)
    rgb = scene(11, 96).resize((640, 520), Image.BICUBIC)
    rgb.paste((55, 55, 55), (400, 300, 440, 340))  # the colour the low bytes of the 16-bit key spell
    alpha = Image.new("L", rgb.size, 255)
    alpha.paste(0, box)
    if kind in ("rgb8", "rgb16"):
        key = (1, 254, 3)
        assert key not in {c for _, c in rgb.getcolors(1 << 24)}  # only the box has the key colour
        reference = encode(Image.merge("RGBA", (*rgb.split(), alpha)), "PNG")
        rgb.paste(key, box)
        if kind == "rgb8":
            return reference, encode(rgb, "PNG", transparency=key)
        # Pillow cannot write 16-bit RGB: each sample is the 8-bit one, then the low byte 0x37
        raw = (np.asarray(rgb, np.uint16) << 8) | 0x37
        rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in raw)
        return reference, _png(rgb.size, 16, 2, struct.pack(">HHH", *((k << 8) | 0x37 for k in key)), rows)
    grey = np.asarray(rgb.convert("L"))
    if kind == "grey4":  # 4-bit samples, shown as sample * 17
        samples = np.where(grey // 17 == 7, 8, grey // 17).astype(np.uint8)
        samples[box[1]:box[3], box[0]:box[2]] = 7
        reference = Image.merge("LA", (Image.fromarray(samples * 17, "L"), alpha))
        # written by hand: Pillow before 13 ignores bits=4 for a grey picture and writes 8 bits
        packed = (samples[:, 0::2] << 4) | samples[:, 1::2]  # two samples a byte (an even width)
        rows = b"".join(b"\0" + row.tobytes() for row in packed)
        return encode(reference, "PNG"), _png(rgb.size, 4, 0, struct.pack(">H", 7), rows)
    grey = np.clip(grey, 10, 250)
    reference = encode(Image.merge("LA", (Image.fromarray(grey, "L"), alpha)), "PNG")
    grey[box[1]:box[3], box[0]:box[2]] = 5
    if kind == "grey8":
        return reference, encode(Image.fromarray(grey, "L"), "PNG", transparency=5)
    rows = b"".join(b"\0" + (row.astype(">u2") * 257).tobytes() for row in grey)  # Pillow 10.3 cannot write it
    return reference, _png(rgb.size, 16, 0, struct.pack(">H", 5 * 257), rows)


def _png(size, depth: int, colour_type: int, trns: bytes, rows: bytes) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", *size, depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tRNS", trns) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


COLOUR_KEYS = ["rgb8", "grey8", "grey4", "grey16", "rgb16"]


@pytest.mark.parametrize("kind", COLOUR_KEYS)
def test_a_colour_key_png_decodes_as_its_copy_with_alpha(kind):
    # a grey or RGB PNG's tRNS colour key was ignored: the box kept its key colour, not white
    from leakscan.decode import decode_reduced
    from leakscan.settings import DECODE_SIDE

    reference, keyed = _colour_key_pair(kind)
    want = np.asarray(decode_bytes(reference)[0])
    assert (want[80:260, 100:300] == 255).all() and want.std() > 20
    assert np.array_equal(np.asarray(decode_bytes(keyed)[0]), want)
    small, _, size = decode_reduced(keyed, DECODE_SIDE)
    assert size == (640, 520) and small.size == (320, 260)
    assert np.array_equal(np.asarray(small), np.asarray(decode_reduced(reference, DECODE_SIDE)[0]))


def test_a_colour_key_png_has_the_features_of_its_copy_with_alpha(tmp_path):
    from leakscan.discovery import discover
    from leakscan.features import extract_features

    paths = []
    for kind in COLOUR_KEYS:
        for name, data in zip(("alpha", "keyed"), _colour_key_pair(kind)):
            paths.append(tmp_path / f"{kind}-{name}.png")
            paths[-1].write_bytes(data)
    f = extract_features(discover([str(p) for p in paths]), jobs=1)
    assert f.ok.all()
    for k in range(0, len(paths), 2):
        assert np.array_equal(f.pixel_digest[k], f.pixel_digest[k + 1]), paths[k].name
        assert np.array_equal(f.hashes[k], f.hashes[k + 1]) and np.array_equal(f.thumb[k], f.thumb[k + 1])
    assert not np.array_equal(f.pixel_digest[0], f.pixel_digest[2])  # rgb and grey differ


def test_a_colour_key_beyond_the_bit_depth_is_ignored():
    # an 8-bit RGB PNG whose key is 16-bit: Pillow would match its low bytes, (55, 55, 55) here
    pixels = np.full((4, 6, 3), 55, np.uint8)
    rows = b"".join(b"\0" + row.tobytes() for row in pixels)
    img, _ = decode_bytes(_png((6, 4), 8, 2, struct.pack(">HHH", 0x0137, 0x0137, 0x0137), rows))
    assert np.array_equal(np.asarray(img), pixels)
