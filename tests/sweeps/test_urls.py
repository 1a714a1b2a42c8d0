"""sweeps.urls: which kind of URL, its driver, and its password hidden."""

import pytest

from sweeps.urls import is_postgres, local_file, model_training_view, redact, scheme, with_driver


@pytest.mark.parametrize("url, kind", [
    ("postgresql://u@h:5432/db", "postgresql"), ("postgresql+psycopg2://u@h/db", "postgresql"),
    ("POSTGRES://u@h/db", "postgres"), ("sqlite:///x.db", "sqlite"), ("/a/b.journal", ""), ("x.journal", ""),
])
def test_scheme_names_the_kind_and_a_path_has_none(url, kind):
    assert scheme(url) == kind
    assert is_postgres(url) == (kind in ("postgresql", "postgres"))


def test_a_bare_postgresql_url_gets_the_pinned_driver_and_others_stay():
    assert with_driver("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert with_driver("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert with_driver("sqlite:///x.db") == "sqlite:///x.db"


def test_redact_hides_the_password_only():
    assert redact("postgresql://bob:s3cr:et@h:5432/db") == "postgresql://bob:***@h:5432/db"
    assert redact("postgresql://bob@h/db") == "postgresql://bob@h/db"
    assert redact("/outputs/x.journal") == "/outputs/x.journal"


def test_redact_hides_every_password_in_a_text():
    text = "- sweep.storage=postgresql://u:p/w@h/db\n  uri: 'http://bob:x@127.0.0.1:1' and http://h:5000/x"
    assert redact(text) == "- sweep.storage=postgresql://u:***@h/db\n  uri: 'http://bob:***@127.0.0.1:1' and http://h:5000/x"


@pytest.mark.parametrize("url, path", [
    ("/data/o.journal", "/data/o.journal"), ("o.journal", "o.journal"), ("sqlite:////data/m.db", "/data/m.db"),
    ("sqlite:///m.db", "m.db"), ("file:///data/mlruns", "/data/mlruns"), ("http://10.0.0.1:5001", None),
    ("postgresql://u@db:5432/optuna", None), ("mysql://u@db/optuna", None)])
def test_local_file_is_the_file_behind_a_store_only_this_host_sees(url, path):
    assert local_file(url) == path


@pytest.mark.parametrize("uri, ui", [
    ("sqlite:////tmp/x/mlflow.db", "http://127.0.0.1:5000"), ("/tmp/mlruns", "http://127.0.0.1:5000"),
    ("http://10.0.0.5:5000/", "http://10.0.0.5:5000"), ("https://bob:s3cret@mlflow.example.org", "https://bob:***@mlflow.example.org"),
])
def test_the_model_training_view_is_the_server_s_own_ui_or_the_local_one(uri, ui):
    assert model_training_view(uri, "7") == f"{ui}/#/experiments/7?workflowType=machine_learning"
