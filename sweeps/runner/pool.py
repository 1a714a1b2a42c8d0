"""The local workers: one in this process, the others in loky processes (joblib's executor),
started early and killed once idle.

A worker process is a fresh interpreter that imports numpy, optuna, matplotlib and, with tracking
on, mlflow and its SQLAlchemy store before its first trial, which takes seconds of CPU
(benchmarks/RESULTS.md).
So with n workers this process runs one of them itself (it has all of that imported already) and
starts n - 1 processes; `start()` launches them as soon as the config is valid, so their imports
overlap the launcher's own and the opening of the stores, and `map()` then reuses them (loky
reuses a pool whose settings are unchanged). Once the trials are done, `at_once()` gives them
part of the sweep's summary to draw, then `stop()` kills them instead of waiting for each
interpreter to tear itself down.

What the processes run is passed in: the function of `map()`, the tasks of `at_once()`, and the
`warm` function each process runs as it starts, named "module:function" (sweeps.runner.work's
warm_up) so that its module is imported only after the process has paused its garbage collector
and ignored Ctrl-C. Only the standard library and loky are imported here: the launcher's heavy
imports come after `start()`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import importlib
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future
from multiprocessing import resource_tracker as mp_tracker
from typing import Any, Callable, Iterable

from joblib.externals.loky import get_reusable_executor
from joblib.externals.loky.backend import resource_tracker as loky_tracker

# what joblib sets for inner_max_num_threads: the BLAS and OpenMP pools of the worker processes
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

QUIET_TRACKER = "ignore:resource_tracker:UserWarning"  # a -W filter: the tracker's warnings start so
_executor: Any = None  # the last executor made: stop() kills its processes
_size: tuple[int, bool] | None = None  # (workers, database) it was made for
_warming: list[Future] = []  # start()'s no-op tasks, done once the processes are warm
_paused = False  # pause_collector() stopped the garbage collector; freeze_heap() starts it again
IDLE_TIMEOUT = 300  # s: loky ends a process idle this long (and starts another for the next task)
_idle_since = 0.0  # time.monotonic() when a process last finished a task
# set when a task of the processes failed (a process died: loky then stops them all), so that
# the worker in this process stops after its trial instead of running the rest of the sweep alone
SIBLING_FAILED = threading.Event()


def size(n_jobs: int) -> int:
    """sweep.n_jobs as a number of workers: -1 is all cores."""
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def blas_threads(n: int) -> int:
    """BLAS threads per worker: n workers x threads <= cores (oversubscribed BLAS runs several times
    slower)."""
    return max(1, (os.cpu_count() or 1) // n)


def _database(tracking_uri: str | None) -> bool:
    """Whether worker processes logging to tracking_uri (None: tracking off) import MLflow's store."""
    return tracking_uri is not None and not tracking_uri.startswith(("http:", "https:", "databricks"))


def _processes(n: int, tracking_uri: str | None, warm: str | None, here: bool = True):
    """The loky executor of the n - 1 processes of n workers (n processes unless `here`: one
    worker runs in this process) logging to tracking_uri (None: tracking off, or recorded by this
    process's writer), each started by _start(warm): the same arguments, the same (reused)
    processes."""
    global _executor, _size
    database = _database(tracking_uri)
    n = n - here
    if _size is not None and _size[1] == database and n <= _size[0]:
        n = _size[0]  # a resumed sweep needs fewer: the same processes, the extra ones stay idle
    _size = (n, database)
    threads = str(blas_threads(n + here))  # the processes' start-up limit; each job sets its own as well
    with _quiet_resource_tracker():
        _executor = get_reusable_executor(max_workers=n, timeout=IDLE_TIMEOUT,
                                          env={v: threads for v in THREAD_VARS},
                                          initializer=_start, initargs=(warm, database, os.getpid()))
    return _executor


@contextlib.contextmanager
def _quiet_resource_tracker():
    """Silences the warnings of loky's resource tracker, a process started here (_start_trackers)
    from this process's environment. A worker killed by stop() may have registered a semaphore of
    the executor that this process then unlinked; at exit the tracker warns that it cannot unlink
    it again ("resource_tracker: /loky-...: FileNotFoundError"), after the command's last line,
    where it buries the sentence the user needs. Nothing is leaked: the semaphore is gone."""
    before = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [before, QUIET_TRACKER]))
    try:
        _start_trackers()
        yield
    finally:
        if before is None:
            del os.environ["PYTHONWARNINGS"]
        else:
            os.environ["PYTHONWARNINGS"] = before


def _start_trackers() -> None:
    """Starts the resource trackers loky's processes use (loky's and multiprocessing's), unless they
    run, with SIGHUP blocked, a mask they keep. They ignore Ctrl-C and SIGTERM themselves, but a
    closed terminal hangs up its whole process group: a tracker that died of it was started again
    without the semaphores it held, and printed a traceback for each one it was then told to
    forget. They still end with this process, when their pipe from it closes."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        loky_tracker.ensure_running()
        mp_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a SIGHUP meanwhile is handled now


def _start(warm: str | None, database: bool, launcher: int) -> None:
    """A worker process's first act: Ctrl-C ignored and the collector paused for the imports, then
    warm(database, launcher), named "module:function", then the heap frozen. launcher: this pid,
    taken before the imports, so that a launcher that dies during them is noticed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until warm sets its handler: not inside the imports
    pause_collector()
    if warm:
        module, _, function = warm.partition(":")
        getattr(importlib.import_module(module), function)(database, launcher)
    freeze_heap()


