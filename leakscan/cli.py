"""Command line: ``leakscan audit DATA``. Each command parses, calls one library function, renders.

Library errors (:class:`~leakscan.errors.LeakscanError`) become one line on stderr and exit
code 2; data go to stdout, progress to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from ._version import __version__
from .errors import LeakscanError
from .settings import DEFAULTS, MODEL_BATCH, RANDOM_STATE, TRANSFORMS

app = typer.Typer(
    name="leakscan",
    help=(
        "Find exact and near-duplicate images and the train/val/test leakage they cause.\n\n"
        "Example: leakscan audit data/ --out report/"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_OK, EXIT_LEAK, EXIT_USAGE = 0, 1, 2


class LinkMode(str, Enum):
    hardlink = "hardlink"
    symlink = "symlink"
    copy = "copy"


Transforms = Enum("Transforms", {name: name for name in TRANSFORMS}, type=str)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _say(msg: str) -> None:
    """One unwrapped line on stderr (scripts grep these)."""
    sys.stderr.write(msg.replace("\n", " ") + "\n")
    sys.stderr.flush()


def _fail(msg: str) -> "typer.Exit":
    _say(f"leakscan: error: {msg}")
    return typer.Exit(EXIT_USAGE)


@contextmanager
def _progress(quiet: bool):
    """A progress callback drawing rich bars on stderr; silent when quiet or not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,  # noqa: PLC0415
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text  # noqa: PLC0415

    class Rate(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")

    bars: dict[str, int] = {}
    with Progress(TextColumn("{task.description:>16}"), BarColumn(), MofNCompleteColumn(),
                  Rate(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=_stderr(), transient=True) as prog:
        def cb(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = prog.add_task(stage, total=total)
            prog.update(bars[stage], completed=done, total=total)
        yield cb


def _version(value: bool) -> None:
    if value:
        typer.echo(f"leakscan {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what each stage does (on stderr)."),
) -> None:
    """Find exact and near-duplicate images and the train/val/test leakage they cause."""
    logging.getLogger("faiss").setLevel(logging.WARNING)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="leakscan: %(levelname)s: %(message)s", stream=sys.stderr)


def _settings(max_hamming: int, min_cosine: float, min_ncc: float, transforms: "Transforms",
              cross_only: bool = False, model_min_cosine: float = DEFAULTS.model_min_cosine,
              crops: bool = DEFAULTS.crops):
    from .settings import DetectSettings  # noqa: PLC0415

    return DetectSettings(max_hamming=max_hamming, min_cosine=min_cosine, min_ncc=min_ncc,
                          transforms=transforms.value, scope="cross" if cross_only else "all",
                          model_min_cosine=model_min_cosine, crops=crops)


def _model_spec(model: Optional[Path], batch: int):
    if model is None:
        return None
    from .model import ModelSpec  # noqa: PLC0415

    return ModelSpec.from_path(model, batch_size=batch)


OPT_MANIFEST = typer.Option(None, "--manifest", "-m", show_default=False,
                            help="CSV with columns path, split[, label, group]; paths relative to the CSV.")
OPT_MAX_HAMMING = typer.Option(DEFAULTS.max_hamming, "--max-hamming", min=-1, max=64,
                               help="pHash pairs at this Hamming distance or less are candidates (-1: off).")
OPT_MIN_COSINE = typer.Option(DEFAULTS.min_cosine, "--min-cosine", min=0.0,
                              help="Least embedding cosine similarity of a candidate pair (>1: off).")
OPT_MIN_NCC = typer.Option(DEFAULTS.min_ncc, "--min-ncc", min=-1.0, max=1.0,
                           help="Verification: least correlation of the details of the two aligned "
                                "thumbnails (-1: off).")
OPT_CROPS = typer.Option(DEFAULTS.crops, "--crops/--no-crops",
                         help="Also search crops of every image (finds cropped copies; --no-crops is faster).")
OPT_MODEL = typer.Option(None, "--model", show_default=False,
                         help="Also embed every image with this ONNX model and report pairs at "
                              "--model-min-cosine or more (needs pip install 'leakscan[onnx]').")
OPT_MODEL_MIN_COSINE = typer.Option(DEFAULTS.model_min_cosine, "--model-min-cosine", min=0.0,
                                    help="Least cosine similarity of two model embeddings of a duplicate.")
OPT_MODEL_BATCH = typer.Option(MODEL_BATCH, "--model-batch", min=1, help="Images per model run.")
OPT_TRANSFORMS = typer.Option(Transforms(DEFAULTS.transforms), "--transforms",
                              help="Rotated/flipped copies to find: all (8), flip (mirror), none.")
OPT_JOBS = typer.Option(None, "--jobs", "-j", min=1, show_default=False,
                        help="Worker processes for decoding [default: all cores].")
OPT_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars and no tables.")
OPT_FORCE = typer.Option(False, "--force", "-f", help="Overwrite earlier results.")
OPT_CACHE = typer.Option(None, "--cache", show_default=False,
                         help="Feature cache database [default: $LEAKSCAN_CACHE or ~/.cache/leakscan/features.sqlite].")
OPT_NO_CACHE = typer.Option(False, "--no-cache", help="Decode every image; do not read or write the feature cache.")


OPT_DASK = typer.Option(None, "--dask", show_default=False,
                        help="Decode on a Dask cluster: scheduler address such as tcp://scheduler:8786 "
                             "(needs pip install 'leakscan[dask]'; workers must see the same paths).")


def _cache_arg(cache: Optional[Path], no_cache: bool):
    return False if no_cache else (cache if cache is not None else True)


@contextmanager
def _dask_client(address: Optional[str]):
    if not address:
        yield None
        return
    try:
        import dask  # noqa: PLC0415
        from distributed import Client  # noqa: PLC0415
    except ImportError:
        raise _fail("--dask needs the dask extra: pip install 'leakscan[dask]'") from None
    try:
        client = Client(address, timeout=dask.config.get("distributed.comm.timeouts.connect", "30s"))
    except Exception as exc:  # connection refused, timeout, bad address
        raise _fail(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        yield client
    finally:
        client.close()


def _data_root(data: Optional[Path], manifest: Optional[Path]) -> Optional[Path]:
    if data is not None and data.is_dir():
        return data
    if manifest is not None:
        return manifest.parent
    if data is not None and data.is_file():
        return data.parent
    return None


@app.command()
def audit(
    data: Optional[Path] = typer.Argument(
        None, help="Dataset folder (train/ val/ test/ found by name; class = folder holding the image) "
                   "or a CSV manifest.", show_default=False),
    manifest: Optional[Path] = OPT_MANIFEST,
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Write summary.json, pairs.csv, groups.csv, skipped.csv into this folder.",
        show_default=False),
    json_: bool = typer.Option(False, "--json", help="Print summary.json to stdout instead of tables."),
    no_html: bool = typer.Option(False, "--no-html", help="With --out: skip report.html (no thumbnails to make)."),
    cross_only: bool = typer.Option(
        False, "--cross-split-only",
        help="Only look for duplicates across splits: query the smaller splits against an index of all "
             "images (faster when train dominates; within-split duplicates are not reported)."),
    parquet: bool = typer.Option(False, "--parquet",
                                 help="With --out: also write pairs.parquet (needs pyarrow: pip install pyarrow)."),
    fail_on_leak: bool = typer.Option(
        False, "--fail-on-leak", help="Exit 1 when some split leaks into another by more than --max-leak."),
    max_leak: float = typer.Option(
        0.0, "--max-leak", min=0.0, max=1.0, help="Largest tolerated leaked fraction for --fail-on-leak."),
    max_hamming: int = OPT_MAX_HAMMING,
    min_cosine: float = OPT_MIN_COSINE,
    min_ncc: float = OPT_MIN_NCC,
    transforms: Transforms = OPT_TRANSFORMS,
    crops: bool = OPT_CROPS,
    model: Optional[Path] = OPT_MODEL,
    model_min_cosine: float = OPT_MODEL_MIN_COSINE,
    model_batch: int = OPT_MODEL_BATCH,
    jobs: Optional[int] = OPT_JOBS,
    cache: Optional[Path] = OPT_CACHE,
    no_cache: bool = OPT_NO_CACHE,
    dask: Optional[str] = OPT_DASK,
    force: bool = OPT_FORCE,
    quiet: bool = OPT_QUIET,
) -> None:
    """Audit a dataset for duplicate images and cross-split leakage.

    \b
    Examples:
      leakscan audit data/                 # tables in the terminal
      leakscan audit data/ --out report/   # and summary.json, pairs.csv, groups.csv, skipped.csv, report.html
      leakscan audit --manifest splits.csv --json
      leakscan audit data/ --fail-on-leak --max-leak 0.01   # CI gate: exit 1 above 1%
      leakscan audit data/ --model copy_detector.onnx      # add a learned embedding

    Exit codes: 0 done, 1 leakage above --max-leak with --fail-on-leak, 2 bad usage or input.
    """
    from .audit import audit as run_audit  # noqa: PLC0415
    from .report import prepare_out_dir, render_terminal, summary_json, write_outputs  # noqa: PLC0415

    if data is None and manifest is None:
        raise _fail("give a dataset folder (leakscan audit DATA) or --manifest FILE")
    try:
        settings = _settings(max_hamming, min_cosine, min_ncc, transforms, cross_only, model_min_cosine, crops)
        spec = _model_spec(model, model_batch)
        if out is not None:  # fail before the long part, not after
            prepare_out_dir(out, force=force, data_root=_data_root(data, manifest))
        if parquet and out is None:
            raise _fail("--parquet writes into --out DIR; give --out")
        with _progress(quiet) as cb, _dask_client(dask) as client:
            result = run_audit(data, manifest=manifest, settings=settings, jobs=jobs,
                               cache=_cache_arg(cache, no_cache), client=client, progress=cb, model=spec)
            if out is not None:
                write_outputs(result, out, force=True, html=not no_html, parquet=parquet, progress=cb)
    except LeakscanError as exc:
        raise _fail(str(exc))
    if json_:
        sys.stdout.write(summary_json(result))
    elif not quiet:
        render_terminal(result, Console(highlight=False))
        if out is not None:
            Console(highlight=False).print(f"Results written to {out}/", markup=False)
    if result.n_images == 0:
        raise _fail(f"no image could be read ({len(result.skipped)} skipped"
                    + (f"; reasons in {out}/skipped.csv)" if out is not None else "; run with --out to list them)"))
    if fail_on_leak and result.max_leak_fraction() > max_leak:
        worst = max(result.leaks, key=lambda lk: lk.fraction)
        _say(f"leakscan: leakage above --max-leak {max_leak:g}: {worst.images} of {worst.total} {worst.split} "
             f"images ({100 * worst.fraction:.2f}%) have a duplicate in {worst.against}")
        raise typer.Exit(EXIT_LEAK)


@app.command()
def resplit(
    data: Optional[Path] = typer.Argument(None, show_default=False,
                                          help="Dataset folder or CSV manifest (as for audit)."),
    out: Path = typer.Option(..., "--out", "-o", show_default=False,
                             help="The new manifest to write: CSV with path, split, label, group "
                                  "(paths relative to its folder)."),
    manifest: Optional[Path] = OPT_MANIFEST,
    ratios: Optional[str] = typer.Option(
        None, "--ratios", show_default=False,
        help="Target split shares, e.g. train=0.8,val=0.1,test=0.1 [default: the current split sizes]."),
    keep: Optional[List[str]] = typer.Option(
        None, "--keep", show_default=False,
        help="A split that stays as it is (repeatable); copies of its images in other splits join it."),
    drop: bool = typer.Option(False, "--drop", help="With --keep: drop those copies instead (listed in "
                                                    "<out>.dropped.csv)."),
    shuffle: bool = typer.Option(False, "--shuffle", help="A fresh stratified split instead of the "
                                                          "minimal-change repair."),
    seed: int = typer.Option(RANDOM_STATE, "--seed", help="Random seed (the same seed gives the same split)."),
    materialize_dir: Optional[Path] = typer.Option(
        None, "--materialize", show_default=False,
        help="Also build DIR/<split>/<label>/<file> for the new split (originals untouched)."),
    link: LinkMode = typer.Option(LinkMode.hardlink, "--link", help="How --materialize places files."),
    json_: bool = typer.Option(False, "--json", help="Print the re-split report as JSON to stdout."),
    max_hamming: int = OPT_MAX_HAMMING,
    min_cosine: float = OPT_MIN_COSINE,
    min_ncc: float = OPT_MIN_NCC,
    transforms: Transforms = OPT_TRANSFORMS,
    crops: bool = OPT_CROPS,
    model: Optional[Path] = OPT_MODEL,
    model_min_cosine: float = OPT_MODEL_MIN_COSINE,
    model_batch: int = OPT_MODEL_BATCH,
    jobs: Optional[int] = OPT_JOBS,
    cache: Optional[Path] = OPT_CACHE,
    no_cache: bool = OPT_NO_CACHE,
    dask: Optional[str] = OPT_DASK,
    force: bool = OPT_FORCE,
    quiet: bool = OPT_QUIET,
) -> None:
    """Propose a split in which no duplicate group straddles two splits, and write it as a manifest.

    \b
    Examples:
      leakscan resplit data/ --out fixed.csv                      # move as few images as possible
      leakscan resplit data/ --out new.csv --ratios train=0.8,val=0.1,test=0.1 --shuffle
      leakscan resplit data/ --out new.csv --keep test            # the benchmark's test set stays
      leakscan resplit data/ --out new.csv --keep test --drop     # ...and train copies are dropped
      leakscan resplit data/ --out new.csv --materialize new_tree/ --link hardlink

    The result is verified: no duplicate pair found by the audit ends in two splits.
    """
    from .audit import audit as run_audit  # noqa: PLC0415
    from .materialize import materialize  # noqa: PLC0415
    from .report import prepare_resplit_out, render_resplit, write_resplit  # noqa: PLC0415
    from .resplit import resplit as run_resplit  # noqa: PLC0415
    from .split import parse_ratios  # noqa: PLC0415

    if data is None and manifest is None:
        raise _fail("give a dataset folder (leakscan resplit DATA --out NEW.csv) or --manifest FILE")
    try:
        settings = _settings(max_hamming, min_cosine, min_ncc, transforms, model_min_cosine=model_min_cosine,
                             crops=crops)
        spec = _model_spec(model, model_batch)
        parse_ratios(ratios)  # fail before the long part
        prepare_resplit_out(out, force=force, data_root=_data_root(data, manifest))
        with _progress(quiet) as cb, _dask_client(dask) as client:
            result = run_audit(data, manifest=manifest, settings=settings, jobs=jobs,
                               cache=_cache_arg(cache, no_cache), client=client, progress=cb, model=spec)
        rs = run_resplit(result, ratios=ratios, keep=keep, drop=drop, shuffle=shuffle, random_state=seed)
        written = write_resplit(rs, out)
        placed = materialize(rs, materialize_dir, link=link.value, force=force) if materialize_dir else None
    except LeakscanError as exc:
        raise _fail(str(exc))
    if json_:
        d = rs.to_dict()
        d["written"] = [str(p) for p in written]
        if placed is not None:
            d["materialized"] = {"folder": str(materialize_dir), "files": placed, "link": link.value}
        sys.stdout.write(json.dumps(d, indent=2, ensure_ascii=False) + "\n")
    elif not quiet:
        con = Console(highlight=False)
        render_resplit(rs, con)
        con.print(f"New manifest written to {out}" + (f"; {placed} files placed under {materialize_dir}/ "
                                                       f"({link.value})" if placed is not None else ""),
                  markup=False)
    if rs.cross_split_pairs():  # pairs whose images the assignment did not keep in one group
        _say(f"leakscan: warning: {rs.cross_split_pairs()} duplicate pairs still cross splits (see problems)")


def main() -> None:
    """Entry point of the ``leakscan`` command."""
    app()
