"""nncore: the course's vectorised L-layer network in plain NumPy; samples are columns.

    from nncore import Network, fit, load_dataset
    data = load_dataset("flower", seed=0, val_fraction=0.2)
    net = Network.create([2, 4, 1], activation="tanh", seed=0)
    result = fit(net, data.X_train, data.Y_train, learning_rate=1.2, iterations=10000)

It knows nothing of Hydra, Optuna or MLflow: plain arguments in, arrays and results out.
"""

from nncore.activations import ACTIVATIONS
from nncore.datasets import DATASETS, Dataset, load_dataset
from nncore.initializers import INITIALIZERS
from nncore.network import DTYPES, Network
from nncore.optimizers import LIMITS, OPTIMIZERS, defaults, hyperparameters
from nncore.outputs import OUTPUTS
from nncore.training import Diverged, FitResult, fit

__all__ = [
    "ACTIVATIONS", "DATASETS", "DTYPES", "INITIALIZERS", "LIMITS", "OPTIMIZERS", "OUTPUTS",
    "Dataset", "Diverged", "FitResult", "Network", "defaults", "fit", "hyperparameters", "load_dataset",
]
