"""The sweep's summary files, from in-memory studies (no MLflow store): which files, and that the
figures show what they claim."""

from __future__ import annotations

import subprocess
import sys

import matplotlib
import numpy as np
import optuna
import pytest
from mlflow import MlflowClient

from sweeps.report import summary
from sweeps.tracking.tracker import Tracker
from tests.conftest import ROOT

PNG = b"\x89PNG\r\n\x1a\n"
OFF = Tracker("sqlite:///unused.db", enabled=False)


def study_of(n_params: int, n_trials: int = 12, direction: str = "minimize") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("train.learning_rate", 0.1, 2.0, log=True)
        extra = 0.0
        if n_params > 1:
            extra = 0.1 * trial.suggest_int("model.depth", 1, 3)
            extra += 0.05 * (trial.suggest_categorical("model.activation", ["tanh", "relu"]) == "relu")
        trial.set_user_attr("metrics", {"val_accuracy": 0.8})
        return (np.log(lr)) ** 2 + extra

    study.optimize(objective, n_trials=n_trials)
    return study


def is_png(data: bytes) -> bool:
    return data.startswith(PNG)


def write_all(files: dict, folder) -> set[str]:
    for name, write in files.items():
        write(folder / name)
    return {p.name for p in folder.iterdir()}


def test_the_files_of_a_study_with_several_params(tmp_path):
    written = write_all(summary.study_artifacts(study_of(3), OFF), tmp_path)
    assert {"trials.csv", "summary.md", "optimization_history.png", "parallel_coordinate.png",
            "param_importances.png"} <= written
    for name in written - {"trials.csv", "summary.md", "study_plots.html"}:
        assert (tmp_path / name).read_bytes()[:8] == PNG, name


def test_one_param_has_no_importances(tmp_path):
    written = write_all(summary.study_artifacts(study_of(1, n_trials=6), OFF), tmp_path)
    assert "optimization_history.png" in written and "param_importances.png" not in written


def test_importances_that_fail_leave_their_file_out(tmp_path, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise RuntimeError("too few trials")

    files = summary.study_artifacts(study_of(3, n_trials=4), OFF)
    import optuna.importance  # noqa: F401  (the module whose function fails)
    monkeypatch.setattr(optuna.importance, "get_param_importances", fail)
    written = write_all(files, tmp_path)
    assert "param_importances.png" not in written and "optimization_history.png" in written
    assert "param_importances.png left out: RuntimeError: too few trials" in capsys.readouterr().err


@pytest.mark.parametrize("minimize", [True, False])
def test_history_draws_the_best_value_so_far(tmp_path, minimize):
    """Optuna's figure (benchmarks/bench_figures.py: ours saved too little to keep)."""
    study = optuna.create_study(direction="minimize" if minimize else "maximize")
    for value in (0.7, 0.9, 0.5, 0.6):
        study.add_trial(optuna.trial.create_trial(params={"x": value}, distributions={
            "x": optuna.distributions.FloatDistribution(0, 1)}, value=value))
    fig = summary.history_figure(tmp_path / "h.png", study, "m")
    assert is_png((tmp_path / "h.png").read_bytes())
    best = next(line for line in fig.axes[0].lines if line.get_label() == "Best Value")
    assert best.get_ydata().tolist() == ([0.7, 0.7, 0.5, 0.5] if minimize else [0.7, 0.9, 0.9, 0.9])
    assert matplotlib.rcParams["axes.facecolor"] == matplotlib.rcParamsDefault["axes.facecolor"]  # no ggplot left


def test_importances_most_important_on_top(tmp_path):
    study = study_of(3, n_trials=20)
    fig = summary.importance_figure(tmp_path / "i.png", study, "m", 20)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]  # bottom to top
    widths = [p.get_width() for p in ax.patches]
    assert sorted(labels) == sorted(study.best_params) and widths == sorted(widths)
    assert ax.get_title().startswith("parameter importances (PED-ANOVA") and is_png((tmp_path / "i.png").read_bytes())


def write_curve(folder):
    folder.mkdir(parents=True, exist_ok=True)
    curve = np.column_stack([np.arange(0, 30, 10), [0.7, 0.5, 0.25]])  # (3, 2)
    np.savetxt(folder / "cost_curve.csv", curve, fmt=["%d", "%.17g"], delimiter=",", header="iteration,cost",
               comments="")
    return curve


def test_a_local_curve_is_read_in_place(tmp_path, monkeypatch):
    # (a server's artifacts are downloaded: test_scale's sweep through `mlflow server` reads them)
    (tmp_path / "ml runs").mkdir()  # a space: %20 in the artifact URI
    tracker = Tracker.start_sweep(f"sqlite:///{tmp_path / 'ml runs' / 'mlflow.db'}", "E", run_name="sweep-S",
                                  tags={}, params={})
    with_curve, without = (tracker.start_trial(i, tags={}, params={}) for i in range(2))
    curve = write_curve(tracker.folder(with_curve))

    def no_download(*args, **kwargs):
        raise AssertionError("a local artifact is read in place")

    assert "%20" in tracker.client.get_run(with_curve).info.artifact_uri
    monkeypatch.setattr(MlflowClient, "download_artifacts", no_download)
    assert np.array_equal(summary.read_curve(tracker, with_curve), curve)
    assert summary.read_curve(tracker, without) is None  # a missing curve: its line is left out


