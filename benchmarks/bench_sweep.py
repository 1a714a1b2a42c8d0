"""Benchmark `python -m sweeps`: parallel throughput, tracking overhead, Hydra's Optuna sweeper plugin.

    .venv/bin/python benchmarks/bench_sweep.py [--quick] [--repeat N] [--json PATH] [--sections 1,2,3,4,5,6]
                                                  [--trial-seconds S]

All numbers come from this one run; sweeps of different settings are interleaved, best of --repeat
each (plus up to 2 more tries for a setting whose best run shared the CPUs with other processes),
and the verdicts are ratios. Sweeps run as `python -m sweeps` processes in a temp dir; trial times
come from the Optuna journal.
  1. Throughput at n_jobs 1 and 2: 32 trials of ~1 s (about the default sweep's 30), against the
     two-process ceiling of plain Python (2 * t1 / t2: a pure-Python loop in 1 process, t1, and in
     2 at once, t2). Target >= 90% of it.
  2. Tracking overhead: the same sweeps with MLflow (SQLite: a store that exists, as a user's
     mlflow.db after the first sweep, and a new one) vs tracking.enabled=false. Target <= 10%.
     Also, at n_jobs 2, tracking without any PNG of a trial (tracking.trial_figures=false
     tracking.decision_boundary=none).
  3. Hydra's Optuna sweeper plugin (own venv and app: benchmarks/hydra_sweeper/) vs ours
     on one 40-trial search (conf/search_space/hydra_strings.yaml, TPE seed 0, n_jobs 2).
  4. The default sweep (`make sweep`'s config, 30 trials, n_jobs 2): tracking off, on into a store
     that exists, and on into a new one, several rounds; wall time, CPU time (the sweep's processes)
     and the trials' summed fit_seconds. Target: tracking on (a store that exists) <= +20% wall.
     Its floors: an untracked sweep beside one process that imports mlflow and opens the store,
     or that also writes the trials' runs (WRITER): what tracking costs whatever its design.
  5. Tracking's marginal cost per trial: the same seeded sweep of 10 and of 50 trials, one process
     (sweep.sampler=random sweep.seed=0 sweep.pruner=none sweep.n_jobs=1), tracking on (a store
     that exists) and off; (slope on - slope off) / slope off, against <= 0.10. Its floor, measured
     in the same run: WRITER alone writing 10 and 50 runs' bare records, its slope / slope off.
  6. The workarounds that stay, each against the same default sweep without it (tracking on, a
     store that exists), in alternating rounds: the median of the rounds' wall-time ratios, and a
     verdict: it keeps its place if it buys >= 5%. Switched off by environment variables read for
     benchmarks only: NNSWEEPS_BENCH_NO_GC_FREEZE (sweeps.runner.pool.pause_collector/freeze_heap:
     the collector paused during the start-up imports, then the heap frozen). (exit_now, which
     skipped the interpreter's teardown with os._exit, bought +3% here and was removed.)
     Its own section of RESULTS.md, so that `--sections 6` alone leaves the others' as they are.
Exits 0 on MISS; only a failing `python -m sweeps` stops it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import optuna
from threadpoolctl import threadpool_limits

from nncore import Network, fit, load_dataset
from sweeps.runner.pool import NO_GC_FREEZE

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "benchmarks" / "hydra_sweeper"
sys.path.insert(0, str(APP))
from venv_builder import PLUGIN_VENV, plugin_python  # noqa: E402  (the plugin's own virtual environment)
from results import recorded  # noqa: E402  (benchmarks/results.py: a script's own folder is on sys.path)

SIZES, LR = [2, 32, 32, 1], (0.2, 0.6)  # the throughput trials' network and learning-rate range
# issue 21's targets; a target below its floor measured in the same run becomes 1.2 x that floor
SPEEDUP_TARGET, TRACKING_TARGET, DEFAULT_TARGET, MARGINAL_TARGET = 0.90, 0.10, 0.35, 0.10
MARGINAL = ["sweep.sampler=random", "sweep.seed=0", "sweep.pruner=none"]  # section 5's sweep (issue 21's)
# section 6: each workaround that stays, by the switch that turns it off; it must buy this much wall time
WORKAROUNDS = {"GC paused, then frozen (runner.pool)": NO_GC_FREEZE}
WORKAROUND_TARGET = 0.05
# its sweep: the default one, but every trial the same training (default network, 2000 iterations of
# gd, the learning rate sampled), so that every run does the same work whatever the workers' timing
SAME_WORK = ["search_space=none", "sweep.pruner=none", "train.iterations=2000",
             "+search_space.train.learning_rate={type:float,low:0.1,high:0.5,log:true}"]
FLOORS = ("off + mlflow opened", "off + 1 writer")  # section 4's rows of WRITER beside an untracked sweep
QUIET = 0.3  # cores: other processes using more than this disturb a run

# Section 4's floors: what tracking would cost if one process did all of it and did nothing else,
# beside an untracked sweep. It imports mlflow and opens the store (argv[1]), then writes argv[2]
# trial runs as a tracked sweep's trials' own records are written: the run with its tags, its 44
# params, the end batch of 8 metrics, a 200-point curve and the 20 points of the validation metric
# at each report, the status; no dataset inputs, files,
# figures or summary, which a real sweep adds.
WRITER = """
import sys, time
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
client = MlflowClient(tracking_uri=sys.argv[1])
client.search_experiments(max_results=1)  # the store opened; nothing written
runs = int(sys.argv[2])
e = client.create_experiment("floor") if runs else None
for n in range(runs):
    run = client.create_run(e, run_name=f"trial-{n:04d}", tags={f"tag{i}": "x" for i in range(14)}).info.run_id
    client.log_batch(run, params=[Param(f"param.{i}", str(i)) for i in range(44)])
    now = int(time.time() * 1000)
    client.log_batch(run, metrics=[Metric(f"metric{i}", 0.5, now, 0) for i in range(8)]
                     + [Metric("cost", 1 / (s + 1), now, 40 * s) for s in range(200)]
                     + [Metric("val_cost", 1 / (s + 1), now, 100 * s) for s in range(1, 21)])
    client.set_terminated(run)
