"""isx.tune: Optuna studies with the same budget per method. These tests replace the training
(isx.runs.run_one) by a function of the parameters, so that they check the tuner's own logic in
seconds; test_tune_slurm.py runs real trainings under SLURM."""
import json
import math
import re
import os
import subprocess
import sys
import time

import optuna
import pytest

from configs import fashion_mnist_simplenet
from isx import errors, runs, tune
from isx import space as space_lib

LR = {'low': 1e-4, 'high': 1e-1, 'log': True}


def _space(**fields):
  return {'trials': 3, 'startup_trials': 1, 'enqueue_defaults': True,
          'trial_overrides': {'num_epochs': 1, 'dataset.validation_fraction': 0.1,
                              'dataset.eval_split': 'validation'},
          'final_overrides': {'num_epochs': 7},
          'final_seeds': [0, 1, 2],
          'methods': {'plain': {'overrides': {'model.inward_scale': False},
                                'params': {'learning_rate': LR}},
                      'is': {'overrides': {'model.inward_scale': True},
                             'params': {'learning_rate': LR,
                                        'model.xi': {'low': 1.0, 'high': 1e3, 'log': True}}}},
          **fields}


def _read(tmp_path, space):
  path = tmp_path / 'space.json'
  path.write_text(json.dumps(space))
  return space_lib.read(path)


@pytest.fixture
def fake_runs(monkeypatch):
  """run_one replaced: MAP@R peaks at lr 3e-3; calls list what ran, in which workdir."""
  calls, plan = [], {}

  def run_one(config, entry, seed, out, cpu=None, workdir=None):
    lr = entry['overrides']['learning_rate']
    calls.append({'workdir': os.path.relpath(workdir, out), 'overrides': entry['overrides']})
    action = plan.pop(len(calls), None)
    if action == 'preempt':
      raise errors.Preempted('SIGTERM: saved a checkpoint')
    record = {'name': entry['name'], 'seed': seed, 'overrides': entry['overrides']}
    if action == 'diverge':
      return {**record, 'diverged': True, 'error': 'loss became non-finite'}
    return {**record, 'metrics': {'map@r': 1.0 - abs(math.log10(lr / 3e-3))}}

  monkeypatch.setattr(runs, 'run_one', run_one)
  return calls, plan


def _study(tmp_path, name):
  return optuna.load_study(study_name=name, storage=f'sqlite:///{tmp_path}/studies.db')


def _tune(tmp_path, space, method, worker=0):
  storage = tune.storage_for(f'sqlite:///{tmp_path}/studies.db', heartbeat=60)
  return tune.tune_method(fashion_mnist_simplenet.get_config(), space, method, storage,
                          str(tmp_path), worker, seed=0)


def test_each_method_gets_the_budget_starting_from_its_defaults(tmp_path, fake_runs):
  calls, _ = fake_runs
  space = _read(tmp_path, _space())
  for method in ('plain', 'is'):
    _tune(tmp_path, space, method)
  for method in ('plain', 'is'):
    trials = _study(tmp_path, method).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert trials[0].params['learning_rate'] == 1e-2 and trials[0].user_attrs['defaults']
  assert _study(tmp_path, 'is').get_trials()[0].params['model.xi'] == 100.0
  assert [c['workdir'] for c in calls[:3]] == [f'plain/trial_00{i}' for i in range(3)]
  assert all(c['overrides']['num_epochs'] == 1 for c in calls)  # the trials' short schedule
  records = [json.loads(l) for l in (tmp_path / 'trials_0.jsonl').read_text().splitlines()]
  assert [(r['study'], r['trial']) for r in records] == [(m, i) for m in ('plain', 'is')
                                                         for i in range(3)]
  assert records[0]['defaults'] and not records[1]['defaults']
  assert all(r['value'] == r['metrics']['map@r'] for r in records)
  # The best of each: fixed overrides, best parameters, the finals' overrides and seeds.
  best = {e['name']: e for e in tune.best_grid(space, tune.storage_for(
      f'sqlite:///{tmp_path}/studies.db', 60))}
  plain = max((r for r in records if r['study'] == 'plain'), key=lambda r: r['value'])
  assert best['plain']['overrides'] == {'model.inward_scale': False, 'num_epochs': 7,
                                        'learning_rate': plain['params']['learning_rate']}
  assert best['plain']['seeds'] == [0, 1, 2] and set(best) == {'plain', 'is'}
  for entry, _ in runs.shard_runs(list(best.values())):  # a grid isx.sweep runs
    runs.apply_overrides(fashion_mnist_simplenet.get_config(), entry['overrides'])


