"""sweeps.study.factory: check() against the sampler and pruner tables, and open_study() on a real
journal, with the direction sweep.metric (or sweep.direction) gives it. Configs are conf/ composed
by real Hydra (compose_cfg, tests/sweeps/conftest.py)."""

from __future__ import annotations

import optuna
import pytest

from sweeps.config.metrics import METRICS
from sweeps.config.space import parse_space
from sweeps.errors import ConfigError
from sweeps.study.factory import check, open_study
from sweeps.study.pruners import PRUNERS
from sweeps.study.samplers import SAMPLERS, Grid
from sweeps.study.storages import Journal

DIRECTION = {"minimize": optuna.study.StudyDirection.MINIMIZE, "maximize": optuna.study.StudyDirection.MAXIMIZE}


@pytest.fixture(autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_check_accepts_the_default_config(compose_cfg):
    cfg = compose_cfg()
    check(cfg.sweep, parse_space(cfg.search_space))


def test_check_refuses_an_unknown_sampler_with_the_known_names(compose_cfg):
    cfg = compose_cfg("sweep.sampler=annealing")
    with pytest.raises(ConfigError) as err:
        check(cfg.sweep, parse_space(cfg.search_space))
    message = str(err.value)
    assert "sweep.sampler" in message and "'annealing'" in message
    assert ", ".join(sorted(SAMPLERS)) in message


def test_check_refuses_an_unknown_pruner_with_the_known_names(compose_cfg):
    cfg = compose_cfg("sweep.pruner=patient")
    with pytest.raises(ConfigError) as err:
        check(cfg.sweep, parse_space(cfg.search_space))
    message = str(err.value)
    assert "sweep.pruner" in message and "'patient'" in message
    assert ", ".join(sorted(PRUNERS)) in message


def test_check_refuses_a_space_the_grid_cannot_enumerate(compose_cfg):
    cfg = compose_cfg("sweep.sampler=grid")  # the default space has a continuous learning rate
    with pytest.raises(ConfigError, match="continuous float"):
        check(cfg.sweep, parse_space(cfg.search_space))


@pytest.mark.parametrize("metric,expected", [("val_accuracy", "maximize"), ("val_cost", "minimize")])
def test_open_study_creates_a_study_whose_direction_follows_the_metric(compose_cfg, tmp_path, metric,
                                                                      expected):
    assert METRICS[metric].direction == expected
    cfg = compose_cfg(f"sweep.metric={metric}", "sweep.study_name=D")
    storage = Journal(str(tmp_path / "d.journal"))
    study = open_study(cfg.sweep, storage, parse_space(cfg.search_space), seed=3, create=True)
    assert study.study_name == "D" and study.direction == DIRECTION[expected]
    assert (tmp_path / "d.journal").is_file()
    assert isinstance(study.sampler, optuna.samplers.TPESampler)
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)
    # another process (a fresh storage object on the same file) loads it, direction included
    loaded = open_study(cfg.sweep, Journal(str(tmp_path / "d.journal")), parse_space(cfg.search_space), seed=4)
    assert loaded.direction == DIRECTION[expected]


@pytest.mark.parametrize("metric", ["val_accuracy", "val_cost"])
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_sweep_direction_wins_over_the_metric(compose_cfg, tmp_path, metric, direction):
    cfg = compose_cfg(f"sweep.metric={metric}", f"sweep.direction={direction}")
    study = open_study(cfg.sweep, Journal(str(tmp_path / "d.journal")), parse_space(cfg.search_space), seed=0, create=True)
    assert study.direction == DIRECTION[direction]


def test_open_study_without_create_needs_the_study(compose_cfg, tmp_path):
    cfg = compose_cfg("sweep.study_name=absent")
    with pytest.raises(KeyError):
        open_study(cfg.sweep, Journal(str(tmp_path / "d.journal")), parse_space(cfg.search_space), seed=0)


def test_open_study_makes_the_configs_sampler_and_pruner(compose_cfg, tmp_path):
    cfg = compose_cfg("sweep.sampler=grid", "sweep.pruner=none", "search_space=none",
               "+search_space.model.activation={type:categorical,choices:[tanh,relu]}")
    space = parse_space(cfg.search_space)
    check(cfg.sweep, space)
    study = open_study(cfg.sweep, Journal(str(tmp_path / "d.journal")), space, seed=0, create=True)
    assert isinstance(study.sampler, Grid) and isinstance(study.pruner, optuna.pruners.NopPruner)
    seen = set()
    for _ in range(2):
        trial = study.ask()
        seen.add(space.sample(trial)["model.activation"])
        study.tell(trial, 0.0)
    assert seen == {"tanh", "relu"}


def test_several_metrics_make_a_study_of_as_many_directions_with_nsgaii_and_no_pruner(compose_cfg, tmp_path):
    cfg = compose_cfg("sweep.metric=[val_accuracy,n_params]", "sweep.study_name=M")
    space = parse_space(cfg.search_space)
    check(cfg.sweep, space)
    study = open_study(cfg.sweep, Journal(str(tmp_path / "m.journal")), space, seed=0, create=True)
    assert study.directions == [DIRECTION["maximize"], DIRECTION["minimize"]]
    assert isinstance(study.sampler, optuna.samplers.NSGAIISampler)
    assert isinstance(study.pruner, optuna.pruners.NopPruner)  # the median pruner cannot prune several values
    flipped = compose_cfg("sweep.metric=[val_accuracy,n_params]", "sweep.direction=[minimize,maximize]",
                          "sweep.study_name=F")
    study = open_study(flipped.sweep, Journal(str(tmp_path / "m.journal")), space, seed=0, create=True)
    assert study.directions == [DIRECTION["minimize"], DIRECTION["maximize"]]


def test_a_one_objective_sampler_is_refused_for_several_metrics(compose_cfg):
    cfg = compose_cfg("sweep.metric=[val_cost,n_params]", "sweep.sampler=cmaes")
    with pytest.raises(ConfigError) as err:
        check(cfg.sweep, parse_space(cfg.search_space))
    message = str(err.value)
    assert "sweep.sampler is 'cmaes'" in message and "one objective only" in message
    assert ", ".join(sorted(n for n, s in SAMPLERS.items() if s.several)) in message
    assert message.endswith(".") and message.count(". ") == 0
    for name in ("tpe", "nsgaii", "nsgaiii", "random"):  # these search several
        check(compose_cfg("sweep.metric=[val_cost,n_params]", f"sweep.sampler={name}").sweep, parse_space(cfg.search_space))
