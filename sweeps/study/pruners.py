"""PRUNERS: sweep.pruner's name -> how to make it from cfg.sweep. A new pruner is one entry here.

Steps are training iterations; the pruner is told sweep.metric every train.report_every
iterations (sweeps.trial.objective.Pruning).
"""

from __future__ import annotations

from typing import Any, Callable

import optuna

PRUNERS: dict[str, Callable[[Any], optuna.pruners.BasePruner]] = {
    "median": lambda s: optuna.pruners.MedianPruner(n_startup_trials=s.n_startup_trials,
                                                    n_warmup_steps=s.warmup_steps),
    # the smallest budget a trial gets before a rung decides on it
    "hyperband": lambda s: optuna.pruners.HyperbandPruner(min_resource=max(1, s.warmup_steps)),
    "successive_halving": lambda s: optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, s.warmup_steps)),
    "none": lambda s: optuna.pruners.NopPruner(),
}


def asks_from(sweep: Any) -> int:
    """The first step at which sweep.pruner may prune. Below it the median pruner (its warm-up)
    and successive halving (its first rung, min_resource) answer no without writing anything, so
    a trial does not ask: each question is a read of the study's trials. Hyperband sets its
    brackets up at its first question, from the trials complete by then: always asked."""
    return {"median": sweep.warmup_steps, "successive_halving": max(1, sweep.warmup_steps)}.get(sweep.pruner, 0)
