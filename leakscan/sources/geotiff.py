"""Multi-band and 16-bit (Geo)TIFF tiles (needs ``pip install 'leakscan[geo]'``: tifffile).

The only module importing tifffile. A tile becomes a displayable 8-bit RGB image: three of its
bands (the first three by default, or ``bands=(4, 3, 2)``, 1-based), each stretched between
its 2nd and 98th percentile. A tile with one or two bands becomes grey (its first band).

Georeferenced tiles (GeoTIFF ``ModelTiepoint`` + ``ModelPixelScale`` tags) have a footprint
in map coordinates; :func:`spatial_pairs` finds tiles of different splits whose footprints
overlap: *spatial leakage*, whatever the pixels look like (another date, another processing).
"""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image

from ..decode import MAX_PIXELS, DecodeError, is_regular_file
from ..errors import ConfigError, missing_extra

log = logging.getLogger(__name__)

__all__ = ["available", "inspect_tiles", "decode_tile", "footprint", "footprint_overlaps", "spatial_pairs",
           "parse_bands", "PERCENTILES"]

PERCENTILES = (2.0, 98.0)
_TIEPOINT, _SCALE, _GEOKEYS = 33922, 33550, 34735
_NODATA = 42113  # GDAL_NODATA: the value of pixels without data, as text


def available() -> bool:
    try:
        import tifffile  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _tifffile():
    try:
        import tifffile  # noqa: PLC0415
    except ImportError:
        raise missing_extra("reading multi-band GeoTIFF tiles", "geo", "tifffile") from None
    return tifffile


def parse_bands(text) -> tuple[int, ...] | None:
    """``"4,3,2"`` or a sequence -> ``(4, 3, 2)``; 1-based band numbers, one or three of them.

    >>> parse_bands("4,3,2")
    (4, 3, 2)
    """
    if text is None or text == "":
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        bands = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        raise ConfigError(f"bands must be band numbers such as 4,3,2 (1-based), got {text!r}",
                          keyword="bands") from None
    if len(bands) not in (1, 3) or min(bands) < 1:
        raise ConfigError(f"bands must be one or three band numbers >= 1 such as 4,3,2, got {text!r}", keyword="bands")
    return bands


def footprint(tags: dict, width: int, height: int):
    """``(min x, min y, max x, max y)`` in map units from GeoTIFF tiepoint/scale tags, or None."""
    tie, scale = tags.get(_TIEPOINT), tags.get(_SCALE)
    if tie is None or scale is None or len(tie) < 6 or len(scale) < 2:
        return None
    i, j, _, x, y, _ = (float(v) for v in tie[:6])
    sx, sy = float(scale[0]), float(scale[1])
    if not (sx > 0 and sy > 0):
        return None
    x0 = x - i * sx
    y_top = y + j * sy
    return (x0, y_top - height * sy, x0 + width * sx, y_top)


def _crs(tags: dict) -> str:
    keys = tags.get(_GEOKEYS)
    if keys is None or len(keys) < 4:
        return ""
    keys = [int(k) for k in keys]
    found = {}
    for q in range(4, min(len(keys), 4 + 4 * keys[3]), 4):
        kid, loc, _, val = keys[q:q + 4]
        if loc == 0:
            found[kid] = val
    code = found.get(3072) or found.get(2048)
    return f"EPSG:{code}" if code and code != 32767 else ""


def _page_tags(page) -> dict:
    return {t.code: t.value for t in page.tags.values() if t.code in (_TIEPOINT, _SCALE, _GEOKEYS)}


