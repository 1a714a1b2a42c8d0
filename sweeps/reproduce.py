"""`python -m sweeps.reproduce RUN_ID`: retrain a trial from its logged config and seed, and
compare the new cost curve with the logged full-resolution one, bit for bit.

The tracking URI comes from MLFLOW_TRACKING_URI (default sqlite:///mlflow.db). Exit status:
0 when the curves are identical, 1 when they differ, 2 when the run cannot be used.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from omegaconf import OmegaConf
from threadpoolctl import threadpool_limits

from nncore import Diverged
from sweeps.objective import build_network, train
from sweeps.worker import load_data

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def retrain(cfg, stop_after: int) -> np.ndarray:
    """The cost curve of a fresh training run, stopped where the logged one stopped (a pruned trial)."""
    data = load_data(cfg)
    net = build_network(cfg, data)
    try:
        return train(net, cfg, data, callback=lambda it, _cost: it >= stop_after).costs
    except Diverged as err:
        return err.costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweeps.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", help="the MLflow run id of a trial (a child run of a sweep)")
    args = parser.parse_args(argv)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    uri = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(args.run_id)
        cfg = OmegaConf.load(client.download_artifacts(args.run_id, "config.yaml"))
        logged = np.loadtxt(client.download_artifacts(args.run_id, "cost_curve.csv"),
                            delimiter=",", skiprows=1, ndmin=2)
    except (MlflowException, OSError) as err:
        print(f"error: run {args.run_id!r} in {uri} has no trial to reproduce (it needs config.yaml and "
              f"cost_curve.csv artifacts, as every trial run of a sweep has): {str(err).splitlines()[0]}",
              file=sys.stderr)
        return 2
    threads = int(run.data.tags.get("blas_threads", "1"))  # the same BLAS split as the worker had
    last = int(logged[-1, 0]) if logged.size else 0
    with threadpool_limits(limits=threads):
        costs = retrain(cfg, stop_after=last)
    old = logged[:, 1]
    n = min(old.size, costs.size)
    with np.errstate(invalid="ignore"):
        diff = np.abs(costs[:n] - old[:n])
    same = costs.size == old.size and np.array_equal(costs, old, equal_nan=True)
    largest = 0.0 if same else (float(np.nanmax(diff)) if n and np.isfinite(diff).any() else float("inf"))
    print(f"run {args.run_id}: retrained {cfg.dataset.name} {list(cfg.model.hidden_units)} "
          f"{cfg.model.activation}, {costs.size} cost points (logged: {old.size})")
    print(f"largest difference from the logged cost curve: {largest!r}"
          + ("" if costs.size == old.size else " (and the curves differ in length)"))
    print("reproduced exactly" if same else "NOT reproduced exactly")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
