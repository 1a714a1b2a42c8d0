"""A session: one invocation's work on a study, from its checks to its last trial.

`run(cfg)` is `python -m sweeps` (and sweeps.run): it opens the study and the MLflow parent run,
runs the workers with a status line, then summarises the study on the parent run and prints the
best trial. `join(cfg)` is `python -m sweeps.worker`: local worker processes for a sweep that
runs already (or that it starts), without the summary. Both are `_session()` with a Role.

Workers are local processes (joblib's loky backend, `sweep.backend=loky`) or the workers of a
dask.distributed cluster (`sweep.backend=dask`, joblib's Dask backend); either way each runs
sweeps.runner.work.work(Job).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from joblib import Parallel, delayed, parallel_config
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from nncore import Dataset
from sweeps import reserve
from sweeps.config.checks import flatten
from sweeps.config.objectives import metric_names, pruning, several
from sweeps.config.space import SearchSpace
from sweeps.errors import ConfigError, DiskFull, SweepStopped, disk_full
from sweeps.processes import here
from sweeps.report import pareto, summary
from sweeps.runner import pool
from sweeps.runner.checks import preflight
from sweeps.runner.cli import WARM_UP
from sweeps.runner.cluster import dask_client, worker_died
from sweeps.runner.confirm import confirm, unconfirmed
from sweeps.runner.progress import Progress
from sweeps.runner.shared import check_shared
from sweeps.runner.work import Job, Report, sampler_seed, store_folders, work
from sweeps.study.best import best_trial
from sweeps.study.budget import MLFLOW_ATTR, STOP_ATTR, count, reconcile, stop_requested
from sweeps.study.factory import open_study
from sweeps.study.question import QUESTION_ATTR, check_question, question, record_question
from sweeps.study.samplers import grid_size
from sweeps.study.seeding import enqueue, warm_start
from sweeps.study.stopping import STOPPED_ATTR, reached, recorded, resume, shown
from sweeps.study.stopping import rule as stop_rule
from sweeps.study.storages import Storage, storage_for, storage_spec
from sweeps.tracking.store import Patient, git_commit, sqlite_path
from sweeps.tracking.outbox import Outbox
from sweeps.tracking.tracker import Tracker, run_store
from sweeps.tracking.writer import Writer
from sweeps.tracking.writer import report as writer_report
from sweeps.trial.artifacts import draw_boundaries, use_data
from sweeps.trial.build import fingerprint
from sweeps.trial.mlflow_model import NotRegistered, publish
from sweeps.urls import redact

MAX_RESTARTS = 10  # times the worker pool is started again after a worker died


@dataclass(frozen=True)
class Role:
    name: str  # how its lines begin: [sweep] or [worker]
    launcher: bool  # the sweep's launcher: its own parent run, the Dask cluster, the summary; its
    # Ctrl-C stops every worker of the study. A joined worker logs under the launcher's parent run.


LAUNCHER, JOINED = Role("sweep", True), Role("worker", False)


@dataclass
class Outcome:
    study: optuna.Study
    parent_run_id: str  # "" with tracking off


def run(cfg: DictConfig) -> Outcome:
    return _session(cfg, LAUNCHER)


def join(cfg: DictConfig) -> Outcome:
    """sweep.n_jobs local worker processes on a sweep's study (created if missing), until it holds
    sweep.n_trials finished trials. Trials are logged under the sweep's parent run when its
    launcher still runs (the study records it), else under a parent run of this worker's own."""
    return _session(cfg, JOINED)


def _session(cfg: DictConfig, role: Role) -> Outcome:
    space, data = preflight(cfg)
    fit_budget(cfg, space, role.name)
    storage = storage_for(storage_spec(cfg.sweep.storage, cfg.sweep.study_name), cfg.sweep)
    for note in storage.repair():
        print(f"[{role.name}] {note}", flush=True)
    reserve.hold(store_folders(cfg, storage))  # space to record a stop at a full disk
    try:
        return _sweep(cfg, role, space, data, storage)
    except Exception as err:
        # a full disk before any trial ran too (the study's creation, the parent run's): a sentence
        if isinstance(err, DiskFull) or disk_full(err) is None:
            raise
        raise DiskFull(f"the disk is full ({cfg.tracking.uri}, {storage.shown}): the sweep stopped; free "
                       "some space and run the same command to resume.") from None
    finally:
        reserve.drop()


