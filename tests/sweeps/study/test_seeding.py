"""sweeps.study.seeding: an earlier study's trials copied in, known configs queued, on real journals."""

import optuna
import pytest

from sweeps.config.space import parse_space
from sweeps.errors import ConfigError
from sweeps.study.budget import requeue
from sweeps.study.question import question, record_question
from sweeps.study.seeding import configs, enqueue, inside, warm_start
from sweeps.study.storages import storage_for


@pytest.fixture
def setup(compose_cfg, tmp_path, monkeypatch):
    """A source study 'old' of 6 complete trials over the default space, in tmp_path's journal."""
    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg(f"sweep.storage={tmp_path / 'o.journal'}", "sweep.study_name=old")
    storage = storage_for(str(tmp_path / "o.journal"))
    return cfg, storage, source_study(cfg, storage, 6, 0, lambda values: values["train.learning_rate"])


def source_study(cfg, storage, n: int, seed: int, value) -> optuna.Study:
    """A warm start's source: n trials of cfg's space sampled at random, value(params) each, and
    its question recorded."""
    space = parse_space(cfg.search_space)
    study = optuna.create_study(study_name=cfg.sweep.study_name, storage=storage.open(),
                                sampler=optuna.samplers.RandomSampler(seed))
    record_question(study, question(cfg, space))
    for _ in range(n):
        trial = study.ask()
        study.tell(trial, value(space.sample(trial, cfg)))
    return study


def test_warm_start_takes_the_trials_inside_the_new_space_and_says_why_it_skips_the_rest(setup, compose_cfg,
                                                                                       tmp_path):
    cfg, storage, old = setup
    new_cfg = compose_cfg(f"sweep.storage={tmp_path / 'o.journal'}", "sweep.study_name=new",
                          "search_space.train.learning_rate.high=0.5")
    space = parse_space(new_cfg.search_space)
    new = optuna.create_study(study_name="new", storage=storage.open())
    said = warm_start(new, "old", new_cfg, space, question(new_cfg, space))
    inside_old = [t for t in old.trials if t.params["train.learning_rate"] <= 0.5]
    assert len(new.trials) == len(inside_old) and 0 < len(inside_old) < 6
    assert f"took {len(inside_old)} of its 6 complete trials" in said
    assert f"skipped {6 - len(inside_old)} because its train.learning_rate lies outside the space" in said
    assert {t.user_attrs["warm_start_from"] for t in new.trials} == {f"old:{t.number}" for t in inside_old}
    assert sorted(t.value for t in new.trials) == sorted(t.value for t in inside_old)


def test_warm_start_from_another_question_takes_nothing(setup, compose_cfg, tmp_path):
    _, storage, _ = setup
    moons = compose_cfg("dataset=moons", "sweep.study_name=new")
    space = parse_space(moons.search_space)
    new = optuna.create_study(study_name="new", storage=storage.open())
    said = warm_start(new, {"study": "old", "storage": str(tmp_path / "o.journal")}, moons, space,
                      question(moons, space))
    assert "took none" in said and "dataset.name: flower -> moons" in said and not new.trials
    with pytest.raises(ConfigError, match="'missing', which is not in"):
        warm_start(new, "missing", moons, space, question(moons, space))


def test_enqueue_queues_known_configs_once_and_refuses_values_outside_the_space(setup):
    cfg, storage, old = setup
    space = parse_space(cfg.search_space)
    wanted = [{"train.learning_rate": 0.5, "model.depth": 2}, {"train.learning_rate": 0.5, "model.depth": 2},
              {k: old.trials[0].params[k] for k in ("train.learning_rate", "model.units")}]  # one is in the study
    assert enqueue(old, wanted, space, storage) == \
        "queued 1 of the 3 configurations of sweep.enqueue (2 in the study already)"
    assert enqueue(old, wanted[:1], space, storage).startswith("queued 0")
    trial = old.ask()
    values = space.sample(trial, cfg)  # the queued config runs first; the rest is sampled
    assert values["train.learning_rate"] == 0.5 and values["model.depth"] == 2
    old.tell(trial, state=optuna.trial.TrialState.FAIL)  # it fails, and its retry is queued
    requeue(old, trial.params, trial.number)
    assert enqueue(old, wanted[:1], space, storage).startswith("queued 0")  # the retry holds it
    with pytest.raises(ConfigError, match="train.learning_rate=5.0, which lies outside"):
        configs([{"train.learning_rate": 5.0}], space)
    with pytest.raises(ConfigError, match="'train.l2' is not sampled"):
        configs([{"train.l2": 0.1}], space)
    with pytest.raises(ConfigError, match="list of param mappings"):
        configs(["train.learning_rate=0.5"], space)
    with pytest.raises(ConfigError, match="cannot be read"):
        configs("missing.yaml", space)


