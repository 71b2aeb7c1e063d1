import codecs

import numpy as np
import pytest

from leakscan import InputError, discover
from conftest import FIXTURES, scene, write_dataset


def test_fixture_folder_layout():
    m = discover(FIXTURES)
    assert set(m.splits) == {"train", "test"}
    assert len(m) == sum(1 for _ in FIXTURES.glob("*/*/*.*"))
    row = list(m.paths).index("train/ship/0480.jpg")
    assert (m.splits[row], m.labels[row]) == ("train", "ship")


@pytest.mark.parametrize("names", [("Training", "VALID", "Testing"), ("train", "dev", "holdout")])
def test_split_aliases_nested(tmp_path, names):
    layout = {f"v2/{n}/cls/{k}.png": scene(k) for k, n in enumerate(names)}
    write_dataset(tmp_path, layout)
    m = discover(tmp_path)
    assert sorted(m.splits) == ["test", "train", "val"]
    assert set(m.labels) == {"cls"}


@pytest.mark.parametrize("cwd, spelling", [("ds", "."), ("ds", "./"), ("ds/test", ".."), ("", "./ds"),
                                           ("", "ds/../ds")])
def test_a_folder_lists_the_same_paths_however_it_is_spelled(tmp_path, monkeypatch, cwd, spelling):
    # "." used to lose the first letter of every path ("est/a/2.png": no image could be read)
    write_dataset(tmp_path / "ds", {"train/a/1.png": scene(1), "test/a/2.png": scene(2), "test/3.png": scene(3)})
    whole = discover(tmp_path / "ds")
    monkeypatch.chdir(tmp_path / cwd)
    m = discover(spelling)
    assert sorted(m.paths) == sorted(whole.paths) == ["test/3.png", "test/a/2.png", "train/a/1.png"]
    assert all((m.root / p).is_file() for p in m.paths)


@pytest.mark.parametrize("spelling", [".", "ds"])
def test_images_beside_the_split_folders_are_named_in_skipped(tmp_path, monkeypatch, spelling):
    # they used to be left out silently: a copy of a train image in extra/ was never looked at
    write_dataset(tmp_path / "ds", {"v1/train/a/1.png": scene(1), "v1/test/a/2.png": scene(2),
                                    "v1/extra/copy.png": scene(1), "stray.png": scene(3),
                                    "v2/more/train/4.png": scene(4), "v1/.cache/5.png": scene(5)})
    (tmp_path / "ds" / "v1" / "notes.txt").write_text("not an image")
    scene(6).save(tmp_path / "ds" / "v1" / "3f9a0c", "PNG")  # an image saved without an extension
    (tmp_path / "ds" / "v1" / "LICENSE").write_text("not an image either")
    monkeypatch.chdir(tmp_path / "ds" if spelling == "." else tmp_path)
    m = discover(spelling)
    assert sorted(m.paths) == ["v1/test/a/2.png", "v1/train/a/1.png"]
    reasons = dict(m.skipped)
    assert sorted(reasons) == ["stray.png", "v1/3f9a0c", "v1/extra/copy.png", "v2/more/train/4.png"]
    assert reasons["stray.png"] == "not in a split folder (v1/test/, v1/train/): not audited"
    assert all((m.root / p).is_file() for p in reasons)


def test_folder_without_splits_is_one_split(tmp_path):
    write_dataset(tmp_path, {"cats/1.png": scene(1), "dogs/2.png": scene(2)})
    (tmp_path / "notes.txt").write_text("not an image")
    m = discover(tmp_path)
    assert list(m.splits) == ["all", "all"]
    assert sorted(m.labels) == ["cats", "dogs"]


def test_csv_manifest_with_bom_semicolons_and_groups(tmp_path):
    write_dataset(tmp_path, {"img/a.png": scene(1), "img/b.png": scene(2)})
    (tmp_path / "m.csv").write_bytes("\ufeffpath;split;label;group\nimg/a.png;train;x;p1\nimg/b.png;Test;y;p1\nimg/a.png;test;x;\n".encode())
    m = discover(None, manifest=tmp_path / "m.csv")
    assert list(m.paths) == ["img/a.png", "img/b.png"]
    assert list(m.splits) == ["train", "test"]
    assert list(m.groups) == ["p1", "p1"]
    assert m.skipped and "listed twice" in m.skipped[0][1]
    assert "line 2 in train, line 4 in test: one file on both sides of the split" in m.skipped[0][1]


