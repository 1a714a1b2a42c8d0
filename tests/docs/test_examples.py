"""The docs cannot go stale: every sweep command in README.md and docs/*.md composes with Hydra and
passes the checks a sweep runs before it starts (sweeps.runner.checks.validate), without training;
every relative link points to a file (and heading) that exists.

A command is found in a shell code block (```sh, bash, console, shell) or in an inline code span,
split as bash splits it (shlex), and taken when it is `python -m sweeps [overrides]`,
`python -m sweeps.worker [overrides]`, `nnsweeps sweep|worker [overrides]`, or `make sweep|worker
ARGS="overrides"`; a `sweeps.run([...])` call in a Python block is taken with its list.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from sweeps.api import compose_config
from sweeps.errors import ConfigError
from sweeps.runner.checks import validate

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^[ \t]*```(\w*)[^\n]*\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)  # in a list item too
INLINE = re.compile(r"`([^`]+)`")  # a span may wrap onto the next line
RUN_CALL = re.compile(r"sweeps\.run\((\[[^\]]*\])")
ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
OPERATORS = {"&&", "||", ";", "|", "&"}
NNSWEEPS_FLAGS = {"-q", "-v", "--quiet", "--verbose"}  # nnsweeps' own, not Hydra's
# commands that are documented on purpose but do not compose alone, and why
SKIP: dict[str, str] = {
    "python -m sweeps [overrides]": "a placeholder for any overrides",
    'make sweep ARGS="..."': "a placeholder for any overrides",
    "python -m sweeps.worker [overrides]": "a placeholder for any overrides",
    "python -m sweeps 'search_space.model.activation=choice(tanh, relu)'":
        "the spelling that fails, shown as the one to avoid (docs/configuration.md)",
    "nnsweeps sweep --config-dir my search_space=mine": "a folder of the user's own: run for real by "
        "tests/sweeps/commands/test_nnsweeps.py::test_a_users_config_dir_adds_its_groups",
}


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    text: str  # as written in the page
    env: tuple[tuple[str, str], ...]  # NAME=value before the command
    overrides: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def logical_lines(block: str) -> list[tuple[int, str]]:
    """(offset, line) of a shell block, continuation lines (a trailing backslash) joined."""
    out, pending, start = [], "", 0
    for i, line in enumerate(block.splitlines()):
        if not pending:
            start = i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def words(line: str) -> list[str]:
    """The line split as bash splits it, comments dropped, control operators as their own words."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="&|;")
    lexer.whitespace_split = True
    return list(lexer)


