"""What a study optimises and what it must respect: `sweep.metric` (a name of METRICS, or a list
of them for several objectives), their directions (the table's, unless `sweep.direction` gives
one per metric) and `sweep.constraints`, strings such as "fit_seconds <= 0.5" over the same
names, parsed by a regular expression (never eval).

A constraint's value follows Optuna's convention (optuna.trial.Trial.set_constraint): a trial is
feasible when every value is <= 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from omegaconf import ListConfig

from sweeps.config.metrics import METRICS
from sweeps.errors import ConfigError, did_you_mean, one_of

DIRECTIONS = ("maximize", "minimize")

# operator -> value(metric, bound), <= 0 when the metric satisfies it. The strict ones are 0 at the
# float next to the bound, so that the bound itself is infeasible.
OPERATORS: dict[str, Callable[[float, float], float]] = {
    "<=": lambda v, bound: v - bound,
    ">=": lambda v, bound: bound - v,
    "<": lambda v, bound: v - math.nextafter(bound, -math.inf),
    ">": lambda v, bound: math.nextafter(bound, math.inf) - v,
}
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
CONSTRAINT = re.compile(rf"\s*([A-Za-z_]\w*)\s*(<=|>=|<|>)\s*({NUMBER})\s*")


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    bound: float
    text: str  # "fit_seconds <= 0.5", spaced the one way: the question's and the trial's key

    def value(self, metrics: Mapping[str, float]) -> float:
        """<= 0 when the trial's metrics satisfy it; inf for a metric that is not finite."""
        v = metrics[self.metric]
        return OPERATORS[self.op](v, self.bound) if math.isfinite(v) else math.inf


def _listed(value: Any) -> list | None:
    return list(value) if isinstance(value, (list, tuple, ListConfig)) else None


def metric_names(sweep: Any) -> list[str]:
    """sweep.metric as a list: one name, or several."""
    listed = _listed(sweep.metric)
    return [str(sweep.metric)] if listed is None else [str(m) for m in listed]


def several(sweep: Any) -> bool:
    """Whether the study has several objectives (a list of one metric has one)."""
    return len(metric_names(sweep)) > 1


def pruning(sweep: Any) -> bool:
    """Whether trials report to a pruner: sweep.pruner is set and there is one objective. Optuna prunes
    on one reported value (Trial.report refuses a multi-objective study)."""
    return sweep.pruner != "none" and not several(sweep)


def spelled(names: list[str]) -> str:
    """One name as itself, several as '[a, b]': how the question and the summary write them."""
    return names[0] if len(names) == 1 else "[" + ", ".join(names) + "]"


def check_metrics(sweep: Any) -> list[str]:
    """sweep.metric: a name of METRICS, or a non-empty list of distinct ones; returns the names."""
    listed = _listed(sweep.metric)
    if listed is None:
        name = sweep.metric
        if not (isinstance(name, str) and name in METRICS):
            raise ConfigError(f"sweep.metric is {name!r}, but it must be {one_of(METRICS)}, or a list of them"
                              f"{did_you_mean(name, METRICS)}.")
        return [name]
    shown = spelled([str(m) for m in listed]) if listed else "[]"
    if not listed:
        raise ConfigError(f"sweep.metric is {shown}, but it must name at least one metric, {one_of(METRICS)}.")
    for name in listed:
        if not (isinstance(name, str) and name in METRICS):
            raise ConfigError(f"sweep.metric is {shown}, but {name!r} is not a metric: each must be "
                              f"{one_of(METRICS)}{did_you_mean(name, METRICS)}.")
    if len(set(listed)) < len(listed):
        twice = next(m for m in listed if listed.count(m) > 1)
        raise ConfigError(f"sweep.metric is {shown}, but it names {twice} twice; name each metric once.")
    return [str(m) for m in listed]


def directions(sweep: Any) -> list[str]:
    """One direction per metric: sweep.direction's if given (a string for one metric, a list of as
    many for several), else each metric's own (METRICS). Raises ConfigError on a bad one."""
    names = check_metrics(sweep)
    given = sweep.direction
    if given is None:
        return [METRICS[m].direction for m in names]
    as_list = _listed(given)
    shown = given if as_list is None else [str(x) for x in as_list]  # as the user wrote it
    listed = [given] if as_list is None and len(names) == 1 else as_list
    if listed is None or len(listed) != len(names):
        if len(names) == 1:
            raise ConfigError(f"sweep.direction is {shown!r}, but sweep.metric names one metric ({names[0]}), so it "
                              f"must be null (from the metric) or {one_of(DIRECTIONS)}.")
        raise ConfigError(f"sweep.direction is {shown!r}, but sweep.metric names {len(names)} metrics "
                          f"({', '.join(names)}), so it must be a list of {len(names)} directions, each "
                          f"{one_of(DIRECTIONS)}, or null for each metric's own.")
    for d in listed:
        if d not in DIRECTIONS:
            allowed = f"null (from the metric) or {one_of(DIRECTIONS)}" if len(names) == 1 else (
                f"null (from the metrics) or a list of {len(names)} directions, each {one_of(DIRECTIONS)}")
            raise ConfigError(f"sweep.direction is {shown!r}, but it must be {allowed}{did_you_mean(d, DIRECTIONS)}.")
    return [str(d) for d in listed]


def parse_constraint(text: Any) -> Constraint:
    """'n_params <= 2000' -> Constraint; raises ConfigError naming the string and what is allowed."""
    match = CONSTRAINT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"sweep.constraints has {text!r}, but each constraint must read METRIC OP NUMBER, "
                          f"such as 'fit_seconds <= 0.5', with OP {one_of(OPERATORS)} and METRIC {one_of(METRICS)}.")
    metric, op, number = match.groups()
    if metric not in METRICS:
        raise ConfigError(f"sweep.constraints has {text!r}, but {metric!r} is not a metric: it must be "
                          f"{one_of(METRICS)}{did_you_mean(metric, METRICS)}.")
    bound = float(number)
    if not math.isfinite(bound):
        raise ConfigError(f"sweep.constraints has {text!r}, but its bound must be a finite number.")
    # one spelling per bound (2e3, 2000 and 2000.0 are one constraint), exact where %g is not
    shown = format(bound, "g") if float(format(bound, "g")) == bound else repr(bound)
    return Constraint(metric, op, bound, f"{metric} {op} {shown}")


def constraints(sweep: Any) -> list[Constraint]:
    """sweep.constraints (a list of strings, or one string), parsed; [] when null or empty."""
    given = sweep.get("constraints") if hasattr(sweep, "get") else getattr(sweep, "constraints", None)
    if given is None:
        return []
    listed = _listed(given)
    parsed = [parse_constraint(t) for t in ([given] if listed is None else listed)]
    texts = [c.text for c in parsed]
    if len(set(texts)) < len(texts):
        twice = next(t for t in texts if texts.count(t) > 1)
        raise ConfigError(f"sweep.constraints has {twice!r} twice; give each constraint once.")
    return parsed


# user attr of a trial that a warm start copied from another study (sweeps.study.seeding): it
# informs the sampler, but is neither tagged on this study's front nor counted by its stop
WARM_FROM = "warm_start_from"


def feasible(t: Any) -> bool:
    """Optuna's rule for a trial (FrozenTrial): every constraint value <= 0; one without
    constraints is feasible."""
    return all(v <= 0 for v in t.constraints.values())


def check(sweep: Any) -> None:
    """sweep.metric, sweep.direction and sweep.constraints; raise ConfigError on the first bad one."""
    directions(sweep)
    constraints(sweep)
