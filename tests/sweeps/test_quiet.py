"""sweeps.quiet: the environment variables and warning filters a sweep sets are the commands' and
the worker processes', never an import's; sweeps.run's are undone after the call."""

import os
import subprocess
import sys
import textwrap
import warnings

from sweeps import quiet


def test_importing_sweeps_leaves_the_environment_and_warning_filters_as_they_were():
    """Before, importing sweeps.tracking.store set two MLFLOW_* variables and sweeps.study.budget
    added two warning filters, in a notebook too (sweeps.run imports both). A fresh interpreter
    imports every module of the package but the `python -m` ones."""
    code = textwrap.dedent("""
        import ast, importlib, os, pkgutil, sys, warnings
        from pathlib import Path
        import sweeps
        # first the libraries the package imports, wherever: what they set is theirs (sklearn's
        # KMP_* variables, mlflow's telemetry id, their own filters)
        for path in Path(sweeps.__file__).parent.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
                for name in names:
                    if name.split(".")[0] not in ("sweeps", "nncore", *sys.stdlib_module_names):
                        try:
                            importlib.import_module(name)
                        except ImportError:
                            pass  # an optional one (torch, distributed)
        env, filters = dict(os.environ), list(warnings.filters)
        sweeps.run  # the API, loaded on first use
        names = [m.name for m in pkgutil.walk_packages(sweeps.__path__, "sweeps.")
                 if m.name.rsplit(".", 1)[-1] not in ("__main__", "reproduce", "worker")]
        for name in names:
            importlib.import_module(name)
        changed = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
        print(len(names), changed, warnings.filters == filters)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    count, rest = proc.stdout.split(" ", 1)
    assert int(count) > 60 and rest.strip() == "[] True", proc.stdout


def test_scoped_sets_them_for_the_block_and_restores_them(monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")  # a user's own value wins
    filters = list(warnings.filters)
    with quiet.scoped():
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
        assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "false"
        assert len(warnings.filters) > len(filters)
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "false" and warnings.filters == filters
