"""benchmarks/results.py: each benchmark replaces its own section of RESULTS.md and nothing else."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("results", Path(__file__).resolve().parents[2] / "benchmarks/results.py")
results = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(results)  # benchmarks/ is a folder of scripts, not a package


def test_a_run_replaces_its_own_section_and_keeps_the_rest(tmp_path, monkeypatch, capsys):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\nintro kept\n\n<!-- bench-a -->\nold a\n<!-- /bench-a -->\n\n"
                    "<!-- bench-b -->\nold b, carried over\n<!-- /bench-b -->\n\n## By hand\n\nkept too\n")
    monkeypatch.setattr(sys, "argv", ["benchmarks/bench_b.py", "--repeat", "2"])
    with results.recorded("bench-b", "B's title", path=path):
        print("| x | verdict |\n| 1 | keep ours |")
    text = path.read_text()
    assert "old b" not in text and "old a" in text and "intro kept" in text and "kept too" in text
    body = text.split("<!-- bench-b -->")[1].split("<!-- /bench-b -->")[0]
    assert "## B's title" in body and "`python benchmarks/bench_b.py --repeat 2`" in body
    assert results.machine() in body and "```text\n| x | verdict |\n| 1 | keep ours |\n```" in body
    assert "| 1 | keep ours |" in capsys.readouterr().out  # still printed

    with results.recorded("bench-b", "B's title", markdown=True, path=path):
        print("| x |\n|---|\n| 2 |")
    text = path.read_text()
    assert text.count("<!-- bench-b -->") == 1 and "| 1 |" not in text and "| 2 |" in text and "```text" not in text


def test_a_new_section_is_appended_and_a_file_made(tmp_path):
    path = tmp_path / "RESULTS.md"
    results.write("bench-c", "C", "c's table", "python benchmarks/bench_c.py", path)
    results.write("bench-d", "D", "d's table", "python benchmarks/bench_d.py", path)
    text = path.read_text()
    assert text.startswith(results.HEADER) and text.index("<!-- bench-c -->") < text.index("<!-- bench-d -->")


def test_a_smoke_run_or_a_failed_one_leaves_the_file_alone(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("<!-- bench-a -->\nold a\n<!-- /bench-a -->\n")
    with results.recorded("bench-a", "A", keep=False, path=path):
        print("smoke numbers")
    with pytest.raises(RuntimeError), results.recorded("bench-a", "A", path=path):
        print("half a table")
        raise RuntimeError("the bench failed")
    assert path.read_text() == "<!-- bench-a -->\nold a\n<!-- /bench-a -->\n"


def test_the_repository_results_have_a_section_per_benchmark():
    text = results.RESULTS.read_text()
    for name in ("bench-nncore", "bench-sweep", "bench-search", "bench-honest", "bench-figures", "bench-scale",
                 "bench-cluster"):
        assert text.count(f"<!-- {name} -->") == 1 and text.count(f"<!-- /{name} -->") == 1, name
