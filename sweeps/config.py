"""The configuration's schema, its value checks and small helpers over it.

Hydra composes `conf/config.yaml` on top of the structured config `Config`
(registered as `base_config` by `register_configs()`), so a misspelt key
(`model.actvation=relu`) or a wrong type (`train.learning_rate=abc`) is refused
while composing. `validate(cfg)` then checks values (ranges, known names, files)
before any trial starts; every failure is a `ConfigError` whose message is one
sentence naming the field, the value and what is allowed.

`model.hidden_units` is the list of hidden-layer widths; `model.depth` and
`model.units` (both null by default) are shorthands the search space samples,
resolved by `resolve_hidden_units()`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, MissingMandatoryValue, OmegaConf


class ConfigError(ValueError):
    """A user-facing configuration error: one sentence naming the field, the value and what is allowed."""


# ---- known names: the single place the sweep layer lists them -------------------------
# nncore keeps its own tables (nncore.ACTIVATIONS, nncore.DATASETS, ...); these mirror them
# so that a config is checked without importing the numerics.
DATASETS = ("breast_cancer", "circles", "csv", "digits", "flower", "iris", "moons", "wine")
ACTIVATIONS = ("leaky_relu", "relu", "sigmoid", "tanh")
OUTPUTS = ("auto", "sigmoid", "softmax")
INITS = ("he", "scaled", "xavier")
OPTIMIZERS = ("adam", "gd", "momentum")
DTYPES = ("float32", "float64")
SAMPLERS = ("cmaes", "grid", "nsgaii", "qmc", "random", "tpe")
PRUNERS = ("hyperband", "median", "none", "successive_halving")
SAMPLER_PACKAGES = {"cmaes": "cmaes", "qmc": "scipy"}  # samplers needing an optional package
METRIC_DIRECTIONS = {"val_accuracy": "maximize", "val_cost": "minimize"}
DIRECTIONS = ("maximize", "minimize")
BACKENDS = ("dask", "loky")
# tracking.decision_boundary, for 2-D data: the best trials' drawn at the end (sweeps.summary), every
# trial's as it ends (~13 ms of CPU each), or none
DECISION_BOUNDARIES = ("all", "none", "top")


# ---- schema ----------------------------------------------------------------------------
@dataclass
class DatasetConfig:
    name: str = MISSING
    val_fraction: float = 0.2
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
    iterations: int = 2000
    optimizer: str = "gd"
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
class SweepConfig:
    n_trials: int = 30
    n_jobs: int = 2
    sampler: str = "tpe"
    pruner: str = "median"
    direction: Optional[str] = None  # null = from metric
    metric: str = "val_cost"
    study_name: str = "nnsweeps"
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


@dataclass
class TrackingConfig:
    uri: str = "${oc.env:MLFLOW_TRACKING_URI,sqlite:///mlflow.db}"
    experiment: str = "nnsweeps"
    enabled: bool = True
    curve_points: int = 200
    trial_figures: bool = True
    decision_boundary: str = "top"  # one of DECISION_BOUNDARIES


@dataclass
class Config:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search_space: Dict[str, Any] = field(default_factory=dict)  # open: see sweeps.space
    sweep: SweepConfig = field(default_factory=SweepConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 0


def register_configs() -> None:
    """Store the schema as `base_config`, the first entry of conf/config.yaml's defaults list."""
    ConfigStore.instance().store(name="base_config", node=Config)


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


# ---- value checks: path -> (accepts(value), what is allowed) --------------------------
def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _one_of(names: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in names), "one of " + ", ".join(sorted(names))


def _unit_interval(v: Any) -> bool:
    return is_number(v) and 0 <= v < 1


def _safe_file_name(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9._-]+", v) is not None and ".." not in v and v != "."


CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "dataset.name": _one_of(DATASETS),
    "dataset.val_fraction": (_unit_interval, "a number in [0, 1)"),
    "model.activation": _one_of(ACTIVATIONS),
    "model.leaky_slope": (_unit_interval, "a number in [0, 1)"),
    "model.output": _one_of(OUTPUTS),
    "model.init": _one_of(INITS),
    "model.depth": (lambda v: v is None or (is_integer(v) and v >= 1), "null or an integer >= 1"),
    "model.units": (lambda v: v is None or (is_integer(v) and v >= 1), "null or an integer >= 1"),
    "train.learning_rate": (lambda v: is_number(v) and v > 0, "a number > 0"),
    "train.iterations": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "train.optimizer": _one_of(OPTIMIZERS),
    "train.beta": (_unit_interval, "a number in [0, 1)"),
    "train.beta1": (_unit_interval, "a number in [0, 1)"),
    "train.beta2": (_unit_interval, "a number in [0, 1)"),
    "train.eps": (lambda v: is_number(v) and v > 0, "a number > 0"),
    "train.batch_size": (lambda v: v is None or (is_integer(v) and v >= 1), "null (full batch) or an integer >= 1"),
    "train.l2": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
    "train.dtype": _one_of(DTYPES),
    "train.cost_every": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "train.report_every": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "sweep.n_trials": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "sweep.n_jobs": (lambda v: is_integer(v) and (v >= 1 or v == -1), "an integer >= 1, or -1 for all cores"),
    "sweep.sampler": _one_of(SAMPLERS),
    "sweep.pruner": _one_of(PRUNERS),
    "sweep.direction": (lambda v: v is None or v in DIRECTIONS, "null (from the metric) or one of maximize, minimize"),
    "sweep.metric": _one_of(tuple(METRIC_DIRECTIONS)),
    "sweep.study_name": (_safe_file_name, "a file-name-safe name of letters, digits, '.', '_' and '-' without '..'"),
    "sweep.storage": (lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
                      "null, a journal file path or an RDB URL such as sqlite:///x.db"),
    "sweep.timeout": (lambda v: v is None or (is_number(v) and v > 0), "null or a number of seconds > 0"),
    "sweep.max_failures": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "sweep.n_startup_trials": (lambda v: is_integer(v) and v >= 0, "an integer >= 0"),
    "sweep.warmup_steps": (lambda v: is_integer(v) and v >= 0, "an integer >= 0"),
    "sweep.backend": _one_of(BACKENDS),
    "sweep.scheduler": (lambda v: v is None or (isinstance(v, str) and re.fullmatch(r"[a-z]+://\S+", v) is not None),
                        "null or a Dask scheduler address such as tcp://10.0.0.5:8786"),
    "sweep.heartbeat_interval": (lambda v: v is None or (is_integer(v) and v >= 1),
                                 "null (off) or an integer >= 1 (seconds)"),
    "sweep.grace_period": (lambda v: v is None or (is_integer(v) and v >= 1), "null (twice the heartbeat interval) "
                           "or an integer >= 1 (seconds)"),
    "tracking.experiment": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty name"),
    "tracking.uri": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty tracking URI"),
    "tracking.curve_points": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "tracking.decision_boundary": _one_of(DECISION_BOUNDARIES),
}