def test_a_finished_study_runs_nothing_more_and_a_diverged_trial_counts(tmp_path, fake_runs):
  calls, plan = fake_runs
  plan[2] = 'diverge'
  space = _read(tmp_path, _space())
  _tune(tmp_path, space, 'plain')
  states = [t.state for t in _study(tmp_path, 'plain').get_trials()]
  assert states.count(optuna.trial.TrialState.PRUNED) == 1 and len(states) == 3
  _tune(tmp_path, space, 'plain', worker=1)  # another worker joins a finished study
  assert len(calls) == 3


def test_a_preempted_trial_is_retried_with_its_parameters_in_its_workdir(tmp_path, fake_runs):
  calls, plan = fake_runs
  plan[2] = 'preempt'
  space = _read(tmp_path, _space())
  with pytest.raises(errors.Preempted):
    _tune(tmp_path, space, 'plain')
  trials = _study(tmp_path, 'plain').get_trials()
  assert [t.state.name for t in trials] == ['COMPLETE', 'FAIL', 'WAITING']
  assert trials[2].params == trials[1].params
  _tune(tmp_path, space, 'plain')  # the same command again
  trials = _study(tmp_path, 'plain').get_trials()
  assert [t.state.name for t in trials] == ['COMPLETE', 'FAIL', 'COMPLETE', 'COMPLETE']
  assert [c['workdir'] for c in calls] == ['plain/trial_000', 'plain/trial_001',
                                           'plain/trial_001', 'plain/trial_003']
  assert calls[1]['overrides'] == calls[2]['overrides']


def test_workers_and_restarts_draw_from_different_seeds():
  seeds = {tune.sampler_seed(0, w, m, s) for w in (0, 1) for m in ('a', 'b') for s in (0, 5)}
  assert len(seeds) == 8
  assert tune.sampler_seed(0, 1, 'a', 5) == tune.sampler_seed(0, 1, 'a', 5)


@pytest.mark.parametrize('change, message', [
    ({'trials': 0}, 'the budget must be a positive number of trials per method, got 0'),
    ({'budget': 3}, 'unknown key(s) budget'),
    ({'methods': {}}, 'must be a JSON object with "methods"'),
    ({'methods': {'a': {'params': {'learning_rate': {'low': 0.1, 'high': 0.1}}}}},
     'a: learning_rate: the range [0.1, 0.1] is empty; give low < high'),
    ({'methods': {'a': {'params': {'model.head.name': {'choices': []}}}}},
     'a: model.head.name: the range is empty (no choices); give at least one'),
    ({'methods': {'a': {'params': {'weight_decay': {'low': 0, 'high': 1, 'log': True}}}}},
     'a: weight_decay: a log range needs low > 0, got 0'),
])
def test_a_bad_space_is_one_line(tmp_path, change, message):
  with pytest.raises(errors.ConfigError) as e:
    _read(tmp_path, _space(**change))
  assert message in str(e.value)


def test_a_space_key_the_config_lacks_or_a_default_outside_its_range_is_named(tmp_path):
  config = fashion_mnist_simplenet.get_config()
  space = _read(tmp_path, _space(methods={'a': {'params': {'modell.xi': LR}}}))
  with pytest.raises(errors.ConfigError, match=r'--space method a at modell.xi=0.0001: grid override modell.xi'):
    space_lib.method_configs(config, space, 'a')
  space = _read(tmp_path, _space(methods={'a': {'params': {
      'learning_rate': {'low': 0.1, 'high': 0.2}}}}))
  assert len(space_lib.method_configs(config, space, 'a')) == 2  # each end resolves
  with pytest.raises(errors.ConfigError, match=r'its default learning_rate=0.01 is outside'):
    space_lib.default_params(config, space, 'a')


def test_a_storage_that_cannot_be_opened_is_one_line(tmp_path):
  with pytest.raises(errors.ConfigError, match=r'--storage sqlite:///.*/no/such/x.db cannot be '
                     r'opened \(OperationalError: .*\); give a reachable Optuna storage URL'):
    tune.storage_for(f'sqlite:///{tmp_path}/no/such/x.db', 60)


