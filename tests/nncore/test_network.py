"""Network: gradients against central differences, shapes, validation, persistence."""

import itertools

import numpy as np
import pytest

from nncore import ACTIVATIONS, INITIALIZERS, Network


def _data(n_x, n_y, m, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_x, m))
    labels = rng.integers(0, max(n_y, 2), m)
    Y = labels.reshape(1, -1).astype(float) if n_y == 1 else np.eye(n_y)[:, labels]
    return X, Y


def _numeric_gradient(net, X, Y, l2, eps=1e-6):
    """Central differences of net.cost over every parameter, in theta's order."""
    approx = np.empty_like(net.theta)
    for i in range(net.theta.size):
        saved = net.theta[i]
        net.theta[i] = saved + eps
        plus = net.cost(X, Y, l2)
        net.theta[i] = saved - eps
        minus = net.cost(X, Y, l2)
        net.theta[i] = saved
        approx[i] = (plus - minus) / (2 * eps)
    return approx


@pytest.mark.parametrize(
    "activation,output,l2",
    list(itertools.product(sorted(ACTIVATIONS), ["sigmoid", "softmax"], [0.0, 0.1])),
)
def test_gradients_match_central_differences(activation, output, l2):
    n_y = 1 if output == "sigmoid" else 3
    X, Y = _data(4, n_y, 7, seed=1)
    # he init: weights large enough that every activation works away from its linear part
    net = Network.create([4, 5, 3, n_y], activation=activation, output=output, init="he", seed=2)
    # nudge biases off zero so relu kinks are not sampled exactly
    for _, b in net.params:
        b += 0.05
    grads = np.concatenate([np.hstack([dW, db]).ravel() for dW, db in net.gradients(X, Y, l2)])
    approx = _numeric_gradient(net, X, Y, l2)
    rel = np.linalg.norm(grads - approx) / (np.linalg.norm(grads) + np.linalg.norm(approx))
    assert rel < 1e-7, f"relative difference {rel:.2e}"


def test_gradients_are_aligned_with_params():
    net = Network.create([3, 4, 2], output="softmax", seed=0)
    X, Y = _data(3, 2, 5, seed=0)
    for (W, b), (dW, db) in zip(net.params, net.gradients(X, Y)):
        assert dW.shape == W.shape and db.shape == b.shape


def test_bias_gradient_by_hand_for_logistic_regression():
    # [1, 1] sigmoid with W = b = 0: A = 1/2 everywhere, so db = mean(1/2 - y), dW = mean((1/2 - y) x)
    net = Network.create([1, 1], init="scaled", seed=0)
    net.params[0][0][...] = 0.0
    X = np.array([[1.0, 2.0, 3.0, 4.0]])
    Y = np.array([[1.0, 0.0, 1.0, 1.0]])
    (dW, db), = net.gradients(X, Y)
    assert db[0, 0] == pytest.approx(np.mean(0.5 - Y))
    assert dW[0, 0] == pytest.approx(np.mean((0.5 - Y) * X))
    assert net.cost(X, Y) == pytest.approx(np.log(2.0))


def test_params_are_views_into_the_network():
    net = Network.create([2, 3, 1], seed=0)
    X = np.ones((2, 4))
    before = net.predict_proba(X).copy()
    W, b = net.params[1]
    assert W.shape == (1, 3) and b.shape == (1, 1)
    b[...] = 50.0
    after = net.predict_proba(X)
    assert np.all(after > 0.99) and not np.allclose(before, after)


@pytest.mark.parametrize("init", sorted(INITIALIZERS))
def test_init_is_random_small_and_seeded(init):
    a = Network.create([20, 30, 10], init=init, seed=3)
    b = Network.create([20, 30, 10], init=init, seed=3)
    c = Network.create([20, 30, 10], init=init, seed=4)
    assert np.array_equal(a.theta, b.theta) and not np.array_equal(a.theta, c.theta)
    W, bias = a.params[0]
    assert np.all(bias == 0) and np.count_nonzero(W) == W.size
    expected = {"scaled": 0.01, "he": np.sqrt(2 / 20), "xavier": np.sqrt(1 / 20)}[init]
    assert W.std() == pytest.approx(expected, rel=0.15)


