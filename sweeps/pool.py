"""The local workers: one in this process, the others in loky processes (joblib's executor),
started early and killed once idle.

A worker process is a fresh interpreter that imports numpy, optuna, mlflow, matplotlib and
MLflow's SQLAlchemy store before its first trial: about 2.5 s of CPU. So with n workers this
process runs one of them itself (it has all of that imported already) and starts n - 1
processes; `start()` launches them as soon as the config is valid, so their imports overlap
the launcher's own and the opening of the stores, and `map()` then reuses them (loky reuses a
pool whose settings are unchanged). Once the trials are done, `at_once()` gives them part of the
sweep's summary to draw, then `stop()` kills them instead of waiting for each interpreter to
tear itself down (about 1 s).

Only the standard library and loky are imported here: the launcher's heavy imports come after
`start()`.
"""

from __future__ import annotations

import concurrent.futures
import gc
import os
import signal
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Iterable

from joblib.externals.loky import get_reusable_executor

# what joblib sets for inner_max_num_threads: the BLAS and OpenMP pools of the worker processes
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

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
    """BLAS threads per worker: n workers x threads <= cores (oversubscribed BLAS ran 4-10 x slower)."""
    return max(1, (os.cpu_count() or 1) // n)


def _database(tracking_uri: str | None) -> bool:
    """Whether worker processes logging to tracking_uri (None: tracking off) import MLflow's store."""
    return tracking_uri is not None and not tracking_uri.startswith(("http:", "https:", "databricks"))


def _processes(n: int, tracking_uri: str | None):
    """The loky executor of n - 1 processes for n workers logging to tracking_uri (None: tracking
    off): the same arguments, the same (reused) processes."""
    global _executor, _size
    database = _database(tracking_uri)
    if _size is not None and _size[1] == database and n <= _size[0]:
        n = _size[0]  # a resumed sweep needs fewer: the same processes, the extra ones stay idle
    _size = (n, database)
    threads = str(blas_threads(n))  # the processes' start-up limit; each job sets its own as well
    _executor = get_reusable_executor(max_workers=n - 1, timeout=IDLE_TIMEOUT, env={v: threads for v in THREAD_VARS},
                                      initializer=warm_up, initargs=(database,))
    return _executor


def warm_up(database: bool) -> None:
    """Each worker process, as it starts: the imports of a trial, matplotlib's font, and for a
    database tracking URI MLflow's SQLAlchemy store (imports and ORM set-up, 0.6 s of the first
    MlflowClient; the store itself may not exist yet)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until handle_interrupts: not inside the imports
    pause_collector()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sweeps import worker  # noqa: F401  (imports mlflow, optuna, nncore, the plots)
    from sweeps.cli import handle_interrupts

    # a Ctrl-C stops this process's trial at its next check, and never raises elsewhere: idle in
    # loky's queue an exception would break the pool and kill the other workers mid-write.
    # The launcher kills the processes once they are done, or 3 s after its own Ctrl-C.
    handle_interrupts(worker_process=True)

    fig = Figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0.1")  # loads the font, ~0.1 s of the first figure
    FigureCanvasAgg(fig).draw()
    if database:
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        from sqlalchemy.orm import configure_mappers

        configure_mappers()
    freeze_heap()


def pause_collector() -> None:
    """The garbage collector off until freeze_heap(): the imports allocate ~300,000 objects that
    live as long as the process, and the collector walking them again and again as they came took
    0.4-0.5 s of CPU (1.5 vs 1.1 s for optuna, matplotlib, mlflow and its store)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def freeze_heap() -> None:
    """The modules imported by now live as long as the process: full garbage collections skip
    them from here on (gc.freeze) instead of walking their ~330,000 objects, 0.2 s each time, about
    once every 30 trials with tracking on. Then the collector runs again if pause_collector() had
    stopped it. What start-up left as garbage (~6,000 objects, measured) is frozen with the rest,
    for good: collecting it first would take 0.26 s. For the processes started here and this one
    only: a Dask worker's heap is not ours to freeze."""
    global _paused
    gc.freeze()
    if _paused:
        gc.enable()
        _paused = False


def start(n: int, tracking_uri: str | None) -> None:
    """Starts the n - 1 worker processes of n workers; returns at once (they warm up meanwhile)."""
    if n < 2:
        return
    executor = _processes(n, tracking_uri)
    _warming[:] = [executor.submit(os.getpid) for _ in range(n - 1)]  # spawns them
    for f in _warming:
        f.add_done_callback(_finished)


def _finished(_: Future) -> None:
    global _idle_since
    _idle_since = time.monotonic()


def map(fn: Callable[[Any], Any], items: Iterable[Any], n: int, tracking_uri: str | None = None) -> list[Any]:
    """[fn(item) for item in items], at the same time: the first item in this process, the others
    in the n - 1 worker processes. A worker process that died raises loky's TerminatedWorkerError
    (once this process's item is done); then, or on an exception or Ctrl-C, the processes are killed."""
    items = list(items)
    if n < 2 or len(items) < 2:
        return [fn(item) for item in items]
    executor = _processes(n, tracking_uri)
    SIBLING_FAILED.clear()
    futures = [executor.submit(fn, item) for item in items[1:]]
    for f in futures:
        f.add_done_callback(lambda f: f.cancelled() or f.exception() is None or SIBLING_FAILED.set())
        f.add_done_callback(_finished)
    try:
        first = fn(items[0])
        return [first, *(f.result() for f in futures)]
    except BaseException:
        # A Ctrl-C from the terminal reached the processes too: they end their trials as
        # interrupted (failed, runs KILLED) in a moment. Then kill them all; a trial a process
        # still ran is failed by the launcher's tidy(). (Killing loky before it handed an item
        # over would trip its manager thread: hence the second wait.)
        try:
            concurrent.futures.wait(futures, timeout=3)
            deadline = time.monotonic() + 2
            while not all(f.running() or f.done() for f in futures) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop()
        raise


def at_once(tasks: list[Callable[[], Any]], tracking_uri: str | None) -> list[Any]:
    """[task() for task in tasks], the first in this process and the others at the same time in
    the worker processes, if they are up, warm and idle (once a sweep's trials are done), else
    all here: never waits for a process to start. The tasks after the first are pickled; one
    whose process died, or took over a minute, runs here after all."""
    warm = (_executor is not None and _size is not None and _size[1] == _database(tracking_uri) and _size[0] >= 2
            and all(f.done() for f in _warming) and time.monotonic() - _idle_since < IDLE_TIMEOUT - 10)
    if not warm or len(tasks) < 2:
        return [task() for task in tasks]
    futures = [_executor.submit(_call, task) for task in tasks[1:]]
    try:
        out = [tasks[0]()]
    except BaseException:
        concurrent.futures.wait(futures, timeout=2)  # a Ctrl-C: let them finish their files first
        raise
    for task, f in zip(tasks[1:], futures):
        try:
            out.append(f.result(timeout=60))
        except (concurrent.futures.BrokenExecutor, concurrent.futures.TimeoutError):  # died, or stuck
            out.append(task())
    return out


def _call(task: Callable[[], Any]) -> Any:
    return task()


def stop() -> None:
    """Kills the worker processes (their results are stored) and waits for them to go."""
    global _executor, _size
    if _executor is not None:
        _executor.shutdown(wait=True, kill_workers=True)
    _executor = _size = None
    _warming.clear()
