"""A worker that joins a sweep (`python -m sweeps.worker`) must record into the stores the
sweep's other hosts read: a journal, a sqlite: database or a folder is a file on this host only.

The rule, checked before the worker's first trial:

- its Optuna storage is a local file that holds no such study yet, while the tracking server it
  logs to holds the study's sweep from another storage: the sweep runs elsewhere, and the worker
  would run one of its own in that file (on one host, a worker may still start a study in its
  journal before any launcher, as documented);
- its MLflow store is a local file, while the sweep runs on another host too: its launcher's
  (study attribute `nnsweeps.mlflow`, which names it) or a trial's (user attribute `host`). Its
  runs would be where no other host, nor the sweep's summary, can read them.

On one host, with the launcher's own journal and sqlite: store, a worker joins as before.
"""

from __future__ import annotations

import optuna

from sweeps.errors import ConfigError
from sweeps.processes import here
from sweeps.record import SweepLink
from sweeps.study.storages import Storage
from sweeps.urls import local_file, redact


def check_shared(cfg, storage: Storage, existed: bool) -> None:
    """Raise ConfigError, one sentence, if this joined worker's stores are files other hosts cannot see."""
    me = here()["host"]
    if not existed:
        if local_file(storage.spec) is not None and (other := _sweep_storage(cfg, storage)) is not None:
            raise ConfigError(f"sweep.storage={storage.shown!r} is a file on this host ({me}) that holds no study "
                              f"{cfg.sweep.study_name!r}: other hosts cannot see that store, so this worker would run "
                              f"a sweep of its own there instead of joining the one {redact(cfg.tracking.uri)} records "
                              f"from {other}; give it the sweep's storage (sweep.storage={other}).")
        return
    if not cfg.tracking.enabled or local_file(cfg.tracking.uri) is None:
        return
    study = optuna.load_study(study_name=cfg.sweep.study_name, storage=storage.open())
    link = SweepLink.of(study)
    elsewhere = {t.user_attrs.get("host") for t in study.get_trials(deepcopy=False)} - {me, None}
    if link.host and link.host != me:
        elsewhere.add(link.host)
    if not elsewhere:  # one host: its files are the launcher's too (another store: a notice, as before)
        return
    where = f" and logs to {redact(link.uri)}" if link.uri else ""
    raise ConfigError(f"tracking.uri={redact(cfg.tracking.uri)!r} is a file on this host ({me}), but the sweep it "
                      f"joins runs on {', '.join(sorted(elsewhere)) or 'another host'}{where}: other hosts cannot see "
                      "that store, so this worker's runs would be missing from the sweep's; give it the sweep's "
                      f"tracking.uri{' (' + redact(link.uri) + ')' if link.uri else ''}.")


def _sweep_storage(cfg, storage: Storage) -> str | None:
    """The storage of the study's sweep as its tracking server records it (its parent runs' tag
    `optuna.storage`), when that is another than this worker's; None without a server, or such a run."""
    if not cfg.tracking.enabled or local_file(cfg.tracking.uri) is not None:
        return None  # a store on this host: its sweeps run here too
    from mlflow import MlflowClient  # deferred: mlflow's import, only for a worker that would start a study

    client = MlflowClient(tracking_uri=cfg.tracking.uri)
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], max_results=20, filter_string=(
        f"tags.`optuna.study` = '{cfg.sweep.study_name}' and tags.`nnsweeps.role` = 'sweep'"))
    return next((r.data.tags["optuna.storage"] for r in runs
                 if r.data.tags.get("optuna.storage", storage.shown) != storage.shown), None)
