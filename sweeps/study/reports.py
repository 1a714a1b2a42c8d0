"""A trial's pruning reports, written by a thread of their own while it trains, and the pruner's
answer worked out here from the values reported so far.

A report is a store write (a journal append and its fsync, or a PostgreSQL commit), a few ms
each, a dozen or more a trial (bench-scale, section 2): written as they come, the trial waits
for every one. The median pruner (and any percentile pruner) decides from the trial's own values
and the values of COMPLETE trials only, so a running trial's values need not be in the store
until it ends: `Reports` keeps them, asks the pruner with them, and has a thread write them;
`close()`, before Optuna is told the trial's end, waits until every one is written. Other
pruners (hyperband, successive halving) read and write the trial's stored attributes as they
decide: their trials report and ask the store as before.
"""

from __future__ import annotations

import queue
import threading

import optuna
from optuna.trial import FrozenTrial, TrialState


def asks_locally(pruner: optuna.pruners.BasePruner) -> bool:
    """Whether the pruner decides from the trial's values and the COMPLETE trials' alone."""
    return isinstance(pruner, optuna.pruners.PercentilePruner)  # MedianPruner is one


class Reports:
    def __init__(self, trial: optuna.Trial):
        self.trial = trial
        self.values: dict[int, float] = {}  # step -> value, as reported
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write, daemon=True, name=f"reports-{trial.number}")
        self._thread.start()

    def _write(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.trial.report(*item)
                except BaseException as err:  # the store: raised by close(), in the trial's thread
                    self._error = err

    def report(self, value: float, step: int) -> None:
        self.values[step] = value
        self._queue.put((value, step))

    def should_prune(self) -> bool:
        """The pruner's answer for the values reported so far, as Trial.should_prune would give
        once they were all written."""
        t = self.trial
        frozen = FrozenTrial(number=t.number, state=TrialState.RUNNING, value=None, values=None,
                             datetime_start=t.datetime_start, datetime_complete=None, params=t.params,
                             distributions=t.distributions, user_attrs={}, system_attrs={},
                             intermediate_values=dict(self.values),
                             # a placeholder, as optuna.trial.create_trial's: a percentile pruner
                             # (asks_locally) reads the values and last step only
                             trial_id=-1)
        return t.study.pruner.prune(t.study, frozen)

    def close(self) -> None:
        """Waits until every report is written; the first write that failed is raised here."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
