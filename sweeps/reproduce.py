"""`python -m sweeps.reproduce RUN_ID`: the command `nnsweeps reproduce` (sweeps.commands.retrain).

Only run, never imported: `sweeps.reproduce` is the API's function (sweeps.api), which importing
this module would replace with the module.
"""

import sys

if __name__ == "sweeps.reproduce":
    raise ImportError("sweeps.reproduce is a command, `python -m sweeps.reproduce`: for the function, "
                      "`from sweeps import reproduce`; for the command's code, sweeps.commands.retrain.")

if __name__ == "__main__":
    from sweeps.commands.nnsweeps import run

    run("reproduce", sys.argv[1:])
