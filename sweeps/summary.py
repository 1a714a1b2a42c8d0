"""After the workers: the study's summary on the parent run, and the best trial on the terminal."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import optuna
from omegaconf import DictConfig
from optuna.trial import FrozenTrial, TrialState

from sweeps import plots
from sweeps.tracking import Tracker

TOP = 5  # cost curves overlaid on the parent run


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best COMPLETE trial (pruned and diverged trials never count), or None."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)]
    if not complete:
        return None
    pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
    return pick(complete, key=lambda t: (t.value, -t.number))


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(complete, key=lambda t: t.value, reverse=reverse)


def finish_sweep(study: optuna.Study, tracker: Tracker, cfg: DictConfig) -> None:
    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    best = best_trial(study)
    metrics = {f"trials_{k}": v for k, v in counts.items()}
    if best is not None:
        metrics.update({f"best_{k}": v for k, v in best.user_attrs.get("metrics", {}).items()})
        metrics["best_trial"] = best.number
        tracker.log(tracker.parent_run_id, params={f"best.{k}": v for k, v in best.params.items()},
                    metrics=metrics, tags={"best_run_id": best.user_attrs.get("run_id", "")})
    else:
        tracker.log(tracker.parent_run_id, metrics=metrics)
    if tracker.enabled:
        tracker.log_artifacts(tracker.parent_run_id, study_artifacts(study, tracker))
    print_best(study, best, counts, cfg, tracker)


def study_artifacts(study: optuna.Study, tracker: Tracker) -> dict:
    files = {"trials.csv": lambda p: study.trials_dataframe().to_csv(p, index=False)}
    complete = ranked(study)
    if len(complete) >= 2:
        from optuna.visualization import matplotlib as ovm

        def figure(make):
            def write(path: Path) -> None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # Optuna marks these plots experimental
                    ax = make(study)
                fig = ax.figure if hasattr(ax, "figure") else np.ravel(ax)[0].figure
                fig.savefig(path, dpi=100, bbox_inches="tight")
                import matplotlib.pyplot as plt
                plt.close(fig)
            return write

        files["optimization_history.png"] = figure(ovm.plot_optimization_history)
        files["parallel_coordinate.png"] = figure(ovm.plot_parallel_coordinate)
        if len({k for t in complete for k in t.params}) >= 2:
            files["param_importances.png"] = figure(ovm.plot_param_importances)
    if complete and tracker.enabled:
        def top_curves(path: Path) -> None:
            curves = []
            for t in complete[:TOP]:
                curve = read_curve(tracker, t.user_attrs.get("run_id", ""))
                if curve is not None:
                    curves.append((f"trial {t.number}: {t.value:.4f}", curve[:, 0], curve[:, 1]))
            plots.overlaid_curves(path, curves, title=f"best {len(curves)} trials")
        files["top_cost_curves.png"] = top_curves
    return files


def read_curve(tracker: Tracker, run_id: str) -> np.ndarray | None:
    """(k, 2) iterations and costs from a trial's full-resolution cost_curve.csv artifact."""
    if not run_id:
        return None
    try:
        local = tracker.client.download_artifacts(run_id, "cost_curve.csv")
    except Exception:
        return None
    return np.loadtxt(local, delimiter=",", skiprows=1, ndmin=2)


def print_best(study, best, counts, cfg, tracker) -> None:
    out = io.StringIO()
    out.write(f"\nStudy {study.study_name!r}: {counts['complete']} complete, {counts['pruned']} pruned, "
              f"{counts['fail']} failed\n")
    if best is None:
        out.write("No trial completed, so there is no best trial.\n")
    else:
        m = best.user_attrs.get("metrics", {})
        out.write(f"Best trial {best.number}: {cfg.sweep.metric} = {best.value:.6g}"
                  + (f", val_accuracy = {m['val_accuracy']:.4f}" if "val_accuracy" in m else "") + "\n")
        for k, v in best.params.items():
            out.write(f"  {k} = {v}\n")
        top = max(ranked(study), key=lambda t: t.user_attrs.get("metrics", {}).get("val_accuracy", -1))
        if top.number != best.number and "val_accuracy" in top.user_attrs.get("metrics", {}):
            out.write(f"  (highest val_accuracy: {top.user_attrs['metrics']['val_accuracy']:.4f}, trial {top.number})\n")
        run_id = best.user_attrs.get("run_id")
        if run_id:
            out.write(f"  MLflow run {run_id} (tracking URI {cfg.tracking.uri})\n"
                      f"  reproduce: MLFLOW_TRACKING_URI={cfg.tracking.uri} python -m sweeps.reproduce {run_id}\n")
    print(out.getvalue(), end="", flush=True)
