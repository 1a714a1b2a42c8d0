"""nncore.datasets on real data: layout, determinism, split, standardisation, CSV, errors."""

import dataclasses
import re

import numpy as np
import pytest

from nncore.datasets import DATASETS, Dataset, load_dataset

# name -> (n_x, m, n_classes) for every built-in dataset at its default size.
SIZES = {
    "flower": (2, 400, 2),
    "moons": (2, 400, 2),
    "circles": (2, 400, 2),
    "breast_cancer": (30, 569, 2),
    "digits": (64, 1797, 10),
    "iris": (4, 150, 3),
    "wine": (13, 178, 3),
}
ARRAYS = ("X_train", "Y_train", "X_val", "Y_val", "y_train", "y_val")


def write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_table_names():
    assert set(DATASETS) == set(SIZES) | {"csv"}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_shapes_and_layout(name):
    n_x, m, k = SIZES[name]
    d = load_dataset(name, seed=0, val_fraction=0.2)
    assert isinstance(d, Dataset) and d.name == name and d.n_classes == k
    m_val = round(0.2 * m)
    n_y = 1 if k == 2 else k
    assert d.X_train.shape == (n_x, m - m_val) and d.X_val.shape == (n_x, m_val)
    assert d.Y_train.shape == (n_y, m - m_val) and d.Y_val.shape == (n_y, m_val)
    assert d.y_train.shape == (m - m_val,) and d.y_val.shape == (m_val,)
    for a in ("X_train", "Y_train", "X_val", "Y_val"):
        assert getattr(d, a).dtype == np.float64
        # C order: fit gathers mini-batch columns, ~12x slower from F order
        assert getattr(d, a).flags.c_contiguous, f"{a} is not C-ordered"
    assert d.y_train.dtype == np.int64 and d.y_val.dtype == np.int64
    assert len(d.feature_names) == n_x and len(d.class_names) == k
    assert set(np.unique(np.concatenate([d.y_train, d.y_val]))) == set(range(k))
    # Y agrees with y in both encodings.
    for Y, y in ((d.Y_train, d.y_train), (d.Y_val, d.y_val)):
        np.testing.assert_array_equal(Y[0] if k == 2 else Y.argmax(axis=0), y)
    assert np.isfinite(d.X_train).all() and np.isfinite(d.X_val).all()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.name = "other"


@pytest.mark.parametrize("name", ["flower", "moons", "circles", "iris"])
def test_same_seed_is_bitwise_identical_and_other_seed_differs(name):
    a, b = load_dataset(name, seed=3), load_dataset(name, seed=3)
    for f in ARRAYS:
        assert getattr(a, f).tobytes() == getattr(b, f).tobytes(), f
    c = load_dataset(name, seed=4)
    assert not np.array_equal(a.X_train, c.X_train)
    assert not np.array_equal(a.y_val, c.y_val)


def test_global_numpy_rng_does_not_matter():
    np.random.seed(1)
    a = load_dataset("moons", seed=0)
    np.random.seed(2)
    b = load_dataset("moons", seed=0)
    assert a.X_train.tobytes() == b.X_train.tobytes()


def test_val_fraction_zero_gives_empty_validation():
    d = load_dataset("wine", seed=0, val_fraction=0)
    assert d.X_train.shape == (13, 178)
    assert d.X_val.shape == (13, 0) and d.Y_val.shape == (3, 0) and d.y_val.shape == (0,)
    b = load_dataset("moons", seed=0, val_fraction=0.0)
    assert b.X_val.shape == (2, 0) and b.Y_val.shape == (1, 0)


