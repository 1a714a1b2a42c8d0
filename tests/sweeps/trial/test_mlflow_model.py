"""sweeps.trial.mlflow_model: a trial's network as the MLflow model of its run, in a real local
MLflow store, loaded back by MLflow's own pyfunc loader (in this process and in a fresh one)."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException

from nncore import Network
from sweeps.config.space import parse_space
from sweeps.tracking.tracker import Tracker
from sweeps.trial.build import load_data
from sweeps.trial.mlflow_model import NAME, NotRegistered, existing, publish
from sweeps.trial.objective import objective
from sweeps.trial.reproduction import load_network
from tests.sweeps.conftest import SMALL

TAGS = {"optuna.study": "s", "optuna.trial": "0"}


@pytest.fixture(scope="module")
def store(compose_cfg, tmp_path_factory):
    """One store for the module (making one runs MLflow's migrations): its sweep run, the config."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    return Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={}), compose_cfg(*SMALL, f"tracking.uri={uri}")


@pytest.fixture
def trial(store, monkeypatch):
    """A tracked trial of the small space, a run of its own: (tracker, its run id, its data)."""
    tracker, cfg = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.uri)  # MLflow's loader finds the store by it
    study = optuna.create_study()
    t = study.ask()
    data = load_data(cfg.dataset, cfg.seed)
    study.tell(t, objective(t, cfg, parse_space(cfg.search_space), data, tracker))
    return tracker, study.trials[0].user_attrs["run_id"], data


def models_of(client: MlflowClient, tracker: Tracker, run_id: str) -> list:
    return list(client.search_logged_models([tracker.experiment_id], filter_string=f"source_run_id = '{run_id}'"))


def test_the_network_loads_back_as_a_pyfunc_model_that_predicts_bit_for_bit(trial):
    tracker, run_id, data = trial
    out = publish(tracker, run_id, TAGS, {"train.learning_rate": "0.5"})
    assert out.logged and out.uri == f"runs:/{run_id}/{NAME}" and out.version is None
    model = mlflow.pyfunc.load_model(out.uri)
    X = np.concatenate([data.X_train, data.X_val], axis=1)  # (2, m) samples as columns
    expected = load_network(run_id, tracker.uri).predict(X)
    assert np.array_equal(model.predict(X.T), expected)
    assert np.array_equal(model.predict(pd.DataFrame(X.T)), expected)
    # no input schema: MLflow's would take a DataFrame's values in column order (a tensor) or refuse
    # arrays (named columns); the model reads names itself
    assert model.metadata.signature.inputs is None
    outputs = model.metadata.signature.outputs.to_dict()
    assert outputs == [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": (-1,)}}]
    assert np.array_equal(model.input_example, data.X_val[:, :5].T)  # the first validation samples, as rows
    assert list(model.input_example.columns) == data.feature_names  # named as the model reads them
    (logged,) = models_of(tracker.client, tracker, run_id)
    assert logged.model_id == out.model_id and logged.tags["optuna.trial"] == "0"
    assert logged.params == {"train.learning_rate": "0.5"}
    assert [o.model_id for o in tracker.client.get_run(run_id).outputs.model_outputs] == [out.model_id]


def test_the_model_reads_a_dataframe_by_its_column_names_and_refuses_wrong_ones(trial):
    """Before, a DataFrame's columns in another order silently swapped the features."""
    tracker, run_id, data = trial
    model = mlflow.pyfunc.load_model(publish(tracker, run_id, TAGS, {}).uri)
    X = np.concatenate([data.X_train, data.X_val], axis=1)  # (2, m) samples as columns
    expected = load_network(run_id, tracker.uri).predict(X)
    named = pd.DataFrame(X.T, columns=data.feature_names)
    assert np.array_equal(model.predict(named), expected)
    swapped = named[data.feature_names[::-1]]
    assert np.array_equal(model.predict(swapped), expected)
    assert not np.array_equal(model.predict(swapped.to_numpy()), expected)  # the order matters to the network
    names = data.feature_names
    with pytest.raises(MlflowException, match=re.escape(f"the input's columns ['a', '{names[1]}'] are not this "
                                                        f"model's features: it takes the columns {names} (in any order)")) as err:
        model.predict(named.rename(columns={data.feature_names[0]: "a"}))
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"  # what `mlflow models serve` answers with HTTP 400


def test_the_model_carries_its_code_and_loads_without_hydra_optuna_or_sweeps(trial, tmp_path):
    tracker, run_id, data = trial
    publish(tracker, run_id, TAGS, {})
    local = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{NAME}", dst_path=str(tmp_path / "m"))
    text = Path(local, "requirements.txt").read_text().split()
    assert text == [f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"]
    assert {"nnsweeps_pyfunc.py", "nncore"} <= set(os.listdir(os.path.join(local, "code")))
    # a fresh interpreter that cannot import Hydra, Optuna or sweeps, and whose nncore is the model's own
    script = ("import sys, json, numpy as np\n"
              "for name in ('hydra', 'optuna', 'sweeps', 'omegaconf'): sys.modules[name] = None\n"
              "import mlflow.pyfunc\n"
              f"model = mlflow.pyfunc.load_model({local!r})\n"
              "import nncore\n"
              "rows = np.array(json.loads(sys.argv[1]))\n"
              "print(json.dumps({'nncore': nncore.__file__, 'labels': model.predict(rows).tolist()}))\n")
    rows = data.X_val.T[:20]
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(rows.tolist())], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.splitlines()[-1])
    assert answer["nncore"].startswith(os.path.join(local, "code", "nncore"))
    assert answer["labels"] == Network.load(tracker.folder(run_id) / "weights.npz").predict(rows.T).tolist()


