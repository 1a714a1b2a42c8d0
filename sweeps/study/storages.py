"""Where a study lives, as one class per kind of storage, chosen once from `sweep.storage`:

- Journal: a journal file (the default, outputs/<study_name>.journal). Optuna's recommendation
  for several processes on one machine (SQLite is not safe for parallel writers). No heartbeat:
  sweeps.study.budget fails the trials of this host's processes that are gone.
- RDB: any SQLAlchemy URL (sqlite:///x.db, mysql://...), with heartbeats: a running trial whose
  worker stops beating for `sweep.grace_period` seconds is failed by the next worker that asks
  for a trial, and its parameters are queued again.
- Postgres: an RDB storage for workers on several machines, whose budget lock is the server's.

`storage_for(spec, sweep)` picks the class: KINDS by URL scheme, an RDB for another URL, a
journal for a path. A new kind of storage is a class here and a line in KINDS.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import optuna

from sweeps.errors import ConfigError
from sweeps.patience import patiently
from sweeps.study.journal_file import RollbackFileBackend
from sweeps.study.reconnect import LOST_SECONDS, PatientRDBStorage, connection_lost
from sweeps.urls import redact, scheme, with_driver

MAX_RETRY = 3  # times a trial whose worker died is run again (a trial that kills its worker stops there)
STALE_LOCK_SECONDS = 10  # a journal write holds its lock for milliseconds


class RetryStale(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a heartbeat-stale trial, its copy marked `retry_of` like the ones
    sweeps.study.budget.reconcile queues, and without the dead worker's host, pid and run (the
    worker that takes it sets its own)."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trial = copy.copy(trial)
        trial.user_attrs = {**{k: v for k, v in trial.user_attrs.items()
                               # "tracking_uri": sweeps.tracking.tracker.RUN_STORE, the store of that run
                               if k not in ("host", "pid", "run_id", "tracking_uri", "metrics", "error")},
                            "retry_of": trial.number,
                            "nnsweeps.enqueued": json.dumps(trial.params, sort_keys=True)}  # budget.ENQUEUED
        super().__call__(study, trial)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Storage:
    """A study storage named by one string, `spec`: an RDB URL, or the absolute path of a journal.

    `open()` gives the Optuna storage this process uses (made once); the other methods are what
    the sweep needs beyond Optuna: a check before anything starts, a repair after a crash, and the
    lock under which workers count trials and ask for a new one.
    """

    heartbeats = False  # whether running trials beat (and so how dead workers are found)
    local_file: Path | None = None  # the file that holds the storage, when it is one

    def __init__(self, spec: str, sweep: Mapping[str, Any] | None = None):
        self.spec = spec
        self.sweep = sweep or {}
        self._optuna: optuna.storages.BaseStorage | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.shown!r})"

    @property
    def shown(self) -> str:
        """The spec for logs, tags and params: without a password."""
        return redact(self.spec)

    def open(self) -> optuna.storages.BaseStorage:
        if self._optuna is None:
            self._optuna = self._make()
        return self._optuna

    def study_id(self, name: str) -> int:
        """The storage's id of study `name`, looked up once (a study's id never changes)."""
        ids = self.__dict__.setdefault("_study_ids", {})
        if name not in ids:
            ids[name] = self.open().get_study_id_from_name(name)
        return ids[name]

    def _make(self) -> optuna.storages.BaseStorage:
        raise NotImplementedError

    def check(self) -> None:
        """Raise ConfigError, one sentence, if this storage cannot be used."""

    def repair(self) -> list[str]:
        """Undo what a crash left, and say what was done."""
        return []

    def check_intact(self) -> None:
        """Raise ConfigError if the storage vanished or was replaced while the sweep ran."""

    def budget_lock(self, study_name: str) -> contextlib.AbstractContextManager:
        """An exclusive lock held while counting trials and asking for a new one: without it two
        workers could both see n_trials - 1 finished and both start a trial. Here a file in
        outputs/, which serialises the processes of one machine (a second launcher included)."""
        return _file_lock(Path("outputs") / f".{study_name}.budget.lock")

    def grace_seconds(self) -> int | None:
        """How long a running trial may go without a heartbeat, or None without heartbeats."""
        return None

    def __getstate__(self) -> dict:
        # each process opens its own connections, and looks its ids up in them
        return {**self.__dict__, "_optuna": None, "_seen": None, "_study_ids": {}}


class Journal(Storage):
    @property
    def local_file(self) -> Path:
        return Path(self.spec)

    def check_intact(self) -> None:
        """The journal only grows: one that vanished, shrank or was replaced since this process
        opened it stops the sweep with a sentence, instead of trials re-run from a blank history."""
        try:
            st = os.stat(self.spec)
            now = (st.st_ino, st.st_size)
        except FileNotFoundError:
            now = None
        seen = self.__dict__.get("_seen")
        self._seen = now
        if seen is not None and (now is None or now[0] != seen[0] or now[1] < seen[1]):
            what = "was deleted" if now is None else "was replaced" if now[0] != seen[0] else "shrank"
            raise ConfigError(f"the journal {self.spec} {what} while the sweep ran, so the study's record of its "
                              "trials is gone: the sweep stopped. Restore the file to resume, or start afresh on "
                              "purpose under a new sweep.study_name.")

    def _make(self) -> optuna.storages.BaseStorage:
        try:
            Path(self.spec).parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # what check() cannot see for root, to whom os.access says yes
            raise ConfigError(f"sweep.storage={self.spec!r} cannot be the journal file: {err.strerror} "
                              f"({err.filename}); give the path of a file in a folder that can be written.") from None
        # appends a full disk cuts short are undone: the journal never holds a torn line
        return optuna.storages.JournalStorage(RollbackFileBackend(self.spec, self._lock()))

    def _lock(self) -> optuna.storages.journal.JournalFileOpenLock:
        return optuna.storages.journal.JournalFileOpenLock(self.spec, grace_period=STALE_LOCK_SECONDS)

    def budget_lock(self, study_name: str) -> contextlib.AbstractContextManager:
        return _file_lock(Path(self.spec).parent / f".{study_name}.budget.lock")

    def check(self) -> None:
        """The journal must be a file that can be written, in a folder that can be written."""
        path, problem = Path(self.spec), ""
        try:
            folder = path.parent
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent  # the nearest folder that exists: the rest is created
            if path.is_dir():
                problem = "it is a folder"
            elif not folder.is_dir():
                problem = f"{folder} is a file, not a folder"
            elif not os.access(folder, os.W_OK | os.X_OK):  # the journal's lock files are made beside it
                problem = f"{folder} cannot be written"
            elif path.exists() and not os.access(path, os.W_OK):
                problem = f"{path} cannot be written"
        except OSError as err:  # a parent that cannot be searched
            problem = f"{err.strerror} ({err.filename})"
        if problem:
            raise ConfigError(f"sweep.storage={self.spec!r} cannot be the journal file: {problem}; give the path "
                              "of a file in a folder that can be written.")

    def repair(self) -> list[str]:
        """A stale lock file would hold every process up; a torn last line (a write cut short)
        would have the next write glued to it, making that line unreadable, so Optuna would
        silently drop the operations in it. The torn bytes never formed an operation anyone could
        read: they are cut off and kept in a side file."""
        if not Path(self.spec).exists():
            return []
        notes = []
        lock_file = Path(self.spec + ".lock")
        try:
            age = time.time() - lock_file.stat().st_mtime
        except FileNotFoundError:
            age = 0.0
        if age > STALE_LOCK_SECONDS:
            lock_file.unlink(missing_ok=True)
            notes.append(f"removed the stale lock file {lock_file} ({age:.0f} s old, left by a crashed process)")
        lock = self._lock()
        lock.acquire()
        try:
            with open(self.spec, "rb+") as f:
                data = f.read()
                if data and not data.endswith(b"\n"):
                    keep = data.rfind(b"\n") + 1
                    side = Path(f"{self.spec}.torn-{int(time.time())}")
                    side.write_bytes(data[keep:])
                    f.truncate(keep)
                    notes.append(f"the journal {self.spec} ended in a line torn by a crash ({len(data) - keep} "
                                 f"bytes): cut it off (kept in {side}); no finished trial is lost")
        finally:
            lock.release()
        return notes


class RDB(Storage):
    optuna_class: type[optuna.storages.RDBStorage] = optuna.storages.RDBStorage

    def __init__(self, spec: str, sweep: Mapping[str, Any] | None = None):
        super().__init__(spec, sweep)
        self.heartbeats = self.sweep.get("heartbeat_interval") is not None

    def _engine_kwargs(self) -> dict[str, Any]:
        return {}

    def _make(self) -> optuna.storages.BaseStorage:
        url, kwargs = with_driver(self.spec), self._engine_kwargs()
        if not self.heartbeats:
            return self.optuna_class(url, engine_kwargs=kwargs)
        return self.optuna_class(
            url, engine_kwargs=kwargs, heartbeat_interval=self.sweep["heartbeat_interval"],
            grace_period=self.sweep.get("grace_period"), heartbeat_stale_trial_callback=RetryStale(max_retry=MAX_RETRY))

    def grace_seconds(self) -> int | None:
        if not self.heartbeats:
            return None
        return self.sweep.get("grace_period") or 2 * self.sweep["heartbeat_interval"]  # Optuna's default

    def check(self) -> None:
        """The URL names a database SQLAlchemy knows, whose driver is installed."""
        import sqlalchemy  # deferred: the SQL toolkit is imported only for an RDB storage

        try:
            sqlalchemy.create_engine(with_driver(self.spec)).dispose()
        except sqlalchemy.exc.NoSuchModuleError:
            raise ConfigError(f"sweep.storage={self.shown!r} names a database SQLAlchemy does not know "
                              f"({scheme(self.spec)}); give a journal file path, sqlite:///PATH or "
                              "postgresql://USER@HOST:PORT/DB.") from None
        except (ImportError, sqlalchemy.exc.ArgumentError) as err:
            raise ConfigError(f"sweep.storage={self.shown!r} cannot be used: {err}; install the database's driver "
                              "or give a journal file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB."
                              ) from None


class Postgres(RDB):
    """Workers on several machines: the budget lock is the server's advisory lock on the study. A
    server away for a while (restarted, failed over) is waited out (sweeps.study.reconnect)."""

    optuna_class = PatientRDBStorage

    def _engine_kwargs(self) -> dict[str, Any]:
        # a server restarted or a connection dropped by a firewall: test pooled connections first
        return {"pool_pre_ping": True}

    def check(self, timeout: int = 5) -> None:
        """The server must answer, in seconds rather than after SQLAlchemy's retries."""
        import sqlalchemy  # deferred: the SQL toolkit is imported only for an RDB storage

        try:
            engine = sqlalchemy.create_engine(with_driver(self.spec), connect_args={"connect_timeout": timeout})
        except ImportError as err:
            raise ConfigError(f"sweep.storage is a PostgreSQL URL, but its driver is missing ({err}); install "
                              "psycopg2-binary (requirements.lock pins it).") from None
        try:
            with engine.connect():
                pass
        except sqlalchemy.exc.SQLAlchemyError as err:
            reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
            raise ConfigError(redact(f"sweep.storage={self.spec!r} cannot be reached ({reason}); start PostgreSQL "
                                     "(`make postgres`) or fix the URL.")) from None
        finally:
            engine.dispose()

    def _make(self) -> optuna.storages.BaseStorage:
        # Optuna creates its tables on its first connection to a new database, and two processes
        # doing it at once fail on each other's types: one at a time, the later ones find them
        with self._advisory_lock(advisory_key("tables", what="schema")):
            return patiently(super()._make, connection_lost, LOST_SECONDS)  # it connects at once

    def budget_lock(self, study_name: str) -> contextlib.AbstractContextManager:
        """The server's transaction-level advisory lock on the study's name: it serialises workers
        on every machine, and the server releases it when a worker's connection dies (a restart
        too: taking it waits the server out, and a holder whose connection was cut goes on)."""
        return self._advisory_lock(advisory_key(study_name))

    @contextlib.contextmanager
    def _advisory_lock(self, key: int) -> Iterator[None]:
        import sqlalchemy  # deferred, as in check()

        def locked() -> sqlalchemy.Connection:
            conn = self._lock_engine().connect()
            try:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            except BaseException:
                conn.close()
                raise
            return conn

        conn = patiently(locked, connection_lost, LOST_SECONDS)
        try:
            yield
        finally:
            try:
                conn.close()  # rolls its transaction back, which releases the lock
            except Exception as err:
                if not connection_lost(err):  # lost, the server released the lock with the connection
                    raise

    def _lock_engine(self):
        """One small engine per process for the advisory lock (connections are not shared across
        processes, and a Storage is pickled without it)."""
        if self.__dict__.get("_engine_pid") != os.getpid():
            import sqlalchemy  # deferred, as in check()

            self._engine = sqlalchemy.create_engine(with_driver(self.spec), pool_size=1, max_overflow=2,
                                                    pool_pre_ping=True)
            self._engine_pid = os.getpid()
        return self._engine

    def __getstate__(self) -> dict:
        return {k: v for k, v in super().__getstate__().items() if k not in ("_engine", "_engine_pid")}


def advisory_key(name: str, what: str = "budget") -> int:
    """A PostgreSQL advisory lock (by default a study's budget lock): a signed 64-bit number from its name."""
    digest = hashlib.blake2b(f"nnsweeps.{what}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


KINDS: dict[str, type[Storage]] = {"postgresql": Postgres, "postgres": Postgres}  # URL scheme -> class


def storage_for(spec: str, sweep: Mapping[str, Any] | None = None) -> Storage:
    """The Storage that `spec` names (see storage_spec); sweep: cfg.sweep, for the heartbeats."""
    heartbeat = {k: (sweep or {}).get(k) for k in ("heartbeat_interval", "grace_period")}
    if not scheme(spec):
        return Journal(spec, heartbeat)
    return KINDS.get(scheme(spec), RDB)(spec, heartbeat)


def storage_spec(storage: str | None, study_name: str) -> str:
    """sweep.storage as one string: an RDB URL, or the absolute path of the journal file.

    The default journal lives in outputs/ of the directory the sweep is started from (not in
    Hydra's per-run folder), so re-running the same command finds the study and resumes it.
    """
    if storage and scheme(storage):
        return storage
    path = Path(storage) if storage else Path("outputs") / f"{study_name}.journal"
    return str(path.expanduser().resolve())
