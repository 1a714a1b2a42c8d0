"""The training loop's shortcuts give what the plain definitions give.

fit records the cost from the output error's intermediates (for a sigmoid output, from
tanh(z / 2) with a fallback to the exact logits form), copies F-ordered inputs to C order, and
runs prebuilt calls: none of that may change a recorded cost beyond rounding, or a trajectory at all.
"""

import math
import warnings

import numpy as np
import pytest

from nncore import Network, fit, load_dataset, outputs
from nncore.activations import run


@pytest.fixture(scope="module")
def flower():
    return load_dataset("flower", seed=0, val_fraction=0)


@pytest.fixture
def exact_cost_calls(monkeypatch):
    """Counts the sigmoid head's fallbacks to the exact form (net.cost does not go through this name)."""
    calls = []
    exact = outputs._bce_sum
    monkeypatch.setattr(outputs, "_bce_sum", lambda Z, Y: calls.append(1) or exact(Z, Y))
    return calls


def _curve_against_net_cost(net, X, Y, **kwargs):
    """(recorded cost, net.cost at the same parameters) for every recorded iteration."""
    pairs = []
    # the callback runs before the iteration's update, at the parameters the cost was computed for
    fit(net, X, Y, callback=lambda it, cost: pairs.append((cost, net.cost(X, Y, kwargs.get("l2", 0.0)))),
        **kwargs)
    return np.array(pairs)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 1e-4)])
def test_recorded_sigmoid_curve_is_net_cost(flower, exact_cost_calls, dtype, rtol):
    # The course's run, whose logits reach |z| ~ 15: the fast form must hold all along it.
    net = Network.create([2, 4, 1], activation="tanh", seed=0, dtype=dtype)
    pairs = _curve_against_net_cost(net, flower.X_train, flower.Y_train, iterations=10000, cost_every=250)
    np.testing.assert_allclose(pairs[:, 0], pairs[:, 1], rtol=rtol, atol=0)
    assert np.abs(net.logits(flower.X_train)).max() > 10
    assert not exact_cost_calls  # and it was the fast form that held


def test_recorded_cost_with_l2_and_softmax_is_net_cost():
    data = load_dataset("iris", seed=0, val_fraction=0)
    net = Network.create([4, 6, 3], activation="relu", init="he", seed=0)
    pairs = _curve_against_net_cost(net, data.X_train, data.Y_train, iterations=300, cost_every=20,
                                    learning_rate=0.5, l2=0.3)
    np.testing.assert_allclose(pairs[:, 0], pairs[:, 1], rtol=1e-12, atol=0)


def _head_cost(z: np.ndarray, y: np.ndarray) -> float:
    Z, Y = z.reshape(1, -1), y.reshape(1, -1).astype(float)
    head = outputs.SigmoidHead(Z, Y, np.empty_like(Z), 1.0)
    with np.errstate(all="ignore"):  # as in fit: log1p(-1) is caught by the fallback
        run(head.prepare)
        run(head.costed)
    return head.cost()


@pytest.mark.parametrize("scale", [1e-3, 1.0, 5.0, 20.0, 40.0, 300.0, 1e4, 1e300])
@pytest.mark.parametrize("labels", ["random", "all right", "one wrong", "all wrong"])
def test_fast_sigmoid_cost_matches_an_accurate_sum_for_any_logits(scale, labels):
    rng = np.random.default_rng(len(labels))
    z = rng.standard_normal(400) * scale
    y = {"random": rng.integers(0, 2, 400), "all right": z > 0, "all wrong": z < 0,
         "one wrong": np.r_[z[0] < 0, z[1:] > 0]}[labels].astype(float)
    reference = math.fsum(np.logaddexp(0.0, (1 - 2 * y) * z))  # each sample's cost, summed exactly
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # the cost never warns
        cost = _head_cost(z, y)
    assert math.isfinite(cost)
    assert cost == pytest.approx(reference, rel=1e-12, abs=1e-300)


def test_huge_logits_fall_back_to_the_exact_form(exact_cost_calls):
    # u = tanh(s z / 2) rounds to -1 for a confidently wrong sample: log1p(-1) = -inf
    z = np.array([1e4, -50.0, 3.0])
    y = np.array([0.0, 1.0, 1.0])
    assert _head_cost(z, y) == pytest.approx(1e4 + 50 + math.log1p(math.exp(-3)), rel=1e-15)
    assert len(exact_cost_calls) == 1
    exact_cost_calls.clear()
    assert _head_cost(np.array([2.0, -1.0]), np.array([1.0, 0.0])) == pytest.approx(
        math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)), rel=1e-15)
    assert not exact_cost_calls


def test_fit_with_huge_logits_records_a_finite_exact_cost():
    net = Network.create([1, 1], seed=0)
    net.params[0][0][...] = 1e4
    X, Y = np.array([[1.0, -1.0, 0.5]]), np.array([[0.0, 0.0, 1.0]])  # one confidently wrong
    expected = net.cost(X, Y)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")  # fit leaks no floating-point warning either
        result = fit(net, X, Y, learning_rate=1e-12, iterations=3)
    assert np.all(np.isfinite(result.costs))
    assert result.costs[0] == pytest.approx(expected, rel=1e-12) and expected == pytest.approx(1e4 / 3)


@pytest.mark.parametrize("sizes,activation,batch_size", [
    ([2, 4, 1], "tanh", None), ([2, 5, 3, 1], "relu", 64), ([2, 6, 3], "sigmoid", None),
    ([2, 6, 3], "leaky_relu", 50),
])
def test_cost_every_does_not_change_training(flower, sizes, activation, batch_size):
    X, y = flower.X_train, flower.y_train
    Y = flower.Y_train if sizes[-1] == 1 else np.eye(sizes[-1])[:, y]
    thetas = []
    for cost_every in (1, 7):
        net = Network.create(sizes, activation=activation, init="he", seed=3)
        fit(net, X, Y, learning_rate=0.3, iterations=40, batch_size=batch_size, cost_every=cost_every, seed=5)
        thetas.append(net.theta)
    assert np.array_equal(thetas[0], thetas[1])


@pytest.mark.parametrize("batch_size", [None, 32])
def test_fortran_ordered_inputs_train_bitwise_alike(batch_size):
    data = load_dataset("digits", seed=0, val_fraction=0.5)
    runs = []
    for order in "CF":
        X, Y = np.asarray(data.X_train, order=order), np.asarray(data.Y_train, order=order)
        net = Network.create([64, 16, 10], activation="relu", init="he", seed=0)
        result = fit(net, X, Y, learning_rate=0.1, iterations=5, batch_size=batch_size, seed=1)
        runs.append((result.costs, net.theta))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
