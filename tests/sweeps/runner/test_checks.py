"""sweeps.runner.checks: validate() before any process starts, preflight() before any store is
written; each failure one sentence."""

import pytest

from sweeps.errors import ConfigError
from sweeps.runner.checks import preflight, validate


def test_validate_returns_the_space_and_checks_the_samplers_table(compose_cfg):
    assert "train.learning_rate" in validate(compose_cfg()).entries
    with pytest.raises(ConfigError, match="sweep.sampler is 'TPE'.*did you mean 'tpe'"):
        validate(compose_cfg("sweep.sampler=TPE"))


def test_validate_checks_enqueued_configs_against_the_space(compose_cfg):
    with pytest.raises(ConfigError, match="train.learning_rate=9.0, which lies outside"):
        validate(compose_cfg("+sweep.enqueue=[{train.learning_rate: 9.0}]"))


def test_preflight_reads_the_data_and_checks_the_stores(compose_cfg, tmp_path):
    bad = tmp_path / "d.csv"
    bad.write_text("x,y\n1,a\n2,\n")
    cfg = compose_cfg("dataset=csv", f"dataset.kwargs.path={bad}", "dataset.kwargs.label=y",
                      f"tracking.uri=sqlite:///{tmp_path / 'm.db'}", f"sweep.storage={tmp_path / 'o.journal'}")
    with pytest.raises(ConfigError, match="no 'y' label at row"):
        preflight(cfg)
    cfg = compose_cfg(f"tracking.uri=file://{tmp_path}/mlruns", f"sweep.storage={tmp_path / 'o.journal'}")
    with pytest.raises(ConfigError, match="folder store"):
        preflight(cfg)
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "o.journal").exists()


def test_a_grid_with_queued_or_copied_trials_is_refused(compose_cfg):
    grid = ("+experiment=course_hidden_units",)
    with pytest.raises(ConfigError, match="sweep.sampler is 'grid'.*twice"):
        validate(compose_cfg(*grid, "+sweep.enqueue=[{model.units: 3}]"))
    with pytest.raises(ConfigError, match="sweep.sampler is 'grid'"):
        validate(compose_cfg(*grid, "sweep.warm_start=flower"))

