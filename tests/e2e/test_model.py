"""The best network as an MLflow model (real processes and stores): one study swept three times,
its best trial changing once; each best run's model predicts bit for bit like its network, the
registry holds a version per new best, and `mlflow models serve` answers like the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import mlflow.pyfunc
import numpy as np
import pytest
from mlflow import MlflowClient

from nncore import load_dataset
from sweeps.report.summary import best_trial
from sweeps.services import LOCALHOST, free_port, stop_group
from sweeps.trial.reproduction import load_network
from tests.conftest import SweepDir, wait_for

pytestmark = pytest.mark.slow
# lr 0.01 and 0.02 barely move in 200 iterations; lr 1.0 does better: the second sweep's trial is a new best
QUICK = ("search_space=none", "+search_space.train.learning_rate={type:float,low:0.01,high:1.0}",
         "train.iterations=200", "tracking.register_model=nnsweeps-best")
ENQUEUED = ("[{train.learning_rate:0.01},{train.learning_rate:0.02}]", "[{train.learning_rate:1.0}]",
            "[{train.learning_rate:0.03}]")


def logged_models(sd: SweepDir) -> dict[str, str]:
    """source run id -> model id, of every logged model of the experiment."""
    client = sd.client()
    exp = client.get_experiment_by_name(sd.experiment)
    return {m.source_run_id: m.model_id for m in client.search_logged_models([exp.experiment_id])}


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> SimpleNamespace:
    """Three invocations of one study: 2 poor trials, then a third that is a new best, then a
    fourth that is not; the best run and the logged models after each."""
    sd = SweepDir(tmp_path_factory.mktemp("model"))
    out = SimpleNamespace(sd=sd, best=[], models=[], stdout=[])
    for n, enqueued in enumerate(ENQUEUED, start=2):
        jobs = "sweep.n_jobs=2" if n == 2 else "sweep.n_jobs=1"  # one trial to run: no worker process to start
        out.stdout.append(sd.run(*QUICK, f"sweep.n_trials={n}", f"+sweep.enqueue={enqueued}", jobs).stdout)
        out.best.append(best_trial(sd.study()).user_attrs["run_id"])
        out.models.append(logged_models(sd))
    data = load_dataset("flower", seed=0, val_fraction=0.2)  # the trials' data: conf's defaults
    out.X = np.concatenate([data.X_train, data.X_val], axis=1)  # (2, m) samples as columns
    return out


def test_the_best_runs_model_predicts_bit_for_bit_like_its_network(swept, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", swept.sd.uri)
    for run_id in (swept.best[0], swept.best[1]):
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
        assert np.array_equal(model.predict(swept.X.T), load_network(run_id, swept.sd.uri).predict(swept.X))


def test_a_new_best_gets_its_model_and_the_old_best_keeps_its_own(swept):
    first, second, third = swept.best
    assert first != second == third
    assert swept.models[0].keys() == {first}
    assert swept.models[1] == swept.models[2] == {first: swept.models[0][first], second: swept.models[1][second]}
    number = best_trial(swept.sd.study()).number
    assert (f"[sweep] trial {number}'s network is the MLflow model runs:/{second}/model, version 2 of registered "
            "model 'nnsweeps-best'") in swept.stdout[1]
    assert "MLflow model" not in swept.stdout[2]  # the best did not change: nothing logged again


def test_the_registry_holds_a_version_per_new_best(swept, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", swept.sd.uri)
    versions = sorted(swept.sd.client().search_model_versions("name = 'nnsweeps-best'"), key=lambda v: int(v.version))
    assert [(v.version, v.run_id) for v in versions] == [(1, swept.best[0]), (2, swept.best[1])]
    trials = {t.user_attrs["run_id"]: str(t.number) for t in swept.sd.study().trials}
    assert [v.tags for v in versions] == [{"optuna.study": "S", "optuna.trial": trials[r]} for r in swept.best[:2]]
    model = mlflow.pyfunc.load_model("models:/nnsweeps-best/2")
    assert np.array_equal(model.predict(swept.X.T), load_network(swept.best[1], swept.sd.uri).predict(swept.X))


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        return json.load(resp)


def answer(url: str, body: bytes, content_type: str) -> tuple[int, dict]:
    """The HTTP status and the JSON a POST gets, an error's too."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def pings(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def served(swept, tmp_path_factory):
    """`mlflow models serve` of the second best run's model, on a free port: its URL and run id."""
    run_id, port, tmp_path = swept.best[1], free_port(), tmp_path_factory.mktemp("serve")
    bin_dir = Path(sys.executable).parent  # the venv's: its mlflow, and the uvicorn that mlflow runs by name
    env = {**os.environ, "MLFLOW_TRACKING_URI": swept.sd.uri, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(bin_dir / "mlflow"), "models", "serve", "-m", f"runs:/{run_id}/model",
                                   "--env-manager", "local", "-h", LOCALHOST, "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                  cwd=tmp_path, start_new_session=True)  # its group: mlflow and its uvicorn
    try:
        url = f"http://{LOCALHOST}:{port}"
        wait_for(lambda: server.poll() is not None or pings(url + "/ping"), timeout=180, every=0.5)
        assert server.poll() is None, log.read_text()
        yield SimpleNamespace(url=url, run_id=run_id)
    finally:
        stop_group(server.pid, timeout=10, leader=server)
        server.wait(timeout=10)


def test_mlflow_models_serve_answers_like_the_network(swept, served):
    url, run_id = served.url, served.run_id
    rows = swept.X.T[:16]  # (16, 2): JSON floats are written and read back exactly
    answer = post(url + "/invocations", {"inputs": rows.tolist()})
    assert answer == {"predictions": load_network(run_id, swept.sd.uri).predict(rows.T).tolist()}


def test_the_served_model_reads_columns_by_name_and_refuses_wrong_ones_with_a_sentence(swept, served):
    """Before, dataframe_split with the named columns in another order changed 33 of 80 predictions,
    and a text/csv body was answered with a stack trace."""
    url = served.url + "/invocations"
    rows = swept.X.T[:80]  # (80, 2)
    expected = load_network(served.run_id, swept.sd.uri).predict(rows.T).tolist()
    names = load_dataset("flower", seed=0).feature_names  # the names the model was trained with
    assert post(url, {"dataframe_split": {"columns": names, "data": rows.tolist()}}) == {"predictions": expected}
    reordered = {"columns": names[::-1], "data": rows[:, ::-1].tolist()}
    assert post(url, {"dataframe_split": reordered}) == {"predictions": expected}
    assert expected != post(url, {"inputs": rows[:, ::-1].tolist()})["predictions"]  # the order matters
    sentence = f"are not this model's features: it takes the columns {names} (in any order)"
    status, body = answer(url, json.dumps({"dataframe_split": {"columns": ["a", names[1]], "data": rows.tolist()}}
                                          ).encode(), "application/json")
    assert status == 400 and f"the input's columns ['a', '{names[1]}'] {sentence}" in body["message"]
    # text/csv: pandas reads the first line as the column names
    short = np.round(rows, 3)  # few digits, which any float parser reads exactly
    csv = "".join(f"{b},{a}\n" for a, b in short.tolist())
    by_name = load_network(served.run_id, swept.sd.uri).predict(np.ascontiguousarray(short.T)).tolist()
    assert answer(url, f"{names[1]},{names[0]}\n{csv}".encode(), "text/csv") == (200, {"predictions": by_name})
    status, body = answer(url, csv.encode(), "text/csv")  # no header: its first row is taken for names
    first = [str(v) for v in short[0, ::-1]]
    assert status == 400 and f"the input's columns {first} {sentence}" in body["message"]
    assert "stack_trace" not in body and "Traceback" not in body["message"]


@pytest.mark.parametrize("global_uri", ["unset", "elsewhere"])
def test_register_model_goes_to_the_sweeps_own_store_whatever_the_process_wide_uri(tmp_path, global_uri):
    """tracking.uri is not MLFLOW_TRACKING_URI (unset, or another store): before, MLflow's SQLite
    registry looked the version's source up in the process-wide store, so no version was made, a
    stray mlflow.db appeared in the working folder and the warning said the model was not logged."""
    sd = SweepDir(tmp_path)
    sd.uri = f"sqlite:///{tmp_path / 'other.db'}"
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere.db"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    if global_uri == "elsewhere":
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{elsewhere}"
    proc = subprocess.run([sys.executable, "-m", "sweeps", *sd.args(*QUICK[:3], "sweep.n_trials=2", "sweep.n_jobs=1",
                                                                    "tracking.register_model=nnsweeps-best")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr and "registered model 'nnsweeps-best'" in proc.stdout, proc.stderr
    client = MlflowClient(tracking_uri=sd.uri, registry_uri=sd.uri)
    (version,) = client.search_model_versions("name = 'nnsweeps-best'")
    assert version.run_id == best_trial(sd.study()).user_attrs["run_id"]
    model = mlflow.pyfunc.load_model(client.get_model_version_download_uri("nnsweeps-best", version.version))
    assert np.array_equal(model.predict(np.zeros((1, 2))), load_network(version.run_id, sd.uri).predict(np.zeros((2, 1))))
    assert not (work / "mlflow.db").exists() and not elsewhere.exists()
