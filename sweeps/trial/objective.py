"""What one trial does: config in, metric (or one value per metric) out, everything on its MLflow run.

The objective itself is `objective()`; the rest are its small helpers. What a trial writes to its
run (config, weights, curve, figures) is sweeps.trial.artifacts; what it measures is
sweeps.config.metrics.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Iterator

import numpy as np
import optuna
from omegaconf import DictConfig

from nncore import Dataset, Diverged, Network
from sweeps import reserve
from sweeps.config.checks import flatten, settings
from sweeps.config.metrics import METRICS, Snapshot, measure, repeated
from sweeps.config.objectives import Constraint, constraints, metric_names, pruning
from sweeps.config.schema import Config, SweepConfig
from sweeps.config.space import SearchSpace
from sweeps.errors import disk_full
from sweeps.interrupts import check_interrupt
from sweeps.study.pruners import asks_from
from sweeps.study.reports import Reports, asks_locally
from sweeps.tracking.outbox import Outbox
from sweeps.record import DIVERGED, ERROR, METRICS_ATTR, REPEATS_ATTR, RUN_ID, RUN_STORE
from sweeps.tracking.tracker import Tracker
from sweeps.trial.artifacts import TrialRun, log_outcome
from sweeps.trial.build import build_network, fit_seeds, train


class TimedOut(Exception):
    """sweep.timeout passed while the trial trained: it stopped at its next cost check."""


def objective(trial: optuna.Trial, base: DictConfig, space: SearchSpace, data: Dataset,
              tracker: Tracker | Outbox, deadline: float = math.inf) -> float | list[float]:
    """The value of sweep.metric, or a list of one per metric when it names several: with
    sweep.repeats=k, the mean of k trainings that differ in their seed (fit_seeds), on one split.
    deadline: time.monotonic() at which a trial still training stops (sweep.timeout)."""
    values = space.sample(trial, base)
    cfg = settings(space.apply(base, values))
    with trial_run(trial, cfg, values, tracker) as run:
        pruning = Pruning(trial, cfg.sweep, cfg.train.report_every, data, deadline)
        nets, curves, runs = [], [], []  # each repeat's network, (iterations, costs) and metrics
        try:
            for seed in fit_seeds(cfg.seed, cfg.sweep.repeats):
                nets.append(build_network(cfg.model, cfg.train.dtype, data, seed))
                pruning.follow(nets[-1])
                try:
                    result = train(nets[-1], cfg.train, data, seed, pruning)
                except Diverged as err:  # a normal outcome of a large learning rate: kept, never best
                    curves.append((np.arange(err.costs.size) * cfg.train.cost_every, err.costs))
                    log_outcome(tracker, run, nets[0], cfg, curves, val_points=pruning.points, data=data)
                    raise diverged(trial, str(err)) from None
                curves.append((result.cost_iterations, result.costs))
                runs.append(measure(Snapshot(nets[-1], data, result.iterations_run, result.seconds)))
                if result.stopped_early:
                    break
        finally:  # every report in the store before Optuna is told the trial's end
            pruning.close()
        metrics, each = repeated(runs)
        names = metric_names(cfg.sweep)
        final = [] if result.stopped_early else [(result.iterations_run, metrics[names[0]])]
        log_outcome(tracker, run, nets[0], cfg, curves, {**metrics, **each}, val_points=[*pruning.points, *final],
                    data=data)
        trial.set_user_attr(METRICS_ATTR, metrics)
        if len(runs) > 1:
            trial.set_user_attr(REPEATS_ATTR, runs)
        if result.stopped_early:
            raise optuna.TrialPruned(f"pruned at iteration {result.iterations_run - 1}")
        for name in names:
            if not math.isfinite(metrics[name]):  # Optuna would record inf as a complete value
                raise diverged(trial, f"diverged: {name} is {metrics[name]}")
        run.tags.update(constrain(trial, constraints(cfg.sweep), metrics))
        if len(names) > 1:
            run.tags["pareto"] = "false"  # until the sweep's end finds it on the front (sweeps.report.summary)
            return [metrics[name] for name in names]
        return metrics[names[0]]


def constrain(trial: optuna.Trial, bounds: list[Constraint], metrics: dict[str, float]) -> dict[str, str]:
    """Each constraint's value on the trial (<= 0: satisfied), where Optuna's samplers and its
    best_trials read them; the run's tag `feasible` (none without constraints)."""
    for c in bounds:
        trial.set_constraint(c.text, c.value(metrics))
    if not bounds:
        return {}
    return {"feasible": "true" if all(c.value(metrics) <= 0 for c in bounds) else "false"}


