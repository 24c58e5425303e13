"""Hyperparameter search on Optuna, the same budget of finished trials for every method; each
trial an isx.main training (isx.grid.run_one) in a workdir of its own.

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
import fcntl
import json
import os
import time
import warnings
import zlib

import numpy as np
import optuna
from absl import app, flags

from isx import cli, config_checks, cpu_setup, errors, grid, input_pipeline, train

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


def read_space(path, trials=None) -> dict:
  """The space file, checked for what does not need a config: a method and a budget > 0,
  every range non-empty."""
  space = grid.read_json(path, 'space', 'results/spaces/')
  if not isinstance(space, dict) or not isinstance(space.get('methods'), dict) or not space[
      'methods']:
    raise errors.ConfigError(f'--space {path} must be a JSON object with "methods": {{name: '
                             f'{{"overrides", "params"}}}}; see results/spaces/')
  unknown = sorted(set(space) - {'objective', 'trials', 'startup_trials', 'enqueue_defaults',
                                 'trial_overrides', 'final_overrides', 'final_seeds', 'methods'})
  if unknown:
    raise errors.ConfigError(f'--space {path}: unknown key(s) {", ".join(unknown)}; see '
                             f'docs/tuning.md for the fields')
  space = {'objective': 'map@r', 'trials': 12, 'startup_trials': None, 'trial_overrides': {},
           'final_overrides': {}, 'final_seeds': [0, 1, 2], **space}
  if trials is not None:
    space['trials'] = trials
  if not isinstance(space['trials'], int) or space['trials'] <= 0:
    raise errors.ConfigError(f'the budget must be a positive number of trials per method, got '
                             f'{space["trials"]!r}')
  for method, entry in space['methods'].items():
    for key, spec in entry.get('params', {}).items():
      _check_range(f'{method}: {key}', spec)
  return space


def _check_range(where, spec):
  if not isinstance(spec, dict):
    raise errors.ConfigError(f'{where}: a range is {{"low", "high"[, "log"][, "int"]}} or '
                             f'{{"choices": [...]}}, got {spec!r}')
  if 'choices' in spec:
    if not spec['choices']:
      raise errors.ConfigError(f'{where}: the range is empty (no choices); give at least one')
    return
  low, high = spec.get('low'), spec.get('high')
  if not all(isinstance(v, (int, float)) for v in (low, high)) or not low < high:
    raise errors.ConfigError(f'{where}: the range [{low}, {high}] is empty; give low < high')
  if spec.get('log') and low <= 0:
    raise errors.ConfigError(f'{where}: a log range needs low > 0, got {low}')


def suggest(trial, key, spec):
  if 'choices' in spec:
    return trial.suggest_categorical(key, spec['choices'])
  if spec.get('int'):
    return trial.suggest_int(key, spec['low'], spec['high'], log=spec.get('log', False))
  return trial.suggest_float(key, spec['low'], spec['high'], log=spec.get('log', False))


def method_configs(config, space, method) -> list:
  """Every config the method's trials can reach the extremes of, resolved and checked before
  any training: an unknown key or a value the config refuses is one line naming it."""
  entry = space['methods'][method]
  unknown = sorted(set(entry) - {'overrides', 'params'})
  if unknown:
    raise errors.ConfigError(f'method {method}: unknown field(s) {", ".join(unknown)}; a method '
                             f'has "overrides" and "params"')
  base = {**entry.get('overrides', {}), **space['trial_overrides']}
  params = entry.get('params', {})
  ends = {k: spec['choices'] if 'choices' in spec else [spec['low'], spec['high']]
          for k, spec in params.items()}
  lows = {k: v[0] for k, v in ends.items()}
  corners = [lows] + [{**lows, k: v} for k, values in ends.items() for v in values[1:]]
  configs = []
  for corner in corners:
    try:
      configs.append(grid.apply_overrides(config, {**base, **corner}))
    except errors.ConfigError as e:
      raise errors.ConfigError(f'--space method {method}: {e}') from None
  return configs


def default_params(config, space, method) -> dict:
  """The values the method's config holds for its searched keys: its defaults, the trial that
  every study starts with when the space says "enqueue_defaults"."""
  entry = space['methods'][method]
  resolved = grid.apply_overrides(config, entry.get('overrides', {}))
  values = {}
  for key, spec in entry.get('params', {}).items():
    value = resolved
    for part in key.split('.'):
      value = value[part]
    inside = value in spec['choices'] if 'choices' in spec else spec['low'] <= value <= spec[
        'high']
    if not inside:
      raise errors.ConfigError(f'--space method {method}: its default {key}={value!r} is outside '
                               f'its range; widen the range or drop "enqueue_defaults"')
    values[key] = value
  return values


# How a lost race to create a new storage's tables reads, per database.
RACES = ('already exists', 'UNIQUE constraint failed', 'Duplicate entry', 'duplicate key')


def storage_for(url: str, heartbeat: int):
  """The Optuna storage at url. An RDB storage (SQLite, PostgreSQL, ...) gets the heartbeat, so
  that a killed worker's trial is failed and retried with the same parameters."""
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
      raise errors.ConfigError(f'--storage {url} cannot be opened ({type(e).__name__}: '
                               f'{str(e).splitlines()[0] if str(e) else ""}); give a reachable '
                               f'Optuna storage URL, e.g. sqlite:///OUT/studies.db') from None


