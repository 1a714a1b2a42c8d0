"""The end of a one-metric sweep: its best configs trained again with fresh seeds (sweep.confirm).

The search picked its best trial because that trial's validation score was the highest: a score
biased upward, as any winner's is, and a single draw of the initialisation and batch order. Here
the sweep.confirm.top best configs (sweeps.record.rank) train again with sweep.confirm.seeds seeds
none of them trained with, on the same split, each measured on validation and on the held-out
test split (dataset.test_fraction), which nothing saw before. Each gets a mean and a 95%
interval, and the winner and the runner-up, trained with the same seeds, a paired t-test: the
one-line verdict. It goes on the study (sweeps.record.CONFIRM_ATTR, which the summary, the
terminal and sweeps.run read), on the confirmed trials' runs and on the parent run.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from typing import Any, Callable

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FixedTrial, FrozenTrial, TrialState

from sweeps.config.metrics import METRICS, TEST_METRICS, test_of
from sweeps.config.objectives import metric_names, several
from sweeps.config.space import SearchSpace
from sweeps.record import (CONFIRM_ATTR, CONFIRM_RANK_TAG, DISTINGUISHABLE_TAG, VERDICT_TAG, Confirmation,
                           Confirmed, confirmation, rank)
from sweeps.stats import ALPHA, METHOD, interval, paired
from sweeps.tracking.tracker import Tracker, run_store
from sweeps.trial.build import CONFIRM, fit_seeds
from sweeps.trial.confirmation import retrain

logger = logging.getLogger(__name__)

# what a confirmed config keeps of each seed's metrics: what the verdict and the winner's curse read
KEPT = ("val_cost", "val_accuracy", *TEST_METRICS)


def confirm(study: optuna.Study, tracker: Tracker, cfg: DictConfig, space: SearchSpace,
            run_tasks: Callable[[list], list] = lambda tasks: [task() for task in tasks],
            workers: int = 1) -> Confirmation | None:
    """Confirms the study's best configs; None when sweep.confirm.top=0, for several metrics (a
    Pareto front is not confirmed: one line says so) or without a complete trial. run_tasks runs
    the `workers` tasks the trainings are dealt into (sweeps.runner.pool.at_once)."""
    top, n_seeds = cfg.sweep.confirm.top, cfg.sweep.confirm.seeds
    if top == 0:
        return None
    if several(cfg.sweep):
        logger.info("[sweep] sweep.confirm applies to one metric: the Pareto front is not confirmed "
                    "(sweep.confirm.top=0 leaves this line out)")
        return None
    complete = rank(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), study.directions)
    if not complete:
        logger.info("[sweep] no trial completed: there is nothing to confirm")
        return None
    if len(complete) < top:
        logger.info(f"[sweep] sweep.confirm.top={top}, but the study holds {len(complete)} complete trial(s): "
                    f"confirming those {len(complete)}")
    trials, metric = complete[:top], metric_names(cfg.sweep)[0]
    seeds = fit_seeds(cfg.seed, n_seeds, CONFIRM)
    logger.info(f"[sweep] confirming the {len(trials)} best configs with {n_seeds} fresh seeds each "
                f"({len(trials) * n_seeds} trainings)...")
    start = time.perf_counter()
    results = trainings([config_of(t, cfg, space) for t in trials], seeds, run_tasks, workers)
    rows = [row(t, results[i * n_seeds:(i + 1) * n_seeds], metric, seeds) for i, t in enumerate(trials)]
    line, distinguishable, p = verdict(rows, study.direction == optuna.study.StudyDirection.MINIMIZE)
    before = confirmation(study)
    study.set_user_attr(CONFIRM_ATTR, {"rows": [dataclasses.asdict(r) for r in rows], "verdict": line,
                                       "distinguishable": distinguishable, "p_value": p, "complete": len(complete)})
    log(tracker, trials, rows, line, distinguishable, p, before)
    logger.info(f"[sweep] confirmed in {time.perf_counter() - start:.1f} s")
    return confirmation(study)


def unconfirmed(study: optuna.Study, cfg: DictConfig) -> bool:
    """Whether a one-metric study under sweep.confirm has complete trials, and no confirmation of
    those it has now."""
    n = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    c = confirmation(study)
    return cfg.sweep.confirm.top > 0 and not several(cfg.sweep) and n > 0 and (c is None or c.complete != n)


def config_of(t: FrozenTrial, cfg: DictConfig, space: SearchSpace) -> dict[str, Any]:
    """Trial t's resolved config, as its worker made it: the space sampled again from its params."""
    base = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    return OmegaConf.to_container(space.apply(base, space.sample(FixedTrial(t.params), base)), resolve=True)


