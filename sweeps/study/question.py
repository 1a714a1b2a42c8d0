"""What a study answers: its dataset and split, its metrics and their directions, its constraints,
its search space with its distributions, and the fixed model and training settings. Recorded on
the study when it is created; a later invocation asking another question of the same study is
refused, naming each difference, before anything is written. The budget, the parallelism, the
timeout, the sampler, the pruner and the tracking options may change: that is a resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna

import nncore
from sweeps.config.checks import flatten, resolve_direction
from sweeps.config.objectives import constraints, metric_names, spelled
from sweeps.config.space import DEPTH, HIDDEN, UNITS, SearchSpace, describe
from sweeps.errors import ConfigError

QUESTION_ATTR = "nnsweeps.question"  # study user attr: the question, as question() gives it
ASKED = ("dataset", "model", "train")  # the sections whose fixed values are part of the question
# how a training is watched, not what it is; and where the shipped spaces sample the learning
# rate, which reaches the question through the space itself
WATCHED = ("train.cost_every", "train.report_every", "train.learning_rate_range")
DIGEST = "dataset.digest"  # what the data's arrays hash to (sweeps.trial.build.Fingerprint): a changed CSV
# keys a question gained after studies were recorded without them: not a difference while missing there
LATER = (DIGEST,)
# keys a question gained whose value, in a question recorded without them, was this one: the split
# had no test part, and each trial trained once
BEFORE = {"dataset.test_fraction": "0.0", "sweep.repeats": "1"}


def question(cfg: Any, space: SearchSpace, digest: str | None = None) -> dict[str, str]:
    """Dotted key -> value (a string) of everything that defines the study's question; digest:
    the data's, as trained on (the file behind a CSV's path may change)."""
    # a conditional entry's fixed value stays: the trials whose condition fails train with it
    sampled = set(space.entries)
    if DEPTH in sampled and (UNITS in sampled or space.per_layer):
        sampled |= {HIDDEN, UNITS}  # the widths come from the space alone
    unused = set()
    if "train.optimizer" not in sampled and "train.optimizer" not in space.conditional:
        # the other optimisers' hyperparameters never reach the training
        unused = {f"train.optimizers.{opt}.{h}" for opt in nncore.OPTIMIZERS if opt != cfg.train.optimizer
                  for h in nncore.hyperparameters(opt)}
    fixed = {k: v for k, v in flatten(cfg).items() if k.split(".")[0] in ASKED and k not in WATCHED
             and k not in sampled and k not in unused}
    if cfg.dataset.name == "csv" and cfg.dataset.kwargs.get("path"):  # the file, however it is spelt
        fixed["dataset.kwargs.path"] = str(Path(cfg.dataset.kwargs.path).resolve())
    asked = {f"search_space.{path}": describe(d) + (", per layer" if path == UNITS and space.per_layer else "")
             for path, d in sorted(space.entries.items())}
    for path, variants in space.conditional.items():
        asked[f"search_space.{path}"] = "; ".join(
            describe(d) + (" when " + ", ".join(f"{k} in {v}" for k, v in when.items()) if when else "")
            for when, d in variants)
    if digest is not None:
        fixed[DIGEST] = digest
    # in one order: the same constraints listed otherwise ask the same question; none: no key
    bounds = sorted(c.text for c in constraints(cfg.sweep))
    # sweep.repeats: a trial's value is the mean of that many trainings, another number than one's
    return {**fixed, "seed": str(cfg.seed), "sweep.repeats": str(cfg.sweep.repeats), "sweep.metric": spelled(metric_names(cfg.sweep)),
            "sweep.direction": resolve_direction(cfg), **({"sweep.constraints": spelled(bounds)} if bounds else {}),
            **asked}


def differences(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """'key: old -> new' for each key whose value differs, '(none)' where one side lacks it; a
    key of LATER that the old question lacks is no difference (it was recorded before that key), nor
    is a key of BEFORE whose value is the one it had before it was recorded."""
    old = {**{k: v for k, v in BEFORE.items() if k in new}, **old}
    return [f"{k}: {old.get(k, '(none)')} -> {new.get(k, '(none)')}"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and not (k in LATER and k not in old)]


def completes(old: dict[str, str], new: dict[str, str]) -> bool:
    """Whether new adds keys of LATER to an old question that agrees otherwise: it is then
    recorded again, so that from now on they are checked too."""
    return any(k in new and k not in old for k in LATER)


def check_question(study: optuna.Study, asked: dict[str, str], where: str) -> bool:
    """Refuses (ConfigError) a study created for another question; True when the question is to
    be recorded: none is yet (a new study, or one made before questions were recorded), or the
    recorded one predates a key of LATER."""
    recorded = study.user_attrs.get(QUESTION_ATTR)
    if recorded is None:
        return True
    old = json.loads(recorded) if isinstance(recorded, str) else recorded
    diff = differences(old, asked)
    if diff:
        raise ConfigError(
            f"study {study.study_name!r} in {where} answers another question; what differs: {'; '.join(diff)}. "
            f"To ask this one, give it a study of its own (sweep.study_name=NEW_NAME), or start a new study "
            f"from this one's trials (sweep.study_name=NEW_NAME sweep.warm_start={study.study_name}); to go on "
            "with this study, drop the overrides that changed it.")
    return completes(old, asked)


def record_question(study: optuna.Study, asked: dict[str, str]) -> None:
    study.set_user_attr(QUESTION_ATTR, json.dumps(asked, sort_keys=True))
