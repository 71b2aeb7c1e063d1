"""DICOM files (needs ``pip install 'leakscan[dicom]'``: pydicom). The only module importing pydicom.

* Files are found by a ``.dcm``/``.dicom``/``.ima`` name (with or without the 128-byte
  preamble) or, named otherwise (no extension, a UID), by the ``DICM`` marker after the preamble.
* Grey pixels become 8-bit grey: the modality LUT (rescale slope/intercept) is applied, then the
  file's first window (centre/width) when it has one, else the full range of the frame.
  ``MONOCHROME1`` (white is low) is inverted so that bone is white in every file.
  ``PALETTE COLOR`` pixels become the RGB colours of the file's palette (pydicom's
  ``apply_color_lut``), as a viewer shows them.
* A multi-frame file gives one image per frame (rows ``path#frame3``), all in the file's group.
* Groups come from one identifying tag (``PatientID`` by default; ``StudyInstanceUID``,
  ``SeriesInstanceUID`` or ``none``): images of one patient count as one unit, so a patient
  on both sides of a split is leakage even when no two images look alike.
* Headers hold personal data: no tag value other than the grouping identifier is ever put in
  a result, a log line or an error message.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os

import numpy as np
from PIL import Image

from ..decode import DecodeError, is_regular_file, read_bytes
from ..errors import ConfigError, missing_extra

__all__ = ["GROUP_TAGS", "inspect_files", "decode_frame", "to_uint8", "available"]

#: Tags a DICOM audit may group by.
GROUP_TAGS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "none")


def available() -> bool:
    try:
        import pydicom  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _pydicom():
    try:
        import pydicom  # noqa: PLC0415
    except ImportError:
        raise missing_extra("reading DICOM files", "dicom", "pydicom") from None
    return pydicom


def check_group_by(group_by: str) -> str:
    for g in GROUP_TAGS:
        if group_by.lower() == g.lower():
            return g
    raise ConfigError(f"group_by must be one of {', '.join(GROUP_TAGS)}, got {group_by!r}", keyword="group_by")


def inspect_files(paths: list[str], group_by: str = "PatientID") -> list[tuple[int, str]]:
    """``(number of frames, group id)`` of each DICOM file, from its header only.

    A file whose header cannot be read gets ``(1, "")``; decoding it later reports why.
    """
    pydicom = _pydicom()
    group_by = check_group_by(group_by)
    out = []

    for p in paths:
        if not is_regular_file(p):
            out.append((1, ""))  # decoding reports what it is
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True, force=True)
            n = int(getattr(ds, "NumberOfFrames", 1) or 1)
            g = "" if group_by == "none" else str(getattr(ds, group_by, "") or "").strip()
        except Exception:  # noqa: BLE001 - the decode stage reports the file
            n, g = 1, ""
        out.append((max(n, 1), g))
    return out


_LAST: dict = {}  # one decoded file per worker: the frames of a multi-frame file are read once


def _pixels(path: str):
    """(modality-scaled pixels, photometric, window, file digest) of a file, cached for its next frame."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if _LAST.get("key") == key:
        return _LAST["value"]
    pydicom = _pydicom()
    data = read_bytes(path)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:  # noqa: BLE001 - no header values in the message
        raise DecodeError(f"not a readable DICOM file ({type(exc).__name__})") from None
    if not _is_dicom(data, ds):  # read by its name (.dcm, .ima): force=True reads any bytes as some element
        raise DecodeError("not a DICOM file (no DICM preamble and no readable header)")
    if "PixelData" not in ds:
        raise DecodeError("DICOM file has no pixel data (a report or a structured document?)")
    quiet = logging.getLogger("pydicom")  # its plugins log each failure with a traceback; it is reported here
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - compressed syntaxes need plugins
        tsuid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")
        ts = getattr(tsuid, "name", "") or ""
        ts = f"{ts}, transfer syntax {tsuid}" if ts and ts != str(tsuid) else f"transfer syntax {tsuid}"
        # one line: pydicom lists the plugins on lines of their own
        why = "; ".join(" ".join(t.split()) for t in str(exc).splitlines() if t.strip()).replace(":; ", ": ")
        raise DecodeError(f"DICOM pixel data cannot be decoded ({ts}): {type(exc).__name__}: {why[:400]}") from None
    finally:
        quiet.setLevel(level)
    photometric = str(getattr(ds, "PhotometricInterpretation", "") or "").upper()
    spp = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    arr = np.asarray(arr)
    if photometric == "PALETTE COLOR" and spp == 1:  # stored values index the file's colour LUTs
        arr, spp = _palette_rgb(arr, ds), 3
    if spp == 1:
        slope = float(getattr(ds, "RescaleSlope", 1) or 1)
        intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
        arr = arr.astype(np.float64) * slope + intercept
    window = None
    wc, ww = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if wc is not None and ww is not None:
        try:
            c, w = _first(wc), _first(ww)
            window = (c, w) if w >= 1 else None
        except (TypeError, ValueError, IndexError):
            window = None
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    digest = hashlib.blake2b(data, digest_size=16).digest()
    value = (arr, photometric, spp, window, n_frames, digest)
    _LAST.clear()
    _LAST.update(key=key, value=value)
    return value


