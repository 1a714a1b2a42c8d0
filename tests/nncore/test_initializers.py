"""nncore.initializers: each initialiser's scale, its seed, and an unknown name refused."""

import numpy as np
import pytest

from nncore.initializers import INITIALIZERS, get_initializer


@pytest.mark.parametrize("name, std", [("scaled", lambda n_in: 0.01), ("he", lambda n_in: np.sqrt(2 / n_in)),
                                       ("xavier", lambda n_in: np.sqrt(1 / n_in))])
def test_each_initialiser_draws_at_its_scale_from_its_generator(name, std):
    W = get_initializer(name)(np.random.default_rng(0), 400, 100)
    assert W.shape == (400, 100) and abs(W.std() / std(100) - 1) < 0.02 and abs(W.mean()) < 0.01 * std(100) * 10
    again = get_initializer(name)(np.random.default_rng(0), 400, 100)
    assert np.array_equal(W, again)  # the seed decides, nothing global


def test_an_unknown_initialiser_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=", ".join(sorted(INITIALIZERS))):
        get_initializer("zeros")
