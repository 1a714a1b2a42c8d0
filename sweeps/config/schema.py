"""The configuration, declared once: each field's type, default and rule (what it accepts, and
the words that say so: sweeps.config.rules) sit together on frozen dataclasses, one per layer
(DatasetConfig, ModelConfig, TrainConfig, SweepConfig, TrackingConfig), under `Config`.

Hydra composes conf/config.yaml onto a mutable twin of `Config` (stored as `base_config` by
`register_configs()`), so a misspelt key (`model.actvation=relu`) or a wrong type
(`train.learning_rate=abc`) is refused while composing; conf/'s YAML files hold only what differs
from the defaults here. sweeps.config.checks then checks each value against its rule, once per
launch, and hands out the frozen `Config` whose parts the layers read.

`model.hidden_units` is the list of hidden-layer widths; `model.depth` and `model.units` (both
null by default) are shorthands the search space samples (sweeps.config.checks.resolve_hidden_units).
`train.optimizers` holds each optimiser's hyperparameters under its name, made from nncore's
table (its signature's defaults, LIMITS' intervals): a new optimiser needs nothing here.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

import nncore
from sweeps.config.rules import NON_EMPTY, Either, Exactly, Interval, Options, Range, Rule, Text

BACKENDS = ("dask", "loky")  # loky: local worker processes; dask: the workers of a dask.distributed cluster
# for 2-D data: the best trials' drawn at the end (sweeps.report.summary), every trial's as it ends, or none
DECISION_BOUNDARIES = ("all", "none", "top")
UNIT = Interval(float, 0, 1, closed="left")  # a fraction, a slope: [0, 1)
COUNT = Interval(int, 1, None)  # an integer >= 1


def checked(default: Any, rule: Rule) -> Any:
    """A field with its default and its rule; a list default is copied for each instance."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"rule": rule})
    return field(default=default, metadata={"rule": rule})


@dataclass(frozen=True)
class DatasetConfig:
    name: str = checked(MISSING, Options(nncore.DATASETS))
    val_fraction: float = checked(0.2, UNIT)
    # held out before the validation split: only the confirmed trials are scored on it (sweep.confirm)
    test_fraction: float = checked(0.2, UNIT)
    kwargs: Dict[str, Any] = field(default_factory=dict)  # open: passed to the loader as **kwargs


@dataclass(frozen=True)
class ModelConfig:
    hidden_units: List[int] = field(default_factory=lambda: [4])  # the hidden layers' widths
    activation: str = checked("tanh", Options(nncore.ACTIVATIONS))  # of every hidden layer
    leaky_slope: float = checked(0.01, UNIT)  # leaky_relu's slope for z < 0
    # auto: sigmoid for one output unit (2 classes), softmax for more
    output: str = checked("auto", Options(("auto", *nncore.OUTPUTS)))
    init: str = checked("scaled", Options(nncore.INITIALIZERS))  # scaled: N(0, 1) * 0.01, as in the course
    depth: Optional[int] = checked(None, Interval(int, 1, None, null=""))  # with units: hidden_units = [units] * depth
    units: Optional[int] = checked(None, Interval(int, 1, None, null=""))


def _optimizer_sections() -> type:
    """train.optimizers: a section per optimiser of nncore's table that takes hyperparameters,
    each one a field with its signature's default and its interval (nncore.LIMITS)."""
    sections = []
    for name in nncore.OPTIMIZERS:
        fields = [(h, type(d), checked(d, Interval(float, *nncore.LIMITS[h]))) for h, d in nncore.defaults(name).items()]
        if fields:
            cls = make_dataclass(f"{name.title()}Hyperparameters", fields, frozen=True)
            sections.append((name, cls, field(default_factory=cls)))
    return make_dataclass("Optimizers", sections, frozen=True)


Optimizers = _optimizer_sections()


