"""A sweep across hosts, tested as hosts really fail (issue 24): hosts `db`, `a` and `b` are network
namespaces on one bridge (tests/cluster/harness.py), with no file shared between them. db runs
PostgreSQL and the MLflow server, both asking for credentials; a runs the launcher and b a joined
worker (`python -m sweeps.worker`), or a Dask worker of a's Dask scheduler; each case reads both
stores from a fresh host, c, when it ends.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.cluster.conftest import FINISHED, HEARTBEAT, STEADY
from tests.cluster.harness import namespaces_refused, sweep_dead_clusters
from tests.conftest import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def hosts_of(trials: list[dict]) -> set[str]:
    return {t["user_attrs"].get("host") for t in trials if t["state"] in FINISHED}


def test_a_clean_sweep_across_two_hosts(sweep, hosts):
    launcher = sweep.start("a", "sweep.n_trials=14", *HEARTBEAT, *STEADY)
    sweep.wait_launched(launcher)
    worker = sweep.start("b", "sweep.n_trials=14", *HEARTBEAT, *STEADY, module="sweeps.worker")
    out = sweep.finish(launcher)
    w_out = sweep.finish(worker)
    assert "Best trial" in out and "the sweep’s" in w_out and "[worker] done:" in w_out

    trials = sweep.assert_consistent(14)
    assert len(trials) == 14  # exact: no trial beyond the budget on either host
    assert hosts_of(trials) == {"host-a", "host-b"}  # both hosts ran trials
    parent, = sweep.runs("sweep")
    assert parent["status"] == "FINISHED"
    assert {r["tags"]["mlflow.parentRunId"] for r in sweep.runs("trial")} == {parent["run_id"]}
    # what each host made is on db's disk, read through the server from the fresh host c
    for host in ("host-a", "host-b"):
        trial = next(t for t in trials if t["user_attrs"]["host"] == host)
        assert {"config.yaml", "weights.npz", "cost_curve.csv"} <= set(
            sweep.probe("artifacts", uri=hosts.tracking, run_id=trial["user_attrs"]["run_id"]))
    assert any(p.name == "weights.npz" for p in (hosts.folder("db") / "artifacts").rglob("*"))
    model_uri = re.search(r"network is the MLflow model (\S+)", out).group(1)
    predictions = sweep.probe("predict", uri=hosts.tracking, model_uri=model_uri, features=2)
    assert len(predictions) == 4
    # no record is left waiting on a or b: MLflow holds them all
    for host in ("a", "b"):
        assert not [p for p in hosts.folder(host).rglob("*.json") if ".nnsweeps-outbox" in p.parts]


MLFLOW_ON_WORKERS = """
import sys
from distributed import Client
with Client(sys.argv[1], timeout="20s") as client:
    print(sorted(set(client.run(lambda: "mlflow" in sys.modules).values())))