"""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BesideFailed(RuntimeError):
    """The process beside a sweep failed (section 4's floors): its row is dropped, the bench goes on."""


@dataclass
class Run:
    """One sweep process: its wall time and its trials' times (epoch seconds)."""
    label: str
    wall: float
    launched: float
    others: float = 0.0  # cores used by other processes of the machine during the run, on average
    cpu: float = 0.0  # CPU seconds of the sweep's processes (the launcher and the workers it waited for)
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    fits: list[float] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)

    @property
    def span(self) -> float:  # first trial start -> last trial end
        return max(self.ends) - min(self.starts)

    def per_min(self, seconds: float) -> float:
        return 60 * len(self.starts) / seconds

    @property
    def startup(self) -> float:  # launch -> first trial start
        return min(self.starts) - self.launched

    @property
    def shutdown(self) -> float:  # last trial end -> exit
        return self.launched + self.wall - max(self.ends)

    def overheads(self) -> tuple[float, float]:
        """Mean (trial time - fit time) of each worker's first trial, and of the others."""
        first, rest, seen = [], [], set()
        for s, e, f, p in sorted(zip(self.starts, self.ends, self.fits, self.pids)):
            (rest if p in seen else first).append(e - s - f)
            seen.add(p)
        return statistics.mean(first), statistics.mean(rest) if rest else float("nan")

    def summary(self) -> dict:
        return {**asdict(self), "span": self.span, "startup": self.startup, "shutdown": self.shutdown}


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.wall)


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # our finished (waited-for) process trees
    return r.ru_utime + r.ru_stime


# ---- the plain-Python ceiling ------------------------------------------------------------
def _spin(n: int, q) -> None:
    t0, x = time.perf_counter(), 0
    for i in range(n):
        x += i * i % 7
    q.put(time.perf_counter() - t0)


