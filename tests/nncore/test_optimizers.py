"""nncore.optimizers: the table, each optimiser's hyperparameters, and a refused unknown one."""

import numpy as np
import pytest

from nncore import OPTIMIZERS, Network, fit, hyperparameters, load_dataset
from nncore.optimizers import get_optimizer


def test_hyperparameters_come_from_each_optimisers_signature():
    assert hyperparameters("gd") == ()
    assert hyperparameters("momentum") == ("beta",)
    assert hyperparameters("adam") == ("beta1", "beta2", "eps")
    assert set(OPTIMIZERS) == {"gd", "momentum", "adam"}


@pytest.mark.parametrize("name, hyper, words", [
    ("gd", {"beta": 0.9}, ["'gd'", "beta", "none"]),
    ("adam", {"beta": 0.9}, ["'adam'", "beta", "beta1, beta2, eps"]),
    ("nesterov", {}, ["'nesterov'", "adam, gd, momentum"]),
])
def test_an_unknown_optimiser_or_hyperparameter_is_refused_with_a_sentence(name, hyper, words):
    with pytest.raises(ValueError) as err:
        get_optimizer(name, np.zeros(3), 0.1, **hyper)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_fit_passes_the_hyperparameters_on_and_refuses_others():
    data = load_dataset("flower", seed=0, val_fraction=0.2)
    costs = {}
    for beta1 in (0.9, 0.5):
        net = Network.create([2, 4, 1], seed=0)
        costs[beta1] = fit(net, data.X_train, data.Y_train, learning_rate=0.01, iterations=50, optimizer="adam",
                           beta1=beta1).costs
    assert not np.array_equal(costs[0.9], costs[0.5])  # beta1 reached Adam, not dropped
    with pytest.raises(ValueError, match="takes no beta"):
        fit(Network.create([2, 4, 1], seed=0), data.X_train, data.Y_train, optimizer="gd", beta=0.9, iterations=1)
