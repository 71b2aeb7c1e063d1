"""Multi-band, 16-bit GeoTIFF tiles written with tifffile: bands, percentile scaling, spatial leakage."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import leakscan
from leakscan.cli import app
from leakscan.decode import DecodeError
from conftest import scene

tifffile = pytest.importorskip("tifffile")
from leakscan.sources.geotiff import decode_tile, spatial_pairs  # noqa: E402

SIZE = 64
PIXEL = 10.0  # metres per pixel: a tile is 640 m wide


def bands_of(seed: int, gain: float = 257.0, offset: float = 0.0) -> np.ndarray:
    """(H, W, 5) uint16: the scene's R, G, B, then two more bands (NIR-like grey, inverse red)."""
    rgb = np.asarray(scene(seed, SIZE), np.float64)
    grey = rgb.mean(axis=2)
    b = np.stack([rgb[..., 0], rgb[..., 1], rgb[..., 2], grey, 255 - rgb[..., 0]], axis=-1)
    return np.clip(b * gain + offset, 0, 65535).astype(np.uint16)


def write_tile(path, arr, x=None, y=None, epsg=32633, planar="contig"):
    extratags = []
    if x is not None:
        keys = (1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, epsg)
        extratags = [(33550, "d", 3, (PIXEL, PIXEL, 0.0), False),
                     (33922, "d", 6, (0.0, 0.0, 0.0, float(x), float(y), 0.0), False),
                     (34735, "H", len(keys), keys, False)]
    path.parent.mkdir(parents=True, exist_ok=True)
    data = arr if planar == "contig" else np.moveaxis(arr, -1, 0)
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig=planar, extratags=extratags)
    return path


@pytest.fixture
def tiles(tmp_path):
    """train: a row of 6 tiles side by side; test: 3 tiles elsewhere, one shifted half onto train/t2
    (other pixels: spatial leakage only) and a re-processed copy of train/t4 (same footprint)."""
    root = tmp_path / "tiles"
    for k in range(6):
        write_tile(root / "train" / f"t{k}.tif", bands_of(k), x=k * SIZE * PIXEL, y=5000)
    write_tile(root / "test" / "far.tif", bands_of(10), x=100_000, y=5000)
    write_tile(root / "test" / "shifted.tif", bands_of(11), x=2.5 * SIZE * PIXEL, y=5000, planar="separate")
    write_tile(root / "test" / "reprocessed.tif", bands_of(4, gain=120.0, offset=900.0), x=4 * SIZE * PIXEL, y=5000)
    return root


def test_spatial_leakage_reported_with_overlap(tiles, tmp_path):
    a = leakscan.audit(tiles, jobs=1)
    d = a.to_dict()
    assert d["n_georeferenced"] == 9
    sl = {(x["split"], x["against"]): x for x in d["spatial_leaks"]}
    assert sl[("test", "train")]["tiles"] == 2 and sl[("test", "train")]["total"] == 3
    assert sl[("test", "train")]["max_overlap"] == 1.0
    out = tmp_path / "out"
    from leakscan.report import write_outputs

    write_outputs(a, out, html=False, force=True)
    rows = list(csv.DictReader(open(out / "spatial.csv")))
    got = {(r["a"], r["b"]): float(r["overlap"]) for r in rows}
    assert got == {("test/reprocessed.tif", "train/t4.tif"): 1.0,
                   ("test/shifted.tif", "train/t2.tif"): 0.5,
                   ("test/shifted.tif", "train/t3.tif"): 0.5}
    assert rows[0]["crs"] == "EPSG:32633"


def test_reprocessed_16bit_copy_is_a_pixel_duplicate(tiles):
    a = leakscan.audit(tiles, jobs=1)
    m = a.manifest
    cross = a.cross_split()
    pairs = {frozenset((m.paths[i], m.paths[j])) for i, j in zip(a.pairs.i[cross], a.pairs.j[cross])}
    assert frozenset(("test/reprocessed.tif", "train/t4.tif")) in pairs
    assert frozenset(("test/shifted.tif", "train/t2.tif")) not in pairs


