"""bench/run.py's results file: a section measured alone (``--only``) takes the place of its last
run below the marker, and the sessions' notes above the marker are kept."""
import importlib.util

from conftest import ROOT


def _run_module():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_section_run_alone_replaces_its_last_run_and_keeps_the_rest(tmp_path):
    run = _run_module()
    path = tmp_path / "results.md"
    notes = "# results\n\n## A session\n\nwhat was measured\n"
    old_full_run = "# leakscan benchmark — 2026-11-29\n\n## Photos\n\n| old photo row |\n"
    path.write_text(notes + "\n" + run.RESULTS_MARKER + "\n\n" + old_full_run)

    run.write_section(path, "photos", "`--only photos`, 2026-12-06", "## Photos\n\n| new photo row |")
    text = path.read_text()
    assert text.startswith(notes) and text.count(run.RESULTS_MARKER) == 1
    below = text.split(run.RESULTS_MARKER)[1]
    # the new block first, the older full run kept below it (its other sections are still the newest)
    assert below.index("| new photo row |") < below.index("# leakscan benchmark — 2026-11-29")
    assert "<!-- section photos: `--only photos`, 2026-12-06 -->" in below and "| old photo row |" in below

    run.write_section(path, "tiles", "`--only tiles`, 2026-12-06", "## Tiles\n\n| tile row |")
    run.write_section(path, "photos", "`--only photos`, 2026-12-07", "## Photos\n\n| newer photo row |")
    below = path.read_text().split(run.RESULTS_MARKER)[1]
    assert "| new photo row |" not in below and below.count("<!-- section photos:") == 1
    assert "2026-12-07" in below and "| tile row |" in below and "| old photo row |" in below
    assert path.read_text().startswith(notes)


def test_a_results_file_without_the_marker_is_kept_above_it(tmp_path):
    run = _run_module()
    path = tmp_path / "results.md"
    path.write_text("notes only\n")
    run.write_section(path, "tiles", "`--only tiles`", "| tile row |")
    text = path.read_text()
    assert text.startswith("notes only\n") and text.index(run.RESULTS_MARKER) < text.index("| tile row |")
    run.write_results(path, "a full run")  # a full run replaces every section below the marker
    assert path.read_text().split(run.RESULTS_MARKER)[1].strip() == "a full run"
    assert path.read_text().startswith("notes only\n")


def test_the_readme_names_every_section_that_can_be_run_alone():
    import re

    names = set(_run_module().sections(None, []))
    readme = (ROOT / "README.md").read_text()
    said = readme.split("SECTION is one of", 1)[1].split(")", 1)[0]
    assert set(re.findall(r"`([a-z-]+)`", said)) == names
