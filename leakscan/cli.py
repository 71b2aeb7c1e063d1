"""Command line: ``leakscan audit DATA``. Each command parses, calls one library function, renders.

Library errors (:class:`~leakscan.errors.LeakscanError`) become one line on stderr and exit
code 2; data go to stdout, progress to stderr.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from ._version import __version__
from .errors import LeakscanError
from .output import json_text, missing_folders, remove_empty_folders, shown_fraction, user_path
from .parallel import MAX_JOBS_PER_CORE, check_jobs, wait_for_workers
from .settings import DECODE_SIDE, DEFAULTS, MODEL_BATCH, RANDOM_STATE, SPANS, TRANSFORMS, Span


def _show_help(ctx, param, value: bool) -> None:
    """``--help``, printed as results are (:func:`_reader_may_leave`)."""
    if value and not ctx.resilient_parsing:
        with _reader_may_leave():
            typer.echo(ctx.get_help(), color=ctx.color)
        raise typer.Exit()


class _HelpAsResults:
    """A command whose ``--help`` is printed as results are: a reader that leaves
    (``leakscan --help | head``) ends it with exit 0, not click's exit 1 (the code of "leak found")."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.callback = _show_help
        return option


class _Group(_HelpAsResults, TyperGroup):
    pass


class _Command(_HelpAsResults, TyperCommand):
    pass


