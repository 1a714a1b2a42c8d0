"""The config's values, checked once before any trial starts: `check_values(cfg)` raises a
ConfigError whose message is one sentence naming the field, the value and what is allowed, and
`settings(cfg)` gives the frozen sweeps.config.schema.Config each layer reads its part of.

Each field's rule is declared on the schema beside its default (sweeps.config.schema.RULES), and
its allowed names are the tables that define them: nncore's (datasets, activations, outputs,
initialisers, optimisers, dtypes). sweep.metric, sweep.direction and sweep.constraints are
sweeps.config.objectives'; the samplers and pruners are checked by sweeps.study against its own tables.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import typing
from pathlib import Path
from typing import Any, Callable, Mapping

from omegaconf import DictConfig, ListConfig, MissingMandatoryValue, OmegaConf

from sweeps.config import objectives
from sweeps.config.rules import is_integer, is_number
from sweeps.config.schema import RULES, Config
from sweeps.errors import ConfigError, did_you_mean

# path -> (accepts(value), what is allowed), for the search space's values (sweeps.config.space)
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {path: (r.accepts, r.allowed) for path, r in RULES.items()}


def resolve_hidden_units(model: Mapping[str, Any]) -> list[int]:
    """The hidden-layer widths `model` asks for:

    depth and units set -> [units] * depth; only units -> [units] * len(hidden_units);
    only depth -> hidden_units if it has `depth` layers, else [hidden_units[0]] * depth;
    neither -> hidden_units.
    """
    hidden = list(model["hidden_units"])
    depth, units = model.get("depth"), model.get("units")
    if depth is None:
        return hidden if units is None else [units] * len(hidden)
    if units is not None:
        return [units] * depth
    if len(hidden) == depth:
        return hidden
    if not hidden:
        raise ConfigError(f"model.depth is {depth} but model.hidden_units is [] and model.units is null, "
                          "so no layer width is given; set model.units.")
    return [hidden[0]] * depth


def check_values(cfg: DictConfig) -> None:
    """Check every value of the config's own fields against its rule; raise ConfigError on the first bad one."""
    for path, rule in RULES.items():
        try:
            value = OmegaConf.select(cfg, path, throw_on_missing=True)
        except MissingMandatoryValue:
            raise ConfigError(f"{path} is not set (???), but it must be {rule.allowed}.") from None
        if not rule.accepts(value):
            raise ConfigError(f"{path} is {value!r}, but it must be {rule.allowed}{did_you_mean(value, rule.names)}.")
    d = cfg.dataset
    if d.val_fraction + d.test_fraction >= 1:
        raise ConfigError(f"dataset.test_fraction is {d.test_fraction!r} and dataset.val_fraction {d.val_fraction!r}, "
                          "but together they must be below 1, or no sample is left to train on.")
    for key in flatten(cfg.search_space):  # nested ({train: {beta: ...}}) or dotted (train.beta: ...)
        old = next((p for p in MOVED if key == p or key.startswith(p + ".")), None)
        if old is not None:
            raise ConfigError(f"search_space entry {old!r} names no field: {moved(old)}; write "
                              f"search_space.{MOVED[old]} instead.")
    objectives.check(cfg.sweep)
    _validate_scale_out(cfg.sweep)
    hidden = resolve_hidden_units(cfg.model)
    if not all(is_integer(u) and u >= 1 for u in hidden):
        raise ConfigError(f"model.hidden_units is {hidden}, but every width must be an integer >= 1.")
    _validate_dataset_kwargs(cfg)


