"""PNG figures for runs: matplotlib's object API (no pyplot state), Agg canvas."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import PIL.Image
import PIL.PngImagePlugin
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogFormatter, LogLocator, MaxNLocator, NullFormatter

# Two classes in the course's colours (red, blue), more from a qualitative map.
CLASS_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"]
VAL_COLOUR = "#ff7f0e"
# The per-trial figures are written from the canvas (_write_png), not by savefig with its dpi and
# facecolor: fixed here, so that a user's matplotlibrc changes neither their size nor their background.
PER_TRIAL = {"dpi": 100, "facecolor": "white"}


# The per-trial figures are drawn once per trial in each worker process, always the same layout: each
# layout is built once and kept here, key -> (figure, its artists), and only its data is swapped in
# per call; building a figure (axes, ticks, legend) was a large part of a trial figure's time.
# At most CACHED layouts, the least recently used dropped first.
_figures: dict[tuple, tuple] = {}
CACHED = 6


def _cached(key: tuple, make: Callable[[], tuple]) -> tuple:
    hit = _figures.pop(key, None) or make()
    _figures[key] = hit  # most recently used last
    while len(_figures) > CACHED:
        del _figures[next(iter(_figures))]
    return hit


def clear_cache() -> None:
    _figures.clear()


def _digest(*arrays: np.ndarray | None) -> bytes:
    """What identifies the arrays' contents, for a cache key: dtype, shape and bytes."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.digest()


