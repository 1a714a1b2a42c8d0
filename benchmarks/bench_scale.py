"""Benchmark the shared study storage: when to move from the journal file to PostgreSQL.

    .venv/bin/python benchmarks/bench_scale.py [--quick] [--trials N] [--json PATH]

Starts a throwaway PostgreSQL server (default settings, fsync on) and an MLflow server over it,
both on 127.0.0.1, then measures:
  1. Sweep throughput, trials per minute, with 1, 2 and 4 local worker processes (loky) against
     the journal file and against PostgreSQL: `python -m sweeps` with short trials (~0.1 s of
     training) and tracking off, so that the storage weighs as much as it can; then the same with
     tracking on (journal + SQLite MLflow store, and PostgreSQL + the MLflow server over HTTP).
     Trials per minute count from the first trial's start to the last trial's end.
  2. Storage overhead per trial, without training: what a worker does to the storage for one
     trial (budget lock, count, ask, host/pid attributes, heartbeat, 20 intermediate reports
     written by a thread and 11 questions to the median pruner, the run's attributes, the
     metrics, tell), in one process, for the first 100 trials of a study and for trials 500-600; and the
     most trials per minute the storage can take from 1, 2 and 4 processes doing only that.
Each verdict has its floor, measured in the same run: Optuna's own client doing a trial's bare
storage work (ask, the reports, tell) for section 2; MLflow's client alone writing the same runs
(the artifacts a tracked trial left on the server, its params, metrics and curve) to the server,
one after another, for the tracked share. A target a floor makes unreachable becomes 1.2 x that
floor (for the share: the floor's share / 1.2), as issue 21 says.
Exits 0; only a failing `python -m sweeps` or server stops it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from sweeps import quiet  # noqa: E402
from sweeps.services import MlflowServer, Postgres, free_port, postgres_missing  # noqa: E402
from sweeps.urls import with_driver  # noqa: E402
from results import recorded  # noqa: E402  (benchmarks/results.py: a script's own folder is on sys.path)

WORKERS = (1, 2, 4)
REPORTS = 20  # intermediate values per trial: train.iterations 2000 / train.report_every 100, the defaults
# short trials: ~0.1 s of full-batch training on flower (10 reports each), nothing pruned, nothing
# sampled but the learning rate
TRIAL = ["search_space=none", "+search_space.train.learning_rate={type:float,low:0.5,high:1.5}",
         "model.hidden_units=[16]", "train.iterations=1000", "sweep.pruner=none", "sweep.sampler=random"]
QUIET = 0.3  # cores busy with other processes below which the machine counts as quiet
SHARE_TARGET, OPS_TARGET_MS = 0.80, 25.0  # tracked / untracked trials/min over PostgreSQL, 2 workers; ms a trial


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit: float = 60.0) -> None:
    """Waits (at most `limit` s) until other processes use less than QUIET cores: a shared machine."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        b0 = busy_seconds()
        time.sleep(1)
        if busy_seconds() - b0 < QUIET:
            return
    log(f"the machine stayed busy for {limit:.0f} s: measuring anyway")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- 1. whole sweeps -------------------------------------------------------------------------
def sweep(tmp: Path, label: str, storage: str, uri: str, workers: int, n_trials: int, tracking: bool) -> dict:
    d = Path(tempfile.mkdtemp(prefix="sweep-", dir=tmp))
    name = f"b{os.getpid()}{int(time.time() * 1000) % 10**8}"
    cmd = [sys.executable, "-m", "sweeps", f"sweep.study_name={name}", f"sweep.storage={storage}",
           f"tracking.uri={uri}", f"tracking.experiment={name}", f"tracking.enabled={str(tracking).lower()}",
           f"hydra.run.dir={d / 'hydra'}", f"sweep.n_jobs={workers}", f"sweep.n_trials={n_trials}", *TRIAL]
    wait_quiet()
    log(f"{label}, {workers} worker(s), {n_trials} trials")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"`python -m sweeps` failed ({label}, {workers} workers): {proc.stderr.strip()[-2000:]}")
    study = optuna.load_study(study_name=name, storage=with_driver(storage) if "://" in storage else
                              optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage)))
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    fits = [t.user_attrs.get("metrics", {}).get("fit_seconds", 0.0) for t in trials]
    per_trial = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
    shutil.rmtree(d, ignore_errors=True)
    return {"label": label, "workers": workers, "trials": len(trials), "wall": wall,
            "span": span.total_seconds(), "per_min": 60 * len(trials) / span.total_seconds(),
            "fit_mean": statistics.mean(fits), "trial_mean": statistics.mean(per_trial)}