def test_bands_and_percentile_scaling(tmp_path):
    arr = bands_of(3)
    p = write_tile(tmp_path / "b.tif", arr)
    img, note = decode_tile(p.read_bytes())
    assert note == "bands 1,2,3 of 5" and img.size == (SIZE, SIZE)
    rgb = np.asarray(img)
    assert rgb.min() == 0 and rgb.max() == 255
    img2, note2 = decode_tile(p.read_bytes(), bands=(4, 3, 2))
    assert note2 == "bands 4,3,2 of 5"
    assert np.array_equal(np.asarray(img2)[..., 1], rgb[..., 2])   # band 3 is shown as green
    with pytest.raises(DecodeError, match="bands 7,1,1 asked of a tile with 5"):
        decode_tile(p.read_bytes(), bands=(7, 1, 1))


def test_cli_bands_and_terminal_line(tiles, tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["audit", str(tiles), "--bands", "4,3,2", "-j", "1", "--out", str(out),
                                 "--no-html"])
    assert r.exit_code == 0, r.output
    assert "spatial leakage: 2 of 3 test tiles overlap a train tile" in r.output
    d = json.loads((out / "summary.json").read_text())
    assert d["n_images"] == 9 and d["n_spatial_pairs"] == 3
    r = CliRunner().invoke(app, ["audit", str(tiles), "--bands", "4,3", "-j", "1"])
    assert r.exit_code == 2 and "--bands must be one or three" in r.output


def test_plain_tiffs_are_left_to_pillow(tmp_path):
    root = tmp_path / "plain"
    for k in range(4):
        (root / ("train" if k < 3 else "test")).mkdir(parents=True, exist_ok=True)
        scene(k).save(root / ("train" if k < 3 else "test") / f"{k}.tif")
    a = leakscan.audit(root, jobs=1)
    assert a.manifest.source is None and "spatial_leaks" not in a.to_dict()


def test_a_png_or_jpeg_named_tif_is_read_by_its_content_not_skipped_as_a_tile(tmp_path):
    root = tmp_path / "named"
    for k in range(4):
        (root / "train").mkdir(parents=True, exist_ok=True)
        scene(k).save(root / "train" / f"{k}.png")
    (root / "test").mkdir()
    scene(0).save(root / "test" / "copy.tif", "PNG")
    scene(1).save(root / "test" / "copy.tiff", "JPEG", quality=95)
    a = leakscan.audit(root, jobs=1)
    assert a.skipped == []
    assert a.to_dict()["leaks"][0]["images"] == 2 and a.manifest.source is None


def test_a_tile_of_complex_pixels_is_skipped_with_a_reason_not_read_as_its_real_part(tmp_path, recwarn):
    root = tmp_path / "sar"
    amplitude = np.asarray(scene(3, SIZE).convert("L"), np.float32)
    write_tile(root / "train" / "a.tif", amplitude * np.exp(1j * amplitude).astype(np.complex64))
    write_tile(root / "test" / "b.tif", bands_of(4))
    a = leakscan.audit(root, jobs=1, cache=False)
    assert dict(a.skipped)["train/a.tif"].startswith("complex pixels (complex64, as radar scenes store them)")
    assert not [w for w in recwarn if issubclass(w.category, getattr(np, "exceptions", np).ComplexWarning)]


