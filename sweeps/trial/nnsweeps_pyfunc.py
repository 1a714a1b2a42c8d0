"""The loader module of a sweep's best network as an MLflow model (sweeps.trial.mlflow_model logs
it): MLflow's pyfunc flavour imports it by this file's name, `nnsweeps_pyfunc`, from the model's
code/ folder, beside the copy of nncore the model carries, and calls `_load_pyfunc(path)` with
the model's data folder (its weights.npz and features.json). So it imports numpy, nncore and
MLflow's exception only: no Hydra, Optuna or sweeps.

The model reads a DataFrame's columns by name, as the training data named its features: MLflow's
schema enforcement would not (a tensor signature takes a DataFrame's values in its column order,
and a named column signature refuses plain arrays), so the model's signature names its output
only, and this module checks its input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from nncore import Network

WEIGHTS, FEATURES = "weights.npz", "features.json"  # the files of the model's data folder


class InputError(MlflowException, ValueError):
    """Input the network cannot take. `mlflow models serve` answers an MlflowException of this
    code with HTTP 400 and its message (any other exception: a generic message and a stack trace)."""

    def __init__(self, message: str):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


class NetworkModel:
    """An nncore network behind MLflow's pyfunc interface: samples as rows, as MLflow passes them
    (an array, or a DataFrame with the features' names as columns), where nncore takes samples as
    columns."""

    def __init__(self, network: Network, features: list[str]):
        self.network, self.features = network, features  # features: the names of X's rows, in order

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        """(m,) integer class labels of the (m, n_x) rows: the network's own predict."""
        rows = self.by_name(model_input) if hasattr(model_input, "columns") else np.asarray(model_input)  # (m, n_x)
        if rows.ndim != 2 or rows.shape[1] != self.network.sizes[0]:
            raise InputError(f"the input has shape {rows.shape}; this network takes (m, {self.network.sizes[0]}): "
                             "one sample per row, one feature per column.")
        if rows.dtype.kind not in "biuf":
            raise InputError(f"the input holds {rows.dtype} values; this network takes numbers.")
        # (n_x, m) C-ordered, as nncore's datasets give X: the same GEMMs, so the same bits
        return self.network.predict(np.ascontiguousarray(rows.T, dtype=None if rows.dtype.kind == "f" else float))

    def by_name(self, frame) -> np.ndarray:
        """A DataFrame's values, its columns taken by name in the order the network takes them;
        unnamed columns (0, 1, ...: a DataFrame made from an array) in the order given."""
        columns = list(frame.columns)
        if columns == list(range(len(columns))):
            return frame.to_numpy()
        if len(columns) == len(self.features) and set(columns) == set(self.features):
            return frame[self.features].to_numpy()
        raise InputError(f"the input's columns {[str(c) for c in columns]} are not this model's features: it takes "
                         f"the columns {self.features} (in any order), or unnamed columns in that order.")


def _load_pyfunc(data_path: str) -> NetworkModel:
    """MLflow's entry point: data_path is the model's data folder."""
    folder = Path(data_path)
    return NetworkModel(Network.load(folder / WEIGHTS), json.loads((folder / FEATURES).read_text()))
