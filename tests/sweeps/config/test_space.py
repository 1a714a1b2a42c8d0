"""sweeps.space: both entry forms, validation, sampling with real Optuna studies, apply() and grid()."""

import itertools
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from sweeps.config.schema import Config, structured
from sweeps.config.space import parse_space
from sweeps.errors import ConfigError

CONF = Path(__file__).resolve().parents[3] / "conf"
optuna.logging.set_verbosity(optuna.logging.WARNING)


def entry(spec):
    return parse_space({"x.y": spec}).entries["x.y"]


@pytest.fixture
def cfg():
    """The schema's defaults, typed and in struct mode like a composed config."""
    return OmegaConf.merge(structured(Config), {"dataset": {"name": "flower", "kwargs": {"n_samples": 400}}})


# ---- the plugin's strings give the same distributions as the structured form ----------------
PAIRS = [
    ("interval(0.001, 2.0)", {"type": "float", "low": 0.001, "high": 2.0}, FloatDistribution(0.001, 2.0)),
    ("interval(1, 4)", {"type": "float", "low": 1, "high": 4}, FloatDistribution(1.0, 4.0)),
    ("tag(log, interval(0.001, 2.0))", {"type": "float", "low": 0.001, "high": 2.0, "log": True},
     FloatDistribution(0.001, 2.0, log=True)),
    ("int(interval(1, 4))", {"type": "int", "low": 1, "high": 4}, IntDistribution(1, 4)),
    ("int(tag(log, interval(2, 64)))", {"type": "int", "low": 2, "high": 64, "log": True},
     IntDistribution(2, 64, log=True)),
    ("tag(log, int(interval(2, 64)))", {"type": "int", "low": 2, "high": 64, "log": True},
     IntDistribution(2, 64, log=True)),
    ("range(500, 10000, step=500)", {"type": "int", "low": 500, "high": 10000, "step": 500},
     IntDistribution(500, 10000, step=500)),
    ("range(1, 5)", {"type": "int", "low": 1, "high": 5}, IntDistribution(1, 5)),
    ("range(0.1, 1.0, step=0.1)", {"type": "float", "low": 0.1, "high": 1.0, "step": 0.1},
     FloatDistribution(0.1, 1.0, step=0.1)),
    ("choice(tanh, relu)", {"type": "categorical", "choices": ["tanh", "relu"]},
     CategoricalDistribution(["tanh", "relu"])),
    ("tanh,relu", {"type": "categorical", "choices": ["tanh", "relu"]}, CategoricalDistribution(["tanh", "relu"])),
    ("choice(1, 2.5, true, abc)", {"type": "categorical", "choices": [1, 2.5, True, "abc"]},
     CategoricalDistribution([1, 2.5, True, "abc"])),
]


@pytest.mark.parametrize("text, spec, expected", PAIRS, ids=[p[0] for p in PAIRS])
def test_plugin_strings_equal_structured_form(text, spec, expected):
    assert entry(text) == entry(spec) == expected


def test_choice_values_are_typed_like_hydra_overrides():
    assert [type(c) for c in entry("choice(1, 2.5, true, abc)").choices] == [int, float, bool, str]


def test_shipped_string_space_equals_the_default_space():
    default = parse_space(OmegaConf.load(CONF / "search_space/default.yaml"))
    strings = parse_space(OmegaConf.load(CONF / "search_space/hydra_strings.yaml"))
    assert strings.entries == default.entries and default.entries


def test_the_benchmarked_plugin_sweeps_the_shipped_string_space():
    """bench-sweep's section 3 gives Hydra's Optuna sweeper the same space as ours."""
    plugin = OmegaConf.load(CONF.parent / "benchmarks/hydra_sweeper/conf/config.yaml").hydra.sweeper.params
    ours = OmegaConf.load(CONF / "search_space/hydra_strings.yaml")
    assert OmegaConf.to_container(plugin) == OmegaConf.to_container(ours)


def test_dotted_and_nested_paths_are_the_same_entry():
    spec = {"type": "int", "low": 1, "high": 3}
    assert parse_space({"model.depth": spec}).entries == parse_space({"model": {"depth": spec}}).entries
    with pytest.raises(ConfigError, match="model.depth.*twice"):
        parse_space({"model.depth": spec, "model": {"depth": spec}})


