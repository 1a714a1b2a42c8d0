"""What `python -m sweeps` and `python -m sweeps.worker` share: quiet libraries, and every
failure a user can cause as one sentence and an exit code instead of a traceback."""

from __future__ import annotations

import atexit
import logging
import os
import sys
from typing import Callable, TypeVar

import optuna

from sweeps.config import ConfigError

T = TypeVar("T")

# before mlflow is imported: no download bars for the artifacts the summary reads back
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class SweepStopped(RuntimeError):
    """The sweep stopped before its budget: too many failures in a row."""


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
        print(f"\n{interrupted}", file=sys.stderr)
        sys.exit(130)
