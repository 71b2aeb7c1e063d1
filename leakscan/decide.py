"""The pair decision: candidates -> evidence -> calibrated confidence -> two tiers.

* **duplicates** (``confidence >= min_confidence``, or the bar ``min_precision`` raised it
  to: :func:`with_bar_in_force`): the only pairs anything downstream counts: leaks, groups,
  label conflicts, re-splits, ``find_groups``, ``train_test_split``, ``--fail-on-leak``;
* **possible** duplicates (confidence from :data:`~leakscan.settings.POSSIBLE_FLOOR` up
  to the threshold): listed for a look (``possible.csv``), never counted.

Exact copies (identical pixels) are duplicates with confidence 1 and need no evidence. Where
the images are labelled, a pair of two labels is weighed against how often copies and
look-alikes differ in label (:func:`weigh_labels`), after the detection and its cache.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .calibrate import (MIN_AUC, THUMBNAILS, Calibration, ImageSource, adjust_to_prior, at_lower_share, at_prior,
                        calibrate)
from .errors import ConfigError
from .evidence import EVIDENCE, EvidenceMemo, pair_evidence, shared_overlay_of, tilted_angles
from .features import Features, load_pictures
from .groups import components, joining_links
from .keypoints import LOOK_ALIKES_AS_COPIES, LOOK_BUDGET, LOOK_MIN_SIDE, SEARCH_MAX_IMAGES, closer_look, keypoint_pairs
from .manifest import Manifest
from .memory import release_free_memory
from .padding import SharedOverlay
from .pairs import (OVERLAP_MAX_IMAGES, OVERLAP_MIN_SHARE, TILT_MAX_IMAGES, Candidates, Kind, PairTable,
                    find_candidates, measure_pairs, overlap_share, pair_keys)
from .settings import POSSIBLE_FLOOR, DetectSettings
from .views import READINGS, MatchView, transform_variants

log = logging.getLogger(__name__)

__all__ = ["Detection", "detect", "find_pairs", "precision_bar", "weigh_labels", "with_bar_in_force",
           "within_group_pairs"]

#: The whole picture turned by a quarter or a half turn, or mirrored other than left to right
#: (upside down, across a diagonal): readings whose pairs have a share of copies of their own
#: (``prior_turned_whole``). Not :attr:`MatchView.TURNED`, a picture turned by any angle within
#: its own frame, which is a tilted reading with a share of its own already.
TURNED_WHOLE = (MatchView.VFLIP, MatchView.ROT180, MatchView.TRANSPOSE, MatchView.ROT90, MatchView.ROT270,
                MatchView.ANTITRANSPOSE)


@dataclass(frozen=True)
class Detection:
    """The decided pairs: ``pairs`` (duplicates), ``possible``, and how the decision was fitted."""

    pairs: PairTable
    possible: PairTable
    calibration: Calibration | None = None
    warnings: tuple = ()
    timings: dict = field(default_factory=dict)  # seconds of search, verify, calibrate; {} when read from the cache

    @property
    def threshold(self) -> float | None:
        return None if self.calibration is None else self.calibration.threshold

    def to_arrays(self) -> dict:
        """Plain arrays (for the search-results cache); :meth:`from_arrays` reads them back."""
        out = {f"pairs_{f.name}": getattr(self.pairs, f.name) for f in dataclasses.fields(self.pairs)}
        out.update({f"possible_{f.name}": getattr(self.possible, f.name) for f in dataclasses.fields(self.possible)})
        out["warnings"] = np.array(json.dumps(list(self.warnings)))
        readings = {} if self.calibration is None else self.calibration.readings
        for prefix, c in [("cal", self.calibration)] + [(f"cal_{name}", c) for name, c in readings.items()]:
            if c is not None:
                out.update({f"{prefix}_columns": np.array(json.dumps(list(c.columns))), f"{prefix}_mean": c.mean,
                            f"{prefix}_scale": c.scale, f"{prefix}_coef": c.coef,
                            f"{prefix}_intercept": np.float64(c.intercept),
                            f"{prefix}_threshold": np.float64(c.threshold),
                            f"{prefix}_stats": np.array(json.dumps(c.stats))})
        return out

    @classmethod
    def from_arrays(cls, d) -> "Detection":
        def table(prefix):
            return PairTable(**{f.name: np.asarray(d[f"{prefix}_{f.name}"]) for f in dataclasses.fields(PairTable)})
        def fitted(prefix):
            if f"{prefix}_coef" not in d:
                return None
            return Calibration(columns=tuple(json.loads(str(d[f"{prefix}_columns"]))),
                               mean=np.asarray(d[f"{prefix}_mean"]), scale=np.asarray(d[f"{prefix}_scale"]),
                               coef=np.asarray(d[f"{prefix}_coef"]), intercept=float(d[f"{prefix}_intercept"]),
                               threshold=float(d[f"{prefix}_threshold"]), stats=json.loads(str(d[f"{prefix}_stats"])))
        cal = fitted("cal")
        if cal is not None:
            readings = {name: fitted(f"cal_{name}") for name in (*READINGS[1:], THUMBNAILS)}
            cal = dataclasses.replace(cal, readings={name: c for name, c in readings.items() if c is not None})
        return cls(pairs=table("pairs"), possible=table("possible"), calibration=cal,
                   warnings=tuple(json.loads(str(d["warnings"]))))


def detect(
    features: Features,
    settings: DetectSettings | None = None,
    *,
    images: ImageSource | None = None,
    splits: np.ndarray | None = None,
    model=None,
    progress: Callable[[str, int, int], None] | None = None,
    jobs: int = 1,
    memo: EvidenceMemo | None = None,
) -> Detection:
    """Search, measure the evidence of every candidate, calibrate on synthetic copies, decide.

    Parameters
    ----------
    features : Features
    settings : DetectSettings, optional
    images : callable, optional
        ``images(rows)`` -> the canonical RGB pictures of those rows, copied to calibrate
        the decision (:mod:`leakscan.calibrate`; default: pictures rebuilt from the thumbnails)
        and read by the keypoint search and the closer look (without it, neither runs).
    splits : array of str, optional
        Needed with ``settings.scope == "cross"``.
    model : ModelSpec, optional
        The ONNX model whose embeddings ``features`` hold (the calibration embeds its copies too).
    progress : callable, optional
    jobs : int
        Processes for the evidence and the calibration; threads for the keypoints.
    memo : EvidenceMemo, optional
        The evidence of pairs measured by an earlier detection of these images, the calibration's
        included (and kept for a later one): what it holds is not measured again.
    """
    s = settings or DetectSettings()
    t0 = time.perf_counter()
    found = find_candidates(features, s, splits=splits, progress=progress)
    release_free_memory()  # each stage's freed blocks, before the next allocates its own
    cands = found.pairs
    t1 = time.perf_counter()
    exact = cands.kind == Kind.EXACT
    if progress:
        progress("verification", 0, int((~exact).sum()))
    # a logo, frame or caption most pictures carry at the same place is left out of their evidence
    overlay = shared_overlay_of(features, found.search_rows)
    evidence = pair_evidence(features, cands, found.kth_neighbour, transform_variants(s.transforms), min_ncc=s.min_ncc,
                             jobs=jobs, overlay=overlay, memo=memo)
    ncc = evidence[:, EVIDENCE.index("ncc")]
    # a pair read as overlapping tiles or tilted shows the search's similarity of the pictures
    # as that reading lines them up (the part in common, the tilted view)
    lined_up = MatchView.reading(cands.variant) != 0
    cosine = np.where(lined_up, evidence[:, EVIDENCE.index("cosine")], cands.cosine).astype(np.float32)
    hamming = np.where(lined_up, np.rint(evidence[:, EVIDENCE.index("hamming")] * 64), cands.hamming).astype(np.int16)
    cands = dataclasses.replace(cands, ncc=np.where(exact, np.nan, ncc).astype(np.float32), cosine=cosine,
                                hamming=hamming)
    keep = exact | (ncc >= s.min_ncc)
    measured_keys = cands.take(exact | ~np.isnan(ncc)).keys()  # a reading may refuse a pair (no evidence)
    cands, evidence = cands.take(keep), evidence[keep]
    exact = exact[keep]
    release_free_memory()
    if progress:
        progress("verification", int((~exact).sum()), int((~exact).sum()))
    t2 = time.perf_counter()
    warnings: list[str] = []
    if overlay is not None:
        carried = int(overlay.carried(features.thumb[found.search_rows]).sum())
        warnings.append(f"most images carry one overlay at the same place (a logo, frame, caption or watermark: "
                        f"{overlay.share:.0%} of the picture, shown plainly by {carried} of {len(found.search_rows)} "
                        "images): it is left out when images are compared")
    if found.overlap_skipped:
        warnings.append(f"overlapping tiles were not searched: {found.overlap_skipped} images of 64 px or more "
                        f"(the search runs on up to {OVERLAP_MAX_IMAGES:,}); audit the tiles of each scene or slide "
                        "on their own, or pass --no-overlap to say you do not need it")
    if found.tilted_skipped:
        warnings.append(f"copies rotated and then cropped free of their corners, or with their corners filled "
                        f"from the picture (edge pixels repeated or mirrored), were not searched: "
                        f"{found.tilted_skipped} images of 64 px or more (the search runs on up to "
                        f"{TILT_MAX_IMAGES:,}); audit a subset for them, or pass --no-crops to say you do not need it")
    n_ok = int(features.ok.sum())
    n_flat = int((features.ok & features.low_info).sum())
    if n_ok and n_flat > 0.2 * n_ok:
        warnings.append(f"{n_flat} of {n_ok} images are nearly uniform (too flat for their details to tell copies "
                        "apart): they are matched as exact copies only")
    t_cal = 0.0

    def calibrated() -> Calibration | None:
        nonlocal t_cal
        if progress:
            progress("calibration", 0, 1)
        tc = time.perf_counter()
        fitted = calibrate(features, s, found, images=images, model=model, jobs=jobs, overlay=overlay,
                           release_index=True, memo=memo)  # the calibration is the index's last user
        release_free_memory()
        t_cal = time.perf_counter() - tc
        if progress:
            progress("calibration", 1, 1)
        if fitted is None:
            warnings.append("too few images to calibrate the decision on; only exact copies are reported "
                            "as duplicates, other candidates are listed as possible")
        return fitted

    cal = None
    confidence = np.where(exact, 1.0, 0.0).astype(np.float32)
    if (~exact).any():
        cal = calibrated()
        if cal is None:
            confidence[~exact] = POSSIBLE_FLOOR
        else:
            # the share of copies among the candidates, estimated apart for each reading (the
            # overlapping-tile and tilted candidates are each image's few best matches: other base
            # rates), always among the search's own (not the pairs proposed only with a twin)
            reading = MatchView.reading(cands.variant)
            by_value = MatchView.by_brightness(cands.variant)
            own = ~found.by_twins(cands)
            whole = np.flatnonzero(~exact & (reading == 0) & ~by_value)
            p_whole = cal.predict(evidence[whole])
            _, prior = adjust_to_prior(p_whole[own[whole]])
            whole_prior = prior
            confidence[whole] = at_prior(p_whole, prior)
            cal = dataclasses.replace(cal, stats={**cal.stats, "prior": round(prior, 5)})
            # a pair a mirrored crop view proposes, one read by its brightness or its folded
            # brightness, or one the whole picture turned (a quarter or half turn, or mirrored
            # other than left to right) proposes, is at the lower of that share and the share among
            # such pairs no other view proposes (each is one more way to look alike: a mirror of
            # part of a picture, the brightness of a colourful one, a dark picture folded, a
            # symmetric silhouette or scene turned)
            for codes, stat in (((MatchView.CROPPED_HFLIP,), "prior_mirrored_crop"),
                                ((MatchView.VALUE,), "prior_hue_shift"), ((MatchView.FOLDED,), "prior_solarized"),
                                (TURNED_WHOLE, "prior_turned_whole")):
                rows = np.flatnonzero(~exact & np.isin(cands.variant, codes))
                if len(rows):
                    others = whole[~np.isin(cands.variant[whole], codes)]
                    alone = ~np.isin(cands.take(rows).keys(), cands.take(others).keys()) & own[rows]
                    confidence[rows], share = at_lower_share(cal.predict(evidence[rows]), prior, alone)
                    cal = dataclasses.replace(cal, stats={**cal.stats, stat: round(share, 5)})
            readings = dict(cal.readings)
            read_whole = cands.take(np.flatnonzero(~exact & (reading == 0))).keys()  # by brightness too
            for read, name in enumerate(READINGS[1:], start=1):
                rows = np.flatnonzero(reading == read)
                # overlapping tiles have a decision of their own; a tilted pair, lined up by its
                # tilted view, is evidence of the same kind as any pair lined up, and the whole-image
                # decision (which learnt from each copy's nearest look-alikes) decides it
                fitted = cal if name == "tilted" else readings.get(name)
                if len(rows) and fitted is not None:
                    # their own share of copies: among the pairs only this reading proposes (the
                    # others are read whole too)
                    p = fitted.predict(evidence[rows])
                    alone = ~np.isin(cands.take(rows).keys(), read_whole) & own[rows]
                    # a tilted pair is read by the whole-image decision: with few pairs of their
                    # own, their share stays near the candidates' as a whole, not at even odds
                    _, prior = adjust_to_prior(p[alone], centre=whole_prior if name == "tilted" else None)
                    confidence[rows] = at_prior(p, prior)
                    if name in readings:
                        readings[name] = dataclasses.replace(readings[name],
                                                             stats={**readings[name].stats, "prior": round(prior, 5)})
                    else:
                        cal = dataclasses.replace(cal, stats={**cal.stats, f"prior_{name}": round(prior, 5)})
                elif len(rows):  # too few such copies to learn from: worth a look, no more
                    confidence[rows] = POSSIBLE_FLOOR
            cal = dataclasses.replace(cal, readings=readings)
            auc = cal.stats.get("heldout_auc")
            if auc is not None and auc < MIN_AUC:
                warnings.append(
                    f"the images are too small or too alike for the evidence to tell copies from look-alikes well "
                    f"(held-out AUC {auc:.2f} on synthetic copies of this data): its confidences are not to be "
                    "trusted; check the pairs and the possible pairs in the report before acting on them")
    threshold = duplicate_bar(s, cal)
    # tiles sharing less than half their area are not copies of one picture: at most possible
    # (given the benefit of the offset's half-pixel precision on the thumbnail)
    small = (cands.variant == MatchView.OVERLAP) & (overlap_share(cands.offset, slack=0.5) < OVERLAP_MIN_SHARE)
    confidence[small] = np.minimum(confidence[small], threshold - 0.01)
    # a pair is read by its brightness (or folded) only where no other reading makes it a
    # duplicate (a copy of the same colours is read as it is, and says what it is)
    by_value = MatchView.by_brightness(cands.variant)
    kept = ~(by_value & np.isin(cands.keys(), cands.take(~by_value & (confidence >= threshold)).keys()))
    cands = _likelier(dataclasses.replace(cands.take(kept), confidence=confidence[kept]))
    cands = dataclasses.replace(cands, angle=tilted_angles(features, cands))  # the detail's angle, to the degree
    if images is not None and s.crops:  # crops of textures, which no thumbnail search can tell apart
        # the pairs the thumbnails' decision keeps (duplicates and possible) are not proposed again;
        # those it rejected may be: on 32 px a crop of gravel reads as another patch of it
        kept_keys = cands.take(cands.confidence >= POSSIBLE_FLOOR).keys()
        keyed, skipped = keypoint_pairs(features, found.search_rows, images, kept_keys, jobs=jobs,
                                        mirrored=MatchView.HFLIP in transform_variants(s.transforms))
        if found.apart is not None:  # only pairs across splits were asked for (scope "cross")
            keyed = keyed.take(found.apart[keyed.i] != found.apart[keyed.j])
        if skipped:
            warnings.append(f"crops of textures (grass, gravel, star fields) were not searched by their keypoints: "
                            f"{skipped} images of {LOOK_MIN_SIDE} px or more (the search runs on up to "
                            f"{SEARCH_MAX_IMAGES:,}); audit a subset for them, or pass --no-crops to say you do not "
                            "need it")
        if len(keyed) and cal is None and not (~exact).any():  # nothing was calibrated for the thumbnails
            cal = calibrated()
            threshold = duplicate_bar(s, cal)
        if len(keyed):  # proposed, not decided: the closer look decides them (in place of a rejected reading)
            keyed = dataclasses.replace(keyed, confidence=np.full(len(keyed), POSSIBLE_FLOOR, np.float32))
            cands = PairTable.concat([cands.take(~np.isin(cands.keys(), keyed.keys())), keyed]).sorted()
    if cal is not None and images is not None:  # the pairs left in doubt, seen closer (not rebuilt thumbnails)
        tl = time.perf_counter()
        confidence, look = closer_look(cands, found, features, images, threshold=threshold, floor=POSSIBLE_FLOOR,
                                       jobs=jobs)
        if look:
            confidence, not_followed = _plausible_look(cands, confidence, threshold, int(features.ok.sum()), look)
            if not_followed:
                look = {**look, "not_followed": {"images": not_followed[0], "pairs": not_followed[1]}}
                warnings.append(f"the closer look by keypoints alone would make duplicates of {not_followed[0]} of "
                                f"{int(features.ok.sum())} images ({not_followed[1]} pairs), and most pictures it "
                                "was calibrated on as look-alikes matched as copies do (pictures on one layout or "
                                "template: forms, screenshots): those pairs are left as the thumbnails decided them "
                                "(possible or below); check them in the report")
            on_layout = "layout_share" in look
            if look.get("not_used") == LOOK_ALIKES_AS_COPIES and look["looked_at"] and not on_layout:
                warnings.append(f"the closer look by keypoints was not used: most pictures it was to learn "
                                "look-alikes from matched as copies do (pictures on one layout or template: forms, "
                                f"screenshots); the {look['looked_at']} pairs it was to decide are left as the "
                                "thumbnails decided them (the keypoint search's as possible); check them in the report")
            off = look.get("off_layout", {})
            if off.get("not_used") == LOOK_ALIKES_AS_COPIES and off["looked_at"]:
                warnings.append(f"the closer look by keypoints was not used on the pictures off the layout: most it "
                                "was to learn look-alikes from matched as copies do; the "
                                f"{off['looked_at']} pairs it was to decide are left as the thumbnails decided them "
                                "(the keypoint search's as possible); check them in the report")
            layout_warning = _layout_warning(look)
            if layout_warning:
                warnings.append(layout_warning)
            if look.get("layout_past_budget"):
                warnings.append(f"{look['layout_past_budget']} duplicate pairs of pictures on one layout (forms, "
                                f"screenshots) were past the {LOOK_BUDGET:,} pairs the closer look takes: the "
                                "thumbnails cannot tell such pictures apart, so they are listed as possible, not "
                                "counted; audit a subset to decide them")
            cands = dataclasses.replace(cands, confidence=confidence)
            cal = dataclasses.replace(cal, stats={**cal.stats, "keypoints": look})
        if "unavailable" in look:
            warnings.append(f"{look['in_doubt']} pairs in doubt were not looked at closer: {look['unavailable']}; "
                            "reinstall opencv-python-headless")
        t2 += time.perf_counter() - tl
    exact, confidence = cands.kind == Kind.EXACT, cands.confidence
    if cal is not None:
        cal, warning = with_bar_in_force(cal, cands, len(features), s.min_precision)
        threshold = cal.threshold
        warnings += [warning] if warning else []
    dup = exact | (confidence >= threshold)
    possible = ~dup & (confidence >= POSSIBLE_FLOOR)
    pairs = cands.take(dup)
    tw = time.perf_counter()
    if cal is not None:
        within = within_group_pairs(features, pairs, found, s, cal, splits, jobs, overlay=overlay,
                                    measured=measured_keys)
        pairs = PairTable.concat([pairs, within.take(within.confidence >= threshold)]).sorted()
    t2 += time.perf_counter() - tw
    log.info("decision: %d candidates, %d duplicates (%d within groups), %d possible", len(cands), len(pairs),
             len(pairs) - int(dup.sum()), int(possible.sum()))
    return Detection(pairs=pairs, possible=cands.take(possible), calibration=cal,
                     warnings=tuple(warnings), timings={"search": t1 - t0, "verify": t2 - t1, "calibrate": t_cal})


#: A split of which more than this share has a copy in another is rarely real leakage (in a
#: split of at least IMPLAUSIBLE_MIN_IMAGES images): it is said (:mod:`leakscan.audit`); and the
#: closer look by keypoints is not followed where it alone makes duplicates of more than this
#: share of the images (at least IMPLAUSIBLE_MIN_IMAGES) on a fit that could not tell the
#: folder's look-alikes from copies (:func:`_plausible_look`).
IMPLAUSIBLE_SHARE = 0.5
IMPLAUSIBLE_MIN_IMAGES = 20


def _layout_warning(look: dict) -> str | None:
    """The warning on the pictures on a layout (forms, screenshots of one application), from the
    closer look's stats ``look``; None when no pair was decided on one. It names the pictures
    that share one (all of them; or, with pictures of other sizes sampled beside them or
    layouts at several sizes, those of the layouts' sizes) and says how their pairs were decided."""
    if "layout_share" not in look:
        return None
    layouts = look.get("layouts", ())
    several_sizes = len(layouts) > 1
    others_beside = (sum(layout["pictures"] for layout in layouts) < look.get("layout_sampled", 0)
                     or "off_layout" in look)
    if several_sizes:
        shared = f"pictures of {len(layouts)} sizes each share a layout"
        pairs_on_it = "pairs with a picture of one of those sizes"
    elif layouts and others_beside:
        shared = "pictures of one size share a layout"
        pairs_on_it = "pairs with a picture of that size"
    else:
        shared = "the pictures share one layout"
        pairs_on_it = "pairs"
    of_each = f"{'up to ' if several_sizes else ''}{look['layout_share']:.0%} of each"
    shared += f" ({of_each}: forms, screenshots of one application), which the thumbnails cannot see past"
    if look["used"]:
        return (f"{shared}: the {pairs_on_it} were decided by the closer look at what they show off it, and copies "
                "edited more than a little (turned, cropped) may be listed as possible only; check the possible pairs")
    return (f"{shared}, and the closer look by keypoints that decides such pairs was not used ({look['not_used']}): "
            f"the {look['layout_undecided']} duplicate {pairs_on_it} the thumbnails found are "
            "listed as possible, not counted; check them in the report")


def _plausible_look(cands: PairTable, looked: np.ndarray, threshold: float, n_images: int, look: dict) -> tuple:
    """``(confidence, not_followed)``: the closer look's confidences, unless the pairs it alone
    makes duplicates join more than :data:`IMPLAUSIBLE_SHARE` of the images while most of the
    look-alikes it was calibrated on were left out as possible copies (its fit learnt from the
    few unlike ones). Pictures on one layout (forms, screenshots of one application) share most
    of their keypoints, and one transform explains them as it explains a copy's: a folder of
    such look-alikes is not a folder of copies. (A folder of edited copies of a few pictures
    looks alike the other way: its look-alikes read as look-alikes.) Those pairs are then left as
    the thumbnails decided them (possible at most), and ``not_followed`` is ``(images, pairs)``
    they would have made duplicates (else None)."""
    raised = (cands.confidence < threshold) & (looked >= threshold) & (cands.kind != Kind.EXACT)
    touched = len(np.unique(np.concatenate([cands.i[raised], cands.j[raised]])))
    alike_as_copies = look.get("left_out_as_possible_copies", 0) > look.get("look_alikes", 0)
    if n_images < IMPLAUSIBLE_MIN_IMAGES or touched <= IMPLAUSIBLE_SHARE * n_images or not alike_as_copies:
        return looked, None
    return np.where(raised, cands.confidence, looked), (touched, int(raised.sum()))


#: Pairs of labelled images the two rates of :func:`weigh_labels` are each read from, at the least.
LABEL_MIN_PAIRS = 50
#: Duplicates at least this sure stand for the copies in :func:`weigh_labels`.
LABEL_SURE = 0.9


def weigh_labels(det: Detection, labels: np.ndarray, min_precision: float = 0.0) -> Detection:
    """``det`` with the images' labels as one more piece of evidence (Bayes' rule): the log odds
    of a pair whose two images carry different labels drop by
    ``log(P(labels differ | copy) / P(labels differ | look-alike))``, each rate read off this
    detection (half a pair added to each count): its duplicates of :data:`LABEL_SURE` or more for
    copies, its possible pairs for look-alikes. Copies mostly share a label (a copy with another
    one is a label error), while look-alikes (two planes on a blue sky, a plane and a bird) often
    do not, so such a pair needs evidence that much stronger; one that falls under the bar moves
    to the possible pairs, with its new confidence, and a warning says how many moved. Where
    labels say nothing of copies the two rates are alike and little changes; a pair is never
    made surer. Exact copies, pairs with an unlabelled image, and detections with fewer than
    :data:`LABEL_MIN_PAIRS` labelled pairs of either kind are left as they are. ``labels``: one
    per row of the detected features ("" for none). The calibration's ``stats["labels"]`` says
    what was read and done. What the bar promised is of the pairs as weighed: their
    ``expected_precision`` is read again, and with ``min_precision`` the bar is raised again
    where the pairs of two labels, lowered, bring the links under it
    (:func:`with_bar_in_force`; ``raised_from`` stays the bar it was first raised from).
    """
    cal = det.calibration
    labels = np.asarray(labels)
    if cal is None or not len(labels):
        return det

    def apart(t: PairTable) -> tuple:  # (labelled on both sides, labels differ)
        la, lb = labels[t.i], labels[t.j]
        return (la != "") & (lb != ""), la != lb
    sure = det.pairs.take((det.pairs.kind != Kind.EXACT) & (det.pairs.confidence >= LABEL_SURE))
    copies, look = apart(sure), apart(det.possible)
    n_copies, n_look = int(copies[0].sum()), int(look[0].sum())
    stats = {"copies": n_copies, "copies_apart": int((copies[0] & copies[1]).sum()),
             "look_alikes": n_look, "look_alikes_apart": int((look[0] & look[1]).sum())}
    if min(n_copies, n_look) < LABEL_MIN_PAIRS:
        return dataclasses.replace(det, calibration=dataclasses.replace(
            cal, stats={**cal.stats, "labels": {**stats, "used": False}}))
    rate_copy = (stats["copies_apart"] + 0.5) / (n_copies + 1)
    rate_look = (stats["look_alikes_apart"] + 0.5) / (n_look + 1)
    shift = min(0.0, float(np.log(rate_copy / rate_look)))

    def weighed(t: PairTable) -> np.ndarray:
        labelled, differ = apart(t)
        c = np.clip(t.confidence.astype(np.float64), 1e-9, 1 - 1e-9)
        lowered = 1 / (1 + np.exp(-(np.log(c / (1 - c)) + shift)))
        hit = labelled & differ & (t.kind != Kind.EXACT)
        return np.where(hit, lowered, t.confidence).astype(np.float32)
    pairs = dataclasses.replace(det.pairs, confidence=weighed(det.pairs))
    possible = dataclasses.replace(det.possible, confidence=weighed(det.possible))
    bar, raised_from = cal.threshold, cal.stats.get("raised_from")
    cal, no_pair_left = with_bar_in_force(cal, pairs, len(labels), min_precision)
    if raised_from is not None:
        cal = dataclasses.replace(cal, stats={**cal.stats, "raised_from": raised_from})
    moved = (pairs.kind != Kind.EXACT) & (pairs.confidence < bar)
    under = (pairs.kind != Kind.EXACT) & (pairs.confidence < cal.threshold)
    stats.update(used=True, log_ratio=round(shift, 3), moved_to_possible=int(moved.sum()))
    possible = PairTable.concat([possible, pairs.take(under)]).sorted()
    possible = possible.take(possible.confidence >= POSSIBLE_FLOOR)
    warnings = det.warnings
    if moved.any():  # said, so that a label conflict the weighing took away is not lost unseen
        warnings += (f"{int(moved.sum())} duplicate pairs of two labels are not counted: here copies differ in label "
                     f"{rate_copy:.2%} of the time and look-alikes {rate_look:.1%}, so their pictures were not "
                     f"evidence enough (those still at {POSSIBLE_FLOOR} or more are in possible.csv); "
                     "--no-label-evidence counts them by their pictures alone",)
    if cal.threshold > bar:
        stats["raised_to"] = round(float(cal.threshold), 4)
        warnings += (f"with the pairs of two labels weighed, the duplicate links fell under --min-precision "
                     f"{min_precision:.0%}: the bar rose from {bar:.4f} to {cal.threshold:.4f}, and "
                     f"{int((under & ~moved).sum())} more pairs are possible, not counted",)
    warnings += (no_pair_left,) if no_pair_left else ()  # (said only when the bar rose)
    return dataclasses.replace(det, pairs=pairs.take(~under), possible=possible, warnings=warnings,
                               calibration=dataclasses.replace(cal, stats={**cal.stats, "labels": stats}))


def duplicate_bar(settings: DetectSettings, calibration: Calibration | None) -> float:
    """The confidence a pair needs to be a duplicate: ``settings.min_confidence``, or the bar the
    calibration holds (raised by ``min_precision``: :func:`with_bar_in_force`)."""
    return float(settings.min_confidence if calibration is None else calibration.threshold)


def with_bar_in_force(cal: Calibration, cands: PairTable, n: int, min_precision: float) -> tuple:
    """``(cal, warning)``: the decision with its bar raised until the links that join the ``n``
    images into groups (:func:`~leakscan.groups.joining_links`; exact copies at 1) are expected
    ``min_precision`` real (:func:`precision_bar`), its ``expected_precision`` (and
    ``raised_from``) in the stats; a warning (or None) when no pair but exact copies is left."""
    exact = cands.kind == Kind.EXACT
    sure = np.where(exact, np.float32(1.0), cands.confidence)
    at = sure >= cal.threshold
    bar, expected = precision_bar(joining_links(n, cands.i[at], cands.j[at], sure[at]), cal.threshold, min_precision)
    stats = {**cal.stats, "expected_precision": None if expected is None else round(expected, 4)}
    warning = None
    if bar > cal.threshold:
        stats["raised_from"] = round(float(cal.threshold), 4)
        if not (~exact & (cands.confidence >= bar)).any():
            warning = (f"no pair but exact copies is sure enough for the duplicate links to be {min_precision:.0%} "
                       "real copies: the others are listed as possible; lower --min-precision (0: off) to count them")
    return dataclasses.replace(cal, threshold=bar, stats=stats), warning


def precision_bar(confidence, threshold: float, min_precision: float) -> tuple[float, float | None]:
    """``(bar, expected)``: the lowest confidence of ``threshold`` or more at which the pairs
    (:func:`detect`: the links that join images into groups) at it or more are expected to be
    ``min_precision`` real copies or more (their mean confidence:
    each is the probability that its pair is one), or to hold at most one look-alike (the sum
    of their chances of being one: a share says little of a handful of pairs), and that mean.
    Pairs of equal confidence stay on one side. When not even the surest pairs are: a bar
    above them all (None: no pair at ``threshold``). ``min_precision`` 0: ``threshold``.

    >>> c = np.float32([1.0, 1.0, 0.9, 0.8, 0.6, 0.55, 0.2] + [0.99] * 20)  # confidences are float32
    >>> [round(x, 4) for x in precision_bar(c, 0.5, 0.95)]  # the 0.55 pair would bring it to 0.948
    [0.6, 0.964]
    >>> [round(x, 4) for x in precision_bar(c, 0.5, 0.0)]
    [0.5, 0.9481]
    >>> [round(x, 4) for x in precision_bar(np.float32([0.99, 0.63]), 0.5, 0.95)]  # one look-alike at most
    [0.5, 0.81]
    >>> precision_bar(np.float32([0.5, 0.5, 0.5]), 0.5, 0.95)[0] > 0.5
    True
    """
    c = np.sort(np.asarray(confidence, np.float32)[np.asarray(confidence) >= threshold])[::-1].astype(np.float64)
    if not len(c):
        return float(threshold), None
    mean = np.cumsum(c) / np.arange(1, len(c) + 1)
    if min_precision <= 0:
        return float(threshold), float(mean[-1])
    ends = np.r_[c[1:] < c[:-1], True]  # the last pair of each run of equal confidences
    ok = np.flatnonzero(ends & ((mean >= min_precision - 1e-9) | (np.cumsum(1 - c) <= 1 + 1e-9)))
    if not len(ok):
        return float(np.nextafter(np.float32(c[0]), np.float32(2))), None
    k = ok[-1]
    return (float(threshold) if k == len(c) - 1 else max(float(threshold), float(c[k]))), float(mean[k])


#: The pairs within groups measured at most: as many as the search proposed, and at least this many.
GROUP_PAIRS_BUDGET = 10_000


def within_group_pairs(features: Features, dup: PairTable, found: Candidates, settings: DetectSettings,
                       cal: Calibration, splits=None, jobs: int = 1, budget: int | None = None,
                       overlay: SharedOverlay | None = None, measured: np.ndarray | None = None) -> PairTable:
    """The pairs of the members of each duplicate group that no search proposed (or whose
    reading refused them: only the pair keys ``measured`` were, default all proposed) and whose
    embeddings are as alike as the search asks of a neighbour (``neighbour_min_cosine``),
    measured and decided like the whole-image candidates (at their share of copies: the group
    is no evidence for them), every confidence set.

    The search proposes each image's nearest few; where a picture has many copies (CIFAR-10
    holds one car photograph dozens of times) those few are other copies, and a copy further
    down the list is reached only through them: in the group, but not as a pair of its own.
    Only the images the search looked at take part (``found.search_rows``: one of each set of
    identical pictures, which stay a star of exact pairs; no nearly flat image). Groups are
    taken smallest first while their pairs stay within ``budget`` (default: as many as the
    search proposed, at least :data:`GROUP_PAIRS_BUDGET`), so a group chained out of many
    pictures costs no more. A shared ``overlay`` is left out, as for the candidates.
    """
    n = len(features)
    budget = max(len(found.pairs), GROUP_PAIRS_BUDGET) if budget is None else budget
    label = components(n, dup.i, dup.j)
    rows = np.intersect1d(found.search_rows, np.r_[dup.i, dup.j])  # searched images in a group
    size = np.bincount(label[rows], minlength=n)[label[rows]]  # searched images in each one's group
    # groups of 3 or more (a pair's group is its pair), smallest first while their pairs fit
    sizes, members = np.unique(size[size > 2], return_counts=True)
    cost = np.cumsum(members // sizes * (sizes * (sizes - 1) // 2))
    largest = int(sizes[cost <= budget].max()) if (cost <= budget).any() else 0
    keep = (size > 2) & (size <= largest)
    rows, size = rows[keep], size[keep]
    order = np.argsort(label[rows], kind="stable")  # by group, ascending within each
    rows, size = rows[order], size[order]
    i_parts, j_parts = [], []
    for k in np.unique(size).tolist():  # the groups of k members, all at once
        members = rows[size == k].reshape(-1, k)
        a, b = np.triu_indices(k, 1)
        i_parts.append(members[:, a].ravel())
        j_parts.append(members[:, b].ravel())
    if not i_parts:
        return PairTable.empty()
    i, j = np.concatenate(i_parts), np.concatenate(j_parts)
    new = ~np.isin(pair_keys(i, j), found.pairs.keys() if measured is None else measured)
    if settings.scope == "cross" and splits is not None:
        new &= np.asarray(splits, dtype=object)[i] != np.asarray(splits, dtype=object)[j]
    i, j = i[new], j[new]
    variants = transform_variants(settings.transforms)
    hamming, cosine, variant = measure_pairs(features, i, j, variants)
    near = cosine >= settings.neighbour_min_cosine  # as alike as the search asks of a neighbour
    i, j, hamming, cosine, variant = i[near], j[near], hamming[near], cosine[near], variant[near]
    m = len(i)
    pairs = PairTable(i=i, j=j, kind=np.full(m, Kind.EMBEDDING, np.uint8), score=cosine, hamming=hamming,
                      cosine=cosine, variant=variant, same_bytes=np.zeros(m, bool))
    if not m:
        return pairs
    evidence = pair_evidence(features, pairs, found.kth_neighbour, variants, min_ncc=settings.min_ncc, jobs=jobs,
                             overlay=overlay)
    ncc = evidence[:, EVIDENCE.index("ncc")]
    confidence = np.zeros(m, np.float32)
    held = ncc >= settings.min_ncc
    if held.any():
        confidence[held] = at_prior(cal.predict(evidence[held]), cal.stats["prior"])
    return dataclasses.replace(pairs, ncc=ncc.astype(np.float32), confidence=confidence).take(held)


def _likelier(pairs: PairTable) -> PairTable:
    """One row per (i, j), sorted: a pair read more than one way (whole, as overlapping tiles,
    tilted) keeps the likelier reading (the higher confidence)."""
    return pairs.first_per_pair(-pairs.confidence)


def find_pairs(features: Features, settings: DetectSettings | None = None, *, images: ImageSource | None = None,
               splits: np.ndarray | None = None, model=None, progress=None) -> PairTable:
    """The duplicate pairs among ``features`` (see :func:`detect`; this drops the possible tier).

    ``images``: the :class:`~leakscan.manifest.Manifest` the features were extracted from (its
    pictures are read again for the calibration, the keypoint search and the closer look), or a
    function of row numbers returning pictures; without it those read pictures rebuilt from the
    thumbnails, and the keypoint search and the closer look do not run.

    Examples
    --------
    >>> import numpy as np
    >>> from leakscan.discovery import discover
    >>> from leakscan.features import extract_features
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    >>> imgs = np.concatenate([a, a[:1]])          # image 2 is a copy of image 0
    >>> pt = find_pairs(extract_features(discover(imgs), jobs=1))
    >>> [(int(i), int(j), str(k)) for i, j, k in zip(pt.i, pt.j, pt.kind_names())]
    [(0, 2, 'exact')]
    """
    if isinstance(images, Manifest):
        manifest = images
        if len(manifest) != len(features):
            raise ConfigError(f"images= is a manifest of {len(manifest)} images, but the features are of "
                              f"{len(features)}: give the manifest they were extracted from")

        def pictures_of(rows):
            return load_pictures(manifest, rows, kept=features.pictures)
        images = pictures_of
    elif images is not None and not callable(images):
        raise ConfigError(f"images= must be the Manifest the features were extracted from (or a function of row "
                          f"numbers returning pictures), got {type(images).__name__}")
    return detect(features, settings, images=images, splits=splits, model=model, progress=progress).pairs
