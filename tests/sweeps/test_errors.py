"""sweeps.errors: the exceptions a user can cause, and the allowed values said from a table."""

from sweeps.errors import ConfigError, SweepStopped, one_of


def test_one_of_lists_a_tables_names_sorted():
    assert one_of({"tpe": 1, "grid": 2, "random": 3}) == "one of grid, random, tpe"


def test_a_config_error_is_a_value_error_and_a_stopped_sweep_a_runtime_error():
    assert issubclass(ConfigError, ValueError) and issubclass(SweepStopped, RuntimeError)
