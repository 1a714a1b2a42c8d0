"""A worker's side of tracking: each trial's record as files in a folder, never MLflow itself.

Worker processes do not import mlflow (seconds of CPU each, and a store write per call): a trial
hands its run's record to the folder of its invocation's writer (sweeps.tracking.writer, a thread
of the launcher or of `python -m sweeps.worker`), which sends it on to MLflow. The exchange, per
trial number N, in `folder` (one per writer):

  N.start.json   the worker, as the trial starts: the run's name, tags, params and start time
  N.run          the writer, once it made the run and set the trial's user attribute run_id
  N.files/       the worker: the run's artifacts (config.yaml, weights.npz, ...)
  N.end.json     the worker, last: the run's status, metrics, curves and end tags; written and
                 synced before the worker tells Optuna, so a trial is COMPLETE only once its
                 record is on disk, and the writer of the next invocation sends what a crash left

A file appears whole or not at all (written under a temporary name, then renamed).

A worker that shares no folder with its writer (a Dask worker on another host) records into a
`Held` outbox instead: the same record, kept in memory and returned with the trial's end to the
launcher, which puts it into its writer's folder (`Outbox.put`) before it tells Optuna that end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from sweeps.errors import SweepStopped
from sweeps.interrupts import check_interrupt
from sweeps.processes import here

WAIT_SECONDS = 180.0  # for the writer to make a run: its store may be busy (BUSY_SECONDS) or restarting


def outbox_root(journal: Path | None, study_name: str) -> Path:
    """Where the writers of a study keep their folders: beside its journal, else in outputs/."""
    base = journal.parent if journal is not None else Path("outputs").resolve()
    return base / ".nnsweeps-outbox" / study_name


def downsample(curve: tuple[np.ndarray, np.ndarray], points: int) -> list[tuple[int, float]]:
    """At most `points` (iteration, cost) pairs of a curve, first and last kept, non-finite left out."""
    iterations, costs = curve
    if not costs.size:
        return []
    keep = np.unique(np.linspace(0, costs.size - 1, min(costs.size, points)).round().astype(int))
    return [(int(iterations[i]), float(costs[i])) for i in keep if np.isfinite(costs[i])]


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: Any, durable: bool = False) -> None:
    """path's content, whole or not at all; durable: on disk (synced, and its folder) on return."""
    part = path.with_name(f".{path.name}.part")
    with open(part, "w") as f:
        json.dump(data, f)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(part, path)
    if durable:
        _sync_folder(path.parent)