"""


def test_a_dask_worker_on_b_records_its_trials_through_the_launcher_on_a(sweep, hosts):
    # b shares no folder with a: its trials come back to a as task results, and a's writer sends them
    scheduler = f"tcp://{hosts.addr('a')}:8786"
    dask = [sys.executable, "-m", "dask"]
    hosts.spawn("a", [*dask, "scheduler", "--host", hosts.addr("a"), "--port", "8786", "--no-dashboard"],
                log=hosts.folder("a") / f"{sweep.name}-scheduler.log")
    hosts.spawn("b", [*dask, "worker", scheduler, "--host", hosts.addr("b"), "--nthreads", "1", "--no-dashboard"],
                log=hosts.folder("b") / f"{sweep.name}-dask-worker.log")
    launcher = sweep.start("a", "sweep.n_trials=6", "sweep.backend=dask", f"sweep.scheduler={scheduler}",
                           *HEARTBEAT, *STEADY)
    out = sweep.finish(launcher)
    assert "1 Dask task(s) on the 1 worker thread(s)" in out and "Best trial" in out

    trials = sweep.assert_consistent(6)  # one FINISHED run per finished trial, nothing RUNNING
    assert len(trials) == 6
    assert hosts_of(trials) == {"host-b"}  # the Dask worker on b ran them all
    for trial in trials:  # read through the server from the fresh host c
        assert {"config.yaml", "weights.npz", "cost_curve.csv"} <= set(
            sweep.probe("artifacts", uri=hosts.tracking, run_id=trial["user_attrs"]["run_id"]))
    for host in ("a", "b"):  # every record sent
        assert not [p for p in hosts.folder(host).rglob("*.json") if ".nnsweeps-outbox" in p.parts]
    asked = hosts.python("a", "-c", MLFLOW_ON_WORKERS, scheduler, timeout=60)
    assert asked.stdout.strip() == "[False]", asked  # b's worker never imported mlflow


def test_a_worker_given_a_store_only_its_host_sees_is_refused_before_its_first_trial(sweep, hosts):
    launcher = sweep.start("a", "sweep.n_trials=6", *HEARTBEAT, *STEADY)
    sweep.wait_launched(launcher)
    b = hosts.folder("b") / "work"
    journal = sweep.start("b", "sweep.n_trials=6", *HEARTBEAT, *STEADY, module="sweeps.worker",
                          storage=str(b / "local.journal"))
    sqlite = sweep.start("b", "sweep.n_trials=6", *HEARTBEAT, *STEADY, module="sweeps.worker",
                         uri=f"sqlite:///{b / 'mlflow.db'}")
    for proc, field in ((journal, "sweep.storage"), (sqlite, "tracking.uri")):
        out = sweep.finish(proc, code=2)
        assert f"{field}=" in out and "other hosts cannot see that store" in out and "Traceback" not in out
    assert "host-a" in sweep.output(sqlite)  # where the sweep runs
    sweep.finish(launcher)
    trials = sweep.assert_consistent(6)
    assert {t["user_attrs"].get("host") for t in trials} == {"host-a"}  # b ran nothing
    assert not (b / "local.journal").exists()


LONGER = [a if not a.startswith("train.iterations=") else "train.iterations=30000" for a in STEADY]  # ~3 s


def cut_mid_trial(sweep, host: str) -> list[dict]:
    """Unplugs `host` once one of its trials has begun (beats, has its run): the trials it ran then."""
    wait_for(lambda: [t for t in sweep.trials("RUNNING") if t["user_attrs"].get("host") == f"host-{host}"
                      and "run_id" in t["user_attrs"]], timeout=180, every=0.1)
    sweep.cluster.link(host, False)
    cut = [t for t in sweep.trials("RUNNING") if t["user_attrs"].get("host") == f"host-{host}"]
    assert cut, "the trial ended before the cable was pulled"
    return cut


def assert_retried(trials: list[dict], cut: list[dict]) -> None:
    """Each cut trial failed, and run again once, elsewhere, with the same parameters."""
    for victim in cut:
        assert trials[victim["number"]]["state"] == "FAIL"
        retry, = [t for t in trials if t["user_attrs"].get("retry_of") == victim["number"]]
        assert retry["state"] in FINISHED and retry["params"] == victim["params"]


def joined(sweep, n: int, *extra: str, env: dict[str, str] | None = None):
    """The launcher on a, and once it recorded its parent run, a worker on b."""
    launcher = sweep.start("a", f"sweep.n_trials={n}", *HEARTBEAT, *extra, *LONGER)
    sweep.wait_launched(launcher)
    return launcher, sweep.start("b", f"sweep.n_trials={n}", *HEARTBEAT, *extra, *LONGER, module="sweeps.worker",
                                 env=env)


def test_a_host_whose_link_goes_down_for_good_has_its_trial_failed_and_run_again(sweep, hosts):
    launcher, worker = joined(sweep, 6)
    cut = cut_mid_trial(sweep, "b")
    sweep.finish(launcher)  # a fails b's trial a grace period later, and runs it again
    trials = sweep.assert_consistent(6)
    assert_retried(trials, cut)
    runs = {r["run_id"]: r for r in sweep.runs("trial")}
    for victim in cut:
        assert runs[victim["user_attrs"]["run_id"]]["status"] == "KILLED"  # ended by the launcher
    # b is gone for good: its processes die where they hang; the cut-off trial's record stays on b's disk
    hosts.power_off("b")
    kept = [p for p in hosts.folder("b").rglob("*.start.json") if ".nnsweeps-outbox" in p.parts]
    assert {int(p.name.split(".")[0]) for p in kept} >= {v["number"] for v in cut}
    # were b to boot again, its next invocation sends that record to the run it had, ended KILLED:
    # never a second run of the trial
    hosts.link("b", True)
    again = sweep.start("b", "sweep.n_trials=6", *HEARTBEAT, *LONGER, module="sweeps.worker")
    assert "holds 6 finished trials" in sweep.finish(again)
    sweep.assert_consistent(6)
    for victim in cut:
        mine = [r for r in sweep.runs("trial") if r["tags"]["optuna.trial"] == str(victim["number"])]
        assert [r["status"] for r in mine] == ["KILLED"]
    assert len([r for r in sweep.runs("trial") if r["status"] == "FINISHED"]) == 6
    assert worker.poll() is not None


def test_a_partition_that_heals_after_30_s_fails_the_cut_trial_and_runs_it_again(sweep, hosts):
    # the design's outcome: 30 s is beyond the grace period (4 s here, 30 s by default), so the trial
    # is failed and retried on a; b's late end is refused by Optuna, its run ends KILLED, never COMPLETE twice
    launcher, worker = joined(sweep, 8)
    cut = cut_mid_trial(sweep, "b")
    time.sleep(30)
    hosts.link("b", True)
    sweep.finish(launcher)
    sweep.finish(worker, timeout=300)
    trials = sweep.assert_consistent(8)
    assert_retried(trials, cut)
    done = Counter(json.dumps(t["params"], sort_keys=True) for t in trials if t["state"] == "COMPLETE")
    for victim in cut:
        assert done[json.dumps(victim["params"], sort_keys=True)] == 1  # the work counted once
    runs = {r["run_id"]: r for r in sweep.runs("trial")}
    for t in trials:
        assert t["state"] != "COMPLETE" or runs[t["user_attrs"]["run_id"]]["status"] == "FINISHED"
    for victim in cut:
        assert runs[victim["user_attrs"]["run_id"]]["status"] == "KILLED"


def test_the_db_host_restarting_makes_the_sweep_wait_then_go_on(sweep, hosts):
    # a grace period longer than the restart: trials that beat through it are not judged dead
    launcher, worker = joined(sweep, 10, "sweep.grace_period=40")
    # both hosts at work before the restart (b's worker starts later than a's: it could miss the sweep)
    wait_for(lambda: len(sweep.trials(*FINISHED)) >= 2
             and any(t["user_attrs"].get("host") == "host-b" for t in sweep.trials()), timeout=180)
    hosts.restart_db(down=5)
    sweep.finish(launcher, timeout=400)
    sweep.finish(worker, timeout=400)
    trials = sweep.assert_consistent(10)
    assert len(trials) == 10  # nothing lost, nothing run twice
    assert hosts_of(trials) == {"host-a", "host-b"}


@pytest.mark.skipif(shutil.which("cc") is None and not os.environ.get("CI"),
                    reason="no C compiler to build tests/cluster/clock_ahead.c (libfaketime hangs Python's sleeps)")
def test_a_host_whose_clock_is_5_minutes_ahead_beats_and_is_judged_by_the_servers_clock(sweep, hosts):
    launcher, worker = joined(sweep, 8, env=hosts.clock_ahead(300))
    wait_for(lambda: len([t for t in sweep.trials(*FINISHED) if t["user_attrs"].get("host") == "host-b"]) >= 1,
             timeout=180)
    cut = cut_mid_trial(sweep, "b")
    hosts.power_off("b")  # b dies mid-trial: its trial is failed a grace period later, not 5 minutes off
    sweep.finish(launcher)
    trials = sweep.assert_consistent(8)
    assert_retried(trials, cut)
    on_b = [t for t in trials if t["user_attrs"].get("host") == "host-b"]
    assert all(t["state"] in FINISHED for t in on_b if t["number"] not in {v["number"] for v in cut})
    on_a = [t["start"] for t in trials if t["user_attrs"].get("host") == "host-a"]
    assert min(t["start"] for t in on_b) > max(on_a) + 120  # b's clock was ahead indeed


REFUSED = """
import json, sys, urllib.error, urllib.request
import psycopg2
db, password = sys.argv[1], sys.argv[2:]
answer = {}
try:
    psycopg2.connect(host=db, port=5432, user="postgres", dbname="optuna", connect_timeout=5,
                     **({"password": "wrong"} if password else {})).close()
    answer["postgres"] = "connected"
