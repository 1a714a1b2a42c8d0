"""Shared helpers: run `python -m sweeps` as a real process and read its stores with the
clients of Optuna and MLflow themselves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout=120.0, every=0.2):
    """Polls predicate() until it returns something truthy, which is returned; fails after timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


class SweepDir:
    """One temp folder holding a study's journal, an MLflow SQLite store and Hydra's output.

    confirm: whether its sweeps confirm their best configs by default (sweep.confirm). Off unless
    asked, or an override names sweep.confirm: 15 more trainings at the end of every sweep would
    cost the suite minutes, and the tests of the confirmation (tests/e2e/test_honest.py) ask."""

    def __init__(self, path: Path, study: str = "S", experiment: str = "E", confirm: bool = False):
        self.path, self.study_name, self.experiment, self.confirm = path, study, experiment, confirm
        self.journal = path / "optuna.journal"
        self.uri = f"sqlite:///{path / 'mlflow.db'}"

    def args(self, *overrides: str) -> list[str]:
        quick = [] if self.confirm or any(o.startswith("sweep.confirm") for o in overrides) else ["sweep.confirm.top=0"]
        return [f"sweep.study_name={self.study_name}", f"sweep.storage={self.journal}",
                f"tracking.uri={self.uri}", f"tracking.experiment={self.experiment}",
                f"hydra.run.dir={self.path / 'hydra'}", *quick, *overrides]

    def run(self, *overrides: str, timeout: float = 300, check: bool = True, **kw) -> subprocess.CompletedProcess:
        env = {**os.environ, "MLFLOW_TRACKING_URI": self.uri}
        proc = subprocess.run([sys.executable, "-m", "sweeps", *self.args(*overrides)], cwd=self.path,
                              env=env, capture_output=True, text=True, timeout=timeout, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"sweep exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def study(self) -> optuna.Study:
        return self.study_named(self.study_name)

    def study_named(self, name: str) -> optuna.Study:
        """Another study of the same journal (a warm-started one, one named by an experiment)."""
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(self.journal)))
        return optuna.load_study(study_name=name, storage=storage)

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri)

    def runs(self, role: str | None = None) -> list:
        client = self.client()
        exp = client.get_experiment_by_name(self.experiment)
        runs = client.search_runs([exp.experiment_id], max_results=5000)
        return [r for r in runs if role is None or r.data.tags.get("nnsweeps.role") == role]


@pytest.fixture(autouse=True, scope="session")
def messages_on_the_terminal():
    """The handler of the logger "sweeps", which the commands install (sweeps.log.setup): the tests
    that call the library's parts in this process read their messages from stdout and stderr."""
    from sweeps import log

    log.setup()


@pytest.fixture
def sweep_dir(tmp_path) -> SweepDir:
    return SweepDir(tmp_path)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder this user cannot write: made read-only with chmod, or for root (whom chmod does not
    stop) a read-only filesystem mounted on it; skipped where neither holds."""
    import stat

    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = False
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                                 capture_output=True).returncode == 0
    else:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("no folder here is read-only to this user")
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)])
        else:
            folder.chmod(stat.S_IRWXU)
