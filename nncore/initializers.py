"""Weight initialisers: W[l] of shape (n_l, n_{l-1}) from a seeded Generator; biases start at zero.

Never zeros for W: identical units would stay identical (the symmetry is never broken).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Initializer = Callable[[np.random.Generator, int, int], np.ndarray]

INITIALIZERS: dict[str, Initializer] = {
    # the course's default: small random weights keep tanh/sigmoid away from saturation
    "scaled": lambda rng, n_out, n_in: rng.standard_normal((n_out, n_in)) * 0.01,
    # He et al. 2015, for ReLU layers: Var(W) = 2 / n_in
    "he": lambda rng, n_out, n_in: rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in),
    # Xavier as the course states it: Var(W) = 1 / n_in
    "xavier": lambda rng, n_out, n_in: rng.standard_normal((n_out, n_in)) * np.sqrt(1.0 / n_in),
}


def get_initializer(name: str) -> Initializer:
    if name not in INITIALIZERS:
        raise ValueError(f"init={name!r} is not known: choose one of {', '.join(sorted(INITIALIZERS))}.")
    return INITIALIZERS[name]
