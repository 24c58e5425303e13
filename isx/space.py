"""A tuning study's space file (results/spaces/, docs/tuning.md): read, checked whole before any
trial runs, and the definition each method's study is bound to when it starts.

Every value is checked for its type here, and every config a method's trials can reach the ends
of is resolved and validated as isx.main would validate it, so that a bad space is one line
before the first trial, never a traceback inside one.
"""
import json
import math

from isx import class_split, config_checks, errors, runs

DEFAULTS = {'objective': 'map@r', 'trials': 12, 'startup_trials': None, 'enqueue_defaults': False,
            'trial_overrides': {}, 'final_overrides': {}, 'final_seeds': [0, 1, 2],
            'select_on': class_split.VALIDATION, 'folds': 1}
FOLD = 'dataset.validation_fold'  # what "folds" sets per training of a trial
METHOD_FIELDS = ('overrides', 'params')
RANGE_FIELDS = ('low', 'high', 'log', 'int', 'choices')
# Config fields that never change a trial's result: a study may go on with other values.
INERT = ('dataset.data_dir', 'dataset.download', 'dataset.num_workers', 'dataset.device_resident',
         'eval_batch_size', 'log_every_steps', 'checkpoint_every_steps', 'max_checkpoints_to_keep',
         'plots', 'steps_per_dispatch', 'profile_steps')


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read(path, trials=None) -> dict:
  """The space file with its defaults filled in, every field's type and every range checked;
  what needs the config is checked by method_configs."""
  space = runs.read_json(path, 'space', 'results/spaces/')
  where = f'--space {path}'
  if not isinstance(space, dict) or not isinstance(space.get('methods'), dict) or not space[
      'methods']:
    raise errors.ConfigError(f'{where} must be a JSON object with "methods": {{name: '
                             f'{{"overrides", "params"}}}}; see results/spaces/')
  unknown = sorted(set(space) - set(DEFAULTS) - {'methods'})
  if unknown:
    raise errors.ConfigError(f'{where}: unknown key(s) {", ".join(unknown)}; see '
                             f'docs/tuning.md for the fields')
  space = {**DEFAULTS, **space}
  if trials is not None:
    space['trials'] = trials
  if not _is_int(space['trials']) or space['trials'] <= 0:
    raise errors.ConfigError(f'the budget must be a positive number of trials per method, got '
                             f'{space["trials"]!r}')
  _check_fields(where, space)
  for method, entry in space['methods'].items():
    runs.check_name(f'{where}: method', method)
    if not isinstance(entry, dict):
      raise errors.ConfigError(f'{where}: method {method} must be an object {{"overrides": '
                               f'{{key: value}}, "params": {{key: range}}}}, got {entry!r}')
    unknown = sorted(set(entry) - set(METHOD_FIELDS))
    if unknown:
      raise errors.ConfigError(f'{where}: method {method}: unknown field(s) '
                               f'{", ".join(unknown)}; a method has "overrides" and "params"')
    for field in METHOD_FIELDS:
      if not isinstance(entry.get(field, {}), dict):
        raise errors.ConfigError(f'{where}: method {method}: "{field}" must be an object '
                                 f'{{key: ...}}, got {entry[field]!r}')
    if space['folds'] > 1 and FOLD in {**entry.get('overrides', {}), **entry.get('params', {})}:
      raise errors.ConfigError(f'{where}: method {method} sets {FOLD}, which "folds" sets for '
                               f'each training of a trial; leave it out')
    both = sorted((set(entry.get('overrides', {})) | set(space['trial_overrides'])) &
                  set(entry.get('params', {})))
    if both:
      raise errors.ConfigError(f'{where}: method {method} both fixes and searches '
                               f'{", ".join(both)}; keep it in "params" only')
    for key, spec in entry.get('params', {}).items():
      check_range(f'{method}: {key}', spec)
  return space


