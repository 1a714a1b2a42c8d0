"""Which process is this, and is another one still alive: how a crashed worker is told apart."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def here() -> dict[str, str]:
    return {"host": socket.gethostname(), "pid": str(os.getpid())}


def alive(pid: int | str | None) -> bool:
    """Whether a process with this pid runs on this host (signal 0 tests without sending). A
    zombie does not: a worker killed with its launcher stays one until its new parent reaps it,
    which an init that does not (a container's) never does. pid may be a tag's text: one that is
    no pid (missing, not a number, out of range) is no live process."""
    try:
        pid = int(pid)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # it exists, under another user
        pass
    if not Path("/proc/self").exists():  # not Linux: no way to tell a zombie
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # gone meanwhile
        return False
    return state not in ("Z", "X")  # proc(5): zombie, dead
