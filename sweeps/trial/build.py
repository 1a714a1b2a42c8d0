"""From a config to nncore's objects: the data, the network, its training."""

from __future__ import annotations

from typing import Any

from nncore import Dataset, FitResult, Network, fit, load_dataset
from sweeps.config.checks import optimizer_hyperparameters


def load_data(cfg: Any) -> Dataset:
    d = cfg.dataset
    return load_dataset(d.name, seed=cfg.seed, val_fraction=d.val_fraction, **d.kwargs)


def build_network(cfg: Any, data: Dataset) -> Network:
    sizes = [data.X_train.shape[0], *cfg.model.hidden_units, data.Y_train.shape[0]]  # n_x, hidden..., n_y
    m = cfg.model
    return Network.create(sizes, activation=m.activation, output=m.output, init=m.init, seed=cfg.seed,
                          dtype=cfg.train.dtype, leaky_slope=m.leaky_slope)


def train(net: Network, cfg: Any, data: Dataset, callback=None) -> FitResult:
    """nncore.fit with train's settings, and exactly the hyperparameters its optimiser takes."""
    t = cfg.train
    return fit(net, data.X_train, data.Y_train, learning_rate=t.learning_rate, iterations=t.iterations,
               optimizer=t.optimizer, batch_size=t.batch_size, l2=t.l2, seed=cfg.seed, callback=callback,
               cost_every=t.cost_every, **optimizer_hyperparameters(t))