app = typer.Typer(
    name="leakscan",
    cls=_Group,
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

log = logging.getLogger(__name__)


class LinkMode(str, Enum):
    hardlink = "hardlink"
    symlink = "symlink"
    copy = "copy"


Transforms = Enum("Transforms", {name: name for name in TRANSFORMS}, type=str)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _say(msg: str) -> None:
    """One unwrapped line on stderr (scripts grep these); control characters in names escaped."""
    from .safeio import plain  # noqa: PLC0415

    try:
        sys.stderr.write(plain(msg.replace("\n", " ")) + "\n")
        sys.stderr.flush()
    except OSError:  # a reader that left (``2>&1 | head``): the line is lost, the exit code still says it
        _drop(sys.stderr)


def _say_warnings(lines) -> None:
    """Each of ``lines`` on stderr as a warning of its own (``leakscan: warning: ...``)."""
    for line in lines:
        _say(f"leakscan: warning: {line}")


def _plain(s: str) -> str:
    from .safeio import plain  # noqa: PLC0415

    return plain(s)


def _os_error(exc: BaseException) -> str:
    """One line for an error of the environment (full disk, I/O, memory) that escaped the library."""
    if isinstance(exc, MemoryError):
        return "out of memory; try fewer --jobs or a smaller --max-file-size"
    where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
    said = f"{where}{exc.strerror or exc}"
    if getattr(exc, "errno", None) == errno.EMFILE:  # the path named is where the limit was met, not at fault
        import resource  # noqa: PLC0415 - POSIX only, as EMFILE is

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        said += f" (this process may have {soft} files open at once, ulimit -n: raise the limit)"
    return said


def _library_out_of_memory(exc: BaseException) -> Optional[str]:
    """The loader's own words when ``exc`` (an ImportError, or one it was raised from) is a shared
    library that could not be mapped for want of memory (``ulimit -v``): ``libgomp.so.1: failed to map
    segment from shared object``. None for a library that is missing or broken."""
    seen = 0
    while exc is not None and seen < 5:
        text = str(exc)
        low = text.lower()
        if isinstance(exc, ImportError) and ("failed to map segment" in low or
                                             ("cannot allocate memory" in low and "static tls" not in low)):
            return text
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _import_failure(exc: ImportError) -> BaseException:
    """A library that could not be loaded for want of memory is an out-of-memory failure (one
    line, exit 2), not a missing package with a traceback; any other ImportError is re-raised."""
    why = _library_out_of_memory(exc)
    if why is None:
        return exc
    return _fail(f"out of memory: a library could not be loaded ({why}); raise the memory limit (ulimit -v) "
                 "or try fewer --jobs")


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


class _Results(Console):
    """The console results are printed to: a reader that stops reading ends the printing
    (:func:`_reader_may_leave`), not the command (rich's default exits with 1). ``COLUMNS=0``
    (a CI runner's or a container's unsized terminal) is no width: rich would print nothing at
    all, so the width is the one it takes for a terminal that says 0, 80."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.width <= 0:
            self.width = 80

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


@contextmanager
def _reader_may_leave():
    """Results (and ``--help``, ``--version``) printed to a pipe whose reader has stopped reading
    (``leakscan audit data | head``): the rest is dropped and the command ends as it would have,
    its exit code still saying whether leakage was found, not click's exit 1 for a broken pipe
    (the code of "leak found"). A printout
    that cannot be written (``> report.txt`` on a full disk) is an environment failure: one line,
    exit 2 (the result files are written by then)."""
    _tolerant_streams()  # already, but for --help and --version: eager, they print before _main runs
    try:
        yield
        sys.stdout.flush()  # a broken pipe shows here, not at exit
    except BrokenPipeError:
        _drop(sys.stdout)
    except OSError as exc:
        _drop(sys.stdout)
        raise _fail(f"the printout could not be written to standard output: {_os_error(exc)}")


def _print_json(text: str) -> None:
    """JSON ``text`` on standard output. A character its encoding cannot write (an ASCII console) is
    JSON's escape (``\\u00e9``), not the escape :func:`_tolerant_streams` gives text (``\\xe9``),
    which no JSON reader reads."""
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        text = json.dumps(json.loads(text), indent=2) + "\n"
    sys.stdout.write(text)


def _goes_nowhere(stream) -> bool:
    """``stream`` is the null device :func:`_tolerant_streams` gave an output closed before the start."""
    return getattr(stream, "name", None) == os.devnull


def _drop(stream) -> None:
    """What is still buffered for ``stream`` (standard output or error) goes nowhere, and so does
    what is written to it later (no second error, nor click's exit 1 for a broken pipe)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError):  # not a file descriptor's stream
        pass
    finally:
        os.close(devnull)


def _version(value: bool) -> None:
    if value:
        with _reader_may_leave():
            typer.echo(f"leakscan {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what each stage does (on stderr)."),
) -> None:
    """Find exact and near-duplicate images and the train/val/test leakage they cause."""
    _tolerant_streams()
    logging.getLogger("faiss").setLevel(logging.WARNING)
    # tifffile's notes on a file it cannot parse name no file; the file's skip reason says what is wrong
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    before = list(logging.getLogger().handlers)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="leakscan: %(levelname)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if handler not in before:
            handler.setFormatter(_PlainFormatter("leakscan: %(levelname)s: %(message)s"))
            handler.addFilter(_LISTED_AT_THE_END)


def _tolerant_streams() -> None:
    """A character the terminal cannot show (an ASCII or Latin-1 console; a file name's bytes
    that are not UTF-8) is printed as an escape, never a crash. An output closed before the
    start (``2>&-``, a daemon) is written to nowhere; its descriptor taken by the null device,
    so no file leakscan opens later (the cache, a result) gets it and what libraries print."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - for the process's life
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):  # not a text stream leakscan may change
            pass


class _PlainFormatter(logging.Formatter):
    """Log lines name files: escape their control characters (no ESC reaches the terminal)."""

    def format(self, record):
        from .safeio import plain  # noqa: PLC0415

        return plain(super().format(record).replace("\n", " "))


class _HeldWarnings(logging.Filter):
    """Keeps back the log lines of the warnings whose record carries the key given to :meth:`held`
    (``leakscan.audit.LISTED``: the results list them at the end), so the terminal shows each warning
    once, in that list. They are held until that list is printed (:meth:`shown`); those still held
    are said (:meth:`say`) when the run fails, or its printout does not reach standard output (a
    full disk, a reader gone, the output closed); Ctrl-C writes them (:meth:`lines`)."""

    def __init__(self):
        super().__init__()
        self.key, self.kept = None, []

    def filter(self, record) -> bool:
        if self.key is None or not getattr(record, self.key, False):
            return True
        self.kept.append(record)
        return False

    @contextmanager
    def held(self, key):
        """Hold the warnings carrying ``key`` logged while it is open; said at once if it ends in an error."""
        self.key, self.kept = key, []
        try:
            yield
        except BaseException:
            self.key = None
            self.say()
            raise
        finally:
            self.key = None

    def shown(self) -> None:
        """The results' list has said the held warnings."""
        self.kept = []

    def say(self) -> None:
        """Log the held warnings, as they would have been without holding, and hold them no longer."""
        kept, self.kept = self.kept, []
        for handler in logging.getLogger().handlers:
            if self in handler.filters:
                for record in kept:
                    handler.handle(record)

    def lines(self) -> list:
        """The held warnings as their log lines would read (for Ctrl-C, which ends the run at once)."""
        return [handler.format(record) for handler in logging.getLogger().handlers if self in handler.filters
                for record in self.kept]


#: On the log handlers the CLI sets up: the audit's listed warnings are held back while its end list will show them.
_LISTED_AT_THE_END = _HeldWarnings()


def _say_audit_warnings(result) -> None:
    """The audit's list of warnings said on stderr after the results, each once, where no table lists
    them (``resplit``; ``audit --quiet``): those it would have logged are held back for this list."""
    _say_warnings(result.all_warnings)
    _LISTED_AT_THE_END.shown()


def _say_skipped(result, skipped_csv) -> None:
    """The files the audit skipped, on one line on stderr (``audit --quiet``: no table says them):
    how many, where their reasons are, and the first few with theirs."""
    from .present import SKIPPED_NAMED, skipped_header  # noqa: PLC0415

    if result.skipped:
        named = "; ".join(f"{p}: {why}" for p, why in result.skipped[:SKIPPED_NAMED])
        _say(f"leakscan: {skipped_header(len(result.skipped), skipped_csv)}: {named}")


def _check_working_folder(ctx: typer.Context) -> None:
    """Relative paths given while the working folder no longer exists (deleted or moved since the
    shell entered it) lead nowhere: one line naming them, before anything is read or made."""
    try:
        os.getcwd()
        return
    except OSError:
        pass
    given = [f"{_named(p)} {ctx.params[p.name]}" for p in ctx.command.params
             if isinstance(ctx.params.get(p.name), Path) and not ctx.params[p.name].is_absolute()]
    if given:
        raise _fail(f"the working folder no longer exists (deleted or moved), so relative paths lead nowhere: "
                    f"give {', '.join(given)} as absolute paths, or run from an existing folder")


def _named(param) -> str:
    """How the command line names a parameter: its option (``--manifest``), or an argument's name (``DATA``)."""
    return param.opts[0] if param.opts[0].startswith("-") else param.name.upper()


def _said(ctx: typer.Context, exc: LeakscanError) -> str:
    """A library error's line, the keyword it starts with (``ConfigError.keyword``: ``min_precision``
    must be in [0, 1)...) said as this command line names it (``--min-precision``)."""
    msg, keyword = str(exc), getattr(exc, "keyword", None)
    param = next((p for p in ctx.command.params if p.name == keyword), None)
    if param is None or not msg.startswith(keyword):
        return msg
    return _named(param) + msg[len(keyword):]


#: The paths a command reads, by parameter, and whether each must be a file (DATA and --hf may be folders).
#: Their options leave the check to :func:`_check_inputs` (``readable=False``), as the paths a command
#: writes leave theirs to the library: click's own check said "Invalid value" in three lines.
_INPUTS = {"data": False, "manifest": True, "decisions": True, "model": True, "hf": False}


def _check_inputs(ctx: typer.Context) -> None:
    """Each path the command reads exists, is a file where a file is wanted and can be read, else one
    line naming the option, the path and why: before anything is made, read or waited for."""
    from .discovery import check_readable  # noqa: PLC0415

    for p in ctx.command.params:
        if p.name in _INPUTS and ctx.params.get(p.name) is not None:
            try:
                check_readable(ctx.params[p.name], file_only=_INPUTS[p.name])
            except LeakscanError as exc:
                raise _fail(f"{_named(p)} {exc}") from None


def _check_out_is_no_input(ctx: typer.Context, out: Path) -> None:
    """``resplit --out NEW.csv`` (or a list written or removed beside it) is none of the files the
    run reads (the manifest, the decisions, the model): ``--force`` replaces earlier results, never
    an input. One line, before anything is read."""
    from .report import dropped_list, is_there, left_out_list  # noqa: PLC0415

    for p in ctx.command.params:
        given = ctx.params.get(p.name) if p.name in _INPUTS else None
        if given is None or not os.path.isfile(given):
            continue
        for written in (Path(out), left_out_list(out), dropped_list(out)):
            if is_there(written) and os.path.samefile(written, given):
                what = "is" if written == Path(out) else f"would write over or remove {written}, which is"
                raise _fail(f"--out {out} {what} the {_named(p)} this run reads; leakscan never overwrites "
                            "its input: choose another --out")


def _verbose(verbose: bool) -> None:
    """``-v`` given after the subcommand (``leakscan audit data/ -v``) counts as well."""
    if verbose:
        logging.getLogger().setLevel(logging.INFO)


def _settings(max_hamming: int, min_cosine: float, min_ncc: float, transforms: "Transforms",
              cross_only: bool = False, model_min_cosine: float = DEFAULTS.model_min_cosine,
              crops: bool = DEFAULTS.crops, min_confidence: float = DEFAULTS.min_confidence,
              overlap: bool = DEFAULTS.overlap, min_precision: float = DEFAULTS.min_precision,
              label_evidence: bool = DEFAULTS.label_evidence):
    from .settings import DetectSettings  # noqa: PLC0415

    return DetectSettings(max_hamming=max_hamming, min_cosine=min_cosine, min_ncc=min_ncc,
                          transforms=transforms.value, scope="cross" if cross_only else "all",
                          model_min_cosine=model_min_cosine, crops=crops, min_confidence=min_confidence,
                          overlap=overlap, min_precision=min_precision, label_evidence=label_evidence)


def _needs(ctx: typer.Context, needed: str, present: bool, *names: str) -> None:
    """Options (parameter ``names``) given on the command line without the one they work with
    (``needed``, not ``present``) would be silently ignored: refused instead."""
    given = [p.opts[0] for p in ctx.command.params  # by name: typer carries its own copy of click
             if p.name in names and getattr(ctx.get_parameter_source(p.name), "name", None) == "COMMANDLINE"]
    if given and not present:
        raise _fail(f"options that need {needed} given without it: {', '.join(given)}")


def _check_pairing(ctx: typer.Context, model: Optional[Path], cache: Optional[Path], no_cache: bool) -> None:
    """The options of both commands that only work with another one, or contradict it."""
    _needs(ctx, "--model FILE.onnx", model is not None,
           "model_min_cosine", "model_batch", "model_size", "model_normalize")
    if no_cache and cache is not None:
        raise _fail("--cache PATH and --no-cache contradict each other: give one of them")


def _model_spec(model: Optional[Path], batch: int, size: Optional[str] = None, normalize: Optional[str] = None):
    if model is None:
        return None
    from .model import ModelSpec  # noqa: PLC0415

    return ModelSpec.from_path(model, batch_size=batch, size=size, normalize=normalize)


def _user_path(value: Optional[Path]) -> Optional[Path]:
    """The callback of every path option and argument: ``--out=~/report`` (which the shell leaves
    as typed) is in the home folder, not a folder named ``~`` here (:func:`leakscan.output.user_path`)."""
    try:
        return user_path(value)
    except RuntimeError:
        raise typer.BadParameter(f"{value}: ~ names the home folder, which is unknown here (HOME is not set); "
                                 "give the path without ~") from None


def _number(option: str, span: Span):
    """The ``parser=`` of a number option: a number in ``span`` (``Span.whole``: an int option),
    else one line naming the option and the value. typer leaves the range it shows in --help to it:
    its own check said three lines without the value ("Input should be less than or equal to 64"),
    and of NaN, which compares false with every bound, that it was out of range."""
    what = "a whole number" if span.whole else "a number"

    def parse(value):
        try:
            x = int(str(value).strip()) if span.whole else float(value)
        except (TypeError, ValueError):
            raise _fail(f"{option} {value} is not {what}: give one {span}") from None
        if not span.whole and math.isnan(x):
            raise _fail(f"{option} {value} is not a number: give one {span}")
        if not span.holds(x):
            raise _fail(span.refusal(option, value))
        return x
    return parse


def _number_option(default, *names: str, span: Span, help: str = "", **kw):
    """A number option (named ``names``, the first as the error says it) taking the values of
    ``span``, checked by :func:`_number`. --help shows the range as typer does (``0.0<=x<=1.0``);
    typer cannot show an open bound, so a range with one is written in the help text."""
    parse = _number(names[0], span)
    low, high = (None if b is None else (int if span.whole else float)(b) for b in (span.low, span.high))
    # named as recent typer names it (0.23 and older named it after the parser: PARSE)
    metavar = "<int" if span.whole else "<float"
    if span.low_open or span.high_open:
        shown = "".join([f"{low}{'<' if span.low_open else '<='}" if low is not None else "", "x",
                         f"{'<' if span.high_open else '<='}{high}" if high is not None else ""])
        return typer.Option(default, *names, parser=parse, help=f"{help} [{shown}]", metavar=f"{metavar}>", **kw)
    return typer.Option(default, *names, min=low, max=high, parser=parse, help=help, metavar=f"{metavar} range>", **kw)


def _setting_option(name: str, *names: str, help: str, **kw):
    """The option of the :class:`DetectSettings` field ``name``: its default and its span from
    :mod:`leakscan.settings`, where they are written once."""
    return _number_option(getattr(DEFAULTS, name), *names, span=SPANS[name], help=help, **kw)


OPT_MANIFEST = typer.Option(None, "--manifest", "-m", show_default=False, callback=_user_path, readable=False,
                            help="CSV with columns path, split[, label, group]; paths relative to the CSV.")
OPT_MAX_HAMMING = _setting_option("max_hamming", "--max-hamming",
                                  help="pHash pairs at this Hamming distance or less are candidates, "
                                       "then weighed (-1: off).")
OPT_MIN_COSINE = _setting_option("min_cosine", "--min-cosine",
                                 help="Least embedding cosine similarity of a candidate pair (>1: off).")
OPT_MIN_CONFIDENCE = _setting_option(
    "min_confidence", "--min-confidence",
    help="A pair is a duplicate at this confidence (the estimated probability that the two are the same "
         "picture) or more; pairs from 0.1 up to it are possible pairs (an audit's possible.csv), never counted.")
OPT_MIN_PRECISION = _setting_option(
    "min_precision", "--min-precision",
    help="The duplicate links (the pairs that join images into groups) are expected to be at least this share "
         "real copies: when those at --min-confidence are not, the bar is raised until they are (the pairs "
         "under it are possible pairs); 0: off.")
OPT_MIN_NCC = _setting_option("min_ncc", "--min-ncc",
                              help="Floor: candidates whose aligned thumbnails correlate less than this are "
                                   "dropped before the decision (-1: keep every candidate).")
OPT_CROPS = typer.Option(DEFAULTS.crops, "--crops/--no-crops",
                         help="Also search crops of every image (finds cropped copies) and, with --transforms all, "
                              "tilted views (copies rotated then cropped, or with their corners filled from the "
                              "picture); --no-crops is faster.")
OPT_OVERLAP = typer.Option(DEFAULTS.overlap, "--overlap/--no-overlap",
                           help="Also search for overlapping tiles of one large image (images of 64 px or more).")
OPT_LABEL_EVIDENCE = typer.Option(
    DEFAULTS.label_evidence, "--label-evidence/--no-label-evidence",
    help="Weigh a pair of two labels against how often this dataset's copies and look-alikes differ in label "
         "(README: Labels are evidence too); --no-label-evidence lets the pictures alone decide.")
OPT_MODEL = typer.Option(None, "--model", show_default=False, callback=_user_path, readable=False,
                         help="Also embed every image with this ONNX model and report pairs at "
                              "--model-min-cosine or more (needs pip install 'leakscan[onnx]').")
OPT_MODEL_MIN_COSINE = _setting_option("model_min_cosine", "--model-min-cosine",
                                       help="Model embeddings at least this similar make a candidate pair; only at "
                                            "this cosine or more does the model raise a pair's confidence.")
OPT_MODEL_BATCH = _number_option(MODEL_BATCH, "--model-batch", span=Span(1, whole=True), help="Images per model run.")
OPT_MODEL_SIZE = typer.Option(None, "--model-size", show_default=False, metavar="N|WxH",
                              help="Resize images to this for the model [default: the model's metadata, "
                                   "else its fixed input size, else 224].")
OPT_MODEL_NORMALIZE = typer.Option(None, "--model-normalize", show_default=False, metavar="imagenet|none|clip",
                                   help="Normalisation of [0, 1] pixels for a float-input model [default: the "
                                        "model's metadata, else imagenet]; uint8-input models get raw pixels.")
OPT_TRANSFORMS = typer.Option(Transforms(DEFAULTS.transforms), "--transforms",
                              help="Rotated/flipped copies to find: all (8), flip (mirror), none.")
OPT_JOBS = _number_option(None, "--jobs", "-j", span=Span(1, whole=True), show_default=False,
                          help="Worker processes for decoding, the pair evidence and the calibration, and threads "
                               f"for the closer look at the pairs in doubt [default: all cores; at most "
                               f"{MAX_JOBS_PER_CORE} per core].")
OPT_QUIET = typer.Option(False, "--quiet", "-q",
                         help="No progress bars and no tables (warnings and skipped files are still said, on stderr).")
OPT_FORCE = typer.Option(False, "--force", "-f", help="Overwrite earlier results.")
# readable=False: a cache that cannot be opened is the library's warning (a run without it), as
# through $LEAKSCAN_CACHE, not the option's own refusal
OPT_CACHE = typer.Option(None, "--cache", show_default=False, callback=_user_path, readable=False,
                         help="Feature cache database [default: $LEAKSCAN_CACHE, else "
                              "$XDG_CACHE_HOME/leakscan/features.sqlite, else ~/.cache/leakscan/features.sqlite].")
OPT_NO_CACHE = typer.Option(False, "--no-cache", help="Decode every image; do not read or write the feature cache.")
OPT_FULL_DECODE = typer.Option(False, "--full-decode",
                               help="Decode every image file at full size (default: JPEGs decode at the smallest "
                                    f"DCT scale that keeps {DECODE_SIDE} px on the shorter side, which is all the "
                                    "features use).")


OPT_MAX_FILE_SIZE = typer.Option(
    None, "--max-file-size", show_default=False,
    help="Skip files larger than this, unread (bytes, or with K/M/G) [default: $LEAKSCAN_MAX_FILE_SIZE or 512M].")


@contextmanager
def _max_file_size(value: Optional[str]):
    """Apply --max-file-size for this command (the environment carries it to worker processes)."""
    from .decode import MAX_FILE_SIZE_ENV, parse_size  # noqa: PLC0415

    if value is None:
        env = os.environ.get(MAX_FILE_SIZE_ENV)
        try:  # a bad value would be ignored with a warning per file decoded, and none when cached
            parse_size(env) if env else None
        except (ValueError, IndexError):
            raise _fail(f"{MAX_FILE_SIZE_ENV} must be a size such as 512M or 20000000, got {env!r}") from None
        yield
        return
    try:
        size = parse_size(value)
    except (ValueError, IndexError):
        raise _fail(f"--max-file-size must be a size such as 512M or 20000000, got {value!r}") from None
    old = os.environ.get(MAX_FILE_SIZE_ENV)
    os.environ[MAX_FILE_SIZE_ENV] = str(size)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(MAX_FILE_SIZE_ENV, None)
        else:
            os.environ[MAX_FILE_SIZE_ENV] = old


OPT_VERBOSE = typer.Option(False, "--verbose", "-v", help="Log what each stage does (on stderr).")
OPT_DECISIONS = typer.Option(
    None, "--decisions", show_default=False, metavar="FILE", callback=_user_path, readable=False,
    help="Your verdicts on pairs: CSV a,b,decision[,note] with decision distinct or duplicate "
         "(the report's Export decisions writes it). Distinct pairs are never reported or grouped, "
         "duplicate pairs always are.")
OPT_DASK = typer.Option(None, "--dask", show_default=False,
                        help="Decode on a Dask cluster: scheduler address such as tcp://scheduler:8786 "
                             "(needs pip install 'leakscan[dask]'; workers must see the same paths).")


OPT_HF = typer.Option(None, "--hf", show_default=False, callback=_user_path, readable=False,
                      help="A Hugging Face dataset folder (save_to_disk, or a local folder load_dataset reads "
                           "offline); rows are split/index (needs pip install 'leakscan[hf]').")
OPT_IMAGE_COLUMN = typer.Option(None, "--image-column", show_default=False,
                                help="--hf / Parquet: the column of images [default: the Image feature, or 'image'].")
OPT_LABEL_COLUMN = typer.Option(None, "--label-column", show_default=False,
                                help="--hf / Parquet: the label column [default: the ClassLabel feature, or 'label'].")
OPT_GROUP_COLUMN = typer.Option(None, "--group-column", show_default=False,
                                help="--hf / Parquet: a column of group ids (patient, video...) [default: 'group'].")
OPT_GROUP_BY = typer.Option(None, "--group-by", show_default=False,
                            help="DICOM: group images by PatientID (default), StudyInstanceUID, SeriesInstanceUID "
                                 "or none (needs pip install 'leakscan[dicom]').")
OPT_BANDS = typer.Option(None, "--bands", show_default=False,
                         help="Multi-band TIFF tiles: the three bands shown, 1-based, e.g. 4,3,2 [default: the "
                              "first three] (needs pip install 'leakscan[geo]').")


def _source_options(image_column, label_column, group_column, group_by, bands) -> dict:
    """Keyword arguments of leakscan.audit for the special sources (only those given)."""
    opts = {"image_column": image_column, "label_column": label_column, "group_column": group_column}
    if group_by is not None:
        from .sources.dicom import check_group_by  # noqa: PLC0415 - no pydicom import

        opts["group_by"] = check_group_by(group_by)
    if bands is not None:
        from .sources.geotiff import parse_bands  # noqa: PLC0415 - no tifffile import

        opts["bands"] = parse_bands(bands)
    return {k: v for k, v in opts.items() if v is not None}


def _check_one_source(data: Optional[Path], manifest: Optional[Path], hf: Optional[Path]) -> None:
    """DATA, --manifest and --hf given together are refused before any of them is looked at: that
    they cannot be combined is the error, whether each exists or not."""
    from .discovery import check_one_source  # noqa: PLC0415

    if hf is not None and (data is not None or manifest is not None):
        raise _fail("--hf PATH replaces DATA and --manifest; give one of them")
    try:
        check_one_source(data, manifest)
    except LeakscanError as exc:
        raise _fail(str(exc)) from None


def _hf_data(hf: Optional[Path], data: Optional[Path]):
    """The data to audit: the dataset --hf names (loaded), else DATA (:func:`_check_one_source` has
    refused both)."""
    if hf is None:
        return data
    from .sources.hf import load_hf  # noqa: PLC0415

    return load_hf(hf)


def _dataset_folders(found, hf: Optional[Path]) -> list:
    """The folders never written into: those of the images found, and the folder given to --hf."""
    from .safeio import dataset_folders  # noqa: PLC0415

    return dataset_folders(found) + ([os.path.realpath(hf)] if hf is not None else [])


def _cache_arg(cache: Optional[Path], no_cache: bool):
    return False if no_cache else (cache if cache is not None else True)


@contextmanager
def _dask_client(address: Optional[str]):
    if not address:
        yield None
        return
    wait_for_workers()  # a bad $LEAKSCAN_DASK_WAIT is refused before the scheduler is reached
    try:
        import dask  # noqa: PLC0415
        from distributed import Client  # noqa: PLC0415
    except ImportError:
        raise _fail("--dask needs the dask extra: pip install 'leakscan[dask]'") from None
    try:
        client = Client(address, timeout=dask.config.get("distributed.comm.timeouts.connect", "30s"))
    except Exception as exc:  # connection refused, timeout, bad address
        raise _fail(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    # the cluster's own log records (a reconnect that failed, "closing client", with or without
    # a traceback, logged by the module it failed in) are noise beside the one line a failure
    # ends with; -v shows them
    dask_log, root = logging.getLogger("distributed"), logging.getLogger()
    level = dask_log.level
    quiet = not root.isEnabledFor(logging.INFO)

    def no_foreign_tracebacks(record: logging.LogRecord) -> bool:
        foreign = not record.name.startswith("leakscan")
        return not (quiet and foreign and (record.exc_info or record.name.split(".")[0] in ("distributed", "tornado")))

    handlers = list(root.handlers)
    if quiet:
        dask_log.setLevel(logging.CRITICAL)
        for handler in handlers:
            handler.addFilter(no_foreign_tracebacks)
    try:
        yield client
    finally:
        try:
            client.close()
        except Exception:  # the scheduler already gone: nothing to close
            pass
        dask_log.setLevel(level)
        for handler in handlers:
            handler.removeFilter(no_foreign_tracebacks)


AUDIT_HELP = """Audit a dataset for duplicate images and cross-split leakage.

    \b
    Examples:
      leakscan audit data/                 # tables in the terminal
      leakscan audit data/ --out report/ # + summary.json, pairs.csv, possible.csv, groups.csv, skipped.csv, report.html
      leakscan audit --manifest splits.csv --json
      leakscan audit data/ --fail-on-leak --max-leak 0.01   # CI gate: exit 1 above 1%
      leakscan audit data/ --model copy_detector.onnx      # add a learned embedding
      leakscan audit data/ --decisions decisions.csv       # with your verdicts (see the report)
      leakscan audit --hf saved_dataset/                   # a Hugging Face dataset (save_to_disk)
      leakscan audit --manifest table.parquet              # Parquet: paths or image bytes
      leakscan audit scans/ --group-by PatientID           # DICOM: patients on both sides
      leakscan audit tiles/ --bands 4,3,2                  # GeoTIFF: bands, spatial leakage

    Exit codes: 0 done, 1 leakage above --max-leak with --fail-on-leak, 2 bad usage or input.
    """


@app.command(help=AUDIT_HELP, cls=_Command)
def audit(
    ctx: typer.Context,
    data: Optional[Path] = typer.Argument(
        None, help="Dataset folder (train/ val/ test/ found by name; class = folder holding the image) "
                   "or a CSV manifest.", show_default=False, callback=_user_path, readable=False),
    manifest: Optional[Path] = OPT_MANIFEST,
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Write summary.json, pairs.csv, possible.csv, groups.csv, skipped.csv and "
                                  "report.html into this folder.",
        show_default=False, callback=_user_path, readable=False),
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
    max_leak: float = _number_option(
        0.0, "--max-leak", span=Span(0, 1), help="Largest tolerated leaked fraction for --fail-on-leak."),
    max_hamming: int = OPT_MAX_HAMMING,
    min_cosine: float = OPT_MIN_COSINE,
    min_ncc: float = OPT_MIN_NCC,
    min_confidence: float = OPT_MIN_CONFIDENCE,
    min_precision: float = OPT_MIN_PRECISION,
    transforms: Transforms = OPT_TRANSFORMS,
    crops: bool = OPT_CROPS,
    overlap: bool = OPT_OVERLAP,
    label_evidence: bool = OPT_LABEL_EVIDENCE,
    model: Optional[Path] = OPT_MODEL,
    model_min_cosine: float = OPT_MODEL_MIN_COSINE,
    model_batch: int = OPT_MODEL_BATCH,
    model_size: Optional[str] = OPT_MODEL_SIZE,
    model_normalize: Optional[str] = OPT_MODEL_NORMALIZE,
    jobs: Optional[int] = OPT_JOBS,
    cache: Optional[Path] = OPT_CACHE,
    no_cache: bool = OPT_NO_CACHE,
    full_decode: bool = OPT_FULL_DECODE,
    max_file_size: Optional[str] = OPT_MAX_FILE_SIZE,
    dask: Optional[str] = OPT_DASK,
    decisions: Optional[Path] = OPT_DECISIONS,
    force: bool = OPT_FORCE,
    quiet: bool = OPT_QUIET,
    verbose: bool = OPT_VERBOSE,
    hf: Optional[Path] = OPT_HF,
    image_column: Optional[str] = OPT_IMAGE_COLUMN,
    label_column: Optional[str] = OPT_LABEL_COLUMN,
    group_column: Optional[str] = OPT_GROUP_COLUMN,
    group_by: Optional[str] = OPT_GROUP_BY,
    bands: Optional[str] = OPT_BANDS,
) -> None:
    """``leakscan audit``: its help is AUDIT_HELP (a docstring is gone under ``python -OO``)."""
    from .audit import LISTED, audit as run_audit  # noqa: PLC0415
    from .report import prepare_out_dir, render_terminal, summary_json, write_outputs  # noqa: PLC0415
    _verbose(verbose)
    _check_working_folder(ctx)
    if data is None and manifest is None and hf is None:
        raise _fail("give a dataset folder (leakscan audit DATA), --manifest FILE or --hf PATH")
    _check_pairing(ctx, model, cache, no_cache)
    _needs(ctx, "--out DIR", out is not None, "no_html", "parquet", "force")
    _needs(ctx, "--fail-on-leak", fail_on_leak, "max_leak")
    _check_one_source(data, manifest, hf)
    _check_inputs(ctx)
    made = missing_folders(out)  # removed again if the run fails before writing into them
    _MADE[:] = made  # ... or is interrupted
    try:
        settings = _settings(max_hamming, min_cosine, min_ncc, transforms, cross_only, model_min_cosine, crops,
                             min_confidence, overlap, min_precision, label_evidence)
        spec = _model_spec(model, model_batch, model_size, model_normalize)
        source_opts = _source_options(image_column, label_column, group_column, group_by, bands)
        check_jobs(jobs)  # before a Dask scheduler is waited for
        data = _hf_data(hf, data)
        _check_decisions(decisions)

        def check_out(found):  # once the images are found, before the long part
            prepare_out_dir(out, force=force, protect=_dataset_folders(found, hf))
        # the list of warnings (the tables', else stderr's with -q) shows those the run would log as well:
        # each is said once, there
        with _LISTED_AT_THE_END.held(None if json_ else LISTED), _progress(quiet) as cb, \
                _max_file_size(max_file_size), _dask_client(dask) as client:
            result = run_audit(data, manifest=manifest, settings=settings, jobs=jobs,
                               cache=_cache_arg(cache, no_cache), client=client, progress=cb, model=spec,
                               decisions=decisions, full_decode=full_decode,
                               before_decoding=check_out if out is not None else None, **source_opts)
            if out is not None:
                write_outputs(result, out, force=force, html=not no_html, parquet=parquet, progress=cb)
    except LeakscanError as exc:
        remove_empty_folders(made)
        raise _fail(_said(ctx, exc))
    except (OSError, MemoryError) as exc:
        remove_empty_folders(made)
        raise _fail(_os_error(exc))
    except ImportError as exc:
        remove_empty_folders(made)
        raise _import_failure(exc)
    from .termout import timings_line  # noqa: PLC0415

    log.info(timings_line(result.timings))  # with -v: where the time went, the result files included
    with _reader_may_leave():
        try:
            if json_:
                _print_json(summary_json(result))
            elif not quiet:
                con = _Results(highlight=False)
                render_terminal(result, con, skipped_csv=f"{out}/skipped.csv" if out is not None else None)
                if out is not None:
                    con.print(_plain(f"Results written to {out}/"), markup=False)
                sys.stdout.flush()
                if not _goes_nowhere(sys.stdout):
                    _LISTED_AT_THE_END.shown()
        finally:  # the list of warnings never read (a full disk, a reader gone, the output closed): on stderr
            if quiet and not json_:  # no tables to list them: all on stderr, those the run logs included
                _say_audit_warnings(result)
                _say_skipped(result, f"{out}/skipped.csv" if out is not None else None)
            _LISTED_AT_THE_END.say()
    if result.n_images == 0:
        raise _fail(f"no image could be read ({len(result.skipped)} skipped"
                    + (f"; reasons in {out}/skipped.csv)" if out is not None else "; run with --out to list them)"))
    if fail_on_leak and shown_fraction(result.max_leak_fraction()) > max_leak:  # the figure summary.json shows
        from .present import pct  # noqa: PLC0415

        worst = max(result.leaks, key=lambda lk: lk.fraction)
        # --max-leak as given and the fraction it was compared with: both to all their digits
        _say(f"leakscan: leakage above --max-leak {max_leak:.15g}: {worst.images} of {worst.total} {worst.split} "
             f"images ({pct(worst.fraction)}, fraction {shown_fraction(worst.fraction):.15g}) have a duplicate "
             f"in {worst.against}")
        raise typer.Exit(EXIT_LEAK)


RESPLIT_HELP = """Propose a split in which no duplicate group straddles two splits, and write it as a manifest.

    \b
    Examples:
      leakscan resplit data/ --out fixed.csv                      # move as few images as possible
      leakscan resplit data/ --out new.csv --ratios train=0.8,val=0.1,test=0.1 --shuffle
      leakscan resplit data/ --out new.csv --keep test            # the benchmark's test set stays
      leakscan resplit data/ --out new.csv --keep test --drop     # ...and train copies are dropped
      leakscan resplit data/ --out new.csv --materialize new_tree/ --link hardlink
      leakscan resplit --hf saved_dataset/ --out new.csv          # rows written as split/index

    The result is verified: no duplicate pair found by the audit ends in two splits.
    """


@app.command(help=RESPLIT_HELP, cls=_Command)
def resplit(
    ctx: typer.Context,
    data: Optional[Path] = typer.Argument(None, show_default=False, callback=_user_path, readable=False,
                                          help="Dataset folder or CSV manifest (as for audit)."),
    out: Path = typer.Option(..., "--out", "-o", show_default=False, callback=_user_path, readable=False,
                             help="The new manifest to write: CSV with path, split, label, group "
                                  "(paths relative to its folder)."),
    manifest: Optional[Path] = OPT_MANIFEST,
    ratios: Optional[str] = typer.Option(
        None, "--ratios", show_default=False,
        help="Target split shares, e.g. train=0.8,val=0.1,test=0.1 [default: the current split sizes]."),
    keep: Optional[List[str]] = typer.Option(
        None, "--keep", show_default=False, metavar="SPLIT",
        help="A split that stays as it is (repeatable); copies of its images in other splits join it."),
    drop: bool = typer.Option(False, "--drop", help="With --keep: drop those copies instead (listed in "
                                                    "<out>.dropped.csv)."),
    shuffle: bool = typer.Option(False, "--shuffle", help="A fresh stratified split instead of the "
                                                          "minimal-change repair."),
    seed: int = _number_option(RANDOM_STATE, "--seed", span=Span(0, whole=True),
                               help="Random seed (the same seed gives the same split)."),
    materialize_dir: Optional[Path] = typer.Option(
        None, "--materialize", show_default=False, callback=_user_path, readable=False,
        help="Also build DIR/<split>/<label>/<file> for the new split (originals untouched)."),
    link: LinkMode = typer.Option(LinkMode.hardlink, "--link", help="How --materialize places files."),
    json_: bool = typer.Option(False, "--json", help="Print the re-split report as JSON to stdout."),
    max_hamming: int = OPT_MAX_HAMMING,
    min_cosine: float = OPT_MIN_COSINE,
    min_ncc: float = OPT_MIN_NCC,
    min_confidence: float = OPT_MIN_CONFIDENCE,
    min_precision: float = OPT_MIN_PRECISION,
    transforms: Transforms = OPT_TRANSFORMS,
    crops: bool = OPT_CROPS,
    overlap: bool = OPT_OVERLAP,
    label_evidence: bool = OPT_LABEL_EVIDENCE,
    model: Optional[Path] = OPT_MODEL,
    model_min_cosine: float = OPT_MODEL_MIN_COSINE,
    model_batch: int = OPT_MODEL_BATCH,
    model_size: Optional[str] = OPT_MODEL_SIZE,
    model_normalize: Optional[str] = OPT_MODEL_NORMALIZE,
    jobs: Optional[int] = OPT_JOBS,
    cache: Optional[Path] = OPT_CACHE,
    no_cache: bool = OPT_NO_CACHE,
    full_decode: bool = OPT_FULL_DECODE,
    max_file_size: Optional[str] = OPT_MAX_FILE_SIZE,
    dask: Optional[str] = OPT_DASK,
    decisions: Optional[Path] = OPT_DECISIONS,
    force: bool = OPT_FORCE,
    quiet: bool = OPT_QUIET,
    verbose: bool = OPT_VERBOSE,
    hf: Optional[Path] = OPT_HF,
    image_column: Optional[str] = OPT_IMAGE_COLUMN,
    label_column: Optional[str] = OPT_LABEL_COLUMN,
    group_column: Optional[str] = OPT_GROUP_COLUMN,
    group_by: Optional[str] = OPT_GROUP_BY,
    bands: Optional[str] = OPT_BANDS,
) -> None:
    """``leakscan resplit``: its help is RESPLIT_HELP (a docstring is gone under ``python -OO``)."""
    from .audit import LISTED, audit as run_audit  # noqa: PLC0415
    from .materialize import materialize, planned  # noqa: PLC0415
    from .report import left_out_list, prepare_resplit_out, render_resplit, write_resplit  # noqa: PLC0415
    from .resplit import resplit as run_resplit  # noqa: PLC0415
    from .safeio import check_target, check_writable  # noqa: PLC0415
    from .split import parse_ratios  # noqa: PLC0415

    _verbose(verbose)
    _check_working_folder(ctx)
    if data is None and manifest is None and hf is None:
        raise _fail("give a dataset folder (leakscan resplit DATA --out NEW.csv), --manifest FILE or --hf PATH")
    _check_pairing(ctx, model, cache, no_cache)
    _needs(ctx, "--keep SPLIT", bool(keep), "drop")
    _needs(ctx, "--materialize DIR", materialize_dir is not None, "link")
    _check_one_source(data, manifest, hf)
    _check_inputs(ctx)
    _check_out_is_no_input(ctx, out)
    if materialize_dir is not None and os.path.realpath(materialize_dir) == os.path.realpath(out):
        raise _fail(f"--out {out} and --materialize {materialize_dir} name the same path: the manifest is a file, "
                    "the tree a folder beside it")
    try:
        settings = _settings(max_hamming, min_cosine, min_ncc, transforms, model_min_cosine=model_min_cosine,
                             crops=crops, min_confidence=min_confidence, overlap=overlap,
                             min_precision=min_precision, label_evidence=label_evidence)
        spec = _model_spec(model, model_batch, model_size, model_normalize)
        source_opts = _source_options(image_column, label_column, group_column, group_by, bands)
        check_jobs(jobs)  # before a Dask scheduler is waited for
        data = _hf_data(hf, data)
        parse_ratios(ratios)  # fail before the long part
        _check_decisions(decisions)
        _ratio_warnings(ratios)

        def check_out(found):  # once the images are found, before the long part
            folders = _dataset_folders(found, hf)
            prepare_resplit_out(out, force=force, protect=folders)
            if materialize_dir is not None:
                check_target(materialize_dir, folders, what="--materialize folder")
                check_writable(materialize_dir, what="--materialize folder")
        # the audit's warnings are said after the new split, each once (as audit lists them), with -q too
        with _LISTED_AT_THE_END.held(None if json_ else LISTED), _progress(quiet) as cb, \
                _max_file_size(max_file_size), _dask_client(dask) as client:
            result = run_audit(data, manifest=manifest, settings=settings, jobs=jobs,
                               cache=_cache_arg(cache, no_cache), client=client, progress=cb, model=spec,
                               decisions=decisions, full_decode=full_decode, before_decoding=check_out,
                               **source_opts)
        _ratio_warnings(ratios, result.manifest.split_names, keep)
        with _progress(quiet or not drop) as cb:  # dropping images searches the rest again, in rounds
            rs = run_resplit(result, ratios=ratios, keep=keep, drop=drop, shuffle=shuffle, random_state=seed,
                             progress=cb)
        # a tree it would refuse is refused before the manifest is written
        plan = planned(rs, materialize_dir, link=link.value, force=force) if materialize_dir is not None else None
        written = write_resplit(rs, out, force=force)
        placed = materialize(rs, materialize_dir, link=link.value, force=force, plan=plan) if plan is not None else None
    except LeakscanError as exc:
        _LISTED_AT_THE_END.say()  # the audit's warnings held for the end, before the failure's line
        raise _fail(_said(ctx, exc))
    except (OSError, MemoryError) as exc:
        _LISTED_AT_THE_END.say()
        raise _fail(_os_error(exc))
    except ImportError as exc:
        _LISTED_AT_THE_END.say()
        raise _import_failure(exc)
    try:
        with _reader_may_leave():
            if json_:
                d = rs.to_dict()
                d["audit_warnings"] = result.all_warnings
                d["written"] = [str(p) for p in written]
                if placed is not None:
                    d["materialized"] = {"folder": str(materialize_dir), "files": placed, "link": link.value}
                _print_json(json_text(d, indent=2) + "\n")  # odd bytes of a name as NEW.csv writes them
            elif not quiet:
                con = _Results(highlight=False)
                render_resplit(rs, con)
                con.print(_plain(f"New manifest written to {out}" + (f"; {placed} files placed under "
                                                                      f"{materialize_dir}/ ({link.value})"
                                                                      if placed is not None else "")), markup=False)
                left_out = rs.left_out_line(left_out_list(out))
                if left_out:
                    con.print(_plain(left_out), markup=False)
    finally:  # what the audit found doubtful about the pairs the split was made from, each said once
        if not json_:
            _say_audit_warnings(result)
        left_out = rs.left_out_line(left_out_list(out)) if quiet and not json_ else None
        if left_out:  # no table to say it in: on stderr
            _say(f"leakscan: {left_out}")
    # what the new split cannot fully meet (sizes, class mixes, a class it empties): the tables list it,
    # which -q does not print
    unmet = [f"cannot fully meet: {p}" for p in rs.to_dict()["problems"]] if quiet and not json_ else []
    _say_warnings(unmet + rs.leftover_warnings() + rs.group_warnings())


#: The folders this run made for --out (:func:`~leakscan.output.missing_folders`): Ctrl-C removes
#: those still empty, as a failed run does.
_MADE: list = []


def _on_sigint(signum, frame):
    """Ctrl-C ends the run at once, as a kill would: everything leakscan writes is safe against
    a kill at any moment (old or new complete result set, no partial file, workers follow).
    Raising instead is not reliable: click turns KeyboardInterrupt into exit 1 (the code of
    "leak found"), and an exception raised inside a fork or logging handler is only printed."""
    try:
        said = "".join(line + "\n" for line in _LISTED_AT_THE_END.lines())  # warnings not listed yet
        os.write(2, said.encode("utf-8", "backslashreplace")
                 + b"leakscan: error: interrupted (complete earlier results are kept; nothing half-written)\n")
        remove_empty_folders(_MADE)
    finally:
        os._exit(EXIT_USAGE)


def _check_decisions(decisions: Optional[Path]) -> None:
    """A missing or malformed decisions file stops the run before any image is decoded."""
    if decisions is not None:
        from .decisions import read_decisions  # noqa: PLC0415

        read_decisions(decisions)


def _ratio_warnings(ratios: Optional[str], current=None, keep=None) -> None:
    """Print what :func:`leakscan.split.ratio_warnings` says about --ratios."""
    from .split import ratio_warnings  # noqa: PLC0415

    _say_warnings(ratio_warnings(ratios, current, keep or ()))


def main() -> None:
    """Entry point of the ``leakscan`` command."""
    import signal  # noqa: PLC0415

    try:
        signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread
        pass
    app()
