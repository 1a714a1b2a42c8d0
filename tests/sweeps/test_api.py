"""The Python API (sweeps.api): sweeps.run, sweeps.reproduce and sweeps.load_network in this
interpreter, in a fresh one, in a script and in a Jupyter kernel; real journal storages, real
SQLite MLflow stores and real worker processes, all in tmp_path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

import nncore
import sweeps
from sweeps.errors import ConfigError
from sweeps.runner import pool
from tests.conftest import ROOT, SweepDir
from tests.sweeps.runner.test_pool import gone
from tests.sweeps.runner.test_pool import loky_workers as machine_loky_workers

pytestmark = pytest.mark.slow

# one learning rate sampled, 300 iterations: a trial takes milliseconds
FAST = ["search_space=none", "+search_space.train.learning_rate={type:float,low:0.1,high:1.0}", "train.iterations=300"]
# seeded random learning rates from 1e-4 to 2 and a median pruner that acts from iteration 100 on,
# once one trial is complete: the low learning rates lag and are pruned (tests/sweeps/runner/test_session.py)
PRUNING = ["sweep.sampler=random", "sweep.n_startup_trials=1", "sweep.warmup_steps=100", "search_space=none",
           "+search_space.train.learning_rate={type:float,low:0.0001,high:2.0,log:true}",
           "train.iterations=1000", "train.report_every=100"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.fixture
def here(tmp_path, monkeypatch) -> SweepDir:
    """The stores in tmp_path, which is also the working directory: whatever lands in ./ stays there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return SweepDir(tmp_path)


def loky_workers() -> set[int]:
    """This process's live loky worker processes (other test runs on the machine have theirs)."""
    def parent(pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):
            return -1

    return {pid for pid in machine_loky_workers() if parent(pid) == os.getpid()}


def validation_data(cfg) -> nncore.Dataset:
    d = cfg.dataset
    return nncore.load_dataset(d.name, seed=cfg.seed, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                               **d.kwargs)


def same_weights(a: nncore.Network, b: nncore.Network) -> bool:
    return a.sizes == b.sizes and all(np.array_equal(x, y) for p, q in zip(a.params, b.params) for x, y in zip(p, q))


def test_run_returns_the_study_its_runs_and_trials_that_reproduce_bit_for_bit(here, monkeypatch):
    existing = loky_workers()
    result = sweeps.run(here.args("sweep.n_trials=4", "sweep.n_jobs=2", *PRUNING))
    assert not loky_workers() - existing  # the worker processes were stopped on return

    # the study, as Optuna reads it back from the journal
    assert isinstance(result.study, optuna.Study) and result.study.study_name == here.study_name
    stored = here.study()
    assert len(stored.trials) == 4 and len(stored.get_trials(states=FINISHED)) == 4
    assert {t.state for t in stored.trials} == {TrialState.COMPLETE, TrialState.PRUNED}
    assert [(r.number, r.state, r.value, r.params, r.run_id) for r in result.trials] == [
        (t.number, t.state.name, t.value, t.params, t.user_attrs["run_id"]) for t in stored.trials]
    assert all(r.run_id for r in result.trials) and len({r.run_id for r in result.trials}) == 4

    # the best complete trial, and its run in the MLflow store under the sweep's parent run
    complete = [t for t in stored.trials if t.state == TrialState.COMPLETE]
    expected = min(complete, key=lambda t: t.value)
    assert (result.best.number, result.best.value, result.best.params) == (expected.number, expected.value, expected.params)
    assert [t.number for t in result.top(5)] == [t.number for t in sorted(complete, key=lambda t: t.value)]
    client = here.client()
    best_run = client.get_run(result.best.run_id)
    assert best_run.data.tags["mlflow.parentRunId"] == result.parent_run_id
    assert best_run.data.tags["optuna.trial"] == str(result.best.number)
    assert best_run.data.metrics["val_cost"] == result.best.value == result.best.metrics["val_cost"]
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["nnsweeps.role"] == "sweep" and parent.info.status == "FINISHED"
    assert {r.info.run_id for r in here.runs("trial")} == {r.run_id for r in result.trials}
    assert result.tracking_uri == here.uri and result.config.sweep.n_trials == 4

    # Hydra's record of the config, as the command line leaves it
    saved = OmegaConf.load(here.path / "hydra" / ".hydra" / "config.yaml")
    assert saved.sweep.study_name == here.study_name and saved.sweep.n_trials == 4 and saved.train.iterations == 1000
    assert "sweep.n_trials=4" in OmegaConf.load(here.path / "hydra" / ".hydra" / "overrides.yaml")

    # every finished trial, complete or pruned, trains again to the same cost curve bit for bit
    monkeypatch.setenv("MLFLOW_TRACKING_URI", here.uri)  # reproduce's default store
    again = {}
    for row in result.trials:
        rep = sweeps.reproduce(row.run_id)
        assert rep.max_abs_diff == 0.0 and rep.exact, (row.number, row.state, rep.max_abs_diff)
        assert rep.costs.size == rep.logged.shape[0] > 1
        assert (rep.costs.size < 1000) == (row.state == "PRUNED")  # a pruned trial stops where it was pruned
        again[row.number] = rep

    # a pruned trial's network trained again is the logged one (a complete trial's: the next test)
    for row in result.trials:
        if row.state == "PRUNED":
            assert same_weights(sweeps.load_network(row.run_id), again[row.number].network), row.number

    # the logged network of the best trial scores what its run logged
    net = sweeps.load_network(result.best.run_id)
    data = validation_data(result.config)
    assert net.accuracy(data.X_val, data.Y_val) == result.best.metrics["val_accuracy"]


