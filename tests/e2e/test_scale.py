"""Scaling out (issue: scale-out): real servers on 127.0.0.1 only.

A PostgreSQL server (the shared Optuna storage, and the MLflow server's backend) started from a
throwaway data directory and an `mlflow server` over it proxying artifacts (tests/e2e/conftest.py,
which says when they skip), and a Dask LocalCluster of two worker processes. Sweeps run as real
`python -m sweeps` / `python -m sweeps.worker` processes; the stores are read back with Optuna's
and MLflow's own clients.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.commands import retrain as reproduce
from sweeps.processes import alive
from sweeps.report import summary
from sweeps.urls import with_driver
from tests.conftest import wait_for
from tests.e2e.conftest import Sweep

pytestmark = pytest.mark.slow

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# trials of about 0.3-0.6 s of training, so that some are caught running
STEADY = ["search_space=none", "+search_space.train.learning_rate={type:float,low:0.5,high:1.5}",
          "model.hidden_units=[16]", "train.iterations=3000", "sweep.pruner=none", "sweep.sampler=random"]
QUICK = ["search_space.train.iterations.low=100", "search_space.train.iterations.high=600",
         "search_space.train.iterations.step=100"]
HEARTBEAT = ["sweep.heartbeat_interval=1", "sweep.grace_period=3"]


# ---- servers (PostgreSQL and MLflow: tests/e2e/conftest.py) -----------------------------------
@pytest.fixture(scope="session")
def dask_cluster():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", silence_logs=40)
    client = Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


def assert_consistent(sweep: Sweep, n_trials: int) -> optuna.Study:
    """Exactly n_trials finished trials, each with exactly one FINISHED run under a parent run; no
    trial or run left running; every failed trial's run (if it got one) KILLED or FAILED."""
    study = sweep.study()
    finished = study.get_trials(states=FINISHED)
    assert len(finished) == n_trials
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    runs = sweep.runs("trial")
    per_trial = Counter(r.data.tags["optuna.trial"] for r in runs)
    by_trial = {r.data.tags["optuna.trial"]: r for r in runs}
    parents = {r.info.run_id for r in sweep.runs("sweep")}
    for t in finished:
        assert per_trial[str(t.number)] == 1, f"trial {t.number} has {per_trial[str(t.number)]} runs"
        run = by_trial[str(t.number)]
        assert run.info.run_id == t.user_attrs["run_id"]
        assert run.info.status == "FINISHED" and run.data.tags["optuna.state"] == t.state.name
        assert run.data.tags["mlflow.parentRunId"] in parents
        assert run.data.tags["host"] == t.user_attrs["host"] and run.data.tags["pid"] == t.user_attrs["pid"]
    for t in study.get_trials(states=(TrialState.FAIL,)):
        if str(t.number) in by_trial:
            assert by_trial[str(t.number)].info.status in ("KILLED", "FAILED")
    assert all(r.info.status != "RUNNING" for r in sweep.runs())
    return study


# ---- the tests -------------------------------------------------------------------------------
def test_a_dask_sweep_over_postgresql_and_an_mlflow_server(sweep, dask_cluster, mlflow_server):
    cluster, client = dask_cluster
    worker_pids = set(client.run(os.getpid).values())
    _, out, _ = sweep.run("sweep.backend=dask", f"sweep.scheduler={cluster.scheduler_address}", "sweep.n_jobs=-1",
                          "sweep.n_trials=20", "tracking.trial_figures=true", *HEARTBEAT, *QUICK)
    assert "2 Dask task(s) on the 2 worker thread(s)" in out and "Best trial" in out

    study = assert_consistent(sweep, 20)
    assert len(study.trials) == 20  # exact: no trial beyond the budget, on any worker
    pids = {int(t.user_attrs["pid"]) for t in study.trials}
    assert len(pids) >= 2 and pids <= worker_pids  # run by the Dask workers, both of them
    assert all(t.user_attrs["host"] for t in study.trials)

    parent, = sweep.runs("sweep")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["optuna.storage"] == sweep.storage
    assert study.user_attrs["nnsweeps.mlflow"]["parent_run_id"] == parent.info.run_id
    children = sweep.runs("trial")
    assert len(children) == 20
    mlflow = sweep.client()
    # artifacts went through the server (proxied), into its artifacts folder
    assert mlflow.get_experiment_by_name(sweep.name).artifact_location.startswith("mlflow-artifacts:")
    for run in children:
        assert {a.path for a in mlflow.list_artifacts(run.info.run_id)} >= {
            "config.yaml", "weights.npz", "cost_curve.csv", "cost_curve.png"}
    stored = {p.name for p in mlflow_server.artifacts.rglob("*") if p.is_file()}
    assert {"config.yaml", "weights.npz", "cost_curve.csv", "trials.csv"} <= stored
    assert "trials.csv" in {a.path for a in mlflow.list_artifacts(parent.info.run_id)}
    # the best trials' decision boundaries, drawn from weights and configs downloaded from the server
    top = {str(t.number) for t in summary.ranked(study)[:summary.TOP]}
    drawn = {r.data.tags["optuna.trial"] for r in children
             if "decision_boundary.png" in {a.path for a in mlflow.list_artifacts(r.info.run_id)}}
    assert drawn == top and top
    # a trial is reproduced bit for bit from what the server holds
    os.environ["MLFLOW_TRACKING_URI"] = sweep.uri
    try:
        assert reproduce.main([children[0].info.run_id]) == 0
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI")


