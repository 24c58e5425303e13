"""isx.cpu_setup: XLA:CPU's convolution path and device split, chosen per host and model before
JAX starts, cached, overridable, printed and recorded; and results that do not depend on it."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from isx import cpu_setup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = {'config': {}, 'image_shape': [28, 28, 1], 'num_classes': 10,
            'key': {'model': {'name': 'simplenet'}, 'batch_size': 128}}


@pytest.fixture
def host(monkeypatch, tmp_path):
  """A 2-core CPU host with no XLA_FLAGS and an empty cache; probe() is faked and counted."""
  monkeypatch.setenv('ISX_CACHE_DIR', str(tmp_path / 'cache'))
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  monkeypatch.setattr(cpu_setup, 'usable_cores', lambda: 2)
  monkeypatch.setattr(cpu_setup, 'accelerator_host', lambda: False)
  monkeypatch.setattr(cpu_setup, 'user_devices', lambda: None)
  monkeypatch.setattr(cpu_setup.os, 'getloadavg', lambda: (0.3, 0.2, 0.1))
  calls = []
  times = {'ynnpack/2': 460.0, 'xla/1': 262.0, 'xla/2': 300.0}

  def probe(workload, path, devices, cores):
    calls.append((path, devices, cores))
    return times[f'{path}/{devices}']
  monkeypatch.setattr(cpu_setup, 'probe', probe)
  return calls, times


def test_auto_cpu_devices_is_the_most_cores_that_divide_every_batch():
  assert cpu_setup.auto_cpu_devices((128, 1000), cores=2) == 2
  assert cpu_setup.auto_cpu_devices((128, 1000), cores=3) == 2
  assert cpu_setup.auto_cpu_devices((128, 1000), cores=64) == cpu_setup.MAX_AUTO_CPU_DEVICES == 8
  assert cpu_setup.auto_cpu_devices((100, 1000), cores=8) == 5
  assert cpu_setup.auto_cpu_devices((7, 16), cores=8) == 1
  assert cpu_setup.auto_cpu_devices((128,), cores=1) == 1


def test_candidates_split_ynnpack_and_try_xla_on_one_device_too():
  assert cpu_setup.candidates(2, None, None) == [('ynnpack', 2), ('xla', 1), ('xla', 2)]
  assert cpu_setup.candidates(1, None, None) == [('ynnpack', 1), ('xla', 1)]
  assert cpu_setup.candidates(2, 8, None) == [('ynnpack', 8), ('xla', 8)]  # the user's count
  assert cpu_setup.candidates(2, None, 'xla') == [('xla', 1), ('xla', 2)]


def test_auto_picks_the_fastest_measured_setup_and_caches_it(host):
  calls, times = host
  first = cpu_setup.choose(WORKLOAD, (128, 1000), log=lambda m: None)
  assert (first.path, first.devices) == ('xla', 1)
  assert first.timings == times and 'measured now at load 0.3 on 2 cores' in first.reason
  assert sorted(calls) == [('xla', 1, 2), ('xla', 2, 2), ('ynnpack', 2, 2)]
  again = cpu_setup.choose(WORKLOAD, (128, 1000), log=lambda m: None)
  assert (again.path, again.devices) == ('xla', 1)
  assert 'cached measurement at load 0.3 on 2 cores' in again.reason  # a busy host shows here
  assert len(calls) == 3  # nothing timed the second time
  other = {**WORKLOAD, 'key': {**WORKLOAD['key'], 'model': {'name': 'googlenet'}}}
  times.update({'ynnpack/2': 5700.0, 'xla/1': 14100.0, 'xla/2': 9000.0})
  googlenet = cpu_setup.choose(other, (128, 1000), log=lambda m: None)
  assert (googlenet.path, googlenet.devices) == ('ynnpack', 2)  # another model is timed anew
  assert len(calls) == 6
  with open(cpu_setup.cache_file()) as f:
    assert len(json.load(f)) == 2


def test_the_cache_is_per_host_and_jaxlib(host, monkeypatch):
  calls, _ = host
  cpu_setup.choose(WORKLOAD, (128,), log=lambda m: None)
  key = cpu_setup.host_key()
  monkeypatch.setattr(cpu_setup, 'host_key', lambda: {**key, 'jaxlib': '99.0'})
  cpu_setup.choose(WORKLOAD, (128,), log=lambda m: None)
  assert len(calls) == 6
  assert {'cpu', 'cpu_flags_sha1', 'cores', 'jaxlib'} <= set(key)

  monkeypatch.setitem(cpu_setup.PATHS, 'xla', '--xla_cpu_experimental_ynn_fusion_type=')
  cpu_setup.choose(WORKLOAD, (128,), log=lambda m: None)
  assert len(calls) == 9  # timings of another path's flags are not reused


def test_the_users_choices_win(host, monkeypatch):
  calls, _ = host
  forced = cpu_setup.choose(WORKLOAD, (128, 1000), path='ynnpack', log=lambda m: None)
  assert (forced.path, forced.devices, calls) == ('ynnpack', 2, [])
  devices = cpu_setup.choose(WORKLOAD, (128, 1000), devices=2, log=lambda m: None)
  assert (devices.path, devices.devices) == ('xla', 2)  # the path timed at the user's count
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_experimental_ynn_fusion_type=-reduce')
  calls.clear()
  theirs = cpu_setup.choose(WORKLOAD, (128, 1000), log=lambda m: None)
  assert (theirs.path, theirs.devices, calls) == (None, 2, [])
  assert 'your XLA_FLAGS' in theirs.reason
  also = cpu_setup.choose(WORKLOAD, (128,), path='xla')
  assert also.path is None and '(not --cpu_conv_path=xla)' in also.reason
  with pytest.raises(ValueError, match='unknown --cpu_conv_path'):
    cpu_setup.choose(WORKLOAD, (128,), path='fast')


def test_accelerators_are_left_alone_and_a_failed_probe_does_not_stop_training(host, monkeypatch):
  monkeypatch.setattr(cpu_setup, 'accelerator_host', lambda: True)
  assert cpu_setup.choose(WORKLOAD, (128,)).path is None
  monkeypatch.setattr(cpu_setup, 'accelerator_host', lambda: False)

  def broken(*args):
    raise RuntimeError('the XLA:CPU probe for xla/1 failed: boom')
  monkeypatch.setattr(cpu_setup, 'probe', broken)
  setup = cpu_setup.choose(WORKLOAD, (128,), log=lambda m: None)
  assert (setup.path, setup.devices) == ('ynnpack', 2) and 'boom' in setup.reason
  assert not os.path.exists(cpu_setup.cache_file()) or json.load(open(cpu_setup.cache_file())) == {}


_APPLY = """
import os, jax
from jax._src import xla_bridge
from isx import cpu_setup
cpu_setup.apply(cpu_setup.Setup('xla', 2, 'test'))
assert not xla_bridge.backends_are_initialized()
print(jax.device_count(), os.environ['XLA_FLAGS'], flush=True)
try:
  cpu_setup.apply(cpu_setup.Setup('xla', 2, 'test'))
