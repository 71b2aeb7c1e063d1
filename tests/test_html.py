"""The HTML report: self-contained, escapes hostile names, and renders in a real browser."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from leakscan import audit
from leakscan.report import write_outputs
from leakscan.settings import DetectSettings
from conftest import BENCH, FIXTURES, scene

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium)")
HOSTILE = "<img src=x onerror=alert(1)>"


def chromium(*args, tmp_path):
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "data"
    for k in range(8):
        p = root / "train" / "cls" / f"{k}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        scene(k).save(p)
    bad = root / "test" / "<script>alert(2)</script>" / f"{HOSTILE}.png"
    bad.parent.mkdir(parents=True)
    scene(3).resize((80, 80)).save(bad)
    out = root.parent / "out"
    write_outputs(audit(root, jobs=1, cache=root.parent / "cache.sqlite"), out)  # its own cache
    return out / "report.html"


def test_report_is_self_contained_and_escapes_names(hostile_report):
    html = hostile_report.read_text()
    assert HOSTILE not in html and "<script>alert(2)" not in html
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in html  # carried as escaped JSON text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing from the network
    assert "Content-Security-Policy" in html
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
    assert len(data["pairs"]) == 1
    pair = data["pairs"][0]
    assert {data["images"][pair["a"]]["p"], data["images"][pair["b"]]["p"]} == {
        "train/cls/3.png", f"test/<script>alert(2)</script>/{HOSTILE}.png"}
    assert all(re.match(r"data:image/(jpeg|png|gif|webp);base64,", t) for t in data["thumbs"])


def test_report_for_fixtures_has_every_section(tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(FIXTURES, data_dir)
    # a within-split group of its own: a mirrored copy of an unrelated training image
    src = data_dir / "train" / "frog"
    first = sorted(p for p in src.glob("*.jpg") if not p.name.startswith("planted"))[0]
    Image.open(first).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(src / "mirror-copy.png")
    r = audit(data_dir, jobs=2)
    write_outputs(r, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    data = json.loads(re.search(r'id="data">(.*?)</script>', html, re.S).group(1))
    assert len(data["pairs"]) == int(r.cross_split().sum()) > 30
    assert data["skipped"] == [{"p": "test/ship/corrupt-truncated.jpg", "r": r.skipped[0][1]}]
    assert data["conflicts"] and data["groups"]
    certainty = [p["cf"] for p in data["pairs"]]  # most certain first: by the decision's confidence
    assert certainty == sorted(certainty, reverse=True) and all(0 <= c <= 1 for c in certainty)


@needs_browser
def test_fixtures_report_renders_in_chromium(tmp_path):
    r = audit(FIXTURES, jobs=2)
    write_outputs(r, tmp_path / "out")
    page = (tmp_path / "out" / "report.html").as_uri()
    dom = chromium("--dump-dom", page, tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    n_pairs = dom.stdout.count('class="pair"')
    assert n_pairs == min(50, int(r.cross_split().sum())) > 0  # first page of pairs drawn by the script
    assert "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    shot = tmp_path / "shot.png"
    res = chromium(f"--screenshot={shot}", "--window-size=1280,1400", page, tmp_path=tmp_path)
    assert res.returncode == 0 and shot.exists()
    px = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert px.std() > 20  # not a blank page


@needs_browser
def test_hostile_names_do_not_run_in_chromium(hostile_report, tmp_path):
    dom = chromium("--dump-dom", hostile_report.as_uri(), tmp_path=tmp_path)
    assert dom.returncode == 0
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom.stdout  # shown as text
    from html.parser import HTMLParser

    class Tags(HTMLParser):
        attrs, scripts = set(), 0

        def handle_starttag(self, tag, attrs):
            self.attrs |= {name for name, _ in attrs}
            self.scripts += tag == "script"

    t = Tags()
    t.feed(dom.stdout)
    assert "onerror" not in t.attrs and t.scripts == 2  # only the page's own data and code
    assert "Uncaught" not in dom.stderr


@needs_browser
@pytest.mark.skipif(not (BENCH / "images.tar").exists(), reason="../shared/bench/cifar10 not present")
def test_cifar_report_renders_in_chromium(tmp_path):
    import tarfile

    with tarfile.open(BENCH / "images.tar") as tar:
        tar.extractall(tmp_path, filter="data")
    # what is tested is the page at 60,000 images, not the search: crop views off saves a third of the run
    r = audit(tmp_path / "cifar10", settings=DetectSettings(crops=False), cache=False)
    write_outputs(r, tmp_path / "out")
    dom = chromium("--dump-dom", (tmp_path / "out" / "report.html").as_uri(), tmp_path=tmp_path)
    assert dom.returncode == 0 and dom.stdout.count('class="pair"') == 50
    assert "Uncaught" not in dom.stderr


def test_possible_pairs_in_the_page_say_what_possible_csv_says(tmp_path):
    """A rotated copy under the bar: the page's possible card says its angle, as possible.csv does."""
    import csv

    data_dir = tmp_path / "data"
    base = [scene(s, 160) for s in range(12)]
    for s, img in enumerate(base):
        p = data_dir / ("train" if s < 8 else "test") / "a" / f"{s}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        img.save(p)
    base[2].rotate(-20, resample=Image.BICUBIC, expand=True).save(data_dir / "test" / "a" / "rotated.png")
    r = audit(data_dir, jobs=1, cache=False, settings=DetectSettings(min_confidence=1.0))
    write_outputs(r, tmp_path / "out")
    with open(tmp_path / "out" / "possible.csv", newline="") as fh:
        rows = {frozenset((row["a"], row["b"])): row["detail"] for row in csv.DictReader(fh)}
    assert any(d.startswith("rotated ") and d.endswith(" deg") for d in rows.values()), rows
    html = (tmp_path / "out" / "report.html").read_text()
    data = json.loads(re.search(r'id="data">(.*?)</script>', html, re.S).group(1))
    shown = {frozenset((data["images"][p["a"]]["p"], data["images"][p["b"]]["p"])): p["d"] for p in data["possible"]}
    assert shown == rows