def test_standardisation_uses_training_statistics_only():
    from sklearn.datasets import load_iris

    raw = load_iris().data.T  # (4, 150)
    d = load_dataset("iris", seed=0, val_fraction=0.3)
    np.testing.assert_allclose(d.X_train.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(d.X_train.std(axis=1), 1, atol=1e-12)
    # Validation got the same affine map, so it is not centred itself...
    assert np.abs(d.X_val.mean(axis=1)).max() > 1e-3
    # ...and train+val together are an exact affine image of the raw data, feature by feature
    # (a positive scale keeps the order, so sorted values line up).
    Z = np.hstack([d.X_train, d.X_val])
    for f in range(4):
        z, x = np.sort(Z[f]), np.sort(raw[f])
        slope, intercept = np.polyfit(z, x, 1)
        np.testing.assert_allclose(slope * z + intercept, x, atol=1e-9)


def test_constant_feature_becomes_zero_not_nan(tmp_path):
    p = write_csv(tmp_path / "c.csv", "a,const,y\n1,5,0\n2,5,1\n3,5,0\n4,5,1\n")
    d = load_dataset("csv", path=p, label="y", val_fraction=0.25)
    assert np.all(d.X_train[1] == 0) and np.all(d.X_val[1] == 0)


def test_flower_is_the_course_flower():
    d = load_dataset("flower", seed=0, val_fraction=0)
    assert d.X_train.shape == (2, 400) and d.Y_train.shape == (1, 400)
    np.testing.assert_array_equal(np.bincount(d.y_train), [200, 200])
    # The petals interleave the classes: a linear classifier does little better than chance
    # (the course's logistic regression gets ~47%).
    A = np.vstack([d.X_train, np.ones(400)]).T  # (400, 3)
    w = np.linalg.lstsq(A, d.y_train * 2.0 - 1, rcond=None)[0]
    assert np.mean((A @ w > 0) == d.y_train) < 0.7
    small = load_dataset("flower", seed=0, val_fraction=0, n_samples=100, petals=3)
    assert small.X_train.shape == (2, 100)
    np.testing.assert_array_equal(np.bincount(small.y_train), [50, 50])


def test_digits_is_one_hot():
    d = load_dataset("digits", seed=0)
    assert d.Y_train.shape[0] == 10 and d.Y_val.shape[0] == 10
    np.testing.assert_array_equal(d.Y_train.sum(axis=0), 1)
    assert set(np.unique(d.Y_train)) == {0.0, 1.0}
    np.testing.assert_array_equal(d.Y_train.argmax(axis=0), d.y_train)


def test_csv_round_trip_with_string_labels(tmp_path):
    rows = [(1.5, "cat", -2.0), (2.5, "dog", 0.0), (3.5, "cat", 4.0), (4.5, "dog", 1.0), (5.5, "cat", 3.0)]
    text = "a,kind,b\n" + "".join(f"{a},{k},{b}\n" for a, k, b in rows)
    p = write_csv(tmp_path / "data.csv", text)
    d = load_dataset("csv", path=str(p), label="kind", seed=0, val_fraction=0)
    assert d.feature_names == ["a", "b"] and d.class_names == ["cat", "dog"] and d.n_classes == 2
    assert d.X_train.shape == (2, 5) and d.Y_train.shape == (1, 5)
    # Undo the standardisation (all data is training data here) and recover every row.
    raw = np.array([[a, b] for a, _, b in rows]).T  # (2, 5)
    X = d.X_train * raw.std(axis=1, keepdims=True) + raw.mean(axis=1, keepdims=True)
    got = sorted((round(x0, 9), d.class_names[y], round(x1, 9)) for x0, x1, y in zip(X[0], X[1], d.y_train))
    assert got == sorted(rows)


def test_csv_integer_labels_sort_numerically_and_three_classes_are_one_hot(tmp_path):
    p = write_csv(tmp_path / "n.csv", "x,label\n0,10\n1,9\n2,2\n3,10\n4,9\n5,2\n")
    d = load_dataset("csv", path=p, label="label", val_fraction=0)
    assert d.class_names == ["2", "9", "10"]
    assert d.Y_train.shape == (3, 6)
    np.testing.assert_array_equal(d.Y_train.sum(axis=0), 1)


# ---- errors: always ValueError, naming the offending value -----------------------------


def raises(text):
    return pytest.raises(ValueError, match=re.escape(text))


def test_unknown_name_lists_known_names():
    with raises("name='mnist'") as e:
        load_dataset("mnist")
    assert ", ".join(sorted(DATASETS)) in str(e.value)


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan")])
def test_val_fraction_out_of_range(bad):
    with raises(f"val_fraction={bad!r}") as e:
        load_dataset("iris", val_fraction=bad)
    assert "[0, 1)" in str(e.value)


def test_seed_must_be_an_integer():
    with raises("seed=None"):
        load_dataset("iris", seed=None)


def test_missing_csv_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.csv"
    with raises(str(missing)) as e:
        load_dataset("csv", path=missing, label="y")
    assert isinstance(e.value, FileNotFoundError)


def test_csv_without_label(tmp_path):
    p = write_csv(tmp_path / "d.csv", "a,y\n1,0\n2,1\n")
    with raises("label=None"):
        load_dataset("csv", path=p)


def test_csv_label_not_in_header_lists_columns(tmp_path):
    p = write_csv(tmp_path / "d.csv", "a,b,y\n1,2,0\n2,3,1\n")
    with raises("label='target'") as e:
        load_dataset("csv", path=p, label="target")
    assert "a, b, y" in str(e.value)


@pytest.mark.parametrize("cell", ["abc", "nan", "inf", ""])
def test_csv_bad_feature_names_column_and_row(tmp_path, cell):
    p = write_csv(tmp_path / "d.csv", f"a,b,y\n1,2,0\n3,{cell},1\n")
    with raises(f"column 'b' has {cell!r} at row 2"):
        load_dataset("csv", path=p, label="y")


def test_fewer_than_two_classes(tmp_path):
    p = write_csv(tmp_path / "d.csv", "a,y\n1,cat\n2,cat\n3,cat\n")
    with raises("1 class(es) ['cat']") as e:
        load_dataset("csv", path=p, label="y")
    assert "at least 2" in str(e.value)


def test_unknown_keyword_says_what_is_accepted():
    with raises("keyword(s) petals; it accepts no extra keywords"):
        load_dataset("iris", petals=3)
    with raises("keyword(s) noise; it accepts: n_samples, petals"):
        load_dataset("flower", noise=0.3)


def test_a_csv_with_empty_labels_is_refused_naming_the_rows(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x1,x2,y\n0,1,a\n1,0,\n2,2,b\n3,3,  \n")
    with pytest.raises(ValueError, match=r"no 'y' label at row\(s\) 2, 4"):
        load_dataset("csv", path=str(path), label="y")


def test_a_csv_whose_labels_are_fractional_numbers_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x1,y\n" + "".join(f"{i},{i * 0.37:.2f}\n" for i in range(20)))
    with pytest.raises(ValueError, match="not whole.*classification needs class labels"):
        load_dataset("csv", path=str(path), label="y")
    path.write_text("x1,y\n" + "".join(f"{i},{i % 3}.0\n" for i in range(20)))  # whole numbers written as floats
    assert load_dataset("csv", path=str(path), label="y", val_fraction=0.2).Y_train.shape[0] == 3


def test_a_test_split_is_held_out_first_and_none_keeps_the_old_split_sample_for_sample():
    old = load_dataset("flower", seed=3, val_fraction=0.2)  # no test split: the split of before
    zero = load_dataset("flower", seed=3, val_fraction=0.2, test_fraction=0)
    assert np.array_equal(old.X_train, zero.X_train) and np.array_equal(old.X_val, zero.X_val)
    assert zero.X_test.shape == (2, 0)
    d = load_dataset("flower", seed=3, val_fraction=0.2, test_fraction=0.2)  # 400 points
    assert (d.X_train.shape[1], d.X_val.shape[1], d.X_test.shape[1]) == (240, 80, 80)
    assert d.Y_test.shape == (1, 80) and d.y_test.shape == (80,)
    raw = load_dataset("flower", seed=3, val_fraction=0, test_fraction=0)  # every point, as training
    # the three splits are together every point, standardised by the training part's statistics only
    assert np.allclose(d.X_train.mean(axis=1), 0) and not np.allclose(d.X_test.mean(axis=1), 0)
    assert sorted(np.concatenate([d.y_train, d.y_val, d.y_test]).tolist()) == sorted(raw.y_train.tolist())


def test_test_and_validation_fractions_that_leave_no_training_are_refused_naming_both():
    with pytest.raises(ValueError, match=r"test_fraction=0\.8 is out of range; with val_fraction=0\.2"):
        load_dataset("flower", val_fraction=0.2, test_fraction=0.8)


def test_a_test_split_without_a_sample_of_some_class_is_refused_with_a_sentence(tmp_path):
    p = tmp_path / "rare.csv"
    p.write_text("x,y\n" + "".join(f"{i},{'b' if i == 0 else 'a'}\n" for i in range(20)))
    refused = 0
    for seed in range(5):  # the one 'b' lands in the 2-sample test split of a few seeds only
        try:
            load_dataset("csv", path=p, label="y", seed=seed, val_fraction=0.2, test_fraction=0.1)
        except ValueError as err:
            assert "test split of 2 samples with no sample of class(es) ['b']" in str(err)
            refused += 1
    assert refused >= 1
