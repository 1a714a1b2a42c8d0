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


def test_repeats_give_the_mean_each_repeats_value_and_the_sample_std():
    from sweeps.config.metrics import repeated

    runs = [{"val_cost": 0.2, "n_params": 10.0}, {"val_cost": 0.3, "n_params": 10.0}, {"val_cost": 0.4, "n_params": 10.0}]
    mean, extra = repeated(runs)
    assert mean == {"val_cost": pytest.approx(0.3), "n_params": 10.0}
    assert extra["val_cost/r0"] == 0.2 and extra["val_cost/r2"] == 0.4
    assert extra["val_cost_std"] == pytest.approx(0.1) and extra["n_params_std"] == 0.0  # ddof=1
    assert repeated(runs[:1]) == (runs[0], {})  # one repeat: the run logs what it always did


def test_the_test_metrics_are_measured_apart_and_only_with_a_test_split():
    from nncore import Network, load_dataset
    from sweeps.config.metrics import TEST_METRICS, Snapshot, measure, test_of

    net = Network.create([2, 3, 1], seed=0)
    held = load_dataset("flower", seed=0, test_fraction=0.2)
    assert not set(TEST_METRICS) & set(measure(Snapshot(net, held, 0, 0.0)))  # a trial's metrics: none of them
    test = measure(Snapshot(net, held, 0, 0.0), TEST_METRICS)
    assert test["test_cost"] == net.cost(held.X_test, held.Y_test)
    assert measure(Snapshot(net, load_dataset("flower", seed=0), 0, 0.0), TEST_METRICS) == {}
    assert (test_of("val_cost"), test_of("val_accuracy"), test_of("n_params")) == ("test_cost", "test_accuracy",
                                                                                    "test_cost")