except RuntimeError as e:
  print('late:', e)
"""


def test_apply_sets_the_flag_before_jax_starts_and_keeps_the_users_flags():
  env = {**os.environ, 'XLA_FLAGS': '--xla_cpu_enable_fast_math=false', 'PYTHONPATH': ROOT,
         'JAX_PLATFORMS': 'cpu'}
  p = subprocess.run([sys.executable, '-c', _APPLY], env=env, capture_output=True, text=True,
                     timeout=120, cwd=ROOT)
  assert p.returncode == 0, p.stderr[-2000:]
  started, late = p.stdout.splitlines()
  assert started.split() == ['2', '--xla_cpu_enable_fast_math=false',
                             '--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce']
  assert late.startswith('late: the XLA:CPU setup must be applied before JAX starts')


_KERNELS = """
import json, sys, jax, jax.numpy as jnp
from isx import cpu_setup
cpu_setup.apply(cpu_setup.Setup(sys.argv[1], 1, 'test'))
def ynnpack(f, *args):
  return 'ynn_fusion' in jax.jit(f).lower(*args).compile().as_text()
x, w = jnp.ones((8, 129)), jnp.ones((64, 129))
image, kernel = jnp.ones((2, 28, 28, 32)), jnp.ones((3, 3, 32, 32))
conv = lambda a, b: jax.lax.conv_general_dilated(a, b, (1, 1), 'SAME',
                                                 dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
print(json.dumps({'dot': ynnpack(lambda a, b: a @ b.T, x, w), 'conv': ynnpack(conv, image, kernel)}))
"""


@pytest.mark.parametrize('path', sorted(cpu_setup.PATHS))
def test_every_path_keeps_dots_on_ynnpack_and_xla_moves_convolutions_off_it(path):
  """Dots (the k-NN, the dense layers) stay on YNNPACK's kernels whatever path training chose;
  only the convolutions change hands (issue 44)."""
  env = {**os.environ, 'PYTHONPATH': ROOT, 'JAX_PLATFORMS': 'cpu'}
  env.pop('XLA_FLAGS', None)
  p = subprocess.run([sys.executable, '-c', _KERNELS, path], env=env, capture_output=True,
                     text=True, timeout=120, cwd=ROOT)
  assert p.returncode == 0, p.stderr[-2000:]
  assert json.loads(p.stdout.splitlines()[-1]) == {'dot': True, 'conv': path == 'ynnpack'}


def _main(data_dir, workdir, env, *extra):
  args = [sys.executable, '-m', 'isx.main', '--config=configs/fashion_mnist_simplenet.py',
          f'--workdir={workdir}', f'--config.dataset.data_dir={data_dir}',
          '--config.model.embedding_dim=16', '--config.batch_size=16',
          '--config.eval_batch_size=16', '--config.num_train_steps=6',
          '--config.log_every_steps=1', '--config.plots=False', *extra]
  p = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  return p.stdout


def _losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [r['train/loss'] for r in map(json.loads, f) if 'train/loss' in r]


@pytest.mark.slow
def test_isx_main_times_once_prints_and_records_its_choice(tiny_data_dir, tmp_path):
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'ISX_CPU_CONV_PATH')}
  env.update(JAX_PLATFORMS='cpu', PYTHONPATH=ROOT, ISX_CACHE_DIR=str(tmp_path / 'cache'))
  first = _main(tiny_data_dir, tmp_path / 'a', env)
  assert 'XLA:CPU probe (ms per train step): ynnpack/' in first
  line = next(l for l in first.splitlines() if l.startswith('XLA:CPU: ') and 'timing' not in l)
  assert 'fastest for this model on this host (measured now' in line
  with open(tmp_path / 'a' / 'cpu_setup.json') as f:
    record = json.load(f)
  assert record['path'] in cpu_setup.PATHS and record['host']['cores'] >= 1
  assert record['reason'] in line
  second = _main(tiny_data_dir, tmp_path / 'b', env)
  assert 'probe' not in second and 'cached measurement' in second


@pytest.mark.slow
def test_both_paths_train_the_same_model_up_to_float_rounding(tiny_data_dir, tmp_path):
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'ISX_CPU_CONV_PATH')}
  env.update(JAX_PLATFORMS='cpu', PYTHONPATH=ROOT)
  for path in cpu_setup.PATHS:
    out = _main(tiny_data_dir, tmp_path / path, env, f'--cpu_conv_path={path}', '--cpu_devices=1')
    assert f'XLA:CPU: {cpu_setup.PATH_NAMES[path]}, 1 device: {path} as asked' in out
  ynnpack, xla = _losses(tmp_path / 'ynnpack'), _losses(tmp_path / 'xla')
  assert len(ynnpack) == 6
  np.testing.assert_allclose(xla, ynnpack, rtol=2e-5)


def test_a_probe_times_at_least_one_step_and_at_most_about_twenty_seconds():
  from isx import cpu_probe
  assert cpu_probe.keep_timing([], 100.0)
  assert cpu_probe.keep_timing([0.1], 0.1)  # fewer than MIN_STEPS
  assert cpu_probe.keep_timing([0.3] * 4, 1.2)  # under MIN_SECONDS
  assert not cpu_probe.keep_timing([0.8] * 3, 2.4)
  assert not cpu_probe.keep_timing([15.0], 21.0)  # one GoogleNet step on 2 cores
  assert not cpu_probe.keep_timing([0.01] * 10, 0.1)


def test_binaries_keep_compiled_steps_in_isx_cache_unless_jax_is_told_otherwise(
    tmp_path, monkeypatch):
  import jax
  from isx import cli
  before = jax.config.jax_compilation_cache_dir
  try:
    monkeypatch.setenv('ISX_CACHE_DIR', str(tmp_path))
    monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR')
    cli.start()
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / 'jax')
    jax.config.update('jax_compilation_cache_dir', before)
    monkeypatch.setenv('JAX_COMPILATION_CACHE_DIR', str(tmp_path / 'mine'))
    cli.start()  # the user's folder (JAX reads the variable itself) is left alone
    assert jax.config.jax_compilation_cache_dir == before
  finally:
    jax.config.update('jax_compilation_cache_dir', before)
