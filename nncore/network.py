"""The L-layer network of the course, samples as columns.

    Z[l] = W[l] A[l-1] + b[l],  A[l] = g(Z[l]),  A[0] = X            X: (n_x, m)
    dZ[L] = A[L] - Y;  dW[l] = dZ[l] A[l-1].T / m;  db[l] = sum(dZ[l], axis=1) / m
    dA[l-1] = W[l].T dZ[l];  dZ[l-1] = dA[l-1] * g'(Z[l-1])

Layout, for speed at the small sizes a sweep trains thousands of times: every parameter lives
in one flat vector `theta`, layer l's [W[l] | b[l]] being a contiguous (n_l, n_{l-1} + 1) block
of it. Activations carry a last row of ones, so one GEMM gives W A + b and one GEMM gives
[dW | db], and one vector operation updates every layer at once.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np

from nncore.activations import Activation, Op, get_activation, run
from nncore.initializers import get_initializer
from nncore.outputs import get_output

DTYPES = {"float64": np.float64, "float32": np.float32}


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    try:
        ok = len(sizes) >= 2 and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in sizes
        )
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(
            f"layer sizes={sizes!r} are not allowed: give a list of at least 2 positive integers, "
            "input size first and output size last, e.g. [2, 4, 1]."
        )
    return [int(n) for n in sizes]


def _dtype(name: str) -> np.dtype:
    if name not in DTYPES:
        raise ValueError(f"dtype={name!r} is not known: choose one of {', '.join(sorted(DTYPES))}.")
    return np.dtype(DTYPES[name])


class Workspace:
    """Buffers for one batch size m, allocated once and reused by every step of a fit, and the
    forward and backward passes over them as prebuilt calls (see nncore.activations).

    np.dot rather than np.matmul: at these sizes its call costs about half (same results)."""

    def __init__(self, sizes: list[int], m: int, dtype: np.dtype):
        # A[l]: (n_l + 1, m), the input of layer l + 1, with its last row of ones for the bias
        self.A = [np.empty((n + 1, m), dtype) for n in sizes[:-1]]
        for a in self.A:
            a[-1] = 1.0
        self.Z = np.empty((sizes[-1], m), dtype)  # (n_L, m) output logits, kept for the cost
        self.Y = np.empty((sizes[-1], m), dtype)  # (n_L, m) the batch's labels
        self.dZ = np.empty((sizes[-1], m), dtype)  # (n_L, m)
        self.dA = [np.empty((n, m), dtype) for n in sizes[1:-1]]  # (n_l, m) per hidden layer
        self.tmp = [np.empty((n, m), dtype) for n in sizes[1:-1]]  # scratch of hidden layer l + 1
        self.m = m

    @property
    def X(self) -> np.ndarray:
        return self.A[0][:-1]  # (n_x, m) the batch's inputs

    def load(self, X: np.ndarray, Y: np.ndarray) -> None:
        np.copyto(self.X, X)
        np.copyto(self.Y, Y)

    def forward_ops(self, Wb: list[np.ndarray], g: Activation) -> list[Op]:
        """A[0] -> Z: per layer one GEMM gives W A + b, then g in place on the hidden layers."""
        ops: list[Op] = []
        for l, W in enumerate(Wb[:-1]):
            H = self.A[l + 1][:-1]  # (n_l, m)
            ops.append(partial(np.dot, W, self.A[l], H))
            ops += g.forward_ops(H, self.tmp[l])
        ops.append(partial(np.dot, Wb[-1], self.A[-1], self.Z))
        return ops

    def backward_ops(self, Wb: list[np.ndarray], grads: list[np.ndarray], g: Activation) -> list[Op]:
        """dZ -> grads: whatever scale the head folded into dZ, grads get it too."""
        ops: list[Op] = []
        dZ = self.dZ
        for l in range(len(Wb) - 1, -1, -1):
            ops.append(partial(np.dot, dZ, self.A[l].T, grads[l]))  # (n_l, n_{l-1} + 1): [dW | db]
            if l:
                dA = self.dA[l - 1]  # (n_{l-1}, m): W[l].T dZ, the bias column left out
                ops.append(partial(np.dot, Wb[l][:, :-1].T, dZ, dA))
                ops += g.backward_ops(self.A[l][:-1], dA, self.tmp[l - 1])  # dA * g' = dZ[l-1]
                dZ = dA
        return ops


class Network:
    """A fully connected network; `sizes` = [n_x, n_1, ..., n_L], hidden layers share one activation."""

    def __init__(self, sizes: Sequence[int], theta: np.ndarray, activation: str = "tanh",
                 output: str = "auto", leaky_slope: float = 0.01):
        self.sizes = _check_sizes(sizes)
        self.activation, self.leaky_slope = activation, float(leaky_slope)
        self.g = get_activation(activation, leaky_slope)
        self.out = get_output(output, self.sizes[-1])
        self.output = self.out.name
        shapes = [(n, n_prev + 1) for n_prev, n in zip(self.sizes[:-1], self.sizes[1:])]
        n_params = sum(r * c for r, c in shapes)
        if theta.shape != (n_params,):
            raise ValueError(f"theta has shape {theta.shape}; sizes {self.sizes} need ({n_params},).")
        self.theta = theta  # (P,) every parameter
        self.Wb = self.blocks(theta)  # views: [(n_l, n_{l-1} + 1)]
        # 1 where theta holds a weight, 0 where a bias: L2 acts on weights only
        self.weight_mask = np.ones_like(theta)
        for blk in self.blocks(self.weight_mask):
            blk[:, -1] = 0.0

    @classmethod
    def create(cls, sizes: Sequence[int], activation: str = "tanh", output: str = "auto",
               init: str = "scaled", seed: int = 0, dtype: str = "float64",
               leaky_slope: float = 0.01) -> "Network":
        sizes = _check_sizes(sizes)
        dt = _dtype(dtype)
        initializer = get_initializer(init)
        rng = np.random.default_rng(seed)
        blocks = []
        for n_prev, n in zip(sizes[:-1], sizes[1:]):
            W = initializer(rng, n, n_prev)  # (n_l, n_{l-1}), drawn in float64 for every dtype
            blocks.append(np.hstack([W, np.zeros((n, 1))]).ravel())  # b[l] = 0
        theta = np.concatenate(blocks).astype(dt)
        return cls(sizes, theta, activation, output, leaky_slope)

    # --- parameters ---------------------------------------------------------------------------

    def blocks(self, flat: np.ndarray) -> list[np.ndarray]:
        """Views of a flat (P,) vector as the per-layer [W | b] blocks."""
        views, start = [], 0
        for n_prev, n in zip(self.sizes[:-1], self.sizes[1:]):
            stop = start + n * (n_prev + 1)
            views.append(flat[start:stop].reshape(n, n_prev + 1))
            start = stop
        return views

    @property
    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(W, b)] per layer: W (n_l, n_{l-1}), b (n_l, 1); views, so writing into them changes the network."""
        return [(blk[:, :-1], blk[:, -1:]) for blk in self.Wb]

    @property
    def dtype(self) -> np.dtype:
        return self.theta.dtype

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def l2_penalty(self) -> float:
        """sum over layers of ||W[l]||^2 (biases excluded)."""
        return float(np.dot(self.theta * self.weight_mask, self.theta))

    # --- data ---------------------------------------------------------------------------------

    def check_data(self, X: np.ndarray, Y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """X as (n_x, m) finite values; Y as (n_y, m) labels fitting the output (a (m,) label vector is encoded)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != self.sizes[0]:
            raise ValueError(f"X has shape {X.shape}; this network needs ({self.sizes[0]}, m): features in rows, samples in columns.")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or inf values; only finite numbers are allowed.")
        if Y is None:
            return X, None
        Y = np.asarray(Y)
        n_y = self.sizes[-1]
        if Y.ndim == 1:
            Y = self.encode(Y)
        if Y.ndim != 2 or Y.shape != (n_y, X.shape[1]):
            raise ValueError(f"Y has shape {Y.shape}; with X of shape {X.shape} it must be ({n_y}, {X.shape[1]}).")
        if not np.all((Y == 0) | (Y == 1)):
            raise ValueError(f"Y holds values other than 0 and 1; the {self.output} output needs 0/1 labels.")
        if self.output == "softmax" and not np.all(Y.sum(axis=0) == 1):
            raise ValueError("Y has columns that are not one-hot; the softmax output needs exactly one 1 per column.")
        return X, Y

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(m,) integer labels -> (n_y, m): one row of 0/1 for sigmoid, one-hot columns for softmax."""
        y = np.asarray(y)
        n_y = self.sizes[-1]
        n_classes = 2 if n_y == 1 else n_y
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"labels must be integers in [0, {n_classes - 1}] for {n_y} output unit(s); got {y[:5]!r}...")
        if n_y == 1:
            return y.reshape(1, -1).astype(float)
        return np.eye(n_y)[:, y]

    # --- the public calls ---------------------------------------------------------------------

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Z[L] for X (n_x, m): the fast path, no cache kept."""
        X, _ = self.check_data(X)
        A = X.astype(self.dtype, copy=False)
        for l, (W, b) in enumerate(self.params):
            Z = W @ A + b  # (n_l, m)
            if l < self.n_layers - 1:
                self.g.forward(Z)
            A = Z
        return A

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """A[L]: (n_y, m) probabilities."""
        Z = self.logits(X)
        self.out.forward(Z)
        return Z

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(m,) integer class labels."""
        Z = self.logits(X)
        if self.sizes[-1] == 1:
            return (Z[0] > 0).astype(np.int64)  # sigmoid(z) > 0.5 exactly when z > 0
        return Z.argmax(axis=0)

    def accuracy(self, X: np.ndarray, Y: np.ndarray) -> float:
        X, Y = self.check_data(X, Y)
        labels = Y[0] if self.sizes[-1] == 1 else Y.argmax(axis=0)
        return float(np.mean(self.predict(X) == labels)) if X.shape[1] else float("nan")

    def cost(self, X: np.ndarray, Y: np.ndarray, l2: float = 0.0) -> float:
        """Cross-entropy averaged over the m columns, plus l2 / (2m) * sum ||W||^2."""
        ws = self._workspace(X, Y)
        run(ws.forward_ops(self.Wb, self.g))
        m = ws.m
        return self.out.cost_sum(ws.Z, ws.Y) / m + (l2 / (2 * m)) * self.l2_penalty()

    def gradients(self, X: np.ndarray, Y: np.ndarray, l2: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(dW, db)] aligned with params: the gradients of cost(X, Y, l2)."""
        ws = self._workspace(X, Y)
        grad = np.empty_like(self.theta)
        head = self.out.head(ws.Z, ws.Y, ws.dZ, 1.0 / ws.m)
        run(ws.forward_ops(self.Wb, self.g) + head.prepare + head.error
            + ws.backward_ops(self.Wb, self.blocks(grad), self.g))
        grad += (l2 / ws.m) * self.weight_mask * self.theta
        return [(blk[:, :-1].copy(), blk[:, -1:].copy()) for blk in self.blocks(grad)]

    def _workspace(self, X: np.ndarray, Y: np.ndarray) -> Workspace:
        X, Y = self.check_data(X, Y)
        ws = Workspace(self.sizes, X.shape[1], self.dtype)
        ws.load(X, Y)
        return ws

    # --- persistence --------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """An .npz with the architecture, theta, and W1, b1, ... for readers that want the layers."""
        layers = {}
        for l, (W, b) in enumerate(self.params, start=1):
            layers[f"W{l}"], layers[f"b{l}"] = W, b
        np.savez(path, sizes=np.array(self.sizes), activation=self.activation, output=self.output,
                 leaky_slope=self.leaky_slope, theta=self.theta, **layers)

    @classmethod
    def load(cls, path: str | Path) -> "Network":
        with np.load(path) as f:
            return cls([int(n) for n in f["sizes"]], f["theta"].copy(), str(f["activation"]),
                       str(f["output"]), float(f["leaky_slope"]))
