"""Settings: every default defined once (library, CLI, README agree), validation says what is accepted."""

import inspect
import re

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from leakscan import extract_features, discover
from leakscan.cli import app
from leakscan.errors import ConfigError
from leakscan.groups import build_groups, link_strength
from leakscan.settings import DEFAULTS, RANDOM_STATE, SPANS, DetectSettings
from leakscan.resplit import resplit
from leakscan.split import assign_splits
from conftest import ROOT


@pytest.mark.parametrize("bad, match", [
    (dict(crops="no"), "crops must be True or False, got 'no'"),
    (dict(crops=1), "crops must be True or False"),
    (dict(max_hamming=6.5), "max_hamming must be a whole number .* got 6.5"),
    (dict(max_hamming=True), "max_hamming"),
    (dict(max_hamming=70), "got 70"),
    (dict(min_cosine=0), r"min_cosine must be > 0 \(above 1: off\), got 0"),
    (dict(sure_cosine=-1.0), r"sure_cosine must be > 0 \(above 1: the ratio test always\)"),
    (dict(model_min_cosine="high"), "model_min_cosine"),
    (dict(k=2.5), "k must be a whole number"),
    (dict(transforms="sideways"), "transforms"),
    (dict(min_precision=1.0), r"min_precision must be in \[0, 1\) \(0: off\), got 1.0"),
    (dict(min_precision=float("nan")), "min_precision"),
])
def test_settings_validation_says_what_is_accepted(bad, match):
    with pytest.raises(ConfigError, match=match):
        DetectSettings(**bad)


def test_cosine_above_one_turns_off_as_documented():
    assert DetectSettings(min_cosine=2.0, model_min_cosine=1.5).min_cosine == 2.0
    assert DetectSettings(max_hamming=np.int64(3)).max_hamming == 3


def _cli_defaults(command: str) -> dict:
    cmd = typer.main.get_command(app).commands[command]
    return {p.name: p.default for p in cmd.params}


@pytest.mark.parametrize("command", ["audit", "resplit"])
def test_cli_defaults_come_from_settings(command):
    d = _cli_defaults(command)
    assert d["max_hamming"] == DEFAULTS.max_hamming
    assert d["min_cosine"] == DEFAULTS.min_cosine
    assert d["min_ncc"] == DEFAULTS.min_ncc
    assert d["crops"] is DEFAULTS.crops
    assert d["model_min_cosine"] == DEFAULTS.model_min_cosine
    assert d["min_confidence"] == DEFAULTS.min_confidence
    assert d["min_precision"] == DEFAULTS.min_precision
    assert getattr(d["transforms"], "value", d["transforms"]) == DEFAULTS.transforms


def _edges(span):
    """Values at and just past each bound of ``span`` (ints for a whole span)."""
    step = 1 if span.whole else 1e-6
    return [b + d for b in (span.low, span.high) if b is not None for d in (-step, 0, step)]


@pytest.mark.parametrize("command", ["audit", "resplit"])
def test_every_threshold_option_takes_what_the_settings_take(command, tmp_path):
    # the options held their own copies of the ranges (--min-confidence took 0, which the
    # settings refused after the run had started): now both read SPANS; at and around every
    # bound the option refuses a value exactly when DetectSettings does (a value taken goes on
    # to be refused for another reason: the DATA is missing)
    cmd = typer.main.get_command(app).commands[command]
    options = {p.name: p.opts[0] for p in cmd.params if p.name in SPANS}
    assert {"max_hamming", "min_cosine", "min_ncc", "min_confidence", "min_precision",
            "model_min_cosine"} <= set(options)
    runner = CliRunner()
    for name, flag in options.items():
        for value in _edges(SPANS[name]):
            try:
                DetectSettings(**{name: value})
                settings_take = True
            except ConfigError:
                settings_take = False
            r = runner.invoke(app, [command, str(tmp_path / "missing"), f"{flag}={value}", "-q",
                                    "--out", str(tmp_path / "new.csv")])
            refused = r.output.startswith(f"leakscan: error: {flag} must be ")
            assert r.exit_code == 2 and refused != settings_take, (name, value, r.output)


