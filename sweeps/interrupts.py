"""Ctrl-C, SIGTERM and SIGHUP, handled where a worker can stop cleanly; a leaf every layer may
import (stdlib only). SIGTERM (what `timeout`, `docker stop`, Slurm and Kubernetes send) and
SIGHUP (a closed terminal) are handled as Ctrl-C is; the command then exits 128 + the signal's
number (130, 143, 129), as a shell reports a process a signal ended.

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
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # handled alike
_received: list[int] = []  # the signals received since the last INTERRUPTED.clear() via interrupts_handled
_deferred = 0  # > 0 inside interrupts_deferred()
_never_raise = False  # a worker process: a signal only ever sets INTERRUPTED


def _on_sigint(signum, frame) -> None:
    first = not INTERRUPTED.is_set()
    INTERRUPTED.set()
    _received.append(signum)
    if _never_raise or (_deferred and first):
        return
    raise KeyboardInterrupt


def received() -> int:
    """The first signal that interrupted this process (SIGINT when none was recorded)."""
    return _received[0] if _received else signal.SIGINT


def exit_code() -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + received()


def signal_name() -> str:
    return {signal.SIGINT: "Ctrl-C"}.get(received(), signal.Signals(received()).name)


def _unraisable(hook: "sys.UnraisableHookArgs") -> None:
    if hook.exc_type is not None and issubclass(hook.exc_type, KeyboardInterrupt):
        return  # a Ctrl-C dropped in a finalizer: INTERRUPTED keeps it, no traceback
    sys.__unraisablehook__(hook)


def handle_interrupts(worker_process: bool = False) -> None:
    """This process's Ctrl-C as above; a worker process's never raises (sweeps.runner.work.warm_up)."""
    global _never_raise
    _never_raise = worker_process
    if threading.current_thread() is threading.main_thread():  # where Python runs signal handlers
        for signum in SIGNALS:
            signal.signal(signum, _on_sigint)
        sys.unraisablehook = _unraisable


@contextlib.contextmanager
def interrupts_handled() -> Iterator[None]:
    """handle_interrupts() for the block, then the handlers it found (a script's, Jupyter's) again:
    for sweeps.run, which runs inside someone else's interpreter."""
    clear()  # a Ctrl-C of an earlier sweep in this process is not this one's
    main = threading.current_thread() is threading.main_thread()
    before = {signum: signal.getsignal(signum) for signum in SIGNALS} if main else {}
    hook = sys.unraisablehook
    handle_interrupts()
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        if main:
            sys.unraisablehook = hook


def clear() -> None:
    """Forget the signals of an earlier command or sweep in this process."""
    INTERRUPTED.clear()
    _received.clear()


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
