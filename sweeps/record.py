"""One trial as the rest of the code reads it, and the names that link Optuna and MLflow.

A trial is recorded twice: in the study (its state, params, values and user attributes) and as
its MLflow run (tags, params, metrics, artifacts). The keys of both sides are named here and
nowhere else, and `rank` is the one order of trials, best first, that the summary, the report,
the status line, the API and the best model read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.config.objectives import feasible

# the trial's user attributes
RUN_ID = "run_id"  # its MLflow run, set as the run is made (sweeps.tracking.writer)
RUN_STORE = "tracking_uri"  # the store that holds that run: a resume may track elsewhere
METRICS_ATTR = "metrics"  # every metric of sweeps.config.metrics.METRICS, as the trial ended (repeats: the mean)
REPEATS_ATTR = "repeats"  # with sweep.repeats > 1: each repeat's metrics, in the order they trained
DIVERGED = "diverged"  # why a trial whose cost became NaN or inf was pruned
ERROR = "error"  # a failed trial's error

# the run's tags
STUDY_TAG, TRIAL_TAG, STATE_TAG = "optuna.study", "optuna.trial", "optuna.state"
ROLE_TAG = "nnsweeps.role"  # "sweep" (a parent run) or "trial"
PARETO_TAG, FEASIBLE_TAG = "pareto", "feasible"


@dataclass(frozen=True)
class TrialRecord:
    """A trial's outcome and where its run is, from the study alone."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    values: tuple[float, ...] | None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str = ""
    tracking_uri: str | None = None  # None: recorded before trials named their store
    reason: str = ""  # a pruned, diverged or failed trial's
    feasible: bool = True
    repeats: list[dict[str, float]] = field(default_factory=list)  # each repeat's metrics (sweep.repeats > 1)

    @classmethod
    def of(cls, t: FrozenTrial) -> "TrialRecord":
        a = t.user_attrs
        return cls(t.number, t.state.name, None if t.values is None else tuple(t.values), dict(t.params),
                   dict(a.get(METRICS_ATTR, {})), a.get(RUN_ID, ""), a.get(RUN_STORE),
                   a.get(DIVERGED) or a.get(ERROR, ""), feasible(t), list(a.get(REPEATS_ATTR, [])))


def rank(trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection]) -> list[FrozenTrial]:
    """The complete trials with finite values, best first: feasible ones before those that break a
    constraint, then by value (one objective), the earliest of equals first. For several
    objectives, by the first objective (the Pareto front is Optuna's best_trials)."""
    sign = 1 if directions[0] == optuna.study.StudyDirection.MINIMIZE else -1
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None
            and all(math.isfinite(v) for v in t.values)]
    return sorted(done, key=lambda t: (not feasible(t), sign * t.values[0], t.number))
