"""Search spaces: config paths -> Optuna distributions, sampled per trial and applied to a config.

`cfg.search_space` maps a dotted config path to a distribution. Paths may be written
dotted (`train.learning_rate: ...`) or nested (`train: {learning_rate: ...}`); nested
entries can be changed from the command line (`search_space.train.learning_rate.high=1`),
dotted ones cannot. A mapping holding any of the keys type/low/high/step/log/choices/
per_layer is a distribution, any other mapping a level of nesting. Each entry is either

1. structured: `{type: float, low: 1e-3, high: 2.0, log: true}`, `{type: int, low: 1,
   high: 3, step: 1}`, `{type: categorical, choices: [tanh, relu]}`; `step` and `log`
   are optional (not both), unknown keys are refused; or
2. a string of the Hydra Optuna sweeper plugin, parsed with Hydra's own override grammar:

   | string                          | distribution                                |
   |---------------------------------|---------------------------------------------|
   | interval(0.001, 2.0)            | FloatDistribution(0.001, 2.0)               |
   | tag(log, interval(0.001, 2.0))  | FloatDistribution(0.001, 2.0, log=True)     |
   | int(interval(1, 4))             | IntDistribution(1, 4)                       |
   | int(tag(log, interval(2, 64)))  | IntDistribution(2, 64, log=True)            |
   | range(500, 3000, step=500)      | IntDistribution(500, 3000, step=500)        |
   | range(0.1, 1.0, step=0.1)       | FloatDistribution(0.1, 1.0, step=0.1)       |
   | choice(tanh, relu) / tanh,relu  | CategoricalDistribution(("tanh", "relu"))   |
   | shuffle(range(0, 1, step=0.25)) | CategoricalDistribution((0.0, 0.25, 0.5, 0.75)) |
   | shuffle(choice(tanh, relu))     | CategoricalDistribution(("tanh", "relu"))   |

   range follows the plugin both ways: sampled, it is the distribution above, whose high is the
   stop; in a grid it is Hydra's range, start, start + step, ... < stop (range(0, 1, step=0.25):
   4 points), as the plugin's grid is. shuffle(...) is a choice among the values Hydra would
   sweep (a range's without its stop), as in the plugin, in the order written: a distribution
   has no order to shuffle. Choice values are typed as in Hydra overrides: 1 -> int, 1.5 ->
   float, true -> bool.

Optuna parameter names are the full dotted paths (`train.learning_rate`, `model.depth`),
so fields of different sections never clash. `model.units` may carry `per_layer: true`
(structured form only, and `model.depth` must then be in the space): a trial of depth D
samples `model.units_l1` .. `model.units_lD`, each from the units distribution, and
sets `model.hidden_units = [u1, ..., uD]`. Otherwise one `model.units` value is shared:
`model.hidden_units = [units] * depth`, with depth = model.depth, or
len(model.hidden_units) when depth is neither sampled nor set (see
`sweeps.config.checks.resolve_hidden_units`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Mapping

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from sweeps.config.checks import CHECKS, is_integer, is_number, resolve_hidden_units
from sweeps.config.schema import FIELD_TYPES
from sweeps.errors import ConfigError

DEPTH, UNITS, HIDDEN = "model.depth", "model.units", "model.hidden_units"
LAYER_PARAM = re.compile(r"model\.units_l[1-9][0-9]*")  # per-layer widths: model.units_l1, ...
GRAMMAR = ("interval(lo, hi), tag(log, interval(lo, hi)), int(interval(lo, hi)), int(tag(log, interval(lo, hi))), "
           "range(start, stop, step=s), choice(a, b, ...) or a comma list a,b (these three also in shuffle(...))")
STRUCTURED_KEYS = {"float": {"low", "high", "step", "log"}, "int": {"low", "high", "step", "log"},
                   "categorical": {"choices"}}
DISTRIBUTION_KEYS = {"type", "per_layer", "when"}.union(*STRUCTURED_KEYS.values())
Condition = dict[str, list]  # `when`: config path -> the values under which an entry is sampled


# ---- building distributions (one place for both forms, so both give equal objects) ----
def _bounds(path: str, low: Any, high: Any, log: Any, kind: str) -> None:
    number = is_integer if kind == "int" else is_number
    for name, value in (("low", low), ("high", high)):
        if not number(value):
            raise ConfigError(f"search_space entry {path!r} has {name}={value!r}, but it must be "
                              f"{'an integer' if kind == 'int' else 'a finite number'}.")
    if low >= high:
        raise ConfigError(f"search_space entry {path!r} has low={low!r} >= high={high!r}, but low must be below high.")
    if not isinstance(log, bool):
        raise ConfigError(f"search_space entry {path!r} has log={log!r}, but log must be true or false.")
    if log and low <= 0:
        raise ConfigError(f"search_space entry {path!r} is log-scaled with low={low!r}, but a log scale needs low > 0.")


def make_float(path: str, low: Any, high: Any, step: Any = None, log: Any = False) -> FloatDistribution:
    _bounds(path, low, high, log, "float")
    if step is not None and not (is_number(step) and step > 0):
        raise ConfigError(f"search_space entry {path!r} has step={step!r}, but step must be null or a number > 0.")
    if step is not None and log:
        raise ConfigError(f"search_space entry {path!r} has both log: true and step={step!r}, but Optuna allows only one.")
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))


def make_int(path: str, low: Any, high: Any, step: Any = 1, log: Any = False) -> IntDistribution:
    _bounds(path, low, high, log, "int")
    if not (is_integer(step) and step >= 1):
        raise ConfigError(f"search_space entry {path!r} has step={step!r}, but step must be an integer >= 1.")
    if step != 1 and log:
        raise ConfigError(f"search_space entry {path!r} has both log: true and step={step!r}, but Optuna allows only one.")
    return IntDistribution(low, high, log=log, step=step)


def make_categorical(path: str, choices: Any) -> CategoricalDistribution:
    if not isinstance(choices, (list, tuple)) or not choices:
        raise ConfigError(f"search_space entry {path!r} has choices={choices!r}, but choices must be a non-empty list.")
    for choice in choices:
        if choice is not None and not isinstance(choice, (bool, int, float, str)):
            raise ConfigError(f"search_space entry {path!r} has the choice {choice!r}, "
                              "but choices must be strings, numbers, booleans or null.")
    return CategoricalDistribution(list(choices))


# ---- the structured form -----------------------------------------------------------------
def _condition(path: str, when: Any) -> Condition:
    """`when: {train.optimizer: momentum}` or `{train.optimizer: [gd, momentum]}`: path -> values."""
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(f"search_space entry {path!r} has when={when!r}, but `when` must map config paths to a "
                          "value or a list of values, e.g. when: {train.optimizer: momentum}.")
    out = {}
    for key, values in when.items():
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if not values or not all(v is None or isinstance(v, (bool, int, float, str)) for v in values):
            raise ConfigError(f"search_space entry {path!r} has when.{key}={values!r}, but a condition's values "
                              "must be strings, numbers, booleans or null.")
        out[str(key)] = values
    return out


def _from_mapping(path: str, spec: Mapping[str, Any]) -> tuple[BaseDistribution, bool]:
    kind = spec.get("type")
    if kind not in STRUCTURED_KEYS:
        raise ConfigError(f"search_space entry {path!r} has type={kind!r}, but type must be one of "
                          f"{', '.join(sorted(STRUCTURED_KEYS))}.")
    allowed = STRUCTURED_KEYS[kind] | {"type", "when"} | ({"per_layer"} if path == UNITS else set())
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ConfigError(f"search_space entry {path!r} has unknown key(s) {', '.join(extra)}, but an entry of type "
                          f"{kind} {'at this path ' if 'per_layer' in extra else ''}takes only {', '.join(sorted(allowed))}.")
    per_layer = spec.get("per_layer", False)
    if not isinstance(per_layer, bool):
        raise ConfigError(f"search_space entry {path!r} has per_layer={per_layer!r}, but it must be true or false.")
    if kind == "categorical":
        return make_categorical(path, spec.get("choices")), per_layer
    make = make_int if kind == "int" else make_float
    default_step = 1 if kind == "int" else None
    return make(path, spec.get("low"), spec.get("high"), spec.get("step", default_step), spec.get("log", False)), per_layer


# ---- the string form (Hydra's override grammar, mapped as the Optuna sweeper plugin does) ----
def _from_interval(path: str, sweep: IntervalSweep) -> BaseDistribution:
    log = "log" in sweep.tags
    if is_integer(sweep.start) and is_integer(sweep.end):  # int(...) casts the endpoints
        return make_int(path, sweep.start, sweep.end, log=log)
    return make_float(path, sweep.start, sweep.end, log=log)


def _from_range(path: str, sweep: RangeSweep) -> BaseDistribution:
    if all(is_integer(x) for x in (sweep.start, sweep.stop, sweep.step)):
        return make_int(path, sweep.start, sweep.stop, step=sweep.step)
    return make_float(path, sweep.start, sweep.stop, step=sweep.step)


FROM_SWEEP: dict[type, tuple[set[str], Callable[[str, Any], BaseDistribution]]] = {
    # sweep type -> (tags it understands, builder)
    IntervalSweep: ({"log"}, _from_interval),
    RangeSweep: (set(), _from_range),
    ChoiceSweep: (set(), lambda path, sweep: make_categorical(path, sweep.list)),
}
# Hydra's parser as its sweeper plugins use it, the Optuna sweeper among them: hydra.core is its
# public surface for plugins (hydra._internal is not), and Override.value() gives the sweep types
# above. parse_override(), not parse_overrides(): the plural prefixes its errors with the whole
# "entry=..." line, whose first line the message below quotes. tests/sweeps/config/test_space.py
# pins each string form (PAIRS) and each refusal (BAD) against the installed Hydra.
_parser = OverridesParser.create()


def _from_string(path: str, text: str) -> tuple[BaseDistribution, list | None]:
    """The distribution `text` stands for and, for range(...), the points a grid takes (as the
    plugin's grid does: Hydra's range, without its stop; sampling takes the distribution)."""
    where = f"search_space entry {path!r} is {text!r}"
    try:
        override = _parser.parse_override(f"entry={text}")
        sweep = override.value()
    except Exception as e:  # Hydra's OverrideParseException / HydraException: keep their first line
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{where}, which does not parse ({reason}); the accepted strings are {GRAMMAR}.") from None
    if type(sweep) not in FROM_SWEEP:
        kind = "a single value, not" if not override.is_sweep_override() else "not"
        raise ConfigError(f"{where}, which is {kind} a distribution; the accepted strings are {GRAMMAR}.")
    known_tags, build = FROM_SWEEP[type(sweep)]
    unknown = sorted(set(sweep.tags) - known_tags)
    if unknown:
        raise ConfigError(f"{where}, whose tag {', '.join(unknown)} has no meaning here; "
                          "only interval(...) takes a tag, and only the tag log.")
    dist = build(path, sweep)  # checks the bounds and the step
    if not isinstance(sweep, RangeSweep):
        return dist, None  # shuffle(choice(...)) is the choice: a distribution has no order to shuffle
    points = _range_points(sweep)
    return (make_categorical(path, points), None) if sweep.shuffle else (dist, points)


def _range_points(sweep: RangeSweep) -> list:
    """Hydra's range: start, start + step, ... < stop (decimal steps: 0.3, not 0.30000000000000004)."""
    if all(is_integer(x) for x in (sweep.start, sweep.stop, sweep.step)):
        return list(range(sweep.start, sweep.stop, sweep.step))
    return _decimal_steps(sweep.start, sweep.stop, sweep.step, high_included=False)


