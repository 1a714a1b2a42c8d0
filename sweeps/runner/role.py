"""Who runs a session: the sweep's launcher (`python -m sweeps`) or a worker that joins it
(`python -m sweeps.worker`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    name: str  # how its lines begin: [sweep] or [worker]
    launcher: bool  # the sweep's launcher: its own parent run, the Dask cluster, the summary; its
    # Ctrl-C stops every worker of the study. A joined worker logs under the launcher's parent run.


LAUNCHER, JOINED = Role("sweep", True), Role("worker", False)
