"""`python -m sweeps [hydra overrides]`: compose the config with Hydra, then run the sweep.

Only light modules are imported before the config is checked: the worker processes then start
(sweeps.pool) while this process imports the rest and opens the stores.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from sweeps.cli import exit_now, guarded
from sweeps.config import register_configs, validate

register_configs()


def sweep(cfg: DictConfig):
    validate(cfg)  # a config that fails starts no process
    if cfg.sweep.backend == "loky":
        from sweeps import pool

        pool.start(min(pool.size(cfg.sweep.n_jobs), cfg.sweep.n_trials),
                   cfg.tracking.uri if cfg.tracking.enabled else None)
    from sweeps.launcher import run

    return run(cfg)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    outcome = guarded(lambda: sweep(cfg), "[sweep] interrupted: local workers failed their running trials "
                      "and their runs ended KILLED (Dask workers finish theirs); "
                      "run the same command again to resume.")
    return outcome.study.best_value if outcome.study.best_trials else None


if __name__ == "__main__":
    main()
    exit_now(0)
