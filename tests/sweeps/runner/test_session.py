"""End to end: real `python -m sweeps` processes, a real journal storage, a real SQLite
MLflow store, real worker processes."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

from sweeps.commands import retrain as reproduce
from sweeps.report import summary
from sweeps.runner import finish
from sweeps.tracking.store import local_folder
from sweeps.tracking.tracker import Tracker

pytestmark = pytest.mark.slow

FAST = ["search_space.train.iterations.low=100", "search_space.train.iterations.high=600",
        "search_space.train.iterations.step=100"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def test_parallel_sweep_records_every_trial_then_resumes(sweep_dir, monkeypatch):
    proc = sweep_dir.run("sweep.n_jobs=2", "sweep.n_trials=12", "tracking.trial_figures=true", *FAST)
    assert "Best trial" in proc.stdout

    study = sweep_dir.study()
    finished = study.get_trials(states=FINISHED)
    assert len(finished) == 12 and len(study.trials) == 12
    assert len({t.user_attrs["pid"] for t in finished}) == 2  # both worker processes took trials

    parents = sweep_dir.runs("sweep")
    children = sweep_dir.runs("trial")
    assert len(parents) == 1 and len(children) == 12
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    view = f"127.0.0.1:5000/#/experiments/{parent.info.experiment_id}?workflowType=machine_learning"
    assert proc.stdout.splitlines()[-2:] == [f"MLflow UI, model-training view: http://{view}",
                                             f"  served by: mlflow ui --backend-store-uri {sweep_dir.uri}"]
    client = sweep_dir.client()
    by_trial = {int(r.data.tags["optuna.trial"]): r for r in children}
    assert sorted(by_trial) == list(range(12))
    for t in finished:
        run = by_trial[t.number]
        assert run.info.run_id == t.user_attrs["run_id"]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
        assert run.data.tags["optuna.state"] == t.state.name  # pruned trials are marked as such
        for name, value in t.params.items():  # the sampled values are params, under their paths
            assert run.data.params[name] == str(value)
        assert run.data.params["train.learning_rate"] == str(t.params["train.learning_rate"])
        assert {"train_cost", "val_cost", "train_accuracy", "val_accuracy", "fit_seconds"} <= set(run.data.metrics)
        curve = client.get_metric_history(run.info.run_id, "cost")
        assert 2 <= len(curve) <= 200 and curve[0].step == 0
        # the validation metric at each pruning report, a step metric the run page draws beside cost;
        # its last point is the trial's final value, which is what the run's metric shows
        val = sorted(client.get_metric_history(run.info.run_id, "val_cost"), key=lambda m: m.step)
        assert [m.step for m in val[:-1]] == sorted(t.intermediate_values)  # none for a trial shorter than a report
        assert val[-1].value == run.data.metrics["val_cost"] == t.user_attrs["metrics"]["val_cost"]
        assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
            "config.yaml", "weights.npz", "cost_curve.csv", "cost_curve.png"}
        for tag in ("host", "pid", "seed", "optuna.study", "mlflow.source.git.commit"):
            assert run.data.tags.get(tag), tag
    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"trials.csv", "optimization_history.png", "parallel_coordinate.png", "top_cost_curves.png"} <= parent_files
    # flower is 2-D: the 5 best complete trials got their decision boundary at the end, the others none
    top = {t.number for t in summary.ranked(study)[:summary.TOP]}
    drawn = {n for n, r in by_trial.items()
             if "decision_boundary.png" in {a.path for a in client.list_artifacts(r.info.run_id)}}
    assert drawn == top and top
    png = client.download_artifacts(by_trial[min(top)].info.run_id, "decision_boundary.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "best_val_cost" in parent.data.metrics

    # every trial is reproduced bit for bit from its run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sweep_dir.uri)
    for run in children:
        assert reproduce.main([run.info.run_id]) == 0, run.info.run_name

    # the same command with a larger budget runs only the missing trials
    sweep_dir.run("sweep.n_jobs=2", "sweep.n_trials=15", *FAST)
    again = sweep_dir.study()
    assert len(again.get_trials(states=FINISHED)) == 15 and len(again.trials) == 15
    for before in finished:  # finished trials were kept as they were
        assert again.trials[before.number].params == before.params
    assert len(sweep_dir.runs("trial")) == 15 and len(sweep_dir.runs("sweep")) == 2


def test_pruned_trials_stop_early_and_are_marked(sweep_dir):
    # One worker and a seeded random sampler: deterministic. Learning rates from 1e-4 to 2:
    # the median pruner stops the trials whose validation cost lags at a report.
    sweep_dir.run("sweep.n_jobs=1", "sweep.n_trials=8", "sweep.sampler=random", "sweep.n_startup_trials=1", "sweep.warmup_steps=100",
                  "search_space=none", "+search_space.train.learning_rate={type:float,low:0.0001,high:2.0,log:true}",
                  "train.iterations=1000", "train.report_every=100")
    study = sweep_dir.study()
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, "expected at least one pruned trial"
    runs = {r.data.tags["optuna.trial"]: r for r in sweep_dir.runs("trial")}
    for t in pruned:
        run = runs[str(t.number)]
        assert run.data.tags["optuna.state"] == "PRUNED" and run.info.status == "FINISHED"
        assert run.data.metrics["iterations_run"] == max(t.intermediate_values) + 1 < 1000
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert runs[str(t.number)].data.metrics["iterations_run"] == 1000


def trial_artifacts(sweep_dir, *overrides) -> list[tuple[object, set[str]]]:
    """A 3-trial sweep (one worker) with overrides: (run, its artifact names) per trial."""
    sweep_dir.run("sweep.n_jobs=1", "sweep.n_trials=3", *overrides, *FAST)
    client = sweep_dir.client()
    children = sweep_dir.runs("trial")
    assert len(children) == 3
    return [(run, {a.path for a in client.list_artifacts(run.info.run_id)}) for run in children]


def test_trial_figures_can_be_left_out(sweep_dir):
    for _, names in trial_artifacts(sweep_dir, "tracking.trial_figures=false", "tracking.decision_boundary=none"):
        assert names == {"config.yaml", "weights.npz", "cost_curve.csv"}
    parent, = sweep_dir.runs("sweep")  # the sweep's own figures stay
    assert "optimization_history.png" in {a.path for a in sweep_dir.client().list_artifacts(parent.info.run_id)}


def test_every_trial_draws_its_decision_boundary_when_asked(sweep_dir):
    """tracking.decision_boundary=all, even with the cost curves left out (tracking.trial_figures)."""
    for run, names in trial_artifacts(sweep_dir, "tracking.decision_boundary=all", "tracking.trial_figures=false"):
        diverged = run.data.tags.get("reason", "").startswith("diverged")
        assert ("decision_boundary.png" in names) != diverged, (run.info.run_name, names)
        assert "cost_curve.png" not in names


def test_a_model_that_could_not_be_logged_costs_one_line_and_the_same_command_logs_it(sweep_dir):
    small = ("sweep.n_trials=2", "sweep.n_jobs=1", "search_space=none", "train.iterations=100")
    sweep_dir.run(*small)
    best = summary.best_trial(sweep_dir.study())
    run_id, client = best.user_attrs["run_id"], sweep_dir.client()
    exp = client.get_experiment_by_name(sweep_dir.experiment)
    (model,) = client.search_logged_models([exp.experiment_id])
    assert model.source_run_id == run_id
    # as if the sweep had failed to log it: no model, and its network unreadable for now
    client.delete_logged_model(model.model_id)
    weights = local_folder(client.get_run(run_id).info.artifact_uri) / "weights.npz"
    weights.rename(weights.with_suffix(".away"))
    proc = sweep_dir.run(*small)  # the study is complete: no trial runs
    assert proc.returncode == 0 and "The study is complete" in proc.stdout
    (line,) = [line for line in proc.stderr.splitlines() if "MLflow model" in line]
    assert line.startswith(f"[sweep] warning: trial {best.number}'s network was not logged as an MLflow model ("
                           "FileNotFoundError") and line.endswith("running the same command again logs it")
    assert list(client.search_logged_models([exp.experiment_id])) == []
    weights.with_suffix(".away").rename(weights)
    proc = sweep_dir.run(*small)
    assert f"[sweep] trial {best.number}'s network is the MLflow model runs:/{run_id}/model" in proc.stdout
    assert [m.source_run_id for m in client.search_logged_models([exp.experiment_id])] == [run_id]


def test_a_failed_registration_says_the_model_is_logged_and_registers_next_time(sweep_dir, capsys):
    """Before, it said the model was not logged, and that running again would log it."""
    sweep_dir.run("sweep.n_trials=1", "sweep.n_jobs=1", "search_space=none", "train.iterations=100")
    study = sweep_dir.study()
    tracker = Tracker(sweep_dir.uri, experiment_id=sweep_dir.client().get_experiment_by_name(
        sweep_dir.experiment).experiment_id)
    finish.model_of_best(study, tracker, OmegaConf.create({"tracking": {"register_model": "a/b"}}))
    run_id = study.best_trial.user_attrs["run_id"]
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"[sweep] warning: trial 0's network is the MLflow model runs:/{run_id}/model, but it was "
                           "not registered as 'a/b' (MlflowException: Invalid model name 'a/b'")
    assert line.endswith("running the same command again registers it")
    finish.model_of_best(study, tracker, OmegaConf.create({"tracking": {"register_model": "ab"}}))
    assert f"model runs:/{run_id}/model is now version 1 of registered model 'ab'" in capsys.readouterr().out


def test_a_study_of_several_objectives_logs_no_single_model(compose_cfg, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={})
    run_id = tracker.start_trial(0, {}, {})
    study = optuna.create_study(directions=["minimize", "maximize"])
    study.add_trial(optuna.trial.create_trial(values=[0.1, 0.9], user_attrs={"run_id": run_id}))
    finish.model_of_best(study, tracker, compose_cfg(f"tracking.uri={uri}"))  # a Pareto front: no one best
    assert list(tracker.client.search_logged_models([tracker.experiment_id])) == []


def test_a_sweep_with_tracking_off_never_imports_mlflow(sweep_dir):
    """mlflow's import is seconds of CPU per process, which an untracked sweep must not pay."""
    code = ("import sys, sweeps; sweeps.run(sys.argv[1:]); print('mlflow imported:', 'mlflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code, *sweep_dir.args("sweep.n_trials=2", "sweep.n_jobs=1",
                                                                      "tracking.enabled=false", *FAST)],
                          cwd=sweep_dir.path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "mlflow imported: False" in proc.stdout
    assert len(sweep_dir.study().trials) == 2 and not (sweep_dir.path / "mlflow.db").exists()