@contextlib.contextmanager
def _sqlite_lock(url: str):
  """Holds an exclusive lock on DB.lock while a SQLite storage is opened: workers that start
  together would otherwise all create its tables, and all but one fail."""
  path = url.split(':///', 1)[1].split('?')[0] if url.startswith('sqlite:///') else ''
  if not path or path == ':memory:' or not os.path.isdir(os.path.dirname(path) or '.'):
    yield  # nothing to share, or a folder that is not there: Optuna says so
    return
  with open(path + '.lock', 'a') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def sampler_seed(seed: int, worker: int, method: str, started: int) -> int:
  """The study's seed, derived per worker and per how many trials the study held when the
  worker joined, so that no two workers (or a worker and its own earlier run) draw alike."""
  return int(np.random.SeedSequence([seed, worker, zlib.crc32(method.encode()), started])
             .generate_state(1)[0])


def finished(study) -> list:
  """The study's finished trials (completed, or pruned because the run diverged), by number.
  The first `budget` of them count: a worker that started the last trial beside another may
  finish one more, which is recorded but not used."""
  return [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]


def tune_method(config, space, method, storage, out, worker, seed, cpu=None):
  """Runs this worker's share of the method's study until it holds its budget."""
  budget, entry = space['trials'], space['methods'][method]
  study = optuna.create_study(study_name=method, storage=storage, direction='maximize',
                              load_if_exists=True)
  optuna.storages.fail_stale_trials(study)
  started = len(study.get_trials(deepcopy=False))
  if space.get('enqueue_defaults') and not started:
    study.enqueue_trial(default_params(config, space, method), user_attrs={'defaults': True},
                        skip_if_exists=True)
  startup = space['startup_trials'] if space['startup_trials'] is not None else budget // 3
  study.sampler = optuna.samplers.TPESampler(
      n_startup_trials=startup, seed=sampler_seed(seed, worker, method, started))

  current = {}

  def objective(trial):
    current['number'] = trial.number
    params = {k: suggest(trial, k, s) for k, s in entry.get('params', {}).items()}
    first = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(
        study.get_trials(deepcopy=False)[trial.number])
    number = trial.number if first is None else first  # a retry resumes the first's workdir
    overrides = {**entry.get('overrides', {}), **space['trial_overrides'], **params}
    record = grid.run_one(config, {'name': method, 'overrides': overrides}, config.seed, out,
                           cpu, workdir=os.path.join(out, method, f'trial_{number:03d}'))
    record.update(study=method, trial=trial.number, params=params,
                  defaults=bool(trial.user_attrs.get('defaults')))
    if not record.get('diverged'):
      record['value'] = float(record['metrics'][space['objective']])
    _append(out, worker, record)
    if record.get('diverged'):  # a result (this region fails), counted in the budget
      trial.set_user_attr('diverged', record['error'])
      raise optuna.TrialPruned(record['error'])
    return record['value']

  while True:
    optuna.storages.fail_stale_trials(study)
    running = sum(t.state == optuna.trial.TrialState.RUNNING
                  for t in study.get_trials(deepcopy=False))
    if len(finished(study)) + running >= budget:
      break
    try:
      study.optimize(objective, n_trials=1)
    except train.Preempted:  # SIGTERM: the trial is failed; its retry resumes the checkpoint
      stopped = study.get_trials(deepcopy=False)[current['number']]
      optuna.storages.RetryHeartbeatStaleTrialCallback(3)(study, stopped)
      raise
  return study


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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.start()
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  config, out, fl = cli.config_flag(), flags.FLAGS.out, flags.FLAGS
  if config is None or not fl.space or not (out or '').strip():
    cli.fail('--config, --space and --out are required: python -m isx.tune '
             '--config=configs/NAME.py --space=results/spaces/SPACE.json --out=FOLDER')
  try:
    tune(config, out)
  except train.Preempted as e:  # the same command resumes the trial
    cli.stop(e)
  except Exception as e:  # noqa: BLE001  one line if the user can fix it, else the traceback
    cli.report(e)
    raise