@pytest.mark.slow
def test_workers_that_open_a_new_sqlite_storage_together_all_open_it(tmp_path):
  """Each would create the tables; without the lock on studies.db.lock, some lose the race
  (UNIQUE constraint failed: alembic_version) and a SLURM array loses those workers."""
  # Each process imports isx, says so, and waits for the others before it opens the storage.
  code = ('import os, sys, time; from isx import tune; open(sys.argv[2], "w").close()\n'
          'while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n'
          'tune.storage_for(f"sqlite:///{sys.argv[1]}/studies.db", 60)')
  go = tmp_path / 'go'
  procs = [subprocess.Popen([sys.executable, '-c', code, str(tmp_path), str(tmp_path / f'ready{i}'),
                             str(go)], stderr=subprocess.PIPE, text=True) for i in range(6)]
  while len(list(tmp_path.glob('ready*'))) < 6 and all(p.poll() is None for p in procs):
    time.sleep(0.01)
  go.touch()
  errs = [p.communicate(timeout=120)[1] for p in procs]
  assert [p.returncode for p in procs] == [0] * 6, errs


def test_the_shipped_spaces_resolve_with_their_configs_and_their_defaults_are_inside():
  import importlib
  here = os.path.join(os.path.dirname(__file__), '..', 'results', 'spaces')
  for name in sorted(os.listdir(here)):  # results/spaces/NAME.json goes with configs/NAME.py
    config = importlib.import_module(f'configs.{name[:-len(".json")]}').get_config()
    space = space_lib.read(os.path.join(here, name))
    for method in space['methods']:
      space_lib.method_configs(config, space, method)
      space_lib.default_params(config, space, method)


@pytest.mark.filterwarnings('ignore:Heartbeat of storage')  # ask() stands for a killed worker
def test_a_killed_workers_trial_is_failed_by_its_silence_and_retried_in_its_workdir(
    tmp_path, fake_runs):
  """A worker SIGKILLed mid-trial leaves the trial running, its heartbeat silent: the next
  worker fails it once the grace period (2 heartbeats) has passed and runs its retry, with the
  same parameters, in the killed trial's workdir (where its checkpoint is)."""
  import time
  calls, _ = fake_runs
  space = _read(tmp_path, _space(enqueue_defaults=False))
  storage = tune.storage_for(f'sqlite:///{tmp_path}/studies.db', heartbeat=1)
  study = optuna.create_study(study_name='plain', storage=storage, direction='maximize')
  killed = study.ask({'learning_rate': optuna.distributions.FloatDistribution(1e-4, 1e-1,
                                                                              log=True)})
  storage.record_heartbeat(killed._trial_id)  # its last sign of life
  time.sleep(3.5)  # SQLite's clock has whole seconds: more than 2 s must show
  tune.tune_method(fashion_mnist_simplenet.get_config(), space, 'plain', storage, str(tmp_path),
                   0, seed=0)
  trials = optuna.load_study(study_name='plain', storage=storage).get_trials()
  assert [t.state.name for t in trials] == ['FAIL', 'COMPLETE', 'COMPLETE', 'COMPLETE']
  assert trials[1].params == trials[0].params, [(t.number, t.params, t.system_attrs) for t in trials]
  assert calls[0]['workdir'] == 'plain/trial_000'


@pytest.fixture
def fold_runs(monkeypatch):
  """run_one replaced: MAP@R peaks at lr 3e-3, a little higher on each later fold."""
  calls = []

  def run_one(config, entry, seed, out, cpu=None, workdir=None):
    overrides = entry['overrides']
    calls.append((os.path.relpath(workdir, out), overrides.get('dataset.validation_fold')))
    value = 1.0 - abs(math.log10(overrides['learning_rate'] / 3e-3)) + 0.01 * calls[-1][1]
    return {'name': entry['name'], 'seed': seed, 'overrides': overrides, 'seconds': 1.0,
            'metrics': {'map@r': value, 'recall@1': 0.5}}

  monkeypatch.setattr(runs, 'run_one', run_one)
  return calls


