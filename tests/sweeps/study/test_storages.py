"""sweeps.study.storages: which Storage a spec names, where the default journal lives, and what a
journal's check and repair do, on real files and real Optuna storages."""

from __future__ import annotations

import errno
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from sweeps.errors import ConfigError
from sweeps.study.storages import (
    KINDS,
    RDB,
    STALE_LOCK_SECONDS,
    Journal,
    Postgres,
    advisory_key,
    storage_for,
    storage_spec,
)

HEARTBEAT = {"heartbeat_interval": 1, "grace_period": 2}


def make_study(storage, name: str = "S", n_trials: int = 2) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=storage.open())
    for i in range(n_trials):
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        study.tell(trial, float(i))
    return study


# ---- storage_for and storage_spec ------------------------------------------------------------
def test_a_path_is_a_journal(tmp_path):
    storage = storage_for(str(tmp_path / "s.journal"))
    assert type(storage) is Journal and storage.spec == str(tmp_path / "s.journal")


@pytest.mark.parametrize("scheme_name", sorted(KINDS))
def test_each_scheme_of_kinds_picks_its_class(scheme_name):
    assert type(storage_for(f"{scheme_name}://user@db.example/optuna")) is KINDS[scheme_name]


def test_postgres_urls_with_or_without_a_driver_are_postgres():
    assert KINDS["postgresql"] is Postgres and KINDS["postgres"] is Postgres
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg2://u@h/db"):
        assert type(storage_for(url)) is Postgres, url


def test_another_url_is_an_rdb(tmp_path):
    storage = storage_for("sqlite:///x.db")
    assert type(storage) is RDB and storage.spec == "sqlite:///x.db"


def test_the_default_journal_is_outputs_study_journal_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = storage_spec(None, "mystudy")
    assert Path(spec).is_absolute()
    assert Path(spec) == (tmp_path / "outputs" / "mystudy.journal").resolve()
    assert not (tmp_path / "outputs").exists()  # a spec, not a file


def test_a_relative_journal_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage_spec("sub/j.journal", "S") == str((tmp_path / "sub" / "j.journal").resolve())


@pytest.mark.parametrize("url", ["sqlite:///x.db", "postgresql://u:p@h:5432/db", "mysql+pymysql://u@h/db"])
def test_a_url_passes_through(url):
    assert storage_spec(url, "S") == url


def test_shown_hides_the_password():
    storage = storage_for("postgresql://alice:s3cr3t@db.example:5432/optuna")
    assert "s3cr3t" not in storage.shown and "s3cr3t" not in repr(storage)
    assert storage.shown == "postgresql://alice:***@db.example:5432/optuna"
    assert storage_for("sqlite:///x.db").shown == "sqlite:///x.db"


def test_shown_hides_a_password_holding_a_slash():
    storage = storage_for("postgresql://alice:pa/ss@db.example/optuna")
    assert "pa/ss" not in storage.shown


# ---- Journal.check ----------------------------------------------------------------------------
def test_check_accepts_a_new_file_in_folders_still_to_be_made(tmp_path):
    Journal(str(tmp_path / "a" / "b" / "s.journal")).check()
    assert not (tmp_path / "a").exists()  # checking creates nothing


def test_check_refuses_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="sweep.storage") as err:
        Journal(str(tmp_path)).check()
    assert "it is a folder" in str(err.value)


def test_check_refuses_a_path_under_a_file(tmp_path):
    afile = tmp_path / "plain"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="sweep.storage") as err:
        Journal(str(afile / "sub" / "s.journal")).check()
    assert f"{afile} is a file, not a folder" in str(err.value)


def test_check_refuses_a_read_only_folder(read_only_folder):
    with pytest.raises(ConfigError, match="sweep.storage") as err:
        Journal(str(read_only_folder / "s.journal")).check()
    assert "cannot be written" in str(err.value)


# ---- Journal.repair ----------------------------------------------------------------------------
def test_repair_of_a_missing_journal_says_nothing(tmp_path):
    assert Journal(str(tmp_path / "none.journal")).repair() == []
    assert not (tmp_path / "none.journal").exists()


def test_repair_of_a_sound_journal_changes_nothing(tmp_path):
    path = tmp_path / "s.journal"
    make_study(Journal(str(path)))
    before = path.read_bytes()
    assert Journal(str(path)).repair() == []
    assert path.read_bytes() == before


def test_repair_cuts_a_torn_last_line_into_a_side_file(tmp_path):
    path = tmp_path / "s.journal"
    make_study(Journal(str(path)), n_trials=3)
    sound = path.read_bytes()
    torn = b'{"op_code": 6, "worker_id": "dead", "trial_id": 2, "sta'
    with open(path, "ab") as f:
        f.write(torn)
    notes = Journal(str(path)).repair()
    assert len(notes) == 1 and "torn by a crash" in notes[0] and f"({len(torn)} bytes)" in notes[0]
    assert path.read_bytes() == sound
    sides = list(tmp_path.glob("s.journal.torn-*"))
    assert len(sides) == 1 and sides[0].read_bytes() == torn
    study = optuna.load_study(study_name="S", storage=Journal(str(path)).open())
    assert [t.value for t in study.trials] == [0.0, 1.0, 2.0]