def _sweep(cfg: DictConfig, role: Role, space: SearchSpace, data: Dataset, storage: Storage) -> Outcome:
    # a file's data can change under its name: its digest is part of the question. A generated
    # dataset is its name, options and seed (in the question already); its floats' last bits may
    # differ on another machine's maths library, which must not refuse a worker joining from there
    asked = question(cfg, space, fingerprint(cfg, data).digest if cfg.dataset.name == "csv" else None)
    study = open_asked(cfg, role, space, storage, asked)
    if cfg.sweep.enqueue is not None and role.launcher:
        print(f"[{role.name}] {enqueue(study, cfg.sweep.enqueue, space, storage)}", flush=True)
    if several(cfg.sweep) and cfg.sweep.pruner != "none":
        print(f"[{role.name}] sweep.pruner={cfg.sweep.pruner} does not apply to several metrics (Optuna prunes on one "
              "value): the trials run without pruning", flush=True)
    if cfg.dataset.val_fraction == 0:
        print(f"[{role.name}] dataset.val_fraction=0: the val_* metrics are computed on the training set "
              "(the runs say so in their tag val_set)", flush=True)
    if role.launcher and count(study) >= cfg.sweep.n_trials:
        pool.stop()  # started while the config was checked: nothing for them to do
        return complete(study, cfg, storage, space)
    # sweep.stop: a study that stopped under these settings runs nothing; under others it goes on
    # (a joined worker never clears a stop: the launcher's settings decide)
    reason, note = resume(study, stop_rule(cfg.sweep)) if role.launcher else (reached(study, None), None)
    if note:
        print(f"[{role.name}] {note}", flush=True)
    if reason is not None:
        pool.stop()
        return stopped_before(study, cfg, storage, reason, role, space)
    if role.launcher:
        if stop_requested(study):  # left by an interrupted launcher: this one resumes
            study.set_user_attr(STOP_ATTR, False)
        tracker, own = Tracker.start_sweep(
            cfg.tracking.uri, cfg.tracking.experiment, run_name=f"sweep-{cfg.sweep.study_name}-{cfg.dataset.name}",
            tags=sweep_tags(cfg, storage), params=sweep_params(cfg), curve_points=cfg.tracking.curve_points,
            enabled=cfg.tracking.enabled), True
    else:
        tracker, own = joined_tracker(cfg, storage, study)
    pool.freeze_heap()  # the last heavy import was MLflow's store
    # the trials' runs are written here, from the records the workers leave; Dask's workers share
    # no folder with this process, and write their own
    writer = Writer(tracker, storage, cfg.sweep.study_name) if tracker.enabled and cfg.sweep.backend == "loky" else None
    if own or writer is not None:
        use_data(tracker, cfg, data)  # the dataset each trial run links to
    if own:  # the parent run's dataset: in the experiment before any trial run links to it
        tracker.log_dataset(tracker.parent_run_id)
    if role.launcher and tracker.enabled:  # for workers that join by hand (python -m sweeps.worker)
        study.set_user_attr(MLFLOW_ATTR, {"uri": cfg.tracking.uri, "experiment_id": tracker.experiment_id,
                                          "parent_run_id": tracker.parent_run_id, "host": here()["host"]})
        tracker.log(tracker.parent_run_id, tags={QUESTION_ATTR: json.dumps(asked, sort_keys=True)})
    reports: list[Report] = []
    try:
        for line in writer.start() if writer is not None else ():  # what a stopped sweep left: before tidy()
            print(f"[{role.name}] {line}", flush=True)
        tidy(study, storage, tracker, role)
        done = count(study)
        with (dask_client(cfg) if role.launcher else contextlib.nullcontext()) as client:
            n, where = planned_workers(cfg, client, cfg.sweep.n_trials - done)
            print(header(cfg, role, storage, tracker, own, done, n, where), flush=True)
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
                print(f"[{role.name}] sweep.timeout={cfg.sweep.timeout:g} s passed: the trials still training were "
                      "stopped and failed (reason timeout), their params queued for the next run", flush=True)
        tidy(study, storage, tracker, role)  # runs of trials another worker failed (a dead worker's) end KILLED
        if role.launcher:
            # the worker processes are idle by now: they train the confirmation's configs too
            confirm(study, tracker, cfg, space, lambda tasks: pool.at_once(tasks, None, timeout=None),
                    workers=n if client is None else 1)
            summarise(study, tracker, cfg, storage)
    except KeyboardInterrupt:
        if writer is not None:
            writer.flush(timeout=10)  # the interrupted trials' ends (KILLED)
        _after_interrupt(study, storage, tracker, role, end_parent=own)
        if writer is not None:  # no run made after the last tidy: one more, once the writer stopped
            writer.stop(timeout=10)
            with contextlib.suppress(Exception):
                tidy(study, storage, tracker, role)
        raise
    except BaseException as err:
        full = isinstance(err, DiskFull) or (isinstance(err, Exception) and disk_full(err) is not None)
        if full:  # the space kept back records the stop: the other workers' trials failed, runs ended
            reserve.release()
            pool.stop()
            if writer is not None:  # the ends it holds, and no run made after tidy() judged them
                writer.stop(timeout=10)
            with contextlib.suppress(Exception):
                tidy(study, storage, tracker, role)
        if own:
            try:  # best effort: the store may be what failed (a full disk without a reserve)
                tracker.end(tracker.parent_run_id, "FAILED", {"error": f"{type(err).__name__}: {err}"})
            except Exception:
                pass
        raise  # a full disk is said in one sentence by _session
    finally:
        pool.stop()
        if writer is not None:  # flushed already unless the sweep failed: what is left waits on disk
            writer.stop(timeout=5)
            writer_report(writer, role.name)
    stopped = [r.stopped for r in reports if r.stopped]
    if own:
        tracker.end(tracker.parent_run_id, "FAILED" if stopped else "FINISHED")
    if not role.launcher:
        print(f"[worker] done: {sum(r.complete for r in reports)} complete, {sum(r.pruned for r in reports)} "
              f"pruned, {sum(r.failed for r in reports)} failed here; the study holds {count(study)} finished "
              "trials", flush=True)
    if (record := recorded(study)) is not None:
        print(f"[{role.name}] the sweep stopped before sweep.n_trials={cfg.sweep.n_trials}: {record['reason']} "
              f"({shown(record['settings'])})",
              flush=True)
    if stopped:
        raise SweepStopped(f"the {'sweep' if role.launcher else 'worker'} stopped early: {stopped[0]}")
    return Outcome(study, tracker.parent_run_id)


