"""After the workers: the study's summary on the parent run, and the best trial on the terminal.

Which figures are drawn where, and what is left to Optuna, is measured in benchmarks/bench_figures.py.
"""

from __future__ import annotations

import csv
import functools
import html
import importlib.util
import io
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import optuna
from omegaconf import DictConfig
from optuna.trial import FrozenTrial, TrialState

from sweeps import plots
from sweeps.config.metrics import METRICS
from sweeps.config.objectives import feasible, metric_names, spelled
from sweeps.record import Confirmation, confirmation, rank
from sweeps.report import pareto
from sweeps.study.best import best_trial, several
from sweeps.tracking.tracker import Tracker, run_store
from sweeps.urls import is_server, model_training_view, redact

logger = logging.getLogger(__name__)

TOP = 5  # the best trials: their cost curves overlaid on the parent run, their decision boundaries
# A parent run's tag, set once its summary is whole: an invocation that finds the study complete
# writes the summary of a last parent run without it (a kill, a signal or a lost store cut it short)
WHOLE = "nnsweeps.summary"


def top_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best trials, at most TOP, best first: their cost curves are overlaid on the parent run
    and their decision boundaries drawn. The Pareto front's for several objectives; else the
    feasible complete trials, or all of them if none is."""
    if several(study):
        return pareto.front(study)[:TOP]
    complete = ranked(study)
    return ([t for t in complete if feasible(t)] or complete)[:TOP]


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """The complete trials, best first: feasible ones before those that break a constraint (for
    several objectives, the Pareto front first: sweeps.report.pareto.ranked)."""
    if several(study):
        return pareto.ranked(study)
    return rank(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), study.directions)


def finish_sweep(study: optuna.Study, tracker: Tracker, cfg: DictConfig, extra: Sequence[Callable[[], Any]] = (),
                 run_tasks: Callable[[list], Any] = lambda tasks: [task() for task in tasks],
                 optuna_task: Callable[[], Any] | None = None, notes: Sequence[str] = ()) -> None:
    """The parent run's metrics, params and files (for several objectives, the Pareto front's tags
    on the trial runs), then the best trial or the front on the terminal. The files
    are written by run_tasks([...]), which may run all but the first task in other processes
    (sweeps.runner.pool.at_once): this process writes its files and then runs the `extra` tasks
    (the session's decision boundaries), while `optuna_task`, if the session gives one, draws
    Optuna's figures (optuna_artifacts) elsewhere. `notes`: what summary.md says besides the caveats
    (why the sweep stopped early)."""
    counts = trial_counts(study)
    best = best_trial(study)
    metrics = {f"trials_{k}": v for k, v in counts.items()}
    if best is not None:
        metrics.update({f"best_{k}": v for k, v in best.user_attrs.get("metrics", {}).items()})
        metrics["best_trial"] = best.number
        tracker.log(tracker.parent_run_id, params={f"best.{k}": v for k, v in best.params.items()},
                    metrics=metrics, tags={"best_run_id": best.user_attrs.get("run_id", "")})
    else:
        if several(study):
            front = pareto.front(study)
            metrics["pareto_trials"] = len(front)
            pareto.retag(study, tracker, front)
        tracker.log(tracker.parent_run_id, metrics=metrics)
    if tracker.enabled:
        files = study_artifacts(study, tracker, cfg, optuna_figures=optuna_task is None, notes=notes)

        def here() -> None:
            tracker.log_artifacts(tracker.parent_run_id, files)
            for task in extra:
                task()

        out = run_tasks([here, *([optuna_task] if optuna_task is not None else [])])
        for folder in out[1:]:  # the figures the optuna task drew into a folder of its own
            try:
                tracker.log_folder(tracker.parent_run_id, Path(folder))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        tracker.log(tracker.parent_run_id, tags={WHOLE: "whole"})
    print_best(study, cfg)
    table = one_parameter_table(study)
    if table is not None:
        logger.info("\n" + table[1].split("\n", 2)[2].removesuffix("\n"))  # the rows, without the title
    if tracker.enabled:
        logger.info(ui_lines(tracker).removesuffix("\n"))


def ui_lines(tracker: Tracker) -> str:
    """Where the sweep's experiment opens in MLflow's UI in its model-training view (its GenAI view
    is a new browser's default), and for a local store the command that serves it."""
    out = f"MLflow UI, model-training view: {model_training_view(tracker.uri, tracker.experiment_id)}\n"
    if not is_server(tracker.uri):
        out += f"  served by: mlflow ui --backend-store-uri {redact(tracker.uri)}\n"
    return out


def trial_counts(study: optuna.Study) -> dict[str, int]:
    return {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
            for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}


def reproduce_command(uri: str, run_id: str) -> str:
    return f"MLFLOW_TRACKING_URI={uri} python -m sweeps.reproduce {run_id}"


def reproduce_trial(uri: str, t: FrozenTrial) -> str:
    """The command that reproduces trial t, against the store its run is in: `uri`, the sweep's,
    unless a resume under another tracking.uri ran it."""
    return reproduce_command(run_store(t.user_attrs, uri), t.user_attrs["run_id"])


def optuna_artifacts(study: optuna.Study, metric: str | Sequence[str]) -> dict:
    """The parent run's figures drawn by Optuna (history, importances, slice; for several objectives
    the hypervolume history): kept apart, since the session has them drawn by an idle worker
    process while this one writes the rest. metric: the name, or the names of several."""
    if several(study):
        point = pareto.reference_point(study)
        return {} if point is None else {"hypervolume_history.png": lambda p: hypervolume_figure(p, study, point)}
    metric = metric if isinstance(metric, str) else metric[0]
    complete = ranked(study)
    if len(complete) < 2:
        return {}
    files = {"optimization_history.png": lambda p: history_figure(p, study, metric),
             "slice.png": lambda p: slice_figure(p, study, metric)}
    if len({k for t in complete for k in t.params}) >= 2:
        files["param_importances.png"] = lambda p: importance_figure(p, study, metric, len(complete))
    return files


def study_artifacts(study: optuna.Study, tracker: Tracker, cfg: DictConfig | None = None,
                    optuna_figures: bool = True, notes: Sequence[str] = ()) -> dict:
    """The parent run's files: trials.csv, summary.md, the PNG plots (matplotlib; Optuna's unless
    `optuna_figures` is false) and, when plotly is installed, Optuna's interactive versions in one
    study_plots.html. For several objectives, pareto_front.png instead of the parallel coordinates."""
    multi = several(study)
    names = metric_names(cfg.sweep) if cfg is not None else (
        [f"objective {i}" for i in range(len(study.directions))] if multi else ["objective"])
    metric = spelled(names)
    uri = cfg.tracking.uri if cfg is not None else tracker.uri
    files = {"trials.csv": lambda p: write_trials(p, study),
             "summary.md": lambda p: p.write_text(summary_markdown(
                 study, names, uri, [*caveats(cfg), *notes], cfg is None or cfg.dataset.test_fraction > 0))}
    complete = ranked(study)
    top = top_trials(study)
    if optuna_figures:
        files.update(optuna_artifacts(study, names))
    if multi and len(names) in (2, 3) and complete:
        files["pareto_front.png"] = lambda p: pareto.figure(p, study, names)
    # the best trial is red in one figure and leads the other: none is when every trial breaks a constraint
    best = best_trial(study)
    if not multi and len(complete) >= 2:
        minimize = study.direction == optuna.study.StudyDirection.MINIMIZE
        broken = sum(not feasible(t) for t in complete)
        red = f"red: the best{' feasible' if broken else ''}, trial {best.number}" if best is not None \
            else "none feasible, so no best"
        # ours: Optuna's squeezes the default space's 7 axes until their labels overlap
        files["parallel_coordinate.png"] = lambda p: plots.parallel_coordinates(
            p, [(t.value, t.params) for t in complete], parameter_axes(complete), metric=metric,
            minimize=minimize, title=f"{len(complete)} complete trials"
            + (f", {broken} breaking a constraint" if broken else "") + f"; {red}",
            red=None if best is None else [t.number for t in complete].index(best.number))
    if len(complete) >= 2 and importlib.util.find_spec("plotly") is not None:
        files["study_plots.html"] = lambda p: p.write_text(interactive_html(study, names))
    table = one_parameter_table(study)
    if table is not None:
        files[table[0]] = lambda p: p.write_text(table[1])
    if top and tracker.enabled:
        def top_curves(path: Path) -> None:
            curves = []
            for t in top:
                curve = read_curve(tracker, t.user_attrs.get("run_id", ""))
                if curve is not None:
                    shown = ", ".join(f"{n} {v:.4g}" for n, v in zip(names, t.values)) if multi \
                        else f"{metric} {t.value:.4f}"
                    curves.append((f"trial {t.number}: {shown}", curve[:, 0], curve[:, 1]))
            if multi:
                title = f"{len(curves)} trials of the Pareto front by {metric}"
            elif best is None:
                title = f"{len(curves)} trials by {metric}, none feasible"
            else:
                kind = " feasible" if any(t.constraints for t in top) else ""
                title = f"the {len(curves)} best{kind} trials by {metric}"
            plots.overlaid_curves(path, curves, title=title)
        files["top_cost_curves.png"] = top_curves
    return files


def write_trials(path: Path, study: optuna.Study) -> None:
    """trials.csv: a row per trial; its number, state, value, times and run, then one column per
    sampled param and one per metric (METRICS), numbers written as numbers, empty where a trial has
    none (a param it did not sample, the metrics of a failed trial). Several objectives give
    values_0, values_1, ... (Optuna's trials_dataframe names) and a pareto column; constraints a
    feasible column."""
    trials = study.get_trials(deepcopy=False)
    params = list(dict.fromkeys(k for t in trials for k in t.params))  # in the order first sampled
    n_obj = len(study.directions)
    on = {t.number for t in pareto.front(study)}
    constrained = any(t.constraints for t in trials)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["number", "state", *(["value"] if n_obj == 1 else [f"values_{i}" for i in range(n_obj)]),
                      "datetime_start", "datetime_complete", "seconds", *params, *METRICS, "run_id",
                      *(["pareto"] if n_obj > 1 else []), *(["feasible"] if constrained else [])])
        for t in trials:
            m = t.user_attrs.get("metrics", {})
            seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
                if t.datetime_complete and t.datetime_start else None
            values = t.values if t.values is not None else [None] * n_obj
            complete = t.state == TrialState.COMPLETE
            out.writerow([t.number, t.state.name, *values, t.datetime_start or "", t.datetime_complete or "",
                          seconds, *(t.params.get(k) for k in params), *(m.get(k) for k in METRICS),
                          t.user_attrs.get("run_id", ""),
                          *([str(t.number in on).lower() if complete else ""] if n_obj > 1 else []),
                          *([str(feasible(t)).lower() if complete else ""] if constrained else [])])


def optuna_figure(path: Path, draw: Callable[[], Any]) -> Any:
    """One of Optuna's matplotlib figures (draw() -> its Axes) written to path; returns the Figure.
    Drawn inside an rc_context, since Optuna sets pyplot's style for the whole process (a script's
    or a notebook's), and closed, since pyplot keeps every figure it made."""
    import matplotlib
    import matplotlib.pyplot as plt  # deferred: pyplot for Optuna's figures only, at the sweep's end

    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the functions are experimental; few trials give rough importances
        fig = draw().figure
        try:
            fig.savefig(path, dpi=100, bbox_inches="tight")
        finally:
            plt.close(fig)
    return fig


def slice_figure(path: Path, study: optuna.Study, metric: str) -> Any:
    """slice.png: Optuna's slice plot, the metric against each sampled parameter, its x tick labels
    made legible (plots.legible_x_ticks): its narrow panels' own overlap."""
    from optuna.visualization.matplotlib import plot_slice

    categorical = {name for name, spec in parameter_axes(ranked(study)) if "choices" in spec}

    def draw():
        drawn = plot_slice(study, target_name=metric)
        axes = list(drawn.flat) if hasattr(drawn, "flat") else [drawn]  # an array of Axes, one per parameter
        for ax in axes:
            plots.legible_x_ticks(ax, tilted=ax.get_xlabel() in categorical)
        return axes[0]  # any gives the Figure

    return optuna_figure(path, draw)


# the file a one-parameter sweep's table goes to, by its parameter (the course's table by default)
TABLE_FILES = {"model.units": "hidden_units_table.md"}


def one_parameter_table(study: optuna.Study) -> tuple[str, str] | None:
    """(file name, markdown) of a sweep that samples one parameter, as the course tabulates it: each
    value against the training and validation accuracy of its trial; None for other sweeps."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.params]
    names = {k for t in complete for k in t.params}
    if len(names) != 1:
        return None
    (name,) = names
    rows = [f"| {name} | train accuracy | validation accuracy | trial |", "|---:|---:|---:|---:|"]
    for t in sorted(complete, key=lambda t: (t.params[name], t.number)):
        m = t.user_attrs.get("metrics", {})
        cell = lambda k: f"{m[k] * 100:.2f} %" if k in m else ""  # noqa: E731
        rows.append(f"| {t.params[name]} | {cell('train_accuracy')} | {cell('val_accuracy')} | {t.number} |")
    title = "Hidden units" if name == "model.units" else name
    text = f"# {title} of study `{study.study_name}`\n\n" + "\n".join(rows) + "\n"
    return TABLE_FILES.get(name, f"{name}_table.md"), text


def history_figure(path: Path, study: optuna.Study, metric: str) -> Any:
    """optimization_history.png: Optuna's figure of each trial's value and the best so far."""
    from optuna.visualization.matplotlib import plot_optimization_history

    return optuna_figure(path, lambda: plot_optimization_history(study, target_name=metric))


def hypervolume_figure(path: Path, study: optuna.Study, reference_point: list[float]) -> Any:
    """hypervolume_history.png: Optuna's figure of the volume the feasible front dominates, up to
    reference_point (sweeps.report.pareto.reference_point), after each trial: it grows while the
    search still finds better trade-offs."""
    from optuna.visualization.matplotlib import plot_hypervolume_history

    def draw():
        ax = plot_hypervolume_history(study, reference_point)
        ax.set_title("hypervolume of the Pareto front, reference point ("
                     + ", ".join(f"{v:.4g}" for v in reference_point) + ")")
        return ax

    return optuna_figure(path, draw)


def importance_figure(path: Path, study: optuna.Study, metric: str, n_complete: int, quantile: float = 0.1) -> Any:
    """param_importances.png, Optuna's figure, by PED-ANOVA (its default evaluator, and a fast one):
    how much each parameter's distribution in the best `quantile` of the complete trials differs
    from all of them. Left out, with a note, if the evaluator fails: the sweep's other files matter
    more. Returns the Figure, or None.

    Importing optuna.importance imports scikit-learn's ensemble too (for its fANOVA and MDI
    evaluators), about a second: paid in the idle worker process that draws Optuna's figures
    while this one logs the rest (sweeps.runner.pool.at_once). No module is hidden to spare it:
    that left those evaluators broken for the rest of the process, a user's notebook too."""
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization.matplotlib import plot_param_importances

    def draw():
        ax = plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator(target_quantile=quantile),
                                    target_name=metric)
        ax.set_title("", loc="left")  # Optuna's, which ours would be drawn over
        ax.set_title(f"parameter importances (PED-ANOVA: the best {quantile:.0%} of {n_complete} complete trials)")
        return ax

    try:
        return optuna_figure(path, draw)
    except Exception as err:
        path.unlink(missing_ok=True)
        logger.warning(f"param_importances.png left out: {type(err).__name__}: {err}")
        return None


