"""The status line while workers run: finished/total, pruned, failed, best so far (for several
metrics, the Pareto front's size), elapsed, and once the study stopped improving (sweep.stop),
that it stops.
On a terminal it is redrawn in place every second; elsewhere (a log file, CI) a line is written
only when the counts change."""

from __future__ import annotations

import sys
import threading
import time

import optuna
from optuna.trial import TrialState

from sweeps.config.objectives import feasible
from sweeps.study.best import best_of, several
from sweeps.study.stopping import recorded


class Progress:
    """A status line while workers run: finished/total, pruned, failed, best so far, elapsed."""

    def __init__(self, study: optuna.Study, total: int, metric: str | list[str], every: float = 1.0):
        """metric: the study's metric, or its metrics (several: the line counts the Pareto front)."""
        self.study, self.total, self.every = study, total, every
        self.metric = metric if isinstance(metric, str) else metric[0]
        self.tty = sys.stderr.isatty()
        self._stop = threading.Event()
        self._last = ""
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def line(self) -> str:
        trials = self.study.get_trials(deepcopy=False)
        by = {s: sum(t.state == s for t in trials) for s in TrialState}
        done = by[TrialState.COMPLETE] + by[TrialState.PRUNED]
        best = ""
        if several(self.study):
            feasible_complete = any(t.state == TrialState.COMPLETE and feasible(t) for t in trials)
            n = len(self.study.best_trials) if feasible_complete else 0
            best = f" | Pareto front: {n} trial{'s' if n != 1 else ''}" if n else ""
        elif (b := best_of(trials, self.study.direction)) is not None:  # the trials read above
            best = f" | best {self.metric} {b.value:.4f} (trial {b.number})"
        elapsed = int(time.monotonic() - self._start)
        stop = recorded(self.study)
        return (f"[sweep] {done}/{self.total} trials ({by[TrialState.PRUNED]} pruned, "
                f"{by[TrialState.FAIL]} failed, {by[TrialState.RUNNING]} running){best}"
                f"{' | stopping: no new trials' if stop else ''} | {elapsed // 60:02d}:{elapsed % 60:02d}")

    def _show(self, final: bool = False) -> None:
        try:
            text = self.line()
        except Exception:  # a storage that cannot be read just now: the workers report why, not this line
            return
        if self.tty:
            sys.stderr.write("\r" + text.ljust(len(self._last)) + ("\n" if final else ""))
        elif text.split(" | ")[0] != self._last.split(" | ")[0] or final:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        self._last = text

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._show()

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._show(final=True)