# ---- validation -----------------------------------------------------------------------------
BAD = [
    ({"type": "float", "low": 2.0, "high": 1.0}, ["low=2.0", "high=1.0"]),
    ({"type": "int", "low": 3, "high": 3}, ["low=3", "high=3"]),
    ("interval(2, 1)", ["low=2.0"]),
    ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, ["low=0.0", "log"]),
    ({"type": "int", "low": 0, "high": 8, "log": True}, ["low=0", "log"]),
    ({"type": "float", "low": 0.1, "high": 1.0, "step": 0.1, "log": True}, ["step=0.1", "log"]),
    ({"type": "int", "low": 1.5, "high": 3}, ["low=1.5", "integer"]),
    ({"type": "int", "low": 1, "high": 9, "step": 0}, ["step=0"]),
    ({"type": "categorical", "choices": []}, ["choices=[]", "non-empty"]),
    ({"type": "categorical"}, ["choices=None"]),
    ({"type": "categorical", "choices": [[1, 2]]}, ["[1, 2]"]),
    ({"type": "normal", "low": 0, "high": 1}, ["'normal'", "categorical, float, int"]),
    ({"type": "float", "low": 0, "high": 1, "scale": "log"}, ["scale", "high, log, low, step, type"]),
    ({"type": "int", "low": 1, "high": 3, "per_layer": True}, ["per_layer"]),
    ("interval(0.1", ["'interval(0.1'", "does not parse", "interval(lo, hi)", "choice(a, b, ...)"]),
    ("normal(0, 1)", ["'normal(0, 1)'", "does not parse"]),
    ("tanh", ["'tanh'", "single value", "range(start, stop, step=s)"]),
    ("tag(log, range(1, 10))", ["tag log"]),
    ("shuffle(interval(0, 1))", ["does not parse"]),  # Hydra shuffles only a choice or a range
    (0.5, ["0.5", "mapping"]),
]


@pytest.mark.parametrize("spec, expected", BAD, ids=[str(s) for s, _ in BAD])
def test_parse_space_refuses_bad_entries_naming_entry_and_value(spec, expected):
    with pytest.raises(ConfigError) as info:
        entry(spec)
    message = str(info.value)
    for part in ["'x.y'", *expected]:
        assert part in message, f"{part!r} not in {message!r}"


def test_per_layer_units_need_depth_in_the_space_and_cannot_be_named_directly():
    with pytest.raises(ConfigError, match="model.depth"):
        parse_space({"model.units": {"type": "int", "low": 2, "high": 8, "per_layer": True}})
    with pytest.raises(ConfigError, match="model.units_l1.*cannot be sampled directly"):
        parse_space({"model.units_l1": "int(interval(2, 8))"})
    with pytest.raises(ConfigError, match="per_layer=.yes."):
        parse_space({"model.units": {"type": "int", "low": 2, "high": 8, "per_layer": "yes"}})


# ---- sampling with real studies -------------------------------------------------------------
def test_per_layer_units_sample_one_width_per_layer_of_the_trial(cfg):
    space = parse_space({
        "train.learning_rate": "tag(log, interval(0.01, 2.0))",
        "model.depth": {"type": "int", "low": 1, "high": 3},
        "model.units": {"type": "int", "low": 2, "high": 32, "log": True, "per_layer": True},
    })
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    depths = set()
    for _ in range(25):
        trial = study.ask()
        values = space.sample(trial)
        depth = values["model.depth"]
        depths.add(depth)
        layers = {f"model.units_l{i}" for i in range(1, depth + 1)}
        assert set(trial.params) == {"train.learning_rate", "model.depth"} | layers
        assert values["model.hidden_units"] == [values[k] for k in sorted(layers)]
        assert len(values["model.hidden_units"]) == depth and "model.units" not in values
        applied = space.apply(cfg, values)
        assert applied.model.hidden_units == values["model.hidden_units"]
        assert (applied.model.depth, applied.model.units) == (depth, None)
        assert space.apply(applied, {}).model.hidden_units == applied.model.hidden_units  # idempotent
        study.tell(trial, 0.0)
    assert depths == {1, 2, 3}


