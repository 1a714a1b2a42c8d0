"""sweeps.pool: worker processes started before they are needed, reused, and killed at the end;
`python -m sweeps` then exits at once, leaving no process and no shared-memory folder behind."""

from __future__ import annotations

import functools
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sweeps.runner import pool
from sweeps.runner.cli import WARM_UP
from tests.conftest import wait_for

pytestmark = pytest.mark.slow


def pid_of_worker(_) -> int:
    time.sleep(0.2)  # long enough that both workers take some
    return os.getpid()


def fail_or_wait_for_sibling(i: int) -> float:
    if i == 1:
        raise ValueError("process 1 failed")
    t0 = time.monotonic()
    while not pool.SIBLING_FAILED.is_set() and time.monotonic() - t0 < 30:  # as worker._work checks
        time.sleep(0.05)
    return time.monotonic() - t0


def collector_state(_) -> tuple[bool, int]:
    time.sleep(0.2)
    return gc.isenabled(), gc.get_freeze_count()


def die_unless_in(pid: int) -> str:
    if os.getpid() != pid:
        os._exit(3)  # a worker process that dies (killed, out of memory)
    return "ran here"


def interrupt_or_sleep(i: int) -> None:
    if i == 0:
        raise KeyboardInterrupt  # Ctrl-C, in the worker this process runs
    time.sleep(30)


def wait_for_interrupt(marker: str) -> None:
    """A trial that runs until its process's Ctrl-C handler (warm_up's) sets INTERRUPTED."""
    from sweeps.interrupts import INTERRUPTED

    Path(marker).write_text("running")
    Path(marker).write_text("interrupted" if INTERRUPTED.wait(30) else "ran on")


def started_at(pid: int) -> float:
    """The process's start, in seconds since boot (CLOCK_BOOTTIME)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of proc(5): starttime


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def loky_workers() -> set[int]:
    """Every loky worker process of the machine."""
    out = set()
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if b"popen_loky_posix" in (p / "cmdline").read_bytes() and not gone(int(p.name)):
                out.add(int(p.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return out


def memmapping_folders(pid: int) -> list[Path]:
    """joblib's shared-memory folders of process pid (removed by its atexit handlers)."""
    return list(Path("/dev/shm").glob(f"joblib_memmapping_folder_{pid}_*"))


def test_started_workers_are_the_ones_that_run_then_stop_kills_them():
    existing = loky_workers()
    pool.start(3, WARM_UP)  # this process and 2 worker processes
    for f in pool._pool.warming:  # one process may answer both no-op tasks: which is loky's choice
        f.result(timeout=60)
    warm = wait_for(lambda: len(loky_workers() - existing) == 2 and loky_workers() - existing, timeout=60)
    before = time.clock_gettime(time.CLOCK_BOOTTIME)
    pids = pool.map(pid_of_worker, range(3), 3, WARM_UP)
    assert pids[0] == os.getpid() and set(pids[1:]) <= warm and len(warm) == 2  # the warm processes ran them
    # started before map() was called: map reused them rather than starting its own
    assert all(started_at(pid) <= before for pid in warm)
    pool.stop()
    assert all(gone(pid) for pid in warm)
    pool.stop()  # a second stop has nothing to do


def test_fewer_workers_than_started_reuse_the_warm_processes():
    """A resumed sweep needs fewer workers than pool.start() launched for: no second, cold pool."""
    pool.start(3, WARM_UP)
    warm = {f.result(timeout=60) for f in pool._pool.warming}
    pids = pool.map(pid_of_worker, range(2), 2, WARM_UP)
    assert pids[0] == os.getpid() and pids[1] in warm
    pool.stop()


def test_worker_processes_collect_garbage_once_warm_and_skip_the_imports():
    """warm_up pauses the collector during its imports (0.4 s of CPU walking them) and freezes them:
    the trials then run with it going again, over a heap without the modules."""
    pool.start(2, WARM_UP)
    for f in pool._pool.warming:
        f.result(timeout=60)
    enabled, frozen = pool.map(collector_state, range(2), 2, WARM_UP)[1]  # the same pool
    assert enabled and frozen > 100_000  # numpy, optuna, matplotlib: no mlflow
    pool.stop()


def warm_pool() -> int:
    """pool.start(2, WARM_UP), once its process is warm and known to be idle: its pid."""
    pool.start(2, WARM_UP)
    (pid,) = {f.result(timeout=60) for f in pool._pool.warming}
    wait_for(lambda: pool._pool.idle_since > 0, timeout=10)  # set by the future's callback, just after
    return pid


def test_at_once_uses_the_processes_that_are_up_and_never_starts_one():
    existing = loky_workers()
    assert pool.at_once([os.getpid, os.getpid]) == [os.getpid()] * 2  # none up: all here
    assert not loky_workers() - existing
    pool.start(2, WARM_UP)
    assert pool.at_once([os.getpid, os.getpid]) == [os.getpid()] * 2  # still warming: all here
    warm = warm_pool()
    assert pool.at_once([os.getpid, os.getpid]) == [os.getpid(), warm]  # the second there, at once
    pool._pool.idle_since -= pool.IDLE_TIMEOUT  # idle so long that loky ended it: not waited for
    assert pool.at_once([os.getpid, os.getpid]) == [os.getpid()] * 2
    pool.stop()


def test_at_once_runs_here_a_task_whose_process_died():
    warm_pool()
    assert pool.at_once([os.getpid, functools.partial(die_unless_in, os.getpid())]) == [os.getpid(), "ran here"]
    pool.stop()


