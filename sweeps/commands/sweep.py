"""`nnsweeps sweep [hydra overrides]` (`python -m sweeps`): compose the config with Hydra, then run
the sweep.

Only light modules are imported before the config is checked: the worker processes then start
(sweeps.runner.pool) while this process imports the rest and opens the stores.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from sweeps.conf_dir import CONF
from sweeps.config.schema import register_configs
from sweeps.runner.cli import guarded, run_cli, start_workers

register_configs()

INTERRUPTED = ("[sweep] interrupted ({signal}): local workers failed their running trials and their runs ended "
               "KILLED (Dask workers finish theirs); run the same command again to resume.")


def sweep(cfg: DictConfig):
    space = start_workers(cfg, local=cfg.sweep.backend == "loky")
    # imported once the worker processes are starting: the session's imports (mlflow, the plots)
    # overlap theirs
    from sweeps.runner.session import run

    return run(cfg, space)


@hydra.main(config_path=str(CONF), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    outcome = guarded(lambda: sweep(cfg), INTERRUPTED)
    study = outcome.study  # several metrics have no one best value
    return study.best_value if len(study.directions) == 1 and study.best_trials else None


def command(argv: list[str]) -> None:
    run_cli(main, argv)
