"""The review loop in a real browser: click "duplicate"/"distinct" in report.html, export the
decisions CSV, feed it back with --decisions, and see the effect.

Needs Chromium, its driver (Debian: apt-get install chromium chromium-driver) and Selenium
(the test extra); skips, saying which is missing, without them. No browser is downloaded.
"""

import csv
import json
import shutil
import time

import pytest
from typer.testing import CliRunner

from leakscan.cli import app
from conftest import scene, write_dataset

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

pytestmark = [
    pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium)"),
    pytest.mark.skipif(DRIVER is None, reason="no chromedriver (apt-get install chromium-driver)"),
    pytest.mark.skipif(not HAVE_SELENIUM, reason="selenium not installed (pip install selenium, in the test extra)"),
]


@pytest.fixture
def data(tmp_path):
    layout = {f"train/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(6)}
    layout.update({f"test/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(6, 10)})
    layout["test/a/leak.jpg"] = scene(0).resize((80, 80))
    layout["test/b/leak2.jpg"] = scene(1).resize((88, 88))
    layout["train/a/4-copy.jpg"] = scene(4).resize((90, 90))  # a within-split group
    return write_dataset(tmp_path / "data", layout, quality=90)


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.service import Service

    dl = tmp_path / "downloads"
    dl.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = BROWSER
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1400"):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"download.default_directory": str(dl),
                                           "download.prompt_for_download": False})
    drv = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    drv.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(dl)})
    drv.downloads = dl
    yield drv
    drv.quit()


def _audit(data, out, *extra):
    r = CliRunner().invoke(app, ["audit", str(data), "--out", str(out), "--force", "--no-cache", "-j", "1",
                                 "--quiet", *extra])
    assert r.exit_code == 0, r.output
    return json.loads((out / "summary.json").read_text())


def _card(drv, path):
    """The pair card or gallery whose captions name ``path``."""
    for card in drv.find_elements(By.CSS_SELECTOR, ".pair, .ppair, .dpair, .gal"):
        if any(path in c.text for c in card.find_elements(By.TAG_NAME, "figcaption")):
            return card
    raise AssertionError(f"no card shows {path}")


def _export(drv):
    for f in drv.downloads.glob("*"):
        f.unlink()
    drv.find_element(By.ID, "export").click()
    for _ in range(100):
        done = [f for f in drv.downloads.glob("*.csv")]
        if done:
            time.sleep(0.2)
            return done[0]
        time.sleep(0.1)
    raise AssertionError("no decisions.csv downloaded")


def test_review_buttons_export_and_feed_back(data, tmp_path, browser):
    before = _audit(data, tmp_path / "out")
    assert before["n_cross_split_pairs"] == 2 and before["n_duplicate_groups"] == 3
    browser.get((tmp_path / "out" / "report.html").as_uri())
    assert browser.find_element(By.ID, "verdict").text == "33.3% of test has a copy in train; no label conflicts."
    assert browser.find_element(By.ID, "dec-count").text == "0 decisions"

    leak = _card(browser, "test/a/leak.jpg")
    leak.find_element(By.CSS_SELECTOR, "button[data-decision=distinct]").click()
    leak2 = _card(browser, "test/b/leak2.jpg")
    leak2.find_element(By.CSS_SELECTOR, "button[data-decision=duplicate]").click()
    group = _card(browser, "train/a/4-copy.jpg")
    group.find_element(By.CSS_SELECTOR, "button[data-decision=distinct]").click()
    # pressed again: undone; pressed once more: back on
    btn = group.find_element(By.CSS_SELECTOR, "button[data-decision=distinct]")
    btn.click()
    assert browser.find_element(By.ID, "dec-count").text == "2 decisions"
    btn.click()
    assert "on" in btn.get_attribute("class") and "decided-dis" in group.get_attribute("class")
    assert browser.find_element(By.ID, "dec-count").text == "3 decisions"

    f = _export(browser)
    rows = list(csv.DictReader(f.open()))
    got = {(frozenset((r["a"], r["b"])), r["decision"]) for r in rows}
    assert got == {(frozenset(("train/a/0.jpg", "test/a/leak.jpg")), "distinct"),
                   (frozenset(("train/b/1.jpg", "test/b/leak2.jpg")), "duplicate"),
                   (frozenset(("train/a/4.jpg", "train/a/4-copy.jpg")), "distinct")}
    assert all(len(r["digest_a"]) == 32 and len(r["digest_b"]) == 32 for r in rows)
    decisions = tmp_path / "repo" / "decisions.csv"  # committed next to the manifest
    decisions.parent.mkdir()
    shutil.copy(f, decisions)

    after = _audit(data, tmp_path / "out2", "--decisions", str(decisions))
    assert after["n_cross_split_pairs"] == 1 and after["n_duplicate_groups"] == 1
    assert {k: after["decisions"][k] for k in ("applied", "distinct", "duplicate", "unmatched")} == {
        "applied": 3, "distinct": 2, "duplicate": 1, "unmatched": 0}

    # the new report shows the decisions as applied, and exporting again keeps them
    browser.get((tmp_path / "out2" / "report.html").as_uri())
    assert browser.find_element(By.ID, "dec-count").text == "3 decisions (3 from the decisions file)"
    leak2 = _card(browser, "test/b/leak2.jpg")
    assert "duplicate: decisions file" in leak2.text and "decided (decisions file)" in leak2.text
    assert "on" in leak2.find_element(By.CSS_SELECTOR, "button[data-decision=duplicate]").get_attribute("class")
    distinct = browser.find_element(By.ID, "distinct-sec")
    assert distinct.is_displayed() and len(distinct.find_elements(By.CSS_SELECTOR, ".dpair")) == 2
    again = list(csv.DictReader(_export(browser).open()))
    assert {(frozenset((r["a"], r["b"])), r["decision"]) for r in again} == got