except psycopg2.OperationalError as err:
    answer["postgres"] = str(err)
request = urllib.request.Request(f"http://{db}:5001/api/2.0/mlflow/experiments/search?max_results=1")
if password:
    request.add_header("Authorization", "Basic c3dlZXA6d3Jvbmc=")  # sweep:wrong
try:
    answer["mlflow"] = urllib.request.urlopen(request, timeout=10).status
except urllib.error.HTTPError as err:
    answer["mlflow"] = err.code
print(json.dumps(answer))
"""


def test_a_client_without_credentials_on_b_is_refused_by_both_servers(sweep, hosts):
    for wrong in ([], ["wrong"]):  # none, then a wrong password
        proc = hosts.python("b", "-c", REFUSED, hosts.addr("db"), *wrong, user=None)
        answer = json.loads(proc.stdout)
        assert "password" in answer["postgres"] and answer["mlflow"] == 401, answer
    # a sweep started so: one sentence naming the store, exit 2, nothing made
    pg, mlflow = hosts.credentials(), hosts.credentials()
    del pg["PGPASSWORD"]
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        del mlflow[key]
    for env, field in ((pg, "sweep.storage"), (mlflow, "tracking.uri")):
        out = sweep.finish(sweep.start("b", "sweep.n_trials=2", *STEADY, user=None, env=env), code=2)
        assert f"{field}=" in out and "Traceback" not in out, out
    assert not sweep.trials() and not sweep.runs()


def test_a_dead_test_process_s_namespaces_are_removed_by_the_next_cluster():
    """A run killed before its close() (SIGKILL, a CI job cut short) leaves its namespaces: the
    next cluster deletes them, and only those whose test process is gone."""
    if why := namespaces_refused():
        pytest.skip(f"no simulated cluster here: {why}")
    dead = 4194304 + 1  # above the kernel's largest pid: never a live process
    left, mine = f"nnsw{dead}-b", f"nnsw{os.getpid()}-orphan"
    try:
        for name in (left, mine):
            subprocess.run(["ip", "netns", "add", name], check=True)
        assert left in sweep_dead_clusters()
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        assert left not in listed and mine in listed
    finally:
        for name in (left, mine):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
