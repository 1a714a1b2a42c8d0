"""sweeps.tracking against a real SQLite MLflow store: what a trial's run ends up holding."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from mlflow import MlflowClient

from sweeps.tracking import Tracker, local_folder


@pytest.fixture
def tracker(tmp_path):
    return Tracker.start_sweep(f"sqlite:///{tmp_path / 'mlflow.db'}", "E", run_name="sweep-S",
                               tags={"optuna.study": "S"}, params={"seed": 0})


def test_artifacts_of_a_local_store_are_written_in_place(tracker, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # a temporary folder would be made here
    run_id = tracker.start_trial(0, tags={"optuna.trial": 0}, params={"train.learning_rate": 0.5})
    tracker.log_artifacts(run_id, {"a.txt": lambda p: p.write_text("a"),
                                   "w.npz": lambda p: np.savez(p, w=np.arange(3))})  # savez appends .npz unless there
    folder = local_folder(MlflowClient(tracker.uri).get_run(run_id).info.artifact_uri)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "w.npz"]  # no .part- file left
    assert (folder / "a.txt").read_text() == "a" and np.load(folder / "w.npz")["w"].tolist() == [0, 1, 2]
    assert {a.path for a in MlflowClient(tracker.uri).list_artifacts(run_id)} == {"a.txt", "w.npz"}
    assert not list(scratch.iterdir())


def test_a_writer_that_fails_leaves_nothing_of_its_file(tracker):
    run_id = tracker.start_trial(0, tags={}, params={})

    def broken(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        tracker.log_artifacts(run_id, {"a.txt": lambda p: p.write_text("a"), "b.txt": broken})
    assert {a.path for a in MlflowClient(tracker.uri).list_artifacts(run_id)} == {"a.txt"}


def test_end_logs_metrics_curve_and_tags_with_the_status(tracker):
    run_id = tracker.start_trial(3, tags={"optuna.state": "RUNNING"}, params={"model.depth": 2})
    costs = np.linspace(1.0, 0.1, 1000)  # (1000,)
    tracker.end(run_id, "FINISHED", {"optuna.state": "COMPLETE"}, metrics={"val_cost": 0.25},
                curve=(np.arange(1000) * 10, costs))
    client = MlflowClient(tracker.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["optuna.state"] == "COMPLETE" and run.data.tags["mlflow.parentRunId"] == tracker.parent_run_id
    assert run.data.params == {"model.depth": "2"} and run.data.metrics["val_cost"] == 0.25
    history = client.get_metric_history(run_id, "cost")
    assert len(history) == tracker.curve_points and (history[0].step, history[-1].step) == (0, 9990)
    assert history[-1].value == costs[-1]
