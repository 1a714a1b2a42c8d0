"""sweeps.trial.nnsweeps_pyfunc: the pyfunc loader module takes samples as rows, as MLflow passes
them, and predicts exactly what the network predicts of the same samples as columns."""

import numpy as np
import pandas as pd
import pytest

from nncore import Network, fit, load_dataset
from sweeps.trial.nnsweeps_pyfunc import NetworkModel, _load_pyfunc


@pytest.mark.parametrize("dataset, hidden, dtype", [("flower", [4], "float64"), ("iris", [5, 3], "float32")])
def test_rows_in_give_the_networks_own_predictions(tmp_path, dataset, hidden, dtype):
    data = load_dataset(dataset, seed=0)
    X = np.concatenate([data.X_train, data.X_val], axis=1)  # (n_x, m)
    net = Network.create([X.shape[0], *hidden, data.Y_train.shape[0]], seed=0, dtype=dtype)
    fit(net, data.X_train, data.Y_train, learning_rate=0.5, iterations=500)
    net.save(tmp_path / "weights.npz")
    model = _load_pyfunc(str(tmp_path / "weights.npz"))
    expected = net.predict(X)
    assert len(set(expected.tolist())) > 1  # a network that tells the classes apart at least somewhat
    for rows in (X.T, np.ascontiguousarray(X.T), pd.DataFrame(X.T, columns=data.feature_names)):
        got = model.predict(rows)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_rows_of_the_wrong_width_are_refused_with_the_shape_it_takes():
    model = NetworkModel(Network.create([2, 3, 1], seed=0))
    with pytest.raises(ValueError, match=r"the input has shape \(4, 3\); this network takes \(m, 2\)"):
        model.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        model.predict(np.zeros(2))  # one sample must still be a row: [[x1, x2]]
