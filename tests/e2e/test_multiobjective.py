"""Several objectives and constraints, end to end (real processes and stores, read back with Optuna's
and MLflow's own clients): `python -m sweeps sweep.metric=[val_cost,n_params] sweep.n_trials=12`
makes a 2-objective study, pareto_front.png on the parent run and pareto=true on exactly the runs of
study.best_trials; a resume moves the tags with the front; a constrained sweep tags its infeasible
trials feasible=false and takes its best from the feasible ones."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n"
# a quick space where n_params varies: flower's [2, units, 1] has 4 * units + 1 weights and biases
SPACE = ("search_space=none", "+search_space.train.learning_rate={type:float,low:0.1,high:2.0,log:true}",
         "+search_space.model.units={type:int,low:1,high:16}", "train.iterations=200", "sweep.n_jobs=1")
TWO = "sweep.metric=[val_cost,n_params]"


def pareto_tags(sweep_dir) -> dict[str, str]:
    return {r.info.run_id: r.data.tags.get("pareto") for r in sweep_dir.runs("trial")}


def report(sweep_dir) -> str:
    proc = subprocess.run([sys.executable, "-m", "sweeps.report", "--top", "30"], cwd=sweep_dir.path,
                          env={**os.environ, "MLFLOW_TRACKING_URI": sweep_dir.uri}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_two_metrics_make_a_front_that_is_drawn_tagged_listed_and_kept_true_across_a_resume(sweep_dir):
    proc = sweep_dir.run(*SPACE, TWO, "sweep.n_trials=12")
    study = sweep_dir.study()
    assert len(study.directions) == 2 and len(study.trials) == 12
    assert "sweep.pruner=median does not apply to several metrics" in proc.stdout
    [parent] = sweep_dir.runs("sweep")
    assert parent.data.tags["sampler"] == "nsgaii" and parent.data.tags["pruner"] == "none"
    client = sweep_dir.client()
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"pareto_front.png", "hypervolume_history.png", "summary.md", "trials.csv"} <= names
    path = client.download_artifacts(parent.info.run_id, "pareto_front.png", str(sweep_dir.path))
    assert open(path, "rb").read().startswith(PNG)

    front = {t.user_attrs["run_id"]: t for t in study.best_trials}
    tags = pareto_tags(sweep_dir)
    assert {r for r, v in tags.items() if v == "true"} == set(front)  # exactly the runs of study.best_trials
    assert all(v == "false" for r, v in tags.items() if r not in front) and len(tags) == 12
    text = report(sweep_dir)
    assert f"Pareto front: {len(front)} trials by val_cost (minimize), n_params (minimize)" in proc.stdout
    assert f"Pareto front: {len(front)} trials by val_cost (minimize), n_params (minimize):" in text
    for run_id in front:  # each with the command that reproduces it, on the terminal and in the report
        assert f"python -m sweeps.reproduce {run_id}" in proc.stdout and f"python -m sweeps.reproduce {run_id}" in text

    sweep_dir.run(*SPACE, TWO, "sweep.n_trials=30")  # a resume: new trials push some off the front
    study = sweep_dir.study()
    now = {t.user_attrs["run_id"] for t in study.best_trials}
    tags = pareto_tags(sweep_dir)
    assert {r for r, v in tags.items() if v == "true"} == now and len(tags) == 30
    left = set(front) - now
    assert left, "one worker and seeded samplers: this resume moves the front"
    assert all(tags[r] == "false" for r in left)  # a trial that left the front lost its tag


def test_a_constrained_sweep_tags_its_infeasible_trials_and_takes_its_best_from_the_feasible(sweep_dir):
    proc = sweep_dir.run(*SPACE, "sweep.constraints=['n_params <= 17']", "sweep.n_trials=12", "sweep.pruner=none")
    study = sweep_dir.study()
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    infeasible = {t.user_attrs["run_id"] for t in complete if t.constraints["n_params <= 17"] > 0}
    assert all((t.constraints["n_params <= 17"] > 0) == (t.params["model.units"] > 4) for t in complete)
    runs = {r.info.run_id: r for r in sweep_dir.runs("trial")}
    assert {r for r, run in runs.items() if run.data.tags.get("feasible") == "false"} == infeasible
    assert infeasible and all(runs[r].data.tags["feasible"] == "true" for r in set(runs) - infeasible)
    best = min((t for t in complete if t.user_attrs["run_id"] not in infeasible), key=lambda t: t.value)
    assert study.best_trial.number == best.number  # Optuna reads the trials' constraints the same way
    assert min(t.value for t in complete) < best.value, "a wider network would have won without the constraint"
    [parent] = sweep_dir.runs("sweep")
    assert parent.data.tags["best_run_id"] == best.user_attrs["run_id"]
    assert f"Best trial {best.number}: val_cost = {best.value:.6g}" in proc.stdout
    assert "Constraints n_params <= 17: the best trial comes from the feasible trials" in proc.stdout
    text = report(sweep_dir)  # ranks the feasible trials first
    assert f"reproduce the best: MLFLOW_TRACKING_URI={sweep_dir.uri} python -m sweeps.reproduce " \
           f"{best.user_attrs['run_id']}" in text
