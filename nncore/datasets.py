"""Datasets as column matrices for vectorised NumPy networks.

`load_dataset(name, seed=..., val_fraction=..., test_fraction=..., **extras)` returns a `Dataset` whose
arrays put samples in COLUMNS (`X` is (n_x, m)), the layout the forward pass
`Z = W @ X + b` expects. `DATASETS` is the table of loaders keyed by name.

Every loader returns raw `(X (n_x, m) float64, y (m,) int64, feature_names,
class_names)`; `load_dataset` then splits, standardises and encodes labels, so the
rules for those live in one place. All randomness comes from one
`numpy.random.Generator` seeded explicitly: the same seed gives bitwise identical
arrays, whatever else the process did with NumPy's global RNG.
"""

from __future__ import annotations

import csv
import inspect
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DatasetFileNotFoundError(ValueError, FileNotFoundError):
    """A missing CSV file: a ValueError like every other bad argument here, and
    still a FileNotFoundError for callers that expect that."""


@dataclass(frozen=True, eq=False)  # eq=False: `==` on arrays is elementwise, so compare by identity
class Dataset:
    name: str
    X_train: np.ndarray  # (n_x, m_train) float64, standardised with training statistics
    Y_train: np.ndarray  # (n_y, m_train) float64: 0/1 row if 2 classes (n_y=1), else one-hot (n_y=k)
    X_val: np.ndarray  # (n_x, m_val), same transform as X_train
    Y_val: np.ndarray  # (n_y, m_val)
    y_train: np.ndarray  # (m_train,) int64 labels 0..k-1
    y_val: np.ndarray  # (m_val,) int64
    n_classes: int
    feature_names: list[str]
    class_names: list[str]
    # the held-out test split (test_fraction), which a search never sees: (n_x, m_test), (n_y, m_test), (m_test,)
    X_test: np.ndarray | None = None
    Y_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


# ---- generated 2-D datasets ---------------------------------------------------------


def _halves(n_samples) -> tuple[int, int]:
    # Two classes need at least one point each.
    if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples < 2:
        raise ValueError(f"n_samples={n_samples!r} is invalid; it must be an integer >= 2.")
    return int(n_samples) // 2, int(n_samples) - int(n_samples) // 2


def _non_negative(field: str, value) -> float:
    if not isinstance(value, numbers.Real) or not value >= 0:  # `not >=` also rejects NaN
        raise ValueError(f"{field}={value!r} is invalid; it must be a number >= 0.")
    return float(value)


def _flower(rng, *, n_samples=400, petals=4):
    """The deep-learning course's planar "flower" (load_planar_dataset), seeded locally."""
    a = 4  # maximum ray of the flower
    X, y = [], []
    for j, n in enumerate(_halves(n_samples)):  # course: N = m/2 points per class
        t = np.linspace(j * 3.12, (j + 1) * 3.12, n) + rng.standard_normal(n) * 0.2  # (n,) angle
        r = a * np.sin(petals * t) + rng.standard_normal(n) * 0.2  # (n,) radius
        X.append(np.stack([r * np.sin(t), r * np.cos(t)]))  # (2, n)
        y.append(np.full(n, j))
    return np.hstack(X), np.concatenate(y), ["x1", "x2"], ["red", "blue"]  # course plot colours


def _moons(rng, *, n_samples=400, noise=0.2):
    """sklearn.datasets.make_moons, drawn from our Generator instead of a RandomState."""
    n_out, n_in = _halves(n_samples)
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.hstack([np.stack([np.cos(t_out), np.sin(t_out)]),  # (2, n_out) upper moon
                   np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)])])  # (2, n_in) lower moon
    # No shuffle here (make_moons has one): the split shuffles anyway.
    X = X + rng.normal(scale=_non_negative("noise", noise), size=X.shape)
    return X, np.repeat([0, 1], [n_out, n_in]), ["x1", "x2"], ["upper", "lower"]


def _circles(rng, *, n_samples=400, noise=0.1, factor=0.5):
    """sklearn.datasets.make_circles, drawn from our Generator instead of a RandomState."""
    if not isinstance(factor, numbers.Real) or not 0 <= factor < 1:
        raise ValueError(f"factor={factor!r} is invalid; it must be a number in [0, 1).")
    n_out, n_in = _halves(n_samples)
    # endpoint=False so the first and last points of a circle do not coincide.
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.hstack([np.stack([np.cos(t_out), np.sin(t_out)]),  # (2, n_out) outer circle
                   factor * np.stack([np.cos(t_in), np.sin(t_in)])])  # (2, n_in) inner circle
    X = X + rng.normal(scale=_non_negative("noise", noise), size=X.shape)
    return X, np.repeat([0, 1], [n_out, n_in]), ["x1", "x2"], ["outer", "inner"]


