"""What a person looks at after a sweep: the figures, `python -m sweeps.report` in the terminal,
a real `mlflow server` over the store a small sweep wrote (checked through its REST API), and
the MLflow UI in headless Chromium driven by Playwright.

The slow tests share one sweep and one server (module-scoped fixtures). With
NNSWEEPS_UPDATE_DOCS=1 the browser tests also copy their screenshots to docs/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from sweeps import plots
from sweeps.report import summary
from sweeps.services import free_port
from tests.conftest import ROOT, SweepDir

PNG = b"\x89PNG\r\n\x1a\n"
TRIAL_FIGURES = {"cost_curve.png", "decision_boundary.png"}
SWEEP_FIGURES = {"optimization_history.png", "param_importances.png", "parallel_coordinate.png",
                 "top_cost_curves.png"}
TRIAL_METRICS = {"val_accuracy", "val_cost", "train_cost", "fit_seconds", "iterations_run"}
N_TRIALS = 8
SWEEP_ARGS = ["sweep.n_jobs=1", f"sweep.n_trials={N_TRIALS}", "sweep.sampler=random", "sweep.seed=3",
              "tracking.trial_figures=true",
              "search_space.train.iterations.low=200", "search_space.train.iterations.high=1000",
              "search_space.train.iterations.step=200",
              "search_space.train.learning_rate.low=0.05", "search_space.train.learning_rate.high=1.5"]
SERVER_START_TIMEOUT = 120  # seconds; a lean server answered /health in ~4-8 s here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UI_TIMEOUT_MS = 60_000


def is_png(data: bytes, min_size: int = 5_000) -> bool:
    return data[:8] == PNG and len(data) >= min_size


# ---- the figures themselves (fast) ------------------------------------------------------------


def test_decision_boundary_and_cost_curve_are_real_pngs(tmp_path):
    from nncore import Network, fit, load_dataset

    data = load_dataset("moons", seed=0)
    net = Network.create([2, 6, 1], activation="tanh", seed=0)
    calls = []

    def predict(X):
        calls.append(X.shape)
        return net.predict(X)

    result = fit(net, data.X_train, data.Y_train, learning_rate=1.0, iterations=300)
    plots.decision_boundary(tmp_path / "db.png", predict, data.X_train, data.y_train, data.X_val, data.y_val,
                            title="moons", class_names=data.class_names)
    assert calls == [(2, 100 * 100)]  # one predict call over the whole grid
    plots.cost_curve(tmp_path / "cost.png", result.cost_iterations, result.costs, title="moons",
                     val=(np.array([100.0, 200.0, 300.0]), np.array([0.5, 0.4, np.nan])))
    plots.cost_curve(tmp_path / "acc.png", result.cost_iterations, result.costs,
                     val=(np.array([100.0]), np.array([0.8])), val_label="val_accuracy")  # a second axis
    for name in ("db.png", "cost.png", "acc.png"):
        assert is_png((tmp_path / name).read_bytes()), name


def test_decision_boundary_of_three_classes(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 90))
    y = np.repeat([0, 1, 2], 30)
    plots.decision_boundary(tmp_path / "db.png", lambda G: (G[0] > 0).astype(int) + (G[1] > 0), X, y)
    assert is_png((tmp_path / "db.png").read_bytes())


def test_parallel_coordinates_with_categories_log_axes_and_missing_layers(tmp_path):
    rows = [(0.3, {"lr": 0.01, "act": "tanh", "units_l1": 4}),
            (0.5, {"lr": 1.0, "act": "relu", "units_l1": 8, "units_l2": 16}),
            (0.7, {"lr": 0.1, "act": "tanh", "units_l1": 2})]
    axes = [("lr", {"low": 1e-3, "high": 2.0, "log": True}), ("act", {"choices": ["tanh", "relu"]}),
            ("units_l1", {"low": 2, "high": 64, "log": True}), ("units_l2", {"low": 2, "high": 64, "log": True})]
    plots.parallel_coordinates(tmp_path / "pc.png", rows, axes, metric="val_cost", minimize=True)
    assert is_png((tmp_path / "pc.png").read_bytes())


# ---- one small sweep, its store served by `mlflow server` (slow) -------------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> SweepDir:
    """A deterministic sweep of N_TRIALS flower trials (one worker, seeded random sampler)."""
    sweep = SweepDir(tmp_path_factory.mktemp("ui-sweep"), study="ui", experiment="nnsweeps-ui")
    sweep.run(*SWEEP_ARGS)
    return sweep


def stop_group(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the server's whole process group (uvicorn workers outlive a signal to the main pid
    alone), then SIGKILL whatever is left after `grace` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(swept, tmp_path_factory):
    """`mlflow server` in its lean form (one worker, no job execution) on a free loopback port, in
    its own process group; yields its base URL. The experiment's artifact location is a file:// URI
    on this disk, which the server reads directly: no artifact flags are needed."""
    home = tmp_path_factory.mktemp("mlflow-server")  # the server's cwd: whatever it writes stays here
    port = free_port()
    log = open(home / "server.log", "wb")  # noqa: SIM115 (open while the server runs, closed in teardown)
    cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", swept.uri,
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(cmd, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode} before answering /health:\n"
                            + (home / "server.log").read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer /health within {SERVER_START_TIMEOUT} s:\n"
                            + (home / "server.log").read_text(errors="replace")[-3000:])
            time.sleep(0.25)
        yield base
    finally:
        stop_group(proc)
        log.close()


def api(base: str, path: str, body: dict | None = None, **query) -> dict:
    url = f"{base}/api/2.0/mlflow/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def fetch(base: str, run_id: str, path: str) -> bytes:
    query = urllib.parse.urlencode({"path": path, "run_uuid": run_id})
    with urllib.request.urlopen(f"{base}/get-artifact?{query}", timeout=30) as resp:
        return resp.read()


def search(base: str, experiment_id: str, filter_string: str) -> list[dict]:
    runs, token = [], None
    while True:
        body = {"experiment_ids": [experiment_id], "filter": filter_string, "max_results": 1000}
        if token:
            body["page_token"] = token
        page = api(base, "runs/search", body)
        runs += page.get("runs", [])
        token = page.get("next_page_token")
        if not token:
            return runs


def as_dict(entries: list[dict] | None) -> dict[str, str]:
    return {e["key"]: e["value"] for e in entries or []}


@pytest.fixture(scope="module")
def tracked(server, swept) -> dict:
    """The experiment, its parent run and child runs as the server's REST API returns them."""
    exp = api(server, "experiments/get-by-name", experiment_name=swept.experiment)["experiment"]
    runs = search(server, exp["experiment_id"], "")
    parents = [r for r in runs if as_dict(r["data"].get("tags"))["nnsweeps.role"] == "sweep"]
    children = [r for r in runs if as_dict(r["data"].get("tags"))["nnsweeps.role"] == "trial"]
    return {"experiment": exp, "parents": parents, "children": children}


