"""Ctrl-C, handled where a worker can stop cleanly; a leaf every layer may import (stdlib only).

By default Python raises KeyboardInterrupt wherever the main thread is: in the middle of an
SQLAlchemy finalizer (which then drops it, "Exception ignored in", leaving a connection in its
transaction and the SQLite store locked) or of a journal write. Where a worker runs
(interrupts_deferred) the first Ctrl-C only sets INTERRUPTED, and the worker stops at its next
check_interrupt(): between trials and at each recorded cost of a training, within milliseconds;
a second Ctrl-C raises at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

INTERRUPTED = threading.Event()
_deferred = 0  # > 0 inside interrupts_deferred()
_never_raise = False  # a worker process: Ctrl-C only ever sets INTERRUPTED


def _on_sigint(signum, frame) -> None:
    first = not INTERRUPTED.is_set()
    INTERRUPTED.set()
    if _never_raise or (_deferred and first):
        return
    raise KeyboardInterrupt


def _unraisable(hook: "sys.UnraisableHookArgs") -> None:
    if hook.exc_type is not None and issubclass(hook.exc_type, KeyboardInterrupt):
        return  # a Ctrl-C dropped in a finalizer: INTERRUPTED keeps it, no traceback
    sys.__unraisablehook__(hook)


def handle_interrupts(worker_process: bool = False) -> None:
    """This process's Ctrl-C as above; a worker process's never raises (sweeps.runner.worker.warm_up)."""
    global _never_raise
    _never_raise = worker_process
    if threading.current_thread() is threading.main_thread():  # where Python runs signal handlers
        signal.signal(signal.SIGINT, _on_sigint)
        sys.unraisablehook = _unraisable


@contextlib.contextmanager
def interrupts_handled() -> Iterator[None]:
    """handle_interrupts() for the block, then the handlers it found (a script's, Jupyter's) again:
    for sweeps.run, which runs inside someone else's interpreter."""
    INTERRUPTED.clear()  # a Ctrl-C of an earlier sweep in this process is not this one's
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT) if main else None
    hook = sys.unraisablehook
    handle_interrupts()
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGINT, before)
            sys.unraisablehook = hook


def check_interrupt() -> None:
    """Raises KeyboardInterrupt once Ctrl-C was pressed (see INTERRUPTED)."""
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """In the block a first Ctrl-C only sets INTERRUPTED, for check_interrupt() to act on."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
