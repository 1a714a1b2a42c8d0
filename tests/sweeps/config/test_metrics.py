"""sweeps.config.metrics: the one table of metrics, computed from a real trained network."""

import math

import pytest

from nncore import Network, fit, load_dataset
from sweeps.config.metrics import METRICS, Snapshot, measure


@pytest.fixture(scope="module")
def trained():
    data = load_dataset("flower", seed=0, val_fraction=0.2)
    net = Network.create([2, 4, 1], activation="tanh", seed=0)
    result = fit(net, data.X_train, data.Y_train, learning_rate=1.2, iterations=500)
    return net, data, result


def test_every_metric_has_a_direction_a_label_and_a_format():
    for name, m in METRICS.items():
        assert m.direction in ("minimize", "maximize"), name
        assert m.label and format(0.5, m.fmt)
    assert METRICS["val_cost"].direction == "minimize" and METRICS["val_accuracy"].direction == "maximize"


def test_measure_computes_every_metric_of_the_table(trained):
    net, data, result = trained
    out = measure(Snapshot(net, data, result.iterations_run, result.seconds))
    assert set(out) == set(METRICS)
    assert all(math.isfinite(v) for v in out.values())
    assert out["val_cost"] == net.cost(data.X_val, data.Y_val)
    assert out["train_accuracy"] == net.accuracy(data.X_train, data.Y_train)
    assert out["iterations_run"] == 500.0 and out["fit_seconds"] == result.seconds


def test_without_a_validation_set_the_training_set_stands_in(trained):
    net, _, _ = trained
    data = load_dataset("flower", seed=0, val_fraction=0.0)
    out = measure(Snapshot(net, data, 1, 0.0))
    assert out["val_cost"] == out["train_cost"] and out["val_accuracy"] == out["train_accuracy"]


def test_n_params_counts_weights_and_biases_and_predict_seconds_times_one_predict(trained):
    net, data, result = trained
    out = measure(Snapshot(net, data, result.iterations_run, result.seconds))
    assert out["n_params"] == (2 * 4 + 4) + (4 * 1 + 1) == 17.0  # [2, 4, 1]: W1 b1, W2 b2
    deep = Network.create([4, 8, 8, 3], seed=0)
    iris = load_dataset("iris", seed=0)
    assert measure(Snapshot(deep, iris, 1, 0.0))["n_params"] == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3
    assert 0 < out["predict_seconds"] < 1.0
    assert METRICS["n_params"].direction == "minimize" and METRICS["predict_seconds"].direction == "minimize"
