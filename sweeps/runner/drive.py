"""Driving the workers: local processes (joblib's loky backend, `sweep.backend=loky`) or the
tasks of a dask.distributed cluster (`sweep.backend=dask`: one trial per task,
sweeps.runner.cluster), each running sweeps.runner.work.work(Job), until the study holds its
budget, stops, or its deadline passes; a pool whose worker died is started again.
"""

from __future__ import annotations

import logging
import contextlib
import os
import time
import zlib
from dataclasses import dataclass, replace
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from sweeps.config.objectives import metric_names
from sweeps.errors import SweepStopped
from sweeps.processes import here
from sweeps.runner import pool
from sweeps.runner.cli import WARM_UP
from sweeps.runner.cluster import dask_client, run_tasks, worker_died
from sweeps.runner.link import tidy
from sweeps.runner.progress import Progress
from sweeps.runner.role import Role
from sweeps.runner.work import Job, Report, sampler_seed, work
from sweeps.study.budget import count, stop_requested
from sweeps.study.stopping import STOPPED_ATTR, recorded
from sweeps.study.storages import Storage
from sweeps.tracking.outbox import Held, Outbox
from sweeps.tracking.tracker import Tracker
from sweeps.tracking.writer import Writer
from sweeps.urls import redact

logger = logging.getLogger(__name__)

MAX_RESTARTS = 10  # times the worker pool is started again after a worker died


@dataclass
class Trials:
    """What the workers did: each one's report, and how many there were."""

    reports: list[Report]
    workers: int  # local worker processes; 1 on Dask (the confirmation then trains in this process)


def run_trials(cfg: DictConfig, role: Role, study: optuna.Study, storage: Storage, tracker: Tracker, own: bool,
               writer: Writer | None) -> Trials:
    """The session's trials, under a status line, until the budget, a stop or sweep.timeout; every
    run ended (the writer flushed) when it returns."""
    done = count(study)
    with (dask_client(cfg) if role.launcher else contextlib.nullcontext()) as client:
        n, where = planned_workers(cfg, client, cfg.sweep.n_trials - done)
        logger.info(header(cfg, role, storage, tracker, own, done, n, where))
        # a joined worker's sampler seeds differ from the launcher's workers'
        salt = 0 if role.launcher else zlib.crc32(f"{here()['host']}:{os.getpid()}".encode())
        deadline = time.time() + cfg.sweep.timeout if cfg.sweep.timeout else None  # the whole sweep's
        with Progress(study, cfg.sweep.n_trials, metric_names(cfg.sweep)):
            reports = drive(cfg, storage, study, tracker, n, client, salt, role, deadline, writer)
        if writer is not None:
            writer.flush()  # every run ended before the stores are tidied and summarised
        if (record := recorded(study)) is not None and tracker.enabled:
            tracker.log(tracker.parent_run_id, tags={STOPPED_ATTR: record["reason"]})
        if any(r.timed_out for r in reports):
            logger.info(f"[{role.name}] sweep.timeout={cfg.sweep.timeout:g} s passed: the trials still training were "
                  "stopped and failed (reason timeout), their params queued for the next run")
        return Trials(reports, n if client is None else 1)


def planned_workers(cfg: DictConfig, client: Any, remaining: int) -> tuple[int, str]:
    """How many workers to start, and where, for the status line."""
    if client is None:
        n = min(pool.size(cfg.sweep.n_jobs), max(remaining, 1))
        return n, f"{n} worker process(es)"
    threads = sum(client.nthreads().values())
    n = min(threads if cfg.sweep.n_jobs == -1 else cfg.sweep.n_jobs, max(remaining, 1))
    return n, f"{n} Dask task(s) on the {threads} worker thread(s) of {cfg.sweep.scheduler}"


