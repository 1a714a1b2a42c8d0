"""sweeps.log: one handler on the logger "sweeps", plain lines (information to stdout, warnings and
errors to stderr), the level of -q and -v, and a program's own handler left in charge. Each case
runs in a fresh interpreter: pytest puts its own handlers on the loggers of this one."""

import logging
import subprocess
import sys
import textwrap

import pytest

from sweeps import log


def python(code: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_messages_are_plain_lines_on_stdout_and_stderr():
    proc = python("""
        import logging
        from sweeps import log
        log.setup()
        log.setup()  # a second entry point in the same process: still one handler
        logging.getLogger("sweeps.runner.confirm").info("[sweep] confirmed")
        logging.getLogger("sweeps.runner.confirm").debug("hidden at the default level")
        logging.getLogger("sweeps.runner.cli").error("error: a sentence")
    """)
    assert (proc.stdout, proc.stderr) == ("[sweep] confirmed\n", "error: a sentence\n")


@pytest.mark.parametrize("argv, level, rest", [
    (["dataset=moons"], logging.INFO, ["dataset=moons"]),
    (["-q", "dataset=moons"], logging.WARNING, ["dataset=moons"]),
    (["dataset=moons", "--verbose"], logging.DEBUG, ["dataset=moons"]),
])
def test_q_and_v_set_the_level_and_leave_the_other_arguments(argv, level, rest):
    assert log.flags(argv) == (level, rest)
    proc = python(f"""
        import logging
        from sweeps import log
        log.setup(log.flags({argv!r})[0])
        logging.getLogger("sweeps.x").info("info")
        logging.getLogger("sweeps.x").debug("debug")
        logging.getLogger("sweeps.x").warning("warning")
    """)
    assert ("info" in proc.stdout) == (level <= logging.INFO) and ("debug" in proc.stdout) == (level <= logging.DEBUG)
    assert proc.stderr == "warning\n"


def test_a_programs_own_handler_and_level_are_kept():
    """A notebook that handles "sweeps" itself: sweeps.run adds no second handler, nor its level."""
    proc = python("""
        import logging, logging.handlers
        from sweeps import log
        mine = logging.handlers.BufferingHandler(10)
        logger = logging.getLogger("sweeps")
        logger.addHandler(mine)
        logger.setLevel(logging.WARNING)
        log.setup()
        logging.getLogger("sweeps.x").info("not wanted")
        logging.getLogger("sweeps.x").warning("wanted")
        print(logger.handlers == [mine], [r.getMessage() for r in mine.buffer])
    """)
    assert proc.stdout == "True ['wanted']\n" and proc.stderr == ""
