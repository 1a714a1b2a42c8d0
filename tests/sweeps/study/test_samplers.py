"""sweeps.study.samplers: every sampler of the table searches a real space under ask/tell, and the
grid covers its points exactly once without stopping the study."""

from __future__ import annotations

import importlib.util
import itertools

import optuna
import pytest
from omegaconf import OmegaConf

from sweeps.config.schema import SweepConfig
from sweeps.config.space import parse_space
from sweeps.errors import ConfigError
from sweeps.study.samplers import SAMPLERS, Grid, grid_size

# a 2 x 3 grid that every sampler can search: a float with a step and a categorical
SPACE = {"train": {"learning_rate": {"type": "float", "low": 0.1, "high": 0.7, "step": 0.3}},
         "model": {"activation": {"type": "categorical", "choices": ["tanh", "relu"]}}}
GRID = {"train.learning_rate": [0.1, 0.4, 0.7], "model.activation": ["tanh", "relu"]}


def sweep(**overrides):
    return OmegaConf.structured(SweepConfig(**{"n_startup_trials": 1, **overrides}))


@pytest.fixture(autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_runs_ask_and_tell_on_a_parsed_space(name):
    entry = SAMPLERS[name]
    if entry.package and importlib.util.find_spec(entry.package) is None:
        pytest.skip(f"{name} needs {entry.package}, which is not installed")
    space = parse_space(OmegaConf.create(SPACE))
    sampler = entry.make(sweep(sampler=name), 7, space)
    assert isinstance(sampler, optuna.samplers.BaseSampler)
    study = optuna.create_study(sampler=sampler, direction="minimize")
    for _ in range(3):  # past n_startup_trials, so the model-based samplers model too
        trial = study.ask()
        values = space.sample(trial)
        assert set(values) == set(GRID)
        assert values["train.learning_rate"] in GRID["train.learning_rate"]
        assert values["model.activation"] in GRID["model.activation"]
        study.tell(trial, values["train.learning_rate"])
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 3 and all(set(t.params) == set(GRID) for t in complete)


def test_the_grid_covers_every_point_exactly_once_under_ask_and_tell():
    space = parse_space(OmegaConf.create(SPACE))
    sampler = SAMPLERS["grid"].make(sweep(sampler="grid"), 0, space)
    assert isinstance(sampler, Grid)
    study = optuna.create_study(sampler=sampler)
    seen = []
    for _ in range(6):
        trial = study.ask()
        values = space.sample(trial)
        seen.append((values["train.learning_rate"], values["model.activation"]))
        study.tell(trial, 1.0)  # the sixth exhausts the grid: Optuna's own would call study.stop() and raise
    assert sorted(seen) == sorted(itertools.product(GRID["train.learning_rate"], GRID["model.activation"]))
    last = study.trials[-1]
    sampler.after_trial(study, last, optuna.trial.TrialState.COMPLETE, [1.0])  # exhausted: still no raise
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 6


def test_grid_size_is_the_number_of_points_and_none_for_other_samplers():
    space = parse_space(OmegaConf.create(SPACE))
    assert grid_size(sweep(sampler="grid"), space) == 6
    assert grid_size(sweep(sampler="tpe"), space) is None
    assert grid_size(sweep(sampler="random"), space) is None


def test_a_grid_refuses_a_continuous_float():
    space = parse_space(OmegaConf.create({"train": {"learning_rate": {"type": "float", "low": 0.1, "high": 1.0}}}))
    with pytest.raises(ConfigError, match="continuous float") as err:
        grid_size(sweep(sampler="grid"), space)
    assert "train.learning_rate" in str(err.value)
    with pytest.raises(ConfigError, match="continuous float"):
        SAMPLERS["grid"].check(space)
    assert grid_size(sweep(sampler="tpe"), space) is None  # other samplers search it


def test_a_grid_refuses_an_empty_space():
    with pytest.raises(ConfigError, match="search space is empty"):
        grid_size(sweep(sampler="grid"), parse_space(OmegaConf.create({})))