def pause_collector() -> None:
    """The garbage collector off until freeze_heap(): the start-up imports allocate hundreds of
    thousands of objects that live as long as the process, and the collector walking them again
    and again as they came is a large part of the imports' CPU (benchmarks/RESULTS.md)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def freeze_heap() -> None:
    """Where pause_collector() stopped the collector (an entry point's process, a worker process):
    the modules imported by now live as long as the process, so full garbage collections skip them
    from here on (gc.freeze) instead of walking them again every few dozen trials; then the
    collector runs again. What start-up left as garbage is frozen with the rest, for good: cheaper
    than collecting it first. Nothing elsewhere: a Dask worker's heap, or a script's or notebook's
    that calls sweeps.run(), is not ours to freeze."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False


def start(n: int, tracking_uri: str | None, warm: str | None = None, here: bool = True) -> None:
    """Starts the n - 1 worker processes of n workers (n unless `here`); returns at once (they
    warm up meanwhile)."""
    if n - here < 1:
        return
    executor = _processes(n, tracking_uri, warm, here)
    _warming[:] = [executor.submit(os.getpid) for _ in range(n - here)]  # spawns them
    for f in _warming:
        f.add_done_callback(_finished)


def _finished(_: Future) -> None:
    global _idle_since
    _idle_since = time.monotonic()


def map(fn: Callable[[Any], Any], items: Iterable[Any], n: int, tracking_uri: str | None = None,
        warm: str | None = None, here: bool = True) -> list[Any]:
    """[fn(item) for item in items], at the same time: the first item in this process, the others
    in the n - 1 worker processes; unless `here` (a process whose own threads must not compete
    with a trial for the interpreter: the MLflow writer's), every item in a worker process. A
    worker process that died raises loky's TerminatedWorkerError (once this process's item is
    done); then, or on an exception or Ctrl-C, the processes are killed."""
    items = list(items)
    SIBLING_FAILED.clear()  # an earlier map's (an earlier sweep of this interpreter) is not this one's
    if here and (n < 2 or len(items) < 2):
        return [fn(item) for item in items]
    executor = _processes(n, tracking_uri, warm, here)
    futures = [executor.submit(fn, item) for item in items[here:]]
    for f in futures:
        f.add_done_callback(lambda f: f.cancelled() or f.exception() is None or SIBLING_FAILED.set())
        f.add_done_callback(_finished)
    try:
        first = [fn(items[0])] if here else []
        # the first failure as soon as it comes, not after the items before it: another worker
        # may wait on what the failure stopped (the MLflow writer of this process)
        concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
        return [*first, *(f.result() for f in futures)]
    except BaseException:
        # A Ctrl-C from the terminal reached the processes too: they end their trials as
        # interrupted (failed, runs KILLED) in a moment (a SIGTERM or SIGHUP to the launcher alone
        # did not: their trials run on). Then kill them all; a trial a process still ran is failed
        # and queued again by the launcher's tidy(). (Killing loky before it handed an item
        # over would trip its manager thread: hence the second wait.)
        if not here and isinstance(sys.exc_info()[1], KeyboardInterrupt):
            _interrupt(executor)  # no worker here was interrupted with this process: the signal was its alone
        try:
            concurrent.futures.wait(futures, timeout=3)
            deadline = time.monotonic() + 2
            while not all(f.running() or f.done() for f in futures) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop()
        raise


def _interrupt(executor: Any) -> None:
    """SIGINT to each worker process, which only sets its INTERRUPTED (sweeps.interrupts): its trial
    stops at its next check, failed, its run KILLED, as a Ctrl-C from the terminal would do. The
    processes are loky's record of them: a private attribute, since loky lists them nowhere else."""
    for pid in list(getattr(executor, "_processes", {}) or {}):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)


def at_once(tasks: list[Callable[[], Any]], tracking_uri: str | None, timeout: float | None = 60) -> list[Any]:
    """[task() for task in tasks], the first in this process and the others at the same time in
    the worker processes, if they are up, warm and idle (once a sweep's trials are done), else
    all here: never waits for a process to start. The tasks after the first are pickled; one
    whose process died, or took over `timeout` seconds (None: no limit, for tasks that train),
    runs here after all."""
    warm = (_executor is not None and _size is not None and _size[1] == _database(tracking_uri) and _size[0] >= 1
            and all(f.done() for f in _warming) and time.monotonic() - _idle_since < IDLE_TIMEOUT - 10)
    if not warm or len(tasks) < 2:
        return [task() for task in tasks]
    futures = [_executor.submit(task) for task in tasks[1:]]
    try:
        out = [tasks[0]()]
    except BaseException:
        concurrent.futures.wait(futures, timeout=2)  # a Ctrl-C: let them finish their files first
        raise
    for task, f in zip(tasks[1:], futures):
        try:
            out.append(f.result(timeout=timeout))
        except (concurrent.futures.BrokenExecutor, concurrent.futures.TimeoutError):  # died, or stuck
            out.append(task())
    return out


def stop() -> None:
    """Kills the worker processes (their results are stored) and waits for them to go."""
    global _executor, _size
    if _executor is not None:
        # killing loky before it handed its start-up tasks over trips its manager thread (a
        # KeyError printed, a thread and its pipes leaked): a check that failed just after start()
        deadline = time.monotonic() + 2
        while not all(f.running() or f.done() for f in _warming) and time.monotonic() < deadline:
            time.sleep(0.005)
        _executor.shutdown(wait=True, kill_workers=True)
    _executor = _size = None
    _warming.clear()
