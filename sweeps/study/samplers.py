"""SAMPLERS: sweep.sampler's name -> how to make it. A new sampler is one entry here.

Each worker makes its own sampler. TPE, random, CMA-ES, NSGA-II, NSGA-III and GP get a seed of the worker's own
(sweeps.runner.work.sampler_seed): parallel or resumed random draws must not repeat each other.
The grid and QMC get the sweep's seed instead: every worker, a resumed one or a second launcher's
included, must number the same grid points and draw from the same sequence, so that the storage's
trial numbers hand each point out exactly once.

Several objectives (sweep.metric=[...]) are searched by the samplers marked `several`; NSGA-II is
their default (sweeps.config.schema.sampler_for). sweep.constraints reach the samplers through
each trial's constraint values (optuna.trial.Trial.set_constraint, set by the objective): TPE,
NSGA-II, NSGA-III and GP steer away from infeasible trials; the others only record them.
GP needs PyTorch, an optional extra (`pip install -e .[gp]`); Optuna imports it lazily, when GP
first models (past n_startup_trials), so no other sampler pays for its import.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import optuna

from sweeps.config.space import SearchSpace
from sweeps.errors import ConfigError


class Grid(optuna.samplers.GridSampler):
    """Optuna's GridSampler without its call to study.stop() once the grid is covered, which is
    meant for study.optimize() and raises under ask/tell: the workers stop at the budget instead,
    which sweeps.runner.stores.fit_budget caps at the grid's size."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def _grid(space: SearchSpace) -> int:
    """The grid's size; a space a grid cannot enumerate is refused with a sentence."""
    if not space.entries:
        raise ConfigError("sweep.sampler is 'grid', but the search space is empty; "
                          "add discrete entries to search_space or pick another sampler.")
    size = 1
    for values in space.grid().values():
        size *= len(values)
    return size


def _tpe(s: Any, seed: int) -> optuna.samplers.BaseSampler:
    """TPE, multivariate. group: a space with `when` entries samples different parameters per
    trial, and TPE then models each group of parameters that appear together (a space without
    conditions is one group). Optuna calls `group` experimental: its warning says nothing to a user."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials, multivariate=True,
                                          group=True, constant_liar=True)


def _quiet(make: Callable[..., optuna.samplers.BaseSampler], **kwargs) -> optuna.samplers.BaseSampler:
    """A sampler Optuna calls experimental: its warning says nothing to a user."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return make(**kwargs)


def _gp(s: Any, seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's GP. A space with `when` entries or per-layer widths
    has parameters outside what every trial shares, which GP samples at random: said once here, in
    docs/configuration.md, not per trial."""
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=s.n_startup_trials, warn_independent_sampling=False)


@dataclass(frozen=True)
class Sampler:
    make: Callable[[Any, int, SearchSpace], optuna.samplers.BaseSampler]  # (cfg.sweep, seed, space)
    package: str | None = None  # an optional package it needs
    extra: str | None = None  # the project's optional extra that installs it (pyproject.toml)
    check: Callable[[SearchSpace], Any] | None = None  # refuses a space it cannot search
    several: bool = True  # searches several objectives


SAMPLERS: dict[str, Sampler] = {
    "tpe": Sampler(lambda s, seed, _: _tpe(s, seed)),
    "random": Sampler(lambda s, seed, _: optuna.samplers.RandomSampler(seed=seed)),
    "grid": Sampler(lambda s, seed, space: Grid(space.grid(), seed=s.seed), check=_grid),
    "cmaes": Sampler(lambda s, seed, _: optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=s.n_startup_trials),
                     package="cmaes", several=False),
    "qmc": Sampler(lambda s, seed, _: optuna.samplers.QMCSampler(seed=s.seed, scramble=True), package="scipy"),
    "nsgaii": Sampler(lambda s, seed, _: optuna.samplers.NSGAIISampler(seed=seed)),
    "nsgaiii": Sampler(lambda s, seed, _: _quiet(optuna.samplers.NSGAIIISampler, seed=seed)),
    "gp": Sampler(lambda s, seed, _: _gp(s, seed), package="torch", extra="gp"),
}


def grid_size(sweep: Any, space: SearchSpace) -> int | None:
    """How many points the grid sampler's space has; None for another sampler."""
    return _grid(space) if sweep.sampler == "grid" else None
