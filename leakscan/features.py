"""Features of every image, computed from one decode: exact digests, perceptual hashes, embedding.

* ``file_digest``: BLAKE2b-128 of the file bytes (identical files).
* ``pixel_digest``: BLAKE2b-128 of the canonical RGB pixels (a PNG and its lossless re-save).
* ``hashes``: imagehash-compatible 64-bit pHash of the image under each of the eight
  rotations/flips (the dihedral group D4), shape ``(n, 8, 8)`` packed bits. Variant 0 is the
  plain ``imagehash.phash`` of the canonical image. The variants are computed from the one
  32x32 thumbnail the hash already needs: no extra decode.
* ``embedding``: a 128-d descriptor of the image's structure: histograms of gradient
  orientation (8 bins) in a 4x4 grid of cells of the same 32x32 grayscale thumbnail, square-rooted and
  centred and L2-normalised. It tolerates re-encoding, resizing, recolouring, small shifts and crops.
  A rotation/flip of the image permutes its cells and bins (:func:`leakscan.views.embedding_variants`), so
  transformed copies are searched at no extra decode cost.
* ``thumb``: the 32x32 grayscale thumbnail itself (1 KB), kept so candidate pairs can be
  verified by lining the two thumbnails up (:mod:`leakscan.verify`).
* ``rot_*``: for the few images that are rotated copies on a padded canvas (their corners
  are flat black or white), the angle and the embedding and thumbnail of the de-rotated
  view (:mod:`leakscan.rotation`); sparse: ``rot_rows`` names the rows that have one.
* ``low_info``: images with almost no contrast (blank frames, flat colour), whose hashes and
  embeddings are noise; they are matched by exact digests only.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from .errors import ConfigError
from .decode import DecodeError, canonical_from_array, decode_bytes, read_bytes
from .manifest import Manifest
from .views import BINS, CELL, N_VARIANTS, THUMB, derotate

log = logging.getLogger(__name__)

__all__ = ["Features", "extract_features", "extract_images", "load_pictures", "features_of_image", "hog", "phash_variants",
           "FEATURE_VERSION", "EMBED_DIM"]

#: Bump when any feature's definition changes (cache entries of other versions are not reused).
FEATURE_VERSION = "6"
HASH_SIZE = 8
#: Side of the colour thumbnail kept per image (``Features.colour``: RGB, uint8).
COLOUR_SIDE = 16
EMBED_DIM = (THUMB // CELL) ** 2 * BINS
#: Standard deviation (grey levels, 0-255) of the 32x32 thumbnail below which an image is
#: "low information": too flat for its hash or embedding to mean anything.
LOW_INFO_STD = 3.0

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Features:
    """Per-row features; rows line up with the :class:`~leakscan.manifest.Manifest`.

    Rows where ``ok`` is False failed to decode: their arrays hold zeros and ``failures``
    names the reason.
    """

    ok: np.ndarray            # (n,) bool
    file_digest: np.ndarray   # (n, 16) uint8
    pixel_digest: np.ndarray  # (n, 16) uint8
    hashes: np.ndarray        # (n, 8, 8) uint8, packed 64-bit pHash per dihedral variant
    embedding: np.ndarray     # (n, EMBED_DIM) float32, L2-normalised
    low_info: np.ndarray      # (n,) bool
    sizes: np.ndarray         # (n, 2) int32 width, height after EXIF transpose
    thumb: np.ndarray | None = None  # (n, 32, 32) uint8 grayscale thumbnail (pair verification)
    rot_rows: np.ndarray | None = None       # (m,) int64 rows with a de-rotated view, ascending
    rot_angle: np.ndarray | None = None      # (m,) float32 degrees
    rot_embedding: np.ndarray | None = None  # (m, EMBED_DIM) float32
    rot_thumb: np.ndarray | None = None      # (m, 32, 32) uint8
    colour: np.ndarray | None = None         # (n, 3, 16, 16) uint8 colour thumbnail (pair evidence)
    rot_colour: np.ndarray | None = None     # (m, 3, 16, 16) uint8 colour thumbnail of the de-rotated view
    model_embedding: np.ndarray | None = None  # (n, D) float32 from an ONNX model (leakscan.model), or None
    failures: tuple = ()      # ((row, reason), ...)
    notes: tuple = ()         # ((row, note), ...) e.g. animated GIF first frame
    version: str = field(default=FEATURE_VERSION)
    n_cached: int = 0         # rows read from the feature cache instead of decoded

    def __post_init__(self) -> None:
        n = self.ok.shape[0]
        if self.thumb is None:  # features made elsewhere (tests, synthetic benchmarks) may have none
            object.__setattr__(self, "thumb", np.zeros((n, THUMB, THUMB), np.uint8))
        if self.rot_rows is None:
            object.__setattr__(self, "rot_rows", np.zeros(0, np.int64))
            object.__setattr__(self, "rot_angle", np.zeros(0, np.float32))
            object.__setattr__(self, "rot_embedding", np.zeros((0, EMBED_DIM), np.float32))
            object.__setattr__(self, "rot_thumb", np.zeros((0, THUMB, THUMB), np.uint8))
        m = len(self.rot_rows)
        if self.colour is None:
            object.__setattr__(self, "colour", np.zeros((n, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8))
        if self.rot_colour is None:
            object.__setattr__(self, "rot_colour", np.zeros((m, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8))
        checks = {
            "ok": (self.ok, (n,), np.bool_),
            "file_digest": (self.file_digest, (n, 16), np.uint8),
            "pixel_digest": (self.pixel_digest, (n, 16), np.uint8),
            "hashes": (self.hashes, (n, N_VARIANTS, HASH_SIZE * HASH_SIZE // 8), np.uint8),
            "embedding": (self.embedding, (n, EMBED_DIM), np.float32),
            "low_info": (self.low_info, (n,), np.bool_),
            "sizes": (self.sizes, (n, 2), np.int32),
            "thumb": (self.thumb, (n, THUMB, THUMB), np.uint8),
            "rot_rows": (self.rot_rows, (m,), np.int64),
            "rot_angle": (self.rot_angle, (m,), np.float32),
            "rot_embedding": (self.rot_embedding, (m, EMBED_DIM), np.float32),
            "rot_thumb": (self.rot_thumb, (m, THUMB, THUMB), np.uint8),
            "colour": (self.colour, (n, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8),
            "rot_colour": (self.rot_colour, (m, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8),
        }
        if self.model_embedding is not None:
            me = self.model_embedding
            checks["model_embedding"] = (me, (n,) + tuple(me.shape[1:2]), np.float32)
            if me.ndim != 2:
                raise ValueError(f"Features.model_embedding must be 2-d, got {me.shape}")
        for name, (arr, shape, dtype) in checks.items():
            if arr.shape != shape or arr.dtype != dtype:
                raise ValueError(f"Features.{name} must be {dtype.__name__}{shape}, got {arr.dtype}{arr.shape}")

    def __len__(self) -> int:
        return int(self.ok.shape[0])

    @classmethod
    def empty(cls, n: int) -> "Features":
        return cls(
            ok=np.zeros(n, bool),
            file_digest=np.zeros((n, 16), np.uint8),
            pixel_digest=np.zeros((n, 16), np.uint8),
            hashes=np.zeros((n, N_VARIANTS, 8), np.uint8),
            embedding=np.zeros((n, EMBED_DIM), np.float32),
            low_info=np.zeros(n, bool),
            sizes=np.zeros((n, 2), np.int32),
        )

    @classmethod
    def concat(cls, parts: list["Features"], offsets: list[int]) -> "Features":
        """Join per-chunk features; ``offsets[k]`` is the first row of part k."""
        if not parts:
            return cls.empty(0)
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        failures = tuple((r + off, why) for p, off in zip(parts, offsets) for r, why in p.failures)
        notes = tuple((r + off, why) for p, off in zip(parts, offsets) for r, why in p.notes)
        return cls(ok=cat("ok"), file_digest=cat("file_digest"), pixel_digest=cat("pixel_digest"),
                   hashes=cat("hashes"), embedding=cat("embedding"), low_info=cat("low_info"),
                   sizes=cat("sizes"), thumb=cat("thumb"), colour=cat("colour"), rot_colour=cat("rot_colour"),
                   rot_rows=np.concatenate([p.rot_rows + off for p, off in zip(parts, offsets)]).astype(np.int64),
                   rot_angle=cat("rot_angle"), rot_embedding=cat("rot_embedding"), rot_thumb=cat("rot_thumb"),
                   model_embedding=(cat("model_embedding") if all(p.model_embedding is not None for p in parts)
                                    else None),
                   failures=failures, notes=notes)

    def take(self, rows: np.ndarray) -> "Features":
        rows = np.asarray(rows, dtype=np.int64)
        pos = {int(r): k for k, r in enumerate(rows)}
        rk = [q for q, r in enumerate(self.rot_rows.tolist()) if r in pos]
        new_rows = np.array([pos[int(self.rot_rows[q])] for q in rk], np.int64)
        order = np.argsort(new_rows, kind="stable")
        rk = np.asarray(rk, np.int64)[order]
        return Features(
            rot_rows=new_rows[order], rot_angle=self.rot_angle[rk], rot_embedding=self.rot_embedding[rk],
            rot_thumb=self.rot_thumb[rk], rot_colour=self.rot_colour[rk], colour=self.colour[rows],
            model_embedding=None if self.model_embedding is None else self.model_embedding[rows],
            ok=self.ok[rows], file_digest=self.file_digest[rows], pixel_digest=self.pixel_digest[rows],
            hashes=self.hashes[rows], embedding=self.embedding[rows], low_info=self.low_info[rows],
            sizes=self.sizes[rows], thumb=self.thumb[rows],
            failures=tuple((pos[r], w) for r, w in self.failures if r in pos),
            notes=tuple((pos[r], w) for r, w in self.notes if r in pos),
        )


# --------------------------------------------------------------------------- per image

def hog(gray: np.ndarray) -> np.ndarray:
    """Gradient-orientation histograms of ``(..., 32, 32)`` grayscale: square-rooted, centred, L2-normalised.

    Orientation is unsigned (``[0, pi)``) with linear interpolation between 8 bins, so a
    flip or transpose of the input is an exact permutation of the output.
    """
    g = np.asarray(gray)
    lead = g.shape[:-2]
    g = g.reshape((-1, THUMB, THUMB))
    if g.dtype == np.uint8:
        # integer gradients in [-255, 255]: orientation and magnitude come from lookup tables
        gi = g.astype(np.int16)
        gx = np.zeros(g.shape, np.int16)
        gy = np.zeros(g.shape, np.int16)
        gx[:, :, 1:-1] = gi[:, :, 2:] - gi[:, :, :-2]
        gy[:, 1:-1, :] = gi[:, 2:, :] - gi[:, :-2, :]
        flat = ((gy.astype(np.int32) + 255) * 511 + (gx + 255)).reshape(len(g), -1)
        pos_t, mag_t = _grad_tables()
        pos = pos_t[flat]
        mag = mag_t[flat]
    else:
        g = g.astype(np.float32)
        gx = np.zeros_like(g)
        gy = np.zeros_like(g)
        gx[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
        gy[:, 1:-1, :] = g[:, 2:, :] - g[:, :-2, :]
        pos, mag = _orientation(gx, gy)
        pos, mag = pos.reshape(len(g), -1), mag.reshape(len(g), -1)
    b0 = pos.astype(np.int32)  # floor: pos >= 0
    w1 = pos - b0
    b0 &= BINS - 1  # pos == BINS (angle pi) wraps to bin 0
    b1 = (b0 + 1) & (BINS - 1)
    c = THUMB // CELL
    m = g.shape[0]
    cell = np.arange(THUMB, dtype=np.int32) // CELL
    cell_of_pixel = (cell[:, None] * c + cell[None, :]).reshape(-1)
    base = (np.arange(m, dtype=np.int32)[:, None] * (c * c) + cell_of_pixel[None, :]) * BINS
    size = m * c * c * BINS
    out = (np.bincount((base + b0).ravel(), weights=(mag * (1 - w1)).ravel(), minlength=size)
           + np.bincount((base + b1).ravel(), weights=(mag * w1).ravel(), minlength=size)).astype(np.float32)
    out = np.sqrt(out).reshape(m, -1)
    # centre: an isotropic texture (noise, grass) has a flat histogram, which centring maps
    # near zero, so unrelated textures do not look alike
    out -= out.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    out /= np.maximum(norm, 1e-12)
    return out.reshape(lead + (EMBED_DIM,))


def _orientation(gx: np.ndarray, gy: np.ndarray):
    """Bin position in [0, BINS] of the unsigned gradient orientation, and the magnitude."""
    ang = np.arctan2(gy, gx)  # (-pi, pi]
    ang = np.where(ang < 0, ang + np.float32(np.pi), ang)
    return (ang * np.float32(BINS / np.pi)).astype(np.float32), np.hypot(gx, gy).astype(np.float32)


_TABLES: tuple | None = None


def _grad_tables():
    """Orientation bin position and magnitude for every integer gradient (gx, gy) in [-255, 255]^2."""
    global _TABLES
    if _TABLES is None:
        v = np.arange(-255, 256, dtype=np.float32)
        gy, gx = np.meshgrid(v, v, indexing="ij")
        pos, mag = _orientation(gx, gy)
        _TABLES = (pos.ravel(), mag.ravel())
    return _TABLES


def _dct_matrix(n: int, rows: int) -> np.ndarray:
    """The first ``rows`` rows of scipy's unnormalised DCT-II matrix of size ``n``."""
    k = np.arange(rows)[:, None]
    x = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * x + 1) / (2 * n))