def test_a_trial_is_the_mean_over_its_folds_and_a_trial_below_the_best_on_each_fold_is_pruned(
    tmp_path, fold_runs):
  space = _read(tmp_path, _space(trials=2, folds=5, enqueue_defaults=False))
  storage = tune.storage_for(f'sqlite:///{tmp_path}/studies.db', heartbeat=60)
  study = tune.open_study(fashion_mnist_simplenet.get_config(), space, 'plain', storage)
  assert isinstance(study.pruner, optuna.pruners.WilcoxonPruner)
  assert study.user_attrs[tune.DEFINITION]['folds'] == 5
  study.enqueue_trial({'learning_rate': 3e-3})  # the best, then one below it on every fold
  study.enqueue_trial({'learning_rate': 1e-4})
  _tune(tmp_path, space, 'plain')
  assert fold_runs[:5] == [(f'plain/trial_000/fold_{f}', f) for f in range(5)]
  pruned_at = len(fold_runs) - 5
  assert 4 <= pruned_at < 5 and fold_runs[5:] == [(f'plain/trial_001/fold_{f}', f)
                                                   for f in range(pruned_at)]
  first, second = [json.loads(l) for l in (tmp_path / 'trials_0.jsonl').read_text().splitlines()]
  assert first['value'] == pytest.approx(1.0 + 0.01 * 2) == first['metrics']['map@r']
  assert first['fold_values'] == pytest.approx([1.0 + 0.01 * f for f in range(5)])
  assert first['seconds'] == 5.0 and 'dataset.validation_fold' not in first['overrides']
  assert second['pruned'] and second['value'] is None and len(second['fold_values']) == pruned_at
  states = [t.state for t in _study(tmp_path, 'plain').get_trials()]
  assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
  best = tune.best_grid(space, storage)
  assert best[0]['trial'] == 0 and 'dataset.validation_fold' not in best[0]['overrides']


def test_more_folds_than_the_training_classes_make_is_one_line(tmp_path, tiny_data_dir):
  config = fashion_mnist_simplenet.get_config()
  config.dataset.data_dir = tiny_data_dir
  config.batch_size, config.eval_batch_size, config.model.embedding_dim = 16, 16, 16
  open_set = {'dataset.classes': 'first_half', 'dataset.validation_classes': 2,
              'dataset.eval_split': 'validation'}
  path = tmp_path / 'space.json'
  path.write_text(json.dumps(_space(folds=6, trial_overrides=open_set)))
  with pytest.raises(errors.ConfigError, match=r'validation_fold=5: 5 training classes in windows '
                                               r'of 2 make 5 folds \(0 to 4\)'):
    tune.prepare(config, str(tmp_path / 'out'), str(path))
  path.write_text(json.dumps(_space(folds=5, trial_overrides=open_set)))
  assert tune.prepare(config, str(tmp_path / 'out'), str(path)).space['folds'] == 5


def test_a_study_is_bound_to_its_definition_and_a_changed_one_is_refused(tmp_path, fake_runs):
  calls, _ = fake_runs
  space = _read(tmp_path, _space())
  _tune(tmp_path, space, 'plain')
  changed = _read(tmp_path, _space(methods={'plain': {'overrides': {'model.inward_scale': True},
                                                      'params': {'learning_rate': LR}}}))
  with pytest.raises(errors.ConfigError, match=r"study 'plain' in this storage was started with "
                     r"another definition; differing: config.model.inward_scale \(False -> True\)"):
    _tune(tmp_path, changed, 'plain')
  wider = _read(tmp_path, _space(methods={'plain': {'overrides': {'model.inward_scale': False},
                                                    'params': {'learning_rate': {**LR, 'low': 1e-5}}}}))
  with pytest.raises(errors.ConfigError, match=r'params.learning_rate.low \(0.0001 -> 1e-05\)'):
    _tune(tmp_path, wider, 'plain')
  more = _read(tmp_path, _space(trials=4))  # a larger budget is the same question, continued
  _tune(tmp_path, more, 'plain')
  assert len(calls) == 4


def test_an_out_folder_with_url_characters_holds_its_own_study(tmp_path, fake_runs):
  """'?' once started the URL's query: both studies landed in one file beside the folders."""
  space = _read(tmp_path, _space(trials=1))
  for name in ('run?1', 'run?2'):
    out = tmp_path / name
    out.mkdir()
    storage = tune.storage_for(tune.sqlite_url(str(out / 'studies.db')), 60)
    tune.tune_method(fashion_mnist_simplenet.get_config(), space, 'plain', storage, str(out), 0, 0)
    assert (out / 'studies.db').exists()
  assert sorted(p.name for p in tmp_path.iterdir()) == ['run?1', 'run?2', 'space.json']