def test_open_links_are_relative_to_the_report(data, tmp_path, browser):
    _audit(data, tmp_path / "out")
    shutil.copytree(tmp_path, tmp_path.parent / (tmp_path.name + "-moved"),
                    ignore=shutil.ignore_patterns("profile", "downloads"))
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    browser.get((moved / "out" / "report.html").as_uri())
    link = _card(browser, "test/a/leak.jpg").find_element(By.LINK_TEXT, "open")
    assert link.get_attribute("href").startswith((moved / "data").as_uri())  # the moved copy, not the original


def test_gallery_buttons_cover_every_pair(data, tmp_path, browser):
    scene(4).resize((70, 70)).save(data / "train" / "a" / "4-copy2.jpg", quality=90)
    _audit(data, tmp_path / "out")
    browser.get((tmp_path / "out" / "report.html").as_uri())
    group = _card(browser, "train/a/4-copy2.jpg")
    assert len(group.find_elements(By.TAG_NAME, "figure")) == 3
    group.find_element(By.CSS_SELECTOR, "button[data-decision=distinct]").click()
    assert browser.find_element(By.ID, "dec-count").text == "3 decisions"  # no two of the three are copies
    group.find_element(By.CSS_SELECTOR, "button[data-decision=duplicate]").click()
    assert browser.find_element(By.ID, "dec-count").text == "2 decisions"  # all one image: a star is enough
    rows = list(csv.DictReader(_export(browser).open()))
    assert [r["decision"] for r in rows] == ["duplicate", "duplicate"]
    assert len({r["a"] for r in rows}) == 1


def test_per_class_tables_collapsed_without_zero_rows(data, tmp_path, browser):
    (data / "test" / "c").mkdir()
    scene(11).save(data / "test" / "c" / "11.jpg", quality=90)  # a class with no copy in train
    _audit(data, tmp_path / "out")
    browser.get((tmp_path / "out" / "report.html").as_uri())
    details = browser.find_elements(By.CSS_SELECTOR, "details.per-class")
    assert details and not any(d.get_attribute("open") for d in details)  # collapsed by default
    test_train = next(d for d in details if d.text.startswith("test → train"))
    assert "1 at 0% not shown" in test_train.text
    test_train.find_element(By.TAG_NAME, "summary").click()
    rows = test_train.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 2 and all(r.find_elements(By.TAG_NAME, "td")[2].text != "0%" for r in rows)
    # verdict first, then the pairs, laid out as a grid of cards
    assert browser.find_element(By.ID, "verdict").location["y"] < browser.find_element(By.ID, "pairs").location["y"]
    cards = browser.find_elements(By.CSS_SELECTOR, "#pairs .pair")
    assert len(cards) == 2 and cards[0].location["y"] == cards[1].location["y"]  # side by side, not one per row


