"""sweeps.trial.nnsweeps_pyfunc: the pyfunc loader module takes samples as rows, as MLflow passes
them, and predicts exactly what the network predicts of the same samples as columns; it reads a
DataFrame's columns by name."""

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from nncore import Network, fit, load_dataset
from sweeps.trial.nnsweeps_pyfunc import FEATURES, WEIGHTS, NetworkModel, _load_pyfunc


@pytest.mark.parametrize("dataset, hidden, dtype", [("flower", [4], "float64"), ("iris", [5, 3], "float32")])
def test_rows_in_give_the_networks_own_predictions(tmp_path, dataset, hidden, dtype):
    data = load_dataset(dataset, seed=0)
    X = np.concatenate([data.X_train, data.X_val], axis=1)  # (n_x, m)
    net = Network.create([X.shape[0], *hidden, data.Y_train.shape[0]], seed=0, dtype=dtype)
    fit(net, data.X_train, data.Y_train, learning_rate=0.5, iterations=500)
    net.save(tmp_path / WEIGHTS)
    (tmp_path / FEATURES).write_text(json.dumps(data.feature_names))
    model = _load_pyfunc(str(tmp_path))
    expected = net.predict(X)
    assert len(set(expected.tolist())) > 1  # a network that tells the classes apart at least somewhat
    for rows in (X.T, np.ascontiguousarray(X.T), pd.DataFrame(X.T, columns=data.feature_names)):
        got = model.predict(rows)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_rows_of_the_wrong_width_are_refused_with_the_shape_it_takes():
    model = NetworkModel(Network.create([2, 3, 1], seed=0), ["x1", "x2"])
    with pytest.raises(ValueError, match=r"the input has shape \(4, 3\); this network takes \(m, 2\)"):
        model.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        model.predict(np.zeros(2))  # one sample must still be a row: [[x1, x2]]


def test_a_dataframe_is_read_by_its_column_names_and_wrong_names_are_refused():
    """Before, a DataFrame's values were taken in its column order: x2, x1 swapped the features."""
    net = Network.create([3, 4, 2], seed=1)
    model = NetworkModel(net, ["a", "b", "c"])
    rows = np.random.default_rng(0).normal(size=(50, 3))
    expected = net.predict(np.ascontiguousarray(rows.T))
    assert len(set(expected.tolist())) > 1
    reordered = pd.DataFrame(rows, columns=["a", "b", "c"])[["c", "a", "b"]]
    assert np.array_equal(model.predict(reordered), expected)
    assert np.array_equal(model.predict(pd.DataFrame(rows)), expected)  # unnamed columns: in the order given
    for columns in (["a", "b", "d"], ["a", "b", "a"]):
        with pytest.raises(MlflowException, match=r"the input's columns \[.*\] are not this model's features: "
                           r"it takes the columns \['a', 'b', 'c'\] \(in any order\)") as err:
            model.predict(pd.DataFrame(rows, columns=columns))
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"  # MLflow's scoring server: HTTP 400
    with pytest.raises(MlflowException, match="the input holds object values; this network takes numbers"):
        model.predict(pd.DataFrame({"a": ["x"], "b": [1.0], "c": [2.0]}))
