"""What the command-line entry points share (`nnsweeps sweep`, `nnsweeps worker`): quiet
libraries, the worker processes started as soon as the config is valid, and every failure a user
can cause as one sentence and an exit code instead of a traceback."""

from __future__ import annotations

import errno
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from sweeps.config.overrides import explain
from sweeps.config.space import SearchSpace
from sweeps.errors import ConfigError, SweepStopped
from sweeps.interrupts import clear, exit_code, handle_interrupts, signal_name
from sweeps.runner import pool
from sweeps.runner.checks import validate
from sweeps.urls import redact

logger = logging.getLogger(__name__)
T = TypeVar("T")
# what the worker processes run as they start (sweeps.runner.pool._start), by name: this module is
# imported before they start, and that one imports the trial's modules (never mlflow)
WARM_UP = "sweeps.runner.work:warm_up"


def quiet_libraries() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the status line says what matters
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # its SQL errors (a full disk, a locked database) come back to us as exceptions: said once, by us
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def start_workers(cfg, local: bool = True) -> SearchSpace:
    """Checks the config (once per launch: the session is handed the search space it returns),
    then (local) starts the worker processes before the heavy imports of the session: a config
    that fails starts no process."""
    space = validate(cfg)
    if local:
        # the workers never import mlflow: the session's writer records their trials, from a thread
        # of this process, which then runs no worker itself (sweeps.runner.drive.run_workers)
        pool.start(min(pool.size(cfg.sweep.n_jobs), cfg.sweep.n_trials), WARM_UP, here=not cfg.tracking.enabled)
    return space


def run_cli(main: Callable[[], Any], argv: list[str]) -> None:
    """Runs a @hydra.main entry point on the command line `argv`; an override that does not compose
    is one sentence and exit 2 (HYDRA_FULL_ERROR hands us Hydra's exception instead of its printed
    text and exit 1)."""
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv[1:] = argv  # where @hydra.main reads its command line
    try:
        main()
    except (HydraException, OmegaConfBaseException) as err:
        logger.error(f"error: {explain(argv, err)}")
        sys.exit(2)
    except OSError as err:
        # Hydra makes its output folder (hydra.run.dir) and log file before the command runs;
        # the stores' folders are checked by the command itself (sweeps.runner.checks)
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        logger.error(f"error: {err.filename} cannot be written ({err.strerror}); the output folder is "
                     "hydra.run.dir=PATH: give one that can be written.")
        sys.exit(2)


def hide_passwords() -> None:
    """Hydra's copies of the config and the overrides (hydra.run.dir/.hydra/*.yaml), which it writes
    before the command runs, without the passwords of their URLs (a PostgreSQL storage's, a tracking
    server's)."""
    if not HydraConfig.initialized() or HydraConfig.get().output_subdir is None:
        return
    for path in (Path(HydraConfig.get().runtime.output_dir) / HydraConfig.get().output_subdir).glob("*.yaml"):
        text = path.read_text()
        if redact(text) != text:
            path.write_text(redact(text))


def guarded(action: Callable[[], T], interrupted: str) -> T:
    """Runs action(); ConfigError exits 2, a stopped sweep 1, Ctrl-C, SIGTERM or SIGHUP 128 + its
    number with the sentence `interrupted` ({signal} names it)."""
    hide_passwords()
    quiet_libraries()
    clear()  # a Ctrl-C of an earlier command in this process is not this one's
    handle_interrupts()
    try:
        return action()
    except ConfigError as err:
        pool.stop()  # started early, before the checks that read the data and the stores
        logger.error(f"error: {err}")
        sys.exit(2)
    except SweepStopped as err:
        pool.stop()
        logger.error(f"error: {err}")
        sys.exit(1)
    except KeyboardInterrupt:
        pool.stop()  # any worker process left (it was asked to stop): not waited for at exit
        logger.error(f"\n{interrupted.format(signal=signal_name())}")
        sys.exit(exit_code())
