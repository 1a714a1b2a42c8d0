"""sweeps.runner.cluster: the scheduler check fails in seconds on a real refused connection, the
errors of a dead worker, and no Dask client for the loky backend."""

from __future__ import annotations

import importlib.util
import socket
import time

import pytest
from joblib.externals.loky.process_executor import TerminatedWorkerError
from omegaconf import OmegaConf

from sweeps.errors import ConfigError
from sweeps.runner.cluster import check_scheduler, dask_client, worker_died


def test_check_scheduler_refuses_an_address_nobody_listens_on_in_seconds():
    start = time.monotonic()
    with pytest.raises(ConfigError) as err:
        check_scheduler("tcp://127.0.0.1:9", timeout=3.0)
    assert time.monotonic() - start < 5.0
    assert "sweep.scheduler='tcp://127.0.0.1:9'" in str(err.value) and "not reachable" in str(err.value)


def test_check_scheduler_accepts_a_listening_scheduler():
    with socket.create_server(("127.0.0.1", 0)) as server:  # a real listening socket
        port = server.getsockname()[1]
        check_scheduler(f"tcp://127.0.0.1:{port}")
        check_scheduler(f"tcp://127.0.0.1:{port}/")


@pytest.mark.parametrize("address", ["inproc://x", "inproc://10.0.0.5/1234/1", "ucx://host"])
def test_check_scheduler_leaves_forms_it_cannot_parse_to_distributed(address):
    assert check_scheduler(address) is None


def test_worker_died_for_loky_is_a_terminated_worker():
    assert worker_died("loky") == (TerminatedWorkerError,)


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="distributed is not installed")
def test_worker_died_for_dask_adds_a_killed_worker():
    from distributed import KilledWorker

    assert worker_died("dask") == (TerminatedWorkerError, KilledWorker)


def test_dask_client_for_loky_is_none():
    cfg = OmegaConf.create({"sweep": {"backend": "loky", "scheduler": "tcp://127.0.0.1:9"}})
    with dask_client(cfg) as client:
        assert client is None