def test_dask_workers_never_import_mlflow_and_the_launcher_records_each_trial_once(sweep, dask_cluster):
    """A Dask worker's trial comes back to the launcher as its task's result, whose writer makes
    its run: the worker processes never import mlflow, and a pruned (diverged) trial has its run too."""
    cluster, client = dask_cluster
    client.wait_for_workers(2, timeout=60)
    worker_pids = set(client.run(os.getpid).values())
    rates = "[0.3,0.5,0.8,1000.0,2000.0,3000.0]"  # the last three diverge: pruned
    sweep.run("sweep.backend=dask", f"sweep.scheduler={cluster.scheduler_address}", "sweep.n_jobs=2",
              "sweep.n_trials=6", "sweep.sampler=grid", "search_space=none",
              f"+search_space.train.learning_rate={{type:categorical,choices:{rates}}}", "model.activation=relu",
              "model.init=he", "train.iterations=300", *HEARTBEAT)
    study = assert_consistent(sweep, 6)  # one FINISHED run per finished trial
    assert len(study.trials) == 6
    assert {int(t.user_attrs["pid"]) for t in study.trials} <= worker_pids
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert sorted(t.params["train.learning_rate"] for t in pruned) == [1000.0, 2000.0, 3000.0]
    runs = {r.data.tags["optuna.trial"]: r for r in sweep.runs("trial")}
    for t in pruned:
        assert runs[str(t.number)].data.tags["reason"].startswith("diverged at iteration")
    for t in study.trials:  # the run spans its trial, though it was made once the trial had ended
        run = runs[str(t.number)]
        assert run.info.start_time <= t.datetime_start.timestamp() * 1000 + 1000
        assert run.info.end_time >= run.info.start_time
        assert "weights.npz" in {a.path for a in sweep.client().list_artifacts(run.info.run_id)}
    assert set(client.run(lambda: "mlflow" in sys.modules).values()) == {False}


def test_killing_a_dask_worker_mid_sweep_still_finishes_every_trial(sweep, dask_cluster):
    cluster, client = dask_cluster
    client.wait_for_workers(2, timeout=60)
    worker_pids = set(client.run(os.getpid).values())
    # trials of about a second: one that started 0.3 s ago is still training on its worker, not
    # already handed back to the launcher (which records it, then tells Optuna)
    longer = [a if not a.startswith("train.iterations=") else "train.iterations=15000" for a in STEADY]
    proc = sweep.start("sweep.backend=dask", f"sweep.scheduler={cluster.scheduler_address}", "sweep.n_jobs=2",
                       "sweep.n_trials=20", *HEARTBEAT, *longer)
    try:
        victim = None
        for _ in range(3):  # a worker killed between two trials leaves none behind: kill again
            # a trial that started a moment ago, so that it likely still runs when its worker is killed
            pid = int(wait_for(lambda: len(sweep.trials(*FINISHED)) >= 3 and [
                t for t in sweep.trials(TrialState.RUNNING) if int(t.user_attrs.get("pid", 0)) in worker_pids
                and (datetime.now() - t.datetime_start).total_seconds() < 0.3], every=0.05)[0].user_attrs["pid"])
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not alive(pid), timeout=30, every=0.01)
            # what it ran when it died (not the trial seen above if that one ended meanwhile). A
            # trial whose result had reached the launcher stays RUNNING until the launcher has
            # recorded it, then is COMPLETE (sweeps.runner.cluster); one that died with its worker
            # is failed a grace period later: wait until each has ended, and take a failed one
            running = {t.number for t in sweep.trials(TrialState.RUNNING) if int(t.user_attrs.get("pid", 0)) == pid}
            if not running:
                continue

            def ended():
                trials = [t for t in sweep.trials() if t.number in running]
                return trials if all(t.state != TrialState.RUNNING for t in trials) else None

            failed = [t for t in wait_for(ended, timeout=60) if t.state == TrialState.FAIL]
            if failed:
                victim = failed[0]
                break
        assert victim is not None, "no worker was killed in the middle of a trial"
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    study = assert_consistent(sweep, 20)
    dead = study.trials[victim.number]
    assert dead.state == TrialState.FAIL  # its heartbeat stopped: failed by the other worker...
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retry) == 1 and retry[0].state in FINISHED and retry[0].params == victim.params  # ...and run again
    assert retry[0].user_attrs["pid"] != victim.user_attrs["pid"]
    run = {r.data.tags["optuna.trial"]: r for r in sweep.runs("trial")}.get(str(victim.number))
    assert run is None or run.info.status == "KILLED"


