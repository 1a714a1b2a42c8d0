"""SIGTERM and SIGHUP (what `timeout`, `docker stop`, Slurm and a closed terminal send) are handled
like Ctrl-C, and a worker process never outlives its launcher: real processes and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.conftest import wait_for
from tests.e2e.test_faults import FINISHED, STEADY, assert_consistent, start, trials_in

pytestmark = pytest.mark.slow
ARGS = ["sweep.n_jobs=2", "sweep.n_trials=6", *STEADY, "train.iterations=20000"]  # trials of a few seconds


def children(pid: int) -> set[int]:
    out = set()
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(p.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return out


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_to_the_launcher_alone_fails_running_trials_kills_runs_and_exits_128_plus_it(sweep_dir, signum,
                                                                                            code):
    proc = start(sweep_dir, *ARGS)
    wait_for(lambda: len(trials_in(sweep_dir, TrialState.RUNNING)) >= 2)
    proc.send_signal(signum)  # the launcher only, as `timeout` and `docker stop` do
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == code, err
    assert f"interrupted ({signal.Signals(signum).name})" in err and "Traceback" not in err
    study = sweep_dir.study()
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert study.get_trials(states=(TrialState.FAIL,))
    assert all(r.info.status != "RUNNING" for r in sweep_dir.runs())
    assert [r.info.status for r in sweep_dir.runs("sweep")] == ["KILLED"]
    sweep_dir.run(*ARGS)  # the same command resumes
    assert_consistent(sweep_dir, 6)


def test_sighup_to_the_whole_process_group_as_a_closed_terminal_sends_is_one_sentence(sweep_dir):
    """A closed terminal (a tmux pane) hangs up its whole process group: the workers and loky's
    resource trackers too. A tracker it killed was started again without the semaphores it held,
    and printed a traceback for each it was then told about."""
    proc = start(sweep_dir, *ARGS)
    wait_for(lambda: len(trials_in(sweep_dir, TrialState.RUNNING)) >= 2)
    os.killpg(proc.pid, signal.SIGHUP)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 129, err
    assert "interrupted (SIGHUP)" in err and "Traceback" not in err and "resource_tracker" not in err, err
    assert not sweep_dir.study().get_trials(states=(TrialState.RUNNING,))
    assert all(r.info.status != "RUNNING" for r in sweep_dir.runs())
    sweep_dir.run(*ARGS)  # the same command resumes
    assert_consistent(sweep_dir, 6)


def test_a_worker_process_whose_launcher_is_killed_stops_within_seconds(sweep_dir):
    proc = start(sweep_dir, *ARGS)
    wait_for(lambda: len(trials_in(sweep_dir, TrialState.RUNNING)) >= 2)
    workers = {p for p in children(proc.pid) if b"popen_loky_posix" in Path(f"/proc/{p}/cmdline").read_bytes()}
    assert workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = time.monotonic()
    wait_for(lambda: not any(alive(p) for p in workers), timeout=20, every=0.2)
    assert time.monotonic() - killed_at < 15
    started = len(sweep_dir.study().trials)
    time.sleep(2)
    assert len(sweep_dir.study().trials) == started  # no trial started after its launcher died
    sweep_dir.run(*ARGS)
    assert_consistent(sweep_dir, 6)


def test_a_worker_joined_by_hand_stops_on_sigterm(sweep_dir):
    env = {**os.environ, "MLFLOW_TRACKING_URI": sweep_dir.uri}
    # trials long enough that its other process, stopped once the grace after the signal is over,
    # cannot finish the budget meanwhile on a quiet machine
    proc = subprocess.Popen([sys.executable, "-m", "sweeps.worker", *sweep_dir.args(*ARGS, "train.iterations=60000")],
                            cwd=sweep_dir.path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for(lambda: trials_in(sweep_dir, TrialState.RUNNING))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 143 and "[worker] interrupted (SIGTERM)" in err and "Traceback" not in err, err
    assert not sweep_dir.study().get_trials(states=(TrialState.RUNNING,))
    assert len(trials_in(sweep_dir, *FINISHED)) < 6