def parameter_axes(trials: list[FrozenTrial]) -> list[tuple[str, dict]]:
    """(name, spec) per sampled parameter, in the order the trials first sampled them."""
    axes: dict[str, dict] = {}
    for t in sorted(trials, key=lambda t: t.number):
        for name, dist in t.distributions.items():
            if name in axes:
                continue
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                axes[name] = {"choices": list(dist.choices)}
            else:
                axes[name] = {"low": dist.low, "high": dist.high, "log": dist.log}
    return list(axes.items())


def interactive_html(study: optuna.Study, metric: str | Sequence[str]) -> str:
    """Optuna's plotly figures on one page, plotly.js embedded once so it opens offline. metric:
    the name, or the names of several (then the Pareto front and the hypervolume history)."""
    import optuna.visualization as vis

    names = [metric] if isinstance(metric, str) else list(metric)
    if several(study):
        figures = [vis.plot_pareto_front(study, target_names=names)] if len(names) in (2, 3) else []
        if (point := pareto.reference_point(study)) is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                figures.append(vis.plot_hypervolume_history(study, point))
    else:
        metric = names[0]
        figures = [vis.plot_optimization_history(study, target_name=metric),
                   vis.plot_parallel_coordinate(study, target_name=metric)]
        if len({k for t in ranked(study) for k in t.params}) >= 2:
            figures.append(vis.plot_param_importances(study, target_name=metric))
        figures.append(vis.plot_intermediate_values(study))
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Study {html.escape(study.study_name)}"
            f"</title></head><body>{''.join(parts)}</body></html>")