_DCT8 = _dct_matrix(HASH_SIZE * 4, HASH_SIZE)
# sign of low-frequency coefficient (u, v) under a flip of the columns (v odd) or rows (u odd)
_ODD = (np.arange(HASH_SIZE) % 2 == 1)


def phash_variants(small: np.ndarray) -> np.ndarray:
    """Packed pHash of all eight rotations/flips from ``(m, 32, 32)`` LANCZOS grayscale thumbnails.

    imagehash's algorithm (DCT-II of rows and columns, 8x8 low frequencies, above their
    median). Only the 8x8 low-frequency block is computed, once per image: a flip of the
    image flips the sign of the odd coefficients along that axis and a transpose transposes
    the block, so the eight variants cost one DCT. Variant 0 equals ``imagehash.phash``.
    Returns ``(m, 8, 8)`` uint8.
    """
    x = np.asarray(small, dtype=np.float64)
    low = np.einsum("ux,mxy,vy->muv", _DCT8, x, _DCT8, optimize=True)  # (m, 8, 8)
    flip_cols = np.where(_ODD, -1.0, 1.0)[None, None, :]
    flip_rows = np.where(_ODD, -1.0, 1.0)[None, :, None]
    variants = []
    for v in range(N_VARIANTS):
        b = np.swapaxes(low, 1, 2) if v >= 4 else low
        # after an optional transpose, variants 1/5 flip columns, 2/6 flip rows, 3/7 both
        r = v % 4
        if r in (1, 3):
            b = b * flip_cols
        if r in (2, 3):
            b = b * flip_rows
        variants.append(b.reshape(len(x), -1))
    low = np.stack(variants, axis=1)  # (m, 8, 64)
    med = np.median(low, axis=2, keepdims=True)
    return np.packbits(low > med, axis=2)


