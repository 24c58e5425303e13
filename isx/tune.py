"""Hyperparameter search on Optuna, the same budget of finished trials for every method; each
trial an isx.main training (isx.runs.run_one) in a workdir of its own.

  python -m isx.tune --config=configs/fashion_mnist_open_set.py --config.dataset.data_dir=DATA \
      --space=results/spaces/fashion_mnist_open_set.json --out=OUT [--methods=a,b] [--worker=i/n]

The space file (results/spaces/) names the methods, each with its fixed overrides and the
ranges it searches, the overrides every trial adds (the validation split, a short schedule) and
those of the finals. Every worker of every method shares one Optuna storage (--storage, default
SQLite in OUT); any number of workers, on one machine or a SLURM array (launch/tune_array.sh),
take trials from it until each study holds its budget. Each trial's record goes to
OUT/trials_<worker>.jsonl; once a study is done, OUT/best_grid.json holds every finished method's
best configuration as an isx.sweep grid that re-runs it with the final seeds on the test split.
"""
import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import socket
import time
import warnings
import zlib
from typing import Any

import numpy as np
import optuna
from absl import app, flags

from isx import cli, config_checks, cpu_setup, errors, evaluation, input_pipeline, runs
from isx import mesh as mesh_lib
from isx import space as space_lib

flags.DEFINE_string('space', None, 'JSON search spaces, one per method (results/spaces/).')
flags.DEFINE_string('methods', None, 'Comma-separated methods of --space to tune (default: all).')
flags.DEFINE_integer('trials', None, 'Finished trials per method (default: the space\'s).')
flags.DEFINE_string('storage', None, 'Optuna storage URL (default sqlite:///OUT/studies.db); '
                    'e.g. postgresql://... for workers on many machines.')
flags.DEFINE_integer('seed', 0, 'The studies\' sampler seed; each worker derives its own.')
flags.DEFINE_integer('heartbeat', 60, 'Seconds between a running trial\'s heartbeats; a trial '
                     'silent for twice that is failed and retried with the same parameters.')
flags.DEFINE_string('worker', None, 'i/n: this worker among n sharing this machine\'s cores. '
                    'Default: the SLURM array task when in one, else 0/1.')

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
warnings.filterwarnings('ignore', category=optuna.exceptions.ExperimentalWarning)


# How a lost race to create a new storage's tables reads, per database.
RACES = ('already exists', 'UNIQUE constraint failed', 'Duplicate entry', 'duplicate key')
DEFINITION = 'isx_definition'  # the study's user attribute holding what its trials are
OWNER = 'isx_worker'  # a trial's: the host and process running it


def sqlite_url(path: str) -> str:
  """The SQLAlchemy URL of a SQLite file at path, quoted: a '?', '#' or '%' in a folder's name
  stays in the path instead of starting the URL's query."""
  from sqlalchemy.engine import URL
  return URL.create('sqlite', database=os.path.abspath(path)).render_as_string(
      hide_password=False)


def storage_for(url: str, heartbeat: int, what: str = None):
  """The Optuna storage at url. An RDB storage (SQLite, PostgreSQL, ...) gets the heartbeat, so
  that a killed worker's trial is failed and retried with the same parameters. what: how the
  error names it (default: the --storage flag)."""
  what = what or f'--storage {url}'
  for attempt in range(5):
    try:
      if url.split(':', 1)[0].split('+')[0] in ('sqlite', 'postgresql', 'mysql'):
        with _sqlite_lock(url):
          return optuna.storages.RDBStorage(
              url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
              heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(3),
              engine_kwargs={'connect_args': {'timeout': 60}} if url.startswith('sqlite') else None)
      return optuna.storages.get_storage(url)
    except Exception as e:  # noqa: BLE001  Optuna raises many kinds; the user fixes the URL
      # Workers that start together race to create the tables (a server database; SQLite is
      # locked above): the losers find them made on their next try.
      if any(m in str(e) for m in RACES) and attempt < 4:
        time.sleep(1.0)
        continue
      raise errors.ConfigError(f'{what} cannot be opened ({type(e).__name__}: '
                               f'{str(e).splitlines()[0] if str(e) else ""}); give a reachable '
                               f'Optuna storage URL, e.g. sqlite:///OUT/studies.db') from None


