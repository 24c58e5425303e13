"""benchmarks/gpu_check.py on CPU with tiny sizes: what it carries, and one JSON with every row."""
import importlib.util
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'benchmarks', 'gpu_check.py')


def _module():
  spec = importlib.util.spec_from_file_location('gpu_check', SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_prepare_carries_only_what_the_device_lacks_and_the_idx_files(tmp_path, monkeypatch):
  gpu_check = _module()
  idx = tmp_path / 'idx'
  idx.mkdir()
  for name in ('train-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
    (idx / name).write_bytes(b'x')
  asked = {}

  def fake_pip(cmd, check):  # pip download, offline: the closure it would fetch
    asked['cmd'] = cmd
    with open(cmd[cmd.index('-r') + 1]) as f:
      asked['reqs'] = f.read()
    dest = cmd[cmd.index('-d') + 1]
    for wheel in ('grain-0.2.18-cp312-cp312-manylinux_2_27_x86_64.whl',
                  'tensorflow_datasets-4.9.10-py3-none-any.whl',
                  'jax-0.10.2-py3-none-any.whl', 'orbax_checkpoint-0.12.8-py3-none-any.whl'):
      open(os.path.join(dest, wheel), 'w').close()
  monkeypatch.setattr(gpu_check.subprocess, 'run', fake_pip)
  gpu_check.prepare(str(tmp_path / 'out'), str(idx))
  assert sorted(os.listdir(tmp_path / 'out' / 'wheels')) == [
      'grain-0.2.18-cp312-cp312-manylinux_2_27_x86_64.whl',
      'tensorflow_datasets-4.9.10-py3-none-any.whl']
  assert sorted(os.listdir(tmp_path / 'out' / 'fashion-mnist')) == sorted(os.listdir(idx))
  assert 'grain==' in asked['reqs'] and 'jax==' not in asked['reqs']
  assert asked['cmd'][asked['cmd'].index('--python-version') + 1] == '3.12'


def test_run_writes_every_row_in_one_json(tiny_data_dir, tmp_path):
  out = tmp_path / 'gpu_check.json'
  tiny = ['--config.model.embedding_dim=16', '--config.batch_size=16',
          '--config.eval_batch_size=16', '--config.log_every_steps=2']
  bench = ['--device=cpu', '--batch=2', '--steps=1', '--repeats=1', '--steps_per_dispatch=1',
           '--dtypes=float32', '--no_compile']
  env = {**os.environ, 'PYTHONPATH': ROOT}
  args = [sys.executable, SCRIPT, 'run', f'--data_dir={tiny_data_dir}', f'--out={out}',
          '--epochs=1', *[f'--extra={a}' for a in tiny], *[f'--bench_arg={a}' for a in bench]]
  p = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert p.returncode == 0, p.stderr[-3000:]
  with open(out) as f:
    result = json.load(f)
  assert [r['name'] for r in result['train']] == ['default_k1', 'k32', 'k32_bfloat16']
  for row in result['train']:
    assert 'error' not in row, row
    assert row['steps'] == 6 and 0 <= row['accuracy'] <= 1 and row['train_loop_s'] > 0
  assert result['rolled_scan']['logged_losses'] == 3
  assert result['rolled_scan']['max_rel_diff'] < 1e-5
  googlenet = result['googlenet']
  try:
    import torch  # noqa: F401  pylint: disable=unused-import
    assert googlenet['rows'][0]['model'] == 'googlenet', googlenet
  except ImportError:  # CI has no torch: the row says so instead of a number
    assert googlenet == {'error': 'torch is not installed here: no twin to compare with'}
