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


# The held-out test split's, kept out of METRICS: a trial never measures them (its record would carry
# them into the search); only the confirmed configs do (sweeps.trial.confirmation). None without a test split.
TEST_METRICS: dict[str, Metric] = {
    "test_cost": Metric("minimize", lambda s: s.net.cost(s.data.X_test, s.data.Y_test), "test_cost", ".4f"),
    "test_accuracy": Metric("maximize", lambda s: s.net.accuracy(s.data.X_test, s.data.Y_test), "test_accuracy",
                            ".4f"),
}


def measure(snapshot: Snapshot, table: dict[str, Metric] = METRICS) -> dict[str, float]:
    """Every metric of the table (overflow in a diverging network gives inf or nan, not warnings);
    TEST_METRICS' are none without a test split."""
    if table is TEST_METRICS and (snapshot.data.X_test is None or not snapshot.data.X_test.shape[1]):
        return {}
    with np.errstate(over="ignore", invalid="ignore"):
        return {name: float(m.compute(snapshot)) for name, m in table.items()}


def test_of(metric: str) -> str:
    """The test split's counterpart of a metric: test_cost for val_cost, test_accuracy for
    val_accuracy; test_cost for any other (how well the config fits unseen data)."""
    name = metric.replace("val_", "test_", 1)
    return name if name in TEST_METRICS else "test_cost"


def repeated(runs: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """A trial's repeats (each one's metrics) as (the mean of each metric, what its run logs besides:
    `<metric>/r<i>` of each repeat and `<metric>_std`, their sample standard deviation); no extra
    for one repeat."""
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    if len(runs) < 2:
        return mean, {}
    extra = {f"{k}/r{i}": r[k] for i, r in enumerate(runs) for k in r}
    extra.update({f"{k}_std": float(np.std([r[k] for r in runs], ddof=1)) for k in runs[0]})
    return mean, extra
