"""sweeps.runner.confirm: a sweep's best configs trained again with fresh seeds, measured on
validation and test, with intervals and a paired test of the winner; on the study and the runs."""

import math

import optuna
import pytest
from mlflow import MlflowClient

from sweeps.config.space import parse_space
from sweeps.record import confirmation
from sweeps.runner.confirm import confirm
from sweeps.tracking.tracker import Tracker
from sweeps.trial.build import load_data
from sweeps.trial.objective import objective
from tests.sweeps.conftest import SMALL


@pytest.fixture(scope="module")
def swept(compose_cfg, tmp_path_factory):
    """(cfg, space, study, tracker) of 4 trials of a small sweep tracked in a real local store."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    cfg = compose_cfg(*SMALL, f"tracking.uri={uri}", "sweep.confirm.seeds=4")
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={})
    space, data = parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: objective(t, cfg, space, data, tracker), n_trials=4)
    return cfg, space, study, tracker


def test_the_best_configs_are_confirmed_on_validation_and_test_and_only_their_runs_get_test_metrics(swept):
    cfg, space, study, tracker = swept
    assert confirmation(study) is None  # nothing of a test split before the confirmation
    c = confirm(study, tracker, cfg, space)
    ranked = sorted(study.trials, key=lambda t: t.value)
    assert [r.number for r in c.rows] == [t.number for t in ranked[:3]]  # sweep.confirm.top=3
    for r in c.rows:
        assert len(r.seeds) == 4 and len(r.values["val_cost"]) == 4 and r.metric == "val_cost"
        assert r.val_ci[0] < r.val_mean < r.val_ci[1] and r.test_ci[0] < r.test_mean < r.test_ci[1]
        assert r.test_metric == "test_cost" and r.search_value == study.trials[r.number].value
    assert c.verdict.startswith(f"best config (trial {ranked[0].number}): val_cost ") and "(4 seeds)" in c.verdict
    assert f"runner-up (trial {ranked[1].number})" in c.verdict and "paired t-test on val_cost" in c.verdict
    assert c.distinguishable == (c.p_value < 0.05) and c.complete == 4
    client = MlflowClient(tracker.uri)
    confirmed = {r.run_id for r in c.rows}
    for t in study.trials:
        m = client.get_run(t.user_attrs["run_id"]).data.metrics
        assert ("test_accuracy" in m and "test_cost" in m) == (t.user_attrs["run_id"] in confirmed)
    best = client.get_run(c.rows[0].run_id).data
    assert best.metrics["test_cost"] == pytest.approx(c.rows[0].test_mean) and best.tags["confirm.rank"] == "1"
    assert best.metrics["confirm/val_cost_ci_low"] == pytest.approx(c.rows[0].val_ci[0])
    parent = client.get_run(tracker.parent_run_id).data
    assert parent.tags["confirm.distinguishable"] == str(c.distinguishable).lower()
    assert parent.tags["confirm.verdict"] == c.verdict and parent.tags["confirm.method"] == "paired t-test"


def test_the_same_seeds_give_the_same_confirmation(swept):
    cfg, space, study, tracker = swept
    a = confirm(study, Tracker("unused", enabled=False), cfg, space)
    b = confirm(study, Tracker("unused", enabled=False), cfg, space, workers=2)  # dealt into two tasks
    assert a.rows == b.rows and a.verdict == b.verdict


def test_more_to_confirm_than_complete_trials_confirms_those_there_are_and_says_so(swept, capsys):
    cfg, space, study, _ = swept
    cfg = cfg.copy()
    cfg.sweep.confirm.top, cfg.sweep.confirm.seeds = 9, 2
    c = confirm(study, Tracker("unused", enabled=False), cfg, space)
    assert len(c.rows) == 4
    assert "sweep.confirm.top=9, but the study holds 4 complete trial(s): confirming those 4" in capsys.readouterr().out


def test_no_confirmation_when_off_or_for_several_metrics_which_one_line_says(swept, compose_cfg, capsys):
    cfg, space, study, _ = swept
    off = Tracker("unused", enabled=False)
    assert confirm(study, off, compose_cfg(*SMALL, "sweep.confirm.top=0"), space) is None
    assert capsys.readouterr().out == ""
    several = compose_cfg(*SMALL, "sweep.metric=[val_cost,n_params]")
    assert confirm(study, off, several, space) is None
    assert "sweep.confirm applies to one metric: the Pareto front is not confirmed" in capsys.readouterr().out


def test_without_a_test_split_the_verdict_says_there_is_no_test_score(swept, compose_cfg):
    _, space, study, _ = swept
    cfg = compose_cfg(*SMALL, "dataset.test_fraction=0", "sweep.confirm.top=1", "sweep.confirm.seeds=2")
    c = confirm(study, Tracker("unused", enabled=False), cfg, space)
    assert c.rows[0].test_mean is None and c.rows[0].test_ci is None and not math.isnan(c.rows[0].val_mean)
    assert "no test score (dataset.test_fraction=0)" in c.verdict and "no runner-up" in c.verdict
    assert c.distinguishable is None


def test_a_study_is_unconfirmed_until_its_complete_trials_are_confirmed(swept, compose_cfg):
    from sweeps.runner.confirm import unconfirmed

    cfg, space, study, _ = swept
    fresh = optuna.create_study()
    fresh.add_trials(study.trials)
    assert unconfirmed(fresh, cfg)
    assert not unconfirmed(fresh, compose_cfg(*SMALL, "sweep.confirm.top=0"))
    assert not unconfirmed(fresh, compose_cfg(*SMALL, "sweep.metric=[val_cost,n_params]"))
    confirm(fresh, Tracker("unused", enabled=False), cfg, space)
    assert not unconfirmed(fresh, cfg)
