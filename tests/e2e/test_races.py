"""Launchers that meet on one study (issue 20): two started together asking different questions
of a new study (one runs, the other is refused), two asking the same one (both run, sharing it),
and a PostgreSQL server away for 20 s mid-sweep (waited out). Real `python -m sweeps` processes
on a journal and on a real PostgreSQL server (tests/e2e/conftest.py); the stores are read back
with Optuna's and MLflow's own clients.

The launchers of a race either start as they come, or behind a barrier on PostgreSQL (the table
of studies locked while they start, unlocked once each waits on a lock: they reach the study at
the same moment), or with a pause where the issue's reporter put one (tests/e2e/hooks).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import optuna
import pytest
import sqlalchemy
from mlflow import MlflowClient
from optuna.trial import TrialState

from sweeps.study.question import QUESTION_ATTR, describe
from sweeps.urls import with_driver
from tests.conftest import wait_for
from tests.e2e.conftest import throwaway_postgres

pytestmark = pytest.mark.slow

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
N_TRIALS = 4
QUICK = ["search_space=none", "model.hidden_units=[8]", "sweep.pruner=none", "sweep.sampler=random"]
RACE = [*QUICK, "train.iterations=200", "sweep.n_jobs=1", f"sweep.n_trials={N_TRIALS}"]
NARROW = "+search_space.train.learning_rate={type:float,low:0.5,high:1.5}"
WIDE = "+search_space.train.learning_rate={type:float,low:0.5,high:3.0}"
HOOKS = Path(__file__).with_name("hooks")
# between reading the question and recording it (the 1-s pause)
BEFORE_RECORD = "check_question:1"
# between finding no study and looking for runs of it: both find none, then the first creates it and
# its parent run while the second still waits
FIRST, SECOND = "study_exists:3", "study_exists:10"


class Launchers:
    """Launchers of studies in one storage, each started in `folder` with its own Hydra folder."""

    def __init__(self, folder: Path, storage: str, tracking: bool = False):
        self.folder, self.storage, self.tracking = folder, storage, tracking
        self.uri = f"sqlite:///{folder / 'mlflow.db'}"
        self.started = 0

    def start(self, study: str, *overrides: str, pause: str = "") -> subprocess.Popen:
        """pause: 'FUNCTION:SECONDS', a pause after each call of sweeps.runner.stores's FUNCTION."""
        self.started += 1
        tracking = [f"tracking.uri={self.uri}", f"tracking.experiment={study}"] if self.tracking else [
            "tracking.enabled=false"]
        args = [f"sweep.study_name={study}", f"sweep.storage={self.storage}", *tracking,
                f"hydra.run.dir={self.folder / f'hydra-{self.started}'}", *overrides]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")])}
        if pause:
            env["NNSWEEPS_TEST_PAUSE"] = f"sweeps.runner.stores:{pause}"
        return subprocess.Popen([sys.executable, "-m", "sweeps", *args], cwd=self.folder, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def study(self, name: str) -> optuna.Study:
        if "://" not in self.storage:
            return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(self.storage)))
        if not hasattr(self, "_rdb"):  # one engine for all the polling; a restarted server's connections renewed
            self._rdb = optuna.storages.RDBStorage(with_driver(self.storage), engine_kwargs={"pool_pre_ping": True})
        return optuna.load_study(study_name=name, storage=self._rdb)

    def finished(self, name: str) -> int:
        try:
            return len(self.study(name).get_trials(deepcopy=False, states=FINISHED))
        except KeyError:  # not created yet
            return 0


def finish(procs: list[subprocess.Popen], timeout: float = 600) -> list[tuple[int, str, str]]:
    """Each process's exit code, stdout and stderr; the ones still running after timeout are killed."""
    deadline, out = time.monotonic() + timeout, []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
            out.append((proc.returncode, stdout, stderr))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    return out


def behind_postgres_barrier(url: str, start: Callable[[], list[subprocess.Popen]]) -> list[subprocess.Popen]:
    """Starts the launchers with the table of studies locked, and unlocks it once each waits on a
    lock: the table (where a launcher looks for its study) or one another launcher holds."""
    optuna.storages.RDBStorage(with_driver(url))  # the tables, to lock
    engine = sqlalchemy.create_engine(with_driver(url))
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("LOCK TABLE studies IN ACCESS EXCLUSIVE MODE"))
            procs = start()
            waiting = sqlalchemy.text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            wait_for(lambda: conn.execute(waiting).scalar() >= len(procs), timeout=300)
            conn.commit()
    finally:
        engine.dispose()
    return procs


def assert_one_ran(launchers: Launchers, name: str, outcomes: list[tuple[int, str, str]]) -> None:
    """One launcher ran the study, the other was refused with the sentence on another question,
    and the question recorded is the one every trial answers."""
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], outcomes
    (_, _, refused), = [o for o in outcomes if o[0] == 2]
    assert "answers another question" in refused and "Traceback" not in refused, refused
    study = launchers.study(name)
    asked = json.loads(study.user_attrs[QUESTION_ATTR])["search_space.train.learning_rate"]
    assert len(study.get_trials(states=FINISHED)) == N_TRIALS == len(study.trials)
    assert {describe(t.distributions["train.learning_rate"]) for t in study.trials} == {asked}