def _save(fig: Figure, path: Path) -> None:
    """A sweep's figure, cropped to what it draws (the tight bounding box costs a second layout pass).
    Light PNG compression, level 1 instead of 6: a few more bytes, much less time to encode."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight", pil_kwargs={"compress_level": 1})


def _write_png(fig: Figure, path: Path) -> None:
    """What the figure's Agg canvas holds (drawn already), as the PNG savefig(path, dpi=fig.dpi)
    writes but in RGB and at compression level 1: the figures are opaque, and a quarter fewer bytes
    to compress is a quarter less time. The per-trial figures are laid out with fixed margins, and
    drawn and written without savefig's set-up (benchmarks/RESULTS.md, bench-figures)."""
    rgba = fig.canvas.buffer_rgba()  # (h, w, 4) memoryview
    image = PIL.Image.frombuffer("RGBA", (rgba.shape[1], rgba.shape[0]), rgba, "raw", "RGBA", 0, 1).convert("RGB")
    info = PIL.PngImagePlugin.PngInfo()
    info.add_text("Software", f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/")
    image.save(path, format="png", dpi=(fig.dpi, fig.dpi), pnginfo=info, compress_level=1)


class _Blit:
    """Matplotlib's blitting, for a figure of which only a few artists change between calls: the
    rest (axes, ticks, labels) is drawn once and kept as pixels; each save restores them, draws only
    the changing artists over them and encodes the canvas itself, without savefig.

    changing: the artists that change, drawn per save in matplotlib's order (zorder, then as given).
    fixed: artists that do not change but lie over a changing one (points over the image): drawn
    once on a transparent layer, composited per save over what `changing` drew below them.
    Both are animated: left out of canvas.draw, not of savefig. A changing artist drawn above
    the fixed ones (zorder) must not overlap them: the layer is composited before it.

    For a decision boundary this is several times faster than savefig (benchmarks/RESULTS.md,
    bench-figures). The layer's one rounding instead of one per artist makes a few of its pixels differ
    from savefig's, by 1/255 mostly and 4/255 at most; all others are the same.
    """

    def __init__(self, fig: Figure, changing: Sequence, fixed: Sequence = ()):
        self.fig, self.canvas = fig, FigureCanvasAgg(fig)
        top = min((a.get_zorder() for a in fixed), default=np.inf)
        changing = sorted(changing, key=lambda a: a.get_zorder())  # stable, like Axes.draw
        self.below = [a for a in changing if a.get_zorder() < top]
        self.above = [a for a in changing if a.get_zorder() >= top]
        for a in [*changing, *fixed]:
            a.set_animated(True)
        self.canvas.draw()  # also makes the renderer the draws below reuse
        self.background = self.canvas.copy_from_bbox(fig.bbox)
        renderer = self.canvas.get_renderer()
        renderer.clear()  # transparent
        for a in sorted(fixed, key=lambda a: a.get_zorder()):
            a.draw(renderer)
        layer = np.asarray(self.canvas.buffer_rgba()).reshape(-1, 4)  # (h * w, 4)
        self.where = np.flatnonzero(layer[:, 3])  # (n,) the layer's pixels
        alpha = layer[self.where, 3:].astype(np.uint32)  # (n, 1)
        self.premultiplied = layer[self.where, :3] * alpha  # (n, 3)
        self.transparency = 255 - alpha  # (n, 1)

    def save(self, path: Path) -> None:
        """The figure as _write_png writes it."""
        self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        for a in self.below:
            a.draw(renderer)
        if len(self.where):  # the layer over the (opaque) canvas, truncated like Agg's blending
            rgba = np.asarray(self.canvas.buffer_rgba()).reshape(-1, 4)  # (h * w, 4), the canvas itself
            under = rgba[self.where, :3]  # (n, 3)
            rgba[self.where, :3] = (self.premultiplied + under * self.transparency) // 255
        for a in self.above:
            a.draw(renderer)
        _write_png(self.fig, path)


def cost_curve(path: Path, iterations: np.ndarray, costs: np.ndarray, title: str = "",
               val: tuple[np.ndarray, np.ndarray] | None = None, val_label: str = "val_cost") -> None:
    """The training cost against iteration; `val` adds (iterations, values) points of a validation
    metric: on the same axis when it is a cost, on a second axis (orange ticks) otherwise.

    The legend names the curves instead of y-axis labels: with fixed margins a long tick label
    (0.69305) would push a label off the figure. Non-finite costs and values are left out.
    """
    has_val = val is not None and len(val[0]) > 0
    # with or without validation points are two layouts (legend, second axis), so no artist of
    # one trial is ever left hidden in the next trial's figure
    fig, ax, vax, line, vline = _cached(("cost_curve", val_label if has_val else None),
                                        lambda: _cost_figure(val_label if has_val else None))
    finite = np.isfinite(costs)
    line.set_data(iterations[finite], costs[finite])
    if has_val:
        v_it, v = np.asarray(val[0]), np.asarray(val[1], dtype=float)
        ok = np.isfinite(v)
        vline.set_data(v_it[ok], v[ok])
    ax.title.set_text(title)
    for a in {ax, vax}:  # both before autoscaling: a twin shares the x range
        a.relim()
        # back to a fresh axis's (0, 1) limits, which autoscale treats as never set: with no finite
        # point (a diverged trial) it would otherwise keep the previous trial's ranges
        a.set_xlim(0, 1, auto=None)
        a.set_ylim(0, 1, auto=None)
    for a in {ax, vax}:
        a.autoscale_view()
    fig.canvas.draw()
    _write_png(fig, path)


def _cost_figure(val_label: str | None) -> tuple:
    """(figure, axis, validation axis, cost line, validation line or None); no validation curve
    when val_label is None, a second axis when it is not a cost."""
    fig = Figure(figsize=(6, 3.5), **PER_TRIAL)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    lines = ax.plot([], [], lw=1.2, label="training cost")
    ax.set_xlabel("iteration")
    ax.set_title("", fontsize=10)
    ax.grid(alpha=0.3)
    twin = val_label is not None and "cost" not in val_label
    vax = ax.twinx() if twin else ax
    if val_label is not None:
        lines += vax.plot([], [], "o-", ms=3.5, lw=1, color=VAL_COLOUR,
                          label=f"validation {val_label}" + (" (right axis)" if twin else ""))
        if twin:
            vax.tick_params(axis="y", colors=VAL_COLOUR)
    for axis in {ax.xaxis, ax.yaxis, vax.yaxis}:  # 5-6 labels, not 9-10: their text is most of the time
        axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.legend(handles=lines, fontsize=8, loc="best")
    fig.subplots_adjust(left=0.12, right=0.89 if twin else 0.97, bottom=0.14, top=0.9)
    return fig, ax, vax, lines[0], lines[1] if len(lines) > 1 else None


def decision_boundary(path: Path, predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray,
                      X_val: np.ndarray | None = None, y_val: np.ndarray | None = None, title: str = "",
                      class_names: Sequence[str] = (), feature_names: Sequence[str] = ("x1", "x2"),
                      grid: int = 100) -> None:
    """The course's plot_decision_boundary: predicted classes over a grid x grid mesh (one predict
    call on (2, grid**2) columns) shown as an image of grid x grid cells, the points scattered on top.

    X, X_val: (2, m) columns; y, y_val: (m,) integer labels; predict: (2, n) -> (n,) labels.
    The points, axes and legend depend on the data only, the same in every trial of a worker:
    they are drawn once per dataset, and each call only swaps in the image and the title.
    """
    has_val = X_val is not None and X_val.shape[1] > 0
    points = np.hstack([X, X_val]) if has_val else X
    lo, hi = points.min(axis=1), points.max(axis=1)
    pad = 0.1 * np.maximum(hi - lo, 1e-9) + 0.25
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid)  # (grid,)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid)  # (grid,)
    xx, yy = np.meshgrid(xs, ys)  # (grid, grid) each, row i at ys[i]
    Z = np.asarray(predict(np.vstack([xx.ravel(), yy.ravel()]))).reshape(xx.shape)  # (grid, grid)
    k = int(max(Z.max(initial=0), y.max(initial=0), y_val.max(initial=0) if has_val else 0)) + 1
    if not has_val:
        X_val = y_val = None
    key = ("decision_boundary", _digest(X, y, X_val, y_val), k, tuple(map(str, class_names)),
           tuple(map(str, feature_names)), grid)
    fig, ax, image, blit = _cached(key, lambda: _boundary_figure(X, y, X_val, y_val, xs, ys, k, class_names,
                                                                 feature_names))
    image.set_data(Z)
    ax.title.set_text(title)
    blit.save(path)