def test_8bit_tiles_with_bands_beyond_the_picture_are_read(tmp_path):
    # no georeferencing, 8 bits: grey bands beyond the first, or a near-infrared band stored
    # planar, are tiles of several bands (Pillow cannot read them: they were skipped)
    root = tmp_path / "bands"
    rgb = [np.asarray(scene(k, SIZE)) for k in range(6)]
    nir = np.zeros((SIZE, SIZE, 1), np.uint8)
    nir[SIZE // 2:] = 255
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for k in range(4):
        tifffile.imwrite(root / "train" / f"{k}.tif", np.moveaxis(np.dstack([rgb[k], nir]), -1, 0),
                         photometric="rgb", planarconfig="separate", extrasamples=["unspecified"])
    tifffile.imwrite(root / "test" / "grey4.tif", np.dstack([rgb[2], nir]), photometric="minisblack",
                     planarconfig="contig")
    tifffile.imwrite(root / "test" / "grey3.tif", np.moveaxis(rgb[5], -1, 0), photometric="minisblack",
                     planarconfig="separate")
    a = leakscan.audit(root, jobs=1, cache=False)
    d = a.to_dict()
    assert d["n_skipped"] == 0 and d["n_images"] == 6
    m = a.manifest
    same = [m.source.pixels(int(np.flatnonzero(m.paths == p)[0])) for p in ("train/2.tif", "test/grey4.tif")]
    assert np.array_equal(*same)  # bands 1-3 of both, whatever the photometric tag says
    assert ("test/grey4.tif", "train/2.tif") in {tuple(sorted((p["a"], p["b"]))) for p in a.pair_records()}


def test_spatial_pairs_invariants():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (60, 2))
    boxes = np.concatenate([xy, xy + 10], axis=1)
    splits = np.array(rng.choice(["train", "test"], 60), dtype=object)
    crs = np.array([""] * 60, dtype=object)
    got = spatial_pairs(boxes, crs, splits)
    brute = []
    for i in range(60):
        for j in range(i + 1, 60):
            w = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            h = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            if w > 0 and h > 0 and splits[i] != splits[j]:
                brute.append((i, j))
    assert [(i, j) for i, j, _ in got] == brute
    assert all(0 < ov <= 1 for *_, ov in got)


