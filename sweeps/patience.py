"""A call made again, with backoff, while what it reaches is away for a while: an MLflow store that
another process keeps busy (sweeps.tracking.store.Patient), a PostgreSQL server that restarts
(sweeps.study.reconnect)."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def patiently(fn: Callable[[], T], away: Callable[[BaseException], bool], patience: float) -> T:
    """fn(), called again 0.25 s, 0.5 s, 1 s ... (at most 8 s) later while it raises an error for which
    away(error) holds, for up to `patience` seconds; then that error is raised, as is any other."""
    deadline, delay = time.monotonic() + patience, 0.25
    while True:
        try:
            return fn()
        except Exception as err:
            if not away(err) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 8.0)