def test_shared_units_give_every_layer_the_same_width(cfg):
    space = parse_space(OmegaConf.load(CONF / "search_space/default.yaml"))
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=3))
    for _ in range(8):
        trial = study.ask()
        values = space.sample(trial)
        assert set(trial.params) == set(space.entries)
        assert values["model.hidden_units"] == [values["model.units"]] * values["model.depth"]
        applied = space.apply(cfg, values)
        assert applied.model.hidden_units == values["model.hidden_units"]
        assert applied.model.activation == values["model.activation"]
        study.tell(trial, values["train.learning_rate"])


def test_units_without_depth_keep_the_configured_number_of_layers(cfg):
    space = parse_space({"model.units": "choice(8, 16)"})
    trial = optuna.create_study().ask()
    values = space.sample(trial)
    assert "model.hidden_units" not in values and set(trial.params) == {"model.units"}
    cfg.model.hidden_units = [4, 4, 4]
    assert space.apply(cfg, values).model.hidden_units == [values["model.units"]] * 3


# ---- apply ----------------------------------------------------------------------------------
def test_apply_sets_values_on_a_resolved_copy_and_leaves_the_input_alone(cfg, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = OmegaConf.to_container(cfg)
    out = parse_space({}).apply(cfg, {"train.learning_rate": 0.05, "model.depth": 2, "model.units": 6,
                                      "dataset.kwargs.n_samples": 200})
    assert OmegaConf.to_container(cfg) == before and cfg.train.learning_rate == 1.2
    assert out is not cfg and out.train.learning_rate == 0.05 and out.dataset.kwargs.n_samples == 200
    assert out.model.hidden_units == [6, 6]
    assert out.tracking.uri == "sqlite:///mlflow.db"  # interpolation resolved in the copy...
    assert OmegaConf.to_container(cfg)["tracking"]["uri"].startswith("${oc.env:")  # ...not in the input
    assert OmegaConf.get_type(out) is dict  # plain, not the schema's dataclass
    with pytest.raises(Exception):
        out.train.learnig_rate = 1.0  # struct mode: typos still fail
    with pytest.raises(ConfigError, match="train.learnig_rate"):
        parse_space({}).apply(cfg, {"train.learnig_rate": 0.1})


# ---- grid -----------------------------------------------------------------------------------
def test_grid_expands_discrete_entries_and_drives_a_grid_sampler():
    space = parse_space({
        "train.learning_rate": "range(0.1, 0.6, step=0.1)",  # a grid stops before the stop, as Hydra's range
        "train.iterations": "range(1000, 4000, step=1000)",
        "model.activation": "tanh,relu",
    })
    grid = space.grid()
    assert grid == {"train.learning_rate": [0.1, 0.2, 0.3, 0.4, 0.5],
                    "train.iterations": [1000, 2000, 3000], "model.activation": ["tanh", "relu"]}
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=0))
    seen = set()
    study.optimize(lambda t: seen.add(tuple(space.sample(t).values())) or 0.0, n_trials=30)
    assert seen == set(itertools.product(*grid.values()))


def test_a_grid_over_range_stops_before_its_stop_as_hydra_range_does():
    """The plugin's grid and Hydra's range take start, start + step, ... < stop; sampled, the
    range is the plugin's Optuna distribution, whose high is the stop."""
    space = parse_space({"train.learning_rate": "range(0, 1, step=0.25)", "train.iterations": "range(1, 5)",
                         "model.units": {"type": "int", "low": 1, "high": 5}, "model.depth": "int(interval(1, 4))",
                         "train.l2": "range(0.1, 0.5, step=0.1)"})
    assert space.grid() == {"train.learning_rate": [0.0, 0.25, 0.5, 0.75], "train.iterations": [1, 2, 3, 4],
                            "model.units": [1, 2, 3, 4, 5], "model.depth": [1, 2, 3, 4],
                            "train.l2": [0.1, 0.2, 0.3, 0.4]}
    assert space.entries["train.learning_rate"] == FloatDistribution(0.0, 1.0, step=0.25)
    assert space.entries["train.iterations"] == IntDistribution(1, 5)


