"""One job of Hydra's Optuna sweeper plugin: train the nncore network of one `python -m sweeps`
trial (same data split, widths, initialisation and optimiser) and return its validation cost.

Run by benchmarks/bench_sweep.py in its own virtual environment (the plugin pins optuna < 3),
with the repo root on PYTHONPATH for nncore. No tracking: the plugin has none.
"""

from __future__ import annotations

import json
import math
import os
import time

import hydra
import numpy as np
from omegaconf import DictConfig

from nncore import Diverged, Network, fit, load_dataset


def hidden_units(model: DictConfig) -> list[int]:
    """As sweeps.config.resolve_hidden_units does for the default model group."""
    hidden = list(model.hidden_units)
    if model.units is None:
        return hidden if model.depth is None else [hidden[0]] * model.depth
    return [model.units] * (len(hidden) if model.depth is None else model.depth)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    start = time.time()
    d, m, t = cfg.dataset, cfg.model, cfg.train
    data = load_dataset(d.name, seed=cfg.seed, val_fraction=d.val_fraction, **d.kwargs)
    sizes = [data.X_train.shape[0], *hidden_units(m), data.Y_train.shape[0]]
    net = Network.create(sizes, activation=m.activation, output=m.output, init=m.init, seed=cfg.seed,
                         dtype=t.dtype, leaky_slope=m.leaky_slope)
    fit_start = time.perf_counter()
    try:
        fit(net, data.X_train, data.Y_train, learning_rate=t.learning_rate, iterations=t.iterations,
            optimizer=t.optimizer, batch_size=t.batch_size, l2=t.l2, seed=cfg.seed, cost_every=t.cost_every,
            beta=t.beta, beta1=t.beta1, beta2=t.beta2, eps=t.eps)
        with np.errstate(over="ignore", invalid="ignore"):
            value = float(net.cost(data.X_val, data.Y_val))
    except Diverged:
        value = math.inf
    fit_seconds = time.perf_counter() - fit_start
    if not math.isfinite(value):
        value = math.inf  # ours prunes a diverged trial; the plugin can only be given a bad value
    if cfg.bench_log:
        line = json.dumps({"start": start, "end": time.time(), "fit_seconds": fit_seconds,
                           "val_cost": value, "pid": os.getpid()})
        with open(cfg.bench_log, "a") as f:
            f.write(line + "\n")
    return value


if __name__ == "__main__":
    main()
