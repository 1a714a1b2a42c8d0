"""The `cluster` fixture: hosts db, a, b and c as network namespaces (tests/cluster/harness.py),
built once per session and removed whatever happens; and `ClusterSweep`, one study run across
them and read back from the fresh host c."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from sweeps.services import postgres_missing
from tests.cluster.harness import USER, Cluster, Probe, namespaces_refused

FINISHED = ("COMPLETE", "PRUNED")
# trials of about 1.5 s of training: long enough that both hosts take some, and that one is
# caught running
STEADY = ["search_space=none", "+search_space.train.learning_rate={type:float,low:0.5,high:1.5}",
          "model.hidden_units=[16]", "train.iterations=15000", "sweep.pruner=none", "sweep.sampler=random",
          "sweep.n_jobs=1"]
HEARTBEAT = ["sweep.heartbeat_interval=1", "sweep.grace_period=4"]


@pytest.fixture(scope="session")
def cluster():
    why = namespaces_refused() or postgres_missing()
    if why:
        if os.environ.get("CI") and os.geteuid() == 0:
            pytest.fail(f"CI must run the cluster tests, but {why}")
        pytest.skip(f"no simulated cluster here: {why}")
    built = Cluster()
    try:
        built.build().start_servers()
        yield built
    finally:
        left = built.close()
        assert not left, f"namespaces left behind: {left}"


@pytest.fixture(scope="session")
def probe(cluster):
    reader = Probe(cluster)
    yield reader
    reader.close()


@pytest.fixture
def hosts(cluster):
    """The cluster as each test finds it: every cable plugged in, no process left on a or b."""
    yield cluster
    for host in ("a", "b"):
        cluster.link(host, True)
        cluster.power_off(host)


class ClusterSweep:
    """One study across the cluster: its commands on hosts a and b, its stores read from host c."""

    def __init__(self, cluster: Cluster, probe: Probe):
        self.cluster, self.probe = cluster, probe
        self.name = f"c{uuid.uuid4().hex[:8]}"
        self.logs: dict[subprocess.Popen, Path] = {}

    def args(self, *overrides: str, storage: str | None = None, uri: str | None = None) -> list[str]:
        return [f"sweep.study_name={self.name}", f"sweep.storage={storage or self.cluster.storage}",
                f"tracking.uri={uri or self.cluster.tracking}", f"tracking.experiment={self.name}",
                f"hydra.run.dir=hydra/{self.name}-{uuid.uuid4().hex[:4]}", *overrides]

    def start(self, host: str, *overrides: str, module: str = "sweeps", env: dict[str, str] | None = None,
              user: str | None = USER, **kw) -> subprocess.Popen:
        """`python -m module` on `host`, as the sweep's user (user=None: without credentials, but `env`)."""
        log = self.cluster.folder(host) / f"{self.name}-{module}-{len(self.logs)}.log"
        proc = self.cluster.spawn(host, [sys.executable, "-m", module, *self.args(*overrides, **kw)], log=log,
                                  user=user, **(env or {}))
        self.logs[proc] = log
        return proc

    def output(self, proc: subprocess.Popen) -> str:
        return self.logs[proc].read_text(errors="replace")

    def finish(self, proc: subprocess.Popen, timeout: float = 300, code: int | None = 0) -> str:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.cluster.kill(proc)
            raise AssertionError(f"timed out:\n{self.output(proc)[-4000:]}") from None
        out = self.output(proc)
        if code is not None:
            assert proc.returncode == code, f"exited {proc.returncode}:\n{out[-4000:]}"
        return out

    def trials(self, *states: str) -> list[dict]:
        return [t for t in self.probe("trials", storage=self.cluster.storage, study=self.name)
                if not states or t["state"] in states]

    def runs(self, role: str | None = None) -> list[dict]:
        return [r for r in self.probe("runs", uri=self.cluster.tracking, experiment=self.name)
                if role is None or r["tags"].get("nnsweeps.role") == role]

    def wait_launched(self, launcher: subprocess.Popen, timeout: float = 120) -> None:
        """Until the launcher recorded its parent run on the study (workers that join use it)."""
        deadline = time.monotonic() + timeout
        while "nnsweeps.mlflow" not in self.probe("study_attrs", storage=self.cluster.storage, study=self.name):
            if launcher.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the launcher did not start the sweep:\n{self.output(launcher)[-4000:]}")
            time.sleep(0.5)

    def assert_consistent(self, n_trials: int) -> list[dict]:
        """Exactly n_trials finished trials, each with exactly one FINISHED run whose id the trial
        holds; no trial or run left RUNNING; a failed trial's run, if it has one, KILLED or FAILED."""
        trials = self.trials()
        finished = [t for t in trials if t["state"] in FINISHED]
        assert len(finished) == n_trials, [(t["number"], t["state"]) for t in trials]
        assert not [t for t in trials if t["state"] in ("RUNNING", "WAITING")]
        runs = self.runs("trial")
        per_trial = Counter(r["tags"]["optuna.trial"] for r in runs)
        by_trial = {r["tags"]["optuna.trial"]: r for r in runs}
        for t in finished:
            number = str(t["number"])
            assert per_trial[number] == 1, f"trial {number} has {per_trial[number]} runs"
            run = by_trial[number]
            assert run["run_id"] == t["user_attrs"]["run_id"] and run["status"] == "FINISHED"
            assert run["tags"]["optuna.state"] == t["state"] and run["tags"]["host"] == t["user_attrs"]["host"]
        for t in trials:
            if t["state"] == "FAIL" and str(t["number"]) in by_trial:
                assert by_trial[str(t["number"])]["status"] in ("KILLED", "FAILED"), t["number"]
        assert all(r["status"] != "RUNNING" for r in self.runs())
        return trials


@pytest.fixture
def sweep(hosts, probe) -> ClusterSweep:
    return ClusterSweep(hosts, probe)
