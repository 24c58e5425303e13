"""Runs from a base config: {dotted key: value} overrides, grids of them, shards of a grid, and
one training through isx.main's own train_and_evaluate with its JSON record; isx.sweep and
isx.tune run them."""
import json
import os
import re
import subprocess
import time

import jax

from isx import config_checks, errors, metric_writers, train


def apply_overrides(config, overrides: dict):
  """config with a grid entry's {dotted key: value} set. A plug-in's name (model.head.name,
  loss.name) is set first and the plug-ins' settings filled in from their defaults, so that
  the entry can then set any of them (model.head.margin)."""
  config = config.copy_and_resolve_references()
  config.unlock()
  names = {k: v for k, v in overrides.items() if k.endswith('.name')}
  for key, value in names.items():  # the plug-ins' defaults are looked up by these names
    if not isinstance(value, str) or not value.strip():
      raise errors.ConfigError(f'grid override {key}={value!r}: a plug-in name is a non-empty '
                               f'string, e.g. "softmax"')
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
    except (KeyError, AttributeError, TypeError, ValueError) as e:
      detail = e.args[0] if isinstance(e, KeyError) and e.args else e
      if 'Other fields present' in str(detail):  # ml_collections prints the whole config
        mean = re.search(r'Did you mean "([^"]+)"', str(detail))
        detail = f'the config has no field {leaf!r}' + (
            f'; did you mean {mean.group(1)!r}?' if mean else '')
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


# A name that becomes a folder under --out: no separators, no leading dot, so never '..'.
NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.+=,@-]{0,99}')
ENTRY_FIELDS = ('name', 'overrides', 'seeds', 'trial', 'value')  # the last two: isx.tune's best_grid


def check_name(what: str, name):
  """Refuses a name that would not stay one folder inside --out."""
  if not isinstance(name, str) or not NAME.fullmatch(name):
    raise errors.ConfigError(f'{what} name {name!r} cannot name a folder inside --out: use '
                             f'letters, digits and _.+=,@- (not first: . or -), at most 100')


def read_grid(path) -> list:
  """The grid file, checked: a JSON list of entries, each with a distinct name that stays inside
  --out, its overrides an object and its seeds distinct integers >= 0."""
  grid = read_json(path, 'grid', 'results/grids/')
  form = (f'--grid {path} must be a JSON list of {{"name", "overrides", "seeds"}} entries; see '
          f'results/grids/ for examples')
  if not isinstance(grid, list) or not grid or not all(
      isinstance(e, dict) and 'name' in e for e in grid):
    raise errors.ConfigError(form)
  for entry in grid:
    check_name(f'--grid {path}: entry', entry['name'])
    unknown = sorted(set(entry) - set(ENTRY_FIELDS))
    if unknown:
      raise errors.ConfigError(f'--grid {path}: entry {entry["name"]}: unknown field(s) '
                               f'{", ".join(unknown)}; an entry has {", ".join(ENTRY_FIELDS)}')
    seeds = entry.get('seeds', [0])
    if not isinstance(entry.get('overrides', {}), dict) or not (
        isinstance(seeds, list) and seeds and len(set(map(str, seeds))) == len(seeds) and
        all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in seeds)):
      raise errors.ConfigError(f'--grid {path}: entry {entry["name"]}: "overrides" must be an '
                               f'object {{key: value}} and "seeds" a list of distinct integers '
                               f'>= 0')
  names = [e['name'] for e in grid]
  twice = sorted({n for n in names if names.count(n) > 1})
  if twice:
    raise errors.ConfigError(f'--grid {path} names {", ".join(twice)} more than once; each entry '
                             f'needs a name of its own (it names the runs\' workdirs and records)')
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


def shard_runs(grid: list, only=None, shard=(0, 1)):
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
  workdir = workdir or os.path.join(out, f'{entry["name"]}_{seed}')
  try:
    metrics = train.train_and_evaluate(config_checks.prepare(cfg), workdir, cpu)
  except train.NonFiniteLossError as e:  # a diverged run is a result, not a crash
    return {**record, 'diverged': True, 'error': str(e)}
  record = {**record, 'seconds': time.perf_counter() - start, 'metrics': metrics}
  return {**record, 'curve': found} if (found := curve(workdir)) else record


def curve(workdir: str) -> list:
  """The evals' values by step, in the loop and at the end ([{'step', metric: value}], from
  metrics.jsonl's test/ and eval/ records): what a convergence figure draws from the record."""
  points = {}
  for r in metric_writers.read_jsonl(workdir):
    values = {k.split('/', 1)[1]: v for k, v in r.items()
              if k.split('/')[0] in ('test', 'eval') and isinstance(v, (int, float))}
    if values:
      points.setdefault(r['step'], {'step': r['step']}).update(values)
  return [points[s] for s in sorted(points)]


def make_out(out: str):
  """Creates --out (and its parents); one line when it is a file or cannot be written."""
  if os.path.exists(out) and not os.path.isdir(out):
    raise errors.NotAFolder(f'--out {out} is a file; name a folder for the runs')
  try:
    os.makedirs(out, exist_ok=True)
    probe = os.path.join(out, f'.write_test_{os.getpid()}')
    open(probe, 'w').close()
    os.remove(probe)
  except OSError as e:
    raise errors.NotWritable(f'--out {out} is not writable ({e.strerror or e}); choose another '
                             f'--out') from None


def recorded_runs(out: str, grid_path: str, grid: list) -> dict:
  """{(name, seed): runs file} of the runs OUT's records hold as finished (or diverged): a
  re-run skips them. A recorded run whose overrides differ from the grid's entry of that name is
  refused in one line: its workdir and record belong to another question."""
  entries = {e['name']: e.get('overrides', {}) for e in grid}
  found = {}
  if not os.path.isdir(out):
    return found
  for name in sorted(os.listdir(out)):
    if not (name.startswith('runs_') and name.endswith('.jsonl')):
      continue
    with open(os.path.join(out, name)) as f:
      for line in f:
        try:
          record = json.loads(line)
          key = (record['name'], record['seed'])
        except (json.JSONDecodeError, KeyError, TypeError):  # a line cut short by a kill
          continue
        if key[0] in entries and ('metrics' in record or record.get('diverged')):
          if record.get('overrides', {}) != entries[key[0]]:
            raise errors.ConfigError(
                f'{os.path.join(out, name)} records run {key[0]} seed {key[1]} with other '
                f'overrides than --grid {grid_path} gives it ({record.get("overrides")} vs '
                f'{entries[key[0]]}); rename the entry or use a new --out')
          found[key] = name
  return found
