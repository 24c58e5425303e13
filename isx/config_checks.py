"""The config, checked once before anything is written, and the config a workdir remembers.

`validate` lists every bad value in one message and returns the config with every plug-in's
settings filled in and checked: the dataset, the model, its head, the loss terms and the evals
each declare and check their own (isx.registry.settings), so nothing here knows their fields.
`WORKDIR/config.json` holds the resolved config that trained the workdir; a resume or an eval
whose config differs from it in a field that changes the model, the loss, the optimiser or the
data is refused, naming the fields. Paths, logging, how long and the evals (`may_differ`) are
where a run may change its mind.
"""
import dataclasses
import importlib
import json
import math
import os
from typing import Any

import ml_collections

from isx import class_split, datasets, errors, mesh as mesh_lib, registry
from isx import upgrade as upgrade_lib
from isx.workdir import Workdir

MAY_DIFFER = (
    'dataset.data_dir', 'dataset.download', 'dataset.device_resident', 'dataset.num_workers',
    'dataset.eval_split', 'dataset.test_time_flip', 'eval_batch_size', 'log_every_steps',
    'checkpoint_every_steps', 'max_checkpoints_to_keep', 'plots', 'num_epochs', 'num_train_steps',
    'steps_per_dispatch',
    'model.dtype',  # the same float32 params train or evaluate either way
    'profile_steps',
)


def may_differ(key: str) -> bool:
  """Whether the dotted config key may differ between the training of a workdir and a resume or
  an eval of it: the fields above, every eval's settings (evals never change a model) and the
  dataset plug-in's (they say how to prepare a dataset that is then found prepared)."""
  first, _, rest = key.partition('.')
  return (key in MAY_DIFFER or first == 'evals' or
          (first == 'dataset' and rest.partition('.')[0] not in datasets.CORE))


def _positive_int(config, key):
  value = _get(config, key)
  return None if isinstance(value, int) and value > 0 else f'{key} must be a positive integer, got {value!r}'


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _get(config, key):
  for part in key.split('.'):
    config = config[part]
  return config


@dataclasses.dataclass(frozen=True)
class Prepared:
  """A config validated (every plug-in's settings filled in and checked) and its dataset's info,
  checked against each other: what Experiment.open takes, and checks nothing of again."""
  config: ml_collections.ConfigDict
  info: Any  # isx.dataset_info.DatasetInfo


def prepare(config, info=None) -> Prepared:
  """The one way in for a config: validated, its dataset located (info, unless given: benchmarks
  and tests stand one in) and the data checked against it, before JAX starts. The device check
  needs JAX and comes once, when the Experiment is built (mesh.mesh_for)."""
  if isinstance(config, Prepared):
    return config
  config = validate(config, jax_started=False)
  if info is None:
    from isx import input_pipeline  # TFDS and Grain: only when the dataset itself is read
    info = input_pipeline.dataset_info(config)
  check_data(config, info)
  return Prepared(config, info)


def validate(config, info=None, jax_started=True):
  """Raises ConfigError with one line per problem, or returns the config resolved: a locked
  copy with every plug-in's settings filled in and checked, each plug-in resolved once (its
  kind's resolve, registry.KINDS). With the dataset's info, also `check_data`.
  jax_started=False: before JAX starts (isx.cpu_setup), without the batch sizes' device check,
  which would start it."""
  problems = _core_problems(config, jax_started)
  resolved = {}
  for kind in registry.KINDS.values():  # every plug-in's problem is reported
    try:
      resolved[kind.path] = _package(kind).resolve(_plain(_get(config, kind.path)))
    except errors.ConfigError as e:
      problems.append(str(e))
  problems = list(dict.fromkeys(p for p in problems if p))
  if problems:
    raise errors.ConfigError('; '.join(problems))
  config = config.copy_and_resolve_references()
  config.unlock()
  config.model = {**resolved['model'], 'head': resolved['model.head']}
  for path in ('dataset', 'loss', 'evals'):
    config[path] = resolved[path]
  config.lock()
  if info is not None:
    check_data(config, info)
  return config


