"""Re-split an audited dataset: the workflow around :func:`leakscan.split.assign_splits`.

From an :class:`~leakscan.audit.Audit`: assign whole duplicate groups to splits (joined by
the rows' links: frames of one DICOM file, tiles whose footprints overlap), and when
images are dropped (``keep`` + ``drop``), search the rest again (dropping images changes the
neighbourhoods the ratio test compares against) until no pair crosses splits (at most
:data:`MAX_ROUNDS` rounds); then report
targets against what was achieved and verify the result.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import ConfigError
from .groups import build_groups, join_links
from .manifest import split_name
from .decide import detect, weigh_labels
from .evidence import EvidenceMemo
from .pairs import PairTable, pair_keys
from .settings import RANDOM_STATE
from .split import Assignment, assign_splits, parse_ratios

__all__ = ["Resplit", "resplit", "resplit_dataset", "MAX_ROUNDS"]

#: The progress stage of the detection rounds when dropping images.
SEARCH_AGAIN = "search again"
#: Detection rounds at most when dropping images (each searches the remaining images again).
MAX_ROUNDS = 8


@dataclass(frozen=True)
class Resplit:
    """A proposed split of an audited dataset; rows line up with ``audit.manifest``."""

    audit: object
    assignment: Assignment
    mode: str
    remedy: str
    seed: object
    pairs: object = None    # PairTable the split was checked against (audit's, plus any re-detected)
    groups: object = None   # Groups the assignment kept whole
    rounds: int = 1         # detection rounds (more than one when dropping images changed the neighbourhoods)
    # rows kept in one split whatever their pixels: {"frames": (k, 2) rows of one DICOM file,
    # "spatial": tiles whose footprints overlap} (RowSource.links)
    links: dict = dataclasses.field(default_factory=dict)
    # ratios were given: each split not kept aims at the overall class mix (stratified), not at its own
    ratios_given: bool = False
    keep: tuple = ()        # the splits kept as they were

    @property
    def splits(self) -> np.ndarray:
        """New split name per row (``""`` for dropped rows and for files the audit could not read)."""
        return self.assignment.names()

    @property
    def dropped(self) -> np.ndarray:
        """Rows the re-split left out (``keep`` + ``drop``); unreadable files are not among them."""
        return self.assignment.dropped & self.audit.features.ok

    @property
    def checked_pairs(self) -> PairTable:
        """The duplicate pairs the split is checked against: ``pairs``, else the audit's."""
        return self.pairs if self.pairs is not None else self.audit.pairs

    def cross_split_pairs(self) -> int:
        """Duplicate pairs whose two images end in different splits (0 when the split is sound)."""
        p = self.checked_pairs
        sp = self.assignment.splits
        keep = (sp[p.i] >= 0) & (sp[p.j] >= 0)
        return int(np.sum(keep & (sp[p.i] != sp[p.j])))

    def links_across(self, kind: str) -> int:
        """Links of ``kind`` (``"spatial"``, ``"frames"``) whose rows end in two splits (0 when sound)."""
        pairs = self.links.get(kind)
        if pairs is None or not len(pairs):
            return 0
        sp = self.assignment.splits
        a, b = sp[pairs[:, 0]], sp[pairs[:, 1]]
        return int(np.sum((a >= 0) & (b >= 0) & (a != b)))

    def leftover_warnings(self) -> list[str]:
        """One line per kind of link the new split still cuts (empty when it is sound): duplicate
        pairs, overlapping tiles, frames of one DICOM file. ``problems`` says why."""
        out = []
        if self.cross_split_pairs():
            out.append(f"{self.cross_split_pairs()} duplicate pairs still cross splits (see problems)")
        for kind, what in (("spatial", "pairs of overlapping tiles"),
                           ("frames", "frame links of multi-frame DICOM files")):
            if self.links_across(kind):
                out.append(f"{self.links_across(kind)} {what} still cross splits (see problems)")
        return out

    def drop_reasons(self) -> np.ndarray:
        """Why each dropped row was dropped (``""`` for the others)."""
        out = np.full(len(self.dropped), "", dtype=object)
        rows = np.flatnonzero(self.dropped)
        if not len(rows):
            return out
        g = self._groups()
        # a unit is dropped whole but for its rows in the kept splits: a dropped row whose group
        # has a row left is a duplicate of a kept image; otherwise only a link tied it to one
        with_kept = set(g.ids[self.kept_rows()].tolist())
        for r in rows.tolist():
            out[r] = ("duplicate of an image in a kept split" if g.ids[r] in with_kept
                      else "linked to an image in a kept split (a frame of the same file, or an "
                           "overlapping tile footprint)")
        return out

    def groups_column(self) -> np.ndarray:
        """``group`` per row: the user's group; else, for an image in a duplicate group (a dropped
        copy too), the one group the images of that duplicate group have (a copy of a patient's
        image is that patient's), or ``dup-<n>`` when they have none, or several (:meth:`group_warnings`).
        A file the audit could not read keeps the input's (it has no copy to be named after)."""
        m = self.audit.manifest
        g = self._groups()
        in_dup = np.isin(g.ids, g.duplicate_groups())
        out = np.array(m.groups, dtype=object)
        held = self._input_groups()
        # numbered past the input's own dup-<n> groups (a manifest an earlier re-split wrote), so
        # that a new duplicate group never takes another group's name: read back, one group
        taken = [int(x[4:]) for x in set(out.tolist()) if re.fullmatch(r"dup-[0-9]+", x)]
        first = max(taken) + 1 if taken else 0
        # numbered in the order of their smallest paths, as the draw orders rows: a shuffled
        # manifest gives each image the same name
        number: dict[int, int] = {}
        for r in m.canonical_order(np.flatnonzero(in_dup & (out == ""))).tolist():
            gid = int(g.ids[r])
            names = held.get(gid, [])
            out[r] = names[0] if len(names) == 1 else f"dup-{number.setdefault(gid, first + len(number))}"
        return out

    def group_warnings(self) -> list[str]:
        """One line when duplicate groups join images of several of the input's groups: each lies
        in one split, but its images keep their own group (those without one: ``dup-<n>``), so
        the new manifest reads it back as several groups."""
        several = [names for names in self._input_groups().values() if len(names) > 1]
        if not several:
            return []
        shown = min(several)  # whatever the order of the manifest's rows
        return [f"{len(several)} duplicate group(s) join images of several of the input's groups "
                f"({', '.join(shown[:3])}{', ...' if len(shown) > 3 else ''}): each lies in one split, but its images "
                "keep their own group and those without one are named dup-N, so it reads back as several groups"]

    def _groups(self):
        return self.groups if self.groups is not None else self.audit.groups

    def _input_groups(self) -> dict[int, list[str]]:
        """The input's groups (sorted) of the images of each duplicate group that has any, by its id."""
        m, g = self.audit.manifest, self._groups()
        rows = np.flatnonzero(np.isin(g.ids, g.duplicate_groups()) & (m.groups != ""))
        found: dict[int, set] = {}
        for gid, name in zip(g.ids[rows].tolist(), m.groups[rows].tolist()):
            found.setdefault(int(gid), set()).add(name)
        return {gid: sorted(names) for gid, names in found.items()}

    def kept_rows(self) -> np.ndarray:
        """Rows of the new split: not dropped, and read by the audit. Unreadable files (the
        audit's ``skipped``) are never written into the new manifest nor materialized."""
        return np.flatnonzero(~self.dropped & self.audit.features.ok)

    def unreadable_rows(self) -> np.ndarray:
        """Rows left out of the new split because the audit could not read them."""
        return np.flatnonzero(~self.audit.features.ok)

    def not_audited(self) -> list:
        """``(path, reason)`` of the input's entries the audit did not take, so never in the new
        split: an image outside the split folders, a manifest row without a split or listed again."""
        return list(self.audit.manifest.skipped)

    def left_out_line(self, listed_in) -> str | None:
        """What the new split leaves out (unreadable files, entries the audit did not take) and the
        file ``listed_in`` that lists them, in one line; None when it leaves nothing out."""
        n, k = len(self.unreadable_rows()), len(self.not_audited())
        if not n + k:
            return None
        said = " and ".join(([f"{n} unreadable file(s)"] if n else [])
                            + ([f"{k} entr(ies) the audit did not take (see their reasons)"] if k else []))
        return f"{said} left out of the new split, listed in {listed_in}"

    def records(self) -> list[dict]:
        m = self.audit.manifest
        names, grp = self.splits, self.groups_column()
        return [{"path": m.paths[r], "split": names[r], "label": m.labels[r], "group": grp[r]}
                for r in self.kept_rows()]

    def _links_dict(self) -> dict:
        """``spatial_links`` / ``multiframe_files`` (and what crosses splits after) when the rows have any."""
        d = {}
        if "spatial" in self.links:
            d["spatial_links"] = int(len(self.links["spatial"]))
            d["spatial_links_cross_after"] = self.links_across("spatial")
        if "frames" in self.links:
            f = self.links["frames"]
            d["multiframe_files"] = int(len(np.unique(f[:, 0]))) if len(f) else 0
            d["frame_links_cross_after"] = self.links_across("frames")
        return d

    def to_dict(self) -> dict:
        """Targets vs achieved sizes and class shares, moves, drops, problems, verification."""
        a = self.assignment
        m = self.audit.manifest
        # the classes of the images read, as the assignment's columns: a class whose every file is
        # unreadable has none
        audited = self.audit.features.ok
        classes = np.unique(m.labels[audited].astype(str))
        labels = classes.tolist()
        y = np.searchsorted(classes, m.labels.astype(str))  # used only where audited
        ach = np.zeros_like(a.target)
        ok = a.splits >= 0
        np.add.at(ach, (a.splits[ok], y[ok]), 1)
        tsz, asz = a.target.sum(1), ach.sum(1)
        # the original class mix of each split (of every readable image, before anything was
        # dropped): what class shares are measured against
        before = np.zeros_like(a.target)
        cur = np.array([a.split_names.index(x) if x in a.split_names else -1 for x in m.splits.tolist()],
                       np.int64)  # row numbers even for no rows
        has = audited & (cur >= 0)
        np.add.at(before, (cur[has], y[has]), 1)
        stratified = self.mode == "shuffle" or self.ratios_given
        splits, warnings = {}, []
        for s, name in enumerate(a.split_names):
            share_t = {lab: round(float(a.share_target[s, c]), 4) for c, lab in enumerate(labels)}
            share_a = {lab: round(float(ach[s, c] / asz[s]), 4) if asz[s] else 0.0 for c, lab in enumerate(labels)}
            # stratified (--ratios, --shuffle): a split not kept aims at the mix of the rows split
            orig = (a.share_target[s] if (stratified and name not in self.keep) or not before[s].sum()
                    else before[s] / before[s].sum())
            share_o = {lab: round(float(orig[c]), 4) for c, lab in enumerate(labels)}
            worst = max((abs(share_a[k] - share_o[k]) for k in labels), default=0.0)
            splits[name] = {"target": int(tsz[s]), "achieved": int(asz[s]),
                            "size_error": round(float((asz[s] - tsz[s]) / tsz[s]), 5) if tsz[s] else 0.0,
                            "max_class_share_error": round(worst, 5),
                            "class_share_target": share_t, "class_share_achieved": share_a,
                            "class_share_original": share_o}
            for c, lab in enumerate(labels):
                was, now = int(before[s, c]), int(ach[s, c])
                if was >= 2 and now == 0:
                    warnings.append(f"class {lab!r} vanishes from {name}: {was} images before, none after")
                elif was >= 4 and now < was / 2:
                    warnings.append(f"class {lab!r} shrinks by more than half in {name}: {was} images before, "
                                    f"{now} after")
        return {"mode": self.mode, "remedy": self.remedy, "seed": self.seed,
                "n_images": self.audit.n_images,  # audited, as audit's: the unreadable are unreadable_left_out
                "moved": a.moved, "dropped": int(self.dropped.sum()), "forced": a.forced,
                "unreadable_left_out": int(len(self.unreadable_rows())),
                "not_audited_left_out": len(self.not_audited()),
                "splits": splits, "problems": list(a.problems) + warnings, "class_warnings": warnings,
                "group_warnings": self.group_warnings(),
                "cross_split_pairs_after": self.cross_split_pairs(),
                "pairs_checked": len(self.checked_pairs),
                "detection_rounds": self.rounds,
                **self._links_dict(),
                "decisions": (self.audit.decisions.to_dict()
                              if getattr(self.audit, "decisions", None) is not None else None)}