def test_cost_is_stable_for_huge_logits():
    net = Network.create([1, 1], seed=0)
    net.params[0][0][...] = 1e4
    X = np.array([[1.0, -1.0]])
    Y = np.array([[0.0, 1.0]])  # both confidently wrong: cost ~ 1e4, never inf or nan
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        assert net.cost(X, Y) == pytest.approx(1e4)
    soft = Network.create([1, 3], output="softmax", seed=0)
    soft.params[0][0][...] = np.array([[1e4], [0.0], [-1e4]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        assert soft.cost(np.array([[1.0]]), np.array([[0.0], [0.0], [1.0]])) == pytest.approx(2e4)


def test_predict_and_accuracy():
    net = Network.create([2, 3], output="softmax", seed=0)
    net.params[0][0][...] = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    X = np.array([[5.0, 0.0, -5.0], [0.0, 5.0, -5.0]])
    assert net.predict(X).tolist() == [0, 1, 2]
    Y = np.eye(3)[:, [0, 1, 1]]
    assert net.accuracy(X, Y) == pytest.approx(2 / 3)
    assert net.accuracy(X, np.array([0, 1, 2])) == 1.0  # (m,) labels are encoded
    proba = net.predict_proba(X)
    assert proba.shape == (3, 3) and np.allclose(proba.sum(axis=0), 1.0)


def test_auto_output_follows_the_last_layer():
    assert Network.create([2, 1]).output == "sigmoid"
    assert Network.create([2, 5]).output == "softmax"


def test_float32_network_computes_in_float32():
    net = Network.create([2, 4, 1], dtype="float32", seed=0)
    X, Y = _data(2, 1, 10, seed=0)
    assert net.theta.dtype == np.float32
    assert net.predict_proba(X).dtype == np.float32
    assert all(dW.dtype == np.float32 for dW, _ in net.gradients(X, Y))
    ref = Network.create([2, 4, 1], dtype="float64", seed=0)
    assert net.cost(X, Y) == pytest.approx(ref.cost(X, Y), rel=1e-5)


def test_save_and_load_round_trip(tmp_path):
    net = Network.create([3, 4, 2], activation="leaky_relu", leaky_slope=0.05, seed=1)
    net.save(tmp_path / "w.npz")
    again = Network.load(tmp_path / "w.npz")
    X = np.random.default_rng(0).standard_normal((3, 6))
    assert again.sizes == [3, 4, 2] and again.activation == "leaky_relu" and again.leaky_slope == 0.05
    assert np.array_equal(again.predict_proba(X), net.predict_proba(X))
    with np.load(tmp_path / "w.npz") as f:
        assert f["W1"].shape == (4, 3) and f["b2"].shape == (2, 1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(sizes=[2, 0, 1]), r"layer sizes=\[2, 0, 1\]"),
        (dict(sizes=[2]), r"layer sizes=\[2\]"),
        (dict(sizes=[2, 3.5, 1]), r"positive integers"),
        (dict(sizes="abc"), r"layer sizes='abc'"),
        (dict(sizes=[2, 1], activation="swish"), r"activation='swish'.*leaky_relu, relu, sigmoid, tanh"),
        (dict(sizes=[2, 1], output="linear"), r"output='linear'.*auto, sigmoid, softmax"),
        (dict(sizes=[2, 1], output="softmax"), r"output='softmax'.*at least 2"),
        (dict(sizes=[2, 3], output="sigmoid"), r"output='sigmoid'.*exactly 1"),
        (dict(sizes=[2, 1], init="zeros"), r"init='zeros'.*he, scaled, xavier"),
        (dict(sizes=[2, 1], dtype="float16"), r"dtype='float16'.*float32, float64"),
        (dict(sizes=[2, 3, 1], activation="leaky_relu", leaky_slope=1.5), r"leaky_slope=1.5"),
    ],
)
def test_bad_construction_is_refused_with_a_sentence(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Network.create(**kwargs)


@pytest.mark.parametrize(
    "X,Y,match",
    [
        (np.ones((3, 4)), np.ones((1, 4)), r"X has shape \(3, 4\).*\(2, m\)"),
        (np.ones((2, 4)), np.ones((1, 5)), r"Y has shape \(1, 5\).*\(1, 4\)"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), np.ones((1, 2)), r"NaN or inf"),
        (np.ones((2, 2)), np.array([[0.0, 2.0]]), r"other than 0 and 1"),
        (np.ones((2, 2)), np.array([0, 3]), r"integers in \[0, 1\]"),
    ],
)
def test_bad_data_is_refused(X, Y, match):
    net = Network.create([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match=match):
        net.cost(X, Y)
