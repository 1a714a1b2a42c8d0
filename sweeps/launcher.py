"""The sweep: check the config, open the study and the MLflow parent run, start the workers,
show progress, then summarise the study on the parent run and print the best trial."""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass

import optuna
from joblib import Parallel, delayed, parallel_config
from joblib.externals.loky.process_executor import TerminatedWorkerError
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from sweeps import summary
from sweeps.config import ConfigError, flatten, validate
from sweeps.space import SearchSpace, parse_space
from sweeps.study import count, load_study, reconcile, repair_journal, storage_spec
from sweeps.tracking import Tracker, check_reachable, git_commit
from sweeps.worker import Job, Report, load_data, sampler_seed, work

MAX_RESTARTS = 10  # times the worker pool is started again after a worker died


class SweepStopped(RuntimeError):
    """The sweep stopped before its budget: too many failures in a row."""


@dataclass
class Outcome:
    study: optuna.Study
    tracker: Tracker
    reports: list[Report]


def n_workers(cfg: DictConfig) -> int:
    return (os.cpu_count() or 1) if cfg.sweep.n_jobs == -1 else cfg.sweep.n_jobs


def preflight(cfg: DictConfig) -> SearchSpace:
    """Every check a user's input can fail, before any store is touched."""
    validate(cfg)
    space = parse_space(cfg.search_space)
    try:
        load_data(cfg)  # a CSV's missing label column or NaN features show up only when read
    except ValueError as err:
        raise ConfigError(f"dataset {cfg.dataset.name!r} cannot be used: {err}") from None
    if cfg.tracking.enabled:
        check_reachable(cfg.tracking.uri)
    return space


def run(cfg: DictConfig) -> Outcome:
    space = preflight(cfg)
    if cfg.sweep.sampler == "grid":  # the grid's size bounds the budget
        size = 1
        for values in space.grid().values():
            size *= len(values)
        if cfg.sweep.n_trials > size:
            print(f"[sweep] the grid has {size} points: running {size} trials, not {cfg.sweep.n_trials}")
            cfg.sweep.n_trials = size
    spec = storage_spec(cfg)
    for note in repair_journal(spec):
        print(f"[sweep] {note}", flush=True)
    study = load_study(cfg, spec, space, seed=cfg.sweep.seed, create=True)
    tracker = Tracker.start_sweep(
        cfg.tracking.uri, cfg.tracking.experiment, run_name=f"sweep-{cfg.sweep.study_name}",
        tags={"optuna.study": cfg.sweep.study_name, "optuna.storage": spec, "sampler": cfg.sweep.sampler,
              "pruner": cfg.sweep.pruner, "mlflow.source.git.commit": git_commit()},
        params={k: v for k, v in flatten(cfg).items() if not k.startswith("tracking.")},
        curve_points=cfg.tracking.curve_points, enabled=cfg.tracking.enabled)
    reports: list[Report] = []
    try:
        tidy(study, spec, tracker)
        done = count(study)
        n = min(n_workers(cfg), max(cfg.sweep.n_trials - done, 1))
        print(f"[sweep] study {cfg.sweep.study_name!r}: {done} of {cfg.sweep.n_trials} trials finished; running "
              f"{max(cfg.sweep.n_trials - done, 0)} on {n} worker process(es)\n[sweep] optuna storage: {spec}\n"
              f"[sweep] mlflow: {cfg.tracking.uri} (experiment {cfg.tracking.experiment!r}, "
              f"run {tracker.parent_run_id or 'off'})", flush=True)
        with Progress(study, cfg.sweep.n_trials, cfg.sweep.metric):
            for restart in range(MAX_RESTARTS + 1):
                if count(study) >= cfg.sweep.n_trials:
                    break
                try:
                    reports += run_workers(cfg, spec, tracker, n, count(study))
                    break
                except TerminatedWorkerError as err:
                    # loky stops the whole pool when one worker dies: fail the dead trials, start again
                    print(f"\n[sweep] a worker process died ({str(err).splitlines()[0][:120]}); "
                          "its trial is failed and run again", file=sys.stderr, flush=True)
                    tidy(study, spec, tracker)
            else:
                raise SweepStopped(f"worker processes died {MAX_RESTARTS + 1} times; see the messages above")
        summary.finish_sweep(study, tracker, cfg)
    except KeyboardInterrupt:
        _after_interrupt(study, spec, tracker)
        raise
    except BaseException as err:
        tracker.end(tracker.parent_run_id, "FAILED", {"error": f"{type(err).__name__}: {err}"})
        raise
    stopped = [r.stopped for r in reports if r.stopped]
    tracker.end(tracker.parent_run_id, "FAILED" if stopped else "FINISHED")
    if stopped:
        raise SweepStopped(f"the sweep stopped early: {stopped[0]}")
    return Outcome(study, tracker, reports)


