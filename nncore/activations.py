"""Hidden-layer activations, applied in place, from one table keyed by the names users type.

Each entry builds, for fixed buffers, the list of calls ("ops") that one training step runs:
``forward_ops(Z, tmp)`` overwrites Z with g(Z), and ``backward_ops(A, delta, tmp)`` multiplies
delta in place by g'(Z), computed from the activation A = g(Z) alone, so the pre-activations Z
never need to be kept. A fit builds these lists once and then only calls them: at a sweep's
small sizes, the Python work of a step (views, lookups, function frames) would otherwise cost
about as much as the numpy calls. ``forward(Z)`` is the one-off form used for predictions.

Constants are 0-d arrays of the buffers' dtype: a Python float costs an extra conversion on
every call, and a float64 constant would push float32 buffers through a float64 loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

Op = Callable[[], object]  # one prebuilt call, e.g. partial(np.tanh, Z, Z)


def run(ops: list[Op]) -> None:
    for op in ops:
        op()


def const(value: float, like: np.ndarray) -> np.ndarray:
    """A 0-d array holding `value` in like's dtype."""
    return np.array(value, like.dtype)


@dataclass(frozen=True)
class Activation:
    name: str
    # (Z, tmp) -> ops writing g(Z) into Z; tmp is scratch of Z's shape and dtype
    forward_ops: Callable[[np.ndarray, np.ndarray], list[Op]]
    # (A, delta, tmp) -> ops multiplying delta in place by g'(Z); tmp is scratch of A's shape
    backward_ops: Callable[[np.ndarray, np.ndarray, np.ndarray], list[Op]]

    def forward(self, Z: np.ndarray) -> None:
        """Z -> g(Z) in place, once (building the ops costs a few microseconds)."""
        run(self.forward_ops(Z, np.empty_like(Z)))


# --- sigmoid: g(z) = (1 + tanh(z / 2)) / 2, no exp overflow for large |z|, and fewer calls -------

def sigmoid_ops(Z: np.ndarray, _tmp: np.ndarray | None = None) -> list[Op]:
    half = const(0.5, Z)
    return [partial(np.multiply, Z, half, Z), partial(np.tanh, Z, Z),
            partial(np.multiply, Z, half, Z), partial(np.add, Z, half, Z)]


def sigmoid_(Z: np.ndarray) -> None:
    run(sigmoid_ops(Z))


def _sigmoid_backward(A, delta, tmp):
    # g'(z) = a (1 - a) = a - a^2
    return [partial(np.square, A, tmp), partial(np.subtract, A, tmp, tmp),
            partial(np.multiply, delta, tmp, delta)]


# --- tanh ----------------------------------------------------------------------------------------

def _tanh_forward(Z, _tmp):
    return [partial(np.tanh, Z, Z)]


def _tanh_backward(A, delta, tmp):
    # g'(z) = 1 - a^2
    return [partial(np.square, A, tmp), partial(np.subtract, const(1.0, A), tmp, tmp),
            partial(np.multiply, delta, tmp, delta)]


# --- relu ----------------------------------------------------------------------------------------
# np.maximum against a 0-d zero takes a slow non-SIMD path (several times slower than against an array of
# zeros), so the zeros get the buffer's full shape. (maximum's out must be a keyword.)

def _relu_forward(Z, _tmp):
    return [partial(np.maximum, Z, np.zeros_like(Z), out=Z)]


def _relu_backward(A, delta, tmp):
    # g'(z) = 1 where z > 0 (equivalently a > 0), else 0
    return [partial(np.greater, A, np.zeros_like(A), tmp), partial(np.multiply, delta, tmp, delta)]


def leaky_relu(slope: float) -> Activation:
    """Leaky ReLU max(z, slope * z), for 0 <= slope < 1."""
    if not 0.0 <= slope < 1.0:
        raise ValueError(f"leaky_slope={slope!r} is not allowed: it must be in [0, 1).")

    def forward_ops(Z, tmp):
        return [partial(np.multiply, Z, const(slope, Z), tmp), partial(np.maximum, Z, tmp, out=Z)]

    def backward_ops(A, delta, tmp):
        # g'(z) = 1 where z > 0 (exactly where a > 0, since slope >= 0), else slope
        return [partial(np.greater, A, np.zeros_like(A), tmp),
                partial(np.multiply, tmp, const(1.0 - slope, A), tmp),
                partial(np.add, tmp, const(slope, A), tmp), partial(np.multiply, delta, tmp, delta)]

    return Activation("leaky_relu", forward_ops, backward_ops)


# name -> factory taking the leaky slope (ignored by the others)
ACTIVATIONS: dict[str, Callable[[float], Activation]] = {
    "sigmoid": lambda _slope: Activation("sigmoid", sigmoid_ops, _sigmoid_backward),
    "tanh": lambda _slope: Activation("tanh", _tanh_forward, _tanh_backward),
    "relu": lambda _slope: Activation("relu", _relu_forward, _relu_backward),
    "leaky_relu": leaky_relu,
}


def get_activation(name: str, leaky_slope: float = 0.01) -> Activation:
    if name not in ACTIVATIONS:
        raise ValueError(
            f"activation={name!r} is not known: choose one of {', '.join(sorted(ACTIVATIONS))}."
        )
    return ACTIVATIONS[name](leaky_slope)
