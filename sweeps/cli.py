"""What `python -m sweeps` and `python -m sweeps.worker` share: quiet libraries, and every
failure a user can cause as one sentence and an exit code instead of a traceback."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Callable, Iterator, TypeVar

import optuna

from sweeps.config import ConfigError

T = TypeVar("T")

# before mlflow is imported: no download bars for the artifacts the summary reads back
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


# Ctrl-C. By default Python raises KeyboardInterrupt wherever the main thread is: in the middle
# of an SQLAlchemy finalizer (which then drops it, "Exception ignored in", leaving a connection
# in its transaction and the SQLite store locked) or of a journal write. Where a worker runs
# (interrupts_deferred) the first Ctrl-C only sets INTERRUPTED, and the worker stops at its
# next check_interrupt(): between trials and at each recorded cost of a training, within
# milliseconds; a second Ctrl-C raises at once.
INTERRUPTED = threading.Event()
_deferred = 0  # > 0 inside interrupts_deferred()
_never_raise = False  # a worker process: Ctrl-C only ever sets INTERRUPTED


def _on_sigint(signum, frame) -> None:
    first = not INTERRUPTED.is_set()
    INTERRUPTED.set()
    if _never_raise or (_deferred and first):
        return
    raise KeyboardInterrupt


def _unraisable(hook: "sys.UnraisableHookArgs") -> None:
    if hook.exc_type is not None and issubclass(hook.exc_type, KeyboardInterrupt):
        return  # a Ctrl-C dropped in a finalizer: INTERRUPTED keeps it, no traceback
    sys.__unraisablehook__(hook)


def handle_interrupts(worker_process: bool = False) -> None:
    """This process's Ctrl-C as above; a worker process's never raises (sweeps.pool.warm_up)."""
    global _never_raise
    _never_raise = worker_process
    if threading.current_thread() is threading.main_thread():  # where Python runs signal handlers
        signal.signal(signal.SIGINT, _on_sigint)
        sys.unraisablehook = _unraisable


def check_interrupt() -> None:
    """Raises KeyboardInterrupt once Ctrl-C was pressed (see INTERRUPTED)."""
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """In the block a first Ctrl-C only sets INTERRUPTED, for check_interrupt() to act on."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1


class SweepStopped(RuntimeError):
    """The sweep stopped before its budget: too many failures in a row."""


def start_workers(cfg, local: bool = True) -> None:
    """Checks the config, then (local) starts the worker processes before the heavy imports of
    `python -m sweeps` and `python -m sweeps.worker`: a config that fails starts no process."""
    from sweeps import pool
    from sweeps.config import validate

    validate(cfg)
    if local:
        pool.start(min(pool.size(cfg.sweep.n_jobs), cfg.sweep.n_trials),
                   cfg.tracking.uri if cfg.tracking.enabled else None)


def exit_now(code: int = 0) -> None:
    """Ends a finished command without the interpreter's teardown of mlflow, SQLAlchemy, pandas
    and matplotlib (0.5-1.3 s measured): every store was written by then, the atexit handlers
    run and the terminal is flushed here. Only for the normal end: errors exit the usual way."""
    atexit._run_exitfuncs()  # joblib's folder clean-up, logging's flush: about 1 ms
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def guarded(action: Callable[[], T], interrupted: str) -> T:
    """Runs action(); ConfigError exits 2, a stopped sweep 1, Ctrl-C 130 with `interrupted`."""
    from sweeps import pool

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the status line says what matters
    INTERRUPTED.clear()  # a Ctrl-C of an earlier command in this process is not this one's
    handle_interrupts()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        return action()
    except ConfigError as err:
        pool.stop()  # started early, before the checks that read the data and the stores
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except SweepStopped as err:
        pool.stop()
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pool.stop()  # any worker process left (it was asked to stop): not waited for at exit
        print(f"\n{interrupted}", file=sys.stderr)
        sys.exit(130)
