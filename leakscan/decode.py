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

import contextlib
import contextvars
import errno
import io
import logging
import math
import os
import stat
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from .manifest import URL_REASON, is_url

log = logging.getLogger(__name__)

__all__ = ["DecodeError", "read_bytes", "decode_bytes", "decode_reduced", "canonical_from_array", "MAX_PIXELS",
           "DEFAULT_MAX_FILE_SIZE", "max_file_size", "is_cacheable"]

#: Images whose header claims more pixels than this are refused before decoding
#: (a decompression bomb or a panorama too large to audit): 16,384 x 16,384. Pillow's own
#: warning (above ``Image.MAX_IMAGE_PIXELS``, 89 MP by default: a 100 MP camera's photos) is
#: ignored; its error (above twice that, 179 MP) refuses a file first.
MAX_PIXELS = 16384 * 16384

#: Background that transparent pixels are composited on, so a PNG with alpha and its
#: flattened JPEG copy compare equal.
BACKGROUND = (255, 255, 255)


#: Files larger than this are skipped unread (bytes; 512 MiB). Settable with the environment
#: variable ``LEAKSCAN_MAX_FILE_SIZE`` (bytes, or with a K/M/G suffix) or ``--max-file-size``;
#: the environment carries it to worker processes.
DEFAULT_MAX_FILE_SIZE = 512 * 1024 * 1024
MAX_FILE_SIZE_ENV = "LEAKSCAN_MAX_FILE_SIZE"


class DecodeError(Exception):
    """An image could not be turned into canonical pixels; ``str(exc)`` is the reason."""


#: Reasons that are a property of the file's bytes: the same bytes fail the same way, so the
#: feature cache may remember them (until the file changes). Every other reason (permission,
#: I/O error, memory, special file, size cap, unexpected errors) is re-tried on the next run.
_BYTE_REASONS = ("empty file (0 bytes)", "not an image Pillow can read", "truncated or corrupt",
                 "image header claims", "invalid image header", "image is ", "image has an empty size",
                 "float image holds",
                 "cannot decode (")


def is_cacheable(reason: str) -> bool:
    """True when a failure ``reason`` depends only on the file's bytes (safe to cache)."""
    return bool(reason) and reason.startswith(_BYTE_REASONS)


def parse_size(text) -> int:
    """``"512M"`` -> 536870912; plain numbers are bytes. Raises ValueError."""
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    if mult > 1:
        t = t[:-1]
    number = float(t) * mult
    if not math.isfinite(number):  # int() of inf raises OverflowError, not ValueError
        raise ValueError(f"a file size must be a finite number, got {text!r}")
    value = int(number)
    if value < 1:
        raise ValueError(f"a file size must be at least 1 byte, got {text!r}")
    return value


_WARNED_SIZES: set = set()

#: The cap a task brought from the machine that started the run (:func:`file_size_cap`): a Dask
#: worker does not share that machine's environment, nor its ``--max-file-size``.
_TASK_CAP: contextvars.ContextVar = contextvars.ContextVar("leakscan_max_file_size", default=None)


def requested_max_file_size() -> int | None:
    """The cap this process was asked for: the one a task brought (:func:`file_size_cap`), else
    ``$LEAKSCAN_MAX_FILE_SIZE`` (which ``--max-file-size`` sets); None when none was (a value
    that is not a size is warned about once; the command line refuses it). What a task carries
    to workers that do not share the environment."""
    if _TASK_CAP.get() is not None:
        return _TASK_CAP.get()
    env = os.environ.get(MAX_FILE_SIZE_ENV)
    if not env:
        return None
    try:
        return parse_size(env)
    except ValueError:
        if env not in _WARNED_SIZES:
            _WARNED_SIZES.add(env)
            log.warning("ignoring %s=%r (not a size such as 512M)", MAX_FILE_SIZE_ENV, env)
        return None


@contextlib.contextmanager
def file_size_cap(cap: int | None):
    """Within this block (in this thread), :func:`max_file_size` is ``cap`` (None: unchanged)."""
    if cap is None:
        yield
        return
    token = _TASK_CAP.set(int(cap))
    try:
        yield
    finally:
        _TASK_CAP.reset(token)


