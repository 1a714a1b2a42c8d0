"""The configuration's schema: Hydra composes `conf/config.yaml` on top of `Config` (stored as
`base_config` by `register_configs()`), so a misspelt key (`model.actvation=relu`) or a wrong
type (`train.learning_rate=abc`) is refused while composing. The values are checked after
composing, by sweeps.config.checks.

`model.hidden_units` is the list of hidden-layer widths; `model.depth` and `model.units` (both
null by default) are shorthands the search space samples (sweeps.config.checks.resolve_hidden_units).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, ListConfig, OmegaConf


@dataclass
class DatasetConfig:
    name: str = MISSING
    val_fraction: float = 0.2
    # held out before the validation split: only the confirmed trials are scored on it (sweep.confirm)
    test_fraction: float = 0.2
    kwargs: Dict[str, Any] = field(default_factory=dict)  # open: passed to the loader as **kwargs


@dataclass
class ModelConfig:
    hidden_units: List[int] = field(default_factory=lambda: [4])
    activation: str = "tanh"
    leaky_slope: float = 0.01
    output: str = "auto"
    init: str = "scaled"
    depth: Optional[int] = None  # with units: hidden_units = [units] * depth
    units: Optional[int] = None


@dataclass
class TrainConfig:
    learning_rate: float = 1.2
    # [low, high]: where the shipped search spaces sample the learning rate for this preset's
    # optimiser (conf/search_space/default.yaml), so that train=adam searches adam's rates
    learning_rate_range: List[float] = field(default_factory=lambda: [0.1, 2.0])
    iterations: int = 2000
    optimizer: str = "gd"
    # the optimisers' own hyperparameters: every name an nncore optimiser takes has a field here
    # (sweeps.trial.build passes the chosen optimiser exactly the ones it takes)
    beta: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    batch_size: Optional[int] = None  # null = full batch
    l2: float = 0.0
    dtype: str = "float64"
    cost_every: int = 1
    report_every: int = 100


@dataclass
class StopConfig:
    """When a sweep stops before n_trials (sweeps.study.stopping); null = never. Not part of the
    study's question: changing them is a resume."""

    patience: Optional[int] = None  # complete trials in a row without an improvement larger than min_delta
    min_delta: float = 0.0
    target: Optional[float] = None  # the metric's value that is good enough (direction-aware)


@dataclass
class ConfirmConfig:
    """The end of a one-metric sweep: its `top` best configs trained again with `seeds` fresh
    seeds each, scored on validation and test (sweeps.trial.confirmation); top=0: off."""

    top: int = 3
    seeds: int = 5


@dataclass
class SweepConfig:
    n_trials: int = 30
    n_jobs: int = 2
    # conf/sweep/default.yaml makes it ${sampler_for:${sweep.metric}}: tpe, or nsgaii for several metrics
    sampler: str = "tpe"
    pruner: str = "median"
    # a name or a list of them (several objectives), checked by sweeps.config.objectives
    direction: Optional[Any] = None  # null = from each metric (sweeps.config.metrics)
    metric: Any = "val_cost"
    constraints: Optional[Any] = field(default_factory=list)  # ["fit_seconds <= 0.5", ...]
    study_name: str = "${dataset.name}"  # one study per dataset unless named
    storage: Optional[str] = None  # null = outputs/<study_name>.journal, so the same command resumes
    seed: int = 0
    timeout: Optional[float] = None
    max_failures: int = 5
    n_startup_trials: int = 5
    warmup_steps: int = 1000  # iterations before a trial may be pruned
    backend: str = "loky"  # loky: local worker processes; dask: the workers of a dask.distributed cluster
    scheduler: Optional[str] = None  # the Dask scheduler's address (tcp://host:8786), for backend=dask
    heartbeat_interval: Optional[int] = 10  # s between a running trial's heartbeats (RDB storages); null = off
    grace_period: Optional[int] = 30  # s without a heartbeat before a trial is failed and run again
    # a new study's first trials: an earlier study's (a name, or {study, storage}), and known configs
    # (a list of {path: value}, or a YAML file of one); see sweeps.study.seeding
    warm_start: Optional[Any] = None
    enqueue: Optional[Any] = None
    stop: StopConfig = field(default_factory=StopConfig)
    # each trial trains this many times, with seeds derived from `seed` (the split stays): its value is their mean
    repeats: int = 1
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)


@dataclass
class TrackingConfig:
    uri: str = "${oc.env:MLFLOW_TRACKING_URI,sqlite:///mlflow.db}"
    experiment: str = "${sweep.study_name}"  # one MLflow experiment per study unless named
    enabled: bool = True
    curve_points: int = 200
    trial_figures: bool = False  # each trial's cost_curve.png; the run page draws cost and val_* itself
    decision_boundary: str = "top"  # one of sweeps.config.checks.DECISION_BOUNDARIES
    # a name: the best trial's MLflow model is also registered under it, a new version on each new best
    register_model: Optional[str] = None


@dataclass
class Config:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search_space: Dict[str, Any] = field(default_factory=dict)  # open: see sweeps.config.space
    sweep: SweepConfig = field(default_factory=SweepConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 0


def sampler_for(metric: Any) -> str:
    """sweep.sampler's default: TPE for one metric, NSGA-II for several (TPE models several too,
    but NSGA-II is Optuna's multi-objective default). Both are names of sweeps.study.samplers.SAMPLERS."""
    several = isinstance(metric, (list, tuple, ListConfig)) and len(metric) > 1
    return "nsgaii" if several else "tpe"


def register_configs() -> None:
    """Store the schema as `base_config`, the first entry of conf/config.yaml's defaults list, and
    the resolver its defaults use."""
    ConfigStore.instance().store(name="base_config", node=Config)
    OmegaConf.register_new_resolver("sampler_for", sampler_for, replace=True)


def _field_types(cls: type, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> type of every leaf field of the schema, Optional[...] unwrapped."""
    out: dict[str, Any] = {}
    for name, tp in typing.get_type_hints(cls).items():
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) is typing.Union and len(args) == 1:
            tp = args[0]
        if dataclasses.is_dataclass(tp):
            out.update(_field_types(tp, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = tp
    return out


FIELD_TYPES = _field_types(Config)
