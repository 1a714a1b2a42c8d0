"""A study's answer: its best trial, or with several objectives a Pareto front instead
(sweeps.report.pareto). One definition for the summary, the status line, the API and the model
logged (the stop rule, sweeps.study.stopping, counts this study's own trials only)."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from sweeps.config.objectives import feasible
from sweeps.record import rank


def several(study: optuna.Study) -> bool:
    """Whether the study has several objectives (then no one trial is best)."""
    return len(study.directions) > 1


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best COMPLETE feasible trial (pruned and diverged trials never count, nor those that
    break a constraint), the earliest of equals; None if there is none, or for several objectives."""
    return None if several(study) else best_of(study.get_trials(deepcopy=False), study.direction)


def best_of(trials: list[FrozenTrial], direction: optuna.study.StudyDirection) -> FrozenTrial | None:
    """best_trial among trials already read (one objective): the first of sweeps.record.rank, if
    it is feasible."""
    ranked = rank(trials, [direction])
    return ranked[0] if ranked and feasible(ranked[0]) else None