def sweep_overrides(argv: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """(environment, overrides) when argv is a sweep command, else None."""
    env = {}
    while argv and ENV.match(argv[0]):
        name, _, value = argv.pop(0).partition("=")
        env[name] = value
    if len(argv) >= 3 and Path(argv[0]).name.startswith("python") and argv[1] == "-m" \
            and argv[2] in ("sweeps", "sweeps.worker"):
        return env, argv[3:]
    if len(argv) >= 2 and argv[0] == "nnsweeps" and argv[1] in ("sweep", "worker"):
        return env, [a for a in argv[2:] if a not in NNSWEEPS_FLAGS]
    if len(argv) >= 2 and argv[0] == "make" and argv[1] in ("sweep", "worker"):
        args = [a.partition("=")[2] for a in argv[2:] if a.startswith("ARGS=")]
        return env, shlex.split(args[0]) if args else []  # make hands $(ARGS) to the shell unquoted
    return None


def commands(line: str) -> list[tuple[dict[str, str], list[str]]]:
    """The sweep commands of one shell line (several when joined by && or ;)."""
    found, argv = [], []
    for word in [*words(line), ";"]:
        if word in OPERATORS:
            hit = sweep_overrides(argv)
            if hit is not None:
                found.append(hit)
            argv = []
        else:
            argv.append(word)
    return found


def examples_in(page: str, text: str) -> list[Example]:
    found: list[Example] = []

    def add(line_no: int, source: str) -> None:
        for env, overrides in commands(source):
            found.append(Example(page, line_no, source.strip(), tuple(env.items()), tuple(overrides)))

    for fence in FENCE.finditer(text):
        first = text.count("\n", 0, fence.start(2)) + 1
        if fence.group(1) in SHELL:
            for offset, line in logical_lines(fence.group(2)):
                add(first + offset, line)
        elif fence.group(1) == "python":
            for call in RUN_CALL.finditer(fence.group(2)):
                line_no = first + fence.group(2).count("\n", 0, call.start())
                found.append(Example(page, line_no, call.group(0), (), tuple(ast.literal_eval(call.group(1)))))
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # keeps the line numbers
    for span in INLINE.finditer(prose):
        code = " ".join(span.group(1).split())
        if re.match(r"(\S+=\S+ )*(\S*python3? -m sweeps(\.worker)?( |$)|nnsweeps (sweep|worker)|make (sweep|worker) )", code):
            add(prose.count("\n", 0, span.start()) + 1, code)
    return found


EXAMPLES = [e for page in PAGES for e in examples_in(str(page.relative_to(ROOT)), page.read_text())]


def check(example: Example, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose the example's config with its overrides and run the checks a sweep runs first."""
    for name, value in example.env:
        monkeypatch.setenv(name, value)
    validate(compose_config(list(example.overrides)))


def test_the_docs_hold_sweep_examples_to_check():
    pages = {e.page for e in EXAMPLES}
    assert "README.md" in pages and "docs/configuration.md" in pages and "docs/scaling.md" in pages
    assert any(e.text.startswith("make sweep ARGS=") for e in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_every_documented_sweep_command_composes_and_passes_the_checks(example, tmp_path, monkeypatch):
    if example.text in SKIP:
        pytest.skip(SKIP[example.text])
    monkeypatch.chdir(tmp_path)  # hydra.run.dir and relative paths land here
    check(example, monkeypatch)


def test_a_misspelt_override_in_an_example_fails_the_check(tmp_path, monkeypatch):
    page = """
```sh
python -m sweeps sweep.n_trial=50 sweep.study_name=typo   # n_trial, not n_trials
```
and `make sweep ARGS="dataset=moon"`, and the quotes Hydra needs left out:
`python -m sweeps 'search_space.model.activation=choice(tanh, relu)'`
"""
    examples = examples_in("page.md", page)
    assert [e.overrides for e in examples] == [
        ("sweep.n_trial=50", "sweep.study_name=typo"), ("dataset=moon",),
        ("search_space.model.activation=choice(tanh, relu)",)]
    monkeypatch.chdir(tmp_path)
    for example, says in zip(examples, ["sweep.n_trials", "moons", """'search_space.model.activation="choice(tanh, relu)"'"""]):
        with pytest.raises(ConfigError, match=re.escape(says)):
            check(example, monkeypatch)


def test_shell_lines_split_as_bash_splits_them():
    line = ("cd /tmp/x && MLFLOW_TRACKING_URI=sqlite:///a.db python -m sweeps "
            "'search_space.model.activation=\"choice(tanh, relu)\"' sweep.n_trials=5  # a comment")
    assert commands(line) == [({"MLFLOW_TRACKING_URI": "sqlite:///a.db"},
                               ['search_space.model.activation="choice(tanh, relu)"', "sweep.n_trials=5"])]
    assert commands('make worker ARGS="sweep.storage=x.journal tracking.uri=sqlite:///b.db"') == [
        ({}, ["sweep.storage=x.journal", "tracking.uri=sqlite:///b.db"])]
    assert commands("nnsweeps sweep -q dataset=moons") == [({}, ["dataset=moons"])]
    assert commands("python -m sweeps.report --top 5") == []
    assert logical_lines("make sweep ARGS=\"a=1 \\\n  b=2\"\nmake test") == [(0, 'make sweep ARGS="a=1    b=2"'),
                                                                           (2, "make test")]


# ---- links ------------------------------------------------------------------------------------
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's ids of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = FENCE.sub("", page.read_text())
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def links(page: Path) -> list[str]:
    return [m.group(1) for m in LINK.finditer(FENCE.sub("", page.read_text()))
            if not re.match(r"[a-z]+:", m.group(1))]  # http:, https:, mailto: are not files


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_and_heading_that_exist(page):
    broken = []
    for link in links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no file {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Here\n[there](missing.md) [here](#here) [nowhere](#nowhere) [web](https://example.org)\n")
    assert links(page) == ["missing.md", "#here", "#nowhere"]
    assert anchors(page) == {"here"}