def caveats(cfg: DictConfig | None) -> list[str]:
    """What a reader of the numbers must know: a validation set that is the training set."""
    if cfg is not None and cfg.dataset.val_fraction == 0:
        return ["The val_* metrics are computed on the training set: dataset.val_fraction=0 left no validation set."]
    return []


def constraint_notes(study: optuna.Study) -> list[str]:
    """With sweep.constraints: which, and how many complete trials break one (the trials carry them)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    keys = list(dict.fromkeys(k for t in complete for k in t.constraints))
    if not keys:
        return []
    broken = sum(not feasible(t) for t in complete)
    best = "Pareto front" if several(study) else "best trial"
    return [f"Constraints {', '.join(keys)}: the {best} comes from the feasible trials; {broken} of the "
            f"{len(complete)} complete trials break one (their runs are tagged feasible=false)."]


def no_best(study: optuna.Study) -> str:
    """Why there is no best trial."""
    if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return "No feasible trial completed, so there is no best trial."
    return "No trial completed, so there is no best trial."


def confirmation_markdown(c: Confirmation | None, test_split: bool = True) -> list[str]:
    """summary.md's lines on the confirmation (sweeps.runner.confirm): the verdict and a row per
    confirmed config; without one, that the score is the search's own."""
    if c is None:
        return ["**Not confirmed** (sweep.confirm.top=0): the best trial's score below is the one the search "
                "picked it by, biased upward." + ("" if test_split else " No test score: dataset.test_fraction=0."),
                ""]
    tests = c.rows[0].test_mean is not None
    out = ["## Confirmed", "", f"**{c.verdict}**", "",
           f"The {len(c.rows)} best configs of {c.complete} complete trials, each trained again with "
           f"{len(c.rows[0].seeds)} fresh seeds on the same split; mean and 95% interval.", "",
           f"| trial | search {c.rows[0].metric} | {c.rows[0].metric} | 95% interval |"
           + (f" {c.rows[0].test_metric} | 95% interval |" if tests else ""),
           "|---:|---:|---:|---|" + ("---:|---|" if tests else "")]
    for r in c.rows:
        out.append(f"| {r.number} | {r.search_value:.4g} | {r.val_mean:.4g} | [{r.val_ci[0]:.4g}, {r.val_ci[1]:.4g}] |"
                   + (f" {r.test_mean:.4g} | [{r.test_ci[0]:.4g}, {r.test_ci[1]:.4g}] |" if tests else ""))
    return out + [""]


