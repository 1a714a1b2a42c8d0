"""A study's best trial: complete, finite, feasible, the earliest of equals in either direction, as
Optuna's own best_trial; none with several objectives."""

from __future__ import annotations

import math

import optuna
import pytest

from sweeps.study.best import best_trial, several

X = {"x": optuna.distributions.FloatDistribution(0, 1)}


def study_of(direction: str, values: list[float], constraints: list[float] | None = None) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for i, v in enumerate(values):
        study.add_trial(optuna.trial.create_trial(
            value=v, params={"x": 0.5}, distributions=X,
            constraints=None if constraints is None else {"n_params <= 30": constraints[i]}))
    return study


@pytest.mark.parametrize("direction, values, best", [("minimize", [0.5, 0.2, 0.2, 0.9], 1),
                                                     ("maximize", [0.5, 0.9, 0.2, 0.9], 1)])
def test_the_earliest_of_equal_values_is_best_as_optunas(direction, values, best):
    study = study_of(direction, values)
    assert best_trial(study).number == best == study.best_trial.number


def test_infinite_infeasible_pruned_and_failed_trials_are_never_best():
    study = study_of("minimize", [-math.inf, 0.1, 0.3], constraints=[-1.0, 1.0, 0.0])
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, params={"x": 0.5},
                                              distributions=X, intermediate_values={1: 0.0}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, params={"x": 0.5},
                                              distributions=X))
    assert best_trial(study).number == 2
    assert best_trial(study_of("minimize", [0.1], constraints=[1.0])) is None


def test_several_objectives_have_no_one_best():
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[0.1, 3.0], params={"x": 0.5}, distributions=X))
    assert several(study) and best_trial(study) is None
    assert not several(study_of("minimize", [0.1]))
