"""Feature cache on an embedded SQLite database, so a re-run decodes only what changed.

Entries are keyed by file identity (absolute path, size, modification time in ns) and the
feature version; a cache written by another feature version is not reused: it is cleared with
a warning. A corrupted or foreign database file is set aside (renamed) and rebuilt.
Writes are committed after every batch, so an interrupted run keeps what it computed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from .features import EMBED_DIM, FEATURE_VERSION
from .views import N_VARIANTS, THUMB

log = logging.getLogger(__name__)

__all__ = ["FeatureCache", "default_cache_path", "fingerprint"]

SCHEMA = 1
_ROW = np.dtype([
    ("ok", np.bool_), ("low", np.bool_), ("w", np.int32), ("h", np.int32),
    ("fd", np.uint8, 16), ("pd", np.uint8, 16), ("hashes", np.uint8, N_VARIANTS * 8),
    ("emb", np.float32, EMBED_DIM), ("thumb", np.uint8, THUMB * THUMB),
])
#: Appended to a row's blob when the image has a de-rotated view (leakscan.rotation).
_ROT = np.dtype([("angle", np.float32), ("emb", np.float32, EMBED_DIM), ("thumb", np.uint8, THUMB * THUMB)])


def default_cache_path() -> Path:
    """``$LEAKSCAN_CACHE``, else ``$XDG_CACHE_HOME/leakscan/features.sqlite``, else ``~/.cache/...``."""
    env = os.environ.get("LEAKSCAN_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "leakscan" / "features.sqlite"


def file_key(path: str) -> tuple[str, int, int] | None:
    """(absolute path, size, mtime_ns) or None when the file cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path if os.path.isabs(path) else os.path.abspath(path)), int(st.st_size), int(st.st_mtime_ns)


