"""`nnsweeps [-q|-v] COMMAND [arguments]`: every command of nnsweeps in one (pyproject.toml's
[project.scripts]). Each command's arguments are those of its `python -m` form, which runs the
same code (run()).

A command's module is imported only once it is chosen: the sweep's and the worker's import Hydra,
Optuna and MLflow, after the garbage collector is paused (sweeps.runner.pool.pause_collector).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from sweeps import log, quiet
from sweeps.runner.pool import pause_collector


@dataclass(frozen=True)
class Command:
    entry: str  # "module:function": the function takes the command's arguments, returns its exit code
    help: str
    launcher: bool = False  # starts worker processes and imports much: the collector paused meanwhile


COMMANDS = {
    "sweep": Command("sweeps.commands.sweep:command", "run a sweep (Hydra overrides; python -m sweeps)", True),
    "worker": Command("sweeps.commands.join:command",
                      "join a running sweep from this machine (the same overrides; python -m sweeps.worker)", True),
    "reproduce": Command("sweeps.commands.retrain:main",
                         "retrain a tracked trial and compare its cost curve bit for bit: RUN_ID "
                         "(python -m sweeps.reproduce)"),
    "report": Command("sweeps.report.table:main",
                      "table of a sweep's top trials: [RUN_ID] [--top N] (python -m sweeps.report)"),
    "ui": Command("sweeps.commands.ui:main", "the MLflow UI over the store, with each experiment's model-training URL"),
}


def run(name: str, argv: list[str]) -> None:
    """Runs command `name` with its arguments (-q or -v among them set the messages' level), then
    exits with its code."""
    level, argv = log.flags(argv)
    log.setup(level)
    quiet.everywhere()
    command = COMMANDS[name]
    if command.launcher:
        pause_collector()  # until the launcher's imports are in (sweeps.runner.pool.freeze_heap)
    module, function = command.entry.split(":")
    sys.exit(getattr(importlib.import_module(module), function)(argv) or 0)


def parser() -> argparse.ArgumentParser:
    width = max(map(len, COMMANDS))
    p = argparse.ArgumentParser(
        prog="nnsweeps", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Hyperparameter sweeps of NumPy networks: Hydra configs, Optuna trials, MLflow tracking.",
        epilog="commands:\n" + "\n".join(f"  {n:<{width}}  {c.help}" for n, c in COMMANDS.items())
               + "\n\n`nnsweeps COMMAND --help` shows a command's own help.")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="debug messages too")
    p.add_argument("command", choices=COMMANDS, metavar="COMMAND", help="one of: " + ", ".join(COMMANDS))
    return p


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    # the options before the command are nnsweeps's; everything after it is the command's own
    at = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    args = parser().parse_args(argv[:at + 1])
    flags = ["-q"] * args.quiet + ["-v"] * args.verbose
    run(args.command, flags + argv[at + 1:])


if __name__ == "__main__":  # `python -m sweeps.commands.nnsweeps`: the console script without installing
    main()
