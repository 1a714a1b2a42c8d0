"""The sweep: check the config, open the study and the MLflow parent run, start the workers,
show progress, then summarise the study on the parent run and print the best trial.

Workers are local processes (joblib's loky backend, `sweep.backend=loky`) or the workers of a
dask.distributed cluster (`sweep.backend=dask`, `sweep.scheduler=tcp://host:8786`, joblib's Dask
backend); either way each runs sweeps.worker.work(Job). `join()` is `python -m sweeps.worker`:
local worker processes for a sweep that runs already, without the summary.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
import zlib
from dataclasses import dataclass, replace
from typing import Any, Iterator

import optuna
from joblib import Parallel, delayed, parallel_config
from joblib.externals.loky.process_executor import TerminatedWorkerError
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from sweeps import pool, summary
from sweeps.cli import SweepStopped
from sweeps.config import ConfigError, flatten, validate
from sweeps.processes import here
from sweeps.services import redact
from sweeps.space import SearchSpace, parse_space
from sweeps.study import (
    MLFLOW_ATTR,
    STOP_ATTR,
    check_storage,
    count,
    grace_seconds,
    load_study,
    reconcile,
    repair_journal,
    stop_requested,
    storage_spec,
)
from sweeps.tracking import Tracker, check_reachable, git_commit
from sweeps.worker import Job, Report, load_data, sampler_seed, work

MAX_RESTARTS = 10  # times the worker pool is started again after a worker died


def worker_died(backend: str) -> tuple[type[BaseException], ...]:
    """What joblib raises when a worker process died (distributed is imported for Dask only: 0.15 s)."""
    if backend != "dask":
        return (TerminatedWorkerError,)
    from distributed import KilledWorker  # a task whose workers kept dying (scheduler.allowed-failures)

    return (TerminatedWorkerError, KilledWorker)


@dataclass
class Outcome:
    study: optuna.Study
    tracker: Tracker
    reports: list[Report]


def n_workers(cfg: DictConfig) -> int:
    return pool.size(cfg.sweep.n_jobs)


def preflight(cfg: DictConfig) -> SearchSpace:
    """Every check a user's input can fail, before any store is touched."""
    validate(cfg)
    space = parse_space(cfg.search_space)
    try:
        load_data(cfg)  # a CSV's missing label column or NaN features show up only when read
    except ValueError as err:
        raise ConfigError(f"dataset {cfg.dataset.name!r} cannot be used: {err}") from None
    if cfg.tracking.enabled:
        check_reachable(cfg.tracking.uri)
    check_storage(storage_spec(cfg))
    if cfg.sweep.backend == "dask":
        check_scheduler(cfg.sweep.scheduler)
    return space


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to the Dask scheduler: seconds, not distributed's retries and a traceback."""
    host_port = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        return  # an address form distributed knows better (inproc://, ucx://...)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise ConfigError(f"sweep.scheduler={address!r} is not reachable ({err.strerror or err}); start a Dask "
                          "scheduler there (`make dask-scheduler`) or fix the address.") from None


def fit_budget(cfg: DictConfig, space: SearchSpace, who: str = "sweep") -> None:
    """The grid's size bounds the budget."""
    if cfg.sweep.sampler == "grid":
        size = 1
        for values in space.grid().values():
            size *= len(values)
        if cfg.sweep.n_trials > size:
            print(f"[{who}] the grid has {size} points: running {size} trials, not {cfg.sweep.n_trials}")
            cfg.sweep.n_trials = size


def sweep_tags(cfg: DictConfig, spec: str) -> dict[str, str]:
    """The tags of the parent run, which every trial run carries too."""
    return {"optuna.study": cfg.sweep.study_name, "optuna.storage": redact(spec), "sampler": cfg.sweep.sampler,
            "pruner": cfg.sweep.pruner, "mlflow.source.git.commit": git_commit()}


def sweep_params(cfg: DictConfig) -> dict[str, str]:
    params = {k: v for k, v in flatten(cfg).items() if not k.startswith("tracking.")}
    params["sweep.storage"] = redact(params.get("sweep.storage", "null"))
    return params


