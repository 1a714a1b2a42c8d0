"""The per-trial figures reuse one figure per layout in a process: what a figure shows must not
depend on what it showed before."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from sweeps import plots

IT = np.arange(0, 500, 5.0)  # (100,) iterations
COSTS = 0.7 * np.exp(-IT / 150) + 0.05
NONE = (np.array([]), np.array([]))


def pixels(path) -> np.ndarray:
    return matplotlib.image.imread(path)  # (h, w, 4)


@pytest.fixture(autouse=True)
def fresh_cache():
    plots.clear_cache()
    yield
    plots.clear_cache()


# (title, iterations, costs, val) per trial; within a val_label each is drawn on the figure of the one before
CURVES = {
    "plain": ("plain", IT, COSTS, (np.array([100.0, 200.0, 300.0]), np.array([0.5, 0.4, np.nan]))),
    "other range": ("other", IT[:40], 50 * COSTS[:40] + 3, (np.array([20.0, 40.0]), np.array([9.0, 7.0]))),
    "diverged": ("diverged", IT, np.full_like(COSTS, np.nan), (np.array([100.0]), np.array([np.nan]))),
    "inf and nan": ("gaps", IT, np.where(IT > 300, np.inf, COSTS), (np.array([100.0]), np.array([0.3]))),
    "no val": ("no val", IT, COSTS, NONE),
    "val None": ("none", IT, COSTS * 2, None),
}


@pytest.mark.parametrize("val_label", ["val_cost", "val_accuracy"])
@pytest.mark.parametrize("b", list(CURVES))
def test_cost_curve_drawn_again_after_another_is_the_same(tmp_path, val_label, b):
    def draw(name, path):
        title, iterations, costs, val = CURVES[name]
        plots.cost_curve(path, iterations, costs, title=title, val=val, val_label=val_label)
        return pixels(path)

    first = draw("plain", tmp_path / "a1.png")
    cached_b = draw(b, tmp_path / "b.png")
    assert np.array_equal(draw("plain", tmp_path / "a2.png"), first)
    plots.clear_cache()
    assert np.array_equal(draw(b, tmp_path / "fresh_b.png"), cached_b)


def test_cost_curve_reuses_its_figure(tmp_path):
    plots.cost_curve(tmp_path / "a.png", IT, COSTS, val=CURVES["plain"][3])
    (fig, *_), = plots._figures.values()
    plots.cost_curve(tmp_path / "b.png", IT, COSTS * 3, title="b", val=CURVES["plain"][3])
    assert list(plots._figures.values())[0][0] is fig and len(plots._figures) == 1
    assert fig.axes[0].get_title() == "b"
    assert fig.axes[0].get_ylim()[1] > 2  # autoscaled to the new curve


def test_cost_curve_png_is_what_savefig_would_write_in_rgb(tmp_path):
    plots.cost_curve(tmp_path / "ours.png", IT, COSTS, title="t", val=CURVES["plain"][3])
    (fig, *_), = plots._figures.values()
    fig.savefig(tmp_path / "full.png", dpi=100)
    full = pixels(tmp_path / "full.png")  # (h, w, 4)
    assert (full[..., 3] == 1).all() and np.array_equal(pixels(tmp_path / "ours.png"), full[..., :3])
    with matplotlib.image.PIL.Image.open(tmp_path / "ours.png") as ours, \
            matplotlib.image.PIL.Image.open(tmp_path / "full.png") as saved:
        assert (ours.mode, ours.size, ours.info) == ("RGB", saved.size, saved.info)


def flower(m: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2, m))  # (2, m)
    return X, (X[0] * X[1] > 0).astype(int)  # (m,)


def test_decision_boundary_drawn_again_after_another_is_the_same(tmp_path):
    X, y = flower()
    X_val, y_val = flower(30, seed=1)
    a = lambda G: (G[0] > 0).astype(int)  # noqa: E731; (2, n) -> (n,)
    b = lambda G: (G[0] * G[1] > 0.2).astype(int)  # noqa: E731
    args = (X, y, X_val, y_val)
    plots.decision_boundary(tmp_path / "a1.png", a, *args, title="a", class_names=["red", "blue"])
    plots.decision_boundary(tmp_path / "b.png", b, *args, title="b", class_names=["red", "blue"])
    # another dataset (without validation points) in between: a second cached figure
    plots.decision_boundary(tmp_path / "c.png", b, X[:, :50] * 2, y[:50], title="c")
    assert len(plots._figures) == 2
    plots.decision_boundary(tmp_path / "a2.png", a, *args, title="a", class_names=["red", "blue"])
    assert len(plots._figures) == 2  # the first one again, not a third
    assert np.array_equal(pixels(tmp_path / "a1.png"), pixels(tmp_path / "a2.png"))
    plots.clear_cache()
    plots.decision_boundary(tmp_path / "fresh_b.png", b, *args, title="b", class_names=["red", "blue"])
    assert np.array_equal(pixels(tmp_path / "b.png"), pixels(tmp_path / "fresh_b.png"))


def test_decision_boundary_of_new_data_in_the_same_arrays_is_a_new_figure(tmp_path):
    X, y = flower()
    predict = lambda G: (G[0] > 0).astype(int)  # noqa: E731
    plots.decision_boundary(tmp_path / "a.png", predict, X, y)
    X *= 3  # the same array object, other contents
    plots.decision_boundary(tmp_path / "b.png", predict, X, y)
    plots.clear_cache()
    plots.decision_boundary(tmp_path / "fresh_b.png", predict, X, y)
    assert np.array_equal(pixels(tmp_path / "b.png"), pixels(tmp_path / "fresh_b.png"))


def test_the_cache_keeps_the_most_recently_used_few(tmp_path):
    predict = lambda G: np.zeros(G.shape[1], dtype=int)  # noqa: E731
    first = flower(seed=0)
    plots.decision_boundary(tmp_path / "d.png", predict, *first)
    for seed in range(1, plots.CACHED + 3):
        plots.decision_boundary(tmp_path / "d.png", predict, *flower(seed=seed))
        plots.decision_boundary(tmp_path / "d.png", predict, *first)  # used again: kept
        assert len(plots._figures) <= plots.CACHED
    assert len(plots._figures) == plots.CACHED
    assert plots._digest(*first, None, None) in {key[1] for key in plots._figures}


def test_decision_boundary_is_what_a_full_render_of_its_figure_would_be(tmp_path):
    """Only the image and the title are drawn per call, over pixels kept from the first draw, and
    the points, spines and legend over the image composited from a layer drawn once: the PNG must be
    the one savefig would write of the same figure, but for the layer's rounding (see plots._Blit)."""
    X, y = flower()
    X_val, y_val = flower(30, seed=1)
    predicts = [lambda G: (G[0] > 0).astype(int), lambda G: (G[0] * G[1] > 0.2).astype(int),  # noqa: E731
                lambda G: (G[1] > 0.5).astype(int) + (G[0] > 0)]  # three classes: another layout
    for i, (predict, title) in enumerate([(predicts[0], "a long title " * 5), (predicts[1], "b"),
                                          (predicts[2], ""), (predicts[1], "a long title " * 5)]):
        path = tmp_path / f"{i}.png"
        plots.decision_boundary(path, predict, X, y, X_val, y_val, title=title, class_names=["red", "blue"])
        fig, _, _, blit = list(plots._figures.values())[-1]
        fig.savefig(tmp_path / f"full{i}.png", dpi=100, pil_kwargs={"compress_level": 1})
        full = pixels(tmp_path / f"full{i}.png")  # (h, w, 4) RGBA, opaque: ours is its RGB
        assert (full[..., 3] == 1).all()
        diff = np.abs(pixels(path) - full[..., :3]).max(axis=-1).ravel()  # (h * w,)
        off_layer = np.ones(diff.size, dtype=bool)
        off_layer[blit.where] = False
        assert not diff[off_layer].any(), title  # the same pixels off the layer
        assert diff.max() <= 4 / 255 + 1e-6 and (diff > 0).mean() < 0.04, (title, diff.max() * 255, (diff > 0).mean())
        with matplotlib.image.PIL.Image.open(path) as ours, \
                matplotlib.image.PIL.Image.open(tmp_path / f"full{i}.png") as full:
            assert (ours.mode, ours.size, ours.info) == ("RGB", full.size, full.info)


def test_a_short_title_after_a_long_one_leaves_nothing_of_it(tmp_path):
    X, y = flower()
    predict = lambda G: (G[0] > 0).astype(int)  # noqa: E731
    plots.decision_boundary(tmp_path / "long.png", predict, X, y, title="a much longer title than the next " * 3)
    plots.decision_boundary(tmp_path / "short.png", predict, X, y, title="short")
    plots.clear_cache()
    plots.decision_boundary(tmp_path / "fresh.png", predict, X, y, title="short")
    assert np.array_equal(pixels(tmp_path / "short.png"), pixels(tmp_path / "fresh.png"))
    assert not np.array_equal(pixels(tmp_path / "long.png"), pixels(tmp_path / "fresh.png"))
