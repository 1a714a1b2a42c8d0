"""Hidden-layer activations, applied in place, from one table keyed by the names users type.

Each entry has a forward ``f(Z)`` that overwrites Z with g(Z), and a backward
``d(A, delta)`` that multiplies delta in place by g'(Z), computed from the
activation A = g(Z) alone, so the pre-activations Z never need to be kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Activation:
    name: str
    forward: Callable[[np.ndarray], None]  # Z -> g(Z), in place
    # (A, delta, tmp) -> delta * g'(Z), in place; tmp is scratch of A's shape and dtype
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def sigmoid_(Z: np.ndarray) -> None:
    # sigmoid(z) = (1 + tanh(z / 2)) / 2: no exp overflow for large |z|, and fewer calls.
    np.multiply(Z, 0.5, out=Z)
    np.tanh(Z, out=Z)
    np.multiply(Z, 0.5, out=Z)
    np.add(Z, 0.5, out=Z)


def sigmoid_backward_(A: np.ndarray, delta: np.ndarray, tmp: np.ndarray) -> None:
    # g'(z) = a (1 - a) = a - a^2
    np.multiply(A, A, out=tmp)
    np.subtract(A, tmp, out=tmp)
    np.multiply(delta, tmp, out=delta)


def tanh_(Z: np.ndarray) -> None:
    np.tanh(Z, out=Z)


def tanh_backward_(A: np.ndarray, delta: np.ndarray, tmp: np.ndarray) -> None:
    # g'(z) = 1 - a^2
    np.multiply(A, A, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    np.multiply(delta, tmp, out=delta)


def relu_(Z: np.ndarray) -> None:
    np.maximum(Z, 0.0, out=Z)


def relu_backward_(A: np.ndarray, delta: np.ndarray, tmp: np.ndarray) -> None:
    # g'(z) = 1 where z > 0 (equivalently a > 0), else 0
    np.greater(A, 0.0, out=tmp)
    np.multiply(delta, tmp, out=delta)


def leaky_relu(slope: float) -> Activation:
    """Leaky ReLU max(z, slope * z), for 0 <= slope < 1."""
    if not 0.0 <= slope < 1.0:
        raise ValueError(f"leaky_slope={slope!r} is not allowed: it must be in [0, 1).")

    def forward(Z: np.ndarray) -> None:
        np.maximum(Z, Z * slope, out=Z)

    def backward(A: np.ndarray, delta: np.ndarray, tmp: np.ndarray) -> None:
        # g'(z) = 1 where z > 0 (exactly where a > 0, since slope >= 0), else slope
        np.greater(A, 0.0, out=tmp)
        np.multiply(tmp, 1.0 - slope, out=tmp)
        np.add(tmp, slope, out=tmp)
        np.multiply(delta, tmp, out=delta)

    return Activation("leaky_relu", forward, backward)


# name -> factory taking the leaky slope (ignored by the others)
ACTIVATIONS: dict[str, Callable[[float], Activation]] = {
    "sigmoid": lambda _slope: Activation("sigmoid", sigmoid_, sigmoid_backward_),
    "tanh": lambda _slope: Activation("tanh", tanh_, tanh_backward_),
    "relu": lambda _slope: Activation("relu", relu_, relu_backward_),
    "leaky_relu": leaky_relu,
}


def get_activation(name: str, leaky_slope: float = 0.01) -> Activation:
    if name not in ACTIVATIONS:
        raise ValueError(
            f"activation={name!r} is not known: choose one of {', '.join(sorted(ACTIVATIONS))}."
        )
    return ACTIVATIONS[name](leaky_slope)