@dataclass(frozen=True)
class TrainConfig:
    learning_rate: float = checked(1.2, Interval(float, 0, None, closed="neither"))
    # [low, high]: where the shipped search spaces sample the learning rate for this preset's
    # optimiser (conf/search_space/default.yaml), so that train=adam searches adam's rates
    learning_rate_range: List[float] = checked([0.1, 2.0], Range(Interval(float, 0, None, closed="neither")))
    iterations: int = checked(2000, COUNT)
    optimizer: str = checked("gd", Options(nncore.OPTIMIZERS))
    # each optimiser's own hyperparameters, under its name: train.optimizers.adam.beta1; the
    # trial's optimiser gets its own (sweeps.trial.build), so a sampled optimiser finds them too
    optimizers: Optimizers = field(default_factory=Optimizers)
    batch_size: Optional[int] = checked(None, Interval(int, 1, None, null="full batch"))
    l2: float = checked(0.0, Interval(float, 0, None))  # the L2 penalty's lambda
    dtype: str = checked("float64", Options(nncore.DTYPES))
    cost_every: int = checked(1, COUNT)  # the cost is recorded every this many iterations
    report_every: int = checked(100, COUNT)  # the validation metric goes to the pruner every this many


@dataclass(frozen=True)
class StopConfig:
    """When a sweep stops before n_trials (sweeps.study.stopping); null = never. Not part of the
    study's question: changing them is a resume."""

    # complete trials in a row without an improvement larger than min_delta
    patience: Optional[int] = checked(None, Interval(int, 1, None, null="off"))
    min_delta: float = checked(0.0, Interval(float, 0, None))
    # the metric's value that is good enough (direction-aware)
    target: Optional[float] = checked(None, Interval(float, None, None, null="off"))


@dataclass(frozen=True)
class ConfirmConfig:
    """The end of a one-metric sweep: its `top` best configs trained again with `seeds` fresh
    seeds each, scored on validation and test (sweeps.trial.confirmation); top=0: off."""

    top: int = checked(3, Interval(int, 0, None, note="0: no confirmation"))
    # mean and 95% interval over these; the winner vs the runner-up by a paired t-test
    seeds: int = checked(5, Interval(int, 2, None, note="an interval needs two seeds"))


def _safe_name(name: str) -> bool:
    return ".." not in name and name != "."


@dataclass(frozen=True)
class SweepConfig:
    n_trials: int = checked(30, COUNT)
    # parallel trial processes; -1 = all cores (with dask: every worker thread)
    n_jobs: int = checked(2, Either(COUNT, Exactly(-1, "-1 for all cores")))
    # a name of sweeps.study.samplers.SAMPLERS, checked there; conf/sweep/default.yaml makes it
    # ${sampler_for:${sweep.metric}}: tpe, or nsgaii for several metrics
    sampler: str = "tpe"
    pruner: str = "median"  # a name of sweeps.study.pruners.PRUNERS, checked there; several metrics: none
    # a name of sweeps.config.metrics or a list of them (several objectives), checked by sweeps.config.objectives
    metric: Any = "val_cost"
    direction: Optional[Any] = None  # null = from each metric (val_cost: minimize); or one per metric
    constraints: Optional[Any] = field(default_factory=list)  # ["fit_seconds <= 0.5", ...]
    # one study per dataset unless named; it also names the journal file
    study_name: str = checked("${dataset.name}", Text(
        r"[A-Za-z0-9._-]+", "a file-name-safe name of letters, digits, '.', '_' and '-' without '..'", _safe_name))
    # null = outputs/<study_name>.journal, so the same command resumes
    storage: Optional[str] = checked(None, Text(NON_EMPTY, "a journal file path or an RDB URL such as sqlite:///x.db",
                                                null=""))
    # the samplers' seed, which NumPy's legacy seeding (Optuna's RandomState) takes in [0, 2**32)
    seed: int = checked(0, Interval(int, 0, 2 ** 32, closed="left", note="NumPy's seeds"))
    timeout: Optional[float] = checked(None, Interval(float, 0, None, closed="neither", null="no limit",
                                                      note="seconds"))
    max_failures: int = checked(5, COUNT)  # failed trials in a row that stop the sweep
    n_startup_trials: int = checked(5, Interval(int, 0, None))  # before the sampler models and the pruner prunes
    # iterations before a trial may be pruned: the course's small init plateaus at ln 2 for a while
    warmup_steps: int = checked(1000, Interval(int, 0, None))
    backend: str = checked("loky", Options(BACKENDS))
    # the Dask scheduler's address, for backend=dask
    scheduler: Optional[str] = checked(None, Text(r"[a-z]+://\S+", "a Dask scheduler address such as "
                                                  "tcp://10.0.0.5:8786", null=""))
    # s between a running trial's heartbeats (RDB storages); null = off
    heartbeat_interval: Optional[int] = checked(10, Interval(int, 1, None, null="off", note="seconds"))
    # s without a heartbeat before a trial is failed and run again
    grace_period: Optional[int] = checked(30, Interval(int, 1, None, null="twice the heartbeat interval",
                                                       note="seconds"))
    # a new study's first trials: an earlier study's (a name, or {study, storage}), and known configs
    # (a list of {path: value}, or a YAML file of one); see sweeps.study.seeding
    warm_start: Optional[Any] = None
    enqueue: Optional[Any] = None
    stop: StopConfig = field(default_factory=StopConfig)
    # each trial trains this many times, with seeds derived from `seed` (the split stays): its value is their mean
    repeats: int = checked(1, COUNT)
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)