# ---- scikit-learn's bundled datasets (files shipped with the package, no download) ----


def _sklearn(loader_name: str):
    def load(rng):
        import sklearn.datasets  # lazy: only these four loaders need scikit-learn

        bunch = getattr(sklearn.datasets, loader_name)()
        return (bunch.data.T.astype(np.float64),  # (m, n_x) -> (n_x, m)
                bunch.target.astype(np.int64),
                [str(f) for f in bunch.feature_names],
                [str(c) for c in bunch.target_names])

    load.__name__ = f"_{loader_name}"
    return load


# ---- CSV ------------------------------------------------------------------------------


def _check_class_labels(labels: list[str], label: str, path: Path) -> None:
    """Classification needs class labels: a column of numbers that are not all whole (a regression
    target, or a measurement) is refused rather than taken as one class per distinct value."""
    try:
        values = [float(c) for c in labels]
    except ValueError:
        return  # names of classes
    fractional = [c for c, v in zip(labels, values) if not (math.isfinite(v) and v == int(v))]
    if fractional:
        raise ValueError(f"CSV column {label!r} of '{path}' holds numbers that are not whole ({fractional[0]!r} and "
                         f"{len(fractional) - 1} more), but classification needs class labels; use a column of "
                         "class names or integers, or bin the values into classes first.")


def _csv(rng, *, path=None, label=None):
    """A CSV with a header row: column `label` holds the classes, all others are features."""
    if path is None:
        raise ValueError("Dataset 'csv' got path=None; pass path='<file.csv>'.")
    if label is None:
        raise ValueError("Dataset 'csv' got label=None; pass label='<name of the label column>'.")
    path = Path(path)
    if not path.is_file():
        raise DatasetFileNotFoundError(f"CSV path='{path}' is not an existing file; pass the path of a CSV file.")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if label not in header:
            raise ValueError(f"CSV label={label!r} is not a column of '{path}'; "
                             f"the columns are: {', '.join(header) or '(no header row)'}.")
        li = header.index(label)
        features = [h for i, h in enumerate(header) if i != li]
        if not features:
            raise ValueError(f"CSV '{path}' has only the label column {label!r}; at least one feature column is needed.")
        rows, labels, empty = [], [], []
        for row_no, row in enumerate((r for r in reader if r), start=1):  # blank lines skipped
            line = reader.line_num
            if len(row) != len(header):
                raise ValueError(f"CSV '{path}' row {row_no} (line {line}) has {len(row)} fields; "
                                 f"the header has {len(header)}.")
            cells = [c.strip() for c in row]
            labels.append(cells.pop(li))
            if not labels[-1]:
                empty.append(row_no)
            values = []
            for col, cell in zip(features, cells):
                try:
                    v = float(cell)
                except ValueError:
                    v = math.nan
                if not math.isfinite(v):  # float() accepts 'nan' and 'inf': reject them too
                    raise ValueError(f"CSV column {col!r} has {cell!r} at row {row_no} (line {line}) of '{path}'; "
                                     "features must be finite numbers.")
                values.append(v)
            rows.append(values)
    if empty:  # an empty cell is a missing label, not a class ''
        shown = ", ".join(map(str, empty[:10])) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise ValueError(f"CSV '{path}' has no {label!r} label at row(s) {shown}; fill them in or drop those rows.")
    _check_class_labels(labels, label, path)
    try:  # integer labels sort as numbers ("10" after "9"), others as strings
        class_names = sorted(set(labels), key=int)
    except ValueError:
        class_names = sorted(set(labels))
    index = {c: k for k, c in enumerate(class_names)}
    X = np.array(rows, dtype=np.float64).reshape(len(rows), len(features)).T  # (n_x, m)
    return X, np.array([index[c] for c in labels], dtype=np.int64), features, class_names


DATASETS = {
    "flower": _flower,
    "moons": _moons,
    "circles": _circles,
    "breast_cancer": _sklearn("load_breast_cancer"),
    "digits": _sklearn("load_digits"),
    "iris": _sklearn("load_iris"),
    "wine": _sklearn("load_wine"),
    "csv": _csv,
}


