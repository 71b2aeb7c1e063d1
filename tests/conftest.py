"""Shared helpers: paths of the bundled fixtures and generators of real (structured) test images."""

from __future__ import annotations

import ctypes
import os

# Under pytest-xdist each worker process computes with one OpenMP and BLAS thread: the workers
# already fill the cores, and faiss's OpenMP threads, two a worker, spun waiting for each other
# (an audit's nearest-neighbour search took 10-20 s instead of 2). Set before numpy and faiss load.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
BENCH = ROOT.parent / "shared" / "bench" / "cifar10"


def tree_digest(root) -> dict:
    """SHA-256 of every file under root (broken links and unreadable files recorded as such)."""
    import hashlib
    import os

    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) and not os.path.exists(p):
                out[p] = "broken-link"
                continue
            try:
                with open(p, "rb") as fh:
                    out[p] = hashlib.sha256(fh.read()).hexdigest()
            except OSError as exc:
                out[p] = f"error {exc.errno}"
    return out


def known_duplicates() -> list[dict]:
    with open(FIXTURES / "known_duplicates.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def csv_rows(path) -> list[dict]:
    """The rows of a CSV file leakscan wrote, as dicts."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def fixtures_audit(tmp_path_factory):
    """``(Audit, out folder)`` of the bundled fixtures with the defaults, written without the
    report page; made once and only read by the tests."""
    import leakscan
    from leakscan.report import write_outputs

    out = tmp_path_factory.mktemp("fixtures-audit") / "out"
    result = leakscan.audit(FIXTURES, cache=False, jobs=1)
    write_outputs(result, out, html=False)
    return result, out


def scene(seed: int, size: int = 96) -> Image.Image:
    """A structured RGB picture: a smooth random background plus random shapes (not noise)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    img = Image.fromarray(base, "RGB").resize((size, size), Image.BICUBIC)
    d = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.integers(0, max(1, size - 10), 2)
        x1, y1 = x0 + rng.integers(4, max(5, size // 2)), y0 + rng.integers(4, max(5, size // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            d.rectangle([int(x0), int(y0), int(x1), int(y1)], fill=colour)
        else:
            d.ellipse([int(x0), int(y0), int(x1), int(y1)], fill=colour)
    return img


def font(size: int):
    """Pillow's own font at ``size`` px (its bitmap font on Pillow < 10.1)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def surface(seed: int, size=(320, 240)) -> Image.Image:
    """A low-contrast grey surface (concrete, the moon): faint fine detail, every seed another
    patch; a logo on it gives ORB most of its keypoints, and its thumbnail shows little else."""
    from PIL import ImageFilter

    rng = np.random.default_rng(seed)
    w, h = size
    fine = Image.fromarray(rng.integers(0, 256, (h // 3, w // 3), np.uint8)).resize(size, Image.BICUBIC)
    fine = np.asarray(fine.filter(ImageFilter.GaussianBlur(1.0)), np.float32)
    grey = np.clip((fine - 128) * 0.4 + 120 + rng.normal(0, 5), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")


def under_one_logo(img: Image.Image) -> Image.Image:
    """``img`` with a stock site's logo stamped on it: a red disc with white letters, half the
    picture's height, bottom right."""
    out = img.copy()
    w, h = out.size
    s = int(min(w, h) * 0.5)
    x0, y0 = w - s - 8, h - s - 8
    d = ImageDraw.Draw(out)
    d.ellipse([x0, y0, x0 + s, y0 + s], fill=(200, 30, 30), outline=(255, 255, 255), width=5)
    d.text((x0 + s // 6, y0 + s // 3), "LOGO", fill=(255, 255, 255), font=font(s // 3))
    return out


def photo_halves() -> list:
    """Six pictures of 300x200: the left and right halves of scikit-learn's two sample photos,
    and their middles turned upside down. A middle shares half its area with each half of its
    photo (:func:`middle_and_half`); the halves share nothing."""
    from sklearn.datasets import load_sample_images

    out = []
    for a in load_sample_images().images:  # two 640x427 photos
        photo = Image.fromarray(a)
        out.append(photo.crop((0, 0, 320, 427)).resize((300, 200), Image.LANCZOS))
        out.append(photo.crop((320, 0, 640, 427)).resize((300, 200), Image.LANCZOS))
        out.append(photo.crop((160, 100, 480, 427)).rotate(180).resize((300, 200), Image.LANCZOS))
    return out


#: In :func:`photo_halves`, the pictures (and their copies) cut from the left and the right half
#: of scikit-learn's flower photo.
FLOWER_LEFT = ("train/pic3.jpg", "test/copy3.jpg")
FLOWER_RIGHT = ("train/pic4.jpg", "test/copy4.jpg")


def middle_and_half(rec: dict) -> bool:
    """Whether the pair record ``rec`` joins, in :func:`photo_halves` (as ``train/picK.jpg`` and
    ``test/copyK.jpg``), a photo's middle and one of its halves: they share half the middle's
    area, turned half a turn (the keypoints line them up: detail 0.6-0.76 over 0.50-0.51 of it).
    Tiles sharing half their area are leakage; at exactly half, a pair may or may not be reported."""
    def picture(path):
        return int(path.rsplit("/", 1)[-1].removeprefix("pic").removeprefix("copy").split(".")[0])
    ks = sorted(picture(p) for p in (rec["a"], rec["b"]))
    return ks[0] // 3 == ks[1] // 3 and ks[1] % 3 == 2 and ks[0] % 3 != 2


def flower_mirror_pair(rec: dict, left=FLOWER_LEFT, right=FLOWER_RIGHT) -> bool:
    """Whether the pair record ``rec`` is the known false pair of two parts of scikit-learn's
    flower photo that are nearly mirror images of each other (its dahlia is symmetric about the
    photo's middle): one of ``left``, one of ``right``, read as a mirrored crop. Among real
    look-alikes (300 other photos) the decision drops such a pair; in a test's small folder it
    may stay (README, "Not yet")."""
    names = {rec["a"], rec["b"]}
    return rec["detail"] == "cropped, hflip" and bool(names & set(left)) and bool(names & set(right))


def plant_copies(root: Path, pictures: list, copies: dict) -> None:
    """A dataset under ``root``: each of ``pictures`` in train as ``pic{k}.jpg``, each copy in
    ``copies`` (k -> an edited copy of picture k) in test as ``copy{k}.jpg``, and 40 other
    scenes in train (the look-alikes the decision learns from)."""
    (root / "train").mkdir()
    (root / "test").mkdir()
    for k, img in enumerate(pictures):
        img.save(root / "train" / f"pic{k}.jpg", quality=92)
    for k, img in copies.items():
        img.save(root / "test" / f"copy{k}.jpg", quality=92)
    for k in range(40):
        scene(300 + k, 160).save(root / "train" / f"scene{k:02d}.jpg", quality=90)


def gone_after_the_first_read(pictures: list, gone: set):
    """An ``images(rows)`` of ``pictures`` that reads every picture the first time it is called
    (the closer look's calibration sample), and from then on none of the rows ``gone`` (files
    changed since: None for them)."""
    calls = []

    def images(rows):
        calls.append(len(rows))
        return [None if len(calls) > 1 and r in gone else pictures[r] for r in rows]
    return images


def without_root_reading():
    """A ``preexec_fn`` that lets a child run as root not read what its permissions deny (its
    capability bounding set without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so that the
    program it starts has neither); None when not root, where permissions hold anyway."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def drop():
        for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
    return drop


def write_dataset(root: Path, layout: dict[str, Image.Image], fmt: str = "JPEG", **save) -> Path:
    """Write {relative path: image} under root; returns root."""
    for rel, img in layout.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        img.save(p, fmt if not rel.endswith(".png") else "PNG", **save)
    return root


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Each test has its own feature cache: tests never touch the user's cache nor each other's."""
    monkeypatch.setenv("LEAKSCAN_CACHE", str(tmp_path / "leakscan-cache" / "features.sqlite"))


@pytest.fixture
def leaky_dataset(tmp_path: Path) -> Path:
    """train/test folders of distinct scenes where test/a/leak.jpg is a resized copy of train/a/0.jpg."""
    layout = {}
    for k in range(12):
        layout[f"train/{'ab'[k % 2]}/{k}.jpg"] = scene(k)
    for k in range(12, 18):
        layout[f"test/{'ab'[k % 2]}/{k}.jpg"] = scene(k)
    layout["test/a/leak.jpg"] = scene(0).resize((80, 80))
    return write_dataset(tmp_path / "data", layout, quality=90)
