"""Wall-clock time to accuracy: launches `python -m isx.main` as a user would, once per arm and
seed, and records the seconds from the launch to eval/metrics.json with the test accuracy, and
the seconds (from the launch) of every in-loop eval, for results/make_report.py's time-to-accuracy
table and plot.

  python benchmarks/time_to_accuracy.py --config=configs/fashion_mnist_fast.py --data_dir=DATA \
      [--arms=is,baseline] [--seeds=0,1,2] [--out=OUT] [--record=results/raw/fashion_mnist_fast.jsonl]
      [--set=KEY=VALUE ...]

"Warm", as the recipe's goal is stated: the venv, the data and the cached CPU setup are in place
before the first launch (isx.cpu_setup times its choice once per host; the first run of a host
includes it, so run once before measuring). Each run starts from an empty workdir. Resumable: a
(name, seed) already in the record file is skipped. The host's CPU, cores and the load average
before each launch go into the record, so that hosts and loads compare.
"""
import argparse
import ast
import json
import os
import pathlib
import subprocess
import sys
import time
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_sets(sets) -> dict:
  """['num_epochs=3', ...] -> {'num_epochs': 3, ...}: literals typed, anything else a string."""
  out = {}
  for s in sets:
    key, _, value = s.partition('=')
    try:
      out[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      out[key] = value
  return out


def curve(workdir: pathlib.Path, launched: float) -> list:
  """[{step, seconds since launch, accuracy}] of the in-loop test evals, then the final one."""
  points = []
  with open(workdir / 'metrics.jsonl') as f:
    for line in f:
      row = json.loads(line)
      if 'test/accuracy' in row:
        points.append({'step': row['step'], 'seconds': row['time'] - launched,
                       'accuracy': row['test/accuracy']})
  return points


def run_name(config: str, arm: str) -> str:
  """The record's name: the config's, and the variant of any arm but 'is'."""
  return pathlib.Path(config).stem + ('' if arm == 'is' else f'_{arm}')


def run(config: str, arm: str, seed: int, out: pathlib.Path, data_dir: str, sets) -> dict:
  from isx import cpu_setup, errors, runs
  name = run_name(config, arm)
  tag = f'_{zlib.crc32(json.dumps(parse_sets(sets), sort_keys=True).encode()):08x}' if sets else ''
  workdir = out / f'{name}_{seed}{tag}'  # one folder per question: name, seed and overrides
  if workdir.exists():  # each measured run starts from an empty workdir; isx deletes no run
    raise errors.InTheWay(f'{workdir} exists (a run that the record file does not hold); '
                          f'remove it or choose another --out')
  command = [sys.executable, '-m', 'isx.main',
             f'--config={config}' + ('' if arm == 'is' else f':{arm}'),
             f'--workdir={workdir}', f'--config.seed={seed}',
             f'--config.dataset.data_dir={data_dir}', *(f'--config.{s}' for s in sets)]
  load = os.getloadavg()[0]
  launched = time.time()
  done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                        text=True)
  if done.returncode:
    said = [line for line in done.stderr.splitlines() if line.startswith('error:')]
    raise errors.UserError(
        f'{name} seed {seed}: isx.main exited with {done.returncode} '
        f'({said[-1] if said else done.stderr.strip().splitlines()[-1:]}); nothing was '
        f'recorded. Its command: {" ".join(command)}')
  metrics_file = workdir / 'eval' / 'metrics.json'
  seconds = metrics_file.stat().st_mtime - launched
  metrics = json.loads(metrics_file.read_text())
  config_json = json.loads((workdir / 'config.json').read_text())
  config_json['dataset']['data_dir'] = None
  points = curve(workdir, launched)
  points.append({'step': metrics['step'], 'seconds': seconds, 'accuracy': metrics['accuracy']})
  setup = json.loads((workdir / 'cpu_setup.json').read_text())
  return {'name': name, 'seed': seed, 'arm': arm, 'config_file': config,
          'overrides': parse_sets(sets), 'config': config_json,
          'commit': runs.commit(), 'host': cpu_setup.host_key(), 'cpu_conv_path': setup.get('path'),
          'load_before': load, 'seconds': seconds, 'curve': points, 'metrics': metrics,
          'date': time.strftime('%Y-%m-%d', time.gmtime(launched))}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', required=True)
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--arms', default='is,baseline', help="'is' (the config) and variants of it")
  parser.add_argument('--seeds', default='0,1,2')
  parser.add_argument('--out', default='/tmp/isx_time_to_accuracy', help='the runs\' workdirs')
  parser.add_argument('--record', default=str(ROOT / 'results/raw/fashion_mnist_fast.jsonl'))
  parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                      help='a config override for every run, e.g. --set=num_epochs=3')
  args = parser.parse_args()
  record = pathlib.Path(args.record)
  done = set()
  if record.exists():
    done = {(r['name'], r['seed'], json.dumps(r['overrides'], sort_keys=True))
            for r in map(json.loads, record.read_text().splitlines())}
  sets = parse_sets(args.set)
  for seed in map(int, args.seeds.split(',')):
    for arm in args.arms.split(','):
      if (run_name(args.config, arm), seed, json.dumps(sets, sort_keys=True)) in done:
        continue
      r = run(args.config, arm, seed, pathlib.Path(args.out), args.data_dir, args.set)
      print(f'{r["name"]} seed {seed}: {100 * r["metrics"]["accuracy"]:.2f}% in '
            f'{r["seconds"]:.1f} s from launch to metrics.json (load before {r["load_before"]:.2f})',
            flush=True)
      with open(record, 'a') as f:
        f.write(json.dumps(r) + '\n')


if __name__ == '__main__':
  from isx import cli
  cli.run_script(main)
