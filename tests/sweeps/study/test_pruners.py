"""sweeps.study.pruners: every pruner of the table is made from a sweep config, and the median
pruner prunes a clearly bad trial once warmed up, in a real study."""

from __future__ import annotations

import optuna
import pytest
from omegaconf import OmegaConf

from sweeps.config.schema import SweepConfig
from sweeps.study.pruners import PRUNERS, asks_from


def sweep(**overrides):
    return OmegaConf.structured(SweepConfig(**overrides))


@pytest.fixture(autouse=True)
def quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_every_pruner_is_made_from_a_sweep_config_and_runs_in_a_study(name):
    pruner = PRUNERS[name](sweep(pruner=name, n_startup_trials=1, warmup_steps=0))
    assert isinstance(pruner, optuna.pruners.BasePruner)
    study = optuna.create_study(pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(1, 4):
            trial.report(x * step, step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, x)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))) == 3


def test_the_pruner_names_and_settings_are_the_sweeps():
    median = PRUNERS["median"](sweep(n_startup_trials=4, warmup_steps=300))
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert isinstance(PRUNERS["none"](sweep()), optuna.pruners.NopPruner)
    assert isinstance(PRUNERS["hyperband"](sweep(warmup_steps=0)), optuna.pruners.HyperbandPruner)
    assert isinstance(PRUNERS["successive_halving"](sweep(warmup_steps=0)), optuna.pruners.SuccessiveHalvingPruner)


def test_the_median_pruner_prunes_a_bad_trial_after_warmup_only():
    study = optuna.create_study(direction="minimize",
                                pruner=PRUNERS["median"](sweep(n_startup_trials=2, warmup_steps=200)))
    for good in (1.0, 1.1):
        trial = study.ask()
        for step in range(100, 600, 100):
            trial.report(good, step)
            assert not trial.should_prune()
        study.tell(trial, good)

    bad = study.ask()
    bad.report(50.0, 100)
    assert not bad.should_prune()  # within warmup_steps: never pruned
    bad.report(50.0, 300)
    assert bad.should_prune()  # past warmup, far worse than the median of the good trials
    study.tell(bad, state=optuna.trial.TrialState.PRUNED)

    fine = study.ask()
    fine.report(0.9, 300)
    assert not fine.should_prune()  # better than the median: runs on


@pytest.mark.parametrize("name", ["median", "successive_halving", "hyperband"])
def test_not_asking_below_asks_from_changes_no_decision(name):
    """The same trials, their reports and decisions, in two studies: one asks the pruner at every
    report, the other only from asks_from on. Every trial's fate is the same, and the pruner did
    prune (so the comparison can fail); no yes is ever lost below asks_from."""
    s = sweep(pruner=name, n_startup_trials=2, warmup_steps=300)
    first = asks_from(s)
    assert first == {"median": 300, "successive_halving": 300, "hyperband": 0}[name]
    fates = []
    for skip in (False, True):
        study = optuna.create_study(study_name="s", pruner=PRUNERS[name](s),  # hyperband hashes the name
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        fate = []
        for _ in range(12):
            trial = study.ask()
            x = trial.suggest_float("x", 0.0, 1.0)
            for step in range(100, 1100, 100):
                trial.report(x + 1.0 / step, step)
                if skip and step < first:
                    continue
                if trial.should_prune():
                    assert step >= first, "the pruner said yes below asks_from"
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    fate.append(("pruned", step))
                    break
            else:
                study.tell(trial, x)
                fate.append(("complete", x))
        fates.append(fate)
    assert fates[0] == fates[1]
    assert any(f == "pruned" for f, _ in fates[0])


def test_reports_written_by_a_thread_give_the_pruners_answers_and_are_all_stored(tmp_path):
    """sweeps.study.reports: the same trials in two journal studies, one reporting and asking as
    Optuna's trials do, the other through Reports. Every trial's fate is the same, the pruner did
    prune, and once closed every report is in the store."""
    from sweeps.study.reports import Reports, asks_locally

    s = sweep(pruner="median", n_startup_trials=2, warmup_steps=300)
    assert asks_locally(PRUNERS["median"](s)) and not asks_locally(PRUNERS["hyperband"](s))
    fates = []
    for threaded in (False, True):
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
            str(tmp_path / f"{threaded}.journal")))
        study = optuna.create_study(storage=storage, pruner=PRUNERS["median"](s),
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        fate = []
        for _ in range(12):
            trial = study.ask()
            x = trial.suggest_float("x", 0.0, 1.0)
            reports = Reports(trial) if threaded else None
            pruned = None
            for step in range(100, 1100, 100):
                if reports is not None:
                    reports.report(x + 1.0 / step, step)
                    prune = step >= asks_from(s) and reports.should_prune()
                else:
                    trial.report(x + 1.0 / step, step)
                    prune = trial.should_prune()
                if prune:
                    pruned = step
                    break
            if reports is not None:
                reports.close()
            assert sorted(study.trials[-1].intermediate_values) == list(range(100, (pruned or 1000) + 100, 100))
            study.tell(trial, x) if pruned is None else study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            fate.append(pruned)
        fates.append(fate)
    assert fates[0] == fates[1] and any(fates[0])
