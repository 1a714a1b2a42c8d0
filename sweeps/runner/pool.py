"""The local workers: one in this process, the others in loky processes (joblib's executor),
started early and killed once idle.

A worker process is a fresh interpreter that imports numpy, optuna and matplotlib before its first
trial, which takes seconds of CPU (benchmarks/RESULTS.md); it never imports mlflow (the
launcher's writer records its trials).
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

What the module keeps between those calls (the executor, its size, its warm-up tasks, this
process's paused collector) is one _Pool, `_pool`: one set of processes per interpreter, as loky
keeps one reusable executor.
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
from dataclasses import dataclass, field
from multiprocessing import resource_tracker as mp_tracker
from typing import Any, Callable, Iterable

from joblib.externals.loky import get_reusable_executor
# loky's own resource tracker, a module outside its public API (loky.__all__), kept: loky starts
# the tracker lazily from wherever it first needs it, and no public call lets us start it with
# SIGHUP blocked (_start_trackers). Pinned by tests/e2e/test_signals.py's
# test_sighup_to_the_whole_process_group_as_a_closed_terminal_sends_is_one_sentence.
from joblib.externals.loky.backend import resource_tracker as loky_tracker

# what joblib sets for inner_max_num_threads: the BLAS and OpenMP pools of the worker processes
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

QUIET_TRACKER = "ignore:resource_tracker:UserWarning"  # a -W filter: the tracker's warnings start so
IDLE_TIMEOUT = 300  # s: loky ends a process idle this long (and starts another for the next task)
# set when a task of the processes failed (a process died: loky then stops them all), so that
# the worker in this process stops after its trial instead of running the rest of the sweep alone
SIBLING_FAILED = threading.Event()
# for benchmarks only (benchmarks/bench_sweep.py, section 6): set, the collector is never paused
# nor the heap frozen, to measure what pause_collector() and freeze_heap() buy
NO_GC_FREEZE = "NNSWEEPS_BENCH_NO_GC_FREEZE"


@dataclass
class _Pool:
    """The worker processes of this interpreter, between start(), map(), at_once() and stop()."""

    executor: Any = None  # the last executor made: stop() kills its processes
    workers: int = 0  # the processes it was made for
    warming: list[Future] = field(default_factory=list)  # start()'s no-op tasks, done once the processes are warm
    idle_since: float = 0.0  # time.monotonic() when a process last finished a task
    collector_paused: bool = False  # pause_collector() stopped this process's collector; freeze_heap() restarts it

    def pids(self) -> list[int]:
        """The executor's worker processes. loky lists them nowhere public: its executor's
        `_processes` ({pid: process}), a private attribute kept for _interrupt(), which no public
        call can replace (a signal to the process group would reach the launcher and its
        trackers; the warm-up tasks may all land on one process). Pinned by test_pool's
        test_a_launcher_that_runs_no_worker_passes_its_interrupt_to_the_processes: if loky renames
        it, this is empty and that test fails."""
        return list(getattr(self.executor, "_processes", None) or {})

    def finished(self, _: Future) -> None:
        self.idle_since = time.monotonic()


_pool = _Pool()


def size(n_jobs: int) -> int:
    """sweep.n_jobs as a number of workers: -1 is all cores."""
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def blas_threads(n: int) -> int:
    """BLAS threads per worker: n workers x threads <= cores (oversubscribed BLAS runs several times
    slower)."""
    return max(1, (os.cpu_count() or 1) // n)


def _processes(n: int, warm: str | None, here: bool = True):
    """The loky executor of the n - 1 processes of n workers (n processes unless `here`: one
    worker runs in this process), each started by _start(warm): the same arguments, the same
    (reused) processes."""
    n = max(n - here, _pool.workers)  # a resumed sweep needs fewer: the same processes, the extra ones idle
    threads = str(blas_threads(n + here))  # the processes' start-up limit; each job sets its own as well
    with _quiet_resource_tracker():
        _pool.executor = get_reusable_executor(max_workers=n, timeout=IDLE_TIMEOUT,
                                               env={v: threads for v in THREAD_VARS},
                                               initializer=_start, initargs=(warm, os.getpid()))
    _pool.workers = n
    return _pool.executor


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


def _start(warm: str | None, launcher: int) -> None:
    """A worker process's first act: Ctrl-C ignored and the collector paused for the imports, then
    warm(launcher), named "module:function", then the heap frozen. launcher: this pid, taken
    before the imports, so that a launcher that dies during them is noticed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until warm sets its handler: not inside the imports
    pause_collector()
    if warm:
        module, _, function = warm.partition(":")
        getattr(importlib.import_module(module), function)(launcher)
    freeze_heap()


