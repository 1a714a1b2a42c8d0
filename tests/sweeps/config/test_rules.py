"""sweeps.config.rules: one declaration gives a field's check and the words of its refusal, and
the allowed names are the table's own."""

import pytest

import nncore
from sweeps.config.rules import Either, Exactly, Interval, Options, Range, Text
from sweeps.config.schema import RULES
from sweeps.errors import one_of


@pytest.mark.parametrize("rule, good, bad, words", [
    (Interval(float, 0, None, closed="neither"), [1e-9, 3], [0, -1, float("nan"), True, "1"], "a number > 0"),
    (Interval(float, 0, 1, closed="left"), [0, 0.5], [1, -0.1], "a number in [0, 1)"),
    (Interval(int, 1, None, null="off"), [None, 1, 7], [0, 1.5, True], "null (off) or an integer >= 1"),
    (Interval(int, 0, 2 ** 32, closed="left", note="NumPy's seeds"), [0, 2 ** 32 - 1], [2 ** 32, -1],
     "an integer from 0 to 4294967295 (NumPy's seeds)"),
    (Interval(float, None, None, null="off"), [None, -3.5], [float("inf")], "null (off) or a finite number"),
    (Either(Interval(int, 1, None), Exactly(-1, "-1 for all cores")), [1, -1], [0, -2, -1.0],
     "an integer >= 1, or -1 for all cores"),
    (Options(("b", "a")), ["a"], ["c", None, 1], "one of a, b"),
    (Text(r"[a-z]+", "lower-case letters", null=""), [None, "abc"], ["", "A"], "null or lower-case letters"),
    (Range(Interval(float, 0, None, closed="neither")), [[0.1, 2.0]], [[2.0, 0.1], [0, 1], [1]],
     "[low, high] with low < high, each a number > 0"),
])
def test_a_rule_checks_and_says_what_it_allows(rule, good, bad, words):
    assert all(rule.accepts(v) for v in good) and not any(rule.accepts(v) for v in bad)
    assert rule.allowed == words


def test_the_allowed_names_are_the_tables_keys_not_a_copy_in_words():
    assert RULES["model.activation"].names == tuple(nncore.ACTIVATIONS)
    assert RULES["train.optimizer"].allowed == one_of(nncore.OPTIMIZERS)
    assert RULES["train.optimizers.momentum.beta"].allowed == "a number in [0, 1)"  # nncore.LIMITS
