"""An invocation that finds its study complete (or stopped) still settles what a sweep killed at its
end left behind: runs left RUNNING end KILLED, a summary cut short is written, the Pareto tags follow
the front and the best network is logged in the store its run is in. Real processes, real signals,
both stores read back with Optuna's and MLflow's own clients."""

from __future__ import annotations

import os
import signal

import pytest
from optuna.trial import TrialState

from tests.conftest import SweepDir, wait_for
from tests.e2e.test_faults import FINISHED, start, trials_in
from tests.e2e.test_multiobjective import SPACE, TWO, pareto_tags

pytestmark = pytest.mark.slow
WHOLE = {"summary.md", "trials.csv"}  # two of the summary's files


def kill_after_last_trial(sweep_dir: SweepDir, n_trials: int, signum: int, *overrides: str) -> None:
    """Starts the sweep and signals it as soon as its study holds n_trials finished trials, while it
    summarises: SIGKILL to its whole process group, SIGTERM to the launcher alone."""
    proc = start(sweep_dir, *overrides, f"sweep.n_trials={n_trials}")
    wait_for(lambda: len(trials_in(sweep_dir, *FINISHED)) >= n_trials or proc.poll() is not None, every=0.05)
    if signum == signal.SIGKILL:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(signum)
    proc.communicate(timeout=60)
    expected = -signal.SIGKILL if signum == signal.SIGKILL else 128 + signum
    assert proc.returncode == expected, "the signal came after the sweep's end"


def artifacts(sweep_dir: SweepDir, run_id: str) -> set[str]:
    return {a.path for a in sweep_dir.client().list_artifacts(run_id)}


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_multi_objective_resume_killed_after_its_last_trial_is_settled_by_the_same_command(sweep_dir, signum):
    sweep_dir.run(*SPACE, TWO, "sweep.n_trials=6")
    first = {r.info.run_id for r in sweep_dir.runs("sweep")}
    kill_after_last_trial(sweep_dir, 12, signum, *SPACE, TWO)
    (cut,) = [r for r in sweep_dir.runs("sweep") if r.info.run_id not in first]
    assert not WHOLE <= artifacts(sweep_dir, cut.info.run_id), "the signal came after the summary"
    front = {t.user_attrs["run_id"] for t in sweep_dir.study().best_trials}
    tagged = {r for r, v in pareto_tags(sweep_dir).items() if v == "true"}
    assert tagged != front, "this resume moves the front (one worker, seeded samplers)"

    proc = sweep_dir.run(*SPACE, TWO, "sweep.n_trials=12")  # nothing left to run
    assert "The study is complete" in proc.stdout
    study = sweep_dir.study()
    assert len(study.get_trials(states=FINISHED)) == 12 and not study.get_trials(states=(TrialState.RUNNING,))
    tags = pareto_tags(sweep_dir)
    assert {r for r, v in tags.items() if v == "true"} == {t.user_attrs["run_id"] for t in study.best_trials}
    assert all(v == "false" for r, v in tags.items() if r not in front) and len(tags) == 12
    assert all(r.info.status != "RUNNING" for r in sweep_dir.runs())
    statuses = {r.info.run_id: r.info.status for r in sweep_dir.runs("sweep")}
    assert len(statuses) == 2 and statuses[cut.info.run_id] == "KILLED"  # no new run
    assert WHOLE | {"pareto_front.png"} <= artifacts(sweep_dir, cut.info.run_id)  # its summary, written now
    again = sweep_dir.run(*SPACE, TWO, "sweep.n_trials=12")
    assert "cut short" in proc.stdout and "cut short" not in again.stdout  # written once


def test_a_resume_under_another_tracking_uri_names_the_store_each_run_is_in(tmp_path):
    """a.db (killed after its last trial, before its best network was logged), b.db, a.db again."""
    a, b = SweepDir(tmp_path), SweepDir(tmp_path)
    a.uri, b.uri = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    # every trial the same network: the best stays trial 0, a.db's, whatever b.db runs
    quick = ("search_space=none", "+search_space.train.learning_rate={type:categorical,choices:[1.0]}",
             "train.iterations=100", "sweep.n_jobs=1", "sweep.pruner=none")
    kill_after_last_trial(a, 3, signal.SIGKILL, *quick)
    best = a.study().best_trial
    run_id = best.user_attrs["run_id"]
    exp = a.client().get_experiment_by_name(a.experiment)
    assert not list(a.client().search_logged_models([exp.experiment_id])), "the kill came after the model"

    proc = b.run(*quick, "sweep.n_trials=5")
    assert b.study().best_trial.number == best.number, "the best stays a trial of a.db"
    assert f"MLFLOW_TRACKING_URI={a.uri} python -m sweeps.reproduce {run_id}" in proc.stdout
    assert f"MLFLOW_TRACKING_URI={b.uri} python -m sweeps.reproduce {run_id}" not in proc.stdout
    assert "Traceback" not in proc.stderr and "was not logged" not in proc.stderr  # its run is not in b.db
    (parent,) = b.runs("sweep")
    summary_md = b.client().download_artifacts(parent.info.run_id, "summary.md", str(tmp_path))
    assert f"MLFLOW_TRACKING_URI={a.uri} python -m sweeps.reproduce {run_id}" in open(summary_md).read()

    proc = a.run(*quick, "sweep.n_trials=5")  # complete: back on a.db, the best network is logged there
    assert "The study is complete" in proc.stdout
    assert [m.source_run_id for m in a.client().search_logged_models([exp.experiment_id])] == [run_id]
    assert [r.info.status for r in a.runs("sweep")] == ["KILLED"]  # the killed launcher's parent run
