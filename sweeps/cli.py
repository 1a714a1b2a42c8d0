"""What `python -m sweeps` and `python -m sweeps.worker` share: quiet libraries, and every
failure a user can cause as one sentence and an exit code instead of a traceback."""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable, TypeVar

import optuna

from sweeps.config import ConfigError

T = TypeVar("T")

# before mlflow is imported: no download bars for the artifacts the summary reads back
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def guarded(action: Callable[[], T], interrupted: str) -> T:
    """Runs action(); ConfigError exits 2, a stopped sweep 1, Ctrl-C 130 with `interrupted`."""
    from sweeps.launcher import SweepStopped  # the launcher imports the workers, which import this

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the status line says what matters
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        return action()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except SweepStopped as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        sys.exit(130)
