"""Output layers with their cross-entropy costs, computed stably from the logits Z[L].

For both pairs the error at the logits is the same: dZ[L] = A[L] - Y.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from nncore.activations import sigmoid_


@dataclass(frozen=True)
class Output:
    name: str
    # Z -> A = g(Z), in place.
    forward: Callable[[np.ndarray], None]
    # (Z, Y) -> sum over samples of the cross-entropy, from the logits: never log(0), never exp overflow.
    cost_sum: Callable[[np.ndarray, np.ndarray], float]
    # (Y, scale) -> offset, so that error(Z, offset, scale, out) writes out = (A - Y) * scale.
    # The offset depends only on Y, so a full-batch loop computes it once.
    offset: Callable[[np.ndarray, float], np.ndarray]
    error: Callable[[np.ndarray, np.ndarray, float, np.ndarray], None]
    valid_units: Callable[[int], bool]
    units_rule: str


# --- sigmoid + binary cross-entropy -----------------------------------------------------------

def _bce_sum(Z: np.ndarray, Y: np.ndarray) -> float:
    # -[y log s(z) + (1 - y) log(1 - s(z))] = log(1 + e^z) - y z
    return float(np.logaddexp(0.0, Z).sum() - np.vdot(Y, Z))


def _sigmoid_offset(Y: np.ndarray, scale: float) -> np.ndarray:
    return (0.5 - Y) * scale  # (1, m)


def _sigmoid_error(Z: np.ndarray, offset: np.ndarray, scale: float, out: np.ndarray) -> None:
    # (s(z) - y) * scale = tanh(z / 2) * scale / 2 + (1/2 - y) * scale: four calls in all
    np.multiply(Z, 0.5, out=out)
    np.tanh(out, out=out)
    np.multiply(out, 0.5 * scale, out=out)
    np.add(out, offset, out=out)


# --- softmax + categorical cross-entropy ------------------------------------------------------

def _softmax_(Z: np.ndarray) -> None:
    np.subtract(Z, Z.max(axis=0, keepdims=True), out=Z)  # shift: exp never overflows
    np.exp(Z, out=Z)
    np.divide(Z, Z.sum(axis=0, keepdims=True), out=Z)


def _cce_sum(Z: np.ndarray, Y: np.ndarray) -> float:
    # -sum_k y_k log softmax(z)_k = logsumexp(z) - sum_k y_k z_k   (columns of Y sum to 1)
    zmax = Z.max(axis=0, keepdims=True)  # (1, m)
    lse = np.log(np.exp(Z - zmax).sum(axis=0)) + zmax[0]  # (m,)
    return float(lse.sum() - np.vdot(Y, Z))


def _softmax_offset(Y: np.ndarray, scale: float) -> np.ndarray:
    return Y * -scale  # (n_y, m)


def _softmax_error(Z: np.ndarray, offset: np.ndarray, scale: float, out: np.ndarray) -> None:
    np.copyto(out, Z)
    _softmax_(out)
    np.multiply(out, scale, out=out)
    np.add(out, offset, out=out)


OUTPUTS: dict[str, Output] = {
    "sigmoid": Output("sigmoid", sigmoid_, _bce_sum, _sigmoid_offset, _sigmoid_error,
                      lambda n: n == 1, "exactly 1 output unit"),
    "softmax": Output("softmax", _softmax_, _cce_sum, _softmax_offset, _softmax_error,
                      lambda n: n >= 2, "at least 2 output units"),
}


def get_output(name: str, n_out: int) -> Output:
    """The output layer called `name`; "auto" picks sigmoid for 1 unit, softmax for more."""
    if name == "auto":
        name = "sigmoid" if n_out == 1 else "softmax"
    if name not in OUTPUTS:
        known = ", ".join(["auto", *sorted(OUTPUTS)])
        raise ValueError(f"output={name!r} is not known: choose one of {known}.")
    out = OUTPUTS[name]
    if not out.valid_units(n_out):
        raise ValueError(
            f"output={name!r} does not fit a last layer of {n_out} units: it needs {out.units_rule}."
        )
    return out
