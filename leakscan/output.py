"""Writing result files: one way to write atomically, one way to fail (:class:`OutputError`).

Every file leakscan writes goes through :func:`atomic_write`: a temporary file in the same
folder, flushed to disk, then renamed over the target, so an interrupted run never leaves a
half-written file behind. Any failure to write becomes an :class:`~leakscan.errors.OutputError`
naming the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Union

from .errors import OutputError

__all__ = ["atomic_write", "inside", "make_folder", "missing_folders", "remove_empty_folders", "utf8_text",
           "json_text", "name_start", "tmp_prefix", "clean_leftovers", "TMP_MARK", "shown_bar", "tier_rounded",
           "CONFIDENCE_DIGITS", "shown_fraction", "FRACTION_DIGITS", "user_path"]

Content = Union[str, bytes, Callable[[str], None]]

#: Marks every temporary name leakscan makes (hidden files and folders), so a re-run can
#: recognise and remove what a killed run left.
TMP_MARK = ".leakscan-tmp"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def utf8_text(text: str) -> str:
    r"""``text`` that encodes as UTF-8: the bytes of a file name that are not UTF-8 (which Python
    keeps as surrogates, U+DC80-U+DCFF) are written ``\xNN``.

    >>> utf8_text("caf\udce9.jpg")
    'caf\\xe9.jpg'
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_ODD_BYTE = re.compile("[\udc80-\udcff]")


def json_text(obj, **dumps) -> str:
    r"""``json.dumps(obj, ensure_ascii=False, **dumps)`` whose strings say the odd bytes of a file
    name that is not UTF-8 as :func:`utf8_text` writes them in the CSVs (``\xNN``, a backslash
    then ``xNN``): valid JSON that encodes as UTF-8.

    >>> json_text(["caf\udce9.jpg"])
    '["caf\\\\xe9.jpg"]'
    """
    text = json.dumps(obj, ensure_ascii=False, **dumps)
    return _ODD_BYTE.sub(lambda m: f"\\\\x{ord(m.group()) - 0xDC00:02x}", text)


def name_start(name: str, limit: int = 100) -> str:
    """The start of ``name``, at most ``limit`` bytes as the file system stores it: what a temporary
    name beside the file keeps of it, so that a name at the file system's limit (255 bytes) plus
    the marks is still a valid name.

    >>> name_start("a" * 300) == "a" * 100, name_start("é" * 60) == "é" * 50
    (True, True)
    """
    while len(os.fsencode(name)) > limit:
        name = name[:-1]
    return name


def tmp_prefix(name: str) -> str:
    """The start of the temporary names made beside ``name`` (:func:`name_start`)."""
    return f".{name_start(name)}."


def clean_leftovers(folder: Path, prefix: str, min_age: float = 3600.0) -> None:
    """Remove temporary folders/files of ours (``prefix``...``TMP_MARK``) a killed run left behind."""
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        if not (e.name.startswith(prefix) and TMP_MARK in e.name):
            continue
        try:
            if now - e.stat(follow_symlinks=False).st_mtime < min_age:
                continue  # may belong to a run still going
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path, ignore_errors=True)
            else:
                os.unlink(e.path)
        except OSError:
            pass


def atomic_write(path, content: Content) -> Path:
    """Write ``content`` to ``path`` via a temporary file and an atomic rename; returns the path.

    The temporary file is hidden and marked (:func:`tmp_prefix`, :data:`TMP_MARK`); one that a
    killed write of the same file left, an hour old or more, is removed first.

    ``content`` is text (UTF-8, newlines as given), bytes, or a function that writes the file
    whose name it is given (for writers that want a path, such as pyarrow).

    Raises
    ------
    OutputError
        The file cannot be written (the message names it and says why).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = atomic_write(pathlib.Path(tempfile.mkdtemp()) / "a.txt", "hello\\n")
    >>> p.read_text()
    'hello\\n'
    """
    path = Path(path)
    tmp = None
    clean_leftovers(path.parent, tmp_prefix(path.name))  # what a killed write of this file left
    try:
        fd, tmp = tempfile.mkstemp(prefix=tmp_prefix(path.name), suffix=TMP_MARK, dir=path.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            data = utf8_text(content).encode("utf-8") if isinstance(content, str) else bytes(content)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def user_path(path):
    """``path`` as the user meant it: a leading ``~`` (or ``~user``) is that home folder, as the
    shell makes it of a word that starts with it, but not after ``--out=`` nor in quotes.
    None stays None. A RuntimeError when the home folder is unknown (HOME unset and the user not
    in the password database), never a folder named ``~``.

    >>> import os; str(user_path("~/x")) == os.path.join(os.path.expanduser("~"), "x")
    True
    """
    return None if path is None else Path(os.fspath(path)).expanduser()


def make_folder(folder) -> Path:
    """Create ``folder`` (and its parents) if needed; a failure is an OutputError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create folder ({exc.strerror or exc})") from None
    return folder


def missing_folders(folder) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first: what making it
    makes (None: none)."""
    out = []
    p = None if folder is None else Path(os.path.abspath(folder))
    while p is not None and not os.path.lexists(p) and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def remove_empty_folders(folders: list) -> None:
    """Remove ``folders`` (:func:`missing_folders`, deepest first) that are still empty: a run
    that failed before writing leaves nothing of its own behind."""
    for p in folders:
        try:
            p.rmdir()  # only an empty folder
        except OSError:
            return


def inside(child, parent) -> bool:
    """True when ``child`` is ``parent`` or lies below it (after resolving links)."""
    try:
        Path(child).resolve().relative_to(Path(parent).resolve())
        return True
    except ValueError:
        return False


#: Decimals of a confidence in the result files (``pairs.csv``, ``possible.csv``; the bar in ``summary.json``).
CONFIDENCE_DIGITS = 4


def shown_bar(bar: float, digits: int = CONFIDENCE_DIGITS) -> float:
    """The duplicate bar as leakscan writes and prints it: rounded up, so that no pair under the
    bar shows at it.

    >>> shown_bar(0.61083), shown_bar(0.5)
    (0.6109, 0.5)
    """
    scale = 10 ** digits
    return math.ceil(round(float(bar) * scale, 6)) / scale


#: Decimals of a leaked fraction in ``summary.json``.
FRACTION_DIGITS = 6


def shown_fraction(fraction: float) -> float:
    """A leaked fraction as ``summary.json`` shows it, and as ``--fail-on-leak`` compares it with
    ``--max-leak`` (so the exit code agrees with the figure a script reads).

    >>> shown_fraction(1 / 7)
    0.142857
    """
    return round(float(fraction), FRACTION_DIGITS)


def tier_rounded(confidence: float, bar: float, digits: int = CONFIDENCE_DIGITS) -> float:
    """``confidence`` rounded to ``digits`` on its own side of the bar as shown (:func:`shown_bar`):
    a pair at or over ``bar`` (a duplicate) never shows under it, one under it (possible) never at it.

    >>> tier_rounded(0.61082, 0.61083), tier_rounded(0.61083, 0.61083), tier_rounded(0.61082, 0.61083, 2)
    (0.6108, 0.6109, 0.61)
    """
    rounded = round(float(confidence), digits)
    edge = shown_bar(shown_bar(bar), digits)
    if confidence >= bar:
        return max(rounded, edge)
    return min(rounded, round(edge - 10.0 ** -digits, digits))
