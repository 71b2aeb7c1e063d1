"""Decisions file: users say "distinct" or "duplicate" once, and every command respects it."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import leakscan
from leakscan import InputError
from leakscan.cli import app
from leakscan.decisions import MatchedDecisions, apply_decisions, load_decisions, read_decisions
from leakscan.pairs import PairTable
from conftest import ROOT, scene, write_dataset


def _pairs(edges, score=None):
    i = np.array([min(a, b) for a, b in edges], np.int64)
    j = np.array([max(a, b) for a, b in edges], np.int64)
    k = len(edges)
    sc = np.ones(k, np.float32) if score is None else np.asarray(score, np.float32)
    return PairTable(i, j, np.ones(k, np.uint8), sc, np.zeros(k, np.int16), np.full(k, np.nan, np.float32),
                     np.zeros(k, np.int8), np.zeros(k, bool))


def _md(must=(), cannot=()):
    a = lambda e, x: np.array([min(p) if x == 0 else max(p) for p in e], np.int64)  # noqa: E731
    return MatchedDecisions(a(must, 0), a(must, 1), a(cannot, 0), a(cannot, 1))


def _write(path, rows, header="a,b,decision,note"):
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------- reading


def test_bad_rows_name_file_and_line(tmp_path):
    f = _write(tmp_path / "d.csv", [("x.jpg", "y.jpg", "distinct", ""), ("x.jpg", "z.jpg", "maybe", "")])
    with pytest.raises(InputError, match=r"d\.csv: line 3: decision must be distinct or duplicate, got 'maybe'"):
        read_decisions(f)
    f = _write(tmp_path / "h.csv", [("x", "y", "distinct")], header="left,right,verdict")
    with pytest.raises(InputError, match=r"h\.csv: line 1: the header must name columns a,b,decision"):
        read_decisions(f)
    f = _write(tmp_path / "s.csv", [("x.jpg", "./x.jpg", "distinct", "")])
    with pytest.raises(InputError, match="line 2: a and b are the same image"):
        read_decisions(f)
    with pytest.raises(InputError, match="decisions file not found"):
        read_decisions(tmp_path / "missing.csv")


def test_a_bad_row_is_named_by_its_line_past_notes_written_on_several_lines(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text('a,b,decision,note\r\nx.jpg,y.jpg,distinct,"two cats:\r\nnot one"\r\n\r\nx.jpg,z.jpg,maybe,\r\n')
    with pytest.raises(InputError, match=r"d\.csv: line 5: decision must be distinct or duplicate, got 'maybe'"):
        read_decisions(f)
    f.write_text('a,b,decision,note\nx.jpg,y.jpg,distinct,"two cats:\nnot one"\ny.jpg,z.jpg,duplicate,\n')
    assert [e.line for e in read_decisions(f).entries] == [2, 4]


def test_a_column_named_twice_is_refused_not_read_from_the_last(tmp_path):
    # "distinct,duplicate" under decision,decision used to apply duplicate, silently
    f = tmp_path / "d.csv"
    f.write_text("a,b,decision,Decision\nx.jpg,y.jpg,distinct,duplicate\n")
    with pytest.raises(InputError, match=r"d\.csv: line 1: the header names column\(s\) decision more than once"):
        read_decisions(f)


def test_a_nul_byte_or_a_quote_never_closed_is_read_alike_on_every_python(tmp_path):
    # Python 3.10's csv module stops at a NUL byte ("line contains NUL"): the audit ended in a traceback there
    f = tmp_path / "d.csv"
    f.write_bytes(b"a,b,decision\nx\0.jpg,y.jpg,distinct\ny.jpg,z.jpg,duplicate\n")
    assert [(e.a, e.b, e.line) for e in read_decisions(f).entries] == [("x\0.jpg", "y.jpg", 2), ("y.jpg", "z.jpg", 3)]
    # a stray quote makes a cell past the csv module's limit: one line naming the file and the row, not a traceback
    f.write_text('a,b,decision\nx.jpg,y.jpg,distinct\n"' + "z" * 200_000 + ",y.jpg,distinct\n")
    with pytest.raises(InputError, match=r"d\.csv: line 3: not a readable CSV row \(field larger than field limit"):
        read_decisions(f)


def test_reads_notes_comments_bom_and_semicolons(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("\ufeffa;b;decision;note\n# a comment\nx.jpg;y.jpg;Distinct;two cats, not one\n\n")
    (e,) = read_decisions(f).entries
    assert (e.a, e.b, e.decision, e.note, e.line) == ("x.jpg", "y.jpg", "distinct", "two cats, not one", 3)


# ---------------------------------------------------------------- applying (pure)


def test_the_delimiter_is_the_headers_not_a_leading_comments(tmp_path):
    # the delimiter was counted on the file's first line: a comment with more ; or tabs than
    # commas above a comma header made the header "missing" a, b and decision
    for comment in ("# reviewed by Ann; batch 2; 2026-12-05", "#\tchecked\tby\thand", ""):
        f = tmp_path / "d.csv"
        f.write_text(f"{comment}\n\na,b,decision,note\nx.jpg,y.jpg,distinct,two cats; not one\n")
        (e,) = read_decisions(f).entries
        assert (e.a, e.b, e.decision, e.note) == ("x.jpg", "y.jpg", "distinct", "two cats; not one")
    f.write_text("# a, b, c, d, e\na;b;decision\nx.jpg;y.jpg;duplicate\n")  # a comment full of commas
    (e,) = read_decisions(f).entries
    assert (e.a, e.b, e.decision) == ("x.jpg", "y.jpg", "duplicate")


def test_distinct_drops_pair_and_duplicate_adds_one():
    pt = _pairs([(0, 1), (2, 3)])
    out, st = apply_decisions(pt, _md(must=[(4, 5)], cannot=[(2, 3)]))
    assert list(zip(out.i.tolist(), out.j.tolist())) == [(0, 1), (4, 5)]
    assert (st.removed, st.added, st.links_cut) == (1, 1, 0)
    assert st.added_pairs == {(4, 5)}


def test_distinct_is_never_grouped_through_a_chain():
    # A=0 ~ B=1 ~ C=2, plus 2 ~ 3; A/C distinct: the weaker link (1, 2) is cut
    pt = _pairs([(0, 1), (1, 2), (2, 3)], score=[0.9, 0.5, 0.95])
    out, st = apply_decisions(pt, _md(cannot=[(0, 2)]))
    assert list(zip(out.i.tolist(), out.j.tolist())) == [(0, 1), (2, 3)]
    assert st.links_cut == 1 and st.kept_together == 0
    g = leakscan.build_groups(4, out)
    assert g.ids[0] != g.ids[2]


def test_chain_of_user_duplicates_cannot_be_cut():
    pt = _pairs([(0, 1)], score=[0.5])
    out, st = apply_decisions(pt, _md(must=[(0, 1), (1, 2)], cannot=[(0, 2)]))
    assert len(out) == 2 and st.kept_together == 1 and st.links_cut == 0


def test_a_manifest_group_holding_a_distinct_pair_together_cuts_no_link():
    # A=0 ~ B=1 ~ C=2, and A and C are one patient (the manifest's group): they stay in one
    # group whatever is cut, so no detected link is lost for it and kept_together says so
    pt = _pairs([(0, 1), (1, 2)], score=[0.9, 0.5])
    out, st = apply_decisions(pt, _md(cannot=[(0, 2)]), groups=np.array(["p1", "", "p1"], dtype=object))
    assert list(zip(out.i.tolist(), out.j.tolist())) == [(0, 1), (1, 2)]
    assert (st.links_cut, st.kept_together) == (0, 1)
    # B and C one patient: they cannot be parted, so the link from A is cut, though surer
    out, st = apply_decisions(pt, _md(cannot=[(0, 2)]), groups=np.array(["", "p2", "p2"], dtype=object))
    assert list(zip(out.i.tolist(), out.j.tolist())) == [(1, 2)] and (st.links_cut, st.kept_together) == (1, 0)


def test_audit_counts_a_distinct_pair_its_manifest_group_keeps_together():
    imgs = np.stack([np.asarray(scene(k, 64)) for k in range(10)])
    lighter = np.clip(imgs[0].astype(np.int16) + 12, 0, 255).astype(np.uint8)
    lightest = np.clip(imgs[0].astype(np.int16) + 24, 0, 255).astype(np.uint8)
    imgs = np.concatenate([imgs, lighter[None], lightest[None]])
    groups = [f"g{k}" for k in range(12)]
    groups[11] = "g0"  # rows 0 and 11: one patient
    r = leakscan.audit(imgs, splits=["train"] * 10 + ["test"] * 2, groups=groups, jobs=1,
                       decisions=[("0", "11", "distinct")])
    d = r.to_dict()["decisions"]
    assert (d["pairs_removed"], d["links_cut"], d["kept_together"]) == (1, 0, 1)
    assert {(0, 10), (10, 11)} <= set(zip(r.pairs.i.tolist(), r.pairs.j.tolist()))


def test_extra_optional_column_survives():
    """The per-pair ``confidence`` column (PairTable's, from the decision) survives the decisions."""
    import dataclasses

    pt = dataclasses.replace(_pairs([(0, 1), (1, 2)]), confidence=np.array([0.9, 0.2], np.float32))
    out, _ = apply_decisions(pt, _md(must=[(3, 4)], cannot=[(0, 2)]))
    assert isinstance(out, PairTable)
    assert out.confidence.tolist() == pytest.approx([0.9, 1.0])  # (1, 2) was weaker and cut; user pair certain


def test_possible_tier_distinct_removes_and_duplicate_promotes():
    pairs = _pairs([(0, 1)])
    possible = _pairs([(2, 3), (4, 5)], score=[0.4, 0.3])
    out, st = apply_decisions(pairs, _md(must=[(2, 3)], cannot=[(4, 5)]), possible=possible)
    assert list(zip(out.i.tolist(), out.j.tolist())) == [(0, 1), (2, 3)]
    assert out.score[1] == pytest.approx(0.4)  # promoted with its evidence
    assert len(st.possible) == 0 and st.promoted == 1 and st.added == 0


def test_records_and_contradictions():
    d = load_decisions([("0", "1", "distinct"), {"a": "array[1]", "b": "array[0]", "decision": "duplicate"}])
    assert [e.decision for e in d.entries] == ["distinct", "duplicate"]
    m = leakscan.discover(np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="line 2 marks array\\[1\\] and array\\[0\\] duplicate, line 1 marks them distinct"):
        d.match(m)
    md = load_decisions([("0", "2", "distinct")]).match(m)
    assert list(zip(md.cannot_i, md.cannot_j)) == [(0, 2)] and md.applied == 1


# ---------------------------------------------------------------- end to end


@pytest.fixture
def review_data(tmp_path):
    """train/test with two real leaks (test/a/leak.jpg, test/b/leak2.jpg) and 8 distinct scenes."""
    layout = {f"train/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(6)}
    layout.update({f"test/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(6, 10)})
    layout["test/a/leak.jpg"] = scene(0).resize((80, 80))
    layout["test/b/leak2.jpg"] = scene(1).resize((88, 88))
    return write_dataset(tmp_path / "data", layout, quality=90)


def _pairset(result):
    return {tuple(sorted((r["a"], r["b"]))) for r in result.pair_records()}


def test_python_audit_respects_decisions(review_data, tmp_path):
    base = leakscan.audit(review_data, jobs=1)
    assert ("test/a/leak.jpg", "train/a/0.jpg") in _pairset(base)
    f = _write(tmp_path / "decisions.csv", [("train/a/0.jpg", "test/a/leak.jpg", "distinct", "another day"),
                                            ("train/a/2.jpg", "test/a/6.jpg", "duplicate", ""),
                                            ("train/gone.jpg", "test/a/6.jpg", "distinct", "")])
    r = leakscan.audit(review_data, jobs=1, decisions=f)
    pairs = _pairset(r)
    assert ("test/a/leak.jpg", "train/a/0.jpg") not in pairs
    assert ("test/a/6.jpg", "train/a/2.jpg") in pairs
    rec = next(x for x in r.pair_records() if {x["a"], x["b"]} == {"train/a/2.jpg", "test/a/6.jpg"})
    assert rec["detail"] == "user decision" and rec["decision"] == "duplicate"
    assert r.groups.ids[_row(r, "train/a/0.jpg")] != r.groups.ids[_row(r, "test/a/leak.jpg")]
    d = r.to_dict()["decisions"]
    assert d["file"] == str(f)
    assert (d["applied"], d["distinct"], d["duplicate"], d["unmatched"]) == (2, 1, 1, 1)
    assert base.to_dict()["decisions"] is None


def _row(result, path):
    return int(np.flatnonzero(result.manifest.paths == path)[0])


def test_decisions_follow_moved_files_by_digest(review_data, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(review_data, moved)
    (moved / "test" / "a" / "leak.jpg").rename(moved / "test" / "b" / "renamed.jpg")
    r0 = leakscan.audit(review_data, jobs=1)
    digest = bytes(r0.features.file_digest[_row(r0, "test/a/leak.jpg")]).hex()
    f = tmp_path / "d.csv"
    f.write_text(f"a,b,decision,note,digest_a,digest_b\ntrain/a/0.jpg,test/a/leak.jpg,distinct,,,{digest}\n")
    r = leakscan.audit(moved, jobs=1, decisions=f)
    assert ("test/b/renamed.jpg", "train/a/0.jpg") not in _pairset(r)
    d = r.to_dict()["decisions"]
    assert d["applied"] == 1 and d["unmatched"] == 0 and d["matched_by_digest"] == 1
    from leakscan.htmlreport import report_data

    (entry,) = report_data(r)["decided"]  # the report exports the decision under the file's new path
    assert (entry["a"], entry["b"], entry["d"]) == ("train/a/0.jpg", "test/b/renamed.jpg", "distinct")


def test_a_decision_matched_by_digest_applies_to_every_copy_as_the_readme_says(review_data, tmp_path):
    """A side whose path names no audited image is matched by its digest and stands for every
    audited file with those bytes (a side whose path names one is matched by that path). The
    README said only that a decision follows a moved file, not that it reaches each copy."""
    import hashlib

    readme = " ".join((ROOT / "README.md").read_text().split())
    assert ("a side whose path names no audited image is matched by its digest, and then stands for every "
            "audited file with those bytes, so the decision applies to each byte-identical copy") in readme

    def digest(p):
        return hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
    moved = tmp_path / "moved"
    shutil.copytree(review_data, moved)
    (moved / "test/a/leak.jpg").rename(moved / "test/b/renamed.jpg")  # its path names nothing now
    shutil.copy(moved / "test/b/renamed.jpg", moved / "test/a/renamed-copy.jpg")
    shutil.copy(moved / "test/b/leak2.jpg", moved / "test/a/leak2-copy.jpg")  # leak2.jpg is still where it was
    f = _write(tmp_path / "d.csv", [("train/a/0.jpg", "test/a/leak.jpg", "distinct", "", "", digest(moved / "test/b/renamed.jpg")),
                                    ("train/b/1.jpg", "test/b/leak2.jpg", "distinct", "", "", digest(moved / "test/b/leak2.jpg"))],
               header="a,b,decision,note,digest_a,digest_b")
    r = leakscan.audit(moved, jobs=1, decisions=f)
    matched = {tuple(sorted(r.manifest.paths[[i, j]].tolist())) for i, j in r.decisions.matched.cannot_set()}
    assert matched == {("test/b/renamed.jpg", "train/a/0.jpg"), ("test/a/renamed-copy.jpg", "train/a/0.jpg"),
                       ("test/b/leak2.jpg", "train/b/1.jpg")}
    assert r.to_dict()["decisions"]["matched_by_digest"] == 1
    assert not {("test/b/renamed.jpg", "train/a/0.jpg"), ("test/a/renamed-copy.jpg", "train/a/0.jpg")} & _pairset(r)


def test_paths_spelled_otherwise_match_by_path_and_export_as_the_report_names_them(review_data, tmp_path):
    """``./``, backslashes and absolute paths name the audited file itself (not every file with its
    bytes), and the report exports them under its own paths: a decision made again in the page
    replaces the file's instead of contradicting it in the next export."""
    from leakscan.htmlreport import report_data

    f = _write(tmp_path / "d.csv", [("./train/a/0.jpg", "test\\a\\leak.jpg", "distinct", ""),
                                    (str(review_data / "train/b/1.jpg"), str(review_data / "test/b/leak2.jpg"),
                                     "distinct", "")])
    r = leakscan.audit(review_data, jobs=1, decisions=f)
    d = r.to_dict()["decisions"]
    assert (d["applied"], d["unmatched"], d["matched_by_digest"], d["pairs_removed"]) == (2, 0, 0, 2)
    assert [(e["a"], e["b"]) for e in report_data(r)["decided"]] == [
        ("train/a/0.jpg", "test/a/leak.jpg"), ("train/b/1.jpg", "test/b/leak2.jpg")]


def test_a_name_that_is_not_utf8_matches_as_pairs_csv_writes_it(review_data, tmp_path):
    """A file name that is not UTF-8 is written ``caf\\xe9.jpg`` in pairs.csv and the report; a
    decision naming it so (copied from pairs.csv, no digest) matches that file by its path."""
    import os

    odd = os.fsdecode(os.fsencode(str(review_data / "test" / "a")) + b"/caf\xe9.jpg")
    try:
        os.rename(review_data / "test" / "a" / "leak.jpg", odd)
    except (OSError, UnicodeError) as exc:
        pytest.skip(f"this file system refuses the name: {exc}")
    r0 = leakscan.audit(review_data, jobs=1)
    assert ("test/a/caf\udce9.jpg", "train/a/0.jpg") in _pairset(r0)  # written test/a/caf\\xe9.jpg
    f = _write(tmp_path / "d.csv", [("train/a/0.jpg", "test/a/caf\\xe9.jpg", "distinct", "")])
    r = leakscan.audit(review_data, jobs=1, decisions=f)
    d = r.to_dict()["decisions"]
    assert (d["applied"], d["unmatched"], d["matched_by_digest"], d["pairs_removed"]) == (1, 0, 0, 1)
    assert r.to_dict()["n_cross_split_pairs"] == r0.to_dict()["n_cross_split_pairs"] - 1


def test_cli_audit_and_resplit_respect_decisions(review_data, tmp_path):
    f = _write(tmp_path / "decisions.csv", [("train/a/0.jpg", "test/a/leak.jpg", "distinct", ""),
                                            ("train/b/1.jpg", "test/b/leak2.jpg", "distinct", "")])
    run = CliRunner().invoke
    res = run(app, ["audit", str(review_data), "--json", "--decisions", str(f), "--no-cache", "-j", "1"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["n_cross_split_pairs"] == 0 and s["decisions"]["applied"] == 2
    res = run(app, ["audit", str(review_data), "--fail-on-leak", "--quiet", "--decisions", str(f), "--no-cache"])
    assert res.exit_code == 0  # CI passes once the reviewed pairs are marked distinct
    res = run(app, ["audit", str(review_data), "--fail-on-leak", "--quiet", "--no-cache"])
    assert res.exit_code == 1
    out = tmp_path / "new.csv"
    res = run(app, ["resplit", str(review_data), "--out", str(out), "--decisions", str(f), "--no-cache", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["moved"] == 0 and d["decisions"]["applied"] == 2  # nothing to repair once both pairs are distinct
    bad = _write(tmp_path / "bad.csv", [("x.jpg", "y.jpg", "perhaps", "")])
    res = run(app, ["audit", str(review_data), "--decisions", str(bad), "--no-cache"])
    assert res.exit_code == 2 and "bad.csv: line 2: decision must be distinct or duplicate" in res.stderr
    res = run(app, ["resplit", str(review_data), "--out", str(tmp_path / "x.csv"), "--decisions",
                    str(tmp_path / "nope.csv"), "--no-cache"])
    assert res.exit_code == 2 and f"--decisions {tmp_path / 'nope.csv'}: no such file" in res.stderr
    assert not (tmp_path / "x.csv").exists()


def test_resplit_keep_drop_does_not_count_pairs_marked_distinct_as_left_across(review_data, tmp_path):
    """--keep --drop searches what remains again: the pairs the user marked distinct, found again,
    are no new duplicates (they made it run every round and report them as crossing splits)."""
    f = _write(tmp_path / "d.csv", [("train/a/0.jpg", "test/a/leak.jpg", "distinct", "")])
    res = CliRunner().invoke(app, ["resplit", str(review_data), "--out", str(tmp_path / "new.csv"), "--keep", "test",
                                   "--drop", "--decisions", str(f), "--no-cache", "--json", "-j", "1"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["dropped"] == 1  # train/b/1.jpg, the copy of test/b/leak2.jpg
    assert (d["cross_split_pairs_after"], d["problems"], d["detection_rounds"]) == (0, [], 1)


def test_sklearn_api_respects_decisions(review_data, tmp_path):
    f = _write(tmp_path / "d.csv", [("train/a/0.jpg", "test/a/leak.jpg", "distinct", ""),
                                    ("train/a/2.jpg", "test/a/6.jpg", "duplicate", "")])
    ids, paths = leakscan.find_groups(review_data, decisions=f, jobs=1, return_paths=True)
    row = {p: k for k, p in enumerate(paths)}
    assert ids[row["train/a/0.jpg"]] != ids[row["test/a/leak.jpg"]]
    assert ids[row["train/a/2.jpg"]] == ids[row["test/a/6.jpg"]]
    X = np.arange(len(paths))
    for seed in range(3):
        tr, te = leakscan.train_test_split(X, images=[str(review_data / p) for p in paths], decisions=[
            (str(review_data / "train/a/2.jpg"), str(review_data / "test/a/6.jpg"), "duplicate")],
            test_size=0.3, random_state=seed, jobs=1)
        a, b = row["train/a/2.jpg"], row["test/a/6.jpg"]
        assert (a in tr) == (b in tr)
    cv = leakscan.StratifiedGroupShuffleSplit(n_splits=3, test_size=0.3, random_state=0,
                                              images=review_data, decisions=f)
    for tr, te in cv.split(np.zeros(len(paths))):
        assert (row["train/a/2.jpg"] in tr) == (row["test/a/6.jpg"] in tr)


def test_a_decisions_file_saved_as_utf16_is_read(tmp_path):
    f = tmp_path / "decisions.csv"
    f.write_bytes("a,b,decision,note\r\nx.jpg,y.jpg,distinct,deux chats \u00e9\r\n".encode("utf-16"))
    [e] = read_decisions(f).entries
    assert (e.a, e.b, e.decision) == ("x.jpg", "y.jpg", "distinct")
    f.write_bytes(b"a,b,decision\nx.jpg,y\xe9.jpg,distinct\n")
    with pytest.raises(InputError, match="decisions.csv: the decisions file is not UTF-8 text"):
        read_decisions(f)


def test_a_line_repeated_in_a_decisions_file_is_applied_once(tmp_path):
    # the same pair marked twice (a file concatenated with an older export) counted twice in
    # `applied` and `distinct`, while the report's review bar said one decision
    imgs = np.stack([np.asarray(scene(k, 64)) for k in range(6)])
    imgs = np.concatenate([imgs, imgs[:1]])
    path = _write(tmp_path / "d.csv", [("0", "6", "distinct")] * 3 + [("6", "0", "distinct"), ("1", "2", "duplicate")])
    r = leakscan.audit(imgs, splits=["train"] * 6 + ["test"], jobs=1, cache=False, decisions=path)
    d = r.to_dict()["decisions"]
    assert (d["entries"], d["applied"], d["distinct"], d["duplicate"], d["unmatched"]) == (5, 2, 1, 1, 0)
    assert d["pairs_removed"] == 1 and not r.leaks[0].images


def test_the_chaining_guard_never_cuts_a_pair_marked_duplicate(tmp_path, monkeypatch):
    # the guard cut a detected pair the user marked duplicate like any weak link (it only spared
    # pairs it added, whose confidence is 1), so a re-split could part two images the decisions
    # file joins; now a pair marked duplicate is as sure to the guard as to the chain cutting
    import importlib

    from PIL import ImageEnhance

    from leakscan.groups import build_groups

    audit_module = importlib.import_module("leakscan.audit")  # the module, not the function

    layout = {f"train/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(12)}
    layout.update({f"test/{'ab'[k % 2]}/{k}.jpg": scene(k) for k in range(12, 18)})
    s = scene(0)  # train/a/0.jpg and two edited copies: three near-duplicate links, none exact
    layout["test/a/leak.jpg"] = ImageEnhance.Brightness(s.crop((6, 6, 90, 90))).enhance(1.25)
    layout["test/a/leak2.jpg"] = ImageEnhance.Contrast(s.crop((0, 8, 88, 96)).resize((60, 60))).enhance(0.7)
    data = write_dataset(tmp_path / "data", layout, quality=40)
    base = leakscan.audit(data, jobs=1)
    p, paths = base.pairs, base.manifest.paths
    copies = {"train/a/0.jpg", "test/a/leak.jpg", "test/a/leak2.jpg"}
    mine = [k for k in range(len(p)) if {paths[p.i[k]], paths[p.j[k]]} <= copies]
    assert len(mine) >= 2 and all(p.kind[k] != 0 and p.confidence[k] < 1 for k in mine)
    weakest = min(mine, key=lambda k: p.confidence[k])  # the first link the guard would drop
    a, b = paths[p.i[weakest]], paths[p.j[weakest]]
    decisions = _write(tmp_path / "decisions.csv", [(a, b, "duplicate", "")])
    # a group of three is too large: the guard must part them, but not the pair marked duplicate
    monkeypatch.setattr(audit_module, "build_groups", lambda *args, **kw: build_groups(*args, **{**kw, "max_size": 2}))
    r = leakscan.audit(data, jobs=1, decisions=decisions)
    assert any("chaining guard" in n for n in r.groups.notes)
    row = {str(x): k for k, x in enumerate(r.manifest.paths)}
    assert r.groups.ids[row[a]] == r.groups.ids[row[b]]
    assert (a, b) in {(r.manifest.paths[i], r.manifest.paths[j]) for i, j in zip(r.pairs.i, r.pairs.j)}
