"""How a real cluster's latency changes a sweep's throughput (issue 24), on simulated hosts.

    .venv/bin/python benchmarks/bench_cluster.py [--trials N] [--delay MS]     (as root; `make bench-cluster`)

Builds the cluster of tests/cluster/harness.py (hosts db, a, b as network namespaces on one
bridge; PostgreSQL with a password and MLflow's basic-auth server on db), then runs tracked
sweeps of short trials (~0.2 s of training, so that the stores weigh as much as they can):
the launcher on a alone (1 worker host), and with a joined worker on b (2 worker hosts), each
host one worker process; with the link as it is (0 ms) and through a delaying TCP proxy on db
that adds `--delay` ms to every round trip (tests/cluster/delay.py: this kernel has no netem).
Trials per minute count the trials that finished from the moment every host runs (the first
trial of the last host to start) to the last trial's end. Exits 0; a failing sweep stops it.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results import recorded  # noqa: E402  (benchmarks/results.py: a script's own folder is on sys.path)
from tests.cluster.conftest import HEARTBEAT, ClusterSweep  # noqa: E402
from tests.cluster.harness import MLFLOW_PORT, PG_PORT, Cluster, Probe, namespaces_refused  # noqa: E402

SHORT = ["search_space=none", "+search_space.train.learning_rate={type:float,low:0.5,high:1.5}",
         "model.hidden_units=[16]", "train.iterations=2000", "sweep.pruner=none", "sweep.sampler=random",
         "sweep.n_jobs=1"]
PROXY = {PG_PORT: 6432, MLFLOW_PORT: 6001}  # the delayed ports on db


def measure(cluster: Cluster, probe: Probe, hosts: int, delayed: bool, n: int) -> tuple[float, float]:
    """Trials per minute, and mean seconds per trial in its worker."""
    db = cluster.addr("db")
    stores = {"storage": f"postgresql://postgres@{db}:{PROXY[PG_PORT]}/optuna",
              "uri": f"http://{db}:{PROXY[MLFLOW_PORT]}"} if delayed else {}
    sweep = ClusterSweep(cluster, probe)
    launcher = sweep.start("a", f"sweep.n_trials={n}", *HEARTBEAT, *SHORT, **stores)
    procs = [launcher]
    if hosts == 2:
        sweep.wait_launched(launcher)
        procs.append(sweep.start("b", f"sweep.n_trials={n}", *HEARTBEAT, *SHORT, module="sweeps.worker", **stores))
    for proc in procs:
        sweep.finish(proc, timeout=900)
    trials = sweep.trials("COMPLETE")
    firsts = [min(t["start"] for t in trials if t["user_attrs"]["host"] == h)
              for h in {t["user_attrs"]["host"] for t in trials}]
    if len(firsts) < hosts:
        raise SystemExit(f"only {len(firsts)} of {hosts} hosts ran trials: give more --trials")
    since, end = max(firsts), max(t["complete"] for t in trials)
    counted = [t for t in trials if t["complete"] > since]
    return 60 * len(counted) / (end - since), statistics.mean(t["complete"] - t["start"] for t in trials)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--delay", type=float, default=20.0, help="ms added to each round trip")
    args = parser.parse_args()
    why = namespaces_refused()
    if why:
        print(f"bench-cluster: no simulated cluster here: {why}", file=sys.stderr)
        return 2
    import optuna

    results: dict[tuple[int, bool], tuple[float, float]] = {}
    with Cluster() as cluster:
        db = cluster.addr("db")
        proxy = cluster.spawn("db", [sys.executable, "-m", "tests.cluster.delay", "--delay", str(args.delay / 1000),
                                     *(f"{db}:{PROXY[p]}={db}:{p}" for p in PROXY)], user=None)
        assert proxy.stdout.readline().strip() == "ready"
        probe = Probe(cluster)
        for delayed in (False, True):
            for hosts in (1, 2):
                started = time.monotonic()
                results[hosts, delayed] = measure(cluster, probe, hosts, delayed, args.trials)
                print(f"  {hosts} worker host(s), {args.delay if delayed else 0:g} ms: "
                      f"{results[hosts, delayed][0]:.0f} trials/min ({time.monotonic() - started:.0f} s)", flush=True)
        probe.close()
    delay = f"{args.delay:g} ms"
    with recorded("bench-cluster", "Latency across simulated hosts (`make bench-cluster`)", markdown=True):
        report(results, args, delay, optuna.__version__)
    return 0


def report(results: dict, args, delay: str, optuna_version: str) -> None:
    print(f"\nbench-cluster: {datetime.now():%Y-%m-%dT%H:%M:%S}, {platform.python_version()}, Optuna "
          f"{optuna_version}; hosts a, b and db share this machine's 2 cores\n")
    print(f"Trials per minute, tracked ({args.trials} trials of ~0.2 s of training, one worker process per host)\n")
    print(f"| worker hosts | 0 ms | {delay} | seconds per trial, 0 ms | seconds per trial, {delay} |")
    print("|---:|---:|---:|---:|---:|")
    for hosts in (1, 2):
        (fast, t_fast), (slow, t_slow) = results[hosts, False], results[hosts, True]
        print(f"| {hosts} | {fast:.0f} | {slow:.0f} | {t_fast:.2f} | {t_slow:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
