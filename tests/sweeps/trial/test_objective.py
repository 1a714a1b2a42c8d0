"""sweeps.trial.objective: config in, metric out; the pruner told the chosen metric."""

import math

import optuna
import pytest

from sweeps.config.metrics import METRICS
from sweeps.config.space import parse_space
from sweeps.tracking.tracker import Tracker
from sweeps.trial.build import load_data
from sweeps.trial.objective import objective
from tests.sweeps.conftest import SMALL


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_every_metric_can_be_the_objective_and_is_what_the_pruner_hears(compose_cfg, metric):
    cfg = compose_cfg(*SMALL, f"sweep.metric={metric}", "train.report_every=50", "sweep.pruner=median")
    space, data = parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed)
    study = optuna.create_study(direction=METRICS[metric].direction, pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    value = objective(trial, cfg, space, data, Tracker("unused", enabled=False))
    assert value == trial.user_attrs["metrics"][metric] and math.isfinite(value)
    reported = study.trials[0].intermediate_values
    assert sorted(reported) == [50, 100, 150]  # every report_every iterations, the chosen metric
    if metric == "iterations_run":
        assert reported == {50: 50.0, 100: 100.0, 150: 150.0}
    if metric == "val_accuracy":
        assert all(0 <= v <= 1 for v in reported.values())


def test_a_diverging_trial_is_pruned_with_its_reason(compose_cfg):
    cfg = compose_cfg("search_space=none", "+search_space.train.learning_rate={type:float,low:1e6,high:1e7}",
                      "train.iterations=200", "model.activation=relu", "model.init=he")
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="diverged"):
        objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed), Tracker("unused", enabled=False))
    assert "diverged" in study.trials[0].user_attrs["diverged"]


def test_repeats_train_with_their_own_seeds_and_the_trial_is_their_mean(compose_cfg):
    cfg = compose_cfg(*SMALL, "sweep.repeats=3", "train.report_every=50", "sweep.pruner=median")
    study = optuna.create_study(pruner=optuna.pruners.NopPruner(), sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    value = objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed), Tracker("unused", enabled=False))
    t = study.trials[0]
    each = [r["val_cost"] for r in t.user_attrs["repeats"]]
    assert len(each) == 3 and len(set(each)) == 3  # three seeds, three networks
    assert value == t.user_attrs["metrics"]["val_cost"] == pytest.approx(sum(each) / 3)
    # the pruner hears the mean of the three at each report step, once: the last repeat reports it
    assert sorted(t.intermediate_values) == [50, 100, 150]
    one = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))  # the same params
    once = objective(one.ask(), compose_cfg(*SMALL), parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed),
                     Tracker("unused", enabled=False))
    # repeat 0 trains with the config's own seed: sweep.repeats=1 is the trial of before
    assert one.trials[0].params == t.params and once == each[0]


def test_the_test_split_reaches_no_trial_record(compose_cfg):
    cfg = compose_cfg(*SMALL, "sweep.repeats=2", "train.report_every=50")
    study = optuna.create_study()
    trial = study.ask()
    objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed), Tracker("unused", enabled=False))
    t = study.trials[0]
    assert load_data(cfg.dataset, cfg.seed).X_test.shape[1] == 80  # flower's default: 20 % held out
    attrs = [*t.params, *t.user_attrs["metrics"], *(k for r in t.user_attrs["repeats"] for k in r)]
    assert not [k for k in attrs if "test" in k]