def test_a_file_listed_twice_is_found_however_its_path_is_spelled(tmp_path):
    write_dataset(tmp_path, {"img/a.png": scene(1), "img/b.png": scene(2)})
    (tmp_path / "m.csv").write_text("path,split\nimg/a.png,train\nimg/b.png,train\n./img/a.png,train\n"
                                    "img/../img/b.png,test\n")
    m = discover(None, manifest=tmp_path / "m.csv")
    assert list(m.paths) == ["img/a.png", "img/b.png"]
    reasons = dict(m.skipped)
    assert reasons["./img/a.png"] == "listed twice in the manifest (lines 2 and 4); kept the first"
    assert "line 3 in train, line 5 in test" in reasons["img/../img/b.png"]
    # nor its absolute path (it used to be audited twice, an exact pair of the file with itself)
    (tmp_path / "m3.csv").write_text(f"path,split\nimg/a.png,train\n{tmp_path / 'img' / 'a.png'},test\n")
    m = discover(None, manifest=tmp_path / "m3.csv")
    assert list(m.paths) == ["img/a.png"] and "line 2 in train, line 3 in test" in m.skipped[0][1]
    # a row left out for want of a split does not hide the file's next listing
    (tmp_path / "m2.csv").write_text("path,split\nimg/a.png,\nimg/a.png,test\n")
    m = discover(None, manifest=tmp_path / "m2.csv")
    assert list(m.paths) == ["img/a.png"] and list(m.splits) == ["test"]


def test_a_file_listed_in_two_splits_is_a_warning(tmp_path):
    import leakscan

    write_dataset(tmp_path, {"img/a.png": scene(1), "img/b.png": scene(2), "img/c.png": scene(3)})
    (tmp_path / "m.csv").write_text("path,split\nimg/a.png,train\nimg/b.png,train\nimg/c.png,test\n"
                                    "./img/a.png,test\nimg/b.png,train\n")
    d = leakscan.audit(tmp_path / "m.csv", cache=False, jobs=1).to_dict()
    both = [w for w in d["warnings"] if "listed in two splits" in w]
    assert len(both) == 1 and both[0].startswith("1 file(s) are listed in two splits of the manifest (./img/a.png)")


def test_manifest_reasons_name_the_line_a_row_is_on_past_blank_lines_and_quoted_line_breaks(tmp_path):
    write_dataset(tmp_path, {"img/a.png": scene(1), "img/b.png": scene(2)})
    (tmp_path / "m.csv").write_text('path,split,label\n\nimg/a.png,train,"two\nlines"\n\n\n'
                                    'img/a.png,test,x\n,train,x\nimg/b.png,,x\n')
    m = discover(None, manifest=tmp_path / "m.csv")
    assert list(m.paths) == ["img/a.png"] and list(m.labels) == ["two\nlines"]
    assert m.skipped == (
        ("img/a.png", "listed twice in the manifest (line 3 in train, line 7 in test: one file on both sides of "
                      "the split); kept the first"),
        ("m.csv:8", "manifest row has an empty path"),
        ("img/b.png", "manifest line 9 has no split"))


def test_a_url_in_the_path_column_is_named_as_a_url_by_its_line_not_as_a_missing_file(tmp_path):
    # http://, s3://... were joined to the manifest's folder and skipped as "file not found"
    write_dataset(tmp_path, {"img/a.png": scene(1), "img/b.png": scene(2)})
    (tmp_path / "m.csv").write_text("path,split\nimg/a.png,train\nhttps://example.com/c.png,test\n"
                                    "s3://bucket/d.jpg,train\nfile:///data/e.png,test\nimg/b.png,test\n")
    m = discover(None, manifest=tmp_path / "m.csv")
    assert list(m.paths) == ["img/a.png", "img/b.png"]
    why = "gives a URL, not a file: leakscan reads local files only (download or mount it, and give its local path)"
    assert m.skipped == (("https://example.com/c.png", f"manifest line 3 {why}"),
                         ("s3://bucket/d.jpg", f"manifest line 4 {why}"),
                         ("file:///data/e.png", f"manifest line 5 {why}"))


