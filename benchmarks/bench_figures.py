"""The sweep's figures ("ours": sweeps.plots where hand-written, else Optuna's as sweeps.report.summary draws
them) against the library's plain way: CPU time, and its share of a sweep. It decided which stay hand-written:
the per-trial PNGs and the parallel coordinates (benchmarks/RESULTS.md, written by this script).

    .venv/bin/python benchmarks/bench_figures.py [--repeat N] [--figs DIR]

CPU time (time.process_time), medians of --repeat (5), all from this one run. --figs DIR: each figure, both ways.
1. Per trial: plots.cost_curve and plots.decision_boundary (cached layout, no savefig) vs the same figure built
   afresh on a Figure and written by fig.savefig(path, dpi=100); a [2, 4, 1] tanh net trained on flower (4000
   iterations, validation cost every 100). cold: the first call in a fresh process that has imported nncore and
   sweeps.plots (as a worker has); warm: the median of 10 * N later calls, each with its own title.
2. Per sweep: the figures as summary.study_artifacts draws them vs optuna.visualization.matplotlib's plot_* +
   savefig, on an in-memory study of 30 complete trials over conf/search_space/default.yaml (synthetic values).
   Each in a fresh process that has imported sweeps.report.summary (as the sweep's parent has), timed with the
   imports it triggers: pyplot, Optuna's plots, optuna.importance with sklearn.ensemble or, hidden from
   the import (what summary.import_importance did until it was removed, for breaking fANOVA), without.
3. The imports alone, each in a fresh process after `import optuna` (information).
Verdict "keep ours" where the library costs over 20 ms more per trial figure, 0.3 s more per sweep figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from results import recorded  # benchmarks/results.py: a script's own folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
METRIC, N_TRIALS, WORKERS, TOP = "val_cost", 30, 2, 5  # the default sweep: conf/sweep, conf/tracking
TRIAL_MS, SWEEP_MS, TRAINING_S = 20.0, 300.0, 5.0  # thresholds; a default sweep's training CPU
SWEEP_FIGURES = ("optimization_history", "parallel_coordinates", "param_importances")


# ---- the library's way: each per-trial figure built afresh and written by savefig ------------------
def plain_cost_curve(path, iterations, costs, title="", val=None, val_label="val_cost"):
    """plots.cost_curve's figure (a validation cost on the same axis), without cache or _write_png."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    fig = Figure(figsize=(6, 3.5), dpi=100, facecolor="white")
    ax = fig.add_subplot()
    ok = np.isfinite(costs)
    lines = ax.plot(iterations[ok], costs[ok], lw=1.2, label="training cost")
    if val is not None and len(val[0]):
        lines += ax.plot(val[0], val[1], "o-", ms=3.5, lw=1, color="#ff7f0e", label=f"validation {val_label}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.set_title(title, fontsize=10)
    ax.set(xlabel="iteration")
    ax.grid(alpha=0.3)
    ax.legend(handles=lines, fontsize=8, loc="best")
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.14, top=0.9)
    fig.savefig(path, dpi=100)


