"""A trial's network as an MLflow model at its run's artifact path `model`, so that
`mlflow.pyfunc.load_model("runs:/<run id>/model")`, the UI's Models tab, the model registry and
`mlflow models serve` take it like any MLflow model. The session logs the best trial's
(sweeps.runner.finish.model_of_best).

The model is MLflow's pyfunc flavour with a loader module (sweeps.trial.nnsweeps_pyfunc), not a
pickled PythonModel: nothing is pickled, and loading it imports numpy and nncore only. It carries
in its code/ folder that module and a copy of nncore (~50 KB): `mlflow models serve
--env-manager local` serves from whatever environment it is started in, which need not hold
nnsweeps (or the same nncore), and the network predicts there with the code that trained it.

It goes through MlflowClient with explicit ids, as every write of the tracker does: MLflow's
fluent log_model would need the run active (resuming, then ending a finished run) and the
tracking URI set for the whole process, and it loads the model back once to check its input
example. Its requirements are given (numpy and mlflow, at the versions that logged it): MLflow
infers them otherwise by loading the model in a new interpreter (benchmarks/RESULTS.md for what each
costs).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import nncore
from nncore import Network
from sweeps.processes import alive, here
from sweeps.tracking.store import sqlite_path, store_lock
from sweeps.tracking.tracker import Tracker
from sweeps.trial.artifacts import read_config
from sweeps.trial.build import load_data

if TYPE_CHECKING:
    from mlflow.entities import Run

NAME = "model"  # the model's name, and so its artifact path under the run: runs:/<run id>/model
EXAMPLE_ROWS = 5  # samples of the trial's data kept as the model's input example
# the model's loader module, by path: importing it here would import mlflow with every sweep
LOADER = Path(__file__).with_name("nnsweeps_pyfunc.py")
CODE = [str(LOADER), str(Path(nncore.__file__).parent)]  # what the model's code/ folder holds
WAIT = 120.0  # s: at most this long for another process's model of the same run (existing)


class NotRegistered(Exception):
    """The run's model is logged (now or before), but its version could not be made."""

    def __init__(self, uri: str, cause: Exception):
        super().__init__(f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0]}")
        self.uri = uri  # runs:/<run id>/model


@dataclass
class Published:
    """A run's model, and its version in the registry."""

    uri: str  # runs:/<run id>/model
    model_id: str
    logged: bool  # logged now (False: the run had it already)
    version: str | None = None  # its version of the registered model, if one was asked for
    registered: bool = False  # that version made now


def publish(tracker: Tracker, run_id: str, tags: dict[str, str], params: dict[str, str],
            register: str | None = None) -> Published:
    """The network of trial run `run_id` as its MLflow model, logged unless the run has one already
    (a resumed sweep whose best trial did not change), and with `register` a version of that
    registered model unless the run has one there already. tags (the study, the trial number) go
    on the model and on its version, params (the trial's sampled values) on the model."""
    client = tracker.client
    run = client.get_run(run_id)
    # a second invocation of the sweep may publish the same best while this one does
    with store_lock(tracker.uri):
        # under the lock no other publisher is writing: a PENDING model is debris, not waited for
        model_id = existing(tracker, run, wait=0 if sqlite_path(tracker.uri) else WAIT)
        logged = model_id is None
        if model_id is None:
            model_id = log_network(tracker, run, {**tags, **here()}, params)
        out = Published(f"runs:/{run_id}/{NAME}", model_id, logged)
        if register:
            try:
                out.version, out.registered = register_version(tracker, register, run_id, model_id, tags)
            except Exception as err:
                raise NotRegistered(out.uri, err) from err
    return out


def existing(tracker: Tracker, run: Run, wait: float = WAIT) -> str | None:
    """The id of the run's model, if it has one. One PENDING that another live process is logging
    (a store without store_lock: a server's) is waited for, at most `wait` s. One left PENDING or
    FAILED (its launcher died, or its store failed, while logging it) is deleted, since
    `runs:/<id>/model` would take the first of the run's models by that name, files or not."""
    # deferred, here and below: mlflow's import, which a sweep with tracking.enabled=false never pays
    from mlflow.entities import LoggedModelStatus

    client, deadline = tracker.client, time.monotonic() + wait
    while True:
        found = client.search_logged_models(
            [run.info.experiment_id], filter_string=f"name = '{NAME}' AND source_run_id = '{run.info.run_id}'")
        ready = [m.model_id for m in found if m.status == LoggedModelStatus.READY]
        if ready:
            return ready[0]
        if not any(m.status == LoggedModelStatus.PENDING and being_logged(m) for m in found) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for m in found:
        client.delete_logged_model(m.model_id)
    return None