@pytest.mark.parametrize('change, message', [
    ({'methods': {'a': 3}}, 'method a must be an object'),
    ({'methods': {'../a': {}}}, "method name '../a' cannot name a folder inside --out"),
    ({'methods': {'a': {'params': {'model.xi': {'low': -10, 'high': -1}}}}},
     'method a at model.xi=-10: xi must be a positive finite number'),
    ({'methods': {'a': {'params': {'batch_size': {'low': 8, 'high': 16}}}}},
     'batch_size is an integer setting'),
    ({'methods': {'a': {'params': {'batch_size': {'low': 8.5, 'high': 16, 'int': True}}}}},
     'an "int" range needs integer ends'),
    ({'methods': {'a': {'params': {'model.head.name': {'choices': [{'x': 1}]}}}}},
     'choices must be strings, numbers, booleans or null'),
    ({'methods': {'a': {'params': {'learning_rate': {'low': 0.1, 'high': 1, 'log': 'yes'}}}}},
     '"log" and "int" are true or false'),
    ({'final_overrides': {'num_epoch': 3}}, "the config has no field 'num_epoch'"),
    ({'trial_overrides': {}}, "its trials score the 'test' split"),
    ({'final_seeds': [0, 0]}, '"final_seeds" must be a list of distinct seeds >= 0'),
    ({'objective': 3}, '"objective" must be a metric name'),
    ({'folds': 0}, '"folds" must be a number of validation folds >= 1, got 0'),
    ({'folds': 2, 'trial_overrides': {'dataset.validation_fold': 1, 'dataset.eval_split':
                                      'validation', 'dataset.validation_fraction': 0.1}},
     '"folds" sets dataset.validation_fold for each training of a trial'),
    ({'folds': 3, 'methods': {'a': {'params': {'dataset.validation_fold': {'choices': [0, 1]}}}}},
     'method a sets dataset.validation_fold, which "folds" sets'),
    ({'folds': 2, 'select_on': 'test', 'trial_overrides': {}},
     'at learning_rate=0.0001, dataset.validation_fold=1: dataset.validation_fold=1 picks a fold '
     'of the validation split'),
])
def test_every_value_of_a_space_is_checked_before_any_trial(tmp_path, change, message):
  config = fashion_mnist_simplenet.get_config()
  with pytest.raises(errors.ConfigError, match=re.escape(message)):
    space = _read(tmp_path, _space(**change))
    for method in space['methods']:
      space_lib.method_configs(config, space, method)
      space_lib.final_config(config, space, method)


def test_a_space_may_select_on_the_test_split_only_when_it_says_so(tmp_path):
  config = fashion_mnist_simplenet.get_config()
  space = _read(tmp_path, _space(trial_overrides={}, select_on='test'))
  assert space_lib.method_configs(config, space, 'plain')[0].dataset.eval_split == 'test'


def test_the_objective_is_checked_against_what_the_trials_report(tmp_path, tiny_data_dir):
  config = fashion_mnist_simplenet.get_config()
  config.dataset.data_dir = tiny_data_dir
  config.batch_size, config.eval_batch_size, config.model.embedding_dim = 16, 16, 16
  open_set = {'dataset.validation_classes': 2, 'dataset.eval_split': 'validation'}
  for objective, fine in (('map@r', True), ('accuracy', False), ('MAP@R', False)):
    path = tmp_path / f'{objective}.json'
    path.write_text(json.dumps(_space(objective=objective, trial_overrides=open_set)))
    if fine:
      assert tune.prepare(config, str(tmp_path / 'out'), str(path)).methods == ['plain', 'is']
    else:  # accuracy is not computed on held-out validation classes
      with pytest.raises(errors.ConfigError, match=f'"objective" {objective!r} is not a metric'):
        tune.prepare(config, str(tmp_path / 'out'), str(path))
  assert not (tmp_path / 'out').exists()  # prepare writes nothing


@pytest.mark.filterwarnings('ignore:Heartbeat of storage')  # ask() stands for a killed worker
def test_a_restarted_worker_waits_for_a_silent_trial_and_then_runs_it(tmp_path, fake_runs,
                                                                       capsys):
  """A SIGKILLed worker's trial stays running until its heartbeat is stale: a worker restarted
  at once says what it waits for, then runs the retry; it never ends with the study short."""
  plan, study, _ = _a_trial_running_elsewhere(tmp_path, heartbeat=1)
  tune.run(plan, wait_seconds=0.5)
  out = capsys.readouterr().out
  assert 'waiting for trials running elsewhere (plain: trial(s) 0)' in out
  assert 'plain: 1/1 trials' in out
  assert [t.state.name for t in study.get_trials()] == ['FAIL', 'COMPLETE']