def inspect_tiles(paths: list[str], bands=None) -> dict:
    """Header facts of the TIFFs that need this reader: ``{position: {"footprint", "crs"}}``.

    A TIFF needs it when it has more than 4 samples per pixel, an extra sample that is not
    alpha (a band such as near-infrared: Pillow would take it for transparency, or not read
    the file), more than 8 bits per sample, georeferencing, or when ``bands`` is given.
    Others are left to Pillow, and so are files tifffile cannot open (a PNG or JPEG named
    ``.tif``: content decides, as for every image file).
    """
    tifffile = _tifffile()
    out = {}

    for k, p in enumerate(paths):
        if not is_regular_file(p):
            continue  # left to the usual decoding, which reports what it is
        try:
            with tifffile.TiffFile(p) as tif:
                page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
                tags = _page_tags(page)
                spp = int(page.samplesperpixel)
                bands_extra = any(int(e) == 0 for e in (page.extrasamples or ()))  # 0: unspecified
                bits = int(np.dtype(page.dtype).itemsize * 8) if page.dtype is not None else 8
                w, h = int(page.imagewidth), int(page.imagelength)
                nodata = _nodata(page) is not None
        except Exception:  # noqa: BLE001 - not a TIFF tifffile reads (a PNG named .tif, a cut file): Pillow's
            continue  # to read, or to say what is wrong with it
        fp = footprint(tags, w, h)
        if bands is not None or spp > 4 or bands_extra or bits > 8 or fp is not None or nodata:
            out[k] = {"footprint": fp, "crs": _crs(tags)}
    return out


def decode_tile(data: bytes, bands=None, percentiles=PERCENTILES):
    """Canonical RGB image of a TIFF tile: three bands, percentile-stretched to 8 bits; and a note."""
    tifffile = _tifffile()
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
            if int(page.imagewidth) * int(page.imagelength) > MAX_PIXELS:
                raise DecodeError(f"tile is {page.imagewidth}x{page.imagelength} pixels, above the "
                                  f"{MAX_PIXELS:,} limit; refused before decoding")
            axes = page.axes
            nodata = _nodata(page)
            try:
                arr = page.asarray()
            except Exception:  # LZW, JPEG...: tifffile decodes them only with imagecodecs; Pillow has them
                arr = _pillow_pixels(data)
                if arr is None:
                    raise
                axes = "YXS" if arr.ndim == 3 else "YX"
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types
        raise DecodeError(f"not a TIFF tifffile can read: {type(exc).__name__}: {str(exc)[:160]}") from None
    arr = np.asarray(arr)
    if arr.dtype.kind == "c":  # their real part alone is no picture
        raise DecodeError(f"complex pixels ({arr.dtype}, as radar scenes store them) are not an image leakscan "
                          "reads; save their amplitude (abs) as a float or 16-bit TIFF")
    if "S" in axes and axes.index("S") != len(axes) - 1:
        arr = np.moveaxis(arr, axes.index("S"), -1)
    elif arr.ndim == 3 and "S" not in axes:  # bands stored as pages/planes first
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise DecodeError(f"tile has an unexpected shape {arr.shape} (axes {axes})")
    n_bands = arr.shape[-1]
    pick = tuple(bands) if bands else ((1, 2, 3) if n_bands >= 3 else (1,))
    if max(pick) > n_bands:
        raise DecodeError(f"bands {','.join(map(str, pick))} asked of a tile with {n_bands} band(s)")
    chosen = [_masked(arr[..., b - 1], nodata) for b in pick]
    if not any(np.isfinite(c).any() for c in chosen):  # a tile of nodata only: nothing to compare
        what = "NaN or infinite" if nodata is None else f"NaN, infinite or the nodata value {nodata:g}"
        raise DecodeError(f"no data: every pixel of band(s) {','.join(map(str, pick))} is {what}")
    planes = [_stretch(c, percentiles) for c in chosen]
    note = f"bands {','.join(map(str, pick))} of {n_bands}" if n_bands > 3 or bands else ""
    if len(planes) == 1:
        return Image.fromarray(planes[0], "L").convert("RGB"), note
    return Image.fromarray(np.ascontiguousarray(np.stack(planes, axis=-1)), "RGB"), note