class FeatureCache:
    """Get and put per-file features.

    Parameters
    ----------
    path : path-like
        The database file (created with its folder when missing).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.notes: list[str] = []
        self._db = self._open()

    # ---- opening, validation, recovery
    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"{self.path.parent}: cannot create the cache folder ({exc.strerror or exc})") from None
        try:
            db = self._connect()
        except sqlite3.DatabaseError as exc:
            db = self._set_aside(f"unreadable ({exc})")
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS features (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER, "
                   "row BLOB, reason TEXT, note TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS pairs (key TEXT PRIMARY KEY, created REAL, blob BLOB)")
        db.execute("CREATE TABLE IF NOT EXISTS model_emb (path TEXT, size INTEGER, mtime INTEGER, model TEXT, "
                   "emb BLOB, PRIMARY KEY (path, model))")
        meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
        if not meta:
            db.executemany("INSERT INTO meta VALUES (?, ?)",
                           [("schema", str(SCHEMA)), ("feature_version", FEATURE_VERSION)])
            db.commit()
        elif meta.get("schema") != str(SCHEMA) or meta.get("feature_version") != FEATURE_VERSION:
            msg = (f"feature cache {self.path} was written by another leakscan version "
                   f"(schema {meta.get('schema')}, features {meta.get('feature_version')}); rebuilding it")
            log.warning(msg)
            self.notes.append(msg)
            db.execute("DELETE FROM features")
            db.execute("DELETE FROM pairs")
            db.execute("DELETE FROM model_emb")
            db.execute("UPDATE meta SET v=? WHERE k='schema'", (str(SCHEMA),))
            db.execute("UPDATE meta SET v=? WHERE k='feature_version'", (FEATURE_VERSION,))
            db.commit()
        db.execute("SELECT count(*) FROM features").fetchone()
        return db

    def _set_aside(self, why: str) -> sqlite3.Connection:
        aside = self.path.with_name(f"{self.path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        msg = f"feature cache {self.path} is {why}; moved it to {aside.name} and started a new one"
        log.warning(msg)
        self.notes.append(msg)
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                os.replace(p, Path(str(aside) + suffix))
        return self._connect()

    def close(self) -> None:
        try:
            self._db.close()
        except sqlite3.Error:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- access
    def _current(self, keys: list, select: str, *params):
        """``(position, row)`` for each key whose stored (size, mtime) still match, 900 per query.

        ``select`` ends with ``WHERE`` or ``AND``; ``path IN (...)`` is appended, after ``params``.
        """
        want = [(k, key) for k, key in enumerate(keys) if key is not None]
        for s in range(0, len(want), 900):
            part = want[s:s + 900]
            q = ",".join("?" * len(part))
            rows = self._db.execute(f"{select} path IN ({q})", [*params] + [key[0] for _, key in part]).fetchall()
            got = {r[0]: r for r in rows}
            for k, key in part:
                r = got.get(key[0])
                if r is not None and r[1] == key[1] and r[2] == key[2]:
                    yield k, r

    def get(self, keys: list):
        """Cached entries for ``keys`` (list of file_key or None).

        Returns ``(positions, rows, failures, notes, rotated)``: the positions in ``keys`` whose
        features are cached with the structured ``rows`` for them (one array),
        ``{position: reason}`` / ``{position: note}`` for cached failures and notes, and
        ``{position: (angle, embedding, thumbnail)}`` for images with a de-rotated view.
        """
        pos, blobs, failures, notes, rotated = [], [], {}, {}, {}
        size = _ROW.itemsize
        try:
            for k, r in self._current(keys, "SELECT path, size, mtime, row, reason, note FROM features WHERE"):
                if r[3] is not None:
                    if len(r[3]) not in (size, size + _ROT.itemsize):
                        continue  # not a row of this schema: decode again
                    pos.append(k)
                    blobs.append(r[3][:size])
                    if len(r[3]) > size:
                        rot = np.frombuffer(r[3][size:], _ROT)[0]
                        rotated[k] = (float(rot["angle"]), rot["emb"].copy(),
                                      rot["thumb"].reshape(THUMB, THUMB).copy())
                else:
                    failures[k] = r[4]
                if r[5]:
                    notes[k] = r[5]
        except sqlite3.DatabaseError as exc:
            self._db = self._set_aside(f"unreadable ({exc})")
            return np.zeros(0, np.int64), np.zeros(0, _ROW), {}, {}, {}
        rows = np.frombuffer(b"".join(blobs), _ROW) if blobs else np.zeros(0, _ROW)
        return np.asarray(pos, np.int64), rows, failures, notes, rotated

    def put(self, keys: list, feats, start: int = 0) -> None:
        """Store rows ``start .. start+len(keys)`` of ``feats`` under ``keys`` (None keys are skipped)."""
        reasons = dict(feats.failures)
        notes = dict(feats.notes)
        rot_of = {int(r): k for k, r in enumerate(feats.rot_rows)}
        recs = []
        for k, key in enumerate(keys):
            if key is None:
                continue
            r = start + k
            blob = None
            if feats.ok[r]:
                row = np.zeros(1, _ROW)
                row["ok"], row["low"] = True, feats.low_info[r]
                row["w"], row["h"] = feats.sizes[r]
                row["fd"], row["pd"] = feats.file_digest[r], feats.pixel_digest[r]
                row["hashes"] = feats.hashes[r].reshape(-1)
                row["emb"] = feats.embedding[r]
                row["thumb"] = feats.thumb[r].reshape(-1)
                blob = row.tobytes()
                if r in rot_of:
                    q = rot_of[r]
                    rot = np.zeros(1, _ROT)
                    rot["angle"], rot["emb"] = feats.rot_angle[q], feats.rot_embedding[q]
                    rot["thumb"] = feats.rot_thumb[q].reshape(-1)
                    blob += rot.tobytes()
            elif r not in reasons:
                continue
            recs.append((key[0], key[1], key[2], blob, reasons.get(r), notes.get(r)))
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?, ?)", recs)
        except sqlite3.DatabaseError as exc:
            log.warning("could not write to the feature cache %s: %s", self.path, exc)

    # ---- learned (ONNX model) embeddings, keyed by file and model digest
    def get_model(self, keys: list, model: str):
        """``{position: embedding}`` of the cached model embeddings for ``keys``."""
        out = {}
        try:
            for k, r in self._current(keys, "SELECT path, size, mtime, emb FROM model_emb WHERE model=? AND", model):
                out[k] = np.frombuffer(r[3], np.float32)
        except sqlite3.DatabaseError as exc:
            log.warning("could not read model embeddings from the cache %s: %s", self.path, exc)
            return {}
        return out

    def put_model(self, keys: list, model: str, emb: np.ndarray, ok: np.ndarray) -> None:
        recs = [(key[0], key[1], key[2], model, np.ascontiguousarray(emb[k], np.float32).tobytes())
                for k, key in enumerate(keys) if key is not None and ok[k]]
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO model_emb VALUES (?, ?, ?, ?, ?)", recs)
        except sqlite3.DatabaseError as exc:
            log.warning("could not write model embeddings to the cache %s: %s", self.path, exc)

    # ---- search results, keyed by a fingerprint of all features and the settings
    KEEP_PAIRS = 8

    def get_pairs(self, key: str):
        """The PairTable stored under ``key``, or None."""
        from .pairs import PairTable  # noqa: PLC0415

        try:
            row = self._db.execute("SELECT blob FROM pairs WHERE key=?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            log.warning("could not read search results from the cache %s: %s", self.path, exc)
            return None
        if row is None:
            return None
        try:
            with np.load(io.BytesIO(row[0]), allow_pickle=False) as z:
                return PairTable(**{k: z[k] for k in z.files})
        except (ValueError, OSError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable cached search results: %s", exc)
            return None

    def put_pairs(self, key: str, pairs) -> None:
        buf = io.BytesIO()
        np.savez(buf, **{f.name: getattr(pairs, f.name) for f in dataclasses.fields(pairs)})
        try:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO pairs VALUES (?, ?, ?)", (key, time.time(), buf.getvalue()))
                self._db.execute("DELETE FROM pairs WHERE key NOT IN "
                                 "(SELECT key FROM pairs ORDER BY created DESC LIMIT ?)", (self.KEEP_PAIRS,))
        except sqlite3.DatabaseError as exc:
            log.warning("could not write search results to the cache %s: %s", self.path, exc)


def fingerprint(features, settings, splits=None) -> str:
    """Digest of every feature row (in order), the detection settings and, if given, the splits."""
    from ._version import __version__  # noqa: PLC0415
    from .pairs import SEARCH_VERSION  # noqa: PLC0415

    h = hashlib.blake2b(digest_size=20)
    h.update(f"{__version__}|{SEARCH_VERSION}".encode())
    if splits is not None:
        h.update("\x1f".join(map(str, splits)).encode())
    h.update(f"{FEATURE_VERSION}|{SCHEMA}|{len(features)}|{sorted(settings.to_dict().items())}".encode())
    for arr in (features.ok, features.pixel_digest, features.hashes, features.embedding, features.low_info,
                features.file_digest, features.rot_rows, features.rot_embedding):
        h.update(np.ascontiguousarray(arr).tobytes())
    if features.model_embedding is not None:
        h.update(b"model")
        h.update(np.ascontiguousarray(features.model_embedding).tobytes())
    return h.hexdigest()