def pause_collector() -> None:
    """The garbage collector off until freeze_heap(): the start-up imports allocate hundreds of
    thousands of objects that live as long as the process, and the collector walking them again
    and again as they came is a large part of the imports' CPU (benchmarks/RESULTS.md)."""
    if gc.isenabled() and not os.environ.get(NO_GC_FREEZE):
        gc.disable()
        _pool.collector_paused = True


def freeze_heap() -> None:
    """Where pause_collector() stopped the collector (an entry point's process, a worker process):
    the modules imported by now live as long as the process, so full garbage collections skip them
    from here on (gc.freeze) instead of walking them again every few dozen trials; then the
    collector runs again. What start-up left as garbage is frozen with the rest, for good: cheaper
    than collecting it first. Nothing elsewhere: a Dask worker's heap, or a script's or notebook's
    that calls sweeps.run(), is not ours to freeze."""
    if _pool.collector_paused:
        gc.freeze()
        gc.enable()
        _pool.collector_paused = False


def start(n: int, warm: str | None = None, here: bool = True) -> None:
    """Starts the n - 1 worker processes of n workers (n unless `here`); returns at once (they
    warm up meanwhile)."""
    if n - here < 1:
        return
    executor = _processes(n, warm, here)
    _pool.warming = [executor.submit(os.getpid) for _ in range(n - here)]  # spawns them
    for f in _pool.warming:
        f.add_done_callback(_pool.finished)


def map(fn: Callable[[Any], Any], items: Iterable[Any], n: int, warm: str | None = None,
        here: bool = True) -> list[Any]:
    """[fn(item) for item in items], at the same time: the first item in this process, the others
    in the n - 1 worker processes; unless `here` (a process whose own threads must not compete
    with a trial for the interpreter: the MLflow writer's), every item in a worker process. A
    worker process that died raises loky's TerminatedWorkerError (once this process's item is
    done); then, or on an exception or Ctrl-C, the processes are killed."""
    items = list(items)
    SIBLING_FAILED.clear()  # an earlier map's (an earlier sweep of this interpreter) is not this one's
    if here and (n < 2 or len(items) < 2):
        return [fn(item) for item in items]
    executor = _processes(n, warm, here)
    futures = [executor.submit(fn, item) for item in items[here:]]
    for f in futures:
        f.add_done_callback(lambda f: f.cancelled() or f.exception() is None or SIBLING_FAILED.set())
        f.add_done_callback(_pool.finished)
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
            _interrupt()  # no worker here was interrupted with this process: the signal was its alone
        try:
            concurrent.futures.wait(futures, timeout=3)
            deadline = time.monotonic() + 2
            while not all(f.running() or f.done() for f in futures) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop()
        raise


def _interrupt() -> None:
    """SIGINT to each worker process, which only sets its INTERRUPTED (sweeps.interrupts): its trial
    stops at its next check, failed, its run KILLED, as a Ctrl-C from the terminal would do."""
    for pid in _pool.pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)


def at_once(tasks: list[Callable[[], Any]], timeout: float | None = 60) -> list[Any]:
    """[task() for task in tasks], the first in this process and the others at the same time in
    the worker processes, if they are up, warm and idle (once a sweep's trials are done), else
    all here: never waits for a process to start. The tasks after the first are pickled; one
    whose process died, or took over `timeout` seconds (None: no limit, for tasks that train),
    runs here after all."""
    warm = (_pool.executor is not None and _pool.workers >= 1 and all(f.done() for f in _pool.warming)
            and time.monotonic() - _pool.idle_since < IDLE_TIMEOUT - 10)
    if not warm or len(tasks) < 2:
        return [task() for task in tasks]
    futures = [_pool.executor.submit(task) for task in tasks[1:]]
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
    if _pool.executor is not None:
        # killing loky before it handed its start-up tasks over trips its manager thread (a
        # KeyError printed, a thread and its pipes leaked): a check that failed just after start()
        deadline = time.monotonic() + 2
        while not all(f.running() or f.done() for f in _pool.warming) and time.monotonic() < deadline:
            time.sleep(0.005)
        _pool.executor.shutdown(wait=True, kill_workers=True)
    _pool.executor, _pool.workers, _pool.warming = None, 0, []
