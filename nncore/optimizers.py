"""Update rules on the flat parameter vector: one vector operation updates every layer.

Each optimiser states `grad_scale`, a constant the training loop folds into the output
error (together with 1/m), so the backward pass already delivers the gradient times it
and the update needs no extra multiplication. `ops(theta, grad)` gives the update as
prebuilt calls on those two fixed buffers (see nncore.activations), run once per step.
"""

from __future__ import annotations

import inspect
from functools import partial

import numpy as np

from nncore.activations import Op, const


class GD:
    """theta <- theta - lr * grad"""

    def __init__(self, theta: np.ndarray, learning_rate: float):
        self.grad_scale = learning_rate  # grad arrives as lr * dJ/dtheta

    def ops(self, theta: np.ndarray, grad: np.ndarray) -> list[Op]:
        return [partial(np.subtract, theta, grad, theta)]


class Momentum:
    """v <- beta v + (1 - beta) grad;  theta <- theta - lr v   (v kept pre-multiplied by lr)"""

    def __init__(self, theta: np.ndarray, learning_rate: float, beta: float = 0.9):
        check("beta", beta)
        self.beta = beta
        self.grad_scale = learning_rate * (1.0 - beta)
        self.v = np.zeros_like(theta)

    def ops(self, theta: np.ndarray, grad: np.ndarray) -> list[Op]:
        v = self.v
        return [partial(np.multiply, v, const(self.beta, v), v), partial(np.add, v, grad, v),
                partial(np.subtract, theta, v, theta)]


class Adam:
    """Kingma & Ba 2015, with bias correction; eps added outside the square root, as in the course."""

    def __init__(self, theta: np.ndarray, learning_rate: float, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8):
        for name, value in (("beta1", beta1), ("beta2", beta2), ("eps", eps)):
            check(name, value)
        self.lr, self.beta1, self.beta2, self.eps = learning_rate, beta1, beta2, eps
        self.grad_scale = 1.0  # Adam is not scale-free through eps: keep the true gradient
        self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.tmp = np.empty_like(theta)
        self.t = 0

    def ops(self, theta: np.ndarray, grad: np.ndarray) -> list[Op]:
        return [partial(self.step, theta, grad)]  # its constants change with t

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        m, v, tmp = self.m, self.v, self.tmp
        np.multiply(m, self.beta1, out=m)
        np.multiply(grad, 1.0 - self.beta1, out=tmp)
        np.add(m, tmp, out=m)  # m = b1 m + (1 - b1) g
        np.multiply(v, self.beta2, out=v)
        np.multiply(grad, grad, out=tmp)
        np.multiply(tmp, 1.0 - self.beta2, out=tmp)
        np.add(v, tmp, out=v)  # v = b2 v + (1 - b2) g^2
        # theta -= lr_t * m / (sqrt(v / (1 - b2^t)) + eps), lr_t = lr / (1 - b1^t)
        np.multiply(v, 1.0 / (1.0 - self.beta2 ** self.t), out=tmp)
        np.sqrt(tmp, out=tmp)
        np.add(tmp, self.eps, out=tmp)
        np.divide(m, tmp, out=tmp)
        np.multiply(tmp, self.lr / (1.0 - self.beta1 ** self.t), out=tmp)
        np.subtract(theta, tmp, out=theta)


# What each hyperparameter may be: (low, high, closed), as an interval (None: unbounded; closed:
# "left", "right", "both" or "neither" bound included). The optimisers check their arguments
# against it, and sweeps checks a config's values and search space against it before any trial.
LIMITS = {"beta": (0.0, 1.0, "left"), "beta1": (0.0, 1.0, "left"), "beta2": (0.0, 1.0, "left"),
          "eps": (0.0, None, "neither")}


def check(name: str, value: float) -> None:
    """Raises ValueError unless `value` is in hyperparameter `name`'s interval (LIMITS)."""
    low, high, closed = LIMITS[name]
    left, right = closed in ("left", "both"), closed in ("right", "both")
    if not ((value > low or (left and value == low)) and (high is None or value < high or (right and value == high))):
        allowed = (f"{'>=' if left else '>'} {low:g}" if high is None else
                   f"in {'[' if left else '('}{low:g}, {high:g}{']' if right else ')'}")
        raise ValueError(f"{name}={value!r} is not allowed: it must be {allowed}.")


# A new optimiser: its class above (hyperparameters with defaults after learning_rate, each in
# LIMITS) and its entry here; sweeps gives each of its hyperparameters a config field
# train.optimizers.<name>.<hyperparameter> from its signature.
OPTIMIZERS = {"gd": GD, "momentum": Momentum, "adam": Adam}


def hyperparameters(name: str) -> tuple[str, ...]:
    """The keyword arguments optimiser `name` takes after (theta, learning_rate)."""
    return tuple(inspect.signature(OPTIMIZERS[name]).parameters)[2:]


def defaults(name: str) -> dict[str, float]:
    """Each hyperparameter of optimiser `name` with its default, from its signature."""
    params = inspect.signature(OPTIMIZERS[name]).parameters
    return {h: params[h].default for h in hyperparameters(name)}


def get_optimizer(name: str, theta: np.ndarray, learning_rate: float, **hyper: float):
    """The optimiser called `name`; a hyperparameter it does not take is refused, not dropped."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer={name!r} is not known: choose one of {', '.join(sorted(OPTIMIZERS))}.")
    takes = hyperparameters(name)
    unknown = sorted(set(hyper) - set(takes))
    if unknown:
        raise ValueError(f"optimizer={name!r} takes no {', '.join(unknown)}: its hyperparameters are "
                         f"{', '.join(takes) or 'none (learning_rate only)'}.")
    return OPTIMIZERS[name](theta, learning_rate, **hyper)
