"""ORB keypoints of a picture (OpenCV): what the keypoint search indexes and the closer look matches.

Every picture is brought to one side (:data:`~leakscan.features.PICTURE_SIDE` px on its longer
side, given by the caller) before its keypoints are found, so the tolerances of
:mod:`leakscan.keypoints` mean the same on every picture. The search's keypoints of a picture
(its :data:`STRONGEST` strongest, taken from all over it: :func:`spread_strongest`, and off any
box painted over it: :func:`painted_boxes`) are found in
the feature pass, from the decode the features already make (:func:`strongest_keypoints`), and
kept with the features (and their cache), so the search decodes nothing again.
"""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

__all__ = ["LOOK_MIN_SIDE", "STRONGEST", "KEYPOINT_RECORD", "SPREAD_GRID", "detector", "opencv_loads",
           "grey_at_side", "painted_boxes", "spread_strongest", "strongest_keypoints"]

#: Pictures smaller than this on their shorter side (CIFAR's 32 px) have too few keypoints.
LOOK_MIN_SIDE = 64
#: Keypoints per picture the keypoint search indexes: its strongest ORB keypoints, spread.
STRONGEST = 128
#: The search's keypoints are taken in rounds over a grid of this many cells a side, at most
#: STRONGEST / SPREAD_GRID**2 of each cell's strongest a round, so that a caption, a bright star
#: or an optic disc that ORB finds many times over does not take every place (a flat cell's
#: share goes to the others in the next rounds).
SPREAD_GRID = 4
#: A box painted over a picture (an erased box, a dropout hole: a filled rectangle of one grey
#: level) gives ORB strong corners all along its edges, detail no copy without the box has:
#: the search leaves out a keypoint whose patch reaches into one (:func:`painted_boxes`). A box
#: is a run of pixels whose 5x5 neighbourhood spans at most BOX_FLAT_LEVELS grey levels, filling
#: BOX_FILL of its bounding rectangle and BOX_INSIDE_FILL of it away from its edges (no word,
#: star or line inside: a panel with a label is no box; a painted band too thin to have an
#: inside is one), of at least BOX_MIN_SHARE of the picture (a 14 px square at 256 px) and at
#: most BOX_MAX_SHARE (a black sky or a white page is as large as the picture).
BOX_FLAT_LEVELS = 2
BOX_FILL = 0.9
BOX_INSIDE_FILL = 0.99
BOX_MIN_SHARE = 0.003
BOX_MAX_SHARE = 0.5
#: The box's edge as found lies up to this many px inside the painted one (the 5x5 window).
BOX_MARGIN_PX = 2
#: One picture's search keypoints as the features keep them (and the feature cache stores
#: them): how many, the size of the picture they were found on, and their places and ORB
#: descriptors (the first ``count`` rows); then the same of the picture mirrored left to right
#: (ORB's descriptors are not: a mirrored copy matches only the mirrored picture's), places on
#: the mirrored picture. Change the layout only with FEATURE_VERSION.
KEYPOINT_RECORD = np.dtype([("count", np.int16), ("width", np.int16), ("height", np.int16),
                            ("points", np.float32, (STRONGEST, 2)), ("codes", np.uint8, (STRONGEST, 32)),
                            ("mirrored_count", np.int16), ("mirrored_points", np.float32, (STRONGEST, 2)),
                            ("mirrored_codes", np.uint8, (STRONGEST, 32))])

_local = threading.local()


def detector():
    """This thread's ORB detector (OpenCV releases the GIL in it: threads share the work)."""
    import cv2  # noqa: PLC0415 - OpenCV loads only when keypoints are needed

    if getattr(_local, "orb", None) is None:
        _local.orb = cv2.ORB_create(nfeatures=500, edgeThreshold=15, patchSize=15, fastThreshold=10)
    return _local.orb


def opencv_loads() -> bool:
    """Whether OpenCV can be imported. Without it (a broken install) no keypoints are kept or
    searched and nothing is looked at closer, each said: a search result depends on it."""
    try:
        import cv2  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def grey_at_side(picture: Image.Image, side: int) -> np.ndarray:
    """The picture in grey levels, brought to ``side`` px on its longer side."""
    gray = picture.convert("L")
    scale = side / max(gray.size)
    if abs(scale - 1) > 0.01:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), Image.BILINEAR)
    return np.asarray(gray)


