"""Test-only, for the races of tests/e2e/test_races.py: a launcher whose PYTHONPATH starts with this
folder, and whose environment sets NNSWEEPS_TEST_PAUSE=MODULE:FUNCTION:SECONDS, sleeps that long
after each call of that function (looked up by its module, as the module's own code calls it). A
pause where the issue's reporter put one: it widens a race that happens without it too."""

import functools
import importlib
import os
import time

if os.environ.get("NNSWEEPS_TEST_PAUSE"):
    _module, _name, _seconds = os.environ["NNSWEEPS_TEST_PAUSE"].rsplit(":", 2)
    _target = importlib.import_module(_module)
    _original = getattr(_target, _name)

    @functools.wraps(_original)
    def _paused(*args, **kwargs):
        result = _original(*args, **kwargs)
        time.sleep(float(_seconds))
        return result

    setattr(_target, _name, _paused)