# Type words for search-space values at paths without a CHECKS entry.
TYPE_CHECKS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    int: (is_integer, "an integer"),
    float: (is_number, "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
    bool: (lambda v: isinstance(v, bool), "true or false"),
}

SEARCHABLE = ("dataset", "model", "train")  # the sections a trial's values may change
_ABSENT = object()


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


def _fail(path: str, value: Any) -> None:
    accepts, allowed = CHECKS[path]
    if not accepts(value):
        raise ConfigError(f"{path} is {value!r}, but it must be {allowed}.")


def validate(cfg: DictConfig) -> None:
    """Check every value before any trial starts; raise ConfigError on the first bad one."""
    for path, (_, allowed) in CHECKS.items():
        try:
            _fail(path, OmegaConf.select(cfg, path, throw_on_missing=True))
        except MissingMandatoryValue:
            raise ConfigError(f"{path} is not set (???), but it must be {allowed}.") from None
    package = SAMPLER_PACKAGES.get(cfg.sweep.sampler)
    if package and importlib.util.find_spec(package) is None:
        raise ConfigError(f"sweep.sampler is {cfg.sweep.sampler!r}, but that sampler needs the {package} package, "
                          "which is not installed; install it or pick another sampler.")
    _validate_scale_out(cfg.sweep)
    hidden = resolve_hidden_units(cfg.model)
    if not all(is_integer(u) and u >= 1 for u in hidden):
        raise ConfigError(f"model.hidden_units is {hidden}, but every width must be an integer >= 1.")
    _validate_dataset_kwargs(cfg)
    _validate_search_space(cfg)


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


def _validate_search_space(cfg: DictConfig) -> None:
    from sweeps.space import (  # sweeps.space imports this module
        candidate_values,
        parse_space,
    )

    space = parse_space(cfg.search_space)
    for path, dist in space.entries.items():
        where = f"search_space entry {path!r}"
        if path.split(".")[0] not in SEARCHABLE:
            raise ConfigError(f"{where} is outside what a trial may change; only paths under "
                              f"{', '.join(SEARCHABLE[:-1])} and {SEARCHABLE[-1]} may be searched.")
        if path.startswith("dataset.kwargs.") and OmegaConf.select(cfg, path, default=_ABSENT) is not _ABSENT:
            continue  # the loader checks its own arguments
        check = CHECKS.get(path) or TYPE_CHECKS.get(FIELD_TYPES.get(path))
        if check is None:
            raise ConfigError(f"{where} names no field that can be sampled; give the path of a field of the "
                              "config (model.depth and model.units stand for model.hidden_units).")
        accepts, allowed = check
        for value in candidate_values(dist):
            if not accepts(value):
                raise ConfigError(f"{where} allows {value!r}, but {path} must be {allowed}.")
    if cfg.sweep.sampler == "grid":
        if not space.entries:
            raise ConfigError("sweep.sampler is 'grid', but the search space is empty; "
                              "add discrete entries to search_space or pick another sampler.")
        space.grid()


def resolve_direction(cfg: DictConfig) -> str:
    """sweep.direction if set, else the direction that improves sweep.metric."""
    if cfg.sweep.direction is not None:
        _fail("sweep.direction", cfg.sweep.direction)
        return str(cfg.sweep.direction)
    _fail("sweep.metric", cfg.sweep.metric)
    return METRIC_DIRECTIONS[cfg.sweep.metric]


def flatten(cfg: DictConfig | Mapping[str, Any]) -> dict[str, str]:
    """Dotted keys -> str values of the resolved config, e.g. {"model.hidden_units": "[4, 4]"}.

    null is written "null" and booleans "true"/"false", as Hydra overrides spell them.
    """
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, (DictConfig, ListConfig)) else cfg
    out: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:  # lists as "[4, 4]", empty mappings as "{}"
            out[prefix[:-1]] = "null" if node is None else str(node).lower() if isinstance(node, bool) else str(node)

    walk(data, "")
    return out
