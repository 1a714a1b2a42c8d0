"""sweeps.config.schema: the structured config, and what it must hold for nncore's tables."""

from hydra.core.config_store import ConfigStore

import nncore
from sweeps.config.schema import FIELD_TYPES, RULES, register_configs


def test_every_hyperparameter_of_every_optimiser_has_a_train_field():
    """Else a new optimiser's hyperparameter could not be set: sweeps.trial.build passes each
    optimiser exactly the fields its signature names, from train.optimizers.<name>, whose
    defaults and rules are the signature's and nncore.LIMITS'."""
    for name in nncore.OPTIMIZERS:
        for h, default in nncore.defaults(name).items():
            path = f"train.optimizers.{name}.{h}"
            assert FIELD_TYPES[path] is float and RULES[path].accepts(default), path


def test_field_types_are_the_leaves_of_the_schema_by_dotted_path():
    assert FIELD_TYPES["train.learning_rate"] is float and FIELD_TYPES["model.depth"] is int
    assert FIELD_TYPES["sweep.storage"] is str  # Optional[str] unwrapped
    assert "train" not in FIELD_TYPES and "dataset.kwargs" in FIELD_TYPES


def test_register_configs_stores_the_schema_as_base_config():
    register_configs()
    assert "base_config.yaml" in ConfigStore.instance().list("")