def check_data(config, info):
  """What can only be checked against the dataset (its info): that the epochs train a step, and
  each eval's own check (e.g. retrieval's ks against the eval split's size)."""
  if config.num_train_steps is None and config.num_epochs > 0:
    per_epoch = info.num_train // config.batch_size
    if int(config.num_epochs * per_epoch) < 1:
      raise errors.ConfigError(
          f'num_epochs={config.num_epochs} of {per_epoch} steps ({info.num_train} training '
          f'examples / batch_size {config.batch_size}) trains 0 steps; use a batch_size of at '
          f'most {info.num_train}, more epochs, or num_train_steps')
  for kind in registry.KINDS.values():  # a kind whose plug-ins check against the data
    against_data = getattr(_package(kind), 'check_data', None)
    if against_data is not None:
      against_data(_get(config, kind.path), info)


def _package(kind):
  return importlib.import_module(f'isx.{kind.package}')


def _plain(node):
  return node.to_dict() if isinstance(node, ml_collections.ConfigDict) else dict(node)


def _core_problems(config, jax_started) -> list:
  """isx's own fields, each problem a line."""
  problems = [_positive_int(config, k) for k in (
      'batch_size', 'eval_batch_size', 'log_every_steps', 'checkpoint_every_steps',
      'max_checkpoints_to_keep', 'model.embedding_dim', 'steps_per_dispatch')]
  lr = config.learning_rate
  if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
    problems.append(f'learning_rate must be a positive finite number, got {lr!r}')
  problem = config.num_train_steps is not None and _positive_int(config, 'num_train_steps')
  problems.append(problem and f'{problem}, or None to use num_epochs')
  if jax_started:
    problems += mesh_lib.batch_size_problems(config, keys=[
        k for k in ('batch_size', 'eval_batch_size') if not _positive_int(config, k)])
  window = config.profile_steps
  if not isinstance(window, (tuple, list)) or window and not (
      len(window) == 2 and all(isinstance(v, int) for v in window) and 0 <= window[0] < window[1]):
    problems.append(f'profile_steps must be () or (first, last) with 0 <= first < last, got {window!r}')
  if config.num_train_steps is None and not (_number(config.num_epochs) and config.num_epochs > 0):
    problems.append(f'num_epochs must be positive (or set num_train_steps), got {config.num_epochs!r}')
  clip = config.grad_clip_norm
  if not (isinstance(clip, (int, float)) and math.isfinite(clip) and clip >= 0):
    problems.append(f'grad_clip_norm must be 0 (off) or a positive finite number, got {clip!r}')
  ema = config.ema_decay
  if not (isinstance(ema, (int, float)) and 0 <= ema < 1):
    problems.append(f'ema_decay must be 0 (off) or in (0, 1), e.g. 0.999, got {ema!r}')
  for key in ('warmup_steps', 'weight_decay'):
    if not (_number(config[key]) and config[key] >= 0):
      problems.append(f'{key} must be a number >= 0, got {config[key]!r}')
  if config.dataset.data_dir == 'None':  # --config.dataset.data_dir=None on the command line
    problems.append("dataset.data_dir is the string 'None'; leave it out to use TFDS_DATA_DIR")
  try:
    class_split.check_settings(config.dataset)
  except errors.ConfigError as e:
    problems.append(str(e))
  choices = {'lr_schedule': ('constant', 'cosine', 'step'), 'weight_decay_form': ('adamw', 'l2'),
             'optimizer': ('adam',), 'model.dtype': ('float32', 'bfloat16')}
  for key, allowed in choices.items():
    if _get(config, key) not in allowed:
      problems.append(f'unknown {key} {_get(config, key)!r}; choose one of {", ".join(allowed)}')
  return problems