def spin(n: int, k: int) -> float:
    """Seconds for the slowest of k processes each running the loop (timed inside: no fork cost)."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_spin, args=(n, q)) for _ in range(k)]
    for p in procs:
        p.start()
    times = [q.get() for _ in procs]
    for p in procs:
        p.join()
    return max(times)


def calibrate_iterations(target: float) -> int:
    """Full-batch iterations of SIZES on flower that take about `target` s (1 BLAS thread, as a worker)."""
    data = load_dataset("flower", seed=0, val_fraction=0.2)
    net = Network.create(SIZES, activation="tanh", seed=0)
    times = []
    with threadpool_limits(1):
        for _ in range(4):  # the first warms up; best of the rest
            t0 = time.perf_counter()
            fit(net, data.X_train, data.Y_train, learning_rate=0.3, iterations=500)
            times.append(time.perf_counter() - t0)
    return max(100, int(round(target / (min(times[1:]) / 500), -2)))


class Bench:
    """Runs the sweeps in a temp dir, each once other processes leave the CPUs free: at most 30 s a
    wait, and at most `wait_budget` s of waiting in all (so a machine that stays busy costs little)."""

    def __init__(self, tmp: Path, repeat: int, wait_budget: float):
        self.tmp, self.repeat, self.budget = tmp, repeat, wait_budget

    def wait_quiet(self) -> None:
        start = time.monotonic()
        deadline, said = start + min(30.0, self.budget), False
        while time.monotonic() < deadline:
            b0 = busy_seconds()
            time.sleep(1)
            if (used := busy_seconds() - b0) < QUIET:
                break
            if not said:
                log(f"other processes use {used:.1f} cores: waiting for them (at most {deadline - start:.0f} s)")
                said = True
        self.budget = max(0.0, self.budget - (time.monotonic() - start))

    def timed(self, label: str, cmd: list[str], cwd: Path, env: dict, beside: list[str] | None = None) -> Run:
        """Runs cmd; a Run with its wall time (its trials to be filled in); RuntimeError if it fails.
        beside: a command started with it, in a process of its own; the wall time is until both
        have ended, and the CPU time counts both."""
        self.wait_quiet()
        with tempfile.TemporaryFile("w+") as errors:
            launched, t0, b0, c0 = time.time(), time.perf_counter(), busy_seconds(), children_seconds()
            other = subprocess.Popen(beside, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors) if beside else None
            try:
                proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
                                      timeout=1800)
                if other is not None and other.wait(timeout=600) != 0:
                    errors.seek(0)
                    raise BesideFailed(f"{label}: the process beside it: exit {other.returncode}: "
                                       f"{errors.read().strip()[-2000:]}")
            finally:
                if other is not None and other.poll() is None:
                    other.kill()
                    other.wait()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{label}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        cpu = children_seconds() - c0
        others = max(0.0, busy_seconds() - b0 - cpu) / wall
        return Run(label, wall, launched, others, cpu)

    def store(self) -> Path:
        """An empty MLflow SQLite store (schema created), made once: a user's mlflow.db after their
        first sweep. Creating the schema takes ~1.3 s of CPU, once per store, not per sweep."""
        template = self.tmp / "template.db"
        if not template.exists():
            code = "import sys; from mlflow import MlflowClient; MlflowClient(sys.argv[1]).search_experiments()"
            subprocess.run([sys.executable, "-c", code, f"sqlite:///{template}"], check=True, capture_output=True)
        return template

    def ours(self, label: str, n_trials: int, n_jobs: int, tracking: bool, overrides: list[str],
             new_store: bool = False, writer: int | None = None, env: dict | None = None) -> Run:
        """One `python -m sweeps`; tracking into a copy of store() unless new_store (created by the sweep).
        writer: with tracking off, a process beside the sweep that imports mlflow, opens a copy of
        store() and writes that many trial runs into it (WRITER). env: more environment variables."""
        d = Path(tempfile.mkdtemp(prefix="ours-", dir=self.tmp))  # no '=' or ',' in paths: Hydra parses them
        uri = f"sqlite:///{d / 'mlflow.db'}"
        if (tracking and not new_store) or writer is not None:
            shutil.copyfile(self.store(), d / "mlflow.db")
        beside = None if writer is None else [sys.executable, "-c", WRITER, uri, str(writer)]
        cmd = [sys.executable, "-m", "sweeps", "sweep.study_name=bench", f"sweep.storage={d / 'optuna.journal'}",
               f"tracking.uri={uri}", "tracking.experiment=bench", f"hydra.run.dir={d / 'hydra'}",
               f"sweep.n_jobs={n_jobs}", f"sweep.n_trials={n_trials}", f"tracking.enabled={str(tracking).lower()}",
               *overrides]
        log(f"ours: {label} ({n_trials} trials)")
        try:
            run = self.timed(label, cmd, d, {"MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT), **(env or {})},
                             beside)
        except BesideFailed:
            raise  # rounds() drops the row
        except RuntimeError as err:
            sys.exit(f"`python -m sweeps` failed: {err}")  # it is what this measures: no point going on
        backend = optuna.storages.journal.JournalFileBackend(str(d / "optuna.journal"))
        study = optuna.load_study(study_name="bench", storage=optuna.storages.JournalStorage(backend))
        for t in study.get_trials(deepcopy=False):
            if t.datetime_complete is not None:
                run.starts.append(t.datetime_start.timestamp())
                run.ends.append(t.datetime_complete.timestamp())
                # a diverged trial has no metrics: its whole duration stands in for its fit time
                run.fits.append(t.user_attrs.get("metrics", {}).get("fit_seconds", run.ends[-1] - run.starts[-1]))
                run.pids.append(int(t.user_attrs.get("pid", 0)))
        shutil.rmtree(d, ignore_errors=True)
        return run

    def writer(self, runs: int) -> Run:
        """WRITER alone, writing `runs` trial runs into a copy of store(): section 5's floor."""
        d = Path(tempfile.mkdtemp(prefix="writer-", dir=self.tmp))
        shutil.copyfile(self.store(), d / "mlflow.db")
        log(f"floor: WRITER ({runs} runs)")
        run = self.timed(f"writer {runs}", [sys.executable, "-c", WRITER, f"sqlite:///{d / 'mlflow.db'}", str(runs)],
                         d, {})
        shutil.rmtree(d, ignore_errors=True)
        return run

    def plugin(self, py: Path, label: str, n_trials: int, launcher: str) -> Run:
        d = Path(tempfile.mkdtemp(prefix="plugin-", dir=self.tmp))
        cmd = [str(py), str(APP / "train.py"), "--multirun", f"hydra.searchpath=[file://{ROOT / 'conf'}]",
               f"hydra.sweep.dir={d / 'multirun'}", f"hydra.sweeper.n_trials={n_trials}", "hydra.sweeper.n_jobs=2",
               f"bench_log={d / 'trials.jsonl'}"]
        if launcher == "joblib":
            cmd += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
        log(f"plugin: {label} ({n_trials} trials)")
        run = self.timed(label, cmd, d, {"PYTHONPATH": str(ROOT)})
        for line in (d / "trials.jsonl").read_text().splitlines():
            j = json.loads(line)
            run.starts.append(j["start"]), run.ends.append(j["end"]), run.fits.append(j["fit_seconds"])
            run.pids.append(j["pid"])
        shutil.rmtree(d, ignore_errors=True)
        return run

    def rounds(self, contenders: dict[str, Callable[[], Run]], between: Callable[[], None] = lambda: None,
               ) -> tuple[dict[str, list[Run]], list[str]]:
        """Each contender `repeat` times, interleaved, and up to 2 more rounds for those whose best run
        was disturbed; a contender that fails is dropped (its error returned)."""
        runs: dict[str, list[Run]] = {k: [] for k in contenders}
        errors = []
        for r in range(self.repeat + 2):
            todo = [k for k in runs if r < self.repeat or best(runs[k]).others > QUIET]
            if not todo:
                break
            for k in todo:
                try:
                    runs[k].append(contenders[k]())
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
                    errors.append(f"{k}: failed, row skipped: {err}")
                    del runs[k]
            between()
        return runs, errors