@contextlib.contextmanager
def dask_client(cfg: DictConfig, backend: str) -> Iterator[Any]:
    """A distributed.Client to sweep.scheduler for the Dask backend, else None."""
    if backend != "dask":
        yield None
        return
    from distributed import Client

    try:
        client = Client(cfg.sweep.scheduler, timeout="15s", set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ConfigError(f"sweep.scheduler={cfg.sweep.scheduler!r} is not reachable ({err}); start a Dask "
                          "scheduler there (`make dask-scheduler`) or fix the address.") from None
    try:
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise ConfigError(f"the Dask scheduler at {cfg.sweep.scheduler} has no worker after 60 s; start "
                              "some with `dask worker " + cfg.sweep.scheduler + "` (`make dask-worker`).") from None
        yield client
    finally:
        client.close()


def planned_workers(cfg: DictConfig, client: Any, remaining: int) -> tuple[int, str]:
    """How many workers to start, and where, for the status line."""
    if client is None:
        n = min(n_workers(cfg), max(remaining, 1))
        return n, f"{n} worker process(es)"
    threads = sum(client.nthreads().values())
    n = min(threads if cfg.sweep.n_jobs == -1 else cfg.sweep.n_jobs, max(remaining, 1))
    return n, f"{n} Dask task(s) on the {threads} worker thread(s) of {cfg.sweep.scheduler}"


def run(cfg: DictConfig) -> Outcome:
    space = preflight(cfg)
    fit_budget(cfg, space)
    spec = storage_spec(cfg)
    for note in repair_journal(spec):
        print(f"[sweep] {note}", flush=True)
    study = load_study(cfg, spec, space, seed=cfg.sweep.seed, create=True)
    if stop_requested(study):  # left by an interrupted launcher: this one resumes
        study.set_user_attr(STOP_ATTR, False)
    tracker = Tracker.start_sweep(
        cfg.tracking.uri, cfg.tracking.experiment, run_name=f"sweep-{cfg.sweep.study_name}",
        tags=sweep_tags(cfg, spec), params=sweep_params(cfg),
        curve_points=cfg.tracking.curve_points, enabled=cfg.tracking.enabled)
    pool.freeze_heap()  # the last heavy import was MLflow's store
    if tracker.enabled:  # for workers that join by hand (python -m sweeps.worker)
        study.set_user_attr(MLFLOW_ATTR, {"uri": cfg.tracking.uri, "experiment_id": tracker.experiment_id,
                                          "parent_run_id": tracker.parent_run_id})
    reports: list[Report] = []
    try:
        tidy(study, spec, tracker)
        done = count(study)
        with dask_client(cfg, cfg.sweep.backend) as client:
            n, where = planned_workers(cfg, client, cfg.sweep.n_trials - done)
            print(f"[sweep] study {cfg.sweep.study_name!r}: {done} of {cfg.sweep.n_trials} trials finished; running "
                  f"{max(cfg.sweep.n_trials - done, 0)} on {where}\n[sweep] optuna storage: {redact(spec)}\n"
                  f"[sweep] mlflow: {cfg.tracking.uri} (experiment {cfg.tracking.experiment!r}, "
                  f"run {tracker.parent_run_id or 'off'})", flush=True)
            with Progress(study, cfg.sweep.n_trials, cfg.sweep.metric):
                reports = drive(cfg, spec, study, tracker, n, client)
        tidy(study, spec, tracker)  # runs of trials another worker failed (a dead worker's) end KILLED
        summary.finish_sweep(study, tracker, cfg)  # with the worker processes, idle now, drawing a part
    except KeyboardInterrupt:
        _after_interrupt(study, spec, tracker)
        raise
    except BaseException as err:
        tracker.end(tracker.parent_run_id, "FAILED", {"error": f"{type(err).__name__}: {err}"})
        raise
    finally:
        pool.stop()
    stopped = [r.stopped for r in reports if r.stopped]
    tracker.end(tracker.parent_run_id, "FAILED" if stopped else "FINISHED")
    if stopped:
        raise SweepStopped(f"the sweep stopped early: {stopped[0]}")
    return Outcome(study, tracker, reports)


def join(cfg: DictConfig) -> Outcome:
    """`python -m sweeps.worker`: sweep.n_jobs local worker processes on a sweep's study (created if
    missing), until it holds sweep.n_trials finished trials. Trials are logged under the sweep's
    parent run when its launcher still runs (the study records it), else under a parent run of
    this worker's own. No summary: that is the launcher's."""
    space = preflight(cfg)
    fit_budget(cfg, space, "worker")
    spec = storage_spec(cfg)
    for note in repair_journal(spec):
        print(f"[worker] {note}", flush=True)
    study = load_study(cfg, spec, space, seed=cfg.sweep.seed, create=True)
    tracker, own = joined_tracker(cfg, spec, study)
    pool.freeze_heap()
    reports: list[Report] = []
    try:
        tidy(study, spec, tracker)
        done = count(study)
        n = min(n_workers(cfg), max(cfg.sweep.n_trials - done, 1))
        print(f"[worker] study {cfg.sweep.study_name!r}: {done} of {cfg.sweep.n_trials} trials finished; joining "
              f"with {n} worker process(es) on {here()['host']}\n[worker] optuna storage: {redact(spec)}\n"
              f"[worker] mlflow: {cfg.tracking.uri} (run {tracker.parent_run_id or 'off'}, "
              f"{'its own' if own else 'the sweep’s'})", flush=True)
        salt = zlib.crc32(f"{here()['host']}:{os.getpid()}".encode())  # not the launcher's sampler seeds
        with Progress(study, cfg.sweep.n_trials, cfg.sweep.metric):
            reports = drive(cfg, spec, study, tracker, n, None, salt)
        pool.stop()
        tidy(study, spec, tracker)
    except KeyboardInterrupt:
        _after_interrupt(study, spec, tracker, end_parent=own, stop_all=False)  # only this worker stops
        raise
    except BaseException as err:
        if own:
            tracker.end(tracker.parent_run_id, "FAILED", {"error": f"{type(err).__name__}: {err}"})
        raise
    stopped = [r.stopped for r in reports if r.stopped]
    if own:
        tracker.end(tracker.parent_run_id, "FAILED" if stopped else "FINISHED")
    print(f"[worker] done: {sum(r.complete for r in reports)} complete, {sum(r.pruned for r in reports)} pruned, "
          f"{sum(r.failed for r in reports)} failed here; the study holds {count(study)} finished trials", flush=True)
    if stopped:
        raise SweepStopped(f"the worker stopped early: {stopped[0]}")
    return Outcome(study, tracker, reports)


def joined_tracker(cfg: DictConfig, spec: str, study: optuna.Study) -> tuple[Tracker, bool]:
    """The sweep's parent run if its launcher recorded one on the study and it still runs, else a
    new parent run of this worker's own; and whether it is its own."""
    if not cfg.tracking.enabled:
        return Tracker(cfg.tracking.uri, enabled=False), False
    record = study.user_attrs.get(MLFLOW_ATTR) or {}
    if record.get("uri") == cfg.tracking.uri and record.get("parent_run_id"):
        tracker = Tracker(cfg.tracking.uri, experiment_id=record["experiment_id"],
                          parent_run_id=record["parent_run_id"], curve_points=cfg.tracking.curve_points,
                          common_tags=sweep_tags(cfg, spec))
        try:
            if tracker.client.get_run(tracker.parent_run_id).info.status == "RUNNING":
                return tracker, False
        except MlflowException:
            pass
    elif record.get("uri"):
        print(f"[worker] the sweep logs to {record['uri']}, this worker to {cfg.tracking.uri}: "
              "its trials go under a parent run of its own", flush=True)
    tracker = Tracker.start_sweep(
        cfg.tracking.uri, cfg.tracking.experiment, run_name=f"worker-{cfg.sweep.study_name}-{here()['host']}",
        tags={**sweep_tags(cfg, spec), "nnsweeps.worker": "standalone"}, params=sweep_params(cfg),
        curve_points=cfg.tracking.curve_points)
    tracker.common_tags.pop("nnsweeps.worker", None)
    return tracker, True


def drive(cfg: DictConfig, spec: str, study: optuna.Study, tracker: Tracker, n: int, client: Any = None,
          salt: int = 0) -> list[Report]:
    """Runs the workers until the budget is reached, starting them again when one died."""
    reports: list[Report] = []
    for _ in range(MAX_RESTARTS + 1):
        if count(study) >= cfg.sweep.n_trials or stop_requested(study):
            break
        try:
            reports += run_workers(cfg, spec, tracker, n, count(study), client, salt)
            break
        except worker_died(cfg.sweep.backend) as err:
            # loky stops the whole pool when one worker dies (Dask only when a task's workers kept
            # dying): fail the dead trials, start again
            print(f"\n[sweep] a worker process died ({str(err).splitlines()[0][:120]}); "
                  "its trial is failed and run again", file=sys.stderr, flush=True)
            tidy(study, spec, tracker)
    else:
        raise SweepStopped(f"worker processes died {MAX_RESTARTS + 1} times; see the messages above")
    return reports


def run_workers(cfg: DictConfig, spec: str, tracker: Tracker, n: int, done: int, client: Any = None,
                salt: int = 0) -> list[Report]:
    container = OmegaConf.to_container(cfg, resolve=True)
    container["sweep"]["storage"] = redact(container["sweep"]["storage"] or "") or None  # logged by trials
    # n_jobs x BLAS threads <= cores: oversubscribed BLAS ran 4-10 x slower here. A Dask worker
    # runs one task per thread, and a cluster has about one thread per core: one BLAS thread each.
    threads = 1 if client is not None else pool.blas_threads(n)
    # each job its own Tracker (tags): the first runs in this process, beside the launcher's
    jobs = [Job(container, spec, replace(tracker, common_tags=dict(tracker.common_tags)), i,
                sampler_seed(cfg.sweep.seed, i, done, salt), threads) for i in range(n)]
    if client is not None:
        # batch_size=1: each job is a worker's whole loop, never two of them in one Dask task
        with parallel_config(backend="dask", client=client):
            return Parallel(n_jobs=n, batch_size=1)(delayed(work)(job) for job in jobs)
    return pool.map(work, jobs, n, tracker.uri if tracker.enabled else None)


def tidy(study: optuna.Study, spec: str, tracker: Tracker) -> None:
    """Makes the two stores agree after a crash: trials whose process died are failed (and
    queued again), and their MLflow runs, like any run left RUNNING by a dead process, KILLED;
    so are the runs that ended FINISHED of trials that were failed all the same."""
    grace = grace_seconds(study)
    for t in reconcile(study, spec):
        why = f"sent no heartbeat for {grace} s" if grace else "was left running by a process that is gone"
        print(f"[sweep] trial {t.number} {why}: failed, queued again", flush=True)
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    for run_id in tracker.orphans(study.study_name, running):
        tracker.end(run_id, "KILLED", {"optuna.state": "FAIL", "reason": "its process died"})
    failed = [t.user_attrs["run_id"] for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
              if t.user_attrs.get("run_id")]
    for run_id in tracker.finished_among(failed):
        tracker.end(run_id, "KILLED", {"optuna.state": "FAIL", "reason": "its trial was failed after the run ended: "
                                       "its worker died, or was too late, before telling Optuna"})


def _after_interrupt(study: optuna.Study, spec: str, tracker: Tracker, end_parent: bool = True,
                     stop_all: bool = True) -> None:
    """Ctrl-C: local workers abort their trial (FAIL, run KILLED); catch any that could not. With
    `stop_all` (the launcher's Ctrl-C) workers elsewhere (Dask, python -m sweeps.worker) are asked
    to stop after their running trial."""
    if stop_all:
        try:
            study.set_user_attr(STOP_ATTR, True)
        except Exception:  # the storage is gone: nothing to ask through
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            tidy(study, spec, tracker)
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                break
        except KeyboardInterrupt:
            continue
        time.sleep(0.5)
    if end_parent:
        tracker.end(tracker.parent_run_id, "KILLED")


class Progress:
    """A status line while workers run: finished/total, pruned, failed, best so far, elapsed."""

    def __init__(self, study: optuna.Study, total: int, metric: str, every: float = 1.0):
        self.study, self.total, self.metric, self.every = study, total, metric, every
        self.tty = sys.stderr.isatty()
        self._stop = threading.Event()
        self._last = ""
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def line(self) -> str:
        trials = self.study.get_trials(deepcopy=False)
        by = {s: sum(t.state == s for t in trials) for s in TrialState}
        done = by[TrialState.COMPLETE] + by[TrialState.PRUNED]
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = ""
        if complete:
            pick = min if self.study.direction == optuna.study.StudyDirection.MINIMIZE else max
            b = pick(complete, key=lambda t: t.value)
            best = f" | best {self.metric} {b.value:.4f} (trial {b.number})"
        elapsed = int(time.monotonic() - self._start)
        return (f"[sweep] {done}/{self.total} trials ({by[TrialState.PRUNED]} pruned, "
                f"{by[TrialState.FAIL]} failed, {by[TrialState.RUNNING]} running){best} | "
                f"{elapsed // 60:02d}:{elapsed % 60:02d}")

    def _show(self, final: bool = False) -> None:
        text = self.line()
        if self.tty:
            sys.stderr.write("\r" + text.ljust(len(self._last)) + ("\n" if final else ""))
        elif text.split(" | ")[0] != self._last.split(" | ")[0] or final:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        self._last = text

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._show()

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._show(final=True)