# ---- the space -------------------------------------------------------------------------------
SUGGEST: dict[type, Callable[[optuna.Trial, str, Any], Any]] = {
    FloatDistribution: lambda t, name, d: t.suggest_float(name, d.low, d.high, step=d.step, log=d.log),
    IntDistribution: lambda t, name, d: t.suggest_int(name, d.low, d.high, step=d.step, log=d.log),
    CategoricalDistribution: lambda t, name, d: t.suggest_categorical(name, d.choices),
}


def _decimal_steps(low: float, high: float, step: float, high_included: bool = True) -> list[float]:
    lo, hi, st = (Decimal(repr(float(x))) for x in (low, high, step))
    n = int((hi - lo) / st)
    if not high_included and lo + n * st >= hi:
        n -= 1
    return [float(lo + i * st) for i in range(n + 1)]


@dataclass
class SearchSpace:
    """Config path -> Optuna distribution; `per_layer` is the flag of the `model.units` entry.

    `conditional`: the entries that carry `when`, path -> [(condition, distribution), ...] in the
    order given; a trial samples a path from its first variant whose condition holds (on the values
    sampled before it, or the config's), and leaves it at the config's value when none does.
    `ranges`: the entries written range(start, stop, step=s) -> the points a grid takes.
    """

    entries: dict[str, BaseDistribution] = field(default_factory=dict)
    per_layer: bool = False
    conditional: dict[str, list[tuple[Condition, BaseDistribution]]] = field(default_factory=dict)
    ranges: dict[str, list] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries) + len(self.conditional)

    def distributions(self) -> dict[str, list[BaseDistribution]]:
        """Every path's distributions: one for a plain entry, one per variant of a conditional one."""
        return {**{p: [d] for p, d in self.entries.items()},
                **{p: [d for _, d in variants] for p, variants in self.conditional.items()}}

    def sample(self, trial: optuna.Trial, base: DictConfig | None = None) -> dict[str, Any]:
        """Path -> value for this trial, including `model.units_l<i>` and `model.hidden_units` when
        depth and units are both sampled (otherwise `apply` resolves hidden_units from the config).
        base: the config that conditions on fixed values read."""
        values = {path: SUGGEST[type(d)](trial, path, d) for path, d in self.entries.items()
                  if not (path == UNITS and self.per_layer)}
        for path, variants in self.conditional.items():
            for when, d in variants:
                if self.holds(when, values, base):
                    values[path] = SUGGEST[type(d)](trial, path, d)
                    break
        if self.per_layer:
            units = self.entries[UNITS]
            widths = [SUGGEST[type(units)](trial, f"{UNITS}_l{i}", units) for i in range(1, values[DEPTH] + 1)]
            values.update({f"{UNITS}_l{i}": w for i, w in enumerate(widths, start=1)})
            values[HIDDEN] = widths
        elif DEPTH in values and UNITS in values:
            values[HIDDEN] = [values[UNITS]] * values[DEPTH]
        return values

    def holds(self, when: Condition, values: Mapping[str, Any], base: DictConfig | None) -> bool:
        """Whether every path of `when` has one of its values: the trial's if it sampled that path,
        else the config's (a path the space may sample but this trial did not: never)."""
        absent = object()
        for key, allowed in when.items():
            if key in values:
                value = values[key]
            elif key in self.entries or key in self.conditional or base is None:
                return False
            else:
                value = OmegaConf.select(base, key, default=absent)
            if value is absent or value not in allowed:
                return False
        return True

    def apply(self, cfg: DictConfig, values: Mapping[str, Any]) -> DictConfig:
        """A resolved, plain (struct-mode) copy of `cfg` with `values` set at their paths and
        `model.hidden_units` resolved; `cfg` itself is left untouched."""
        out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        OmegaConf.set_struct(out, True)
        absent = object()
        for path, value in values.items():
            if LAYER_PARAM.fullmatch(path):
                continue  # folded into model.hidden_units by sample()
            if OmegaConf.select(out, path, default=absent) is absent:
                raise ConfigError(f"The sampled value {value!r} is for {path!r}, which names no field of the config.")
            OmegaConf.update(out, path, value, merge=False)
        if HIDDEN in values:  # per-layer (or explicit) widths win; keep depth/units consistent with them
            out.model.depth, out.model.units = len(out.model.hidden_units), None
        else:
            out.model.hidden_units = resolve_hidden_units(out.model)
        return out

    def grid(self) -> dict[str, list]:
        """Path -> every value, for optuna.samplers.GridSampler (the param names are the paths)."""
        if self.conditional:
            raise ConfigError(f"search_space entry {next(iter(self.conditional))!r} has `when`, so trials sample "
                              "different parameters, which a grid cannot enumerate; drop `when` or pick another "
                              "sampler.")
        if self.per_layer:
            raise ConfigError(f"search_space entry {UNITS!r} has per_layer: true, whose parameters change with the "
                              "depth, so a grid cannot enumerate them; set per_layer: false or pick another sampler.")
        out = {}
        for path, d in self.entries.items():
            if path in self.ranges:
                out[path] = self.ranges[path]
            elif isinstance(d, CategoricalDistribution):
                out[path] = list(d.choices)
            elif isinstance(d, IntDistribution):
                out[path] = list(range(d.low, d.high + 1, d.step))
            elif d.step is not None:
                out[path] = _decimal_steps(d.low, d.high, d.step)
            else:
                raise ConfigError(f"search_space entry {path!r} is a continuous float in [{d.low}, {d.high}] without a "
                                  "step, which a grid cannot enumerate; give it a step (range(lo, hi, step=s)) "
                                  "or list values with choice(...).")
        return out


