"""The messages of nnsweeps: the logger "sweeps" (each module logs to its own child of it), written
as plain lines, information to stdout and warnings and errors to stderr. A leaf (stdlib only).

The commands install the handler (setup) with the verbosity of -q / -v (flags); sweeps.run does
too, unless the program configured a handler on "sweeps" itself. The status line while workers
run (sweeps.runner.progress) is no message: it is redrawn in place on the terminal.
"""

from __future__ import annotations

import logging
import sys
from typing import Sequence

LOGGER = logging.getLogger("sweeps")
QUIET, VERBOSE = ("-q", "--quiet"), ("-v", "--verbose")


class _Console(logging.Handler):
    """Plain `%(message)s` lines; the stream is looked up at each message, so that a notebook's
    or a test's replaced sys.stdout gets them."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def setup(level: int | None = None) -> None:
    """Messages of `level` and above (INFO unless given) on the terminal. The handler is installed
    once, and not where the program put its own on "sweeps", whose level then stays the program's
    unless `level` is given (a command's -q or -v)."""
    if not LOGGER.handlers:
        LOGGER.addHandler(_Console())
        LOGGER.propagate = False  # a notebook's root handler would print each message a second time
        LOGGER.setLevel(logging.INFO if level is None else level)
    elif level is not None:
        LOGGER.setLevel(level)


def flags(argv: Sequence[str]) -> tuple[int, list[str]]:
    """The level asked for by -q (warnings and errors only) or -v (debug messages too) anywhere in
    a command's arguments, and the arguments without them (Hydra's parser refuses them)."""
    level = logging.INFO
    rest = []
    for arg in argv:
        if arg in QUIET:
            level = logging.WARNING
        elif arg in VERBOSE:
            level = logging.DEBUG
        else:
            rest.append(arg)
    return level, rest