def trainings(configs: list[dict], seeds: list[int], run_tasks: Callable[[list], list],
              workers: int) -> list[dict[str, float]]:
    """Each config trained with each seed (config-major order), dealt round-robin into `workers`
    tasks of about the same work."""
    jobs = [(c, s) for c in configs for s in seeds]
    n = max(1, min(workers, len(jobs)))
    out: list[Any] = [None] * len(jobs)
    for i, results in enumerate(run_tasks([functools.partial(retrain, jobs[i::n]) for i in range(n)])):
        out[i::n] = results
    return out


def row(t: FrozenTrial, results: list[dict[str, float]], metric: str, seeds: list[int]) -> Confirmed:
    """Trial t's confirmation from its config's metrics over the seeds."""
    values = {k: [r[k] for r in results] for k in dict.fromkeys([metric, *KEPT]) if k in results[0]}
    val_mean, val_ci = interval(values[metric])
    test = test_of(metric)
    test_mean, test_ci = interval(values[test]) if test in values else (None, None)
    return Confirmed(t.number, t.user_attrs.get("run_id", ""), metric, val_mean, val_ci, test, test_mean, test_ci,
                     float(t.value), seeds, values)


def _shown(name: str, values: list[float]) -> str:
    """'val_cost 0.2134 ± 0.0312': the mean and half its 95% interval."""
    mean, (low, high) = interval(values)
    fmt = (METRICS.get(name) or TEST_METRICS[name]).fmt
    return f"{name} {mean:{fmt}} ± {(high - low) / 2:{fmt}}"


def verdict(rows: list[Confirmed], minimize: bool) -> tuple[str, bool | None, float | None]:
    """The one line on the winner (the search's best config): its confirmed scores, and whether
    the runner-up's differ by a paired t-test on sweep.metric over the same seeds; that result, and
    its p-value (None without a runner-up)."""
    w = rows[0]
    n = len(w.seeds)
    line = f"best config (trial {w.number}): {_shown(w.metric, w.values[w.metric])} ({n} seeds)"
    tests = [k for k in TEST_METRICS if k in w.values]
    line += "".join(f", {_shown(k, w.values[k])}" for k in tests) if tests else \
        "; no test score (dataset.test_fraction=0)"
    if len(rows) < 2:
        return line + "; no runner-up to compare with (sweep.confirm.top=1)", None, None
    u = rows[1]
    p = paired(w.values[w.metric], u.values[w.metric])
    yes = p < ALPHA
    line += (f"; runner-up (trial {u.number}) {'' if yes else 'not '}distinguishable ({METHOD} on {w.metric} "
             f"over the same {n} seeds, p = {p:.2g})")
    if yes and (u.val_mean < w.val_mean) == minimize and u.val_mean != w.val_mean:
        line += ", and the runner-up is the better"
    return line, yes, p


def log(tracker: Tracker, trials: list[FrozenTrial], rows: list[Confirmed], line: str,
        distinguishable: bool | None, p: float | None, before: Confirmation | None) -> None:
    """The confirmation on each confirmed trial's run (its test metrics, each kept metric's mean
    and interval, its rank) and on the parent run (the verdict); the runs an earlier confirmation
    of the study tagged, and this one did not confirm, are tagged superseded."""
    if not tracker.enabled:
        return
    for place, (t, r) in enumerate(zip(trials, rows), start=1):
        if not r.run_id or run_store(t.user_attrs, tracker.uri) != tracker.uri:
            continue  # a run of a resume under another tracking.uri: that store's
        metrics = {k: interval(v)[0] for k, v in r.values.items() if k in TEST_METRICS}
        metrics.update(intervals(r.values))
        tracker.log(r.run_id, metrics={k: v for k, v in metrics.items() if math.isfinite(v)},
                    tags={CONFIRM_RANK_TAG: place, "confirm.seeds": ",".join(map(str, r.seeds))})
    confirmed = {r.run_id for r in rows}
    for old in before.rows if before is not None else ():
        if old.run_id and old.run_id not in confirmed:
            tracker.log(old.run_id, tags={CONFIRM_RANK_TAG: "superseded"})
    tags = {VERDICT_TAG: line, "confirm.method": METHOD, "confirm.trials": ",".join(str(r.number) for r in rows)}
    if distinguishable is not None:
        tags[DISTINGUISHABLE_TAG] = str(distinguishable).lower()
    metrics = {f"confirm/best_{k}": v for k, v in intervals(rows[0].values).items()}
    if p is not None:
        metrics["confirm/p_value"] = p
    tracker.log(tracker.parent_run_id, tags=tags, metrics={k: v for k, v in metrics.items() if math.isfinite(v)})


def intervals(values: dict[str, list[float]]) -> dict[str, float]:
    """confirm/<metric>_mean, _ci_low and _ci_high of each metric's values over the seeds."""
    out = {}
    for k, v in values.items():
        mean, (low, high) = interval(v)
        out.update({f"confirm/{k}_mean": mean, f"confirm/{k}_ci_low": low, f"confirm/{k}_ci_high": high})
    return out