def fill_defaults(config):
  """Adds to config, in place, each setting of its plug-ins that it does not set, at the
  plug-in's default, keeping what it sets: the config files call it (configs/default.variant)
  so that the command line can override every setting (--config.model.head.margin=0.3). Nothing
  is checked here: `validate` does, once."""
  for kind in registry.KINDS.values():
    node = _get(config, kind.path)
    _fill(node, _package(kind).defaults(node))
  return config


def _fill(node, defaults: dict):
  for key, value in defaults.items():
    if key not in node:
      node[key] = value
    elif isinstance(value, dict):
      _fill(node[key], value)


def flat(tree, prefix='') -> dict:
  """{dotted key: value} of a nested config dict, tuples as lists (as JSON has them)."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = list(v) if isinstance(v, tuple) else v
  return out


def _as_dict(config) -> dict:
  return json.loads(config.to_json_best_effort())


def upgrade(saved: dict) -> dict:
  """A config.json (or a workload's config) in today's form (isx.upgrade), with the settings an
  older isx did not record at their plug-ins' defaults. Nothing is checked: the config that is
  run is validated once, where it enters."""
  return _as_dict(fill_defaults(ml_collections.ConfigDict(upgrade_lib.config(saved))))


def differences(saved: dict, config) -> list[str]:
  """Dotted keys where config (resolved) differs from the (upgraded) saved config, outside
  may_differ."""
  a, b = flat(upgrade(saved)), flat(_as_dict(config))
  return sorted(k for k in b if not may_differ(k) and a.get(k) != b.get(k))


def load_saved(workdir) -> dict | None:
  path = Workdir(workdir).config_file
  if not path.exists():
    return None
  try:
    saved = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    saved = e
  if not isinstance(saved, dict):
    raise errors.ConfigError(
        f'{path} is damaged (not the JSON of a config: {saved}); it holds the config '
        f'this workdir was trained with: restore it from a copy, or remove it '
        f'(isx.main then resumes without comparing configs and writes it again; '
        f'isx.eval then needs --config)')
  return saved


def check_against_workdir(config, workdir, action: str):
  """Refuses (one line) a config that differs from the one that trained workdir."""
  saved = load_saved(workdir)
  if saved is None:
    return
  diff = differences(saved, config)
  if diff:
    shown = ', '.join(f'{k} ({flat(saved).get(k)!r} -> {flat(_as_dict(config)).get(k)!r})'
                      for k in diff[:6])
    raise errors.ConfigError(
        f'cannot {action}: {workdir} was trained with another config; differing: '
        f'{shown}{" ..." if len(diff) > 6 else ""}. Use the config in '
        f'{Workdir(workdir).config_file} (isx.eval does when --config is left '
        f'out) or a new --workdir')


def saved_config(workdir) -> ml_collections.ConfigDict:
  """The config a workdir was trained with, locked, as isx.eval uses it without --config."""
  saved = load_saved(workdir)
  if saved is None:
    raise errors.NotFound(f'{Workdir(workdir).config_file} not found: {workdir} holds no '
                          f'isx run; pass --config, or check --workdir')
  return config_from_dict(saved)


def config_from_dict(saved: dict) -> ml_collections.ConfigDict:
  """A locked config from its JSON form (config.json, or a probe's workload)."""
  saved = upgrade(saved)
  saved['profile_steps'] = tuple(saved['profile_steps'])
  config = ml_collections.ConfigDict(saved)
  config.lock()
  return config


def save(config, workdir):
  """Writes WORKDIR/config.json; a relative local data_dir is stored absolute, so that
  `isx.eval --workdir=...` finds the data from any folder."""
  config = config.copy_and_resolve_references()
  data_dir = config.dataset.data_dir
  if data_dir and '://' not in data_dir:
    config.dataset.data_dir = os.path.abspath(data_dir)
  Workdir(workdir).config_file.write_text(config.to_json_best_effort(indent=2))
