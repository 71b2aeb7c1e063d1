"""Writing safely next to the user's files: where leakscan may write, all-or-nothing folders,
atomic file placement, plain-text terminal output and CSV cells safe for spreadsheets.

Every file leakscan writes is written by :func:`leakscan.output.atomic_write` (the one file
writer); this module decides where, and swaps whole result folders in one step
(:func:`write_folder`). Worker processes that die with their parent are
:func:`leakscan.parallel.die_with_parent`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import filecmp
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .errors import OutputError
from .output import TMP_MARK, _umask, atomic_write, clean_leftovers, tmp_prefix

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

__all__ = ["dataset_folders", "check_target", "check_writable", "nearest_existing", "refuse_earlier", "one_writer",
           "write_folder", "place_file", "plain", "csv_cell"]

# --------------------------------------------------------------------------- where we may write

def _real(p) -> str:
    return os.path.realpath(os.fspath(p))


def _common(folders) -> str | None:
    try:
        return os.path.commonpath(list(folders)) if folders else None
    except ValueError:  # different drives
        return None


def dataset_folders(manifest) -> list[str]:
    """The folders leakscan never writes into (nor replaces): where the audited images are.

    * the folder of every audited image file (rows that are not files, ``train/17`` of a
      dataset or ``data.parquet[17]`` of a bytes column, count only by the files they reference);
    * the common folder of each split's images, and of all images;
    * for a dataset given as a folder, that folder.

    The common folder of all images is not protected when it holds the CSV manifest itself
    (``project/splits.csv`` with ``project/images/``: ``project/`` is a project folder, and
    ``--out project/reports`` is fine); nor is ``/`` or a home folder ever protected as a
    common folder. Paths are resolved (symlinked folders count where they point).
    """
    if manifest.images is not None:
        return []
    src = manifest.source
    if src is not None and not src.files_are_paths:
        # rows named split/index or table[i] are not files: only the files some rows reference count
        rows = [r for r, it in enumerate(src.items.tolist()) if it[0] == "file"]
        paths = [os.path.abspath(src.items[r][1]) for r in rows]
        row_splits = manifest.splits[rows].tolist() if rows else []
    else:
        paths, row_splits = manifest.resolved_paths(), manifest.splits.tolist()
    per_split: dict[str, set] = {}
    for p, s in zip(paths, row_splits):
        per_split.setdefault(s, set()).add(os.path.dirname(p))
    real = {d: _real(d) for ds in per_split.values() for d in ds}
    out = set(real.values())
    never = {os.path.abspath(os.sep), _real(os.path.expanduser("~"))}
    commons = [_common({real[d] for d in ds}) for ds in per_split.values()]
    overall = _common(set(out))
    root = _real(manifest.root) if manifest.root is not None else None
    kind = getattr(manifest, "kind", "")
    if overall is not None and not (kind == "csv" and root is not None and _within(root, overall)):
        commons.append(overall)
    out.update(c for c in commons if c and c not in never)
    if kind == "folder" and root is not None:
        out.add(root)
    return sorted(out)


def _within(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


def check_target(target, folders, *, what: str = "--out", contains: bool = True) -> None:
    """Raise OutputError when ``target`` is inside (or, with ``contains``, holds) a dataset folder."""
    t = _real(target)
    for f in folders:
        if _within(t, f):
            where = "is the dataset folder" if t == f else "is inside the dataset folder"
            raise OutputError(f"{target}: {what} {where} {f} (it holds audited images); "
                              "leakscan never writes there: choose a folder outside it")
        if contains and _within(f, t):
            raise OutputError(f"{target}: {what} contains the dataset folder {f} (it holds audited images); "
                              "leakscan never writes there: choose another folder")


def nearest_existing(path) -> Path:
    """``path`` made absolute, or where it does not exist yet, the nearest folder above it that
    does: where it would be made (its file system, its permissions)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(folder, *, what: str) -> None:
    """Raise OutputError when this user cannot write into ``folder`` or, where it does not exist
    yet, make it: the nearest existing folder above it is not writable (read-only file system
    included). Checked before the long part, so that it is not met after it."""
    target, p = Path(os.path.abspath(folder)), nearest_existing(folder)
    if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
        said = f"{what} is not writable" if p == target else f"{what} cannot be made: {p} is not writable"
        raise OutputError(f"{folder}: {said}; choose another folder")