def run_workers(cfg: DictConfig, spec: str, tracker: Tracker, n: int, done: int) -> list[Report]:
    # n_jobs x BLAS threads <= cores: oversubscribed BLAS ran 4-10 x slower here
    threads = max(1, (os.cpu_count() or 1) // n)
    container = OmegaConf.to_container(cfg, resolve=True)
    jobs = [Job(container, spec, tracker, i, sampler_seed(cfg.sweep.seed, i, done), threads) for i in range(n)]
    with parallel_config(backend="loky", inner_max_num_threads=threads):
        return Parallel(n_jobs=n)(delayed(work)(job) for job in jobs)


def tidy(study: optuna.Study, spec: str, tracker: Tracker) -> None:
    """Makes the two stores agree after a crash: trials whose process died are failed (and
    queued again), and their MLflow runs, like any run left RUNNING by a dead process, KILLED."""
    for t in reconcile(study, spec):
        print(f"[sweep] trial {t.number} was left running by a process that is gone: failed, queued again",
              flush=True)
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    for run_id in tracker.orphans(study.study_name, running):
        tracker.end(run_id, "KILLED", {"optuna.state": "FAIL", "reason": "its process died"})


def _after_interrupt(study: optuna.Study, spec: str, tracker: Tracker) -> None:
    """Ctrl-C: workers abort their trial (FAIL, run KILLED); catch any that could not."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            tidy(study, spec, tracker)
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                break
        except KeyboardInterrupt:
            continue
        time.sleep(0.5)
    tracker.end(tracker.parent_run_id, "KILLED")


class Progress:
    """A status line while workers run: finished/total, pruned, failed, best so far, elapsed."""

    def __init__(self, study: optuna.Study, total: int, metric: str, every: float = 1.0):
        self.study, self.total, self.metric, self.every = study, total, metric, every
        self.tty = sys.stderr.isatty()
        self._stop = threading.Event()
        self._last = ""
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def line(self) -> str:
        trials = self.study.get_trials(deepcopy=False)
        by = {s: sum(t.state == s for t in trials) for s in TrialState}
        done = by[TrialState.COMPLETE] + by[TrialState.PRUNED]
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = ""
        if complete:
            pick = min if self.study.direction == optuna.study.StudyDirection.MINIMIZE else max
            b = pick(complete, key=lambda t: t.value)
            best = f" | best {self.metric} {b.value:.4f} (trial {b.number})"
        elapsed = int(time.monotonic() - self._start)
        return (f"[sweep] {done}/{self.total} trials ({by[TrialState.PRUNED]} pruned, "
                f"{by[TrialState.FAIL]} failed, {by[TrialState.RUNNING]} running){best} | "
                f"{elapsed // 60:02d}:{elapsed % 60:02d}")

    def _show(self, final: bool = False) -> None:
        text = self.line()
        if self.tty:
            sys.stderr.write("\r" + text.ljust(len(self._last)) + ("\n" if final else ""))
        elif text.split(" | ")[0] != self._last.split(" | ")[0] or final:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        self._last = text

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._show()

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._show(final=True)
