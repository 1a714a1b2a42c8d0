"""conf/ composed by real Hydra on top of the schema in sweeps.config, and validate()'s checks."""

import dataclasses
import importlib.util
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from nncore import DATASETS
from sweeps.config.checks import flatten, resolve_direction, resolve_hidden_units, settings
from sweeps.config.schema import TrainConfig, register_configs
from sweeps.config.space import parse_space
from sweeps.errors import ConfigError
from sweeps.runner.checks import validate

CONF = Path(__file__).resolve().parents[3] / "conf"


@pytest.fixture(scope="module")
def make():
    """make(*overrides) -> the composed config, as `python -m sweeps <overrides>` would see it."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield lambda *overrides, **kw: compose(config_name="config", overrides=list(overrides), **kw)


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x1,x2,y\n0,1,a\n1,0,b\n")
    return path


def test_default_config_composes_and_validates(make):
    cfg = make()
    assert cfg.dataset.name == "flower" and cfg.dataset.kwargs == {"n_samples": 400}
    assert cfg.model.hidden_units == [4] and cfg.model.depth is None and cfg.model.units is None
    assert cfg.train.learning_rate == 1.2 and cfg.train.optimizers.adam.eps == 1e-8 and cfg.train.batch_size is None
    assert cfg.sweep.n_trials == 30 and cfg.sweep.sampler == "tpe" and cfg.sweep.storage is None
    assert cfg.seed == 0 and cfg.tracking.curve_points == 200
    validate(cfg)
    assert resolve_direction(cfg) == "minimize"
    assert set(parse_space(cfg.search_space).entries) == {
        "train.learning_rate", "train.iterations", "model.depth", "model.units", "model.activation", "model.init"}


def test_hydra_keeps_its_output_dir_but_not_the_working_directory(make):
    hydra_cfg = make(return_hydra_config=True).hydra
    assert hydra_cfg.job.chdir is False
    assert hydra_cfg.run.dir.startswith("outputs/")


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_option_composes(make, name, csv_file):
    extra = [f"dataset.kwargs.path={csv_file}", "dataset.kwargs.label=y"] if name == "csv" else []
    cfg = make(f"dataset={name}", *extra)
    assert cfg.dataset.name == name and cfg.dataset.val_fraction == 0.2
    validate(cfg)


def test_presets_and_space_options_compose(make):
    assert make("train=adam").train.optimizer == "adam"
    assert parse_space(make("search_space=none").search_space).entries == {}
    strings = parse_space(make("search_space=hydra_strings").search_space)
    assert strings.entries == parse_space(make().search_space).entries


def test_course_experiment_composes_and_its_grid_has_seven_points(make):
    cfg = make("+experiment=course_hidden_units")
    validate(cfg)
    assert (cfg.dataset.name, cfg.model.activation, cfg.model.depth) == ("flower", "tanh", 1)
    assert (cfg.train.learning_rate, cfg.train.iterations) == (1.2, 5000)
    assert (cfg.sweep.sampler, cfg.sweep.n_trials, cfg.sweep.pruner) == ("grid", 7, "none")
    assert resolve_direction(cfg) == "maximize"
    space = parse_space(cfg.search_space)
    grid = space.grid()
    assert grid == {"model.units": [1, 2, 3, 4, 5, 20, 50]}
    # A real grid study visits each width once, as a one-hidden-layer network.
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=0))
    seen = []
    study.optimize(lambda t: seen.append(list(space.apply(cfg, space.sample(t)).model.hidden_units)) or 0.0,
                   n_trials=cfg.sweep.n_trials)
    assert sorted(seen) == [[1], [2], [3], [4], [5], [20], [50]]


@pytest.mark.parametrize("override, key", [
    ("model.actvation=relu", "actvation"),
    ("train.learning_rate=abc", "learning_rate"),
    ("sweep.n_trials=many", "n_trials"),
    ("tracking.enabled=maybe", "enabled"),
    ("dataset=flwer", "flwer"),
])
def test_misspelt_keys_and_wrong_types_are_refused_at_composition(make, override, key):
    with pytest.raises(ConfigCompositionException) as info:
        make(override)
    message = f"{info.value} {info.value.__cause__}"
    assert key in message


BAD_VALUES = [
    # (overrides, substrings the message must contain: the field and the value)
    (["train.learning_rate=0"], ["train.learning_rate", "0.0", "> 0"]),
    (["train.learning_rate=-1.5"], ["train.learning_rate", "-1.5"]),
    (["train.iterations=0"], ["train.iterations", "0", ">= 1"]),
    (["model.hidden_units=[4,0]"], ["model.hidden_units", "[4, 0]"]),
    (["model.depth=0"], ["model.depth", "0"]),
    (["model.units=-2"], ["model.units", "-2"]),
    (["model.activation=swish"], ["model.activation", "'swish'", "leaky_relu, relu, sigmoid, tanh"]),
    (["model.output=linear"], ["model.output", "'linear'", "auto, sigmoid, softmax"]),
    (["model.init=zeros"], ["model.init", "'zeros'", "he, scaled, xavier"]),
    (["model.leaky_slope=1.5"], ["model.leaky_slope", "1.5"]),
    (["train.optimizer=sgd"], ["train.optimizer", "'sgd'", "adam, gd, momentum"]),
    (["train.optimizers.momentum.beta=1.5"], ["train.optimizers.momentum.beta", "1.5", "a number in [0, 1)"]),
    (["train.optimizers.adam.eps=0"], ["train.optimizers.adam.eps", "0.0", "a number > 0"]),
    # an earlier version's flat keys, in a search space: refused, naming the new path
    (["+search_space.train.beta={type:float,low:0.5,high:0.9}"],
     ["'train.beta'", "search_space.train.optimizers.momentum.beta"]),
    (["train.dtype=float16"], ["train.dtype", "'float16'", "float32, float64"]),
    (["train.batch_size=0"], ["train.batch_size", "0"]),
    (["train.l2=-0.1"], ["train.l2", "-0.1"]),
    (["train.report_every=0"], ["train.report_every", "0"]),
    (["sweep.sampler=bayes"], ["sweep.sampler", "'bayes'", "cmaes, gp, grid, nsgaii, nsgaiii, qmc, random, tpe"]),
    (["sweep.pruner=asha"], ["sweep.pruner", "'asha'", "hyperband, median, none, successive_halving"]),
    (["sweep.metric=accuracy"], ["sweep.metric", "'accuracy'", "val_accuracy, val_cost"]),
    (["sweep.direction=up"], ["sweep.direction", "'up'"]),
    (["dataset.name=mnist"], ["dataset.name", "'mnist'", "breast_cancer"]),
    (["dataset.val_fraction=1.0"], ["dataset.val_fraction", "1.0", "[0, 1)"]),
    (["dataset.val_fraction=-0.1"], ["dataset.val_fraction", "-0.1"]),
    (["dataset.test_fraction=0.8"], ["dataset.test_fraction", "0.8", "dataset.val_fraction", "0.2", "below 1"]),
    (["dataset.test_fraction=-0.2"], ["dataset.test_fraction", "-0.2", "[0, 1)"]),
    (["sweep.repeats=0"], ["sweep.repeats", "0", "an integer >= 1"]),
    (["sweep.confirm.top=-1"], ["sweep.confirm.top", "-1", "0: no confirmation"]),
    (["sweep.confirm.seeds=1"], ["sweep.confirm.seeds", "1", ">= 2"]),
    (["sweep.n_trials=0"], ["sweep.n_trials", "0"]),
    (["sweep.n_jobs=0"], ["sweep.n_jobs", "0", "-1"]),
    (["sweep.n_jobs=-2"], ["sweep.n_jobs", "-2"]),
    (["sweep.max_failures=0"], ["sweep.max_failures", "0"]),
    (["sweep.timeout=0"], ["sweep.timeout", "0.0"]),
    (["sweep.study_name=../escape"], ["sweep.study_name", "'../escape'"]),
    (["sweep.study_name=a/b"], ["sweep.study_name", "'a/b'"]),
    (["sweep.stop.patience=0"], ["sweep.stop.patience", "0", "null (off) or an integer >= 1"]),
    (["sweep.stop.min_delta=-0.1"], ["sweep.stop.min_delta", "-0.1", ">= 0"]),
    (["sweep.stop.target=nan"], ["sweep.stop.target", "nan", "finite number"]),
    (["tracking.experiment=''"], ["tracking.experiment", "''"]),
    (["tracking.decision_boundary=best"], ["tracking.decision_boundary", "'best'", "all, none, top"]),
    (["tracking.register_model='best net'"], ["tracking.register_model", "'best net'", "letters, digits"]),
    (["tracking.register_model=\"it's\""], ["tracking.register_model", "it's"]),  # would end a quoted filter
    (["dataset=csv"], ["dataset.kwargs.path", "csv"]),
    (["dataset=csv", "dataset.kwargs.path=/no/such/file.csv", "dataset.kwargs.label=y"],
     ["dataset.kwargs.path", "'/no/such/file.csv'"]),
    # the search space: paths must exist, values must be allowed at their path
    (["search_space.model.activation.choices=[tanh,swish]"], ["model.activation", "'swish'", "leaky_relu, relu"]),
    (["+search_space.model.actvation='choice(tanh, relu)'"], ["model.actvation", "names no field"]),
    (["+search_space.model.hidden_units='choice(4, 8)'"], ["model.hidden_units", "model.depth and model.units"]),
    (["+search_space.dataset.kwargs.nois='interval(0.1, 0.3)'"], ["dataset.kwargs.nois", "names no field"]),
    (["+search_space.sweep.n_trials='range(1, 5)'"], ["sweep.n_trials", "dataset, model and train"]),
    (["search_space.train.learning_rate.log=false", "search_space.train.learning_rate.low=-1"],
     ["train.learning_rate", "-1.0", "> 0"]),
    (["search_space.train.iterations='interval(1000, 5000)'"], ["train.iterations", "1000.0", "integer"]),
    (["search_space.model.units.low=0", "search_space.model.units.log=false"], ["model.units", "0", ">= 1"]),
    (["sweep.sampler=grid"], ["train.learning_rate", "continuous", "step"]),
]


@pytest.mark.parametrize("overrides, expected", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_validate_refuses_bad_values_naming_field_and_value(make, overrides, expected):
    cfg = make(*overrides)
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    message = str(info.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert message.count(". ") == 0 and message.endswith("."), "one sentence"


@pytest.mark.parametrize("sampler, package", [("cmaes", "cmaes"), ("qmc", "scipy")])
def test_samplers_needing_an_optional_package_are_checked(make, sampler, package):
    cfg = make(f"sweep.sampler={sampler}")
    if importlib.util.find_spec(package) is not None:
        validate(cfg)
    else:
        with pytest.raises(ConfigError, match=f"sweep.sampler is '{sampler}'.*{package} package"):
            validate(cfg)


def test_the_settings_are_frozen_parts_read_from_the_composed_config(make):
    cfg = settings(make("train=adam", "train.optimizers.adam.beta1=0.8"))
    assert cfg.train.optimizer == "adam" and cfg.train.optimizers.adam.beta1 == 0.8
    assert isinstance(cfg.train, TrainConfig) and cfg.sweep.sampler == "tpe"  # resolved
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.learning_rate = 9.0


def test_grid_sampler_is_accepted_for_a_discrete_space(make):
    validate(make("sweep.sampler=grid", "search_space=none",
                  "+search_space.model.units='choice(2, 4)'", "+search_space.train.iterations='range(1000, 2000, step=500)'"))


def test_flatten_gives_dotted_string_params(make, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    flat = flatten(make("model.hidden_units=[4,4]"))
    assert flat["model.hidden_units"] == "[4, 4]"
    assert flat["train.learning_rate"] == "1.2" and flat["sweep.n_trials"] == "30"
    assert flat["model.depth"] == "null" and flat["tracking.enabled"] == "true"
    assert flat["dataset.kwargs.n_samples"] == "400"
    assert flat["tracking.uri"] == "sqlite:///mlflow.db"
    assert all(isinstance(v, str) for v in flat.values())


def test_direction_comes_from_the_metric_unless_given(make):
    assert resolve_direction(make("sweep.metric=val_accuracy")) == "maximize"
    assert resolve_direction(make("sweep.metric=val_accuracy", "sweep.direction=minimize")) == "minimize"


@pytest.mark.parametrize("model, expected", [
    ({"hidden_units": [4], "depth": None, "units": None}, [4]),
    ({"hidden_units": [4], "depth": 3, "units": 8}, [8, 8, 8]),
    ({"hidden_units": [4, 6], "depth": None, "units": 8}, [8, 8]),
    ({"hidden_units": [4, 6], "depth": 2, "units": None}, [4, 6]),
    ({"hidden_units": [4, 6], "depth": 3, "units": None}, [4, 4, 4]),
])
def test_resolve_hidden_units(model, expected):
    assert resolve_hidden_units(OmegaConf.create(model)) == expected
