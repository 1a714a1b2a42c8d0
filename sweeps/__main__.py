"""`python -m sweeps [hydra overrides]`: compose the config with Hydra, then run the sweep."""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import hydra  # noqa: E402
import optuna  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from sweeps.config import ConfigError, register_configs
from sweeps.launcher import SweepStopped, run

register_configs()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress line says what matters
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        outcome = run(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except SweepStopped as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\n[sweep] interrupted: running trials were failed and their runs KILLED; "
              "run the same command again to resume.", file=sys.stderr)
        sys.exit(130)
    best = outcome.study.best_value if outcome.study.best_trials else None
    return best


if __name__ == "__main__":
    main()
