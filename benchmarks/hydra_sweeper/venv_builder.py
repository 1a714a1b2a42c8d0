"""The virtual environment of Hydra's Optuna sweeper plugin for benchmarks/bench_sweep.py.

hydra-optuna-sweeper 1.3.0 pins optuna < 3 (pip takes 2.10.1, whose RDB storage fails with
SQLAlchemy 2), so it cannot share .venv: it gets its own, built once with `python3 -m venv` and pip
(PyPI only) and rebuilt when PLUGIN_REQS change. The app it sweeps (train.py) imports nncore from
the repo root, put on PYTHONPATH by the benchmark.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_VENV = ROOT / "benchmarks" / ".hydra-sweeper-venv"  # gitignored
# hydra-core pinned to ours: unpinned, pip takes the pre-release 1.4.0rc3 (the plugins ask for >=1.1.0.dev7)
PLUGIN_REQS = ["hydra-optuna-sweeper==1.3.0", "hydra-joblib-launcher==1.2.0", "hydra-core==1.3.8",
               "omegaconf==2.3.1", "numpy"]


def plugin_python() -> tuple[Path | None, str]:
    """The plugin venv's python (built or reused) and what it holds; (None, why) if it can't be built."""
    py, stamp = PLUGIN_VENV / "bin" / "python", PLUGIN_VENV / ".bench-requirements"
    if not (py.exists() and stamp.exists() and stamp.read_text() == " ".join(PLUGIN_REQS)):
        print(f"[bench] building {PLUGIN_VENV}: pip install {' '.join(PLUGIN_REQS)}",
              file=sys.stderr, flush=True)
        shutil.rmtree(PLUGIN_VENV, ignore_errors=True)
        for cmd in ([shutil.which("python3") or sys.executable, "-m", "venv", str(PLUGIN_VENV)],
                    [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PLUGIN_REQS]):
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as err:
                return None, f"`{' '.join(cmd[:4])} ...` failed: {err}"
            if proc.returncode != 0:
                tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
                return None, f"`{' '.join(cmd[:4])} ...` exited {proc.returncode}: {' | '.join(tail)}"
        stamp.write_text(" ".join(PLUGIN_REQS))
    out = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    keep = ("hydra", "omegaconf", "optuna", "numpy", "sqlalchemy", "joblib")
    return py, ", ".join(line for line in out.split() if line.lower().startswith(keep))
