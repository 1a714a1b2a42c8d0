"""`make cluster-demo`: a sweep across simulated hosts (tests/cluster/harness.py), then every trace
of them removed. As root: builds hosts db, a, b and c, runs the launcher on a and a joined worker
on b against PostgreSQL and the MLflow server on db (both asking for credentials), prints both
stores' counts as read from the fresh host c, checks that no password reached a run, a log or
.hydra/, tears the cluster down and checks that no namespace is left. Exit 0 when all holds."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from tests.cluster.conftest import HEARTBEAT, STEADY, ClusterSweep
from tests.cluster.harness import HOSTS, Cluster, Probe, namespaces_refused

N_TRIALS = 12


def table(trials: list[dict], runs: list[dict]) -> str:
    hosts = ("host-a", "host-b")
    states = Counter((t["user_attrs"].get("host"), t["state"]) for t in trials)
    statuses = Counter((r["tags"].get("host"), r["status"]) for r in runs if r["tags"].get("nnsweeps.role") == "trial")
    rows = [f"| {'store (on db)':<28} | {'count':<22} | {' | '.join(hosts)} | total |", f"|{'-' * 30}|{'-' * 24}|" +
            "-------:|" * (len(hosts) + 1)]
    for store, what, counts in [("optuna (PostgreSQL)", f"trials {s}", (states, s)) for s in
                                ("COMPLETE", "PRUNED", "FAIL", "RUNNING")] + \
                               [("mlflow (server)", f"trial runs {s}", (statuses, s)) for s in
                                ("FINISHED", "KILLED", "FAILED", "RUNNING")]:
        counter, key = counts
        per = [counter[(h, key)] for h in hosts]
        rows.append(f"| {store:<28} | {what:<22} | " + " | ".join(f"{n:>6}" for n in per) + f" | {sum(per):>5} |")
    parents = Counter(r["status"] for r in runs if r["tags"].get("nnsweeps.role") == "sweep")
    rows.append(f"| {'mlflow (server)':<28} | {'parent runs':<22} | {dict(parents)}")
    return "\n".join(rows)


def main() -> int:
    why = namespaces_refused()
    if why:
        print(f"[cluster-demo] no simulated cluster here: {why}", file=sys.stderr)
        return 2
    cluster = Cluster()
    problems: list[str] = []
    try:
        print(f"[cluster-demo] hosts {', '.join(HOSTS)} as namespaces {cluster.prefix}-*, on a bridge in "
              f"{cluster.prefix}-switch; servers on db {cluster.addr('db')} (PostgreSQL with a password, MLflow's "
              "basic-auth app)", flush=True)
        cluster.build().start_servers()
        probe = Probe(cluster)
        sweep = ClusterSweep(cluster, probe)
        launcher = sweep.start("a", f"sweep.n_trials={N_TRIALS}", *HEARTBEAT, *STEADY)
        sweep.wait_launched(launcher)
        worker = sweep.start("b", f"sweep.n_trials={N_TRIALS}", *HEARTBEAT, *STEADY, module="sweeps.worker")
        outputs = [sweep.finish(launcher), sweep.finish(worker)]
        print("\n".join(line for line in outputs[0].splitlines() if line.startswith(("Best trial", "[sweep] trial")))
              + "\n" + outputs[1].splitlines()[-1], flush=True)
        trials, runs = sweep.trials(), sweep.runs()
        probe.close()
        print(f"\n[cluster-demo] study {sweep.name!r}, read from host c:\n{table(trials, runs)}\n", flush=True)
        finished = [t for t in trials if t["state"] in ("COMPLETE", "PRUNED")]
        if len(finished) != N_TRIALS:
            problems.append(f"{len(finished)} finished trials, not {N_TRIALS}")
        if {t["user_attrs"].get("host") for t in finished} != {"host-a", "host-b"}:
            problems.append("the trials did not run on both worker hosts")
        if any(t["state"] == "RUNNING" for t in trials) or any(r["status"] == "RUNNING" for r in runs):
            problems.append("something is left RUNNING")
        # the passwords: in no run's params or tags, no output, nothing written on a or b
        texts = [str(r["params"]) + str(r["tags"]) for r in runs] + outputs
        texts += [p.read_text(errors="replace") for h in ("a", "b") for p in cluster.folder(h).rglob("*")
                  if p.is_file() and p.stat().st_size < 1_000_000]
        leaked = [name for name, password in cluster.passwords.items() if any(password in t for t in texts)]
        if leaked:
            problems.append(f"the password of {', '.join(leaked)} appears in a run, an output or a file on a or b")
        else:
            print("[cluster-demo] no password in any run's params or tags, in the output, nor in a file on a or b "
                  "(.hydra/ included)")
    finally:
        left = cluster.close()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if left or cluster.prefix in listed:
        problems.append(f"namespaces left behind: {left or listed}")
    else:
        print(f"[cluster-demo] torn down: no namespace {cluster.prefix}-* left (ip netns list)")
    for problem in problems:
        print(f"[cluster-demo] FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