# ---- the report ----------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run_table(runs: list[Run]) -> list[str]:
    rows = [f"  {'':32}{'wall s':>8}{'/min':>7}{'span s':>8}{'/min':>7}{'trial s':>9}{'fit s':>7}"
            f"{'ovh 1st':>9}{'ovh rest':>9}{'start-up':>9}{'shut-down':>10}{'others':>7}"]
    for r in runs:
        first, rest = r.overheads()
        rows.append(f"  {r.label:32}{r.wall:8.2f}{r.per_min(r.wall):7.1f}{r.span:8.2f}{r.per_min(r.span):7.1f}"
                    f"{statistics.mean(e - s for s, e in zip(r.starts, r.ends)):9.3f}{statistics.mean(r.fits):7.3f}"
                    f"{first:9.3f}{rest:9.3f}{r.startup:9.2f}{r.shutdown:10.2f}{r.others:7.2f}"
                    + (" *" if r.others > QUIET else ""))
    return rows


def throughput(bench: Bench, quick: bool, out: dict, trial_s: float | None = None) -> list[str]:
    """Sections 1 and 2: n_jobs 1 and 2, tracking on and off; trials of ~trial_s seconds."""
    n = 8 if quick else 32  # 32: about the default sweep (30 trials)
    trial_s = trial_s if trial_s is not None else (0.5 if quick else 1.0)
    log("plain-Python ceiling")
    n_loop = int(200_000 * trial_s / min(spin(200_000, 1) for _ in range(3)))
    t1s, t2s = [], []

    def ceiling_sample() -> None:
        bench.wait_quiet()
        t1s.append(spin(n_loop, 1)), t2s.append(spin(n_loop, 2))

    for _ in range(3):
        ceiling_sample()
    bench.wait_quiet()
    iterations = calibrate_iterations(trial_s)
    fixed = ["dataset=flower", f"model.hidden_units=[{','.join(map(str, SIZES[1:-1]))}]", "model.activation=tanh",
             "train=gd", f"train.iterations={iterations}", "sweep.pruner=none", "search_space=none",
             f"+search_space.train.learning_rate={{type:float,low:{LR[0]},high:{LR[1]},log:true}}"]
    # tracking, new store, overrides, n_jobs; "no figures": what the trials' PNGs cost (n_jobs 2 only)
    modes = {"off": (False, False, [], (1, 2)), "on": (True, False, [], (1, 2)),
             "on, new store": (True, True, [], (1, 2)),
             "on, no figures": (True, False, ["tracking.trial_figures=false", "tracking.decision_boundary=none"],
                                (2,))}
    grid = {(nj, m): (lambda nj=nj, m=m: bench.ours(f"n_jobs={nj} tracking {m}", n, nj, modes[m][0],
                                                    fixed + modes[m][2], new_store=modes[m][1]))
            for m in modes for nj in modes[m][3]}
    runs, _ = bench.rounds(grid, between=ceiling_sample)
    b = {k: best(v) for k, v in runs.items()}
    c = 2 * min(t1s) / min(t2s)
    each = [2 * x / y for x, y in zip(t1s, t2s)]
    out.update(trial_seconds=trial_s, iterations=iterations, ceiling={"value": c, "loop": n_loop, "t1": t1s, "t2": t2s},
               throughput={f"n_jobs={nj} tracking {m}": [r.summary() for r in rs] for (nj, m), rs in runs.items()})
    fit1, fit2 = statistics.mean(b[1, "off"].fits), statistics.mean(b[2, "off"].fits)
    lines = [f"1. Throughput: {n} trials of ~{trial_s:g} s (flower, {SIZES} tanh, gd, {iterations} iterations, "
             f"lr sampled in [{LR[0]}, {LR[1]}], pruner none), best of"
             f" {'/'.join(str(len(v)) for v in runs.values())} runs",
             *run_table(list(b.values())),
             "  /min = trials per minute; span = first trial start to last trial end (Optuna journal);",
             "  ovh = trial time - fit time, each worker's 1st trial and the others; start-up = launch to",
             "  1st trial start; shut-down = last trial end to process exit; others = cores busy with other",
             f"  processes of the machine during the run (0 = undisturbed; * = over {QUIET}: disturbed).",
             f"  plain-Python ceiling for 2 processes: 1 process {min(t1s):.3f} s, 2 at once {min(t2s):.3f} s "
             f"(best of {len(t1s)}, before",
             f"  and between the sweeps) -> 2*t1/t2 = {c:.2f}; single samples ranged {min(each):.2f}-{max(each):.2f}",
             f"  (the trials' own fit time, tracking off: {fit1:.3f} s alone, {fit2:.3f} s two at once "
             f"-> 2*fit1/fit2 = {2 * fit1 / fit2:.2f})"]
    out["speedups"] = {}
    for m in (m for m in modes if 1 in modes[m][3]):
        one, two = b[1, m], b[2, m]
        for kind, s1, s2 in (("wall", one.wall, two.wall), ("in-study", one.span, two.span)):
            out["speedups"][f"{kind}, tracking {m}"] = sp = two.per_min(s2) / one.per_min(s1)
            lines.append(f"  speed-up n_jobs 2/1, tracking {m:13}, {kind:8}: {sp:5.2f} = {sp / c:4.0%} of the ceiling  "
                         f"{verdict(sp >= SPEEDUP_TARGET * c)} (target >= {SPEEDUP_TARGET:.0%})")

    lines += ["", "2. Tracking overhead: the same sweeps with tracking on (MLflow, SQLite in the temp dir) "
              "vs tracking.enabled=false;", "  on: a store that exists (a copy of an empty mlflow.db, as after a "
              "user's first sweep); on, new store: the sweep creates it; on, no figures: tracking.trial_figures=false "
              "tracking.decision_boundary=none"]
    out["tracking_overhead"] = {}
    for m in ("on", "on, new store", "on, no figures"):
        for nj in sorted(modes[m][3], reverse=True):
            on, off = b[nj, m], b[nj, "off"]
            w, s = on.wall / off.wall - 1, on.span / off.span - 1
            per = (on.span - off.span) / len(on.starts) * nj  # per trial, in one worker's time
            out["tracking_overhead"][f"n_jobs={nj} tracking {m}"] = {"wall": w, "span": s, "per_trial_s": per}
            judged = nj == 2 and m != "on, new store"  # a store's creation is once, not per sweep
            lines.append(f"  {m:14} n_jobs={nj}: wall {on.wall:6.2f} vs {off.wall:6.2f} s = {w:+4.0%} "
                         f"{verdict(w <= TRACKING_TARGET) if judged else '    '} | in-study span {on.span:6.2f} vs "
                         f"{off.span:6.2f} s = {s:+4.0%} {verdict(s <= TRACKING_TARGET)} | {per:+.3f} s a trial")
    return lines + [f"  target <= {TRACKING_TARGET:.0%} extra (verdicts on the wall time at n_jobs=2 and on the spans;",
                    "  not on the wall time of a new store's sweep: it adds MLflow's schema creation, ~0.6 s of CPU "
                    "once per store, which no later sweep pays)"]


