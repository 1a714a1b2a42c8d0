"""The Python API, for scripted and reproducible experiments: what `python -m sweeps` does, as
calls that return what they found.

- `run(overrides)` composes conf/ with Hydra's compose API and the command line's overrides,
  checks it as the command line does, runs the sweep, and returns a SweepResult. Bad input raises
  sweeps.errors.ConfigError, whose message is the sentence the command line prints.
- `reproduce(run_id)` trains a tracked trial again and compares its cost curve bit for bit.
- `load_network(run_id)` gives a tracked trial's trained nncore.Network.

It can run several sweeps in one interpreter (a script, a notebook): each call composes afresh,
leaves the interpreter's Ctrl-C handler as it found it, and stops its worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import optuna
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from sweeps import log, quiet
from sweeps.conf_dir import CONF
from sweeps.record import Confirmed, TrialRecord, confirmation, rank
from sweeps.config.overrides import explain
from sweeps.config.schema import register_configs
from sweeps.errors import ConfigError
from sweeps.interrupts import interrupts_handled
from sweeps.report.pareto import front
from sweeps.runner import pool, session
from sweeps.runner.cli import quiet_libraries, start_workers
from sweeps.study.best import best_trial
from sweeps.study.stopping import recorded
from sweeps.trial.reproduction import Reproduction, load_network, reproduce
from sweeps.urls import redact

__all__ = ["Best", "Confirmed", "Reproduction", "SweepResult", "TrialRow", "compose_config", "load_network", "reproduce", "run"]


@dataclass
class TrialRow:
    """One trial of the study: its number, state, value, sampled params, metrics and MLflow run."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: float | None  # None for several metrics: see values
    params: dict[str, Any]
    metrics: dict[str, float]
    run_id: str  # "" with tracking off
    values: list[float] | None = None  # one per metric of sweep.metric
    feasible: bool = True  # satisfies sweep.constraints
    repeats: list[dict[str, float]] = field(default_factory=list)  # each repeat's metrics (sweep.repeats > 1)


@dataclass
class Best:
    """The best complete feasible trial (pruned and diverged trials never count)."""

    number: int
    value: float
    params: dict[str, Any]
    metrics: dict[str, float]
    run_id: str


@dataclass
class SweepResult:
    study: optuna.Study
    best: Best | None  # None when no feasible trial completed, and for several metrics (see pareto)
    parent_run_id: str  # the sweep's MLflow run; "" with tracking off
    tracking_uri: str
    config: DictConfig  # the composed config the sweep ran
    trials: list[TrialRow] = field(default_factory=list)
    pareto: list[TrialRow] = field(default_factory=list)  # several metrics: the Pareto front, by the first
    stopped: str = ""  # why the study stopped before sweep.n_trials (sweep.stop), or ""
    # the best configs trained again with fresh seeds (sweep.confirm), search rank first: [] if not confirmed
    confirmed: list[Confirmed] = field(default_factory=list)
    verdict: str = ""  # the confirmation's one line on the winner and the runner-up

    def top(self, k: int = 5) -> list[TrialRow]:
        """The k best complete trials, best first (feasible ones before the others); for several
        metrics, the first k of the Pareto front."""
        if len(self.study.directions) > 1:
            return self.pareto[:k]
        rows = {t.number: t for t in self.trials}
        return [rows[t.number] for t in rank(self.study.get_trials(deepcopy=False), self.study.directions)[:k]]


def _row(t: optuna.trial.FrozenTrial) -> TrialRow:
    r = TrialRecord.of(t)
    one = r.values is None or len(r.values) == 1
    return TrialRow(r.number, r.state, r.values[0] if one and r.values else None, r.params, r.metrics, r.run_id,
                    None if r.values is None else list(r.values), r.feasible, r.repeats)


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """conf/ composed with `overrides`, as `python -m sweeps` composes it. `hydra.run.dir`, if
    given, receives .hydra/config.yaml and .hydra/overrides.yaml as Hydra's own run would."""
    if isinstance(overrides, str):
        raise ConfigError(f"overrides is the string {overrides!r}, but it must be a list of strings such as "
                          "['sweep.n_trials=10', 'dataset=moons'].")
    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3", job_name="sweeps"):
            cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(explain(overrides, err)) from None
    run_dir = next((o.split("=", 1)[1] for o in overrides if o.startswith(("hydra.run.dir=", "+hydra.run.dir="))), None)
    with open_dict(cfg):
        del cfg["hydra"]
    if run_dir:
        folder = Path(run_dir) / ".hydra"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(redact(OmegaConf.to_yaml(cfg)))  # no URL's password (sweeps.urls)
        (folder / "overrides.yaml").write_text(redact(OmegaConf.to_yaml(list(overrides))))
    return cfg


def run(overrides: Sequence[str] = ()) -> SweepResult:
    """Runs the sweep that `python -m sweeps *overrides` runs, in this process and its workers;
    a second call with the same study resumes it, as the command does."""
    cfg = compose_config(overrides)
    quiet_libraries()
    log.setup()  # its messages printed, unless the program handles the logger "sweeps" itself
    # the environment and warning filters of the program are its own again after the call
    with interrupts_handled(), quiet.scoped():
        try:
            outcome = session.run(cfg, start_workers(cfg, local=cfg.sweep.backend == "loky"))
        finally:
            pool.stop()  # started before the checks that read the data and the stores
    study, best, confirmed = outcome.study, best_trial(outcome.study), confirmation(outcome.study)
    shown = ("number", "value", "params", "metrics", "run_id")
    return SweepResult(
        study=study, best=None if best is None else Best(**{k: getattr(_row(best), k) for k in shown}),
        parent_run_id=outcome.parent_run_id, tracking_uri=cfg.tracking.uri, config=cfg,
        trials=[_row(t) for t in study.get_trials(deepcopy=False)], pareto=[_row(t) for t in front(study)],
        stopped=(recorded(study) or {}).get("reason", ""), confirmed=confirmed.rows if confirmed else [],
        verdict=confirmed.verdict if confirmed else "")