def test_repair_removes_a_stale_lock_file(tmp_path):
    path = tmp_path / "s.journal"
    make_study(Journal(str(path)))
    lock = tmp_path / "s.journal.lock"
    lock.write_text("")
    old = time.time() - STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    notes = Journal(str(path)).repair()
    assert len(notes) == 1 and "stale lock file" in notes[0] and str(lock) in notes[0]
    assert not lock.exists()
    # and the journal can be written at once: no process waits for the dead one's lock
    study = optuna.load_study(study_name="S", storage=Journal(str(path)).open())
    study.enqueue_trial({"x": 0.5})
    assert len(study.trials) == 3


# ---- Journal appends ----------------------------------------------------------------------------
# a process whose files may grow only a few bytes more: its next append is cut short (EFBIG)
CUT_SHORT = """
import resource, signal, sys
import optuna
from sweeps.study.storages import Journal
path, limit = sys.argv[1], int(sys.argv[2])
study = optuna.load_study(study_name="S", storage=Journal(path).open())
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write() rather than the signal's kill
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    study.set_user_attr("note", "x" * 500)
except OSError as err:
    print(err.errno)
"""


def test_an_append_cut_short_is_rolled_back_and_the_next_one_is_readable(tmp_path):
    path = tmp_path / "s.journal"
    make_study(Journal(str(path)))
    before = path.read_bytes()
    done = subprocess.run([sys.executable, "-c", CUT_SHORT, str(path), str(len(before) + 40)],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == str(errno.EFBIG), done.stderr  # the write did fail half-way
    assert path.read_bytes() == before
    study = optuna.load_study(study_name="S", storage=Journal(str(path)).open())
    study.set_user_attr("next", 1)
    outside = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.load_study(study_name="S", storage=outside)  # Optuna's own client reads it all
    assert study.user_attrs == {"next": 1} and [t.value for t in study.trials] == [0.0, 1.0]


# ---- heartbeats ----------------------------------------------------------------------------
def test_an_rdb_with_a_heartbeat_interval_beats(tmp_path):
    storage = storage_for(f"sqlite:///{tmp_path / 'h.db'}", HEARTBEAT)
    assert type(storage) is RDB
    assert storage.heartbeats is True and storage.grace_seconds() == 2
    backend = storage.open()
    assert isinstance(backend, optuna.storages.RDBStorage)
    assert backend.get_heartbeat_interval() == 1


def test_an_rdb_without_a_grace_period_waits_twice_the_interval(tmp_path):
    storage = storage_for(f"sqlite:///{tmp_path / 'h.db'}", {"heartbeat_interval": 3, "grace_period": None})
    assert storage.heartbeats is True and storage.grace_seconds() == 6


def test_an_rdb_without_a_heartbeat_interval_does_not_beat(tmp_path):
    for sweep in (None, {}, {"heartbeat_interval": None, "grace_period": 30}):
        storage = storage_for(f"sqlite:///{tmp_path / 'h.db'}", sweep)
        assert storage.heartbeats is False and storage.grace_seconds() is None
    assert storage.open().get_heartbeat_interval() is None


def test_a_journal_never_beats(tmp_path):
    storage = storage_for(str(tmp_path / "s.journal"), HEARTBEAT)
    assert storage.heartbeats is False and storage.grace_seconds() is None


# ---- pickling and the advisory lock key ---------------------------------------------------------
@pytest.mark.parametrize("kind", ["journal", "rdb"])
def test_a_storage_pickles_without_its_opened_optuna_storage(tmp_path, kind):
    spec = str(tmp_path / "s.journal") if kind == "journal" else f"sqlite:///{tmp_path / 'h.db'}"
    storage = storage_for(spec, HEARTBEAT)
    make_study(storage)
    copy = pickle.loads(pickle.dumps(storage))
    assert type(copy) is type(storage) and copy.spec == spec and copy.heartbeats == storage.heartbeats
    assert vars(copy)["_optuna"] is None  # each process opens its own
    opened = copy.open()
    assert opened is not storage.open() and copy.open() is opened  # made once per process
    study = optuna.load_study(study_name="S", storage=opened)
    assert [t.value for t in study.trials] == [0.0, 1.0]


def test_advisory_key_is_a_stable_signed_64_bit_int():
    key = advisory_key("S")
    assert isinstance(key, int) and -(2 ** 63) <= key < 2 ** 63
    assert key == advisory_key("S") == 1359401700563090077  # the same in every process and release
    assert advisory_key("nnsweeps") == 2658060706776435961
    keys = {advisory_key(f"study{i}") for i in range(200)}
    assert len(keys) == 200 and any(k < 0 for k in keys)  # distinct, and signed
