"""A sweep across hosts, tested as hosts really fail (issue 24): hosts `db`, `a` and `b` are network
namespaces on one bridge (tests/cluster/harness.py), with no file shared between them. db runs
PostgreSQL and the MLflow server, both asking for credentials; a runs the launcher and b a joined
worker (`python -m sweeps.worker`); each case reads both stores from a fresh host, c, when it ends.
"""

from __future__ import annotations

import re

import pytest

from tests.cluster.conftest import FINISHED, HEARTBEAT, STEADY
from tests.conftest import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def hosts_of(trials: list[dict]) -> set[str]:
    return {t["user_attrs"].get("host") for t in trials if t["state"] in FINISHED}


def test_a_clean_sweep_across_two_hosts(sweep, hosts):
    launcher = sweep.start("a", "sweep.n_trials=14", *HEARTBEAT, *STEADY)
    sweep.wait_launched()
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


def test_a_worker_given_a_store_only_its_host_sees_is_refused_before_its_first_trial(sweep, hosts):
    launcher = sweep.start("a", "sweep.n_trials=6", *HEARTBEAT, *STEADY)
    sweep.wait_launched()
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
