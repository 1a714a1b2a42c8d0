"""What a sweep turns off in its libraries, through the environment and warning filters: for the
whole process where the process is ours (the commands, the worker processes: everywhere()), for
the time of one call where it is a program's (sweeps.run, sweeps.reproduce: scoped()), so that
`import sweeps` and a notebook keep their own."""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Iterator

from optuna.exceptions import ExperimentalWarning

# MLflow reads these as it runs: no download bars for the artifacts the summary reads back, and no
# "View run ... at: http://..." line for every run ended on a tracking server (hundreds of lines
# from the workers, where the status line says what matters). A user's own value wins.
ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def _filters() -> None:
    # Heartbeats are experimental in Optuna and meant for study.optimize(); the workers use
    # ask/tell and beat themselves (sweeps.study.budget.heartbeat), so these say nothing to a user.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    warnings.filterwarnings("ignore", message=r".*(fail_stale_trials|RetryHeartbeatStaleTrialCallback|heartbeat_interval)",
                            category=ExperimentalWarning)


def everywhere() -> None:
    """For the rest of this process: a command's, or a worker process's as it starts."""
    for name, value in ENV.items():
        os.environ.setdefault(name, value)
    _filters()


@contextlib.contextmanager
def scoped() -> Iterator[None]:
    """For the time of the block only: the environment and warning filters are restored after."""
    before = {name: os.environ.get(name) for name in ENV}
    with warnings.catch_warnings():
        everywhere()
        try:
            yield
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
