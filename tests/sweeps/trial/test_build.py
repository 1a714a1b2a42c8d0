"""sweeps.trial.build: a config's data, network and training, through nncore."""

import numpy as np

from sweeps.trial.build import build_network, load_data, train
from tests.sweeps.conftest import SMALL


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


def test_repeat_seeds_start_at_the_configs_and_confirmation_seeds_are_fresh():
    from sweeps.trial.build import CONFIRM, fit_seeds

    repeats = fit_seeds(7, 4)
    assert repeats[0] == 7 and len(set(repeats)) == 4 and repeats == fit_seeds(7, 4)  # derived, not drawn
    assert fit_seeds(7, 2) == repeats[:2]  # a repeat's seed does not depend on how many there are
    fresh = fit_seeds(7, 5, CONFIRM)
    assert len(set(fresh)) == 5 and not set(fresh) & set(fit_seeds(7, 50))


def test_a_config_logged_before_test_splits_loads_the_split_it_trained_on(compose_cfg):
    from omegaconf import OmegaConf

    cfg = compose_cfg(*SMALL)
    old = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    del old.dataset["test_fraction"]  # as a trial's config.yaml of before has it
    then, now = load_data(old), load_data(compose_cfg(*SMALL, "dataset.test_fraction=0"))
    assert np.array_equal(then.X_train, now.X_train) and np.array_equal(then.X_val, now.X_val)