def test_several_metrics_give_no_single_best_but_the_pareto_front(here):
    result = sweeps.run(here.args("sweep.n_trials=6", "sweep.n_jobs=1", "sweep.metric=[val_cost,n_params]", *FAST,
                                  "+search_space.model.units={type:int,low:1,high:8}"))
    front = here.study().best_trials
    assert result.best is None and result.study.directions == here.study().directions
    assert sorted(r.number for r in result.pareto) == sorted(t.number for t in front)
    assert all(r.value is None and len(r.values) == 2 for r in result.trials)
    assert result.top(2) == result.pareto[:2] and result.pareto[0].values[0] == min(t.values[0] for t in front)


def test_the_reproduced_network_of_a_complete_trial_is_the_logged_one(here):
    """The cost curve of a complete trial says nothing of its last update (each cost is computed
    before its iteration's update): the retraining must make it too."""
    result = sweeps.run(here.args("sweep.n_trials=2", "sweep.n_jobs=1", *FAST))
    data = validation_data(result.config)
    X = np.hstack([data.X_train, data.X_val])
    grid = np.stack(np.meshgrid(*[np.linspace(lo, hi, 60) for lo, hi in zip(X.min(axis=1), X.max(axis=1))])).reshape(2, -1)
    for row in result.trials:
        assert row.state == "COMPLETE"
        rep = sweeps.reproduce(row.run_id, tracking_uri=here.uri)
        assert rep.max_abs_diff == 0.0  # the cost curves agree...
        logged = sweeps.load_network(row.run_id, tracking_uri=here.uri)
        assert same_weights(logged, rep.network), row.number  # ...and so must the networks
        assert np.array_equal(logged.predict(X), rep.network.predict(X))
        assert np.array_equal(logged.predict(grid), rep.network.predict(grid))