@contextlib.contextmanager
def _sqlite_lock(url: str):
  """Holds an exclusive lock on DB.lock while a SQLite storage is opened: workers that start
  together would otherwise all create its tables, and all but one fail."""
  from sqlalchemy.engine import make_url
  try:
    path = make_url(url).database if url.startswith('sqlite:') else ''
  except Exception:  # noqa: BLE001  not a URL: Optuna says so
    path = ''
  if not path or path == ':memory:' or not os.path.isdir(os.path.dirname(path) or '.'):
    yield  # nothing to share, or a folder that is not there: Optuna says so
    return
  with open(path + '.lock', 'a') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def sampler_seed(seed: int, worker: int, method: str, drawn: int) -> int:
  """The seed of one draw: derived per worker and per how many trials the study held (finished
  or running) when it drew, so that no two workers draw alike, and a worker restarted after an
  interruption draws what it would have drawn without it."""
  return int(np.random.SeedSequence([seed, worker, zlib.crc32(method.encode()), drawn])
             .generate_state(1)[0])


def finished(study) -> list:
  """The study's finished trials (completed, or pruned because the run diverged), by number.
  The first `budget` of them count: a worker that started the last trial beside another may
  finish one more, which is recorded but not used."""
  return [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]


def running(study, storage) -> list:
  """The study's running trials, once the dead ones are failed and queued for a retry with the
  same parameters: those of a worker on this host whose process is gone, at once; any other
  once its heartbeat is stale."""
  for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
    owner = t.user_attrs.get(OWNER) or {}
    if owner.get('host') == socket.gethostname() and not _alive(owner.get('pid')):
      try:
        failed = storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
      except optuna.exceptions.UpdateFinishedTrialError:  # another worker got there first
        failed = False
      if failed:
        optuna.storages.RetryHeartbeatStaleTrialCallback(3)(study, study.get_trials(
            deepcopy=False)[t.number])
  optuna.storages.fail_stale_trials(study)
  return [t for t in study.get_trials(deepcopy=False)
          if t.state == optuna.trial.TrialState.RUNNING]


def queued(study) -> list:
  """The study's trials waiting to run (enqueued: the defaults, or a dead trial's retry)."""
  return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))


def _alive(pid) -> bool:
  if not isinstance(pid, int) or pid == os.getpid():
    return True
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True


def open_study(config, space, method, storage):
  """The method's study, created with its definition (isx.space.definition) or loaded and
  checked against it: a study is never continued with other trials than it started with."""
  study = optuna.create_study(study_name=method, storage=storage, direction='maximize',
                              load_if_exists=True, pruner=pruner(space))
  now = space_lib.definition(config, space, method)
  saved = study.user_attrs.get(DEFINITION)
  if saved is None:  # new, or started by an isx that did not record it
    study.set_user_attr(DEFINITION, now)
  elif saved != now:
    diff = space_lib.differences(saved, now)
    raise errors.ConfigError(
        f'study {method!r} in this storage was started with another definition; differing: '
        f'{", ".join(diff[:5])}{" ..." if len(diff) > 5 else ""}. Use a new --out (or '
        f'--storage) for the new question, or the space and config it started with')
  return study


def pruner(space):
  """With k folds, Optuna's Wilcoxon pruner (the same for every method): after each fold, a trial
  whose fold values are significantly below the best trial's on the same folds stops (p < 0.1,
  one-sided; it needs 4 folds or more to ever reach it). One fold: nothing to prune on."""
  if space['folds'] > 1:
    return optuna.pruners.WilcoxonPruner(p_threshold=0.1)
  return optuna.pruners.NopPruner()


