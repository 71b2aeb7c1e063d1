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
* ``derotated_*``: for the few images whose picture sits on a canvas, the angle and the
  embedding and thumbnails of the picture off its canvas (:func:`leakscan.views.canvas_view`):
  rotated copies on a padded canvas (de-rotated, their angle) and pictures in a flat border
  or under a caption bar (letterbox, pillarbox, frame, padding to a square, caption: trimmed,
  angle 0, with ``derotated_padding`` the box of the canvas outside which it is padding);
  sparse: ``derotated_rows`` names the rows that have one.
* ``keypoints``: when asked for (:func:`extract_features`, ``keypoints=True``), the strongest ORB
  keypoints of each picture of 64 px or more, from all over it
  (:func:`leakscan.orb.strongest_keypoints`), which the keypoint search indexes; sparse:
  ``keypoint_rows`` names the rows that have them.
* ``low_info``: images with almost no contrast (blank frames, flat colour), whose hashes and
  embeddings are noise; they are matched by exact digests only.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, ImageChops

from .decode import (DecodeError, canonical_from_array, decode_reduced, file_size_cap, read_bytes,
                     requested_max_file_size)
from .manifest import Manifest
from .orb import KEYPOINT_RECORD, LOOK_MIN_SIDE, opencv_loads, strongest_keypoints
from .padding import NO_BORDER
from .parallel import check_jobs, run_chunks
from .settings import DECODE_SIDE
from .views import BINS, CELL, N_VARIANTS, THUMB, canvas_view, canvas_views, crop_views, resampling_matrices

log = logging.getLogger(__name__)

__all__ = ["Features", "extract_features", "extract_images", "load_pictures", "features_of_image", "hog", "crop_hog",
           "window_hog", "phash_variants", "colour_thumbnail", "digest_share", "digest_order", "content_ranks",
           "digest_greater", "small_picture", "PICTURE_SIDE", "hue_sensitive", "value_thumbnails", "HUE_SENSITIVE",
           "folded_thumbnail", "folded_thumbnails", "no_highlights", "unsolarized", "colour_at_thumbnail",
           "luma", "NO_HIGHLIGHTS", "FEATURE_VERSION", "EMBED_DIM", "COLOUR_SIDE", "RECORD",
           "DEROTATED_RECORD"]