def test_the_reproduced_network_of_a_trial_pruned_at_its_last_iteration_is_the_logged_one(here):
    # 201 iterations, reports at 100 and 200, pruning from 200 on: a lagging trial is pruned at
    # iteration 200, its last (one worker, seeded random sampler: the same trials every time)
    result = sweeps.run(here.args("sweep.n_trials=6", "sweep.n_jobs=1", "sweep.sampler=random",
                                  "sweep.n_startup_trials=1", "sweep.warmup_steps=200", "search_space=none",
                                  "+search_space.train.learning_rate={type:float,low:0.0001,high:2.0,log:true}",
                                  "train.iterations=201", "train.report_every=100"))
    last = [r for r in result.trials if r.state == "PRUNED" and r.metrics["iterations_run"] == 201]
    if not last:
        pytest.fail(f"no trial pruned at its last iteration: {[(r.state, r.metrics) for r in result.trials]}")
    for row in result.trials:
        rep = sweeps.reproduce(row.run_id, tracking_uri=here.uri)
        if rep.max_abs_diff != 0.0:
            pytest.fail(f"trial {row.number} ({row.state}) is not reproduced: {rep.max_abs_diff!r}")
        assert same_weights(sweeps.load_network(row.run_id, tracking_uri=here.uri), rep.network), (row.number, row.state)


def test_two_sweeps_in_one_interpreter_then_the_first_resumes(here):
    a, b = SweepDir(here.path, study="A", experiment="EA"), SweepDir(here.path, study="B", experiment="EB")
    handler = signal.getsignal(signal.SIGINT)
    first = sweeps.run(a.args("sweep.n_trials=3", "sweep.n_jobs=2", *FAST))
    second = sweeps.run(b.args("sweep.n_trials=2", "sweep.n_jobs=1", *FAST))
    assert signal.getsignal(signal.SIGINT) is handler  # the interpreter's Ctrl-C handler is back

    assert (first.study.study_name, second.study.study_name) == ("A", "B")
    assert [(t.number, t.state) for t in a.study().trials] == [(n, TrialState.COMPLETE) for n in range(3)]
    assert [(t.number, t.state) for t in b.study().trials] == [(n, TrialState.COMPLETE) for n in range(2)]
    assert first.parent_run_id != second.parent_run_id
    for sweep, result, n in ((a, first, 3), (b, second, 2)):  # each sweep's runs in its own experiment
        trials = sweep.runs("trial")
        assert len(trials) == n and {r.data.tags["mlflow.parentRunId"] for r in trials} == {result.parent_run_id}

    # the first study again with a larger budget: only the missing trials run, numbered on
    third = sweeps.run(a.args("sweep.n_trials=5", "sweep.n_jobs=2", *FAST))
    assert [r.number for r in third.trials] == [0, 1, 2, 3, 4] and len(a.study().trials) == 5
    assert [(r.params, r.run_id) for r in third.trials[:3]] == [(r.params, r.run_id) for r in first.trials]
    assert third.parent_run_id not in (first.parent_run_id, second.parent_run_id)
    client = a.client()
    for row in third.trials[3:]:
        assert row.state == "COMPLETE"
        assert client.get_run(row.run_id).data.tags["mlflow.parentRunId"] == third.parent_run_id
        assert sweeps.reproduce(row.run_id, tracking_uri=a.uri).max_abs_diff == 0.0
    assert len(a.runs("trial")) == 5 and len(a.runs("sweep")) == 2 and len(b.runs("trial")) == 2
    assert third.best.value == min(t.value for t in a.study().trials)


def test_a_sweep_stopped_by_sweep_stop_says_why_in_its_result(here):
    result = sweeps.run(here.args("sweep.n_trials=50", "sweep.n_jobs=1", "sweep.stop.patience=2",
                                  "tracking.enabled=false", *FAST))
    assert len(result.trials) < 50
    assert result.stopped == result.study.user_attrs["nnsweeps.stopped"]["reason"]
    assert result.stopped.startswith("no improvement larger than 0.0 in the last 2 finished trials")
    unstopped = sweeps.run(here.args("sweep.n_trials=1", "sweep.n_jobs=1", "sweep.study_name=other",
                                     "tracking.enabled=false", *FAST))
    assert unstopped.stopped == ""