def thumbnail(img: Image.Image) -> np.ndarray:
    """The one 32x32 view every feature comes from: grayscale, LANCZOS (as imagehash's pHash)."""
    small = img.convert("L").resize((HASH_SIZE * 4, HASH_SIZE * 4), Image.LANCZOS)
    return np.frombuffer(small.tobytes(), np.uint8).reshape(HASH_SIZE * 4, HASH_SIZE * 4)


def colour_thumbnail(img: Image.Image) -> np.ndarray:
    """The ``(3, 16, 16)`` uint8 colour thumbnail (box-averaged RGB) used as colour evidence."""
    small = img.convert("RGB").resize((COLOUR_SIDE, COLOUR_SIDE), Image.BOX, reducing_gap=2.0)
    return np.asarray(small, np.uint8).transpose(2, 0, 1).copy()


def pixel_digest(img: Image.Image) -> np.ndarray:
    """BLAKE2b-128 of the canonical pixels and their size."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{img.mode}{img.size}".encode())
    h.update(img.tobytes())
    return np.frombuffer(h.digest(), np.uint8)


def features_of_image(img: Image.Image):
    """Features of one canonical RGB image: (pixel_digest, hashes (8, 8), embedding, low_info)."""
    small = thumbnail(img)
    return (pixel_digest(img), phash_variants(small[None])[0], hog(small[None])[0],
            float(np.std(small)) < LOW_INFO_STD)


# --------------------------------------------------------------------------- batches

def _extract_chunk(job) -> Features:
    kind, items, spec = job if len(job) == 3 else (*job, None)
    model = views = None
    if spec is not None:
        from .model import load_model  # noqa: PLC0415 - optional extra

        model = load_model(spec)
        views = np.zeros((len(items), model.height, model.width, 3), np.uint8)
    n = len(items)
    out = Features.empty(n)
    failures, notes = [], []
    smalls = np.zeros((n, HASH_SIZE * 4, HASH_SIZE * 4), np.uint8)
    colours = np.zeros((n, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8)
    rot_rows, rot_angle, rot_small, rot_col = [], [], [], []
    for k, item in enumerate(items):
        try:
            if kind == "path":
                data = read_bytes(item)
                out.file_digest[k] = np.frombuffer(hashlib.blake2b(data, digest_size=16).digest(), np.uint8)
                img, note = decode_bytes(data)
                if note:
                    notes.append((k, note))
            elif kind == "source":  # dataset/table bytes, DICOM frames, GeoTIFF tiles (leakscan.sources)
                from .sources.rows import decode_item  # noqa: PLC0415

                out.file_digest[k], img, note = decode_item(item)
                if note:
                    notes.append((k, note))
            else:
                img = canonical_from_array(item)
            out.pixel_digest[k] = pixel_digest(img)
            smalls[k] = thumbnail(img)
            colours[k] = colour_thumbnail(img)
            out.sizes[k] = img.size
            if model is not None:
                views[k] = model.preprocess(img)
            try:
                view = derotate(img, smalls[k])
            except Exception as exc:  # an extra check: never lose the image to it
                log.warning("%s: rotation check failed (%s: %s); searched without it",
                            item if kind == "path" else f"image {k}", type(exc).__name__, exc)
                view = None
            if view is not None:
                rot_rows.append(k)
                rot_angle.append(view[0])
                rot_small.append(thumbnail(view[1]))
                rot_col.append(colour_thumbnail(view[1]))
        except DecodeError as exc:
            failures.append((k, str(exc)))
            continue
        except Exception as exc:  # never let one image end the run
            failures.append((k, f"unexpected error: {type(exc).__name__}: {exc}"))
            continue
        if kind == "array":
            out.file_digest[k] = out.pixel_digest[k]
        out.ok[k] = True
    good = np.flatnonzero(out.ok)
    if len(good):
        out.hashes[good] = phash_variants(smalls[good])
        out.embedding[good] = hog(smalls[good])
        out.low_info[good] = smalls[good].reshape(len(good), -1).std(axis=1) < LOW_INFO_STD
    keep = [q for q, r in enumerate(rot_rows) if out.ok[r]]
    rs = np.array([rot_small[q] for q in keep], np.uint8).reshape(len(keep), THUMB, THUMB)
    return Features(ok=out.ok, file_digest=out.file_digest, pixel_digest=out.pixel_digest,
                    hashes=out.hashes, embedding=out.embedding, low_info=out.low_info,
                    sizes=out.sizes, thumb=smalls, colour=colours,
                    rot_rows=np.array([rot_rows[q] for q in keep], np.int64),
                    rot_colour=np.array([rot_col[q] for q in keep], np.uint8).reshape(
                        len(keep), 3, COLOUR_SIDE, COLOUR_SIDE),
                    rot_angle=np.array([rot_angle[q] for q in keep], np.float32),
                    rot_embedding=hog(rs) if len(keep) else np.zeros((0, EMBED_DIM), np.float32),
                    rot_thumb=rs, model_embedding=_model_embed(model, views, out.ok),
                    failures=tuple(failures), notes=tuple(notes))


def load_pictures(manifest: Manifest, rows, max_side: int = 256) -> list:
    """Canonical RGB pictures of ``rows`` (None where one cannot be read), reduced to ``max_side``.

    JPEGs decode at a reduced scale (``draft``). For the decision's calibration
    (:mod:`leakscan.calibrate`), which copies a sample of the dataset's own images.
    """
    out = []
    for r in np.asarray(rows, np.int64).tolist():
        try:
            if manifest.images is not None:
                img = canonical_from_array(manifest.images[r])
            elif manifest.source is not None:
                from .sources.rows import decode_item  # noqa: PLC0415

                img = decode_item(manifest.source.work_items([r])[0])[1]
            else:
                img = decode_bytes(read_bytes(manifest.resolve(r)), draft=(max_side, max_side))[0]
            img.thumbnail((max_side, max_side), Image.BILINEAR)
            out.append(img)
        except Exception as exc:  # a file that changed since it was read: calibrate without it
            log.info("calibration: %s not read again (%s)", manifest.paths[r], exc)
            out.append(None)
    return out


def extract_images(images: list, model=None) -> Features:
    """Features of in-memory pictures (arrays ``(H, W[, C])``), in this process: one chunk."""
    return _extract_chunk(("array", list(images), model))


def _model_embed(model, views, ok):
    if model is None:
        return None
    good = np.flatnonzero(ok)
    emb = model.embed(views[good]) if len(good) else np.zeros((0, model.dim), np.float32)
    out = np.zeros((len(ok), emb.shape[1]), np.float32)
    out[good] = emb
    return out


def _rot_arrays(rot: dict) -> dict:
    rows = sorted(rot)
    return {"rot_rows": np.array(rows, np.int64),
            "rot_angle": np.array([rot[r][0] for r in rows], np.float32),
            "rot_embedding": np.array([rot[r][1] for r in rows], np.float32).reshape(len(rows), EMBED_DIM),
            "rot_thumb": np.array([rot[r][2] for r in rows], np.uint8).reshape(len(rows), THUMB, THUMB),
            "rot_colour": np.array([rot[r][3] for r in rows], np.uint8).reshape(
                len(rows), 3, COLOUR_SIDE, COLOUR_SIDE)}


def _one_thread() -> None:
    """Worker processes compute with one thread each: the pool is the parallelism.

    They also end when the parent process dies, even by kill -9 (:func:`leakscan.safeio.die_with_parent`).
    """
    from .safeio import die_with_parent  # noqa: PLC0415

    die_with_parent()
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 - installed with scikit-learn

        threadpool_limits(1)
    except Exception:  # pragma: no cover - best effort
        pass


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def extract_features(
    manifest: Manifest,
    *,
    rows: np.ndarray | None = None,
    jobs: int | None = None,
    chunk_size: int = 256,
    cache=None,
    client=None,
    progress: ProgressFn | None = None,
    model=None,
) -> Features:
    """Decode each image once and compute all its features.

    Parameters
    ----------
    manifest : Manifest
    rows : ndarray of int, optional
        Only these rows (the result then has ``len(rows)`` rows, in that order).
    jobs : int, optional
        Worker processes; default: every core this process may use.
    chunk_size : int
        Images per task; memory stays bounded by ``jobs * chunk_size`` decoded images.
    cache : FeatureCache, optional
        Files whose (path, size, mtime) are in the cache are not decoded again; new results
        are written to it after every chunk.
    client : dask.distributed.Client, optional
        Run the chunks on a Dask cluster's workers instead of local processes; only the
        compact features travel back. The workers must see the same paths and have leakscan
        installed (``pip install 'leakscan[dask]'``).
    progress : callable, optional
        ``progress("features", done, total)`` after every chunk.
    model : ModelSpec, optional
        Also embed every image with this ONNX model (:mod:`leakscan.model`), in the same
        pass; cached per file and model digest.

    Returns
    -------
    Features
    """
    if rows is None:
        rows = np.arange(len(manifest))
    rows = np.asarray(rows, dtype=np.int64)
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1 (worker processes), got {jobs}")
    n = len(rows)
    out = Features.empty(n)
    failures: dict[int, str] = {}
    notes: dict[int, str] = {}
    rot: dict[int, tuple] = {}  # row -> (angle, embedding, thumbnail, colour) of its de-rotated view
    model_emb: dict[int, np.ndarray] = {}
    if manifest.images is not None:
        kind, items, keys = "array", [manifest.images[r] for r in rows], None
        todo = np.arange(n)
    else:
        items = manifest.resolved_paths(rows) if manifest.source is None else manifest.source.work_items(rows)
        kind = "path" if manifest.source is None else "source"
        keys = None
        todo = np.arange(n)
        if cache is not None:
            from .cache import file_key  # noqa: PLC0415

            # items are absolute paths; source rows are keyed by content digest or path#frame
            keys = [file_key(p) for p in items] if kind == "path" else manifest.source.cache_keys(rows)
            pos, rows_c, cached_fail, cached_notes, cached_rot = cache.get(keys)
            rot.update(cached_rot)
            if len(pos):
                out.ok[pos] = True
                out.low_info[pos] = rows_c["low"]
                out.sizes[pos] = np.stack([rows_c["w"], rows_c["h"]], axis=1)
                out.file_digest[pos] = rows_c["fd"]
                out.pixel_digest[pos] = rows_c["pd"]
                out.hashes[pos] = rows_c["hashes"].reshape(-1, N_VARIANTS, 8)
                out.embedding[pos] = rows_c["emb"]
                out.thumb[pos] = rows_c["thumb"].reshape(-1, THUMB, THUMB)
                out.colour[pos] = rows_c["colour"].reshape(-1, 3, COLOUR_SIDE, COLOUR_SIDE)
            failures.update(cached_fail)
            notes.update(cached_notes)
            hit = np.zeros(n, bool)
            hit[pos] = True
            if model is not None:  # cached features without this model's embedding: decode again
                model_emb.update(cache.get_model(keys, model.digest))
                hit[[k for k in pos.tolist() if k not in model_emb]] = False
            hit[list(cached_fail)] = True
            todo = np.flatnonzero(~hit)
            log.info("feature cache: %d of %d images cached, %d to decode", n - len(todo), n, len(todo))
    starts = list(range(0, len(todo), chunk_size))
    tasks = [(kind, [items[k] for k in todo[s:s + chunk_size]], model) for s in starts]
    done = n - len(todo)
    if progress:
        progress("features", done, n)

    def absorb(s: int, part: Features) -> None:
        nonlocal done
        idx = todo[s:s + chunk_size]
        for name in ("ok", "file_digest", "pixel_digest", "hashes", "embedding", "low_info", "sizes", "thumb", "colour"):
            getattr(out, name)[idx] = getattr(part, name)
        for r, why in part.failures:
            failures[int(idx[r])] = why
        for r, why in part.notes:
            notes[int(idx[r])] = why
        for q, r in enumerate(part.rot_rows.tolist()):
            rot[int(idx[r])] = (float(part.rot_angle[q]), part.rot_embedding[q], part.rot_thumb[q],
                                part.rot_colour[q])
        if part.model_embedding is not None:
            for r in np.flatnonzero(part.ok).tolist():
                model_emb[int(idx[r])] = part.model_embedding[r]
        if cache is not None and keys is not None:
            cache.put([keys[k] for k in idx], part)
            if model is not None:
                cache.put_model([keys[k] for k in idx], model.digest, part.model_embedding, part.ok)
        done += len(idx)
        if progress:
            progress("features", done, n)

    if client is not None and tasks:
        from distributed import as_completed  # noqa: PLC0415 - optional extra

        futures = client.map(_extract_chunk, tasks, pure=False)
        start_of = {f.key: s for f, s in zip(futures, starts)}
        for fut in as_completed(futures):
            absorb(start_of[fut.key], fut.result())
            fut.release()
    elif jobs == 1 or len(tasks) <= 1:
        for s, t in zip(starts, tasks):
            absorb(s, _extract_chunk(t))
    else:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_one_thread) as pool:
            for s, part in zip(starts, pool.map(_extract_chunk, tasks)):
                absorb(s, part)
    model_arr = None
    if model is not None:
        if model_emb:
            dim = len(next(iter(model_emb.values())))
        else:
            from .model import load_model  # noqa: PLC0415

            dim = load_model(model).dim
        model_arr = np.zeros((n, dim), np.float32)
        for r, e in model_emb.items():
            model_arr[r] = e
    return Features(ok=out.ok, file_digest=out.file_digest, pixel_digest=out.pixel_digest,
                    hashes=out.hashes, embedding=out.embedding, low_info=out.low_info, sizes=out.sizes,
                    thumb=out.thumb, colour=out.colour, **_rot_arrays(rot), model_embedding=model_arr,
                    failures=tuple(sorted(failures.items())), notes=tuple(sorted(notes.items())),
                    n_cached=n - len(todo))
