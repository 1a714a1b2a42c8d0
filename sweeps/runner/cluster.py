"""A Dask cluster as the workers' place (sweep.backend=dask): its client, a quick check that
its scheduler answers, what joblib raises when one of its workers died, and the workers' trials
(run_tasks). distributed is imported only for this backend.

A Dask worker may run on another host, sharing no folder with the launcher, and it never imports
mlflow: each of its tasks runs one trial and returns the trial's record and end (a Report of
sweeps.runner.work). The launcher puts the record into its MLflow writer's folder, on disk and
its run made (sweeps.tracking.outbox.Outbox.put), and only then tells Optuna the trial's end: a
trial is COMPLETE only once its record is durable, as a local worker's. Meanwhile the trial is
RUNNING, kept alive by the launcher's heartbeats; a worker that dies leaves it to the heartbeat's
grace, as before, and a launcher that dies leaves its folder to the next invocation on its host.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import replace
from typing import Any, Iterator

import optuna
from joblib.externals.loky.process_executor import TerminatedWorkerError

from sweeps.errors import ConfigError
from sweeps.runner.work import Job, Report, sampler_seed, settle, work
from sweeps.study.budget import heartbeat
from sweeps.study.storages import Storage
from sweeps.tracking.outbox import Held, Outbox


def worker_died(backend: str) -> tuple[type[BaseException], ...]:
    """What joblib raises when a worker process died."""
    if backend != "dask":
        return (TerminatedWorkerError,)
    from distributed import KilledWorker  # deferred: distributed for Dask only; a task whose workers kept dying

    return (TerminatedWorkerError, KilledWorker)


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to the Dask scheduler: seconds, not distributed's retries and a traceback."""
    host_port = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        return  # an address form distributed knows better (inproc://, ucx://...)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise ConfigError(f"sweep.scheduler={address!r} is not reachable ({err.strerror or err}); start a Dask "
                          "scheduler there (`make dask-scheduler`) or fix the address.") from None


@contextlib.contextmanager
def dask_client(cfg: Any) -> Iterator[Any]:
    """A distributed.Client to sweep.scheduler for the Dask backend, else None."""
    if cfg.sweep.backend != "dask":
        yield None
        return
    from distributed import Client  # deferred, as above

    try:
        client = Client(cfg.sweep.scheduler, timeout="15s", set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ConfigError(f"sweep.scheduler={cfg.sweep.scheduler!r} is not reachable ({err}); start a Dask "
                          "scheduler there (`make dask-scheduler`) or fix the address.") from None
    try:
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise ConfigError(f"the Dask scheduler at {cfg.sweep.scheduler} has no worker after 60 s; start "
                              "some with `dask worker " + cfg.sweep.scheduler + "` (`make dask-worker`).") from None
        yield client
    finally:
        client.close()


def run_tasks(client: Any, jobs: list[Job], study: optuna.Study, storage: Storage, outbox: Outbox | None
              ) -> list[Report]:
    """Each job as a chain of one-trial Dask tasks, len(jobs) at a time; each task's trials are
    kept (keep) before its job's next task is sent. A worker's report sums its job's tasks."""
    from distributed import as_completed  # deferred, as above

    jobs = [replace(job, trials=1, tells=False) for job in jobs]
    reports = [Report(job.index) for job in jobs]
    running = {client.submit(work, job, pure=False): (k, job) for k, job in enumerate(jobs)}
    try:
        for future in (done := as_completed(running, loop=client.loop)):
            k, job = running.pop(future)
            report = future.result()
            keep(report, study, storage, outbox)
            reports[k].add(report)
            if report.asked == job.trials and not (report.stopped or report.timed_out):  # it would go on
                # a new sampler seed each task; a fresh Held, since an in-process cluster shares the object
                job = replace(job, seed=sampler_seed(job.seed, 1, 0), in_a_row=report.in_a_row,
                              tracker=replace(job.tracker, records={}) if isinstance(job.tracker, Held) else job.tracker)
                running[future := client.submit(work, job, pure=False)] = (k, job)
                done.add(future)
    finally:  # an error or Ctrl-C here: the tasks still queued are not run (a running trial's end is lost,
        client.cancel(list(running))  # and its heartbeat's grace fails it)
    return reports


def keep(report: Report, study: optuna.Study, storage: Storage, outbox: Outbox | None) -> None:
    """A task's trials: each record put into the writer's folder (on disk, its run made), under
    the launcher's heartbeats, then each end told to Optuna."""
    for record in report.records:
        if outbox is not None:
            with heartbeat(storage, study, record.start["number"]):
                outbox.put(record)
    for ending in report.endings:
        settle(study, ending)