def test_the_page_says_each_share_as_the_verdict_does(data, tmp_path, browser):
    """The headline figures (the page's pct) and the verdict sentence (present.pct) write a share
    alike, and a share under 1 never reads 100%: 996 of 1,000 is 99.6%, not all of them."""
    from leakscan.present import pct

    _audit(data, tmp_path / "out")
    browser.get((tmp_path / "out" / "report.html").as_uri())
    shares = [0.00004, 0.0032, 0.087, 0.333333, 0.5, 0.9949, 0.995, 0.996, 0.9996, 1.0]
    page = browser.execute_script("return arguments[0].map(pct)", shares)
    assert page == [pct(x) for x in shares]
    assert page[-3:] == ["99.6%", "99.9%", "100%"]
    kpi = next(k.find_element(By.TAG_NAME, "b").text for k in browser.find_elements(By.CSS_SELECTOR, "#kpis .kpi")
               if "of test has a copy in train" in k.text)
    assert browser.find_element(By.ID, "verdict").text.startswith(kpi + " of test has a copy in train")


def test_leaving_the_page_with_decisions_not_exported_asks_first(data, tmp_path, browser):
    """The marks live in the page only: a reload or a closed tab would lose them without a word,
    so leaving asks first while some are not exported (and not once they are, or when none were made)."""
    _audit(data, tmp_path / "out")
    browser.get((tmp_path / "out" / "report.html").as_uri())
    leave = ("const e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e);"
             "return e.defaultPrevented;")
    assert browser.execute_script(leave) is False
    btn = _card(browser, "test/a/leak.jpg").find_element(By.CSS_SELECTOR, "button[data-decision=distinct]")
    btn.click()
    assert browser.execute_script(leave) is True
    btn.click()  # undone: nothing left to lose
    assert browser.execute_script(leave) is False
    btn.click()
    _export(browser)
    assert browser.execute_script(leave) is False


def test_class_filter_none_shows_only_pairs_with_an_unlabelled_image(data, tmp_path, browser):
    """An image right in its split folder has no label: the class filter offers "(none)" and it
    shows the pairs with such an image, not every pair as "all" does."""
    from selenium.webdriver.support.ui import Select

    scene(2).resize((84, 84)).save(data / "test" / "no-label.jpg", quality=90)  # copy of train/a/2.jpg
    assert _audit(data, tmp_path / "out")["n_cross_split_pairs"] == 3
    browser.get((tmp_path / "out" / "report.html").as_uri())
    cls = Select(browser.find_element(By.ID, "f-class"))
    assert [o.text for o in cls.options] == ["all", "(none)", "a", "b"]
    cls.select_by_visible_text("(none)")
    assert browser.find_element(By.ID, "pairs-count").text.startswith("(1 of 3")
    (card,) = browser.find_elements(By.CSS_SELECTOR, "#pairs .pair")
    assert "test/no-label.jpg" in card.text
    cls.select_by_visible_text("all")
    assert browser.find_element(By.ID, "pairs-count").text.startswith("(3 of 3")


def test_the_warnings_of_summary_json_are_shown_under_the_verdict(data, tmp_path, browser):
    """What summary.json warns about (here: images without a label; elsewhere a suspected chain,
    more than half a split leaking, a cache that cannot be written) is on the page, which is what
    a reviewer opens, not only in the JSON."""
    scene(2).resize((84, 84)).save(data / "test" / "no-label.jpg", quality=90)
    warned = _audit(data, tmp_path / "out")["warnings"]
    assert any("have no label" in w for w in warned)
    browser.get((tmp_path / "out" / "report.html").as_uri())
    box = browser.find_element(By.ID, "warnings")
    assert box.is_displayed()
    assert [li.text for li in box.find_elements(By.TAG_NAME, "li")] == warned
    (data / "test" / "no-label.jpg").unlink()
    assert _audit(data, tmp_path / "out2")["warnings"] == []
    browser.get((tmp_path / "out2" / "report.html").as_uri())
    assert not browser.find_element(By.ID, "warnings").is_displayed()


