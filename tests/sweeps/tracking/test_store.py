"""sweeps.tracking.store: opening an existing MLflow store (never creating one), reaching a server
in seconds, the default URI, and where artifacts live, on real files and a real MLflow store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeps.errors import ConfigError
from sweeps.tracking.store import (
    DEFAULT_URI,
    artifact_root,
    check_reachable,
    default_uri,
    local_folder,
    open_existing,
    sqlite_path,
)

NOBODY = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once


def test_open_existing_refuses_a_missing_sqlite_file_and_creates_none(tmp_path):
    db = tmp_path / "sub" / "mlflow.db"
    uri = f"sqlite:///{db}"
    with pytest.raises(ConfigError) as err:
        open_existing(uri)
    assert str(db) in str(err.value) and "no MLflow store" in str(err.value)
    assert not db.exists() and not (tmp_path / "sub").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_open_existing_gives_a_client_of_an_existing_store(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()  # creates the store
    MlflowClient(tracking_uri=uri).create_experiment("E", artifact_location=artifact_root(uri, "E"))
    client = open_existing(uri)
    assert isinstance(client, MlflowClient) and client.tracking_uri == uri
    names = {e.name for e in client.search_experiments()}
    assert names == {"Default", "E"}


def test_open_existing_refuses_a_server_that_does_not_answer():
    start = time.monotonic()
    with pytest.raises(ConfigError, match="not reachable"):
        open_existing(NOBODY)
    assert time.monotonic() - start < 5.0


def test_check_reachable_fails_in_seconds_naming_the_uri():
    start = time.monotonic()
    with pytest.raises(ConfigError) as err:
        check_reachable(NOBODY, timeout=3.0)
    assert time.monotonic() - start < 5.0
    assert f"tracking.uri={NOBODY!r}" in str(err.value)


def test_check_reachable_makes_the_folder_of_a_sqlite_store(tmp_path):
    db = tmp_path / "a" / "b" / "mlflow.db"
    check_reachable(f"sqlite:///{db}")
    assert db.parent.is_dir() and not db.exists()


def test_check_reachable_refuses_a_sqlite_store_under_a_file(tmp_path):
    afile = tmp_path / "plain"
    afile.write_text("x")
    uri = f"sqlite:///{afile / 'mlflow.db'}"
    with pytest.raises(ConfigError) as err:
        check_reachable(uri)
    assert f"tracking.uri={uri!r} cannot be used" in str(err.value)


HALF_WRITTEN = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA cache_size=1")  # pages spill to the file: the journal is hot when the process dies
c.execute("BEGIN")
c.execute("UPDATE t SET x = x + 1")
print("writing", flush=True)
time.sleep(60)
"""


def test_a_store_whose_writer_was_killed_mid_write_is_rolled_back_not_refused(tmp_path):
    """kill -9 inside a write leaves mlflow.db-journal, which a read-only check cannot roll back
    (SQLITE_READONLY_ROLLBACK): the check rolls it back, as any writer would, and the store is whole."""
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10000)])
    writer = subprocess.Popen([sys.executable, "-c", HALF_WRITTEN, str(db)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert (tmp_path / "mlflow.db-journal").exists()
    check_reachable(f"sqlite:///{db}")
    assert not (tmp_path / "mlflow.db-journal").exists()  # rolled back by the check itself
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT SUM(x) FROM t").fetchone()[0] == sum(range(10000))  # the cut write undone


def test_default_uri_follows_mlflow_tracking_uri(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert default_uri() == "http://tracking.example:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    assert default_uri() == DEFAULT_URI
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert default_uri() == DEFAULT_URI == "sqlite:///mlflow.db"


def test_sqlite_path():
    assert sqlite_path("sqlite:////abs/m.db") == Path("/abs/m.db")
    assert sqlite_path("sqlite:///rel/m.db") == Path("rel/m.db")
    assert sqlite_path("http://h:5000") is None and sqlite_path("postgresql://u@h/db") is None


def test_artifact_root_reduces_a_hostile_name_to_a_folder_beside_the_db(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    root = artifact_root(uri, "../x y")
    assert root.startswith("file://")
    folder = local_folder(root)
    base = (tmp_path / "store" / "mlartifacts").resolve()
    assert folder.parent == base and folder.name == "_x_y"
    assert folder.resolve().is_relative_to(base)
    for name in ("..", "../../etc", "/abs/path", "a/../../b", "...hidden"):
        folder = local_folder(artifact_root(uri, name))
        assert folder.parent == base and "/" not in folder.name and not folder.name.startswith("."), name
    assert local_folder(artifact_root(uri, "..")).name == "experiment"
    assert local_folder(artifact_root(uri, "sweep-1.v2_ok")).name == "sweep-1.v2_ok"  # a safe name is kept


def test_artifact_root_is_the_servers_for_other_uris():
    assert artifact_root("http://127.0.0.1:5000", "E") is None
    assert artifact_root("postgresql://u@h/db", "E") is None


def test_local_folder():
    assert local_folder("file:///data/mlartifacts/1/abc/artifacts") == Path("/data/mlartifacts/1/abc/artifacts")
    assert local_folder("file://localhost/data/a") == Path("/data/a")
    assert local_folder("file:///data/with%20space") == Path("/data/with space")
    assert local_folder("/data/plain/path") == Path("/data/plain/path")
    assert local_folder("relative/path") == Path("relative/path")
    assert local_folder("file://otherhost/data/a") is None
    for uri in ("http://h:5000/api/2.0/mlflow-artifacts/artifacts/1", "https://h/a",
                "mlflow-artifacts:/1/abc/artifacts", "mlflow-artifacts://h:5000/1/abc", "s3://bucket/key"):
        assert local_folder(uri) is None, uri


def test_patient_waits_out_a_busy_store_and_no_other_error():
    import sqlite3

    from sweeps.tracking.store import Patient

    calls = []

    class Client:
        def busy_twice(self):
            calls.append(1)
            if len(calls) < 3:
                raise RuntimeError("write failed") from sqlite3.OperationalError("database is locked")
            return "done"

        def broken(self):
            calls.append(1)
            raise ValueError("not a busy store")

    client = Patient(Client, patience=10)
    assert client.busy_twice() == "done" and len(calls) == 3
    calls.clear()
    with pytest.raises(ValueError):
        client.broken()
    assert len(calls) == 1  # not tried again
    impatient = Patient(Client, patience=0.1)
    calls.clear()
    with pytest.raises(RuntimeError):
        impatient.busy_twice()