def test_freeze_heap_sets_a_paused_collector_going_again_and_leaves_others_alone():
    try:
        pool.pause_collector()
        assert not gc.isenabled()
        pool.freeze_heap()
        assert gc.isenabled() and gc.get_freeze_count() > 0
        gc.disable()  # someone else's choice
        pool.freeze_heap()
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_the_benchmarks_switch_leaves_the_collector_alone(monkeypatch):
    """NNSWEEPS_BENCH_NO_GC_FREEZE, for benchmarks/bench_sweep.py's section 6 only: the collector
    is neither paused nor the heap frozen, so that the benchmark measures what they buy."""
    monkeypatch.setenv(pool.NO_GC_FREEZE, "1")
    frozen = gc.get_freeze_count()
    pool.pause_collector()
    assert gc.isenabled()
    pool.freeze_heap()
    assert gc.get_freeze_count() == frozen


def test_a_failed_process_stops_the_worker_in_this_process_after_its_trial():
    """loky stops every process when one dies; the worker here must not run the sweep alone."""
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="process 1"):
        pool.map(fail_or_wait_for_sibling, [0, 1], 2, WARM_UP)
    assert time.monotonic() - t0 < 20 and pool.SIBLING_FAILED.is_set()
    pool.stop()


def test_one_worker_runs_in_this_process_and_starts_nothing():
    pool.start(1, WARM_UP)
    assert not pool._pool.warming
    assert pool.map(pid_of_worker, range(3), 1, WARM_UP) == [os.getpid()] * 3


def test_an_interrupt_in_this_process_kills_the_worker_processes():
    pool.start(2, WARM_UP)
    (pid,) = {f.result(timeout=60) for f in pool._pool.warming}
    with pytest.raises(KeyboardInterrupt):
        pool.map(interrupt_or_sleep, [0, 1], 2, WARM_UP)
    assert gone(pid)


def test_a_launcher_that_runs_no_worker_passes_its_interrupt_to_the_processes(tmp_path):
    """A tracked launcher runs every worker in a process (here=False): a SIGTERM or SIGHUP to it
    alone reaches them as a Ctrl-C, so their trials stop at their next check before they are
    killed. The processes are found in loky's private record of them (pool._Pool.pids)."""
    marker = tmp_path / "trial"
    pool.start(1, WARM_UP, here=False)
    (pid,) = {f.result(timeout=60) for f in pool._pool.warming}

    def interrupt_once_running() -> None:
        wait_for(lambda: marker.exists(), timeout=60)
        os.kill(os.getpid(), signal.SIGINT)  # this process alone, as the launcher's own signal handler raises

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt_once_running, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            pool.map(wait_for_interrupt, [str(marker)], 1, WARM_UP, here=False)
    finally:
        signal.signal(signal.SIGINT, before)
    assert marker.read_text() == "interrupted" and gone(pid)


def test_a_finished_sweep_exits_at_once_and_leaves_no_worker(sweep_dir):
    # trials long enough that this process cannot run all 4 before the worker process has warmed up
    proc = sweep_dir.run("sweep.n_jobs=2", "sweep.n_trials=4", "search_space=none", "train.iterations=20000",
                         "+search_space.train.learning_rate={type:float,low:0.1,high:1.0}")
    assert "Best trial" in proc.stdout
    assert "leaked" not in proc.stderr and "Traceback" not in proc.stderr
    pids = {t.user_attrs["pid"] for t in sweep_dir.study().trials}
    assert len(pids) == 2 and all(gone(int(pid)) for pid in pids)
    parent = sweep_dir.runs("sweep")[0]
    assert len(sweep_dir.runs("trial")) == 4 and parent.info.status == "FINISHED"
    assert not memmapping_folders(int(parent.data.tags["pid"]))


def test_a_check_that_fails_after_the_workers_started_stops_them(sweep_dir):
    """sweep.storage is checked after the pool starts: exit 2, the sentence, no worker left."""
    (sweep_dir.path / "file").write_text("not a folder")
    before = loky_workers()
    proc = sweep_dir.run("sweep.n_jobs=2", f"sweep.storage={sweep_dir.path / 'file' / 'optuna.journal'}",
                         check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not loky_workers() - before


TRACKER_ENV = """
import os, sys, time
from pathlib import Path
from sweeps.runner import pool
pool.start(2)
for f in pool._pool.warming:
    f.result(timeout=60)
kids = [int(c) for t in Path(f"/proc/{os.getpid()}/task").iterdir()
        for c in (t / "children").read_text().split()]
trackers = [k for k in kids if b"loky.backend.resource_tracker" in Path(f"/proc/{k}/cmdline").read_bytes()]
env = Path(f"/proc/{trackers[0]}/environ").read_bytes().split(b"\\0")
print(len(trackers), os.environ.get("PYTHONWARNINGS"), [e.decode() for e in env if e.startswith(b"PYTHONWARNINGS=")])
pool.stop()
"""


def test_the_resource_tracker_keeps_quiet_and_the_environment_is_restored():
    """loky's resource tracker warns, at exit and after the command's last line, about semaphores a
    killed worker registered and this process already unlinked: it starts with that warning off,
    and the launcher's own environment (inherited by what it starts later) is left as it was."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run([sys.executable, "-c", TRACKER_ENV], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(" ", 2) == ["1", "None", f"['PYTHONWARNINGS={pool.QUIET_TRACKER}']\n"]
