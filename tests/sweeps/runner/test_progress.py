"""sweeps.runner.progress: the status line of a real study with trials in every state."""

from __future__ import annotations

import re

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from sweeps.runner.progress import Progress
from sweeps.study.stopping import STOPPED_ATTR

DIST = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
ELAPSED = re.compile(r" \| \d{2}:\d{2}$")


@pytest.fixture(autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def study_with_every_state(direction: str) -> optuna.Study:
    """Trials 0-2 complete (0.5, 0.2, 0.9), 3 pruned, 4 failed, 5 and 6 running."""
    study = optuna.create_study(direction=direction)
    for value in (0.5, 0.2, 0.9):
        study.add_trial(create_trial(value=value, params={"x": value}, distributions=DIST))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"x": 0.1}, distributions=DIST,
                                 intermediate_values={1: 0.05}))  # pruned: never best, whatever it reported
    study.add_trial(create_trial(state=TrialState.FAIL, params={"x": 0.3}, distributions=DIST))
    study.ask()
    study.ask()
    return study


def counts_and_best(line: str) -> str:
    assert ELAPSED.search(line), line
    return ELAPSED.sub("", line)


def test_a_minimize_study_shows_its_counts_and_lowest_value():
    line = Progress(study_with_every_state("minimize"), 10, "val_cost").line()
    assert counts_and_best(line) == ("[sweep] 4/10 trials (1 pruned, 1 failed, 2 running) "
                                     "| best val_cost 0.2000 (trial 1)")


def test_a_maximize_study_shows_its_highest_value():
    line = Progress(study_with_every_state("maximize"), 12, "val_accuracy").line()
    assert counts_and_best(line) == ("[sweep] 4/12 trials (1 pruned, 1 failed, 2 running) "
                                     "| best val_accuracy 0.9000 (trial 2)")


def test_no_best_before_a_trial_completes():
    study = optuna.create_study()
    progress = Progress(study, 5, "val_cost")
    assert counts_and_best(progress.line()) == "[sweep] 0/5 trials (0 pruned, 0 failed, 0 running)"
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"x": 0.1}, distributions=DIST))
    assert counts_and_best(progress.line()) == "[sweep] 1/5 trials (1 pruned, 0 failed, 0 running)"
    trial = study.ask()
    study.tell(trial, 0.25)  # the line follows the study as it goes
    assert counts_and_best(progress.line()) == ("[sweep] 2/5 trials (1 pruned, 0 failed, 0 running) "
                                                "| best val_cost 0.2500 (trial 1)")


def test_the_line_ends_with_the_elapsed_minutes_and_seconds():
    progress = Progress(optuna.create_study(), 1, "val_cost")
    progress._start -= 125  # as if started 2 min 5 s ago
    assert progress.line().endswith(" | 02:05")


def test_several_metrics_show_the_size_of_the_pareto_front():
    study = optuna.create_study(directions=["minimize", "minimize"])
    progress = Progress(study, 6, ["val_cost", "n_params"])
    assert counts_and_best(progress.line()) == "[sweep] 0/6 trials (0 pruned, 0 failed, 0 running)"
    for values in ((0.5, 10.0), (0.2, 40.0), (0.6, 50.0)):  # the third is dominated by the first
        study.add_trial(create_trial(values=list(values), params={"x": 0.5}, distributions=DIST))
    assert counts_and_best(progress.line()) == ("[sweep] 3/6 trials (0 pruned, 0 failed, 0 running) "
                                                "| Pareto front: 2 trials")


def test_the_best_so_far_is_a_feasible_trial():
    study = optuna.create_study(direction="minimize")
    study.add_trial(create_trial(value=0.1, params={"x": 0.1}, distributions=DIST, constraints={"c": 1.0}))
    study.add_trial(create_trial(value=0.4, params={"x": 0.4}, distributions=DIST, constraints={"c": -1.0}))
    assert counts_and_best(Progress(study, 5, "val_cost").line()).endswith("| best val_cost 0.4000 (trial 1)")


def test_a_study_that_stopped_improving_says_it_stops():
    study = study_with_every_state("minimize")
    assert "stopping" not in Progress(study, 10, "val_cost").line()
    study.set_user_attr(STOPPED_ATTR, {"reason": "r", "trial": 2, "settings": {}})
    assert counts_and_best(Progress(study, 10, "val_cost").line()).endswith(
        "| best val_cost 0.2000 (trial 1) | stopping: no new trials")