def plain_decision_boundary(path, predict, X, y, X_val, y_val, title="", class_names=(), feature_names=("x1", "x2"),
                            grid=100):
    """plots.decision_boundary's figure, without cache or _Blit."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from sweeps.plots import CLASS_COLOURS
    lo, hi = np.hstack([X, X_val]).min(axis=1), np.hstack([X, X_val]).max(axis=1)
    pad = 0.1 * (hi - lo) + 0.25
    xs, ys = (np.linspace(lo[i] - pad[i], hi[i] + pad[i], grid) for i in (0, 1))
    xx, yy = np.meshgrid(xs, ys)
    Z = np.asarray(predict(np.vstack([xx.ravel(), yy.ravel()]))).reshape(xx.shape)
    k = int(max(Z.max(), y.max(), y_val.max())) + 1
    cmap = ListedColormap(CLASS_COLOURS[:max(k, 2)])
    fig = Figure(figsize=(5, 4.2), dpi=100, facecolor="white")
    ax = fig.add_subplot()
    ax.imshow(Z, cmap=cmap, vmin=-0.5, vmax=max(k, 2) - 0.5, alpha=0.3, origin="lower", aspect="auto",
              extent=(xs[0], xs[-1], ys[0], ys[-1]), interpolation="nearest")
    style = {"cmap": cmap, "vmin": -0.5, "vmax": max(k, 2) - 0.5, "s": 14, "edgecolors": "k", "linewidths": 0.4}
    ax.scatter(X[0], X[1], c=y, marker="o", **style)
    ax.scatter(X_val[0], X_val[1], c=y_val, marker="^", **style)
    handles = [ax.scatter([], [], color=cmap(i), edgecolors="k", linewidths=0.4, s=14,
                          label=class_names[i] if i < len(class_names) else str(i)) for i in range(k)]
    handles += [ax.scatter([], [], marker=m, facecolors="none", edgecolors="k", linewidths=0.6, s=14, label=label)
                for m, label in (("o", "train"), ("^", "validation"))]
    ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.8)
    ax.set(xlabel=feature_names[0], ylabel=feature_names[1])
    ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.92)
    fig.savefig(path, dpi=100)


# ---- what is drawn ----------------------------------------------------------------------------------
def trial_inputs(data_dir: Path):
    """draw(which, variant, path, title), from the network and curve train() saved."""
    from nncore import Network, load_dataset
    from sweeps import plots
    data = load_dataset("flower", seed=0, val_fraction=0.2)
    net = Network.load(data_dir / "net.npz")
    c = np.load(data_dir / "curve.npz")
    boundary = {"ours": plots.decision_boundary, "library": plain_decision_boundary}
    curve = {"ours": plots.cost_curve, "library": plain_cost_curve}

    def draw(which, variant, path, title):
        if which == "cost_curve":
            curve[variant](path, c["it"], c["costs"], title=title, val=(c["vit"], c["v"]), val_label=METRIC)
        else:
            boundary[variant](path, net.predict, data.X_train, data.y_train, data.X_val, data.y_val, title=title,
                              class_names=data.class_names, feature_names=data.feature_names)
    return draw


def make_study():
    """30 complete trials over the default search space, their values a function of lr and iterations."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    def leaves(node, prefix=""):
        for key, spec in node.items():
            yield from [(prefix + key, spec)] if "type" in spec else leaves(spec, f"{prefix}{key}.")
    kinds = {"float": FloatDistribution, "int": IntDistribution}
    space = {name: CategoricalDistribution(s["choices"]) if s["type"] == "categorical" else kinds[s["type"]](
        s["low"], s["high"], log=s.get("log", False), step=s.get("step", 1 if s["type"] == "int" else None))
        for name, s in leaves(default_space())}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    rng = np.random.default_rng(0)
    for _ in range(N_TRIALS):  # a val_cost-like value, best near lr 0.7 and many iterations
        trial = study.ask(space)
        lr, it = trial.params.get("train.learning_rate", 0.7), trial.params.get("train.iterations", 8000)
        study.tell(trial, 0.25 + 0.1 * np.log(lr / 0.7) ** 2 + 200 / it ** 1.2 + 0.03 * rng.random())
    return study


def sweep_figure(name: str, variant: str, study, path: Path) -> None:
    """One per-sweep figure as summary.study_artifacts draws it (ours), or Optuna's + savefig."""
    from sweeps import plots
    from sweeps.report import summary
    if variant == "ours":
        complete = summary.ranked(study)
        if name == "optimization_history":
            summary.history_figure(path, study, METRIC)  # Optuna's, since this bench's first run
        elif name == "parallel_coordinates":
            title = f"{len(complete)} complete trials; red: the best, trial {complete[0].number}"
            plots.parallel_coordinates(path, [(t.value, t.params) for t in complete], summary.parameter_axes(complete),
                                       metric=METRIC, minimize=True, title=title)
        else:
            summary.importance_figure(path, study, METRIC, len(complete))
        return
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vm
    if variant == "library, sklearn hidden":  # what hiding it would spare: the summary no longer does
        sys.modules["sklearn.ensemble"] = None
    plot = {"optimization_history": vm.plot_optimization_history, "parallel_coordinates": vm.plot_parallel_coordinate,
            "param_importances": vm.plot_param_importances}[name]
    fig = plot(study, target_name=METRIC).figure
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def default_space() -> dict:
    """conf/search_space/default.yaml as read alone: its bounds that interpolate the train preset's
    range take their defaults."""
    from omegaconf import OmegaConf
    return OmegaConf.to_container(OmegaConf.load(ROOT / "conf/search_space/default.yaml"), resolve=True)