def describe(d: BaseDistribution) -> str:
    """A distribution in a few words: 'float in [0.1, 2.0], log', 'one of [tanh, relu]'."""
    if isinstance(d, CategoricalDistribution):
        return f"one of {list(d.choices)}"
    kind = "int" if isinstance(d, IntDistribution) else "float"
    extra = ", log" if d.log else (f", step {d.step}" if d.step not in (None, 1) else "")
    return f"{kind} in [{d.low}, {d.high}]{extra}"


def inside(d: BaseDistribution, value: Any) -> bool:
    """Whether `value` is one a distribution can give (its bounds, its step, its choices)."""
    if isinstance(d, CategoricalDistribution):
        return value in d.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not d.low <= value <= d.high:
        return False
    return d.step is None or abs((value - d.low) / d.step - round((value - d.low) / d.step)) < 1e-9


def candidate_values(d: BaseDistribution) -> list[Any]:
    """The values to check a distribution with: its bounds, or every choice."""
    return list(d.choices) if isinstance(d, CategoricalDistribution) else [d.low, d.high]


def _leaves(node: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and not (set(value) & DISTRIBUTION_KEYS):
            _leaves(value, f"{path}.", out)  # a level of nesting
        elif path in out:
            raise ConfigError(f"search_space entry {path!r} is given twice (dotted and nested); keep one.")
        else:
            out[path] = value


def parse_space(space: Mapping[str, Any] | None) -> SearchSpace:
    """Validate `space` (e.g. cfg.search_space) and build its distributions; raise ConfigError
    naming the entry, the value and what is allowed."""
    if isinstance(space, DictConfig):
        space = OmegaConf.to_container(space, resolve=True)
    raw: dict[str, Any] = {}
    _leaves(space or {}, "", raw)
    result = SearchSpace()
    for path, spec in raw.items():
        if LAYER_PARAM.fullmatch(path) or path == HIDDEN:
            raise ConfigError(f"search_space entry {path!r} cannot be sampled directly; sample {DEPTH} and "
                              f"{UNITS} (with per_layer: true for one width per layer) instead.")
        if isinstance(spec, str):
            result.entries[path], points = _from_string(path, spec)
            if points is not None:
                result.ranges[path] = points
        elif isinstance(spec, Mapping) and "when" not in spec:
            result.entries[path], per_layer = _from_mapping(path, spec)
            result.per_layer = result.per_layer or per_layer
        elif isinstance(spec, (Mapping, list)):  # conditional: one mapping with `when`, or a list of them
            variants = [spec] if isinstance(spec, Mapping) else spec
            if not variants or not all(isinstance(v, Mapping) for v in variants):
                raise ConfigError(f"search_space entry {path!r} is {spec!r}, but a list of variants must hold "
                                  "mappings {type: ..., when: {...}}.")
            if path in (DEPTH, UNITS):
                raise ConfigError(f"search_space entry {path!r} has `when`, but the depth and widths cannot be "
                                  "conditional; condition the other entries instead.")
            out = []
            for v in variants:
                dist, _ = _from_mapping(path, {k: x for k, x in v.items() if k != "when"})
                out.append((_condition(path, v.get("when", {})) if "when" in v else {}, dist))
            result.conditional[path] = out
        else:
            raise ConfigError(f"search_space entry {path!r} is {spec!r}, but an entry must be a mapping "
                              f"{{type: float|int|categorical, ...}} or one of the strings {GRAMMAR}.")
    if result.per_layer and DEPTH not in result.entries:
        raise ConfigError(f"search_space entry {UNITS!r} has per_layer: true, but {DEPTH!r} is not in the search "
                          f"space to say how many layers to sample; add it (choice(3) for a fixed depth).")
    return result


# Type words for sampled values at paths without a CHECKS entry.
TYPE_CHECKS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    int: (is_integer, "an integer"),
    float: (is_number, "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
    bool: (lambda v: isinstance(v, bool), "true or false"),
}
SEARCHABLE = ("dataset", "model", "train")  # the sections a trial's values may change
_ABSENT = object()


def check_space(cfg: DictConfig) -> SearchSpace:
    """cfg.search_space parsed, each entry's path a field a trial may change and each of its
    values (bounds, choices) one that field accepts; raise ConfigError naming the entry."""
    space = parse_space(cfg.search_space)
    for path, variants in space.conditional.items():
        for when, _ in variants:
            _check_condition(cfg, space, path, when)
    for path, dist in ((p, d) for p, ds in space.distributions().items() for d in ds):
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
    return space


def _check_condition(cfg: DictConfig, space: SearchSpace, path: str, when: Condition) -> None:
    """Each path of a condition is a single value of a trial (a config field or an entry sampled
    before this one) that can take one of the condition's values, or the condition never holds
    and the entry would silently never be sampled."""
    where = f"search_space entry {path!r}"
    for key, values in when.items():
        if key == HIDDEN or LAYER_PARAM.fullmatch(key) or (key == UNITS and space.per_layer):
            raise ConfigError(f"{where} has a condition on {key!r}, but the layer widths are no single value (a "
                              "list, or one value per layer with per_layer: true); what can be conditioned on is a "
                              "config field or an entry sampled before this one, for the layers model.depth, or "
                              "model.units when one width is shared (per_layer: false).")
        sampled = [space.entries[key]] if key in space.entries else [d for _, d in space.conditional.get(key, [])]
        if key in space.conditional and list(space.conditional).index(key) >= list(space.conditional).index(path):
            raise ConfigError(f"{where} has when.{key}, but {key!r} is sampled after it; list it before.")
        if not sampled and OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            raise ConfigError(f"{where} has a condition on {key!r}, which is not a path of the config; give the "
                              "dotted path of a config field, such as train.optimizer.")
        check = CHECKS.get(key) or TYPE_CHECKS.get(FIELD_TYPES.get(key))
        for value in values:
            said = f"{where} has the condition {key}={value!r}, but {key!r} is sampled as " + \
                " or ".join(map(describe, sampled))
            if sampled and not any(inside(d, value) for d in sampled):
                raise ConfigError(f"{said}, so it can never hold.")
            if sampled and all(isinstance(d, FloatDistribution) and d.step is None for d in sampled):
                raise ConfigError(f"{said}, which almost never gives one exact value, so it would almost never "
                                  "hold; condition on a categorical entry or one with a step.")
            if check is not None and not check[0](value):
                raise ConfigError(f"{where} has the condition {key}={value!r}, but {key} is never {value!r}: "
                                  f"it must be {check[1]}.")
        fixed = OmegaConf.select(cfg, key, default=_ABSENT)
        if not sampled and fixed not in values:  # SearchSpace.holds reads the config's value
            shown = f"{key}={values[0]!r}" if len(values) == 1 else f"{key} in {values}"
            raise ConfigError(f"{where} has the condition {shown}, but {key} is not sampled and the config fixes it "
                              f"at {'null' if fixed is None else repr(fixed)}, so it can never hold; sample {key} in "
                              "the search space, or drop the condition.")
