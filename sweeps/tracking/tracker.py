"""The MLflow side: one parent run per sweep invocation, one nested child run per trial.

Runs, params, metrics and tags go through `MlflowClient` with explicit run ids (no fluent global
state) and batched writes (Tracker.log). The trials' runs are written by their invocation's writer
thread (sweeps.tracking.writer) from the records its workers leave (sweeps.tracking.outbox); a
Tracker is picklable, so the workers of a Dask cluster, which share no folder with it, are given
one and write their runs themselves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from sweeps.processes import alive, here
from sweeps.record import RUN_STORE
from sweeps.tracking.store import PARENT_TAG, Patient, artifact_root, create_store, local_folder, store_lock

if TYPE_CHECKING:
    from mlflow import MlflowClient

BATCH = 100  # runs asked for by id in one search (finished_among)
# MLflow 3's UI opens an experiment of this kind in its model-training view, not the GenAI one
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def run_store(user_attrs: Mapping[str, Any], uri: str) -> str:
    """The tracking URI of the store that holds a trial's run, given its user attributes; `uri`
    for a trial recorded before RUN_STORE was."""
    return user_attrs.get(RUN_STORE, uri)


@dataclass
class Tracker:
    """What a worker needs to log into the sweep's parent run; picklable."""

    deferred = False  # whether trials' runs are made elsewhere (sweeps.tracking.outbox.Outbox): not here

    uri: str
    experiment_id: str = ""
    parent_run_id: str = ""
    enabled: bool = True
    curve_points: int = 200
    common_tags: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> MlflowClient:
        """MLflow's client, each call retried while the store is busy (sweeps.tracking.store.Patient)."""
        # deferred, here and below: mlflow's import is seconds of CPU, which tracking.enabled=false never pays
        from mlflow import MlflowClient

        if not hasattr(self, "_client"):
            # mlflow sets its loggers' level as it is imported, after sweeps.runner.cli.quiet_libraries
            # ran: its INFO lines ("Validating input example...") would break into the status line
            logging.getLogger("mlflow").setLevel(max(logging.WARNING, logging.getLogger("mlflow").level))
            # the registry too is this store, whatever MLFLOW_REGISTRY_URI says (tracking.register_model)
            self._client = Patient(lambda: MlflowClient(tracking_uri=self.uri, registry_uri=self.uri))
        return self._client

    def _create_run(self, run_name: str, tags: Mapping[str, str], experiment_id: str = "",
                    start_time: int | None = None) -> str:
        run = self.client.create_run(experiment_id or self.experiment_id, run_name=run_name, tags=tags,
                                     start_time=start_time)
        # where its artifacts go, so that log_artifacts need not ask the store for it again
        self.__dict__.setdefault("_folders", {})[run.info.run_id] = local_folder(run.info.artifact_uri)
        return run.info.run_id

    # --- launcher side --------------------------------------------------------------------

    @classmethod
    def start_sweep(cls, uri: str, experiment: str, run_name: str, tags: Mapping[str, str],
                    params: Mapping[str, str], curve_points: int = 200, enabled: bool = True) -> "Tracker":
        """Creates the store, the experiment and the parent run before any worker starts."""
        if not enabled:
            return cls(uri, enabled=False)
        from mlflow.exceptions import MlflowException

        tracker = cls(uri, curve_points=curve_points, common_tags=dict(tags))
        with store_lock(uri):
            create_store(uri)
            client = tracker.client
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                try:
                    tracker.experiment_id = client.create_experiment(experiment, artifact_root(uri, experiment),
                                                                     tags=EXPERIMENT_TAGS)
                except MlflowException:  # another launcher created it meanwhile
                    tracker.experiment_id = client.get_experiment_by_name(experiment).experiment_id
            else:
                tracker.experiment_id = exp.experiment_id
                for key, value in EXPERIMENT_TAGS.items():
                    if exp.tags.get(key) != value:  # an experiment made before, or by hand
                        client.set_experiment_tag(exp.experiment_id, key, value)
            tracker.parent_run_id = tracker._create_run(run_name, {**tags, "nnsweeps.role": "sweep", **here()})
        tracker.log(tracker.parent_run_id, params=params)
        return tracker

    def orphans(self, study_name: str, running_trials: set[int]) -> list[str]:
        """Runs of this study left RUNNING by a process that died: trial runs whose Optuna trial is
        no longer running, and sweep runs whose launcher process on this host is gone."""
        if not self.enabled:
            return []
        host = here()["host"]
        runs = self.client.search_runs(
            [self.experiment_id], max_results=10000,
            filter_string=f"tags.`optuna.study` = '{study_name}' and attributes.status = 'RUNNING'")
        out = []
        for r in runs:
            tags = r.data.tags
            if r.info.run_id == self.parent_run_id:
                continue
            if tags.get("nnsweeps.role") == "trial":
                dead = int(tags.get("optuna.trial", -1)) not in running_trials
            else:
                dead = tags.get("host") == host and not alive(tags.get("pid"))
            if dead:
                out.append(r.info.run_id)
        return out

    def finished_among(self, run_ids: list[str]) -> list[str]:
        """Those of run_ids that ended FINISHED: given the runs of failed trials, the runs of trials
        whose worker died between ending its run and telling Optuna (or whose trial another worker
        failed meanwhile), which must say KILLED like their trials."""
        if not self.enabled or not run_ids:
            return []
        out = []
        for k in range(0, len(run_ids), BATCH):
            listed = ", ".join(f"'{r}'" for r in run_ids[k:k + BATCH])
            out += [r.info.run_id for r in self.client.search_runs(
                [self.experiment_id], max_results=BATCH,
                filter_string=f"attributes.status = 'FINISHED' and attributes.run_id IN ({listed})")]
        return out

    def retag(self, study_name: str, tag: str, wanted: set[str]) -> None:
        """tag=true on the runs in `wanted`, tag=false on this study's runs tagged true that are not;
        only the runs whose tag changes are written (one search, then a write per change)."""
        if not self.enabled:
            return
        tagged = {r.info.run_id for r in self.client.search_runs(
            [self.experiment_id], max_results=10000,
            filter_string=f"tags.`optuna.study` = '{study_name}' and tags.`{tag}` = 'true'")}
        for run_id in sorted(wanted - tagged):
            self.log(run_id, tags={tag: "true"})
        for run_id in sorted(tagged - wanted):
            self.log(run_id, tags={tag: "false"})

    # --- either side ----------------------------------------------------------------------

    def use_dataset(self, name: str, source: str, splits: Mapping[str, tuple[np.ndarray, np.ndarray, str]]) -> None:
        """The dataset each trial run this process starts logs as its inputs (MLflow's Dataset
        column), one per context ('training', 'validation'): (X (n_x, m), Y (n_y, m), digest) each;
        source: a file URI, or a loader's call. Made into MLflow's entities here, once, not per trial."""
        if not self.enabled:
            return
        import mlflow.data
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.entities import Dataset, DatasetInput, InputTag

        if source.startswith("file:"):
            with warnings.catch_warnings():
                # MLflow registers its local-file source twice and warns that a path can be read in
                # "multiple ways": both are the same class
                warnings.simplefilter("ignore", UserWarning)
                where = mlflow.data.dataset_source_registry.resolve_dataset_source(source)
        else:
            where = CodeDatasetSource({"loader": source})
        self._inputs = [
            # samples as rows, MLflow's way; its to_dict holds the entity's fields, profile (shapes) included
            DatasetInput(Dataset(**mlflow.data.from_numpy(X.T, targets=Y.T, source=where, name=name,
                                                          digest=digest).to_dict()),
                         tags=[InputTag("mlflow.data.context", context)])
            for context, (X, Y, digest) in splits.items()]

    def start_trial(self, trial_number: int, tags: Mapping[str, Any], params: Mapping[str, Any],
                    experiment_id: str = "", parent_run_id: str = "", start_time: int | None = None) -> str:
        """The trial's run, under this tracker's parent run and experiment unless told others (a
        record a stopped writer left). host and pid are the tags' if they have them: the worker's.
        start_time: in ms, when the trial started, if that was before now (a record sent later)."""
        if not self.enabled:
            return ""
        run_id = self._create_run(
            f"trial-{trial_number:04d}",
            {**self.common_tags, **here(), **{k: str(v) for k, v in tags.items()},
             PARENT_TAG: parent_run_id or self.parent_run_id, "nnsweeps.role": "trial"}, experiment_id, start_time)
        self.log(run_id, params=params)
        self.log_dataset(run_id)
        return run_id

    def log_dataset(self, run_id: str) -> None:
        """The dataset of use_dataset as the run's inputs, if there is one. MLflow adds a dataset to
        the experiment the first time a run logs it: two processes doing so at once race, and the
        one that lost (a unique-key error) is tried again, to link the dataset the other added."""
        if not self.enabled or not run_id or not getattr(self, "_inputs", None):
            return
        from mlflow.exceptions import MlflowException

        try:
            self.client.log_inputs(run_id, datasets=self._inputs)
        except MlflowException:
            self.client.log_inputs(run_id, datasets=self._inputs)

    def log(self, run_id: str, params: Mapping[str, Any] = {}, metrics: Mapping[str, float] = {},
            tags: Mapping[str, Any] = {}, curve: tuple[np.ndarray, np.ndarray] | None = None,
            steps: Mapping[str, list[tuple[int, float]]] = {}, step: int = 0) -> None:
        """One log_batch, which MLflow's client splits where its limits require (100 params or
        tags, 1,000 entities a call). metrics at `step`; curve: (iterations, costs), logged as the
        step metric `cost`, downsampled to at most curve_points points (first and last kept;
        non-finite points left out); steps: more step metrics, name -> [(step, value)], each point
        kept (the validation metric at each pruning report: a few dozen)."""
        if not self.enabled or not run_id:
            return
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        ps = [Param(k, str(v)[:6000]) for k, v in params.items()]
        ts = [RunTag(k, str(v)[:8000]) for k, v in tags.items()]  # MLflow's limits: 6,000 and 8,000
        ms = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if curve is not None and curve[1].size:
            iterations, costs = curve
            keep = np.unique(np.linspace(0, costs.size - 1, min(costs.size, self.curve_points)).round().astype(int))
            ms += [Metric("cost", float(costs[i]), now, int(iterations[i])) for i in keep if np.isfinite(costs[i])]
        ms += [Metric(k, float(v), now, int(i)) for k, points in steps.items() for i, v in points if np.isfinite(v)]
        if ps or ts or ms:
            self.client.log_batch(run_id, metrics=ms, params=ps, tags=ts)

    def folder(self, run_id: str) -> Path | None:
        """The run's artifact folder when its artifacts are local files, else None (a server's);
        known without asking the store for the runs this process made and has not ended."""
        folders = self.__dict__.setdefault("_folders", {})
        if run_id not in folders:
            folders[run_id] = local_folder(self.client.get_run(run_id).info.artifact_uri)
        return folders[run_id]

    @contextlib.contextmanager
    def artifact_file(self, run_id: str, name: str) -> Iterator[Path]:
        """A run's artifact as a local file, for the block: in place when its artifacts are local
        files (download_artifacts copies even those to a temporary folder first, several times
        slower), else downloaded from the server
        into a temporary folder removed after the block."""
        folder = self.folder(run_id)
        if folder is not None:
            yield folder / name
            return
        with tempfile.TemporaryDirectory(prefix="nnsweeps-") as tmp:
            yield Path(self.client.download_artifacts(run_id, name, dst_path=tmp))

    def log_artifacts(self, run_id: str, files: Mapping[str, Any]) -> None:
        """files: name -> writer(path); a writer may write nothing (a figure left out). Written to
        a temporary folder and logged in one call (log_folder); a writer that fails leaves the
        files written before it logged, and nothing of its own."""
        if not self.enabled or not run_id:
            return
        with tempfile.TemporaryDirectory(prefix="nnsweeps-") as tmp:
            try:
                for name, write in files.items():
                    part = Path(tmp) / f".{name}.part{Path(name).suffix}"  # the same suffix: writers pick formats by it
                    write(part)
                    if part.exists():
                        os.replace(part, Path(tmp) / name)
            finally:
                for part in Path(tmp).glob(".*.part*"):
                    part.unlink()
                if any(Path(tmp).iterdir()):
                    self.log_folder(run_id, Path(tmp))

    def log_folder(self, run_id: str, folder: Path) -> None:
        """Every file of a folder as the run's artifacts, by MLflow's client."""
        if self.enabled and run_id:
            self.client.log_artifacts(run_id, str(folder))

    def end(self, run_id: str, status: str = "FINISHED", tags: Mapping[str, Any] = {},
            metrics: Mapping[str, float] = {}, curve: tuple[np.ndarray, np.ndarray] | None = None,
            steps: Mapping[str, list[tuple[int, float]]] = {}, step: int = 0, end_time: int | None = None) -> None:
        """The run's last metrics, curves and tags in one log_batch (see log), then its status,
        whatever became of the batch: a run whose batch was lost (a full disk) ends FAILED rather
        than FINISHED, since its record is not whole. end_time: in ms, if the trial ended before now."""
        if not self.enabled or not run_id:
            return
        from mlflow.entities import RunStatus

        whole = False
        try:
            self.log(run_id, metrics=metrics, tags=tags, curve=curve, steps=steps, step=step)
            whole = True
        finally:
            status = status if whole or status != "FINISHED" else "FAILED"
            self.client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.from_string(status)),
                                       end_time=end_time)
            self.__dict__.get("_folders", {}).pop(run_id, None)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        # clients hold connections, and artifact folders are known per process: each makes its own
        state.pop("_client", None)
        state.pop("_folders", None)
        state.pop("_inputs", None)  # a process's own: the worker's data (sweeps.runner.work)
        return state
