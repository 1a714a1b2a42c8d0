"""Bad input is refused before any trial or run exists: one sentence, a non-zero exit, and
nothing written to the stores. Each case is a real `python -m sweeps` process."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

CASES = [
    # (overrides, words the message must contain)
    (["model.activation=swish"], ["model.activation", "swish", "tanh"]),
    (["model.actvation=relu"], ["actvation"]),
    (["train.learning_rate=abc"], ["learning_rate", "abc"]),
    (["train.learning_rate=-1"], ["train.learning_rate", "-1"]),
    (["train.iterations=0"], ["train.iterations", "0"]),
    (["model.hidden_units=[0]"], ["model.hidden_units", "0"]),
    (["+search_space.train.nothing={type:float,low:0.1,high:1.0}"], ["train.nothing"]),
    (["search_space.train.learning_rate.low=3.0"], ["train.learning_rate", "3.0"]),
    (["search_space.train.learning_rate.low=0.0"], ["train.learning_rate", "log"]),
    (["search_space.model.activation.choices=[]"], ["model.activation", "choice"]),
    (["sweep.n_trials=0"], ["sweep.n_trials", "0"]),
    (["sweep.n_jobs=0"], ["sweep.n_jobs", "0"]),
    (["sweep.sampler=bayes"], ["sweep.sampler", "bayes", "tpe"]),
    (["sweep.pruner=early"], ["sweep.pruner", "early", "median"]),
    (["dataset.name=mnist"], ["dataset.name", "mnist", "flower"]),
    (["dataset=csv", "dataset.kwargs.path=/nonexistent/data.csv", "dataset.kwargs.label=y"], ["/nonexistent/data.csv"]),
    (["dataset=csv", "dataset.kwargs.path={csv}", "dataset.kwargs.label=target"], ["target", "label"]),
    (["dataset=csv", "dataset.kwargs.path={csv_nan}", "dataset.kwargs.label=y"], ["nan"]),
    (["tracking.uri=http://127.0.0.1:9"], ["http://127.0.0.1:9"]),
    (["sweep.storage={csv}/optuna.journal"], ["sweep.storage", "is a file, not a folder"]),
    (["sweep.storage={dir}"], ["sweep.storage", "it is a folder"]),
    (["sweep.storage=mysql://u@127.0.0.1/db"], ["sweep.storage", "mysql", "driver"]),
    (["sweep.storage=foo://bar"], ["sweep.storage", "does not know", "foo"]),
    (["tracking.uri=file:///{dir}/mlruns"], ["tracking.uri", "folder store", "sqlite:///"]),
    (["tracking.uri=sqlite:///{bad_db}"], ["tracking.uri", "damaged or not a database"]),
]


@pytest.mark.parametrize("overrides,words", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_refused_before_anything_is_written(sweep_dir, overrides, words):
    csv = sweep_dir.path / "data.csv"
    csv.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    csv_nan = sweep_dir.path / "nan.csv"
    csv_nan.write_text("a,b,y\n1,2,0\n3,nan,1\n5,6,0\n7,8,1\n")
    bad_db = sweep_dir.path / "truncated.db"
    bad_db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 20)  # a store cut short
    overrides = [o.replace("{csv}", str(csv)).replace("{csv_nan}", str(csv_nan)).replace("{dir}", str(sweep_dir.path))
                 .replace("{bad_db}", str(bad_db)) for o in overrides]
    proc = sweep_dir.run("sweep.n_trials=2", *overrides, check=False, timeout=120)
    assert proc.returncode not in (0, None)
    message = proc.stderr.strip()
    assert "Traceback" not in message, message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    assert not sweep_dir.journal.exists(), "the Optuna storage was written"
    assert not (sweep_dir.path / "mlflow.db").exists(), "the MLflow store was written"


@pytest.mark.parametrize("override, words", [
    ("dataset=moon", ["dataset=moon", "moons", "flower", "did you mean 'moons'?"]),
    ("model.actvation=relu", ["model.actvation", "did you mean 'model.activation'?"]),
    ("sweep.n_trials=ten", ["sweep.n_trials=ten", "an integer"]),
    ("sweep.sampler=TPE", ["sweep.sampler", "'TPE'", "did you mean 'tpe'?"]),
])
def test_a_mistake_hydra_finds_is_one_sentence_with_the_closest_name_and_exit_2(sweep_dir, override, words):
    proc = sweep_dir.run(override, check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert all(w in lines[0] for w in words), lines[0]


@pytest.mark.parametrize("where", ["tracking.uri=sqlite:///{ro}/mlflow.db", "sweep.storage={ro}/s.journal",
                                   "hydra.run.dir={ro}/out"])
def test_a_read_only_folder_is_one_sentence_and_nothing_written(sweep_dir, read_only_folder, where):
    """A tracking, storage or output folder that cannot be written (a read-only mount for root)."""
    override = where.format(ro=read_only_folder)
    proc = sweep_dir.run("sweep.n_trials=2", "search_space=none", "train.iterations=100", override,
                         check=False, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and str(read_only_folder) in lines[-1], proc.stderr
    assert not list(read_only_folder.iterdir())
    if not override.startswith("sweep.storage"):
        assert not sweep_dir.journal.exists()


def test_a_condition_that_can_never_hold_exits_2_with_a_sentence_and_writes_nothing(sweep_dir):
    """The default space samples model.depth in [1, 3]: a learning rate sampled only at depth 7 was
    accepted and then never sampled, in every trial."""
    proc = sweep_dir.run("sweep.n_trials=2", "~search_space.train.learning_rate",
                         "+search_space.train.learning_rate={type:float,low:0.1,high:1.0,when:{model.depth:7}}",
                         check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    words = ("'train.learning_rate'", "model.depth=7", "int in [1, 3]", "never hold")
    assert all(w in lines[0] for w in words), lines[0]
    assert not sweep_dir.journal.exists() and not (sweep_dir.path / "mlflow.db").exists()
    assert not list(sweep_dir.path.glob("*.journal*")) and not list(sweep_dir.path.glob("*.db"))


@pytest.mark.parametrize("override, shown", [
    ("tracking.uri=http://user:secret@127.0.0.1:1", "tracking.uri='http://user:***@127.0.0.1:1' is not reachable"),
    ("sweep.storage=postgresql://u:secret@127.0.0.1:1/db", "sweep.storage='postgresql://u:***@127.0.0.1:1/db' cannot be"),
])
def test_a_urls_password_is_neither_printed_nor_left_in_hydras_output(sweep_dir, override, shown):
    """Before, the error printed the tracking server's password, and .hydra/*.yaml kept both."""
    proc = sweep_dir.run(override, check=False, timeout=120)
    assert proc.returncode == 2 and shown in proc.stderr, proc.stderr
    assert "secret" not in proc.stdout + proc.stderr
    written = [p for p in (sweep_dir.path / "hydra").rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"config.yaml", "overrides.yaml", "hydra.yaml"}
    assert [p.name for p in written if b"secret" in p.read_bytes()] == []


@pytest.mark.parametrize("seed", [-1, 2 ** 32])
def test_a_sweep_seed_numpy_cannot_take_is_one_sentence_exit_2_and_no_journal(sweep_dir, seed):
    proc = sweep_dir.run(f"sweep.seed={seed}", check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"error: sweep.seed is {seed}, but it must be an integer from 0 to 4294967295 "
                                   "(NumPy's seeds)."), proc.stderr
    assert not sweep_dir.journal.exists(), "the Optuna storage was written"


def test_a_launch_checks_the_config_once(tmp_path, monkeypatch):
    """start_workers' checks hand their space to the session, whose preflight ran them again before."""
    import sweeps
    import sweeps.runner.checks as checks

    calls = []
    real = checks.check_values
    monkeypatch.setattr(checks, "check_values", lambda cfg: calls.append(1) or real(cfg))
    monkeypatch.chdir(tmp_path)
    sweeps.run(["sweep.n_trials=1", "sweep.n_jobs=1", "tracking.enabled=false", "search_space=none",
                "train.iterations=20", "sweep.confirm.top=0", f"sweep.storage={tmp_path / 's.journal'}"])
    assert len(calls) == 1

