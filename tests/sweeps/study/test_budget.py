"""sweeps.study.budget: the exact budget shared by real processes through a journal, the trials
of dead workers failed and queued again, and heartbeats on a real SQLite RDB storage."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.study.budget import (
    FINISHED,
    STOP_ATTR,
    ask_within_budget,
    count,
    heartbeat,
    reconcile,
    stop_requested,
    trial_id,
)
from sweeps.study.stopping import StopRule, recorded
from sweeps.study.storages import MAX_RETRY, storage_for

HEARTBEAT = {"heartbeat_interval": 1, "grace_period": 2}


@pytest.fixture(autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def create(storage, name: str = "S") -> optuna.Study:
    return optuna.create_study(study_name=name, storage=storage.open())


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)  # reaped: the pid names no process any more
    return child.pid


# ---- count and stop_requested ---------------------------------------------------------------
def test_count_and_stop_requested():
    study = optuna.create_study()
    assert count(study) == 0 and not stop_requested(study)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for state, value in ((TrialState.COMPLETE, 1.0), (TrialState.COMPLETE, 2.0), (TrialState.PRUNED, None),
                         (TrialState.FAIL, None)):
        study.add_trial(optuna.trial.create_trial(state=state, value=value, params={"x": 0.5}, distributions=dist))
    study.ask()  # running
    assert FINISHED == (TrialState.COMPLETE, TrialState.PRUNED)
    assert count(study) == 3
    assert count(study, (TrialState.RUNNING,)) == 1 and count(study, (TrialState.FAIL,)) == 1
    assert count(study, (*FINISHED, TrialState.RUNNING)) == 4
    study.set_user_attr(STOP_ATTR, True)
    assert stop_requested(study)


# ---- ask_within_budget in one process --------------------------------------------------------
def test_ask_within_budget_marks_the_trial_and_stops_at_the_budget(tmp_path):
    storage = storage_for(str(tmp_path / "s.journal"))
    study = create(storage)
    first = ask_within_budget(study, storage, n_trials=2)
    assert first is not None
    attrs = study.trials[0].user_attrs
    assert attrs["host"] == socket.gethostname() and attrs["pid"] == str(os.getpid())
    second = ask_within_budget(study, storage, n_trials=2)
    assert second is not None and second.number == 1
    # no heartbeats: running trials hold the rest of the budget, so there is nothing to wait for
    assert ask_within_budget(study, storage, n_trials=2) is None
    study.tell(first, 1.0)
    study.tell(second, state=TrialState.PRUNED)
    assert ask_within_budget(study, storage, n_trials=2) is None
    assert len(study.trials) == 2
    assert (tmp_path / ".S.budget.lock").exists()  # the lock lies beside the journal


def test_a_failed_trial_does_not_use_the_budget(tmp_path):
    storage = storage_for(str(tmp_path / "s.journal"))
    study = create(storage)
    study.tell(ask_within_budget(study, storage, n_trials=1), state=TrialState.FAIL)
    again = ask_within_budget(study, storage, n_trials=1)
    assert again is not None and again.number == 1


def test_ask_within_budget_stops_when_the_launcher_asks(tmp_path):
    storage = storage_for(str(tmp_path / "s.journal"))
    study = create(storage)
    study.set_user_attr(STOP_ATTR, True)
    assert ask_within_budget(study, storage, n_trials=5) is None
    assert study.trials == []


def _race(journal: str, start, results) -> None:
    """One worker process: asks and tells until the shared budget of 6 is spent."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = storage_for(journal)
    study = optuna.load_study(study_name="S", storage=storage.open())
    start.wait(timeout=60)  # both processes ask from the same moment
    told = []
    while (trial := ask_within_budget(study, storage, n_trials=6)) is not None:
        x = trial.suggest_float("x", 0.0, 1.0)
        time.sleep(0.05)  # a trial's work: the other process asks meanwhile
        study.tell(trial, x)
        told.append(trial.number)
    results.put((os.getpid(), told))


@pytest.mark.slow
def test_two_processes_racing_for_the_budget_finish_exactly_n_trials(tmp_path):
    journal = str(tmp_path / "s.journal")
    create(storage_for(journal))
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(journal, start, results)) for _ in range(2)]
    for p in procs:
        p.start()
    told = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    study = optuna.load_study(study_name="S", storage=storage_for(journal).open())
    assert len(study.get_trials(states=FINISHED)) == 6 and len(study.trials) == 6
    assert sorted(n for numbers in told.values() for n in numbers) == list(range(6))
    assert len(told) == 2 and all(told.values())  # both raced: each ran some of the six
    assert {t.user_attrs["pid"] for t in study.trials} <= {str(pid) for pid in told}


# ---- reconcile on a journal: this host's dead processes --------------------------------------
@pytest.mark.slow
def test_reconcile_fails_the_trial_of_a_dead_process_and_queues_it_again(tmp_path):
    storage = storage_for(str(tmp_path / "s.journal"))
    study = create(storage)
    dead = study.ask()
    dead.suggest_float("x", 0.0, 1.0)
    dead.set_user_attr("host", socket.gethostname())
    dead.set_user_attr("pid", str(dead_pid()))
    live = ask_within_budget(study, storage, n_trials=5)  # this process's: alive
    live.suggest_float("x", 0.0, 1.0)
    elsewhere = study.ask()  # another machine's: its own host looks after it
    elsewhere.set_user_attr("host", "another-host.invalid")
    elsewhere.set_user_attr("pid", "1")

    failed = reconcile(study, storage)
    assert [t.number for t in failed] == [dead.number]
    trials = {t.number: t for t in study.get_trials()}
    assert trials[dead.number].state == TrialState.FAIL
    assert "died" in trials[dead.number].user_attrs["error"]
    assert trials[live.number].state == TrialState.RUNNING and trials[elsewhere.number].state == TrialState.RUNNING
    retry = study.get_trials(states=(TrialState.WAITING,))
    assert len(retry) == 1 and retry[0].user_attrs["retry_of"] == dead.number
    # the next trial asked is the retry, with the dead trial's parameters
    again = ask_within_budget(study, storage, n_trials=5)
    assert again.number == retry[0].number and again.suggest_float("x", 0.0, 1.0) == trials[dead.number].params["x"]
    assert reconcile(study, storage) == []  # done once


