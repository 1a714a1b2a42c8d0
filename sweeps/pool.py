"""The local worker processes: joblib's loky pool, started early and stopped at once.

A loky worker is a fresh interpreter that imports numpy, optuna, mlflow and matplotlib before its
first trial: about 1.4 s of CPU each. `start()` launches the pool in the background as soon as
the config is valid, so those imports overlap the launcher's own (and the MLflow store's
creation); `run_workers` then reuses the same processes, because joblib reuses a pool whose
settings (`settings()`) are unchanged. `stop()` kills the idle workers once the trials are done,
instead of waiting for each interpreter to tear itself down (about 1 s).

Only joblib is imported here: the launcher's heavy imports come after `start()`.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterable

from joblib import Parallel, delayed, parallel_config

_warming: threading.Thread | None = None
_started = False  # a loky pool may be running: stop() has something to stop


def size(n_jobs: int) -> int:
    """sweep.n_jobs as a number of processes: -1 is all cores."""
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def blas_threads(n: int) -> int:
    """BLAS threads per worker: n workers x threads <= cores (oversubscribed BLAS ran 4-10 x slower)."""
    return max(1, (os.cpu_count() or 1) // n)


def settings(n: int, tracking_uri: str | None) -> dict:
    """joblib's backend settings for n local workers logging to tracking_uri (None: tracking off):
    the same settings, the same (reused) pool."""
    database = tracking_uri is not None and not tracking_uri.startswith(("http:", "https:", "databricks"))
    return {"backend": "loky", "inner_max_num_threads": blas_threads(n), "initializer": warm_up,
            "initargs": (database,)}


def warm_up(database: bool) -> None:
    """Each worker process, as it starts: the imports of a trial, matplotlib's font, and for a
    database tracking URI MLflow's SQLAlchemy store (imports and ORM set-up, 0.6 s of the first
    MlflowClient; the store itself may not exist yet)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sweeps import worker  # noqa: F401  (imports mlflow, optuna, nncore, the plots)

    fig = Figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0.1")  # loads the font, ~0.1 s of the first figure
    FigureCanvasAgg(fig).draw()
    if database:
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        from sqlalchemy.orm import configure_mappers

        configure_mappers()


def start(n: int, tracking_uri: str | None) -> None:
    """Starts n worker processes in a background thread; a no-op for n < 2 (joblib then runs the
    trials in this process)."""
    global _warming, _started
    if n < 2:
        return
    _started = True

    def launch() -> None:
        try:
            with parallel_config(**settings(n, tracking_uri)):
                Parallel(n_jobs=n)(delayed(os.getpid)() for _ in range(n))
        except Exception:  # the sweep starts its pool again and reports what goes wrong there
            pass

    _warming = threading.Thread(target=launch, name="nnsweeps-pool-start", daemon=True)
    _warming.start()


def map(fn: Callable[[Any], Any], items: Iterable[Any], n: int, tracking_uri: str | None = None) -> list[Any]:
    """[fn(item) for item in items] on n local worker processes (in this process when n is 1)."""
    global _started
    _started = _started or n > 1
    if _warming is not None:
        _warming.join()  # start()'s pool: two Parallel calls at once would each resize it
    with parallel_config(**settings(n, tracking_uri)):
        return Parallel(n_jobs=n)(delayed(fn)(item) for item in items)


def stop() -> None:
    """Kills the pool's idle worker processes (their results are stored) and waits for them to go."""
    global _started
    if not _started:
        return
    from joblib.externals.loky import get_reusable_executor

    if _warming is not None:
        _warming.join()
    executor = get_reusable_executor(reuse=True)
    # joblib's terminate also removes the pool's shared-memory folders, which kill_workers leaves
    getattr(executor, "terminate", executor.shutdown)(kill_workers=True)
    _started = False
