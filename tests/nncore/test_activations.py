"""nncore.activations: each entry of the table against its formula, and its derivative (computed
from the activation alone) against central differences."""

import numpy as np
import pytest

from nncore.activations import ACTIVATIONS, get_activation, run

FORMULAS = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_is_the_formula_and_backward_its_derivative(name):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 50)) * 3
    z[np.abs(z) < 1e-3] = 0.5  # away from relu's kink, where the derivative is not defined
    act = get_activation(name)
    a = z.copy()
    act.forward(a)
    np.testing.assert_allclose(a, FORMULAS[name](z), rtol=1e-12, atol=1e-15)
    delta, tmp = np.ones_like(z), np.empty_like(z)
    run(act.backward_ops(a, delta, tmp))  # delta *= g'(z), from a = g(z)
    h = 1e-6
    numeric = (FORMULAS[name](z + h) - FORMULAS[name](z - h)) / (2 * h)
    np.testing.assert_allclose(delta, numeric, rtol=1e-6, atol=1e-9)


def test_an_unknown_activation_or_slope_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="leaky_relu, relu, sigmoid, tanh"):
        get_activation("swish")
    with pytest.raises(ValueError, match="leaky_slope=1.5"):
        get_activation("leaky_relu", leaky_slope=1.5)
