"""The config's values, checked before any trial starts: `check_values(cfg)` raises a ConfigError
whose message is one sentence naming the field, the value and what is allowed.

The allowed names come from the tables that define them: nncore's (datasets, activations,
outputs, initialisers, optimisers, dtypes) and sweeps.config.metrics.METRICS (sweep.metric,
sweep.direction and sweep.constraints: sweeps.config.objectives). The samplers and pruners are
checked by sweeps.study against its own tables.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from omegaconf import DictConfig, ListConfig, MissingMandatoryValue, OmegaConf

import nncore
from sweeps.config import objectives
from sweeps.errors import ConfigError, did_you_mean, one_of

BACKENDS = ("dask", "loky")
# tracking.decision_boundary, for 2-D data: the best trials' drawn at the end (sweeps.report.summary),
# every trial's as it ends, or none
DECISION_BOUNDARIES = ("all", "none", "top")


# ---- value checks: path -> (accepts(value), what is allowed) --------------------------
def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _one_of(names) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, str) and v in names), one_of(names)


def _unit_interval(v: Any) -> bool:
    return is_number(v) and 0 <= v < 1


def _safe_file_name(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9._-]+", v) is not None and ".." not in v and v != "."


def _model_name(v: Any) -> bool:
    """A registered model's name, quoted as it is into the registry's searches (sweeps.trial.mlflow_model)."""
    return isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9._-]+", v) is not None


CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "dataset.name": _one_of(nncore.DATASETS),
    "dataset.val_fraction": (_unit_interval, "a number in [0, 1)"),
    "dataset.test_fraction": (_unit_interval, "a number in [0, 1)"),
    "model.activation": _one_of(nncore.ACTIVATIONS),
    "model.leaky_slope": (_unit_interval, "a number in [0, 1)"),
    "model.output": _one_of(("auto", *nncore.OUTPUTS)),  # auto: sigmoid for 1 unit, else softmax
    "model.init": _one_of(nncore.INITIALIZERS),
    "model.depth": (lambda v: v is None or (is_integer(v) and v >= 1), "null or an integer >= 1"),
    "model.units": (lambda v: v is None or (is_integer(v) and v >= 1), "null or an integer >= 1"),
    "train.learning_rate": (lambda v: is_number(v) and v > 0, "a number > 0"),
    "train.learning_rate_range": (lambda v: isinstance(v, (list, tuple, ListConfig)) and len(v) == 2 and all(
        is_number(x) for x in v) and 0 < v[0] < v[1], "[low, high] with 0 < low < high"),
    "train.iterations": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "train.optimizer": _one_of(nncore.OPTIMIZERS),
    "train.beta": (_unit_interval, "a number in [0, 1)"),
    "train.beta1": (_unit_interval, "a number in [0, 1)"),
    "train.beta2": (_unit_interval, "a number in [0, 1)"),
    "train.eps": (lambda v: is_number(v) and v > 0, "a number > 0"),
    "train.batch_size": (lambda v: v is None or (is_integer(v) and v >= 1), "null (full batch) or an integer >= 1"),
    "train.l2": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
    "train.dtype": _one_of(nncore.DTYPES),
    "train.cost_every": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "train.report_every": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "sweep.n_trials": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "sweep.n_jobs": (lambda v: is_integer(v) and (v >= 1 or v == -1), "an integer >= 1, or -1 for all cores"),
    "sweep.study_name": (_safe_file_name, "a file-name-safe name of letters, digits, '.', '_' and '-' without '..'"),
    "sweep.storage": (lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
                      "null, a journal file path or an RDB URL such as sqlite:///x.db"),
    "sweep.timeout": (lambda v: v is None or (is_number(v) and v > 0), "null or a number of seconds > 0"),
    # the samplers' seed, which NumPy's legacy seeding (Optuna's RandomState) takes in [0, 2**32)
    "sweep.seed": (lambda v: is_integer(v) and 0 <= v < 2 ** 32, f"an integer from 0 to {2 ** 32 - 1} (NumPy's seeds)"),
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
    "sweep.stop.patience": (lambda v: v is None or (is_integer(v) and v >= 1), "null (off) or an integer >= 1"),
    "sweep.stop.min_delta": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
    "sweep.repeats": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "sweep.confirm.top": (lambda v: is_integer(v) and v >= 0, "an integer >= 0 (0: no confirmation)"),
    "sweep.confirm.seeds": (lambda v: is_integer(v) and v >= 2, "an integer >= 2 (an interval needs two seeds)"),
    "sweep.stop.target": (lambda v: v is None or is_number(v), "null (off) or a finite number"),
    "tracking.experiment": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty name"),
    "tracking.uri": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty tracking URI"),
    "tracking.curve_points": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "tracking.decision_boundary": _one_of(DECISION_BOUNDARIES),
    "tracking.register_model": (lambda v: v is None or _model_name(v),
                                "null or a registered model name of letters, digits, '.', '_' and '-'"),
}

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
        names = allowed[len("one of "):].split(", ") if allowed.startswith("one of ") else []
        raise ConfigError(f"{path} is {value!r}, but it must be {allowed}{did_you_mean(value, names)}.")


def check_values(cfg: DictConfig) -> None:
    """Check every value of the config's own fields; raise ConfigError on the first bad one."""
    for path, (_, allowed) in CHECKS.items():
        try:
            _fail(path, OmegaConf.select(cfg, path, throw_on_missing=True))
        except MissingMandatoryValue:
            raise ConfigError(f"{path} is not set (???), but it must be {allowed}.") from None
    d = cfg.dataset
    if d.val_fraction + d.test_fraction >= 1:
        raise ConfigError(f"dataset.test_fraction is {d.test_fraction!r} and dataset.val_fraction {d.val_fraction!r}, "
                          "but together they must be below 1, or no sample is left to train on.")
    objectives.check(cfg.sweep)
    _validate_scale_out(cfg.sweep)
    hidden = resolve_hidden_units(cfg.model)
    if not all(is_integer(u) and u >= 1 for u in hidden):
        raise ConfigError(f"model.hidden_units is {hidden}, but every width must be an integer >= 1.")
    _validate_dataset_kwargs(cfg)


def optimizer_hyperparameters(train: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters train.optimizer takes, from train's fields of the same names."""
    return {name: train[name] for name in nncore.hyperparameters(train["optimizer"])}


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