def max_file_size() -> int:
    """The size cap in bytes: :func:`requested_max_file_size`, else :data:`DEFAULT_MAX_FILE_SIZE`."""
    cap = requested_max_file_size()
    return DEFAULT_MAX_FILE_SIZE if cap is None else cap


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not an image file"
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind}); only regular files are read"


def read_bytes(path, *, max_bytes: int | None = None) -> bytes:
    """Read a regular file whole, turning OS errors into reasons a user can act on.

    Only regular files are opened (FIFOs, devices and sockets are refused before any read, so
    they cannot hang or flood the run), and at most ``max_bytes`` (default
    :func:`max_file_size`) are read. The reason never quotes the file's contents.
    """
    cap = max_file_size() if max_bytes is None else int(max_bytes)
    try:
        st = os.stat(path)  # refuse special files before opening them (opening a device can act)
        why = _not_regular(st.st_mode)
        if why:
            raise DecodeError(why)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise DecodeError(URL_REASON if is_url(path) else "file not found (missing, or a broken symlink)") from None
    except IsADirectoryError:
        raise DecodeError("is a folder, not an image file") from None
    except PermissionError:
        raise DecodeError("permission denied: cannot read the file") from None
    except ValueError:  # an embedded NUL byte
        raise DecodeError("path contains a NUL byte: not a file name") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DecodeError("symlink loop: the link points back to itself") from None
        raise DecodeError(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)  # the file opened may not be the one stat'ed (a swap in between)
        why = _not_regular(st.st_mode)
        if why:
            raise DecodeError(why)
        if st.st_size > cap:
            raise DecodeError(f"file is larger than the {cap:,}-byte cap ({st.st_size:,} bytes); "
                              "raise it with --max-file-size")
        parts, total = [], 0
        while total <= cap:
            try:
                chunk = os.read(fd, min(cap + 1 - total, 1 << 20))
            except BlockingIOError:
                raise DecodeError("cannot read the file: it would block") from None
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
        if total > cap:
            raise DecodeError(f"file is larger than the {cap:,}-byte cap; raise it with --max-file-size")
        data = b"".join(parts)
    except MemoryError:
        raise DecodeError("out of memory reading the file") from None
    except OSError as exc:
        raise DecodeError(f"cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if not data:
        raise DecodeError("empty file (0 bytes)")
    return data


def decode_bytes(data: bytes, *, draft: tuple[int, int] | None = None) -> tuple[Image.Image, str]:
    """Decode image bytes to canonical RGB.

    ``draft=(w, h)`` lets JPEGs decode at a reduced scale no smaller than ``(w, h)`` (for
    report thumbnails and calibration pictures).

    Returns
    -------
    image : PIL.Image.Image
        8-bit RGB, upright.
    note : str
        ``""`` or a remark worth reporting (``"first of 12 frames"``).
    """
    img, note, _ = _decode(data, draft, None)
    return img, note


def decode_reduced(data: bytes, min_side: int | None) -> tuple[Image.Image, str, tuple[int, int]]:
    """Canonical RGB at the smallest scale whose shorter side is still ``min_side`` pixels or more.

    JPEGs decode at 1/2, 1/4 or 1/8 scale inside the decoder (``Image.draft``); other
    formats decode whole and are then box-reduced by a whole factor (``Image.reduce``).
    ``min_side=None`` decodes at full size. Returns ``(image, note, (width, height))`` with
    the full, upright size of the image.
    """
    return _decode(data, None if min_side is None else (int(min_side), int(min_side)), min_side)


#: The ``ftyp`` brands of HEIF pictures (HEIC, as phones save photos), which Pillow reads only
#: with the pillow-heif plugin.
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
#: The reason a HEIF picture is skipped without the plugin (not cached: installing it helps).
HEIF_REASON = "a HEIF/HEIC picture: Pillow reads it with the pillow-heif plugin (pip install 'leakscan[heif]')"


#: The first bytes of the common raster formats (JPEG, PNG, GIF, BMP, TIFF, QOI, JPEG 2000).
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\0", b"MM\0*", b"qoif",
               b"\0\0\0\x0cjP  ")


