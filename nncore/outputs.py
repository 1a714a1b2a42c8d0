"""Output layers with their cross-entropy costs, computed stably from the logits Z[L].

For both pairs the error at the logits is the same: dZ[L] = A[L] - Y.

Each output has the exact cost `cost_sum(Z, Y)` (what `Network.cost` reports) and a training
`head(Z, Y, dZ, scale)`: prebuilt calls on a fit's fixed buffers that write the scaled error
dZ = (A - Y) * scale and, when the loop records the cost, reuse the error's intermediates for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from nncore.activations import Op, const, sigmoid_


@dataclass(frozen=True)
class Output:
    name: str
    # Z -> A = g(Z), in place.
    forward: Callable[[np.ndarray], None]
    # (Z, Y) -> sum over samples of the cross-entropy, from the logits: never log(0), never exp overflow.
    cost_sum: Callable[[np.ndarray, np.ndarray], float]
    # (Z, Y, dZ, scale) -> the head on these buffers: .prepare (ops to run whenever Y's content
    # changes), .error (ops writing dZ = (A - Y) * scale), .costed (the error ops plus those
    # preparing the cost), .cost() (after .costed: cost_sum(Z, Y) from what they left).
    head: Callable[[np.ndarray, np.ndarray, np.ndarray, float], object]
    valid_units: Callable[[int], bool]
    units_rule: str


# --- sigmoid + binary cross-entropy -----------------------------------------------------------

def _bce_sum(Z: np.ndarray, Y: np.ndarray) -> float:
    # -[y log s(z) + (1 - y) log(1 - s(z))] = log(1 + e^(-s z)), s = 2y - 1: unlike the equal
    # log(1 + e^z) - y z, no cancellation when a sample is confidently right.
    return float(np.logaddexp(0.0, (1.0 - 2.0 * Y) * Z).sum())


# Allowed relative error of the fast cost below. float64: far below anything a cost curve shows;
# float32: a few hundred ulps, what float32 sums of hundreds of terms reach anyway.
FAST_COST_RTOL = {np.dtype(np.float64): 1e-11, np.dtype(np.float32): 1e-4}
LOG2 = math.log(2.0)


class SigmoidHead:
    """The error and the cost from one tanh: u = tanh(s z / 2) with s = 2y - 1 = +-1.

    u = s tanh(z / 2) = s (2a - 1), so  a - y = s (u - 1) / 2,  and the probability given to the
    true label is p = (1 + u) / 2: a sample's cost -log p is log 2 - log1p(u), one more call.
    Precision: u is within ~1 ulp, so each sample's cost is within ~eps / p of the exact one (the
    1 + u cancels when a sample is confidently wrong) plus ~eps from the log 2 - ..., and the sum
    within ~3 eps m exp(worst cost). When that bound is not below FAST_COST_RTOL times the cost
    (huge wrong logits, or a cost so near 0 that the cancellation matters), the exact form is used.
    """

    def __init__(self, Z: np.ndarray, Y: np.ndarray, dZ: np.ndarray, scale: float):
        self.Z, self.Y = Z, Y  # (1, m)
        s2 = np.empty_like(Y)  # (1, m): s / 2 = y - 1/2
        ss = np.empty_like(Y)  # (1, m): s scale / 2
        u = np.empty_like(Z)  # (1, m): u, then log1p(u) for the cost
        self.prepare: list[Op] = [partial(np.subtract, Y, const(0.5, Y), s2),
                                  partial(np.multiply, s2, const(scale, Y), ss)]
        self.error: list[Op] = [
            partial(np.multiply, Z, s2, u), partial(np.tanh, u, u),  # s z / 2 is exact
            partial(np.subtract, u, const(1.0, Z), dZ),  # exact when u is near 1 (Sterbenz)
            partial(np.multiply, dZ, ss, dZ),  # s (u - 1) scale / 2 = (a - y) scale
        ]
        self.sum_log1p = np.empty((1, 1), Z.dtype)
        self.costed: list[Op] = self.error + [
            partial(np.log1p, u, u),  # log 2 - the cost of each sample
            # the sum as a BLAS product with a column of ones: cheaper than u.sum() at these sizes
            partial(np.dot, u, np.ones((Z.size, 1), Z.dtype), self.sum_log1p),
        ]
        self.u_flat, self.m_log2 = u.reshape(-1), Z.size * LOG2
        self.bound = 3 * np.finfo(Z.dtype).eps * Z.size / FAST_COST_RTOL[Z.dtype]

    def cost(self) -> float:
        u = self.u_flat
        total = self.m_log2 - self.sum_log1p.item()
        worst = LOG2 - u.item(u.argmin())  # the largest cost of a sample; argmin: cheaper than min
        # `worst < 700` keeps exp finite; NaN fails both tests and goes to the exact form too
        if worst < 700.0 and self.bound * math.exp(worst) <= total:
            return total
        return _bce_sum(self.Z, self.Y)


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


class SoftmaxHead:
    """softmax(z) - y, scaled; the cost reuses the column max and the sum of exponentials."""

    def __init__(self, Z: np.ndarray, Y: np.ndarray, dZ: np.ndarray, scale: float):
        m = Z.shape[1]
        self.Z, self.Y = Z, Y  # (n_y, m)
        self.zmax = np.empty((1, m), Z.dtype)  # column max: the shift keeps exp from overflowing
        self.sumexp = np.empty((1, m), Z.dtype)  # sum_k e^(z_k - zmax)
        r = np.empty((1, m), Z.dtype)
        offset = np.empty_like(Y)  # (n_y, m): y * scale
        self.prepare: list[Op] = [partial(np.multiply, Y, const(scale, Z), offset)]
        self.error: list[Op] = [
            partial(np.maximum.reduce, Z, 0, None, self.zmax[0]),
            partial(np.subtract, Z, self.zmax, dZ), partial(np.exp, dZ, dZ),
            partial(np.add.reduce, dZ, 0, None, self.sumexp[0]),
            partial(np.divide, const(scale, Z), self.sumexp, r),
            partial(np.multiply, dZ, r, dZ),  # softmax(z) * scale
            partial(np.subtract, dZ, offset, dZ),  # (a - y) * scale
        ]
        lse = np.empty((1, m), Z.dtype)
        self.sum_lse = np.empty((1, 1), Z.dtype)
        self.costed: list[Op] = self.error + [
            partial(np.log, self.sumexp, lse),
            partial(np.add, lse, self.zmax, lse),  # (1, m) logsumexp of each column
            partial(np.dot, lse, np.ones((m, 1), Z.dtype), self.sum_lse),  # its sum, by BLAS
        ]

    def cost(self) -> float:
        return self.sum_lse.item() - float(np.vdot(self.Y, self.Z))


OUTPUTS: dict[str, Output] = {
    "sigmoid": Output("sigmoid", sigmoid_, _bce_sum, SigmoidHead,
                      lambda n: n == 1, "exactly 1 output unit"),
    "softmax": Output("softmax", _softmax_, _cce_sum, SoftmaxHead,
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
