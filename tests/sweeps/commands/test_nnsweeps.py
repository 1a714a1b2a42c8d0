"""`nnsweeps` (sweeps.commands.nnsweeps) and each of its commands as real processes, on one small
tracked sweep: sweep, report, reproduce, worker and ui, with -q; and the Hydra "requires
--multirun" trap answered with the form that works. The console script is the module's main();
tests/e2e/test_install.py runs the installed script itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from sweeps.services import free_port
from tests.conftest import SweepDir, wait_for

NNSWEEPS = [sys.executable, "-m", "sweeps.commands.nnsweeps"]
SMALL = ("sweep.n_trials=2", "sweep.n_jobs=1", "sweep.confirm.top=0", "train.iterations=300",
         "tracking.decision_boundary=none")


def nnsweeps(*args: str, cwd, env=None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*NNSWEEPS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_command(tmp_path):
    proc = nnsweeps("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("sweep", "worker", "reproduce", "report", "ui"):
        assert re.search(rf"^  {name} ", proc.stdout, re.M), proc.stdout
    wrong = nnsweeps("swep", cwd=tmp_path)
    assert wrong.returncode == 2 and "invalid choice: 'swep'" in wrong.stderr


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One tracked sweep of 2 trials by `nnsweeps sweep`, and the environment that finds its store."""
    sweep = SweepDir(tmp_path_factory.mktemp("sweep"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": sweep.uri}
    proc = nnsweeps("sweep", *sweep.args(*SMALL), cwd=sweep.path, env=env)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return sweep, env, proc


@pytest.mark.slow
def test_sweep_runs_the_trials_and_tracks_them(swept):
    sweep, _, proc = swept
    assert "Best trial" in proc.stdout, proc.stdout
    assert sum(t.state.name == "COMPLETE" for t in sweep.study().trials) == 2
    assert len(sweep.runs("trial")) == 2 and len(sweep.runs("sweep")) == 1


@pytest.mark.slow
def test_report_and_reproduce_read_the_sweep_back(swept):
    sweep, env, _ = swept
    best = sweep.study().best_trial.user_attrs["run_id"]
    report = nnsweeps("report", "--top", "2", cwd=sweep.path, env=env)
    assert report.returncode == 0 and best in report.stdout, report.stderr
    again = nnsweeps("reproduce", best, cwd=sweep.path, env=env)
    assert again.returncode == 0 and "reproduced exactly" in again.stdout, again.stderr


@pytest.mark.slow
def test_q_leaves_only_warnings_and_errors(swept, tmp_path):
    sweep, env, _ = swept
    quiet = nnsweeps("-q", "report", cwd=sweep.path, env=env)
    assert (quiet.returncode, quiet.stdout) == (0, ""), quiet.stderr
    missing = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}"}
    for args in (["-q", "report"], ["report", "-q"], ["reproduce", "-q", "f" * 32]):
        proc = nnsweeps(*args, cwd=tmp_path, env=missing)
        assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.startswith("error: "), (args, proc.stderr)


@pytest.mark.slow
def test_worker_joins_the_sweep_and_finds_it_done(swept):
    sweep, env, _ = swept
    proc = nnsweeps("worker", *sweep.args(*SMALL), cwd=sweep.path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "the study holds 2 finished trials" in proc.stdout, proc.stdout
    assert len(sweep.study().trials) == 2


@pytest.mark.slow
def test_ui_prints_the_model_training_url_and_serves_it(swept):
    sweep, env, _ = swept
    exp = sweep.client().get_experiment_by_name(sweep.experiment)
    port = free_port()
    server = subprocess.Popen([*NNSWEEPS, "ui", "--port", str(port)], cwd=sweep.path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        lines = [server.stdout.readline() for _ in range(2)]
        url = f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}?workflowType=machine_learning"
        assert lines[1].strip() == f"{sweep.experiment}: {url}", lines
        assert wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health"), timeout=120)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_ui_without_a_store_is_one_sentence(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}"}
    proc = nnsweeps("ui", cwd=tmp_path, env=env)
    assert proc.returncode == 2 and proc.stderr.startswith("error: there is no MLflow store"), proc.stderr
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("command", [["sweep"], None])
def test_an_unquoted_search_space_function_gets_the_form_that_works(tmp_path, command):
    """Hydra reads choice(...) as a sweep of its own and says it "requires --multirun", which sends
    users the wrong way; both `nnsweeps sweep` and `python -m sweeps` say how to quote it."""
    args = ["search_space.model.activation=choice(tanh, relu)", f"hydra.run.dir={tmp_path / 'out'}"]
    prefix = NNSWEEPS + command if command else [sys.executable, "-m", "sweeps"]
    proc = subprocess.run([*prefix, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "multirun" not in proc.stderr, proc.stderr
    assert """'search_space.model.activation="choice(tanh, relu)"'""" in proc.stderr


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False



def test_a_users_config_dir_adds_its_groups(tmp_path):
    """docs/configuration.md's example: a search space of the user's own, from --config-dir."""
    own = tmp_path / "my" / "search_space"
    own.mkdir(parents=True)
    (own / "mine.yaml").write_text("train:\n  learning_rate: {type: float, low: 0.5, high: 1.0}\n")
    sweep = SweepDir(tmp_path)
    proc = nnsweeps("sweep", "--config-dir", "my", "search_space=mine", *sweep.args(*SMALL, "tracking.enabled=false"),
                    cwd=tmp_path)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    trials = sweep.study().trials
    assert len(trials) == 2 and all(set(t.params) == {"train.learning_rate"} for t in trials)
    assert all(0.5 <= t.params["train.learning_rate"] <= 1.0 for t in trials)
