"""Finishing a study: the confirmation of its best configs, its summary on the parent run, the
best network as an MLflow model and the best trial on the terminal; and what a session that runs
no trial (the study complete, or stopped) still owes the stores of the last sweep (settle).
"""

from __future__ import annotations

import logging
import functools
import tempfile
from dataclasses import replace
from pathlib import Path

import optuna
from omegaconf import DictConfig

from sweeps.config.objectives import metric_names, several
from sweeps.config.space import SearchSpace
from sweeps.record import SweepLink
from sweeps.report import pareto, summary
from sweeps.runner import pool
from sweeps.runner.confirm import confirm, unconfirmed
from sweeps.runner.link import store_tracker, tidy
from sweeps.runner.role import LAUNCHER, Role
from sweeps.study.best import best_trial
from sweeps.study.budget import count
from sweeps.study.stopping import recorded
from sweeps.study.storages import Storage, storage_for
from sweeps.tracking.tracker import Tracker, run_store
from sweeps.tracking.writer import Writer
from sweeps.trial.artifacts import draw_boundaries
from sweeps.trial.mlflow_model import NotRegistered, publish

logger = logging.getLogger(__name__)


def finish(study: optuna.Study, tracker: Tracker, cfg: DictConfig, storage: Storage, space: SearchSpace,
           workers: int) -> None:
    """A launcher's end of the sweep: its best configs confirmed by the worker processes, idle by
    now, then the summary."""
    confirm(study, tracker, cfg, space, lambda tasks: pool.at_once(tasks, timeout=None), workers=workers)
    summarise(study, tracker, cfg, storage)


def complete(study: optuna.Study, cfg: DictConfig, storage: Storage, space: SearchSpace | None = None) -> str:
    """A study that holds its budget already: no new run; what its last sweep left unsettled
    (settle), its best trial, and how to extend it. Returns its last parent run's id (settle)."""
    parent = settle(study, cfg, storage, LAUNCHER, space)
    logger.info(f"The study is complete: it holds {count(study)} finished trials of sweep.n_trials="
          f"{cfg.sweep.n_trials}. To run more, ask for more: sweep.n_trials={count(study) + cfg.sweep.n_trials}.")
    return parent


def stopped_before(study: optuna.Study, cfg: DictConfig, storage: Storage, reason: str, role: Role,
                   space: SearchSpace | None = None) -> str:
    """A study that stopped improving (sweep.stop) under the same settings: no new run; what its last
    sweep left unsettled (settle), its best trial, why it stopped and how to go on. Returns its last
    parent run's id (settle)."""
    parent = settle(study, cfg, storage, role, space)
    logger.info(f"The study stopped: {reason}. It runs nothing more under the same sweep.stop settings; to go on, "
          "change them (a larger sweep.stop.patience, another sweep.stop.target) or drop them "
          "(sweep.stop.patience=null sweep.stop.target=null).")
    return parent


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
            logger.info(f"[{role.name}] {line}")
        writer.stop()
    tidy(study, storage, tracker, role)
    link = SweepLink.of(study)
    parent = link.parent_run_id if role.launcher and tracker.enabled and link.tracks_into(cfg.tracking.uri) else ""
    if role.launcher and space is not None and unconfirmed(study, cfg):
        confirm(study, replace(tracker, parent_run_id=parent), cfg, space)
    if parent and summary.WHOLE not in tracker.client.get_run(parent).data.tags:
        logger.info(f"[sweep] the summary of run {parent} was cut short: written now")
        summarise(study, replace(tracker, parent_run_id=parent), cfg, storage)  # which prints the best
        return parent
    summary.print_best(study, cfg)
    if role.launcher:
        if several(cfg.sweep):
            pareto.retag(study, tracker, pareto.front(study))
        model_of_best(study, tracker, cfg)
    return parent


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
                         run_tasks=pool.at_once)


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
        logger.info(f"[sweep] trial {best.number}'s run is in {where}, not in {tracker.uri}: its network is logged as an "
              f"MLflow model there (by the same command with tracking.uri={where}, if it is not yet)")
        return
    tags = {"optuna.study": study.study_name, "optuna.trial": str(best.number)}
    register = cfg.tracking.register_model
    try:
        out = publish(tracker, run_id, tags, {k: str(v) for k, v in best.params.items()}, register)
    except NotRegistered as err:
        logger.warning(f"[sweep] warning: trial {best.number}'s network is the MLflow model {err.uri}, but it was not "
              f"registered as {register!r} ({err}); running the same command again registers it")
        return
    except Exception as err:
        logger.warning(f"[sweep] warning: trial {best.number}'s network was not logged as an MLflow model "
              f"({type(err).__name__}: {(str(err).splitlines() or [''])[0]}); the sweep is recorded, "
              "and running the same command again logs it")
        return
    version = f"version {out.version} of registered model {register!r}"
    if out.logged:
        logger.info(f"[sweep] trial {best.number}'s network is the MLflow model {out.uri}"
              + (f", {version}" if out.registered else ""))
    elif out.registered:
        logger.info(f"[sweep] trial {best.number}'s MLflow model {out.uri} is now {version}")


def draw_optuna_figures(spec: str, study_name: str, metric: str | list[str]) -> str:
    """Optuna's figures of the study, drawn into a new folder whose path is returned (the parent
    run logs them), in whichever process runs it (an idle worker's, by pool.at_once, which never
    imports mlflow): the study is read again from its storage there."""
    study = optuna.load_study(study_name=study_name, storage=storage_for(spec).open())
    folder = tempfile.mkdtemp(prefix="nnsweeps-figures-")
    for name, write in summary.optuna_artifacts(study, metric).items():
        write(Path(folder) / name)
    return folder