def tune(config, out: str):
  fl = flags.FLAGS
  space = read_space(fl.space, fl.trials)
  methods = fl.methods.split(',') if fl.methods else list(space['methods'])
  unknown = [m for m in methods if m not in space['methods']]
  if unknown:
    raise errors.ConfigError(f'--methods names methods --space {fl.space} does not have: '
                             f'{", ".join(unknown)}; choose from {", ".join(space["methods"])}')
  configs = [c for m in methods for c in method_configs(config, space, m)]
  if space.get('enqueue_defaults'):
    for m in methods:
      default_params(config, space, m)
  storage = fl.storage and storage_for(fl.storage, fl.heartbeat)
  (worker, _), share = grid.shard_of(fl.worker, os.environ)
  info = input_pipeline.dataset_info(configs[0])
  cpu = cpu_setup.set_up(configs[0], info.image_shape, info.num_classes, cli.FLAGS.cpu_conv_path,
                         cli.FLAGS.cpu_devices, share=share,
                         batch_sizes=sorted({n for c in configs
                                             for n in (c.batch_size, c.eval_batch_size)}),
                         log=lambda m: print(m, flush=True))
  for c in configs:  # a tuned batch size the devices do not divide fails here, not mid-study
    config_checks.check_devices(c)
  os.makedirs(out, exist_ok=True)  # after every check: a refused command writes nothing
  storage = storage or storage_for(f'sqlite:///{os.path.abspath(out)}/studies.db', fl.heartbeat)
  for method in methods:
    study = tune_method(config, space, method, storage, out, worker, fl.seed, cpu)
    done = finished(study)[:space['trials']]
    best = max((t for t in done if t.value is not None), key=lambda t: t.value, default=None)
    print(f'{method}: {len(done)}/{space["trials"]} trials' +
          (f', best {space["objective"]} {best.value:.4f} (trial {best.number}: {best.params})'
           if best else ''), flush=True)
  entries = best_grid(space, storage)
  with open(os.path.join(out, 'best_grid.json'), 'w') as f:
    json.dump(entries, f, indent=1)
  print(f'{len(entries)} finished method(s) in {os.path.join(out, "best_grid.json")}; their finals:'
        f' python -m isx.sweep --config=... --grid={os.path.join(out, "best_grid.json")} '
        f'--out=FOLDER', flush=True)


flags.adopt_module_key_flags(cli)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