def run_folds(config, space, method, overrides, out, workdir, trial, cpu=None) -> dict:
  """A trial's trainings, one per validation fold (space "folds"; one: the trial's workdir
  itself, else WORKDIR/fold_F), stopping at a diverged one, or when the pruner says so. The
  record is the first fold's (or the diverged one's) with the mean over the folds as its
  metric, every fold's value in 'fold_values' and 'pruned' for a trial stopped early."""
  folds, objective, results = space['folds'], space['objective'], []
  for fold in range(folds):
    per_fold = {**overrides, space_lib.FOLD: fold} if folds > 1 else overrides
    where = os.path.join(workdir, f'fold_{fold}') if folds > 1 else workdir
    results.append(runs.run_one(config, {'name': method, 'overrides': per_fold}, config.seed,
                                out, cpu, workdir=where))
    value = results[-1].get('metrics', {}).get(objective)
    if results[-1].get('diverged') or value is None or folds == 1:
      break
    trial.report(float(value), fold)
    if fold < folds - 1 and trial.should_prune():
      break
  if folds == 1 or results[-1].get('diverged'):
    return {**results[-1], 'overrides': overrides}
  values = [r['metrics'].get(objective) for r in results]  # none diverged here
  record = {**results[0], 'overrides': overrides, 'seconds': sum(r['seconds'] for r in results
                                                                  if 'seconds' in r),
            'fold_values': values}
  if None in values:  # a fold without the objective: objective() names what it reported
    record['metrics'] = {k: v for k, v in record['metrics'].items() if k != objective}
    return record
  record['metrics'] = {**record['metrics'], objective: float(np.mean(values))}
  if len(results) < folds:
    record['pruned'] = True
  return record


def tune_method(config, space, method, storage, out, worker, seed, cpu=None):
  """Runs this worker's share of the method's study while its finished and running trials are
  fewer than its budget."""
  budget, entry = space['trials'], space['methods'][method]
  study = open_study(config, space, method, storage)
  if space['enqueue_defaults'] and not study.get_trials(deepcopy=False):
    study.enqueue_trial(space_lib.default_params(config, space, method),
                        user_attrs={'defaults': True}, skip_if_exists=True)
  startup = space['startup_trials'] if space['startup_trials'] is not None else budget // 3
  current = {}

  def objective(trial):
    current['number'] = trial.number
    trial.set_user_attr(OWNER, {'host': socket.gethostname(), 'pid': os.getpid()})
    params = {k: space_lib.suggest(trial, k, s) for k, s in entry.get('params', {}).items()}
    first = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(
        study.get_trials(deepcopy=False)[trial.number])
    number = trial.number if first is None else first  # a retry resumes the first's workdir
    overrides = {**entry.get('overrides', {}), **space['trial_overrides'], **params}
    record = run_folds(config, space, method, overrides, out,
                       os.path.join(out, method, f'trial_{number:03d}'), trial, cpu)
    record.update(study=method, trial=trial.number, params=params,
                  defaults=bool(trial.user_attrs.get('defaults')))
    if first is not None:  # a killed attempt may have left a record too: this one replaces it
      record['retry_of'] = first
    value = record.get('metrics', {}).get(space['objective'])
    if not record.get('diverged'):
      record['value'] = value if value is None else float(value)
    if record.get('pruned'):  # its mean covers the folds it ran: not a value to select on
      record['value'] = None
    _append(out, worker, record)
    if record.get('diverged'):  # a result (this region fails), counted in the budget
      trial.set_user_attr('diverged', record['error'])
      raise optuna.TrialPruned(record['error'])
    if record.get('pruned'):
      raise optuna.TrialPruned(f'below the best trial on folds {record["fold_values"]}')
    if value is None:
      raise errors.ConfigError(f'trial {trial.number} of {method} reported no '
                               f'{space["objective"]!r} (it reported '
                               f'{", ".join(sorted(record["metrics"]))}); fix "objective"')
    return record['value']

  while True:
    drawn = len(finished(study)) + len(running(study, storage))
    if drawn >= budget:
      return study
    study.sampler = optuna.samplers.TPESampler(
        n_startup_trials=startup, seed=sampler_seed(seed, worker, method, drawn))
    try:
      study.optimize(objective, n_trials=1)
    except errors.Preempted:  # SIGTERM: the trial is failed; its retry resumes the checkpoint
      stopped = study.get_trials(deepcopy=False)[current['number']]
      optuna.storages.RetryHeartbeatStaleTrialCallback(3)(study, stopped)
      raise


