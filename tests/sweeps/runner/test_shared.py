"""sweeps.runner.shared: a worker that joins a sweep refuses stores that only its host can see
(the cluster case, with real hosts, is tests/cluster/test_cluster.py)."""

import optuna
import pytest

from sweeps.errors import ConfigError
from sweeps.processes import here
from sweeps.runner.shared import check_shared
from sweeps.record import LINK_ATTR as MLFLOW_ATTR
from sweeps.study.storages import storage_for


@pytest.fixture
def shared_study(tmp_path):
    """A study in a database (sqlite here, standing for the sweep's PostgreSQL server) and a
    function that adds a finished trial run on a given host."""
    storage = storage_for(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(study_name="S", storage=storage.open())

    def trial_on(host):
        trial = study.ask()
        trial.set_user_attr("host", host)
        study.tell(trial, 1.0)

    return storage, study, trial_on


def test_a_local_journal_without_the_study_is_joined_when_no_server_knows_the_sweep(compose_cfg, tmp_path):
    """On one host a worker may start a study in its journal before any launcher (docs/scaling.md); the
    refusal needs a tracking server that holds the sweep from another storage (tests/cluster)."""
    journal = tmp_path / "local.journal"
    cfg = compose_cfg(f"sweep.storage={journal}", "sweep.study_name=S", f"tracking.uri=sqlite:///{tmp_path / 'm.db'}")
    check_shared(cfg, storage_for(str(journal)), existed=False)
    assert not journal.exists()


def test_a_local_tracking_store_is_refused_once_the_sweep_runs_on_another_host(compose_cfg, tmp_path, shared_study):
    storage, study, trial_on = shared_study
    cfg = compose_cfg(f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", "sweep.study_name=S")
    trial_on(here()["host"])
    check_shared(cfg, storage, existed=True)  # one host so far: its files are the launcher's too
    trial_on("host-a")
    with pytest.raises(ConfigError) as err:
        check_shared(cfg, storage, existed=True)
    assert "runs on host-a" in str(err.value) and "other hosts cannot see that store" in str(err.value)


def test_the_launchers_host_and_store_are_named(compose_cfg, tmp_path, shared_study):
    storage, study, _ = shared_study
    study.set_user_attr(MLFLOW_ATTR, {"uri": "http://sweep:s3cret@10.0.0.1:5001", "host": "host-a"})
    cfg = compose_cfg(f"tracking.uri={tmp_path / 'mlruns'}", "sweep.study_name=S")
    with pytest.raises(ConfigError) as err:
        check_shared(cfg, storage, existed=True)
    assert "give it the sweep's tracking.uri (http://sweep:***@10.0.0.1:5001)" in str(err.value)
    assert "s3cret" not in str(err.value)


def test_a_server_or_a_shared_study_is_joined(compose_cfg, tmp_path, shared_study):
    storage, study, trial_on = shared_study
    trial_on("host-a")
    check_shared(compose_cfg("tracking.uri=http://10.0.0.1:5001", "sweep.study_name=S"), storage, existed=True)
    check_shared(compose_cfg("tracking.uri=http://10.0.0.1:5001", "sweep.study_name=T"),
                 storage_for("postgresql://u@10.0.0.1:5432/optuna"), existed=False)