#: Bump when any feature's definition changes (cache entries of other versions are not reused).
FEATURE_VERSION = "15"
HASH_SIZE = 8
#: Largest side of the pictures the calibration copies (:func:`load_pictures`, ``Features.pictures``).
PICTURE_SIDE = 256
#: Side of the colour thumbnail kept per image (``Features.colour``: RGB, uint8).
COLOUR_SIDE = 16
EMBED_DIM = (THUMB // CELL) ** 2 * BINS
#: Standard deviation (grey levels, 0-255) of the 32x32 thumbnail below which an image is
#: "low information": too flat for its hash or embedding to mean anything.
LOW_INFO_STD = 3.0
#: An image whose hues differ across it (each pixel's colour less the picture's average colour,
#: in the opponent-colour plane, on average) at least this many times its brightness detail (the
#: standard deviation of its brightest channel) has colours that carry its picture: a hue shift
#: redraws its grey levels, so it is also matched by brightness (:func:`hue_sensitive`). A
#: picture of one hue (a blue sky, a sepia print) only grows lighter or darker with a shift.
HUE_SENSITIVE = 1.0
#: An image whose colour thumbnail has no channel above this anywhere has no highlights, as a
#: solarized picture has none (every value at or above a threshold inverted: torchvision's
#: ``RandomSolarize`` at 128-192, RandAugment's at 0-255), so it is also matched folded
#: (:func:`folded_thumbnail`). One solarized at a higher threshold is barely changed.
NO_HIGHLIGHTS = 200
#: Encoded bytes per task at most when rows are image bytes of a dataset or table (extract_features).
CHUNK_BYTES = 16 << 20
#: Images of at most this many pixels a side have their canvas looked at (:func:`~leakscan.views.canvas_views`)
#: up to ``CANVAS_BATCH`` at a time, after decoding; larger ones one at a time, as they are decoded.
CANVAS_BATCH_SIDE = 128
CANVAS_BATCH = 64

ProgressFn = Callable[[str, int, int], None]

#: One image's features as the feature cache stores them. The field order and types are the
#: stored bytes (the names are not stored): change them only with FEATURE_VERSION.
RECORD = np.dtype([
    ("ok", np.bool_), ("low_info", np.bool_), ("width", np.int32), ("height", np.int32),
    ("file_digest", np.uint8, 16), ("pixel_digest", np.uint8, 16), ("hashes", np.uint8, N_VARIANTS * HASH_SIZE),
    ("embedding", np.float32, EMBED_DIM), ("thumb", np.uint8, THUMB * THUMB),
    ("colour", np.uint8, 3 * COLOUR_SIDE * COLOUR_SIDE), ("folded", np.uint8, COLOUR_SIDE * COLOUR_SIDE),
])
#: Appended to a RECORD when the image has a de-rotated view (:mod:`leakscan.rotation`).
DEROTATED_RECORD = np.dtype([("angle", np.float32), ("embedding", np.float32, EMBED_DIM),
                             ("thumb", np.uint8, THUMB * THUMB), ("colour", np.uint8, 3 * COLOUR_SIDE * COLOUR_SIDE),
                             ("padding", np.float32, 4)])
#: The sizes a stored row can have: its RECORD, then a de-rotated view's record, then its keypoints.
_BLOB_SIZES = tuple(RECORD.itemsize + d + k for d in (0, DEROTATED_RECORD.itemsize)
                    for k in (0, KEYPOINT_RECORD.itemsize))
assert len(set(_BLOB_SIZES)) == 4, "each layout of a stored row must have its own size"
#: The per-row (dense) arrays of :class:`Features`.
_DENSE = ("ok", "file_digest", "pixel_digest", "hashes", "embedding", "low_info", "sizes", "thumb", "colour",
          "folded")


class StackedRows:
    """The rows of two arrays read as one array, the rows of ``rest`` after those of ``first``,
    neither copied (a million embeddings are 512 MB). It reads rows, as an index, a slice or an
    array of rows or a mask; its ``shape``, ``dtype`` and ``len`` are those of the joined array."""

    def __init__(self, first: np.ndarray, rest: np.ndarray):
        self.first, self.rest = first, rest
        self.shape = (len(first) + len(rest),) + first.shape[1:]
        self.dtype = first.dtype
        self.ndim = first.ndim

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(len(self)))
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if rows.dtype.kind not in "iu":
            raise TypeError(f"StackedRows reads rows only, got an index of {rows.dtype}")
        one = rows.ndim == 0
        rows = np.atleast_1d(rows).astype(np.int64)
        rows = np.where(rows < 0, rows + len(self), rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row out of range for {len(self)} rows")
        out = np.empty((len(rows),) + self.shape[1:], self.dtype)
        mine = rows < len(self.first)
        out[mine] = self.first[rows[mine]]
        out[~mine] = self.rest[rows[~mine] - len(self.first)]
        return out[0] if one else out


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
    derotated_rows: np.ndarray | None = None       # (m,) int64 rows with a canvas view, ascending
    derotated_angle: np.ndarray | None = None      # (m,) float32 degrees (0: a flat border trimmed)
    derotated_embedding: np.ndarray | None = None  # (m, EMBED_DIM) float32
    derotated_thumb: np.ndarray | None = None      # (m, 32, 32) uint8
    colour: np.ndarray | None = None               # (n, 3, 16, 16) uint8 colour thumbnail (pair evidence)
    folded: np.ndarray | None = None               # (n, 16, 16) uint8 folded brightness (solarized copies)
    derotated_colour: np.ndarray | None = None     # (m, 3, 16, 16) uint8 colour thumbnail of the de-rotated view
    derotated_padding: np.ndarray | None = None    # (m, 4) float32 box of the canvas outside which it is padding
    keypoint_rows: np.ndarray | None = None        # (k,) int64 rows whose search keypoints were found, ascending
    keypoints: np.ndarray | None = None            # (k,) KEYPOINT_RECORD their keypoints (leakscan.orb)
    model_embedding: np.ndarray | None = None  # (n, D) float32 from the extra embedder (an ONNX model), or None
    failures: tuple = ()      # ((row, reason), ...)
    notes: tuple = ()         # ((row, note), ...) e.g. animated GIF first frame
    pictures: tuple = ()      # ((row, (h, w, 3) uint8), ...) small pictures kept for the calibration's sample
    version: str = field(default=FEATURE_VERSION)
    n_cached: int = 0         # rows read from the feature cache instead of decoded

    def __post_init__(self) -> None:
        n = self.ok.shape[0]
        if self.thumb is None:  # features made elsewhere (tests, synthetic benchmarks) may have none
            object.__setattr__(self, "thumb", np.zeros((n, THUMB, THUMB), np.uint8))
        if self.derotated_rows is None:
            object.__setattr__(self, "derotated_rows", np.zeros(0, np.int64))
            object.__setattr__(self, "derotated_angle", np.zeros(0, np.float32))
            object.__setattr__(self, "derotated_embedding", np.zeros((0, EMBED_DIM), np.float32))
            object.__setattr__(self, "derotated_thumb", np.zeros((0, THUMB, THUMB), np.uint8))
        m = len(self.derotated_rows)
        if self.colour is None:
            object.__setattr__(self, "colour", np.zeros((n, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8))
        if self.folded is None:
            object.__setattr__(self, "folded", np.zeros((n, COLOUR_SIDE, COLOUR_SIDE), np.uint8))
        if self.derotated_colour is None:
            object.__setattr__(self, "derotated_colour", np.zeros((m, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8))
        if self.derotated_padding is None:
            object.__setattr__(self, "derotated_padding", np.tile(np.float32(NO_BORDER), (m, 1)))
        if self.keypoint_rows is None:
            object.__setattr__(self, "keypoint_rows", np.zeros(0, np.int64))
            object.__setattr__(self, "keypoints", np.zeros(0, KEYPOINT_RECORD))
        k = len(self.keypoint_rows)
        checks = {
            "ok": (self.ok, (n,), np.bool_),
            "file_digest": (self.file_digest, (n, 16), np.uint8),
            "pixel_digest": (self.pixel_digest, (n, 16), np.uint8),
            "hashes": (self.hashes, (n, N_VARIANTS, HASH_SIZE * HASH_SIZE // 8), np.uint8),
            "embedding": (self.embedding, (n, EMBED_DIM), np.float32),
            "low_info": (self.low_info, (n,), np.bool_),
            "sizes": (self.sizes, (n, 2), np.int32),
            "thumb": (self.thumb, (n, THUMB, THUMB), np.uint8),
            "derotated_rows": (self.derotated_rows, (m,), np.int64),
            "derotated_angle": (self.derotated_angle, (m,), np.float32),
            "derotated_embedding": (self.derotated_embedding, (m, EMBED_DIM), np.float32),
            "derotated_thumb": (self.derotated_thumb, (m, THUMB, THUMB), np.uint8),
            "colour": (self.colour, (n, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8),
            "folded": (self.folded, (n, COLOUR_SIDE, COLOUR_SIDE), np.uint8),
            "derotated_colour": (self.derotated_colour, (m, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8),
            "derotated_padding": (self.derotated_padding, (m, 4), np.float32),
            "keypoint_rows": (self.keypoint_rows, (k,), np.int64),
            "keypoints": (self.keypoints, (k,), KEYPOINT_RECORD),
        }
        if self.model_embedding is not None:
            me = self.model_embedding
            checks["model_embedding"] = (me, (n,) + tuple(me.shape[1:2]), np.float32)
            if me.ndim != 2:
                raise ValueError(f"Features.model_embedding must be 2-d, got {me.shape}")
        for name, (arr, shape, dtype) in checks.items():
            if arr.shape != shape or arr.dtype != dtype:
                raise ValueError(f"Features.{name} must be {np.dtype(dtype)}{shape}, got {arr.dtype}{arr.shape}")

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
    def concat(cls, parts: list["Features"], offsets: list[int], *, blank=()) -> "Features":
        """Join per-chunk features; ``offsets[k]`` is the first row of part k. The thumbnails and
        embeddings of the parts numbered in ``blank`` are left out (zero, taking no memory): for
        a caller that needs none of them, or takes the few it needs from those parts themselves."""
        n = max((off + len(p) for p, off in zip(parts, offsets)), default=0)
        return cls.assemble(n, [(np.arange(off, off + len(p)), p) for p, off in zip(parts, offsets)], blank=blank)

    def beside(self, more: "Features") -> "Features":
        """These rows, then ``more``'s (the calibration's dataset and its synthetic copies),
        without copying what is bulky: the embeddings are read through (:class:`StackedRows`),
        the thumbnails of these rows left out (zero: the caller takes the few it needs from
        these features)."""
        out = Features.concat([self, more], [0, len(self)], blank=(0,))
        return dataclasses.replace(out, embedding=StackedRows(self.embedding, more.embedding))

    @classmethod
    def assemble(cls, n: int, parts, *, model_dim: int | None = None, n_cached: int = 0, blank=()) -> "Features":
        """``n`` rows from ``parts``, a list of ``(positions, Features)``: row k of a part becomes row
        ``positions[k]``. Rows no part covers are not ok. With ``model_dim``, a model embedding of
        that size is made even when no part has one. ``blank``: see :meth:`concat`."""
        out = cls.empty(n)
        failures: dict[int, str] = {}
        notes: dict[int, str] = {}
        pictures: dict[int, np.ndarray] = {}
        derot, keyed = [], []
        model = None
        for k, (pos, part) in enumerate(parts):
            pos = np.asarray(pos, np.int64)
            for name in _DENSE:
                if k not in blank or name not in ("thumb", "colour", "folded", "embedding"):
                    getattr(out, name)[pos] = getattr(part, name)
            failures.update((int(pos[r]), why) for r, why in part.failures)
            notes.update((int(pos[r]), why) for r, why in part.notes)
            pictures.update((int(pos[r]), pic) for r, pic in part.pictures)
            derot.append((pos[part.derotated_rows], part.derotated_angle, part.derotated_embedding,
                          part.derotated_thumb, part.derotated_colour, part.derotated_padding))
            keyed.append((pos[part.keypoint_rows], part.keypoints))
            if part.model_embedding is not None:
                if model is None:
                    model = np.zeros((n, part.model_embedding.shape[1]), np.float32)
                model[pos] = part.model_embedding
        if model is None and model_dim is not None:
            model = np.zeros((n, model_dim), np.float32)
        rows = np.concatenate([d[0] for d in derot]) if derot else np.zeros(0, np.int64)
        order = np.argsort(rows, kind="stable")
        cat = (lambda k, empty: np.concatenate([d[k] for d in derot])[order] if derot else empty)  # noqa: E731
        keyed_rows = np.concatenate([rows for rows, _ in keyed]) if keyed else np.zeros(0, np.int64)
        keyed_order = np.argsort(keyed_rows, kind="stable")
        return cls(**{name: getattr(out, name) for name in _DENSE},
                   derotated_rows=rows[order].astype(np.int64), derotated_angle=cat(1, np.zeros(0, np.float32)),
                   derotated_embedding=cat(2, np.zeros((0, EMBED_DIM), np.float32)),
                   derotated_thumb=cat(3, np.zeros((0, THUMB, THUMB), np.uint8)),
                   derotated_colour=cat(4, np.zeros((0, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8)),
                   derotated_padding=cat(5, np.zeros((0, 4), np.float32)),
                   keypoint_rows=keyed_rows[keyed_order].astype(np.int64),
                   keypoints=(np.concatenate([kp for _, kp in keyed]) if keyed
                              else np.zeros(0, KEYPOINT_RECORD))[keyed_order],
                   model_embedding=model,
                   failures=tuple(sorted(failures.items())), notes=tuple(sorted(notes.items())),
                   pictures=tuple(sorted(pictures.items(), key=lambda kv: kv[0])), n_cached=n_cached)

    # ---- the bytes the feature cache stores per image (leakscan.cache keeps them opaque)
    def to_blobs(self) -> list:
        """Per row: :data:`RECORD` bytes (plus :data:`DEROTATED_RECORD` bytes for a row with a
        de-rotated view, then :data:`~leakscan.orb.KEYPOINT_RECORD` bytes for a row with search
        keypoints), or None for a row that was not decoded."""
        rec = np.zeros(len(self), RECORD)
        rec["ok"], rec["low_info"] = self.ok, self.low_info
        rec["width"], rec["height"] = self.sizes[:, 0], self.sizes[:, 1]
        rec["file_digest"], rec["pixel_digest"] = self.file_digest, self.pixel_digest
        rec["hashes"] = self.hashes.reshape(len(self), N_VARIANTS * HASH_SIZE)
        rec["embedding"] = self.embedding
        rec["thumb"] = self.thumb.reshape(len(self), THUMB * THUMB)
        rec["colour"] = self.colour.reshape(len(self), 3 * COLOUR_SIDE * COLOUR_SIDE)
        rec["folded"] = self.folded.reshape(len(self), COLOUR_SIDE * COLOUR_SIDE)
        derot = np.zeros(len(self.derotated_rows), DEROTATED_RECORD)
        derot["angle"], derot["embedding"] = self.derotated_angle, self.derotated_embedding
        derot["thumb"] = self.derotated_thumb.reshape(len(derot), THUMB * THUMB)
        derot["colour"] = self.derotated_colour.reshape(len(derot), 3 * COLOUR_SIDE * COLOUR_SIDE)
        derot["padding"] = self.derotated_padding
        extra = {int(r): derot[q].tobytes() for q, r in enumerate(self.derotated_rows.tolist())}
        keyed = {int(r): self.keypoints[q].tobytes() for q, r in enumerate(self.keypoint_rows.tolist())}
        return [rec[r].tobytes() + extra.get(r, b"") + keyed.get(r, b"") if self.ok[r] else None
                for r in range(len(self))]

    @classmethod
    def from_blobs(cls, n: int, positions, blobs) -> "Features":
        """``n`` rows, row ``positions[k]`` read from ``blobs[k]`` (as :meth:`to_blobs` wrote it); a
        blob of another size (another layout) is left out, so that row is not ok."""
        size, derot_size, keyed_size = RECORD.itemsize, DEROTATED_RECORD.itemsize, KEYPOINT_RECORD.itemsize
        good = [(int(p), b) for p, b in zip(positions, blobs) if len(b) in _BLOB_SIZES]
        pos = np.array([p for p, _ in good], np.int64)
        rec = np.frombuffer(b"".join(b[:size] for _, b in good), RECORD) if good else np.zeros(0, RECORD)
        out = cls.empty(n)
        out.ok[pos] = True
        out.low_info[pos] = rec["low_info"]
        out.sizes[pos] = np.stack([rec["width"], rec["height"]], axis=1)
        out.file_digest[pos] = rec["file_digest"]
        out.pixel_digest[pos] = rec["pixel_digest"]
        out.hashes[pos] = rec["hashes"].reshape(-1, N_VARIANTS, HASH_SIZE)
        out.embedding[pos] = rec["embedding"]
        out.thumb[pos] = rec["thumb"].reshape(-1, THUMB, THUMB)
        out.colour[pos] = rec["colour"].reshape(-1, 3, COLOUR_SIDE, COLOUR_SIDE)
        out.folded[pos] = rec["folded"].reshape(-1, COLOUR_SIDE, COLOUR_SIDE)
        with_view = [(p, b) for p, b in good if len(b) - size in (derot_size, derot_size + keyed_size)]
        derot = (np.frombuffer(b"".join(b[size:size + derot_size] for _, b in with_view), DEROTATED_RECORD)
                 if with_view else np.zeros(0, DEROTATED_RECORD))
        with_keypoints = sorted((p, b) for p, b in good if len(b) - size in (keyed_size, derot_size + keyed_size))
        keyed = np.frombuffer(b"".join(b[-keyed_size:] for _, b in with_keypoints), KEYPOINT_RECORD).copy()
        return cls(**{name: getattr(out, name) for name in _DENSE},
                   derotated_rows=np.array([p for p, _ in with_view], np.int64),
                   derotated_angle=derot["angle"].astype(np.float32),
                   derotated_embedding=derot["embedding"].astype(np.float32).reshape(-1, EMBED_DIM),
                   derotated_thumb=derot["thumb"].reshape(-1, THUMB, THUMB).astype(np.uint8),
                   derotated_colour=derot["colour"].reshape(-1, 3, COLOUR_SIDE, COLOUR_SIDE).astype(np.uint8),
                   derotated_padding=derot["padding"].astype(np.float32).reshape(-1, 4),
                   keypoint_rows=np.array([p for p, _ in with_keypoints], np.int64), keypoints=keyed)

    def canvas_mask(self, *, trimmed: bool | None = None) -> np.ndarray:
        """``(n,)`` bool: the rows whose canvas view is their picture trimmed out of a flat
        border (``trimmed=True``: stored with angle 0) or rotated back (``trimmed=False``);
        either (``None``)."""
        out = np.zeros(len(self), bool)
        angle = self.derotated_angle
        out[self.derotated_rows if trimmed is None else self.derotated_rows[(angle == 0) == trimmed]] = True
        return out

    def canvas_padding(self) -> np.ndarray:
        """``(n, 4)`` float32 per row: the box of its canvas outside which a trimmed border is
        padding (:func:`leakscan.padding.unpadded`), :data:`~leakscan.padding.NO_BORDER` for
        rows without one."""
        out = np.tile(np.float32(NO_BORDER), (len(self), 1))
        out[self.derotated_rows] = self.derotated_padding
        return out

    def take(self, rows: np.ndarray) -> "Features":
        rows = np.asarray(rows, dtype=np.int64)
        pos = {int(r): k for k, r in enumerate(rows)}
        rk = [q for q, r in enumerate(self.derotated_rows.tolist()) if r in pos]
        new_rows = np.array([pos[int(self.derotated_rows[q])] for q in rk], np.int64)
        order = np.argsort(new_rows, kind="stable")
        rk = np.asarray(rk, np.int64)[order]
        kk = [q for q, r in enumerate(self.keypoint_rows.tolist()) if r in pos]
        keyed_rows = np.array([pos[int(self.keypoint_rows[q])] for q in kk], np.int64)
        keyed_order = np.argsort(keyed_rows, kind="stable")
        kk = np.asarray(kk, np.int64)[keyed_order]
        return Features(
            keypoint_rows=keyed_rows[keyed_order], keypoints=self.keypoints[kk],
            derotated_rows=new_rows[order], derotated_angle=self.derotated_angle[rk],
            derotated_embedding=self.derotated_embedding[rk],
            derotated_thumb=self.derotated_thumb[rk], derotated_colour=self.derotated_colour[rk],
            derotated_padding=self.derotated_padding[rk], colour=self.colour[rows], folded=self.folded[rows],
            model_embedding=None if self.model_embedding is None else self.model_embedding[rows],
            ok=self.ok[rows], file_digest=self.file_digest[rows], pixel_digest=self.pixel_digest[rows],
            hashes=self.hashes[rows], embedding=self.embedding[rows], low_info=self.low_info[rows],
            sizes=self.sizes[rows], thumb=self.thumb[rows],
            failures=tuple((pos[r], w) for r, w in self.failures if r in pos),
            notes=tuple((pos[r], w) for r, w in self.notes if r in pos),
            pictures=tuple((pos[r], pic) for r, pic in self.pictures if r in pos),
        )


# --------------------------------------------------------------------------- per image

def _gradient_bins(g: np.ndarray, edges: bool = False):
    """Per pixel of ``(m, 32, 32)`` grayscale: the two orientation bins the gradient falls
    between and the magnitude each gets (each ``(m, 1024)``; the weights float64, as
    ``np.bincount`` sums them). The outermost pixels have no gradient across the edge, unless
    ``edges`` (then a one-sided difference)."""
    if g.dtype == np.uint8:
        # integer gradients in [-255, 255]: bins and weights come from lookup tables
        gx, gy = _gradients(g.astype(np.int16), edges)
        # (np.take with a native-size index: nearly twice as fast as an int32 fancy index)
        flat = ((gy.astype(np.intp) + 255) * 511 + (gx + 255)).reshape(len(g), -1)
        return tuple(np.take(table, flat) for table in _grad_tables())
    gx, gy = _gradients(g.astype(np.float32), edges)
    pos, mag = _orientation(gx, gy)
    return _bins(pos.reshape(len(g), -1), mag.reshape(len(g), -1))


def _bins(pos: np.ndarray, mag: np.ndarray):
    """The two bins a bin position in [0, BINS] falls between, and the magnitude each gets."""
    b0 = pos.astype(np.int32)  # floor: pos >= 0
    w1 = pos - b0
    b0 &= BINS - 1  # pos == BINS (angle pi) wraps to bin 0
    b1 = (b0 + 1) & (BINS - 1)
    return b0, b1, (mag * (1 - w1)).astype(np.float64), (mag * w1).astype(np.float64)


def _gradients(g: np.ndarray, edges: bool):
    """Central differences ``(gx, gy)`` of ``(m, n, n)``; at the outermost pixels 0, or with
    ``edges`` the difference to the next pixel in."""
    if edges:
        p = np.pad(g, ((0, 0), (1, 1), (1, 1)), mode="edge")
        return p[:, 1:-1, 2:] - p[:, 1:-1, :-2], p[:, 2:, 1:-1] - p[:, :-2, 1:-1]
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
    gy[:, 1:-1, :] = g[:, 2:, :] - g[:, :-2, :]
    return gx, gy


def _histograms(g: np.ndarray, cell: int, edges: bool = False) -> np.ndarray:
    """Orientation histograms of ``(m, 32, 32)`` grayscale in ``cell`` x ``cell`` pixel cells:
    ``(m, 32 // cell, 32 // cell, BINS)`` float32."""
    b0, b1, w0, w1 = _gradient_bins(g, edges)
    c = THUMB // cell
    m = g.shape[0]
    cells = np.arange(THUMB, dtype=np.int32) // cell
    cell_of_pixel = (cells[:, None] * c + cells[None, :]).reshape(-1)
    base = (np.arange(m, dtype=np.int32)[:, None] * (c * c) + cell_of_pixel[None, :]) * BINS
    size = m * c * c * BINS
    out = (np.bincount((base + b0).ravel(), weights=w0.ravel(), minlength=size)
           + np.bincount((base + b1).ravel(), weights=w1.ravel(), minlength=size))
    return out.astype(np.float32).reshape(m, c, c, BINS)


def _normalised(h: np.ndarray) -> np.ndarray:
    """Histograms ``(..., d)`` square-rooted, centred and L2-normalised."""
    out = np.sqrt(h)
    # centre: an isotropic texture (noise, grass) has a flat histogram, which centring maps
    # near zero, so unrelated textures do not look alike
    out -= out.mean(axis=-1, keepdims=True)
    out /= np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
    return out


def hog(gray: np.ndarray) -> np.ndarray:
    """Gradient-orientation histograms of ``(..., 32, 32)`` grayscale: square-rooted, centred, L2-normalised.

    Orientation is unsigned (``[0, pi)``) with linear interpolation between 8 bins, so a
    flip or transpose of the input is an exact permutation of the output.
    """
    g = np.asarray(gray)
    lead = g.shape[:-2]
    g = g.reshape((-1, THUMB, THUMB))
    out = _histograms(g, CELL).reshape(len(g), -1)
    return _normalised(out).reshape(lead + (EMBED_DIM,))


def crop_hog(thumbs: np.ndarray, boxes) -> np.ndarray:
    """Gradient histograms of the crop views (:func:`~leakscan.views.crop_views`) in ``boxes``
    of ``(m, 32, 32)`` thumbnails: ``(m, len(boxes), EMBED_DIM)``, as the crop search and the
    evidence both read them (views rounded to uint8: :func:`hog`'s lookup-table path)."""
    return hog(np.rint(crop_views(thumbs, boxes)).astype(np.uint8))


#: Window embeddings (:func:`window_hog`): 16x16-pixel windows of the thumbnail, every
#: ``WINDOW_STEP`` pixels; the four quadrants are among them (:data:`QUADRANTS`).
WINDOW = THUMB // 2
WINDOW_STEP = 2
WINDOW_PLACES = tuple((y, x) for y in range(0, THUMB - WINDOW + 1, WINDOW_STEP)
                      for x in range(0, THUMB - WINDOW + 1, WINDOW_STEP))
QUADRANTS = tuple(WINDOW_PLACES.index(p) for p in ((0, 0), (0, WINDOW), (WINDOW, 0), (WINDOW, WINDOW)))


def window_hog(gray: np.ndarray) -> np.ndarray:
    """Gradient histograms of the 16x16 windows of ``(m, 32, 32)`` thumbnails at
    :data:`WINDOW_PLACES`: ``(m, len(WINDOW_PLACES), EMBED_DIM)`` float32, each window cut in
    4x4 cells of 4x4 pixels (the layout of :func:`hog` at half the scale).

    Two tiles of one large image that overlap by half or more share a quadrant of one and a
    window of the other (to within one pixel), so these find overlapping tiles.
    """
    g = np.asarray(gray).reshape((-1, THUMB, THUMB))
    # cells of 2x2 pixels; a quadrant's outer pixels have a gradient, as inside the other tile
    small = _histograms(g, WINDOW_STEP, edges=True)
    # cells of 4x4 pixels starting at every even pixel: sums of 2x2 small cells
    quads = small[:, :-1, :-1] + small[:, 1:, :-1] + small[:, :-1, 1:] + small[:, 1:, 1:]
    step = (WINDOW // 4) // WINDOW_STEP  # a window cell's side in small cells
    k = (THUMB - WINDOW) // WINDOW_STEP + 1  # window places per axis
    # cell (i, j) of the window at place (y, x) is quads[y + i * step, x + j * step]
    out = np.stack([quads[:, i * step:i * step + k, j * step:j * step + k] for i in range(4) for j in range(4)],
                   axis=3)  # (m, k, k, 16, BINS)
    return _normalised(out.reshape(len(g), k * k, -1))


def _orientation(gx: np.ndarray, gy: np.ndarray):
    """Bin position in [0, BINS] of the unsigned gradient orientation, and the magnitude."""
    ang = np.arctan2(gy, gx)  # (-pi, pi]
    ang = np.where(ang < 0, ang + np.float32(np.pi), ang)
    return (ang * np.float32(BINS / np.pi)).astype(np.float32), np.hypot(gx, gy).astype(np.float32)


_TABLES: tuple | None = None


def _grad_tables():
    """:func:`_bins` of every integer gradient (gx, gy) in [-255, 255]^2."""
    global _TABLES
    if _TABLES is None:
        v = np.arange(-255, 256, dtype=np.float32)
        gy, gx = np.meshgrid(v, v, indexing="ij")
        pos, mag = _orientation(gx, gy)
        _TABLES = _bins(pos.ravel(), mag.ravel())
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


def hue_sensitive(colour: np.ndarray) -> np.ndarray:
    """``(n,)`` bool over ``(n, 3, s, s)`` colour thumbnails: the images whose colours carry
    their picture (:data:`HUE_SENSITIVE`). A hue shift turns every colour about the grey axis
    and keeps each pixel's brightest channel, so a copy shifted in hue is marked as its
    original is (up to the difference between HSV's hexagon and the opponent-colour circle)."""
    out = np.zeros(len(colour), bool)
    for a in range(0, len(colour), 4096):  # a block at a time: a million thumbnails are 768 MB
        c = np.asarray(colour[a:a + 4096]).astype(np.float32)
        red, green, blue = c[:, 0], c[:, 1], c[:, 2]
        across, along = red - (green + blue) / 2, np.float32(np.sqrt(3) / 2) * (green - blue)
        spread = np.hypot(across - across.mean(axis=(1, 2), keepdims=True),
                          along - along.mean(axis=(1, 2), keepdims=True)).mean(axis=(1, 2))
        out[a:a + 4096] = spread >= HUE_SENSITIVE * np.maximum(c.max(axis=1).std(axis=(1, 2)), 1.0)
    return out


def value_thumbnails(colour: np.ndarray) -> np.ndarray:
    """``(n, 32, 32)`` float32: the brightest channel (HSV value) of ``(n, 3, s, s)`` colour
    thumbnails, enlarged to the thumbnail's side: a picture a hue shift leaves as it is."""
    value = np.asarray(colour).max(axis=1).astype(np.uint8)
    return np.stack([np.asarray(Image.fromarray(v).resize((THUMB, THUMB), Image.BICUBIC), np.float32)
                     for v in value]).reshape(len(value), THUMB, THUMB)


#: Each value folded about mid-grey, ``min(c, 255 - c)``, doubled to fill 0-254: solarizing keeps
#: each value or inverts it, and the fold maps both to one, at any threshold.
_FOLD = [2 * min(c, 255 - c) for c in range(256)]


def _folded(rgb: Image.Image) -> Image.Image:
    """``rgb`` with each channel folded by :data:`_FOLD`. On a small picture as ``min(c, 255 - c)``
    doubled, by ImageChops: ``Image.point`` rounds its 768-entry table in Python on every call,
    which costs more than the pixels up to about 128 x 128 (as on CIFAR-10)."""
    if rgb.width * rgb.height > 128 * 128:
        return rgb.point(_FOLD * 3)
    low = ImageChops.darker(rgb, ImageChops.invert(rgb))
    return ImageChops.add(low, low)


def folded_thumbnail(img: Image.Image) -> np.ndarray:
    """The ``(16, 16)`` uint8 folded brightness of ``img``: each channel of each pixel folded
    (:data:`_FOLD`, before the channels are mixed, as solarizing inverts each apart), then its
    luma, box-averaged as :func:`colour_thumbnail` (folded before it is averaged: a fold of
    averages is not the average of the folds where a cell mixes light and dark). A picture
    solarizing leaves as it is. A large picture is first reduced by a whole factor to a short
    side of :data:`~leakscan.settings.DECODE_SIDE` or more, as a JPEG decodes (its draft)."""
    factor = min(img.size) // DECODE_SIDE
    small = img.reduce(factor) if factor > 1 else img
    small = _folded(small.convert("RGB")).convert("L")
    small = small.resize((COLOUR_SIDE, COLOUR_SIDE), Image.BOX, reducing_gap=2.0)
    return np.asarray(small, np.uint8).copy()


def folded_thumbnails(folded: np.ndarray) -> np.ndarray:
    """``(n, 32, 32)`` uint8: ``(n, 16, 16)`` folded thumbnails (:attr:`Features.folded`)
    enlarged to the thumbnail's side (bilinear), for the gradient histograms."""
    f = np.asarray(folded, np.float32)
    m = _enlarging(f.shape[-1])
    return np.rint(np.clip(m @ f @ m.T, 0, 255)).astype(np.uint8)


#: The thresholds a solarized copy is read at (:func:`unsolarized`): 0 inverts the whole picture
#: (torchvision's ``RandomInvert``), 256 leaves it as it is.
SOLARIZE_THRESHOLDS = tuple(range(0, 257, 8))


def unsolarized(colour: np.ndarray, like: np.ndarray) -> tuple:
    """``(a, b, inverted)``: ``a``, ``b`` float32 like ``colour`` and ``like`` (``(n, ...)``
    thumbnails, grey or colour), each pair lined up as a solarized copy and its original, the
    original solarized at the threshold of :data:`SOLARIZE_THRESHOLDS` under which it comes
    closest to the copy (mean absolute difference), whichever of the two is the copy (``like``
    solarized, or ``colour``); ``inverted`` ``(n,)``: the share of the original's values that
    threshold inverts. Read so, a solarized copy matches its original in full detail, and two
    different pictures that only fold alike do not."""
    c, other = np.asarray(colour).astype(np.float32), np.asarray(like).astype(np.float32)
    axes = tuple(range(1, c.ndim))
    best = [np.full(len(c), np.inf, np.float32), c.copy(), other.copy(), np.zeros(len(c), np.float32)]
    for original, copy, first in ((c, other, True), (other, c, False)):
        for t in SOLARIZE_THRESHOLDS:
            high = original >= t
            made = np.where(high, 255.0 - original, original)
            err = np.abs(made - copy).mean(axis=axes)
            better = err < best[0]
            best[0] = np.where(better, err, best[0])
            best[1][better] = made[better] if first else copy[better]
            best[2][better] = copy[better] if first else made[better]
            best[3] = np.where(better, high.mean(axis=axes), best[3])
    return best[1], best[2], best[3]


def colour_at_thumbnail(colour: np.ndarray, thumb: np.ndarray) -> np.ndarray:
    """``(n, 3, 32, 32)`` float32: colour at the thumbnail's side, the ``(n, 32, 32)`` grey
    thumbnails' detail with the ``(n, 3, s, s)`` colour thumbnails' chroma (enlarged, bilinear)."""
    c = np.asarray(colour, np.float32)
    m = _enlarging(c.shape[-1])
    c = m @ c @ m.T
    return np.clip(c - luma(c)[:, None] + np.asarray(thumb, np.float32)[:, None], 0, 255)


def _enlarging(n: int) -> np.ndarray:
    """``(32, n)`` float32: an ``n``-pixel axis enlarged to the thumbnail's side (bilinear)."""
    return resampling_matrices(np.zeros(1), np.ones(1), n, THUMB)[0]


def luma(colour: np.ndarray) -> np.ndarray:
    """``(n, s, s)`` float32: the luma (ITU-R 601, as Pillow's ``convert("L")``) of ``(n, 3, s, s)``."""
    c = np.asarray(colour, np.float32)
    return 0.299 * c[:, 0] + 0.587 * c[:, 1] + 0.114 * c[:, 2]


def no_highlights(colour: np.ndarray) -> np.ndarray:
    """``(n,)`` bool over ``(n, 3, s, s)`` colour thumbnails: no channel above :data:`NO_HIGHLIGHTS`
    anywhere (the pictures that may be solarized)."""
    colour = np.asarray(colour)
    return colour.reshape(len(colour), -1).max(axis=1, initial=0) <= NO_HIGHLIGHTS


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

def side_for_model(decode_side: int | None, embedder) -> int | None:
    """The shorter side image files decode to when ``embedder`` (a loaded model, or None) also
    reads them: at least its input size, so the model never sees an upsampled picture (None: full size)."""
    if embedder is None or decode_side is None:
        return decode_side
    return max(decode_side, int(getattr(embedder, "width", 0)), int(getattr(embedder, "height", 0)))


def _extract_chunk(job) -> Features:
    """Features of one chunk of images: ``job = (kind, items, extra, decode_side, picture_share,
    keypoints)``, kind ``"path"``, ``"source"`` or ``"array"``; image files decode at reduced scale
    down to ``decode_side`` (None: full); images whose pixel digest falls in the lowest
    ``picture_share`` of digests keep a small picture (:attr:`Features.pictures`); with
    ``keypoints``, pictures of LOOK_MIN_SIDE px or more keep their search keypoints."""
    kind, items, extra, decode_side, picture_share, keypoints = job
    keypoints = keypoints and opencv_loads()
    embedder = extra.load() if extra is not None else None
    decode_side = side_for_model(decode_side, embedder)
    views: dict[int, np.ndarray] = {}
    n = len(items)
    out = Features.empty(n)
    failures, notes, pictures = [], [], []
    smalls = np.zeros((n, HASH_SIZE * 4, HASH_SIZE * 4), np.uint8)
    colours = np.zeros((n, 3, COLOUR_SIDE, COLOUR_SIDE), np.uint8)
    folds = np.zeros((n, COLOUR_SIDE, COLOUR_SIDE), np.uint8)
    canvas: dict[int, tuple] = {}  # row -> (angle, thumbnail, colour thumbnail, padding) of its picture off its canvas
    canvases: list = []  # (row, image, name) whose canvas is still to look at: small ones, a batch at a time

    def look_at_canvases():
        try:
            found = canvas_views([img for _, img, _ in canvases], smalls[[k for k, _, _ in canvases]])
        except Exception:  # an extra check: never lose an image to it, nor a batch to one image
            found = []
            for k, img, named in canvases:
                try:
                    found.append(canvas_view(img, smalls[k]))
                except Exception as exc:
                    log.warning("%s: canvas check failed (%s: %s); searched without it", named,
                                type(exc).__name__, exc)
                    found.append(None)
        for (k, _, named), view in zip(canvases, found):
            if view is not None:
                try:
                    canvas[k] = view[0], thumbnail(view[1]), colour_thumbnail(view[1]), view[2]
                except Exception as exc:
                    log.warning("%s: canvas view unreadable (%s: %s); searched without it", named,
                                type(exc).__name__, exc)
        canvases.clear()
    keyed_rows, keyed = [], []
    for k, item in enumerate(items):
        try:
            if kind == "path":
                data = read_bytes(item)
                out.file_digest[k] = np.frombuffer(hashlib.blake2b(data, digest_size=16).digest(), np.uint8)
                img, note, size = decode_reduced(data, decode_side)
                if note:
                    notes.append((k, note))
            elif kind == "source":  # dataset/table bytes, DICOM frames, GeoTIFF tiles (leakscan.sources)
                from .sources.rows import decode_item  # noqa: PLC0415

                out.file_digest[k], img, note = decode_item(item)
                size = img.size
                if note:
                    notes.append((k, note))
            else:
                img = canonical_from_array(item)
                size = img.size
            out.pixel_digest[k] = pixel_digest(img)
            named = item if kind == "path" else f"image {k}"  # for messages about it
            small = None
            if picture_share and digest_share(out.pixel_digest[k]) < picture_share:
                try:
                    small = small_picture(img)
                    pictures.append((k, small))
                except Exception as exc:  # only a convenience: the calibration decodes it again
                    log.info("%s: no calibration picture kept (%s)", named, exc)
            if keypoints and min(size) >= LOOK_MIN_SIDE:
                try:
                    small = small_picture(img) if small is None else small
                    keyed.append(strongest_keypoints(Image.fromarray(small, "RGB"), PICTURE_SIDE))
                    keyed_rows.append(k)
                except Exception as exc:  # the search decodes it again, and says so if it fails there too
                    log.info("%s: no keypoints kept (%s: %s); the keypoint search decodes it again", named,
                             type(exc).__name__, exc)
            smalls[k] = thumbnail(img)
            colours[k] = colour_thumbnail(img)
            folds[k] = folded_thumbnail(img)
            out.sizes[k] = size
            if embedder is not None:
                views[k] = embedder.preprocess(img)
        except DecodeError as exc:
            failures.append((k, str(exc)))
            continue
        except Exception as exc:  # never let one image end the run
            failures.append((k, f"unexpected error: {type(exc).__name__}: {exc}"))
            continue
        if kind == "array":
            out.file_digest[k] = out.pixel_digest[k]
        out.ok[k] = True
        # the canvas check comes after the image is counted read: its failure never costs the image
        canvases.append((k, img, named))
        if max(img.size) > CANVAS_BATCH_SIDE or len(canvases) >= CANVAS_BATCH:
            look_at_canvases()
    if canvases:
        look_at_canvases()
    derotated_rows = sorted(canvas)
    derotated_angle = [canvas[k][0] for k in derotated_rows]
    derotated_small = [canvas[k][1] for k in derotated_rows]
    derotated_col = [canvas[k][2] for k in derotated_rows]
    derotated_pad = [canvas[k][3] for k in derotated_rows]
    good = np.flatnonzero(out.ok)
    if len(good):
        out.hashes[good] = phash_variants(smalls[good])
        out.embedding[good] = hog(smalls[good])
        out.low_info[good] = smalls[good].reshape(len(good), -1).std(axis=1) < LOW_INFO_STD
    keep = [q for q, r in enumerate(derotated_rows) if out.ok[r]]
    kept_keys = [q for q, r in enumerate(keyed_rows) if out.ok[r]]
    rs = np.array([derotated_small[q] for q in keep], np.uint8).reshape(len(keep), THUMB, THUMB)
    return Features(ok=out.ok, file_digest=out.file_digest, pixel_digest=out.pixel_digest,
                    hashes=out.hashes, embedding=out.embedding, low_info=out.low_info,
                    sizes=out.sizes, thumb=smalls, colour=colours, folded=folds,
                    derotated_rows=np.array([derotated_rows[q] for q in keep], np.int64),
                    derotated_angle=np.array([derotated_angle[q] for q in keep], np.float32),
                    derotated_embedding=hog(rs) if len(keep) else np.zeros((0, EMBED_DIM), np.float32),
                    derotated_thumb=rs,
                    derotated_colour=np.array([derotated_col[q] for q in keep], np.uint8).reshape(
                        len(keep), 3, COLOUR_SIDE, COLOUR_SIDE),
                    derotated_padding=np.array([derotated_pad[q] for q in keep], np.float32).reshape(len(keep), 4),
                    keypoint_rows=np.array([keyed_rows[q] for q in kept_keys], np.int64),
                    keypoints=np.array([keyed[q] for q in kept_keys], KEYPOINT_RECORD).reshape(len(kept_keys)),
                    model_embedding=_extra_embed(embedder, views, out.ok),
                    failures=tuple(failures), notes=tuple(notes),
                    pictures=tuple((k, pic) for k, pic in pictures if out.ok[k]))


def digest_order(digests: np.ndarray) -> np.ndarray:
    """Row order by pixel digest ``(n, 16)`` uint8: an order fixed by content, the same whatever
    the order of the input.

    >>> digest_order(np.array([[2, 0], [1, 9], [1, 3]], np.uint8))
    array([2, 1, 0])
    """
    return np.lexsort(np.asarray(digests).T[::-1])


def content_ranks(digests: np.ndarray) -> np.ndarray:
    """Each row's place in :func:`digest_order`: for ties that the row order must not break.

    >>> content_ranks(np.array([[2, 0], [1, 9], [1, 3]], np.uint8))
    array([2, 1, 0])
    """
    ranks = np.empty(len(digests), np.int64)
    ranks[digest_order(digests)] = np.arange(len(digests))
    return ranks


def digest_greater(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``a > b`` of ``(p, 16)`` uint8 digests, compared as byte strings: which image of
    a pair comes second in :func:`digest_order` (a pair is measured one way round, whatever the
    order of the rows).

    >>> digest_greater(np.array([[1, 2], [1, 2]], np.uint8), np.array([[1, 1], [2, 0]], np.uint8))
    array([ True, False])
    """
    diff = np.asarray(a).astype(np.int16) - np.asarray(b).astype(np.int16)
    first = np.argmax(diff != 0, axis=1)
    return diff[np.arange(len(diff)), first] > 0


def digest_share(digest: np.ndarray) -> float:
    """Where a pixel digest falls among all digests, in [0, 1): its first 8 bytes, big-endian,
    so a share's lowest digests are the first in the calibration's content order."""
    return int.from_bytes(bytes(np.asarray(digest, np.uint8)[:8]), "big") / 2.0 ** 64


def small_picture(img: Image.Image, side: int = PICTURE_SIDE) -> np.ndarray:
    """``img`` reduced to at most ``side`` pixels a side, as an RGB array."""
    pic = img.convert("RGB")
    pic.thumbnail((side, side), Image.BILINEAR)
    return np.asarray(pic, np.uint8)


def _chunk_starts(sizes: np.ndarray, chunk_size: int, chunk_bytes: int) -> list[int]:
    """Where each chunk starts: at most ``chunk_size`` rows and, past its first row, at most
    ``chunk_bytes`` of ``sizes``.

    >>> _chunk_starts(np.array([5, 5, 5, 20, 1, 1]), 3, 10)
    [0, 2, 3, 4]
    """
    starts, rows, total = [], 0, 0
    for k, size in enumerate(np.asarray(sizes, np.int64).tolist()):
        if not starts or rows >= chunk_size or (rows and total + size > chunk_bytes):
            starts.append(k)
            rows, total = 0, 0
        rows += 1
        total += size
    return starts


def load_pictures(manifest: Manifest, rows, max_side: int = PICTURE_SIDE, kept=(),
                  decode_side: int | None = DECODE_SIDE) -> list:
    """Canonical RGB pictures of ``rows`` (None where one cannot be read), reduced to ``max_side``.

    Rows in ``kept`` (:attr:`Features.pictures` of the run) are taken from there, as kept; the others
    are decoded again as the feature pass decodes them (``decode_side``, None: full size), so
    a picture read again is the one a cold run keeps, and a run with cached features decides
    as a cold one. For the decision's calibration
    (:mod:`leakscan.calibrate`), which copies a sample of the dataset's own images, and the
    closer look at the possible pairs (:mod:`leakscan.keypoints`). A file that can no longer
    be read (changed since it was) is logged, named, and left out: None. Each picture's
    ``info["path"]`` names its row, for messages about it.
    """
    rows = np.asarray(rows, np.int64).tolist()
    out = _load_pictures(manifest, rows, max_side, dict(kept), decode_side)
    for r, img in zip(rows, out):
        if img is not None:
            img.info["path"] = str(manifest.paths[r])
    return out


def _load_pictures(manifest: Manifest, rows: list, max_side: int, kept: dict, decode_side: int | None) -> list:
    found = {r: Image.fromarray(kept[r], "RGB") for r in rows if r in kept}
    for img in found.values():  # kept at the run's side, which may be more than asked
        img.thumbnail((max_side, max_side), Image.BILINEAR)
    if manifest.source is not None:  # stored bytes are read in blocks, in the order they are stored
        for r, img in manifest.source.pictures([r for r in rows if r not in found]):
            if isinstance(img, Exception):
                log.warning("%s: not read again (%s); its picture is left out", manifest.paths[r], img)
            else:
                img.thumbnail((max_side, max_side), Image.BILINEAR)
                found[r] = img
        return [found.get(r) for r in rows]
    out = []
    for r in rows:
        if r in found:
            out.append(found[r])
            continue
        try:
            if manifest.images is not None:
                img = canonical_from_array(manifest.images[r])
            else:
                img = decode_reduced(read_bytes(manifest.resolve(r)), decode_side)[0]
            out.append(Image.fromarray(small_picture(img, max_side), "RGB"))  # as _extract_chunk keeps it
        except Exception as exc:  # a file that changed since it was read: calibrate without it
            log.warning("%s: not read again (%s); its picture is left out", manifest.paths[r], exc)
            out.append(None)
    return out


def _extract_capped(cap: int | None, job) -> Features:
    """:func:`_extract_chunk` under the file size cap of the process that made the task (a Dask
    worker does not share its environment)."""
    with file_size_cap(cap):
        return _extract_chunk(job)


def extract_images(images: list, model=None) -> Features:
    """Features of in-memory pictures (arrays ``(H, W[, C])``), in this process: one chunk."""
    return _extract_chunk(("array", list(images), model, None, 0.0, False))


def _extra_embed(embedder, views: dict, ok: np.ndarray):
    """The extra embedder's embeddings of the decoded images (zeros for the others), or None."""
    if embedder is None:
        return None
    good = np.flatnonzero(ok)
    if len(good):
        emb = embedder.embed(np.stack([views[k] for k in good.tolist()]))
    else:
        emb = np.zeros((0, embedder.dim), np.float32)
    out = np.zeros((len(ok), emb.shape[1]), np.float32)
    out[good] = emb
    return out


def extract_features(
    manifest: Manifest,
    *,
    rows: np.ndarray | None = None,
    jobs: int | None = None,
    chunk_size: int = 256,
    client=None,
    progress: ProgressFn | None = None,
    model=None,
    on_chunk: Callable[[np.ndarray, Features], None] | None = None,
    decode_side: int | None = DECODE_SIDE,
    picture_share: float = 0.0,
    chunk_bytes: int = CHUNK_BYTES,
    keypoints: bool = False,
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
        Images per task (at most; without ``client``, fewer, down to 16, for four tasks a worker);
        memory stays bounded by ``jobs * chunk_size`` decoded images.
    chunk_bytes : int
        For image bytes of a dataset or table: encoded bytes per task at most (a task holds at
        least one image). They are read as tasks are handed out, a few per worker ahead, so
        memory holds a few tasks' bytes, not the dataset's.
    client : dask.distributed.Client, optional
        Run the chunks on a Dask cluster's workers instead of local processes; only the
        compact features travel back. The workers must see the same paths and have leakscan
        installed (``pip install 'leakscan[dask]'``).
    progress : callable, optional
        ``progress("features", done, total)`` after every chunk.
    model : extra embedder, optional
        Also embed every image with this extra embedder, in the same pass (the hook: an
        object with ``load()`` returning something with ``preprocess(image) -> array``,
        ``embed(batch) -> (m, d) float32`` and ``dim``; :class:`leakscan.model.ModelSpec`
        is one, for ONNX models).
    on_chunk : callable, optional
        ``on_chunk(positions, part)`` after every chunk: ``part`` holds the features of the
        result's rows ``positions`` (the feature cache stores them as they come).
    decode_side : int or None
        Image files decode at the smallest scale whose shorter side keeps this many pixels
        (:data:`~leakscan.settings.DECODE_SIDE`; a model's input size when larger); None
        decodes every file at full size. Sizes are always the full image's.
    picture_share : float
        Images whose pixel digest is among the lowest ``picture_share`` of digests keep a
        small picture (:attr:`Features.pictures`, at most :data:`PICTURE_SIDE` px), so the
        calibration copies them without decoding them again.
    keypoints : bool
        Keep the search keypoints of every picture of 64 px or more and of its mirror
        (:attr:`Features.keypoints`, 10 KB each), so the keypoint search
        (:func:`leakscan.keypoints.keypoint_pairs`) decodes nothing again.

    Returns
    -------
    Features

    Examples
    --------
    >>> import numpy as np
    >>> from leakscan.discovery import discover
    >>> f = extract_features(discover(np.zeros((3, 16, 16, 3), np.uint8)), jobs=1)
    >>> f.ok.tolist(), f.low_info.tolist()
    ([True, True, True], [True, True, True])
    """
    if rows is None:
        rows = np.arange(len(manifest))
    rows = np.asarray(rows, dtype=np.int64)
    jobs = check_jobs(jobs)
    n = len(rows)
    source = manifest.source
    if manifest.images is not None:
        kind, items = "array", [manifest.images[r] for r in rows]
    elif source is None:
        kind, items = "path", manifest.resolved_paths(rows)
    # at least four chunks per worker, so a few slow chunks do not leave a worker idle at the end
    chunk_size = max(16, min(chunk_size, -(-n // (4 * jobs)))) if client is None else chunk_size
    if manifest.images is not None or source is None:
        starts = list(range(0, n, chunk_size))
        tasks = [(kind, items[start:start + chunk_size], model, decode_side, picture_share, keypoints)
                 for start in starts]
    else:  # image bytes of a dataset or table are read chunk by chunk, as the workers get to them
        starts = _chunk_starts(source.nbytes(rows), chunk_size, chunk_bytes)
        ends = starts[1:] + [n]
        tasks = (("source", source.work_items(rows[a:b]), model, decode_side, picture_share, keypoints)
                 for a, b in zip(starts, ends))
    parts: list[tuple[np.ndarray, Features]] = []
    done = 0
    if progress:
        progress("features", 0, n)
    try:
        work = functools.partial(_extract_capped, requested_max_file_size())
        for k, part in run_chunks(work, tasks, jobs=jobs, client=client):
            positions = np.arange(starts[k], starts[k] + len(part), dtype=np.int64)
            parts.append((positions, part))
            if on_chunk is not None:
                on_chunk(positions, part)
            done += len(part)
            if progress:
                progress("features", done, n)
    finally:
        if source is not None:
            source.release()
    dim = model.load().dim if model is not None and n and not parts else None
    return Features.assemble(n, parts, model_dim=dim)