@pytest.mark.slow
def test_server_holds_one_parent_and_a_child_run_per_trial(tracked):
    assert tracked["experiment"]["artifact_location"].startswith("file://")
    assert len(tracked["parents"]) == 1 and len(tracked["children"]) == N_TRIALS
    parent_id = tracked["parents"][0]["info"]["run_id"]
    names = sorted(r["info"]["run_name"] for r in tracked["children"])
    assert names == [f"trial-{i:04d}" for i in range(N_TRIALS)]
    for run in tracked["children"]:
        tags, params = as_dict(run["data"].get("tags")), as_dict(run["data"].get("params"))
        metrics = {m["key"]: m["value"] for m in run["data"].get("metrics", [])}
        assert tags["mlflow.parentRunId"] == parent_id
        assert run["info"]["status"] == "FINISHED"
        sampled = [k for k in tags["sampled"].split(",") if k != "model.hidden_units"]
        assert {"train.learning_rate", "train.iterations"} <= set(sampled)
        for key in sampled:  # the sampled values are params: the compare view's columns
            assert params.get(key), (run["info"]["run_name"], key)
        if tags["optuna.state"] == "COMPLETE":
            assert TRIAL_METRICS <= set(metrics), run["info"]["run_name"]


@pytest.mark.slow
def test_server_lists_and_serves_every_figure(server, tracked, swept):
    top = {t.number for t in summary.ranked(swept.study())[:summary.TOP]}
    complete = 0
    for run in tracked["children"]:
        run_id = run["info"]["run_id"]
        listed = {f["path"]: f for f in api(server, "artifacts/list", run_id=run_id)["files"]}
        expected = {"config.yaml", "weights.npz", "cost_curve.csv", "cost_curve.png"}
        tags = as_dict(run["data"].get("tags"))
        if int(tags["optuna.trial"]) in top:
            expected |= {"decision_boundary.png"}  # flower is 2-D: the best trials' boundaries
            complete += 1
        assert expected <= set(listed), (run["info"]["run_name"], sorted(listed))
        for name in expected & TRIAL_FIGURES:
            assert listed[name]["file_size"] >= 5_000
            assert is_png(fetch(server, run_id, name)), (run["info"]["run_name"], name)
    assert complete >= 2

    parent = tracked["parents"][0]
    parent_id = parent["info"]["run_id"]
    listed = {f["path"]: f for f in api(server, "artifacts/list", run_id=parent_id)["files"]}
    assert SWEEP_FIGURES | {"summary.md", "trials.csv"} <= set(listed), sorted(listed)
    for name in SWEEP_FIGURES:
        assert is_png(fetch(server, parent_id, name), min_size=10_000), name

    summary_md = fetch(server, parent_id, "summary.md").decode()
    best_id = as_dict(parent["data"].get("tags"))["best_run_id"]
    best = next(r for r in tracked["children"] if r["info"]["run_id"] == best_id)
    states = [as_dict(r["data"].get("tags"))["optuna.state"] for r in tracked["children"]]
    counts = f"| {states.count('COMPLETE')} | {states.count('PRUNED')} | {states.count('FAIL')} | {N_TRIALS} |"
    assert counts in summary_md
    assert f"## Best trial: {as_dict(best['data']['tags'])['optuna.trial']}" in summary_md
    assert f"python -m sweeps.reproduce {best_id}" in summary_md
    assert f"`train.learning_rate` | `{as_dict(best['data']['params'])['train.learning_rate']}`" in summary_md