def child(spec: dict) -> float:
    """One cold measurement in this (fresh) process: set up untimed, then the CPU seconds of the run."""
    warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning, PED-ANOVA's few-trials warning
    out = Path(spec["out"])
    if spec["kind"] == "import":
        import optuna  # noqa: F401
        start = time.process_time()
        exec(spec["what"])
    elif spec["kind"] == "trial":
        draw = trial_inputs(Path(spec["data"]))
        start = time.process_time()
        draw(spec["what"], spec["variant"], out / f"{spec['what']}_{spec['variant']}.png", "flower [4] tanh lr=1.2")
    else:
        import sweeps.report.summary  # noqa: F401  (the sweep's parent has it)
        study = make_study()
        tag = spec["variant"].replace(", ", "_").replace(" ", "_")
        start = time.process_time()
        for name in SWEEP_FIGURES if spec["what"] == "all three" else [spec["what"]]:
            sweep_figure(name, spec["variant"], study, out / f"{name}_{tag}.png")
    return time.process_time() - start


def cold(spec: dict, repeat: int, figs: Path | None, tmp: Path) -> float:
    """Median CPU ms of `repeat` fresh processes (the first one's figures written to figs)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    times = [float(subprocess.run([sys.executable, __file__, "--child", json.dumps(
        {**spec, "out": str(figs if figs and r == 0 else tmp)})], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True).stdout.split()[-1]) * 1e3 for r in range(repeat)]
    return statistics.median(times)


def train(tmp: Path) -> None:
    """The per-trial figures' data: a trained network and its curves, saved to tmp for the children."""
    from nncore import Network, fit, load_dataset
    data = load_dataset("flower", seed=0, val_fraction=0.2)
    net = Network.create([2, 4, 1], activation="tanh", seed=0)
    val = []  # (iteration, validation cost) every 100 iterations, as the sweep's pruning reports it
    result = fit(net, data.X_train, data.Y_train, learning_rate=1.2, iterations=4000,
                 callback=lambda it, _: val.append((it, net.cost(data.X_val, data.Y_val))) if it % 100 == 0 else None)
    vit, v = np.array([*val, (result.iterations_run, net.cost(data.X_val, data.Y_val))]).T
    np.savez(tmp / "curve.npz", it=result.cost_iterations, costs=result.costs, vit=vit, v=v)
    net.save(tmp / "net.npz")


def trial_rows(repeat: int, figs: Path | None, tmp: Path) -> list:
    """(section, figure, ours ms, library ms, limit ms) per per-trial figure, cold and warm."""
    variants, figures = ("ours", "library"), ("cost_curve", "decision_boundary")
    rows = [("per trial", f"{w}, cold", *(cold({"kind": "trial", "what": w, "variant": x, "data": str(tmp)}, repeat,
                                               figs, tmp) for x in variants), TRIAL_MS) for w in figures]
    draw, warm = trial_inputs(tmp), {(w, x): [] for w in figures for x in variants}
    for what, variant in warm:
        draw(what, variant, tmp / "warmup.png", "warm-up")  # the cold call
    for r in range(repeat):  # blocks of 10 calls, alternated; each block starts without another's garbage
        for (what, variant), times in warm.items():
            gc.collect()
            for i in range(10):
                start = time.process_time()
                draw(what, variant, tmp / f"{what}_{variant}.png", f"flower [4] tanh lr={1.2 + 0.01 * i:.3g} call {r}")
                times.append((time.process_time() - start) * 1e3)
    return rows + [("per trial", f"{w}, warm", *(statistics.median(warm[w, x]) for x in variants), TRIAL_MS)
                   for w in figures]


