"""A worker: pulls trials from the shared study until it holds n_trials finished ones.

The session runs one in its own process and the others in local processes (sweeps.runner.pool)
or on the workers of a Dask cluster; every worker opens the same study storage, so they
coordinate through it alone, and a pruned trial stops at once wherever it runs. With an RDB
storage a running trial sends heartbeats, so that the others can fail and retry it if this
worker dies.

A local worker tells Optuna each trial's end itself (`settle`), once its record is on disk. A
Dask worker shares no folder with its launcher's MLflow writer: it runs one trial per task
(Job.trials=1, Job.tells=False) and returns the trial's record (sweeps.tracking.outbox.Held) and
its `Ending` in the task's Report; the launcher settles them (sweeps.runner.cluster).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState
from threadpoolctl import threadpool_limits

from nncore import Dataset
from sweeps import log, quiet, reserve
from sweeps.config.space import SearchSpace, parse_space
from sweeps.errors import DiskFull, disk_full
from sweeps.interrupts import INTERRUPTED, check_interrupt, handle_interrupts, interrupts_deferred
from sweeps.runner.pool import SIBLING_FAILED
from sweeps.study.budget import ask_within_budget, heartbeat, requeue
from sweeps.study.factory import open_study
from sweeps.study.stopping import rule as stop_rule
from sweeps.study.storages import Storage, storage_for
from sweeps.tracking.store import sqlite_path, store_busy
from sweeps.tracking.outbox import Held, HeldRecord, Outbox, outbox_root
from sweeps.tracking.tracker import Tracker
from sweeps.trial.artifacts import use_data
from sweeps.trial.build import load_data
from sweeps.trial.objective import TimedOut, objective

logger = logging.getLogger(__name__)


@dataclass
class Job:
    """Everything a worker needs; picklable, sent to each process."""

    config: dict[str, Any]  # the resolved config as plain containers
    storage: str  # the storage's spec (sweeps.study.storage_spec)
    tracker: Tracker | Outbox  # an Outbox, whose records the invocation's writer sends (Held on Dask)
    index: int = 0
    seed: int = 0  # this worker's sampler seed
    blas_threads: int = 1
    deadline: float | None = None  # time.time() at which sweep.timeout ends the sweep, in every process
    decides_stop: bool = True  # sweep.stop decides here (the launcher's); else only a recorded stop is obeyed
    trials: int | None = None  # at most this many trials (a Dask task's: one), else until the budget
    tells: bool = True  # False: the trials' ends are returned in the Report, for the launcher to tell
    in_a_row: int = 0  # trials failed in a row before this job's first (a Dask worker's earlier tasks')


@dataclass(frozen=True)
class Ending:
    """How a trial ended, as Optuna is told it (settle): by its worker, or by the launcher once
    the trial's record is on disk there (a Dask worker's)."""

    number: int
    params: dict[str, Any]
    values: float | list[float] | None = None  # a complete trial's
    state: str = "FAIL"  # else: PRUNED or FAIL
    again: bool = False  # failed and its params queued again (sweep.timeout, a store busy or full)


@dataclass
class Report:
    index: int
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    timed_out: int = 0
    stopped: str = ""  # why the worker stopped early, if it did
    errors: list[str] = field(default_factory=list)
    asked: int = 0  # trials it took from the study
    in_a_row: int = 0  # trials failed in a row when it returned
    endings: list[Ending] = field(default_factory=list)  # with Job.tells=False: for the launcher to tell
    records: list[HeldRecord] = field(default_factory=list)  # with a Held tracker: for the launcher's writer

    def add(self, later: "Report") -> None:
        """A later task's counts of the same worker (a Dask worker's next trial)."""
        for name in ("complete", "pruned", "failed", "timed_out", "asked"):
            setattr(self, name, getattr(self, name) + getattr(later, name))
        self.stopped, self.in_a_row = self.stopped or later.stopped, later.in_a_row
        self.errors += later.errors


def sampler_seed(sweep_seed: int, worker: int, n_existing: int, salt: int = 0) -> int:
    """Distinct per worker and per resumption, so parallel or resumed samplers do not repeat draws;
    `salt` tells apart workers that join from elsewhere (python -m sweeps.worker)."""
    entropy = [sweep_seed, worker, n_existing, *([salt] if salt else [])]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def warm_up(launcher: int) -> None:
    """Each worker process, as it starts: the imports of a trial (this module's, imported to find
    this function) and matplotlib's font; never mlflow, whose records the launcher's writer sends."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # a Ctrl-C stops this process's trial at its next check, and never raises elsewhere: idle in
    # loky's queue an exception would break the pool and kill the other workers mid-write.
    # The launcher kills the processes once they are done, or 3 s after its own Ctrl-C.
    handle_interrupts(worker_process=True)
    log.setup()  # its messages as the launcher's
    threading.Thread(target=_watch_launcher, args=(launcher,), daemon=True, name="watch-launcher").start()
    fig = Figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0.1")  # loads the font, which the first figure would otherwise wait for
    FigureCanvasAgg(fig).draw()