BAD = [
    # (overrides, words the message must contain)
    (["sweep.n_trials=0"], ["sweep.n_trials", "0"]),
    (["model.actvation=relu"], ["model.actvation"]),
    (["sweep.n_trials=abc"], ["sweep.n_trials", "abc"]),
    ("sweep.n_trials=3", ["list"]),  # a string, not a list of them
]


@pytest.mark.parametrize("overrides,words", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_input_raises_one_sentence(here, overrides, words):
    existing = loky_workers()
    with pytest.raises(ConfigError) as info:
        sweeps.run(overrides)
    err = info.value
    assert type(err) is ConfigError
    message = str(err)
    assert "\n" not in message and message.endswith(".") and all(w in message for w in words), message
    # nothing of Hydra's or OmegaConf's shows when the error is printed: no chained exception
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    shown = "".join(traceback.format_exception(err))
    for leak in ("ConfigCompositionException", "HydraException", "OverrideParseException", "omegaconf.errors",
                 "hydra/", "During handling of the above exception"):
        assert leak not in shown, shown
    assert not loky_workers() - existing
    assert not list(here.path.iterdir())  # no store, no folder


def test_an_error_found_after_the_workers_started_stops_them(here, monkeypatch):
    """A tracking URI whose folder is a file is found by the checks that run once the worker
    processes are starting (sweeps.runner.checks.preflight): they are stopped before the error."""
    (here.path / "afile").write_text("")
    existing, seen, stop = loky_workers(), set(), pool.stop

    def stopping():
        # the processes loky started, as pool.stop finds them: loky's own record (pool._Pool.pids).
        # Watching /proc for them missed, now and then, one killed before it had exec'd into
        # loky's worker (CI, once)
        seen.update(pool._pool.pids())
        stop()

    monkeypatch.setattr(pool, "stop", stopping)
    with pytest.raises(ConfigError, match="tracking.uri=.*afile"):
        sweeps.run([f"sweep.storage={here.journal}", f"tracking.uri=sqlite:///{here.path / 'afile' / 'm.db'}",
                    "sweep.n_jobs=3", "sweep.n_trials=4", *FAST])
    assert len(seen) == 3  # they did start (sweep.n_jobs of them: a tracked launcher runs no trial)...
    assert all(gone(pid) for pid in seen) and not loky_workers() - existing  # ...and are gone
    assert not here.journal.exists()


def test_errors_after_the_workers_started_leave_no_thread_behind(here, monkeypatch):
    (here.path / "afile").write_text("")
    crashed: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashed.append(f"{args.thread.name}: {args.exc_type.__name__}"))
    threads = {t.ident for t in threading.enumerate()}
    for i in range(25):
        with pytest.raises(ConfigError, match="tracking.uri"):
            sweeps.run([f"sweep.storage={here.journal}", f"tracking.uri=sqlite:///{here.path / 'afile' / 'm.db'}",
                        "sweep.n_jobs=3", "sweep.n_trials=4", *FAST])
        time.sleep(0.01 * (i % 5))  # calls at different moments of the pool's start
    time.sleep(1)  # let the threads of the last pool end
    left = [t.name for t in threading.enumerate() if t.ident not in threads]
    assert not crashed and not left, (crashed, left)


