"""sweeps.runner.work: the sampler seeds of workers and resumptions, and a worker run in this
process on a real journal (tracking disabled) until the budget, or until too many failures. Configs
are conf/ composed by real Hydra (compose_cfg, tests/sweeps/conftest.py)."""

from __future__ import annotations

import os
from dataclasses import replace

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

from sweeps.config.space import parse_space
from sweeps.runner.pool import SIBLING_FAILED
from sweeps.runner.work import Job, Report, sampler_seed, work
from sweeps.study.factory import open_study
from sweeps.study.stopping import STOPPED_ATTR
from sweeps.study.storages import storage_for
from sweeps.tracking.tracker import Tracker

SMALL = ["search_space=none", "+search_space.train.learning_rate={type:float,low:0.1,high:1.0}",
         "train.iterations=200", "sweep.n_trials=3", "sweep.pruner=none", "sweep.study_name=W"]
# softmax needs one-hot labels: on the 2-class flower (one output unit) nncore refuses every fit
SOFTMAX = "+search_space.model.output={type:categorical,choices:[softmax]}"


@pytest.fixture(autouse=True)
def no_failed_sibling():
    """work() called here directly, not through pool.map (which clears it): a sibling failure that
    an earlier test of this process left set would stop the worker before its first trial."""
    SIBLING_FAILED.clear()


# ---- sampler_seed -------------------------------------------------------------------------------
def test_sampler_seed_is_stable():
    assert sampler_seed(0, 0, 0) == sampler_seed(0, 0, 0) == 2968811710  # the same in every process
    assert sampler_seed(0, 1, 0) == 3964924996
    assert sampler_seed(5, 2, 7, salt=11) == sampler_seed(5, 2, 7, salt=11)


def test_sampler_seed_differs_across_workers_resumptions_salts_and_sweep_seeds():
    workers = {sampler_seed(0, w, 0) for w in range(16)}
    assert len(workers) == 16
    resumptions = {sampler_seed(0, 0, n) for n in range(16)}
    assert len(resumptions) == 16
    salts = {sampler_seed(0, 0, 0, salt=s) for s in range(1, 17)} | {sampler_seed(0, 0, 0)}
    assert len(salts) == 17
    assert sampler_seed(0, 1, 0) != sampler_seed(1, 0, 0) != sampler_seed(0, 0, 1)  # not a sum of its parts
    seeds = {sampler_seed(s, w, n) for s in range(3) for w in range(4) for n in (0, 10, 20)}
    assert len(seeds) == 36
    assert all(0 <= s < 2 ** 32 for s in seeds)  # a seed NumPy and Optuna take


# ---- work() in this process -----------------------------------------------------------------------
def job_for(compose_cfg, tmp_path, *overrides, create=True) -> Job:
    cfg = compose_cfg(*SMALL, *overrides)
    journal = str(tmp_path / "w.journal")
    if create:  # as the session does before its workers start
        open_study(cfg.sweep, storage_for(journal, cfg.sweep), parse_space(cfg.search_space), seed=0, create=True)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", enabled=False)
    return Job(config=OmegaConf.to_container(cfg, resolve=True), storage=journal, tracker=tracker, index=2,
               seed=sampler_seed(0, 2, 0))


def load(tmp_path) -> optuna.Study:
    return optuna.load_study(study_name="W", storage=storage_for(str(tmp_path / "w.journal")).open())


def test_work_runs_the_budget_and_reports_it(compose_cfg, tmp_path):
    report = work(job_for(compose_cfg, tmp_path))
    assert isinstance(report, Report) and report.index == 2
    assert (report.complete, report.pruned, report.failed, report.stopped, report.errors) == (3, 0, 0, "", [])
    study = load(tmp_path)
    assert len(study.trials) == 3 and all(t.state == TrialState.COMPLETE for t in study.trials)
    for t in study.trials:
        assert 0.1 <= t.params["train.learning_rate"] <= 1.0
        assert t.user_attrs["pid"] == str(os.getpid())
        assert t.value == pytest.approx(t.user_attrs["metrics"]["val_cost"])
    assert not (tmp_path / "mlflow.db").exists()  # tracking disabled: no store written

    again = work(job_for(compose_cfg, tmp_path, create=False))  # the budget is spent: nothing more to run
    assert (again.complete, again.failed, again.stopped) == (0, 0, "")
    assert len(load(tmp_path).trials) == 3


def test_work_stops_after_max_failures_in_a_row(compose_cfg, tmp_path):
    report = work(job_for(compose_cfg, tmp_path, SOFTMAX, "sweep.max_failures=1"))
    assert (report.complete, report.failed) == (0, 1)
    assert report.stopped.startswith("1 trials failed in a row (sweep.max_failures=1)")
    assert "ValueError" in report.stopped and "softmax" in report.stopped
    assert len(report.errors) == 1 and report.errors[0] in report.stopped
    study = load(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.FAIL]  # stopped: no second trial asked
    assert "softmax" in study.trials[0].user_attrs["error"]


def test_work_goes_on_after_fewer_failures_than_max_failures(compose_cfg, tmp_path):
    report = work(job_for(compose_cfg, tmp_path, SOFTMAX, "sweep.max_failures=2", "sweep.n_trials=1"))
    # failed trials do not use the budget: the worker tries again, and stops at the second failure
    assert (report.complete, report.failed) == (0, 2)
    assert "2 trials failed in a row (sweep.max_failures=2)" in report.stopped
    assert [t.state for t in load(tmp_path).trials] == [TrialState.FAIL, TrialState.FAIL]


def test_a_worker_that_does_not_decide_the_stop_runs_on_until_one_is_recorded(compose_cfg, tmp_path):
    """A joined worker (decides_stop=False): sweep.stop's settings are the launcher's to apply, and
    its config stays the sweep's (its runs log the same params); a stop the launcher recorded is obeyed."""
    joined = replace(job_for(compose_cfg, tmp_path, "sweep.stop.target=10"), decides_stop=False)
    assert work(joined).complete == 3 and STOPPED_ATTR not in load(tmp_path).user_attrs  # reached at once, not decided
    assert joined.config["sweep"]["stop"]["target"] == 10

    (tmp_path / "w.journal").unlink()
    deciding = job_for(compose_cfg, tmp_path, "sweep.stop.target=10")
    assert work(deciding).complete == 1 and STOPPED_ATTR in load(tmp_path).user_attrs
    assert work(joined).complete == 0  # the recorded stop, obeyed
