"""benchmarks/RESULTS.md, written by the benchmarks themselves (`make bench-*`), never by hand.

Each benchmark owns one section of the file, between `<!-- NAME -->` and `<!-- /NAME -->`, and
replaces it whole when it ends: the date, the command, the machine (cores, Python, NumPy) and what
it printed (its tables and verdicts). The other sections, and any text outside the markers, stay as
they are. A smoke run (`--quick`) prints as usual and leaves the file alone: its numbers are not
the benchmark's.

    with recorded("bench-figures", "The sweep's figures: ours or the library's"):
        ...  # everything printed to stdout in here is the section's body
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import sys
from datetime import date
from pathlib import Path
from typing import Iterator, TextIO

import numpy

RESULTS = Path(__file__).resolve().with_name("RESULTS.md")
HEADER = ("# Benchmark results\n\nWritten by the benchmarks (`make bench`, `make bench-sweep`, ...; "
          "benchmarks/results.py): each replaces its own section when it runs. Do not edit by hand.\n")


def machine() -> str:
    """The machine a result was measured on: cores, Python and NumPy."""
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, NumPy {numpy.__version__}"


def section(name: str, title: str, body: str, command: str, when: date | None = None) -> str:
    """A section of RESULTS.md: its markers, a heading, when, how and where it was measured, and
    the body as printed (inside a text block unless it is Markdown already)."""
    when = when or date.today()
    return (f"<!-- {name} -->\n## {title}\n\n`{command}`, {when.isoformat()}; {machine()}.\n\n"
            f"{body.strip()}\n<!-- /{name} -->")


def replace(text: str, name: str, new: str) -> str:
    """text with the section `name` replaced by `new`, or `new` appended where there was none."""
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: new, text, count=1)
    return f"{text.rstrip()}\n\n{new}\n"


def write(name: str, title: str, body: str, command: str, path: Path = RESULTS) -> None:
    text = path.read_text() if path.exists() else HEADER
    path.write_text(replace(text, name, section(name, title, body, command)))


class _Tee(io.TextIOBase):
    """stdout as it was, and a copy."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.copy = out, io.StringIO()

    def write(self, s: str) -> int:
        self.copy.write(s)
        return self.out.write(s)

    def flush(self) -> None:
        self.out.flush()


@contextlib.contextmanager
def recorded(name: str, title: str, *, markdown: bool = False, keep: bool = True,
             path: Path = RESULTS) -> Iterator[None]:
    """Prints as usual; when the block ends without an error (and keep: not a smoke run), what it
    printed becomes the section `name` of RESULTS.md. markdown: the output is Markdown already
    (tables), else it goes in a text block, as printed."""
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield
    if not keep:
        print(f"(a smoke run: {path.name} left as it was)")
        return
    body = tee.copy.getvalue() if markdown else f"```text\n{tee.copy.getvalue().strip()}\n```"
    command = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    write(name, title, body, command, path)
    print(f"(written to {path})")
