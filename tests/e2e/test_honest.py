"""Honest numbers, end to end: `python -m sweeps` as a process on fresh stores, read back with
Optuna's and MLflow's own clients. A default-like sweep confirms its best configs on a held-out
test split (only their runs get test metrics, no trial's Optuna record holds one) and prints its
verdict; a sweep with repeats logs each one and reproduces every one bit for bit; a complete study that
was not confirmed is, by the same command with the confirmation on."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.trial import TrialState

import sweeps
from tests.conftest import SweepDir

pytestmark = pytest.mark.slow


@pytest.fixture
def sweep_dir(tmp_path) -> SweepDir:
    return SweepDir(tmp_path, confirm=True)  # the default sweep.confirm, which the other tests leave out


def test_a_default_sweep_confirms_its_best_configs_on_the_test_split_and_says_whether_the_winner_wins(
        sweep_dir: SweepDir):
    proc = sweep_dir.run("sweep.n_trials=6")
    verdict = [line for line in proc.stdout.splitlines() if line.startswith("Confirmed: best config (trial ")]
    assert len(verdict) == 1 and "(5 seeds), test_cost " in verdict[0] and "paired t-test on val_cost" in verdict[0]
    study = sweep_dir.study()
    for t in study.trials:  # the search never saw a test score
        assert not [k for k in [*t.params, *t.user_attrs, *t.user_attrs.get("metrics", {})] if "test" in k]
    result = sweeps.run(sweep_dir.args("sweep.n_trials=6"))  # the study is complete: its confirmation, read back
    rows = result.confirmed
    complete = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.value)
    assert [r.number for r in rows] == [t.number for t in complete[:3]]
    for r in rows:
        assert r.run_id == study.trials[r.number].user_attrs["run_id"]
        assert r.val_ci[0] <= r.val_mean <= r.val_ci[1] and r.test_ci[0] <= r.test_mean <= r.test_ci[1]
    confirmed = {r.run_id for r in rows}
    for run in sweep_dir.runs():
        has = {"test_accuracy", "test_cost"} <= set(run.data.metrics)
        assert has == (run.info.run_id in confirmed), run.data.tags.get("nnsweeps.role")
    parent = sweep_dir.client().get_run(result.parent_run_id).data.tags
    assert parent["confirm.distinguishable"] in ("true", "false")
    assert parent["confirm.verdict"] == verdict[0].removeprefix("Confirmed: ") == result.verdict
    summary = sweep_dir.client().download_artifacts(result.parent_run_id, "summary.md", str(sweep_dir.path))
    text = open(summary).read()
    assert "## Confirmed" in text and f"**{result.verdict}**" in text


def test_repeats_log_each_one_their_mean_and_std_and_every_one_reproduces(sweep_dir: SweepDir):
    sweep_dir.run("sweep.n_trials=4", "sweep.repeats=3", "sweep.confirm.top=0")
    study = sweep_dir.study()
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert complete
    client = sweep_dir.client()
    for t in complete:
        run_id = t.user_attrs["run_id"]
        m = client.get_run(run_id).data.metrics
        each = [m[f"val_cost/r{i}"] for i in range(3)]
        assert m["val_cost"] == t.value == pytest.approx(np.mean(each)) and "val_cost_std" in m
        assert m["val_cost_std"] == pytest.approx(np.std(each, ddof=1))
        r = sweeps.reproduce(run_id, sweep_dir.uri)
        assert r.max_abs_diff == 0.0 and r.repeat_diffs == [0.0, 0.0, 0.0]
    # the same command with the confirmation on: the complete study is confirmed, no trial is added
    proc = sweep_dir.run("sweep.n_trials=4", "sweep.repeats=3")
    assert "Confirmed: best config (trial " in proc.stdout and len(sweep_dir.study().trials) == 4
    again = sweep_dir.run("sweep.n_trials=4", "sweep.repeats=3").stdout  # confirmed once: shown, not redone
    assert "Confirmed: best config" in again and "[sweep] confirming" not in again