def _watch_launcher(launcher: int, every: float = 0.5, grace: float = 5.0) -> None:
    """A worker process whose launcher died (kill -9, a crash) is handed to another parent: it then
    stops its trial at the next check (the trial FAILED, its run KILLED), asks for no new one, and
    exits; it never goes on taking the study's trials alone."""
    while os.getppid() == launcher:
        time.sleep(every)
    INTERRUPTED.set()
    time.sleep(grace)
    os._exit(1)


def settle(study: optuna.Study, ending: Ending) -> None:
    """Tells Optuna a trial's end. A trial stopped by sweep.timeout or by its store (full, or busy
    too long) is failed and its params queued again, if the storage can still be written (else the
    next invocation's tidy() does both). A complete trial's value that finds a journal's disk full
    gets the space kept back, so the trial ends COMPLETE like its run rather than being left
    RUNNING, and the sweep then stops."""
    if ending.again:
        try:
            _tell(study, ending.number, state=TrialState.FAIL)
            requeue(study, ending.params, ending.number)
        except Exception:
            pass
    elif ending.values is None:
        _tell(study, ending.number, state=TrialState[ending.state])
    else:
        try:
            _tell(study, ending.number, values=ending.values)
        except Exception as err:
            if disk_full(err) is None or not reserve.release():
                raise
            _tell(study, ending.number, values=ending.values)
            raise


def store_folders(cfg: Any, storage: Storage) -> list[Path]:
    """The folders of the sweep's local stores: the journal's (or SQLite file's), mlflow.db's,
    where its artifacts go too, and the trials' records' (sweeps.tracking.writer.outbox_root)."""
    db = sqlite_path(cfg.tracking.uri) if cfg.tracking.enabled else None
    records = outbox_root(storage.local_file, cfg.sweep.study_name) if cfg.tracking.enabled else None
    return [p.parent for p in (db, storage.local_file) if p is not None] + ([records.parents[1]] if records else [])


def _tell(study: optuna.Study, trial: int, **kwargs) -> None:
    """study.tell. A trial another worker failed meanwhile (its heartbeat was late: a stalled
    machine) is left as it is: its retry is queued already."""
    study.tell(trial, skip_if_finished=True, **kwargs)


def work(job: Job) -> Report:
    # Ctrl-C stops the worker at its checks (sweeps.interrupts): never inside a store's write;
    # quiet.scoped: a Dask worker's process is not ours, its environment is left as it was
    with threadpool_limits(limits=job.blas_threads), interrupts_deferred(), quiet.scoped():
        report = _work(job)
    if isinstance(job.tracker, Held):
        report.records = list(job.tracker.records.values())
    return report