def hydra_comparison(bench: Bench, quick: bool, out: dict) -> list[str]:
    """Section 3: the plugin (joblib and basic launchers) vs ours (tracking on and off)."""
    n = 12 if quick else 40
    lines = [f"3. Hydra's Optuna sweeper plugin vs ours: {n} trials, conf/search_space/hydra_strings.yaml "
             "(lr, iterations,", "  depth, units, activation, init), flower, TPE seed 0, n_jobs 2, pruner none"]
    py, info = plugin_python()
    out["plugin_env"] = info
    lines.append(f"  plugin venv {PLUGIN_VENV.relative_to(ROOT)}: {info}" if py else
                 f"  plugin rows skipped: its venv could not be built: {info}")
    space = ["search_space=hydra_strings", "sweep.pruner=none", "dataset=flower"]
    contenders = {f"plugin, {k} launcher": (lambda k=k: bench.plugin(py, f"plugin, {k} launcher", n, k))
                  for k in ("joblib", "basic") if py}
    contenders.update({f"ours, tracking {k}": (lambda k=k: bench.ours(f"ours, tracking {k}", n, 2, k == "on", space))
                       for k in ("on", "off")})
    runs, errors = bench.rounds(contenders)
    out["hydra"] = {label: [r.summary() for r in rs] for label, rs in runs.items()}
    rows = [best(rs) for rs in runs.values()]
    lines += [f"  {e}" for e in errors]
    lines.append(f"  {'':24}{'wall s':>8}{'span s':>8}{'start-up':>9}{'sum fit s':>10}{'fit/(2 wall)':>13}"
                 f"{'wall/row 1':>11}{'others':>7}")
    for r in rows:
        lines.append(f"  {r.label:24}{r.wall:8.2f}{r.span:8.2f}{r.startup:9.2f}{sum(r.fits):10.2f}"
                     f"{sum(r.fits) / (2 * r.wall):13.0%}{r.wall / rows[0].wall:11.2f}{r.others:7.2f}"
                     + (" *" if r.others > QUIET else ""))
    if rows[0].label.startswith("plugin"):
        ours = best(runs["ours, tracking on"])
        lines.append(f"  ours (tracking on) / {rows[0].label}: wall {ours.wall:.2f} / {rows[0].wall:.2f} s = "
                     f"{ours.wall / rows[0].wall:.2f}")
    return lines + [
        "  The samplers draw different configs, so sum fit (the training itself) differs; fit/(2 wall)",
        "  is the share of the 2 cores spent training. The plugin asks n_jobs trials, waits for the whole",
        "  batch, then asks again; its basic launcher runs a batch serially in 1 process (BLAS threads",
        "  not limited). The plugin records nothing (no MLflow, no per-trial artifacts)."]