def test_a_url_in_a_list_of_paths_is_named_as_a_url_and_keeps_its_row(tmp_path, monkeypatch):
    # a list given from Python kept the URL as a path under the working folder: "file not found";
    # the row stays (find_groups gives one id per row of the list)
    from leakscan import audit

    write_dataset(tmp_path, {"a.png": scene(1), "b.png": scene(2)})
    monkeypatch.chdir(tmp_path)
    r = audit(["a.png", "https://example.com/c.png", "b.png"], cache=False, jobs=1)
    assert len(r.manifest) == 3
    assert r.features.failures == ((1, "a URL, not a file: leakscan reads local files only "
                                       "(download or mount it, and give its local path)"),)


def test_a_quote_never_closed_is_refused_not_read_as_one_cell_holding_the_rest(tmp_path):
    # the csv module read every line after the stray quote as one cell: one row "without a split"
    # was skipped and the rest of the manifest was silently not audited (exit 0)
    write_dataset(tmp_path, {f"img/{k}.png": scene(k) for k in range(4)})
    (tmp_path / "m.csv").write_text('path,split\nimg/0.png,train\n"img/1.png,train\nimg/2.png,test\nimg/3.png,test\n')
    with pytest.raises(InputError, match=r"m\.csv: line 3: a quoted cell opened there is never closed"):
        discover(None, manifest=tmp_path / "m.csv")
    # a quoted cell closed on a later line is a cell holding a line break, as before
    (tmp_path / "m.csv").write_text('path,split,label\nimg/0.png,train,a\nimg/1.png,test,"b\nc"\n')
    assert list(discover(None, manifest=tmp_path / "m.csv").labels) == ["a", "b\nc"]