def assert_both_ran(launchers: Launchers, name: str, outcomes: list[tuple[int, str, str]]) -> None:
    """Both launchers ran, sharing the study: its exact budget, nothing left running."""
    for code, out, err in outcomes:
        assert code == 0 and "Traceback" not in err, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    study = launchers.study(name)
    assert len(study.get_trials(states=FINISHED)) == N_TRIALS
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    exp = MlflowClient(launchers.uri).get_experiment_by_name(name)
    runs = MlflowClient(launchers.uri).search_runs([exp.experiment_id])
    assert runs and all(r.info.status == "FINISHED" for r in runs)
    assert len([r for r in runs if r.data.tags.get("nnsweeps.role") == "sweep"]) == 2


# ---- two questions, one new study: one launcher runs --------------------------------------------
def test_two_questions_raced_on_one_new_postgresql_study_run_one_launcher(postgres, tmp_path):
    # a new database: the launchers of four races as they come, which also race to create Optuna's tables
    url = postgres.createdb(f"races{uuid.uuid4().hex[:8]}")
    launchers = Launchers(tmp_path, url)
    unbarred = [f"race{uuid.uuid4().hex[:8]}" for _ in range(4)]
    outcomes = finish([launchers.start(name, *RACE, space) for name in unbarred for space in (NARROW, WIDE)])
    # then four behind the barrier
    names = [f"race{uuid.uuid4().hex[:8]}" for _ in range(4)]
    outcomes += finish(behind_postgres_barrier(url, lambda: [
        launchers.start(name, *RACE, space) for name in names for space in (NARROW, WIDE)]))
    for i, name in enumerate(unbarred + names):
        assert_one_ran(launchers, name, outcomes[2 * i:2 * i + 2])


def test_two_questions_raced_on_one_new_journal_study_run_one_launcher(tmp_path):
    races = []
    for i, pause in enumerate([BEFORE_RECORD, BEFORE_RECORD, "", ""]):
        folder = tmp_path / f"race{i}"
        folder.mkdir()
        launchers = Launchers(folder, str(folder / "optuna.journal"))
        races.append((launchers, [launchers.start("S", *RACE, space, pause=pause) for space in (NARROW, WIDE)]))
    for launchers, procs in races:
        assert_one_ran(launchers, "S", finish(procs))


# ---- one question asked twice at once: both run ------------------------------------------------
def test_two_launchers_asking_the_same_of_a_new_postgresql_study_share_it(postgres, tmp_path):
    launchers = Launchers(tmp_path, postgres.url("optuna"), tracking=True)
    names = [f"same{uuid.uuid4().hex[:8]}" for _ in range(4)]
    # two behind the barrier, two where the second launcher is slow to look for runs of the study
    procs = behind_postgres_barrier(postgres.url("optuna"), lambda: [
        launchers.start(name, *RACE, NARROW) for name in names[:2] for _ in range(2)])
    procs += [launchers.start(name, *RACE, NARROW, pause=pause) for name in names[2:] for pause in (FIRST, SECOND)]
    outcomes = finish(procs)
    for i, name in enumerate(names):
        assert_both_ran(launchers, name, outcomes[2 * i:2 * i + 2])


def test_two_launchers_asking_the_same_of_a_new_journal_study_share_it(tmp_path):
    races = []
    for i, pauses in enumerate([(FIRST, SECOND), (FIRST, SECOND), ("", "")]):
        folder = tmp_path / f"same{i}"
        folder.mkdir()
        launchers = Launchers(folder, str(folder / "optuna.journal"), tracking=True)
        races.append((launchers, [launchers.start("S", *RACE, NARROW, pause=p) for p in pauses]))
    for launchers, procs in races:
        assert_both_ran(launchers, "S", finish(procs))


# ---- the PostgreSQL server away mid-sweep: waited out ---------------------------------------------
@pytest.fixture
def own_postgres():
    """A PostgreSQL server of the test's own, to stop and start again."""
    with throwaway_postgres() as server:
        yield server


def test_a_postgresql_server_away_for_20_s_mid_sweep_is_waited_out(own_postgres, tmp_path):
    launchers = Launchers(tmp_path, own_postgres.url("optuna"), tracking=True)
    proc = launchers.start("away", *QUICK, NARROW, "train.iterations=3000", "sweep.n_jobs=2", "sweep.n_trials=30")
    try:
        wait_for(lambda: launchers.finished("away") >= 4, timeout=300)
        own_postgres.stop()  # pg_ctl stop -m fast: the sweep's connections are cut mid-query
        time.sleep(20)
        assert proc.poll() is None  # it waits for the server
        own_postgres.start()
    finally:
        (code, out, err), = finish([proc])
    assert code == 0 and "Traceback" not in err, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    study = launchers.study("away")
    assert len(study.get_trials(states=FINISHED)) == 30
    assert not study.get_trials(states=(TrialState.RUNNING,))
    client = MlflowClient(launchers.uri)
    runs = client.search_runs([client.get_experiment_by_name("away").experiment_id], max_results=1000)
    assert all(r.info.status != "RUNNING" for r in runs)
    finished = {r.data.tags["optuna.trial"] for r in runs if r.info.status == "FINISHED"
                and r.data.tags.get("nnsweeps.role") == "trial"}
    assert finished == {str(t.number) for t in study.get_trials(states=FINISHED)}
