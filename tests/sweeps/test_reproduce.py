"""`python -m sweeps.reproduce`: exit 0 when bit for bit, 2 with a sentence when the run or the
store is missing (never creating a store); and `sweeps.reproduce` callable once the module is in."""

import optuna
import pytest

import sweeps
import sweeps.reproduce as command
from sweeps.config.space import parse_space
from sweeps.tracking.tracker import Tracker
from sweeps.trial.build import load_data
from sweeps.trial.objective import objective
from tests.sweeps.conftest import SMALL


@pytest.fixture(scope="module")
def tracked(compose_cfg, tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    cfg = compose_cfg(*SMALL, f"tracking.uri={uri}")
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={})
    study = optuna.create_study()
    trial = study.ask()
    study.tell(trial, objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg), tracker))
    return uri, study.trials[0].user_attrs["run_id"]


def test_a_tracked_trial_reproduces_and_exits_0(tracked, monkeypatch, capsys):
    uri, run_id = tracked
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert command.main([run_id]) == 0
    out = capsys.readouterr().out
    assert "largest difference from the logged cost curve: 0.0" in out and "reproduced exactly" in out


def test_a_missing_run_or_store_exits_2_and_creates_nothing(tracked, tmp_path, monkeypatch, capsys):
    uri, _ = tracked
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert command.main(["f" * 32]) == 2
    assert capsys.readouterr().err.startswith("error: there is no run")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'gone' / 'mlflow.db'}")
    assert command.main(["f" * 32]) == 2
    assert "no MLflow store" in capsys.readouterr().err and not (tmp_path / "gone").exists()


def test_the_module_answers_a_call_as_the_api_function_does(tracked):
    uri, run_id = tracked
    assert sweeps.reproduce is command  # the module, since it was imported above
    assert sweeps.reproduce(run_id, uri).max_abs_diff == 0.0