def test_publishing_again_logs_nothing_and_registers_one_version(trial):
    tracker, run_id, _ = trial
    first = publish(tracker, run_id, TAGS, {})
    again = publish(tracker, run_id, TAGS, {})
    assert not again.logged and again.model_id == first.model_id
    registered = publish(tracker, run_id, TAGS, {}, register="best-net")
    assert not registered.logged and (registered.version, registered.registered) == ("1", True)
    assert publish(tracker, run_id, TAGS, {}, register="best-net").registered is False
    (version,) = tracker.client.search_model_versions("name = 'best-net'")
    # the source is the model's files: a models:/ source is looked up in the process-wide store
    source = tracker.client.get_logged_model(first.model_id).artifact_location
    assert (version.run_id, version.source, version.tags) == (run_id, source, TAGS)
    assert len(models_of(tracker.client, tracker, run_id)) == 1
    assert mlflow.pyfunc.load_model("models:/best-net/1").metadata.model_id == first.model_id


def test_a_failed_registration_says_the_model_is_logged(trial):
    tracker, run_id, _ = trial
    with pytest.raises(NotRegistered, match=r"MlflowException: Invalid model name 'a/b'") as err:
        publish(tracker, run_id, TAGS, {}, register="a/b")
    assert err.value.uri == f"runs:/{run_id}/{NAME}"
    (model,) = models_of(tracker.client, tracker, run_id)
    assert model.status == LoggedModelStatus.READY  # logged, whatever the registry said


def test_a_model_left_pending_by_a_dead_launcher_is_replaced(trial):
    tracker, run_id, data = trial
    # what a launcher killed between creating the model and writing its files leaves: no files
    dead = tracker.client.create_logged_model(tracker.experiment_id, name=NAME, source_run_id=run_id)
    out = publish(tracker, run_id, TAGS, {})
    assert out.logged and out.model_id != dead.model_id
    assert [m.model_id for m in models_of(tracker.client, tracker, run_id)] == [out.model_id]
    model = mlflow.pyfunc.load_model(out.uri)
    assert np.array_equal(model.predict(data.X_val.T), load_network(run_id, tracker.uri).predict(data.X_val))


