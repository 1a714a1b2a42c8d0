"""sweeps.study.stopping: the stop decided from a real study's complete trials (in memory and in a
journal that two workers share), recorded once, and kept or lifted by a later invocation."""

from __future__ import annotations

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState, create_trial

from sweeps.config.objectives import WARM_FROM
from sweeps.errors import ConfigError
from sweeps.study.stopping import STOPPED_ATTR, StopRule, check, decide, reached, recorded, resume, rule

DIST = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}


@pytest.fixture(autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def finish(study: optuna.Study, *values: float) -> None:
    """Complete trials with these values, in this order (ask/tell, as the workers do)."""
    for value in values:
        trial = study.ask({"x": DIST["x"]})
        study.tell(trial, value)


def journal(tmp_path, name="S") -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def test_patience_stops_after_that_many_complete_trials_without_improvement():
    study = optuna.create_study()
    finish(study, 0.5, 0.3, 0.4, 0.35, 0.6, 0.31)
    stop = StopRule("val_cost", patience=5)
    assert decide(study, stop) is None  # 4 since the best
    finish(study, 0.3)  # equal is no improvement
    decided = decide(study, stop)
    assert decided.reason == "no improvement larger than 0.0 in the last 5 finished trials (best 0.3 at trial 1)"
    assert decided.trial == 6


def test_the_reason_names_the_patience_even_when_more_trials_finished_since():
    study = optuna.create_study()
    finish(study, 0.3, 0.4, 0.5, 0.6, 0.7)  # 4 since the best: a second worker finished one more
    decided = decide(study, StopRule("val_cost", patience=3))
    assert decided.reason == "no improvement larger than 0.0 in the last 3 finished trials (best 0.3 at trial 0)"


def test_pruned_and_failed_trials_do_not_count_toward_patience():
    study = optuna.create_study()
    finish(study, 0.5, 0.6)
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"x": 0.1}, distributions=DIST))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"x": 0.1}, distributions=DIST))
    assert decide(study, StopRule("val_cost", patience=2)) is None
    finish(study, 0.7)
    assert decide(study, StopRule("val_cost", patience=2)) is not None


def test_a_gain_below_min_delta_is_no_improvement_but_a_larger_one_is():
    study = optuna.create_study()
    finish(study, 1.0, 0.95, 0.92)  # gains of 0.05 and 0.03
    assert decide(study, StopRule("val_cost", patience=2, min_delta=0.1)).reason == (
        "no improvement larger than 0.1 in the last 2 finished trials (best 0.92 at trial 2)")
    assert decide(study, StopRule("val_cost", patience=2, min_delta=0.01)) is None


def test_a_study_that_improved_lately_goes_on_whatever_streak_it_had_before():
    study = optuna.create_study()
    finish(study, 0.5, 0.6, 0.7, 0.8, 0.1)
    assert decide(study, StopRule("val_cost", patience=3)) is None


def test_patience_counts_up_for_a_maximised_metric():
    study = optuna.create_study(direction="maximize")
    finish(study, 0.5, 0.9, 0.8, 0.85)
    assert decide(study, StopRule("val_accuracy", patience=2)).reason.endswith("(best 0.9 at trial 1)")
    finish(study, 0.95)
    assert decide(study, StopRule("val_accuracy", patience=2)) is None


@pytest.mark.parametrize("direction, values, target, trial", [
    ("minimize", (0.5, 0.3, 0.19, 0.1), 0.2, 2),
    ("maximize", (0.5, 0.9, 0.95), 0.9, 1),
])
def test_the_target_stops_at_the_first_trial_that_reaches_it(direction, values, target, trial):
    study = optuna.create_study(direction=direction)
    finish(study, *values[:trial])
    assert decide(study, StopRule("m", target=target)) is None
    finish(study, *values[trial:])
    decided = decide(study, StopRule("m", target=target))
    assert decided.trial == trial
    assert decided.reason == f"m reached the target {target:g} at trial {trial} ({values[trial]:g})"


def test_a_study_of_several_objectives_is_never_stopped():
    study = optuna.create_study(directions=["minimize", "minimize"])
    for _ in range(4):
        trial = study.ask({"x": DIST["x"]})
        study.tell(trial, [1.0, 1.0])
    assert decide(study, StopRule("val_cost", patience=1, target=2.0)) is None


