"""A journal file whose appends are whole or not there: Optuna's JournalFileBackend, with an append
cut short (a full disk, a file-size limit) undone before anyone else appends.

Optuna appends a line under the journal's lock and leaves whatever part of it reached the file
when the write fails. Another worker's next append (once the sweep freed its reserve) then lands
right after those bytes: a broken line in the middle of the journal, where Optuna's own client, and
any reader, stops for good. Here the file is cut back to its length before the append, under the
same lock, so it only ever holds whole lines. A reader never took the torn bytes meanwhile: Optuna
reads a line without its final newline as not written yet.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from optuna.storages.journal import BaseJournalBackend, JournalFileBackend, JournalFileOpenLock


class _Held:
    """The lock of the inner backend: RollbackFileBackend holds the journal's real lock around each
    append already, and Optuna's file locks are not re-entrant. (JournalFileBackend only calls
    acquire() and release(); its lock base class is not exported, hence no subclass of it.)"""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


class RollbackFileBackend(BaseJournalBackend):
    """Optuna's journal file at `path`, written under `lock`; an append that fails with an OSError
    leaves the file byte for byte as it was (and re-raises)."""

    def __init__(self, path: str, lock: JournalFileOpenLock):
        self._path, self._lock = path, lock
        self._file = JournalFileBackend(path, lock_obj=_Held())  # Optuna's line format, read and written

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        return self._file.read_logs(log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self._lock.acquire()
        try:
            size = os.path.getsize(self._path)
            try:
                self._file.append_logs(logs)
            except OSError:
                cut(self._path, size)
                raise
        finally:
            self._lock.release()


def cut(path: str, size: int) -> None:
    """The file at path truncated to size bytes, on disk before the lock is let go."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
