"""sweeps.trial.artifacts: a trial's files in a real local MLflow store, and its curve read back
bit for bit."""

import json

import numpy as np
import optuna
from mlflow import MlflowClient

from sweeps.config.space import parse_space
from sweeps.tracking.tracker import Tracker
from sweeps.trial.artifacts import draw_boundaries, use_data, write_curve
from sweeps.trial.build import digest, load_data
from sweeps.trial.objective import objective
from tests.sweeps.conftest import SMALL


def test_the_curve_file_reads_back_as_the_same_float64s(tmp_path):
    rng = np.random.default_rng(0)
    costs = rng.random(1000) * 10.0 ** rng.integers(-300, 300, 1000)  # every magnitude
    write_curve(tmp_path / "c.csv", np.arange(1000) * 3, costs)
    back = np.loadtxt(tmp_path / "c.csv", delimiter=",", skiprows=1, ndmin=2)
    assert np.array_equal(back[:, 1], costs) and np.array_equal(back[:, 0], np.arange(1000) * 3)


def test_a_trial_writes_its_files_and_the_best_get_a_boundary_at_the_end(compose_cfg, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_cfg(*SMALL, f"tracking.uri={uri}", "tracking.trial_figures=true")  # decision_boundary=top: none per trial
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={})
    study = optuna.create_study()
    trial = study.ask()
    study.tell(trial, objective(trial, cfg, parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed), tracker))
    run_id = study.trials[0].user_attrs["run_id"]
    client = MlflowClient(uri)
    listed = {a.path for a in client.list_artifacts(run_id)}
    assert listed == {"config.yaml", "weights.npz", "cost_curve.csv", "cost_curve.png"}
    draw_boundaries([(0, run_id, study.trials[0].user_attrs["metrics"])], tracker)  # flower is 2-D
    assert "decision_boundary.png" in {a.path for a in client.list_artifacts(run_id)}


def test_every_trial_run_logs_its_dataset_as_training_and_validation_inputs(compose_cfg, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    csv = tmp_path / "points.csv"
    csv.write_text("x1,x2,y\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(40)))
    cfg = compose_cfg(*SMALL, f"tracking.uri={uri}", "dataset=csv", f"dataset.kwargs.path={csv}",
                      "dataset.kwargs.label=y", "dataset.val_fraction=0.25",
                      "dataset.test_fraction=0")  # the split sizes asserted below are those of no test split
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep", tags={}, params={})
    data = load_data(cfg.dataset, cfg.seed)
    use_data(tracker, cfg.dataset, cfg.seed, data)
    study = optuna.create_study()
    for _ in range(2):
        trial = study.ask()
        study.tell(trial, objective(trial, cfg, parse_space(cfg.search_space), data, tracker))
    for t in study.trials:
        inputs = MlflowClient(uri).get_run(t.user_attrs["run_id"]).inputs.dataset_inputs
        by_context = {i.tags[0].value: i.dataset for i in inputs}
        assert set(by_context) == {"training", "validation"}
        train, val = by_context["training"], by_context["validation"]
        assert train.name == val.name == "points.csv" and train.source_type == "local"
        assert json.loads(train.source)["uri"] == csv.as_uri()
        assert json.loads(train.profile)["features_shape"] == [30, 2]  # the split sizes: 30 and 10 samples
        assert json.loads(val.profile)["features_shape"] == [10, 2]
        assert train.digest == digest(data.X_train, data.Y_train) != val.digest
