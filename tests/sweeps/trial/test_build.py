"""sweeps.trial.build: a config's data, network and training, through nncore."""

import numpy as np

from sweeps.trial.build import build_network, load_data, train


def test_the_network_takes_its_sizes_from_the_data_and_the_config(compose_cfg):
    cfg = compose_cfg("dataset=iris", "model.hidden_units=[5,3]")
    data = load_data(cfg)
    assert build_network(cfg, data).sizes == [data.X_train.shape[0], 5, 3, 3]  # iris: 4 features, 3 classes


def test_train_passes_the_optimisers_own_hyperparameters(compose_cfg):
    curves = []
    for beta in (0.9, 0.5):
        cfg = compose_cfg("train=adam", f"train.beta1={beta}", "train.iterations=30")
        data = load_data(cfg)
        curves.append(train(build_network(cfg, data), cfg, data).costs)
    assert not np.array_equal(*curves)  # train.beta1 reached Adam
    cfg = compose_cfg("train.optimizer=gd", "train.beta=0.1", "train.iterations=30")  # gd takes no beta: not passed
    data = load_data(cfg)
    assert train(build_network(cfg, data), cfg, data).iterations_run == 30


def test_the_same_config_trains_bitwise_the_same(compose_cfg):
    cfg = compose_cfg("train.iterations=100", "train.batch_size=64")
    data = load_data(cfg)
    a, b = (train(build_network(cfg, data), cfg, data).costs for _ in range(2))
    assert np.array_equal(a, b)