# ---- 2. storage operations alone -------------------------------------------------------------
def _study(spec: str, name: str, seed: int):
    from sweeps.config.space import parse_space
    from sweeps.study.factory import open_study
    from sweeps.study.storages import storage_for

    cfg = OmegaConf.create({"sweep": {
        "study_name": name, "sampler": "random", "pruner": "median", "n_startup_trials": 5, "warmup_steps": 1000,
        "direction": "minimize", "metric": "val_cost", "heartbeat_interval": 10, "grace_period": 30}})
    storage = storage_for(spec, cfg.sweep)
    return open_study(cfg.sweep, storage, parse_space({}), seed=seed, create=True), storage


def storage_ops(spec: str, name: str, n_trials: int, seed: int, out) -> None:
    """One worker's storage work for each trial until the study holds n_trials, timed per trial:
    the default sweep's, with the median pruner's reports written by a thread and its questions
    from its warm-up on (sweeps.study.reports); the run's id and store are set by the writer."""
    quiet.everywhere()  # a spawned process: the commands' settings, as in the parent
    from sweeps.study.budget import ask_within_budget, heartbeat
    from sweeps.study.reports import Reports

    study, storage = _study(spec, name, seed)
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        trial = ask_within_budget(study, storage, n_trials)
        if trial is None:
            break
        with heartbeat(storage, study, trial.number):
            x = trial.suggest_float("x", 0.0, 1.0)
            reports = Reports(trial)
            for step in range(1, REPORTS + 1):
                reports.report(x / step, step=step * 100)
                if step * 100 >= 1000:  # the warm-up
                    reports.should_prune()
            for key in ("run_id", "tracking_uri"):  # the writer's
                trial.set_user_attr(key, "0" * 32)
            trial.set_user_attr("metrics", {"val_cost": x})
            reports.close()
        study.tell(trial, x)
        times.append(time.perf_counter() - t0)
    out.put((times, time.perf_counter() - start))


def ops_alone(spec: str, name: str, n_trials: int, processes: int) -> tuple[list[list[float]], float]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    _study(spec, name, 0)  # created once, before the processes race for it
    wait_quiet()
    procs = [ctx.Process(target=storage_ops, args=(spec, name, n_trials, i, q)) for i in range(processes)]
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    return [r[0] for r in results], max(r[1] for r in results)


# ---- the floors ------------------------------------------------------------------------------
def bare_optuna(spec: str, name: str, n_trials: int) -> list[float]:
    """Section 2's floor: Optuna's own client doing a trial's bare storage work, one process: ask,
    the reports, tell; no budget lock, heartbeat, attributes nor pruner questions. s per trial."""
    storage = optuna.storages.RDBStorage(with_driver(spec)) if "://" in spec else optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(spec))
    study = optuna.create_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    times = []
    for _ in range(n_trials):
        t0 = time.perf_counter()
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(1, REPORTS + 1):
            trial.report(x / step, step=step * 100)
        study.tell(trial, x)
        times.append(time.perf_counter() - t0)
    return times


