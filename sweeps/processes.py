"""Which process is this, and is another one still alive: how a crashed worker is told apart."""

from __future__ import annotations

import os
import socket


def here() -> dict[str, str]:
    return {"host": socket.gethostname(), "pid": str(os.getpid())}


def alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (signal 0 tests without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True