def spread_strongest(points: np.ndarray, response: np.ndarray, shape: tuple) -> np.ndarray:
    """The indices of the :data:`STRONGEST` keypoints the search keeps, strongest first within
    each round: each round takes up to ``STRONGEST // SPREAD_GRID**2`` of the strongest left in
    every cell of a :data:`SPREAD_GRID` grid over a picture of ``shape`` (rows, columns).

    >>> points = np.float32([[1, 1]] * 200 + [[90, 90]] * 10)   # 200 in one corner, 10 in another
    >>> kept = spread_strongest(points, np.arange(210, 0, -1, dtype=np.float32), (100, 100))
    >>> len(kept), int((kept >= 200).sum())                      # all 10 of the weaker corner kept
    (128, 10)
    """
    n = len(points)
    column = np.minimum((points[:, 0] * SPREAD_GRID / shape[1]).astype(int), SPREAD_GRID - 1)
    row = np.minimum((points[:, 1] * SPREAD_GRID / shape[0]).astype(int), SPREAD_GRID - 1)
    by_strength = np.argsort(-response, kind="stable")
    cell = (row * SPREAD_GRID + column)[by_strength]
    grouped = np.argsort(cell, kind="stable")
    rank = np.empty(n, int)
    rank[grouped] = np.arange(n) - np.searchsorted(cell[grouped], cell[grouped])
    per_round = max(1, STRONGEST // SPREAD_GRID ** 2)
    return by_strength[np.lexsort((np.arange(n), rank // per_round))][:STRONGEST]


def painted_boxes(gray: np.ndarray) -> np.ndarray | None:
    """Each pixel's distance (px) to the nearest box painted over ``gray`` (see :data:`BOX_FILL`),
    or None when it has none.

    >>> gray = np.random.default_rng(0).integers(0, 255, (100, 100), dtype=np.uint8)
    >>> painted_boxes(gray) is None                       # texture all over: no box
    True
    >>> gray[20:50, 30:70] = 0                             # a black box, 12% of the picture
    >>> distance = painted_boxes(gray)
    >>> float(distance[35, 50]), float(distance[35, 90]) > 15
    (0.0, True)
    >>> gray[30:34, 40:60] = 255                           # a word on it: a panel, not a box
    >>> painted_boxes(gray) is None
    True
    """
    import cv2  # noqa: PLC0415

    window = np.ones((5, 5), np.uint8)
    flat = (cv2.dilate(gray, window) - cv2.erode(gray, window)) <= BOX_FLAT_LEVELS
    if np.count_nonzero(flat) < BOX_MIN_SHARE * gray.size:
        return None
    _, labels, stats, _ = cv2.connectedComponentsWithStats(flat.view(np.uint8), connectivity=4)  # 0: not flat
    area = stats[:, cv2.CC_STAT_AREA]
    bounds = stats[:, cv2.CC_STAT_WIDTH].astype(np.int64) * stats[:, cv2.CC_STAT_HEIGHT]
    size = gray.size
    candidate = (area >= BOX_MIN_SHARE * size) & (bounds <= BOX_MAX_SHARE * size) & (area >= BOX_FILL * bounds)
    candidate[0] = False  # the pixels that are not flat
    boxes, inset = [], BOX_MARGIN_PX + 1
    for k in np.flatnonzero(candidate).tolist():
        x, y, w, h = stats[k, :4].tolist()
        inside = labels[y + inset:y + h - inset, x + inset:x + w - inset]
        if not inside.size or np.count_nonzero(inside == k) >= BOX_INSIDE_FILL * inside.size:  # (a band: no inside)
            boxes.append(k)
    if not boxes:
        return None
    outside = ~np.isin(labels, boxes)
    return cv2.distanceTransform(outside.view(np.uint8), cv2.DIST_L2, 3)


def strongest_keypoints(picture: Image.Image, side: int) -> np.ndarray:
    """The :data:`STRONGEST` strongest ORB keypoints of ``picture`` brought to ``side`` px, taken
    from all over it (:func:`spread_strongest`) and off any box painted over it
    (:func:`painted_boxes`), and of that mirrored left to right, as a
    :data:`KEYPOINT_RECORD` (``count`` 0 when it has none); OpenCV's errors are the caller's."""
    a = grey_at_side(picture, side)
    out = np.zeros((), KEYPOINT_RECORD)
    out["width"], out["height"] = a.shape[1], a.shape[0]
    to_box = painted_boxes(a)
    for prefix, gray in (("", a), ("mirrored_", np.ascontiguousarray(a[:, ::-1]))):
        kp, des = detector().detectAndCompute(gray, None)
        if des is None or not len(kp):
            continue
        points = np.float32([k.pt for k in kp]).reshape(-1, 2)
        if to_box is not None:  # off the boxes painted over it (their corners are no copy's)
            distance = (to_box if not prefix else to_box[:, ::-1])[
                np.clip(points[:, 1].round().astype(int), 0, a.shape[0] - 1),
                np.clip(points[:, 0].round().astype(int), 0, a.shape[1] - 1)]
            off = np.flatnonzero(distance > np.float32([k.size for k in kp]) / 2 + BOX_MARGIN_PX)
            if not len(off):
                continue
            points, des, kp = points[off], des[off], [kp[k] for k in off.tolist()]
        order = spread_strongest(points, np.float32([k.response for k in kp]), gray.shape)
        out[prefix + "count"] = len(order)
        out[prefix + "points"][:len(order)] = points[order]
        out[prefix + "codes"][:len(order)] = des[order]
    return out
