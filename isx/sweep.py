"""Many trainings from one base config: grids of overrides x seeds, each run by isx.main's own
train_and_evaluate in a workdir of its own; one JSON line of results per run.

  python -m isx.sweep --config=configs/fashion_mnist_simplenet.py --config.dataset.data_dir=DATA \
      --grid=results/grids/fashion_mnist_default.json --out=OUT [--shard=i/n] [--only=a,b]

A grid is a JSON list of {"name", "overrides": {"key.path": value}, "seeds": [...]}. A run whose
workdir already holds its final checkpoint is resumed (and so only evaluated), so an
interrupted sweep continues where it stopped. Records go to OUT/runs_<i>.jsonl.
"""
import json
import os
import subprocess
import time

import jax
from absl import app, flags

from isx import cli, config_checks, cpu_setup, errors, input_pipeline, train

flags.DEFINE_string('grid', None, 'JSON list of {"name", "overrides": {key: value}, "seeds"}.')
flags.DEFINE_string('out', None, 'Folder for the runs\' workdirs and runs_<shard>.jsonl.')
flags.DEFINE_string('only', None, 'Comma-separated run names to run from the grid.')
flags.DEFINE_string('shard', None, 'i/n: run every n-th (run, seed) pair from the i-th, so n '
                    'processes can share one machine. Default: the SLURM array task when in one '
                    '(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT), '
                    'else 0/1.')


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


def read_grid(path) -> list:
  """The grid file, checked: a JSON list of entries, each with a name."""
  try:
    with open(path) as f:
      grid = json.load(f)
  except FileNotFoundError:
    raise errors.NotFound(f'--grid {path} not found; see results/grids/ for grids') from None
  except json.JSONDecodeError as e:
    raise errors.ConfigError(
        f'--grid {path} is not JSON ({e}); see results/grids/ for examples') from None
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


def run_one(config, entry: dict, seed: int, out: str, cpu=None) -> dict:
  """Trains one grid entry with one seed through train_and_evaluate; returns its record."""
  cfg = apply_overrides(config, {'plots': False, **entry.get('overrides', {}), 'seed': seed})
  record = {'name': entry['name'], 'seed': seed, 'overrides': entry.get('overrides', {}),
            'config': resolved_config(cfg), 'commit': commit(),
            'device': jax.devices()[0].device_kind, 'devices': jax.device_count()}
  if cpu is not None:
    record['cpu_conv_path'] = cpu.path
  start = time.perf_counter()
  try:
    metrics = train.train_and_evaluate(cfg, os.path.join(out, f'{entry["name"]}_{seed}'), cpu)
  except train.NonFiniteLossError as e:  # a diverged run is a result, not a crash
    return {**record, 'diverged': True, 'error': str(e)}
  return {**record, 'seconds': time.perf_counter() - start, 'metrics': metrics}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.quiet_logs()
  config, out = cli.config_flag(), flags.FLAGS.out
  if config is None or not flags.FLAGS.grid or not (out or '').strip():
    cli.fail('--config, --grid and --out are required: python -m isx.sweep '
             '--config=configs/NAME.py --grid=results/grids/GRID.json --out=FOLDER')
  try:
    sweep(config, out)
  except train.Preempted as e:  # the same command resumes this run
    cli.stop(e)
  except Exception as e:  # noqa: BLE001  one line if the user can fix it, else the traceback
    cli.report(e)
    raise


def sweep(config, out: str):
  """Runs this shard's (entry, seed) pairs, appending one record per run to its runs file."""
  grid = read_grid(flags.FLAGS.grid)
  only = set(flags.FLAGS.only.split(',')) if flags.FLAGS.only else None
  unknown = sorted((only or set()) - {e['name'] for e in grid})
  if unknown:
    raise errors.ConfigError(f'--only names runs that --grid {flags.FLAGS.grid} does not have: '
                             f'{", ".join(unknown)}; choose from {", ".join(e["name"] for e in grid)}')
  shard, share = shard_of(flags.FLAGS.shard, os.environ)
  pairs = runs(grid, only, shard)
  sized = [apply_overrides(config, entry.get('overrides', {})) for entry, _ in pairs]
  if not pairs:  # more processes than runs: this one has nothing to do
    print(f'shard {shard[0]}/{shard[1]}: no runs', flush=True)
    return
  os.makedirs(out, exist_ok=True)
  # as isx.main does, with the cores shared among the sweep's n processes
  info = input_pipeline.dataset_info(sized[0])
  setup = cpu_setup.set_up(sized[0], info.image_shape, info.num_classes,
                           cli.FLAGS.cpu_conv_path, cli.FLAGS.cpu_devices, share=share,
                           batch_sizes=[n for c in sized for n in (c.batch_size,
                                                                   c.eval_batch_size)],
                           log=lambda m: print(m, flush=True))
  for entry, seed in pairs:
    record = run_one(config, entry, seed, out, setup)
    print(json.dumps(record), flush=True)
    if jax.process_index() == 0:
      with open(os.path.join(out, f'runs_{shard[0]}.jsonl'), 'a') as f:
        f.write(json.dumps(record) + '\n')


flags.adopt_module_key_flags(cli)  # --help lists --config and the CPU flags


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