def open_asked(cfg: DictConfig, role: Role, space: SearchSpace, storage: Storage, asked: dict[str, str]
               ) -> optuna.Study:
    """Opens the study, creating it, and checks or records its question (and warm-starts a new one),
    as one step under the storage's budget lock. Two launchers started together on one name then
    create it once, and the second finds the first's question: refused if it asks another, sharing
    the study if it asks the same (and never taking the first's new parent run for an orphan's)."""
    with storage.budget_lock(cfg.sweep.study_name):
        existed = study_exists(storage, cfg.sweep.study_name)
        if not role.launcher:  # a joined worker's stores must be the ones the sweep's other hosts see
            check_shared(cfg, storage, existed)
        if not existed:
            check_no_orphan_runs(cfg, storage)
        study = open_study(cfg, storage, space, seed=cfg.sweep.seed, create=True)
        if existed:
            check_store_kept(cfg, storage, study)
        if check_question(study, asked, storage.shown):  # a study asking another question is refused here
            record_question(study, asked)
            if cfg.sweep.warm_start is not None and not study.get_trials(deepcopy=False):
                print(f"[{role.name}] {warm_start(study, cfg.sweep.warm_start, cfg, space, asked)}", flush=True)
    return study


def study_exists(storage: Storage, name: str) -> bool:
    """Whether the storage holds the study; a journal that does not exist yet is not made here."""
    if storage.local_file is not None and not storage.local_file.exists():
        return False
    try:
        storage.open().get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def _client(cfg: DictConfig) -> Any:
    """An MlflowClient of the tracking store if it exists (nothing is created here), else None."""
    if not cfg.tracking.enabled:
        return None
    from mlflow import MlflowClient  # deferred: mlflow's import, which tracking.enabled=false never pays

    db = sqlite_path(cfg.tracking.uri)
    return None if db is not None and not db.exists() else Patient(lambda: MlflowClient(tracking_uri=cfg.tracking.uri))


