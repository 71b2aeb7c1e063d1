import functools

import numpy as np
from hypothesis import given, settings, strategies as st
from PIL import Image

from leakscan import DetectSettings, build_groups, discover, extract_features, find_pairs
from leakscan.errors import ConfigError
from leakscan.pairs import PairTable
from conftest import scene
import pytest


def images(seeds, size=64):
    return np.stack([np.asarray(scene(s, size)) for s in seeds])


def pair_set(pt):
    return set(zip(pt.i.tolist(), pt.j.tolist()))


def test_planted_near_duplicates_found_and_unrelated_not():
    base = images(range(30))
    copies = np.stack([
        np.asarray(Image.fromarray(base[0]).resize((48, 48)).resize((64, 64))),      # resized
        np.asarray(Image.fromarray(base[1]).transpose(Image.Transpose.FLIP_LEFT_RIGHT)),  # mirrored
        base[2],                                                                      # exact
    ])
    imgs = np.concatenate([base, copies])
    pt = find_pairs(extract_features(discover(imgs), jobs=1))
    found = pair_set(pt)
    assert {(0, 30), (1, 31), (2, 32)} <= found
    assert found - {(0, 30), (1, 31), (2, 32)} == set()
    kinds = dict(zip(zip(pt.i.tolist(), pt.j.tolist()), pt.kind_names()))
    assert kinds[(2, 32)] == "exact"


def test_transforms_setting_controls_rotations():
    base = images(range(20))
    rot = np.asarray(Image.fromarray(base[3]).transpose(Image.Transpose.ROTATE_90))[None]
    feats = extract_features(discover(np.concatenate([base, rot])), jobs=1)
    assert (3, 20) in pair_set(find_pairs(feats, DetectSettings(transforms="all")))
    assert (3, 20) not in pair_set(find_pairs(feats, DetectSettings(transforms="none")))


def test_flat_images_do_not_chain():
    flats = np.stack([np.full((32, 32, 3), c, np.uint8) for c in (10, 11, 12, 200)])
    flats[3] = flats[0]  # one exact copy
    pt = find_pairs(extract_features(discover(flats), jobs=1))
    assert pair_set(pt) == {(0, 3)}


@functools.lru_cache(maxsize=1)
def _unpermuted():
    """The images of the permutation test, and their pairs in the order given (made once: every
    example compares its permutation with them)."""
    base = images(range(16), 48)
    imgs = np.concatenate([base, base[[0, 5]][:, :, ::-1], base[[7]]])
    return imgs, pair_set(find_pairs(extract_features(discover(imgs), jobs=1)))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000))
def test_pairs_invariant_under_input_permutation(seed):
    imgs, p1 = _unpermuted()
    perm = np.random.default_rng(seed).permutation(len(imgs))
    p2 = find_pairs(extract_features(discover(imgs[perm]), jobs=1))
    mapped = {tuple(sorted((int(perm[i]), int(perm[j])))) for i, j in zip(p2.i, p2.j)}
    assert mapped == p1


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 40), edges=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=40),
       groups=st.lists(st.sampled_from(["", "p1", "p2"]), min_size=40, max_size=40))
def test_groups_partition_rows_and_respect_edges(n, edges, groups):
    e = sorted({(min(a, b), max(a, b)) for a, b in edges if a < n and b < n and a != b})
    i = np.array([a for a, _ in e], np.int64)
    j = np.array([b for _, b in e], np.int64)
    k = len(e)
    pt = PairTable(i, j, np.zeros(k, np.uint8), np.ones(k, np.float32), np.zeros(k, np.int16),
                   np.ones(k, np.float32), np.zeros(k, np.int8), np.zeros(k, bool))
    g = build_groups(n, pt, np.array(groups[:n], dtype=object))
    assert len(g.ids) == n and g.sizes.sum() == n
    assert all(g.ids[a] == g.ids[b] for a, b in e)
    ug = np.array(groups[:n])
    for name in ("p1", "p2"):
        assert len(set(g.ids[ug == name].tolist())) <= 1
    first = [int(np.flatnonzero(g.ids == gid)[0]) for gid in range(g.n_groups)]
    assert first == sorted(first)  # ids numbered by smallest row


def test_settings_validation_quotes_value():
    with pytest.raises(ConfigError, match="got 70"):
        DetectSettings(max_hamming=70)
    with pytest.raises(ConfigError, match="transforms"):
        DetectSettings(transforms="sideways")


