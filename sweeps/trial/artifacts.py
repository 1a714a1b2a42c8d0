"""What a trial writes to its MLflow run: its dataset inputs, config.yaml, weights.npz,
cost_curve.csv and its figures; and, at the sweep's end, the decision boundaries of the best
trials (draw_boundaries). read_config reads a trial's config back."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import yaml

from nncore import Dataset, Network
from sweeps import plots, reserve
from sweeps.config.checks import logged_settings
from sweeps.config.objectives import metric_names
from sweeps.config.schema import Config, DatasetConfig
from sweeps.tracking.tracker import Tracker
from sweeps.trial.build import fingerprint, load_data, splits

logger = logging.getLogger(__name__)


@dataclass
class TrialRun:
    """A trial's MLflow run, and what log_outcome leaves for its end."""

    id: str
    metrics: dict[str, float] = field(default_factory=dict)  # logged at step `iterations`, after the curves
    curve: tuple[np.ndarray, np.ndarray] | None = None
    steps: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # the val metric at each report
    iterations: int = 0
    tags: dict[str, str] = field(default_factory=dict)  # what the trial's outcome adds (feasible, pareto)


def use_data(tracker: Tracker, d: DatasetConfig, seed: int, data: Dataset) -> None:
    """The dataset every trial run of this process logs as its inputs (training, validation):
    its name, source, digests and split sizes, worked out once here."""
    if tracker.enabled and not tracker.deferred:  # an Outbox's writer logs its own data
        fp = fingerprint(d, seed, data)
        tracker.use_dataset(fp.name, fp.source, {c: (X, Y, fp.digests[c]) for c, (X, Y) in splits(data).items()})


def curve_file(repeat: int) -> str:
    """The artifact of a repeat's full-resolution cost curve: the first's is cost_curve.csv, as a
    trial that trains once has."""
    return "cost_curve.csv" if repeat == 0 else f"cost_curve_r{repeat}.csv"


def log_outcome(tracker: Tracker, run: "TrialRun", net: Network, cfg: Config,
                curves: list[tuple[np.ndarray, np.ndarray]], metrics: dict[str, float] | None = None,
                val_points: list[tuple[int, float]] = (), data: Dataset | None = None) -> None:
    """The artifacts now; the metrics and the curve with the run's end (one store write less).
    net: the first repeat's; curves: (iterations, costs) of each repeat trained (sweep.repeats)."""
    reserve.check()  # the disk is full: this trial's artifacts would take the space its stop needs
    run.metrics = {k: v for k, v in (metrics or {}).items() if math.isfinite(v)}
    iterations, costs = run.curve = curves[0]
    # the final metrics are logged at the step training stopped, after the metric's points at each
    # pruning report: the run page draws them beside `cost` (what cost_curve.png showed), and the
    # run's value of the metric is the last point, its final one
    run.iterations = int(run.metrics.get("iterations_run", 0))
    run.steps = {metric_names(cfg.sweep)[0]: [(i, v) for i, v in val_points if not run.iterations or i < run.iterations]}
    files = {
        "config.yaml": lambda p: write_config(p, cfg),
        "weights.npz": net.save,
        **{curve_file(i): lambda p, c=c: write_curve(p, *c) for i, c in enumerate(curves)},
    }
    files.update(figures(net, cfg, costs, iterations, metrics, val_points, data))
    tracker.log_artifacts(run.id, files)


