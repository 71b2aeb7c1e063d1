"""Where chunks of work run: in this process, in a pool of worker processes, or on a Dask cluster.

This module knows nothing about images: it maps a picklable function over a list of tasks
and hands back each result with the position of its task. What a task computes is the
caller's business (:mod:`leakscan.features` says what to compute per chunk).
"""

from __future__ import annotations

import collections
import ctypes
import itertools
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator

from .errors import ConfigError, LeakscanError

log = logging.getLogger(__name__)
#: Why worker processes could not be started, once they could not (then every later run of
#: this process stays in it, and says so once).
_NO_POOL: list = []

__all__ = ["default_jobs", "check_jobs", "run_chunks", "map_threads", "one_ahead", "die_with_parent", "even_blocks",
           "MAX_JOBS_PER_CORE", "WAIT_ENV", "wait_for_workers"]


def default_jobs() -> int:
    """Every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: The most worker processes per core: more than one can pay where the files come over a network
#: (a worker waits on the read), but each costs memory and start time, and ``-j 100000`` is a typo.
MAX_JOBS_PER_CORE = 4


def check_jobs(jobs: int | None) -> int:
    """``jobs`` as a whole number of worker processes (default: :func:`default_jobs`), from 1 to
    :data:`MAX_JOBS_PER_CORE` per core."""
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1 (worker processes), got {jobs}", keyword="jobs")
    cores = default_jobs()
    if jobs > MAX_JOBS_PER_CORE * cores:
        raise ConfigError(f"jobs must be at most {MAX_JOBS_PER_CORE * cores} ({MAX_JOBS_PER_CORE} worker processes "
                          f"per core, {cores} cores here), got {jobs}", keyword="jobs")
    return jobs


def _one_thread(maker: int | None = None, maker_is_parent: bool = True) -> None:
    """The pool's initializer: worker processes compute with one thread each (the pool is the
    parallelism) and end when ``maker``, the process that made the pool, dies, even by kill -9
    (:func:`die_with_parent`)."""
    die_with_parent(maker, maker_is_parent=maker_is_parent)
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 - declared dependency, best effort

        threadpool_limits(1)
    except Exception:  # pragma: no cover - best effort
        pass


def die_with_parent(parent: int | None = None, *, maker_is_parent: bool = True) -> None:
    """Make this (worker) process end when its parent dies, even by kill -9.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; elsewhere a daemon thread watches the parent
    id. Called in the pool initializer, with ``parent`` the id of the process that made the
    pool: one killed before a worker got this far has left it adopted, and its parent id then
    is no longer the pool's (the worker ends at once; asked for its parent id here, it would
    wait for work forever). Workers also ignore Ctrl-C (SIGINT reaches the whole process
    group): the parent handles it and shuts the pool down.

    ``maker_is_parent`` False: the worker was forked by a fork server (Python 3.14's default
    start method on Linux), which lives as long as any worker does (each holds its pipe); a
    thread then watches ``parent`` itself, through a pidfd where Linux has them.
    """
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass
    if not maker_is_parent and parent is not None:
        _watch_maker(parent)
        return
    parent = os.getppid() if parent is None else parent
    if os.getppid() != parent:  # the pool's maker died before this worker started
        os._exit(1)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="leakscan-parent-watch", daemon=True).start()


def _watch_maker(maker: int) -> None:
    """End this process when process ``maker`` (not its parent) ends: a thread waits on a pidfd
    of it, or else looks every second whether it still runs."""
    import select  # noqa: PLC0415 - only workers of a fork server

    try:
        fd = os.pidfd_open(maker)
    except ProcessLookupError:  # ended already
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd (not Linux 5.3+): look every second
        fd = None

    def watch() -> None:
        if fd is not None:
            ended = select.poll()
            ended.register(fd, select.POLLIN)  # readable once the process has ended
            ended.poll()
            os._exit(1)
        while True:
            time.sleep(1.0)
            try:
                os.kill(maker, 0)
            except ProcessLookupError:
                os._exit(1)
            except OSError:  # alive, another user's: not ours to signal
                pass

    threading.Thread(target=watch, name="leakscan-maker-watch", daemon=True).start()


#: Tasks handed out ahead of the results, per worker: a task (and its inputs) is made only when
#: a worker will soon take it, so memory holds a few tasks whatever their number.
AHEAD = 2


def even_blocks(n: int, block: int, jobs: int = 1) -> list[slice]:
    """``n`` items in blocks of at most ``block``, as few as can be and all of one size (within
    one); when there is more than one, their number is a multiple of ``jobs``: no worker is
    left with the one short block while another works through a full one. What fits in one
    block stays one (it runs in this process: no pool to start for a few items).

    >>> [(s.start, s.stop) for s in even_blocks(5934, 2048, jobs=2)]
    [(0, 1484), (1484, 2967), (2967, 4450), (4450, 5934)]
    >>> len(even_blocks(300, 2048, jobs=2))
    1
    """
    if n <= 0:
        return []
    count = -(-n // max(1, block))
    if jobs > 1 and count > 1:
        count = -(-count // jobs) * jobs
    edges = [round(k * n / count) for k in range(count + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def map_threads(fn: Callable, items: Iterable, jobs: int = 1) -> list:
    """``[fn(x) for x in items]`` on ``jobs`` threads, in order: for work in libraries that
    release the GIL (OpenCV, Pillow), where a process pool would copy the inputs.

    >>> map_threads(abs, [-1, 2, -3], jobs=2)
    [1, 2, 3]
    """
    items = list(items)
    if jobs <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(fn, items))


def one_ahead(fn: Callable, items: Iterable) -> Iterator:
    """``fn(x)`` for each of ``items`` in order, the next one computed on a thread while the
    caller works on this one: for a loop that alternates numpy work (which releases the GIL) with
    a search that leaves a core idle part of the time.

    >>> list(one_ahead(abs, [-1, 2, -3]))
    [1, 2, 3]
    """
    items = list(items)
    if not items:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        coming = pool.submit(fn, items[0])
        for nxt in items[1:]:
            done, coming = coming.result(), pool.submit(fn, nxt)
            yield done
        yield coming.result()


def _cluster_error(exc: Exception, key) -> LeakscanError:
    """A task that failed on a Dask cluster (the scheduler gone, workers killed, another
    environment there) as one line naming the reason."""
    text = " ".join(str(exc).replace(str(key), "a task").split()) or "no reason given"
    if len(text) > 400:
        text = text[:400] + "..."
    return LeakscanError(f"the Dask cluster failed: {type(exc).__name__}: {text}")


#: Seconds a run waits for workers to join a scheduler that lost all of its own mid-run (workers
#: killed with no nanny to restart them) before it ends, unless :data:`WAIT_ENV` says otherwise
#: (:func:`wait_for_workers`). A scheduler that has none at the start is waited for without
#: end: an adaptive cluster starts its workers once tasks come.
WAIT_FOR_WORKERS = 600.0
WAIT_ENV = "LEAKSCAN_DASK_WAIT"


def wait_for_workers() -> float:
    """The seconds to wait for lost workers: ``$LEAKSCAN_DASK_WAIT``, else :data:`WAIT_FOR_WORKERS`
    (``inf``: without end). A :class:`ConfigError` for a value that is not a number of seconds."""
    given = os.environ.get(WAIT_ENV, "")
    if not given.strip():
        return WAIT_FOR_WORKERS
    try:
        seconds = float(given)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:
        raise ConfigError(f"{WAIT_ENV} must be a number of seconds (0 or more, such as 600), got {given!r}")
    return seconds


class _Workers:
    """Watches that a Dask scheduler has workers for the tasks waiting on it."""

    def __init__(self, client) -> None:
        self.client = client
        self.wait = wait_for_workers()
        self.seen = False  # workers seen during this run: losing them all is a failure, not a slow start
        self.none_since: float | None = None

    def threads(self) -> int:
        """The scheduler's worker threads now. With none: a warning that the run waits (once each
        time the workers run out); a :class:`LeakscanError` once they were lost and none joined
        in :func:`wait_for_workers` seconds."""
        if self.client.status != "running":  # the scheduler lost: the tasks fail and say so
            return 0
        try:
            threads = sum(self.client.nthreads().values())
        except OSError:  # the scheduler unreachable: likewise
            return 0
        if threads:
            self.seen, self.none_since = True, None
            return threads
        address = getattr(self.client.scheduler, "address", "?")
        if self.none_since is None:
            self.none_since = time.monotonic()
            if self.seen:
                log.warning("the Dask scheduler at %s has no workers left: waiting up to %g s for some to join "
                            "(Ctrl-C stops)", address, self.wait)
            else:
                log.warning("the Dask scheduler at %s has no workers: waiting for some to join (Ctrl-C stops)",
                            address)
        elif self.seen and time.monotonic() - self.none_since > self.wait:
            raise LeakscanError(f"the Dask cluster failed: the scheduler at {address} lost all its workers and "
                                f"none joined in {self.wait:g} s")
        return 0


def _as_completed(running, idle: Callable[[], object]) -> Iterator:
    """The futures of ``running`` (a ``distributed.as_completed``) as they complete; ``idle()``
    is called every second while none does."""
    quiet_since = time.monotonic()
    while not running.is_empty():
        done = running.next_batch(block=False)
        if done:
            yield from done
            quiet_since = time.monotonic()
            continue
        time.sleep(0.05)  # as_completed itself polls, every 0.1 s
        if time.monotonic() - quiet_since >= 1.0:
            idle()
            quiet_since = time.monotonic()


def _start_pool(jobs: int) -> ProcessPoolExecutor | None:
    """A pool of ``jobs`` worker processes, started now; None (and a warning) when they cannot be:
    no writable /dev/shm, no semaphores, or a worker that cannot be made (too many open files for
    ``ulimit -n``, too many processes for ``ulimit -u``). Workers made before the one that failed
    are ended: left waiting for work, they would keep this process from exiting."""
    before = set(multiprocessing.active_children())
    pool = None
    try:
        context = multiprocessing.get_context()
        # a worker's parent is this process, except under forkserver (Python 3.14's default on Linux):
        # there it is the fork server, and the worker must watch this process itself
        by_server = context.get_start_method() == "forkserver"
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_one_thread,
                                   initargs=(os.getpid(), not by_server))
        pool.submit(int)  # the workers are made here, not at the first chunk's submit
        return pool
    except (OSError, ImportError, NotImplementedError, RuntimeError) as exc:  # RuntimeError: can't start new thread
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        for child in set(multiprocessing.active_children()) - before:
            child.terminate()
            child.join(5)
        log.warning("cannot start %d worker processes (%s); running in this one process", jobs, exc)
        _NO_POOL.append(str(exc))
        return None


def _result(fut):
    """The result of a worker process's task; a worker that died (killed by the system for want of
    memory, a limit such as ``ulimit -v``, a crash in a library) is one line, not a traceback."""
    try:
        return fut.result()
    except BrokenProcessPool:
        raise _worker_died() from None


def _submitted(pool, fn, task):
    """``pool.submit(fn, task)``; a pool a worker already died in is the same one line as in
    :func:`_result` (the next task may be handed over before any result is asked for)."""
    try:
        return pool.submit(fn, task)
    except BrokenProcessPool:
        raise _worker_died() from None


def _worker_died() -> LeakscanError:
    return LeakscanError("a worker process ended abruptly (killed, most likely for want of memory: the "
                         "system's out-of-memory killer or a limit such as ulimit -v); try fewer --jobs or a "
                         "smaller --max-file-size")


def run_chunks(fn: Callable, tasks: Iterable, *, jobs: int = 1, client=None) -> Iterator[tuple[int, object]]:
    """``(position, fn(task))`` for every task (``position``: its place in ``tasks``).

    ``tasks`` may be a generator: it is drawn from as workers free up, at most
    :data:`AHEAD` tasks per worker ahead of the results, so tasks that carry their data (image
    bytes) are built only when needed. Serial when ``jobs == 1`` or there is one task; a
    process pool of ``jobs`` workers (one thread each) otherwise, results in task order; with
    a ``dask.distributed.Client``, on its workers, results as they complete (only the results
    travel back).
    """
    it = iter(tasks)
    if client is None and jobs == 1:
        for k, task in enumerate(it):
            yield k, fn(task)
        return
    head = list(itertools.islice(it, 2))
    if not head:
        return
    it = itertools.chain(head, it)
    if client is not None:
        from distributed import as_completed  # noqa: PLC0415 - optional extra

        workers = _Workers(client)  # no worker to run the tasks: the run says it waits, not silent
        window = AHEAD * max(1, workers.threads())
        position = {}
        running = as_completed()
        numbered = enumerate(it)

        def submit(count: int) -> None:
            for k, task in itertools.islice(numbered, count):
                fut = client.submit(fn, task, pure=False)
                position[fut.key] = k
                running.add(fut)

        submit(window)
        for fut in _as_completed(running, workers.threads):
            try:
                value = fut.result()
            except LeakscanError:  # a task's own (a model that cannot run): as it says
                raise
            except Exception as exc:  # the cluster's failure (the tasks catch their own): one line
                raise _cluster_error(exc, fut.key) from exc
            yield position.pop(fut.key), value
            fut.release()
            submit(1)
    elif len(head) <= 1:
        for k, task in enumerate(it):
            yield k, fn(task)
    else:
        pool = None if _NO_POOL else _start_pool(jobs)
        if pool is None:
            for k, task in enumerate(it):
                yield k, fn(task)
            return
        with pool:
            pending: collections.deque = collections.deque()
            k = 0
            try:
                for task in it:
                    pending.append(_submitted(pool, fn, task))
                    if len(pending) >= AHEAD * jobs:
                        yield k, _result(pending.popleft())
                        k += 1
                while pending:
                    yield k, _result(pending.popleft())
                    k += 1
            finally:  # stopped early (an error, the consumer gone): drop what has not started
                for fut in pending:
                    fut.cancel()
