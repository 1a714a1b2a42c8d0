"""Training loop: full-batch or mini-batch gradient descent with gd, momentum or adam, and L2.

One iteration is one pass over the training set: a single step with batch_size=None (the
course's default), ceil(m / batch_size) steps on reshuffled mini-batches otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

import numpy as np

from nncore.activations import Op, run
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
        **hyper: float) -> FitResult:
    """Trains `net` in place on X (n_x, m), Y (n_y, m); returns the cost curve.

    `hyper` are the optimiser's own hyperparameters (momentum: beta; adam: beta1, beta2, eps;
    see nncore.optimizers); one it does not take is refused with a ValueError.

    The cost (cross-entropy + l2 / (2m) sum ||W||^2) is computed every `cost_every`
    iterations, before that iteration's update; computing it costs a fraction of a step (benchmarks/bench_nncore.py).
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
    # C order: columns are gathered per mini-batch, an order of magnitude slower from an F-ordered array
    X, Y = np.ascontiguousarray(X, dtype=net.dtype), np.ascontiguousarray(Y, dtype=net.dtype)
    m = X.shape[1]
    if m == 0:
        raise ValueError("X has no samples (0 columns); training needs at least one.")
    opt = get_optimizer(optimizer, net.theta, learning_rate, **hyper)
    full = batch_size is None or batch_size >= m
    # the mini-batch loop alone draws the reshuffles: its generator comes from the seed
    extra = () if full else (batch_size, np.random.default_rng(seed))
    curve: list[float] = []  # the recorded costs (a list append is cheaper than an array store)
    start = time.perf_counter()
    # Overflow is caught as a non-finite cost (Diverged), not reported as warnings on the way.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        done, stopped = (_full_batch if full else _mini_batch)(net, X, Y, opt, iterations, l2, callback,
                                                              cost_every, curve, learning_rate, *extra)
        if not stopped and not np.isfinite(net.theta).all():
            raise Diverged(iterations - 1, float("nan"), np.array(curve), learning_rate)
    return FitResult(np.array(curve, dtype=np.float64), np.arange(len(curve)) * cost_every, done,
                     stopped, time.perf_counter() - start)


def _record(curve: list[float], it: int, cost: float, callback, learning_rate) -> bool:
    """Appends the cost of iteration `it`; True when the callback asks to stop."""
    curve.append(cost)
    if not math.isfinite(cost):
        raise Diverged(it, cost, np.array(curve), learning_rate)
    return bool(callback is not None and callback(it, cost))


class _Step:
    """One gradient step on a batch of n columns, as prebuilt calls on buffers allocated once.

    forward: A[0] -> Z;  head.error (or head.costed, then head.cost()): Z, Y -> dZ;
    update: dZ -> grad -> weight decay -> the optimiser's step on theta. Each list runs in one
    loop of calls: at a sweep's small sizes, Python-level work per step would cost as much as the math.
    """

    def __init__(self, net: Network, n: int, opt, grad: np.ndarray, decay: list[Op]):
        ws = Workspace(net.sizes, n, net.dtype)
        self.ws, self.X, self.Y = ws, ws.X, ws.Y  # X (n_x, n), Y (n_y, n): fill, then run head.prepare
        self.head = net.out.head(ws.Z, ws.Y, ws.dZ, opt.grad_scale / n)  # scale folded into dZ once
        self.forward = ws.forward_ops(net.Wb, net.g)
        self.update = ws.backward_ops(net.Wb, net.blocks(grad), net.g) + decay + opt.ops(net.theta, grad)
        self.plain = self.forward + self.head.error + self.update  # a whole step, cost not computed
        self.costed = self.forward + self.head.costed  # then head.cost(), then update


def _decay_ops(net: Network, l2: float, m: int, grad_scale: float, grad: np.ndarray) -> list[Op]:
    """grad += grad_scale * l2 / m * theta on the weights (not the biases): the L2 gradient."""
    if l2 == 0:
        return []
    decay, tmp = net.weight_mask * (grad_scale * l2 / m), np.empty_like(grad)
    return [partial(np.multiply, net.theta, decay, tmp), partial(np.add, grad, tmp, grad)]


def _full_batch(net, X, Y, opt, iterations, l2, callback, cost_every, curve, lr):
    m = X.shape[1]
    grad = np.empty_like(net.theta)
    step = _Step(net, m, opt, grad, _decay_ops(net, l2, m, opt.grad_scale, grad))
    step.ws.load(X, Y)
    run(step.head.prepare)  # Y is fixed: what the head derives from it is computed once
    plain, costed, cost_sum, update = step.plain, step.costed, step.head.cost, step.update
    l2_over_2m = l2 / (2 * m)
    append, isfinite = curve.append, math.isfinite
    for it in range(iterations):
        if it % cost_every:
            for op in plain:
                op()
            continue
        for op in costed:
            op()
        cost = cost_sum() / m
        if l2:
            cost += l2_over_2m * net.l2_penalty()
        if isfinite(cost) and callback is None:
            append(cost)  # the common case, kept cheap: with cost_every=1 this runs every step
        elif _record(curve, it, cost, callback, lr):
            return it + 1, True
        for op in update:
            op()
    return iterations, False


def _mini_batch(net, X, Y, opt, iterations, l2, callback, cost_every, curve, lr, batch_size, rng):
    m = X.shape[1]
    n_batches = -(-m // batch_size)
    last = m - (n_batches - 1) * batch_size
    grad = np.empty_like(net.theta)
    # L2 uses the training-set m, so each batch's step follows the epoch cost's gradient
    decay = _decay_ops(net, l2, m, opt.grad_scale, grad)
    steps = {n: _Step(net, n, opt, grad, decay) for n in {batch_size, last}}
    batch_l2 = l2 / (2 * m)  # a batch of n adds n * batch_l2 * penalty: the epoch's L2 term, pro rata
    for it in range(iterations):
        record = it % cost_every == 0
        total = 0.0
        perm = rng.permutation(m)  # reshuffled every epoch
        for k in range(n_batches):
            idx = perm[k * batch_size:(k + 1) * batch_size]
            step = steps[idx.size]
            # mode "clip": the indices are valid anyway, and "raise" checks them through a buffer
            np.take(X, idx, 1, step.X, "clip")  # (n_x, n)
            np.take(Y, idx, 1, step.Y, "clip")  # (n_y, n)
            run(step.head.prepare)
            if record:
                run(step.costed)
                total += step.head.cost()
                if l2:
                    total += idx.size * batch_l2 * net.l2_penalty()
                run(step.update)
            else:
                run(step.plain)
        if record and _record(curve, it, total / m, callback, lr):
            return it + 1, True
    return iterations, False
