"""Command line: ``leakscan audit DATA``. Each command parses, calls one library function, renders.

Library errors (:class:`~leakscan.errors.LeakscanError`) become one line on stderr and exit
code 2; data go to stdout, progress to stderr.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import __version__
from .errors import LeakscanError

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


class Transforms(str, Enum):
    all = "all"
    flip = "flip"
    none = "none"


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


@app.command()
def audit(
    data: Optional[Path] = typer.Argument(
        None, help="Dataset folder (train/ val/ test/ found by name; class = folder holding the image) "
                   "or a CSV manifest.", show_default=False),
    manifest: Optional[Path] = typer.Option(
        None, "--manifest", "-m", help="CSV with columns path, split[, label, group]; paths relative to the CSV.",
        show_default=False),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Write summary.json, pairs.csv, groups.csv, skipped.csv into this folder.",
        show_default=False),
    json_: bool = typer.Option(False, "--json", help="Print summary.json to stdout instead of tables."),
    fail_on_leak: bool = typer.Option(
        False, "--fail-on-leak", help="Exit 1 when some split leaks into another by more than --max-leak."),
    max_leak: float = typer.Option(
        0.0, "--max-leak", min=0.0, max=1.0, help="Largest tolerated leaked fraction for --fail-on-leak."),
    max_hamming: int = typer.Option(6, "--max-hamming", min=-1, max=64,
                                    help="pHash pairs at this Hamming distance or less are duplicates (-1: off)."),
    min_cosine: float = typer.Option(0.80, "--min-cosine", min=0.0,
                                     help="Least embedding cosine similarity of a near-duplicate (>1: off)."),
    transforms: Transforms = typer.Option(
        Transforms.flip, "--transforms", help="Rotated/flipped copies to find: all (8), flip (mirror), none."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1,
                                       help="Worker processes for decoding [default: all cores].",
                                       show_default=False),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite results already in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars and no tables."),
) -> None:
    """Audit a dataset for duplicate images and cross-split leakage.

    \b
    Examples:
      leakscan audit data/                 # tables in the terminal
      leakscan audit data/ --out report/   # and summary.json, pairs.csv, groups.csv, skipped.csv
      leakscan audit --manifest splits.csv --json
      leakscan audit data/ --fail-on-leak --max-leak 0.01   # CI gate: exit 1 above 1%

    Exit codes: 0 done, 1 leakage above --max-leak with --fail-on-leak, 2 bad usage or input.
    """
    from .audit import audit as run_audit  # noqa: PLC0415
    from .pairs import DetectSettings  # noqa: PLC0415
    from .report import prepare_out_dir, render_terminal, summary_json, write_outputs  # noqa: PLC0415

    if data is None and manifest is None:
        raise _fail("give a dataset folder (leakscan audit DATA) or --manifest FILE")
    try:
        settings = DetectSettings(max_hamming=max_hamming, min_cosine=min_cosine, transforms=transforms.value)
        if out is not None:  # fail before the long part, not after
            root = data if data is not None and data.is_dir() else (manifest.parent if manifest else None)
            prepare_out_dir(out, force=force, data_root=root)
        with _progress(quiet) as cb:
            result = run_audit(data, manifest=manifest, settings=settings, jobs=jobs, progress=cb)
        if out is not None:
            write_outputs(result, out, force=True)
    except LeakscanError as exc:
        raise _fail(str(exc))
    if json_:
        sys.stdout.write(summary_json(result))
    elif not quiet:
        render_terminal(result, Console(highlight=False))
        if out is not None:
            Console(highlight=False).print(f"Results written to {out}/", markup=False)
    if fail_on_leak and result.max_leak_fraction() > max_leak:
        worst = max(result.leaks, key=lambda lk: lk.fraction)
        _say(f"leakscan: leakage above --max-leak {max_leak:g}: {worst.images} of {worst.total} {worst.split} "
             f"images ({100 * worst.fraction:.2f}%) have a duplicate in {worst.against}")
        raise typer.Exit(EXIT_LEAK)


def main() -> None:
    """Entry point of the ``leakscan`` command."""
    app()
