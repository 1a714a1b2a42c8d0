"""sweeps.config.overrides: the override at fault, in one sentence with the closest known name."""

import pytest

from sweeps.config.overrides import explain, groups, options


@pytest.mark.parametrize("override, words", [
    ("dataset=moon", ["dataset=moon", "moons, wine", "(did you mean 'moons'?)"]),
    ("+experiment=course", ["experiment=course", "course_hidden_units"]),
    ("model.actvation=relu", ["model.actvation", "(did you mean 'model.activation'?)"]),
    ("sweep.n_trials=ten", ["sweep.n_trials=ten is not an integer"]),
    ("train.learning_rate=fast", ["train.learning_rate=fast is not a number"]),
    # an earlier version's flat optimiser keys: the new path, in the override that would work
    ("train.beta=0.95", ["train.beta is now train.optimizers.momentum.beta", "train.optimizers.momentum.beta=0.95"]),
    ("train.eps=1e-7", ["train.optimizers.adam.eps=1e-7"]),
    ("sweep.constraints=[n_params<=2000]", ["sweep.constraints=[n_params<=2000]", "quote each constraint"]),
])
def test_the_override_at_fault_is_named(override, words):
    text = explain(["sweep.n_jobs=1", override], RuntimeError("hydra's words"))
    assert all(w in text for w in words), text


def test_without_a_culprit_hydras_message_is_kept_on_one_line():
    err = RuntimeError("Could not override 'x'.\nTo append to your config use +x=1")
    assert explain(["search_space.x=1"], err) == (
        "the overrides do not compose: Could not override 'x'. To append to your config use +x=1.")


def test_the_groups_and_their_options_come_from_conf():
    assert {"dataset", "search_space", "train"} <= set(groups())
    assert "optimizers" in options("search_space") and "moons" in options("dataset")


@pytest.mark.parametrize("override", ["search_space.model.activation=choice(tanh, relu)",
                                      "+search_space.model.depth=range(1, 4)",
                                      "search_space.train.learning_rate=interval(0.01, 1)"])
def test_a_search_space_string_read_as_hydras_sweep_gets_the_quoted_form(override):
    """Before, Hydra's "requires --multirun" sent users the wrong way."""
    key, value = override.lstrip("+").split("=", 1)
    text = explain([override], RuntimeError("Sweep parameters ... requires --multirun"))
    assert f"'{key}=\"{value}\"'" in text and "multirun" not in text, text


def test_a_quoted_search_space_string_is_no_culprit():
    err = RuntimeError("something else")
    assert explain(['search_space.model.activation="choice(tanh, relu)"'], err).startswith("the overrides do not")
