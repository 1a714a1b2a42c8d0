"""sweeps.tracking.outbox and .writer against a real journal and a real SQLite MLflow store: a
worker records its trials as files and never imports mlflow; the invocation's writer makes each
run as its trial starts and sends its end; a stopped writer's records are sent by the next."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from sweeps.config.space import parse_space
from sweeps.study.storages import storage_for
from sweeps.tracking.outbox import Held, outbox_root
from sweeps.tracking.tracker import Tracker
from sweeps.tracking.writer import Writer
from sweeps.trial.build import load_data
from sweeps.trial.objective import objective
from tests.conftest import ROOT
from tests.sweeps.conftest import SMALL


@pytest.fixture
def stores(tmp_path):
    """A study in a journal, a parent run in an SQLite store, and the study's storage."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    storage = storage_for(str(tmp_path / "s.journal"))
    study = optuna.create_study(study_name="S", storage=storage.open())
    tracker = Tracker.start_sweep(uri, "E", run_name="sweep-S", tags={"optuna.study": "S"}, params={})
    return study, storage, tracker


def test_a_trial_recorded_through_the_outbox_ends_as_a_whole_run(compose_cfg, stores):
    study, storage, tracker = stores
    cfg = compose_cfg(*SMALL, "train.report_every=50", f"tracking.uri={tracker.uri}")
    writer = Writer(tracker, storage, "S")
    writer.start()
    try:
        outbox = writer.outbox(cfg.tracking.curve_points, {"optuna.study": "S"})
        trial = study.ask()
        value = objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed), outbox)
        study.tell(trial, value)
        assert writer.flush(timeout=60)
    finally:
        writer.stop()
    t = study.trials[0]
    run = MlflowClient(tracker.uri).get_run(t.user_attrs["run_id"])  # set by the writer before the end
    assert run.info.status == "FINISHED" and run.data.tags["optuna.state"] == "COMPLETE"
    assert run.data.tags["mlflow.parentRunId"] == tracker.parent_run_id
    assert run.data.tags["pid"] == str(os.getpid()) and run.data.metrics["val_cost"] == value
    assert run.data.params["train.iterations"] == "200"
    assert {a.path for a in MlflowClient(tracker.uri).list_artifacts(run.info.run_id)} == {
        "config.yaml", "weights.npz", "cost_curve.csv"}
    steps = MlflowClient(tracker.uri).get_metric_history(run.info.run_id, "val_cost")
    assert sorted(m.step for m in steps) == [50, 100, 150, 200]
    assert not writer.folder.exists()  # every record sent, and its folder gone


