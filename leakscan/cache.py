"""Feature cache on an embedded SQLite database, so a re-run decodes only what changed.

A leaf: it imports nothing else from leakscan. Rows go in and come out as bytes and numpy
arrays; what they mean (:meth:`leakscan.features.Features.to_blobs`) and when to fetch or
store them (:func:`leakscan.audit.audit`) is decided by its callers.

Entries are keyed by file identity (absolute path, size, modification time in ns) and the
feature version; a cache written by another feature version is not reused: it is cleared with
a warning. A corrupted or foreign database file is set aside (renamed) and rebuilt.
Writes are committed after every batch, so an interrupted run keeps what it computed.
"""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["FeatureCache", "CachedRows", "default_cache_path", "file_key"]

#: The layout of the database's tables (the layout of a stored row is the feature version's).
SCHEMA = 1


@dataclass(frozen=True)
class CachedRows:
    """What :meth:`FeatureCache.get` found for a list of keys, by position in that list."""

    positions: list   # positions whose features are cached
    blobs: list       # their stored bytes, in the same order
    failures: dict    # {position: reason} of files that could not be decoded
    notes: dict       # {position: note}


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
    version : str
        The version of what is stored; a database written with another version is cleared.
    """

    def __init__(self, path, *, version: str):
        self.path = Path(path)
        self.version = str(version)
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
                           [("schema", str(SCHEMA)), ("feature_version", self.version)])
            db.commit()
        elif meta.get("schema") != str(SCHEMA) or meta.get("feature_version") != self.version:
            msg = (f"feature cache {self.path} was written by another leakscan version "
                   f"(schema {meta.get('schema')}, features {meta.get('feature_version')}); rebuilding it")
            log.warning(msg)
            self.notes.append(msg)
            db.execute("DELETE FROM features")
            db.execute("DELETE FROM pairs")
            db.execute("DELETE FROM model_emb")
            db.execute("UPDATE meta SET v=? WHERE k='schema'", (str(SCHEMA),))
            db.execute("UPDATE meta SET v=? WHERE k='feature_version'", (self.version,))
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
        for start in range(0, len(want), 900):
            part = want[start:start + 900]
            q = ",".join("?" * len(part))
            rows = self._db.execute(f"{select} path IN ({q})", [*params] + [key[0] for _, key in part]).fetchall()
            got = {r[0]: r for r in rows}
            for k, key in part:
                r = got.get(key[0])
                if r is not None and r[1] == key[1] and r[2] == key[2]:
                    yield k, r

    def get(self, keys: list) -> CachedRows:
        """Cached entries for ``keys`` (list of :func:`file_key` or None), by position in ``keys``."""
        out = CachedRows([], [], {}, {})
        try:
            for k, r in self._current(keys, "SELECT path, size, mtime, row, reason, note FROM features WHERE"):
                if r[3] is not None:
                    out.positions.append(k)
                    out.blobs.append(bytes(r[3]))
                else:
                    out.failures[k] = r[4]
                if r[5]:
                    out.notes[k] = r[5]
        except sqlite3.DatabaseError as exc:
            self._db = self._set_aside(f"unreadable ({exc})")
            return CachedRows([], [], {}, {})
        return out

    def put(self, keys: list, blobs: list, failures: dict, notes: dict) -> None:
        """Store ``blobs[k]`` (bytes, or None for a file that failed with ``failures[k]``) under ``keys[k]``.

        None keys are skipped, and so are positions with neither a blob nor a failure.
        """
        recs = []
        for k, key in enumerate(keys):
            if key is None or (blobs[k] is None and k not in failures):
                continue
            recs.append((key[0], key[1], key[2], blobs[k], failures.get(k), notes.get(k)))
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

    def get_pairs(self, key: str) -> dict | None:
        """The arrays stored under ``key`` by :meth:`put_pairs` (``{name: array}``), or None."""
        try:
            row = self._db.execute("SELECT blob FROM pairs WHERE key=?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            log.warning("could not read search results from the cache %s: %s", self.path, exc)
            return None
        if row is None:
            return None
        try:
            with np.load(io.BytesIO(row[0]), allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable cached search results: %s", exc)
            return None

    def put_pairs(self, key: str, arrays: dict) -> None:
        """Store ``{name: array}`` (a search result) under ``key``; only the latest few are kept."""
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        try:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO pairs VALUES (?, ?, ?)", (key, time.time(), buf.getvalue()))
                self._db.execute("DELETE FROM pairs WHERE key NOT IN "
                                 "(SELECT key FROM pairs ORDER BY created DESC LIMIT ?)", (self.KEEP_PAIRS,))
        except sqlite3.DatabaseError as exc:
            log.warning("could not write search results to the cache %s: %s", self.path, exc)

