"""From the settings to nncore's objects: the data (DatasetConfig), the network (ModelConfig), its
training (TrainConfig); each function takes the part it reads (sweeps.config.schema)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import nncore
from nncore import Dataset, FitResult, Network, fit, load_dataset
from sweeps.config.schema import DatasetConfig, ModelConfig, TrainConfig


# what a derived seed is for: kept apart, so that no confirmation seed is one a trial trained with
REPEAT, CONFIRM = 1, 2


def load_data(d: DatasetConfig, seed: int) -> Dataset:
    """The dataset's data, split by `seed` (the config's)."""
    return load_dataset(d.name, seed=seed, val_fraction=d.val_fraction, test_fraction=d.test_fraction, **d.kwargs)


def fit_seeds(seed: int, k: int, purpose: int = REPEAT) -> list[int]:
    """k seeds of the initialisation and the batch order, derived from the config's seed, whose split
    stays: a trial's repeats (the first is the seed itself, so that one repeat trains as a trial
    always did), or a confirmation's fresh ones (sweeps.trial.confirmation)."""
    derived = [int(np.random.SeedSequence([seed, purpose, i]).generate_state(1)[0]) for i in range(k)]
    return [seed, *derived[1:]] if purpose == REPEAT else derived


@dataclass(frozen=True)
class Fingerprint:
    """The data a trial trains and is validated on, as MLflow's dataset inputs name it."""

    name: str  # the dataset's name, or a CSV's file name: the UI's Dataset column
    source: str  # a CSV's file URI, else the loader's call (nncore.load_dataset)
    digests: dict[str, str]  # context ('training', 'validation', 'test') -> digest of its arrays

    @property
    def digest(self) -> str:
        """Every split's digest, for the study's question: a changed CSV, split or seed changes it."""
        return ", ".join(f"{context} {d}" for context, d in self.digests.items())


def splits(data: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """context -> (X, Y) as trials use them, X (n_x, m), Y (n_y, m); no validation split with
    dataset.val_fraction=0 (the val_* metrics are the training set's then)."""
    out = {"training": (data.X_train, data.Y_train)}
    if data.X_val.shape[1]:
        out["validation"] = (data.X_val, data.Y_val)
    return out


def digest(*arrays: np.ndarray) -> str:
    """16 hex digits of SHA-256 over the arrays' shapes, types and bytes."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()[:16]


def fingerprint(d: DatasetConfig, seed: int, data: Dataset) -> Fingerprint:
    if d.name == "csv":
        path = Path(d.kwargs["path"]).resolve()
        name, source = path.name, path.as_uri()
    else:
        kwargs = "".join(f", {k}={v!r}" for k, v in d.kwargs.items())
        test = f", test_fraction={d.test_fraction}" if d.test_fraction else ""
        name, source = d.name, (f"nncore.load_dataset({d.name!r}, seed={seed}, val_fraction={d.val_fraction}"
                                f"{test}{kwargs})")
    digests = {context: digest(X, Y) for context, (X, Y) in splits(data).items()}
    if data.X_test is not None and data.X_test.shape[1]:  # in the question too: a change there is a change
        digests["test"] = digest(data.X_test, data.Y_test)
    return Fingerprint(name, source, digests)


def build_network(m: ModelConfig, dtype: str, data: Dataset, seed: int) -> Network:
    """The model's network in `dtype` (train.dtype), initialised by `seed` (the config's, a repeat's, a confirmation's)."""
    sizes = [data.X_train.shape[0], *m.hidden_units, data.Y_train.shape[0]]  # n_x, hidden..., n_y
    return Network.create(sizes, activation=m.activation, output=m.output, init=m.init, seed=seed, dtype=dtype,
                          leaky_slope=m.leaky_slope)


def hyperparameters(t: TrainConfig) -> dict[str, float]:
    """The hyperparameters of train.optimizer: exactly those it takes, from its section train.optimizers.<name>."""
    section = getattr(t.optimizers, t.optimizer, None)
    return {h: getattr(section, h) for h in nncore.hyperparameters(t.optimizer)}


def train(net: Network, t: TrainConfig, data: Dataset, seed: int, callback=None) -> FitResult:
    """nncore.fit with train's settings and its optimiser's hyperparameters; the batch order drawn from `seed`."""
    return fit(net, data.X_train, data.Y_train, learning_rate=t.learning_rate, iterations=t.iterations,
               optimizer=t.optimizer, batch_size=t.batch_size, l2=t.l2, seed=seed, callback=callback,
               cost_every=t.cost_every, **hyperparameters(t))