def settings(cfg: DictConfig | Mapping[str, Any]) -> Config:
    """The frozen settings of a composed (or a trial's, or a logged) config, resolved; a field it
    lacks takes the schema's default. No check: check_values(cfg) ran once, at launch."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, (DictConfig, ListConfig)) else cfg
    return _settle(Config, data)


# What a config logged by an earlier version (a trial's config.yaml) spelt otherwise: the optimisers'
# hyperparameters sat flat in train, and an absent key had this value then (no test split, one repeat)
MOVED = {"train.beta": "train.optimizers.momentum.beta", "train.beta1": "train.optimizers.adam.beta1",
         "train.beta2": "train.optimizers.adam.beta2", "train.eps": "train.optimizers.adam.eps"}
ABSENT = {"dataset.test_fraction": 0.0, "sweep.repeats": 1}


def moved(path: str) -> str:
    """The sentence's start that refuses an earlier version's spelling, naming the new one."""
    return (f"{path} is now {MOVED[path]}: each optimiser's hyperparameters sit under its name, "
            "train.optimizers.<name>")


def logged_settings(cfg: DictConfig | Mapping[str, Any]) -> Config:
    """The settings of a config a trial logged, by this version or an earlier one (MOVED, ABSENT)."""
    old = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg)
    for path, value in ABSENT.items():
        if OmegaConf.select(old, path, default=_NONE) is _NONE:
            OmegaConf.update(old, path, value, force_add=True)
    for path, new in MOVED.items():
        value = OmegaConf.select(old, path, default=_NONE)
        if value is not _NONE:
            OmegaConf.update(old, new, value, force_add=True)
    return settings(old)


_NONE = object()


def _settle(cls: type, data: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _settle(hints[f.name], data[f.name]) if dataclasses.is_dataclass(hints[f.name])
                  else data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def _validate_scale_out(sweep: DictConfig) -> None:
    """The options that only make sense together: the Dask backend and its scheduler, the heartbeat
    and its grace period."""
    if sweep.backend == "dask":
        if not sweep.scheduler:
            raise ConfigError("sweep.backend is 'dask', but sweep.scheduler is null; give the address of a running "
                              "Dask scheduler, e.g. sweep.scheduler=tcp://127.0.0.1:8786 (`make dask-scheduler`).")
        if importlib.util.find_spec("distributed") is None:
            raise ConfigError("sweep.backend is 'dask', but the distributed package is not installed; install "
                              "dask and distributed (requirements.lock pins them) or use sweep.backend=loky.")
    interval, grace = sweep.heartbeat_interval, sweep.grace_period
    if interval is not None and grace is not None and grace <= interval:
        raise ConfigError(f"sweep.grace_period is {grace}, but it must be longer than sweep.heartbeat_interval "
                          f"({interval}), or every running trial would look dead.")


def _validate_dataset_kwargs(cfg: DictConfig) -> None:
    if cfg.dataset.name != "csv":
        return
    kwargs = cfg.dataset.kwargs
    for key in ("path", "label"):
        if key not in kwargs or OmegaConf.is_missing(kwargs, key) or not str(kwargs[key] or "").strip():
            raise ConfigError(f"dataset.kwargs.{key} is not set, but the csv dataset needs it: "
                              f"pass dataset.kwargs.{key}=<{'file.csv' if key == 'path' else 'label column'}>.")
    if not Path(kwargs.path).is_file():
        raise ConfigError(f"dataset.kwargs.path is {kwargs.path!r}, but it must be an existing CSV file.")


def resolve_direction(cfg: DictConfig) -> str:
    """The study's direction as the question records it: sweep.direction if set, else the direction
    that improves sweep.metric (METRICS); for several metrics the list, '[minimize, maximize]'."""
    return objectives.spelled(objectives.directions(cfg.sweep))


def flatten(cfg: DictConfig | Config | Mapping[str, Any]) -> dict[str, str]:
    """Dotted keys -> str values of the resolved config, e.g. {"model.hidden_units": "[4, 4]"}.

    null is written "null" and booleans "true"/"false", as Hydra overrides spell them.
    """
    data = (OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, (DictConfig, ListConfig)) else
            dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg)
    out: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:  # lists as "[4, 4]", empty mappings as "{}"
            out[prefix[:-1]] = "null" if node is None else str(node).lower() if isinstance(node, bool) else str(node)

    walk(data, "")
    return out