def _work(job: Job) -> Report:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the launcher shows progress
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)  # as sweeps.runner.cli says
    job.tracker.common_tags["blas_threads"] = str(job.blas_threads)  # sweeps.reproduce uses the same
    cfg = OmegaConf.create(job.config)
    space = parse_space(cfg.search_space)
    data = load_data(cfg.dataset, cfg.seed)
    use_data(job.tracker, cfg.dataset, cfg.seed, data)
    storage = storage_for(job.storage, cfg.sweep)
    reserve.watch(store_folders(cfg, storage))
    try:
        return _pull(job, cfg, space, data, storage)
    except Exception:
        # a journal deleted or replaced mid-sweep fails whichever write met it first (a tell, a
        # user attribute): the sentence that says so, rather than that write's traceback
        storage.check_intact()
        raise


def _pull(job: Job, cfg: DictConfig, space: SearchSpace, data: Dataset, storage: Storage) -> Report:
    """Trials from the study until it holds n_trials finished ones (or the deadline, a stop)."""
    study = open_study(cfg.sweep, storage, space, job.seed)
    report = Report(job.index)
    deadline = time.monotonic() + (job.deadline - time.time()) if job.deadline is not None else float("inf")
    stop = stop_rule(cfg.sweep) if job.decides_stop else None
    in_a_row = job.in_a_row
    tell = (lambda e: settle(study, e)) if job.tells else report.endings.append
    while time.monotonic() < deadline and not SIBLING_FAILED.is_set() and report.asked != job.trials:
        check_interrupt()
        trial = ask_within_budget(study, storage, cfg.sweep.n_trials, deadline, stop=stop)
        if trial is None:
            break
        report.asked += 1
        value = None
        try:
            with heartbeat(storage, study, trial.number):
                value = objective(trial, cfg, space, data, job.tracker, deadline)
        except optuna.exceptions.UpdateFinishedTrialError as err:
            # another worker failed this trial while it ran (no heartbeat for grace_period) and
            # queued it again: nothing of it counts here
            report.errors.append(f"trial {trial.number}: failed by another worker meanwhile ({err})")
            continue
        except TimedOut:
            # stopped by sweep.timeout: failed, and its params queued for the next invocation
            report.timed_out += 1
            tell(Ending(trial.number, trial.params, again=True))
            break
        except optuna.TrialPruned:
            report.pruned += 1
            tell(Ending(trial.number, trial.params, state="PRUNED"))
        except KeyboardInterrupt:
            # after the objective returned, its run ended FINISHED: the trial is complete
            tell(Ending(trial.number, trial.params, values=value))
            raise
        except Exception as err:  # a bug or a MemoryError in one trial must not end the sweep
            if (where := disk_full(err)) is not None:
                reserve.release()  # the space kept back: the trial is failed and queued again
                tell(Ending(trial.number, trial.params, again=True))
                raise DiskFull(f"the disk is full{f' at {where}' if where else ''} ({cfg.tracking.uri}, "
                               f"{job.storage}): the sweep stopped; free some space and run the same command "
                               "to resume.") from None
            report.failed += 1
            in_a_row += 1
            if store_busy(err):  # busy past BUSY_SECONDS: the trial fails, its params run again later
                report.errors.append(f"trial {trial.number}: the store stayed busy ({str(err).splitlines()[0][:160]})")
                logger.warning(f"[worker] {report.errors[-1]}; its params are queued again")
                tell(Ending(trial.number, trial.params, again=True))
            else:
                report.errors.append(f"trial {trial.number}: {type(err).__name__}: {err}")
                tell(Ending(trial.number, trial.params))
            if in_a_row >= cfg.sweep.max_failures:
                report.stopped = (f"{in_a_row} trials failed in a row (sweep.max_failures="
                                  f"{cfg.sweep.max_failures}); the last: {report.errors[-1]}")
                break
            continue
        else:
            report.complete += 1
            tell(Ending(trial.number, trial.params, values=value))
        in_a_row = 0
    report.in_a_row = in_a_row
    return report