class Pruning:
    """nncore callback: every report_every iterations, report the sweep's metric (METRICS) to
    Optuna, so the pruner compares what the study optimises, and stop when told to. With
    sweep.repeats=k the repeats train one after the other: the pruner is asked during the last,
    with the mean of all k at each report step."""

    def __init__(self, trial: optuna.Trial, sweep: SweepConfig, every: int, data: Dataset,
                 deadline: float = math.inf):
        # the first metric: the pruner's with one, drawn on cost_curve.png with several
        self.trial, self.data, self.metric = trial, data, METRICS[metric_names(sweep)[0]]
        self.deadline = deadline
        self.every = every  # train.report_every
        # with no pruner (or several metrics, which Optuna does not prune) reporting would only add
        # a store write per report
        self.prunes = pruning(sweep)
        self.asks_from = asks_from(sweep)  # before this step the pruner's answer is no
        # written by a thread while the trial trains, where the pruner allows (sweeps.study.reports)
        self.reports = Reports(trial) if self.prunes and asks_locally(trial.study.pruner) else None
        self.points: list[tuple[int, float]] = []  # (iteration, mean value) reported, drawn on cost_curve.png
        self.repeats = sweep.repeats
        self.earlier: list[dict[int, float]] = []  # each finished repeat's value at each report step
        self.net: Network | None = None

    def follow(self, net: Network) -> None:
        """The next repeat's network, which this callback watches from now on."""
        if self.net is not None:
            self.earlier.append(self.values)
        self.net, self.values, self.start = net, {}, time.perf_counter()

    def __call__(self, iteration: int, cost: float) -> bool:
        check_interrupt()  # a Ctrl-C stops the training here (sweeps.interrupts.INTERRUPTED)
        if self.deadline < math.inf and time.monotonic() > self.deadline:
            raise TimedOut(f"sweep.timeout passed at iteration {iteration}")
        if iteration == 0 or iteration % self.every:
            return False
        with np.errstate(over="ignore", invalid="ignore"):
            value = self.metric.compute(Snapshot(self.net, self.data, iteration, time.perf_counter() - self.start))
        if not math.isfinite(value):
            return False  # the training cost will say Diverged soon enough
        self.values[iteration] = value
        if len(self.earlier) < self.repeats - 1:
            return False  # not the last repeat: the mean needs them all
        value = float(np.mean([*(v[iteration] for v in self.earlier if iteration in v), value]))
        self.points.append((iteration, value))
        if not self.prunes:
            return False
        if self.reports is not None:
            self.reports.report(value, iteration)
            return iteration >= self.asks_from and self.reports.should_prune()
        self.trial.report(value, step=iteration)
        return iteration >= self.asks_from and self.trial.should_prune()

    def close(self) -> None:
        """Waits for the reports still being written (sweeps.study.reports)."""
        if self.reports is not None:
            self.reports.close()


def diverged(trial: optuna.Trial, reason: str) -> optuna.TrialPruned:
    trial.set_user_attr(DIVERGED, reason)
    return optuna.TrialPruned(reason)


@contextlib.contextmanager
def trial_run(trial: optuna.Trial, cfg: Config, values: dict, tracker: Tracker | Outbox) -> Iterator[TrialRun]:
    """The trial's child run, ended by how the trial ends: complete and pruned FINISHED (the
    state tag tells them apart), an error FAILED with its message, an interrupt KILLED; with the
    metrics and curve logged, whichever way."""
    run = TrialRun(tracker.start_trial(
        trial.number,
        tags={"optuna.study": trial.study.study_name, "optuna.trial": trial.number, "optuna.state": "RUNNING",
              "seed": cfg.seed, "sampled": ",".join(values)},
        # the resolved config (the search space itself is on the parent run) and per-layer widths
        params={**{k: v for k, v in flatten(cfg).items() if not k.startswith("search_space.")},
                **{k: v for k, v in values.items() if k != "model.hidden_units"}},
    ))
    if not tracker.deferred:  # else the writer sets both as it makes the run, before the trial ends
        trial.set_user_attr(RUN_ID, run.id)
        if run.id:
            trial.set_user_attr(RUN_STORE, tracker.uri)

    def end(status: str, tags: dict[str, str]) -> None:
        tracker.end(run.id, status, tags, metrics=run.metrics, curve=run.curve, steps=run.steps, step=run.iterations)

    try:
        yield run
    except optuna.TrialPruned as err:
        end("FINISHED", {"optuna.state": "PRUNED", "reason": str(err)})
        raise
    except KeyboardInterrupt:
        end("KILLED", {"optuna.state": "FAIL", "reason": "interrupted"})
        raise
    except TimedOut as err:
        trial.set_user_attr(ERROR, str(err))
        end("KILLED", {"optuna.state": "FAIL", "reason": "timeout"})
        raise
    except optuna.exceptions.UpdateFinishedTrialError:
        # another worker failed this trial meanwhile (its heartbeat came late) and queued a retry
        end("KILLED", {"optuna.state": "FAIL", "reason": "failed by another worker: no heartbeat"})
        raise
    except BaseException as err:
        message = f"{type(err).__name__}: {err}"
        if isinstance(err, Exception) and disk_full(err) is not None:
            reserve.release()  # the space kept back: this run's end is recorded, the sweep then stops
            end("KILLED", {"optuna.state": "FAIL", "reason": "the disk is full"})
            raise
        trial.set_user_attr(ERROR, message)
        end("FAILED", {"optuna.state": "FAIL", "error": message})
        raise
    else:
        try:
            end("FINISHED", {**run.tags, "optuna.state": "COMPLETE"})
        except Exception as err:  # its last batch found the disk full: the run did not end complete
            if disk_full(err) is None or not reserve.release():
                raise
            end("KILLED", {"optuna.state": "FAIL", "reason": "the disk is full"})
            raise
