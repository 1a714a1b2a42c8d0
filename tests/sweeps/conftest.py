"""compose_cfg(*overrides): conf/ composed by real Hydra, as `python -m sweeps <overrides>` sees it."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from sweeps.config.schema import register_configs

CONF = Path(__file__).resolve().parents[2] / "conf"
SMALL = ("search_space=none", "+search_space.train.learning_rate={type:float,low:0.1,high:1.0}",
         "train.iterations=200")  # a quick space: one sampled parameter, short trainings


@pytest.fixture(scope="module")  # per module: a module of its own may initialise Hydra too
def compose_cfg():
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield lambda *overrides: compose(config_name="config", overrides=list(overrides))
