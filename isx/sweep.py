"""Many trainings from one base config: grids of overrides x seeds, each run by isx.main's own
train_and_evaluate in a workdir of its own; one JSON line of results per run.

  python -m isx.sweep --config=configs/fashion_mnist_simplenet.py --config.dataset.data_dir=DATA \
      --grid=results/grids/fashion_mnist_default.json --out=OUT [--shard=i/n] [--only=a,b]

A grid is a JSON list of {"name", "overrides": {"key.path": value}, "seeds": [...]}. A run whose
workdir already holds its final checkpoint is resumed (and so only evaluated), so an
interrupted sweep continues where it stopped; a run already recorded in OUT/runs_*.jsonl is
not run or recorded again (one record per run, whoever re-runs it). Records go to
OUT/runs_<i>.jsonl.
"""
import json
import os

import jax
from absl import app, flags

from isx import cli, config_checks, cpu_setup, errors, input_pipeline
from isx import runs as runs_lib
from isx.runs import apply_overrides, make_out, read_grid, recorded_runs, shard_of, shard_runs

flags.DEFINE_string('grid', None, 'JSON list of {"name", "overrides": {key: value}, "seeds"}.')
flags.DEFINE_string('only', None, 'Comma-separated run names to run from the grid.')
flags.DEFINE_string('shard', None, 'i/n: run every n-th (run, seed) pair from the i-th, so n '
                    'processes can share one machine. Default: the SLURM array task when in one '
                    '(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT), '
                    'else 0/1.')


def main(argv):
  def body():
    config, out, fl = cli.config_flag(), flags.FLAGS.out, flags.FLAGS
    if config is None or not fl.grid or not (out or '').strip():
      cli.fail('--config, --grid and --out are required: python -m isx.sweep '
               '--config=configs/NAME.py --grid=results/grids/GRID.json --out=FOLDER')
    sweep(config, out, fl.grid, fl.only, fl.shard, os.environ, fl.cpu_conv_path, fl.cpu_devices)
  cli.run(argv, body)


def sweep(config, out: str, grid_path: str, only=None, shard=None, environ=None,
          cpu_conv_path=None, cpu_devices=None):
  """Runs this shard's (entry, seed) pairs, appending one record per run to its runs file. The
  whole grid is checked first; a run already recorded under OUT is not run or recorded again.
  only: comma-separated names; shard: 'i/n' (default: the SLURM array task, else 0/1)."""
  if os.path.exists(out) and not os.path.isdir(out):
    raise errors.NotAFolder(f'--out {out} is a file; name a folder for the runs')
  grid = read_grid(grid_path)
  only = set(only.split(',')) if only else None
  unknown = sorted((only or set()) - {e['name'] for e in grid})
  if unknown:
    raise errors.ConfigError(f'--only names runs that --grid {grid_path} does not have: '
                             f'{", ".join(unknown)}; choose from {", ".join(e["name"] for e in grid)}')
  shard, share = shard_of(shard, os.environ if environ is None else environ)
  checked = {e['name']: config_checks.validate(apply_overrides(config, e.get('overrides', {})),
                                               jax_started=False) for e in grid}
  pairs = shard_runs(grid, only, shard)
  if not pairs:  # more processes than runs: this one has nothing to do
    print(f'shard {shard[0]}/{shard[1]}: no runs', flush=True)
    return
  recorded = recorded_runs(out, grid_path, grid)
  todo = [(e, seed) for e, seed in pairs if (e['name'], seed) not in recorded]
  for entry, seed in pairs:
    if (entry['name'], seed) in recorded:
      print(f'{entry["name"]} seed {seed}: already recorded in '
            f'{recorded[entry["name"], seed]}; not run again', flush=True)
  if not todo:
    return
  make_out(out)
  # as isx.main does, with the cores shared among the sweep's n processes
  sized = [checked[e['name']] for e, _ in todo]
  setup = cpu_setup.set_up_for(
      sized[0], input_pipeline.dataset_info(sized[0]), cpu_conv_path, cpu_devices, share=share,
      batch_sizes=[n for c in sized for n in (c.batch_size, c.eval_batch_size)])
  for entry, seed in todo:
    record = runs_lib.run_one(config, entry, seed, out, setup)
    print(json.dumps(record), flush=True)
    if jax.process_index() == 0:
      with open(os.path.join(out, f'runs_{shard[0]}.jsonl'), 'a') as f:
        f.write(json.dumps(record) + '\n')


flags.adopt_module_key_flags(cli)  # --help lists --config and the CPU flags


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