def _boundary_figure(X, y, X_val, y_val, xs, ys, k, class_names, feature_names) -> tuple:
    """(figure, axis, image of the predicted classes, its data set per call, the figure's _Blit)."""
    cmap = ListedColormap((CLASS_COLOURS * (k // len(CLASS_COLOURS) + 1))[:max(k, 2)])
    fig = Figure(figsize=(5, 4.2), **PER_TRIAL)
    ax = fig.add_subplot()
    # cell (i, j) centred on grid point (xs[j], ys[i]); the axis ends at the outer points
    dx, dy = (xs[-1] - xs[0]) / max(len(xs) - 1, 1), (ys[-1] - ys[0]) / max(len(ys) - 1, 1)
    image = ax.imshow(np.zeros((len(ys), len(xs))), cmap=cmap, vmin=-0.5, vmax=max(k, 2) - 0.5, alpha=0.3,
                      origin="lower", extent=(xs[0] - dx / 2, xs[-1] + dx / 2, ys[0] - dy / 2, ys[-1] + dy / 2),
                      interpolation="nearest", aspect="auto")
    scatter = {"cmap": cmap, "vmin": -0.5, "vmax": max(k, 2) - 0.5, "s": 14, "edgecolors": "k", "linewidths": 0.4}
    ax.scatter(X[0], X[1], c=y, marker="o", **scatter)
    if X_val is not None:
        ax.scatter(X_val[0], X_val[1], c=y_val, marker="^", **scatter)
    handles = [ax.scatter([], [], color=cmap(i), edgecolors="k", linewidths=0.4, s=14,
                          label=class_names[i] if i < len(class_names) else str(i)) for i in range(k)]
    handles += [ax.scatter([], [], marker=m, facecolors="none", edgecolors="k", linewidths=0.6, s=14, label=lab)
                for m, lab in (("o", "train"), ("^", "validation")) if lab == "train" or X_val is not None]
    ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.8)
    xlabel, ylabel = (list(feature_names) + ["x1", "x2"][len(feature_names):])[:2]
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(xs[0], xs[-1]), ylim=(ys[0], ys[-1]))
    ax.set_title("", fontsize=9)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.92)
    # what is drawn over the image must be drawn again after it: the points, the spines (the image's
    # edge pixels cover their inner half), the legend; the ticks point outwards, clear of the image.
    # The title, above the axes, overlaps none of them.
    points = [c for c in ax.collections if len(c.get_offsets())]  # not the legend's empty handles
    return fig, ax, image, _Blit(fig, [image, ax.title], fixed=[*points, *ax.spines.values(), ax.legend_])


