"""One trial as the rest of the code reads it, and the names that link Optuna and MLflow.

A trial is recorded twice: in the study (its state, params, values and user attributes) and as
its MLflow run (tags, params, metrics, artifacts). The keys of both sides are named here and
nowhere else, and `rank` is the one order of trials, best first, that the summary, the report,
the status line, the API and the best model read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
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

# the study's user attributes: the last confirmation of its best configs (sweeps.runner.confirm),
# and its link to the MLflow parent run of its last launcher (SweepLink)
CONFIRM_ATTR = "nnsweeps.confirmation"
LINK_ATTR = "nnsweeps.mlflow"

# the run's tags
STUDY_TAG, TRIAL_TAG, STATE_TAG = "optuna.study", "optuna.trial", "optuna.state"
ROLE_TAG = "nnsweeps.role"  # "sweep" (a parent run) or "trial"
PARETO_TAG, FEASIBLE_TAG = "pareto", "feasible"
CONFIRM_RANK_TAG = "confirm.rank"  # a confirmed trial's run: its place in the search's ranking, from 1
DISTINGUISHABLE_TAG, VERDICT_TAG = "confirm.distinguishable", "confirm.verdict"  # the parent run's


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


@dataclass(frozen=True)
class SweepLink:
    """Where the study's last launcher tracks: workers that join by hand log under its parent run,
    a resume checks that the store still holds it, a joined worker that the sweep runs elsewhere."""

    uri: str = ""  # tracking.uri ("" : never tracked)
    experiment_id: str = ""
    parent_run_id: str = ""
    host: str = ""  # the launcher's

    @classmethod
    def of(cls, study: optuna.Study) -> "SweepLink":
        d = study.user_attrs.get(LINK_ATTR) or {}
        return cls(**{f.name: d.get(f.name, "") for f in fields(cls)})

    def save(self, study: optuna.Study) -> None:
        study.set_user_attr(LINK_ATTR, asdict(self))

    def tracks_into(self, uri: str) -> bool:
        """Whether the study's runs are in this store (a resume may track into another)."""
        return bool(self.uri) and self.uri == uri


def rank(trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection]) -> list[FrozenTrial]:
    """The complete trials with finite values, best first: feasible ones before those that break a
    constraint, then by value (one objective), the earliest of equals first. For several
    objectives, by the first objective (the Pareto front is Optuna's best_trials)."""
    sign = 1 if directions[0] == optuna.study.StudyDirection.MINIMIZE else -1
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None
            and all(math.isfinite(v) for v in t.values)]
    return sorted(done, key=lambda t: (not feasible(t), sign * t.values[0], t.number))


@dataclass(frozen=True)
class Confirmed:
    """One of a sweep's best configs trained again with fresh seeds (sweep.confirm): the mean and
    95% interval of its sweep.metric on validation, and of that metric's test counterpart."""

    number: int  # its trial
    run_id: str  # its trial's run, which holds these as metrics too ("" with tracking off)
    metric: str  # sweep.metric
    val_mean: float
    val_ci: tuple[float, float]  # (low, high)
    test_metric: str  # sweeps.config.metrics.test_of(metric)
    test_mean: float | None  # None without a test split (dataset.test_fraction=0)
    test_ci: tuple[float, float] | None
    search_value: float  # its value in the search, which picked it: one training's (or repeats' mean)
    seeds: list[int] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)  # metric -> one value per seed (val_*, test_*)

    @classmethod
    def of(cls, d: dict) -> "Confirmed":
        pair = lambda v: None if v is None else tuple(v)  # noqa: E731  (JSON gives lists)
        return cls(**{**d, "val_ci": pair(d["val_ci"]), "test_ci": pair(d["test_ci"])})


@dataclass(frozen=True)
class Confirmation:
    """The confirmed configs, search rank first, and the one-line verdict on the winner."""

    rows: list[Confirmed]
    verdict: str  # the line the terminal, summary.md, the parent run and the report show
    distinguishable: bool | None  # winner vs runner-up; None with one confirmed config
    p_value: float | None
    complete: int  # the study's complete trials when it was confirmed


def confirmation(study: optuna.Study) -> Confirmation | None:
    """The study's last confirmation, None if it had none."""
    d = study.user_attrs.get(CONFIRM_ATTR)
    if not d:
        return None
    return Confirmation([Confirmed.of(r) for r in d["rows"]], d["verdict"], d["distinguishable"], d["p_value"],
                        d["complete"])
