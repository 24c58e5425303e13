"""The config, checked once before anything is written, and the config a workdir remembers.

`validate` lists every bad value in one message. `WORKDIR/config.json` holds the config that
trained the workdir; a resume or an eval whose config differs from it in a field that changes
the model, the loss, the optimiser or the data is refused, naming the fields. The fields in
MAY_DIFFER are where a run may change its mind (paths, batch size of eval, logging, how long).
"""
import json
import math
import os

import jax
import ml_collections

from isx import evals, heads, losses, mesh as mesh_lib, models
from isx.workdir import Workdir

MAY_DIFFER = (
    'dataset.data_dir', 'dataset.download', 'dataset.device_resident', 'dataset.num_workers',
    'dataset.eval_split',
    'eval_batch_size', 'knn_block_size', 'retrieval_ks', 'log_every_steps', 'eval_every_steps',
    'checkpoint_every_steps', 'max_checkpoints_to_keep', 'plots', 'num_epochs', 'num_train_steps',
    'steps_per_dispatch', 'model.dtype',  # the same float32 params train or evaluate either way
    'evals', 'loop_evals', 'profile_steps',
)
# Fields added since the first saved configs, with the value that older workdirs trained with.
ADDED_SINCE = {'steps_per_dispatch': 1, 'model.dtype': 'float32',
               'evals': ['accuracy', 'retrieval'], 'loop_evals': ['accuracy'], 'profile_steps': []}


def _positive_int(config, key):
  value = _get(config, key)
  return None if isinstance(value, int) and value > 0 else f'{key} must be a positive integer, got {value!r}'


def _get(config, key):
  for part in key.split('.'):
    config = config[part]
  return config


def validate(config, info=None, jax_started=True):
  """Raises ValueError with one line per problem, or returns the config unchanged. With the
  dataset's info, also checks that the eval split has enough examples for retrieval_ks.
  jax_started=False: before JAX starts (isx.cpu_setup), without the batch sizes' device
  check, which would start it."""
  problems = [_positive_int(config, k) for k in (
      'batch_size', 'eval_batch_size', 'log_every_steps', 'checkpoint_every_steps',
      'max_checkpoints_to_keep', 'knn_block_size', 'model.embedding_dim', 'steps_per_dispatch')]
  lr = config.learning_rate
  if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
    problems.append(f'learning_rate must be a positive finite number, got {lr!r}')
  for key, meaning in (('num_train_steps', 'to use num_epochs'),
                       ('eval_every_steps', 'for once per epoch')):
    problem = config[key] is not None and _positive_int(config, key)
    problems.append(problem and f'{problem}, or None {meaning}')
  for key in ('batch_size', 'eval_batch_size'):  # before a workdir is made (no mesh yet)
    if jax_started and not _positive_int(config, key):
      problems.append(mesh_lib.batch_size_problem(config[key], jax.device_count(), key))
  window = tuple(config.profile_steps)
  if window and not (len(window) == 2 and all(isinstance(v, int) for v in window) and
                     0 <= window[0] < window[1]):
    problems.append(f'profile_steps must be () or (first, last) with 0 <= first < last, got {window!r}')
  if config.num_train_steps is None and not config.num_epochs > 0:
    problems.append(f'num_epochs must be positive (or set num_train_steps), got {config.num_epochs!r}')
  if (info is not None and config.num_train_steps is None and not _positive_int(config, 'batch_size')
      and config.num_epochs > 0):
    per_epoch = info.num_train // config.batch_size
    if int(config.num_epochs * per_epoch) < 1:
      problems.append(
          f'num_epochs={config.num_epochs} of {per_epoch} steps ({info.num_train} training '
          f'examples / batch_size {config.batch_size}) trains 0 steps; use a batch_size of at '
          f'most {info.num_train}, more epochs, or num_train_steps')
  clip = config.grad_clip_norm
  if not (isinstance(clip, (int, float)) and math.isfinite(clip) and clip >= 0):
    problems.append(f'grad_clip_norm must be 0 (off) or a positive finite number, got {clip!r}')
  if config.warmup_steps < 0 or config.weight_decay < 0:
    problems.append('warmup_steps and weight_decay must not be negative')
  if not config.retrieval_ks or any(not isinstance(k, int) or k < 1 for k in config.retrieval_ks):
    problems.append(f'retrieval_ks must be positive integers, got {tuple(config.retrieval_ks)!r}')
  if info is not None and max(config.retrieval_ks, default=0) >= info.num_eval:
    problems.append(f'retrieval_ks {tuple(config.retrieval_ks)} asks for more neighbours than the '
                    f'{info.num_eval - 1} other examples of the eval split; use smaller ones')
  if config.dataset.data_dir == 'None':  # --config.dataset.data_dir=None on the command line
    problems.append("dataset.data_dir is the string 'None'; leave it out to use TFDS_DATA_DIR")
  choices = {'lr_schedule': ('constant', 'cosine', 'step'), 'weight_decay_form': ('adamw', 'l2'),
             'optimizer': ('adam',), 'model.dtype': ('float32', 'bfloat16')}
  for key, allowed in choices.items():
    if _get(config, key) not in allowed:
      problems.append(f'unknown {key} {_get(config, key)!r}; choose one of {", ".join(allowed)}')
  # Building the (lazy) model checks its name, fields and values before a workdir exists; the
  # head alone too, so that an unknown model does not hide an unknown head.
  plugins = [lambda: models.create_model(config.model, num_classes=2),
             lambda: heads.check(config.model.head, config.model.head_scale,
                                 config.model.head_margin)]
  plugins += [lambda t=t: losses.load(t) for t in config.loss.name.split('+')]
  plugins += [lambda e=e: evals.load(e) for e in (*config.evals, *config.loop_evals)]
  for check in plugins:
    try:
      check()
    except ValueError as e:
      problems.append(str(e))
  problems = list(dict.fromkeys(p for p in problems if p))  # a bad head is met twice
  if problems:
    raise ValueError('; '.join(problems))
  return config


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
  """A config.json written by an older isx, in today's form: the fields added since with the
  values those runs used; the old special values (num_train_steps -1, eval_every_steps 0,
  head_scale 0, head_margin < 0) as None;
  and without the model fields that every model once carried but this model does not take."""
  saved = json.loads(json.dumps(saved))
  for key, value in ADDED_SINCE.items():
    *parents, leaf = key.split('.')
    node = saved
    for part in parents:
      node = node[part]
    node.setdefault(leaf, value)
  if saved.get('num_train_steps') == -1:  # once 'from num_epochs'
    saved['num_train_steps'] = None
  if saved.get('eval_every_steps') == 0:  # once 'every epoch'
    saved['eval_every_steps'] = None
  model = saved['model']
  if model.get('head_scale') == 0:
    model['head_scale'] = None
  if (model.get('head_margin') or 0) < 0:
    model['head_margin'] = None
  takes = models.field_names(model['name'])
  for field in [f for f in model if f != 'name' and f not in takes]:
    model.pop(field)
  return saved