def _is_dicom(data: bytes, ds) -> bool:
    """Whether bytes pydicom read with ``force=True`` are a DICOM file: the ``DICM`` marker after
    the preamble, else a header holding a known tag of a data group (``0000`` and the file meta
    ``0002`` left out): a file without the preamble (Siemens ``.IMA``) has them, other bytes do not."""
    if data[128:132] == b"DICM":
        return True
    from pydicom.datadict import dictionary_has_tag  # noqa: PLC0415

    return any(t.group > 0x0002 and dictionary_has_tag(t) for t in ds.keys())


def _palette_rgb(arr: np.ndarray, ds) -> np.ndarray:
    """8-bit RGB of a ``PALETTE COLOR`` image: its stored values through the file's colour LUTs."""
    try:
        from pydicom.pixels import apply_color_lut  # noqa: PLC0415 - pydicom 3
    except ImportError:
        from pydicom.pixel_data_handlers.util import apply_color_lut  # noqa: PLC0415 - pydicom 2
    try:
        rgb = apply_color_lut(arr, ds)[..., :3]  # RGBA when the file has an alpha LUT
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    except Exception as exc:  # noqa: BLE001 - no header values in the message
        raise DecodeError(f"PALETTE COLOR image whose colour lookup tables cannot be applied "
                          f"({type(exc).__name__})") from None
    # 8-bit entries (some files store them in 16-bit words, as the descriptor then says), else 16-bit
    if rgb.dtype == np.uint8 or (bits == 8 and rgb.max(initial=0) <= 255):
        return rgb.astype(np.uint8)
    return np.rint(rgb / 257.0).astype(np.uint8)


def _first(v) -> float:
    """The first value of a possibly multi-valued numeric tag."""
    if hasattr(v, "__len__") and not isinstance(v, (str, bytes)):
        v = v[0]
    return float(v)


def to_uint8(frame: np.ndarray, window=None, monochrome1: bool = False) -> np.ndarray:
    """8-bit grey from modality values: the DICOM linear window ``(centre, width)``, else the full range.

    Examples
    --------
    >>> to_uint8(np.array([[0.0, 50.0, 100.0]]), window=(50, 101)).tolist()
    [[1, 129, 255]]
    >>> to_uint8(np.array([[0.0, 100.0]]), monochrome1=True).tolist()
    [[255, 0]]
    """
    x = np.asarray(frame, np.float64)
    if window is not None:
        c, w = window
        y = ((x - (c - 0.5)) / (w - 1) + 0.5) if w > 1 else (x >= c).astype(np.float64)
    else:
        finite = x[np.isfinite(x)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        y = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    y = np.clip(np.nan_to_num(y), 0.0, 1.0)
    if monochrome1:
        y = 1.0 - y
    return np.rint(y * 255.0).astype(np.uint8)


def decode_frame(path: str, frame: int = -1):
    """Canonical RGB image of frame ``frame`` (``-1``: the only frame) and its 16-byte digest."""
    try:
        arr, photometric, spp, window, n_frames, digest = _pixels(path)
    except FileNotFoundError:
        raise DecodeError("file not found (missing, or a broken symlink)") from None
    if n_frames <= 1 and frame > 0:  # path#frame2 of a single-frame file (a manifest row)
        raise DecodeError(f"frame {frame + 1} asked of a file with 1 frame")
    if n_frames > 1:
        if frame < 0 or frame >= len(arr):
            raise DecodeError(f"frame {frame + 1} asked of a file with {len(arr)} frames")
        arr = arr[frame]
        digest = hashlib.blake2b(digest + b"#%d" % frame, digest_size=16).digest()
    if spp == 1:
        g = to_uint8(arr, window, photometric == "MONOCHROME1")
        img = Image.fromarray(g, "L").convert("RGB")
    else:
        a = np.asarray(arr)
        if a.ndim != 3 or a.shape[-1] != 3:
            raise DecodeError(f"DICOM colour frame has an unexpected shape {a.shape}")
        if a.dtype != np.uint8:
            a = to_uint8(a)
        img = Image.fromarray(np.ascontiguousarray(a), "RGB")
    return img, np.frombuffer(digest, np.uint8)
