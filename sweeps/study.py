"""The Optuna side: storage, sampler and pruner from the config, and the exact trial budget.

Storage: a journal file (Optuna's recommendation for several processes on one machine;
SQLite is not safe for parallel writers) unless `sweep.storage` is an RDB URL, e.g.
postgresql://user@host:5432/db for workers on several machines. An RDB storage runs with
heartbeats: a running trial whose worker stops beating for `sweep.grace_period` seconds (the
machine died, the process was killed) is failed by the next worker that asks for a trial, and
its parameters are queued again (Optuna's RetryHeartbeatStaleTrialCallback, formerly
RetryFailedTrialCallback). A journal has no heartbeat: `reconcile()` fails the trials of
processes of this host that are gone.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import fcntl
import hashlib
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
from omegaconf import DictConfig
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import TrialState

from sweeps.cli import check_interrupt
from sweeps.config import ConfigError, resolve_direction
from sweeps.processes import alive, here
from sweeps.services import is_postgres, with_driver
from sweeps.space import SearchSpace

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

# Heartbeats are experimental in Optuna and meant for study.optimize(); the workers use ask/tell
# and run the heartbeat thread themselves (see heartbeat()), so these warnings say nothing here.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
warnings.filterwarnings("ignore", message=r".*(fail_stale_trials|RetryHeartbeatStaleTrialCallback|heartbeat_interval)",
                        category=optuna.exceptions.ExperimentalWarning)

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


MAX_RETRY = 3  # times a trial whose worker died is run again (a trial that kills its worker stops there)
STOP_ATTR = "nnsweeps.stop"  # study user attr: set by an interrupted launcher, workers stop asking
MLFLOW_ATTR = "nnsweeps.mlflow"  # study user attr: the tracking URI and parent run workers log under


class RetryStale(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a heartbeat-stale trial, its copy marked `retry_of` like the ones reconcile()
    queues, and without the dead worker's host, pid and run (the worker that takes it sets its own)."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trial = copy.copy(trial)
        trial.user_attrs = {**{k: v for k, v in trial.user_attrs.items()
                               if k not in ("host", "pid", "run_id", "metrics", "error")},
                            "retry_of": trial.number}
        super().__call__(study, trial)


def open_storage(spec: str, sweep: DictConfig | None = None) -> optuna.storages.BaseStorage:
    """The storage `spec` names; an RDB URL with heartbeats unless sweep.heartbeat_interval is null."""
    if is_url(spec):
        interval = sweep.get("heartbeat_interval") if sweep is not None else None
        if interval is None:
            return optuna.storages.RDBStorage(with_driver(spec), engine_kwargs=_engine_kwargs(spec))
        return optuna.storages.RDBStorage(
            with_driver(spec), engine_kwargs=_engine_kwargs(spec), heartbeat_interval=interval,
            grace_period=sweep.get("grace_period"), heartbeat_stale_trial_callback=RetryStale(max_retry=MAX_RETRY))
    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(spec, lock_obj=_journal_lock(spec))
    return optuna.storages.JournalStorage(backend)


def _engine_kwargs(spec: str) -> dict[str, Any]:
    # a server restarted or a connection dropped by a firewall: test pooled connections first
    return {"pool_pre_ping": True} if is_postgres(spec) else {}


def check_storage(spec: str, timeout: int = 5) -> None:
    """A journal file must be writable, a PostgreSQL storage reachable, before anything starts:
    one sentence, not a traceback."""
    if not is_url(spec):
        path, problem = Path(spec), ""
        try:
            folder = path.parent
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent  # the nearest folder that exists: the rest is created
            if path.is_dir():
                problem = "it is a folder"
            elif not folder.is_dir():
                problem = f"{folder} is a file, not a folder"
            elif not os.access(folder, os.W_OK | os.X_OK):  # the journal's lock files are made beside it
                problem = f"{folder} cannot be written"
            elif path.exists() and not os.access(path, os.W_OK):
                problem = f"{path} cannot be written"
        except OSError as err:  # a parent that cannot be searched
            problem = f"{err.strerror} ({err.filename})"
        if problem:
            raise ConfigError(f"sweep.storage={spec!r} cannot be the journal file: {problem}; give the path "
                              "of a file in a folder that can be written.")
        return
    if not is_postgres(spec):
        return
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(with_driver(spec), connect_args={"connect_timeout": timeout})
    except ImportError as err:
        raise ConfigError(f"sweep.storage is a PostgreSQL URL, but its driver is missing ({err}); install "
                          "psycopg2-binary (requirements.lock pins it).") from None
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as err:
        reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
        raise ConfigError(f"sweep.storage={spec!r} cannot be reached ({reason}); start PostgreSQL "
                          "(`make postgres`) or fix the URL.") from None
    finally:
        engine.dispose()


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
    kwargs: dict[str, Any] = dict(study_name=cfg.sweep.study_name, storage=open_storage(spec, cfg.sweep),
                                  sampler=make_sampler(cfg, seed, space), pruner=make_pruner(cfg))
    if create:
        return optuna.create_study(direction=resolve_direction(cfg), load_if_exists=True, **kwargs)
    return optuna.load_study(**kwargs)


def count(study: optuna.Study, states=FINISHED) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


_LOCK_ENGINES: dict[tuple[str, int], Any] = {}


def _lock_engine(spec: str):
    """One small SQLAlchemy engine per process for the advisory lock (connections are not shared
    across processes)."""
    key = (spec, os.getpid())
    if key not in _LOCK_ENGINES:
        import sqlalchemy

        _LOCK_ENGINES[key] = sqlalchemy.create_engine(with_driver(spec), pool_size=1, max_overflow=2,
                                                      pool_pre_ping=True)
    return _LOCK_ENGINES[key]


def advisory_key(study_name: str) -> int:
    """The study's PostgreSQL advisory lock: a signed 64-bit number from its name."""
    digest = hashlib.blake2b(f"nnsweeps.budget:{study_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def budget_lock(spec: str, study_name: str) -> Iterator[None]:
    """An exclusive lock held while counting trials and asking for a new one.

    Without it two workers could both see n_trials - 1 finished and both start a trial. For a
    PostgreSQL storage it is the server's transaction-level advisory lock on the study's name, so
    it serialises workers on every machine, and the server releases it when a worker's connection
    dies. Otherwise it is a file beside the journal (or in outputs/ for another RDB URL), which
    serialises the processes of one machine, a second launcher started by hand included.
    """
    if is_postgres(spec):
        import sqlalchemy

        with _lock_engine(spec).begin() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(study_name)})
            yield
        return
    folder = Path("outputs") if is_url(spec) else Path(spec).parent
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{study_name}.budget.lock"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def heartbeat(study: optuna.Study, trial: optuna.Trial):
    """A context that beats for the trial while it runs (a no-op for storages without heartbeats)."""
    return get_heartbeat_thread(trial._trial_id, study._storage)


