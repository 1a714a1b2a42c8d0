"""sweeps.config.objectives: sweep.metric as one name or a list, the directions, and the constraints
parsed without eval; composed by real Hydra where the command line's spelling matters."""

from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from sweeps.config.checks import check_values, resolve_direction
from sweeps.config.metrics import METRICS
from sweeps.config.objectives import (
    Constraint,
    check,
    constraints,
    directions,
    metric_names,
    parse_constraint,
    pruning,
    several,
)
from sweeps.config.schema import SweepConfig
from sweeps.errors import ConfigError


def sweep(**overrides):
    return OmegaConf.structured(SweepConfig(**overrides))


def one_sentence(text: str) -> None:
    assert text.endswith(".") and text.count(". ") == 0, text


def test_one_metric_or_a_list_and_their_directions_from_the_table():
    assert metric_names(sweep()) == ["val_cost"] and not several(sweep())
    assert directions(sweep(metric="val_accuracy")) == ["maximize"]
    both = sweep(metric=["val_accuracy", "n_params"])
    assert metric_names(both) == ["val_accuracy", "n_params"] and several(both)
    assert directions(both) == ["maximize", "minimize"]
    assert not several(sweep(metric=["val_cost"])) and directions(sweep(metric=["val_cost"])) == ["minimize"]


def test_an_explicit_direction_overrides_the_table_one_per_metric():
    assert directions(sweep(metric="val_cost", direction="maximize")) == ["maximize"]
    assert directions(sweep(metric=["val_cost", "n_params"], direction=["minimize", "maximize"])) == [
        "minimize", "maximize"]


@pytest.mark.parametrize("metric, direction, words", [
    (["val_cost", "n_params"], "minimize", ["sweep.direction", "'minimize'", "2 metrics", "a list of 2 directions"]),
    (["val_cost", "n_params"], ["minimize"], ["sweep.direction", "2 metrics", "a list of 2 directions"]),
    ("val_cost", ["minimize", "maximize"], ["sweep.direction is ['minimize', 'maximize']", "one metric (val_cost)",
                                            "null (from the metric) or one of maximize, minimize"]),
    (["val_cost", "n_params"], ["minimize", "up"], ["sweep.direction", "'up'", "maximize, minimize"]),
    ("val_cost", "up", ["sweep.direction is 'up'", "null (from the metric) or one of maximize, minimize"]),
])
def test_a_direction_that_does_not_fit_the_metrics_is_one_sentence(metric, direction, words):
    with pytest.raises(ConfigError) as err:
        check(sweep(metric=metric, direction=direction))
    for w in words:
        assert w in str(err.value), str(err.value)
    one_sentence(str(err.value))


@pytest.mark.parametrize("metric, words", [
    ("accuracy", ["sweep.metric is 'accuracy'", "val_accuracy, val_cost", "did you mean 'val_accuracy'"]),
    (["val_cost", "n_param"], ["sweep.metric is [val_cost, n_param]", "'n_param'", "did you mean 'n_params'"]),
    ([], ["sweep.metric is []", "at least one metric"]),
    (["val_cost", "val_cost"], ["names val_cost twice"]),
])
def test_a_bad_metric_is_one_sentence_naming_what_is_allowed(metric, words):
    with pytest.raises(ConfigError) as err:
        check(sweep(metric=metric))
    for w in words:
        assert w in str(err.value), str(err.value)
    one_sentence(str(err.value))


@pytest.mark.parametrize("text, metric, op, bound, spaced", [
    ("fit_seconds <= 0.5", "fit_seconds", "<=", 0.5, "fit_seconds <= 0.5"),
    ("n_params<=2000", "n_params", "<=", 2000.0, "n_params <= 2000"),
    ("  val_accuracy >= .9 ", "val_accuracy", ">=", 0.9, "val_accuracy >= 0.9"),
    ("predict_seconds < 1e-3", "predict_seconds", "<", 1e-3, "predict_seconds < 0.001"),
    ("train_cost > -1.5E+2", "train_cost", ">", -150.0, "train_cost > -150"),
    ("n_params <= 2e3", "n_params", "<=", 2000.0, "n_params <= 2000"),  # one spelling per bound
    ("fit_seconds <= 0.1234567891", "fit_seconds", "<=", 0.1234567891, "fit_seconds <= 0.1234567891"),
])
def test_a_constraint_parses_into_metric_operator_and_bound(text, metric, op, bound, spaced):
    c = parse_constraint(text)
    assert (c.metric, c.op, c.bound, c.text) == (metric, op, bound, spaced)