@pytest.mark.parametrize("text, choices", [
    ("shuffle(range(0, 1, step=0.25))", [0.0, 0.25, 0.5, 0.75]),
    ("shuffle(range(1, 5))", [1, 2, 3, 4]),
    ("shuffle(range(0.1, 0.5, step=0.1))", [0.1, 0.2, 0.3, 0.4]),
    ("shuffle(choice(tanh, relu))", ["tanh", "relu"]),
    ("shuffle(tanh, relu)", ["tanh", "relu"]),
])
def test_shuffle_is_a_choice_of_the_values_hydra_would_sweep(text, choices):
    """As in the plugin: a categorical over the sweep's values (a range's without its stop); a
    distribution has no order to shuffle, so the values keep the order written."""
    assert entry(text) == CategoricalDistribution(choices)


def test_grid_refuses_continuous_and_per_layer_entries():
    with pytest.raises(ConfigError, match="'train.learning_rate'.*continuous.*step"):
        parse_space({"train.learning_rate": "interval(0.1, 1.0)"}).grid()
    with pytest.raises(ConfigError, match="per_layer"):
        parse_space({"model.depth": "choice(1, 2)",
                     "model.units": {"type": "int", "low": 2, "high": 4, "per_layer": True}}).grid()


# ---- conditional entries (`when`) -------------------------------------------------------------
BETA = "train.optimizers.momentum.beta"  # momentum's hyperparameter
OPTIMIZERS = {"train.optimizer": {"type": "categorical", "choices": ["gd", "momentum", "adam"]},
              "train.learning_rate": [
                  {"type": "float", "low": 0.1, "high": 2.0, "log": True, "when": {"train.optimizer": ["gd", "momentum"]}},
                  {"type": "float", "low": 0.001, "high": 0.1, "log": True, "when": {"train.optimizer": "adam"}}],
              BETA: {"type": "float", "low": 0.5, "high": 0.99, "when": {"train.optimizer": "momentum"}}}


def test_a_conditional_entry_is_sampled_only_when_its_condition_holds(cfg):
    space = parse_space(OPTIMIZERS)
    assert set(space.entries) == {"train.optimizer"} and list(space.conditional) == ["train.learning_rate",
                                                                                       BETA]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        values = space.sample(trial, cfg)
        opt = values["train.optimizer"]
        seen.add(opt)
        assert (BETA in values) == (opt == "momentum") == (BETA in trial.params)
        assert (0.001 <= values["train.learning_rate"] <= 0.1) if opt == "adam" else \
            (0.1 <= values["train.learning_rate"] <= 2.0)
        study.tell(trial, 0.0)
        beta = space.apply(cfg, values).train.optimizers.momentum.beta
        assert beta == values.get(BETA, 0.9)  # unsampled: the config's
    assert seen == {"gd", "momentum", "adam"}


def test_a_condition_on_a_fixed_value_reads_the_config(cfg):
    space = parse_space({BETA: {"type": "float", "low": 0.5, "high": 0.99,
                                        "when": {"train.optimizer": "momentum"}}})
    trial = optuna.create_study().ask()
    assert space.sample(trial, cfg) == {}  # train.optimizer is gd
    cfg.train.optimizer = "momentum"
    assert set(space.sample(optuna.create_study().ask(), cfg)) == {BETA}


@pytest.mark.parametrize("spec, words", [
    ({BETA: {"type": "float", "low": 0.5, "high": 0.9, "when": {"train.optimiser": "momentum"}}},
     [f"'{BETA}'", "'train.optimiser'", "not a path of the config"]),
    ({BETA: {"type": "float", "low": 0.5, "high": 0.9, "when": {"train.optimizer": "nesterov"}}},
     [f"'{BETA}'", "train.optimizer='nesterov'", "adam, gd, momentum"]),
    ({**OPTIMIZERS, BETA: {"type": "float", "low": 0.5, "high": 0.9, "when": {"train.optimizer": "sgd"}}},
     [f"'{BETA}'", "train.optimizer='sgd'", "can never hold"]),
    ({"model.depth": {"type": "int", "low": 1, "high": 3, "when": {"train.optimizer": "gd"}}},
     ["'model.depth'", "cannot be conditional"]),
    ({BETA: {"type": "float", "low": 0.5, "high": 0.9, "when": "momentum"}}, [f"'{BETA}'", "when="]),
])
def test_a_condition_on_an_unknown_path_or_an_impossible_value_is_refused(cfg, spec, words):
    from sweeps.config.space import check_space

    cfg.search_space = spec
    with pytest.raises(ConfigError) as err:
        check_space(cfg)
    assert all(w in str(err.value) for w in words), str(err.value)


