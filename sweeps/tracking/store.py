"""The MLflow store as a place: where it is, whether it can be reached or written, where a run's
artifacts live, and one lock for creating a new SQLite store."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import sqlite3
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

from sweeps.errors import ConfigError
from sweeps.patience import patiently
from sweeps.urls import redact

DEFAULT_URI = "sqlite:///mlflow.db"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's tag of a nested run


def store_busy(err: BaseException) -> bool:
    """Whether `err` (or one it came from) is a store that is busy or away for now: SQLite's
    'database is locked' (another process holds its write lock past SQLite's own wait), or a
    tracking server that does not answer (after MLflow's own retries)."""
    import requests  # deferred: MLflow's HTTP library, imported with mlflow anyway; not before the workers start

    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return True
        if isinstance(err, sqlite3.Error) and getattr(err, "sqlite_errorcode", None) in (
                sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return True
        if "database is locked" in str(err):  # sqlite's words, where a wrapper kept only them
            return True
        err = getattr(err, "orig", None) or err.__cause__ or err.__context__
    return False


BUSY_SECONDS = 120  # how long a busy store (SQLite's write lock held by another process) is waited for


class Patient:
    """An MlflowClient whose calls are tried again, with backoff, while the store is busy: another
    process holding SQLite's write lock past SQLite's own few seconds (a long transaction, a backup)
    failed trials at once. After BUSY_SECONDS the error is raised; the trial then fails with one
    line and its params are queued again (sweeps.runner.work). A server's HTTP errors are MLflow's
    own client's to retry."""

    def __init__(self, make: Callable[[], Any], patience: float = BUSY_SECONDS):
        self._make, self._client, self._patience = make, None, patience

    def _patiently(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        return patiently(lambda: fn(*args, **kwargs), store_busy, self._patience)

    def __getattr__(self, name: str) -> Any:
        if self._client is None:  # making the client opens the store, which may be busy too
            self._client = self._patiently(self._make)
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self._patiently(attr, *args, **kwargs)


def default_uri() -> str:
    """MLFLOW_TRACKING_URI, else the store `make sweep` writes: mlflow.db in this folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def artifact_root(uri: str, experiment: str) -> str | None:
    """Beside the SQLite database, else where the server decides.

    Without it MLflow writes artifacts to ./mlruns of whatever directory each process runs in.
    The experiment name is reduced to a safe folder name, so '../' cannot lead elsewhere.
    """
    db = sqlite_path(uri)
    if db is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", experiment).lstrip(".") or "experiment"
    return (db.resolve().parent / "mlartifacts" / slug).as_uri()


def local_folder(artifact_uri: str) -> Path | None:
    """The folder of a file: artifact URI or a plain path, which MLflow's client writes to
    directly too; None for a server's (mlflow-artifacts:, http:, s3: ...) or another host's."""
    parts = urllib.parse.urlparse(artifact_uri)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path)) if parts.netloc in ("", "localhost") else None
    return Path(artifact_uri) if parts.scheme == "" else None


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fails in seconds, with the URI in the message, instead of after MLflow's retries."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
                resp.read()
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ConfigError(redact(f"tracking.uri={uri!r} is not reachable ({reason}); start the MLflow "
                                     "server or set tracking.uri to a reachable server or sqlite:///PATH.")) from None
        check_credentials(uri, timeout)
    elif (db := sqlite_path(uri)) is not None:
        try:
            db.resolve().parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"tracking.uri={uri!r} cannot be used: {err.strerror} for {db.parent}.") from None
        _check_sqlite(uri, db)
    elif uri.startswith("file:") or "://" not in uri:
        raise ConfigError(f"tracking.uri={uri!r} is a folder store, which MLflow 3 keeps in maintenance mode; "
                          "give sqlite:///PATH (the default is sqlite:///mlflow.db) or an http:// server.")


def check_credentials(uri: str, timeout: float = 5.0) -> None:
    """A server that asks for a user (MLflow's basic-auth app) must accept this client's, which
    MLflow's client takes from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD: one sentence
    here, not a traceback at the first run. /health answers anyone, so one read is asked for."""
    request = urllib.request.Request(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1")
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            resp.read()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            who = f"user {user!r}" if user and password else "no user"
            raise ConfigError(redact(f"tracking.uri={uri!r} refuses this client (HTTP {err.code}, {who}): set "
                                     "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to a user of that "
                                     "server, in the environment (not in the URI).")) from None
    except (urllib.error.URLError, OSError):
        pass  # it answered /health a moment ago: what else fails shows where it happens


def _check_sqlite(uri: str, db: Path) -> None:
    """An existing SQLite store must be a database that can be written: a truncated or foreign
    file, or a read-only one, is a sentence here rather than a traceback mid-sweep."""
    if not db.exists():
        folder = db.resolve().parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"tracking.uri={uri!r} cannot be made: {folder} cannot be written.")
        return
    if not os.access(db, os.R_OK | os.W_OK):
        raise ConfigError(f"tracking.uri={uri!r} cannot be used: {db} cannot be read and written.")
    try:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.OperationalError as err:
            if getattr(err, "sqlite_errorcode", None) != sqlite3.SQLITE_READONLY_ROLLBACK:
                raise
            # a write cut short by kill -9 left its rollback journal (mlflow.db-journal), which only
            # a writer may roll back: SQLite's own recovery, as MLflow's first connection would do
            with sqlite3.connect(db) as conn:
                conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as err:
        if store_busy(err):
            return  # another process writes it just now: the tracker waits for it (Patient)
        raise ConfigError(f"tracking.uri={uri!r} is not a usable MLflow store: {db} is damaged or not a database "
                          f"({err}); move it away to start a new store there, or point tracking.uri elsewhere."
                          ) from None


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """What two processes must not do to one SQLite store at once, serialised: creating it (both
    crash on its schema), and publishing one run's model (both find none and log one each, or one
    deletes the other's half-made model: sweeps.trial.mlflow_model). Other stores: nothing."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    with open(db.resolve().with_name(db.name + ".init-lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def create_store(uri: str) -> None:
    """A new SQLite store, made whole or not at all: MLflow's migrations run on a file of another
    name, which is then renamed into place. Interrupted (Ctrl-C, a signal, kill -9) while it is
    being made, the store is simply not there, and the next sweep makes it: a half-made mlflow.db
    failed every later run. The caller holds store_lock(uri)."""
    db = sqlite_path(uri)
    if db is None or db.exists():
        return
    db = db.resolve()
    for stale in db.parent.glob(f".{db.name}.creating-*"):  # left by a creation that was killed
        stale.unlink(missing_ok=True)
    part = db.with_name(f".{db.name}.creating-{os.getpid()}")
    from mlflow import MlflowClient  # deferred: mlflow's import is slow, and only a new store needs it here

    try:
        MlflowClient(tracking_uri=f"sqlite:///{part}").search_experiments(max_results=1)  # runs the migrations
        os.replace(part, db)
    finally:
        part.unlink(missing_ok=True)


def open_existing(uri: str):
    """An MlflowClient on a store that exists: a missing SQLite file is an error here, not a new
    store (reading a run must never create one); a server must answer."""
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise ConfigError(f"there is no MLflow store at {db} (tracking URI {uri}); run a sweep first, "
                          "or set MLFLOW_TRACKING_URI to the store a sweep wrote.")
    check_reachable(uri)
    from mlflow import MlflowClient  # deferred: mlflow's import is slow, and only this path needs it

    return MlflowClient(tracking_uri=uri)
