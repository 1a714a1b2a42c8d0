"""sweep.stop end to end (real processes and stores): a sweep that no longer improves stops well
before n_trials with both workers, says why on the study, the parent run and the terminal; run
again it runs nothing, and with other settings it goes on. A target stops it too."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from sweeps.study.stopping import STOPPED_ATTR

pytestmark = pytest.mark.slow
QUICK = ("search_space=none", "+search_space.train.learning_rate={type:float,low:0.1,high:1.0}",
         "train.iterations=200", "sweep.n_trials=200")
# trials long enough that the launcher cannot reach the stop alone before the worker process has
# warmed up (both workers must have run trials)
STEADY = (*QUICK[:2], "train.iterations=5000", "sweep.n_trials=200")


def test_patience_stops_every_worker_records_why_and_a_rerun_runs_nothing_unless_the_settings_change(sweep_dir):
    proc = sweep_dir.run(*STEADY, "sweep.stop.patience=5", "sweep.n_jobs=2")
    study = sweep_dir.study()
    trials = study.get_trials(deepcopy=False)
    assert 5 < len(trials) < 200
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    record = study.user_attrs[STOPPED_ATTR]
    assert record["settings"] == {"patience": 5, "min_delta": 0.0, "target": None}
    best = study.best_trial
    assert record["reason"].startswith("no improvement larger than 0.0 in the last ")
    assert record["reason"].endswith(f"finished trials (best {best.value:.6g} at trial {best.number})")
    assert f"stopped before sweep.n_trials=200: {record['reason']}" in proc.stdout
    # both workers ran trials, and both stopped: after the trial that decided it, at most the
    # other worker's trial then running finished
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.datetime_complete)
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    decided = next(i for i, t in enumerate(complete) if t.number == record["trial"])
    assert len(complete) - 1 - decided <= 1
    (parent,) = sweep_dir.runs("sweep")
    assert parent.data.tags[STOPPED_ATTR] == record["reason"]
    assert parent.info.status == "FINISHED"
    summary = sweep_dir.client().download_artifacts(parent.info.run_id, "summary.md", str(sweep_dir.path))
    assert record["reason"] in Path(summary).read_text()

    again = sweep_dir.run(*STEADY, "sweep.stop.patience=5")
    assert f"The study stopped: {record['reason']}." in again.stdout
    assert len(sweep_dir.study().trials) == len(trials)
    assert len(sweep_dir.runs("sweep")) == 1  # nothing ran: no new parent run

    more = sweep_dir.run(*STEADY, "sweep.stop.patience=8")
    assert "the study stopped under sweep.stop.patience=5 sweep.stop.min_delta=0.0" in more.stdout
    study = sweep_dir.study()
    assert len(study.trials) > len(trials)
    assert study.user_attrs[STOPPED_ATTR]["settings"]["patience"] == 8  # stopped again, under its own settings
    assert len(sweep_dir.runs("sweep")) == 2


def test_a_target_stops_the_sweep_at_the_first_trial_that_reaches_it(sweep_dir):
    proc = sweep_dir.run(*QUICK, "sweep.stop.target=0.6", "sweep.n_jobs=1")
    study = sweep_dir.study()
    record = study.user_attrs[STOPPED_ATTR]
    reaching = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value <= 0.6]
    assert [t.number for t in reaching] == [record["trial"]]  # one worker: nothing ran after it
    assert record["trial"] == max(t.number for t in study.trials)
    assert record["reason"] == f"val_cost reached the target 0.6 at trial {record['trial']} ({reaching[0].value:.6g})"
    assert record["reason"] in proc.stdout
    assert sweep_dir.runs("sweep")[0].data.tags[STOPPED_ATTR] == record["reason"]