def check_no_orphan_runs(cfg: DictConfig, storage: Storage) -> None:
    """A study about to be created must not have runs already: the storage that held it was deleted,
    emptied or replaced, and a new study would number its trials from 0 beside the old runs."""
    client = _client(cfg)
    exp = client.get_experiment_by_name(cfg.tracking.experiment) if client is not None else None
    if exp is None:
        return
    name = cfg.sweep.study_name
    # the study's name is file-name safe; the storage's path may hold a quote: compared here
    runs = client.search_runs([exp.experiment_id], max_results=50, filter_string=f"tags.`optuna.study` = '{name}'")
    if any(r.data.tags.get("optuna.storage") == storage.shown for r in runs):
        raise ConfigError(f"study {name!r} is not in {storage.shown}, but the MLflow experiment {exp.name!r} in "
                          f"{cfg.tracking.uri} holds runs of it from there: the storage was deleted, emptied or "
                          "replaced. Restore it to resume; to start afresh on purpose, give a new sweep.study_name.")


def check_store_kept(cfg: DictConfig, storage: Storage, study: optuna.Study) -> None:
    """A study whose trials were tracked in this MLflow store finds the store, and its last parent run
    in it: a deleted, emptied or replaced store would leave its finished trials pointing at nothing."""
    record = study.user_attrs.get(MLFLOW_ATTR) or {}
    if not cfg.tracking.enabled or record.get("uri") != cfg.tracking.uri or not count(study):
        return
    where = f"study {study.study_name!r} in {storage.shown} has {count(study)} trials tracked in {cfg.tracking.uri}"
    afresh = "Restore it to resume; to start afresh on purpose, give a new sweep.study_name."
    client = _client(cfg)
    if client is None:
        raise ConfigError(f"{where}, but that MLflow store is missing: it was deleted or moved. {afresh}")
    from mlflow.exceptions import MlflowException  # deferred, as in _client

    try:
        client.get_run(record["parent_run_id"])
    except MlflowException:
        raise ConfigError(f"{where}, but its run {record['parent_run_id']} is not in that store: the store was "
                          f"emptied or replaced. {afresh}") from None


def complete(study: optuna.Study, cfg: DictConfig, storage: Storage, space: SearchSpace | None = None) -> Outcome:
    """A study that holds its budget already: no new run; what its last sweep left unsettled
    (settle), its best trial, and how to extend it."""
    parent = settle(study, cfg, storage, LAUNCHER, space)
    print(f"The study is complete: it holds {count(study)} finished trials of sweep.n_trials="
          f"{cfg.sweep.n_trials}. To run more, ask for more: sweep.n_trials={count(study) + cfg.sweep.n_trials}.",
          flush=True)
    return Outcome(study, parent)


def stopped_before(study: optuna.Study, cfg: DictConfig, storage: Storage, reason: str, role: Role,
                   space: SearchSpace | None = None) -> Outcome:
    """A study that stopped improving (sweep.stop) under the same settings: no new run; what its last
    sweep left unsettled (settle), its best trial, why it stopped and how to go on."""
    parent = settle(study, cfg, storage, role, space)
    print(f"The study stopped: {reason}. It runs nothing more under the same sweep.stop settings; to go on, "
          "change them (a larger sweep.stop.patience, another sweep.stop.target) or drop them "
          "(sweep.stop.patience=null sweep.stop.target=null).", flush=True)
    return Outcome(study, parent)