def has_image_signature(head: bytes) -> bool:
    """True when ``head``, a file's first 12 bytes or more, starts as a raster image file does
    (the formats above, WebP, HEIF, AVIF): how a file saved without an extension is recognised."""
    return (head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
            or (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS + (b"avif", b"avis")))


#: The reason an SVG drawing is skipped (vector graphics: Pillow reads raster images only).
SVG_REASON = "not an image Pillow can read (an SVG drawing: vector graphics; rasterize it to PNG to audit it)"
#: Pillow reads PostScript only by running Ghostscript on it: leakscan runs no program on a file it audits.
EPS_REASON = ("not an image leakscan reads (a PostScript or EPS drawing, which only Ghostscript can draw; "
              "rasterize it to PNG to audit it)")
_EPS_SIGNATURES = (b"%!PS", b"\xc5\xd0\xd3\xc6")  # text, and DOS EPS binary (as Pillow's EpsImagePlugin knows them)


def _heif_plugin() -> bool:
    """Register pillow-heif's opener with Pillow, when it is installed; True if it is."""
    try:
        import pillow_heif  # noqa: PLC0415 - optional: only HEIF files need it
    except ImportError:
        return False
    pillow_heif.register_heif_opener()  # idempotent
    return True


def _bmp_header_problem(data: bytes) -> str | None:
    """Why a BMP's header cannot be a picture's (a width under 1, a height of 0), or None. Pillow
    reads the signed width as unsigned: a negative one looked like a picture too large to decode."""
    if not data.startswith(b"BM") or len(data) < 26:
        return None
    header = int.from_bytes(data[14:18], "little")
    if header == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit sides
        w, h = struct.unpack_from("<HH", data, 18)
    elif header >= 16:  # BITMAPINFOHEADER and later: signed 32-bit, a negative height is top-down
        w, h = struct.unpack_from("<ii", data, 18)
    else:
        return None
    if w < 1 or h in (0, -2 ** 31):
        return (f"invalid image header: a BMP {w} pixels wide and {h} high (the width must be 1 or more, "
                "the height not 0)")
    return None


def _open(data: bytes) -> Image.Image:
    if data.startswith(_EPS_SIGNATURES):
        raise DecodeError(EPS_REASON)
    why = _bmp_header_problem(data)
    if why:
        raise DecodeError(why)
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
            if not _heif_plugin():
                raise DecodeError(HEIF_REASON) from None
            return Image.open(io.BytesIO(data))
        raise