def test_a_constraint_is_feasible_at_zero_or_below_and_strict_ones_exclude_their_bound():
    at = {"n_params": 2000.0, "val_accuracy": 0.9}
    assert parse_constraint("n_params <= 2000").value(at) == 0.0
    assert parse_constraint("n_params <= 2000").value({"n_params": 2001.0}) == 1.0
    assert parse_constraint("n_params < 2000").value(at) > 0  # the bound itself breaks a strict one
    assert parse_constraint("n_params < 2000").value({"n_params": 1999.0}) <= 0
    assert parse_constraint("val_accuracy >= 0.9").value(at) == 0.0
    assert parse_constraint("val_accuracy > 0.9").value(at) > 0
    assert parse_constraint("val_accuracy > 0.9").value({"val_accuracy": 0.95}) < 0
    assert parse_constraint("val_accuracy >= 0.9").value({"val_accuracy": math.nan}) == math.inf


@pytest.mark.parametrize("text, words", [
    ("fit_seconds =< 0.5", ["'fit_seconds =< 0.5'", "METRIC OP NUMBER", "<, <=, >, >="]),
    ("fit_seconds <= abc", ["'fit_seconds <= abc'", "METRIC OP NUMBER"]),
    ("__import__('os').system('true') <= 1", ["METRIC OP NUMBER"]),
    ("n_params <= 2000 and fit_seconds < 1", ["METRIC OP NUMBER"]),
    ("fit_second <= 0.5", ["'fit_second <= 0.5'", "'fit_second' is not a metric", "did you mean 'fit_seconds'"]),
    (3, ["3", "METRIC OP NUMBER"]),
])
def test_a_malformed_constraint_is_refused_naming_the_string_and_what_is_allowed(text, words):
    with pytest.raises(ConfigError) as err:
        parse_constraint(text)
    for w in words:
        assert w in str(err.value), str(err.value)
    assert "sweep.constraints" in str(err.value)
    one_sentence(str(err.value))


def test_constraints_take_a_list_or_one_string_and_refuse_one_given_twice():
    assert constraints(sweep()) == [] and constraints(sweep(constraints=None)) == []
    assert [c.text for c in constraints(sweep(constraints=["n_params <= 2000", "fit_seconds<0.5"]))] == [
        "n_params <= 2000", "fit_seconds < 0.5"]
    assert constraints(sweep(constraints="n_params <= 2000")) == [Constraint("n_params", "<=", 2000.0,
                                                                             "n_params <= 2000")]
    with pytest.raises(ConfigError, match="twice"):
        constraints(sweep(constraints=["n_params <= 2000", "n_params<=2000"]))
    with pytest.raises(ConfigError, match="twice"):
        constraints(sweep(constraints=["n_params <= 2000", "n_params <= 2e3"]))


def test_several_metrics_are_never_pruned():
    assert pruning(sweep()) and not pruning(sweep(pruner="none"))
    assert not pruning(sweep(metric=["val_cost", "n_params"]))


def test_the_command_lines_spelling_composes_and_picks_the_default_sampler(compose_cfg):
    one = compose_cfg()
    assert one.sweep.sampler == "tpe" and metric_names(one.sweep) == ["val_cost"]
    two = compose_cfg("sweep.metric=[val_cost,n_params]",
                      "sweep.constraints=['fit_seconds<=0.5', \"n_params <= 2000\"]")
    check_values(two)
    assert two.sweep.sampler == "nsgaii" and directions(two.sweep) == ["minimize", "minimize"]
    assert resolve_direction(two) == "[minimize, minimize]" and resolve_direction(one) == "minimize"
    assert [c.text for c in constraints(two.sweep)] == ["fit_seconds <= 0.5", "n_params <= 2000"]
    assert compose_cfg("sweep.metric=[val_cost]").sweep.sampler == "tpe"  # one metric in a list: one objective
    chosen = compose_cfg("sweep.metric=[val_cost,n_params]", "sweep.sampler=tpe")
    assert chosen.sweep.sampler == "tpe"  # the user's choice stands
    with pytest.raises(ConfigError, match="sweep.direction"):
        check_values(compose_cfg("sweep.metric=[val_cost,n_params]", "sweep.direction=minimize"))


def test_every_metric_of_the_table_may_be_constrained():
    for name in METRICS:
        assert parse_constraint(f"{name} <= 1").metric == name
