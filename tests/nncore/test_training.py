"""fit(): the course's results, reproducibility, optimisers, mini-batches, callbacks, divergence."""

import numpy as np
import pytest

from nncore import Diverged, Network, fit, load_dataset


@pytest.fixture(scope="module")
def flower():
    return load_dataset("flower", seed=0, val_fraction=0)


def test_course_planar_result(flower):
    # The course: [2, 4, 1] tanh, lr 1.2, 10,000 iterations, reaches ~90% on the flower.
    net = Network.create([2, 4, 1], activation="tanh", init="scaled", seed=0)
    result = fit(net, flower.X_train, flower.Y_train, learning_rate=1.2, iterations=10000)
    assert result.costs.shape == (10000,) and result.iterations_run == 10000
    assert result.costs[0] == pytest.approx(np.log(2), abs=1e-3)  # tiny weights: A ~ 1/2
    assert result.costs[-1] < 0.3
    assert net.accuracy(flower.X_train, flower.Y_train) >= 0.90


def test_logistic_regression_stays_near_chance(flower):
    # The course's point: a linear boundary cannot separate the petals (~47%).
    net = Network.create([2, 1], seed=0)
    fit(net, flower.X_train, flower.Y_train, learning_rate=1.2, iterations=10000, cost_every=100)
    assert 0.40 <= net.accuracy(flower.X_train, flower.Y_train) <= 0.55


def test_digits_deep_relu_softmax():
    data = load_dataset("digits", seed=0, val_fraction=0.2)
    net = Network.create([64, 64, 32, 10], activation="relu", init="he", seed=0)
    fit(net, data.X_train, data.Y_train, learning_rate=0.1, iterations=60, batch_size=128, seed=0)
    assert net.accuracy(data.X_val, data.Y_val) >= 0.95


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer,batch_size", [("gd", None), ("momentum", 32), ("adam", 50)])
def test_same_seed_gives_bitwise_the_same_curve(flower, dtype, optimizer, batch_size):
    def run(seed):
        net = Network.create([2, 5, 3, 1], activation="relu", init="he", seed=seed, dtype=dtype)
        r = fit(net, flower.X_train, flower.Y_train, learning_rate=0.05, iterations=30,
                optimizer=optimizer, batch_size=batch_size, l2=0.1, seed=seed)
        return r.costs, net.theta.copy()

    (c1, t1), (c2, t2), (c3, _) = run(7), run(7), run(8)
    assert np.array_equal(c1, c2) and np.array_equal(t1, t2)
    assert not np.array_equal(c1, c3)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
@pytest.mark.parametrize("batch_size", [None, 64])
def test_every_optimizer_learns_the_flower(flower, optimizer, batch_size):
    lr = {"gd": 1.2, "momentum": 1.2, "adam": 0.02}[optimizer]
    net = Network.create([2, 8, 1], activation="tanh", init="xavier", seed=1)
    result = fit(net, flower.X_train, flower.Y_train, learning_rate=lr, iterations=600,
                 optimizer=optimizer, batch_size=batch_size, seed=1)
    assert result.costs[-1] < 0.5 * result.costs[0]
    assert net.accuracy(flower.X_train, flower.Y_train) > 0.8


def test_one_gd_step_worked_by_hand():
    # [1, 1] sigmoid from W = b = 0: one step moves W and b by -lr times the mean error terms.
    net = Network.create([1, 1], seed=0)
    net.params[0][0][...] = 0.0
    X, Y = np.array([[1.0, 3.0]]), np.array([[1.0, 1.0]])
    fit(net, X, Y, learning_rate=0.5, iterations=1)
    W, b = net.params[0]
    # dZ = 1/2 - 1 = -1/2 for both samples; dW = mean(-1/2 * x) = -1; db = -1/2
    assert W[0, 0] == pytest.approx(0.5) and b[0, 0] == pytest.approx(0.25)


def test_l2_shrinks_the_weights(flower):
    norms = []
    for l2 in (0.0, 5.0):
        net = Network.create([2, 6, 1], seed=0, init="xavier")
        fit(net, flower.X_train, flower.Y_train, learning_rate=0.5, iterations=500, l2=l2)
        norms.append(net.l2_penalty())
    assert norms[1] < 0.5 * norms[0]


def test_minibatch_cost_is_the_epoch_mean(flower):
    net = Network.create([2, 4, 1], seed=0)
    snapshot = net.theta.copy()
    result = fit(net, flower.X_train, flower.Y_train, learning_rate=1e-9, iterations=1, batch_size=64)
    # with a vanishing learning rate every batch sees the initial weights
    net.theta[...] = snapshot
    assert result.costs[0] == pytest.approx(net.cost(flower.X_train, flower.Y_train), rel=1e-9)


def test_cost_every_and_callback_stop(flower):
    seen = []

    def callback(iteration, cost):
        seen.append((iteration, cost))
        return iteration >= 40

    net = Network.create([2, 4, 1], seed=0)
    result = fit(net, flower.X_train, flower.Y_train, iterations=1000, cost_every=20, callback=callback)
    assert [i for i, _ in seen] == [0, 20, 40]
    assert result.stopped_early and result.iterations_run == 41
    assert result.cost_iterations.tolist() == [0, 20, 40]
    assert np.array_equal(result.costs, [c for _, c in seen])


def test_divergence_raises_with_the_iteration_and_keeps_the_curve(flower):
    net = Network.create([2, 16, 1], activation="relu", init="he", seed=0)
    with np.errstate(all="raise"):  # fit must not leak floating-point warnings
        with pytest.raises(Diverged, match=r"diverged at iteration \d+.*smaller learning rate") as info:
            fit(net, flower.X_train * 1e3, flower.Y_train, learning_rate=1e6, iterations=1000)
    err = info.value
    assert err.iteration == err.costs.size - 1 and not np.isfinite(err.costs[-1])
    assert np.all(np.isfinite(err.costs[:-1]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(learning_rate=0.0), r"learning_rate=0.0"),
        (dict(learning_rate=-1), r"learning_rate=-1.*positive"),
        (dict(learning_rate=float("nan")), r"learning_rate=nan"),
        (dict(iterations=0), r"iterations=0.*positive integer"),
        (dict(iterations=2.5), r"iterations=2.5"),
        (dict(batch_size=0), r"batch_size=0"),
        (dict(l2=-0.1), r"l2=-0.1"),
        (dict(optimizer="sgd"), r"optimizer='sgd'.*adam, gd, momentum"),
        (dict(optimizer="momentum", beta=1.0), r"beta=1.0"),
        (dict(cost_every=0), r"cost_every=0"),
    ],
)
def test_bad_training_arguments_are_refused(flower, kwargs, match):
    net = Network.create([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match=match):
        fit(net, flower.X_train, flower.Y_train, **{"iterations": 5, **kwargs})