# ---- split, standardise, encode ---------------------------------------------------


def _encode(y: np.ndarray, k: int) -> np.ndarray:
    # 2 classes: one sigmoid output row; k > 2: one-hot columns for a softmax.
    if k == 2:
        return y[None, :].astype(np.float64)  # (1, m)
    return np.ascontiguousarray(np.eye(k)[:, y])  # (k, m); the fancy index alone gives F order


def load_dataset(name: str, *, seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.0,
                 **extras) -> Dataset:
    """Load dataset `name`, shuffle-split it with `seed` (the test split first, then the validation
    split of the rest) and standardise with training statistics. test_fraction=0 gives the split
    of a loader without a test split, sample for sample."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset name={name!r}; known names are: {', '.join(sorted(DATASETS))}.")
    if not isinstance(val_fraction, numbers.Real) or not 0 <= val_fraction < 1:  # also rejects NaN
        raise ValueError(f"val_fraction={val_fraction!r} is out of range; it must be a number in [0, 1).")
    if not isinstance(test_fraction, numbers.Real) or not 0 <= test_fraction < 1 - val_fraction:
        raise ValueError(f"test_fraction={test_fraction!r} is out of range; with val_fraction={val_fraction!r} it "
                         f"must be a number in [0, {1 - val_fraction:g}), so that test and validation leave training samples.")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        # None would draw OS entropy and break reproducibility.
        raise ValueError(f"seed={seed!r} is invalid; it must be a non-negative integer.")
    loader = DATASETS[name]
    accepted = list(inspect.signature(loader).parameters)[1:]  # after `rng`
    unknown = sorted(set(extras) - set(accepted))
    if unknown:
        allowed = f"it accepts: {', '.join(accepted)}" if accepted else "it accepts no extra keywords"
        raise ValueError(f"Dataset {name!r} got unknown keyword(s) {', '.join(unknown)}; {allowed}.")

    rng = np.random.default_rng(seed)
    X, y, feature_names, class_names = loader(rng, **extras)  # X (n_x, m), y (m,)
    present = np.unique(y)
    if present.size < 2:
        found = [class_names[i] for i in present]
        raise ValueError(f"Dataset {name!r} has {present.size} class(es) {found}; at least 2 classes are needed.")

    m = y.size
    n_val, n_test = round(val_fraction * m), round(test_fraction * m)
    if n_val + n_test >= m:
        raise ValueError(f"val_fraction={val_fraction!r} and test_fraction={test_fraction!r} leave no training "
                         f"samples out of m={m}; use smaller ones.")
    perm = rng.permutation(m)
    # the test split is the permutation's tail: without one, train and validation are what they were
    rest, test = perm[: m - n_test], perm[m - n_test:]
    train, val = rest[: rest.size - n_val], rest[rest.size - n_val:]
    missing = [class_names[c] for c in present if n_test and not np.any(y[test] == c)]
    if missing:
        raise ValueError(f"test_fraction={test_fraction!r} gives a test split of {n_test} samples with no sample of "
                         f"class(es) {missing}; use a larger test_fraction (or another seed), or 0 for no test split.")

    # Training statistics only, so validation stays unseen; constant features keep std 1
    # and become 0 instead of NaN.
    mu = X[:, train].mean(axis=1, keepdims=True)  # (n_x, 1)
    sd = X[:, train].std(axis=1, keepdims=True)  # (n_x, 1)
    sd[sd == 0] = 1.0
    k = len(class_names)
    # C order (rows contiguous) for every matrix: gathering mini-batch columns from an F-ordered
    # X is an order of magnitude slower, and a loader's X.T or a column fancy index would otherwise leave F order.
    def standardise(cols: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((X[:, cols] - mu) / sd)  # (n_x, cols.size)

    return Dataset(
        name=name,
        X_train=standardise(train),  # (n_x, m_train)
        Y_train=_encode(y[train], k),  # (n_y, m_train)
        X_val=standardise(val),  # (n_x, m_val)
        Y_val=_encode(y[val], k),  # (n_y, m_val)
        y_train=y[train].astype(np.int64),
        y_val=y[val].astype(np.int64),
        n_classes=k,
        feature_names=list(feature_names),
        class_names=list(class_names),
        X_test=standardise(test),  # (n_x, m_test)
        Y_test=_encode(y[test], k),  # (n_y, m_test)
        y_test=y[test].astype(np.int64),
    )