def being_logged(model) -> bool:
    """Whether a PENDING model's process may still be logging it: alive on this host (not this
    process: its own would have been finished or deleted), or on another host and made less than
    WAIT s ago. A model without the tags (logged by other code) is not."""
    host, pid = model.tags.get("host"), model.tags.get("pid")
    if host == here()["host"]:
        return pid != str(os.getpid()) and alive(pid)
    return host is not None and time.time() * 1000 - model.creation_timestamp < WAIT * 1000


def log_network(tracker: Tracker, run: Run, tags: dict[str, str], params: dict[str, str]) -> str:
    """Logs the run's weights.npz as the pyfunc model `model` of the run; returns its model id. Its
    input example is the first rows of the trial's validation set (its training set if it has none),
    as the network takes them: standardised features, one sample per row, a column per feature by
    its name. Its signature names the output only: the model reads columns by name itself
    (sweeps.trial.nnsweeps_pyfunc says why)."""
    import mlflow.pyfunc  # deferred: the pyfunc and models modules are needed once a sweep, at its end
    import pandas as pd
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model, infer_signature

    from sweeps.trial.nnsweeps_pyfunc import FEATURES, WEIGHTS  # deferred with mlflow, which it imports

    client, run_id = tracker.client, run.info.run_id
    logged = read_config(tracker, run_id)
    data = load_data(logged.dataset, logged.seed)
    X = data.X_val if data.X_val.shape[1] else data.X_train  # (n_x, m)
    example = pd.DataFrame(X[:, :EXAMPLE_ROWS].T, columns=data.feature_names)  # (5, n_x): samples as rows
    with tracker.artifact_file(run_id, "weights.npz") as weights, \
            tempfile.TemporaryDirectory(prefix="nnsweeps-") as tmp:
        folder = Path(tmp) / "network"  # the model's data folder: what the loader reads
        folder.mkdir()
        shutil.copyfile(weights, folder / WEIGHTS)
        (folder / FEATURES).write_text(json.dumps(data.feature_names))
        signature = infer_signature(None, Network.load(weights).predict(X[:, :EXAMPLE_ROWS]))  # -> (-1,)
        model = client.create_logged_model(run.info.experiment_id, name=NAME, source_run_id=run_id, tags=tags,
                                           params=params, model_type="nncore")
        try:
            path = str(Path(tmp) / NAME)
            # the MLmodel file names its logged model and run, as MLflow's own Model.log fills it
            mlflow.pyfunc.save_model(
                path, loader_module=LOADER.stem, data_path=str(folder),
                code_paths=CODE, signature=signature, input_example=example,
                pip_requirements=[f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"],
                mlflow_model=Model(artifact_path=model.artifact_location, model_uuid=model.model_id, run_id=run_id,
                                   model_id=model.model_id))
            client.log_model_artifacts(model.model_id, path)
            client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])  # the run's page lists it
            client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        except BaseException:
            with contextlib.suppress(Exception):  # the store may be what failed: then existing() deletes it
                client.delete_logged_model(model.model_id)
            raise
    return model.model_id


def register_version(tracker: Tracker, name: str, run_id: str, model_id: str, tags: dict[str, str]
                     ) -> tuple[str, bool]:
    """The version of registered model `name` made from the run, made now if there is none; and
    whether it was made now."""
    from mlflow.exceptions import MlflowException

    client = tracker.client
    found = client.search_model_versions(f"name = '{name}' AND run_id = '{run_id}'")
    if found:
        return str(found[0].version), False
    try:
        client.create_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    # the source is the model's files, not models:/<model id>: MLflow's SQLite registry looks such a
    # URI up in the process-wide store (MlflowClient()), which need not be this one
    source = client.get_logged_model(model_id).artifact_location
    version = client.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)
    return str(version.version), True