def test_a_held_record_put_into_the_writers_folder_is_one_run_with_its_trials_own_times(compose_cfg, stores):
    # a Dask worker's trial: recorded in memory where it ran, put on disk by the launcher, then told
    study, storage, tracker = stores
    cfg = compose_cfg(*SMALL, f"tracking.uri={tracker.uri}")
    held = Held(curve_points=cfg.tracking.curve_points, common_tags={"optuna.study": "S"})
    trial = study.ask()
    value = objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed), held)
    record, = held.records.values()
    assert set(record.files) == {"config.yaml", "weights.npz", "cost_curve.csv"} and record.end["status"] == "FINISHED"
    assert "run_id" not in study.trials[0].user_attrs
    writer = Writer(tracker, storage, "S")
    writer.start()
    try:
        writer.outbox(cfg.tracking.curve_points, {}).put(record)
        run_id = study.trials[0].user_attrs["run_id"]  # the run made before put() returns, so before the tell
        study.tell(trial, value)
        assert writer.flush(timeout=60)
    finally:
        writer.stop()
    client = MlflowClient(tracker.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["val_cost"] == value
    assert run.data.tags["mlflow.parentRunId"] == tracker.parent_run_id
    assert {a.path for a in client.list_artifacts(run_id)} == set(record.files)
    assert (run.info.start_time, run.info.end_time) == (record.start["start_time"], record.end["end_time"])
    assert abs(run.info.start_time - study.trials[0].datetime_start.timestamp() * 1000) < 1000


WORKER = """
import pickle, sys
import optuna
from omegaconf import OmegaConf
from sweeps.config.space import parse_space
from sweeps.study.storages import storage_for
from sweeps.trial.build import load_data
from sweeps.trial.objective import objective
cfg, outbox, journal = pickle.load(open(sys.argv[1], "rb"))
cfg = OmegaConf.create(cfg)
study = optuna.load_study(study_name="S", storage=storage_for(journal).open())
trial = study.ask()
study.tell(trial, objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed), outbox))
print("mlflow imported:", "mlflow" in sys.modules)
"""


def test_a_worker_process_records_its_trial_without_importing_mlflow(compose_cfg, stores, tmp_path):
    study, storage, tracker = stores
    cfg = compose_cfg(*SMALL, f"tracking.uri={tracker.uri}")
    writer = Writer(tracker, storage, "S")
    writer.start()
    job = tmp_path / "job.pkl"
    job.write_bytes(pickle.dumps((OmegaConf.to_container(cfg, resolve=True),
                                  writer.outbox(cfg.tracking.curve_points, {}), storage.spec)))
    try:
        out = subprocess.run([sys.executable, "-c", WORKER, str(job)], capture_output=True, text=True, timeout=300,
                             cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert out.returncode == 0, out.stderr
        assert "mlflow imported: False" in out.stdout
        assert writer.flush(timeout=60)
    finally:
        writer.stop()
    t, = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    run = MlflowClient(tracker.uri).get_run(t.user_attrs["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["pid"] != str(os.getpid())  # the worker's


def _leftover(compose_cfg, stores, tmp_path, tell: bool) -> tuple[optuna.trial.FrozenTrial, str]:
    """A trial recorded by a worker whose writer 'died' (its folder named for a pid that is not
    alive) after making its run: the end is on disk, not in MLflow."""
    study, storage, tracker = stores
    cfg = compose_cfg(*SMALL, f"tracking.uri={tracker.uri}")
    dead = Writer(tracker, storage, "S")
    dead.folder = outbox_root(storage.local_file, "S") / f"{os.uname().nodename}-999999999"
    dead.folder.mkdir(parents=True)
    outbox = dead.outbox(cfg.tracking.curve_points, {})
    trial = study.ask()
    key = outbox.start_trial(trial.number, tags={"optuna.trial": trial.number}, params={})
    dead._make_run(dead.folder, key)  # the run made, then the writer gone before the end
    outbox.log_artifacts(key, {"a.txt": lambda p: p.write_text("a")})
    outbox.end(key, "FINISHED", {"optuna.state": "COMPLETE"}, metrics={"val_cost": 0.5})
    if tell:
        study.tell(trial, 0.5)
    return study.trials[0], tracker.uri


@pytest.mark.parametrize("tell", [True, False])
def test_the_next_writer_sends_what_a_stopped_one_left(compose_cfg, stores, tmp_path, tell):
    t, uri = _leftover(compose_cfg, stores, tmp_path, tell)
    run_id = t.user_attrs["run_id"]
    assert MlflowClient(uri).get_run(run_id).info.status == "RUNNING"
    _, storage, tracker = stores
    writer = Writer(tracker, storage, "S")
    notes = writer.start()
    writer.stop()
    assert notes and "sent 1 trial record" in notes[0]
    run = MlflowClient(uri).get_run(run_id)
    if tell:  # Optuna knows the trial COMPLETE: its run is whole
        assert run.info.status == "FINISHED" and run.data.metrics["val_cost"] == 0.5
        assert {a.path for a in MlflowClient(uri).list_artifacts(run_id)} == {"a.txt"}
    else:  # its worker stopped before telling Optuna: tidy() fails the trial, the run says so
        assert run.info.status == "KILLED" and run.data.tags["optuna.state"] == "FAIL"
    assert not any(outbox_root(storage.local_file, "S").iterdir())  # the dead writer's folder is gone


def test_a_writer_leaves_the_records_of_another_store_to_a_sweep_that_tracks_there(compose_cfg, stores, tmp_path):
    """A resume under another tracking.uri must not send a stopped sweep's records into its own
    store: they wait for the next sweep that tracks where they belong."""
    t, uri = _leftover(compose_cfg, stores, tmp_path, tell=True)
    _, storage, tracker = stores
    (outbox_root(storage.local_file, "S") / f"{os.uname().nodename}-999999999" / "tracking_uri").write_text(uri)
    other = Tracker.start_sweep(f"sqlite:///{tmp_path / 'other.db'}", "E", run_name="sweep-S", tags={}, params={})
    writer = Writer(other, storage, "S")
    assert writer.start() == []
    writer.stop()
    assert MlflowClient(uri).get_run(t.user_attrs["run_id"]).info.status == "RUNNING"  # still waiting
    back = Writer(tracker, storage, "S")
    assert back.start() and MlflowClient(uri).get_run(t.user_attrs["run_id"]).info.status == "FINISHED"
    back.stop()
