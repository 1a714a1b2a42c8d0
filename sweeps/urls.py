"""Storage and tracking URLs as strings: which kind, which driver, and without their password.
A leaf (stdlib only): the storages, the tracker and `python -m sweeps.services` share it."""

from __future__ import annotations

import re


def scheme(url: str) -> str:
    """'postgresql' for postgresql+psycopg2://..., '' for a plain path."""
    return url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""


def is_postgres(url: str) -> bool:
    return scheme(url) in ("postgresql", "postgres")


def with_driver(url: str) -> str:
    """`postgresql://...` -> `postgresql+psycopg2://...`; other URLs as they are.

    SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, which is not installed; the pinned
    driver is psycopg2 (psycopg2-binary), so the sweeps and `make mlflow-server` name it.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


# scheme://user:password@: the password runs to the '@' (SQLAlchemy takes a '/' in it unescaped),
# and within the word (a URL inside a sentence, a YAML file)
_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s'\"]+):[^@\s'\"]*@", re.IGNORECASE)


def redact(text: str) -> str:
    """A URL, or text holding URLs (a message, a config file), without their passwords, for logs,
    tags, params and output."""
    return _PASSWORD.sub(r"\1:***@", text)


def local_file(url: str) -> str | None:
    """The file behind a store that only this host can see (a journal's or a store's plain path,
    sqlite:///PATH, file:///PATH), or None for a server's URL."""
    if not scheme(url):
        return url
    for prefix in ("sqlite:///", "file:///", "file://localhost/"):
        if url.startswith(prefix):
            return "/" + url[len(prefix):].lstrip("/") if prefix != "sqlite:///" else url[len(prefix):]
    return None


# where `mlflow ui` serves a local store by default, and `make ui` (the Makefile's HOST and PORT)
LOCAL_UI = "http://127.0.0.1:5000"


def is_server(url: str) -> bool:
    """Whether a tracking URI is a tracking server's, which serves its own UI."""
    return scheme(url) in ("http", "https")


def model_training_view(tracking_uri: str, experiment_id: str) -> str:
    """The experiment's page in MLflow's UI, in its model-training view: the tracking server's own
    UI, else the one `make ui` serves over a local store. MLflow 3's UI opens an experiment in the
    view its workflow switch last showed, GenAI in a new browser, unless the URL names one as the
    switch itself writes it (workflowType=machine_learning); the experiment's tags do not choose it."""
    return training_view(redact(tracking_uri) if is_server(tracking_uri) else LOCAL_UI, experiment_id)


def training_view(ui: str, experiment_id: str) -> str:
    """The experiment's page in the MLflow UI served at `ui`, in its model-training view."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}?workflowType=machine_learning"
