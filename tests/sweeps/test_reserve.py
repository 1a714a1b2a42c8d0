"""sweeps.reserve: space held beside the stores, given up at the first full disk."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys

import pytest

from sweeps import reserve


@pytest.fixture(autouse=True)
def fresh():
    yield
    reserve.drop()
    reserve.watch([])


def reserves(folder):
    return sorted(p.name for p in folder.glob(f"{reserve.PREFIX}*"))


def test_hold_takes_the_space_once_per_filesystem_and_drop_gives_it_back(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    reserve.hold([tmp_path / "a", tmp_path / "b", tmp_path / "missing"])  # one disk: one reserve
    made = list(tmp_path.glob(f"*/{reserve.PREFIX}*"))
    assert len(made) == 1 and made[0].stat().st_blocks * 512 >= reserve.SIZE  # allocated, not sparse
    reserve.check()  # still there: nothing to say
    reserve.drop()
    assert not list(tmp_path.glob(f"*/{reserve.PREFIX}*"))


def test_a_dead_process_reserve_is_removed_and_another_host_s_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / f"{reserve.PREFIX}{socket.gethostname()}-{dead.stdout.strip()}").write_bytes(b"")
    (tmp_path / f"{reserve.PREFIX}otherhost-1").write_bytes(b"")
    reserve.hold([tmp_path])
    assert reserves(tmp_path) == sorted([f"{reserve.PREFIX}otherhost-1",
                                         f"{reserve.PREFIX}{socket.gethostname()}-{os.getpid()}"])


def test_release_frees_every_reserve_and_then_check_says_the_disk_is_full(tmp_path):
    reserve.hold([tmp_path])
    (tmp_path / f"{reserve.PREFIX}otherhost-1").write_bytes(b"")
    assert reserve.release() and not reserves(tmp_path)
    assert not reserve.release()  # nothing left to give
    with pytest.raises(OSError) as err:
        reserve.check()
    assert err.value.errno == errno.ENOSPC


def test_a_worker_notices_a_reserve_another_process_released(tmp_path):
    reserve.hold([tmp_path])
    code = (f"from sweeps import reserve; from pathlib import Path; reserve.watch([Path({str(tmp_path)!r})]); "
            "print(reserve.release())")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "True"
    with pytest.raises(OSError):
        reserve.check()


def test_a_folder_without_a_reserve_at_the_start_is_never_called_full(tmp_path):
    reserve.watch([tmp_path])  # the launcher could not hold one (the disk was full already)
    reserve.check()


def test_after_drop_nothing_of_that_sweep_is_watched(tmp_path):
    """A later sweep or a reproduction in the same process (sweeps.run, a notebook) is not told
    the disk is full because the last sweep's reserve is gone."""
    reserve.hold([tmp_path])
    reserve.drop()
    reserve.check()
    assert not reserve.release()
