"""sweeps.study.question: what a study answers, and a study asked another question refused."""

import optuna
import pytest

from sweeps.config.space import parse_space
from sweeps.errors import ConfigError
from sweeps.study.question import check_question, differences, question, record_question


def test_the_question_holds_the_data_metric_space_and_fixed_settings_but_not_the_budget(compose_cfg):
    cfg = compose_cfg()
    space = parse_space(cfg.search_space)
    q = question(cfg, space)
    assert q["dataset.name"] == "flower" and q["sweep.metric"] == "val_cost" and q["sweep.direction"] == "minimize"
    assert q["search_space.train.learning_rate"] == "float in [0.1, 2.0], log"
    assert "train.learning_rate" not in q and "model.hidden_units" not in q  # sampled: the space says how
    assert q["train.optimizer"] == "gd" and "train.report_every" not in q
    assert not any(k.startswith(("sweep.n_", "sweep.timeout", "tracking.", "sweep.sampler")) for k in q)
    resumed = compose_cfg("sweep.n_trials=99", "sweep.n_jobs=1", "sweep.timeout=5", "tracking.curve_points=10",
                          "sweep.sampler=random")
    assert question(resumed, parse_space(resumed.search_space)) == q


def test_train_adam_searches_adams_learning_rates(compose_cfg):
    cfg = compose_cfg("train=adam")
    assert question(cfg, parse_space(cfg.search_space))["search_space.train.learning_rate"] == \
        "float in [0.001, 0.1], log"


def test_another_question_is_refused_naming_each_difference(compose_cfg):
    study = optuna.create_study(study_name="flower")
    cfg = compose_cfg()
    asked = question(cfg, parse_space(cfg.search_space))
    assert check_question(study, asked, "here") is True  # nothing recorded yet
    record_question(study, asked)
    assert check_question(study, asked, "here") is False
    other = compose_cfg("dataset=moons", "search_space.train.learning_rate.high=0.5", "sweep.metric=val_accuracy")
    with pytest.raises(ConfigError) as err:
        check_question(study, question(other, parse_space(other.search_space)), "here")
    text = str(err.value)
    for words in ("dataset.name: flower -> moons", "sweep.metric: val_cost -> val_accuracy",
                  "sweep.direction: minimize -> maximize", "float in [0.1, 2.0], log -> float in [0.1, 0.5], log",
                  "sweep.study_name=NEW_NAME", "sweep.warm_start=flower"):
        assert words in text, text


def test_differences_say_none_for_a_missing_key():
    assert differences({"a": "1"}, {"a": "1", "b": "2"}) == ["b: (none) -> 2"]


def test_what_cannot_change_a_training_is_not_asked_and_what_can_is(compose_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("x1,x2,y\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(30)))

    def asked(*overrides):
        cfg = compose_cfg(*overrides)
        return question(cfg, parse_space(cfg.search_space))

    assert asked("train.optimizers.adam.beta1=0.5") == asked()  # gd takes no beta1
    assert asked("train=adam", "train.optimizers.adam.beta1=0.5") != asked("train=adam")
    csv = ("dataset=csv", "dataset.kwargs.label=y")
    assert asked(*csv, "dataset.kwargs.path=d.csv") == asked(*csv, f"dataset.kwargs.path={tmp_path / 'd.csv'}")
    # a conditional entry's fixed value trains the trials whose condition fails: it is asked
    opt = ("search_space=optimizers", "+search_space.train.l2={type:float,low:0.0,high:0.1,when:{train.optimizer:adam}}")
    assert asked(*opt, "train.l2=0.5") != asked(*opt)
    assert "train.learning_rate_range" not in asked("train=adam")  # it reaches the question through the space


def test_a_study_recorded_without_a_digest_takes_one_and_then_checks_it(compose_cfg):
    study = optuna.create_study(study_name="flower")
    cfg = compose_cfg()
    space = parse_space(cfg.search_space)
    record_question(study, question(cfg, space))  # as recorded before questions held the data's digest
    asked = question(cfg, space, digest="training 1, validation 2")
    assert check_question(study, asked, "here") is True  # not refused: recorded again, with the digest
    record_question(study, asked)
    assert check_question(study, asked, "here") is False
    with pytest.raises(ConfigError, match="dataset.digest: training 1, validation 2 -> training 1, validation 3"):
        check_question(study, question(cfg, space, digest="training 1, validation 3"), "here")


def test_several_metrics_and_constraints_are_part_of_the_question(compose_cfg):
    def asked(*overrides):
        cfg = compose_cfg(*overrides)
        return question(cfg, parse_space(cfg.search_space))

    one = asked()
    assert "sweep.constraints" not in one  # none: the question of a study made before constraints existed
    assert asked("sweep.metric=[val_cost]") == one  # one metric in a list is that metric
    two = asked("sweep.metric=[val_cost,n_params]")
    assert two["sweep.metric"] == "[val_cost, n_params]" and two["sweep.direction"] == "[minimize, minimize]"
    bounded = asked("sweep.constraints=['n_params<=2000']")
    assert bounded["sweep.constraints"] == "n_params <= 2000"
    assert differences(one, bounded) == ["sweep.constraints: (none) -> n_params <= 2000"]
    both = asked("sweep.constraints=['n_params <= 2000', 'fit_seconds < 0.5']")
    assert both["sweep.constraints"] == "[fit_seconds < 0.5, n_params <= 2000]"
    assert asked("sweep.constraints=['fit_seconds<0.5', 'n_params <= 2e3']") == both  # the same, written otherwise
    assert asked("sweep.metric=[val_cost,n_params]", "sweep.sampler=random") == two  # the sampler may change


def test_a_question_recorded_before_test_splits_and_repeats_had_neither():
    old = {"dataset.name": "flower"}  # recorded before the question named them
    assert differences(old, {**old, "dataset.test_fraction": "0.0", "sweep.repeats": "1"}) == []
    assert differences(old, {**old, "dataset.test_fraction": "0.2", "sweep.repeats": "3"}) == [
        "dataset.test_fraction: 0.0 -> 0.2", "sweep.repeats: 1 -> 3"]
