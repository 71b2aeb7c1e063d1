"""Build a new folder tree for a proposed split, linking or copying the original files.

The original files are never moved, changed or deleted: hard links and symlinks point at
them, copies duplicate them.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np

from .errors import ConfigError, OutputError
from .output import inside, make_folder

__all__ = ["materialize", "LINK_MODES"]

LINK_MODES = ("hardlink", "symlink", "copy")


def _safe_part(name: str) -> str:
    name = name.replace("/", "_").replace("\\", "_").strip()
    return name if name not in ("", ".", "..") else "_"


def materialize(resplit, dest, *, link: str = "hardlink", force: bool = False) -> int:
    """Lay out ``dest/<split>/<label>/<file name>`` for every kept row of ``resplit``.

    Returns the number of files placed. Name clashes get ``__2``, ``__3``... before the suffix.

    Raises
    ------
    OutputError
        ``dest`` is inside the dataset, not empty (without ``force``), or a hard link
        cannot be made (another file system: use ``link="copy"``).
    """
    if link not in LINK_MODES:
        raise ConfigError(f"link must be one of {', '.join(LINK_MODES)}, got {link!r}")
    m = resplit.audit.manifest
    if m.images is not None:
        raise ConfigError("materialize needs image files; this dataset came from an in-memory array")
    dest = Path(dest)
    if m.root is not None and inside(dest, m.root):
        raise OutputError(f"{dest}: inside the dataset folder {m.root}; leakscan never writes there")
    if dest.exists():
        if not dest.is_dir():
            raise OutputError(f"{dest}: exists and is not a folder")
        if any(dest.iterdir()) and not force:
            raise OutputError(f"{dest}: folder is not empty; pass --force to add to it or choose another folder")
    make_folder(dest)
    names = resplit.splits
    taken: set[Path] = set()
    placed = 0
    for r in np.flatnonzero(~resplit.dropped):
        src = m.resolve(int(r))
        if not src.is_file():
            continue  # missing files are already listed as skipped by the audit
        label = _safe_part(m.labels[r]) if m.labels[r] else "_unlabelled"
        target = dest / _safe_part(names[r]) / label / src.name
        k = 2
        while target in taken or target.exists():
            target = target.with_name(f"{src.stem}__{k}{src.suffix}")
            k += 1
        taken.add(target)
        make_folder(target.parent)
        try:
            if link == "hardlink":
                os.link(src, target)
            elif link == "symlink":
                os.symlink(src.resolve(), target)
            else:
                shutil.copy2(src, target)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise OutputError(f"{target}: cannot hard-link across file systems; "
                                  "use --link copy or symlink") from None
            raise OutputError(f"{target}: cannot {link} {src}: {exc.strerror or exc}") from None
        placed += 1
    return placed
