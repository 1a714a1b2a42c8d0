"""Space kept back beside the local stores, so that a full disk can still record how a sweep stopped.

The write that finds the disk full fails. Recording that failure needs a little space of its own:
the trial's run ended with its tags, the trial failed and its params queued again in the journal,
the parent run's end, and the rollback journal SQLite writes beside mlflow.db for each of them.
So a sweep holds a small file in each folder of a local store (`hold`), every process of the sweep
deletes them all at its first full disk (`release`), before it records the stop, and a sweep that
ends deletes its own (`drop`). A file of a process that was killed is removed by the next `hold`.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Iterable

from sweeps.processes import alive

SIZE = 1 << 18  # bytes per folder: several times what the records of a stop take (docs/reliability.md)
PREFIX = ".nnsweeps-reserve-"
_folders: list[Path] = []  # where this process looks when it releases
_own: list[Path] = []  # the files this process made
_held = False  # whether a reserve was there when this process began to watch


def _name() -> str:
    return f"{PREFIX}{socket.gethostname()}-{os.getpid()}"


def _alive(path: Path) -> bool:
    """Whether the process that made path (on this host) still runs; another host's is left alone."""
    host, _, pid = path.name[len(PREFIX):].rpartition("-")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return alive(pid)


def watch(folders: Iterable[Path]) -> None:
    """The folders whose reserves this process releases at a full disk (a worker process's)."""
    global _held
    _folders[:] = sorted({Path(f).resolve() for f in folders})
    _held = _any()


def _any() -> bool:
    return any(next(folder.glob(f"{PREFIX}*"), None) is not None for folder in _folders)


def check() -> None:
    """Raises ENOSPC once another process released the reserve: its space is for the records of
    the stop, not for this trial's artifacts, which would fill it before they are written."""
    if _held and not _any():
        raise OSError(errno.ENOSPC, "the disk is full (another worker found it so)", str(_folders[0]))


def hold(folders: Iterable[Path]) -> None:
    """A reserve in each folder (once per filesystem), and the stale ones of dead processes removed.
    A folder that cannot take one (full already, read-only, not there yet) gets none: the sweep
    then meets the full disk without it, as it would have."""
    global _held
    watch(folders)
    devices: set[int] = set()
    for folder in _folders:
        try:
            for stale in folder.glob(f"{PREFIX}*"):
                if not _alive(stale):
                    stale.unlink(missing_ok=True)
            device = folder.stat().st_dev
            if device in devices:
                continue
            path = folder / _name()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError:
            continue
        try:
            os.posix_fallocate(fd, 0, SIZE)  # blocks taken now, not when the file is first written
            _own.append(path)
            devices.add(device)
            _held = True
        except OSError:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def release() -> bool:
    """Deletes every reserve in the watched folders (other processes' too: the sweep is stopping);
    whether there was any."""
    freed = False
    for folder in _folders:
        for path in folder.glob(f"{PREFIX}*"):
            try:
                path.unlink()
                freed = True
            except OSError:
                pass
    _own.clear()
    return freed


def drop() -> None:
    """Deletes this process's own reserves and forgets the folders: the sweep ended (what runs
    next in this process, another sweep or a reproduction, is not that sweep's)."""
    global _held
    for path in _own:
        path.unlink(missing_ok=True)
    _own.clear()
    _folders.clear()
    _held = False
