"""`python -m sweeps.reproduce RUN_ID`: retrain a trial from its logged config and seed, and
compare the new cost curve with the logged full-resolution one, bit for bit.

The tracking URI comes from MLFLOW_TRACKING_URI (default sqlite:///mlflow.db); a store that does
not exist is an error, never created. Exit status: 0 when the curves are identical, 1 when they
differ, 2 when the run cannot be used. In Python: sweeps.reproduce(run_id) (sweeps.api).
"""

from __future__ import annotations

import argparse
import logging
import sys
import types

from sweeps.errors import ConfigError
from sweeps.trial.reproduction import Reproduction, reproduce


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweeps.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", help="the MLflow run id of a trial (a child run of a sweep)")
    args = parser.parse_args(argv)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        r = reproduce(args.run_id.strip())
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cfg, old = r.config, r.logged[:, 1] if r.logged.size else r.logged
    print(f"run {r.run_id}: retrained {cfg.dataset.name} {list(cfg.model.hidden_units)} "
          f"{cfg.model.activation}, {r.costs.size} cost points (logged: {old.size})")
    if len(r.repeat_diffs) > 1:
        print(f"{len(r.repeat_diffs)} repeats (sweep.repeats), each one's largest difference: "
              + ", ".join(map(repr, r.repeat_diffs)))
    print(f"largest difference from the logged cost curve{'s' if len(r.repeat_diffs) > 1 else ''}: {r.max_abs_diff!r}"
          + ("" if r.costs.size == old.size else " (and the curves differ in length)"))
    changed = f"; the data changed since the trial ran: {'; '.join(r.data_changed)}" if r.data_changed else ""
    print(("reproduced exactly" if r.exact else "NOT reproduced exactly") + changed)
    return 0 if r.exact else 1


class _CallableModule(types.ModuleType):
    """`sweeps.reproduce` names both this command's module and the API's function (sweeps.api):
    importing the module makes it the package's attribute `reproduce`, in place of the function,
    so the module answers a call as the function does."""

    def __call__(self, run_id: str, tracking_uri: str | None = None) -> Reproduction:
        return reproduce(run_id, tracking_uri)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
