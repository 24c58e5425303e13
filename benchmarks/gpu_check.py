"""Every GPU row of BENCHMARKS.md from one command on one GPU (within 8 minutes), into one JSON.

On a machine with PyPI (no GPU needed), build what an offline GPU machine with only JAX, flax,
optax, orbax and torch lacks, into an ignored folder to copy there:

  python benchmarks/gpu_check.py prepare [--out .devdata]

  - .devdata/wheels: the wheels of requirements.txt's packages (and their needs, at the versions
    installed here) that the GPU image does not have (DEVICE_HAS; its JAX, flax, optax,
    orbax, chex and torch are used as they are), for its Python 3.12;
  - .devdata/fashion-mnist: the four FashionMNIST IDX files (Debian's dataset-fashion-mnist),
    imported there by isx.prepare_data (~20 s): smaller to carry than the prepared dataset.

On the GPU machine, with .devdata/ copied beside the code (`bash benchmarks/gpu_check.sh`), `run`:

  python benchmarks/gpu_check.py run --data_dir DIR --out OUT/gpu_check.json

  1. train: isx.main, the default FashionMNIST recipe (configs/fashion_mnist_simplenet.py),
     20 epochs, launch to eval/metrics.json: wall seconds, training-loop seconds, accuracy;
  2. the same with steps_per_dispatch 32 (a rolled lax.scan on accelerators), and with
     model.dtype bfloat16 at K=32;
  3. rolled_scan: K=32's logged train losses against K=1's (max relative difference, and
     whether they are identical);
  3b. fast: the fast recipe (configs/fashion_mnist_fast.py): seconds from the launch and from
     the loop's first step to the first in-loop eval at 93% or more;
  4. googlenet: benchmarks/bench_gpu.py, CIFAR-100 shape, isx vs the torch twin (eager and
     torch.compile), float32 and bfloat16, img/s and MFU (needs torch; the row says so if not).

The tests smoke-run `run` on CPU with tiny sizes (tests/test_gpu_check.py).
"""
import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The packages a JAX + PyTorch GPU image has (one such image, listed 2026-11-17), as pip names.
DEVICE_HAS = set("""absl-py aiofiles attrs certifi charset-normalizer chex cloudpickle contourpy cycler
etils filelock flax fonttools fsspec grpcio humanize idna importlib-metadata jax jaxlib
jax-cuda13-pjrt jax-cuda13-plugin kiwisolver markdown-it-py matplotlib mdurl ml-dtypes msgpack
numpy opt-einsum optax orbax-checkpoint packaging pillow pluggy prometheus-client protobuf psutil
pyarrow pygments pyparsing pytest python-dateutil pyyaml requests rich simplejson six
tensorboard tensorstore toolz torch tqdm treescope typing-extensions urllib3 uvloop wrapt
zipp""".split())
IDX_DIR = '/usr/share/datasets/fashion-mnist'
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_17_x86_64',
             'manylinux2014_x86_64', 'manylinux1_x86_64')


def device_needs(top_level) -> dict:
  """{dist: version} of top_level and everything they need (this venv's installed versions,
  the ones the tests pass with), without what the device image has."""
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  from packaging.requirements import Requirement  # pylint: disable=g-import-not-at-top
  env = {'python_version': '3.12', 'python_full_version': '3.12.3', 'sys_platform': 'linux',
         'platform_system': 'Linux', 'platform_machine': 'x86_64', 'extra': ''}
  needs, todo = {}, list(top_level)
  while todo:
    name = _normal(todo.pop())
    if name in needs or name in DEVICE_HAS:
      continue
    needs[name] = metadata.version(name)
    for line in metadata.requires(name) or []:
      req = Requirement(line)
      if req.marker is None or req.marker.evaluate(env):
        todo.append(req.name)
  return needs


def _normal(name: str) -> str:
  return re.sub(r'[-_.]+', '-', name).lower()


def prepare(out: str, idx_dir: str = IDX_DIR, python_version: str = '3.12'):
  """Fills out/wheels and out/fashion-mnist; prints their size.
  Wheels for the device's Python where PyPI has them; a package with only a source release
  (promise) is built into a wheel here, which works there if it is pure Python."""
  wheels = os.path.join(out, 'wheels')
  shutil.rmtree(wheels, ignore_errors=True)
  os.makedirs(wheels)
  with open(os.path.join(ROOT, 'requirements.txt')) as f:
    top = [re.split(r'[=<> ;]', l.strip())[0] for l in f if l.strip() and l[0] != '#']
  pip = [sys.executable, '-m', 'pip']
  for name, version in sorted(device_needs(top).items()):
    cmd = [*pip, 'download', '-q', '--no-deps', '--only-binary=:all:', '--python-version',
           python_version, '--implementation', 'cp', '-d', wheels, f'{name}=={version}']
    for platform in PLATFORMS:
      cmd += ['--platform', platform]
    if subprocess.run(cmd, capture_output=True).returncode:
      subprocess.run([*pip, 'wheel', '-q', '--no-deps', '-w', wheels, f'{name}=={version}'],
                     check=True, capture_output=True)
  data = os.path.join(out, 'fashion-mnist')
  os.makedirs(data, exist_ok=True)
  for name in os.listdir(idx_dir):
    shutil.copy(os.path.join(idx_dir, name), data)
  size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
  print(f'{out}: {len(os.listdir(wheels))} wheels + FashionMNIST IDX, {size / 2**20:.1f} MiB')