def header(cfg: DictConfig, role: Role, storage: Storage, tracker: Tracker, own: bool, done: int, n: int,
           where: str) -> str:
    """What the session is about to do, in three lines."""
    name, run = cfg.sweep.study_name, tracker.parent_run_id or "off"
    if role.launcher:
        return (f"[sweep] study {name!r}: {done} of {cfg.sweep.n_trials} trials finished; running "
                f"{max(cfg.sweep.n_trials - done, 0)} on {where}\n[sweep] optuna storage: {storage.shown}\n"
                f"[sweep] mlflow: {cfg.tracking.uri} (experiment {cfg.tracking.experiment!r}, run {run})")
    return (f"[worker] study {name!r}: {done} of {cfg.sweep.n_trials} trials finished; joining with {n} worker "
            f"process(es) on {here()['host']}\n[worker] optuna storage: {storage.shown}\n"
            f"[worker] mlflow: {cfg.tracking.uri} (run {run}, {'its own' if own else 'the sweep’s'})")


def drive(cfg: DictConfig, storage: Storage, study: optuna.Study, tracker: Tracker, n: int, client: Any,
          salt: int, role: Role, deadline: float | None = None, writer: Writer | None = None) -> list[Report]:
    """Runs the workers until the budget is reached, starting them again when one died."""
    reports: list[Report] = []
    for _ in range(MAX_RESTARTS + 1):
        if count(study) >= cfg.sweep.n_trials or stop_requested(study) or recorded(study) is not None:
            break
        try:
            if deadline is not None and time.time() >= deadline:
                break
            # the launcher's sweep.stop decides; a joined worker only obeys the stop it records
            reports += run_workers(cfg, storage, study, tracker, n, client, salt, deadline,
                                   decides_stop=role.launcher, writer=writer)
            break
        except worker_died(cfg.sweep.backend) as err:
            # loky stops the whole pool when one worker dies (Dask only when a task's workers kept
            # dying): fail the dead trials, start again
            logger.warning(f"\n[{role.name}] a worker process died ({str(err).splitlines()[0][:120]}); "
                  "its trial is failed and run again")
            if writer is not None:
                writer.flush()  # the other workers' ends, before their runs are judged
            tidy(study, storage, tracker, role)
    else:
        raise SweepStopped(f"worker processes died {MAX_RESTARTS + 1} times; see the messages above")
    return reports


def run_workers(cfg: DictConfig, storage: Storage, study: optuna.Study, tracker: Tracker, n: int, client: Any = None,
                salt: int = 0, deadline: float | None = None, decides_stop: bool = True,
                writer: Writer | None = None) -> list[Report]:
    done = count(study)
    container = OmegaConf.to_container(cfg, resolve=True)
    container["sweep"]["storage"] = redact(container["sweep"]["storage"] or "") or None  # logged by trials
    # n_jobs x BLAS threads <= cores (sweeps.runner.pool.blas_threads). A Dask worker runs one task
    # per thread, and a cluster has about one thread per core: one BLAS thread each.
    threads = 1 if client is not None else pool.blas_threads(n)
    # each job its own Outbox or Tracker (tags): the first runs in this process, beside the launcher's.
    # A Dask worker's records come back in its tasks' results (Held), to be put into the writer's folder
    def recorder() -> Tracker | Outbox:
        if writer is not None and client is not None:
            return Held(curve_points=cfg.tracking.curve_points, common_tags=dict(tracker.common_tags))
        if writer is not None:
            return writer.outbox(cfg.tracking.curve_points, tracker.common_tags)
        return replace(tracker, common_tags=dict(tracker.common_tags))

    jobs = [Job(container, storage.spec, recorder(), i, sampler_seed(cfg.sweep.seed, i, done, salt), threads,
                deadline, decides_stop) for i in range(n)]
    if client is not None:
        outbox = writer.outbox(cfg.tracking.curve_points, tracker.common_tags) if writer is not None else None
        return run_tasks(client, jobs, study, storage, outbox)
    # worker processes never import mlflow when a writer records their trials; its thread here
    # would compete with a trial for this interpreter, so every worker is a process of its own
    return pool.map(work, jobs, n, WARM_UP, here=writer is None)
