"""Runs from a base config: {dotted key: value} overrides, grids of them, shards of a grid, and
one training through isx.main's own train_and_evaluate with its JSON record; isx.sweep and
isx.tune run them."""
import json
import os
import subprocess
import time

import jax

from isx import config_checks, errors, train


def apply_overrides(config, overrides: dict):
  """config with a grid entry's {dotted key: value} set. A plug-in's name (model.head.name,
  loss.name) is set first and the plug-ins' settings filled in from their defaults, so that
  the entry can then set any of them (model.head.margin)."""
  config = config.copy_and_resolve_references()
  config.unlock()
  names = {k: v for k, v in overrides.items() if k.endswith('.name')}
  _set(config, names)
  config_checks.fill_defaults(config)
  config.lock()  # so that a typo in a key fails instead of adding a field nobody reads
  _set(config, {k: v for k, v in overrides.items() if k not in names})
  return config


def _set(config, overrides: dict):
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    node = config
    try:
      for parent in parents:
        node = node[parent]
      node[leaf] = value
    except (KeyError, AttributeError, TypeError) as e:
      detail = e.args[0] if isinstance(e, KeyError) and e.args else e
      raise errors.ConfigError(f'grid override {key}={value!r}: {detail}') from None


def read_json(path, flag: str, examples: str):
  """The JSON file that --flag names; one line when it is missing or not JSON, pointing at the
  examples folder."""
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise errors.NotFound(f'--{flag} {path} not found; see {examples} for {flag}s') from None
  except json.JSONDecodeError as e:
    raise errors.ConfigError(
        f'--{flag} {path} is not JSON ({e}); see {examples} for examples') from None


def read_grid(path) -> list:
  """The grid file, checked: a JSON list of entries, each with a name."""
  grid = read_json(path, 'grid', 'results/grids/')
  if not isinstance(grid, list) or not all(isinstance(e, dict) and 'name' in e for e in grid):
    raise errors.ConfigError(
        f'--grid {path} must be a JSON list of {{"name", "overrides", "seeds"}} '
        f'entries; see results/grids/ for examples')
  return grid


def parse_shard(text: str) -> tuple:
  """'i/n' -> (i, n), refusing what would run nothing."""
  try:
    i, n = (int(v) for v in text.split('/'))
  except ValueError:
    i, n = -1, 0
  if not 0 <= i < n:
    raise errors.ConfigError(f'--shard={text} must be i/n with 0 <= i < n, e.g. --shard=0/2 and '
                             f'--shard=1/2 for two processes')
  return i, n


def shard_of(flag, environ) -> tuple:
  """((i, n), the number of processes sharing this machine's cores): the explicit --shard wins;
  in a SLURM array, its task among the array's tasks, each with cores of its own; else 0/1."""
  if flag is not None:
    shard = parse_shard(flag)
    return shard, shard[1]
  if 'SLURM_ARRAY_TASK_ID' in environ:
    try:
      task = int(environ['SLURM_ARRAY_TASK_ID']) - int(environ.get('SLURM_ARRAY_TASK_MIN', 0))
      count = int(environ['SLURM_ARRAY_TASK_COUNT'])
    except (KeyError, ValueError):
      raise errors.ConfigError('SLURM_ARRAY_TASK_ID is set without a numeric '
                               'SLURM_ARRAY_TASK_COUNT; pass --shard=i/n') from None
    return parse_shard(f'{task}/{count}'), 1
  return (0, 1), 1


def runs(grid: list, only=None, shard=(0, 1)):
  """The (entry, seed) pairs of a grid that shard i of n runs, in grid order."""
  pairs = [(e, seed) for e in grid if not only or e['name'] in only for seed in e.get('seeds', [0])]
  return pairs[shard[0]::shard[1]]


def commit() -> str:
  """The isx commit the sweep runs, '+dirty' when the tree has changes; '' outside a git tree."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=here, capture_output=True,
                          text=True, check=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=here,
                           capture_output=True, text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return ''
  return head + ('+dirty' if dirty else '')


def resolved_config(cfg) -> dict:
  """The run's whole config as its workdir's config.json holds it, less the data dir (a path on
  the machine that ran it), so that results/make_report.py --check can compare a command's."""
  resolved = json.loads(cfg.to_json_best_effort())
  resolved['dataset']['data_dir'] = None
  return resolved


def run_one(config, entry: dict, seed: int, out: str, cpu=None, workdir=None) -> dict:
  """Trains one grid entry with one seed through train_and_evaluate, in workdir (default
  OUT/NAME_SEED); returns its record."""
  cfg = apply_overrides(config, {'plots': False, **entry.get('overrides', {}), 'seed': seed})
  record = {'name': entry['name'], 'seed': seed, 'overrides': entry.get('overrides', {}),
            'config': resolved_config(cfg), 'commit': commit(),
            'device': jax.devices()[0].device_kind, 'devices': jax.device_count()}
  if cpu is not None:
    record['cpu_conv_path'] = cpu.path
  start = time.perf_counter()
  try:
    metrics = train.train_and_evaluate(
        cfg, workdir or os.path.join(out, f'{entry["name"]}_{seed}'), cpu)
  except train.NonFiniteLossError as e:  # a diverged run is a result, not a crash
    return {**record, 'diverged': True, 'error': str(e)}
  return {**record, 'seconds': time.perf_counter() - start, 'metrics': metrics}