def settle(study: optuna.Study, cfg: DictConfig, storage: Storage, role: Role, space: SearchSpace | None = None
           ) -> str:
    """What a session that runs no trial still owes the stores, since the last sweep may have been
    killed at its end (kill -9, a signal, a store away during its summary): runs its dead processes
    left RUNNING end KILLED (tidy). For a launcher, the study's last parent run in this store gets
    its summary if that was cut short (written into it; its status stays KILLED or FAILED), else
    the Pareto tags follow the front and the best network is logged if its run is here without
    one; its trials are confirmed (sweep.confirm) if the study holds no confirmation of the trials
    it has (the last sweep was killed while it confirmed, or ran with sweep.confirm.top=0). Then
    the best trial on the terminal. Returns that parent run's id ("" if none is here)."""
    tracker = store_tracker(cfg)
    if tracker.enabled:  # the trial records a sweep killed at its end left, before tidy() judges their runs
        writer = Writer(tracker, storage, cfg.sweep.study_name)
        for line in writer.start():
            print(f"[{role.name}] {line}", flush=True)
        writer.stop()
    tidy(study, storage, tracker, role)
    record = study.user_attrs.get(MLFLOW_ATTR) or {}
    mine = role.launcher and tracker.enabled and record.get("uri") == cfg.tracking.uri
    parent = record.get("parent_run_id", "") if mine else ""
    if role.launcher and space is not None and unconfirmed(study, cfg):
        confirm(study, replace(tracker, parent_run_id=parent), cfg, space)
    if parent and summary.WHOLE not in tracker.client.get_run(parent).data.tags:
        print(f"[sweep] the summary of run {parent} was cut short: written now", flush=True)
        summarise(study, replace(tracker, parent_run_id=parent), cfg, storage)  # which prints the best
        return parent
    summary.print_best(study, cfg)
    if role.launcher:
        if several(cfg.sweep):
            pareto.retag(study, tracker, pareto.front(study))
        model_of_best(study, tracker, cfg)
    return parent


def store_tracker(cfg: DictConfig) -> Tracker:
    """A Tracker of the study's experiment, without a parent run; disabled with tracking off or when
    the store or the experiment does not exist (nothing is made here)."""
    client = _client(cfg)
    exp = client.get_experiment_by_name(cfg.tracking.experiment) if client is not None else None
    if exp is None:
        return Tracker(cfg.tracking.uri, enabled=False)
    return Tracker(cfg.tracking.uri, experiment_id=exp.experiment_id, curve_points=cfg.tracking.curve_points)


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


def summarise(study: optuna.Study, tracker: Tracker, cfg: DictConfig, storage: Storage) -> None:
    """The study's summary on the parent run, the decision boundaries of the best trials and the
    best network as an MLflow model; Optuna's figures are drawn meanwhile by a worker process, idle
    by now (sweeps.runner.pool.at_once)."""
    extra = []
    if tracker.enabled and cfg.tracking.decision_boundary == "top":
        top = [(t.number, t.user_attrs.get("run_id", ""), t.user_attrs.get("metrics"))
               for t in summary.top_trials(study)]
        extra.append(functools.partial(draw_boundaries, top, tracker))
    extra.append(functools.partial(model_of_best, study, tracker, cfg))
    figures = functools.partial(draw_optuna_figures, storage.spec, study.study_name, metric_names(cfg.sweep))
    record = recorded(study)
    notes = [f"The sweep stopped before sweep.n_trials={cfg.sweep.n_trials}: {record['reason']}."] if record else []
    summary.finish_sweep(study, tracker, cfg, extra=extra, optuna_task=figures, notes=notes,
                         run_tasks=lambda tasks: pool.at_once(tasks, None))


def model_of_best(study: optuna.Study, tracker: Tracker, cfg: DictConfig) -> None:
    """The best complete trial's network as the MLflow model `model` of its run, logged once: a
    resumed sweep that finds a new best logs that trial's, and the old best keeps its own. With
    tracking.register_model, also a new version of that registered model. A failure costs the model
    only, with one line: the trials and the summary are recorded, and the next run of the same
    command logs it."""
    best = best_trial(study)  # None for several objectives: a Pareto front, no one network to log
    run_id = best.user_attrs.get("run_id", "") if best is not None else ""
    if not tracker.enabled or not run_id:
        return
    if (where := run_store(best.user_attrs, tracker.uri)) != tracker.uri:  # a resume under another tracking.uri
        print(f"[sweep] trial {best.number}'s run is in {where}, not in {tracker.uri}: its network is logged as an "
              f"MLflow model there (by the same command with tracking.uri={where}, if it is not yet)", flush=True)
        return
    tags = {"optuna.study": study.study_name, "optuna.trial": str(best.number)}
    register = cfg.tracking.register_model
    try:
        out = publish(tracker, run_id, tags, {k: str(v) for k, v in best.params.items()}, register)
    except NotRegistered as err:
        print(f"[sweep] warning: trial {best.number}'s network is the MLflow model {err.uri}, but it was not "
              f"registered as {register!r} ({err}); running the same command again registers it",
              file=sys.stderr, flush=True)
        return
    except Exception as err:
        print(f"[sweep] warning: trial {best.number}'s network was not logged as an MLflow model "
              f"({type(err).__name__}: {(str(err).splitlines() or [''])[0]}); the sweep is recorded, "
              "and running the same command again logs it", file=sys.stderr, flush=True)
        return
    version = f"version {out.version} of registered model {register!r}"
    if out.logged:
        print(f"[sweep] trial {best.number}'s network is the MLflow model {out.uri}"
              + (f", {version}" if out.registered else ""), flush=True)
    elif out.registered:
        print(f"[sweep] trial {best.number}'s MLflow model {out.uri} is now {version}", flush=True)