def sweep_rows(repeat: int, figs: Path | None, tmp: Path) -> list:
    """The same per per-sweep figure and for all three, then the imports alone (limit None)."""
    rows = []
    for what in (*SWEEP_FIGURES, "all three"):
        lib = ["library"] + (["library, sklearn hidden"] if what in ("param_importances", "all three") else [])
        ms = {x: cold({"kind": "sweep", "what": what, "variant": x}, repeat, figs, tmp) for x in ["ours", *lib]}
        rows += [("per sweep", what + ("" if x == "library" else ", sklearn hidden"), ms["ours"], ms[x], SWEEP_MS)
                 for x in lib]
    for label, ours, lib in (
            ("sweeps.plots | optuna.visualization.matplotlib", "import sweeps.plots",
             "import optuna.visualization.matplotlib"),
            ("optuna.importance: sklearn hidden | not",
             "sys.modules['sklearn.ensemble'] = None; import optuna.importance", "import optuna.importance")):
        rows.append(("import", label, *(cold({"kind": "import", "what": w}, repeat, None, tmp) for w in (ours, lib)),
                     None))
    return rows


def report(rows: list, repeat: int) -> None:
    print(f"\nCPU ms, median of {repeat} (warm: of {10 * repeat} calls); ratio = library / ours")
    print(f"{'':10} {'figure':<50} {'ours':>7} {'library':>8} {'ratio':>6}  verdict")
    for section, figure, ours, lib, limit in rows:
        verdict = "(information)" if limit is None else "keep ours" if lib - ours > limit else "use the library"
        print(f"{section:10} {figure:<50} {ours:7.1f} {lib:8.1f} {lib / ours:6.2f}  {verdict}")
    sec = {(row[1], i): row[2 + i] / 1e3 for row in rows for i in (0, 1)}

    def calls(what, n, cold_calls):  # n figures, the first in each of cold_calls processes
        return [cold_calls * sec[f"{what}, cold", i] + (n - cold_calls) * sec[f"{what}, warm", i] for i in (0, 1)]
    parts = [(f"{N_TRIALS} cost curves on {WORKERS} workers", calls("cost_curve", N_TRIALS, WORKERS)),
             (f"{TOP} decision boundaries (tracking.decision_boundary=top)", calls("decision_boundary", TOP, 1)),
             ("the summary's 3 figures", [sec["all three", i] for i in (0, 1)])]
    total = [sum(part[i] for _, part in parts) for i in (0, 1)]
    print(f"\n{'Per default sweep, CPU s':<61} {'ours':>7} {'library':>8} {'extra':>7}")
    for label, (ours, lib) in [*parts, ("total", total),
                               ("  instead: the summary's, sklearn hidden", [sec["all three, sklearn hidden", i]
                                                                            for i in (0, 1)]),
                               (f"  instead: {N_TRIALS} decision boundaries (=all)",
                                calls("decision_boundary", N_TRIALS, WORKERS))]:
        print(f"  {label:<59} {ours:7.2f} {lib:8.2f} {lib - ours:+7.2f}")
    print(f"  {f'total / ~{TRAINING_S:g} s of training CPU':<59} {total[0] / TRAINING_S:7.0%} "
          f"{total[1] / TRAINING_S:8.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per cold figure; 10x calls per warm one")
    ap.add_argument("--figs", type=Path, help="also write each figure, ours and the library's, to this directory")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return print(child(json.loads(args.child)))
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    if args.figs:
        args.figs.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_figures_"))
    try:
        train(tmp)
        rows = trial_rows(args.repeat, args.figs, tmp) + sweep_rows(args.repeat, args.figs, tmp)
        with recorded("bench-figures", "Figures: ours or the library's (`make bench-figures`)"):
            report(rows, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