def test_importances_leave_optuna_s_other_evaluators_usable(tmp_path):
    """A notebook whose process drew a sweep's importances (sweeps.run, or `python -m sweeps.report`
    in-process) can still use Optuna's fANOVA evaluator, which needs scikit-learn: the summary hides
    no module from the interpreter. A fresh process, so that scikit-learn is not imported yet."""
    code = ("import optuna, pathlib; from sweeps.report import summary; from tests.sweeps.report.test_summary "
            "import study_of; study = study_of(3); "
            f"assert summary.importance_figure(pathlib.Path({str(tmp_path / 'i.png')!r}), study, 'm', 12); "
            "fanova = optuna.importance.FanovaImportanceEvaluator(seed=0); "
            "print(sorted(optuna.importance.get_param_importances(study, evaluator=fanova)))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["['model.activation',", "'model.depth',", "'train.learning_rate']"]


def constrained_study(constraints: dict[float, float]) -> optuna.Study:
    """value -> its constraint's value (<= 0 feasible), one trial each in that order."""
    study = optuna.create_study(direction="minimize")
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for x, c in constraints.items():
        study.add_trial(optuna.trial.create_trial(value=x, params={"x": x}, distributions=dist,
                                                  constraints={"n_params <= 30": c}))
    return study


@pytest.mark.parametrize("constraints, red", [({0.1: 1.0, 0.5: -1.0, 0.3: 0.0, 0.2: 2.0}, 0.3),
                                              ({0.1: 1.0, 0.5: 2.0, 0.3: 3.0}, None)])
def test_the_parallel_coordinates_red_line_is_the_feasible_best_or_none(tmp_path, constraints, red):
    """The lowest value (0.1) breaks its constraint: the red line is the best feasible trial's,
    and with none feasible no line is red and the title says so (summary.md's "no best trial")."""
    files = summary.study_artifacts(constrained_study(constraints), OFF)
    fig = files["parallel_coordinate.png"](tmp_path / "pc.png")
    assert is_png((tmp_path / "pc.png").read_bytes())
    ax = fig.axes[0]
    trials = [line for line in ax.lines if list(line.get_xdata()) == [0, 1]]  # a trial: metric axis to x axis
    assert len(trials) == len(constraints)
    reds = [line for line in trials if line.get_color() == "#d62728"]
    values = sorted(constraints)
    if red is None:
        assert reds == [] and ax.get_title() == "3 complete trials, 3 breaking a constraint; none feasible, so no best"
    else:
        (line,) = reds
        assert line.get_ydata()[0] == pytest.approx((red - values[0]) / (values[-1] - values[0]))
        assert ax.get_title() == ("4 complete trials, 2 breaking a constraint; red: the best feasible, "
                                  f"trial {list(constraints).index(red)}")


def default_space_study(n_trials: int = 30) -> optuna.Study:
    """Trials over the default search space's kinds of parameter (conf/search_space/default.yaml):
    log floats and ints, a stepped int, long category names."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_categorical("model.activation", ["tanh", "relu", "sigmoid", "leaky_relu"])
        trial.suggest_int("model.depth", 1, 3)
        trial.suggest_categorical("model.init", ["scaled", "xavier"])
        trial.suggest_int("model.units", 2, 32, log=True)
        trial.suggest_int("train.iterations", 1000, 8000, step=1000)
        trial.suggest_float("train.learning_rate", 1e-4, 2.0, log=True)
        return trial.suggest_float("train.l2", 1e-3, 0.05, log=True)

    study.optimize(objective, n_trials=n_trials)
    return study


def overlapping(texts) -> list[tuple[str, str]]:
    """The pairs of drawn texts whose boxes overlap on the canvas."""
    shown = [t for t in texts if t.get_visible() and t.get_text()]
    boxes = [t.get_window_extent() for t in shown]
    return [(shown[i].get_text(), shown[j].get_text()) for i in range(len(shown)) for j in range(i)
            if boxes[i].overlaps(boxes[j])]


def test_importances_have_one_title(tmp_path):
    fig = summary.importance_figure(tmp_path / "i.png", default_space_study(), "m", 30)
    titles = [t for ax in fig.axes for t in (ax.get_title(loc) for loc in ("left", "center", "right")) if t]
    assert titles == ["parameter importances (PED-ANOVA: the best 10% of 30 complete trials)"]
    assert not fig.get_suptitle()


def test_slice_tick_labels_do_not_overlap(tmp_path):
    """Every panel's x tick labels, and those of neighbouring panels, clear of each other: category
    names, a log axis over one decade (model.units) and over four (train.learning_rate)."""
    fig = summary.slice_figure(tmp_path / "s.png", default_space_study(), "val_cost")
    fig.draw_without_rendering()
    labels = [t for ax in fig.axes for t in ax.get_xticklabels()  # those drawn: within the axis's range
              if min(ax.get_xlim()) <= t.get_position()[0] <= max(ax.get_xlim())]
    assert {"model.units", "train.learning_rate", "model.activation"} <= {ax.get_xlabel() for ax in fig.axes}
    assert len([t for t in labels if t.get_text()]) >= 14  # each panel labelled, the log ones too
    assert overlapping(labels) == []