def _train(name, data_dir, workdir, epochs, extra, log,
           config='configs/fashion_mnist_simplenet.py') -> dict:
  """One isx.main run, launch to eval/metrics.json (epochs None: the config's)."""
  args = [sys.executable, '-m', 'isx.main', f'--config={config}',
          f'--workdir={workdir}', f'--config.dataset.data_dir={data_dir}',
          *([f'--config.num_epochs={epochs}'] if epochs else []), '--config.plots=False', *extra]
  launched, start = time.time(), time.perf_counter()
  p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
  wall = time.perf_counter() - start
  if p.returncode:
    return {'name': name, 'error': ' '.join(p.stderr.strip().splitlines()[-1:])[:500]}
  with open(os.path.join(workdir, 'eval', 'metrics.json')) as f:
    metrics = json.load(f)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    logged = [json.loads(l) for l in f]
  windows = [r for r in logged if 'train/steps_per_s' in r]
  steps = [r['step'] for r in windows]
  loop = sum((s - prev) / r['train/steps_per_s']
             for r, s, prev in zip(windows, steps, [0] + steps))
  row = {'name': name, 'config': config, 'overrides': extra,
         'wall_s_launch_to_metrics': round(wall, 1), 'train_loop_s': round(loop, 3),
         'steps': metrics['step'], 'accuracy': metrics['accuracy'], 'map@r': metrics.get('map@r'),
         **_to_target(logged, windows, launched),
         'xla_cpu': next((l for l in p.stdout.splitlines() if l.startswith('XLA:CPU: ')), None),
         'train_losses': [r['train/loss'] for r in windows]}
  log(f"{name}: {row['wall_s_launch_to_metrics']} s launch to metrics, loop "
      f"{row['train_loop_s']} s, accuracy {100 * row['accuracy']:.2f}%")
  return row


def _to_target(logged, windows, launched, target=0.93) -> dict:
  """Seconds from the launch, and from the loop's first step (the first log window's time less
  its steps at its rate), to the first in-loop test eval at target or more; {} without one."""
  hit = next((r for r in logged if r.get('test/accuracy', 0) >= target), None)
  if hit is None or not windows:
    return {}
  loop_start = windows[0]['time'] - windows[0]['step'] / windows[0]['train/steps_per_s']
  return {'target': target, 'step_to_target': hit['step'],
          's_launch_to_target': round(hit['time'] - launched, 1),
          'loop_s_to_target': round(hit['time'] - loop_start, 2)}


def _googlenet(bench_args, log) -> dict:
  if importlib.util.find_spec('torch') is None:
    return {'error': 'torch is not installed here: no twin to compare with'}
  p = subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'bench_gpu.py'),
                      '--models=googlenet', '--json', *bench_args], cwd=ROOT,
                     capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': ROOT})
  rows = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{')]
  if p.returncode or not rows:
    return {'error': ' '.join(p.stderr.strip().splitlines()[-1:])[:500]}
  for row in rows:
    log(f"googlenet {row['dtype']}: {row['img_per_s']} img/s, MFU {row['isx_mfu']}")
  return {'rows': rows}


def run(data_dir, out, epochs=20, extra=(), bench_args=(), log=print) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  work = tempfile.mkdtemp(prefix='gpu_check_')
  runs = [('default_k1', []), ('k32', ['--config.steps_per_dispatch=32']),
          ('k32_bfloat16', ['--config.steps_per_dispatch=32', '--config.model.dtype=bfloat16'])]
  result = {'device': jax.devices()[0].device_kind, 'backend': jax.default_backend(),
            'jax': jax.__version__, 'epochs': epochs, 'train': []}
  for name, overrides in runs:
    result['train'].append(_train(name, data_dir, os.path.join(work, name), epochs,
                                  [*overrides, *extra], log))
  result['train'].append(_train('fast', data_dir, os.path.join(work, 'fast'), None, list(extra),
                                log, 'configs/fashion_mnist_fast.py'))
  k1, k32 = result['train'][0], result['train'][1]
  if 'error' not in k1 and 'error' not in k32:
    a, b = k1['train_losses'], k32['train_losses']
    result['rolled_scan'] = {
        'identical': a == b, 'logged_losses': len(a),
        'max_rel_diff': max((abs(x - y) / max(abs(x), 1e-30) for x, y in zip(a, b)), default=None)}
  result['googlenet'] = _googlenet(bench_args, log)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, 'w') as f:
    json.dump(result, f, indent=1)
  shutil.rmtree(work, ignore_errors=True)
  log(f'wrote {out}')
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  sub = parser.add_subparsers(dest='command', required=True)
  p = sub.add_parser('prepare', help='wheels + IDX files to carry to the device machine')
  p.add_argument('--out', default=os.path.join(ROOT, '.devdata'))
  p.add_argument('--idx_dir', default=IDX_DIR)
  r = sub.add_parser('run', help='every GPU row, one JSON')
  r.add_argument('--data_dir', required=True, help='a TFDS data dir holding fashion_mnist')
  r.add_argument('--out', required=True, help='the JSON file to write')
  r.add_argument('--epochs', type=int, default=20)
  r.add_argument('--extra', action='append', default=[], help='one more isx.main flag per use')
  r.add_argument('--bench_arg', action='append', default=[], help='one bench_gpu.py flag per use')
  args = parser.parse_args()
  if args.command == 'prepare':
    prepare(args.out, args.idx_dir)
  else:
    run(args.data_dir, args.out, args.epochs, args.extra, args.bench_arg)


if __name__ == '__main__':
  main()
