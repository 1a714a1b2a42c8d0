"""Training loop: full-batch or mini-batch gradient descent with gd, momentum or adam, and L2.

One iteration is one pass over the training set: a single step with batch_size=None (the
course's default), ceil(m / batch_size) steps on reshuffled mini-batches otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from nncore.network import Network, Workspace
from nncore.optimizers import get_optimizer

# callback(iteration, cost) -> truthy to stop training (the sweeps layer prunes through it)
Callback = Callable[[int, float], Optional[bool]]


class Diverged(ArithmeticError):
    """The cost became NaN or inf: the learning rate is almost always too large."""

    def __init__(self, iteration: int, cost: float, costs: np.ndarray, learning_rate: float):
        self.iteration, self.cost, self.costs = iteration, cost, costs
        super().__init__(
            f"diverged at iteration {iteration}: the cost became {cost} with learning_rate={learning_rate:g}; "
            "try a smaller learning rate."
        )


@dataclass
class FitResult:
    costs: np.ndarray  # (k,) the cost at each recorded iteration
    cost_iterations: np.ndarray  # (k,) which iterations: 0, cost_every, 2 * cost_every, ...
    iterations_run: int
    stopped_early: bool  # the callback asked to stop
    seconds: float


def _check_positive(name: str, value, integer: bool = False) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) if integer else \
        isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        kind = "a positive integer" if integer else "a positive finite number"
        raise ValueError(f"{name}={value!r} is not allowed: it must be {kind}.")


def fit(net: Network, X: np.ndarray, Y: np.ndarray, learning_rate: float = 1.2,
        iterations: int = 10000, optimizer: str = "gd", batch_size: int | None = None,
        l2: float = 0.0, seed: int = 0, callback: Callback | None = None, cost_every: int = 1,
        beta: float = 0.9, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> FitResult:
    """Trains `net` in place on X (n_x, m), Y (n_y, m); returns the cost curve.

    The cost (cross-entropy + l2 / (2m) sum ||W||^2) is computed every `cost_every`
    iterations, before that iteration's update; computing it costs about 10-20% of a step.
    With mini-batches the recorded cost is the epoch's mean of the batch costs.
    """
    _check_positive("learning_rate", learning_rate)
    _check_positive("iterations", iterations, integer=True)
    _check_positive("cost_every", cost_every, integer=True)
    if batch_size is not None:
        _check_positive("batch_size", batch_size, integer=True)
    if not (isinstance(l2, (int, float, np.number)) and math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2={l2!r} is not allowed: it must be a finite number >= 0.")
    X, Y = net.check_data(X, Y)
    X, Y = X.astype(net.dtype, copy=False), Y.astype(net.dtype, copy=False)
    m = X.shape[1]
    if m == 0:
        raise ValueError("X has no samples (0 columns); training needs at least one.")
    opt = get_optimizer(optimizer, net.theta, learning_rate, beta=beta, beta1=beta1, beta2=beta2, eps=eps)
    loop = _full_batch if batch_size is None or batch_size >= m else _mini_batch
    n_costs = (iterations - 1) // cost_every + 1
    costs = np.empty(n_costs)
    start = time.perf_counter()
    # Overflow is caught as a non-finite cost (Diverged), not reported as warnings on the way.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        done, stopped = loop(net, X, Y, opt, iterations, batch_size, l2, np.random.default_rng(seed),
                             callback, cost_every, costs, learning_rate)
        if not stopped and not np.isfinite(net.theta).all():
            raise Diverged(iterations - 1, float("nan"), costs, learning_rate)
    k = (done - 1) // cost_every + 1 if done else 0
    return FitResult(costs[:k].copy(), np.arange(k) * cost_every, done, stopped,
                     time.perf_counter() - start)


def _record(it, cost, costs, cost_every, callback, learning_rate) -> bool:
    """Stores the cost of iteration `it`; True when the callback asks to stop."""
    k = it // cost_every
    costs[k] = cost
    if not math.isfinite(cost):
        raise Diverged(it, cost, costs[:k + 1].copy(), learning_rate)
    return bool(callback is not None and callback(it, cost))


def _weight_decay(net: Network, l2: float, m: int, grad_scale: float) -> np.ndarray | None:
    """grad_scale * l2 / m per weight, 0 per bias: the L2 gradient is this times theta."""
    return None if l2 == 0 else net.weight_mask * (grad_scale * l2 / m)


def _full_batch(net, X, Y, opt, iterations, _bs, l2, _rng, callback, cost_every, costs, lr):
    m = X.shape[1]
    ws = Workspace(net.sizes, m, net.dtype)
    ws.load(X)
    grad = np.empty_like(net.theta)
    gblocks = net.blocks(grad)
    scale = opt.grad_scale / m  # folded once into the output error
    offset = net.out.offset(Y, scale)  # (n_y, m), Y is fixed: computed once
    decay, dtmp = _weight_decay(net, l2, m, opt.grad_scale), np.empty_like(grad)
    l2_over_2m = l2 / (2 * m)
    theta, Wb, g, out = net.theta, net.Wb, net.g, net.out
    for it in range(iterations):
        ws.forward(Wb, g)
        if it % cost_every == 0:
            cost = out.cost_sum(ws.Z, Y) / m
            if l2:
                cost += l2_over_2m * net.l2_penalty()
            if _record(it, cost, costs, cost_every, callback, lr):
                return it + 1, True
        ws.backward(Wb, gblocks, g, out, offset, scale)
        if decay is not None:
            np.multiply(theta, decay, out=dtmp)
            np.add(grad, dtmp, out=grad)
        opt.step(theta, grad)
    return iterations, False


def _mini_batch(net, X, Y, opt, iterations, batch_size, l2, rng, callback, cost_every, costs, lr):
    m = X.shape[1]
    n_batches = -(-m // batch_size)
    last = m - (n_batches - 1) * batch_size
    spaces = {n: Workspace(net.sizes, n, net.dtype) for n in {batch_size, last}}
    Ybufs = {n: np.empty((Y.shape[0], n), net.dtype) for n in spaces}
    grad = np.empty_like(net.theta)
    gblocks = net.blocks(grad)
    # L2 uses the training-set m, so each batch's step follows the epoch cost's gradient
    decay, dtmp = _weight_decay(net, l2, m, opt.grad_scale), np.empty_like(grad)
    theta, Wb, g, out = net.theta, net.Wb, net.g, net.out
    for it in range(iterations):
        record = it % cost_every == 0
        total = 0.0
        perm = rng.permutation(m)  # reshuffled every epoch
        for k in range(n_batches):
            idx = perm[k * batch_size:(k + 1) * batch_size]
            n = idx.size
            ws, Yb = spaces[n], Ybufs[n]
            np.take(X, idx, axis=1, out=ws.A[0][:-1])  # (n_x, n)
            np.take(Y, idx, axis=1, out=Yb)  # (n_y, n)
            ws.forward(Wb, g)
            if record:
                total += out.cost_sum(ws.Z, Yb) + (n * l2 / (2 * m)) * net.l2_penalty()
            scale = opt.grad_scale / n
            ws.backward(Wb, gblocks, g, out, out.offset(Yb, scale), scale)
            if decay is not None:
                np.multiply(theta, decay, out=dtmp)
                np.add(grad, dtmp, out=grad)
            opt.step(theta, grad)
        if record and _record(it, total / m, costs, cost_every, callback, lr):
            return it + 1, True
    return iterations, False
