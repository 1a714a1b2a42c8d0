"""After and beside a sweep: the study's summary on its parent run and the terminal (summary),
and the table of a sweep's top trials read back from MLflow (table, `python -m sweeps.report`).

Imports config (the metrics table), tracking, plots and the leaves; the session hands the summary
the work of other layers as callables (the decision boundaries, the pool that runs its tasks).
"""
