"""The one MLflow writer of an invocation: a thread that sends its workers' trial records
(sweeps.tracking.outbox) to MLflow, so that worker processes never import mlflow.

For each record it finds in its folder it makes the trial's run as the trial starts (and sets
the trial's user attribute run_id, which the worker waits for before telling Optuna the trial's
end), then, once the trial's end is on disk, logs the run's artifacts, metrics and curves and
ends it. A record is removed only once MLflow holds it: a writer that stopped (a crash, kill -9,
a store away) leaves the rest to the next invocation's writer, which adopts the folders of
writers that are gone (`start`) before the stores are tidied.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import optuna

from sweeps import reserve
from sweeps.errors import disk_full
from sweeps.processes import alive, here
from sweeps.study.storages import Storage
from sweeps.tracking.outbox import Outbox, outbox_root, remove
from sweeps.record import RUN_ID, RUN_STORE
from sweeps.tracking.tracker import Tracker

logger = logging.getLogger(__name__)

IDLE = 0.005  # s between looks at an empty folder: a trial waits for its run at most about this
STORE = "tracking_uri"  # a writer's folder names the store its records are for, in this file


def _disk_full() -> bool:
    """Whether the sweep gave up its reserve at a full disk (sweeps.reserve.check says so)."""
    try:
        reserve.check()
    except OSError:
        return True
    return False


def _store(folder: Path) -> str | None:
    try:
        return (folder / STORE).read_text()
    except OSError:
        return None


class Writer:
    def __init__(self, tracker: Tracker, storage: Storage, study_name: str):
        self.tracker, self.storage, self.study_name = tracker, storage, study_name
        self.root = outbox_root(storage.local_file, study_name)
        me = here()
        self.folder = self.root / f"{me['host']}-{me['pid']}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # the last record that failed, tried again meanwhile

    def outbox(self, curve_points: int, common_tags: dict[str, str]) -> Outbox:
        """What a worker of this invocation records its trials with."""
        return Outbox(str(self.folder), self.tracker.experiment_id, self.tracker.parent_run_id,
                      curve_points=curve_points, common_tags=dict(common_tags))

    # --- the thread ----------------------------------------------------------------------------

    def start(self) -> list[str]:
        """Sends what writers that are gone left (this host's), then starts the thread; what it
        did, in lines for the terminal."""
        notes = []
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / STORE).write_text(self.tracker.uri)
        for other in sorted(self.root.iterdir()):
            host, _, pid = other.name.rpartition("-")
            if other == self.folder or host != here()["host"] or alive(pid) or not other.is_dir():
                continue
            if _store(other) not in (None, self.tracker.uri):  # for a sweep that tracks elsewhere: its own
                continue
            sent = self._drain(other)
            shutil.rmtree(other, ignore_errors=True)
            if sent:
                notes.append(f"sent {sent} trial record(s) a stopped sweep left in {other} to MLflow")
        self._thread = threading.Thread(target=self._loop, daemon=True, name="mlflow-writer")
        self._thread.start()
        return notes

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._pass(self.folder):
                self._stop.wait(IDLE if self.error is None else 0.5)

    def pending(self) -> int:
        """Records not yet in MLflow: starts without their run, ends not sent."""
        names = set(os.listdir(self.folder)) if self.folder.exists() else set()
        starts = {n[:-len(".start.json")] for n in names if n.endswith(".start.json")}
        ends = {n[:-len(".end.json")] for n in names if n.endswith(".end.json")}
        return len({k for k in starts if f"{k}.run" not in names} | ends)

    def flush(self, timeout: float = 300.0) -> bool:
        """Waits until every record so far is in MLflow; False if the thread stopped or time ran out
        (the rest stays on disk for the next invocation)."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if self._thread is None or not self._thread.is_alive() or time.monotonic() > deadline:
                return False
            time.sleep(IDLE)
        return True

    def stop(self, timeout: float = 300.0) -> None:
        if self._thread is None:
            return
        self.flush(timeout)
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None
        if not self.pending():  # else what is left waits for the next writer of this store
            shutil.rmtree(self.folder, ignore_errors=True)

    # --- one pass over a folder ----------------------------------------------------------------

    def _pass(self, folder: Path) -> bool:
        """Makes the runs of new trials, then sends the ends on disk; whether any was sent. A
        record that fails (its store away or busy) stays, tried again, and holds up no other."""
        names = set(os.listdir(folder))
        starts = sorted(n[:-len(".start.json")] for n in names if n.endswith(".start.json"))
        ends = sorted(n[:-len(".end.json")] for n in names if n.endswith(".end.json"))
        jobs = [(self._make_run, k) for k in starts if f"{k}.run" not in names] + [(self._send_end, k) for k in ends]
        sent = False
        for job, key in jobs:
            try:
                try:
                    job(folder, key)
                except Exception as err:
                    # a full disk: the space the sweep kept back (sweeps.reserve) records the runs'
                    # ends, as it records the workers' trials; once given up, the record waits
                    if disk_full(err) is None or not reserve.release():
                        raise
                    job(folder, key)
                sent, self.error = True, None
            except Exception as err:
                self.error = err
        return sent

    def _drain(self, folder: Path) -> int:
        """Every end in a stopped writer's folder (starts without an end are left to tidy()). A
        trial that Optuna was not told the end of (its worker stopped waiting for its run) is
        failed by tidy(): its run ends KILLED, whatever its record says."""
        ends = [n[:-len(".end.json")] for n in os.listdir(folder) if n.endswith(".end.json")]
        for key in ends:
            state = self._state(int(key))
            told = state is not None and state.is_finished() and state != optuna.trial.TrialState.FAIL
            self._send_end(folder, key, None if told else {"optuna.state": "FAIL", "reason": "its worker stopped "
                                                           "before telling Optuna its end"})
        return len(ends)

    def _state(self, number: int) -> optuna.trial.TrialState | None:
        storage = self.storage.open()
        try:
            trial_id = storage.get_trial_id_from_study_id_trial_number(self.storage.study_id(self.study_name), number)
        except KeyError:
            return None
        return storage.get_trial(trial_id).state

    def _make_run(self, folder: Path, key: str) -> str:
        start = json.loads((folder / f"{key}.start.json").read_text())
        run_id = self.tracker.start_trial(start["number"], tags=start["tags"], params=start["params"],
                                          experiment_id=start["experiment_id"], parent_run_id=start["parent_run_id"],
                                          start_time=start.get("start_time"))  # records of older versions lack it
        storage = self.storage.open()
        trial_id = storage.get_trial_id_from_study_id_trial_number(self.storage.study_id(self.study_name),
                                                                   start["number"])
        try:
            storage.set_trial_user_attr(trial_id, RUN_ID, run_id)
            storage.set_trial_user_attr(trial_id, RUN_STORE, self.tracker.uri)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # failed meanwhile by another worker (no heartbeat) or by tidy(): its run ends KILLED
        (folder / f"{key}.run").write_text(run_id)
        return run_id

    def _send_end(self, folder: Path, key: str, killed: dict[str, str] | None = None) -> None:
        run = folder / f"{key}.run"
        run_id = run.read_text() if run.exists() else self._make_run(folder, key)
        end = json.loads((folder / f"{key}.end.json").read_text())
        if killed is not None:
            end.update(status="KILLED", tags={**end["tags"], **killed})
        files = folder / f"{key}.files"
        if files.is_dir() and any(files.iterdir()) and not _disk_full():
            self.tracker.log_folder(run_id, files)  # at a full disk the space left is for the runs' ends
        points = np.array(end["curve"], dtype=float).reshape(-1, 2)  # (k, 2): iteration, cost
        self.tracker.end(run_id, end["status"], end["tags"], metrics=end["metrics"],
                         curve=(points[:, 0].astype(int), points[:, 1]), steps=end["steps"], step=end["step"],
                         end_time=None if killed is not None else end.get("end_time"))
        remove(folder, key)


def report(writer: Writer | None, who: str) -> None:
    """One line if records could not be sent: they wait on disk for the next invocation."""
    if writer is not None and writer.pending():
        reason = f" ({type(writer.error).__name__}: {str(writer.error).splitlines()[0][:160]})" if writer.error else ""
        logger.warning(f"[{who}] {writer.pending()} trial record(s) are not in MLflow yet{reason}: they are kept in "
                       f"{writer.folder}, and the next run of the same command sends them")


