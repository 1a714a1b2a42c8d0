"""Running a sweep: the checks before anything starts (checks), the local worker processes
(pool), what each worker does (work), a session of one invocation (session: run, join), the
status line (progress), a Dask cluster (cluster) and what the entry points share (cli).

Imports everything below it: study, trial, report, config, tracking and the leaves. Nothing
here is imported on `import sweeps.runner`: `python -m sweeps` imports sweeps.runner.pool first,
alone, to pause the garbage collector before the heavy imports.
"""
