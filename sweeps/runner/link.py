"""The link between the study and its MLflow runs, kept true for the life of a session.

The study names the parent run its launcher tracks under (SweepLink), so that workers that join
by hand log there; every trial's run is made by this process's writer from the record its
worker leaves (sweeps.tracking.writer); and `tidy` makes the two stores agree again after a
crash, a signal or a full disk: a trial whose process died is failed and queued again, and a
run left RUNNING by a dead process ends KILLED. `recording` holds all of it around the trials.
"""

from __future__ import annotations

import logging
import contextlib
import time
from typing import Iterator

import optuna
from omegaconf import DictConfig
from optuna.trial import TrialState

from sweeps import reserve
from sweeps.config.checks import flatten
from sweeps.config.objectives import pruning
from sweeps.errors import DiskFull, disk_full
from sweeps.processes import here
from sweeps.record import SweepLink
from sweeps.runner import pool
from sweeps.runner.role import LAUNCHER, Role
from sweeps.runner.stores import tracking_client
from sweeps.study.budget import STOP_ATTR, reconcile
from sweeps.study.storages import Storage
from sweeps.tracking.store import git_commit
from sweeps.tracking.tracker import Tracker
from sweeps.tracking.writer import Writer
from sweeps.tracking.writer import report as writer_report
from sweeps.urls import redact

logger = logging.getLogger(__name__)


def open_parent(cfg: DictConfig, role: Role, storage: Storage, study: optuna.Study) -> tuple[Tracker, bool]:
    """The session's parent run, and whether it is its own: a launcher's new one (recorded on the
    study, for workers that join by hand), a joined worker's the launcher's (joined_tracker)."""
    if not role.launcher:
        return joined_tracker(cfg, storage, study)
    tracker = Tracker.start_sweep(
        cfg.tracking.uri, cfg.tracking.experiment, run_name=f"sweep-{cfg.sweep.study_name}-{cfg.dataset.name}",
        tags=sweep_tags(cfg, storage), params=sweep_params(cfg), curve_points=cfg.tracking.curve_points,
        enabled=cfg.tracking.enabled)
    if tracker.enabled:
        SweepLink(cfg.tracking.uri, tracker.experiment_id, tracker.parent_run_id, here()["host"]).save(study)
    return tracker, True


@contextlib.contextmanager
def recording(study: optuna.Study, storage: Storage, tracker: Tracker, role: Role, own: bool
              ) -> Iterator[Writer | None]:
    """This session's writer (None with tracking off), around the trials and the summary: it first
    sends what a stopped sweep left, before tidy() judges the runs. However the session ends, its
    runs end too: a Ctrl-C's trials KILLED (and the study asked to stop, from a launcher), a full
    disk's failed with the space kept back for it, the parent run FAILED on an error; records the
    writer could not send wait on disk for the next invocation."""
    writer = Writer(tracker, storage, study.study_name) if tracker.enabled else None
    try:
        for line in writer.start() if writer is not None else ():
            logger.info(f"[{role.name}] {line}")
        tidy(study, storage, tracker, role)
        yield writer
    except KeyboardInterrupt:
        if writer is not None:
            writer.flush(timeout=10)  # the interrupted trials' ends (KILLED)
        after_interrupt(study, storage, tracker, role, end_parent=own)
        if writer is not None:  # no run made after the last tidy: one more, once the writer stopped
            writer.stop(timeout=10)
            with contextlib.suppress(Exception):
                tidy(study, storage, tracker, role)
        raise
    except BaseException as err:
        full = isinstance(err, DiskFull) or (isinstance(err, Exception) and disk_full(err) is not None)
        if full:  # the space kept back records the stop: the other workers' trials failed, runs ended
            reserve.release()
            pool.stop()
            if writer is not None:  # the ends it holds, and no run made after tidy() judged them
                writer.stop(timeout=10)
            with contextlib.suppress(Exception):
                tidy(study, storage, tracker, role)
        if own:
            try:  # best effort: the store may be what failed (a full disk without a reserve)
                tracker.end(tracker.parent_run_id, "FAILED", {"error": f"{type(err).__name__}: {err}"})
            except Exception:
                pass
        raise  # a full disk is said in one sentence by the session
    finally:
        pool.stop()
        if writer is not None:  # flushed already unless the sweep failed: what is left waits on disk
            writer.stop(timeout=5)
            writer_report(writer, role.name)


def store_tracker(cfg: DictConfig) -> Tracker:
    """A Tracker of the study's experiment, without a parent run; disabled with tracking off or when
    the store or the experiment does not exist (nothing is made here)."""
    client = tracking_client(cfg)
    exp = client.get_experiment_by_name(cfg.tracking.experiment) if client is not None else None
    if exp is None:
        return Tracker(cfg.tracking.uri, enabled=False)
    return Tracker(cfg.tracking.uri, experiment_id=exp.experiment_id, curve_points=cfg.tracking.curve_points)