def summary_markdown(study: optuna.Study, metric: str | Sequence[str], uri: str, notes: Sequence[str] = (),
                     test_split: bool = True) -> str:
    """summary.md: the counts, the confirmation, the best trial with its params and reproduce
    command, the top trials; for several metrics (a list), the Pareto front's trials with theirs.
    test_split: whether the data held out a test split (dataset.test_fraction)."""
    counts = trial_counts(study)
    best = best_trial(study)
    names = [metric] if isinstance(metric, str) else list(metric)
    metric = spelled(names)
    notes = [*notes, *constraint_notes(study)]
    lines = [f"# Sweep of study `{study.study_name}`", "", *(f"**Note:** {n}\n" for n in notes),
             "| complete | pruned | failed | total |", "|---:|---:|---:|---:|",
             f"| {counts['complete']} | {counts['pruned']} | {counts['fail']} | {len(study.trials)} |", ""]
    if several(study):
        return "\n".join(lines + pareto.markdown(study, names, functools.partial(reproduce_trial, uri)))
    if best is None:
        lines += [no_best(study), ""]
        return "\n".join(lines)
    m = best.user_attrs.get("metrics", {})
    run_id = best.user_attrs.get("run_id", "")
    lines += confirmation_markdown(confirmation(study), test_split)
    lines += [f"## Best trial: {best.number}", "",
              f"{metric} = {best.value:.6g} ({study.direction.name.lower()})"
              + "".join(f", {k} = {m[k]:.4g}" for k in METRICS if k in m and k != metric), ""]
    lines += ["| param | value |", "|---|---|", *(f"| `{k}` | `{v}` |" for k, v in best.params.items()), ""]
    if run_id:
        lines += [f"MLflow run `{run_id}` in {run_store(best.user_attrs, uri)}. Reproduce it bit for bit:", "",
                  "```sh", reproduce_trial(uri, best), "```", ""]
    top = ranked(study)[:TOP]
    lines += [f"## Top {len(top)} trials by {metric}", "", f"| trial | {metric} | val_accuracy | run |",
              "|---:|---:|---:|---|"]
    for t in top:
        acc = t.user_attrs.get("metrics", {}).get("val_accuracy")
        lines.append(f"| {t.number} | {t.value:.6g} | {'' if acc is None else f'{acc:.4f}'} | "
                     f"`{t.user_attrs.get('run_id', '')}` |")
    return "\n".join(lines) + "\n"