def test_resplit_keeps_overlapping_tiles_together(tiles, tmp_path):
    """shifted.tif (test) overlaps train/t2 and t3, reprocessed.tif (test) lies on train/t4: after a
    re-split, the written manifest re-audited has no spatial pair across splits."""
    out = tmp_path / "new" / "new.csv"
    r = CliRunner().invoke(app, ["resplit", str(tiles), "--out", str(out), "-j", "1", "--json", "-q"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["spatial_links"] == 3 and d["spatial_links_cross_after"] == 0
    split = {row["path"].split("tiles/")[1]: row["split"] for row in csv.DictReader(open(out, newline=""))}
    assert len(split) == 9
    assert split["train/t2.tif"] == split["train/t3.tif"] == split["test/shifted.tif"]
    assert split["train/t4.tif"] == split["test/reprocessed.tif"]
    again = CliRunner().invoke(app, ["audit", "--manifest", str(out), "-j", "1", "--json", "-q"])
    assert again.exit_code == 0, again.output
    d2 = json.loads(again.stdout)
    assert d2["n_georeferenced"] == 9                                # footprints read from the manifest's tiles
    assert d2["n_spatial_pairs"] == 0 and all(sl["tiles"] == 0 for sl in d2["spatial_leaks"])
    assert d2["n_cross_split_pairs"] == 0


def test_library_resplit_and_find_groups_use_spatial_links(tiles, tmp_path):
    a = leakscan.audit(tiles, jobs=1)
    m = a.manifest
    row = {p: k for k, p in enumerate(m.paths)}
    for seed in range(3):
        rs = leakscan.resplit(a, ratios="train=0.6,test=0.4", shuffle=True, random_state=seed)
        assert rs.links_across("spatial") == 0
        assert rs.leftover_warnings() == []
        new = rs.splits
        assert new[row["train/t2.tif"]] == new[row["train/t3.tif"]] == new[row["test/shifted.tif"]]
    ids = leakscan.find_groups(tiles, jobs=1)
    assert ids[row["train/t2.tif"]] == ids[row["train/t3.tif"]] == ids[row["test/shifted.tif"]]
    assert len(set(ids.tolist())) == 6                               # 9 tiles: {t2, t3, shifted}, {t4, reprocessed}
    # keep the test tiles: the train tiles under them are dropped, each with its reason
    rs = leakscan.resplit(a, keep="test", drop=True)
    from leakscan.report import write_resplit

    write_resplit(rs, tmp_path / "k.csv")
    why = {row["path"].split("tiles/")[1]: row["reason"]
           for row in csv.DictReader(open(tmp_path / "k.dropped.csv", newline=""))}
    assert why == {"train/t2.tif": "linked to an image in a kept split (a frame of the same file, or an "
                                   "overlapping tile footprint)",
                   "train/t3.tif": "linked to an image in a kept split (a frame of the same file, or an "
                                   "overlapping tile footprint)",
                   "train/t4.tif": "duplicate of an image in a kept split"}


def test_a_tile_of_nodata_only_is_skipped_with_a_reason_not_paired(tmp_path):
    """Float tiles whose every pixel is NaN (outside the swath) have nothing to compare: two of
    them are skipped with a reason, not reported as exact copies of each other; a tile with some
    NaN pixels (nodata at an edge) is read."""
    nodata = np.full((SIZE, SIZE, 3), np.nan, np.float32)
    with pytest.raises(DecodeError, match="no data: every pixel of band"):
        decode_tile(write_tile(tmp_path / "x.tif", nodata).read_bytes())
    part = bands_of(2).astype(np.float32)
    part[: SIZE // 4] = np.nan
    img, _ = decode_tile(write_tile(tmp_path / "part.tif", part).read_bytes())
    assert np.asarray(img)[SIZE // 2:].std() > 10
    root = tmp_path / "swath"
    for k in range(4):
        write_tile(root / "train" / f"t{k}.tif", bands_of(k).astype(np.float32))
    write_tile(root / "train" / "empty0.tif", nodata)
    write_tile(root / "test" / "empty1.tif", nodata)
    write_tile(root / "test" / "t9.tif", bands_of(9).astype(np.float32))
    a = leakscan.audit(root, jobs=1)
    skipped = dict(a.skipped)
    assert set(skipped) == {"train/empty0.tif", "test/empty1.tif"}, skipped
    assert all("no data" in reason for reason in skipped.values())
    assert not [r for r in a.pair_records() if "empty" in r["a"] + r["b"]]


def test_gdal_nodata_value_is_no_data(tmp_path):
    """GDAL's nodata value (tag 42113; 0 or -9999, not NaN) is nodata as NaN is: two tiles of it only
    are skipped, not exact copies across splits; a tile with a nodata edge is stretched on its data."""
    def write(path, arr, nodata):
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, arr, photometric="minisblack", planarconfig="contig",
                         extratags=[(42113, "s", 0, nodata, False)])
        return path

    root = tmp_path / "swath"
    for k in range(4):
        write_tile(root / "train" / f"t{k}.tif", bands_of(k))
    write(root / "train" / "empty0.tif", np.zeros((SIZE, SIZE, 5), np.uint16), "0")
    write(root / "test" / "empty1.tif", np.zeros((SIZE, SIZE, 5), np.uint16), "0")
    write_tile(root / "test" / "t9.tif", bands_of(9))
    a = leakscan.audit(root, jobs=1)
    skipped = dict(a.skipped)
    assert set(skipped) == {"train/empty0.tif", "test/empty1.tif"}, skipped
    assert all("no data" in reason and "nodata value 0" in reason for reason in skipped.values())
    assert not [r for r in a.pair_records() if "empty" in r["a"] + r["b"]]
    full = bands_of(7).astype(np.float32)
    edge = full.copy()
    edge[: SIZE // 3] = -9999
    x, _ = decode_tile(write(tmp_path / "edge.tif", edge, "-9999").read_bytes())
    y, _ = decode_tile(write(tmp_path / "full.tif", full, "-9999").read_bytes())
    below = slice(SIZE // 2, None)
    assert np.abs(np.asarray(x)[below].astype(int) - np.asarray(y)[below]).mean() < 8


def test_library_bands_are_checked_as_the_cli_does(tiles):
    """bands=(0, 1, 2) read the last band as 'band 0' without a word; (1, 2) and "4,3,2" failed
    every tile with an 'unexpected error'. They are checked once, as --bands is."""
    from leakscan.errors import ConfigError

    for bad in ((0, 1, 2), (1, 2), (4, 3, 2, 1)):
        with pytest.raises(ConfigError, match="bands must be one or three band numbers"):
            leakscan.audit(tiles / "train", jobs=1, bands=bad)
    a = leakscan.audit(tiles / "train", jobs=1, bands="4,3,2")
    assert a.n_images == 6 and not a.skipped and a.manifest.source.options == (("bands", (4, 3, 2)),)


def test_lzw_or_jpeg_georeferenced_rgb_tiles_read_without_imagecodecs(tmp_path, monkeypatch):
    """tifffile decodes LZW and JPEG only with imagecodecs (not a dependency); Pillow reads them. A
    georeferenced 8-bit RGB tile (aerial imagery) so compressed was skipped once leakscan[geo] was in."""
    from PIL import Image, TiffImagePlugin

    real = tifffile.TiffPage.asarray

    def no_imagecodecs(page, *args, **kwargs):
        if int(page.compression) != 1:
            raise ValueError(f"{page.compression!r} requires the 'imagecodecs' package")
        return real(page, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_imagecodecs)
    root = tmp_path / "aerial"
    for split, seed, x, comp in (("train", 1, 0, "tiff_lzw"), ("train", 2, 640, None), ("test", 3, 320, "tiff_lzw"),
                                 ("test", 1, 9000, "jpeg")):
        (root / split).mkdir(parents=True, exist_ok=True)
        info = TiffImagePlugin.ImageFileDirectory_v2()
        info[33550], info.tagtype[33550] = (PIXEL, PIXEL, 0.0), 12
        info[33922], info.tagtype[33922] = (0.0, 0.0, 0.0, float(x), 5000.0, 0.0), 12
        rgb = Image.fromarray((bands_of(seed)[..., :3] // 257).astype(np.uint8), "RGB")
        rgb.save(root / split / f"{split}{seed}.tif", compression=comp, tiffinfo=info)
    a = leakscan.audit(root, jobs=1)
    assert not a.skipped and a.n_images == 4
    d = a.to_dict()
    assert d["n_georeferenced"] == 4 and d["n_spatial_pairs"] == 2
    assert {frozenset((r["a"], r["b"])) for r in a.pair_records()} >= {frozenset(("train/train1.tif", "test/test1.tif"))}
    lzw, _ = decode_tile((root / "train" / "train1.tif").read_bytes())
    plain = tmp_path / "plain.tif"
    Image.open(root / "train" / "train1.tif").save(plain, tiffinfo=info)
    same, _ = decode_tile(plain.read_bytes())
    assert np.array_equal(np.asarray(lzw), np.asarray(same))


def test_tiles_cached_by_an_earlier_decoding_are_decoded_again(tmp_path, monkeypatch):
    """Features of tiles cached before the nodata value was left out (their key of decoding 1)
    are not reused: a cached nodata-only tile would still be an exact copy across splits."""
    import leakscan.sources.rows as rows

    root = tmp_path / "swath"
    for k in range(4):
        write_tile(root / ("train" if k < 3 else "test") / f"t{k}.tif", bands_of(k))
    cache = tmp_path / "c.sqlite"
    monkeypatch.setattr(rows, "GEOTIFF_DECODING", 1)
    assert leakscan.audit(root, jobs=1, cache=cache).features.n_cached == 0
    assert leakscan.audit(root, jobs=1, cache=cache).features.n_cached == 4
    monkeypatch.setattr(rows, "GEOTIFF_DECODING", 2)
    again = leakscan.audit(root, jobs=1, cache=cache)
    assert again.features.n_cached == 0 and again.n_images == 4
