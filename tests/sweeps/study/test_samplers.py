"""sweeps.study.samplers: every sampler of the table searches a real space under ask/tell (those
marked `several` with two objectives and constraints too), the grid covers its points exactly once
without stopping the study, and GP's PyTorch is imported only when GP is chosen, and refused with
how to install it when missing (real processes)."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys

import optuna
import pytest
from omegaconf import OmegaConf

from sweeps.config.schema import SweepConfig
from sweeps.config.space import parse_space
from sweeps.errors import ConfigError
from sweeps.study.samplers import SAMPLERS, Grid, grid_size
from tests.conftest import ROOT

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


@pytest.mark.parametrize("name", sorted(n for n, s in SAMPLERS.items() if s.several))
def test_the_samplers_of_several_objectives_search_two_under_constraints(name):
    entry = SAMPLERS[name]
    if entry.package and importlib.util.find_spec(entry.package) is None:
        pytest.skip(f"{name} needs {entry.package}, which is not installed")
    space = parse_space(OmegaConf.create(SPACE))
    study = optuna.create_study(sampler=entry.make(sweep(sampler=name, metric=["val_cost", "n_params"]), 7, space),
                                directions=["minimize", "minimize"])
    for _ in range(4):
        trial = study.ask()
        values = space.sample(trial)
        trial.set_constraint("n_params <= 2000", values["train.learning_rate"] - 0.5)  # lr 0.1, 0.4 feasible
        study.tell(trial, [values["train.learning_rate"], 1.0 if values["model.activation"] == "tanh" else 2.0])
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4 and all(len(t.values) == 2 for t in complete)
    assert all(t.params["train.learning_rate"] < 0.5 for t in study.best_trials)  # the front: feasible trials only


def test_cmaes_searches_one_objective_only():
    assert not SAMPLERS["cmaes"].several
    assert {n for n, s in SAMPLERS.items() if s.several} >= {"tpe", "nsgaii", "nsgaiii", "gp", "random"}


def run_python(code: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd or ROOT, capture_output=True, text=True, timeout=300)


def test_torch_is_imported_only_when_gp_is_chosen():
    code = ("import sys\n"
            "from omegaconf import OmegaConf\n"
            "import sweeps.runner.session, sweeps.runner.work\n"
            "from sweeps.config.schema import SweepConfig\n"
            "from sweeps.config.space import parse_space\n"
            "from sweeps.study.samplers import SAMPLERS\n"
            "space = parse_space(OmegaConf.create({'model': {'activation': {'type': 'categorical', "
            "'choices': ['tanh', 'relu']}}}))\n"
            "for name, entry in SAMPLERS.items():\n"
            "    if name != 'gp':\n"
            "        entry.make(OmegaConf.structured(SweepConfig(sampler=name)), 0, space)\n"
            "assert 'torch' not in sys.modules, 'torch imported without gp'\n"
            "import optuna\n"
            "gp = SAMPLERS['gp'].make(OmegaConf.structured(SweepConfig(sampler='gp', n_startup_trials=1)), 0, space)\n"
            "study = optuna.create_study(sampler=gp)\n"
            "for _ in range(2):\n"
            "    trial = study.ask()\n"
            "    study.tell(trial, 1.0 if space.sample(trial)['model.activation'] == 'tanh' else 0.0)\n"
            "print('torch' in sys.modules)\n")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    if importlib.util.find_spec("torch") is not None:
        assert proc.stdout.strip() == "True"  # GP's model, once it models, is what imports it


def test_gp_without_torch_is_refused_with_how_to_install_it(tmp_path):
    """A real `python -m sweeps` in a process where torch cannot be imported (None in sys.modules is
    Python's own way to make an import fail): one sentence, exit 2, nothing written."""
    code = ("import runpy, sys\n"
            "sys.modules['torch'] = None\n"
            "sys.argv = ['sweeps', 'sweep.sampler=gp', 'sweep.storage=s.journal', 'tracking.uri=sqlite:///m.db']\n"
            "runpy.run_module('sweeps', run_name='__main__', alter_sys=True)\n")
    proc = run_python(code, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: sweep.sampler is 'gp', but that sampler needs the torch package"), proc.stderr
    assert "pip install -e .[gp]" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s.journal").exists() and not (tmp_path / "m.db").exists()
