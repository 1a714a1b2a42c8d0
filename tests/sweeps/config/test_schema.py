"""sweeps.config.schema: the structured config, and what it must hold for nncore's tables."""

import subprocess
import sys
import textwrap

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


def test_a_new_optimiser_in_nncores_table_needs_nothing_in_sweeps(tmp_path):
    """An optimiser added to nncore's table (and its hyperparameter's interval to LIMITS) is a
    choice of train.optimizer, with its section train.optimizers.<name>, checked and trained: in a
    fresh interpreter, since the schema is made from the table as it is imported."""
    script = tmp_path / "new_optimiser.py"
    script.write_text(textwrap.dedent('''
        from nncore import optimizers

        class Heavy(optimizers.Momentum):
            def __init__(self, theta, learning_rate, mass=0.8):
                super().__init__(theta, learning_rate, beta=mass)

        optimizers.OPTIMIZERS["heavy"] = Heavy
        optimizers.LIMITS["mass"] = (0.0, 1.0, "left")

        from sweeps.api import compose_config
        from sweeps.config.checks import settings
        from sweeps.errors import ConfigError
        from sweeps.runner.checks import validate
        from sweeps.trial.build import build_network, load_data, train

        cfg = compose_config(["train.optimizer=heavy", "train.optimizers.heavy.mass=0.5", "train.iterations=5"])
        validate(cfg)
        s = settings(cfg)
        data = load_data(s.dataset, s.seed)
        print("trained", train(build_network(s.model, s.train.dtype, data, s.seed), s.train, data, s.seed).iterations_run)
        try:
            validate(compose_config(["train.optimizers.heavy.mass=1.5"]))
        except ConfigError as err:
            print(err)
    '''))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
    assert "trained 5" in out and "train.optimizers.heavy.mass is 1.5, but it must be a number in [0, 1)." in out
