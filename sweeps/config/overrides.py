"""A command line that does not compose, as one sentence: which override, what is allowed, and
the closest known name ("dataset=moon" -> "did you mean 'moons'?"), instead of Hydra's text."""

from __future__ import annotations

from typing import Sequence

from sweeps.conf_dir import CONF
from sweeps.config.checks import MOVED, moved
from sweeps.config.schema import FIELD_TYPES
from sweeps.errors import did_you_mean, one_of

OPEN = ("search_space", "dataset.kwargs", "hydra")  # sections that take any key
TYPE_WORDS = {int: ("an integer", int), float: ("a number", float)}
HYDRA_SWEEPS = ("choice", "range", "interval", "glob")  # the functions of Hydra's sweep grammar


def options(group: str) -> list[str]:
    """The configs of a config group: conf/<group>/*.yaml."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def groups() -> list[str]:
    return sorted(p.name for p in CONF.iterdir() if p.is_dir())


def _parses(kind: type, value: str) -> bool:
    try:
        kind(value)
    except ValueError:
        return value == "null"
    return True


def _quote_sweep(key: str, value: str) -> str | None:
    """A search-space string whose function Hydra reads as a sweep of its own (which it refuses,
    "requires --multirun"): the form that reaches the search space, quoted inside the argument."""
    if key.startswith("search_space.") and value.split("(", 1)[0].strip() in HYDRA_SWEEPS:
        return (f"{key}={value} is read by Hydra as a sweep of its own, not as a search-space string: quote the "
                f"value inside the argument, '{key}=\"{value}\"'.")
    return None


def _blame(override: str) -> str | None:
    """What is wrong with one override, or None if it looks right."""
    key, sep, value = override.partition("=")
    key = key.lstrip("+~")
    if sep and (quote := _quote_sweep(key, value)):
        return quote
    if not sep or key.startswith(OPEN):
        return None
    if key in groups():
        if value not in options(key):
            return (f"{key}={value} names no config of the {key} group; it must be {one_of(options(key))}"
                    f"{did_you_mean(value, options(key))}.")
        return None
    if key in MOVED:
        return f"{moved(key)}; pass {MOVED[key]}={value}."
    if key not in FIELD_TYPES and not any(k.startswith(key + ".") for k in FIELD_TYPES):
        return (f"{key} is not a key of the config{did_you_mean(key, FIELD_TYPES)}; the keys are those of "
                "conf/ and sweeps/config/schema.py (an open section such as search_space takes new ones "
                "with +key=value).")
    if key == "sweep.constraints" and any(c in value for c in "<>") and '"' not in value and "'" not in value:
        # Hydra's grammar has no unquoted < or >: each constraint is a quoted string
        return (f"sweep.constraints={value} does not parse, since Hydra reads < and > only inside quotes; quote "
                f"each constraint, e.g. 'sweep.constraints=[\"n_params <= 2000\", \"fit_seconds < 0.5\"]'.")
    if FIELD_TYPES.get(key) in TYPE_WORDS:
        words, kind = TYPE_WORDS[FIELD_TYPES[key]]
        if not _parses(kind, value):
            return f"{key}={value} is not {words}; {key} must be {words}."
    return None


def hydra_sentence(err: BaseException) -> str:
    """Hydra's and OmegaConf's messages for `err` and its causes, without the traceback, joined."""
    parts, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        if text and text not in parts:
            parts.append(text)
        err = err.__cause__ or err.__context__
    return "the overrides do not compose: " + "; ".join(parts).rstrip(".") + "."


def explain(overrides: Sequence[str], err: BaseException) -> str:
    """The first override at fault, in a sentence; Hydra's own message when none is found."""
    for override in overrides:
        if not override.startswith("-"):
            blame = _blame(override)
            if blame:
                return blame
    return hydra_sentence(err)