def _a_trial_running_elsewhere(tmp_path, heartbeat):
  """A 1-trial study whose trial another worker runs (its heartbeat fresh); this worker's plan."""
  space = _read(tmp_path, _space(trials=1, enqueue_defaults=False))
  storage = tune.storage_for(tune.sqlite_url(str(tmp_path / 'studies.db')), heartbeat=heartbeat)
  study = tune.open_study(fashion_mnist_simplenet.get_config(), space, 'plain', storage)
  other = study.ask({'learning_rate': optuna.distributions.FloatDistribution(1e-4, 1e-1,
                                                                             log=True)})
  storage.record_heartbeat(other._trial_id)
  plan = tune.Plan(fashion_mnist_simplenet.get_config(), space, ['plain'], str(tmp_path),
                   storage, heartbeat, 0, 0)
  return plan, study, other


def test_a_retry_queued_just_after_the_worker_counted_its_trial_is_run(tmp_path, fake_runs,
                                                                        monkeypatch, capsys):
  """The race, made certain: this worker counts another's trial as running (so its own share
  is done), and that trial's heartbeat goes stale before the worker looks again, which fails it
  and queues its retry. The worker runs the retry instead of ending with the study short."""
  plan, study, other = _a_trial_running_elsewhere(tmp_path, heartbeat=60)
  storage = plan.storage
  real = tune.tune_method

  def then_the_other_worker_is_found_dead(*args, **kwargs):
    result = real(*args, **kwargs)
    trial = study.get_trials(deepcopy=False)[other.number]
    if trial.state == optuna.trial.TrialState.RUNNING:  # what running() does to a stale one
      storage.set_trial_state_values(other._trial_id, optuna.trial.TrialState.FAIL)
      optuna.storages.RetryHeartbeatStaleTrialCallback(3)(study, trial)
    return result
  monkeypatch.setattr(tune, 'tune_method', then_the_other_worker_is_found_dead)
  tune.run(plan, wait_seconds=0.1)
  assert 'plain: 1/1 trials' in capsys.readouterr().out
  assert [t.state.name for t in study.get_trials()] == ['FAIL', 'COMPLETE']


def test_a_storage_without_heartbeats_says_when_to_run_again(tmp_path, fake_runs):
  space = _read(tmp_path, _space(trials=1, enqueue_defaults=False))
  storage = optuna.storages.InMemoryStorage()
  study = tune.open_study(fashion_mnist_simplenet.get_config(), space, 'plain', storage)
  study.ask({'learning_rate': optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
  plan = tune.Plan(fashion_mnist_simplenet.get_config(), space, ['plain'], str(tmp_path),
                   storage, 1, 0, 0)
  with pytest.raises(tune.NotYet, match=r'running elsewhere: plain: trial\(s\) 0, and this '
                     r'storage keeps no heartbeat'):
    tune.run(plan)


def test_an_isx_error_inside_a_trial_is_not_logged_with_a_traceback(tmp_path, monkeypatch):
  import logging
  seen = []
  handler = logging.Handler()
  handler.emit = seen.append
  logging.getLogger('optuna').addHandler(handler)

  def run_one(*args, **kwargs):
    raise errors.ConfigError('the disk is gone')

  monkeypatch.setattr(runs, 'run_one', run_one)
  try:
    with pytest.raises(errors.ConfigError, match='the disk is gone'):
      _tune(tmp_path, _read(tmp_path, _space()), 'plain')
  finally:
    logging.getLogger('optuna').removeHandler(handler)
  assert not [r for r in seen if r.exc_info], [r.getMessage() for r in seen]


def test_draws_depend_on_the_study_not_on_restarts(tmp_path, fake_runs):
  """A worker interrupted between trials and restarted draws what it would have drawn."""
  space = _read(tmp_path, _space(trials=5, enqueue_defaults=False))
  for name, budgets in (('once', [5]), ('restarted', [2, 3, 5])):
    (tmp_path / name).mkdir()
    for budget in budgets:
      storage = tune.storage_for(tune.sqlite_url(str(tmp_path / name / 'studies.db')), 60)
      tune.tune_method(fashion_mnist_simplenet.get_config(), {**space, 'trials': budget},
                       'plain', storage, str(tmp_path / name), 0, seed=0)
  params = [[t.params for t in optuna.load_study(
      study_name='plain', storage=tune.sqlite_url(str(tmp_path / n / 'studies.db'))).get_trials()]
      for n in ('once', 'restarted')]
  assert params[0] == params[1]