def _kept_split(name: str, splits: list) -> str:
    """The split of ``splits`` that ``keep`` names: itself, else the one a manifest reads as the
    same (``Test`` and ``testing`` are ``test``; ``test`` is ``Test`` where splits given in Python
    name it so), else the name as a manifest reads it."""
    if name in splits:
        return name
    same = [s for s in splits if split_name(s) == split_name(name)]
    return same[0] if len(same) == 1 else split_name(name)


def resplit(
    audit,
    *,
    ratios=None,
    keep: Sequence[str] | str | None = None,
    drop: bool = False,
    shuffle: bool = False,
    random_state=RANDOM_STATE,
    progress: Callable[[str, int, int], None] | None = None,
) -> Resplit:
    """Propose a split of an audited dataset in which no duplicate group straddles two splits.

    Parameters
    ----------
    audit : Audit or datasets.DatasetDict
        From :func:`leakscan.audit`. A Hugging Face ``DatasetDict`` is audited with the
        defaults and the result is a new ``DatasetDict`` (:func:`resplit_dataset`).
    ratios : str or mapping, optional
        ``"train=0.8,val=0.1,test=0.1"``; default: the current split sizes and (without
        ``shuffle``) class mixes.
    keep : str or sequence of str, optional
        Splits that stay as they are (e.g. a benchmark's test set).
    drop : bool
        With ``keep``: drop the other splits' copies of kept images instead of moving them
        into the kept split.
    shuffle : bool
        A fresh stratified split instead of the minimal-change repair.
    random_state : int or None
        Seed of the random choices (default 0); None draws a fresh one.
    progress : callable, optional
        ``progress(stage, done, total)``, as :func:`leakscan.audit` takes it: when images are
        dropped, stage ``"search again"`` counts the rounds done (of :data:`MAX_ROUNDS` at most),
        and each round's search and decision report their stages as the audit's do.

    Returns
    -------
    Resplit

    Examples
    --------
    >>> import numpy as np, leakscan
    >>> rng = np.random.default_rng(0)
    >>> imgs = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8); imgs[5] = imgs[0]
    >>> a = leakscan.audit(imgs, splits=["train"] * 4 + ["test"] * 2, jobs=1)
    >>> r = resplit(a)
    >>> r.cross_split_pairs()
    0
    """
    if type(audit).__module__.split(".")[0] == "datasets":  # a Hugging Face DatasetDict in, one out
        return resplit_dataset(audit, ratios=ratios, keep=keep, drop=drop, shuffle=shuffle,
                               random_state=random_state)
    if isinstance(keep, str):
        keep = [keep]
    m = audit.manifest
    keep = list(dict.fromkeys(_kept_split(str(k), m.split_names) for k in keep or []))
    if drop and not keep:
        raise ConfigError("drop applies with keep (e.g. --keep test --drop): it drops copies of kept images")
    current = np.array(m.splits, dtype=object)
    parsed = parse_ratios(ratios)
    pairs, groups = audit.pairs, audit.groups
    # only the files the audit read are placed: the others are never written, so they count in
    # no target, size, class share or move (their split stays -1); the draw sees them by path,
    # so a seed gives each image the same split however the manifest orders its rows
    readable = m.canonical_order(np.flatnonzero(audit.features.ok))
    # rows that belong together whatever their pixels: frames of one DICOM file, tiles whose
    # footprints overlap; they join units as duplicate pairs do
    links = m.source.links(audit.features.ok) if getattr(m, "source", None) is not None else {}
    all_links = np.concatenate([v for v in links.values()] + [np.zeros((0, 2), np.int64)])
    rounds = 1
    unresolved = 0
    memo = EvidenceMemo()  # each round searches again, and finds mostly the pairs measured before
    for rounds in range(1, MAX_ROUNDS + 1):
        units = join_links(groups.ids, all_links) if len(all_links) else groups.ids
        units = join_links(units[readable], np.zeros((0, 2), np.int64))  # numbered in that order too
        a = assign_splits(units, m.labels[readable], ratios=parsed, current=current[readable],
                          keep=keep, drop=drop, shuffle=shuffle, random_state=random_state)
        sp = np.full(len(m), -1, np.int64)
        sp[readable] = a.splits
        a = dataclasses.replace(a, splits=sp)
        if not a.dropped[readable].any():
            break
        # Dropping images changes the neighbourhoods the ratio test compares against, and what
        # the decision is fitted on, so the remaining images are searched and decided again
        # (from the features: nothing is decoded twice).
        if progress:
            progress(SEARCH_AGAIN, rounds - 1, MAX_ROUNDS)  # rounds done (this one searching)
        extra = _redetect(audit, np.flatnonzero(~a.dropped & audit.features.ok), a.splits, memo, progress)
        found = PairTable.concat([pairs, extra]).sorted()
        if getattr(audit, "decisions", None) is not None:  # the user's verdicts hold for re-found pairs too
            from .decisions import apply_decisions  # noqa: PLC0415

            found, _ = apply_decisions(found, audit.decisions.matched, features=audit.features, groups=m.groups)
        # re-found pairs the user marked distinct (or whose chain they part) are nothing new
        new = int(np.sum(~np.isin(pair_keys(found.i, found.j), pair_keys(pairs.i, pairs.j))))
        if new == 0:
            break
        pairs = found
        if rounds == MAX_ROUNDS:  # the last assignment is checked, not repaired: say what remains
            unresolved = new
            break
        decided = getattr(audit, "decisions", None)
        groups = build_groups(len(m), pairs, m.groups,
                              sure=decided.marked_duplicate(pairs) if decided is not None else None)
        pairs = pairs.take(groups.kept)  # what the chaining guard cut is no longer a link
    mode = "shuffle" if shuffle else "minimal-change"
    if keep:
        remedy = (f"kept {', '.join(keep)} unchanged; {a.forced} images of other splits that duplicate "
                  + ("them were dropped" if drop else f"them joined {', '.join(keep)}"))
    elif shuffle:
        remedy = "fresh stratified assignment of whole duplicate groups"
    else:
        remedy = ("each duplicate group joins the split holding most of it; class mixes restored "
                  "with the fewest extra moves")
    if unresolved:
        a = dataclasses.replace(a, problems=list(a.problems) + [
            f"after {rounds} rounds of dropping and deciding again, a fresh search of what remains still finds "
            f"{unresolved} duplicate pairs across splits (each drop lets look-alike copies further down the "
            f"neighbour lists surface); run resplit again on the new manifest to drop them too"])
    return Resplit(audit=audit, assignment=a, mode=mode, remedy=remedy, seed=random_state,
                   pairs=pairs, groups=groups, rounds=rounds, links=links,
                   ratios_given=parsed is not None, keep=tuple(keep))



