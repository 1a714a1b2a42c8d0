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


def training_view(ui: str, experiment_id: str) -> str:
    """The MLflow UI's page of an experiment's runs in its model-training view: MLflow 3 opens an
    experiment in its GenAI view unless the URL names the workflow."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
