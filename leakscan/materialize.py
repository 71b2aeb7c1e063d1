"""Build a new folder tree for a proposed split, linking or copying the original files.

The original files are never moved, changed or deleted: hard links and symlinks point at
them, copies duplicate them. Each file appears under its name in one step (a temporary name,
then linked or renamed to its own), so a killed run leaves no partial file; a re-run
recognises the files it already placed (the same inode for hard links, the same target for
symlinks, the same bytes for copies) and adds only the missing ones.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from pathlib import Path

from .errors import ConfigError, OutputError
from .output import TMP_MARK, inside, make_folder
from .safeio import check_target, dataset_folders, nearest_existing, place_file

log = logging.getLogger(__name__)

__all__ = ["materialize", "planned", "LINK_MODES"]

LINK_MODES = ("hardlink", "symlink", "copy")


def _safe_part(name: str) -> str:
    """A split or label as one folder name: no separator, not ``.`` nor ``..``, and not hidden (a
    name starting with ``.``, which an audit of the tree, like many file browsers, would not read)."""
    name = name.replace("/", "_").replace("\\", "_").strip()
    if name in ("", ".", ".."):
        return "_"
    return "_" + name[1:] if name.startswith(".") else name


def planned(resplit, dest, *, link: str = "hardlink", force: bool = False) -> dict:
    """``{source file: its folder in dest}`` for :func:`materialize`, after its checks (nothing
    placed): call it before writing anything else, so a refused tree leaves no half result.

    Raises
    ------
    ConfigError
        The rows are not one image file each (an image array, a dataset's bytes, DICOM frames).
    OutputError
        ``dest`` is inside the dataset, not empty (without ``force``), holds another split or
        another ``link``'s files an earlier run placed (with ``force``), would merge two names
        into one folder, or cannot take hard links of a source (another file system,
        ``fs.protected_hardlinks``) while ``link`` is ``"hardlink"``.
    """
    m = resplit.audit.manifest
    if m.images is not None:
        raise ConfigError("materialize needs image files; this dataset came from an in-memory array")
    if m.source is not None and any(it[0] in ("bytes", "stored") or (it[0] == "dicom" and it[2] >= 0)
                                    for it in m.source.items.tolist()):  # a single-frame DICOM file is one
        raise ConfigError("materialize needs one image file per row; these rows are image bytes of a dataset or "
                          "table, or frames of multi-frame DICOM files (for a Hugging Face dataset, "
                          "leakscan.resplit(dataset_dict) returns the new DatasetDict)")
    dest = Path(dest)
    protect = dataset_folders(m)
    check_target(dest, protect, what="--materialize folder")
    if dest.exists():
        if not dest.is_dir():
            raise OutputError(f"{dest}: exists and is not a folder")
        if any(dest.iterdir()) and not force:
            raise OutputError(f"{dest}: folder is not empty; pass --force to add to it or choose another folder")
    names = resplit.splits
    plan, meant = {}, {}  # meant: {folder: the (split, label) it holds}
    gone = []  # files of the new split deleted or moved since the audit read them
    for r in resplit.kept_rows():
        src = m.resolve(int(r))
        if not src.is_file():
            gone.append(str(m.paths[r]))
        else:
            label = _safe_part(m.labels[r]) if m.labels[r] else "_unlabelled"
            plan[src] = folder = dest / _safe_part(names[r]) / label
            here = (names[r], m.labels[r])
            was = meant.setdefault(folder, here)
            if was != here:  # a/b and a_b, or . and ..: one folder would merge the two
                which, a, b = (("splits", was[0], here[0]) if was[0] != here[0] else
                               (f"classes of split {here[0]!r}", was[1], here[1]))
                raise OutputError(f"{dest}: the {which} {a!r} and {b!r} would share the folder {folder} (a folder "
                                  "name cannot hold '/', be '.' or '..', nor start with '.'), which would merge "
                                  "them; rename one (nothing was written)")
    if gone:  # the new manifest lists them, the tree cannot hold them
        log.warning("%d file(s) of the new split are gone since the audit read them, so not placed in %s: %s%s",
                    len(gone), dest, ", ".join(gone[:3]), ", ..." if len(gone) > 3 else "")
    real_dest = os.path.realpath(dest)
    for folder in sorted(set(plan.values())):  # a symlinked folder an earlier tree holds may lead into the dataset
        if not inside(folder, real_dest):  # one inside dest is as safe as dest, checked above
            check_target(folder, protect, what="a folder of the --materialize tree")
    if link == "hardlink":
        _refuse_other_file_system(dest, plan)
        _refuse_refused_links(dest, plan)
    if dest.exists():
        others = (m.resolve(r) for r in range(len(m)) if m.images is None)  # dropped ones too
        _refuse_another_split(dest, plan, [p for p in others if p not in plan and p.is_file()], link=link)
    return plan


def _refuse_refused_links(dest: Path, plan: dict) -> None:
    """Raise when the system refuses a hard link to a source (``fs.protected_hardlinks``: a file
    this user neither owns nor may write, in a shared dataset): one link tried per owner and
    mode of the sources, made and removed at once in ``dest``'s nearest existing folder (named
    as leakscan's temporary files), before the manifest or any file is written."""
    near = nearest_existing(dest)
    tried = set()
    for src in plan:
        real = os.path.realpath(src)  # as place_file links it
        st = os.stat(real)
        if (st.st_uid, st.st_mode) in tried:
            continue
        tried.add((st.st_uid, st.st_mode))
        probe = near / f".leakscan-link-probe.{os.getpid()}{TMP_MARK}"
        try:
            os.link(real, probe)
        except OSError as exc:  # EPERM: the link refused; anything else (EACCES, no space) is said at placing
            if exc.errno != errno.EPERM:
                continue
            raise OutputError(f"{src}: the system refuses to hard-link it here (permission denied: a file you do "
                              "not own, fs.protected_hardlinks); use --link copy or symlink (nothing was "
                              "written)") from None
        os.unlink(probe)


def _refuse_other_file_system(dest: Path, plan: dict) -> None:
    """Raise when a source lies on another file system than ``dest`` (hard links cannot cross
    them): said before the manifest or any file is written, not at the first link."""
    here = nearest_existing(dest).stat().st_dev  # dest is made in its nearest existing folder
    for src in plan:
        if src.stat().st_dev != here:
            raise OutputError(f"{dest}: is on another file system than {src}, and hard links cannot cross file "
                              "systems; use --link copy or symlink (nothing was written)")


def materialize(resplit, dest, *, link: str = "hardlink", force: bool = False, plan: dict | None = None) -> int:
    """Lay out ``dest/<split>/<label>/<file name>`` for every kept row of ``resplit`` whose file is still there.

    Returns the number of files in place for the new split (placed now, or found already placed
    by an earlier run). Name clashes between different sources get ``__2``, ``__3``... before the
    suffix; a file an earlier run placed for the same source is reused, never duplicated.

    ``plan``: what :func:`planned` returned for the same arguments, when the caller checked the
    tree first (it is not checked again).

    Raises
    ------
    OutputError
        As :func:`planned`, or a hard link cannot be made (another file system: use
        ``link="copy"``).
    """
    if link not in LINK_MODES:
        raise ConfigError(f"link must be one of {', '.join(LINK_MODES)}, got {link!r}")
    if plan is None:
        plan = planned(resplit, dest, link=link, force=force)
    make_folder(Path(dest))
    taken: set[Path] = set()
    cleaned: set[Path] = set()
    placed = 0
    for src, folder in plan.items():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _remove_leftovers(folder, cleaned)
            k, target = 2, folder / src.name
            while True:
                if target not in taken and place_file(src, target, link):
                    break
                target = folder / _numbered(src, k, _name_max(folder))
                k += 1
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise OutputError(f"{folder}: cannot hard-link across file systems; "
                                  "use --link copy or symlink") from None
            raise OutputError(f"{folder}: cannot {link} {src}: {exc.strerror or exc}") from None
        taken.add(target)
        placed += 1
    return placed


def _refuse_another_split(dest: Path, plan: dict, left_out=(), *, link: str = "hardlink") -> None:
    """Raise when ``dest`` holds a file an earlier run placed for one of ``plan``'s sources (the
    same inode, symlink target or bytes) in a folder where ``plan`` puts none of them, or for a
    source the new split leaves out (``left_out``): adding the new split would put that image on
    both sides of it, or keep an image it drops. Raise too when such a file sits where it
    belongs but was placed by another ``link`` mode that this one does not know as placed (a
    copy is known by its bytes, so a hard link passes): the image would be placed a second time
    (``__2``)."""
    by_inode, by_target, by_size = {}, {}, {}
    for src in [*plan, *left_out]:
        st = src.stat()
        by_inode.setdefault((st.st_dev, st.st_ino), []).append(src)
        by_target.setdefault(os.path.realpath(src), []).append(src)
        by_size.setdefault(st.st_size, []).append(src)
    digests: dict = {}

    def digest(p) -> bytes:
        if p not in digests:
            h = hashlib.blake2b(digest_size=16)
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            digests[p] = h.digest()
        return digests[p]

    misplaced, other_mode = [], []
    for folder in sorted(p for p in dest.glob("*/*") if p.is_dir() and not p.is_symlink()):
        for f in sorted(folder.iterdir()):
            if f.name.startswith(".") and f.name.endswith(TMP_MARK):
                continue  # a killed run's temporary file (an image's name may start with '.' too)
            if f.is_symlink():
                sources, mode = by_target.get(os.path.realpath(f), []), "symlink"
            elif f.is_file():
                st = f.stat()
                sources, mode = by_inode.get((st.st_dev, st.st_ino)), "hardlink"
                if not sources:  # a copy: the same bytes
                    sources, mode = [s for s in by_size.get(st.st_size, ()) if digest(s) == digest(f)], "copy"
            else:
                continue
            if sources and all(plan.get(s) != folder for s in sources):
                misplaced.append((f, plan.get(sources[0])))
            elif sources and mode != link and not (link == "copy" and mode == "hardlink"):
                other_mode.append((f, mode))  # (a copy is known by its bytes: a hard link passes)
    if misplaced:
        f, where = misplaced[0]
        said = f"belongs in {where}/" if where is not None else "is left out of the new split"
        raise OutputError(f"{dest}: holds another split, placed by an earlier run: {len(misplaced)} file(s) sit "
                          f"where the new split does not put them ({f} {said}), so their images would be on "
                          "both sides; choose an empty folder (nothing was placed)")
    if other_mode:
        f, mode = other_mode[0]
        raise OutputError(f"{dest}: holds {len(other_mode)} file(s) an earlier run placed with --link {mode} ({f}); "
                          f"with --link {link} each would be placed again beside it; re-run with --link {mode} to "
                          "complete that tree, or choose an empty folder (nothing was placed)")


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) ``folder``'s file system takes."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):  # not POSIX, or no limit given
        return 255


def _numbered(src: Path, k: int, limit: int) -> str:
    """``<stem>__<k><suffix>``, the stem shortened (whole characters) to keep the name within
    ``limit`` bytes: a name at the limit still gets its numbered twin."""
    tail = f"__{k}{src.suffix}"
    stem = src.stem
    while stem and len(os.fsencode(stem + tail)) > limit:
        stem = stem[:-1]
    return stem + tail


def _remove_leftovers(folder: Path, cleaned: set) -> None:
    """Delete the temporary files a killed run of ours left in ``folder`` (named ``.*`` + TMP_MARK)."""
    if folder in cleaned:
        return
    cleaned.add(folder)
    for p in folder.glob(f".*{TMP_MARK}"):
        pid = p.name[:-len(TMP_MARK)].rsplit(".", 1)[-1]
        if pid.isdigit() and _alive(int(pid)):
            continue  # another run placing files here right now
        try:
            p.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers cannot be in use: place_file removes them as it goes
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
