"""benchmarks/gpu_check.py on CPU with tiny sizes: what it carries, and one JSON with every row."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from configs import fashion_mnist_fast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'benchmarks', 'gpu_check.py')


def _module():
  spec = importlib.util.spec_from_file_location('gpu_check', SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_the_carry_is_what_the_device_image_lacks(tmp_path, monkeypatch):
  gpu_check = _module()
  needs = gpu_check.device_needs(['tensorflow-datasets', 'grain', 'jax', 'flax'])
  assert {'tensorflow-datasets', 'grain', 'array-record', 'promise'} <= set(needs)
  assert not {'jax', 'flax', 'numpy', 'protobuf'} & set(needs)  # the device image has them
  idx = tmp_path / 'idx'
  idx.mkdir()
  for name in ('train-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
    (idx / name).write_bytes(b'x')
  asked = []

  class Done:
    def __init__(self, returncode):
      self.returncode = returncode

  def fake_pip(cmd, **kwargs):  # offline: a wheel per package; promise has only a source release
    asked.append(cmd[3])
    name, version = next(a for a in cmd if '==' in a).split('==')
    if cmd[3] == 'download' and name == 'promise':
      return Done(1)
    dest = cmd[cmd.index('-d' if cmd[3] == 'download' else '-w') + 1]
    open(os.path.join(dest, f'{name}-{version}-py3-none-any.whl'), 'w').close()
    return Done(0)
  monkeypatch.setattr(gpu_check, 'device_needs', lambda top: {'grain': '1', 'promise': '2'})
  monkeypatch.setattr(gpu_check.subprocess, 'run', fake_pip)
  gpu_check.prepare(str(tmp_path / 'out'), str(idx))
  assert sorted(os.listdir(tmp_path / 'out' / 'wheels')) == ['grain-1-py3-none-any.whl',
                                                             'promise-2-py3-none-any.whl']
  assert asked == ['download', 'download', 'wheel']  # promise: built here from its source
  assert sorted(os.listdir(tmp_path / 'out' / 'fashion-mnist')) == sorted(os.listdir(idx))


def test_time_to_target_is_the_first_eval_at_it_from_launch_and_from_the_loop():
  logged = [{'step': 50, 'time': 110.0, 'train/steps_per_s': 5.0},
            {'step': 100, 'time': 120.0, 'test/accuracy': 0.92},
            {'step': 150, 'time': 130.0, 'test/accuracy': 0.931},
            {'step': 200, 'time': 140.0, 'test/accuracy': 0.94}]
  windows = logged[:1]
  got = _module()._to_target(logged, windows, launched=90.0)
  assert got == {'target': 0.93, 'step_to_target': 150, 's_launch_to_target': 40.0,
                 'loop_s_to_target': 30.0}  # the loop began at 110 - 50 / 5 = 100
  assert _module()._to_target(logged[:2], windows, launched=90.0) == {}


@pytest.mark.slow
def test_run_writes_every_row_in_one_json(tiny_data_dir, tmp_path):
  out = tmp_path / 'gpu_check.json'
  tiny = ['--config.model.embedding_dim=16', '--config.batch_size=16',
          '--config.eval_batch_size=16', '--config.log_every_steps=2']
  # SimpleNet stands in for GoogleNet in bench_gpu.py (the later --models wins): the same
  # plumbing without GoogleNet's minute of CPU compilation.
  bench = ['--device=cpu', '--batch=2', '--steps=1', '--repeats=1', '--steps_per_dispatch=1',
           '--dtypes=float32', '--no_compile', '--models=simplenet']
  env = {**os.environ, 'PYTHONPATH': ROOT}
  args = [sys.executable, SCRIPT, 'run', f'--data_dir={tiny_data_dir}', f'--out={out}',
          '--epochs=1', *[f'--extra={a}' for a in tiny], *[f'--bench_arg={a}' for a in bench]]
  p = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert p.returncode == 0, p.stderr[-3000:]
  with open(out) as f:
    result = json.load(f)
  assert [r['name'] for r in result['train']] == ['default_k1', 'k32', 'k32_bfloat16', 'fast']
  fast_epochs = fashion_mnist_fast.get_config().num_epochs  # the others run --epochs=1
  for row in result['train']:
    assert 'error' not in row, row
    assert row['steps'] == 6 * (fast_epochs if row['name'] == 'fast' else 1), row
    assert 0 <= row['accuracy'] <= 1 and row['train_loop_s'] > 0
  assert result['rolled_scan']['logged_losses'] == 3
  assert result['rolled_scan']['max_rel_diff'] < 1e-5
  googlenet = result['googlenet']
  if importlib.util.find_spec('torch') is not None:
    assert googlenet['rows'][0]['model'] == 'simplenet', googlenet
  else:  # CI has no torch: the row says so instead of a number
    assert googlenet == {'error': 'torch is not installed here: no twin to compare with'}
