"""The exceptions a user can cause, each a sentence; a leaf every layer may import (stdlib only).

The entry points turn them into that sentence and an exit code (sweeps.runner.cli); the Python
API (sweeps.run) lets them through, so a script sees the sentence the command line prints.
"""


class ConfigError(ValueError):
    """Bad input: one sentence naming the field, the value and what is allowed. Exit status 2."""


class SweepStopped(RuntimeError):
    """The sweep stopped before its budget: too many failures in a row. Exit status 1."""


def one_of(names) -> str:
    """'one of a, b, c': the allowed values of a field, derived from the table that defines them."""
    return "one of " + ", ".join(sorted(names))