# --------------------------------------------------------------------------- all-or-nothing folders

_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    AT_FDCWD = -100
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


def refuse_earlier(out: Path, names) -> None:
    """OutputError when ``out`` holds any of ``names``: results that only ``--force`` replaces."""
    existing = [n for n in names if (Path(out) / n).exists()]
    if existing:
        raise OutputError(f"{out}: already holds {', '.join(existing)}; pass --force to overwrite or "
                          "choose another --out")


@contextlib.contextmanager
def one_writer(folder: Path):
    """Hold an exclusive lock (flock) on ``folder`` while a result set is put in place there, so
    that two runs writing the same ``--out`` take turns (where locks are unsupported: no lock)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        fd = None
    try:
        if fd is not None and fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                pass
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _listing(out: Path) -> set:
    """The names in ``out`` (none when it is not a folder), less our temporary ones."""
    try:
        existing = set(os.listdir(out)) if out.is_dir() else set()
    except OSError as exc:
        raise OutputError(f"{out}: cannot list the output folder ({exc.strerror or exc})") from None
    return {n for n in existing if TMP_MARK not in n}


def write_folder(out: Path, files: dict, *, owned: set, order=None, refuse=()) -> list[Path]:
    """Write ``files`` ({name: text or callable(path)}) into ``out`` as one set.

    Everything is written into a temporary folder beside ``out`` first; then, when ``out``
    holds nothing but files named in ``owned`` (earlier results), the two folders are swapped
    in one step (the old set is deleted afterwards), so a kill leaves either the old complete
    set or the new one. When ``out`` also holds other files (the user's, never touched), the
    new files are moved in one by one with ``summary.json`` (the last of ``order``) removed first
    and put last: a set without it is incomplete. Runs writing the same ``out`` put their sets
    in place one at a time; when ``out`` then holds any of ``refuse`` (the names the caller
    checked before, :func:`refuse_earlier`: another run put its set there meanwhile), that set is
    kept and this one is refused (OutputError). Raises OutputError on a full disk or another write
    failure, leaving ``out`` as it was.
    """
    out = Path(out)
    if out.is_symlink():  # replace the folder it points at, keep the link
        out = Path(os.path.realpath(out))
    parent = out.absolute().parent
    clean_leftovers(parent, tmp_prefix(out.name))
    clean_leftovers(out, ".") if out.is_dir() else None
    names = list(order or files)
    try:
        inside = _within(_real(os.getcwd()), _real(out))
    except FileNotFoundError:  # the working folder was deleted: it is inside nothing
        inside = False
    swap = _listing(out) <= set(owned) and not inside
    where = parent if swap else out
    try:
        stage = Path(tempfile.mkdtemp(prefix=tmp_prefix(out.name) if swap else ".", suffix=TMP_MARK, dir=where))
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the results ({exc.strerror or exc}); nothing was changed") from None
    try:
        try:
            mode = (os.stat(out).st_mode & 0o7777) if out.is_dir() else (0o777 & ~_umask())
            os.chmod(stage, mode)
            for name in names:
                atomic_write(stage / name, files[name])
            _fsync_dir(stage)
        except OutputError as exc:
            raise OutputError(f"{out}: cannot write the results ({exc}); nothing was changed") from None
        except OSError as exc:
            raise OutputError(f"{out}: cannot write the results ({exc.strerror or exc}); "
                              "nothing was changed") from None
        with one_writer(parent):  # what another run put there meanwhile is seen here
            refuse_earlier(out, refuse)
            if swap and _listing(out) <= set(owned):
                _swap(stage, out)
            else:  # from inside out, or from beside it (files of the user's appeared meanwhile)
                _move_in(stage, out, names)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [out / n for n in names]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _swap(stage: Path, out: Path) -> None:
    """Put the folder ``stage`` at ``out``; the old ``out`` ends at ``stage`` (deleted by the caller)."""
    try:
        if out.is_dir() and _exchange(stage, out):
            return
        if out.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f"{tmp_prefix(out.name)}old-", suffix=TMP_MARK,
                                        dir=out.absolute().parent))
            os.replace(out, old / "old")
            try:
                os.rename(stage, out)
            except OSError:
                os.replace(old / "old", out)  # put the old set back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(stage, out)
    except OSError as exc:
        raise OutputError(f"{out}: cannot replace the output folder ({exc.strerror or exc}); "
                          "nothing was changed") from None


def _move_in(stage: Path, out: Path, names: list) -> None:
    last = names[-1]
    try:
        try:
            os.unlink(out / last)  # from now on the set is marked incomplete until it is back
        except FileNotFoundError:
            pass
        for name in names:
            os.replace(stage / name, out / name)
    except OSError as exc:
        raise OutputError(f"{out}: cannot move the results in ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------- placing one file

def _same_placement(src: Path, target: Path, link: str) -> bool:
    """Does ``target`` already hold ``src`` as ``link`` would have placed it?"""
    try:
        if link == "symlink":
            return target.is_symlink() and os.readlink(target) == os.fspath(src.resolve())
        if target.is_symlink() or not target.is_file():
            return False
        if link == "hardlink":
            return os.path.samefile(src, target)
        return os.path.getsize(src) == os.path.getsize(target) and filecmp.cmp(src, target, shallow=False)
    except OSError:
        return False


def place_file(src: Path, target: Path, link: str) -> bool:
    """Place ``src`` at ``target`` atomically (never a partial file under ``target``'s name).

    Returns False (and does nothing) when ``target`` exists and is not already ``src``;
    True when ``src`` is at ``target`` afterwards (placed now or by an earlier run).
    """
    if os.path.lexists(target):
        return _same_placement(src, target, link)
    # the temporary name keeps at most 100 bytes of the target's: a long name plus the
    # marks would pass the file system's limit on a name (255 bytes)
    tmp = target.with_name(f"{tmp_prefix(target.name)}{os.getpid()}{TMP_MARK}")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    if link == "hardlink":
        os.link(os.path.realpath(src), tmp)  # the image a symlink names: os.link would link the symlink itself
    elif link == "symlink":
        os.symlink(src.resolve(), tmp)
    else:
        shutil.copy2(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    try:
        if link == "symlink":
            os.rename(tmp, target)  # cannot hard-link a symlink portably; checked absent above
        else:
            try:
                os.link(tmp, target)  # fails if a file appeared meanwhile: nothing is overwritten
            except OSError as exc:
                if exc.errno in (errno.EEXIST,):
                    return _same_placement(src, target, link)
                os.rename(tmp, target)  # no hard links on this file system
                return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return True


# --------------------------------------------------------------------------- user strings

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udcff]")


def _escaped(c: str) -> str:
    n = ord(c)
    if 0xDC80 <= n <= 0xDCFF:  # a byte of a name that is not UTF-8: \xNN, as the CSVs write it
        return "\\x%02x" % (n - 0xDC00)
    return "\\x%02x" % n if n < 256 else "\\u%04x" % n


def plain(s) -> str:
    """A user string (path, label, reason) safe for a terminal: control characters escaped, and
    the odd bytes of a name that is not UTF-8 written ``\\xNN`` as the CSVs write them.

    ``"a\\x1b[31mb"`` -> ``"a\\\\x1b[31mb"``. Rich markup is not interpreted by the callers (they
    print these as :class:`rich.text.Text` or with ``markup=False``).
    """
    return _CONTROL.sub(lambda m: _escaped(m.group()), str(s))


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(v, *, path: bool = False):
    """A text cell safe to open in a spreadsheet (no formula): cells starting = + - @ tab CR get a prefix.

    Relative paths get ``./`` (the same file for every reader: ``=x.png`` -> ``./=x.png``);
    other text gets ``'`` (OWASP's advice), which :func:`leakscan.discovery.discover` removes
    when it reads a CSV, so leakscan reads back what it wrote. Numbers are left alone.
    """
    if isinstance(v, str) and v.startswith(_FORMULA):
        return "./" + v if path else "'" + v
    return v