class _PlainLog(LogFormatter):
    """A log axis's labels as plain numbers (0.02, 0.1, 1) where the default writes 10^{-1} in
    mathtext, whose parser is slow to load (benchmarks/RESULTS.md)."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:g}"


def legible_x_ticks(ax, tilted: bool = False) -> None:
    """x tick labels a reader can tell apart on a narrow axis (a panel of Optuna's slice plot). A log
    axis is labelled in plain numbers, at 1, 2 and 5 times each power of ten over a decade or so,
    fewer over more: matplotlib's own labels its minor ticks too when it spans little more than a
    decade (2x10^0, 3x10^0, ...), over each other. `tilted`: text labels (a category's name) upright,
    so that a long one clears its neighbours."""
    if ax.get_xscale() == "log":
        low, high = ax.get_xlim()
        decades = np.log10(high / low)
        subs = (1.0, 2.0, 5.0) if decades <= 1.5 else (1.0, 3.0) if decades <= 2.5 else (1.0,)
        ax.xaxis.set_major_locator(LogLocator(subs=subs, numticks=4))  # at most every other decade past 4
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    if tilted:
        ax.tick_params(axis="x", labelrotation=90)


def overlaid_curves(path: Path, curves: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str = "") -> None:
    """curves: (label, iterations, costs) each, drawn on one axis."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for label, iterations, costs in curves:
        ax.plot(iterations, costs, lw=1.2, label=label)
    ax.set(xlabel="iteration", ylabel="training cost", title=title, yscale="log")
    ax.yaxis.set_major_formatter(_PlainLog())
    ax.yaxis.set_minor_formatter(_PlainLog(labelOnlyBase=False))  # what the log scale labels, plainly
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _save(fig, path)


def parallel_coordinates(path: Path, rows: Sequence[tuple[float, dict]], axes: Sequence[tuple[str, dict]],
                         metric: str = "objective", minimize: bool = True, title: str = "",
                         red: int | None | str = "best") -> Figure:
    """One line per trial through one vertical axis per parameter, coloured by the trial's value.

    rows: (value, {param: value}) per trial; axes: (param, spec) in drawing order, spec either
    {"choices": [...]} or {"low": a, "high": b, "log": bool}: each axis spans the search space,
    so where the good trials sit within it shows. A parameter a trial lacks (the width of a layer
    it does not have) leaves a gap in its line. red: the row drawn last, thick and red: "best" the
    best value, an index, or None (no row is the best: each breaks a constraint).
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    values = np.array([v for v, _ in rows], dtype=float)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    vspec = {"low": lo, "high": hi if hi > lo else lo + 1.0, "log": False}
    specs = [(metric, vspec), *axes]

    def position(spec: dict, v) -> float:
        if v is None:
            return np.nan
        if "choices" in spec:
            choices = list(spec["choices"])
            k = choices.index(v) if v in choices else -1
            return np.nan if k < 0 else (0.5 if len(choices) == 1 else k / (len(choices) - 1))
        a, b, x = float(spec["low"]), float(spec["high"]), float(v)
        if spec.get("log") and a > 0 and x > 0:
            a, b, x = np.log10(a), np.log10(b), np.log10(x)
        return 0.5 if b == a else (x - a) / (b - a)

    # the better, the darker; viridis without its palest yellows, which vanish on white
    shades = colormaps["viridis"](np.linspace(0.0, 0.85, 256))
    cmap = ListedColormap(shades if minimize else shades[::-1])
    norm = Normalize(vspec["low"], vspec["high"])
    fig = Figure(figsize=(max(6.0, 1.5 * len(specs) + 1.5), 4.5))
    ax = fig.add_subplot()
    xs = np.arange(len(specs))
    order = list(np.argsort(values)[::-1] if minimize else np.argsort(values))  # worst first, best on top
    if red == "best":
        red = order[-1] if order else None
    if red is not None:
        order.remove(red)
        order.append(red)
    for i in order:
        value, params = rows[i]
        ys = [position(vspec, value)] + [position(spec, params.get(name)) for name, spec in axes]
        best = i == red
        ax.plot(xs, ys, color="#d62728" if best else cmap(norm(value)), lw=2.2 if best else 1.0,
                alpha=1.0 if best else 0.75, zorder=3 if best else 2)
    label_box = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8}
    for x, (name, spec) in zip(xs, specs):
        ax.axvline(x, color="0.3", lw=0.8, zorder=1)
        if "choices" in spec:
            ticks = [(position(spec, c), str(c)) for c in spec["choices"]]
        else:
            a, b = float(spec["low"]), float(spec["high"])
            mid = float(np.sqrt(a * b)) if spec.get("log") and a > 0 else (a + b) / 2
            ticks = [(position(spec, t), f"{t:.3g}") for t in dict.fromkeys((a, mid, b))]
        for y, text in ticks:
            ax.plot([x - 0.03, x], [y, y], color="0.3", lw=0.8, zorder=1)
            ax.text(x + 0.04, y, text, fontsize=7, va="center", ha="left", bbox=label_box, zorder=4)
    ax.set_xticks(xs, [name for name, _ in specs], rotation=20, ha="right", fontsize=8)
    ax.set(xlim=(-0.15, len(specs) - 0.4), ylim=(-0.05, 1.05), yticks=[], title=title)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=metric, pad=0.02)
    _save(fig, path)
    return fig


def pareto_front(path: Path, values: np.ndarray, on_front: np.ndarray, feasible: np.ndarray, numbers: Sequence[int],
                 names: Sequence[str], minimize_first: bool = True, title: str = "") -> None:
    """The complete trials in the space of 2 or 3 objectives: the Pareto front in red (in 2-D
    joined by the steps it dominates, each point labelled with its trial number), the other
    feasible trials grey, the infeasible ones as crosses.

    values: (n, k) objective values, k = 2 or 3; on_front, feasible: (n,) booleans; numbers: (n,)
    trial numbers; names: the k metrics, in their order; minimize_first: the first metric's direction,
    which says where the steps turn (each front point holds until the next one along x improves on it).
    """
    k = values.shape[1]
    fig = Figure(figsize=(6, 4.5) if k == 2 else (6, 5.5))
    ax = fig.add_subplot(projection="3d" if k == 3 else None)
    rest, out = feasible & ~on_front, ~feasible
    if rest.any():
        ax.scatter(*values[rest].T, s=18, color="0.6", label="dominated")
    if out.any():
        ax.scatter(*values[out].T, s=22, marker="x", color="0.75", label="infeasible")
    front = values[on_front]
    ax.scatter(*front.T, s=30, color="#d62728", zorder=3, label=f"Pareto front ({len(front)} trials)")
    if k == 2 and len(front):
        order = np.argsort(front[:, 0])
        ax.plot(front[order, 0], front[order, 1], color="#d62728", lw=1, alpha=0.6,
                drawstyle="steps-post" if minimize_first else "steps-pre")
        for (x, y), n in zip(front, np.asarray(numbers)[on_front]):
            ax.annotate(str(n), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    if k == 2:  # a count such as n_params spans decades: on a linear axis the small ones merge
        for set_scale, column in ((ax.set_xscale, values[:, 0]), (ax.set_yscale, values[:, 1])):
            if column.size and column.min() > 0 and column.max() / column.min() > 100:
                set_scale("log")
    if k == 3:
        ax.set_zlabel(names[2])
    else:
        ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    _save(fig, path)