@dataclass
class Outbox:
    """What a worker needs to record its trials; picklable, sent to each worker process. It has
    the methods of sweeps.tracking.tracker.Tracker that a trial calls (start_trial, log_artifacts,
    end), so a trial records the same way whichever it is given."""

    deferred = True  # the writer makes the runs, and sets each trial's run_id as it does

    folder: str  # the writer's (sweeps.tracking.writer.Writer.folder)
    experiment_id: str = ""
    parent_run_id: str = ""  # the runs' parent: a record left by a stopped writer keeps its own
    curve_points: int = 200
    enabled: bool = True
    common_tags: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.folder)

    def start_trial(self, trial_number: int, tags: Mapping[str, Any], params: Mapping[str, Any]) -> str:
        """Asks the writer for the trial's run; the key to name it by (the trial's number)."""
        key = str(trial_number)
        write_json(self.path / f"{key}.start.json", self._start(trial_number, tags, params))
        return key

    def _start(self, trial_number: int, tags: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """N.start.json's content."""
        return {"number": trial_number, "tags": {**self.common_tags, **here(), **{k: str(v) for k, v in tags.items()}},
                "params": {k: str(v) for k, v in params.items()}, "experiment_id": self.experiment_id,
                "parent_run_id": self.parent_run_id, "start_time": int(time.time() * 1000)}

    def log_artifacts(self, key: str, files: Mapping[str, Callable[[Path], Any]]) -> None:
        """files: name -> writer(path), as Tracker.log_artifacts; into N.files/ for the writer. A
        writer may write nothing (a figure left out); one that fails leaves the files before it."""
        folder = self.path / f"{key}.files"
        folder.mkdir(exist_ok=True)
        for name, write in files.items():
            part = folder / f".{name}.part{Path(name).suffix}"  # the same suffix: writers pick formats by it
            try:
                write(part)
                if part.exists():
                    os.replace(part, folder / name)
            finally:
                part.unlink(missing_ok=True)

    def end(self, key: str, status: str = "FINISHED", tags: Mapping[str, Any] = {},
            metrics: Mapping[str, float] = {}, curve: tuple[np.ndarray, np.ndarray] | None = None,
            steps: Mapping[str, list[tuple[int, float]]] = {}, step: int = 0) -> None:
        """Waits until the writer has made the run (and so set the trial's run_id, which a trial
        must have before Optuna is told its end), then writes the run's end, on disk before it
        returns. In that order: once the end is there, the writer may send it and remove the rest."""
        self._seal(key, self._end(status, tags, metrics, curve, steps, step))

    def _end(self, status: str, tags: Mapping[str, Any], metrics: Mapping[str, float],
             curve: tuple[np.ndarray, np.ndarray] | None, steps: Mapping[str, list[tuple[int, float]]], step: int
             ) -> dict[str, Any]:
        """N.end.json's content."""
        return {"status": status, "tags": {k: str(v) for k, v in tags.items()},
                "metrics": {k: float(v) for k, v in metrics.items()},
                "curve": downsample(curve, self.curve_points) if curve is not None else [],
                "steps": {k: [(int(i), float(v)) for i, v in pts] for k, pts in steps.items()}, "step": int(step),
                "end_time": int(time.time() * 1000)}

    def _seal(self, key: str, end: dict[str, Any]) -> None:
        """Once the run is made: the artifacts on disk, then the end, synced."""
        self.run_id(key)
        files = self.path / f"{key}.files"
        for f in files.glob("*") if files.exists() else ():  # the artifacts first: the record names them
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        write_json(self.path / f"{key}.end.json", end, durable=True)

    def put(self, record: "HeldRecord") -> None:
        """A record a Held outbox kept (a Dask worker's trial), written here as a worker of this
        folder would have written it: on disk, and its run made, when this returns."""
        key = str(record.start["number"])
        write_json(self.path / f"{key}.start.json", {**record.start, "experiment_id": self.experiment_id,
                                                     "parent_run_id": self.parent_run_id}, durable=True)
        if record.files:
            folder = self.path / f"{key}.files"
            folder.mkdir(exist_ok=True)
            for name, data in record.files.items():
                (folder / name).write_bytes(data)
        if record.end is not None:  # else its run is made, and tidy() judges it as any a dead worker left
            self._seal(key, record.end)

    def run_id(self, key: str, timeout: float = WAIT_SECONDS) -> str:
        """The run the writer made for the trial, waited for; SweepStopped if it never comes."""
        path, deadline, delay = self.path / f"{key}.run", time.monotonic() + timeout, 0.002
        while True:
            try:
                return path.read_text()
            except FileNotFoundError:
                if not self.path.exists() or time.monotonic() > deadline:
                    raise SweepStopped(f"the sweep's MLflow writer made no run for trial {key} in {timeout:.0f} s "
                                       f"({self.folder}): its process stopped, or its store stayed busy") from None
            check_interrupt()
            time.sleep(delay)
            delay = min(2 * delay, 0.05)


@dataclass
class HeldRecord:
    """One trial's record as a Held outbox keeps it: N.start.json, N.files/ and N.end.json's contents."""

    start: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    end: dict[str, Any] | None = None


@dataclass
class Held(Outbox):
    """An Outbox that writes no file: each trial's record is kept in `records`, which the worker
    returns to its launcher (a Dask task's result), whose writer's Outbox puts it on disk. Its
    writer makes no run meanwhile, so nothing is waited for here."""

    folder: str = ""
    records: dict[str, HeldRecord] = field(default_factory=dict)

    def start_trial(self, trial_number: int, tags: Mapping[str, Any], params: Mapping[str, Any]) -> str:
        key = str(trial_number)
        self.records[key] = HeldRecord(self._start(trial_number, tags, params))
        return key

    def log_artifacts(self, key: str, files: Mapping[str, Callable[[Path], Any]]) -> None:
        with tempfile.TemporaryDirectory(prefix="nnsweeps-") as tmp:
            Outbox(tmp).log_artifacts(key, files)
            self.records[key].files.update({f.name: f.read_bytes() for f in Path(tmp, f"{key}.files").glob("*")})

    def end(self, key: str, status: str = "FINISHED", tags: Mapping[str, Any] = {},
            metrics: Mapping[str, float] = {}, curve: tuple[np.ndarray, np.ndarray] | None = None,
            steps: Mapping[str, list[tuple[int, float]]] = {}, step: int = 0) -> None:
        self.records[key].end = self._end(status, tags, metrics, curve, steps, step)


def remove(folder: Path, key: str) -> None:
    """A trial's record, once MLflow holds it."""
    shutil.rmtree(folder / f"{key}.files", ignore_errors=True)
    for suffix in (".end.json", ".run", ".start.json"):  # the end first: a half-removed record is not replayed
        (folder / f"{key}{suffix}").unlink(missing_ok=True)