def test_a_row_the_csv_module_cannot_read_is_named_by_its_line(tmp_path):
    # a stray quote in a long manifest makes a cell past the csv module's limit: the error named
    # neither the line nor the cause ("not a readable CSV manifest (field larger than field limit ...)")
    rows = [f"img/{k:06d}-with-a-long-name-to-fill-the-cell.png,test" for k in range(4000)]
    (tmp_path / "m.csv").write_text("path,split\n\nimg/a.png,train\n\"img/b.png,train\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"m\.csv: line 4: not a readable CSV row \(field larger than field limit "
                                         r"\(\d+\); a quoted cell opened there and never closed"):
        discover(None, manifest=tmp_path / "m.csv")


def test_csv_manifest_written_on_windows_reads_its_backslashes_as_folders(tmp_path):
    write_dataset(tmp_path, {"imgs/a/1.png": scene(1), "imgs/a/2.png": scene(2)})
    odd = tmp_path / "imgs" / "odd\\name.png"  # a Linux name with a backslash in it stays as written
    scene(3).save(odd)
    (tmp_path / "m.csv").write_text("path,split\r\nimgs\\a\\1.png,train\r\nimgs\\a\\2.png,test\r\n"
                                    "imgs/odd\\name.png,test\r\nimgs\\a\\3.png,test\r\n")
    m = discover(tmp_path / "m.csv")
    assert list(m.paths) == ["imgs/a/1.png", "imgs/a/2.png", "imgs/odd\\name.png", "imgs\\a\\3.png"]
    assert [m.resolve(r).is_file() for r in range(len(m))] == [True, True, True, False]


def test_a_folder_and_a_manifest_together_are_refused(tmp_path):
    # the folder used to be ignored silently: another dataset than the one named was audited
    write_dataset(tmp_path / "a", {"train/1.png": scene(1), "test/2.png": scene(2)})
    write_dataset(tmp_path / "b", {"img/3.png": scene(3)})
    (tmp_path / "b" / "m.csv").write_text("path,split\nimg/3.png,train\n")
    with pytest.raises(InputError, match=r"give the data to audit \(.*a\) or a manifest \(.*m.csv\), not both"):
        discover(tmp_path / "a", manifest=tmp_path / "b" / "m.csv")


def test_csv_missing_column_names_it(tmp_path):
    (tmp_path / "m.csv").write_text("file,split\na.png,train\n")
    with pytest.raises(InputError, match="lacks column.*path"):
        discover(None, manifest=tmp_path / "m.csv")


@pytest.mark.parametrize("header", ["path,split,label,label", "path,split,Path", "path,split,group, GROUP"])
def test_a_column_named_twice_is_refused_not_read_from_one_of_them(tmp_path, header):
    # the last of the two used to be read, silently: labels, paths or groups from the wrong column
    write_dataset(tmp_path, {"img/a.png": scene(1), "img/b.png": scene(2)})
    (tmp_path / "m.csv").write_text(f"{header}\nimg/a.png,train,cat\nimg/b.png,test,dog\n")
    twice = header.split(",")[-1].strip().lower()
    with pytest.raises(InputError, match=rf"m\.csv: manifest names column\(s\) {twice} more than once"):
        discover(None, manifest=tmp_path / "m.csv")


def test_empty_csv(tmp_path):
    (tmp_path / "m.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        discover(tmp_path / "m.csv")


def test_array_source_and_bad_shape():
    m = discover(np.zeros((2, 8, 8, 3), np.uint8), labels=["a", "b"])
    assert list(m.paths) == ["array[0]", "array[1]"]
    with pytest.raises(InputError, match="shape"):
        discover(np.zeros((2, 8), np.uint8))
    with pytest.raises(InputError, match="3 entries"):
        discover(np.zeros((2, 8, 8), np.uint8), splits=["a", "b", "c"])


def test_missing_folder():
    with pytest.raises(InputError, match="no such file"):
        discover("/nonexistent/folder")


def test_manifests_saved_as_utf16_are_read_and_other_encodings_named(tmp_path):
    """Excel's "Unicode text" and Windows PowerShell write UTF-16 with a byte-order mark (and tabs):
    read. A Latin-1 manifest is refused with the byte and what to do."""
    write_dataset(tmp_path, {"img/a.png": scene(1), "img/b.png": scene(2)})
    text = "path\tsplit\r\nimg/a.png\ttrain\r\nimg/b.png\ttest\r\n"
    (tmp_path / "m16.csv").write_bytes(text.encode("utf-16"))
    m = discover(None, manifest=tmp_path / "m16.csv")
    assert list(m.paths) == ["img/a.png", "img/b.png"] and list(m.splits) == ["train", "test"]
    (tmp_path / "latin.csv").write_bytes("path,split\nimg/\xe9.png,train\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin.csv: manifest is not UTF-8 text .*at byte 15\); save it as UTF-8"):
        discover(None, manifest=tmp_path / "latin.csv")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_a_manifest_in_utf16_or_32_without_its_byte_order_mark_is_named_so(tmp_path, encoding):
    # it read as UTF-8 with a NUL between letters: "lacks column(s) path, split; found p\x00a\x00t..."
    write_dataset(tmp_path, {"img/a.png": scene(1)})
    (tmp_path / "m.csv").write_bytes("path,split\nimg/a.png,train\n".encode(encoding))
    with pytest.raises(InputError, match=r"m.csv: manifest is not UTF-8 text \(a NUL byte at byte [0-3] of its "
                                         r"first line: UTF-16 or UTF-32 saved without its byte-order mark\?\)"):
        discover(None, manifest=tmp_path / "m.csv")


def test_a_manifest_in_utf32_with_its_byte_order_mark_is_read(tmp_path):
    # its mark starts as UTF-16's does: it read as UTF-16, every letter followed by a NUL
    write_dataset(tmp_path, {"img/a.png": scene(1), "img/b.png": scene(2)})
    for encoding in ("utf-32", "utf-32-be"):
        raw = "path,split\nimg/a.png,train\nimg/b.png,test\n".encode(encoding)
        (tmp_path / "m.csv").write_bytes(raw if encoding == "utf-32" else codecs.BOM_UTF32_BE + raw)
        m = discover(None, manifest=tmp_path / "m.csv")
        assert list(m.paths) == ["img/a.png", "img/b.png"] and list(m.splits) == ["train", "test"]


def test_hidden_folders_and_files_are_not_read(tmp_path):
    """A notebook's checkpoints, a photo manager's thumbnails, macOS's AppleDouble files: not the dataset."""
    write_dataset(tmp_path, {"train/cats/1.png": scene(1), "test/cats/2.png": scene(2),
                             "train/cats/.ipynb_checkpoints/1-checkpoint.png": scene(1),
                             "train/.thumbnails/1.png": scene(1).resize((16, 16))})
    (tmp_path / "train" / "cats" / "._1.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    m = discover(tmp_path)
    assert sorted(m.paths) == ["test/cats/2.png", "train/cats/1.png"] and not m.skipped


def test_an_archive_is_refused_with_what_to_do(tmp_path):
    import shutil

    write_dataset(tmp_path / "data", {"train/1.png": scene(1), "test/2.png": scene(2)})
    for fmt in ("zip", "gztar"):
        archive = shutil.make_archive(str(tmp_path / "data"), fmt, tmp_path / "data")
        with pytest.raises(InputError, match="an archive: unpack it, then pass the folder"):
            discover(archive)
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(InputError, match=r"notes.txt: not a folder or a CSV manifest \(pass"):
        discover(tmp_path / "notes.txt")


def _deep_folder(top, levels: int = 20) -> str:
    """A chain of folders under ``top`` whose full path is longer than the system's limit (made
    step by step, relative to each folder), a picture at its end; returns the first folder's name."""
    import io
    import os

    name = "d" * 240
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        buf = io.BytesIO()
        scene(9).save(buf, "PNG")
        out = os.open("deep.png", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(out, buf.getvalue())
        os.close(out)
    finally:
        os.close(fd)
    return name


def test_a_folder_that_cannot_be_listed_is_named_in_skipped(tmp_path):
    """Images in a folder the walk cannot list (no permission; here a path longer than the system
    allows) are not silently missing: the folder is in skipped.csv with the reason."""
    write_dataset(tmp_path, {"train/1.png": scene(1), "test/2.png": scene(2)})
    first = _deep_folder(tmp_path / "train")
    m = discover(tmp_path)
    assert sorted(m.paths) == ["test/2.png", "train/1.png"]
    [(folder, reason)] = m.skipped
    assert folder.startswith("train/" + first + "/") and folder.endswith("/")
    assert reason.startswith("cannot list this folder (File name too long)")


def test_an_image_saved_without_an_extension_is_audited_and_an_svg_is_listed_to_be_skipped(tmp_path):
    import leakscan

    (tmp_path / "train" / "c").mkdir(parents=True)
    (tmp_path / "test" / "c").mkdir(parents=True)
    scene(1, 64).save(tmp_path / "train" / "c" / "a.png")
    scene(1, 64).save(tmp_path / "test" / "c" / "3f9a0c", "PNG")  # a scraped file named by its hash
    scene(2, 64).save(tmp_path / "test" / "c" / "b.jpg")
    (tmp_path / "test" / "c" / "LICENSE").write_text("not a picture\n")
    (tmp_path / "test" / "c" / "icon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>')
    m = discover(tmp_path)
    assert sorted(m.paths.tolist()) == ["test/c/3f9a0c", "test/c/b.jpg", "test/c/icon.svg", "train/c/a.png"]
    res = leakscan.audit(tmp_path, cache=False, jobs=1)
    assert res.to_dict()["n_cross_split_pairs"] == 1
    assert [(path, "SVG" in reason) for path, reason in res.skipped] == [("test/c/icon.svg", True)]


def test_splits_labels_or_groups_for_a_source_that_carries_its_own_are_refused_not_dropped(tmp_path):
    # a CSV manifest or a DataFrame given groups= dropped them without a word: find_groups(csv,
    # groups=patients) then let one patient straddle the split
    pd = pytest.importorskip("pandas")
    for k in range(4):
        scene(k, 40).save(tmp_path / f"{k}.png")
    csv_file = tmp_path / "m.csv"
    csv_file.write_text("path,split\n" + "".join(f"{k}.png,{'train' if k < 2 else 'test'}\n" for k in range(4)))
    assert len(discover(csv_file)) == 4
    for source, kwargs, what in ((csv_file, {}, str(csv_file)), (None, {"manifest": csv_file}, str(csv_file)),
                                 (pd.read_csv(csv_file).assign(path=lambda d: str(tmp_path) + "/" + d.path), {},
                                  "a DataFrame"), (tmp_path, {}, "a folder")):
        with pytest.raises(InputError, match=f"^groups apply to a list of paths or an array, not {what}: it carries"):
            discover(source, groups=["p0", "p0", "p1", "p1"], **kwargs)
    with pytest.raises(InputError, match="^splits/labels apply to"):
        discover(csv_file, splits=["train"] * 4, labels=["a"] * 4)