def default_sweep(bench: Bench, quick: bool, out: dict) -> list[str]:
    """Section 4: `make sweep`'s own config (python -m sweeps with no overrides: 30 trials of the
    default space on flower, n_jobs 2, median pruner), tracking off, on into a store that exists,
    and on into a new one, interleaved."""
    n = 10 if quick else 30
    # (tracking, new store, runs written beside an untracked sweep by one process: WRITER)
    modes = {"off": (False, False, None), "on": (True, False, None), "on, new store": (True, True, None),
             FLOORS[0]: (False, False, 0), FLOORS[1]: (False, False, n)}
    contenders = {m: (lambda m=m: bench.ours(f"default sweep, tracking {m}", n, 2, modes[m][0], [],
                                             new_store=modes[m][1], writer=modes[m][2])) for m in modes}
    runs, errors = bench.rounds(contenders)
    out["default_sweep"] = {m: [r.summary() for r in rs] for m, rs in runs.items()}
    lines = [f"4. The default sweep (`make sweep`: {n} trials of conf/search_space/default.yaml on flower, TPE, "
             "median pruner, n_jobs 2),", f"  tracking off, on (a store that exists), on with a new store, and the "
             f"floors, interleaved, {'/'.join(str(len(v)) for v in runs.values())} runs each",
             *(f"  {e}" for e in errors),
             f"  {'':27}{'wall s':>8}{'median':>8}{'CPU s':>7}{'median':>8}{'sum fit s':>10}{'start-up':>9}"
             f"{'shut-down':>10}{'others':>7}"]
    for m, rs in runs.items():
        b = best(rs)
        lines.append(f"  tracking {m:18}{b.wall:8.2f}{statistics.median(r.wall for r in rs):8.2f}{b.cpu:7.2f}"
                     f"{statistics.median(r.cpu for r in rs):8.2f}{sum(b.fits):10.2f}{b.startup:9.2f}"
                     f"{b.shutdown:10.2f}{b.others:7.2f}" + (" *" if b.others > QUIET else ""))
    floors = {m: best(runs[m]).wall / best(runs["off"]).wall - 1 for m in FLOORS if m in runs and "off" in runs}
    # the target, a ratio of wall times: 1.35, or 1.2 x the floor of bare writes where that is higher
    target = max(1 + DEFAULT_TARGET, 1.2 * (1 + floors[FLOORS[1]])) - 1 if FLOORS[1] in floors else DEFAULT_TARGET
    if "off" in runs:
        off = runs["off"]
        for m in ("on", "on, new store", *FLOORS):
            if m not in runs:
                continue
            on = runs[m]
            w = best(on).wall / best(off).wall - 1
            wm = statistics.median(r.wall for r in on) / statistics.median(r.wall for r in off) - 1
            c = statistics.median(r.cpu for r in on) / statistics.median(r.cpu for r in off) - 1
            # a store's creation is once, not per sweep; and a ratio of disturbed runs says nothing
            judged = m == "on"
            quiet = best(on).others <= QUIET and best(off).others <= QUIET
            out["default_sweep"][f"{m} vs off"] = {"wall_best": w, "wall_median": wm, "cpu_median": c, "quiet": quiet}
            said = (verdict(w <= target) if quiet else "NOT JUDGED: disturbed (*)")
            lines.append(f"  tracking {m} vs off: wall {w:+4.0%} (best), {wm:+4.0%} (median); CPU {c:+4.0%} (median)"
                         + (f"  {said} (target <= +{target:.0%} wall: +{DEFAULT_TARGET:.0%}, or 1.2 x the floor "
                            "of bare writes)" if judged else ""))
    return lines + ["  CPU s: the sweep's processes (the launcher and its worker processes); sum fit s: the trials'",
                    "  fit_seconds from the study (a diverged trial: its duration); the samplers' draws are the same",
                    "  in every run (seed 0), the pruner's decisions may differ with timing.",
                    "  The floors: tracking off, and beside it one process that only imports mlflow and opens the",
                    f"  store ({FLOORS[0]}), or also writes {n} trial runs' records (the run, 44 params, 8 metrics, a",
                    "  200-point curve, the status; no files, figures or summary): what any design that records",
                    "  in the same invocation pays at least, whichever process pays it."]


