"""The loader module of a sweep's best network as an MLflow model (sweeps.trial.mlflow_model logs
it): MLflow's pyfunc flavour imports it by this file's name, `nnsweeps_pyfunc`, from the model's
code/ folder, beside the copy of nncore the model carries, and calls `_load_pyfunc(path)` with
the model's data/weights.npz. So it imports numpy and nncore only: no Hydra, Optuna or sweeps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nncore import Network


class NetworkModel:
    """An nncore network behind MLflow's pyfunc interface: samples as rows, as MLflow passes them
    (an array or a DataFrame of n_x columns), where nncore takes samples as columns."""

    def __init__(self, network: Network):
        self.network = network

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        """(m,) integer class labels of the (m, n_x) rows: the network's own predict."""
        rows = np.asarray(model_input)  # (m, n_x); a DataFrame's values, in its column order
        if rows.ndim != 2 or rows.shape[1] != self.network.sizes[0]:
            raise ValueError(f"the input has shape {rows.shape}; this network takes (m, {self.network.sizes[0]}): "
                             "one sample per row, one feature per column.")
        # (n_x, m) C-ordered, as nncore's datasets give X: the same GEMMs, so the same bits
        return self.network.predict(np.ascontiguousarray(rows.T))


def _load_pyfunc(data_path: str) -> NetworkModel:
    """MLflow's entry point: data_path is the model's data/weights.npz."""
    return NetworkModel(Network.load(data_path))