def _check_fields(where, space):
  problems = []
  if not isinstance(space['objective'], str) or not space['objective']:
    problems.append(f'"objective" must be a metric name such as "map@r", got '
                    f'{space["objective"]!r}')
  startup = space['startup_trials']
  if startup is not None and not (_is_int(startup) and startup >= 0):
    problems.append(f'"startup_trials" must be a number of trials >= 0 or null, got {startup!r}')
  if not isinstance(space['enqueue_defaults'], bool):
    problems.append(f'"enqueue_defaults" must be true or false, got '
                    f'{space["enqueue_defaults"]!r}')
  for field in ('trial_overrides', 'final_overrides'):
    if not isinstance(space[field], dict):
      problems.append(f'"{field}" must be an object {{key: value}}, got {space[field]!r}')
  seeds = space['final_seeds']
  if not (isinstance(seeds, list) and seeds and all(_is_int(s) and 0 <= s < 2**32 for s in seeds)
          and len(set(seeds)) == len(seeds)):
    problems.append(f'"final_seeds" must be a list of distinct seeds >= 0, got {seeds!r}')
  if not (_is_int(space['folds']) and space['folds'] >= 1):
    problems.append(f'"folds" must be a number of validation folds >= 1, got {space["folds"]!r}')
  elif space['folds'] > 1 and FOLD in space['trial_overrides']:
    problems.append(f'"folds" sets {FOLD} for each training of a trial; leave it out of '
                    f'"trial_overrides"')
  if space['select_on'] not in (class_split.VALIDATION, 'test'):
    problems.append(f'"select_on" must be "validation" (the default) or "test" (debugging '
                    f'only), got {space["select_on"]!r}')
  if problems:
    raise errors.ConfigError(f'{where}: ' + '; '.join(problems))


def check_range(where, spec):
  """A range: {"low", "high"[, "log"][, "int"]} of finite numbers, or {"choices": [...]} of JSON
  scalars."""
  form = ('a range is {"low", "high"[, "log": true][, "int": true]} or {"choices": [...]}')
  if not isinstance(spec, dict) or not spec or set(spec) - set(RANGE_FIELDS):
    raise errors.ConfigError(f'{where}: {form}, got {spec!r}')
  if 'choices' in spec:
    choices = spec['choices']
    if set(spec) != {'choices'} or not isinstance(choices, list):
      raise errors.ConfigError(f'{where}: {form}, got {spec!r}')
    if not choices:
      raise errors.ConfigError(f'{where}: the range is empty (no choices); give at least one')
    if not all(c is None or isinstance(c, (str, bool)) or _is_number(c) for c in choices):
      raise errors.ConfigError(f'{where}: choices must be strings, numbers, booleans or null, '
                               f'got {choices!r}')
    return
  low, high = spec.get('low'), spec.get('high')
  if not all(isinstance(spec.get(k, False), bool) for k in ('log', 'int')):
    raise errors.ConfigError(f'{where}: "log" and "int" are true or false, got {spec!r}')
  if not (_is_number(low) and _is_number(high)) or not low < high:
    raise errors.ConfigError(f'{where}: the range [{low}, {high}] is empty; give low < high')
  if spec.get('int') and not (_is_int(low) and _is_int(high)):
    raise errors.ConfigError(f'{where}: an "int" range needs integer ends, got [{low}, {high}]')
  if spec.get('log') and low <= 0:
    raise errors.ConfigError(f'{where}: a log range needs low > 0, got {low}')


def suggest(trial, key, spec):
  if 'choices' in spec:
    return trial.suggest_categorical(key, spec['choices'])
  if spec.get('int'):
    return trial.suggest_int(key, spec['low'], spec['high'], log=spec.get('log', False))
  return trial.suggest_float(key, spec['low'], spec['high'], log=spec.get('log', False))


def _value(config, key):
  for part in key.split('.'):
    config = config[part]
  return config


def _resolve(config, overrides: dict, where: str):
  """config with overrides set, validated as isx.main validates it (before JAX starts)."""
  try:
    return config_checks.validate(runs.apply_overrides(config, overrides), jax_started=False)
  except errors.ConfigError as e:
    raise errors.ConfigError(f'{where}: {e}') from None