def test_chaining_guard_breaks_weak_chains_but_keeps_exact_copies():
    n = 600
    i = np.arange(n - 1, dtype=np.int64)
    j = i + 1
    k = len(i)
    kind = np.full(k, 2, np.uint8)          # embedding links along a chain...
    confidence = np.full(k, 0.6, np.float32)  # ...mostly weak (a link is as strong as its confidence)
    confidence[::10] = 0.99                 # some strong
    kind[:50] = 0                           # the first 51 images are exact copies
    confidence[:50] = 1.0
    pt = PairTable(i, j, kind, np.ones(k, np.float32), np.zeros(k, np.int16), np.full(k, 0.82, np.float32),
                   np.zeros(k, np.int8), np.zeros(k, bool), confidence=confidence)
    g = build_groups(n, pt, max_size=100)
    assert g.sizes.max() <= 100
    assert len(set(g.ids[:51].tolist())) == 1   # exact links never dropped
    assert g.notes and "chaining guard" in g.notes[0]
    assert np.nanmin(g.weakest) >= 0.0
    unguarded = build_groups(n, pt, max_size=10_000)
    assert unguarded.sizes.max() == n and not unguarded.notes


def test_cross_split_scope_finds_the_same_cross_pairs(fixtures_audit):
    from conftest import FIXTURES
    from leakscan import audit
    full, _ = fixtures_audit  # the fixtures' audit with the defaults
    cross = audit(FIXTURES, jobs=1, cache=False, settings=DetectSettings(scope="cross"))
    sp = full.manifest.splits
    full_cross = {(int(i), int(j)) for i, j in zip(full.pairs.i, full.pairs.j) if sp[i] != sp[j]}
    got = pair_set(cross.pairs)
    assert all(sp[i] != sp[j] for i, j in got)
    # the calibration sees only cross-split candidates here, and leaves out of its fit the
    # look-alikes in one split as the source of the copy (never searched: they may be copies
    # of it); taught as look-alikes they made the decision fit real copies as look-alikes
    # (it found 36 to 38 of these 44 pairs)
    assert len(got & full_cross) >= 0.95 * len(full_cross)
    assert [(lk.split, lk.against) for lk in cross.leaks] == [(lk.split, lk.against) for lk in full.leaks]
    with pytest.raises(ConfigError, match="scope"):
        DetectSettings(scope="within")


def test_cross_split_scope_reports_no_pair_within_a_split():
    """With scope "cross" no copy within one split is reported, however it is found: an exact
    copy (found by its pixels, whatever is queried), a copy within the smaller split (whose
    images are queried), nor the pair of two copies in the smaller split of one picture in the
    larger (a group across splits, whose missing pairs the decision adds)."""
    from PIL import ImageEnhance

    from leakscan.decide import detect
    from leakscan.pairs import find_candidates

    base = [scene(s, 64) for s in range(16)]
    train = base[:8] + [base[1]]  # row 8: an exact copy of row 1
    test = base[8:] + [base[0].resize((48, 48)).resize((64, 64)),  # rows 17 and 18: copies of train's row 0
                       ImageEnhance.Brightness(base[0]).enhance(1.2),
                       base[8].resize((50, 50)).resize((64, 64)),  # row 19: a copy of row 9
                       base[9]]  # row 20: an exact copy of row 10
    splits = np.array(["train"] * len(train) + ["test"] * len(test), dtype=object)
    feats = extract_features(discover(np.stack([np.asarray(p) for p in train + test])), jobs=1)
    within = {(1, 8), (9, 19), (10, 20), (17, 18)}
    assert within <= pair_set(find_candidates(feats, DetectSettings()).pairs)  # the search finds them all
    d = detect(feats, DetectSettings(scope="cross"), splits=splits)
    reported = pair_set(d.pairs) | pair_set(d.possible)
    assert {(0, 17), (0, 18)} <= pair_set(d.pairs)
    assert all(splits[i] != splits[j] for i, j in reported), reported


