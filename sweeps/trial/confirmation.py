"""A confirmation's training: configs trained again with fresh seeds on their split, measured on
validation and on the held-out test split. Plain data in and out, so that an idle worker process
runs it as well as the launcher (sweeps.runner.confirm)."""

from __future__ import annotations

import math
from typing import Any

from nncore import Diverged
from sweeps.config.checks import settings
from sweeps.config.metrics import METRICS, TEST_METRICS, Snapshot, measure
from sweeps.interrupts import check_interrupt
from sweeps.trial.build import build_network, load_data, train


def _interrupted(iteration: int, cost: float) -> bool:
    check_interrupt()
    return False


def retrain(jobs: list[tuple[dict[str, Any], int]]) -> list[dict[str, float]]:
    """Each (resolved config, seed): the config's network initialised and its batches drawn by
    that seed, trained on the config's split (its seed's), with every metric of METRICS and of
    TEST_METRICS; NaNs for one that diverged."""
    out: list[dict[str, float]] = []
    data: dict[str, Any] = {}  # the data of each split: the jobs of one sweep share one
    for config, seed in jobs:
        cfg = settings(config)
        key = repr((cfg.dataset, cfg.seed))  # what the data depends on
        if key not in data:
            data[key] = load_data(cfg.dataset, cfg.seed)
        net = build_network(cfg.model, cfg.train.dtype, data[key], seed)
        try:
            # a Ctrl-C stops it at the next iteration in a worker process too, where it only sets a flag
            result = train(net, cfg.train, data[key], seed, callback=_interrupted)
        except Diverged:
            out.append({k: math.nan for k in (*METRICS, *TEST_METRICS)})
            continue
        snapshot = Snapshot(net, data[key], result.iterations_run, result.seconds)
        out.append({**measure(snapshot), **measure(snapshot, TEST_METRICS)})
    return out