def method_configs(config, space, method) -> list:
  """Every config the method's trials can reach the ends of (each range at its low end, then
  each end and choice in turn), resolved and validated; one line naming the method and the
  values for an unknown key, a value the config refuses, a float range on an integer setting
  or trials that would be selected on the test split."""
  entry = space['methods'][method]
  base = {**entry.get('overrides', {}), **space['trial_overrides']}
  params = entry.get('params', {})
  ends = {k: spec['choices'] if 'choices' in spec else [spec['low'], spec['high']]
          for k, spec in params.items()}
  lows = {k: v[0] for k, v in ends.items()}
  corners = [lows] + [{**lows, k: v} for k, values in ends.items() for v in values[1:]]
  configs = []
  if space['folds'] > 1:  # the last fold exists (checked against the data's classes by prepare)
    corners.append({**lows, FOLD: space['folds'] - 1})
  for corner in corners:
    shown = ', '.join(f'{k}={v!r}' for k, v in corner.items())
    configs.append(_resolve(config, {**base, **corner},
                            f'--space method {method}' + (f' at {shown}' if shown else '')))
  for key, spec in params.items():
    held = _value(configs[0], key)
    if 'choices' not in spec and not spec.get('int') and _is_int(held):
      raise errors.ConfigError(f'--space method {method}: {key} is an integer setting; give its '
                               f'range "int": true (and integer ends) or "choices"')
  split = configs[0].dataset.eval_split
  if space['select_on'] != 'test' and split != class_split.VALIDATION:
    raise errors.ConfigError(
        f'--space method {method}: its trials score the {split!r} split, so selection would '
        f'read the test split; set "dataset.eval_split": "validation" with '
        f'dataset.validation_classes or validation_fraction in "trial_overrides" (or '
        f'"select_on": "test" to debug a space)')
  return configs


def final_config(config, space, method):
  """The final runs' config at the method's lowest corner, validated: a mistyped key or a bad
  value in "final_overrides" is one line before any trial."""
  entry = space['methods'][method]
  lows = {k: spec['choices'][0] if 'choices' in spec else spec['low']
          for k, spec in entry.get('params', {}).items()}
  return _resolve(config, {**entry.get('overrides', {}), **lows, **space['final_overrides']},
                  f'--space method {method}, "final_overrides"')


def default_params(config, space, method) -> dict:
  """The values the method's config holds for its searched keys: its defaults, the trial that
  every study starts with when the space says "enqueue_defaults"."""
  entry = space['methods'][method]
  resolved = runs.apply_overrides(config, entry.get('overrides', {}))
  values = {}
  for key, spec in entry.get('params', {}).items():
    value = _value(resolved, key)
    inside = (value in spec['choices'] if 'choices' in spec else
              _is_number(value) and spec['low'] <= value <= spec['high'])
    if not inside:
      raise errors.ConfigError(f'--space method {method}: its default {key}={value!r} is outside '
                               f'its range; widen the range or drop "enqueue_defaults"')
    values[key] = value
  return values


def definition(config, space, method) -> dict:
  """What a method's trials are: its objective, ranges and the whole trial config (less the
  fields that cannot change a result), as JSON. A study stores it when it starts; a later run
  must agree with it."""
  entry = space['methods'][method]
  trial = runs.apply_overrides(config, {**entry.get('overrides', {}), **space['trial_overrides']})
  resolved = config_checks.flat(runs.resolved_config(trial))
  folds = {'folds': space['folds']} if space['folds'] > 1 else {}  # older studies had one
  return json.loads(json.dumps({
      'objective': space['objective'], 'select_on': space['select_on'], **folds,
      'params': entry.get('params', {}),
      'config': {k: v for k, v in resolved.items() if k not in INERT}}))


def differences(saved: dict, now: dict) -> list:
  """'key (saved -> now)' for every dotted key where two definitions differ."""
  a, b = config_checks.flat(saved), config_checks.flat(now)
  return [f'{k} ({a.get(k)!r} -> {b.get(k)!r})' for k in sorted(a.keys() | b.keys())
          if a.get(k) != b.get(k)]
