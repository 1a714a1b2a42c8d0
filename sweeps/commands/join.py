"""`nnsweeps worker [hydra overrides]` (`python -m sweeps.worker`): join a sweep by hand, from any
machine that reaches its storage and tracking server. It runs `sweep.n_jobs` local worker
processes on the study until the study is done, logging under the sweep's MLflow parent run
(sweeps.runner.session.join). The same config and overrides as `nnsweeps sweep`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from sweeps.conf_dir import CONF
from sweeps.config.schema import register_configs
from sweeps.runner.cli import guarded, run_cli, start_workers
from sweeps.runner.session import join

register_configs()


@hydra.main(config_path=str(CONF), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    def work():
        return join(cfg, start_workers(cfg))

    guarded(work, "[worker] interrupted ({signal}): its running trials were failed and their runs KILLED.")


def command(argv: list[str]) -> None:
    run_cli(main, argv)