def figures(net: Network, cfg: Config, costs: np.ndarray, iterations: np.ndarray,
            metrics: dict[str, float] | None, val_points: list[tuple[int, float]], data: Dataset | None) -> dict:
    """The trial's PNG writers: its cost curve unless tracking.trial_figures is false (for many
    short trials: a large part of tracking's cost per trial), and with tracking.decision_boundary=all its
    decision boundary (by default only the best trials get one, at the end: sweeps.summary)."""
    files = {}
    if cfg.tracking.trial_figures:
        val = np.array(val_points, dtype=float).reshape(-1, 2)  # (k, 2) iteration, value
        files["cost_curve.png"] = lambda p: plots.cost_curve(p, iterations, costs, title=run_title(cfg),
                                                             val=(val[:, 0], val[:, 1]), val_label=metric_names(cfg.sweep)[0])
    if cfg.tracking.decision_boundary == "all" and data is not None:
        if (draw := boundary(net, cfg, data, metrics)) is not None:
            files["decision_boundary.png"] = draw
    return files


def boundary(net: Network, cfg: Config, data: Dataset, metrics: dict[str, float] | None):
    """decision_boundary.png's writer for 2-D data (flower, moons, circles, a 2-feature CSV): the
    predicted class over a 100 x 100 grid (one predict call); None for other data or a network
    with non-finite weights (diverged)."""
    if data.X_train.shape[0] != 2 or not all(np.isfinite(W).all() for W, _ in net.params):
        return None
    acc = f", val acc {metrics['val_accuracy']:.3f}" if metrics and math.isfinite(metrics["val_accuracy"]) else ""
    return lambda p: plots.decision_boundary(
        p, net.predict, data.X_train, data.y_train, data.X_val, data.y_val, title=run_title(cfg) + acc,
        class_names=data.class_names, feature_names=data.feature_names)


def write_config(path, cfg: Config) -> None:
    """The settings as YAML, by libyaml's emitter: OmegaConf.to_yaml's is pure Python, several
    times slower; read_config reads it back the same."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(dataclasses.asdict(cfg), Dumper=dumper, sort_keys=False))


def write_curve(path, iterations: np.ndarray, costs: np.ndarray) -> None:
    """iteration,cost rows; repr() is the shortest text that reads back as the same float64, so
    sweeps.reproduce compares bit for bit (and faster than np.savetxt's %.17g)."""
    rows = map("{},{!r}".format, iterations.tolist(), costs.astype(np.float64).tolist())
    path.write_text("iteration,cost\n" + "\n".join(rows) + "\n")


def run_title(cfg: Config) -> str:
    return (f"{cfg.dataset.name} {cfg.model.hidden_units} {cfg.model.activation} "
            f"lr={cfg.train.learning_rate:.3g} it={cfg.train.iterations}")


def read_config(tracker: Tracker, run_id: str) -> Config:
    """The settings of a trial run's config.yaml (an earlier version's too), read with libyaml's
    parser: OmegaConf.load's is pure Python, several times slower."""
    with tracker.artifact_file(run_id, "config.yaml") as path:
        text = path.read_text()
    return logged_settings(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def draw_boundaries(trials: list[tuple[int, str, dict | None]], tracker: Tracker) -> None:
    """decision_boundary.png on the runs of the best complete trials of 2-D data, drawn from their
    config.yaml and weights.npz now that they are known, rather than as every trial ends
    (tracking.decision_boundary=all), which draws pictures of mostly poor networks. trials:
    (number, run id, metrics) each. A trial whose files cannot be read is left out, with a note."""
    datasets: dict[str, Dataset] = {}
    for number, run_id, metrics in trials:
        if not run_id:
            continue
        try:
            with tracker.artifact_file(run_id, "weights.npz") as path:
                net = Network.load(path)
            if net.sizes[0] != 2:
                continue  # no picture of more than 2 features
            cfg = read_config(tracker, run_id)
            key = repr((cfg.dataset, cfg.seed))  # what the data depends on
            if key not in datasets:
                datasets[key] = load_data(cfg.dataset, cfg.seed)
            draw = boundary(net, cfg, datasets[key], metrics)
            if draw is not None:
                tracker.log_artifacts(run_id, {"decision_boundary.png": draw})
        except Exception as err:  # the sweep's summary matters more than one picture
            logger.warning(f"decision_boundary.png of trial {number} left out: {type(err).__name__}: {err}")
