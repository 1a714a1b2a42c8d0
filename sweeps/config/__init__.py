"""What a user asks for: the schema Hydra composes onto (schema), the checks of its values
(checks), the search space (space), and the metrics a sweep may optimise (metrics).

Imports the errors leaf, nncore's tables, Hydra/OmegaConf, and Optuna's distributions (space).
Like every package of sweeps, this file imports nothing: a module is imported by its own name
(sweeps.config.space), so that importing one never pulls in the others' libraries.
"""