def test_possible_count_is_summary_json_s_when_the_page_lists_fewer(data, tmp_path, browser, monkeypatch):
    """The page lists the most likely possible pairs only (5,000): its count is still every possible
    pair, as summary.json n_possible and possible.csv say, and it says how many are shown."""
    from leakscan import htmlreport

    monkeypatch.setattr(htmlreport, "MAX_POSSIBLE", 1)
    summary = _audit(data, tmp_path / "out", "--min-confidence", "1.0")
    n = summary["n_possible"]
    assert n >= 2 and n == len(list(csv.DictReader((tmp_path / "out" / "possible.csv").open())))
    browser.get((tmp_path / "out" / "report.html").as_uri())
    assert browser.find_element(By.ID, "possible-count").text == f"({n}; the 1 most likely shown, all in possible.csv)"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#possible .ppair")) == 1
    assert f"{n} possible pairs worth a look" in browser.find_element(By.ID, "verdict").text


@pytest.mark.parametrize("name", ["#0 copy.jpg", "=0 copy.jpg"])
def test_a_decision_on_a_path_starting_with_hash_is_read_back(tmp_path, browser, name):
    """A manifest may name ``#0 copy.jpg``: the page's export must not write a line that starts
    with ``#`` (a comment in a decisions file: the decision was dropped without a word); nor
    one starting with ``=`` (a formula to a spreadsheet), as leakscan's other CSVs do not."""
    m = tmp_path / "m"
    m.mkdir()
    for k in range(4):
        scene(k).save(m / f"{k}.jpg", quality=90)
    scene(0).resize((80, 80)).save(m / name, quality=90)
    manifest = m / "splits.csv"
    manifest.write_text(f"path,split,label\n{name},test,a\n" + "".join(f"{k}.jpg,train,a\n" for k in range(4)))
    r = CliRunner().invoke(app, ["audit", "--manifest", str(manifest), "--out", str(tmp_path / "out"), "--no-cache",
                                 "-j", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["n_cross_split_pairs"] == 1
    browser.get((tmp_path / "out" / "report.html").as_uri())
    _card(browser, name).find_element(By.CSS_SELECTOR, "button[data-decision=distinct]").click()
    decisions = _export(browser)
    assert not any(line.startswith(("#", "=")) for line in decisions.read_text().splitlines())
    r = CliRunner().invoke(app, ["audit", "--manifest", str(manifest), "--out", str(tmp_path / "out2"), "--no-cache",
                                 "-j", "1", "--quiet", "--decisions", str(decisions)])
    assert r.exit_code == 0, r.output
    after = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert (after["decisions"]["applied"], after["decisions"]["matched_by_digest"]) == (1, 0)
    assert after["n_cross_split_pairs"] == 0


def _next(pager):
    """The "next ›" button of a pager, None when there is no next page."""
    nxt = [b for b in pager.find_elements(By.TAG_NAME, "button") if b.text == "next ›"]
    return nxt[0] if nxt and nxt[0].is_enabled() else None


def _every_page(read, pager):
    """What ``read()`` finds on each page of a list, pressing its pager's "next ›" until the last."""
    seen = []
    while True:
        seen += read()
        nxt = _next(pager())
        if nxt is None:
            return seen
        nxt.click()


def _texts(drv, css):
    return lambda: [e.text for e in drv.find_elements(By.CSS_SELECTOR, css)]


def _paths(figures):
    """The path of each figure, the first line of its caption."""
    return [f.find_element(By.TAG_NAME, "figcaption").text.split("\n")[0] for f in figures]


@pytest.fixture
def many(tmp_path):
    """Three of each: label conflicts, low-information images, skipped files and pairs marked
    distinct by a decisions file; and a within-split group of 26 byte-identical images."""
    from PIL import Image

    layout = {f"train/a/{k}.jpg": scene(k) for k in range(6)}
    layout.update({f"test/a/{k}.jpg": scene(k) for k in range(6, 9)})
    layout.update({f"train/a/flat{v}.png": Image.new("RGB", (64, 64), (v, v, v)) for v in (40, 120, 200)})
    root = write_dataset(tmp_path / "data", layout, quality=90)
    (root / "train/b").mkdir()
    for k in range(3):
        shutil.copy(root / f"train/a/{k}.jpg", root / f"train/b/{k}-relabelled.jpg")  # the same bytes, label b
        (root / f"test/a/bad{k}.jpg").write_bytes(b"not an image")
    for k in range(25):
        shutil.copy(root / "train/a/4.jpg", root / f"train/a/4-copy{k}.jpg")
    decisions = tmp_path / "decisions.csv"
    decisions.write_text("a,b,decision\n" + "".join(f"train/a/5.jpg,test/a/{k}.jpg,distinct\n" for k in range(6, 9)))
    return root, decisions


def test_every_item_a_section_counts_is_reached_through_its_pager(many, tmp_path, browser, monkeypatch):
    """Label conflicts, pairs marked distinct, low-information images, skipped files and the
    images of a gallery page as the pairs do: the page showed the first 500, 500, 200, 5,000 and
    24 of them and said nothing of the rest. Sections of 3 in pages of 2 here, not 50; a gallery
    of 26 in pages of 24, as they are."""
    from leakscan import htmlreport

    monkeypatch.setattr(htmlreport, "PAGE_SIZE", 2)
    root, decisions = many
    summary = _audit(root, tmp_path / "out", "--decisions", str(decisions))
    assert (summary["n_label_conflicts"], summary["n_low_information"], summary["n_skipped"]) == (3, 3, 3)
    browser.get((tmp_path / "out" / "report.html").as_uri())
    drv = browser

    def pager(name):  # the pager under the list #name
        return lambda: drv.find_element(By.ID, name + "-pager")
    sections = ("conflicts", "distinct", "low", "skipped")
    assert [drv.find_element(By.ID, f"{s}-count").text for s in sections] == ["(3)"] * 4
    assert [len(drv.find_elements(By.CSS_SELECTOR, css)) for css in (
        "#conflicts > .gal", "#distinct .dpair", "#low figure", "#skipped tr")] == [2] * 4  # a page at a time
    assert [pager(s)().text.split("\n") for s in sections] == [["‹ prev", "page 1 of 2", "next ›"]] * 4

    conflicts = _every_page(_texts(drv, "#conflicts > .gal > div.mut"), pager("conflicts"))
    assert sorted(conflicts) == sorted(f"group {c['group']}: a ×1, b ×1" for c in summary["label_conflicts"])
    distinct = _every_page(lambda: _paths(drv.find_elements(By.CSS_SELECTOR, "#distinct figure")), pager("distinct"))
    assert sorted(distinct) == sorted(["train/a/5.jpg"] * 3 + [f"test/a/{k}.jpg" for k in range(6, 9)])
    low = _every_page(lambda: _paths(drv.find_elements(By.CSS_SELECTOR, "#low figure")), pager("low"))
    assert sorted(low) == sorted(f"train/a/flat{v}.png" for v in (40, 120, 200))
    skipped = _every_page(_texts(drv, "#skipped td code"), pager("skipped"))
    assert sorted(skipped) == [f"test/a/bad{k}.jpg" for k in range(3)]

    def copies_of_4():  # the gallery of train/a/4.jpg's 26 copies, on whichever page of the groups it is
        while True:
            found = [g for g in drv.find_elements(By.CSS_SELECTOR, "#groups > .gal") if "· 26 images" in g.text]
            if found:
                return found[0]
            _next(pager("groups")()).click()
    gal = copies_of_4()
    assert len(gal.find_elements(By.TAG_NAME, "figure")) == 24
    shown = _every_page(lambda: _paths(gal.find_elements(By.TAG_NAME, "figure")),
                        lambda: gal.find_element(By.CSS_SELECTOR, ".pager"))
    assert sorted(shown) == sorted(["train/a/4.jpg"] + [f"train/a/4-copy{k}.jpg" for k in range(25)])


def test_distinct_pairs_beyond_those_embedded_are_counted_and_said_where_they_are(many, tmp_path, browser,
                                                                                   monkeypatch):
    """The page embeds the first 5,000 pairs marked distinct (a decision matched by digest
    stands for every copy with those bytes: one can make many pairs); its count is still all of
    them, and it says which decisions file they come from."""
    from leakscan import htmlreport

    monkeypatch.setattr(htmlreport, "MAX_DISTINCT", 2)
    root, decisions = many
    _audit(root, tmp_path / "out", "--decisions", str(decisions))
    browser.get((tmp_path / "out" / "report.html").as_uri())
    assert browser.find_element(By.ID, "distinct-count").text == (
        f"(3; the first 2 shown, all from the decisions in {decisions})")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#distinct .dpair")) == 2
