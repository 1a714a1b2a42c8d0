"""`python -m sweeps [-q|-v] [hydra overrides]`: the command `nnsweeps sweep`
(sweeps.commands.sweep): compose the config with Hydra, then run the sweep."""

import sys

if __name__ == "__main__":
    from sweeps.commands.nnsweeps import run

    run("sweep", sys.argv[1:])
