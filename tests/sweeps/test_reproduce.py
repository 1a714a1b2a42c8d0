"""`nnsweeps reproduce` (`python -m sweeps.reproduce`, sweeps.commands.retrain): exit 0 when bit for bit,
2 with a sentence when the run or the store is missing (never creating a store); and
`sweeps.reproduce` the API's function whatever was imported."""

import importlib

import numpy as np
import optuna
import pytest
import yaml
from mlflow import MlflowClient

import sweeps
from sweeps.commands import retrain as command
from sweeps.config.space import parse_space
from sweeps.tracking.store import PARENT_TAG
from sweeps.tracking.tracker import Tracker
from sweeps.trial.artifacts import use_data
from sweeps.trial.build import fingerprint, load_data
from sweeps.trial.objective import objective
from tests.sweeps.conftest import SMALL


@pytest.fixture(scope="module")
def tracked(compose_cfg, tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    cfg = compose_cfg(*SMALL, f"tracking.uri={uri}")
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={})
    study = optuna.create_study()
    trial = study.ask()
    study.tell(trial, objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed), tracker))
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


def test_sweeps_reproduce_stays_the_api_function_once_the_command_is_imported(tracked):
    """Before, importing the command's module (then sweeps.reproduce itself) made the package's
    attribute the module, answering calls by a swapped class; now the command is
    sweeps.commands.retrain, and sweeps/reproduce.py is only run (`python -m`), never imported."""
    uri, run_id = tracked
    from sweeps.api import reproduce

    assert sweeps.reproduce is reproduce and command.reproduce is reproduce  # the command was imported above
    assert sweeps.reproduce(run_id, uri).max_abs_diff == 0.0
    with pytest.raises(ImportError, match="from sweeps import reproduce"):
        importlib.import_module("sweeps.reproduce")
    assert sweeps.reproduce is reproduce


def test_a_csv_changed_since_the_trial_is_named_with_both_digests(compose_cfg, tmp_path, monkeypatch, capsys):
    """Before, it said only "NOT reproduced exactly"."""
    csv = tmp_path / "points.csv"
    rows = np.random.default_rng(0).normal(size=(60, 2))
    lines = [f"{a},{b},{int(a + b > 0)}" for a, b in rows]
    csv.write_text("a,b,y\n" + "\n".join(lines) + "\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_cfg(*SMALL, f"tracking.uri={uri}", "dataset=csv", f"dataset.kwargs.path={csv}", "dataset.kwargs.label=y")
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={})
    data = load_data(cfg.dataset, cfg.seed)
    use_data(tracker, cfg.dataset, cfg.seed, data)  # the dataset inputs every trial run logs, with their digests
    study = optuna.create_study()
    trial = study.ask()
    study.tell(trial, objective(trial, cfg, parse_space(cfg.search_space), data, tracker))
    run_id, before = study.trials[0].user_attrs["run_id"], fingerprint(cfg.dataset, cfg.seed, data).digests
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert command.main([run_id]) == 0
    csv.write_text("a,b,y\n" + "\n".join(f"{a},{b},{int(a > 0)}" for a, b in rows) + "\n")  # labels edited
    after = fingerprint(cfg.dataset, cfg.seed, load_data(cfg.dataset, cfg.seed)).digests
    assert command.main([run_id]) == 1
    out = capsys.readouterr().out.splitlines()[-1]
    assert out.startswith(f"NOT reproduced exactly; the data changed since the trial ran: points.csv ({csv.as_uri()}) ")
    for context in ("training", "validation"):
        assert f"{context} split: recorded digest {before[context]}, now {after[context]}" in out


def test_a_sweeps_parent_run_is_named_as_such_with_where_to_find_a_trial(tracked, monkeypatch, capsys):
    """Before: `make reproduce RUN=<parent>` printed a raw "[Errno 2] ... config.yaml"."""
    uri, run_id = tracked
    parent = MlflowClient(tracking_uri=uri).get_run(run_id).data.tags[PARENT_TAG]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert command.main([parent]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: run {parent!r} in {uri} is a sweep's parent run, not a trial; `python -m sweeps.report "
                   f"{parent}` lists its trials with their run ids: pass one of those.")


def test_a_trial_logged_with_the_flat_optimiser_keys_of_before_reproduces(compose_cfg, tmp_path):
    """Before train.optimizers.<name>, a trial's config.yaml had train.beta, beta1, beta2 and eps
    (and no test split): reproduce reads them as today's keys, so momentum trains with its beta."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_cfg(*SMALL, f"tracking.uri={uri}", "train.optimizer=momentum", "train.optimizers.momentum.beta=0.5",
                      "dataset.test_fraction=0")
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={})
    study = optuna.create_study()
    trial = study.ask()
    study.tell(trial, objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed), tracker))
    run_id = study.trials[0].user_attrs["run_id"]
    with tracker.artifact_file(run_id, "config.yaml") as path:
        old = yaml.safe_load(path.read_text())
    sections = old["train"].pop("optimizers")
    old["train"].update(beta=sections["momentum"]["beta"], **sections["adam"])
    del old["dataset"]["test_fraction"]
    tracker.log_artifacts(run_id, {"config.yaml": lambda p: p.write_text(yaml.safe_dump(old))})
    with tracker.artifact_file(run_id, "config.yaml") as path:
        assert "optimizers" not in path.read_text()  # the file as an earlier version wrote it
    r = sweeps.reproduce(run_id, uri)
    assert r.exact and r.config.train.optimizers.momentum.beta == 0.5 and r.config.dataset.test_fraction == 0.0