def draw_optuna_figures(spec: str, study_name: str, metric: str | list[str]) -> str:
    """Optuna's figures of the study, drawn into a new folder whose path is returned (the parent
    run logs them), in whichever process runs it (an idle worker's, by pool.at_once, which never
    imports mlflow): the study is read again from its storage there."""
    study = optuna.load_study(study_name=study_name, storage=storage_for(spec).open())
    folder = tempfile.mkdtemp(prefix="nnsweeps-figures-")
    for name, write in summary.optuna_artifacts(study, metric).items():
        write(Path(folder) / name)
    return folder


def fit_budget(cfg: DictConfig, space: SearchSpace, who: str = "sweep") -> None:
    """The grid's size bounds the budget."""
    size = grid_size(cfg.sweep, space)
    if size is not None and cfg.sweep.n_trials > size:
        print(f"[{who}] the grid has {size} points: running {size} trials, not {cfg.sweep.n_trials}")
        cfg.sweep.n_trials = size


def sweep_tags(cfg: DictConfig, storage: Storage) -> dict[str, str]:
    """The tags of the parent run, which every trial run carries too."""
    tags = {"optuna.study": cfg.sweep.study_name, "optuna.storage": storage.shown, "sampler": cfg.sweep.sampler,
            "pruner": cfg.sweep.pruner if pruning(cfg.sweep) else "none",  # several metrics prune nothing
            "mlflow.source.git.commit": git_commit(), "dataset": cfg.dataset.name}
    if cfg.dataset.val_fraction == 0:
        tags["val_set"] = "training set"  # the val_* metrics are the training set's: say so on every run
    return tags


def sweep_params(cfg: DictConfig) -> dict[str, str]:
    params = {k: v for k, v in flatten(cfg).items() if not k.startswith("tracking.")}
    params["sweep.storage"] = redact(params.get("sweep.storage", "null"))
    return params


def joined_tracker(cfg: DictConfig, storage: Storage, study: optuna.Study) -> tuple[Tracker, bool]:
    """The sweep's parent run if its launcher recorded one on the study and it still runs, else a
    new parent run of this worker's own; and whether it is its own."""
    if not cfg.tracking.enabled:
        return Tracker(cfg.tracking.uri, enabled=False), False
    record = study.user_attrs.get(MLFLOW_ATTR) or {}
    if record.get("uri") == cfg.tracking.uri and record.get("parent_run_id"):
        tracker = Tracker(cfg.tracking.uri, experiment_id=record["experiment_id"],
                          parent_run_id=record["parent_run_id"], curve_points=cfg.tracking.curve_points,
                          common_tags=sweep_tags(cfg, storage))
        from mlflow.exceptions import MlflowException  # deferred, as in _client

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
        tags={**sweep_tags(cfg, storage), "nnsweeps.worker": "standalone"}, params=sweep_params(cfg),
        curve_points=cfg.tracking.curve_points)
    tracker.common_tags.pop("nnsweeps.worker", None)
    return tracker, True


def planned_workers(cfg: DictConfig, client: Any, remaining: int) -> tuple[int, str]:
    """How many workers to start, and where, for the status line."""
    if client is None:
        n = min(pool.size(cfg.sweep.n_jobs), max(remaining, 1))
        return n, f"{n} worker process(es)"
    threads = sum(client.nthreads().values())
    n = min(threads if cfg.sweep.n_jobs == -1 else cfg.sweep.n_jobs, max(remaining, 1))
    return n, f"{n} Dask task(s) on the {threads} worker thread(s) of {cfg.sweep.scheduler}"


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
            reports += run_workers(cfg, storage, tracker, n, count(study), client, salt, deadline,
                                   decides_stop=role.launcher, writer=writer)
            break
        except worker_died(cfg.sweep.backend) as err:
            # loky stops the whole pool when one worker dies (Dask only when a task's workers kept
            # dying): fail the dead trials, start again
            print(f"\n[{role.name}] a worker process died ({str(err).splitlines()[0][:120]}); "
                  "its trial is failed and run again", file=sys.stderr, flush=True)
            if writer is not None:
                writer.flush()  # the other workers' ends, before their runs are judged
            tidy(study, storage, tracker, role)
    else:
        raise SweepStopped(f"worker processes died {MAX_RESTARTS + 1} times; see the messages above")
    return reports


