"""Stopping a sweep that no longer improves (sweep.stop): after `patience` complete trials in a
row without an improvement larger than `min_delta` over the best so far, or once the metric
reaches `target`.

The study's complete trials are the only truth: `decide()` is a pure function of them and the
settings, so every worker, on any machine, reaches the same decision from the same storage.
A worker asks `reached()` under the budget lock before each trial (sweeps.study.budget); the first
to see the stop records it on the study (STOPPED_ATTR: the reason, the trial, the settings), and
every other worker then stops at its next ask. A later invocation under the same settings runs
nothing (`resume()`); under other settings the record is cleared and the decision is taken again.
Optuna's Terminator is deprecated (it leaves core in v6), hence this.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.config.objectives import WARM_FROM, feasible, metric_names
from sweeps.errors import ConfigError
from sweeps.study.best import several

STOPPED_ATTR = "nnsweeps.stopped"  # study user attr: {reason, trial, settings}, or None once cleared


@dataclass(frozen=True)
class StopRule:
    """sweep.stop's settings and the metric they watch."""

    metric: str
    patience: int | None = None
    min_delta: float = 0.0
    target: float | None = None

    def settings(self) -> dict[str, Any]:
        """What a stop is decided under: recorded with it, compared on a later invocation."""
        return {k: v for k, v in asdict(self).items() if k != "metric"}



def rule(sweep: Any) -> StopRule | None:
    """The StopRule of cfg.sweep, or None when sweep.stop asks for no stop (patience and target null)."""
    stop = sweep.stop
    if stop.patience is None and stop.target is None:
        return None
    return StopRule(metric_names(sweep)[0], None if stop.patience is None else int(stop.patience),
                    float(stop.min_delta), None if stop.target is None else float(stop.target))


def check(sweep: Any) -> None:
    """Refuses sweep.stop for several objectives: 'no improvement' has no single meaning there (a
    trial may improve one objective and worsen another)."""
    names = metric_names(sweep)
    if len(names) > 1 and rule(sweep) is not None:
        which = "patience" if sweep.stop.patience is not None else "target"
        raise ConfigError(f"sweep.stop.{which} is {sweep.stop[which]!r}, but stopping watches one objective and "
                          f"sweep.metric has {len(names)} ({', '.join(names)}); drop sweep.stop.{which}, or sweep "
                          "one metric.")


@dataclass(frozen=True)
class Stop:
    reason: str
    trial: int  # the complete trial after which the stop was decided


def decide(study: optuna.Study, stop: StopRule, trials: list[FrozenTrial] | None = None) -> Stop | None:
    """Whether the study's complete trials, in the order they finished, meet `stop`; None for a
    study of several objectives (check() refuses those). trials: the study's, if read already."""
    if several(study):
        return None
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
    # this study's own feasible trials: an infeasible one is never the best, and the copies a warm
    # start made are another study's history
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE
                   and t.value is not None and feasible(t) and WARM_FROM not in t.user_attrs),
                  key=lambda t: (t.datetime_complete or datetime.datetime.max, t.number))
    best, since = None, 0  # the best trial so far; complete trials since the last improvement
    for t in done:
        if stop.target is not None and sign * t.value <= sign * stop.target:
            return Stop(f"{stop.metric} reached the target {stop.target:g} at trial {t.number} ({t.value:.6g})",
                        t.number)
        improved = best is None or sign * t.value < sign * best.value - stop.min_delta
        since = 0 if improved else since + 1
        if best is None or sign * t.value < sign * best.value:
            best = t  # a smaller gain than min_delta raises the bar, without counting as an improvement
    # the streak at the end: a study that improved lately goes on, whatever streaks it had before
    if stop.patience is not None and best is not None and since >= stop.patience:
        # the rule's own count, not `since`: two workers may finish another trial after the one
        # that reached it, and "the last 6" read as wrong for sweep.stop.patience=5
        return Stop(f"no improvement larger than {stop.min_delta} in the last {stop.patience} finished trials "
                    f"(best {best.value:.6g} at trial {best.number})", done[-1].number)
    return None


def recorded(study: optuna.Study) -> dict | None:
    """The stop recorded on the study ({reason, trial, settings}), if any."""
    return study.user_attrs.get(STOPPED_ATTR) or None


def reached(study: optuna.Study, stop: StopRule | None, trials: list[FrozenTrial] | None = None) -> str | None:
    """A worker's check before each trial, under the budget lock: the reason the study stopped (a
    recorded stop, whoever recorded it, or one decided now, which is recorded), or None. trials:
    the study's, if read already."""
    record = recorded(study)
    if record is not None:
        return record["reason"]
    if stop is None:
        return None
    decided = decide(study, stop, trials)
    if decided is None:
        return None
    study.set_user_attr(STOPPED_ATTR, {"reason": decided.reason, "trial": decided.trial, "settings": stop.settings()})
    return decided.reason


def resume(study: optuna.Study, stop: StopRule | None) -> tuple[str | None, str | None]:
    """An invocation's start: (the reason the study stays stopped, or None; a note on a stop
    recorded under other settings, which is cleared so that the sweep goes on, or None)."""
    record, note = recorded(study), None
    settings = stop.settings() if stop is not None else None
    if record is not None:
        if record.get("settings") == settings:
            return record["reason"], None
        note = (f"the study stopped under {shown(record.get('settings'))} ({record['reason']}); sweep.stop is now "
                f"{shown(settings)}: it goes on")
        study.set_user_attr(STOPPED_ATTR, None)
    return reached(study, stop), note


def shown(settings: dict | None) -> str:
    """sweep.stop's settings as the overrides that give them."""
    if not settings or (settings.get("patience") is None and settings.get("target") is None):
        return "no stop settings"
    return " ".join(f"sweep.stop.{k}={v}" for k, v in settings.items() if v is not None)
