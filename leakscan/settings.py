"""Every detection threshold and its default, defined once and validated once.

The CLI reads its option defaults from :data:`DEFAULTS`, the grouping stage reads its
thresholds from the :class:`DetectSettings` it is given, and the README's table of options
is checked against these values by the tests.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Optional

from .errors import ConfigError

__all__ = ["DetectSettings", "DEFAULTS", "TRANSFORMS", "SCOPES", "MODEL_BATCH", "RANDOM_STATE", "POSSIBLE_FLOOR",
           "DECODE_SIDE", "Span", "SPANS"]

#: Names accepted by ``DetectSettings.transforms``: which rotations/flips count as copies.
TRANSFORMS = ("all", "flip", "none")
#: Names accepted by ``DetectSettings.scope``.
SCOPES = ("all", "cross")
#: Images per run of an ONNX model (``--model-batch``).
MODEL_BATCH = 32
#: Candidates with a confidence from this floor up to ``min_confidence`` are *possible*
#: duplicates (``possible.csv``); below it they are dropped.
POSSIBLE_FLOOR = 0.1
#: Image files decode at the smallest scale that keeps this many pixels on the shorter side
#: (JPEG: 1/2, 1/4 or 1/8 scale in the decoder; other formats: a whole-factor box reduction).
#: Every feature is made from a 32x32 or 16x16 thumbnail; ``--full-decode`` decodes at full size.
DECODE_SIDE = 256
#: Seed of the re-split when none is given (``--seed``), for every entry point.
RANDOM_STATE = 0


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


@dataclass(frozen=True)
class Span:
    """The values a number setting takes: from ``low`` to ``high`` (None: unbounded; ``low_open``,
    ``high_open``: the bound itself refused), whole numbers only when ``whole``; ``note`` says what
    a value at the edge means ("-1: off"). The settings check their values with it, and the CLI's
    options their parsing and --help.

    >>> Span(0, 1, low_open=True).refusal("ratio", "0")
    'ratio must be in (0, 1], got 0'
    >>> Span(-1, 64, whole=True, note="-1: off").holds(65)
    False
    """

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    whole: bool = False
    note: str = ""

    def holds(self, x) -> bool:
        """``x`` is a number of the right kind (not a bool, not NaN) within the span."""
        if not (_is_int(x) if self.whole else _is_real(x)) or math.isnan(x):
            return False
        return not ((self.low is not None and (x < self.low or self.low_open and x == self.low))
                    or (self.high is not None and (x > self.high or self.high_open and x == self.high)))

    def __str__(self) -> str:
        """``in (0, 1]``, ``> 0``, ``>= 1`` or ``<= 1``, then the note: ``in [-1, 64] (-1: off)``."""
        if self.low is not None and self.high is not None:
            span = (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        elif self.low is not None:
            span = f"{'>' if self.low_open else '>='} {self.low:g}"
        else:
            span = f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"{span} ({self.note})" if self.note else span

    def refusal(self, name: str, given: str) -> str:
        """The line that refuses the value (as ``given``) of the setting or option ``name``."""
        return f"{name} must be {'a whole number ' if self.whole else ''}{self}, got {given}"


#: The span of every number in :class:`DetectSettings`, by field: the one place each range is
#: written (the settings check with it; the CLI's options parse and show it).
SPANS = {
    "max_hamming": Span(-1, 64, whole=True, note="-1: off"),
    "min_cosine": Span(0, None, low_open=True, note="above 1: off"),
    "sure_cosine": Span(0, None, low_open=True, note="above 1: the ratio test always"),
    "ratio": Span(0, 1, low_open=True),
    "k": Span(1, 1000, whole=True),
    "min_ncc": Span(-1, 1, note="-1: keep every candidate"),
    "min_confidence": Span(0, 1, low_open=True),
    "min_precision": Span(0, 1, high_open=True, note="0: off"),
    "neighbours": Span(0, 100, whole=True),
    "neighbour_min_cosine": Span(0, None, low_open=True, note="above 1: off"),
    "model_min_cosine": Span(0, None, low_open=True, note="above 1: off"),
}


@dataclass(frozen=True)
class DetectSettings:
    """Thresholds of duplicate detection (the defaults are documented in the README).

    Parameters
    ----------
    max_hamming : int
        pHash pairs at Hamming distance ``<=`` this are candidates (0-64; -1 turns hashes off).
    min_cosine : float
        Embedding candidates need at least this cosine similarity (in (0, 1], or > 1 to turn
        embeddings off).
    sure_cosine : float
        Embedding candidates at or above this similarity need no ratio test (in (0, 1], or > 1
        to always apply it).
    ratio : float
        Ratio test: distance to the partner ``<=`` ratio x distance to the k-th neighbour.
    k : int
        Neighbourhood size of the ratio test.
    min_ncc : float
        Floor of the aligned-detail correlation: candidates whose thumbnails, aligned, correlate
        less than this are dropped before the decision (in [-1, 1]; -1 keeps every candidate).
    min_confidence : float
        A pair is a *duplicate* when its confidence (the calibrated probability that the two
        images are the same picture, :mod:`leakscan.calibrate`) is at least this; candidates
        from :data:`POSSIBLE_FLOOR` up to it are *possible* duplicates, listed but never counted.
    min_precision : float
        The share of the duplicate links (the pairs that join images into groups, the surest
        where several join the same two) expected to be real copies, at least: when the mean
        confidence of those at ``min_confidence`` or more is lower, the bar is raised to the
        lowest confidence at which it is not (:func:`leakscan.decide.precision_bar`; the pairs
        under it are possible duplicates). In [0, 1); 0 turns it off.
    neighbours : int
        Each image's ``neighbours`` nearest images by embedding (as it is, and turned back off
        its canvas when it was rotated on one) are candidates whenever their cosine is at
        least ``neighbour_min_cosine``, whatever the ratio test says (the decision, not the
        search, tells copies from look-alikes).
    neighbour_min_cosine : float
        See ``neighbours``.
    transforms : {"all", "flip", "none"}
        Which rotations/flips of an image also count as copies: all eight, the mirror image
        only, or none.
    crops : bool
        Also search a few crops of every image (70% of the area: the centre and the four
        corners), which finds cropped copies the whole-image embedding misses; and, with
        ``transforms="all"``, the tilted views of images of 64 px or more a side (turned by an
        angle and cropped upright), which find copies rotated and then cropped free of their
        corners (detail ``rotated N deg and cropped``).
    overlap : bool
        Also search for overlapping tiles: two crops of one large image sharing half their
        area or more (images at least 64 pixels a side), reported with detail ``overlap N%``.
    label_evidence : bool
        Where the images are labelled, weigh a pair of two labels against how often this
        dataset's copies and look-alikes differ in label (:func:`leakscan.decide.weigh_labels`);
        off, the pictures alone decide. Applied after the detection's cache (not in its key).
    model_min_cosine : float
        With an ONNX model (:mod:`leakscan.model`): pairs whose model embeddings have at least
        this cosine similarity are candidates (kind ``model``), and the model's cosine raises a
        pair's confidence only at it or more (below, the thumbnails decide alone: ``calibration.
        model_floor``); in (0, 1], or > 1 to turn both off.
    scope : {"all", "cross"}
        ``"all"``: duplicates within and across splits. ``"cross"``: only pairs across splits,
        found by querying the images of the smaller splits against an index of everything
        (much less search when one split, usually train, dominates).

    Examples
    --------
    >>> DetectSettings().max_hamming
    6
    >>> DetectSettings(crops="no")
    Traceback (most recent call last):
    ...
    leakscan.errors.ConfigError: crops must be True or False, got 'no'
    >>> DetectSettings(max_hamming=99)
    Traceback (most recent call last):
    ...
    leakscan.errors.ConfigError: max_hamming must be a whole number in [-1, 64] (-1: off), got 99
    """

    max_hamming: int = 6
    min_cosine: float = 0.70
    sure_cosine: float = 0.97
    ratio: float = 0.7
    k: int = 10
    min_ncc: float = 0.40
    min_confidence: float = 0.5
    min_precision: float = 0.95
    neighbours: int = 2
    neighbour_min_cosine: float = 0.6
    transforms: str = "all"
    scope: str = "all"
    crops: bool = True
    overlap: bool = True
    label_evidence: bool = True
    model_min_cosine: float = 0.75

    def __post_init__(self) -> None:
        for name, span in SPANS.items():
            if not span.holds(getattr(self, name)):
                raise ConfigError(span.refusal(name, repr(getattr(self, name))), keyword=name)
        if self.scope not in SCOPES:
            raise ConfigError(f"scope must be 'all' or 'cross', got {self.scope!r}", keyword="scope")
        if self.transforms not in TRANSFORMS:
            raise ConfigError(f"transforms must be one of {', '.join(TRANSFORMS)}, got {self.transforms!r}",
                              keyword="transforms")
        for name in ("crops", "overlap", "label_evidence"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}", keyword=name)

    def to_dict(self) -> dict:
        return asdict(self)


#: The defaults, as one value (the CLI's option defaults read from it).
DEFAULTS = DetectSettings()
