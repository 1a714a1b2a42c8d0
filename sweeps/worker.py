"""A worker process: pulls trials from the shared study until it holds n_trials finished ones.

Started by the launcher through joblib, as local processes (loky) or on the workers of a Dask
cluster; every worker opens the same study storage, so they coordinate through it alone, and a
pruned trial stops at once wherever it runs. With an RDB storage a running trial sends heartbeats,
so that the others can fail and retry it if this worker dies.

`python -m sweeps.worker [hydra overrides]` joins a sweep by hand, from any machine that reaches
its storage and tracking server: it runs `sweep.n_jobs` local worker processes on the study
until the study is done, logging under the sweep's MLflow parent run (see sweeps.launcher.join).
"""

from __future__ import annotations

from sweeps.pool import pause_collector

if __name__ == "__main__":
    pause_collector()  # `python -m sweeps.worker`: until its imports are in, as in sweeps.__main__

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState
from threadpoolctl import threadpool_limits

from nncore import Dataset, load_dataset
from sweeps.cli import check_interrupt, interrupts_deferred
from sweeps.objective import objective
from sweeps.pool import SIBLING_FAILED
from sweeps.space import parse_space
from sweeps.study import ask_within_budget, heartbeat, load_study
from sweeps.tracking import Tracker

# MLflow prints "View run ... at: http://..." for every run it ends when the tracking URI is a
# server: hundreds of lines from the workers, where the status line says what matters.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


@dataclass
class Job:
    """Everything a worker needs; picklable, sent to each process."""

    config: dict[str, Any]  # the resolved config as plain containers
    storage: str
    tracker: Tracker
    index: int = 0
    seed: int = 0  # this worker's sampler seed
    blas_threads: int = 1


@dataclass
class Report:
    index: int
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    lost: int = 0  # trials failed by another worker meanwhile (their heartbeat came too late)
    stopped: str = ""  # why the worker stopped early, if it did
    errors: list[str] = field(default_factory=list)


def load_data(cfg: DictConfig) -> Dataset:
    d = cfg.dataset
    return load_dataset(d.name, seed=cfg.seed, val_fraction=d.val_fraction, **d.kwargs)


def sampler_seed(sweep_seed: int, worker: int, n_existing: int, salt: int = 0) -> int:
    """Distinct per worker and per resumption, so parallel or resumed samplers do not repeat draws;
    `salt` tells apart workers that join from elsewhere (python -m sweeps.worker)."""
    entropy = [sweep_seed, worker, n_existing, *([salt] if salt else [])]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def _tell(study: optuna.Study, trial: optuna.Trial, **kwargs) -> bool:
    """study.tell; False when the sampler says the study is exhausted (a finished grid).

    A trial another worker failed meanwhile (its heartbeat was late: a stalled machine) is left
    as it is: its retry is queued already.
    """
    try:
        study.tell(trial, skip_if_finished=True, **kwargs)
    except RuntimeError as err:  # GridSampler calls study.stop(), meant for optimize() only
        if "Study.stop" not in str(err):
            raise
        return False  # the state was stored before the sampler's hook ran
    return True


def work(job: Job) -> Report:
    # Ctrl-C stops the worker at its checks (sweeps.cli): never inside a store's write
    with threadpool_limits(limits=job.blas_threads), interrupts_deferred():
        return _work(job)


def _work(job: Job) -> Report:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the launcher shows progress
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    job.tracker.common_tags["blas_threads"] = str(job.blas_threads)  # sweeps.reproduce uses the same
    cfg = OmegaConf.create(job.config)
    space = parse_space(cfg.search_space)
    data = load_data(cfg)
    study = load_study(cfg, job.storage, space, job.seed)
    report = Report(job.index)
    deadline = time.monotonic() + cfg.sweep.timeout if cfg.sweep.timeout else float("inf")
    in_a_row = 0
    while time.monotonic() < deadline and not SIBLING_FAILED.is_set():
        check_interrupt()
        trial = ask_within_budget(study, cfg.sweep.n_trials, job.storage, deadline)
        if trial is None:
            break
        value = None
        try:
            with heartbeat(study, trial):
                value = objective(trial, cfg, space, data, job.tracker)
        except optuna.exceptions.UpdateFinishedTrialError as err:
            # another worker failed this trial while it ran (no heartbeat for grace_period) and
            # queued it again: nothing of it counts here
            report.lost += 1
            report.errors.append(f"trial {trial.number}: failed by another worker meanwhile ({err})")
            continue
        except optuna.TrialPruned:
            report.pruned += 1
            more = _tell(study, trial, state=TrialState.PRUNED)
        except KeyboardInterrupt:
            # after the objective returned, its run ended FINISHED: the trial is complete
            _tell(study, trial, **({"state": TrialState.FAIL} if value is None else {"values": value}))
            raise
        except Exception as err:  # a bug or a MemoryError in one trial must not end the sweep
            report.failed += 1
            report.errors.append(f"trial {trial.number}: {type(err).__name__}: {err}")
            in_a_row += 1
            more = _tell(study, trial, state=TrialState.FAIL)
            if in_a_row >= cfg.sweep.max_failures:
                report.stopped = (f"{in_a_row} trials failed in a row (sweep.max_failures="
                                  f"{cfg.sweep.max_failures}); the last: {report.errors[-1]}")
                break
            continue
        else:
            report.complete += 1
            more = _tell(study, trial, values=value)
        in_a_row = 0
        if not more:
            break
    return report


def _cli() -> None:
    """`python -m sweeps.worker [hydra overrides]`: the same config and overrides as `python -m sweeps`."""
    import hydra

    from sweeps.cli import exit_now, guarded, start_workers
    from sweeps.config import register_configs

    register_configs()

    def join(cfg: DictConfig):
        start_workers(cfg)
        from sweeps.launcher import join  # the launcher imports this module

        return join(cfg)

    @hydra.main(config_path="../conf", config_name="config", version_base="1.3")
    def main(cfg: DictConfig) -> None:
        guarded(lambda: join(cfg), "[worker] interrupted: its running trials were failed and their runs KILLED.")

    main()
    exit_now(0)


if __name__ == "__main__":
    _cli()
