"""A session: one invocation's work on a study, from its checks to its last trial.

`run(cfg)` is `python -m sweeps` (and sweeps.run): it opens the study and the MLflow parent run,
runs the workers with a status line, then summarises the study on the parent run and prints the
best trial. `join(cfg)` is `python -m sweeps.worker`: local worker processes for a sweep that
runs already (or that it starts), without the summary. Both are `_session()` with a Role.

Its parts, in the order they run: the stores' checks and the study's question (stores), the
parent run and the trials' runs (link), the workers (drive), the summary (finish). No worker
imports mlflow: this process's writer (sweeps.tracking.writer) makes the trials' runs from
their records.
"""

from __future__ import annotations

import logging
import json
from dataclasses import dataclass

import optuna
from omegaconf import DictConfig

from nncore import Dataset
from sweeps import reserve
from sweeps.config.objectives import several
from sweeps.config.space import SearchSpace
from sweeps.errors import DiskFull, SweepStopped, disk_full
from sweeps.runner import pool
from sweeps.runner.checks import preflight
from sweeps.runner.drive import run_trials
from sweeps.runner.finish import complete, finish, stopped_before
from sweeps.runner.link import open_parent, recording, tidy
from sweeps.runner.role import JOINED, LAUNCHER, Role
from sweeps.runner.stores import fit_budget, open_asked
from sweeps.runner.work import store_folders
from sweeps.study.budget import STOP_ATTR, count, stop_requested
from sweeps.study.question import QUESTION_ATTR, question
from sweeps.study.seeding import enqueue
from sweeps.study.stopping import reached, recorded, resume, shown
from sweeps.study.stopping import rule as stop_rule
from sweeps.study.storages import Storage, storage_for, storage_spec
from sweeps.trial.artifacts import use_data
from sweeps.trial.build import fingerprint

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    study: optuna.Study
    parent_run_id: str  # "" with tracking off


def run(cfg: DictConfig, space: SearchSpace | None = None) -> Outcome:
    """space: the launch's checks' (sweeps.runner.cli.start_workers), so that they run once."""
    return _session(cfg, LAUNCHER, space)


def join(cfg: DictConfig, space: SearchSpace | None = None) -> Outcome:
    """sweep.n_jobs local worker processes on a sweep's study (created if missing), until it holds
    sweep.n_trials finished trials. Trials are logged under the sweep's parent run when its
    launcher still runs (the study records it), else under a parent run of this worker's own."""
    return _session(cfg, JOINED, space)


def _session(cfg: DictConfig, role: Role, space: SearchSpace | None) -> Outcome:
    space, data = preflight(cfg, space)
    fit_budget(cfg, space, role.name)
    storage = storage_for(storage_spec(cfg.sweep.storage, cfg.sweep.study_name), cfg.sweep)
    for note in storage.repair():
        logger.info(f"[{role.name}] {note}")
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
    asked = question(cfg, space, fingerprint(cfg.dataset, cfg.seed, data).digest if cfg.dataset.name == "csv" else None)
    study = open_asked(cfg, role, space, storage, asked)
    _notes(cfg, role, study, space, storage)
    if (parent := _nothing_to_run(cfg, role, study, storage, space)) is not None:
        return Outcome(study, parent)
    tracker, own = open_parent(cfg, role, storage, study)
    pool.freeze_heap()  # the last heavy import was MLflow's store
    if own or tracker.enabled:
        use_data(tracker, cfg.dataset, cfg.seed, data)  # the dataset each trial run links to
    if own:  # the parent run's dataset: in the experiment before any trial run links to it
        tracker.log_dataset(tracker.parent_run_id)
    if role.launcher and tracker.enabled:
        tracker.log(tracker.parent_run_id, tags={QUESTION_ATTR: json.dumps(asked, sort_keys=True)})
    with recording(study, storage, tracker, role, own) as writer:
        trials = run_trials(cfg, role, study, storage, tracker, own, writer)
        tidy(study, storage, tracker, role)  # runs of trials another worker failed (a dead worker's) end KILLED
        if role.launcher:
            finish(study, tracker, cfg, storage, space, trials.workers)
    stopped = [r.stopped for r in trials.reports if r.stopped]
    if own:
        tracker.end(tracker.parent_run_id, "FAILED" if stopped else "FINISHED")
    if not role.launcher:
        r = trials.reports
        logger.info(f"[worker] done: {sum(t.complete for t in r)} complete, {sum(t.pruned for t in r)} pruned, "
              f"{sum(t.failed for t in r)} failed here; the study holds {count(study)} finished trials")
    if (record := recorded(study)) is not None:
        logger.info(f"[{role.name}] the sweep stopped before sweep.n_trials={cfg.sweep.n_trials}: {record['reason']} "
              f"({shown(record['settings'])})")
    if stopped:
        raise SweepStopped(f"the {'sweep' if role.launcher else 'worker'} stopped early: {stopped[0]}")
    return Outcome(study, tracker.parent_run_id)


def _notes(cfg: DictConfig, role: Role, study: optuna.Study, space: SearchSpace, storage: Storage) -> None:
    """What the settings change that the user may not expect, said before anything runs."""
    if cfg.sweep.enqueue is not None and role.launcher:
        logger.info(f"[{role.name}] {enqueue(study, cfg.sweep.enqueue, space, storage)}")
    if several(cfg.sweep) and cfg.sweep.pruner != "none":
        logger.info(f"[{role.name}] sweep.pruner={cfg.sweep.pruner} does not apply to several metrics (Optuna prunes on one "
              "value): the trials run without pruning")
    if cfg.dataset.val_fraction == 0:
        logger.info(f"[{role.name}] dataset.val_fraction=0: the val_* metrics are computed on the training set "
              "(the runs say so in their tag val_set)")


def _nothing_to_run(cfg: DictConfig, role: Role, study: optuna.Study, storage: Storage, space: SearchSpace
                    ) -> str | None:
    """A study that is complete, or that stopped under these sweep.stop settings, runs nothing: it
    settles what its last sweep left (its parent run's id is returned). Else None; a launcher then
    clears the stop an interrupted launcher asked for, and resumes."""
    if role.launcher and count(study) >= cfg.sweep.n_trials:
        pool.stop()  # started while the config was checked: nothing for them to do
        return complete(study, cfg, storage, space)
    # under other sweep.stop settings a stopped study goes on (a joined worker never clears a stop:
    # the launcher's settings decide)
    reason, note = resume(study, stop_rule(cfg.sweep)) if role.launcher else (reached(study, None), None)
    if note:
        logger.info(f"[{role.name}] {note}")
    if reason is not None:
        pool.stop()
        return stopped_before(study, cfg, storage, reason, role, space)
    if role.launcher and stop_requested(study):  # left by an interrupted launcher: this one resumes
        study.set_user_attr(STOP_ATTR, False)
    return None
