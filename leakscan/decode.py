"""The only module that opens image files.

Produces the *canonical* pixels every feature is computed from: EXIF orientation applied,
first frame of animations, transparency composited on a fixed white background, 16-bit and
float modes scaled to 8 bits, everything as 8-bit RGB. Every failure becomes a
:class:`DecodeError` whose message is the reason shown in ``skipped.csv``.

Importing leakscan changes no process-wide Pillow setting. Truncated files are refused
(reported in ``skipped.csv``) under Pillow's default ``ImageFile.LOAD_TRUNCATED_IMAGES =
False``; a program that sets it to True for itself gets Pillow's padded decodes here too.
"""

from __future__ import annotations

import errno
import io
import logging
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

__all__ = ["DecodeError", "read_bytes", "decode_bytes", "canonical_from_array", "MAX_PIXELS"]

#: Images whose header claims more pixels than this are refused before decoding
#: (a decompression bomb or a panorama too large to audit): 16,384 x 16,384.
MAX_PIXELS = 16384 * 16384

#: Background that transparent pixels are composited on, so a PNG with alpha and its
#: flattened JPEG copy compare equal.
BACKGROUND = (255, 255, 255)


class DecodeError(Exception):
    """An image could not be turned into canonical pixels; ``str(exc)`` is the reason."""


def read_bytes(path) -> bytes:
    """Read a file whole, turning OS errors into reasons a user can act on."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise DecodeError("file not found (missing, or a broken symlink)") from None
    except IsADirectoryError:
        raise DecodeError("is a folder, not an image file") from None
    except PermissionError:
        raise DecodeError("permission denied: cannot read the file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DecodeError("symlink loop: the link points back to itself") from None
        raise DecodeError(f"cannot read the file: {exc.strerror or exc}") from None
    if not data:
        raise DecodeError("empty file (0 bytes)")
    return data


def decode_bytes(data: bytes, *, draft: tuple[int, int] | None = None) -> tuple[Image.Image, str]:
    """Decode image bytes to canonical RGB.

    ``draft=(w, h)`` lets JPEGs decode at a reduced scale no smaller than ``(w, h)`` (for
    thumbnails; features always use full decodes).

    Returns
    -------
    image : PIL.Image.Image
        8-bit RGB, upright.
    note : str
        ``""`` or a remark worth reporting (``"first of 12 frames"``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise DecodeError(f"not an image Pillow can read (starts with {data[:8]!r})") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DecodeError("image header claims too many pixels to decode safely") from None
        except Exception as exc:  # Pillow raises many types on malformed headers
            raise DecodeError(f"truncated or corrupt image header: {type(exc).__name__}: {exc}") from None
        w, h = img.size
        if w <= 0 or h <= 0:
            raise DecodeError(f"image has an empty size {w}x{h}")
        if w * h > MAX_PIXELS:
            raise DecodeError(
                f"image is {w}x{h} = {w * h:,} pixels, above the {MAX_PIXELS:,} limit; refused before decoding"
            )
        if draft is not None:
            img.draft("RGB", draft)
        note = ""
        n_frames = getattr(img, "n_frames", 1) or 1
        if n_frames > 1:
            note = f"first of {n_frames} frames used"
        try:
            img.load()
            img = ImageOps.exif_transpose(img) or img
            img = _to_rgb(img)
        except DecodeError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:
            raise DecodeError(f"truncated or corrupt image data ({img.format}): {exc}") from None
        except MemoryError:
            raise DecodeError(f"out of memory decoding a {w}x{h} image") from None
        except Exception as exc:
            raise DecodeError(f"cannot decode ({img.format}): {type(exc).__name__}: {exc}") from None
    return img, note


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode != "I" or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if not np.isfinite(lo) or not np.isfinite(hi):
            raise DecodeError("float image holds NaN or infinite values")
        if lo < 0 or hi > 255:
            arr = (arr - lo) * (255.0 / (hi - lo or 1.0))
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def canonical_from_array(arr: np.ndarray) -> Image.Image:
    """Canonical RGB image from one in-memory array ``(H, W)`` or ``(H, W, C)``, C in 1, 3, 4."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            if not np.all(np.isfinite(a)):
                raise DecodeError("array holds NaN or infinite values")
            hi = 1.0 if a.max(initial=0) <= 1.0 else 255.0
            a = np.clip(np.rint(a * (255.0 / hi)), 0, 255).astype(np.uint8)
        elif a.dtype == np.uint16:
            a = np.rint(a / 257.0).astype(np.uint8)
        elif a.dtype == np.bool_:
            a = a.astype(np.uint8) * 255
        else:
            a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        return Image.fromarray(a, "L").convert("RGB")
    if a.shape[-1] == 4:
        return _to_rgb(Image.fromarray(a, "RGBA"))
    return Image.fromarray(np.ascontiguousarray(a), "RGB")


#: Files at most this large whose format every browser shows are embedded as they are.
EMBED_AS_IS = 12_000
_BROWSER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def thumbnail_data(source, size: int = 112, quality: int = 80) -> tuple[str, bytes]:
    """(MIME type, bytes) of a small picture of an image file (path) or array, for reports.

    Small files browsers can show (JPEG, PNG, GIF, WebP up to 12 KB, no larger than twice
    ``size``) are used as they are; others are decoded (JPEG draft mode) and re-encoded as JPEG.
    Raises DecodeError.
    """
    if not isinstance(source, np.ndarray):
        data = read_bytes(source)
        if len(data) <= EMBED_AS_IS:
            try:
                probe = Image.open(io.BytesIO(data))
                mime = _BROWSER_FORMATS.get(probe.format)
                if mime and max(probe.size) <= 2 * size and probe.getexif().get(0x0112, 1) == 1:
                    return mime, data
            except Exception:
                pass  # fall through to the full path, which reports the reason
    return "image/jpeg", thumbnail_jpeg(source if isinstance(source, np.ndarray) else data, size, quality)


def thumbnail_jpeg(source, size: int = 112, quality: int = 80) -> bytes:
    """A small JPEG of an image file (path, or its bytes) or array, for reports; raises DecodeError."""
    if isinstance(source, np.ndarray):
        img = canonical_from_array(source)
    else:
        data = source if isinstance(source, bytes) else read_bytes(source)
        img, _ = decode_bytes(data, draft=(size * 2, size * 2))
    img.thumbnail((size, size), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
