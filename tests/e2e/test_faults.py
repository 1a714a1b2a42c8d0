"""A sweep survives crashes, concurrency and divergence, and loses nothing (issue: reliability).

Real processes, killed for real; the stores are read back with Optuna's and MLflow's clients.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from optuna.trial import TrialState

from sweeps.services import MlflowServer, free_port
from tests.conftest import wait_for

pytestmark = pytest.mark.slow

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# trials of about 0.3-0.6 s: long enough to be caught running, short enough for CI
STEADY = ["search_space=none", "+search_space.train.learning_rate={type:float,low:0.5,high:1.5}",
          "model.hidden_units=[16]", "train.iterations=3000", "sweep.pruner=none"]


def start(sweep_dir, *overrides):
    """The sweep as its own process group, so the launcher and its workers can be killed together."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": sweep_dir.uri}
    return subprocess.Popen([sys.executable, "-m", "sweeps", *sweep_dir.args(*overrides)], cwd=sweep_dir.path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def trials_in(sweep_dir, *states):
    if not sweep_dir.journal.exists():
        return []
    try:
        return sweep_dir.study().get_trials(states=states)
    except Exception:  # the study may not exist yet
        return []


def assert_consistent(sweep_dir, n_trials):
    """Exactly n_trials finished trials, each with exactly one FINISHED run; no run or trial left
    running; every failed trial's run (if it got one) ended KILLED or FAILED; no Default runs."""
    study = sweep_dir.study()
    finished = study.get_trials(states=FINISHED)
    assert len(finished) == n_trials
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    runs = sweep_dir.runs("trial")
    per_trial = Counter(r.data.tags["optuna.trial"] for r in runs)
    for t in finished:
        assert per_trial[str(t.number)] == 1, f"trial {t.number} has {per_trial[str(t.number)]} runs"
    by_trial = {r.data.tags["optuna.trial"]: r for r in runs}
    for t in finished:
        run = by_trial[str(t.number)]
        assert run.info.status == "FINISHED" and run.data.tags["optuna.state"] == t.state.name
    for t in study.get_trials(states=(TrialState.FAIL,)):
        if str(t.number) in by_trial:
            assert by_trial[str(t.number)].info.status in ("KILLED", "FAILED")
    assert all(r.info.status != "RUNNING" for r in sweep_dir.runs())
    default = sweep_dir.client().get_experiment_by_name("Default")
    if default is not None:
        assert not sweep_dir.client().search_runs([default.experiment_id])
    return study


def test_kill_9_of_the_whole_sweep_then_the_same_command_resumes(sweep_dir):
    args = ["sweep.n_jobs=2", "sweep.n_trials=12", *STEADY]
    proc = start(sweep_dir, *args)
    wait_for(lambda: len(trials_in(sweep_dir, *FINISHED)) >= 3 and trials_in(sweep_dir, TrialState.RUNNING))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = sweep_dir.study()
    done = {t.number: t.params for t in before.get_trials(states=FINISHED)}
    cut = {t.number: t.params for t in before.get_trials(states=(TrialState.RUNNING,))}
    assert cut, "some trials were running when the sweep was killed"

    out = sweep_dir.run(*args)
    assert "left running by a process that is gone" in out.stdout
    study = assert_consistent(sweep_dir, 12)
    for number, params in done.items():  # finished trials kept, exactly as they were
        assert study.trials[number].params == params and study.trials[number].state in FINISHED
    retried = {t.user_attrs.get("retry_of"): t for t in study.trials if "retry_of" in t.user_attrs}
    for number, params in cut.items():
        assert study.trials[number].state == TrialState.FAIL
        if params:  # the parameters ran again (killed before it sampled anything, a retry samples afresh)
            assert retried[number].params == params
        else:
            assert number in retried
    killed = [r for r in sweep_dir.runs("trial") if r.info.status == "KILLED"]
    assert {r.data.tags["optuna.trial"] for r in killed} <= {str(n) for n in cut}
    assert [r.info.status for r in sweep_dir.runs("sweep")].count("KILLED") == 1


def test_kill_9_of_one_worker_while_the_sweep_goes_on(sweep_dir):
    proc = start(sweep_dir, "sweep.n_jobs=2", "sweep.n_trials=12", *STEADY)
    while True:
        victim = wait_for(lambda: [t for t in trials_in(sweep_dir, TrialState.RUNNING)
                                   if int(t.user_attrs.get("pid", proc.pid)) != proc.pid
                                   and len(trials_in(sweep_dir, *FINISHED)) >= 2])[0]
        pid = victim.user_attrs["pid"]
        # stopped first, so that it cannot finish its trial between this look and the kill (it had
        # moved on to its next trial, not yet marked with its pid, now and then): killed if it still
        # runs a trial, else let go and picked again
        os.kill(int(pid), signal.SIGSTOP)
        if [t for t in trials_in(sweep_dir, TrialState.RUNNING) if t.user_attrs.get("pid") == pid]:
            os.kill(int(pid), signal.SIGKILL)
            break
        os.kill(int(pid), signal.SIGCONT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "worker process died" in err
    study = assert_consistent(sweep_dir, 12)
    # the trial the killed process was running (it may have moved on from `victim` meanwhile)
    dead, = [t for t in study.get_trials(states=(TrialState.FAIL,)) if t.user_attrs.get("pid") == pid]
    assert any(t.user_attrs.get("retry_of") == dead.number and (t.params == dead.params or not dead.params)
               for t in study.get_trials(states=FINISHED))


def test_ctrl_c_kills_runs_exits_130_and_the_next_run_resumes(sweep_dir):
    # trials that train ~1.5 s and log ~0.1 s: a Ctrl-C lands in a training, which stops at its next
    # recorded cost (its run KILLED); one that lands while a trial logs lets that trial finish
    args = ["sweep.n_jobs=2", "sweep.n_trials=10", *STEADY, "train.iterations=100000"]
    proc = start(sweep_dir, *args)
    wait_for(lambda: len(trials_in(sweep_dir, *FINISHED)) >= 2 and trials_in(sweep_dir, TrialState.RUNNING))
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    study = sweep_dir.study()
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert any(r.info.status == "KILLED" for r in sweep_dir.runs("trial"))
    assert all(r.info.status != "RUNNING" for r in sweep_dir.runs())
    sweep_dir.run(*args)
    assert_consistent(sweep_dir, 10)


def test_a_diverging_learning_rate_is_recorded_and_never_best(sweep_dir):
    sweep_dir.run("sweep.n_jobs=1", "sweep.n_trials=4", "sweep.sampler=grid", "search_space=none",
                  "+search_space.train.learning_rate={type:categorical,choices:[0.5,1000.0]}",
                  "model.activation=relu", "model.init=he", "train.iterations=300")
    study = assert_consistent(sweep_dir, 2)  # the grid has 2 points
    bad = [t for t in study.trials if t.params["train.learning_rate"] == 1000.0][0]
    good = [t for t in study.trials if t.params["train.learning_rate"] == 0.5][0]
    assert bad.state == TrialState.PRUNED and bad.user_attrs["diverged"].startswith("diverged at iteration")
    assert study.best_trial.number == good.number
    run = {r.data.tags["optuna.trial"]: r for r in sweep_dir.runs("trial")}[str(bad.number)]
    assert run.data.tags["reason"].startswith("diverged at iteration")
    curve = sweep_dir.client().get_metric_history(run.info.run_id, "cost")
    assert len(curve) > 10  # the curve up to the divergence is kept


def test_a_failing_trial_is_recorded_and_too_many_in_a_row_stop_the_sweep(sweep_dir):
    # softmax needs >= 2 output units: on the 2-class flower every softmax trial raises
    sweep_dir.run("sweep.n_jobs=1", "sweep.n_trials=6", "sweep.sampler=random", "search_space=none",
                  "+search_space.model.output={type:categorical,choices:[sigmoid,softmax]}",
                  "train.iterations=200", "sweep.max_failures=50")
    study = assert_consistent(sweep_dir, 6)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert failed and all("softmax" in t.user_attrs["error"] for t in failed)
    runs = {r.data.tags["optuna.trial"]: r for r in sweep_dir.runs("trial")}
    for t in failed:
        assert runs[str(t.number)].info.status == "FAILED"
        assert "softmax" in runs[str(t.number)].data.tags["error"]

    sweep_dir.study_name = "always_fails"
    proc = sweep_dir.run("sweep.n_jobs=1", "sweep.n_trials=20", "search_space=none", "model.output=softmax",
                         "sweep.max_failures=3", check=False)
    assert proc.returncode == 1
    assert "3 trials failed in a row" in proc.stderr and "Traceback" not in proc.stderr
    assert len(sweep_dir.study().get_trials(states=(TrialState.FAIL,))) == 3


def test_two_launchers_at_once_share_the_study_exactly(sweep_dir):
    # trials long enough that neither launcher finishes the budget before the other has started
    args = ["sweep.n_jobs=2", "sweep.n_trials=10", "search_space.train.iterations.low=3000",
            "search_space.train.iterations.high=6000", "search_space.train.iterations.step=1000"]
    procs = [start(sweep_dir, *args) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "database is locked" not in err
    study = assert_consistent(sweep_dir, 10)
    assert len(study.trials) == 10 and sorted(t.number for t in study.trials) == list(range(10))
    experiments = [e.name for e in sweep_dir.client().search_experiments()]
    assert experiments.count("E") == 1
    assert len(sweep_dir.runs("sweep")) == 2 and len(sweep_dir.runs("trial")) == 10


def test_four_workers_fifty_trials_each_every_point_recorded(sweep_dir):
    sweep_dir.run("sweep.n_jobs=4", "sweep.n_trials=200", "search_space=none", "sweep.sampler=random",
                  "+search_space.train.learning_rate={type:float,low:0.1,high:1.5,log:true}",
                  "train.iterations=150", "tracking.curve_points=150", "sweep.pruner=none", timeout=600)
    study = assert_consistent(sweep_dir, 200)
    assert len({t.user_attrs["pid"] for t in study.trials}) == 4
    runs = sweep_dir.runs("trial")
    assert len(runs) == 200
    client = sweep_dir.client()
    points = [len(client.get_metric_history(r.info.run_id, "cost")) for r in runs]
    assert points == [150] * 200


def test_a_torn_journal_line_and_a_stale_lock_are_repaired_and_said(sweep_dir):
    args = ["sweep.n_jobs=1", "search_space.train.iterations.low=100", "search_space.train.iterations.high=200",
            "search_space.train.iterations.step=100"]
    sweep_dir.run("sweep.n_trials=3", *args)
    with open(sweep_dir.journal, "a") as f:
        f.write('{"op_code": 6, "worker_id": "dead", "trial_id": 2, "sta')  # a write cut short
    lock = sweep_dir.journal.with_name(sweep_dir.journal.name + ".lock")
    lock.write_text("")
    os.utime(lock, (time.time() - 120, time.time() - 120))
    out = sweep_dir.run("sweep.n_trials=5", *args)
    assert "torn by a crash" in out.stdout and "stale lock file" in out.stdout
    assert_consistent(sweep_dir, 5)
    assert list(sweep_dir.path.glob("optuna.journal.torn-*"))


def test_names_cannot_lead_artifacts_outside_the_output_folder(sweep_dir):
    sweep_dir.experiment = "../../escape"
    sweep_dir.run("sweep.n_jobs=1", "sweep.n_trials=1", "search_space=none", "train.iterations=50")
    exp = sweep_dir.client().get_experiment_by_name("../../escape")
    assert exp.artifact_location.startswith((sweep_dir.path / "mlartifacts").as_uri())
    assert not (sweep_dir.path.parent / "escape").exists() and not (sweep_dir.path.parent.parent / "escape").exists()
    proc = sweep_dir.run("sweep.study_name=../evil", check=False)
    assert proc.returncode == 2 and "sweep.study_name" in proc.stderr


def test_a_tracking_server_that_stops_mid_sweep_and_comes_back_loses_nothing(sweep_dir):
    """A real `mlflow server` on 127.0.0.1, stopped after 3 trials and started again 10 s later:
    the workers wait for it (docs/reliability.md) and the sweep ends at exactly n_trials, each
    trial with its one FINISHED run, nothing left running."""
    server = MlflowServer(f"sqlite:///{sweep_dir.path / 'mlflow.db'}", sweep_dir.path / "artifacts",
                          port=free_port(), log=sweep_dir.path / "server.log").start()
    sweep_dir.uri = server.uri  # the sweep, and the checks below, talk to the server
    try:
        proc = start(sweep_dir, "sweep.n_jobs=2", "sweep.n_trials=10", *STEADY)
        wait_for(lambda: len(trials_in(sweep_dir, *FINISHED)) >= 3)
        server.stop()
        time.sleep(10)
        assert proc.poll() is None  # still at work, not failed
        server.start()
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0 and "Traceback" not in err, err
        assert_consistent(sweep_dir, 10)
        assert not sweep_dir.study().get_trials(states=(TrialState.FAIL,))
    finally:
        server.stop()
