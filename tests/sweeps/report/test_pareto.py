"""sweeps.report.pareto: a study of two metrics under a constraint, its trials run by the real
objective into a real MLflow store, its Pareto front tagged, drawn and listed (summary.md, the
terminal, `python -m sweeps.report`)."""

from __future__ import annotations

import csv

import optuna
import pytest

from sweeps.config import objectives
from sweeps.config.space import parse_space
from sweeps.report import pareto, summary
from sweeps.report.table import find_sweep, open_client, render
from sweeps.tracking.tracker import Tracker
from sweeps.trial.build import load_data
from sweeps.trial.objective import objective
from tests.sweeps.conftest import SMALL

PNG = b"\x89PNG\r\n\x1a\n"
UNITS = "+search_space.model.units={type:int,low:1,high:12}"  # n_params from 9 to 49 on flower's [2, u, 1]


@pytest.fixture(scope="module")
def swept(compose_cfg, tmp_path_factory):
    """8 trials of [val_cost, n_params] under n_params <= 30, tracked in-process into a real store."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    cfg = compose_cfg(*SMALL, UNITS, f"tracking.uri={uri}", "sweep.metric=[val_cost,n_params]",
                      "sweep.constraints=['n_params <= 30']", "sweep.pruner=none")
    tracker = Tracker.start_sweep(uri, "e", run_name="sweep-s", tags={"optuna.study": "s"},
                                  params={"sweep.metric": "['val_cost', 'n_params']", "sweep.direction": "null"})
    study = optuna.create_study(study_name="s", directions=["minimize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=1))
    space, data = parse_space(cfg.search_space), load_data(cfg.dataset, cfg.seed)
    for _ in range(8):
        trial = study.ask()
        study.tell(trial, objective(trial, cfg, space, data, tracker))
    summary.finish_sweep(study, tracker, cfg)
    tracker.end(tracker.parent_run_id)
    return cfg, tracker, study


def runs(tracker: Tracker) -> dict[int, object]:
    found = tracker.client.search_runs([tracker.experiment_id], "tags.`nnsweeps.role` = 'trial'", max_results=100)
    return {int(r.data.tags["optuna.trial"]): r for r in found}


def test_each_trial_gives_one_value_per_metric_and_its_constraint(swept):
    _, tracker, study = swept
    by_number = runs(tracker)
    for t in study.trials:
        assert t.values == [t.user_attrs["metrics"]["val_cost"], t.user_attrs["metrics"]["n_params"]]
        assert t.constraints == {"n_params <= 30": t.user_attrs["metrics"]["n_params"] - 30}
        assert by_number[t.number].data.tags["feasible"] == str(t.values[1] <= 30).lower()
    assert {r.data.tags["feasible"] for r in by_number.values()} == {"true", "false"}, "the seed gives both kinds"


def test_the_front_is_optunas_best_trials_feasible_only_and_tagged_exactly(swept):
    _, tracker, study = swept
    front = pareto.front(study)
    assert {t.number for t in front} == {t.number for t in study.best_trials}
    assert front and all(t.values[1] <= 30 for t in front)
    assert [t.values for t in front] == sorted(t.values for t in front)  # best val_cost first
    tagged = {n for n, r in runs(tracker).items() if r.data.tags.get("pareto") == "true"}
    assert tagged == {t.number for t in front}
    assert all(r.data.tags.get("pareto") == "false" for n, r in runs(tracker).items() if n not in tagged)
    parent = tracker.client.get_run(tracker.parent_run_id)
    assert parent.data.metrics["pareto_trials"] == len(front) and "best_run_id" not in parent.data.tags


def test_retag_moves_the_tag_to_the_new_front_and_writes_only_what_changed(swept):
    _, tracker, study = swept
    front = pareto.front(study)
    ids = {t.number: t.user_attrs["run_id"] for t in study.trials}
    off = next(t for t in study.trials if t.number not in {f.number for f in front})
    left, stays = front[0], front[1:]
    tracker.retag(study.study_name, "pareto", {ids[t.number] for t in stays} | {ids[off.number]})
    tags = {n: r.data.tags["pareto"] for n, r in runs(tracker).items()}
    assert tags[left.number] == "false" and tags[off.number] == "true"
    assert all(tags[t.number] == "true" for t in stays)
    pareto.retag(study, tracker, front)  # back as it was
    assert {n for n, r in runs(tracker).items() if r.data.tags["pareto"] == "true"} == {t.number for t in front}


def test_the_parent_run_holds_the_front_figure_and_the_hypervolume_history(swept, tmp_path):
    cfg, tracker, study = swept
    with tracker.artifact_file(tracker.parent_run_id, "pareto_front.png") as path:
        assert path.read_bytes().startswith(PNG)
    files = summary.study_artifacts(study, tracker, cfg)
    assert {"pareto_front.png", "hypervolume_history.png", "summary.md", "trials.csv"} <= set(files)
    assert "parallel_coordinate.png" not in files and "optimization_history.png" not in files
    for name in ("pareto_front.png", "hypervolume_history.png"):
        files[name](tmp_path / name)
        assert (tmp_path / name).read_bytes().startswith(PNG)
    point = pareto.reference_point(study)
    feasible = [t for t in study.trials if objectives.feasible(t)]
    assert all(p > max(t.values[i] for t in feasible) for i, p in enumerate(point))


def test_summary_and_terminal_list_each_front_trial_with_its_reproduce_command(swept, capsys):
    cfg, tracker, study = swept
    text = summary.summary_markdown(study, ["val_cost", "n_params"], cfg.tracking.uri)
    front = pareto.front(study)
    assert f"## Pareto front: {len(front)} trials" in text and "Constraints n_params <= 30" in text
    summary.print_best(study, cfg)
    out = capsys.readouterr().out
    assert f"Pareto front: {len(front)} trials by val_cost (minimize), n_params (minimize)" in out
    for t in front:
        command = summary.reproduce_command(cfg.tracking.uri, t.user_attrs["run_id"])
        assert command in text and command in out
    assert "Best trial" not in out and summary.best_trial(study) is None


def test_trials_csv_has_a_column_per_objective_and_the_front_and_feasibility(swept, tmp_path):
    _, _, study = swept
    summary.write_trials(tmp_path / "t.csv", study)
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    on = {t.number for t in pareto.front(study)}
    assert [float(r["values_1"]) for r in rows] == [t.values[1] for t in study.trials]
    assert {int(r["number"]) for r in rows if r["pareto"] == "true"} == on
    assert all(r["feasible"] == str(float(r["n_params"]) <= 30).lower() for r in rows)


def test_the_report_lists_the_front_with_a_reproduce_command_each(swept):
    cfg, tracker, study = swept
    uri = cfg.tracking.uri
    sweep = find_sweep(open_client(uri), uri, tracker.parent_run_id)
    assert sweep.metrics == ["val_cost", "n_params"] and sweep.directions == ["minimize", "minimize"]
    text = render(sweep, uri, top=10)
    front = pareto.front(study)
    assert f"Pareto front: {len(front)} trials by val_cost (minimize), n_params (minimize):" in text
    header = next(line for line in text.splitlines() if line.startswith("rank"))
    assert header.split()[2:4] == ["val_cost", "n_params"]
    for t in front:
        run_id = t.user_attrs["run_id"]
        assert f"trial {t.number}: MLFLOW_TRACKING_URI={uri} python -m sweeps.reproduce {run_id}" in text


def test_one_metric_under_a_constraint_has_its_best_among_the_feasible_trials():
    study = optuna.create_study(direction="minimize")
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for x, c in ((0.1, 1.0), (0.5, -1.0), (0.3, 0.0), (0.2, 2.0)):
        study.add_trial(optuna.trial.create_trial(value=x, params={"x": x}, distributions=dist,
                                                  constraints={"n_params <= 30": c}))
    assert summary.best_trial(study).number == 2 == study.best_trial.number  # as Optuna's own
    assert [t.number for t in summary.ranked(study)] == [2, 1, 0, 3]  # the feasible first
