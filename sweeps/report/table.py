"""`python -m sweeps.report [RUN_ID] [--top N]`: the top trials of a sweep as a table in the terminal.

RUN_ID is a sweep's parent run (a trial's run id stands for its sweep); without it, the latest
sweep in the store. The tracking URI comes from MLFLOW_TRACKING_URI (default sqlite:///mlflow.db),
as for sweeps.reproduce. Exit status: 0 with a table, 2 when there is no such run or store.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import dataclass, field

import yaml

from sweeps import log
from sweeps.config.metrics import METRICS, TEST_METRICS
from sweeps.errors import ConfigError
from sweeps.record import CONFIRM_RANK_TAG, VERDICT_TAG
from sweeps.tracking.store import PARENT_TAG, default_uri, open_existing

logger = logging.getLogger(__name__)


class ReportError(Exception):
    """A one-sentence reason why there is nothing to report; exit status 2."""


@dataclass
class Sweep:
    run: object  # mlflow.entities.Run of the parent
    experiment: str
    metric: str  # the first of `metrics`
    direction: str
    trials: list  # child runs
    metrics: list[str] = field(default_factory=list)  # sweep.metric's names: several for a Pareto front
    directions: list[str] = field(default_factory=list)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--top must be an integer >= 1, not {text!r}")
    return n


def open_client(uri: str):
    """An MlflowClient on an existing store: a missing SQLite file is an error here, not a new store."""
    try:
        return open_existing(uri)
    except ConfigError as err:
        raise ReportError(str(err).rstrip(".")) from None


def _all_runs(client, experiment_ids: list[str], filter_string: str, order_by: list[str] | None = None,
              limit: int | None = None) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=min(limit or 1000, 1000),
                                  order_by=order_by, page_token=token)
        runs += list(page)
        token = page.token
        if not token or (limit and len(runs) >= limit):
            return runs[:limit] if limit else runs


def find_sweep(client, uri: str, run_id: str | None) -> Sweep:
    from mlflow.exceptions import MlflowException  # deferred: mlflow's import, for `--help` and a missing store

    if run_id:
        try:
            run = client.get_run(run_id)
        except MlflowException:
            raise ReportError(f"there is no run {run_id!r} in {uri}; pass a sweep's run id as printed by "
                              "`python -m sweeps` or shown in the MLflow UI, or none for the latest sweep") from None
        role = run.data.tags.get("nnsweeps.role")
        if role == "trial" and run.data.tags.get(PARENT_TAG):
            logger.warning(f"(run {run_id} is trial {run.data.tags.get('optuna.trial', '?')}: reporting its sweep "
                           f"{run.data.tags[PARENT_TAG]})")
            return find_sweep(client, uri, run.data.tags[PARENT_TAG])
        if role != "sweep":
            raise ReportError(f"run {run_id!r} in {uri} is not a sweep made by `python -m sweeps` "
                              "(it has no nnsweeps.role tag 'sweep')")
    else:
        experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        latest = _all_runs(client, experiments, "tags.`nnsweeps.role` = 'sweep'",
                           order_by=["attributes.start_time DESC"], limit=1) if experiments else []
        if not latest:
            raise ReportError(f"there is no sweep in {uri}; run one with `make sweep` or `python -m sweeps`")
        run = latest[0]
    trials = _all_runs(client, [run.info.experiment_id], f"tags.`{PARENT_TAG}` = '{run.info.run_id}'")
    metrics = _names(run.data.params.get("sweep.metric", "val_cost"))
    directions = _names(run.data.params.get("sweep.direction", "null"))
    if len(directions) != len(metrics) or not set(directions) <= {"minimize", "maximize"}:
        directions = [METRICS[m].direction if m in METRICS else "minimize" for m in metrics]
    experiment = client.get_experiment(run.info.experiment_id).name
    return Sweep(run, experiment, metrics[0], directions[0], trials, metrics, directions)


def _names(text: str) -> list[str]:
    """A logged param that is a name ('val_cost'), a list of them ("['val_cost', 'n_params']"), or
    null ([]); read as YAML, which parses those and runs nothing."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return [text]
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _number(text: str) -> str:
    """A param as the table shows it: floats to 4 significant digits, the rest as logged."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return str(text)
    if text.lstrip("-").isdigit():
        return text
    return f"{value:.4g}"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render(sweep: Sweep, uri: str, top: int) -> str:
    """The sweep's top trials by its metric (feasible ones first, each marked, with constraints); for
    several metrics, the trials of its Pareto front (the runs tagged pareto=true), each with the
    command that reproduces it. Without a feasible trial there is no best to name."""
    runs = sweep.trials
    state = {r.info.run_id: r.data.tags.get("optuna.state", r.info.status) for r in runs}
    counts = {s: sum(v == s for v in state.values()) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    several = len(sweep.metrics) > 1
    complete = [r for r in runs if state[r.info.run_id] == "COMPLETE" and math.isfinite(
        r.data.metrics.get(sweep.metric, float("nan")))
        and (not several or r.data.tags.get("pareto") == "true")]
    complete.sort(key=lambda r: r.data.metrics[sweep.metric], reverse=sweep.direction == "maximize")
    complete.sort(key=lambda r: r.data.tags.get("feasible") == "false")  # stable: by the metric within each
    constrained = any("feasible" in r.data.tags for r in runs)  # the tag is there only with sweep.constraints
    shown = complete[:top]
    sampled: list[str] = []  # the sampled params, in the order the trials sampled them
    for r in sorted(runs, key=lambda r: int(r.data.tags.get("optuna.trial", 0))):
        for key in filter(None, r.data.tags.get("sampled", "").split(",")):
            if key not in sampled and key != "model.hidden_units":
                sampled.append(key)
    objectives = sweep.metrics or [sweep.metric]
    metrics = [*objectives, *(m for m in METRICS if m not in objectives)]
    header = ["rank", "trial", *(METRICS[m].label if m in METRICS else m for m in metrics), *sampled,
              *(["feasible"] if constrained else []), "run id"]
    rows = []
    for rank, r in enumerate(shown, 1):
        m = r.data.metrics
        cells = [str(rank), r.data.tags.get("optuna.trial", "?")]
        for key in metrics:
            v = m.get(key)
            cells.append("" if v is None else format(v, METRICS[key].fmt if key in METRICS else ".4g"))
        cells += [_number(r.data.params[k]) if k in r.data.params else "-" for k in sampled]
        cells += (["no" if r.data.tags.get("feasible") == "false" else "yes"] if constrained else [])
        cells.append(r.info.run_id)
        rows.append(cells)
    p = sweep.run
    tally = f"{counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed"
    if counts["RUNNING"]:
        tally += f", {counts['RUNNING']} running"
    out = [f"Sweep {p.info.run_name} (run {p.info.run_id}, {p.info.status}) in experiment {sweep.experiment!r}, {uri}",
           f"{len(runs)} trials: {tally}"]
    if several:
        by = ", ".join(f"{m} ({d})" for m, d in zip(sweep.metrics, sweep.directions))
        if not shown:
            out.append(f"No trial is tagged on the Pareto front by {by} (they are tagged at the sweep's end).")
            return "\n".join(out) + "\n"
        more = f"; {len(complete) - top} more with --top {len(complete)}" if len(complete) > top else ""
        out += [f"Pareto front: {len(complete)} trials by {by}{more}:", "",
                _table(header, rows, right=set(range(2 + len(metrics)))), "", "reproduce each:",
                *(f"  trial {r.data.tags.get('optuna.trial', '?')}: MLFLOW_TRACKING_URI={uri} python -m "
                  f"sweeps.reproduce {r.info.run_id}" for r in shown)]
        return "\n".join(out) + "\n"
    if not shown:
        out.append("No trial completed, so there is nothing to rank.")
        return "\n".join(out) + "\n"
    out += [f"Top {len(shown)} by {sweep.metric} ({sweep.direction}):", "",
            _table(header, rows, right=set(range(2 + len(metrics)))), ""]
    if shown[0].data.tags.get("feasible") == "false":  # feasible ones rank first: then there is none
        out.append("No trial meets the sweep's constraints (feasible: no), so there is no best.")
    else:
        out.append(f"reproduce the best: MLFLOW_TRACKING_URI={uri} python -m sweeps.reproduce {shown[0].info.run_id}")
    return "\n".join(out + confirmed(sweep)) + "\n"


def confirmed(sweep: Sweep) -> list[str]:
    """The confirmation's verdict (the parent run's tag) and each confirmed trial's mean and 95%
    interval over its fresh seeds (its run's confirm/* metrics); nothing if the sweep had none."""
    line = sweep.run.data.tags.get(VERDICT_TAG)
    if not line:
        return []
    runs = sorted((r for r in sweep.trials if r.data.tags.get(CONFIRM_RANK_TAG, "").isdigit()),
                  key=lambda r: int(r.data.tags[CONFIRM_RANK_TAG]))
    names = [sweep.metric, *(k for k in TEST_METRICS if k != sweep.metric)]
    header = ["trial", *(f"{k} (95% interval)" for k in names)]
    rows = []
    for r in runs:
        m = r.data.metrics
        rows.append([r.data.tags.get("optuna.trial", "?"), *(
            f"{m[f'confirm/{k}_mean']:.4f} [{m[f'confirm/{k}_ci_low']:.4f}, {m[f'confirm/{k}_ci_high']:.4f}]"
            if f"confirm/{k}_ci_high" in m else "-" for k in names)])
    return ["", f"confirmed: {line}", *(["", _table(header, rows, right=set(range(len(header))))] if rows else [])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweeps.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", nargs="?", default=None,
                        help="a sweep's parent run id (default: the latest sweep in the store)")
    parser.add_argument("--top", type=_positive, default=10, help="how many trials to show (default 10)")
    args = parser.parse_args(argv)
    log.setup()  # its messages on the terminal, when called from Python too
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = default_uri()
    try:
        client = open_client(uri)
        sweep = find_sweep(client, uri, (args.run_id or "").strip() or None)
    except ReportError as err:
        logger.error(f"error: {err}.")
        return 2
    logger.info(render(sweep, uri, args.top).removesuffix("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
