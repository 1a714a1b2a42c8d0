"""Several objectives: a study's Pareto front, its trials tagged in MLflow, its figure, and its listing
in summary.md and the terminal (each trial with the command that reproduces it).

The front is Optuna's `study.best_trials`: the complete trials no other dominates, among the feasible
ones when the trials carry constraint values (sweeps.trial.objective.constrain).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps import plots
from sweeps.config.metrics import METRICS
from sweeps.config.objectives import WARM_FROM, feasible
from sweeps.study.best import several
from sweeps.tracking.tracker import Tracker, run_store

TAG = "pareto"  # a trial run's tag: "true" on the front, "false" off it (complete trials of several objectives)


def signed(study: optuna.Study, t: FrozenTrial) -> tuple[float, ...]:
    """The trial's values, the maximised ones negated: smaller is better in each."""
    return tuple(v if d == optuna.study.StudyDirection.MINIMIZE else -v for v, d in zip(t.values, study.directions))


def front(study: optuna.Study) -> list[FrozenTrial]:
    """The Pareto front, best in the first metric first; [] for one objective."""
    if not several(study):
        return []
    return sorted(study.best_trials, key=lambda t: (signed(study, t), t.number))


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """The complete trials: the front first, then the feasible others, then the infeasible ones,
    each group by the first metric."""
    on = {t.number for t in front(study)}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: (t.number not in on, not feasible(t), signed(study, t), t.number))


def retag(study: optuna.Study, tracker: Tracker, trials: list[FrozenTrial]) -> None:
    """pareto=true on the runs of the front's trials, false on those that were and left it (a
    resume's new trials can push earlier ones off); only the runs whose tag changes are written.
    Warm-started copies are left alone: their runs belong to the study they came from; so are runs
    in another store than the tracker's (a resume under another tracking.uri ran them)."""
    wanted = {t.user_attrs["run_id"] for t in trials if t.user_attrs.get("run_id") and
              WARM_FROM not in t.user_attrs and run_store(t.user_attrs, tracker.uri) == tracker.uri}
    tracker.retag(study.study_name, TAG, wanted)


def figure(path: Path, study: optuna.Study, names: list[str]) -> None:
    """pareto_front.png: the complete trials in the space of the study's 2 or 3 objectives."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    on = {t.number for t in front(study)}
    values = np.array([t.values for t in complete], dtype=float).reshape(-1, len(names))  # (n, k)
    plots.pareto_front(path, values, np.array([t.number in on for t in complete], dtype=bool),
                       np.array([feasible(t) for t in complete], dtype=bool), [t.number for t in complete], names,
                       minimize_first=study.directions[0] == optuna.study.StudyDirection.MINIMIZE,
                       title=f"{len(on)} of {len(complete)} complete trials on the Pareto front")


def reference_point(study: optuna.Study) -> list[float] | None:
    """Where the hypervolume is measured from: each metric's worst feasible value, a tenth of its
    range beyond (or 1 beyond, where all values are equal), so every feasible trial adds volume.
    None without a feasible complete trial."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if feasible(t)]
    if not trials:
        return None
    values = np.array([t.values for t in trials], dtype=float)  # (n, k)
    lo, hi = values.min(axis=0), values.max(axis=0)
    margin = np.where(hi > lo, (hi - lo) / 10, 1.0)
    return [float(h + m) if d == optuna.study.StudyDirection.MINIMIZE else float(low - m)
            for low, h, m, d in zip(lo, hi, margin, study.directions)]


def _value(name: str, v: float) -> str:
    return format(v, METRICS[name].fmt) if name in METRICS else f"{v:.6g}"


def _by(study: optuna.Study, names: list[str]) -> str:
    return ", ".join(f"{n} ({d.name.lower()})" for n, d in zip(names, study.directions))


def markdown(study: optuna.Study, names: list[str], reproduce) -> list[str]:
    """summary.md's section: the front's trials, their values and runs, and how to reproduce each.
    reproduce: trial -> the command."""
    trials = front(study)
    if not trials:
        return ["No feasible trial completed, so there is no Pareto front.", ""]
    extra = [] if "val_accuracy" in names else ["val_accuracy"]
    why = f"By {_by(study, names)}: no other trial is at least as good in every metric and better in one."
    lines = [f"## Pareto front: {len(trials)} trials", "", why, "",
             "| trial | " + " | ".join(names + extra) + " | run |", "|---:|" + "---:|" * len(names + extra) + "---|"]
    for t in trials:
        m = t.user_attrs.get("metrics", {})
        cells = [_value(n, v) for n, v in zip(names, t.values)] + [_value(n, m[n]) if n in m else "" for n in extra]
        lines.append(f"| {t.number} | " + " | ".join(cells) + f" | `{t.user_attrs.get('run_id', '')}` |")
    commands = [f"{reproduce(t)}  # trial {t.number}"
                for t in trials if t.user_attrs.get("run_id")]
    if commands:
        lines += ["", "Reproduce each bit for bit:", "", "```sh", *commands, "```"]
    return lines + [""]


def terminal(study: optuna.Study, names: list[str], reproduce) -> str:
    """The front as the sweep prints it: each trial's values, params and reproduce command."""
    trials = front(study)
    if not trials:
        return "No feasible trial completed, so there is no Pareto front.\n"
    out = [f"Pareto front: {len(trials)} trials by {_by(study, names)}"]
    for t in trials:
        m = t.user_attrs.get("metrics", {})
        shown = ", ".join(f"{n} = {_value(n, v)}" for n, v in zip(names, t.values))
        if "val_accuracy" in m and "val_accuracy" not in names:
            shown += f", val_accuracy = {m['val_accuracy']:.4f}"
        out.append(f"  trial {t.number}: {shown}")
        out.append("    " + ", ".join(f"{k} = {v}" for k, v in t.params.items()))
        if t.user_attrs.get("run_id"):
            out.append(f"    reproduce: {reproduce(t)}")
    return "\n".join(out) + "\n"