def run_workers(cfg: DictConfig, storage: Storage, tracker: Tracker, n: int, done: int, client: Any = None,
                salt: int = 0, deadline: float | None = None, decides_stop: bool = True,
                writer: Writer | None = None) -> list[Report]:
    container = OmegaConf.to_container(cfg, resolve=True)
    container["sweep"]["storage"] = redact(container["sweep"]["storage"] or "") or None  # logged by trials
    # n_jobs x BLAS threads <= cores (sweeps.runner.pool.blas_threads). A Dask worker runs one task
    # per thread, and a cluster has about one thread per core: one BLAS thread each.
    threads = 1 if client is not None else pool.blas_threads(n)
    # each job its own Outbox or Tracker (tags): the first runs in this process, beside the launcher's
    def recorder() -> Tracker | Outbox:
        if writer is not None:
            return writer.outbox(cfg.tracking.curve_points, tracker.common_tags)
        return replace(tracker, common_tags=dict(tracker.common_tags))

    jobs = [Job(container, storage.spec, recorder(), i, sampler_seed(cfg.sweep.seed, i, done, salt), threads,
                deadline, decides_stop) for i in range(n)]
    if client is not None:
        # batch_size=1: each job is a worker's whole loop, never two of them in one Dask task
        with parallel_config(backend="dask", client=client):
            return Parallel(n_jobs=n, batch_size=1)(delayed(work)(job) for job in jobs)
    # worker processes never import mlflow when a writer records their trials; its thread here
    # would compete with a trial for this interpreter, so every worker is a process of its own
    return pool.map(work, jobs, n, tracker.uri if tracker.enabled and writer is None else None, WARM_UP,
                    here=writer is None)


def tidy(study: optuna.Study, storage: Storage, tracker: Tracker, role: Role = LAUNCHER) -> None:
    """Makes the two stores agree after a crash: trials whose process died are failed (and
    queued again), and their MLflow runs, like any run left RUNNING by a dead process, KILLED;
    so are the runs that ended FINISHED of trials that were failed all the same."""
    grace = storage.grace_seconds()
    for t in reconcile(study, storage):
        why = f"sent no heartbeat for {grace} s" if grace else "was left running by a process that is gone"
        print(f"[{role.name}] trial {t.number} {why}: failed, queued again", flush=True)
    # a run whose trial Optuna was told the end of is its writer's to end: its record is on disk
    # (sweeps.tracking.outbox), sent by that writer or by the next sweep on its host
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE,
                                                                               TrialState.PRUNED))}
    for run_id in tracker.orphans(study.study_name, running):
        tracker.end(run_id, "KILLED", {"optuna.state": "FAIL", "reason": "its process died"})
    failed = [t.user_attrs["run_id"] for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
              if t.user_attrs.get("run_id")]
    for run_id in tracker.finished_among(failed):
        tracker.end(run_id, "KILLED", {"optuna.state": "FAIL", "reason": "its trial was failed after the run ended: "
                                       "its worker died, or was too late, before telling Optuna"})


def _after_interrupt(study: optuna.Study, storage: Storage, tracker: Tracker, role: Role, end_parent: bool) -> None:
    """Ctrl-C: local workers abort their trial (FAIL, run KILLED); catch any that could not. The
    launcher's Ctrl-C also asks workers elsewhere (Dask, python -m sweeps.worker) to stop after
    their running trial; a joined worker's stops only itself."""
    if role.launcher:
        try:
            study.set_user_attr(STOP_ATTR, True)
        except Exception:  # the storage is gone: nothing to ask through
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            tidy(study, storage, tracker, role)
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                break
        except KeyboardInterrupt:
            continue
        time.sleep(0.5)
    if end_parent:
        tracker.end(tracker.parent_run_id, "KILLED")
