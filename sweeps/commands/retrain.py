"""`nnsweeps reproduce RUN_ID` (`python -m sweeps.reproduce`): retrain a trial from its logged
config and seed, and compare the new cost curve with the logged full-resolution one, bit for bit.

The tracking URI comes from MLFLOW_TRACKING_URI (default sqlite:///mlflow.db); a store that does
not exist is an error, never created. Exit status: 0 when the curves are identical, 1 when they
differ, 2 when the run cannot be used. In Python: sweeps.reproduce(run_id) (sweeps.api).
"""

from __future__ import annotations

import argparse
import logging

from sweeps import log
from sweeps.errors import ConfigError
from sweeps.trial.reproduction import reproduce

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nnsweeps reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", help="the MLflow run id of a trial (a child run of a sweep)")
    args = parser.parse_args(argv)
    log.setup()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        r = reproduce(args.run_id.strip())
    except ConfigError as err:
        logger.error(f"error: {err}")
        return 2
    cfg, old = r.config, r.logged[:, 1] if r.logged.size else r.logged
    logger.info(f"run {r.run_id}: retrained {cfg.dataset.name} {list(cfg.model.hidden_units)} "
                f"{cfg.model.activation}, {r.costs.size} cost points (logged: {old.size})")
    if len(r.repeat_diffs) > 1:
        logger.info(f"{len(r.repeat_diffs)} repeats (sweep.repeats), each one's largest difference: "
                    + ", ".join(map(repr, r.repeat_diffs)))
    logger.info(f"largest difference from the logged cost curve{'s' if len(r.repeat_diffs) > 1 else ''}: "
                f"{r.max_abs_diff!r}" + ("" if r.costs.size == old.size else " (and the curves differ in length)"))
    changed = f"; the data changed since the trial ran: {'; '.join(r.data_changed)}" if r.data_changed else ""
    logger.info(("reproduced exactly" if r.exact else "NOT reproduced exactly") + changed)
    return 0 if r.exact else 1
