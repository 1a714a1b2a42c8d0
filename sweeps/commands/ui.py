"""`nnsweeps ui [--host H] [--port P]`: the MLflow UI over the sweeps' store (MLFLOW_TRACKING_URI,
default sqlite:///mlflow.db, as `nnsweeps report` reads), after the model-training URL of each of
its experiments: the page to open, since MLflow 3 opens an experiment in its GenAI view otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from sweeps.errors import ConfigError
from sweeps.tracking.store import default_uri, open_existing
from sweeps.urls import redact, training_view

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nnsweeps ui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="the address to serve on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="the port to serve on (default 5000)")
    args = parser.parse_args(argv)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    uri = default_uri()
    try:
        experiments = open_existing(uri).search_experiments()  # a missing store is refused, never made
    except ConfigError as err:
        logger.error(f"error: {err}")
        return 2
    ui = f"http://{args.host}:{args.port}"
    logger.info(f"MLflow UI over {redact(uri)} on {ui} (Ctrl-C stops it); each experiment in its model-training view:")
    for exp in sorted(experiments, key=lambda e: e.name):
        if exp.name != "Default" or exp.experiment_id != "0":  # MLflow's own, empty unless a user logged there
            logger.info(f"  {exp.name}: {training_view(ui, exp.experiment_id)}")
    # its background job runner is for GenAI evaluations, which a sweep has none of: one process less
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", args.host,
              "--port", str(args.port), "--workers", "1"]
    sys.stdout.flush()
    # this process becomes the server: Ctrl-C and a signal reach it as they would `mlflow ui`
    os.execve(sys.executable, server, env)