def test_inside_follows_bounds_steps_and_choices():
    space = parse_space({"a": {"type": "int", "low": 1000, "high": 8000, "step": 1000},
                         "b": {"type": "categorical", "choices": ["x", "y"]}})
    assert inside(space.entries["a"], 3000) and not inside(space.entries["a"], 3500)
    assert inside(space.entries["b"], "y") and not inside(space.entries["b"], "z")


def test_warm_start_places_conditional_and_per_layer_params_by_the_new_space(compose_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = compose_cfg("search_space=optimizers", "search_space.model.units.per_layer=true", "sweep.study_name=src")
    storage = storage_for(str(tmp_path / "o.journal"))
    source_study(src, storage, 20, 1, lambda values: values["train.iterations"] / 1e4)
    # adam's range narrowed, widths capped at 8: only trials inside the new variants and widths are taken
    new_cfg = compose_cfg("search_space=optimizers", "search_space.model.units.per_layer=true",
                          "search_space.model.units.high=8", "sweep.study_name=dst",
                          "search_space.train.learning_rate.1.high=0.01")
    new_space = parse_space(new_cfg.search_space)
    new = optuna.create_study(study_name="dst", storage=storage.open())
    said = warm_start(new, {"study": "src", "storage": str(tmp_path / "o.journal")}, new_cfg, new_space,
                      question(new_cfg, new_space))
    for t in new.trials:
        lr, opt = t.params["train.learning_rate"], t.params["train.optimizer"]
        assert (lr <= 0.01) if opt == "adam" else (0.1 <= lr <= 2.0)
        assert t.distributions["train.learning_rate"].high == (0.01 if opt == "adam" else 2.0)
        assert ("train.optimizers.momentum.beta" in t.params) == (opt == "momentum")
        assert all(t.params[f"model.units_l{i}"] <= 8 for i in range(1, t.params["model.depth"] + 1))
    assert "lies outside the space" in said and "Traceback" not in said


def test_warm_start_of_several_metrics_copies_every_value_and_constraint(compose_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    two = ("sweep.metric=[val_cost,n_params]", "sweep.constraints=['n_params <= 30']",
           f"sweep.storage={tmp_path / 'm.journal'}")
    cfg = compose_cfg(*two, "sweep.study_name=src")
    space = parse_space(cfg.search_space)
    storage = storage_for(str(tmp_path / "m.journal"))
    src = optuna.create_study(study_name="src", storage=storage.open(), directions=["minimize", "minimize"],
                              sampler=optuna.samplers.RandomSampler(0))
    record_question(src, question(cfg, space))
    for _ in range(4):
        trial = src.ask()
        values = space.sample(trial, cfg)
        trial.set_constraint("n_params <= 30", values["model.depth"] - 2.0)
        src.tell(trial, [values["train.learning_rate"], float(values["model.depth"])])
    new_cfg = compose_cfg(*two, "sweep.study_name=new")
    new = optuna.create_study(study_name="new", storage=storage.open(), directions=["minimize", "minimize"])
    said = warm_start(new, "src", new_cfg, space, question(new_cfg, space))
    assert "took 4 of its 4 complete trials" in said
    assert [(t.values, t.constraints) for t in new.trials] == [(t.values, t.constraints) for t in src.trials]
    assert {t.number for t in new.best_trials} == {t.number for t in src.best_trials}  # the same front
    single = optuna.create_study(study_name="single", storage=storage.open())
    one = compose_cfg("sweep.study_name=single", f"sweep.storage={tmp_path / 'm.journal'}")
    said = warm_start(single, "src", one, space, question(one, space))
    assert "took none of its trials, since it answers another question" in said and not single.trials
