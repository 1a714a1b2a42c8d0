"""What a batch scheduler and a first run can do to a sweep: a timeout that must bound the trials
still training, and a store whose creation is cut short. Real processes and signals."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

import pytest
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from sweeps import reserve
from sweeps.tracking.outbox import outbox_root
from tests.conftest import wait_for

pytestmark = pytest.mark.slow


def test_the_timeout_bounds_a_trial_that_is_training_and_queues_its_params_again(sweep_dir):
    start = time.monotonic()
    proc = sweep_dir.run("search_space=none", "+search_space.train.learning_rate={type:float,low:0.1,high:1.0}",
                         "train.iterations=1000000000", "sweep.timeout=5", "sweep.n_trials=3", timeout=120)
    assert time.monotonic() - start < 60  # was still running at 150 s
    assert "sweep.timeout=5 s passed" in proc.stdout and "Traceback" not in proc.stderr
    study = sweep_dir.study()
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert failed and not study.get_trials(states=(TrialState.RUNNING,))
    queued = study.get_trials(states=(TrialState.WAITING,))
    assert sorted(t.user_attrs["retry_of"] for t in queued) == sorted(t.number for t in failed)
    runs = {r.data.tags["optuna.trial"]: r for r in sweep_dir.runs("trial")}
    for t in failed:
        assert runs[str(t.number)].info.status == "KILLED" and runs[str(t.number)].data.tags["reason"] == "timeout"
    assert sweep_dir.runs("sweep")[0].info.status == "FINISHED"  # the summary ran


def test_a_store_whose_creation_is_killed_is_not_left_half_made(sweep_dir):
    db = sweep_dir.path / "mlflow.db"
    code = f"from sweeps.tracking.store import create_store; create_store({sweep_dir.uri!r})"
    for attempt in range(5):  # kill -9 while MLflow's migrations run on the file being made
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=sweep_dir.path)
        made = wait_for(lambda: list(sweep_dir.path.glob(".mlflow.db.creating-*")) or proc.poll() is not None,
                        timeout=60, every=0.01)
        if proc.poll() is None and made:
            time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            if not db.exists():
                break
        db.unlink(missing_ok=True)
    assert not db.exists(), "every kill came too late to test anything"
    sweep_dir.run("sweep.n_trials=2", "search_space=none", "train.iterations=100")  # the next sweep makes it whole
    assert db.exists() and not list(sweep_dir.path.glob(".mlflow.db.creating-*"))
    assert len(sweep_dir.runs("trial")) == 2


def small_disk(path, size="2m"):
    """A small filesystem of the test's own at path, or None where it cannot mount one."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return path if done.returncode == 0 else None


def fill(folder, leave):
    """A file in folder taking all its filesystem's free space but `leave` bytes."""
    st = os.statvfs(folder)
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        os.posix_fallocate(fd, 0, st.f_bavail * st.f_frsize - leave)
    finally:
        os.close(fd)
    return folder / "filler"


def file_size_limit():
    """Where no filesystem can be mounted: files stop growing at 1.4 MB (EFBIG, SIGXFSZ ignored)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_400_000, 1_400_000))


def test_a_full_disk_stops_the_sweep_with_one_sentence_and_the_same_command_then_finishes(tmp_path):
    from tests.conftest import SweepDir
    from tests.e2e.test_faults import assert_consistent

    mounted = small_disk(tmp_path / "small")
    sweep_dir = SweepDir(tmp_path / "small")
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": sweep_dir.uri}
        proc = subprocess.run([sys.executable, "-m", "sweeps", *sweep_dir.args("sweep.n_trials=10")],
                              cwd=sweep_dir.path, env=env, capture_output=True, text=True, timeout=300,
                              preexec_fn=None if mounted else file_size_limit)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) < 20, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("error: the disk is full")
        if mounted:
            # on the full disk itself, the space kept back recorded the stop (a file-size limit
            # leaves no room to do so: there the next invocation tidies)
            assert not list(mounted.glob(".nnsweeps-reserve-*"))
            study = sweep_dir.study()
            assert not study.get_trials(states=(TrialState.RUNNING,))
            runs = sweep_dir.runs()
            assert all(r.info.status != "RUNNING" and r.data.tags.get("optuna.state") != "RUNNING" for r in runs)
            state = {str(t.number): t.state for t in study.trials}
            assert all(r.info.status == "FINISHED" for r in runs if r.data.tags.get("optuna.state") == "COMPLETE")
            assert all(state[r.data.tags["optuna.trial"]] != TrialState.FAIL for r in sweep_dir.runs("trial")
                       if r.info.status == "FINISHED")
            subprocess.run(["mount", "-o", "remount,size=128m", str(mounted)], check=True)
        sweep_dir.run("sweep.n_trials=10")  # space freed: the same command finishes the budget
        assert_consistent(sweep_dir, 10)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mounted)])


# free space on the journal's disk: room for some trials beside the reserve, or for the reserve alone
@pytest.mark.parametrize("free", [330_000, reserve.SIZE], ids=["after-some-trials", "at-once"])
def test_a_journal_on_a_full_disk_stays_readable_and_the_same_command_then_finishes(tmp_path, free):
    """Two workers: the append a full disk cuts short is undone before the other worker's next one,
    so the journal keeps whole lines only (issue 20: a broken line in its middle lost the study)."""
    from tests.conftest import SweepDir
    from tests.e2e.test_faults import assert_consistent

    mounted = small_disk(tmp_path / "small", size="3m")
    if not mounted:
        pytest.skip("no filesystem can be mounted here")
    sweep_dir = SweepDir(tmp_path)
    sweep_dir.journal = mounted / "optuna.journal"
    # the journal alone on the small disk: the trials' records, kept beside it, go to a folder of
    # the big one, so that what meets the full disk is the journal's append rather than theirs
    records = outbox_root(sweep_dir.journal, sweep_dir.study_name).parent
    args = ("sweep.n_jobs=2", "sweep.n_trials=30")
    try:
        records.mkdir()
        (tmp_path / "records").mkdir()
        subprocess.run(["mount", "--bind", str(tmp_path / "records"), str(records)], check=True)
        filler = fill(mounted, free)
        proc = sweep_dir.run(*args, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("error: the disk is full")
        logs = list(JournalFileBackend(str(sweep_dir.journal)).read_logs(0))  # Optuna's reader: whole lines
        assert sweep_dir.journal.read_bytes().count(b"\n") == len(logs)
        if free > reserve.SIZE:
            assert sweep_dir.study().get_trials(states=(TrialState.COMPLETE,))
        filler.unlink()
        sweep_dir.run(*args)  # space freed: the same command finishes the budget
        assert_consistent(sweep_dir, 30)
    finally:
        subprocess.run(["umount", "-l", str(records)])
        subprocess.run(["umount", "-l", str(mounted)])


def test_a_store_locked_for_longer_than_sqlite_waits_is_waited_for(sweep_dir):
    """Another process holds mlflow.db's write lock for 15 s (SQLite itself waits 5 s): trials wait
    for it instead of failing."""
    args = ("search_space=none", "+search_space.train.learning_rate={type:float,low:0.1,high:1.0}",
            "train.iterations=2000", "sweep.pruner=none")
    sweep_dir.run("sweep.n_trials=2", *args)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, time, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(15); c.execute('COMMIT')"),
        str(sweep_dir.path / "mlflow.db")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    proc = sweep_dir.run("sweep.n_trials=6", *args)
    holder.wait(timeout=60)
    assert "Traceback" not in proc.stderr
    study = sweep_dir.study()
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6 and not study.get_trials(
        states=(TrialState.FAIL,))
