"""PNG figures for runs: matplotlib's object API (no pyplot state), Agg canvas."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def cost_curve(path: Path, iterations: np.ndarray, costs: np.ndarray, title: str = "") -> None:
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    finite = np.isfinite(costs)
    ax.plot(iterations[finite], costs[finite], lw=1.2)
    ax.set(xlabel="iteration", ylabel="training cost", title=title)
    ax.grid(alpha=0.3)
    _save(fig, path)


def overlaid_curves(path: Path, curves: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str = "") -> None:
    """curves: (label, iterations, costs) each, drawn on one axis."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for label, iterations, costs in curves:
        ax.plot(iterations, costs, lw=1.2, label=label)
    ax.set(xlabel="iteration", ylabel="training cost", title=title, yscale="log")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    _save(fig, path)