def marginal_cost(bench: Bench, quick: bool, out: dict) -> list[str]:
    """Section 5: tracking's own cost per trial, as the difference of two slopes (10 and 50 trials)
    over the untracked slope, beside the same ratio for WRITER alone (its floor)."""
    small, large = (4, 12) if quick else (10, 50)
    contenders = {(on, n): (lambda on=on, n=n: bench.ours(f"marginal, tracking {'on' if on else 'off'}", n, 1, on,
                                                           MARGINAL)) for on in (False, True) for n in (small, large)}
    writer = {("floor", n): (lambda n=n: bench.writer(n)) for n in (small, large)}
    runs, errors = bench.rounds({**contenders, **writer})
    slope = {k: (best(runs[(k, large)]).wall - best(runs[(k, small)]).wall) / (large - small)
             for k in (False, True, "floor") if (k, small) in runs and (k, large) in runs}
    lines = [f"5. Tracking's marginal cost per trial: {small} and {large} trials, n_jobs 1, {' '.join(MARGINAL)}",
             *(f"  {e}" for e in errors)]
    if False not in slope:
        return lines + ["  no untracked slope: nothing to compare"]
    ratio = {k: (v - slope[False]) / slope[False] if k is True else v / slope[False] for k, v in slope.items() if k}
    out["marginal"] = {"slope_s": {str(k): v for k, v in slope.items()}, "ratio": {str(k): v for k, v in ratio.items()}}
    lines.append(f"  untracked: {slope[False] * 1000:.0f} ms a trial")
    floor = ratio.get("floor")
    target = max(MARGINAL_TARGET, 1.2 * floor) if floor is not None else MARGINAL_TARGET
    if floor is not None:
        lines.append(f"  floor (MLflow's client writing the bare records, one process): {slope['floor'] * 1000:.0f} ms a "
                     f"run = {floor:.2f} of an untracked trial")
    if True in ratio:
        quiet = all(best(rs).others <= QUIET for rs in runs.values())
        said = verdict(ratio[True] <= target) if quiet else "NOT JUDGED: disturbed"
        lines.append(f"  tracked: +{(slope[True] - slope[False]) * 1000:.0f} ms a trial = {ratio[True]:.2f} of an "
                     f"untracked trial  {said} (target <= {target:.2f}: {MARGINAL_TARGET:.2f}, or 1.2 x the floor)")
    return lines


def workarounds(bench: Bench, quick: bool, rounds: int, out: dict) -> list[str]:
    """Section 6: the default sweep of SAME_WORK (tracking on, a store that exists) as shipped, and
    without each workaround that stays; each round runs all of them, in an order that turns round by
    round, and gives one ratio per workaround (without / with): their median judges it."""
    n = 10 if quick else 30
    modes = {"as shipped": None, **WORKAROUNDS}
    runs: dict[str, list[Run]] = {m: [] for m in modes}
    for r in range(rounds):
        order = list(modes)[r % len(modes):] + list(modes)[:r % len(modes)]
        for m in order:
            env = {modes[m]: "1"} if modes[m] else {}
            runs[m].append(bench.ours(f"workarounds: {m if m == 'as shipped' else 'without ' + m}", n, 2, True,
                                      SAME_WORK, env=env))
    base = runs["as shipped"]
    out["workarounds"] = {m: [r.summary() for r in rs] for m, rs in runs.items()}
    lines = [f"6. The workarounds that stay: the default sweep ({n} trials, n_jobs 2, tracking on into a store that "
             f"exists), every trial the same", f"  training ({' '.join(SAME_WORK)});",
             f"  as shipped and without each, {rounds} alternating rounds; ratio = without / with, per round, and "
             "its median", f"  {'':48}{'wall s median':>14}{'CPU s median':>13}{'wall ratios':>36}{'median':>8}"
             f"{'CPU median':>11}"]
    lines.append(f"  {'as shipped':48}{statistics.median(r.wall for r in base):14.2f}"
                 f"{statistics.median(r.cpu for r in base):13.2f}")
    for m in WORKAROUNDS:
        ratios = [w.wall / b.wall for w, b in zip(runs[m], base)]
        cpu = statistics.median(w.cpu / b.cpu for w, b in zip(runs[m], base))
        ratio = statistics.median(ratios)
        out["workarounds"][f"{m}: ratio"] = {"wall": ratios, "median": ratio, "cpu_median": cpu}
        lines.append(f"  {'without ' + m:48}{statistics.median(r.wall for r in runs[m]):14.2f}"
                     f"{statistics.median(r.cpu for r in runs[m]):13.2f}"
                     f"{' '.join(f'{x:.2f}' for x in ratios):>36}{ratio:8.2f}{cpu:11.2f}")
    for m in WORKAROUNDS:
        bought = out["workarounds"][f"{m}: ratio"]["median"] - 1
        lines.append(f"  {m}: buys {bought:+.0%} of wall time: "
                     + ("keeps its place" if bought >= WORKAROUND_TARGET else "remove it")
                     + f" (it stays if it buys >= {WORKAROUND_TARGET:.0%})")
    disturbed = sum(r.others > QUIET for rs in runs.values() for r in rs)
    return lines + [f"  {disturbed} of {sum(map(len, runs.values()))} runs shared the CPUs with other processes "
                    f"(> {QUIET} cores): the rounds' pairing is what makes their ratios comparable"]


