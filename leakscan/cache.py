"""Feature cache on an embedded SQLite database, so a re-run decodes only what changed.

A leaf: it imports nothing else from leakscan. Rows go in and come out as bytes and numpy
arrays; what they mean (:meth:`leakscan.features.Features.to_blobs`) and when to fetch or
store them (:func:`leakscan.audit.audit`) is decided by its callers.

Entries are keyed by file identity (absolute path, size, modification time in ns) and the
feature version; a cache written by another feature version or schema is not reused: its
tables are made anew (:data:`TABLES`), with a warning. Which failures are worth storing (only
those that are a property of the bytes, :func:`leakscan.decode.is_cacheable`) is the caller's
choice.

leakscan touches only its own file: a folder, a non-SQLite file or another program's
database is refused (:class:`NotACache`, which the caller reports as a configuration error).
Its own database (application id ``LKSC``, or its tables) is set aside (renamed) and rebuilt
only when it fails an integrity check; when it cannot be written (read-only file or file
system, full disk) it is read without writing, with a warning (``read_only``). Writes are
committed after every batch, so an interrupted run keeps what it computed. Runs at the same
time share one file (WAL mode; a new file's tables are made in one transaction).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["FeatureCache", "CachedRows", "NotACache", "default_cache_path", "file_key"]

#: The layout of the database's tables (the layout of a stored row is the feature version's).
SCHEMA = 1
#: The tables, as this schema lays them out.
TABLES = {
    "meta": "CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT)",
    "features": "CREATE TABLE features (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER, row BLOB, "
                "reason TEXT, note TEXT)",
    "pairs": "CREATE TABLE pairs (key TEXT PRIMARY KEY, created REAL, blob BLOB)",
    "model_emb": "CREATE TABLE model_emb (path TEXT, size INTEGER, mtime INTEGER, model TEXT, emb BLOB, "
                 "PRIMARY KEY (path, model))",
}
SQLITE_MAGIC = b"SQLite format 3\x00"
#: ``PRAGMA application_id`` of leakscan's cache ("LKSC"): identifies our own file even when broken.
APPLICATION_ID = 0x4C4B5343


#: ``os.access`` asks as ``open`` would (the effective user and its rights), where it can.
_EFFECTIVE_ACCESS = os.access in os.supports_effective_ids


class NotACache(Exception):
    """The path names something that is not leakscan's cache (a folder, another file or database)."""


@dataclass(frozen=True)
class CachedRows:
    """What :meth:`FeatureCache.get` found for a list of keys, by position in that list."""

    positions: list   # positions whose features are cached
    blobs: list       # their stored bytes, in the same order
    failures: dict    # {position: reason} of files that could not be decoded
    notes: dict       # {position: note}


def default_cache_path() -> Path:
    """``$LEAKSCAN_CACHE``, else ``$XDG_CACHE_HOME/leakscan/features.sqlite``, else ``~/.cache/...``.

    ``$LEAKSCAN_CACHE`` is returned as given: the caller reads a leading ``~`` as the home folder
    and a relative path from the current folder (:func:`leakscan.audit.audit`). A relative
    ``$XDG_CACHE_HOME`` is ignored, as the XDG specification says (it would put a cache in
    whatever folder the run starts from)."""
    env = os.environ.get("LEAKSCAN_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "leakscan" / "features.sqlite"


def file_key(path: str) -> tuple[str, int, int] | None:
    """(absolute path, size, mtime_ns) or None when the file cannot be stat'ed or read.

    A file made unreadable (chmod) keeps its size and modification time: its key is None, so it
    is decoded, and skipped, as on a first run, never audited from what was stored. A name that
    is not UTF-8 (its bytes kept by Python as surrogates) is stored with those bytes written as
    ``\\xNN``: SQLite text must be UTF-8."""
    try:
        st = os.stat(path)
        if not os.access(path, os.R_OK, effective_ids=_EFFECTIVE_ACCESS):
            return None
    except (OSError, ValueError):  # missing, unreadable folder, NUL in the name
        return None
    full = path if os.path.isabs(path) else os.path.abspath(path)
    # the text output.utf8_text makes (the cache imports nothing of leakscan's)
    return os.fsencode(full).decode("utf-8", "backslashreplace"), int(st.st_size), int(st.st_mtime_ns)


def _write_ahead_log(db: sqlite3.Connection) -> None:
    """Put the database in WAL mode (runs read while one writes). SQLite answers "locked" at once,
    without waiting, when another run switches the same new file at that moment: try again."""
    for attempt in range(200):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.05)