def bare_writes(uri: str, artifacts: Path, n_runs: int) -> float:
    """The tracked share's floor: MLflow's client alone writing n_runs trial runs to the server,
    one after another, each with the artifacts of a trial the tracked sweep logged (`artifacts`),
    its params, and its metrics and curve in one batch, then ended. Runs per minute."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(f"bare-{os.getpid()}-{int(time.time())}")
    wait_quiet()
    t0 = time.perf_counter()
    for i in range(n_runs):
        run_id = client.create_run(exp, tags={"optuna.trial": str(i), "nnsweeps.role": "trial"}).info.run_id
        client.log_batch(run_id, params=[Param("train.learning_rate", "1.0")])
        client.log_artifacts(run_id, str(artifacts))
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric("cost", 1.0 / (k + 1), now, k * 100) for k in range(11)]
                         + [Metric(m, 0.5, now, 1000) for m in ("val_cost", "val_accuracy", "train_cost",
                                                              "train_accuracy", "fit_seconds")])
        client.set_terminated(run_id)
    return 60 * n_runs / (time.perf_counter() - t0)


# ---- report --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials: a smoke run")
    parser.add_argument("--trials", type=int, default=0, help="trials per sweep (default 80, --quick 16)")
    parser.add_argument("--json", type=Path, help="write every number here too")
    args = parser.parse_args(argv)
    quiet.everywhere()  # Optuna's and MLflow's notices, as the commands leave them out
    n_sweep = args.trials or (16 if args.quick else 80)
    n_ops, n_ops_par = (120, 60) if args.quick else (600, 300)
    why = postgres_missing()
    if why:
        sys.exit(f"bench-scale needs PostgreSQL: {why}")
    tmp = Path(tempfile.mkdtemp(prefix="nnsweeps-bench-scale-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="nnsweeps-bench-pg-"))  # its own, handed to the postgres user
    pg = Postgres(pg_dir, port=free_port())  # default settings: fsync on, as a real server
    server = None
    result: dict = {"date": datetime.now().isoformat(timespec="seconds"), "machine": platform.platform(),
                    "cores": os.cpu_count(), "python": platform.python_version(), "optuna": optuna.__version__}
    try:
        log("starting PostgreSQL and the MLflow server on 127.0.0.1")
        pg.start()
        optuna_url = pg.createdb("optuna")
        server = MlflowServer(pg.createdb("mlflow"), tmp / "artifacts", port=free_port(), log=tmp / "mlflow.log")
        server.start()

        # 2 first: the storages alone
        ops = {}
        # a client-side knob: commits without waiting for the disk (a crash of the server may lose
        # the last few ms of commits, never corrupt the database)
        async_url = optuna_url + "?options=-csynchronous_commit%3Doff"
        for i, (label, spec) in enumerate((("journal", str(tmp / "ops.journal")), ("postgresql", optuna_url),
                                           ("postgresql, synchronous_commit=off", async_url))):
            log(f"storage operations alone: {label}, 1 process, {n_ops} trials")
            (times,), _ = ops_alone(spec, f"ops1x{i}", n_ops, 1)
            ops[label] = {"first100_ms": 1000 * statistics.mean(times[:100]),
                          "last100_ms": 1000 * statistics.mean(times[-100:]), "n": len(times)}
            wait_quiet()
            bare = bare_optuna(str(tmp / "bare.journal") if label == "journal" else spec, f"bare{i}", 100)
            ops[label]["bare_ms"] = 1000 * statistics.mean(bare)
            for k in WORKERS:
                log(f"storage operations alone: {label}, {k} processes, {n_ops_par} trials")
                spec_k = str(tmp / f"ops{k}.journal") if label == "journal" else spec
                _, span = ops_alone(spec_k, f"par{k}x{i}", n_ops_par, k)
                ops[label][f"per_min_{k}"] = 60 * n_ops_par / span
        result["storage_ops"] = ops

        sweeps = []
        cases = [("journal", lambda w: str(tmp / f"s{w}.journal"), lambda w: f"sqlite:///{tmp / f's{w}.db'}", False),
                 ("postgresql", lambda w: optuna_url, lambda w: server.uri, False),
                 ("journal + sqlite mlflow", lambda w: str(tmp / f"t{w}.journal"),
                  lambda w: f"sqlite:///{tmp / f't{w}.db'}", True),
                 ("postgresql + mlflow server", lambda w: optuna_url, lambda w: server.uri, True)]
        for label, storage, uri, tracking in cases:
            for w in WORKERS:
                sweeps.append(sweep(tmp, label, storage(w), uri(w), w, n_sweep, tracking))
        result["sweeps"] = sweeps
        # a trial's artifacts as the tracked sweep over the server logged them, written again bare
        logged = sorted(p.parent for p in (tmp / "artifacts").rglob("config.yaml"))
        if logged:
            log(f"the floor: MLflow's client alone writing {n_sweep} runs to the server")
            result["bare_writes_per_min"] = bare_writes(server.uri, logged[0], n_sweep)
    finally:
        if server is not None:
            server.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(pg_dir, ignore_errors=True)

    # ---- print ----
    with recorded("bench-scale", "When to move to PostgreSQL (`make bench-scale`)", markdown=True,
                  keep=not args.quick):
        print(f"\nbench-scale: {result['date']}, {result['cores']} cores, Python {result['python']}, "
              f"Optuna {result['optuna']}, PostgreSQL on 127.0.0.1 (fsync on)\n")
        print(f"1. Sweep throughput, trials/min ({n_sweep} trials of ~{sweeps[0]['fit_mean'] * 1000:.0f} ms of training "
              "each; local worker processes)\n")
        labels = list(dict.fromkeys(s["label"] for s in sweeps))
        print("| workers | " + " | ".join(labels) + " |")
        print("|---:|" + "---:|" * len(labels))
        for w in WORKERS:
            row = [f"{s['per_min']:.0f}" for label in labels for s in sweeps if s["label"] == label and s["workers"] == w]
            print(f"| {w} | " + " | ".join(row) + " |")
        print("\nmean seconds per trial (start to end, in its worker), 1 worker: " + ", ".join(
            f"{s['label']} {s['trial_mean']:.3f}" for s in sweeps if s["workers"] == 1))
        print(f"\n2. Storage overhead per trial, no training (budget lock, ask, attributes, heartbeat, "
              f"{REPORTS} reports, tell)\n")
        print("| storage | ms/trial, trials 1-100 | ms/trial, trials " + f"{n_ops - 99}-{n_ops}"
              + " | floor: Optuna's bare ask, reports, tell | " + " | ".join(f"max trials/min, {k} proc" for k in WORKERS)
              + " |")
        print("|---|---:|---:|---:|" + "---:|" * len(WORKERS))
        for label, o in ops.items():
            print(f"| {label} | {o['first100_ms']:.1f} | {o['last100_ms']:.1f} | {o.get('bare_ms', 0.0):.1f} | "
                  + " | ".join(f"{o[f'per_min_{k}']:.0f}" for k in WORKERS) + " |")
        print("\nVerdicts")
        per_min = {(s["label"], s["workers"]): s["per_min"] for s in sweeps}
        if ("postgresql", 2) in per_min and ("postgresql + mlflow server", 2) in per_min:
            untracked = per_min[("postgresql", 2)]
            share = per_min[("postgresql + mlflow server", 2)] / untracked
            floor = min(1.0, result.get("bare_writes_per_min", untracked) / untracked)
            target = min(SHARE_TARGET, floor / 1.2)
            print(f"- tracked trials/min over PostgreSQL + the MLflow server, as a share of untracked over the same "
                  f"PostgreSQL, 2 workers: {share:.0%}  {'PASS' if share >= target else 'MISS'} (target >= "
                  f"{target:.0%}: {SHARE_TARGET:.0%}, or the floor's share / 1.2; the floor, MLflow's client alone "
                  f"writing the same runs one after another: {result.get('bare_writes_per_min', 0):.0f} runs/min, "
                  f"{floor:.0%} of untracked)")
        if "postgresql" in ops:
            ms, bare = ops["postgresql"]["first100_ms"], ops["postgresql"].get("bare_ms", 0.0)
            target = max(OPS_TARGET_MS, 1.2 * bare)
            print(f"- storage operations per trial on PostgreSQL (trials 1-100): {ms:.1f} ms  "
                  f"{'PASS' if ms <= target else 'MISS'} (target <= {target:.0f} ms: {OPS_TARGET_MS:.0f} ms, or 1.2 x "
                  f"the floor, Optuna's own ask, {REPORTS} reports and tell: {bare:.1f} ms; the journal: "
                  f"{ops['journal']['first100_ms']:.1f} ms, its floor {ops['journal'].get('bare_ms', 0.0):.1f} ms)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"\n(all numbers in {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