def fixed_costs(tmp: Path, out: dict) -> list[str]:
    """Import times, and a process's first MLflow query on a new SQLite store (creates the schema), then again."""
    log("fixed costs")
    imports = {}
    for m in ("numpy", "optuna", "mlflow", "sweeps.commands.sweep"):  # the sweep command's imports
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {m}"], check=True, cwd=ROOT)
        imports[m] = time.perf_counter() - t0
    code = ("import sys, time; from mlflow import MlflowClient; t = time.perf_counter(); "
            "MlflowClient(tracking_uri=sys.argv[1]).get_experiment_by_name('x'); print(time.perf_counter() - t)")
    new, old = (float(subprocess.run([sys.executable, "-c", code, f"sqlite:///{tmp / 'check.db'}"], check=True,
                                     capture_output=True, text=True).stdout.split()[-1]) for _ in range(2))
    out.update(import_seconds=imports, mlflow_first_query_seconds={"new store": new, "existing store": old})
    return ["Fixed costs, each in a fresh process: import " + ", ".join(f"{m} {s:.2f} s" for m, s in imports.items()),
            f"  first MlflowClient query on a new SQLite store {new:.2f} s (creates the schema), on an existing "
            f"one {old:.2f} s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter trials, one run of each")
    parser.add_argument("--repeat", type=int, help="runs of each sweep, the best kept (default 2, quick 1)")
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--trial-seconds", type=float, help="sections 1-2's trial length (default 1, quick 0.5): "
                        "how the tracking overhead, mostly a fixed cost per trial and per sweep, shrinks with it")
    parser.add_argument("--sections", default="1,2,3,4,5,6", help="which to run: 1,2 = throughput and tracking "
                        "overhead (one set of sweeps), 3 = Hydra's sweeper, 4 = the default sweep, 5 = tracking's "
                        "marginal cost per trial, 6 = what each workaround that stays buys (default: all)")
    args = parser.parse_args()
    if args.trial_seconds is not None and args.trial_seconds <= 0:
        parser.error(f"--trial-seconds must be > 0, not {args.trial_seconds}")
    repeat = args.repeat or (1 if args.quick else 2)
    load = os.getloadavg()[0]
    out: dict = {"quick": args.quick, "repeat": repeat, "load_before": load}
    lines = [f"nnsweeps sweep benchmark ({'quick' if args.quick else 'full'}), {datetime.now():%Y-%m-%d %H:%M}",
             f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}; "
             f"optuna {version('optuna')}, mlflow {version('mlflow')}, hydra-core {version('hydra-core')}, "
             f"joblib {version('joblib')}",
             f"load average (1 min) before: {load:.2f}" + ("  (other processes are busy: expect noise)" if load > 0.5 else "")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    bench = Bench(tmp, repeat, wait_budget=60.0 if args.quick else 300.0)
    sections, body, six = set(args.sections.split(",")), [], []
    try:
        if {"1", "2"} & sections:
            body += ["", *throughput(bench, args.quick, out, args.trial_seconds)]
        if "3" in sections:
            body += ["", *hydra_comparison(bench, args.quick, out)]
        if "4" in sections:
            rounds = args.repeat or (1 if args.quick else 4)  # a short sweep: noisier, more rounds
            body += ["", *default_sweep(Bench(tmp, rounds, bench.budget), args.quick, out)]
        if "5" in sections:
            body += ["", *marginal_cost(bench, args.quick, out)]
        if "6" in sections:
            rounds = args.repeat or (1 if args.quick else 7)  # alternating pairs, on a machine that may be busy
            six = ["", *workarounds(Bench(tmp, rounds, bench.budget), args.quick, rounds, out)]
        if body:
            body += ["", *fixed_costs(tmp, out)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_after"] = os.getloadavg()[0]
    after = f"load average (1 min) after: {out['load_after']:.2f}"
    if body:
        with recorded("bench-sweep", "Throughput and tracking's cost (`make bench-sweep`)", keep=not args.quick):
            print("\n".join([*lines, *body, after]))
    if six:  # a section of its own: `--sections 6` alone leaves the one above as it was
        with recorded("bench-sweep-workarounds", "What each workaround that stays buys (`make bench-sweep`, "
                      "section 6)", keep=not args.quick):
            print("\n".join([*lines, *six, after]))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
        print(f"\n(all numbers in {args.json})")


if __name__ == "__main__":
    main()