def test_a_worker_started_by_hand_joins_the_sweep_and_its_parent_run(sweep):
    # trials long enough that the launcher cannot run all 16 while the worker starts (3-5 s here)
    longer = [a if not a.startswith("train.iterations=") else "train.iterations=8000" for a in STEADY]
    launcher = sweep.start("sweep.n_jobs=1", "sweep.n_trials=16", *HEARTBEAT, *longer)
    try:
        wait_for(lambda: sweep.trials() and "nnsweeps.mlflow" in sweep.study().user_attrs, timeout=120)
        code, out, err = sweep.run("sweep.n_jobs=1", "sweep.n_trials=16", *HEARTBEAT, *longer,
                                   module="sweeps.worker")
        l_out, l_err = launcher.communicate(timeout=300)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode == 0, l_err
    assert "the sweep’s" in out and "[worker] done:" in out
    study = assert_consistent(sweep, 16)
    assert len(study.trials) == 16
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2  # the launcher's worker and the joined one
    parent, = sweep.runs("sweep")  # the joined worker logged under the sweep's parent run
    assert {r.data.tags["mlflow.parentRunId"] for r in sweep.runs("trial")} == {parent.info.run_id}

    # once the sweep is done, a worker that joins finds nothing to do, under a parent of its own
    _, out, _ = sweep.run("sweep.n_jobs=1", "sweep.n_trials=16", *HEARTBEAT, *longer, module="sweeps.worker")
    assert "its own" in out and "holds 16 finished trials" in out
    assert len(sweep.study().trials) == 16


def test_a_killed_sweep_on_postgresql_resumes_its_stale_trials_after_the_grace_period(sweep):
    args = ["sweep.n_jobs=2", "sweep.n_trials=10", *HEARTBEAT, *STEADY]
    proc = sweep.start(*args)
    # killed once a running trial has begun to beat (its pid is set with its first heartbeat): one
    # killed before that is adopted and failed a grace period later (the test of that case below)
    wait_for(lambda: len(sweep.trials(*FINISHED)) >= 2 and any(
        "pid" in t.user_attrs for t in sweep.trials(TrialState.RUNNING)))
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its workers, as a machine that dies
    proc.wait(timeout=30)
    cut = {t.number: t.params for t in sweep.trials(TrialState.RUNNING) if "pid" in t.user_attrs}
    assert cut
    time.sleep(3.5)  # the grace period: their heartbeats are stale now
    _, out, _ = sweep.run(*args)
    for number in cut:
        assert f"trial {number} sent no heartbeat for 3 s: failed, queued again" in out
    study = assert_consistent(sweep, 10)  # their runs ended KILLED, their retries ran
    for number, params in cut.items():
        assert study.trials[number].state == TrialState.FAIL
        retries = [t for t in study.get_trials(states=FINISHED) if t.user_attrs.get("retry_of") == number]
        assert len(retries) == 1
        if params:  # killed before it sampled anything, a retry samples afresh
            assert retries[0].params == params
    assert [r.info.status for r in sweep.runs("sweep")].count("KILLED") == 1  # the dead launcher's parent run


