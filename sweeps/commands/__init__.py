"""The command `nnsweeps` (nnsweeps) and its subcommands, one module each: sweep, worker (join),
reproduce (retrain), ui; report is sweeps.report.table's. `python -m sweeps`, `python -m
sweeps.worker`, `python -m sweeps.reproduce` and `python -m sweeps.report` run the same ones.

Imports everything below it; nothing imports it but those `python -m` modules.
"""
