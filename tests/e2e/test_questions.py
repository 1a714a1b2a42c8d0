"""One study answers one question (real processes and stores): exact grids at n_jobs 2, a study per
dataset by default, a changed question refused before anything is written, conditional entries,
a complete study run again, and the val_* metrics of a study without a validation set."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient

from sweeps.study.question import QUESTION_ATTR

pytestmark = pytest.mark.slow
QUICK = ("search_space=none", "+search_space.train.learning_rate={type:float,low:0.1,high:1.0}",
         "train.iterations=200")


def journal_study(path, name) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(path))))


def test_the_courses_grid_trains_each_width_once_at_two_jobs_and_prints_its_table(sweep_dir):
    proc = sweep_dir.run("+experiment=course_hidden_units", "sweep.study_name=course", "sweep.n_jobs=2",
                         "train.iterations=300")
    widths = sorted(t.params["model.units"] for t in sweep_dir.study_named("course").trials)
    assert widths == [1, 2, 3, 4, 5, 20, 50]
    assert "| model.units | train accuracy | validation accuracy | trial |" in proc.stdout
    parent = sweep_dir.runs("sweep")[0]
    names = {a.path for a in sweep_dir.client().list_artifacts(parent.info.run_id)}
    assert {"hidden_units_table.md", "slice.png", "trials.csv"} <= names
    table = sweep_dir.client().download_artifacts(parent.info.run_id, "hidden_units_table.md", str(sweep_dir.path))
    assert open(table).read().count("\n| ") == 8  # the header and 7 widths


def test_each_dataset_gets_its_own_study_and_experiment_by_default(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    for dataset in ("flower", "moons"):
        subprocess.run([sys.executable, "-m", "sweeps", f"dataset={dataset}", "sweep.n_trials=4", *QUICK,
                        f"hydra.run.dir={tmp_path / 'h'}"], cwd=tmp_path, env=env, check=True, capture_output=True,
                       timeout=300)
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    for dataset in ("flower", "moons"):
        study = journal_study(tmp_path / "outputs" / f"{dataset}.journal", dataset)
        assert len(study.trials) == 4 and '"dataset.name": "' + dataset in study.user_attrs[QUESTION_ATTR]
        exp = client.get_experiment_by_name(dataset)
        assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
        runs = client.search_runs([exp.experiment_id])
        trials = [r for r in runs if r.data.tags.get("nnsweeps.role") == "trial"]
        assert len(trials) == 4 and all(r.data.params["dataset.name"] == dataset for r in trials)
        (parent,) = [r for r in runs if r.data.tags.get("nnsweeps.role") == "sweep"]
        assert parent.info.run_name == f"sweep-{dataset}-{dataset}" and parent.data.tags["dataset"] == dataset
        assert parent.data.tags[QUESTION_ATTR] == study.user_attrs[QUESTION_ATTR]  # on the run too


def test_a_changed_question_is_refused_before_anything_is_written(sweep_dir):
    sweep_dir.run("sweep.n_trials=3", *QUICK)
    journal, runs = sweep_dir.journal.read_bytes(), len(sweep_dir.runs())
    changed = [o.replace("high:1.0", "high:0.5") for o in QUICK]
    proc = sweep_dir.run("sweep.n_trials=6", *changed, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "search_space.train.learning_rate: float in [0.1, 1.0], log -> float in [0.1, 0.5], log" not in proc.stderr
    assert "search_space.train.learning_rate: float in [0.1, 1.0] -> float in [0.1, 0.5]" in proc.stderr
    assert "sweep.study_name=NEW_NAME" in proc.stderr
    assert sweep_dir.journal.read_bytes() == journal and len(sweep_dir.runs()) == runs
    metric = sweep_dir.run("sweep.n_trials=6", *QUICK, "sweep.metric=val_accuracy", check=False)  # issue: worst as best
    assert metric.returncode == 2 and "sweep.metric: val_cost -> val_accuracy" in metric.stderr
    assert sweep_dir.journal.read_bytes() == journal
    # warm start: a new study from the old one's trials inside the new range
    proc = sweep_dir.run("sweep.study_name=narrow", "sweep.n_trials=4", *changed, "sweep.warm_start=S")
    inside = [t for t in sweep_dir.study().trials if t.params["train.learning_rate"] <= 0.5]
    assert f"took {len(inside)} of its 3 complete trials" in proc.stdout
    assert len(sweep_dir.study_named("narrow").trials) == 4


def test_a_conditional_parameter_is_sampled_only_when_its_condition_holds(sweep_dir):
    sweep_dir.run("sweep.n_trials=8", "sweep.sampler=random", "search_space=none", "train.iterations=200",
                  "+search_space.train.optimizer={type:categorical,choices:[gd,momentum]}",
                  "+search_space.train.learning_rate={type:float,low:0.1,high:1.0}",
                  "+search_space.train.optimizers.momentum.beta={type:float,low:0.5,high:0.99,when:{train.optimizer:momentum}}")
    trials = sweep_dir.study().trials
    assert {t.params["train.optimizer"] for t in trials} == {"gd", "momentum"}
    for t in trials:
        assert ("train.optimizers.momentum.beta" in t.params) == (t.params["train.optimizer"] == "momentum")
    runs = {r.data.tags["optuna.trial"]: r for r in sweep_dir.runs("trial")}
    for t in trials:
        sampled = runs[str(t.number)].data.tags["sampled"].split(",")
        assert ("train.optimizers.momentum.beta" in sampled) == (t.params["train.optimizer"] == "momentum")


def test_a_complete_study_run_again_creates_no_run_and_says_how_to_extend_it(sweep_dir):
    sweep_dir.run("sweep.n_trials=2", *QUICK)
    runs = len(sweep_dir.runs())
    proc = sweep_dir.run("sweep.n_trials=2", *QUICK)
    assert len(sweep_dir.runs()) == runs and "The study is complete" in proc.stdout
    assert "sweep.n_trials=4" in proc.stdout and "Best trial" in proc.stdout


def test_without_a_validation_set_the_runs_say_the_val_metrics_are_the_training_sets(sweep_dir):
    proc = sweep_dir.run("sweep.n_trials=2", *QUICK, "dataset.val_fraction=0")
    assert "dataset.val_fraction=0: the val_* metrics are computed on the training set" in proc.stdout
    assert all(r.data.tags["val_set"] == "training set" for r in sweep_dir.runs())
    assert "computed on the training set" in proc.stdout.split("Study 'S'")[1]
    parent = sweep_dir.runs("sweep")[0]
    path = sweep_dir.client().download_artifacts(parent.info.run_id, "trials.csv", str(sweep_dir.path))
    table = pd.read_csv(path)
    assert table["val_cost"].dtype == float and table["train.learning_rate"].dtype == float
    assert (table["val_cost"] == table["train_cost"]).all()


def test_a_changed_csv_under_the_same_study_is_refused_naming_its_digest(sweep_dir):
    csv = sweep_dir.path / "points.csv"
    rows = [f"{i},{i % 7},{i % 2}" for i in range(40)]
    csv.write_text("x1,x2,y\n" + "\n".join(rows) + "\n")
    data = ("dataset=csv", f"dataset.kwargs.path={csv}", "dataset.kwargs.label=y")
    sweep_dir.run("sweep.n_trials=2", *QUICK, *data)
    asked = sweep_dir.study().user_attrs[QUESTION_ATTR]
    for run in sweep_dir.runs():  # the parent run and every trial run: both splits
        inputs = run.inputs.dataset_inputs
        assert {(i.dataset.name, i.tags[0].value) for i in inputs} == {("points.csv", "training"),
                                                                      ("points.csv", "validation")}
    rows[5] = "5,6,1"  # one cell changed
    csv.write_text("x1,x2,y\n" + "\n".join(rows) + "\n")
    journal = sweep_dir.journal.read_bytes()
    proc = sweep_dir.run("sweep.n_trials=4", *QUICK, *data, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    old = json.loads(asked)["dataset.digest"]
    assert f"dataset.digest: {old} -> training " in proc.stderr and old.startswith("training ")
    assert sweep_dir.journal.read_bytes() == journal
