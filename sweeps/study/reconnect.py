"""A PostgreSQL server that goes away for a while (restarted, failed over, a dropped network) is
waited out: each call of the study's storage is made again from its start, with backoff, for up to
LOST_SECONDS, instead of failing the trial that met it, and then the sweep, with a traceback.

A call is one transaction of Optuna's RDBStorage, so a call made again is all or nothing: one cut
off before its commit wrote nothing. One cut off after its commit, before the answer came back, is
done twice; for a trial's state that is Optuna's UpdateFinishedTrialError, which the worker reads
as "finished elsewhere" (sweeps.runner.work), and a second new trial, left RUNNING without a
heartbeat, is failed and retried a grace period later (sweeps.study.budget._adopt_unbeaten).
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any, Callable

import optuna

from sweeps.patience import patiently

LOST_SECONDS = 120  # how long a database server that went away is waited for

_calls = threading.local()  # whether this thread is inside a call of the storage already


def connection_lost(err: BaseException) -> bool:
    """Whether err, or one it came from (Optuna's StorageInternalError wraps SQLAlchemy's), is a
    connection to the database server that failed or was refused: SQLAlchemy's OperationalError or
    InterfaceError, or an error on a connection SQLAlchemy found dead; not a statement refused."""
    import sqlalchemy  # deferred: the SQL toolkit is imported only for an RDB storage

    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)) or (
                isinstance(err, sqlalchemy.exc.DBAPIError) and err.connection_invalidated):
            return True
        err = err.__cause__ or err.__context__
    return False


def _waits_out(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if getattr(_calls, "inside", False):  # a step of an outer call, which is made again whole
            return method(self, *args, **kwargs)
        _calls.inside = True
        try:
            return patiently(lambda: method(self, *args, **kwargs), connection_lost, LOST_SECONDS)
        finally:
            _calls.inside = False
    return call


class PatientRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose calls wait out a server that went away. Every method is wrapped,
    the private ones too: Optuna's own _CachedStorage (which optuna.load_study puts in front of an
    RDBStorage) and fail_stale_trials call private ones (_create_new_trial, _get_trials,
    _get_stale_trial_ids ...), and only the outermost call of a thread is made again."""


for _name, _method in list(vars(optuna.storages.RDBStorage).items()):
    if inspect.isfunction(_method) and not _name.startswith("__"):
        setattr(PatientRDBStorage, _name, _waits_out(_method))