def _append(out, worker, record):
  with open(os.path.join(out, f'trials_{worker}.jsonl'), 'a') as f:
    f.write(json.dumps(record) + '\n')


def best_grid(space, storage) -> list:
  """An isx.sweep grid: each method whose study holds its budget, with its fixed overrides, the
  best of its counted trials' parameters and the final overrides, for the final seeds."""
  entries = []
  for method, entry in space['methods'].items():
    try:
      study = optuna.load_study(study_name=method, storage=storage)
    except KeyError:  # not started
      continue
    counted = finished(study)[:space['trials']]
    complete = [t for t in counted if t.state == optuna.trial.TrialState.COMPLETE]
    if len(counted) < space['trials'] or not complete:
      continue
    best = max(complete, key=lambda t: (t.value, -t.number))
    entries.append({'name': method, 'trial': best.number, 'value': best.value,
                    'overrides': {**entry.get('overrides', {}), **best.params,
                                  **space['final_overrides']},
                    'seeds': space['final_seeds']})
  return entries


@dataclasses.dataclass
class Plan:
  """A tuning run, every input checked: what `run` does."""
  config: Any
  space: dict
  methods: list
  out: str
  storage: Any  # the --storage given, opened; None: SQLite in OUT, opened once OUT is made
  heartbeat: int
  worker: int
  seed: int
  cpu: Any = None


def prepare(config, out, space_path, methods=None, trials=None, storage=None, seed=0,
            heartbeat=60, worker=None, environ=None, cpu_conv_path=None, cpu_devices=None):
  """Checks everything a tuning run needs before its first trial, writing nothing: the flags,
  the space (every method, every range's ends and the finals as validated configs, the split
  that selection reads), the devices, and the objective against what the evals report. Returns
  the Plan; every refusal is one line."""
  if not isinstance(seed, int) or not 0 <= seed < 2**32:
    raise errors.ConfigError(f'--seed must be an integer in [0, 2**32), got {seed!r}')
  if not isinstance(heartbeat, int) or heartbeat < 1:
    raise errors.ConfigError(f'--heartbeat must be a whole number of seconds >= 1, got '
                             f'{heartbeat!r}')
  if os.path.exists(out) and not os.path.isdir(out):
    raise errors.NotAFolder(f'--out {out} is a file; name a folder for the study')
  (worker, _), share = runs.shard_of(worker, os.environ if environ is None else environ)
  space = space_lib.read(space_path, trials)
  methods = methods.split(',') if methods else list(space['methods'])
  unknown = [m for m in methods if m not in space['methods']]
  if unknown:
    raise errors.ConfigError(f'--methods names methods --space {space_path} does not have: '
                             f'{", ".join(unknown)}; choose from {", ".join(space["methods"])}')
  configs = {m: space_lib.method_configs(config, space, m) for m in methods}
  for m in methods:
    space_lib.final_config(config, space, m)
    if space['enqueue_defaults']:
      space_lib.default_params(config, space, m)
  checked = [(m, c, input_pipeline.dataset_info(c)) for m in methods for c in configs[m]]
  for _, c, info in checked:
    config_checks.check_data(c, info)
  _, first, info = checked[0]
  # isx.tune chooses the CPU setup; a caller whose JAX has started keeps its own
  sizes = sorted({n for _, c, _ in checked for n in (c.batch_size, c.eval_batch_size)})
  cpu = cpu_setup.set_up_for(first, info, cpu_conv_path, cpu_devices, share=share,
                             batch_sizes=sizes)
  for _, c, _ in checked:  # a tuned batch size the devices do not divide fails here
    mesh_lib.check_batch_sizes(c)
  for m in methods:
    _, c, info = next(t for t in checked if t[0] == m)
    reported = evaluation.metric_names(c, info)
    if space['objective'] not in reported:
      raise errors.ConfigError(f'--space {space_path}: "objective" {space["objective"]!r} is '
                               f'not a metric that method {m}\'s trials report; they report '
                               f'{", ".join(sorted(reported))}')
  if storage:  # last: opening a database server's storage creates its tables
    storage = storage_for(storage, heartbeat)
  return Plan(config, space, methods, out, storage, heartbeat, worker, seed, cpu)