RACER = """
import json, sys, time
from pathlib import Path
from sweeps.tracking.tracker import Tracker
from sweeps.trial.mlflow_model import publish
uri, experiment, run_id, go = sys.argv[1:5]
tracker = Tracker(uri, experiment_id=experiment)
tracker.client.get_run(run_id)  # the imports and the store opened before the start
Path(go + "." + str(__import__("os").getpid())).touch()
while not Path(go).exists():
    time.sleep(0.005)
out = publish(tracker, run_id, {"optuna.study": "s", "optuna.trial": "0"}, {})
print(json.dumps([out.model_id, out.logged]))
"""


def test_two_processes_publishing_one_run_at_once_make_one_model(trial, tmp_path):
    """A second invocation of the sweep publishing the same best while the first does: both get
    the one model, logged once (before: each found none and logged its own, or one deleted the
    other's model while it was PENDING)."""
    tracker, run_id, data = trial
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", RACER, tracker.uri, tracker.experiment_id, run_id, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    while len(list(tmp_path.glob("go.*"))) < 2 and all(p.poll() is None for p in procs):
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    (a, a_logged), (b, b_logged) = (json.loads(out) for out, _ in outs)
    assert a == b and sorted([a_logged, b_logged]) == [False, True]
    assert [m.model_id for m in models_of(tracker.client, tracker, run_id)] == [a]
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/{NAME}")
    assert np.array_equal(model.predict(data.X_val.T), load_network(run_id, tracker.uri).predict(data.X_val))


def test_a_model_another_live_process_is_logging_is_waited_for_not_deleted(trial):
    """Where no lock serialises publishers (a server's store): a PENDING model whose process lives
    is left alone until it is READY."""
    tracker, run_id, _ = trial
    run = tracker.client.get_run(run_id)
    with subprocess.Popen(["sleep", "30"]) as owner:
        theirs = tracker.client.create_logged_model(
            tracker.experiment_id, name=NAME, source_run_id=run_id,
            tags={"host": socket.gethostname(), "pid": str(owner.pid)})
        assert existing(tracker, run, wait=0.5) is None  # waited half a second, then taken for debris
        assert models_of(tracker.client, tracker, run_id) == []
        theirs = tracker.client.create_logged_model(
            tracker.experiment_id, name=NAME, source_run_id=run_id,
            tags={"host": socket.gethostname(), "pid": str(owner.pid)})
        t0 = time.monotonic()
        threading.Timer(1.0, tracker.client.finalize_logged_model, (theirs.model_id, LoggedModelStatus.READY)).start()
        assert existing(tracker, run) == theirs.model_id
        assert time.monotonic() - t0 >= 0.9
        owner.kill()


@pytest.mark.parametrize("pid", ["x", str(2**64), "1"])  # not a number, no process's, this host's init
def test_a_pending_model_of_a_pid_that_is_not_a_publishers_is_debris_at_once(trial, pid):
    """On a SQLite store the lock keeps other publishers out: whatever its tags say, a PENDING
    model is replaced at once (pid 1 lives, but it is not publishing)."""
    tracker, run_id, _ = trial
    tracker.client.create_logged_model(tracker.experiment_id, name=NAME, source_run_id=run_id,
                                       tags={"host": socket.gethostname(), "pid": pid})
    t0 = time.monotonic()
    out = publish(tracker, run_id, TAGS, {})
    assert out.logged and time.monotonic() - t0 < 30
    assert [m.model_id for m in models_of(tracker.client, tracker, run_id)] == [out.model_id]


def test_a_run_without_a_network_raises_and_leaves_no_model(trial):
    tracker, _, _ = trial
    with pytest.raises(FileNotFoundError):
        publish(tracker, tracker.parent_run_id, TAGS, {})  # the sweep's run: no config.yaml, no weights.npz
    assert models_of(tracker.client, tracker, tracker.parent_run_id) == []
