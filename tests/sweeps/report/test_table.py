"""sweeps.report.table (`python -m sweeps.report`): a sweep's top trials read back from a real
MLflow store, ranked by the sweep's metric, with the metrics table's columns."""

import optuna
import pytest

from sweeps.config.metrics import METRICS
from sweeps.config.space import parse_space
from sweeps.report.table import find_sweep, main, open_client, render
from sweeps.tracking.tracker import Tracker
from sweeps.trial.build import load_data
from sweeps.trial.objective import objective
from tests.sweeps.conftest import SMALL


@pytest.fixture(scope="module")
def swept(compose_cfg, tmp_path_factory):
    """A sweep of 4 trials, maximising val_accuracy, tracked in-process into a real local store."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    cfg = compose_cfg(*SMALL, f"tracking.uri={uri}", "sweep.metric=val_accuracy", "sweep.pruner=none")
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep-s", tags={"optuna.study": "s"},
                                  params={"sweep.metric": "val_accuracy", "sweep.direction": "null"})
    study = optuna.create_study(study_name="s", direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    space, data = parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed)
    for _ in range(4):
        trial = study.ask()
        study.tell(trial, objective(trial, cfg, space, data, tracker))
    tracker.end(tracker.parent_run_id)
    return uri, tracker.parent_run_id, study


def test_the_table_ranks_by_the_sweeps_metric_with_the_tables_columns(swept):
    uri, parent, study = swept
    sweep = find_sweep(open_client(uri), uri, None)  # the latest sweep
    assert sweep.run.info.run_id == parent and sweep.metric == "val_accuracy" and sweep.direction == "maximize"
    text = render(sweep, uri, top=2)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("rank"))
    assert all(m.label in header for m in METRICS.values()) and "train.learning_rate" in header
    best = max(study.trials, key=lambda t: t.value)
    first = lines[lines.index(header) + 2].split()
    assert first[:2] == ["1", str(best.number)] and float(first[2]) == pytest.approx(best.value, abs=5e-5)
    assert len(lines) == lines.index(header) + 2 + 2 + 2  # 2 rows, a blank line, the reproduce line
    assert f"python -m sweeps.reproduce {best.user_attrs['run_id']}" in text


def test_a_trials_run_id_stands_for_its_sweep_and_top_must_be_positive(swept, monkeypatch, capsys):
    uri, parent, study = swept
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main([study.trials[0].user_attrs["run_id"], "--top", "1"]) == 0
    out = capsys.readouterr()
    assert parent in out.out and "Top 1 by val_accuracy (maximize)" in out.out
    with pytest.raises(SystemExit):
        main(["--top", "0"])
    assert main(["0" * 32]) == 2 and "there is no run" in capsys.readouterr().err


def test_report_without_a_store_says_so_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'missing.db'}")
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: there is no MLflow store at") and len(err.splitlines()) == 1
    assert not (tmp_path / "missing.db").exists()  # reporting never creates a store


def test_without_a_feasible_trial_the_table_marks_them_and_names_no_best(compose_cfg, tmp_path):
    """Before, it printed "reproduce the best: <an infeasible trial>"."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_cfg(*SMALL, f"tracking.uri={uri}", "sweep.constraints=['n_params <= 1']")
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep-c", tags={}, params={"sweep.metric": "val_cost"})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space, data = parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed)
    for _ in range(2):
        trial = study.ask()
        study.tell(trial, objective(trial, cfg, space, data, tracker))
    tracker.end(tracker.parent_run_id)
    text = render(find_sweep(open_client(uri), uri, None), uri, top=5)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("rank"))
    assert header.split()[-3:] == ["feasible", "run", "id"]
    rows = lines[lines.index(header) + 2:][:2]
    assert [row.split()[-2] for row in rows] == ["no", "no"]
    assert "reproduce the best" not in text
    assert "No trial meets the sweep's constraints (feasible: no), so there is no best." in text
