"""Real servers on 127.0.0.1 for the end-to-end tests that need them (test_scale, test_races).

A PostgreSQL server (the shared Optuna storage, and the MLflow server's backend) started from a
throwaway data directory, and an `mlflow server` over it proxying artifacts. PostgreSQL comes from
the machine (`.ci/run` installs Debian's package when missing): without it these tests skip,
saying so, except under CI, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from sweeps.services import MlflowServer, Postgres, free_port, postgres_missing
from sweeps.urls import with_driver


# ---- servers ---------------------------------------------------------------------------------
@contextlib.contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """A PostgreSQL server with a database `optuna`, deleted afterwards."""
    why = postgres_missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests, but {why} (.ci/run installs it)")
        pytest.skip(f"no PostgreSQL server can be run here: {why}")
    # not under pytest's tmp_path: its folders are closed to the postgres user the server runs as
    folder = Path(tempfile.mkdtemp(prefix="nnsweeps-pg-"))
    server = Postgres(folder, port=free_port(), fast=True)
    try:
        server.start()
        server.createdb("optuna")
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(postgres.createdb("mlflow"), folder / "artifacts", port=free_port(),
                          log=folder / "server.log")
    server.start()
    yield server
    server.stop()
    assert not server.healthy()


class Sweep:
    """One study on the PostgreSQL server, logged to the MLflow server."""

    def __init__(self, postgres: Postgres, mlflow_server: MlflowServer, folder: Path):
        self.name = f"s{uuid.uuid4().hex[:8]}"
        self.storage = postgres.url("optuna")
        self.uri = mlflow_server.uri
        self.folder = folder

    def args(self, *overrides: str) -> list[str]:
        return [f"sweep.study_name={self.name}", f"sweep.storage={self.storage}", f"tracking.uri={self.uri}",
                f"tracking.experiment={self.name}", f"hydra.run.dir={self.folder / 'hydra'}", *overrides]

    def start(self, *overrides: str, module: str = "sweeps") -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", module, *self.args(*overrides)], cwd=self.folder,
                                env={**os.environ, "MLFLOW_TRACKING_URI": self.uri}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def run(self, *overrides: str, module: str = "sweeps", timeout: float = 300, check: bool = True):
        proc = self.start(*overrides, module=module)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(f"{module} timed out\nstdout:\n{out}\nstderr:\n{err}") from None
        if check and proc.returncode != 0:
            raise AssertionError(f"{module} exited {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}")
        return proc.returncode, out, err

    def study(self) -> optuna.Study:
        if not hasattr(self, "_storage"):  # one engine for all the polling, not one per call
            self._storage = optuna.storages.RDBStorage(with_driver(self.storage))
        return optuna.load_study(study_name=self.name, storage=self._storage)

    def trials(self, *states: TrialState) -> list:
        try:
            return self.study().get_trials(states=states or None)
        except KeyError:  # not created yet
            return []

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri)

    def runs(self, role: str | None = None) -> list:
        client = self.client()
        exp = client.get_experiment_by_name(self.name)
        runs = client.search_runs([exp.experiment_id], max_results=5000)
        return [r for r in runs if role is None or r.data.tags.get("nnsweeps.role") == role]


@pytest.fixture
def sweep(postgres, mlflow_server, tmp_path) -> Sweep:
    return Sweep(postgres, mlflow_server, tmp_path)
