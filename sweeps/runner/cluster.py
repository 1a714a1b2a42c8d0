"""A Dask cluster as the workers' place (sweep.backend=dask): its client, a quick check that
its scheduler answers, and what joblib raises when one of its workers died. distributed is
imported only for this backend."""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Iterator

from joblib.externals.loky.process_executor import TerminatedWorkerError

from sweeps.errors import ConfigError


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
