"""What one trial does: config in, metric out, everything on its MLflow run.

The objective itself is `objective()`; the rest are its small helpers.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import optuna
from omegaconf import DictConfig, OmegaConf

from nncore import Dataset, Diverged, FitResult, Network, fit
from sweeps import plots
from sweeps.cli import check_interrupt
from sweeps.config import flatten
from sweeps.space import SearchSpace
from sweeps.tracking import Tracker


def objective(trial: optuna.Trial, base: DictConfig, space: SearchSpace, data: Dataset,
              tracker: Tracker) -> float:
    values = space.sample(trial)
    cfg = space.apply(base, values)
    with trial_run(trial, cfg, values, tracker) as run:
        net = build_network(cfg, data)
        pruning = Pruning(trial, cfg, net, data)
        try:
            result = train(net, cfg, data, pruning)
        except Diverged as err:  # a normal outcome of a large learning rate: kept, never best
            log_outcome(tracker, run, net, cfg, err.costs, np.arange(err.costs.size) * cfg.train.cost_every,
                        val_points=pruning.points, data=data)
            raise diverged(trial, str(err)) from None
        metrics = evaluate(net, data, result)
        final = [] if result.stopped_early else [(result.iterations_run, metrics[cfg.sweep.metric])]
        log_outcome(tracker, run, net, cfg, result.costs, result.cost_iterations, metrics,
                    val_points=[*pruning.points, *final], data=data)
        trial.set_user_attr("metrics", metrics)
        value = metrics[cfg.sweep.metric]
        if result.stopped_early:
            raise optuna.TrialPruned(f"pruned at iteration {result.iterations_run - 1}")
        if not math.isfinite(value):  # Optuna would record inf as a complete value
            raise diverged(trial, f"diverged: {cfg.sweep.metric} is {value}")
        return value


def build_network(cfg: DictConfig, data: Dataset) -> Network:
    sizes = [data.X_train.shape[0], *cfg.model.hidden_units, data.Y_train.shape[0]]
    m = cfg.model
    return Network.create(sizes, activation=m.activation, output=m.output, init=m.init, seed=cfg.seed,
                          dtype=cfg.train.dtype, leaky_slope=m.leaky_slope)


def train(net: Network, cfg: DictConfig, data: Dataset, callback=None) -> FitResult:
    t = cfg.train
    return fit(net, data.X_train, data.Y_train, learning_rate=t.learning_rate, iterations=t.iterations,
               optimizer=t.optimizer, batch_size=t.batch_size, l2=t.l2, seed=cfg.seed, callback=callback,
               cost_every=t.cost_every, beta=t.beta, beta1=t.beta1, beta2=t.beta2, eps=t.eps)


def evaluate(net: Network, data: Dataset, result: FitResult) -> dict[str, float]:
    has_val = data.X_val.shape[1] > 0
    X_val, Y_val = (data.X_val, data.Y_val) if has_val else (data.X_train, data.Y_train)
    with np.errstate(over="ignore", invalid="ignore"):
        return {
            "train_cost": net.cost(data.X_train, data.Y_train),
            "train_accuracy": net.accuracy(data.X_train, data.Y_train),
            "val_cost": net.cost(X_val, Y_val),  # the training set stands in when val_fraction=0
            "val_accuracy": net.accuracy(X_val, Y_val),
            "fit_seconds": result.seconds,
            "iterations_run": float(result.iterations_run),
        }


class Pruning:
    """nncore callback: every report_every iterations, report the sweep's metric on the validation
    data to Optuna (so the pruner compares what the study optimises) and stop when told to."""

    def __init__(self, trial: optuna.Trial, cfg: DictConfig, net: Network, data: Dataset):
        self.trial, self.net, self.data, self.metric = trial, net, data, cfg.sweep.metric
        self.every = cfg.train.report_every
        # with no pruner, reporting would only add a journal write per report (+12-16% measured)
        self.prunes = cfg.sweep.pruner != "none"
        self.points: list[tuple[int, float]] = []  # (iteration, value) reported, drawn on cost_curve.png

    def __call__(self, iteration: int, cost: float) -> bool:
        check_interrupt()  # a Ctrl-C stops the training here (sweeps.cli.INTERRUPTED)
        if iteration == 0 or iteration % self.every:
            return False
        X, Y = (self.data.X_val, self.data.Y_val) if self.data.X_val.shape[1] else (self.data.X_train, self.data.Y_train)
        value = self.net.cost(X, Y) if self.metric == "val_cost" else self.net.accuracy(X, Y)
        if not math.isfinite(value):
            return False  # the training cost will say Diverged soon enough
        self.points.append((iteration, value))
        if not self.prunes:
            return False
        self.trial.report(value, step=iteration)
        return self.trial.should_prune()


def diverged(trial: optuna.Trial, reason: str) -> optuna.TrialPruned:
    trial.set_user_attr("diverged", reason)
    return optuna.TrialPruned(reason)


def log_outcome(tracker: Tracker, run: "TrialRun", net: Network, cfg: DictConfig, costs: np.ndarray,
                iterations: np.ndarray, metrics: dict[str, float] | None = None,
                val_points: list[tuple[int, float]] = (), data: Dataset | None = None) -> None:
    """The artifacts now; the metrics and the curve with the run's end (one store write less)."""
    run.metrics = {k: v for k, v in (metrics or {}).items() if math.isfinite(v)}
    run.curve = (iterations, costs)
    files = {
        "config.yaml": lambda p: p.write_text(OmegaConf.to_yaml(cfg)),
        "weights.npz": net.save,
        "cost_curve.csv": lambda p: write_curve(p, iterations, costs),
    }
    files.update(figures(net, cfg, costs, iterations, metrics, val_points, data))
    tracker.log_artifacts(run.id, files)