def _pillow_pixels(data: bytes):
    """The pixels of the first page of a TIFF as Pillow reads them (an RGB JPEG-in-TIFF as RGB), or None."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode in ("P", "1", "YCbCr", "CMYK"):
                im = im.convert("RGB" if im.mode != "1" else "L")
            return np.asarray(im)
    except Exception:  # noqa: BLE001 - tifffile's error is the one reported
        return None


def _nodata(page):
    """The GDAL_NODATA value of a page (a number), or None."""
    tag = page.tags.get(_NODATA)
    if tag is None:
        return None
    try:
        value = float(str(tag.value).strip().strip("\x00").strip())
    except (TypeError, ValueError):
        return None
    return None if np.isnan(value) else value  # NaN pixels are left out anyway


def _masked(band: np.ndarray, nodata) -> np.ndarray:
    """``band`` with its nodata pixels as NaN (float64), or as it is when there is no nodata value."""
    if nodata is None:
        return band
    x = np.asarray(band, np.float64)
    off = x == nodata
    if band.dtype.kind == "f":  # the value as stored (a float32 tile's -3.4028235e+38)
        with np.errstate(over="ignore"):
            off |= band == band.dtype.type(nodata)
    return np.where(off, np.nan, x)


def _stretch(band: np.ndarray, percentiles) -> np.ndarray:
    x = np.asarray(band, np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(x.shape, np.uint8)
    lo, hi = np.percentile(x[finite], percentiles)
    if hi <= lo:
        lo, hi = float(x[finite].min()), float(x[finite].max())
    y = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return np.rint(np.clip(np.nan_to_num(y), 0, 1) * 255).astype(np.uint8)


def footprint_overlaps(boxes: np.ndarray, crs: np.ndarray, ok: np.ndarray | None = None):
    """Pairs of tiles whose footprints overlap (within one CRS), whatever their splits.

    Parameters
    ----------
    boxes : ndarray (n, 4)
        ``(min x, min y, max x, max y)`` per row, NaN for rows without georeferencing.
    crs : ndarray of str (n,)
        Coordinate reference system per row; footprints are compared within one CRS only.
    ok : ndarray of bool (n,), optional
        Rows to consider (default: all with a footprint).

    Returns
    -------
    list of (i, j, overlap)
        Sorted, ``i < j``; ``overlap`` is the intersection's area over the smaller footprint's
        area (1.0: one tile lies inside the other). Tiles that only touch do not overlap.

    Examples
    --------
    >>> b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]], float)
    >>> footprint_overlaps(b, np.array(["", "", ""], object))
    [(0, 1, 0.5), (1, 2, 0.5)]
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    has = np.all(np.isfinite(boxes), axis=1)
    if ok is not None:
        has &= np.asarray(ok, bool)
    rows = np.flatnonzero(has)
    rows = rows[np.lexsort((rows, boxes[rows, 0]))]
    x0 = boxes[rows, 0]
    out = []
    for q, i in enumerate(rows.tolist()):
        end = int(np.searchsorted(x0, boxes[i, 2], side="left"))
        for j in rows[q + 1:end].tolist():
            if crs[i] != crs[j]:
                continue
            w = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            h = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            if w <= 0 or h <= 0:
                continue
            area = min((boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1]),
                       (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1]))
            a, b = (i, j) if i < j else (j, i)
            out.append((a, b, round(float(w * h / area), 6) if area > 0 else 1.0))
    return sorted(out)


def spatial_pairs(boxes: np.ndarray, crs: np.ndarray, splits: np.ndarray, ok: np.ndarray | None = None):
    """Pairs of tiles in different splits whose footprints overlap: :func:`footprint_overlaps`
    of different splits (``splits``: split per row).

    Examples
    --------
    >>> b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 0, 30, 10]], float)
    >>> spatial_pairs(b, np.array(["", "", ""], object), np.array(["train", "test", "test"], object))
    [(0, 1, 0.5)]
    """
    return [(i, j, ov) for i, j, ov in footprint_overlaps(boxes, crs, ok) if splits[i] != splits[j]]
