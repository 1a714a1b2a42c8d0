"""The MLflow side: the store as a place (store: where it is, whether it answers, where a run's
artifacts live) and the runs of a sweep and its trials (tracker).

Imports the leaves (errors, processes) and mlflow; nothing of the sweep's other layers.
"""