def read_curve(tracker: Tracker, run_id: str) -> np.ndarray | None:
    """(k, 2) iterations and costs from a trial's full-resolution cost_curve.csv artifact."""
    if not run_id:
        return None
    try:
        with tracker.artifact_file(run_id, "cost_curve.csv") as path:
            return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except Exception:  # a missing curve leaves its line out, not the figure
        return None


def print_best(study: optuna.Study, cfg: DictConfig) -> None:
    """The counts, the best trial with its params, its run and the command that reproduces it; for
    several metrics, each trial of the Pareto front with its own."""
    counts, best = trial_counts(study), best_trial(study)
    names = metric_names(cfg.sweep)
    out = io.StringIO()
    out.write(f"\nStudy {study.study_name!r}: {counts['complete']} complete, {counts['pruned']} pruned, "
              f"{counts['fail']} failed\n")
    for note in [*caveats(cfg), *constraint_notes(study)]:
        out.write(f"Note: {note}\n")
    if several(study):
        out.write(pareto.terminal(study, names, functools.partial(reproduce_trial, cfg.tracking.uri)))
    elif best is None:
        out.write(no_best(study) + "\n")
    else:
        m, metric = best.user_attrs.get("metrics", {}), names[0]
        out.write(f"Best trial {best.number}: {metric} = {best.value:.6g}"
                  + (f", val_accuracy = {m['val_accuracy']:.4f}"
                     if "val_accuracy" in m and metric != "val_accuracy" else "") + "\n")
        for k, v in best.params.items():
            out.write(f"  {k} = {v}\n")
        top = max([t for t in ranked(study) if feasible(t)],
                  key=lambda t: t.user_attrs.get("metrics", {}).get("val_accuracy", -1))
        if top.number != best.number and "val_accuracy" in top.user_attrs.get("metrics", {}):
            out.write(f"  (highest val_accuracy: {top.user_attrs['metrics']['val_accuracy']:.4f}, trial {top.number})\n")
        run_id = best.user_attrs.get("run_id")
        if run_id:
            out.write(f"  MLflow run {run_id} (tracking URI {run_store(best.user_attrs, cfg.tracking.uri)})\n"
                      f"  reproduce: {reproduce_trial(cfg.tracking.uri, best)}\n")
        if (c := confirmation(study)) is not None:
            out.write(f"Confirmed: {c.verdict}\n")
    logger.info(out.getvalue().removesuffix("\n"))