def test_the_budget_lock_is_a_postgresql_advisory_lock_across_processes(postgres):
    import sqlalchemy

    from sweeps.study.storages import advisory_key, storage_for

    def budget_lock(url, name):
        return storage_for(url).budget_lock(name)

    url = postgres.url("optuna")
    name = f"lock{uuid.uuid4().hex[:6]}"
    # another process holds the study's lock for 3 s: the check of pg_locks below may take a
    # second of it on a loaded machine, and the wait measured after it must still exceed 0.8 s
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from sweeps.study.storages import storage_for\n"
        f"with storage_for({url!r}).budget_lock({name!r}):\n    print('held', flush=True); time.sleep(3)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    engine = sqlalchemy.create_engine(with_driver(url))
    with engine.connect() as conn:
        key = advisory_key(name) & (2**64 - 1)  # pg_locks shows a bigint key as two unsigned halves
        held = conn.execute(sqlalchemy.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND "
            "classid::text::bigint = :high AND objid::text::bigint = :low"),
            {"high": key >> 32, "low": key & 0xFFFFFFFF}).scalar()
    assert held == 1
    start = time.monotonic()
    with budget_lock(url, name):
        waited = time.monotonic() - start
    assert waited > 0.8, waited  # it waited for the other process
    holder.wait(timeout=30)
    # a dead holder's lock is released by the server
    killed = subprocess.Popen([sys.executable, "-c", (
        "import os, signal; from sweeps.study.storages import storage_for\n"
        f"with storage_for({url!r}).budget_lock({name!r}):\n"
        "    print('held', flush=True); os.kill(os.getpid(), signal.SIGKILL)")],
        stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline().strip() == "held"
    killed.wait(timeout=30)
    done = threading.Event()
    threading.Thread(target=lambda: (budget_lock(url, name).__enter__(), done.set()), daemon=True).start()
    assert done.wait(10), "the lock of a killed process was not released"
    engine.dispose()


@pytest.fixture(scope="module")
def compose_config():
    from hydra import compose, initialize_config_dir

    from sweeps.config.schema import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[2] / "conf"), version_base="1.3"):
        yield lambda *overrides: compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize("overrides, words", [
    (["sweep.backend=dask"], ["sweep.scheduler", "null"]),
    (["sweep.backend=dask", "sweep.scheduler=tcp://127.0.0.1:9"], ["tcp://127.0.0.1:9", "not reachable"]),
    (["sweep.backend=dask", "sweep.scheduler=127.0.0.1:8786"], ["sweep.scheduler", "tcp://"]),
    (["sweep.storage=postgresql://postgres@127.0.0.1:9/optuna"], ["sweep.storage", "cannot be reached"]),
    (["sweep.heartbeat_interval=5", "sweep.grace_period=5"], ["sweep.grace_period", "heartbeat_interval"]),
    (["sweep.heartbeat_interval=0"], ["sweep.heartbeat_interval", "0"]),
    (["sweep.backend=ray"], ["sweep.backend", "ray", "dask, loky"]),
])
def test_scale_out_options_are_checked_before_anything_starts(compose_config, tmp_path, overrides, words):
    from sweeps.errors import ConfigError
    from sweeps.runner.checks import preflight

    cfg = compose_config(*overrides, f"tracking.uri=sqlite:///{tmp_path / 'm.db'}")
    with pytest.raises(ConfigError) as err:
        preflight(cfg)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_an_unreachable_scheduler_is_one_sentence_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sweeps", "sweep.backend=dask", "sweep.scheduler=tcp://127.0.0.1:9",
                           f"hydra.run.dir={tmp_path / 'h'}", f"tracking.uri=sqlite:///{tmp_path / 'm.db'}",
                           f"sweep.storage={tmp_path / 'o.journal'}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "sweep.scheduler='tcp://127.0.0.1:9' is not reachable" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "o.journal").exists()


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_and_retried(postgres):
    # kill -9 between ask() and the first heartbeat left such a trial RUNNING for ever, holding
    # the budget (CI saw a resumed sweep wait on it until its timeout)
    from omegaconf import OmegaConf

    from sweeps.study.budget import reconcile
    from sweeps.study.storages import storage_for

    spec = postgres.url("optuna")
    sweep_cfg = OmegaConf.create({"heartbeat_interval": 1, "grace_period": 2})
    storage = storage_for(spec, sweep_cfg)
    study = optuna.create_study(study_name=f"unbeaten-{uuid.uuid4().hex[:8]}", storage=storage.open())
    orphan = study.ask()  # no heartbeat, no pid: its worker died right here
    wait_for(lambda: any(t.number == orphan.number for t in reconcile(study, storage)), timeout=30, every=0.5)
    assert study.trials[orphan.number].state == TrialState.FAIL
    retry, = [t for t in study.trials if t.user_attrs.get("retry_of") == orphan.number]
    assert retry.state == TrialState.WAITING