def differences(saved: dict, config) -> list[str]:
  """Dotted keys where config differs from the (upgraded) saved config, outside MAY_DIFFER."""
  a, b = flat(upgrade(saved)), flat(_as_dict(config))
  return sorted(k for k in b if k not in MAY_DIFFER and a.get(k) != b.get(k))


def load_saved(workdir) -> dict | None:
  path = Workdir(workdir).config_file
  return json.loads(path.read_text()) if path.exists() else None


def check_against_workdir(config, workdir, action: str):
  """Refuses (one line) a config that differs from the one that trained workdir."""
  saved = load_saved(workdir)
  if saved is None:
    return
  diff = differences(saved, config)
  if diff:
    shown = ', '.join(f'{k} ({flat(saved).get(k)!r} -> {flat(_as_dict(config)).get(k)!r})'
                      for k in diff[:6])
    raise ValueError(f'cannot {action}: {workdir} was trained with another config; differing: '
                     f'{shown}{" ..." if len(diff) > 6 else ""}. Use the config in '
                     f'{Workdir(workdir).config_file} (isx.eval does when --config is left '
                     f'out) or a new --workdir')


def saved_config(workdir) -> ml_collections.ConfigDict:
  """The config a workdir was trained with, locked, as isx.eval uses it without --config."""
  saved = load_saved(workdir)
  if saved is None:
    raise FileNotFoundError(f'{Workdir(workdir).config_file} not found: {workdir} holds no '
                            f'isx run; pass --config, or check --workdir')
  return config_from_dict(saved)


def config_from_dict(saved: dict) -> ml_collections.ConfigDict:
  """A locked config from its JSON form (config.json, or a probe's workload)."""
  saved = upgrade(saved)
  for key in ('retrieval_ks', 'evals', 'loop_evals', 'profile_steps'):
    saved[key] = tuple(saved[key])
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
