"""`python -m sweeps.report [RUN_ID] [--top N]`: the command `nnsweeps report` (sweeps.report.table)."""

import sys

if __name__ == "__main__":
    from sweeps.commands.nnsweeps import run

    run("report", sys.argv[1:])
