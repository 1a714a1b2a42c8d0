"""nnsweeps: hyperparameter sweeps of nncore networks. Hydra configs, Optuna trials in parallel
processes, every trial tracked in MLflow. From Python (see sweeps.api):

    import sweeps
    result = sweeps.run(["dataset=moons", "sweep.n_trials=20"])  # the overrides of `python -m sweeps`
    print(result.best.number, result.best.value, result.best.params)
    assert sweeps.reproduce(result.best.run_id).max_abs_diff == 0.0
    net = sweeps.load_network(result.best.run_id)

The names are loaded on first use: `import sweeps` alone imports nothing heavy, since every
`python -m sweeps.*` command and worker process imports this file first.
"""

API = ("Best", "Reproduction", "SweepResult", "TrialRow", "load_network", "reproduce", "run")
__all__ = list(API)


def __getattr__(name: str):
    if name in API:
        # deferred: sweeps.api imports Hydra, Optuna and MLflow, which the commands import later,
        # once they have paused the garbage collector (sweeps.runner.pool.pause_collector)
        from sweeps import api

        return getattr(api, name)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
