"""The cluster's reader (tests.cluster.harness.Probe), run on a fresh host: one JSON request a
line on stdin, one JSON answer a line on stdout, read with Optuna's and MLflow's own clients
(credentials from the environment, as any client)."""

from __future__ import annotations

import json
import sys
import tempfile

import numpy as np
import optuna
from mlflow import MlflowClient

optuna.logging.set_verbosity(optuna.logging.WARNING)
_storages: dict[str, optuna.storages.RDBStorage] = {}


def trials(storage: str, study: str) -> list[dict]:
    from sweeps.urls import with_driver

    if storage not in _storages:  # one engine for all the polling
        # pre-ping: a connection of the pool may be one that a restarted server dropped
        _storages[storage] = optuna.storages.RDBStorage(with_driver(storage), engine_kwargs={"pool_pre_ping": True})
    try:
        found = optuna.load_study(study_name=study, storage=_storages[storage])
    except KeyError:
        return []
    return [{"number": t.number, "state": t.state.name, "params": t.params, "user_attrs": t.user_attrs,
             "start": t.datetime_start.timestamp() if t.datetime_start else None,
             "complete": t.datetime_complete.timestamp() if t.datetime_complete else None}
            for t in found.get_trials(deepcopy=False)]


def study_attrs(storage: str, study: str) -> dict:
    trials(storage, study)
    try:
        return optuna.load_study(study_name=study, storage=_storages[storage]).user_attrs
    except KeyError:  # not created yet
        return {}


def runs(uri: str, experiment: str) -> list[dict]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return [{"run_id": r.info.run_id, "status": r.info.status, "tags": r.data.tags, "params": r.data.params}
            for r in client.search_runs([exp.experiment_id], max_results=5000)]


def artifacts(uri: str, run_id: str) -> dict[str, int]:
    """Every artifact of a run, downloaded from the server: path -> bytes."""
    client = MlflowClient(tracking_uri=uri)
    with tempfile.TemporaryDirectory() as folder:
        local = client.download_artifacts(run_id, "", folder)
        from pathlib import Path

        return {str(p.relative_to(local)): p.stat().st_size for p in Path(local).rglob("*") if p.is_file()}


def predict(uri: str, model_uri: str, features: int) -> list:
    import mlflow.pyfunc

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(model_uri)
    return np.asarray(model.predict(np.linspace(-1, 1, 4 * features).reshape(4, features))).tolist()


OPS = {f.__name__: f for f in (trials, study_attrs, runs, artifacts, predict)}

if __name__ == "__main__":
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"result": OPS[request.pop("op")](**request)}
        except Exception as err:  # told to the test, which fails with it
            answer = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps(answer, default=str), flush=True)
