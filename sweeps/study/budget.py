"""The exact trial budget, shared by every worker through the storage alone: a worker asks for a
trial under the storage's budget lock, a running trial beats (RDB storages), and the trials of
dead workers are failed and their parameters queued again.

Optuna's heartbeats are meant for study.optimize(); the workers use ask/tell, so they beat
themselves (heartbeat()), through the storage's public record_heartbeat(). A trial's storage id
is looked up by its number (trial_id()).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import threading
import time
from typing import Iterable, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.interrupts import check_interrupt
from sweeps.processes import alive, here
from sweeps.study.stopping import StopRule, reached
from sweeps.study.storages import MAX_RETRY, Storage

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
STOP_ATTR = "nnsweeps.stop"  # study user attr: set by an interrupted launcher, workers stop asking
ENQUEUED = "nnsweeps.enqueued"  # user attr of a queued trial: the params it was queued with (JSON)

# (Optuna's warnings about heartbeats outside study.optimize() are silenced by sweeps.quiet.)


def requeue(study: optuna.Study, params: dict, number: int, retries: int = 0) -> None:
    """Queues a failed trial's params again: marked as a retry of it, counting the retries, and
    with the params it was queued with (sweeps.study.seeding.enqueue reads them)."""
    study.enqueue_trial(params, user_attrs={"retry_of": number, "retries": retries + 1,
                                            ENQUEUED: json.dumps(params, sort_keys=True)}, skip_if_exists=False)


def count(study: optuna.Study, states=FINISHED) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def stop_requested(study: optuna.Study) -> bool:
    return bool(study.user_attrs.get(STOP_ATTR))


def trial_id(storage: Storage, study: optuna.Study, number: int) -> int:
    """The storage's id of trial `number` of the study (optuna.Trial keeps its own private)."""
    return storage.open().get_trial_id_from_study_id_trial_number(storage.study_id(study.study_name), number)


@contextlib.contextmanager
def heartbeat(storage: Storage, study: optuna.Study, number: int) -> Iterator[None]:
    """Beats for trial `number` every heartbeat_interval seconds while the block runs (nothing for
    a storage without heartbeats)."""
    if not storage.heartbeats:
        yield
        return
    backend, tid = storage.open(), trial_id(storage, study, number)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(storage.sweep["heartbeat_interval"]):
            backend.record_heartbeat(tid)

    thread = threading.Thread(target=beat, daemon=True, name=f"heartbeat-{number}")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def ask_within_budget(study: optuna.Study, storage: Storage, n_trials: int, deadline: float = float("inf"),
                      poll: float = 1.0, stop: StopRule | None = None) -> optuna.Trial | None:
    """A new trial (a queued retry first), or None once the study holds n_trials finished trials.

    The budget left is n_trials minus finished and running trials. Without heartbeats a worker
    stops as soon as none is left. With heartbeats it waits instead while running trials hold
    the rest: one of them may belong to a worker that died, and once its heartbeat is `grace_period`
    old this (or another) worker fails it under the lock and runs its queued retry. It also stops
    at the deadline, when an interrupted launcher asked the workers to stop, and once the study
    stopped improving (sweep.stop: `stop`, decided from the study's trials, sweeps.study.stopping).
    """
    while True:
        check_interrupt()  # a Ctrl-C while waiting here asks no new trial
        with storage.budget_lock(study.study_name):
            storage.check_intact()
            if storage.heartbeats:
                _fail_stale(study, storage)
            trials = study.get_trials(deepcopy=False)  # once: each read is a query on an RDB storage
            finished = sum(t.state in FINISHED for t in trials)
            if stop_requested(study) or finished >= n_trials or reached(study, stop, trials) is not None:
                return None
            if finished + sum(t.state == TrialState.RUNNING for t in trials) < n_trials:
                trial = study.ask()
                if storage.heartbeats:  # at once: a trial without any heartbeat would never be seen as stale
                    storage.open().record_heartbeat(trial_id(storage, study, trial.number))
                for key, value in here().items():
                    trial.set_user_attr(key, value)
                return trial
            if not storage.heartbeats:
                return None
        if time.monotonic() + poll > deadline:
            return None
        time.sleep(poll)


def _fail_stale(study: optuna.Study, storage: Storage) -> list[FrozenTrial]:
    """Fails the trials whose heartbeat is older than the grace period and queues them again
    (storages.RetryStale); returns them. The caller holds the budget lock."""
    before = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not before:
        return []
    _adopt_unbeaten(study, storage, before.values())
    optuna.storages.fail_stale_trials(study)
    failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return [t for n, t in before.items() if n in failed]


def _adopt_unbeaten(study: optuna.Study, storage: Storage, running: Iterable[FrozenTrial]) -> None:
    """A worker killed between ask() and its trial's first heartbeat leaves a RUNNING trial that
    Optuna never sees as stale (it only looks at trials with a heartbeat), and that holds budget
    forever. Once such a trial is older than the grace period, give it one heartbeat (and mark
    it), so that it goes stale a grace period later and is failed and retried like any other.
    A live trial has a heartbeat and its pid before anyone can look (both under the budget lock)."""
    grace = storage.grace_seconds() or 0
    now = datetime.datetime.now()
    backend = storage.open()
    for t in running:
        if "pid" in t.user_attrs or "adopted" in t.user_attrs or t.datetime_start is None:
            continue
        if (now - t.datetime_start).total_seconds() > grace:
            tid = trial_id(storage, study, t.number)
            backend.record_heartbeat(tid)
            backend.set_trial_user_attr(tid, "adopted", "no heartbeat: its worker died at once")


def reconcile(study: optuna.Study, storage: Storage) -> list[FrozenTrial]:
    """Fails the trials left RUNNING by dead workers and queues their parameters again; returns
    the failed trials (their MLflow runs are the caller's to end).

    With heartbeats (an RDB storage) a worker is dead when its trial's heartbeat is older than
    the grace period, wherever it ran. A journal has no heartbeat, so each trial records its host
    and pid when it starts (under the budget lock, as here: a RUNNING trial without a pid is a
    dead one), and the trials of this host's processes that are gone are failed.
    """
    if storage.heartbeats:
        with storage.budget_lock(study.study_name):
            return _fail_stale(study, storage)
    host = here()["host"]
    stale = []
    backend = storage.open()
    with storage.budget_lock(study.study_name):
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("host", host) != host:
                continue  # another machine's worker: its storage's heartbeat handles it
            pid = t.user_attrs.get("pid")
            if alive(pid):
                continue
            tid = trial_id(storage, study, t.number)
            backend.set_trial_user_attr(tid, "error", f"its process (pid {pid}) died")
            backend.set_trial_state_values(tid, TrialState.FAIL)
            retries = t.user_attrs.get("retries", 0)
            if retries < MAX_RETRY:  # as RDB storages' RetryStale: a trial that kills its worker stops there
                requeue(study, t.params, t.number, retries)
            stale.append(t)
    return stale