#: Dropping images re-fits the decision on what remains, which moves confidences a little: the
#: re-split also keeps apart nothing within this margin below ``min_confidence`` (the lowest bar), so a
#: fresh audit of the new manifest finds no cross-split duplicate.
RESPLIT_MARGIN = 0.15


def _redetect(audit, rows: np.ndarray, splits: np.ndarray, memo: EvidenceMemo | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> PairTable:
    """Pairs among ``rows`` (re-searched, the decision fitted again on them) that cross splits:
    the duplicates and the possible pairs within :data:`RESPLIT_MARGIN` of ``min_confidence``.
    ``memo`` keeps the evidence measured for the next round."""
    from .features import load_pictures  # noqa: PLC0415
    from .parallel import check_jobs  # noqa: PLC0415

    det = detect(audit.features.take(rows), audit.settings, splits=np.asarray(splits)[rows], jobs=check_jobs(None),
                 memo=None if memo is None else memo.of_rows(rows), progress=progress,
                 images=lambda sub_rows: load_pictures(audit.manifest, rows[np.asarray(sub_rows)],
                                                           kept=audit.features.pictures))
    if audit.settings.label_evidence:  # as the audit weighs them
        det = weigh_labels(det, audit.manifest.labels[rows], audit.settings.min_precision)
    # below the lowest bar an audit can set (--min-precision raises it from --min-confidence by
    # what the confidences of the images audited say: another set of images, another bar)
    near = det.possible.take(det.possible.confidence >= audit.settings.min_confidence - RESPLIT_MARGIN)
    sub = PairTable.concat([det.pairs, near]).sorted()
    found = dataclasses.replace(sub, i=rows[sub.i], j=rows[sub.j])  # rows ascending: i < j still holds
    return found.take(splits[found.i] != splits[found.j])


def resplit_dataset(data, *, ratios=None, keep=None, drop=False, shuffle=False, random_state=RANDOM_STATE,
                    image_column=None, label_column=None, group_column=None, **audit_options):
    """Audit a DatasetDict and return a new DatasetDict in which no duplicate group straddles two splits.

    ``ratios``, ``keep``, ``drop``, ``shuffle``, ``random_state`` are those of
    :func:`leakscan.resplit`; other keywords go to :func:`leakscan.audit`.
    """
    from .audit import audit  # noqa: PLC0415
    from .sources.hf import to_dataset_dict  # noqa: PLC0415 - needs the datasets extra

    a = audit(data, image_column=image_column, label_column=label_column, group_column=group_column,
              **audit_options)
    return to_dataset_dict(resplit(a, ratios=ratios, keep=keep, drop=drop, shuffle=shuffle,
                                   random_state=random_state))
