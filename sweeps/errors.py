"""The exceptions a user can cause, each a sentence; a leaf every layer may import (stdlib only).

The entry points turn them into that sentence and an exit code (sweeps.runner.cli); the Python
API (sweeps.run) lets them through, so a script sees the sentence the command line prints.
"""

import difflib


class ConfigError(ValueError):
    """Bad input: one sentence naming the field, the value and what is allowed. Exit status 2."""


class SweepStopped(RuntimeError):
    """The sweep stopped before its budget: too many failures in a row. Exit status 1."""


def one_of(names) -> str:
    """'one of a, b, c': the allowed values of a field, derived from the table that defines them."""
    return "one of " + ", ".join(sorted(names))


def did_you_mean(value, names) -> str:
    """' (did you mean 'tpe'?)' for the known name closest to `value` (the same but for case
    first), or '' when none is close."""
    if not isinstance(value, str):
        return ""
    names = [str(n) for n in names]
    same = [n for n in names if n.lower() == value.lower()]
    close = same or difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close and close[0] != value else ""