PER_LAYER = {"model.depth": {"type": "int", "low": 1, "high": 3},
             "model.units": {"type": "int", "low": 2, "high": 8, "per_layer": True}}


def lr_when(condition):
    return {"train.learning_rate": {"type": "float", "low": 0.1, "high": 1.0, "when": condition}}


@pytest.mark.parametrize("spec, words", [
    ({"model.depth": {"type": "int", "low": 1, "high": 3}, **lr_when({"model.depth": 7})},
     ["'train.learning_rate'", "model.depth=7", "'model.depth'", "int in [1, 3]", "can never hold"]),
    ({"train.iterations": "range(1000, 3000, step=1000)", **lr_when({"train.iterations": 1500})},
     ["'train.learning_rate'", "train.iterations=1500", "int in [1000, 3000], step 1000", "can never hold"]),
    ({"train.l2": {"type": "float", "low": 0.0, "high": 0.1}, **lr_when({"train.l2": 0.05})},
     ["'train.learning_rate'", "train.l2=0.05", "float in [0.0, 0.1]", "exact value"]),
    (lr_when({"train.optimizer": "momentum"}),
     ["'train.learning_rate'", "train.optimizer='momentum'", "not sampled", "fixes it at 'gd'", "can never hold"]),
    (lr_when({"train.optimizer": ["momentum", "adam"]}),
     ["'train.learning_rate'", "train.optimizer in ['momentum', 'adam']", "fixes it at 'gd'"]),
    ({**PER_LAYER, **lr_when({"model.units": 4})},
     ["'train.learning_rate'", "'model.units'", "per layer", "model.depth", "can be conditioned on"]),
    ({**PER_LAYER, **lr_when({"model.units_l1": 4})}, ["'model.units_l1'", "per layer", "model.depth"]),
    (lr_when({"model.hidden_units": 4}), ["'model.hidden_units'", "model.depth"]),
])
def test_a_condition_that_can_never_hold_is_refused_naming_what_its_parameter_takes(cfg, spec, words):
    """Accepted, each left its entry unsampled in every trial, silently."""
    from sweeps.config.space import check_space

    cfg.search_space = spec
    with pytest.raises(ConfigError) as err:
        check_space(cfg)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_a_condition_that_can_hold_is_accepted_whichever_variant_gives_the_value(cfg):
    """A conditional parameter takes the values of all its variants, not only of its first."""
    from sweeps.config.space import check_space

    cfg.search_space = {
        "train.optimizer": {"type": "categorical", "choices": ["gd", "adam"]},
        "model.activation": [{"type": "categorical", "choices": ["tanh"], "when": {"train.optimizer": "gd"}},
                             {"type": "categorical", "choices": ["relu"], "when": {"train.optimizer": "adam"}}],
        "train.l2": {"type": "float", "low": 0.0, "high": 0.1, "when": {"model.activation": "relu"}},
        "model.depth": "range(1, 4)",
        "train.iterations": {"type": "int", "low": 100, "high": 300, "step": 100, "when": {"model.depth": 3}},
        BETA: {"type": "float", "low": 0.5, "high": 0.9, "when": {"dataset.name": ["moons", "flower"]}},
    }
    space = check_space(cfg)
    assert list(space.conditional) == ["model.activation", "train.l2", "train.iterations", BETA]


def test_a_grid_cannot_enumerate_conditional_entries():
    with pytest.raises(ConfigError, match="has `when`"):
        parse_space(OPTIMIZERS).grid()


def test_the_shipped_optimizers_space_checks_against_the_config(cfg):
    from sweeps.config.space import check_space

    cfg.search_space = OmegaConf.load(CONF / "search_space/optimizers.yaml")
    space = check_space(cfg)
    assert BETA in space.conditional and len(space.conditional["train.learning_rate"]) == 2
