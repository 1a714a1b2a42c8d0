"""sweeps.record: one order of trials, best first, and a trial read from the study alone."""

from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState

from sweeps.record import METRICS_ATTR, RUN_ID, RUN_STORE, TrialRecord, rank


def study_of(values, direction="minimize", constraints=None):
    """A study with one trial per value (None: pruned), constrained where constraints[i] > 0."""
    study = optuna.create_study(direction=direction)
    for i, v in enumerate(values):
        t = study.ask()
        if constraints is not None:
            t.set_constraint("c", constraints[i])
        study.tell(t, v) if v is not None else study.tell(t, state=TrialState.PRUNED)
    return study


def test_rank_is_best_first_feasible_first_and_the_earliest_of_equals():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = study_of([0.3, None, 0.1, 0.1, math.inf, 0.05], constraints=[0, 0, 0, 0, 0, 1])
    assert [t.number for t in rank(study.trials, study.directions)] == [2, 3, 0, 5]  # 5 breaks the constraint
    up = study_of([0.3, 0.9, 0.9], direction="maximize")
    assert [t.number for t in rank(up.trials, up.directions)] == [1, 2, 0]


def test_a_record_reads_the_trials_attributes_by_their_one_name():
    study = optuna.create_study()
    t = study.ask()
    t.suggest_float("x", 0, 1)
    t.set_user_attr(RUN_ID, "abc")
    t.set_user_attr(RUN_STORE, "sqlite:///a.db")
    t.set_user_attr(METRICS_ATTR, {"val_cost": 0.5})
    study.tell(t, 0.5)
    r = TrialRecord.of(study.trials[0])
    assert (r.number, r.state, r.values, r.run_id, r.tracking_uri, r.metrics, r.feasible) == (
        0, "COMPLETE", (0.5,), "abc", "sqlite:///a.db", {"val_cost": 0.5}, True)
