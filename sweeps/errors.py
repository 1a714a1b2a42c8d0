"""The exceptions a user can cause, each a sentence; a leaf every layer may import (stdlib only).

The entry points turn them into that sentence and an exit code (sweeps.runner.cli); the Python
API (sweeps.run) lets them through, so a script sees the sentence the command line prints.
"""

import difflib
import errno
import sqlite3


class ConfigError(ValueError):
    """Bad input: one sentence naming the field, the value and what is allowed. Exit status 2."""


class SweepStopped(RuntimeError):
    """The sweep stopped before its budget: too many failures in a row. Exit status 1."""


class DiskFull(SweepStopped):
    """A store or artifact folder ran out of space: the sweep stops; freed, it resumes."""


def disk_full(err: BaseException) -> str | None:
    """Where a disk filled up, if that is what `err` (or an exception it came from) says: a file's
    path, or '' when it names none; None for any other error."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):  # EFBIG: a file-size limit
            return str(err.filename or "")
        if isinstance(err, sqlite3.Error) and getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return ""
        if "database or disk is full" in str(err):  # sqlite's words, where a wrapper kept only them
            return ""
        err = getattr(err, "orig", None) or err.__cause__ or err.__context__
    return None


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