def test_the_first_worker_to_see_the_stop_records_it_and_every_other_worker_stops(tmp_path):
    optuna.create_study(study_name="S", storage=journal_storage(tmp_path))
    one, two = journal(tmp_path), journal(tmp_path)  # two workers' views of one journal
    finish(one, 0.2, 0.3, 0.4)
    stop = StopRule("val_cost", patience=2)
    reason = reached(one, stop)
    assert reason == "no improvement larger than 0.0 in the last 2 finished trials (best 0.2 at trial 0)"
    assert recorded(journal(tmp_path)) == {"reason": reason, "trial": 2,
                                            "settings": {"patience": 2, "min_delta": 0.0, "target": None}}
    assert reached(two, None) == reason  # a worker without settings of its own stops too
    assert reached(two, StopRule("val_cost", patience=9)) == reason


def test_a_later_invocation_keeps_the_stop_under_the_same_settings_and_lifts_it_under_others(tmp_path):
    optuna.create_study(study_name="S", storage=journal_storage(tmp_path))
    study = journal(tmp_path)
    finish(study, 0.2, 0.3, 0.4)
    reason = reached(study, StopRule("val_cost", patience=2))
    assert resume(journal(tmp_path), StopRule("val_cost", patience=2)) == (reason, None)
    kept, note = resume(journal(tmp_path), StopRule("val_cost", patience=3))
    assert kept is None
    assert note == (f"the study stopped under sweep.stop.patience=2 sweep.stop.min_delta=0.0 ({reason}); "
                    "sweep.stop is now sweep.stop.patience=3 sweep.stop.min_delta=0.0: it goes on")
    assert journal(tmp_path).user_attrs[STOPPED_ATTR] is None
    # the new settings are met already: stopped again at once, under them
    again, _ = resume(journal(tmp_path), StopRule("val_cost", patience=2, min_delta=0.5))
    assert again.startswith("no improvement larger than 0.5")
    assert recorded(journal(tmp_path))["settings"]["min_delta"] == 0.5
    # no settings at all: the sweep goes on
    assert resume(journal(tmp_path), None)[0] is None


def journal_storage(tmp_path):
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.journal")))


def sweep(metric, **stop):
    return OmegaConf.create({"metric": metric, "stop": {"patience": None, "min_delta": 0.0, "target": None, **stop}})


def test_rule_is_none_when_nothing_asks_for_a_stop():
    assert rule(sweep("val_cost")) is None
    assert rule(sweep("val_cost", min_delta=0.1)) is None
    assert rule(sweep("val_cost", patience=5)) == StopRule("val_cost", patience=5)
    assert rule(sweep(["val_accuracy"], target=0.9)) == StopRule("val_accuracy", target=0.9)


def test_stopping_is_refused_for_several_objectives_with_a_sentence():
    check(sweep(["val_cost", "n_params"]))  # no stop asked: fine
    check(sweep(["val_cost"], patience=3))  # one objective in a list: fine
    with pytest.raises(ConfigError) as info:
        check(sweep(["val_cost", "n_params"], patience=3))
    assert str(info.value) == ("sweep.stop.patience is 3, but stopping watches one objective and sweep.metric has 2 "
                               "(val_cost, n_params); drop sweep.stop.patience, or sweep one metric.")


def test_an_infeasible_trial_neither_reaches_the_target_nor_is_the_best_patience_counts_from():
    study = optuna.create_study()
    study.add_trial(create_trial(value=0.01, params={"x": 0.1}, distributions=DIST, constraints={"c": 1.0}))
    for value in (0.5, 0.4, 0.3):  # feasible, each an improvement
        study.add_trial(create_trial(value=value, params={"x": 0.1}, distributions=DIST, constraints={"c": -1.0}))
    assert decide(study, StopRule("val_cost", target=0.05)) is None
    assert decide(study, StopRule("val_cost", patience=3)) is None


def test_a_warm_start_s_copies_do_not_count_toward_the_stop():
    study = optuna.create_study()
    for value in (0.1, 0.5, 0.5, 0.5, 0.5, 0.5):  # copied from another study: its history, not this one's
        study.add_trial(create_trial(value=value, params={"x": 0.1}, distributions=DIST,
                                     user_attrs={WARM_FROM: "old:0"}))
    assert decide(study, StopRule("val_cost", patience=5)) is None
    assert decide(study, StopRule("val_cost", target=0.2)) is None
    finish(study, 0.6, 0.7)
    assert decide(study, StopRule("val_cost", patience=1)).reason.endswith("(best 0.6 at trial 6)")
