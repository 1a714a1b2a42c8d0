"""The Optuna side: where a study lives (storages: one class per kind), the samplers and pruners
a config names (samplers, pruners: one table each), a study made from a config (factory), the
exact trial budget its workers share (budget), and its best trial (best).

Imports the config layer (the search space), the leaves (errors, interrupts, processes, urls)
and Optuna; nothing of tracking, trials or runners.
"""