class FeatureCache:
    """Get and put per-file features.

    Parameters
    ----------
    path : path-like
        The database file (created with its folder when missing).
    version : str
        The version of what is stored; a database written with another version is cleared.
    warn : callable, optional
        Logs each of :attr:`notes` as it happens (``log.warning`` when not given).
    """

    def __init__(self, path, *, version: str, warn=None):
        self.path = Path(path)
        self.version = str(version)
        self.notes: list[str] = []
        self._warn = warn or log.warning
        self.read_only = False
        self._db = self._open()

    # ---- opening, validation, recovery
    def _open(self) -> sqlite3.Connection:
        self._check_is_ours()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"{self.path.parent}: cannot create the cache folder ({exc.strerror or exc})") from None
        try:
            db = self._connect()
        except sqlite3.OperationalError as exc:
            # read-only file or file system, full disk, locked: the database itself may be
            # healthy, so it is never set aside for this; use it without writing
            db = self._open_readonly(exc)
        except sqlite3.DatabaseError as exc:
            if not self._identified():
                raise NotACache(f"{self.path}: not a leakscan feature cache ({exc}); leakscan leaves it "
                                "alone: choose another --cache or remove the file") from None
            db = self._set_aside(f"unreadable ({exc})")
        return db

    def _check_is_ours(self) -> None:
        """Refuse a path that is not a file leakscan may use as its cache (folders, other files)."""
        p = self.path
        try:
            os.stat(p)
        except FileNotFoundError:  # none yet, or a link to a file not made yet: SQLite makes it where it points
            return
        except OSError as exc:
            if exc.errno != errno.ELOOP:  # a parent that is a file or cannot be searched: opening it says so
                return
            # a symlink loop: refused below
        if not p.is_file():
            raise NotACache(f"{p}: is not a file (a folder or a special file); --cache names the database "
                            "file leakscan keeps, such as ~/.cache/leakscan/features.sqlite")
        with open(p, "rb") as fh:
            head = fh.read(100)
        if head and not head.startswith(SQLITE_MAGIC):
            raise NotACache(f"{p}: not a leakscan feature cache (not an SQLite database); leakscan leaves it "
                            "alone: choose another --cache or remove the file")

    def _identified(self) -> bool:
        """The file is leakscan's own cache: SQLite with our application id, or our tables."""
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(100)
        except OSError:
            return False
        if not head.startswith(SQLITE_MAGIC):
            return False
        if len(head) >= 72 and int.from_bytes(head[68:72], "big") == APPLICATION_ID:
            return True
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            finally:
                con.close()
        except sqlite3.Error:
            return False
        return {"meta", "features"} <= names

    def _open_readonly(self, why) -> sqlite3.Connection:
        """Open the existing database without writing to it; raise OSError when that fails too."""
        if not self.path.is_file():
            raise OSError(f"cannot create it ({why})")
        for mode in ("mode=ro", "immutable=1"):
            try:
                db = sqlite3.connect(f"file:{self.path}?{mode}", uri=True, timeout=30)
                meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
                if self._another_version(meta):
                    db.close()
                    raise OSError(f"cannot write to it ({why}) and it holds another leakscan version's features")
                db.execute("SELECT count(*) FROM features").fetchone()
            except sqlite3.Error:
                continue
            self._read_only(f"cannot be written ({why})")
            return db
        raise OSError(f"cannot open it ({why})")

    def _another_version(self, meta: dict) -> bool:
        """``meta`` (the table's ``{k: v}``) is not this schema's and feature version's."""
        return meta.get("schema") != str(SCHEMA) or meta.get("feature_version") != self.version

    def _note(self, msg: str) -> None:
        """A warning for the run's list (:attr:`notes`), logged as it happens."""
        self._warn(msg)
        self.notes.append(msg)

    def _read_only(self, why: str) -> None:
        if self.read_only:
            return
        self.read_only = True
        msg = f"feature cache {self.path} {why}; reading it but not storing new results"
        self._note(msg)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            # the tables are looked at and made in one write transaction: runs that open a new
            # cache at the same moment take turns here, so none sees another's half-made tables
            db.execute("BEGIN IMMEDIATE")
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if names and not {"meta", "features"} <= names:
                raise NotACache(f"{self.path}: an SQLite database of another program (tables "
                                f"{', '.join(sorted(names)[:5])}); leakscan leaves it alone: choose another --cache")
            if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            meta = dict(db.execute("SELECT k, v FROM meta").fetchall()) if "meta" in names else {}
            rebuilt = bool(meta) and self._another_version(meta)
            if rebuilt:  # made anew, as this version lays the tables out (another schema's may differ)
                for name in TABLES:
                    db.execute(f"DROP TABLE IF EXISTS {name}")
            for name, ddl in TABLES.items():
                if rebuilt or name not in names:
                    db.execute(ddl)
            if not meta or rebuilt:
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                               [("schema", str(SCHEMA)), ("feature_version", self.version)])
            db.commit()
            if rebuilt:  # said once it is done: a cache that cannot be written is not rebuilt (the caller warns)
                msg = (f"feature cache {self.path} was written by another leakscan version "
                       f"(schema {meta.get('schema')}, features {meta.get('feature_version')}); rebuilding it")
                self._note(msg)
            _write_ahead_log(db)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("SELECT count(*) FROM features").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _set_aside(self, why: str) -> sqlite3.Connection:
        """Rename leakscan's own broken database (checked by the caller) and start a new one."""
        real = Path(os.path.realpath(self.path))  # a symlinked cache: the file it points at, kept linked
        aside = real.with_name(f"{real.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        msg = f"feature cache {self.path} is {why}; moved it to {aside.name} and started a new one"
        self._note(msg)
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(real) + suffix)
            if p.is_file():
                os.replace(p, Path(str(aside) + suffix))
        return self._connect()

    def _read_error(self, exc: sqlite3.DatabaseError, what: str) -> None:
        """A failed read: set the database aside only when an integrity check fails."""
        if not isinstance(exc, sqlite3.OperationalError):
            try:
                bad = self._db.execute("PRAGMA quick_check").fetchone()[0] != "ok"
            except sqlite3.DatabaseError:
                bad = True
            if bad and self._identified():
                self._db.close()
                self._db = self._set_aside(f"unreadable ({exc})")
                return
        log.warning("could not read %s from the cache %s: %s", what, self.path, exc)

    def _write_error(self, exc: sqlite3.DatabaseError, what: str) -> None:
        """A failed write (full disk, read-only file): stop writing, warn once, never set aside."""
        self._read_only(f"could not store {what} ({exc})")

    def _store(self, what: str, write) -> None:
        """Run ``write(db)`` in one write transaction, which holds the lock from its start.

        The file must still be of this version: a run of another leakscan version that opened it
        meanwhile has made it anew for its features, which this run's rows would pass for; this
        run then stores nothing more."""
        if self.read_only:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                meta = dict(self._db.execute("SELECT k, v FROM meta").fetchall())
                if self._another_version(meta):
                    self._db.rollback()
                    self._read_only(f"was made anew by a run of another leakscan version (features "
                                    f"{meta.get('feature_version')}) while this one went on")
                    return
                write(self._db)
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
        except sqlite3.DatabaseError as exc:
            self._write_error(exc, what)

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
            self._read_error(exc, "features")
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
        if recs:
            self._store("features", lambda db: db.executemany("INSERT OR REPLACE INTO features VALUES "
                                                              "(?, ?, ?, ?, ?, ?)", recs))

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
        if recs:
            self._store("model embeddings", lambda db: db.executemany("INSERT OR REPLACE INTO model_emb VALUES "
                                                                      "(?, ?, ?, ?, ?)", recs))

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
        if self.read_only:
            return
        buf = io.BytesIO()
        np.savez(buf, **arrays)

        def write(db):
            db.execute("INSERT OR REPLACE INTO pairs VALUES (?, ?, ?)", (key, time.time(), buf.getvalue()))
            db.execute("DELETE FROM pairs WHERE key NOT IN (SELECT key FROM pairs ORDER BY created DESC LIMIT ?)",
                       (self.KEEP_PAIRS,))
        self._store("search results", write)


    # ---- any other dict of arrays derived from the search (the pair decision), same table
    def get_arrays(self, key: str) -> dict | None:
        """The dict of arrays stored under ``key`` by :meth:`put_arrays`, or None."""
        return self.get_pairs("arrays:" + key)

    def put_arrays(self, key: str, arrays: dict) -> None:
        """Store a dict of numpy arrays under ``key`` (the newest few are kept)."""
        self.put_pairs("arrays:" + key, arrays)
