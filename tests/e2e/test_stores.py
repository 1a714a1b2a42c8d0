"""The two stores know each other: a journal or an MLflow store lost, emptied or replaced is
refused with a sentence before anything is written, and a journal lost mid-sweep stops it."""

from __future__ import annotations

import shutil
import time

import pytest
from optuna.trial import TrialState

from tests.conftest import wait_for
from tests.e2e.test_faults import STEADY, start, trials_in

pytestmark = pytest.mark.slow
QUICK = ("sweep.n_trials=2", "search_space=none", "train.iterations=100")


def refused(sweep_dir, *overrides):
    runs = len(sweep_dir.runs()) if (sweep_dir.path / "mlflow.db").exists() else 0
    proc = sweep_dir.run(*overrides, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    if (sweep_dir.path / "mlflow.db").exists():
        assert len(sweep_dir.runs()) == runs  # nothing written
    return proc.stderr.strip().splitlines()[-1]


def test_a_deleted_or_emptied_journal_is_refused_while_mlflow_holds_its_runs(sweep_dir):
    sweep_dir.run(*QUICK)
    sweep_dir.journal.unlink()
    line = refused(sweep_dir, *QUICK)
    assert "is not in" in line and "holds runs of it" in line and "new sweep.study_name" in line
    assert not sweep_dir.journal.exists()  # not even an empty one
    sweep_dir.journal.write_text("")  # emptied
    assert "holds runs of it" in refused(sweep_dir, *QUICK)
    sweep_dir.run(*QUICK, "sweep.study_name=fresh")  # afresh on purpose, under a new name


def test_a_deleted_or_replaced_mlflow_store_is_refused(sweep_dir):
    sweep_dir.run(*QUICK)
    db = sweep_dir.path / "mlflow.db"
    shutil.move(db, sweep_dir.path / "kept.db")
    assert "that MLflow store is missing" in refused(sweep_dir, *QUICK)
    assert not db.exists()  # no new store made
    sweep_dir.run(*QUICK, "sweep.study_name=other")  # makes a new store of other runs
    assert "is not in that store" in refused(sweep_dir, *QUICK)
    shutil.move(sweep_dir.path / "kept.db", db)  # restored: the same command resumes
    sweep_dir.run("sweep.n_trials=3", *QUICK[1:])
    assert len(sweep_dir.study().get_trials(states=(TrialState.COMPLETE,))) == 3


def test_a_journal_deleted_mid_sweep_stops_it_with_a_sentence(sweep_dir):
    proc = start(sweep_dir, "sweep.n_jobs=2", "sweep.n_trials=30", *STEADY, "train.iterations=20000")
    wait_for(lambda: len(trials_in(sweep_dir, TrialState.COMPLETE)) >= 1)
    sweep_dir.journal.unlink()
    deleted = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert "was deleted while the sweep ran" in err or "was replaced while the sweep ran" in err
    assert time.monotonic() - deleted < 60  # no runaway re-runs
    assert len(sweep_dir.runs("trial")) < 30
