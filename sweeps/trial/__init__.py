"""One trial: the data and network a config builds (build), the objective Optuna calls
(objective), what it writes to its MLflow run (artifacts), and a tracked trial brought back
(reproduction: load_network, reproduce).

Imports config, tracking, the leaves and nncore; nothing of studies, runners or reports.
"""
