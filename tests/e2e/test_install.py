"""The package as a user installs it: a wheel (`pip install .`), and the Makefile's editable
install, each into a fresh venv, then a tracked 2-trial sweep by the `nnsweeps` console script from
an empty folder. Before, the wheel held only the top-level modules of sweeps (`No module named
'sweeps.runner'`) and no conf/.

The fresh venv reaches the pinned dependencies through a .pth file naming this interpreter's
site-packages (no download); the package itself is installed with --no-deps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, SweepDir

SOURCE = ("pyproject.toml", "README.md", "conf", "nncore", "sweeps")  # what a build reads


def _run(*args, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{args}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def _source(tmp_path: Path) -> Path:
    """A copy of what the build reads: the checkout stays free of build/ and *.egg-info."""
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCE:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                           if (ROOT / name).is_dir() else {}))
    return src


def _venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    site = Path(_run(str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .stdout.strip())
    (site / "pinned-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH (the installed package must be the one that runs) and no tracking URI."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}


@pytest.mark.slow
@pytest.mark.parametrize("install", ["wheel", "editable"])
def test_the_installed_command_sweeps_from_an_empty_folder(tmp_path, install):
    src, venv = _source(tmp_path), _venv(tmp_path)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
           "--no-build-isolation", "--ignore-installed"]
    if install == "wheel":
        _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
             str(tmp_path / "dist"), str(src))
        wheel = next((tmp_path / "dist").glob("nnsweeps-*.whl"))
        names = zipfile.ZipFile(wheel).namelist()
        packages = sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob("*/**/__init__.py")
                          if p.parts[len(ROOT.parts)] in ("sweeps", "nncore"))
        assert all(f"{p}/__init__.py" in names for p in packages), sorted(set(packages) - {n.rsplit("/", 1)[0] for n in names})
        assert {f"sweeps/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")} <= set(names)
        _run(*pip, str(wheel), env=_clean_env(), cwd=tmp_path)
    else:  # as the Makefile installs it
        _run(*pip, "--config-settings", "editable_mode=compat", "-e", str(src), env=_clean_env(), cwd=tmp_path)

    here = tmp_path / "empty"
    here.mkdir()
    where = _run(str(venv / "bin" / "python"), "-c", "import sweeps.commands; print(sweeps.commands.__file__)",
                 env=_clean_env(), cwd=here).stdout.strip()
    assert Path(where).is_relative_to(venv if install == "wheel" else src), where
    sweep = SweepDir(here, study="flower", experiment="flower")  # the defaults: outputs/<study>.journal, ./mlflow.db
    sweep.journal = here / "outputs" / "flower.journal"
    proc = _run(str(venv / "bin" / "nnsweeps"), "sweep", "sweep.n_trials=2", "sweep.n_jobs=1", "sweep.confirm.top=0",
                "train.iterations=300", env=_clean_env(), cwd=here)
    assert "Best trial" in proc.stdout, proc.stdout
    assert sum(t.state.name == "COMPLETE" for t in sweep.study().trials) == 2
    assert len(sweep.runs("trial")) == 2 and len(sweep.runs("sweep")) == 1
    # the `python -m` form of the same installation
    help_ = _run(str(venv / "bin" / "python"), "-m", "sweeps.worker", "--help", env=_clean_env(), cwd=here)
    assert "sweep" in help_.stdout
