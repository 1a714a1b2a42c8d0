"""sweeps.interrupts: a first Ctrl-C acted on at the worker's next check, a second at once, and
the handler put back after sweeps.run."""

import signal
import sys

import pytest

from sweeps import interrupts as cli


def test_a_first_ctrl_c_stops_a_worker_at_its_next_check_and_a_second_at_once(capsys):
    """Python raises KeyboardInterrupt wherever the main thread is, also inside a weakref callback
    (SQLAlchemy has many), which drops it and can leave a store locked. While a worker runs
    (interrupts_deferred) sweeps.cli's handler only sets INTERRUPTED the first time: the worker
    acts on it at its next check; a second Ctrl-C raises at once."""
    import weakref

    class Thing:
        pass

    cli.INTERRUPTED.clear()
    previous = sys.unraisablehook
    sys.unraisablehook = cli._unraisable
    try:
        with cli.interrupts_deferred():
            thing = Thing()
            ref = weakref.ref(thing, lambda _: cli._on_sigint(signal.SIGINT, None))  # Ctrl-C lands here
            del thing  # the callback ran and raised nothing
            assert ref() is None and cli.INTERRUPTED.is_set()
            with pytest.raises(KeyboardInterrupt):
                cli.check_interrupt()  # the worker's next check
            with pytest.raises(KeyboardInterrupt):
                cli._on_sigint(signal.SIGINT, None)  # a second Ctrl-C
        cli.INTERRUPTED.clear()
        thing = Thing()  # outside a worker: raised, dropped by Python in the callback, kept in INTERRUPTED
        ref = weakref.ref(thing, lambda _: cli._on_sigint(signal.SIGINT, None))
        del thing
        assert cli.INTERRUPTED.is_set()
        assert "Traceback" not in capsys.readouterr().err  # no "Exception ignored" traceback
    finally:
        sys.unraisablehook = previous
        cli.INTERRUPTED.clear()
    cli.check_interrupt()  # cleared: nothing raised


def test_interrupts_handled_puts_back_the_handler_it_found():
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGINT, mine)
    hook = sys.unraisablehook
    try:
        cli.INTERRUPTED.set()  # an earlier sweep's Ctrl-C
        with cli.interrupts_handled():
            assert not cli.INTERRUPTED.is_set()
            assert signal.getsignal(signal.SIGINT) is cli._on_sigint
        assert signal.getsignal(signal.SIGINT) is mine and sys.unraisablehook is hook
    finally:
        signal.signal(signal.SIGINT, previous)
