"""Before any trial runs: the stores are checked, and the study is opened with its question.

A study that is about to be created must not have runs already (its storage was lost), a study
that exists must find its MLflow store and last parent run (the store was not lost), and the
study's question is checked or recorded under the storage's budget lock, so that two launchers
started together never both run.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna
from omegaconf import DictConfig

from sweeps.config.space import SearchSpace
from sweeps.errors import ConfigError
from sweeps.record import SweepLink
from sweeps.runner.role import Role
from sweeps.runner.shared import check_shared
from sweeps.study.budget import count
from sweeps.study.factory import open_study
from sweeps.study.question import check_question, record_question
from sweeps.study.samplers import grid_size
from sweeps.study.seeding import warm_start
from sweeps.study.storages import Storage
from sweeps.tracking.store import Patient, sqlite_path

logger = logging.getLogger(__name__)


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
        study = open_study(cfg.sweep, storage, space, seed=cfg.sweep.seed, create=True)
        if existed:
            check_store_kept(cfg, storage, study)
        if check_question(study, asked, storage.shown):  # a study asking another question is refused here
            record_question(study, asked)
            if cfg.sweep.warm_start is not None and not study.get_trials(deepcopy=False):
                logger.info(f"[{role.name}] {warm_start(study, cfg.sweep.warm_start, cfg, space, asked)}")
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


def tracking_client(cfg: DictConfig) -> Any:
    """An MlflowClient of the tracking store if it exists (nothing is created here), else None."""
    if not cfg.tracking.enabled:
        return None
    from mlflow import MlflowClient  # deferred: mlflow's import, which tracking.enabled=false never pays

    db = sqlite_path(cfg.tracking.uri)
    return None if db is not None and not db.exists() else Patient(lambda: MlflowClient(tracking_uri=cfg.tracking.uri))


def check_no_orphan_runs(cfg: DictConfig, storage: Storage) -> None:
    """A study about to be created must not have runs already: the storage that held it was deleted,
    emptied or replaced, and a new study would number its trials from 0 beside the old runs."""
    client = tracking_client(cfg)
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
    link = SweepLink.of(study)
    if not cfg.tracking.enabled or not link.tracks_into(cfg.tracking.uri) or not count(study):
        return
    where = f"study {study.study_name!r} in {storage.shown} has {count(study)} trials tracked in {cfg.tracking.uri}"
    afresh = "Restore it to resume; to start afresh on purpose, give a new sweep.study_name."
    client = tracking_client(cfg)
    if client is None:
        raise ConfigError(f"{where}, but that MLflow store is missing: it was deleted or moved. {afresh}")
    from mlflow.exceptions import MlflowException  # deferred, as in tracking_client

    try:
        client.get_run(link.parent_run_id)
    except MlflowException:
        raise ConfigError(f"{where}, but its run {link.parent_run_id} is not in that store: the store was "
                          f"emptied or replaced. {afresh}") from None


def fit_budget(cfg: DictConfig, space: SearchSpace, who: str = "sweep") -> None:
    """The grid's size bounds the budget."""
    size = grid_size(cfg.sweep, space)
    if size is not None and cfg.sweep.n_trials > size:
        logger.info(f"[{who}] the grid has {size} points: running {size} trials, not {cfg.sweep.n_trials}")
        cfg.sweep.n_trials = size
