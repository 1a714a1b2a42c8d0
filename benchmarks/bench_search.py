"""Measured search quality: how quickly each sampler finds a good network, and what pruning saves.

    .venv/bin/python benchmarks/bench_search.py [--quick] [--seeds 5] [--processes 2] [--sections 1,2]
                                                   [--json PATH]

Every sweep is the path a user's sweep takes: sweeps.run(overrides), with tracking off, n_jobs 1
(a sampler's draws then depend on its seed alone) and a journal in a temp dir; `sweep.seed` is the
sampler's seed, `seed` (the split, the initial weights) stays 0. Independent sweeps run side by side
in --processes processes. The settings are printed with the tables.
  1. Sample efficiency: the best val_cost after 10, 20 and 30 trials on flower and on digits,
     median [min-max] over --seeds sampler seeds, for tpe, gp (where the gp sampler exists and
     torch imports), random, qmc and cmaes. The default search space with fewer iterations, so
     that the 1,500 trials fit the time (pruner none: the median pruner's 1,000 warm-up
     iterations would not prune them anyway).
  2. Pruning: the default sweep on flower (default space, tpe, 30 trials) with the median pruner
     and without, per seed: the best val_cost, the training iterations (sum of iterations_run)
     each sweep spends to reach the unpruned sweep's best (the pruned one: within --tolerance)
     and in all. Goal: the same best with at most half the iterations. --variants compares
     other pruning settings with conf's.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import multiprocessing as mp
import os
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from results import recorded  # benchmarks/results.py: a script's own folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = (10, 20, 30)
PRUNER_ONLY = ("sweep.pruner=", "sweep.warmup_steps=", "train.report_every=")  # settings an unpruned sweep never reads
SAMPLERS = ("tpe", "gp", "random", "qmc", "cmaes")
# the default space, with fewer iterations: digits costs ~5-10x flower's time an iteration
SPACES = {
    "flower": ("search_space.train.iterations.low=100", "search_space.train.iterations.high=1000",
               "search_space.train.iterations.step=100"),
    "digits": ("search_space.train.iterations.low=10", "search_space.train.iterations.high=100",
               "search_space.train.iterations.step=10"),
}


@dataclass
class Trial:
    number: int
    state: str
    value: float | None
    iterations: int  # training iterations it ran (a pruned or diverged trial's too)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def iterations_run(t) -> int:
    """What a trial trained: its metrics say so once it ends normally or pruned; a diverged trial's
    reason names the iteration."""
    metrics = t.user_attrs.get("metrics") or {}
    if "iterations_run" in metrics:
        return int(metrics["iterations_run"])
    found = re.search(r"iteration (\d+)", t.user_attrs.get("diverged", ""))
    if found:
        return int(found.group(1)) + 1
    return max(t.intermediate_values, default=0)


def sweep(overrides: list[str]) -> tuple[list[Trial], float]:
    """One sweep through sweeps.run in this process, quiet; its trials by number, and its seconds."""
    import sweeps  # here: each process of the pool imports it once, and the parent never needs it

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = sweeps.run(["tracking.enabled=false", f"sweep.storage={tmp}/study.journal", "sweep.n_jobs=1",
                                 f"hydra.run.dir={tmp}/hydra", *overrides])
        seconds = time.perf_counter() - start
        trials = [Trial(t.number, t.state.name, t.value, iterations_run(t))
                  for t in sorted(result.study.get_trials(deepcopy=False), key=lambda t: t.number)]
    return trials, seconds


def best_after(trials: list[Trial], n: int) -> float:
    values = [t.value for t in trials[:n] if t.state == "COMPLETE" and t.value is not None]
    return min(values) if values else float("nan")


def iterations_to_reach(trials: list[Trial], target: float) -> int | None:
    """Training iterations spent, in trial order, up to the first complete trial at or below target."""
    spent = 0
    for t in trials:
        spent += t.iterations
        if t.state == "COMPLETE" and t.value is not None and t.value <= target:
            return spent
    return None


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.4f} [{min(values):.4f}-{max(values):.4f}]"


def samplers_to_run(asked: tuple[str, ...] = SAMPLERS) -> tuple[list[str], list[str]]:
    """The samplers of SAMPLERS this bench knows (those asked); notes on those it skips."""
    from sweeps.study.samplers import SAMPLERS as TABLE

    notes, run = [], []
    for name in asked:
        if name not in TABLE:
            notes.append(f"{name}: not in sweeps.study.samplers.SAMPLERS here: skipped")
        elif name == "gp" and importlib.util.find_spec("torch") is None:
            notes.append("gp: torch does not import here (pip install -e .[gp]): skipped")
        else:
            run.append(name)
    return run, notes


def efficiency(pool: ProcessPoolExecutor, seeds: int, trials: int, out: dict,
               asked: tuple[str, ...] = SAMPLERS) -> None:
    names, notes = samplers_to_run(asked)
    for note in notes:
        print(f"note: {note}")
    jobs = {(ds, s, seed): pool.submit(sweep, [f"dataset={ds}", f"sweep.study_name={ds}-{s}-{seed}",
                                               f"sweep.sampler={s}", f"sweep.seed={seed}", "sweep.pruner=none",
                                               f"sweep.n_trials={trials}", *SPACES[ds]])
            for ds in SPACES for seed in range(seeds) for s in names}  # interleaved: seeds outermost
    points = [n for n in CHECKPOINTS if n <= trials]
    print(f"\n## 1. Sample efficiency: best val_cost after n trials, median [min-max] over {seeds} sampler seeds")
    for ds, space in SPACES.items():
        print(f"\n{ds} (default space, {', '.join(o.split('.', 2)[2] for o in space)}; pruner none; n_jobs 1)\n")
        print("| sampler | " + " | ".join(f"after {n}" for n in points) + " | s a sweep |")
        print("|---|" + "---:|" * (len(points) + 1))
        for s in names:
            runs = [jobs[(ds, s, seed)].result() for seed in range(seeds)]
            row = {n: [best_after(r[0], n) for r in runs] for n in points}
            secs = statistics.median(r[1] for r in runs)
            print(f"| {s} | " + " | ".join(spread(row[n]) for n in points) + f" | {secs:.1f} |")
            out.setdefault("efficiency", {}).setdefault(ds, {})[s] = {
                "best_after": {str(n): row[n] for n in points}, "seconds": [r[1] for r in runs]}


def pruning(pool: ProcessPoolExecutor, seeds: int, trials: int, tolerance: float, out: dict,
            variants: list[list[str]]) -> None:
    """The default sweep without a pruner and with the median pruner (conf's defaults, then each
    variant's overrides), the same sampler seeds."""
    base = ["dataset=flower", "sweep.sampler=tpe", f"sweep.n_trials={trials}"]
    settings = [[], *variants]

    def submit(seed: int, extra: list[str]):
        return pool.submit(sweep, [*base, f"sweep.study_name=prune-{seed}", f"sweep.seed={seed}", *extra])

    # the unpruned sweep a variant is measured against: the variant's settings but the pruner's own
    baselines = {tuple(o for o in v if not o.startswith(PRUNER_ONLY)) for v in settings}
    plain = {(b, seed): submit(seed, ["sweep.pruner=none", *b]) for b in sorted(baselines) for seed in range(seeds)}
    pruned = {(i, seed): submit(seed, ["sweep.pruner=median", *v])
              for i, v in enumerate(settings) for seed in range(seeds)}
    print(f"\n## 2. Pruning: flower, default space, tpe, {trials} trials, without a pruner and with the median pruner "
          f"(conf's defaults: warmup_steps, report_every, n_startup_trials); reached = val_cost within "
          f"{tolerance:.0%} of the unpruned best")
    print("\n| median pruner | seed | none: best (trial) | none: iterations to reach it / of all | median: best "
          "(trial) | median: iterations to reach none's best / of all (pruned) | ratio to reach | ratio of all |")
    print("|---|---:|---|---:|---|---:|---:|---:|")
    for i, variant in enumerate(settings):
        label = " ".join(variant) or "defaults"
        reach_ratios, all_ratios, same = [], [], 0
        for seed in range(seeds):
            baseline = tuple(o for o in variant if not o.startswith(PRUNER_ONLY))
            (a, _), (b, _) = plain[(baseline, seed)].result(), pruned[(i, seed)].result()
            best = best_after(a, trials)
            target = best * (1 + tolerance)
            a_reach, b_reach = iterations_to_reach(a, target), iterations_to_reach(b, target)
            a_all, b_all = sum(t.iterations for t in a), sum(t.iterations for t in b)
            b_best = best_after(b, trials)
            same += b_reach is not None
            reach_ratios.append(b_reach / a_reach if b_reach is not None else float("inf"))
            all_ratios.append(b_all / a_all)
            print(f"| {label} | {seed} | {best:.4f} ({best_trial(a)}) | {a_reach:,} / {a_all:,} | {b_best:.4f} "
                  f"({best_trial(b)}) | {'not reached' if b_reach is None else f'{b_reach:,}'} / {b_all:,} "
                  f"({sum(t.state == 'PRUNED' for t in b)}) | {reach_ratios[-1]:.2f} | {all_ratios[-1]:.2f} |")
            out.setdefault("pruning", []).append({"variant": label, "seed": seed, "none": [asdict(t) for t in a],
                                                  "median": [asdict(t) for t in b]})
        verdict = "met" if same == seeds and statistics.median(all_ratios) <= 0.5 else "MISS"
        print(f"| {label} | median | | | | reached in {same} of {seeds} | {statistics.median(reach_ratios):.2f} | "
              f"**{statistics.median(all_ratios):.2f}** {verdict} |")
    print("\ngoal: the median pruner reaches the unpruned best with at most half the iterations of the unpruned "
          "sweep (ratio of all <= 0.50, every seed reached)")


def best_trial(trials: list[Trial]) -> int | None:
    complete = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    return min(complete, key=lambda t: t.value).number if complete else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 10 trials: a smoke run")
    parser.add_argument("--seeds", type=int, default=5, help="sampler seeds of section 1")
    parser.add_argument("--trials", type=int, default=30, help="trials of each section-1 sweep")
    parser.add_argument("--prune-trials", type=int, default=30,
                        help="trials of section 2's sweeps (the default sweep's)")
    parser.add_argument("--prune-seeds", type=int, default=3, help="sampler seeds of section 2")
    parser.add_argument("--tolerance", type=float, default=0.02,
                        help="how close to the unpruned best counts as reached")
    parser.add_argument("--processes", type=int, default=2, help="sweeps run side by side")
    parser.add_argument("--sections", default="1,2")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="section 1's samplers, comma-separated")
    parser.add_argument("--variants", default="", help="other settings of the pruned sweeps, compared with the "
                        "defaults, ';' between variants: 'sweep.warmup_steps=500; sweep.pruner=hyperband'")
    parser.add_argument("--json", type=Path, help="write every trial's state, value and iterations here")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.trials, args.prune_seeds, args.prune_trials = 2, 10, 2, 8
    with recorded("bench-search", "Search quality (`make bench-search`)", markdown=True, keep=not args.quick):
        run(args)


def run(args) -> None:
    sections = {int(s) for s in args.sections.split(",")}
    print(f"# bench-search: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}; {args.processes} sweeps side by side, each n_jobs 1, tracking off")
    out: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    start = time.perf_counter()
    # spawn: a fresh interpreter per process, as a user's `python -m sweeps` is
    with ProcessPoolExecutor(args.processes, mp_context=mp.get_context("spawn")) as pool:
        if 1 in sections:
            efficiency(pool, args.seeds, args.trials, out, tuple(args.samplers.split(",")))
            log(f"section 1 done at {time.perf_counter() - start:.0f} s")
        if 2 in sections:
            pruning(pool, args.prune_seeds, args.prune_trials, args.tolerance, out,
                    [v.split() for v in args.variants.split(";") if v.strip()])
    print(f"\n(whole bench: {time.perf_counter() - start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
