"""`python -m sweeps.worker [-q|-v] [hydra overrides]`: the command `nnsweeps worker`
(sweeps.commands.join): join a sweep by hand, from any machine that reaches its storage and
tracking server."""

import sys

if __name__ == "__main__":
    from sweeps.commands.nnsweeps import run

    run("worker", sys.argv[1:])
