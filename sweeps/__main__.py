"""`python -m sweeps [hydra overrides]`: compose the config with Hydra, then run the sweep."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from sweeps.cli import guarded
from sweeps.config import register_configs
from sweeps.launcher import run

register_configs()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    outcome = guarded(lambda: run(cfg), "[sweep] interrupted: local workers failed their running trials "
                      "and their runs ended KILLED (Dask workers finish theirs); "
                      "run the same command again to resume.")
    return outcome.study.best_value if outcome.study.best_trials else None


if __name__ == "__main__":
    main()
