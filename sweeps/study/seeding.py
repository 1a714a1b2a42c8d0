"""A new study's first trials from what is known: an earlier study's complete trials copied in
(warm_start), and known configurations queued to run first (enqueue)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import optuna
import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from sweeps.config.objectives import WARM_FROM, spelled
from sweeps.config.space import DEPTH, UNITS, SearchSpace, inside
from sweeps.errors import ConfigError
from sweeps.study.budget import ENQUEUED
from sweeps.study.question import QUESTION_ATTR, differences
from sweeps.study.storages import Storage, storage_for, storage_spec


def _layers(space: SearchSpace, params: Mapping[str, Any]) -> list[str]:
    """The per-layer width params a trial of this depth has in a per-layer space."""
    return [f"{UNITS}_l{i}" for i in range(1, int(params.get(DEPTH, 0)) + 1)] if space.per_layer else []


def _placed(space: SearchSpace, params: Mapping[str, Any], cfg: Any) -> dict[str, BaseDistribution] | str:
    """Param -> the distribution the new space would have sampled it from, or why the params
    cannot be a trial of the space: each plain entry present and inside, each conditional one
    present exactly when a variant's condition holds and inside that variant, per-layer widths for
    exactly the trial's layers."""
    out: dict[str, BaseDistribution] = {}
    for path, d in space.entries.items():
        if path == UNITS and space.per_layer:
            continue
        if path not in params:
            return f"it has no {path}"
        if not inside(d, params[path]):
            return f"its {path} lies outside the space"
        out[path] = d
    for name in _layers(space, params):
        if name not in params:
            return f"it has no {name}"
        if not inside(space.entries[UNITS], params[name]):
            return f"its {name} lies outside the space"
        out[name] = space.entries[UNITS]
    for path, variants in space.conditional.items():
        d = next((d for when, d in variants if space.holds(when, params, cfg)), None)
        if (d is None) != (path not in params):
            return f"its {path} is {'sampled where the space does not sample it' if d is None else 'missing'}"
        if d is not None:
            if not inside(d, params[path]):
                return f"its {path} lies outside the space"
            out[path] = d
    extra = sorted(set(params) - set(out))
    return f"its {extra[0]} is not in the space" if extra else out


def warm_start(study: optuna.Study, spec: Any, cfg: DictConfig, space: SearchSpace, asked: dict[str, str]) -> str:
    """Copies the COMPLETE trials of the study `spec` names (a name in this storage, or {study,
    storage}) whose params lie inside `space` into `study`, if the source asked the same question
    but for its search space. Returns what it did, in a sentence."""
    if isinstance(spec, (str, int)):
        name, where = str(spec), None
    elif isinstance(spec, Mapping) and set(spec) <= {"study", "storage"} and spec.get("study"):
        name, where = str(spec["study"]), spec.get("storage")
    else:
        raise ConfigError(f"sweep.warm_start is {spec!r}, but it must be a study name or {{study: NAME, storage: "
                          "PATH_OR_URL}.")
    source_storage = storage_for(storage_spec(where, name) if where else storage_spec(cfg.sweep.storage, name),
                                 cfg.sweep)
    try:
        source = optuna.load_study(study_name=name, storage=source_storage.open())
    except KeyError:
        raise ConfigError(f"sweep.warm_start names the study {name!r}, which is not in {source_storage.shown}; "
                          "give the name of an earlier study (and its storage, if another one).") from None
    recorded = source.user_attrs.get(QUESTION_ATTR)
    if recorded is not None:
        other = [d for d in differences(json.loads(recorded), asked) if not d.startswith("search_space.")]
        if other:
            return (f"warm start from {name!r}: took none of its trials, since it answers another question "
                    f"({'; '.join(other)})")
    if source.directions != study.directions:
        theirs = [d.name.lower() for d in source.directions]
        why = f"it {theirs[0]}s" if len(theirs) == 1 else f"its directions are {spelled(theirs)}"
        return f"warm start from {name!r}: took none of its trials, since {why}"
    complete = source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    taken, why = 0, {}
    for t in complete:
        placed = _placed(space, t.params, cfg)
        if isinstance(placed, str):
            why[placed] = why.get(placed, 0) + 1
            continue
        study.add_trial(optuna.trial.create_trial(
            params=t.params, distributions=placed,
            values=t.values, intermediate_values=t.intermediate_values,
            user_attrs={**t.user_attrs, WARM_FROM: f"{name}:{t.number}"}, constraints=t.constraints))
        taken += 1
    skipped = "; ".join(f"{n} because {reason}" for reason, n in sorted(why.items(), key=lambda kv: -kv[1]))
    return (f"warm start from {name!r}: took {taken} of its {len(complete)} complete trials"
            + (f", skipped {skipped}" if skipped else ""))


def _mappings(spec: Any) -> list[dict[str, Any]]:
    if isinstance(spec, str):
        try:
            spec = yaml.safe_load(Path(spec).read_text())
        except OSError as err:
            raise ConfigError(f"sweep.enqueue is {spec!r}, which cannot be read ({err.strerror}); give a YAML file "
                              "of param mappings, or the list itself.") from None
    if isinstance(spec, (DictConfig, ListConfig)):
        spec = OmegaConf.to_container(spec, resolve=True)
    if not isinstance(spec, list) or not all(isinstance(m, dict) and m for m in spec):
        raise ConfigError(f"sweep.enqueue is {spec!r}, but it must be a list of param mappings such as "
                          "[{train.learning_rate: 0.5, model.units: 8}], or a YAML file holding one.")
    return [{str(k): v for k, v in m.items()} for m in spec]


def configs(spec: Any, space: SearchSpace) -> list[dict[str, Any]]:
    """sweep.enqueue's configurations, each path one the space samples and each value one it can
    give; raise ConfigError naming the first that is not."""
    wanted = _mappings(spec)
    options = space.distributions()
    if space.per_layer:  # one width per layer: model.units_l1 .. model.units_l<depth>
        options.update({f"{UNITS}_l{i}": options[UNITS] for i in range(1, 33)})
        options.pop(UNITS)
    for params in wanted:
        for path, value in params.items():
            if path not in options:
                raise ConfigError(f"sweep.enqueue has {path}={value!r}, but {path!r} is not sampled by the search "
                                  f"space; queue only its paths ({', '.join(options)}).")
            if not any(inside(d, value) for d in options[path]):
                raise ConfigError(f"sweep.enqueue has {path}={value!r}, which lies outside the search space's "
                                  f"{path!r}; queue a value the space can give.")
    return wanted


def enqueue(study: optuna.Study, spec: Any, space: SearchSpace, storage: Storage) -> str:
    """Queues each configuration of sweep.enqueue (params by config path) to run before the
    sampler's, unless the study holds one with those params already (a trial, or one queued: by
    an earlier enqueue or as a retry). Under the budget lock: two launchers queue it once."""
    with storage.budget_lock(study.study_name):
        return _enqueue(study, configs(spec, space))


def _enqueue(study: optuna.Study, wanted: list[dict[str, Any]]) -> str:
    known = [t.params if t.state != TrialState.WAITING else json.loads(t.user_attrs.get(ENQUEUED, "{}"))
             for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL]
    queued = 0
    for params in wanted:
        if any(all(k in p and p[k] == v for k, v in params.items()) for p in known):
            continue
        study.enqueue_trial(params, user_attrs={ENQUEUED: json.dumps(params, sort_keys=True)})
        known.append(params)
        queued += 1
    return f"queued {queued} of the {len(wanted)} configurations of sweep.enqueue" + (
        f" ({len(wanted) - queued} in the study already)" if queued < len(wanted) else "")
