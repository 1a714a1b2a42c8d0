"""The winner's curse, measured: how far a sweep's reported best is from what its config scores
again with fresh seeds, and on the held-out test split; and what that confirmation costs.

    .venv/bin/python benchmarks/bench_honest.py [--sweeps 10] [--json PATH]

Each sweep is the default one (`python -m sweeps`: flower, the default space, tpe, 30 trials, 2
workers, sweep.confirm.top=3 with 5 seeds) through sweeps.run(overrides), on a fresh journal in a
temp dir with tracking off; sweep i has sweep.seed=i (the sampler's seed), while `seed` (the
split, the initial weights) stays 0, as in the default. For each, the best trial's single-seed
validation score (the search's, what a sweep reports) minus its confirmed mean over the 5 fresh
seeds, and minus its test score (mean over the same seeds), for val_cost (the default metric) and
val_accuracy; the paired t-test's p of the winner against the runner-up; and the seconds the
confirmation took against the whole sweep's (the sweep's own line "[sweep] confirmed in X s").
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results import recorded  # noqa: E402  (benchmarks/results.py: a script's own folder is on sys.path)
import sweeps  # noqa: E402  (after the path: the checkout's code, not an installed copy)


def one_sweep(i: int, folder: Path) -> dict:
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        result = sweeps.run([f"sweep.seed={i}", f"sweep.study_name=honest{i}", f"sweep.storage={folder / 'j.journal'}",
                             "tracking.enabled=false"])
    seconds = time.perf_counter() - start
    confirm = float(re.search(r"confirmed in ([0-9.]+) s", out.getvalue()).group(1))
    w = result.confirmed[0]
    c = result.study.user_attrs["nnsweeps.confirmation"]
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    return {"sweep": i, "trial": w.number, "val_cost": w.search_value, "val_cost_confirmed": w.val_mean,
            "test_cost": w.test_mean, "val_accuracy": result.best.metrics["val_accuracy"],
            "val_accuracy_confirmed": mean(w.values["val_accuracy"]), "test_accuracy": mean(w.values["test_accuracy"]),
            "p": c["p_value"], "distinguishable": c["distinguishable"], "seconds": seconds, "confirm_seconds": confirm}


def table(rows: list[dict]) -> str:
    head = ("| sweep | best trial | val_cost (search) | − confirmed | − test | val_accuracy (search) | − confirmed "
            "| − test | winner vs runner-up p | confirmation / sweep |")
    lines = [head, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['sweep']} | {r['trial']} | {r['val_cost']:.4f} | {r['val_cost'] - r['val_cost_confirmed']:+.4f} "
                     f"| {r['val_cost'] - r['test_cost']:+.4f} | {r['val_accuracy']:.4f} "
                     f"| {r['val_accuracy'] - r['val_accuracy_confirmed']:+.4f} "
                     f"| {r['val_accuracy'] - r['test_accuracy']:+.4f} | {r['p']:.2g} "
                     f"| {r['confirm_seconds']:.1f} s / {r['seconds']:.1f} s |")
    gap = lambda a, b: [r[a] - r[b] for r in rows]  # noqa: E731
    cell = lambda v: f"{statistics.mean(v):+.4f} ± {statistics.stdev(v) if len(v) > 1 else 0:.4f}"  # noqa: E731
    share = statistics.mean(r["confirm_seconds"] / r["seconds"] for r in rows)
    lines.append(f"| mean ± sd | | | {cell(gap('val_cost', 'val_cost_confirmed'))} | {cell(gap('val_cost', 'test_cost'))} "
                 f"| | {cell(gap('val_accuracy', 'val_accuracy_confirmed'))} "
                 f"| {cell(gap('val_accuracy', 'test_accuracy'))} "
                 f"| {sum(r['distinguishable'] is True for r in rows)} of {len(rows)} distinguishable "
                 f"| {share:.0%} of the sweep |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    for i in range(args.sweeps):
        with tempfile.TemporaryDirectory(prefix="bench-honest-") as tmp:
            rows.append(one_sweep(i, Path(tmp)))
        r = rows[-1]
        print(f"sweep {i}: best trial {r['trial']}, val_cost {r['val_cost']:.4f} (search) vs "
              f"{r['val_cost_confirmed']:.4f} confirmed, test_cost {r['test_cost']:.4f}; {r['seconds']:.1f} s, "
              f"confirmation {r['confirm_seconds']:.1f} s", file=sys.stderr, flush=True)
    with recorded("bench-honest", "The winner's curse (`make bench-honest`)", markdown=True):
        print(f"The winner's curse over {len(rows)} default sweeps (flower, 30 trials, tpe; sweep.seed = 0..{len(rows) - 1}; "
              "confirmed: the mean over 5 fresh seeds on the same split; test: the held-out 20 %, same seeds)\n")
        print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
