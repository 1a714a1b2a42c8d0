"""sweeps.trial.reproduction: a tracked trial's network back, and its training again bit for bit;
a missing store or run is a sentence, and never creates a store."""

import numpy as np
import optuna
import pytest

from sweeps.config.space import parse_space
from sweeps.errors import ConfigError
from sweeps.tracking.tracker import Tracker
from sweeps.trial.build import load_data
from sweeps.trial.objective import objective
from sweeps.trial.reproduction import load_network, reproduce
from tests.sweeps.conftest import SMALL


@pytest.fixture(scope="module")
def tracked(compose_cfg, tmp_path_factory):
    """(uri, run ids, data) of 3 trials tracked in a real local store, one of them with mini-batches."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={})
    runs = []
    for extra in ((), ("train.batch_size=32",), ("train=adam",)):
        cfg = compose_cfg(*SMALL, f"tracking.uri={uri}", *extra)
        study = optuna.create_study()
        trial = study.ask()
        data = load_data(cfg.dataset, cfg.seed)
        study.tell(trial, objective(trial, cfg, parse_space(cfg.search_space), data, tracker))
        runs.append(study.trials[0].user_attrs["run_id"])
    return uri, runs, data


def test_every_trial_reproduces_bit_for_bit_and_its_network_loads(tracked):
    uri, runs, data = tracked
    for run_id in runs:
        r = reproduce(run_id, uri)
        assert r.max_abs_diff == 0.0 and r.exact and r.costs.size == r.logged.shape[0]
        net = load_network(run_id, uri)
        assert np.array_equal(net.predict(data.X_val), r.network.predict(data.X_val))
        assert np.array_equal(net.theta, r.network.theta)


def test_a_missing_store_or_run_is_a_sentence_and_creates_nothing(tracked, tmp_path):
    uri, runs, _ = tracked
    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(ConfigError, match="no MLflow store"):
        reproduce(runs[0], f"sqlite:///{missing}")
    assert not missing.exists() and not missing.parent.exists()
    with pytest.raises(ConfigError, match="there is no run 'abc'"):
        load_network("abc", uri)


def test_every_repeat_of_a_trial_reproduces_bit_for_bit(compose_cfg, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={})
    cfg = compose_cfg(*SMALL, f"tracking.uri={uri}", "sweep.repeats=3", "train.batch_size=32")
    study = optuna.create_study()
    trial = study.ask()
    study.tell(trial, objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed), tracker))
    run_id = study.trials[0].user_attrs["run_id"]
    r = reproduce(run_id, uri)
    assert r.repeat_diffs == [0.0, 0.0, 0.0] and r.max_abs_diff == 0.0
    # each repeat is compared: a changed last repeat's curve is found
    with tracker.artifact_file(run_id, "cost_curve_r2.csv") as path:
        lines = path.read_text().splitlines()
        lines[-1] = lines[-1].split(",")[0] + ",0.5"
        path.write_text("\n".join(lines) + "\n")
    r = reproduce(run_id, uri)
    assert r.repeat_diffs[:2] == [0.0, 0.0] and r.repeat_diffs[2] > 0 and r.max_abs_diff == r.repeat_diffs[2]
