"""What a config field accepts, declared once beside the field (sweeps.config.schema): a rule both
checks a value and says what it allows, so the check and its message cannot drift apart, as
scikit-learn's Interval and StrOptions do (sklearn/utils/_param_validation.py).

    Interval(int, 1, None)                  an integer >= 1
    Interval(float, 0, 1, closed="left")    a number in [0, 1)
    Interval(int, 1, None, null="off")      null (off) or an integer >= 1
    Options(nncore.ACTIVATIONS)             one of leaky_relu, relu, sigmoid, tanh (the table's keys)

`null` is what a null value means, when the field may be null ("" for no words); `note` follows
what is allowed, in parentheses. Imports the errors leaf only.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, Sequence

from sweeps.errors import one_of


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class Rule:
    """A check and its words: accepts(value), and `allowed`, the end of the sentence that refuses one."""

    names: tuple[str, ...] = ()  # the known names, for "did you mean"

    def __init__(self, null: str | None = None, note: str = ""):
        self.null, self.note = null, note

    def accepts(self, value: Any) -> bool:
        return self.null is not None if value is None else self.holds(value)

    @property
    def allowed(self) -> str:
        """'null (off) or an integer >= 1'."""
        said = self.says() + (f" ({self.note})" if self.note else "")
        return said if self.null is None else f"null{f' ({self.null})' if self.null else ''} or {said}"

    def holds(self, value: Any) -> bool:
        raise NotImplementedError

    def says(self) -> str:
        raise NotImplementedError


class Interval(Rule):
    """A finite number (kind float) or an integer (kind int) between low and high (None: no bound);
    closed says which bounds belong: "left", "right", "both" or "neither"."""

    def __init__(self, kind: type, low: float | None, high: float | None, closed: str = "both", **words: str):
        super().__init__(**words)
        self.kind, self.low, self.high = kind, low, high
        self.left, self.right = closed in ("left", "both"), closed in ("right", "both")

    def holds(self, v: Any) -> bool:
        return ((is_integer(v) if self.kind is int else is_number(v))
                and (self.low is None or v > self.low or (self.left and v == self.low))
                and (self.high is None or v < self.high or (self.right and v == self.high)))

    def says(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        low, high = _shown(self.low), _shown(self.high)
        if self.low is None and self.high is None:
            return what if self.kind is int else "a finite number"
        if self.high is None:
            return f"{what} {'>=' if self.left else '>'} {low}"
        if self.low is None:
            return f"{what} {'<=' if self.right else '<'} {high}"
        if self.kind is int:  # whole numbers: the first and last it allows
            return f"{what} from {self.low + (not self.left)} to {self.high - (not self.right)}"
        return f"{what} in {'[' if self.left else '('}{low}, {high}{']' if self.right else ')'}"


def _shown(bound: float | None) -> str:
    """2 as 2, 1e-08 as 1e-08, 0.5 as 0.5."""
    return str(bound) if bound is None or isinstance(bound, int) else f"{bound:g}"


class Options(Rule):
    """One of a table's names (a dict's keys): pass the table itself, so the list is never copied."""

    def __init__(self, table: Iterable[str], **words: str):
        super().__init__(**words)
        self.names = tuple(table)

    def holds(self, v: Any) -> bool:
        return isinstance(v, str) and v in self.names

    def says(self) -> str:
        return one_of(self.names)


class Text(Rule):
    """A string that matches `pattern` whole and passes `test` (when given), described by `what`."""

    def __init__(self, pattern: str, what: str, test: Callable[[str], bool] | None = None, **words: str):
        super().__init__(**words)
        self.pattern, self.what, self.test = re.compile(pattern, re.DOTALL), what, test

    def holds(self, v: Any) -> bool:
        return isinstance(v, str) and self.pattern.fullmatch(v) is not None and (self.test is None or self.test(v))

    def says(self) -> str:
        return self.what


NON_EMPTY = r".*\S.*"


class Either(Rule):
    """One rule, or else another: 'an integer >= 1, or -1 for all cores'."""

    def __init__(self, first: Rule, second: Rule):
        super().__init__()
        self.first, self.second, self.names = first, second, first.names + second.names

    def accepts(self, value: Any) -> bool:
        return self.first.accepts(value) or self.second.accepts(value)

    @property
    def allowed(self) -> str:
        return f"{self.first.allowed}, or {self.second.allowed}"


class Exactly(Rule):
    """One value, said in words: Exactly(-1, "-1 for all cores")."""

    def __init__(self, value: Any, what: str):
        super().__init__()
        self.value, self.what = value, what

    def holds(self, v: Any) -> bool:
        return v == self.value and type(v) is type(self.value)

    def says(self) -> str:
        return self.what


class Range(Rule):
    """[low, high] with low < high, each accepted by `each`."""

    def __init__(self, each: Rule):
        super().__init__()
        self.each = each

    def holds(self, v: Any) -> bool:
        return (isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2
                and all(self.each.accepts(x) for x in v) and v[0] < v[1])

    def says(self) -> str:
        return f"[low, high] with low < high, each {self.each.allowed}"