def sweep_tags(cfg: DictConfig, storage: Storage) -> dict[str, str]:
    """The tags of the parent run, which every trial run carries too."""
    tags = {"optuna.study": cfg.sweep.study_name, "optuna.storage": storage.shown, "sampler": cfg.sweep.sampler,
            "pruner": cfg.sweep.pruner if pruning(cfg.sweep) else "none",  # several metrics prune nothing
            "mlflow.source.git.commit": git_commit(), "dataset": cfg.dataset.name}
    if cfg.dataset.val_fraction == 0:
        tags["val_set"] = "training set"  # the val_* metrics are the training set's: say so on every run
    return tags


def sweep_params(cfg: DictConfig) -> dict[str, str]:
    params = {k: v for k, v in flatten(cfg).items() if not k.startswith("tracking.")}
    params["sweep.storage"] = redact(params.get("sweep.storage", "null"))
    return params


def joined_tracker(cfg: DictConfig, storage: Storage, study: optuna.Study) -> tuple[Tracker, bool]:
    """The sweep's parent run if its launcher recorded one on the study and it still runs, else a
    new parent run of this worker's own; and whether it is its own."""
    if not cfg.tracking.enabled:
        return Tracker(cfg.tracking.uri, enabled=False), False
    link = SweepLink.of(study)
    if link.tracks_into(cfg.tracking.uri) and link.parent_run_id:
        tracker = Tracker(cfg.tracking.uri, experiment_id=link.experiment_id, parent_run_id=link.parent_run_id,
                          curve_points=cfg.tracking.curve_points, common_tags=sweep_tags(cfg, storage))
        from mlflow.exceptions import MlflowException  # deferred, as in stores.tracking_client

        try:
            if tracker.client.get_run(tracker.parent_run_id).info.status == "RUNNING":
                return tracker, False
        except MlflowException:
            pass
    elif link.uri:
        logger.info(f"[worker] the sweep logs to {link.uri}, this worker to {cfg.tracking.uri}: "
              "its trials go under a parent run of its own")
    tracker = Tracker.start_sweep(
        cfg.tracking.uri, cfg.tracking.experiment, run_name=f"worker-{cfg.sweep.study_name}-{here()['host']}",
        tags={**sweep_tags(cfg, storage), "nnsweeps.worker": "standalone"}, params=sweep_params(cfg),
        curve_points=cfg.tracking.curve_points)
    tracker.common_tags.pop("nnsweeps.worker", None)
    return tracker, True


def tidy(study: optuna.Study, storage: Storage, tracker: Tracker, role: Role = LAUNCHER) -> None:
    """Makes the two stores agree after a crash: trials whose process died are failed (and
    queued again), and their MLflow runs, like any run left RUNNING by a dead process, KILLED;
    so are the runs that ended FINISHED of trials that were failed all the same."""
    grace = storage.grace_seconds()
    for t in reconcile(study, storage):
        why = f"sent no heartbeat for {grace} s" if grace else "was left running by a process that is gone"
        logger.info(f"[{role.name}] trial {t.number} {why}: failed, queued again")
    # a run whose trial Optuna was told the end of is its writer's to end: its record is on disk
    # (sweeps.tracking.outbox), sent by that writer or by the next sweep on its host
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE,
                                                                               TrialState.PRUNED))}
    for run_id in tracker.orphans(study.study_name, running):
        tracker.end(run_id, "KILLED", {"optuna.state": "FAIL", "reason": "its process died"})
    failed = [t.user_attrs["run_id"] for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
              if t.user_attrs.get("run_id")]
    for run_id in tracker.finished_among(failed):
        tracker.end(run_id, "KILLED", {"optuna.state": "FAIL", "reason": "its trial was failed after the run ended: "
                                       "its worker died, or was too late, before telling Optuna"})


def after_interrupt(study: optuna.Study, storage: Storage, tracker: Tracker, role: Role, end_parent: bool) -> None:
    """Ctrl-C: local workers abort their trial (FAIL, run KILLED); catch any that could not. The
    launcher's Ctrl-C also asks workers elsewhere (Dask, python -m sweeps.worker) to stop after
    their running trial; a joined worker's stops only itself."""
    if role.launcher:
        try:
            study.set_user_attr(STOP_ATTR, True)
        except Exception:  # the storage is gone: nothing to ask through
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            tidy(study, storage, tracker, role)
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                break
        except KeyboardInterrupt:
            continue
        time.sleep(0.5)
    if end_parent:
        tracker.end(tracker.parent_run_id, "KILLED")