def test_cli_source_has_no_literal_thresholds():
    src = (ROOT / "leakscan" / "cli.py").read_text()
    for literal in ("Option(6,", "Option(0.70", "Option(0.60", "Option(0.75", "Option(0.7,", "Option(0.6,"):
        assert literal not in src


def test_groups_keep_no_thresholds_of_their_own():
    # the pair decision (leakscan.decide) owns the thresholds: a link is as strong as its pair's
    # confidence, so groups cannot disagree with the settings
    for fn in (link_strength, build_groups):
        params = inspect.signature(fn).parameters
        assert not {"max_hamming", "min_cosine", "min_ncc", "min_confidence"} & set(params)
    from leakscan.pairs import Kind, PairTable

    pt = PairTable(np.array([0, 2]), np.array([1, 3]), np.array([Kind.EXACT, Kind.HASH], np.uint8),
                   np.ones(2, np.float32), np.zeros(2, np.int16), np.zeros(2, np.float32), np.zeros(2, np.int8),
                   np.zeros(2, bool), confidence=np.array([np.nan, 0.7], np.float32))
    assert link_strength(pt).tolist() == pytest.approx([1.0, 0.7])


def test_readme_option_table_matches_the_defaults():
    readme = (ROOT / "README.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(--[\w-]+)`[^|]*\|[^|]*\| ([^|]+) \|$", readme, re.M)}
    assert float(rows["--max-hamming"]) == DEFAULTS.max_hamming
    assert float(rows["--min-cosine"]) == DEFAULTS.min_cosine
    assert float(rows["--min-ncc"]) == DEFAULTS.min_ncc
    assert rows["--transforms"].strip() == DEFAULTS.transforms
    assert float(rows["--min-confidence"]) == DEFAULTS.min_confidence
    assert float(rows["--min-precision"]) == DEFAULTS.min_precision
    model = readme.split("| `--model-min-cosine` / `--model-batch` |")[1].splitlines()[0]
    assert model.rstrip(" |").endswith(f"{DEFAULTS.model_min_cosine} / 32")


def test_random_state_default_agrees_between_resplit_and_assign_splits():
    a = inspect.signature(assign_splits).parameters["random_state"].default
    b = inspect.signature(resplit).parameters["random_state"].default
    assert a == b == RANDOM_STATE
    units, labels = np.arange(40), np.arange(40) % 2
    x = assign_splits(units, labels, ratios={"train": 0.5, "test": 0.5}, shuffle=True)
    y = assign_splits(units, labels, ratios={"train": 0.5, "test": 0.5}, shuffle=True)
    assert np.array_equal(x.splits, y.splits)


def test_jobs_below_one_is_a_config_error():
    m = discover(np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(ConfigError, match="jobs must be >= 1"):
        extract_features(m, jobs=0)


@pytest.mark.parametrize("command", ["audit", "resplit"])
def test_the_report_names_each_setting_by_the_flag_that_sets_it(command):
    from leakscan.present import SETTING_FLAGS

    options = {o for p in typer.main.get_command(app).commands[command].params for o in p.opts}
    for name in DetectSettings.__dataclass_fields__:
        flag = "--" + name.replace("_", "-")
        if flag in options:
            assert flag in (SETTING_FLAGS.get(name) or ""), name


def test_a_random_state_refused_is_told_every_kind_it_may_be():
    # it said "None, an int >= 0 or a numpy Generator" while taking a RandomState, a
    # BitGenerator and a SeedSequence too
    from leakscan.split import validate_random_state

    kinds = {np.random.Generator: np.random.default_rng(0), np.random.RandomState: np.random.RandomState(0),
             np.random.BitGenerator: np.random.PCG64(0), np.random.SeedSequence: np.random.SeedSequence(1)}
    with pytest.raises(ValueError) as refused:
        validate_random_state("abc")
    for kind, instance in kinds.items():
        assert kind.__name__ in str(refused.value)
        validate_random_state(instance)  # taken