@pytest.mark.slow
def test_report_ranks_the_trials_in_the_terminal(swept, tracked, server):
    env = {**os.environ, "MLFLOW_TRACKING_URI": swept.uri}
    parent = tracked["parents"][0]
    best_id = as_dict(parent["data"].get("tags"))["best_run_id"]

    out = subprocess.run([sys.executable, "-m", "sweeps.report", "--top", "3"], env=env, cwd=swept.path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert parent["info"]["run_id"] in lines[0]  # the latest sweep, by default
    header = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    for column in ("val_cost", "val_accuracy", "train_cost", "train.learning_rate"):
        assert column in lines[header]
    rows = lines[header + 2:header + 5]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"] and rows[0].endswith(best_id)
    assert lines[header + 5] == "" and f"sweeps.reproduce {best_id}" in out.stdout

    # the same through the server, by the parent's run id
    out = subprocess.run([sys.executable, "-m", "sweeps.report", parent["info"]["run_id"], "--top", "1"],
                         env={**env, "MLFLOW_TRACKING_URI": server}, capture_output=True, text=True, timeout=120,
                         cwd=swept.path, check=False)
    assert out.returncode == 0, out.stderr
    assert best_id in out.stdout

    out = subprocess.run([sys.executable, "-m", "sweeps.report", "0123456789abcdef0123456789abcdef"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=swept.path, check=False)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("error: there is no run '0123456789abcdef0123456789abcdef'")
    assert len(out.stderr.strip().splitlines()) == 1


# ---- the MLflow UI in headless Chromium (slow) --------------------------------------------------


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's Chromium, headless, with a fresh profile (never `playwright install`)."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1600, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    assert is_png(shot.read_bytes(), min_size=20_000)
    if os.environ.get("NNSWEEPS_UPDATE_DOCS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / name)
    return shot


def close_assistant(page) -> None:
    """MLflow 3 opens an assistant side panel on a first visit; it hides the table's columns. It
    may be drawn after the page's content: waited for a few seconds, closed if it came."""
    from playwright.sync_api import TimeoutError as NotThere

    close = page.get_by_role("button", name="Close")
    try:
        close.first.wait_for(timeout=3000)
    except NotThere:
        return
    close.first.click()


def show_columns(page, names: list[str], hide: list[str]) -> None:
    """Ticks columns in the runs table's column selector, by their exact names."""
    page.get_by_role("button", name="Columns").click()
    dialog = page.get_by_role("dialog")
    box = dialog.get_by_placeholder("Search columns")
    for name in [*hide, *names]:
        box.fill(name)
        dialog.locator(".du-bois-light-tree-title").filter(has_text=re.compile(rf"^{re.escape(name)}$")).first.click()
    box.fill("")
    page.keyboard.press("Escape")


@pytest.mark.slow
def test_ui_lists_the_sweep_and_its_trial_runs(browser, server, tracked, tmp_path):
    page = browser.new_page()
    page.set_viewport_size({"width": 1600, "height": 620})
    exp_id = tracked["experiment"]["experiment_id"]
    # The runs view of the "Model training" workflow (MLflow 3 opens the GenAI one by default).
    page.goto(f"{server}/#/experiments/{exp_id}/runs?workflowType=machine_learning")
    parent_name = tracked["parents"][0]["info"]["run_name"]
    parent_row = page.locator("[role=row]", has_text=parent_name).first
    parent_row.wait_for()
    close_assistant(page)
    show_columns(page, ["val_cost", "val_accuracy", "fit_seconds", "train.learning_rate", "train.iterations",
                        "model.hidden_units", "model.activation"], hide=["Dataset", "Source", "Models"])
    # child runs are nested under the sweep's run: expand it
    parent_row.locator("button[data-component-id*='runnamecellrenderer']").first.click()
    for i in range(N_TRIALS):
        page.get_by_text(f"trial-{i:04d}", exact=True).first.wait_for()
    for column in ("val_cost", "val_accuracy", "train.learning_rate"):
        page.get_by_role("columnheader", name=column, exact=True).first.wait_for()
    save_screenshot(page, tmp_path, "mlflow-runs.png")
    page.close()


@pytest.mark.slow
def test_the_experiment_says_it_is_model_training(tracked):
    """The experiment's tag mlflow.experimentKind=custom_model_development, which MLflow's UI reads
    as the experiment's kind. MLflow 3.17's UI still lands on the view its workflow switch last
    showed (GenAI in a new browser): the runs view is opened with workflowType=machine_learning, as
    test_ui_lists_the_sweep_and_its_trial_runs does."""
    tags = {t["key"]: t["value"] for t in tracked["experiment"].get("tags", [])}
    assert tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.slow
def test_ui_compares_two_trials_params_and_metrics(browser, server, tracked, tmp_path):
    def val_cost(run):
        return next((m["value"] for m in run["data"].get("metrics", []) if m["key"] == "val_cost"), float("inf"))

    two = sorted(tracked["children"], key=val_cost)[:2]
    ids = [r["info"]["run_id"] for r in two]
    exp_id = tracked["experiment"]["experiment_id"]
    query = urllib.parse.urlencode({"runs": json.dumps(ids), "experiments": json.dumps([exp_id]),
                                    "workflowType": "machine_learning"})
    page = browser.new_page()
    page.set_viewport_size({"width": 1600, "height": 1850})
    page.goto(f"{server}/#/compare-runs?{query}")
    for run in two:
        page.get_by_text(run["info"]["run_name"], exact=True).first.wait_for()
    row = page.locator("tr", has=page.get_by_text("train.learning_rate", exact=True)).first
    row.wait_for()
    for run in two:  # each run's sampled learning rate, in its column
        assert as_dict(run["data"]["params"])["train.learning_rate"] in row.inner_text()
    close_assistant(page)
    diff_only = page.get_by_role("switch", name="Parameters - Show diff only")
    diff_only.click()
    page.get_by_role("switch", name="Metrics - Show diff only").click()
    page.get_by_role("switch", name="Tags - Show diff only").click()
    page.get_by_role("switch", name="Parameters - Show diff only", checked=True).wait_for()  # React redrew it
    assert diff_only.get_attribute("aria-checked") == "true"
    page.get_by_text("Visualizations", exact=True).first.click()  # fold the charts: the tables show
    page.get_by_text("Parallel Coordinates Plot", exact=True).first.wait_for(state="hidden")
    # the two decision boundaries side by side, served from the runs' artifacts
    page.get_by_text("decision_boundary.png", exact=True).first.click()
    page.locator("img[alt='decision_boundary.png']").nth(1).wait_for()
    page.wait_for_function("() => [...document.querySelectorAll(\"img[alt='decision_boundary.png']\")]"
                           ".filter(i => i.complete && i.naturalWidth > 0).length >= 2")
    save_screenshot(page, tmp_path, "mlflow-compare.png")
    page.close()
