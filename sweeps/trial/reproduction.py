"""A tracked trial, back from its run: its network (load_network) and its training done again
from its logged config and seed, compared bit for bit with its logged cost curve (reproduce)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from omegaconf import OmegaConf
from threadpoolctl import threadpool_limits

from nncore import Diverged, Network
from sweeps.config.checks import logged_settings
from sweeps.config.schema import Config
from sweeps.errors import ConfigError
from sweeps.tracking.store import default_uri, open_existing
from sweeps.tracking.tracker import Tracker
from sweeps.trial.artifacts import curve_file
from sweeps.trial.build import Fingerprint, build_network, fingerprint, fit_seeds, load_data, train


@dataclass
class Reproduction:
    run_id: str
    config: Config  # the trial's settings, as logged (an earlier version's keys read as this one's)
    network: Network  # the network trained again (the first repeat's)
    costs: np.ndarray  # (k,) its cost curve (the first repeat's)
    logged: np.ndarray  # (k', 2) iterations and costs of the logged curve (the first repeat's)
    max_abs_diff: float  # 0.0 when every repeat's curves are bitwise equal; inf when nothing can be compared
    data_changed: list[str] = field(default_factory=list)  # each split whose digest is not the run's
    repeat_diffs: list[float] = field(default_factory=list)  # each repeat's max_abs_diff (sweep.repeats)

    @property
    def exact(self) -> bool:
        return self.max_abs_diff == 0.0


def _tracker(run_id: str, tracking_uri: str | None) -> tuple[Tracker, str]:
    uri = tracking_uri or default_uri()
    client = open_existing(uri)  # never a new store where a user mistyped the URI
    tracker = Tracker(uri)
    # deferred, here and below: mlflow's import, which sweeps.run with tracking.enabled=false never pays
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"there is no run {run_id!r} in {uri}; pass the run id of a trial, as `python -m "
                          "sweeps` and `python -m sweeps.report` print it.") from None
    if run.data.tags.get("nnsweeps.role") == "sweep":
        raise ConfigError(f"run {run_id!r} in {uri} is a sweep's parent run, not a trial; `python -m sweeps.report "
                          f"{run_id}` lists its trials with their run ids: pass one of those.")
    return tracker, uri


def _artifact(tracker: Tracker, uri: str, run_id: str, name: str, read):
    from mlflow.exceptions import MlflowException

    try:
        with tracker.artifact_file(run_id, name) as path:
            return read(path)
    except (MlflowException, OSError) as err:
        raise ConfigError(f"run {run_id!r} in {uri} has no trial to use (it needs the {name} artifact, as every "
                          f"trial run of a sweep has): {str(err).splitlines()[0]}") from None


def load_network(run_id: str, tracking_uri: str | None = None) -> Network:
    """The trained network of a trial's run (its weights.npz). tracking_uri: MLFLOW_TRACKING_URI
    or sqlite:///mlflow.db by default."""
    tracker, uri = _tracker(run_id, tracking_uri)
    return _artifact(tracker, uri, run_id, "weights.npz", Network.load)


def reproduce(run_id: str, tracking_uri: str | None = None) -> Reproduction:
    """Trains the trial of run `run_id` again, from its logged config and seed, each repeat it
    trained (sweep.repeats: a cost curve each) with its own seed, with the BLAS threads its worker
    had; the last stops where its logged curve stopped (a pruned trial)."""
    tracker, uri = _tracker(run_id, tracking_uri)
    cfg = logged_settings(_artifact(tracker, uri, run_id, "config.yaml", OmegaConf.load))
    logged = [_artifact(tracker, uri, run_id, curve_file(0), _read_curve)]  # (k, 2) iteration, cost each
    for i in range(1, cfg.sweep.repeats):  # a pruned or diverged trial's repeats stop at the one that did
        if (curve := _logged_curve(tracker, run_id, curve_file(i))) is None:
            break
        logged.append(curve)
    run = tracker.client.get_run(run_id)
    tags = run.data.tags
    threads = int(tags.get("blas_threads", "1"))  # the same BLAS split as its worker had
    data = load_data(cfg.dataset, cfg.seed)
    changed = data_changes(run, fingerprint(cfg.dataset, cfg.seed, data))
    pruned = tags.get("optuna.state") == "PRUNED" and tags.get("reason", "").startswith("pruned at")
    nets, diffs, first = [], [], None
    for i, (seed, old) in enumerate(zip(fit_seeds(cfg.seed, len(logged)), logged)):
        net = build_network(cfg.model, cfg.train.dtype, data, seed)
        # A pruner stopped its trial's last repeat at its last logged cost, before that iteration's
        # update: stop there too. Any other repeat ran on (a diverged one until its cost was not
        # finite, as again here), and a complete one made one more update after its last logged cost.
        last = int(old[-1, 0]) if old.size else 0
        stop = (lambda it, _cost, last=last: it >= last) if pruned and i == len(logged) - 1 else None
        with threadpool_limits(limits=threads):
            try:
                costs = train(net, cfg.train, data, seed, callback=stop).costs
            except Diverged as err:
                costs = err.costs
        nets.append(net)
        diffs.append(difference(costs, old[:, 1] if old.size else np.empty(0)))
        first = costs if first is None else first
    return Reproduction(run_id, cfg, nets[0], first, logged[0], max(diffs), changed, diffs)


def _read_curve(path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def _logged_curve(tracker: Tracker, run_id: str, name: str) -> np.ndarray | None:
    """A run's curve artifact, or None if it has none of that name (a repeat it did not train)."""
    from mlflow.exceptions import MlflowException

    try:
        with tracker.artifact_file(run_id, name) as path:
            return _read_curve(path)
    except (MlflowException, OSError):
        return None


def difference(costs: np.ndarray, old: np.ndarray) -> float:
    """The largest absolute difference of two cost curves: 0.0 when bitwise equal (NaN where both
    are), inf when nothing can be compared or their lengths differ."""
    n = min(old.size, costs.size)
    with np.errstate(invalid="ignore"):
        diff = np.abs(costs[:n] - old[:n])
    same = costs.size == old.size and np.array_equal(costs, old, equal_nan=True)
    largest = 0.0 if same else (float(np.nanmax(diff)) if n and np.isfinite(diff).any() else float("inf"))
    return float("inf") if not same and largest == 0.0 else largest  # equal where both have points, not in length


def data_changes(run, now: Fingerprint) -> list[str]:
    """Each split of the trial's data whose digest now is not the one its run recorded (its MLflow
    dataset inputs): a CSV edited since, say, named with both digests."""
    recorded = {tag.value: i.dataset.digest for i in run.inputs.dataset_inputs
                for tag in i.tags if tag.key == "mlflow.data.context"}
    return [f"{now.name} ({now.source}) {context} split: recorded digest {recorded[context]}, now {d}"
            for context, d in now.digests.items() if recorded.get(context, d) != d]