def grace_seconds(study: optuna.Study) -> int | None:
    """How long a trial may go without a heartbeat, or None without heartbeats."""
    storage = getattr(study._storage, "_backend", study._storage)  # under Optuna's cache
    interval = getattr(storage, "heartbeat_interval", None)
    if interval is None:
        return None
    return getattr(storage, "grace_period", None) or 2 * interval


def stop_requested(study: optuna.Study) -> bool:
    return bool(study.user_attrs.get(STOP_ATTR))


def ask_within_budget(study: optuna.Study, n_trials: int, spec: str, deadline: float = float("inf"),
                      poll: float = 1.0) -> optuna.Trial | None:
    """A new trial (a queued retry first), or None once the study holds n_trials finished trials.

    The budget left is n_trials minus finished and running trials. Without heartbeats a worker
    stops as soon as none is left. With heartbeats it waits instead while running trials hold
    the rest: one of them may belong to a worker that died, and once its heartbeat is `grace_period`
    old this (or another) worker fails it under the lock and runs its queued retry. It also stops
    at the deadline and when an interrupted launcher asked the workers to stop.
    """
    beats = is_heartbeat_enabled(study._storage)
    while True:
        check_interrupt()  # a Ctrl-C while waiting here asks no new trial
        with budget_lock(spec, study.study_name):
            if beats:
                _fail_stale(study)
            if stop_requested(study) or count(study) >= n_trials:
                return None
            if count(study, (*FINISHED, TrialState.RUNNING)) < n_trials:
                trial = study.ask()
                if beats:  # at once: a trial without any heartbeat would never be seen as stale
                    study._storage.record_heartbeat(trial._trial_id)
                for key, value in here().items():
                    trial.set_user_attr(key, value)
                return trial
            if not beats:
                return None
        if time.monotonic() + poll > deadline:
            return None
        time.sleep(poll)


def _fail_stale(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Fails the trials whose heartbeat is older than the grace period and queues them again
    (RetryStale); returns them. The caller holds the budget lock."""
    before = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not before:
        return []
    _adopt_unbeaten(study, before.values())
    optuna.storages.fail_stale_trials(study)
    still = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    return [t for n, t in before.items() if n not in still
            and study._storage.get_trial(t._trial_id).state == TrialState.FAIL]


def _adopt_unbeaten(study: optuna.Study, running) -> None:
    """A worker killed between ask() and its trial's first heartbeat leaves a RUNNING trial that
    Optuna never sees as stale (it only looks at trials with a heartbeat), and that holds budget
    forever. Once such a trial is older than the grace period, give it one heartbeat (and mark
    it), so that it goes stale a grace period later and is failed and retried like any other.
    A live trial has a heartbeat and its pid before anyone can look (both under the budget lock)."""
    grace = grace_seconds(study) or 0
    now = datetime.datetime.now()
    for t in running:
        if "pid" in t.user_attrs or "adopted" in t.user_attrs or t.datetime_start is None:
            continue
        if (now - t.datetime_start).total_seconds() > grace:
            study._storage.record_heartbeat(t._trial_id)
            study._storage.set_trial_user_attr(t._trial_id, "adopted", "no heartbeat: its worker died at once")


def reconcile(study: optuna.Study, spec: str) -> list[optuna.trial.FrozenTrial]:
    """Fails the trials left RUNNING by dead workers and queues their parameters again; returns
    the failed trials (their MLflow runs are the caller's to end).

    With heartbeats (an RDB storage) a worker is dead when its trial's heartbeat is older than
    the grace period, wherever it ran. A journal has no heartbeat, so each trial records its host
    and pid when it starts (under the budget lock, as here: a RUNNING trial without a pid is a
    dead one), and the trials of this host's processes that are gone are failed.
    """
    if is_heartbeat_enabled(study._storage):
        with budget_lock(spec, study.study_name):
            return _fail_stale(study)
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
