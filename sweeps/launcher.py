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
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from sweeps import summary
from sweeps.config import flatten, validate
from sweeps.space import parse_space
from sweeps.study import count, load_study, reconcile, storage_spec
from sweeps.tracking import Tracker, git_commit
from sweeps.worker import Job, Report, sampler_seed, work


class SweepStopped(RuntimeError):
    """The sweep stopped before its budget: too many failures in a row."""


@dataclass
class Outcome:
    study: optuna.Study
    tracker: Tracker
    reports: list[Report]


def n_workers(cfg: DictConfig) -> int:
    return (os.cpu_count() or 1) if cfg.sweep.n_jobs == -1 else cfg.sweep.n_jobs


def run(cfg: DictConfig) -> Outcome:
    validate(cfg)
    space = parse_space(cfg.search_space)
    if cfg.sweep.sampler == "grid":  # the grid's size bounds the budget
        size = 1
        for values in space.grid().values():
            size *= len(values)
        if cfg.sweep.n_trials > size:
            print(f"[sweep] the grid has {size} points: running {size} trials, not {cfg.sweep.n_trials}")
            cfg.sweep.n_trials = size
    spec = storage_spec(cfg)
    study = load_study(cfg, spec, space, seed=cfg.sweep.seed, create=True)
    jobs_wanted = n_workers(cfg)
    commit = git_commit()
    tracker = Tracker.start_sweep(
        cfg.tracking.uri, cfg.tracking.experiment, run_name=f"sweep-{cfg.sweep.study_name}",
        tags={"optuna.study": cfg.sweep.study_name, "optuna.storage": spec, "sampler": cfg.sweep.sampler,
              "pruner": cfg.sweep.pruner, "mlflow.source.git.commit": commit},
        params={k: v for k, v in flatten(cfg).items() if not k.startswith("tracking.")},
        curve_points=cfg.tracking.curve_points, enabled=cfg.tracking.enabled)
    try:
        for t in reconcile(study, spec):
            print(f"[sweep] trial {t.number} was left running by a process that is gone: failed, queued again")
            if run_id := t.user_attrs.get("run_id"):
                tracker.end(run_id, "KILLED", {"optuna.state": "FAIL", "reason": "its process died"})
        done_before = count(study)
        todo = cfg.sweep.n_trials - done_before
        print(f"[sweep] study {cfg.sweep.study_name!r}: {done_before} of {cfg.sweep.n_trials} trials finished; "
              f"running {max(todo, 0)} on {min(jobs_wanted, max(todo, 1))} worker process(es)\n"
              f"[sweep] optuna storage: {spec}\n[sweep] mlflow: {cfg.tracking.uri} "
              f"(experiment {cfg.tracking.experiment!r}, run {tracker.parent_run_id or 'off'})")
        reports: list[Report] = []
        if todo > 0:
            n = min(jobs_wanted, todo)
            # n_jobs x BLAS threads <= cores: oversubscribed BLAS ran 4-10 x slower here
            threads = max(1, (os.cpu_count() or 1) // n)
            container = OmegaConf.to_container(cfg, resolve=True)
            jobs = [Job(container, spec, tracker, i, sampler_seed(cfg.sweep.seed, i, done_before), threads)
                    for i in range(n)]
            with Progress(study, cfg.sweep.n_trials, cfg.sweep.metric):
                with parallel_config(backend="loky", inner_max_num_threads=threads):
                    reports = Parallel(n_jobs=n)(delayed(work)(job) for job in jobs)
        summary.finish_sweep(study, tracker, cfg)
    except KeyboardInterrupt:
        tracker.end(tracker.parent_run_id, "KILLED")
        raise
    except BaseException as err:
        tracker.end(tracker.parent_run_id, "FAILED", {"error": f"{type(err).__name__}: {err}"})
        raise
    stopped = [r.stopped for r in reports if r.stopped]
    tracker.end(tracker.parent_run_id, "FAILED" if stopped else "FINISHED")
    if stopped:
        raise SweepStopped(f"the sweep stopped early: {stopped[0]}")
    return Outcome(study, tracker, reports)


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