def run(plan: Plan, wait_seconds: float = 5.0) -> list:
  """Runs this worker's share of every method's study, then waits for the trials other workers
  are running (a dead worker's is retried here once its heartbeat is stale); returns the best
  grid. It never ends having left a study short of its budget without saying why."""
  space, out = plan.space, plan.out
  runs.make_out(out)
  storage = plan.storage or storage_for(sqlite_url(os.path.join(out, 'studies.db')),
                                        plan.heartbeat,
                                        f'the study storage {os.path.join(out, "studies.db")}')
  beats = isinstance(storage, optuna.storages.RDBStorage)  # Optuna's heartbeat needs an RDB
  said = None
  while True:
    studies = {m: tune_method(plan.config, space, m, storage, out, plan.worker, plan.seed,
                              plan.cpu) for m in plan.methods}
    elsewhere = {m: [t.number for t in running(s, storage)] for m, s in studies.items()}
    elsewhere = {m: n for m, n in elsewhere.items() if n}
    if not elsewhere:
      # running() may have just failed a stale trial and queued its retry: run it here, or a
      # study would end short of its budget.
      if not any(queued(s) and len(finished(s)) < space['trials'] for s in studies.values()):
        break
      continue
    waiting = '; '.join(f'{m}: trial(s) {", ".join(map(str, n))}' for m, n in elsewhere.items())
    if not beats:
      raise NotYet(f'running elsewhere: {waiting}, and this storage keeps no heartbeat to tell '
                   f'a dead worker from a live one; run the same command again once they end')
    if waiting != said:
      print(f'waiting for trials running elsewhere ({waiting}): a live worker finishes them; a '
            f'dead one\'s is retried here once silent for {2 * plan.heartbeat} s', flush=True)
      said = waiting
    time.sleep(wait_seconds)
  for method, study in studies.items():
    done = finished(study)[:space['trials']]
    best = max((t for t in done if t.value is not None), key=lambda t: t.value, default=None)
    print(f'{method}: {len(done)}/{space["trials"]} trials' +
          (f', best {space["objective"]} {best.value:.4f} (trial {best.number}: {best.params})'
           if best else ''), flush=True)
  entries = best_grid(space, storage)
  path = os.path.join(out, 'best_grid.json')
  with open(path + '.tmp', 'w') as f:
    json.dump(entries, f, indent=1)
  os.replace(path + '.tmp', path)
  print(f'{len(entries)} finished method(s) in {path}; their finals: python -m isx.sweep '
        f'--config=... --grid={path} --out=FOLDER', flush=True)
  return entries


class NotYet(errors.UserError):
  """Something to wait for; the message says when to run again."""


def _quiet_user_errors(record) -> bool:
  """Optuna logs a failed trial's exception with its traceback; isx's own errors (and a
  preemption, a full disk) are then reported in isx's one line instead."""
  error = record.exc_info[1] if record.exc_info else None
  return not (isinstance(error, (errors.UserError, errors.Preempted)) or
              (isinstance(error, OSError) and error.errno == errno.ENOSPC))


logging.getLogger('optuna.study._optimize').addFilter(_quiet_user_errors)


def main(argv):
  def body():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config, out, fl = cli.config_flag(), flags.FLAGS.out, flags.FLAGS
    if config is None or not fl.space or not (out or '').strip():
      cli.fail('--config, --space and --out are required: python -m isx.tune '
               '--config=configs/NAME.py --space=results/spaces/SPACE.json --out=FOLDER')
    run(prepare(config, out, fl.space, fl.methods, fl.trials, fl.storage, fl.seed, fl.heartbeat,
                fl.worker, os.environ, fl.cpu_conv_path, fl.cpu_devices))
  cli.run(argv, body)


flags.adopt_module_key_flags(cli)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