def test_a_pair_found_through_a_view_is_proposed_with_the_twins_of_either_image():
    """A pair found through a view (turned back, tilted, cropped) is proposed again with each
    twin of either image (a pHash within TWIN_HAMMING bits, read as it is); the same reading,
    turned round when the twin's row comes first. Pairs read whole or as tiles are not."""
    from leakscan.pairs import TWIN_HAMMING, Kind, _with_twins, reading_keys
    from leakscan.views import MatchView

    rows = [  # (i, j, kind, score, variant)
        (0, 1, Kind.HASH, 1 - 2 / 64, MatchView.IDENTITY),              # twins 0 ~ 1
        (2, 6, Kind.HASH, 1 - TWIN_HAMMING / 64, MatchView.IDENTITY),   # twins 2 ~ 6, at the bar
        (3, 7, Kind.HASH, 1 - (TWIN_HAMMING + 1) / 64, MatchView.IDENTITY),  # past the bar: not twins
        (1, 5, Kind.EMBEDDING, 0.9, MatchView.DEROTATED),               # through 1's twin 0: (0, 5)
        (5, 6, Kind.EMBEDDING, 0.8, MatchView.TILTED),                  # 6 is 5 turned; its twin 2 too
        (3, 4, Kind.EMBEDDING, 0.8, MatchView.CROPPED),                 # 3's look-alike 7 is no twin
        (0, 4, Kind.EMBEDDING, 0.8, MatchView.OVERLAP),                 # tiles: not expanded
        (4, 6, Kind.EMBEDDING, 0.8, MatchView.HFLIP),                   # read whole: not expanded
    ]
    i, j, kind, score, variant = (np.array(c) for c in zip(*rows))
    n = len(rows)
    pairs = PairTable(i=i, j=j, kind=kind.astype(np.uint8), score=score.astype(np.float32),
                      hamming=np.full(n, -1, np.int16), cosine=np.full(n, np.nan, np.float32),
                      variant=variant.astype(np.int8), same_bytes=np.zeros(n, bool),
                      angle=np.where(variant == MatchView.TILTED, 20.0, 0.0).astype(np.float32))
    out, added = _with_twins(pairs, np.arange(8))
    new = out.take(np.arange(n, len(out)))
    got = {(int(a), int(b), int(v), float(t)) for a, b, v, t in zip(new.i, new.j, new.variant, new.angle)}
    assert got == {(0, 5, MatchView.DEROTATED, 0.0), (2, 5, MatchView.TILTED_BACK, 20.0)}
    assert sorted(added.tolist()) == sorted(reading_keys(new).tolist())
    assert len(out.take(np.arange(n))) == n and np.array_equal(out.i[:n], pairs.i)  # the search's pairs kept


