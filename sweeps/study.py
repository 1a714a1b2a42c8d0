"""The Optuna side: storage, sampler and pruner from the config, and the exact trial budget.

Storage: a journal file (Optuna's recommendation for several processes on one machine;
SQLite is not safe for parallel writers) unless `sweep.storage` is an RDB URL.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
from omegaconf import DictConfig
from optuna.trial import TrialState

from sweeps.config import ConfigError, resolve_direction
from sweeps.processes import alive, here
from sweeps.space import SearchSpace

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

# name -> factory(cfg.sweep, seed, space); seed differs per worker so that parallel random
# draws do not repeat each other.
SAMPLERS: dict[str, Callable[[DictConfig, int, SearchSpace], optuna.samplers.BaseSampler]] = {
    "tpe": lambda s, seed, _: optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials,
                                                         multivariate=True, constant_liar=True),
    "random": lambda s, seed, _: optuna.samplers.RandomSampler(seed=seed),
    "grid": lambda s, seed, space: optuna.samplers.GridSampler(space.grid(), seed=seed),
    "cmaes": lambda s, seed, _: optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=s.n_startup_trials),
    "qmc": lambda s, seed, _: optuna.samplers.QMCSampler(seed=seed, scramble=True),
    "nsgaii": lambda s, seed, _: optuna.samplers.NSGAIISampler(seed=seed),
}

PRUNERS: dict[str, Callable[[DictConfig], optuna.pruners.BasePruner]] = {
    "median": lambda s: optuna.pruners.MedianPruner(n_startup_trials=s.n_startup_trials,
                                                    n_warmup_steps=s.warmup_steps),
    # steps are iterations: the smallest budget a trial gets before a rung decides on it
    "hyperband": lambda s: optuna.pruners.HyperbandPruner(min_resource=max(1, s.warmup_steps)),
    "successive_halving": lambda s: optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, s.warmup_steps)),
    "none": lambda s: optuna.pruners.NopPruner(),
}


def is_url(storage: str) -> bool:
    return "://" in storage


def storage_spec(cfg: DictConfig) -> str:
    """The storage as one string: an RDB URL, or the absolute path of the journal file.

    The default journal lives in outputs/ of the directory the sweep is started from (not in
    Hydra's per-run folder), so re-running the same command finds the study and resumes it.
    """
    storage = cfg.sweep.storage
    if storage and is_url(storage):
        return storage
    path = Path(storage) if storage else Path("outputs") / f"{cfg.sweep.study_name}.journal"
    return str(path.expanduser().resolve())


STALE_LOCK_SECONDS = 10  # a journal write holds its lock for milliseconds


def _journal_lock(spec: str) -> optuna.storages.journal.JournalFileOpenLock:
    return optuna.storages.journal.JournalFileOpenLock(spec, grace_period=STALE_LOCK_SECONDS)


def open_storage(spec: str) -> optuna.storages.BaseStorage:
    if is_url(spec):
        return optuna.storages.RDBStorage(spec)
    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(spec, lock_obj=_journal_lock(spec))
    return optuna.storages.JournalStorage(backend)


def repair_journal(spec: str) -> list[str]:
    """Undoes what a crash in the middle of a journal write leaves, and says what it did.

    A stale lock file would hold every process up; a torn last line (a write cut short) would
    have the next write glued to it, making that line unreadable, so Optuna would silently
    drop the operations in it. The torn bytes never formed an operation anyone could read:
    they are cut off and kept in a side file.
    """
    if is_url(spec) or not Path(spec).exists():
        return []
    notes = []
    lock_file = Path(spec + ".lock")
    try:
        age = time.time() - lock_file.stat().st_mtime
    except FileNotFoundError:
        age = 0.0
    if age > STALE_LOCK_SECONDS:
        lock_file.unlink(missing_ok=True)
        notes.append(f"removed the stale lock file {lock_file} ({age:.0f} s old, left by a crashed process)")
    lock = _journal_lock(spec)
    lock.acquire()
    try:
        with open(spec, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                side = Path(f"{spec}.torn-{int(time.time())}")
                side.write_bytes(data[keep:])
                f.truncate(keep)
                notes.append(f"the journal {spec} ended in a line torn by a crash ({len(data) - keep} bytes): "
                             f"cut it off (kept in {side}); no finished trial is lost")
    finally:
        lock.release()
    return notes


def make_sampler(cfg: DictConfig, seed: int, space: SearchSpace) -> optuna.samplers.BaseSampler:
    name = cfg.sweep.sampler
    if name not in SAMPLERS:
        raise ConfigError(f"sweep.sampler={name!r} is not known: choose one of {', '.join(sorted(SAMPLERS))}.")
    return SAMPLERS[name](cfg.sweep, seed, space)


def make_pruner(cfg: DictConfig) -> optuna.pruners.BasePruner:
    name = cfg.sweep.pruner
    if name not in PRUNERS:
        raise ConfigError(f"sweep.pruner={name!r} is not known: choose one of {', '.join(sorted(PRUNERS))}.")
    return PRUNERS[name](cfg.sweep)


def load_study(cfg: DictConfig, spec: str, space: SearchSpace, seed: int, create: bool = False) -> optuna.Study:
    """Opens the study (creating it when `create`), with this process's sampler and pruner."""
    kwargs: dict[str, Any] = dict(study_name=cfg.sweep.study_name, storage=open_storage(spec),
                                  sampler=make_sampler(cfg, seed, space), pruner=make_pruner(cfg))
    if create:
        return optuna.create_study(direction=resolve_direction(cfg), load_if_exists=True, **kwargs)
    return optuna.load_study(**kwargs)


def count(study: optuna.Study, states=FINISHED) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


@contextlib.contextmanager
def budget_lock(spec: str, study_name: str) -> Iterator[None]:
    """An exclusive lock held while counting trials and asking for a new one.

    Without it two workers could both see n_trials - 1 finished and both start a trial. The
    lock is a file beside the journal (or in outputs/ for an RDB URL), so it also serialises
    a second launcher started by hand on the same machine.
    """
    folder = Path("outputs") if is_url(spec) else Path(spec).parent
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{study_name}.budget.lock"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ask_within_budget(study: optuna.Study, n_trials: int, spec: str) -> optuna.Trial | None:
    """A new trial, or None once finished + running trials reach n_trials."""
    with budget_lock(spec, study.study_name):
        taken = count(study, (*FINISHED, TrialState.RUNNING, TrialState.WAITING))
        if taken >= n_trials:
            return None
        trial = study.ask()
        for key, value in here().items():
            trial.set_user_attr(key, value)
        return trial


def reconcile(study: optuna.Study, spec: str) -> list[optuna.trial.FrozenTrial]:
    """Fails the trials left RUNNING by processes of this host that are gone, and queues their
    parameters again; returns the failed trials (their MLflow runs are the caller's to end).

    The journal storage has no heartbeat, so each trial records its host and pid when it
    starts (under the budget lock, as here: a RUNNING trial without a pid is a dead one).
    """
    host = here()["host"]
    stale = []
    with budget_lock(spec, study.study_name):
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("host", host) != host:
                continue  # another machine's worker: its storage's heartbeat handles it
            pid = t.user_attrs.get("pid")
            if pid is not None and alive(int(pid)):
                continue
            study._storage.set_trial_user_attr(t._trial_id, "error", f"its process (pid {pid}) died")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
            stale.append(t)
    return stale