@pytest.mark.slow
def test_reconcile_retries_a_trial_that_kills_its_worker_at_most_max_retry_times(tmp_path):
    storage = storage_for(str(tmp_path / "s.journal"))
    study = create(storage)
    pid = str(dead_pid())
    queued = 0
    for _ in range(MAX_RETRY + 2):
        trial = ask_within_budget(study, storage, n_trials=5)  # the first time the trial, then its retry
        trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("pid", pid)  # its worker died running it
        assert len(reconcile(study, storage)) == 1
        if not study.get_trials(states=(TrialState.WAITING,)):
            break
        queued += 1
    assert queued == MAX_RETRY


def test_reconcile_fails_a_running_trial_without_a_pid(tmp_path):
    """A worker that died between ask() and recording its pid."""
    storage = storage_for(str(tmp_path / "s.journal"))
    study = create(storage)
    orphan = study.ask()
    assert [t.number for t in reconcile(study, storage)] == [orphan.number]
    assert study.trials[orphan.number].state == TrialState.FAIL


# ---- heartbeats on an RDB storage ------------------------------------------------------------
@pytest.fixture
def rdb(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an RDB's budget lock is a file in outputs/ of the working directory
    storage = storage_for(f"sqlite:///{tmp_path / 'h.db'}", HEARTBEAT)
    assert storage.heartbeats
    return storage, create(storage)


@pytest.mark.slow
def test_heartbeat_keeps_a_running_trial_alive(rdb):
    storage, study = rdb
    trial = ask_within_budget(study, storage, n_trials=3)
    trial.suggest_float("x", 0.0, 1.0)
    with heartbeat(storage, study, trial.number):
        for _ in range(3):  # 3 s: longer than the grace period of 2 s
            time.sleep(1.0)
            assert reconcile(study, storage) == []
    assert study.trials[trial.number].state == TrialState.RUNNING
    study.tell(trial, 1.0)
    assert study.trials[trial.number].state == TrialState.COMPLETE


@pytest.mark.slow
def test_a_trial_left_without_heartbeats_is_failed_and_retried(rdb):
    # imported here, not above: the spawned processes of the race import this module, and
    # tests.conftest imports mlflow, seconds of their start-up
    from tests.conftest import wait_for

    storage, study = rdb
    trial = ask_within_budget(study, storage, n_trials=3)
    x = trial.suggest_float("x", 0.0, 1.0)
    with heartbeat(storage, study, trial.number):
        time.sleep(1.2)  # one beat from the thread
    left = time.monotonic()
    assert reconcile(study, storage) == []  # just beaten: not stale yet
    failed = wait_for(lambda: reconcile(study, storage), timeout=5.0, every=0.25)
    assert time.monotonic() - left < 5.0
    assert [t.number for t in failed] == [trial.number]
    assert study.trials[trial.number].state == TrialState.FAIL
    retry = study.get_trials(states=(TrialState.WAITING,))
    assert len(retry) == 1 and retry[0].user_attrs["retry_of"] == trial.number
    assert "pid" not in retry[0].user_attrs  # the worker that takes it sets its own
    again = ask_within_budget(study, storage, n_trials=3)
    assert again.number == retry[0].number and again.suggest_float("x", 0.0, 1.0) == x


def test_trial_id_is_the_storages_id_of_the_trial_number(tmp_path):
    storage = storage_for(str(tmp_path / "s.journal"))
    create(storage, "other")  # ids count across studies, numbers within one
    study = create(storage)
    other = optuna.load_study(study_name="other", storage=storage.open())
    other.ask()
    trials = [study.ask() for _ in range(2)]
    backend = storage.open()
    for t in trials:
        assert backend.get_trial(trial_id(storage, study, t.number)).number == t.number
    assert trial_id(storage, study, 0) != trial_id(storage, other, 0)


# ---- sweep.stop: a study that no longer improves asks no new trial ---------------------------
def test_no_trial_is_asked_once_the_study_stopped_improving_and_the_stop_is_recorded(tmp_path):
    storage = storage_for(str(tmp_path / "j.journal"))
    study = create(storage)
    stop = StopRule("val_cost", patience=2)
    for value in (0.2, 0.3):
        trial = ask_within_budget(study, storage, 10, stop=stop)
        study.tell(trial, value)
    last = ask_within_budget(study, storage, 10, stop=stop)
    study.tell(last, 0.4)  # the second trial in a row without an improvement
    assert ask_within_budget(study, storage, 10, stop=stop) is None  # decided and recorded here
    other = optuna.load_study(study_name="S", storage=storage.open())  # another worker's view
    assert ask_within_budget(other, storage, 10) is None  # it has no settings of its own: the record stops it
    assert count(study) == 3
    assert recorded(other)["reason"] == ("no improvement larger than 0.0 in the last 2 finished trials "
                                         "(best 0.2 at trial 0)")
