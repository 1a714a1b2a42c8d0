"""sweeps.trial.build: a config's data, network and training, through nncore."""

import numpy as np

from sweeps.config.checks import logged_settings
from sweeps.trial.build import build_network, load_data, train
from tests.sweeps.conftest import SMALL


def test_the_network_takes_its_sizes_from_the_data_and_the_config(compose_cfg):
    cfg = compose_cfg("dataset=iris", "model.hidden_units=[5,3]")
    data = load_data(cfg.dataset, cfg.seed)
    assert network(cfg, data).sizes == [data.X_train.shape[0], 5, 3, 3]  # iris: 4 features, 3 classes


def trained(compose_cfg, *overrides: str):
    """The training result of the config composed with these overrides."""
    cfg = compose_cfg(*overrides)
    data = load_data(cfg.dataset, cfg.seed)
    return train(network(cfg, data), cfg.train, data, cfg.seed)


def test_train_passes_the_optimisers_own_hyperparameters(compose_cfg):
    curves = [trained(compose_cfg, "train=adam", f"train.optimizers.adam.beta1={beta}", "train.iterations=30").costs
              for beta in (0.9, 0.5)]
    assert not np.array_equal(*curves)  # train.optimizers.adam.beta1 reached Adam
    # gd takes no beta: momentum's is not passed
    cfg = compose_cfg("train.optimizer=gd", "train.optimizers.momentum.beta=0.1", "train.iterations=30")
    data = load_data(cfg.dataset, cfg.seed)
    assert train(network(cfg, data), cfg.train, data, cfg.seed).iterations_run == 30


def test_a_sampled_optimiser_trains_with_its_own_hyperparameters(compose_cfg):
    """A config composed for gd whose trial samples momentum: momentum gets its beta, from its section."""
    curves = [trained(compose_cfg, "train.optimizer=momentum", f"train.optimizers.momentum.beta={beta}",
                      "train.iterations=30").costs for beta in (0.9, 0.2)]
    assert not np.array_equal(*curves)


def network(cfg, data):
    return build_network(cfg.model, cfg.train.dtype, data, cfg.seed)


def test_the_same_config_trains_bitwise_the_same(compose_cfg):
    cfg = compose_cfg("train.iterations=100", "train.batch_size=64")
    data = load_data(cfg.dataset, cfg.seed)
    a, b = (train(network(cfg, data), cfg.train, data, cfg.seed).costs for _ in range(2))
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
    was, new = logged_settings(old), compose_cfg(*SMALL, "dataset.test_fraction=0")
    then, now = load_data(was.dataset, was.seed), load_data(new.dataset, new.seed)
    assert np.array_equal(then.X_train, now.X_train) and np.array_equal(then.X_val, now.X_val)