def _model_name(name: str) -> bool:
    """A registered model's name, quoted as it is into the registry's searches (sweeps.trial.mlflow_model)."""
    return re.fullmatch(r"[A-Za-z0-9._-]+", name) is not None


@dataclass(frozen=True)
class TrackingConfig:
    uri: str = checked("${oc.env:MLFLOW_TRACKING_URI,sqlite:///mlflow.db}", Text(NON_EMPTY, "a non-empty tracking URI"))
    experiment: str = checked("${sweep.study_name}", Text(NON_EMPTY, "a non-empty name"))  # one per study
    enabled: bool = True
    curve_points: int = checked(200, COUNT)  # at most this many points of each trial's cost curve are logged
    trial_figures: bool = False  # each trial's cost_curve.png; the run page draws cost and val_* itself
    decision_boundary: str = checked("top", Options(DECISION_BOUNDARIES))
    # a name: the best trial's MLflow model is also registered under it, a new version on each new best
    register_model: Optional[str] = checked(None, Text(
        r"[A-Za-z0-9._-]+", "a registered model name of letters, digits, '.', '_' and '-'", null=""))


@dataclass(frozen=True)
class Config:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search_space: Dict[str, Any] = field(default_factory=dict)  # open: see sweeps.config.space
    sweep: SweepConfig = field(default_factory=SweepConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 0  # data split, weight init and mini-batch order of every trial


def sampler_for(metric: Any) -> str:
    """sweep.sampler's default: TPE for one metric, NSGA-II for several (TPE models several too,
    but NSGA-II is Optuna's multi-objective default). Both are names of sweeps.study.samplers.SAMPLERS."""
    several = isinstance(metric, (list, tuple, ListConfig)) and len(metric) > 1
    return "nsgaii" if several else "tpe"


def _composable(cls: type) -> type:
    """The mutable twin of a frozen settings class, for Hydra to compose onto: OmegaConf makes a
    frozen dataclass's config read-only, which no YAML file or override could then change."""
    hints = typing.get_type_hints(cls)
    fields = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            twin = _composable(tp)
            fields.append((f.name, twin, field(default_factory=twin)))
        else:
            fields.append((f.name, tp, field(default=f.default, default_factory=f.default_factory)))
    return make_dataclass(cls.__name__, fields)


def structured(cls: type = Config) -> DictConfig:
    """A settings class's defaults as a config that overrides and merges may change, as Hydra's is."""
    return OmegaConf.structured(_composable(cls))


def register_configs() -> None:
    """Store the schema as `base_config`, the first entry of conf/config.yaml's defaults list, and
    the resolver its defaults use."""
    ConfigStore.instance().store(name="base_config", node=_composable(Config))
    OmegaConf.register_new_resolver("sampler_for", sampler_for, replace=True)


def _leaves(cls: type, prefix: str = "") -> dict[str, dataclasses.Field]:
    """Dotted path -> (type, field) of every leaf field of the schema, Optional[...] unwrapped."""
    out: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, tp in typing.get_type_hints(cls).items():
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) is typing.Union and len(args) == 1:
            tp = args[0]
        if dataclasses.is_dataclass(tp):
            out.update(_leaves(tp, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = (tp, fields[name])
    return out


FIELD_TYPES = {path: tp for path, (tp, _) in _leaves(Config).items()}
# dotted path -> its rule, for each field that declares one
RULES: dict[str, Rule] = {path: f.metadata["rule"] for path, (_, f) in _leaves(Config).items() if "rule" in f.metadata}
