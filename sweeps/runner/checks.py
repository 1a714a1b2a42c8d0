"""Every check a user's input can fail, in two steps: `validate(cfg)` before any process starts
(values, the search space, the sampler and pruner: no store, no data), and `preflight(cfg)`
before any store is written (the data read, the stores and the scheduler reached)."""

from __future__ import annotations

from typing import Any

from nncore import Dataset
from sweeps.config.checks import check_values
from sweeps.config.space import SearchSpace, check_space
from sweeps.errors import ConfigError
from sweeps.runner.cluster import check_scheduler
from sweeps.study.factory import check as check_study
from sweeps.study.seeding import configs as enqueued_configs
from sweeps.study.stopping import check as check_stop
from sweeps.study.storages import storage_for, storage_spec
from sweeps.tracking.store import check_reachable
from sweeps.trial.build import load_data


def validate(cfg: Any) -> SearchSpace:
    """The config's values, its search space, and the sampler and pruner it names; raise
    ConfigError, one sentence naming the field, the value and what is allowed."""
    check_values(cfg)
    space = check_space(cfg)
    check_study(cfg.sweep, space)
    check_stop(cfg.sweep)
    if cfg.sweep.sampler == "grid" and (cfg.sweep.enqueue is not None or cfg.sweep.warm_start is not None):
        raise ConfigError("sweep.sampler is 'grid', which hands grid point N to trial N, so trials queued or copied in "
                          "by sweep.enqueue or sweep.warm_start would run some points twice and skip others; drop "
                          "them, or pick another sampler.")
    if cfg.sweep.enqueue is not None:
        enqueued_configs(cfg.sweep.enqueue, space)
    return space


def preflight(cfg: Any, space: SearchSpace | None = None) -> tuple[SearchSpace, Dataset]:
    """validate(cfg) unless the launch ran it already (its space given), then what only shows on
    contact: the data (returned), the two stores, the scheduler."""
    space = validate(cfg) if space is None else space
    try:
        data = load_data(cfg.dataset, cfg.seed)  # a CSV's missing label column or NaN features show up only when read
    except ValueError as err:
        raise ConfigError(f"dataset {cfg.dataset.name!r} cannot be used: {err}") from None
    if cfg.tracking.enabled:
        check_reachable(cfg.tracking.uri)
    storage_for(storage_spec(cfg.sweep.storage, cfg.sweep.study_name), cfg.sweep).check()
    if cfg.sweep.backend == "dask":
        check_scheduler(cfg.sweep.scheduler)
    return space, data
