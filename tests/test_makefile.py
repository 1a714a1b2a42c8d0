"""The Makefile's own behaviour, run with make from an empty folder (no .venv is built: STAMP= and
VENV= point at this interpreter's environment)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str, cwd) -> subprocess.CompletedProcess:
    venv = Path(sys.executable).parent.parent
    return subprocess.run(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), f"VENV={venv}", "STAMP=",
                           "DEV=", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_help_shows_the_values_of_the_variables_it_names(tmp_path):
    """Before, it printed $(PORT) and $(DASHBOARD_PORT) as they are written."""
    proc = make("help", "PORT=6123", cwd=tmp_path)
    assert proc.returncode == 0 and "make sweep" in proc.stdout, proc.stderr
    assert "$(" not in proc.stdout, proc.stdout
    assert "127.0.0.1:6123" in proc.stdout and "127.0.0.1:8080" in proc.stdout


def test_dashboard_without_a_journal_is_one_sentence_and_exit_2(tmp_path):
    """Before, optuna-dashboard's traceback on its default path, which no sweep writes."""
    proc = make("dashboard", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout == ("make dashboard: there is no study journal at outputs/flower.journal; run `make sweep` "
                           "first, or give STUDY_STORAGE=<a sweep's journal file or RDB URL>.\n")
