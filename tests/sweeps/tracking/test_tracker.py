"""sweeps.tracking against a real SQLite MLflow store: what a trial's run ends up holding."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from sweeps.runner.link import tidy
from sweeps.study.storages import storage_for
from sweeps.tracking.store import local_folder
from sweeps.tracking.tracker import Tracker


@pytest.fixture
def tracker(tmp_path):
    return Tracker.start_sweep(f"sqlite:///{tmp_path / 'mlflow.db'}", "E", run_name="sweep-S",
                               tags={"optuna.study": "S"}, params={"seed": 0})


def test_artifacts_are_logged_in_one_call_of_mlflows_client(tracker, monkeypatch):
    """No write straight into MLflow's folders: the files go through its public client, in one
    call; a writer that writes nothing (a figure left out) leaves no file."""
    calls = []
    real = MlflowClient.log_artifacts

    def counted(self, run_id, local_dir, artifact_path=None):
        calls.append(sorted(p.name for p in Path(local_dir).iterdir()))
        return real(self, run_id, local_dir, artifact_path)

    monkeypatch.setattr(MlflowClient, "log_artifacts", counted)
    run_id = tracker.start_trial(0, tags={"optuna.trial": 0}, params={"train.learning_rate": 0.5})
    tracker.log_artifacts(run_id, {"a.txt": lambda p: p.write_text("a"),
                                   "w.npz": lambda p: np.savez(p, w=np.arange(3)),  # appends .npz unless there
                                   "left_out.png": lambda p: None})  # a figure a writer decided against
    assert calls == [["a.txt", "w.npz"]]
    folder = local_folder(MlflowClient(tracker.uri).get_run(run_id).info.artifact_uri)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "w.npz"]
    assert (folder / "a.txt").read_text() == "a" and np.load(folder / "w.npz")["w"].tolist() == [0, 1, 2]
    assert {a.path for a in MlflowClient(tracker.uri).list_artifacts(run_id)} == {"a.txt", "w.npz"}


def test_a_writer_that_fails_leaves_nothing_of_its_file(tracker):
    run_id = tracker.start_trial(0, tags={}, params={})

    def broken(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        tracker.log_artifacts(run_id, {"a.txt": lambda p: p.write_text("a"), "b.txt": broken})
    folder = local_folder(MlflowClient(tracker.uri).get_run(run_id).info.artifact_uri)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt"]


def test_local_folder_of_artifact_uris():
    assert local_folder("file:///srv/ml%20runs/1/abc/artifacts") == Path("/srv/ml runs/1/abc/artifacts")
    assert local_folder("file://localhost/srv/x") == Path("/srv/x")
    assert local_folder("/srv/a#b?c") == Path("/srv/a#b?c")  # a plain path is not a URL
    for remote in ("file://otherhost/srv/x", "mlflow-artifacts:/1/abc/artifacts", "s3://bucket/x", "http://h/x"):
        assert local_folder(remote) is None, remote


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


def test_a_rejected_end_batch_still_ends_the_run(tracker):
    run_id = tracker.start_trial(0, tags={}, params={})
    with pytest.raises(Exception):
        tracker.end(run_id, "FAILED", {"error": "x"}, metrics={"val_cost": float("nan"), "bad key!": 1.0})
    assert MlflowClient(tracker.uri).get_run(run_id).info.status == "FAILED"


def test_a_finished_run_whose_end_batch_was_lost_ends_failed(tracker):
    """Its record is not whole (a full disk refused the batch): FINISHED would claim it is."""
    run_id = tracker.start_trial(0, tags={}, params={})
    with pytest.raises(Exception):
        tracker.end(run_id, "FINISHED", {"optuna.state": "COMPLETE"}, metrics={"bad key!": 1.0})
    run = MlflowClient(tracker.uri).get_run(run_id)
    assert run.info.status == "FAILED" and "optuna.state" not in run.data.tags


def test_long_tags_are_cut_to_what_mlflow_takes(tracker):
    run_id = tracker.start_trial(0, tags={}, params={})
    tracker.end(run_id, "FAILED", {"error": "e" * 20000})
    assert len(MlflowClient(tracker.uri).get_run(run_id).data.tags["error"]) == 8000


def test_tidy_kills_the_finished_run_of_a_trial_that_was_failed(tracker, tmp_path):
    """A worker killed between ending its run FINISHED and telling Optuna (or told too late, its
    trial failed by another worker meanwhile): the trial is FAIL, so its run must not say FINISHED."""
    spec = str(tmp_path / "o.journal")
    study = optuna.create_study(study_name="S", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(spec)))
    runs = {}
    for state in (TrialState.FAIL, TrialState.COMPLETE, TrialState.FAIL):
        trial = study.ask()
        runs[trial.number] = tracker.start_trial(trial.number, tags={"optuna.study": "S"}, params={})
        trial.set_user_attr("run_id", runs[trial.number])
        ended = "FAILED" if trial.number == 2 else "FINISHED"  # trial 2 failed the ordinary way
        tracker.end(runs[trial.number], ended, {"optuna.state": "COMPLETE" if ended == "FINISHED" else "FAIL"})
        study.tell(trial, 0.5 if state == TrialState.COMPLETE else None, state=state)
    tidy(study, storage_for(spec), tracker)
    client = MlflowClient(tracker.uri)
    status = {n: client.get_run(r).info.status for n, r in runs.items()}
    assert status == {0: "KILLED", 1: "FINISHED", 2: "FAILED"}
    assert client.get_run(runs[0]).data.tags["optuna.state"] == "FAIL"


def test_a_log_beyond_mlflow_batch_limits_is_stored_whole(tracker):
    run_id = tracker.start_trial(0, tags={}, params={f"p{i}": i for i in range(250)})
    tracker.curve_points = 3000
    tracker.end(run_id, "FINISHED", {f"t{i}": i for i in range(150)}, metrics={"val_cost": 0.5},
                curve=(np.arange(2500), np.linspace(1.0, 0.1, 2500)))
    client = MlflowClient(tracker.uri)
    data = client.get_run(run_id).data
    assert len(data.params) == 250 and {f"t{i}" for i in range(150)} <= set(data.tags)
    assert len(client.get_metric_history(run_id, "cost")) == 2500 and data.metrics["val_cost"] == 0.5


def _log_datasets_at_once(uri: str, experiment_id: str, parent: str, barrier, errors) -> None:
    tracker = Tracker(uri, experiment_id=experiment_id, parent_run_id=parent)
    for i in range(8):  # each round a dataset new to the experiment, logged by both processes at once
        tracker.use_dataset(f"d{i}", "nncore.load_dataset('d')",
                            {"training": (np.full((2, 5), float(i)), np.zeros((1, 5)), f"g{i}")})
        run_id = tracker.start_trial(i, tags={}, params={})
        barrier.wait(timeout=60)
        try:
            tracker.log_dataset(run_id)
        except Exception as err:
            errors.put(f"{type(err).__name__}: {str(err)[:200]}")


def test_two_processes_adding_one_dataset_at_once_both_log_it(tracker):
    """MLflow adds a dataset to the experiment with the first run that logs it; two at once raced
    (a unique-key error in one of them, in 3 rounds of 8 here before the retry)."""
    ctx = mp.get_context("fork")
    barrier, errors = ctx.Barrier(2), ctx.SimpleQueue()
    procs = [ctx.Process(target=_log_datasets_at_once, args=(tracker.uri, tracker.experiment_id,
                                                              tracker.parent_run_id, barrier, errors))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0] and errors.empty()
    runs = MlflowClient(tracker.uri).search_runs([tracker.experiment_id],
                                                 filter_string="tags.`nnsweeps.role` = 'trial'")
    assert len(runs) == 16 and all(len(r.inputs.dataset_inputs) == 1 for r in runs)