def _decode(data: bytes, draft, min_side) -> tuple[Image.Image, str, tuple[int, int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS decides
        # Pillow's notes on a damaged file ("Corrupt EXIF data") name no file: its reason, if it is skipped, does
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        try:
            img = _open(data)
        except DecodeError:
            raise
        except UnidentifiedImageError:
            if b"<svg" in data[:4096].lower():
                raise DecodeError(SVG_REASON) from None
            # never quote the bytes: a manifest row may name a private file (/etc/shadow)
            raise DecodeError("not an image Pillow can read (unknown format)") from None
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
        _png_key_as_pixels(img, data)
        if draft is not None:
            img.draft("RGB", draft)  # JPEG (and MPO) only; a no-op for other formats
        note = ""
        n_frames = getattr(img, "n_frames", 1) or 1
        if n_frames > 1:
            note = f"first of {n_frames} frames used"
        try:
            img.load()
            upright = ImageOps.exif_transpose(img)
            turned = upright is not None and upright.size != img.size
            img = upright or img
            img = _to_rgb(img)
            if min_side is not None:
                factor = min(img.size) // int(min_side)
                if factor >= 2:
                    img = img.reduce(factor)
        except DecodeError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:
            raise DecodeError(f"truncated or corrupt image data ({img.format}): {exc}") from None
        except MemoryError:
            raise DecodeError(f"out of memory decoding a {w}x{h} image") from None
        except Exception as exc:
            raise DecodeError(f"cannot decode ({img.format}): {type(exc).__name__}: {exc}") from None
    return img, note, ((h, w) if turned else (w, h))


#: Modes whose transparency is one colour, ``img.info["transparency"]`` (a palette index, grey
#: value or RGB triple: a PNG's tRNS chunk, a GIF's transparent index), which ``convert("RGBA")`` honours.
_KEYED_MODES = ("P", "1", "L", "RGB")


def _png_key_as_pixels(img: Image.Image, data: bytes) -> None:
    """Put a grey or RGB PNG's colour key (tRNS) on the scale of the pixels Pillow gives.

    Pillow keeps the key as the file stores it, at the file's bit depth, while it widens 2- and
    4-bit grey pixels to 8 bits and keeps the high byte of 16-bit RGB ones. A key beyond the bit
    depth is invalid and dropped (libpng ignores it too). 16-bit grey (``I;16``) keeps its key:
    its pixels keep their 16 bits.
    """
    key = img.info.get("transparency")
    if img.format != "PNG" or key is None or img.mode not in ("L", "RGB") or data[12:16] != b"IHDR":
        return
    depth = data[24]  # IHDR: width, height (4 bytes each), then the bit depth
    keys = (key,) if img.mode == "L" else tuple(key)
    if max(keys) >= 1 << depth:
        del img.info["transparency"]
    elif img.mode == "L" and depth < 8:
        img.info["transparency"] = key * 255 // ((1 << depth) - 1)
    elif img.mode == "RGB" and depth == 16:
        img.info["transparency"] = tuple(k >> 8 for k in keys)


def _on_background(img: Image.Image) -> Image.Image:
    """``img``, with its alpha or colour key, composited on :data:`BACKGROUND`, as RGB."""
    rgba = img.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(bg, rgba).convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    key = img.info.get("transparency")
    if mode == "RGB" and key is None:
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        raw = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode != "I" or raw.max(initial=0) > 255 else 255.0
        grey = Image.fromarray(np.clip(np.rint(raw * (255.0 / top)), 0, 255).astype(np.uint8), "L")
        if isinstance(key, int):  # a 16-bit grey PNG's colour key, in its 16-bit values
            alpha = Image.fromarray(np.where(raw == key, 0, 255).astype(np.uint8), "L")
            return _on_background(Image.merge("LA", (grey, alpha)))
        return grey.convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        finite = np.isfinite(arr)
        if not finite.any():
            raise DecodeError("no data: every pixel of the float image is NaN or infinite")
        lo, hi = float(arr[finite].min()), float(arr[finite].max())
        arr = np.where(finite, arr, lo)  # nodata (NaN, infinite) shown as the darkest value
        if lo < 0 or hi > 255:
            arr = (arr - lo) * (255.0 / (hi - lo or 1.0))
        elif hi <= 1.0:  # pixels in [0, 1], as float arrays are read (canonical_from_array)
            arr = arr * 255.0
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in _KEYED_MODES and key is not None):
        return _on_background(img)
    return img.convert("RGB")


def canonical_from_array(arr: np.ndarray) -> Image.Image:
    """Canonical RGB image from one in-memory array ``(H, W)`` or ``(H, W, C)``, C in 1, 3, 4."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        if a.dtype == np.bool_:
            a = a.astype(np.uint8) * 255
        else:
            if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
                raise DecodeError("array holds NaN or infinite values")
            # white is the smallest of 1 (floats), 255 and 65535 that holds the maximum, as for
            # 16-bit files: int32 or float pixels of 16-bit data are scaled, not clipped to white
            mx = float(a.max(initial=0))
            floating = np.issubdtype(a.dtype, np.floating)
            hi = (65535.0 if a.dtype == np.uint16 or mx > 255 else
                  1.0 if floating and mx <= 1.0 else 255.0)
            a = np.clip(np.rint(a * (255.0 / hi)), 0, 255).astype(np.uint8)
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


def file_head(path: str, n: int = 132) -> bytes | None:
    """The first ``n`` bytes of a regular file (None: not one, or unreadable): enough to tell an
    image saved without an extension (:func:`has_image_signature`) or a DICOM file (``DICM`` at 128)."""
    if not is_regular_file(path):
        return None
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return None


def is_regular_file(path: str) -> bool:
    """A regular file (not a FIFO, socket or device, which could block or never end)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