def figures(net: Network, cfg: DictConfig, costs: np.ndarray, iterations: np.ndarray,
            metrics: dict[str, float] | None, val_points: list[tuple[int, float]], data: Dataset | None) -> dict:
    """The trial's PNG writers: its cost curve unless tracking.trial_figures is false (for many
    short trials: ~17 ms, a fifth of tracking's cost), and with tracking.decision_boundary=all its
    decision boundary (by default only the best trials get one, at the end: sweeps.summary)."""
    files = {}
    if cfg.tracking.trial_figures:
        val = np.array(val_points, dtype=float).reshape(-1, 2)  # (k, 2) iteration, value
        files["cost_curve.png"] = lambda p: plots.cost_curve(p, iterations, costs, title=run_title(cfg),
                                                             val=(val[:, 0], val[:, 1]), val_label=cfg.sweep.metric)
    if cfg.tracking.decision_boundary == "all" and data is not None:
        if (draw := boundary(net, cfg, data, metrics)) is not None:
            files["decision_boundary.png"] = draw
    return files


def boundary(net: Network, cfg: DictConfig, data: Dataset, metrics: dict[str, float] | None):
    """decision_boundary.png's writer for 2-D data (flower, moons, circles, a 2-feature CSV): the
    predicted class over a 100 x 100 grid (one predict call); None for other data or a network
    with non-finite weights (diverged)."""
    if data.X_train.shape[0] != 2 or not all(np.isfinite(W).all() for W, _ in net.params):
        return None
    acc = f", val acc {metrics['val_accuracy']:.3f}" if metrics and math.isfinite(metrics["val_accuracy"]) else ""
    return lambda p: plots.decision_boundary(
        p, net.predict, data.X_train, data.y_train, data.X_val, data.y_val, title=run_title(cfg) + acc,
        class_names=data.class_names, feature_names=data.feature_names)


def write_curve(path, iterations: np.ndarray, costs: np.ndarray) -> None:
    """iteration,cost rows; repr() is the shortest text that reads back as the same float64, so
    sweeps.reproduce compares bit for bit (7 ms for 10,000 rows, np.savetxt's %.17g 12 ms)."""
    rows = map("{},{!r}".format, iterations.tolist(), costs.astype(np.float64).tolist())
    path.write_text("iteration,cost\n" + "\n".join(rows) + "\n")


def run_title(cfg: DictConfig) -> str:
    return (f"{cfg.dataset.name} {cfg.model.hidden_units} {cfg.model.activation} "
            f"lr={cfg.train.learning_rate:.3g} it={cfg.train.iterations}")


@dataclass
class TrialRun:
    """A trial's MLflow run, and what log_outcome leaves for its end."""

    id: str
    metrics: dict[str, float] = field(default_factory=dict)
    curve: tuple[np.ndarray, np.ndarray] | None = None


@contextlib.contextmanager
def trial_run(trial: optuna.Trial, cfg: DictConfig, values: dict, tracker: Tracker) -> Iterator[TrialRun]:
    """The trial's child run, ended by how the trial ends: complete and pruned FINISHED (the
    state tag tells them apart), an error FAILED with its message, an interrupt KILLED; with the
    metrics and curve logged, whichever way."""
    run = TrialRun(tracker.start_trial(
        trial.number,
        tags={"optuna.study": trial.study.study_name, "optuna.trial": trial.number, "optuna.state": "RUNNING",
              "seed": cfg.seed, "sampled": ",".join(values)},
        # the resolved config (the search space itself is on the parent run) and per-layer widths
        params={**{k: v for k, v in flatten(cfg).items() if not k.startswith("search_space.")},
                **{k: v for k, v in values.items() if k != "model.hidden_units"}},
    ))
    trial.set_user_attr("run_id", run.id)

    def end(status: str, tags: dict[str, str]) -> None:
        tracker.end(run.id, status, tags, metrics=run.metrics, curve=run.curve)

    try:
        yield run
    except optuna.TrialPruned as err:
        end("FINISHED", {"optuna.state": "PRUNED", "reason": str(err)})
        raise
    except KeyboardInterrupt:
        end("KILLED", {"optuna.state": "FAIL", "reason": "interrupted"})
        raise
    except optuna.exceptions.UpdateFinishedTrialError:
        # another worker failed this trial meanwhile (its heartbeat came late) and queued a retry
        end("KILLED", {"optuna.state": "FAIL", "reason": "failed by another worker: no heartbeat"})
        raise
    except BaseException as err:
        message = f"{type(err).__name__}: {err}"
        trial.set_user_attr("error", message)
        end("FAILED", {"optuna.state": "FAIL", "error": message})
        raise
    else:
        end("FINISHED", {"optuna.state": "COMPLETE"})
