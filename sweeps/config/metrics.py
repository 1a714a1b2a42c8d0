"""METRICS: the one table of what a trial measures. Each entry says how it is computed (from the
trained network, its data, and how long and how far it trained) and which way is better.

`sweep.metric` takes any name here, or a list of them (sweeps.config.objectives); each one's
direction is the study's unless `sweep.direction` says otherwise; with one metric the pruner is
told it as training goes on. `sweep.constraints` bound them too. A new metric is one entry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from nncore import Dataset, Network


@dataclass
class Snapshot:
    """A network as a metric sees it: at the end of its training, or at a pruning report."""

    net: Network
    data: Dataset
    iterations: int  # iterations run so far
    seconds: float  # training time so far


@dataclass(frozen=True)
class Metric:
    direction: str  # "minimize" or "maximize"
    compute: Callable[[Snapshot], float]
    label: str  # a short column header
    fmt: str  # how a table prints it


def _val(s: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """The validation set; the training set stands in when dataset.val_fraction=0."""
    d = s.data
    return (d.X_val, d.Y_val) if d.X_val.shape[1] else (d.X_train, d.Y_train)


def _n_params(s: Snapshot) -> float:
    """Weights plus biases."""
    return float(sum(W.size + b.size for W, b in s.net.params))


def _predict_seconds(s: Snapshot) -> float:
    """The time of one predict on the validation set: what serving the network costs."""
    X, _ = _val(s)
    start = time.perf_counter()
    s.net.predict(X)
    return time.perf_counter() - start


METRICS: dict[str, Metric] = {
    "val_cost": Metric("minimize", lambda s: s.net.cost(*_val(s)), "val_cost", ".4f"),
    "val_accuracy": Metric("maximize", lambda s: s.net.accuracy(*_val(s)), "val_accuracy", ".4f"),
    "train_cost": Metric("minimize", lambda s: s.net.cost(s.data.X_train, s.data.Y_train), "train_cost", ".4f"),
    "train_accuracy": Metric("maximize", lambda s: s.net.accuracy(s.data.X_train, s.data.Y_train),
                             "train_accuracy", ".4f"),
    "fit_seconds": Metric("minimize", lambda s: s.seconds, "fit_s", ".3f"),
    "iterations_run": Metric("minimize", lambda s: float(s.iterations), "iterations", ".0f"),
    "n_params": Metric("minimize", _n_params, "n_params", ".0f"),
    "predict_seconds": Metric("minimize", _predict_seconds, "predict_s", ".5f"),
}


def measure(snapshot: Snapshot) -> dict[str, float]:
    """Every metric of the table (overflow in a diverging network gives inf or nan, not warnings)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return {name: float(m.compute(snapshot)) for name, m in METRICS.items()}
