"""sweeps.processes: this host and pid, and whether another process is alive (a zombie is not)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sweeps.processes import alive, here
from tests.conftest import wait_for


def test_here_is_this_host_and_process():
    assert here() == {"host": socket.gethostname(), "pid": str(os.getpid())}
    assert not alive(0) and not alive(-1)


def test_a_zombie_is_not_alive():
    """A worker killed with its launcher is a zombie until its new parent reaps it, for good under
    an init that never does: its trials must be failed all the same."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # exits at once, not waited for
    state = wait_for(lambda: (Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                              if Path(f"/proc/{child.pid}/stat").exists() else None) == "Z", timeout=30)
    assert state and not alive(child.pid)
    child.wait()
    assert not alive(child.pid) and alive(os.getpid())


@pytest.mark.parametrize("pid", [None, "", "x", "12.5", str(2**64), -3, 0])
def test_a_tag_that_is_no_pid_is_no_live_process(pid):
    """A run's or a trial's pid tag, read back: one that is not a pid never raises."""
    assert alive(pid) is False


def test_a_pid_as_a_tags_text_is_read():
    assert alive(str(os.getpid())) and alive(os.getpid())
