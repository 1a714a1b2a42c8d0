"""A study from a config: the sampler and pruner its names pick from their tables, checked
(check) and made for this process (open_study), with one direction per metric."""

from __future__ import annotations

import importlib.util
from typing import Any

import optuna

from sweeps.config.objectives import directions, pruning, several
from sweeps.config.schema import SweepConfig
from sweeps.config.space import SearchSpace
from sweeps.errors import ConfigError, did_you_mean, one_of
from sweeps.study.pruners import PRUNERS
from sweeps.study.samplers import SAMPLERS
from sweeps.study.storages import Storage


def check(sweep: SweepConfig, space: SearchSpace) -> None:
    """sweep.sampler and sweep.pruner against their tables, a sampler's optional package, and a
    space the sampler cannot search; raise ConfigError naming the field, the value and what is allowed."""
    sampler, pruner = sweep.sampler, sweep.pruner
    if sampler not in SAMPLERS:
        raise ConfigError(f"sweep.sampler is {sampler!r}, but it must be {one_of(SAMPLERS)}"
                          f"{did_you_mean(sampler, SAMPLERS)}.")
    if pruner not in PRUNERS:
        raise ConfigError(f"sweep.pruner is {pruner!r}, but it must be {one_of(PRUNERS)}"
                          f"{did_you_mean(pruner, PRUNERS)}.")
    spec = SAMPLERS[sampler]
    if spec.package and importlib.util.find_spec(spec.package) is None:
        how = f"install it with `pip install -e .[{spec.extra}]`" if spec.extra else "install it"
        raise ConfigError(f"sweep.sampler is {sampler!r}, but that sampler needs the {spec.package} package, "
                          f"which is not installed; {how} or pick another sampler.")
    if several(sweep) and not spec.several:
        able = [name for name, s in SAMPLERS.items() if s.several]
        raise ConfigError(f"sweep.sampler is {sampler!r}, which searches one objective only, but sweep.metric names "
                          f"{len(directions(sweep))}; pick {one_of(able)}, or leave sweep.sampler out for nsgaii.")
    if spec.check is not None:
        spec.check(space)


def open_study(sweep: SweepConfig, storage: Storage, space: SearchSpace, seed: int, create: bool = False) -> optuna.Study:
    """Opens the study (creating it when `create` and it is missing), with this process's sampler
    and pruner. An existing study is only read: a journal's create_study would append a line
    even for a study it then finds, and a refused invocation must leave the storage as it was."""
    kwargs: dict[str, Any] = dict(study_name=sweep.study_name, storage=storage.open(),
                                  sampler=SAMPLERS[sweep.sampler].make(sweep, seed, space),
                                  pruner=PRUNERS[sweep.pruner if pruning(sweep) else "none"](sweep))
    try:
        return optuna.load_study(**kwargs)
    except KeyError:  # no such study
        if not create:
            raise
    return optuna.create_study(directions=directions(sweep), load_if_exists=True, **kwargs)