def one_photo_many_times(folder, times: int = 18) -> list:
    """The paths of one drawn photo ``times`` times, each with one bit of one pixel changed
    (other files, one pHash: each the others' twin, all equally near), and of a copy of it
    turned by 24 degrees and cropped free of its corners (found through a tilted view)."""
    side = 96
    photo = np.asarray(scene(7, side))
    paths = []
    for k in range(times):
        nudged = photo.copy()
        nudged[k // side, k % side, 0] ^= 1
        paths.append(folder / f"photo{k:02d}.png")
        Image.fromarray(nudged).save(paths[-1])
    box = side / (np.cos(np.radians(24)) + np.sin(np.radians(24)))  # the largest square inside the turn
    lo, hi = round((side - box) / 2), round((side + box) / 2)
    turned = Image.fromarray(photo).rotate(24, resample=Image.BICUBIC).crop((lo, lo, hi, hi))
    paths.append(folder / "tilted.png")
    turned.resize((side, side), Image.BICUBIC).save(paths[-1])
    return paths


def test_the_twins_a_pair_found_through_a_view_is_proposed_with_do_not_depend_on_the_row_order(tmp_path):
    """A photo held 18 times, all twins of each other at one pHash distance: a pair found
    through a tilted view is proposed with at most TWIN_MAX twins of the photo, those equally
    near taken in an order fixed by content, not by row (they were cut by row number: the
    same images listed in another order proposed the tilted copy with other twins)."""
    from leakscan.pairs import TWIN_MAX, find_candidates
    from leakscan.views import MatchView

    paths = one_photo_many_times(tmp_path)

    def tilted_partners(order):
        feats = extract_features(discover([str(paths[k]) for k in order]), jobs=1)
        pairs = find_candidates(feats).pairs
        names = [paths[k].name for k in order]
        tilted = MatchView.is_tilted(pairs.variant) & (pairs.score > 0)  # not the upright reading
        return {frozenset((names[i], names[j])) for i, j in zip(pairs.i[tilted], pairs.j[tilted])}

    first = tilted_partners(range(len(paths)))
    assert all("tilted.png" in p for p in first)
    assert TWIN_MAX <= len(first) < len(paths) - 1  # proposed with twins, not with every one
    assert tilted_partners(np.random.default_rng(5).permutation(len(paths))) == first
    assert tilted_partners(range(len(paths))[::-1]) == first


def among_other_scenes(folder, paths: list, scenes: int = 10) -> list:
    """``paths`` and those of ``scenes`` other drawn pictures saved in ``folder``."""
    for k in range(scenes):
        paths.append(folder / f"scene{k:02d}.png")
        scene(100 + k, 96).save(paths[-1])
    return paths


def test_a_photo_held_dozens_of_times_gives_the_same_candidates_in_any_row_order(tmp_path):
    """A photo held 40 times among other pictures: each image's neighbours are a tie of 39,
    more than the searches look up (twice their k); the tie is followed to its end and taken in
    an order fixed by content (it was cut where the index happened to hold the rows: other pairs
    by brightness in another row order)."""
    from leakscan.pairs import find_candidates
    from leakscan.views import MatchView

    paths = among_other_scenes(tmp_path, one_photo_many_times(tmp_path, 40))

    def candidates(order):
        feats = extract_features(discover([str(paths[k]) for k in order]), jobs=1)
        pairs = find_candidates(feats).pairs
        names = [paths[k].name for k in order]
        by_brightness = pairs.variant == MatchView.VALUE
        return {(frozenset((names[i], names[j])), int(k), bool(b), round(float(s), 5))
                for i, j, k, b, s in zip(pairs.i, pairs.j, pairs.kind, by_brightness, pairs.score)}

    first = candidates(range(len(paths)))
    assert 0 < sum(b for _, _, b, _ in first) < 40 * 39 // 2  # each photo's nearest few by brightness
    assert candidates(np.random.default_rng(5).permutation(len(paths))) == first


def test_the_model_search_takes_neighbours_of_equal_similarity_in_an_order_fixed_by_content():
    """The model embeddings' search: where one picture is held more times than each query's
    k nearest (one embedding 30 times), those equally near are taken by content (each row's
    rank), not in the order the rows were indexed: the same pairs in any row order."""
    from leakscan.pairs import _model_pairs

    rng = np.random.default_rng(4)
    emb = rng.standard_normal((60, 8)).astype(np.float32)
    emb[:30] = emb[0]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    content = rng.permutation(60)  # a rank per picture, whatever its row

    def pairs(order):
        rows = np.arange(60)
        i, j, _ = _model_pairs(emb[order], rows, DetectSettings(), rows, content[order])
        return {frozenset((int(order[a]), int(order[b]))) for a, b in zip(i, j)}

    first = pairs(np.arange(60))
    assert 0 < len(first) < 30 * 29 // 2
    assert pairs(rng.permutation(60)) == first


@pytest.mark.parametrize("asked", ["every image", "two"])  # an index of every image; a scan for a few
def test_the_typical_neighbour_of_an_image_is_the_same_picture_in_any_row_order(tmp_path, asked):
    """The k-th nearest neighbour the evidence is measured against (typical_neighbours, for the
    images the search did not query): of a photo held 30 times, one of a tie of 29, taken in
    an order fixed by content, not in the order the rows were indexed or scanned."""
    from leakscan.evidence import typical_neighbours

    paths = among_other_scenes(tmp_path, one_photo_many_times(tmp_path, 30))

    def typical(order):
        feats = extract_features(discover([str(paths[k]) for k in order]), jobs=1)
        names = [paths[k].name for k in order]
        rows = np.arange(len(names)) if asked == "every image" else np.flatnonzero(np.isin(names, ["photo00.png",
                                                                                                    "scene00.png"]))
        kth = typical_neighbours(feats, rows, np.full(len(names), -1))
        return {names[r]: names[kth[r]] for r in rows}

    first = typical(range(len(paths)))
    assert first["photo00.png"].startswith("photo") and first["photo00.png"] != "photo00.png"
    assert typical(np.random.default_rng(5).permutation(len(paths))) == first
    assert typical(range(len(paths))[::-1]) == first


def test_the_same_images_in_another_row_order_give_the_same_pairs_and_possible_pairs(tmp_path):
    """pairs.csv and possible.csv list the same pairs at the same confidences whatever the
    order of the rows. A photo held 20 times (each image's 20 nearest are the same pictures)
    among other pictures: the calibration took each synthetic copy's nearest dataset images
    of equal similarity in the order the rows were indexed, so whether a copy's source was
    among them (a copy to learn from) hung on the order, and so did the fit's confidences."""
    import csv

    import leakscan

    folder = tmp_path / "images"
    folder.mkdir()
    paths = one_photo_many_times(folder, 20)
    for k in range(30):
        paths.append(folder / f"scene{k:02d}.png")
        scene(100 + k, 96).save(paths[-1])

    def listed(order, out):
        result = leakscan.audit([str(paths[k]) for k in order], cache=False, jobs=1)
        leakscan.write_outputs(result, out, html=False)
        tables = []
        for name in ("pairs.csv", "possible.csv"):
            with open(out / name, newline="") as f:
                tables.append({(frozenset((r["a"], r["b"])), r["confidence"]) for r in csv.DictReader(f)})
        return tables

    first = listed(range(len(paths)), tmp_path / "sorted")
    assert len(first[0]) > 20 * 19 // 2  # the photo's copies and the tilted one
    assert listed(np.random.default_rng(5).permutation(len(paths)), tmp_path / "shuffled") == first


def test_a_copy_turned_on_a_canvas_is_paired_with_its_picture_among_many_plain_copies(tmp_path, monkeypatch):
    """A folder holding one photo many times: the view of its copy turned on a canvas finds the
    photo's plainest copies (re-encoded, brightened, resized) first, and the photo itself is
    not among its nearest few; through the twins the turned copy is paired with the photo."""
    from sklearn.datasets import load_sample_images
    from PIL import ImageEnhance

    import leakscan
    from leakscan import pairs as pairs_module

    photo = Image.fromarray(load_sample_images().images[0]).crop((100, 60, 420, 300))
    other = Image.fromarray(load_sample_images().images[1])
    photo.save(tmp_path / "photo.jpg", quality=92)
    for k, q in enumerate((95, 90, 85, 80, 75, 70, 60, 50)):  # the plain copies
        photo.save(tmp_path / f"jpeg{k}.jpg", quality=q)
    for k, f in enumerate((0.9, 0.95, 1.05, 1.1)):
        ImageEnhance.Brightness(photo).enhance(f).save(tmp_path / f"bright{k}.jpg", quality=90)
    for k, side in enumerate((280, 240, 200)):
        photo.resize((side, side * 3 // 4), Image.LANCZOS).save(tmp_path / f"small{k}.jpg", quality=90)
    photo.rotate(25, resample=Image.BICUBIC).save(tmp_path / "turned.jpg", quality=92)  # same-size canvas
    for k in range(18):  # look-alikes: other crops of another photo, and drawn scenes
        if k < 12:
            x, y = 20 + 25 * k, 20 + 9 * k
            other.crop((x, y, x + 320, y + 240)).save(tmp_path / f"other{k:02d}.jpg", quality=90)
        else:
            scene(400 + k, 200).save(tmp_path / f"scene{k:02d}.jpg", quality=90)

    def listed(result):
        return {frozenset((r["a"], r["b"])) for r in result.pair_records()}

    target = frozenset(("photo.jpg", "turned.jpg"))
    result = leakscan.audit(tmp_path, cache=False, jobs=1)
    assert target in listed(result)
    # the pairs proposed with a twin are marked, so the shares of copies leave them out
    found = pairs_module.find_candidates(result.features, DetectSettings())
    marked = found.by_twins(found.pairs)
    assert 0 < marked.sum() == len(found.twins)
    monkeypatch.setattr(pairs_module, "TWIN_HAMMING", -1)  # no twins: the test's folder does hide the pair
    # (from the thumbnails' searches: the keypoint search, whose keypoints turn with the picture, finds it)
    monkeypatch.setattr(leakscan.decide, "keypoint_pairs", lambda *a, **k: (PairTable.empty(), 0))
    assert target not in listed(leakscan.audit(tmp_path, cache=False, jobs=1))


def test_find_pairs_reads_the_pictures_again_from_the_manifest_as_the_audit_does(leaky_dataset):
    # images= took only a function of row numbers, which the README did not say: given the
    # manifest, the calibration copied ints and failed ("'Manifest' object is not callable")
    import leakscan

    m = discover(leaky_dataset)
    feats = extract_features(m, jobs=1)
    pt = find_pairs(feats, images=m)
    audited = leakscan.audit(leaky_dataset, cache=False, jobs=1).pairs
    assert pair_set(pt) == pair_set(audited) and len(pt)
    np.testing.assert_allclose(pt.confidence, audited.confidence)
    with pytest.raises(ConfigError, match="images= must be the Manifest the features were extracted from .* got str"):
        find_pairs(feats, images=str(leaky_dataset))
    with pytest.raises(ConfigError, match="images= is a manifest of 2 images, but the features are of"):
        find_pairs(feats, images=discover([str(p) for p in sorted(leaky_dataset.rglob("*.jpg"))[:2]]))