def test_importing_the_reproduce_command_keeps_sweeps_reproduce_callable(here):
    """`sweeps.reproduce` is the API's function, and `python -m sweeps.reproduce` the command: whichever
    a program reached first, a call reproduces the run. Before, importing the command's module made
    the package's attribute the module (a swapped module class answered calls). A fresh
    interpreter, to control the order."""
    code = textwrap.dedent(f"""
        import sweeps
        result = sweeps.run({here.args("sweep.n_trials=1", "sweep.n_jobs=1", *FAST)!r})
        run_id, uri = result.best.run_id, result.tracking_uri
        function = sweeps.reproduce                  # the API's function, loaded on first use
        import sweeps.commands.nnsweeps, sweeps.commands.retrain  # the command's code
        try:
            import sweeps.reproduce                  # only run, never imported: it says so
        except ImportError as err:
            print("REFUSED", err)
        import sweeps.api
        assert sweeps.reproduce is function is sweeps.api.reproduce, sweeps.reproduce
        print("RESULT", function(run_id, uri).max_abs_diff, run_id)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=here.path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "REFUSED sweeps.reproduce is a command" in proc.stdout, proc.stdout
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    _, diff, run_id = line.split()
    assert diff == "0.0"

    # and the command, as a process: `python -m sweeps.reproduce` and `nnsweeps reproduce`
    env = {**os.environ, "MLFLOW_TRACKING_URI": here.uri}
    for command in ([sys.executable, "-m", "sweeps.reproduce"], [sys.executable, "-m", "sweeps.commands.nnsweeps", "reproduce"]):
        proc = subprocess.run([*command, run_id], cwd=here.path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and "reproduced exactly" in proc.stdout, (command, proc.stdout, proc.stderr)


def test_the_example_script_runs_reproduces_and_loads(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    folder = tmp_path / "stores"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "scripted_experiment.py"), str(folder)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "reproduced exactly" in proc.stdout and "max_abs_diff = 0.0" in proc.stdout, proc.stdout
    assert not list(cwd.iterdir())  # everything went to the folder it was given

    study = SweepDir(folder, study="scripted").study()
    assert len(study.get_trials(states=FINISHED)) == 6
    best = study.best_trial
    assert f"best trial {best.number}: val_cost {best.value:.4f}" in proc.stdout
    accuracy = best.user_attrs["metrics"]["val_accuracy"]
    assert f"validation accuracy {accuracy:.4f} (logged: {accuracy:.4f})" in proc.stdout
    # the table: the three best complete trials, best first
    ranked = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.value)[:3]
    lines = proc.stdout.splitlines()
    header = next(i for i, l in enumerate(lines) if l.startswith("trial "))
    assert [l.split()[:2] for l in lines[header + 1:header + 4]] == [[str(t.number), f"{t.value:.4f}"] for t in ranked]


KERNEL_CODE = """
import signal, sweeps
handler = signal.getsignal(signal.SIGINT)
common = {common!r}
one = sweeps.run([*common, "sweep.study_name=K1", "sweep.n_jobs=1"])
two = sweeps.run([*common, "sweep.study_name=K2", "sweep.n_jobs=2"])
print("BEST", one.best.number, repr(one.best.value), two.best.number, repr(two.best.value))
print("EXACT", sweeps.reproduce(two.best.run_id, two.tracking_uri).exact)
print("HANDLER", signal.getsignal(signal.SIGINT) is handler)
"""


def test_two_sweeps_from_a_jupyter_kernel(here):
    manager_module = pytest.importorskip("jupyter_client.manager")
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager

    # a kernelspec of our own: this interpreter (the venv's), whatever kernels the machine has
    spec = here.path / "kernels" / "nnsweeps-test"
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "nnsweeps test", "language": "python"}))
    km = manager_module.KernelManager(kernel_name="nnsweeps-test",
                                      kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    km.start_kernel(cwd=str(here.path), env=env)
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        out: list[str] = []

        def collect(msg):
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        common = [f"sweep.storage={here.journal}", f"tracking.uri={here.uri}", "sweep.n_trials=2", *FAST]
        reply = kc.execute_interactive(KERNEL_CODE.format(common=common), timeout=300, output_hook=collect)
        text = "".join(out)
        assert reply["content"]["status"] == "ok", text
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)

    line = next(l for l in text.splitlines() if l.startswith("BEST"))
    _, n1, v1, n2, v2 = line.split()
    for name, number, value in (("K1", n1, v1), ("K2", n2, v2)):
        study = SweepDir(here.path, study=name).study()
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2
        assert (int(number), float(value)) == (study.best_trial.number, study.best_value)
    assert "EXACT True" in text and "HANDLER True" in text, text
