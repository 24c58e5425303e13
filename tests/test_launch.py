"""Checks of the launch scripts that need no cloud, cluster or network.

Dry runs must print fully expanded, shell-quoted commands and never call gcloud, sbatch or
srun: fake versions of those on PATH fail the test if they are ever run. The commands that
tpu_pod.sh sends to the workers are also run here against a fake home directory.
"""
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ports import free_port  # tests/

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / 'launch'
SCRIPTS = sorted(p for p in LAUNCH.glob('*.sh') if p.name != 'lib.sh')  # lib.sh is sourced
JAX_PIN = re.search(r'^jax==(\S+)', (ROOT / 'requirements.txt').read_text(), re.M).group(1)


@pytest.fixture
def env(tmp_path):
  """A clean environment whose gcloud/sbatch/srun record any call and fail."""
  fake_bin = tmp_path / 'fake_bin'
  fake_bin.mkdir()
  for tool in ('gcloud', 'sbatch', 'srun', 'salloc'):
    f = fake_bin / tool
    f.write_text(f'#!/bin/sh\necho called >> "{tmp_path}/{tool}.called"\nexit 97\n')
    f.chmod(0o755)
  e = {k: v for k, v in os.environ.items()
       if not k.startswith('SLURM_') and k not in (
           'DRY_RUN', 'BUCKET', 'WORKDIR', 'TFDS_DATA_DIR', 'CONFIG', 'PROJECT', 'ZONE',
           'TPU_NAME', 'CREATE_FLAGS', 'PYTHON', 'VENV', 'LOG_DIR', 'PORT', 'SPOT', 'PREEMPTIBLE')}
  e['PATH'] = f'{fake_bin}{os.pathsep}{e.get("PATH", "")}'
  yield e
  called = sorted(p.name for p in tmp_path.glob('*.called'))
  assert not called, f'launch scripts ran {called} for real'


def sh(script, *args, env, check=True):
  """Runs launch/<script> with args; returns the CompletedProcess."""
  r = subprocess.run(['bash', str(LAUNCH / script), *args], env=env, capture_output=True,
                     text=True, timeout=60, cwd=ROOT)
  if check:
    assert r.returncode == 0, r.stderr
  return r


def lines(r):
  """Each printed command as an argv list (every line must be valid shell quoting)."""
  return [shlex.split(l) for l in r.stdout.splitlines() if l.strip()]


def remote(argv):
  """The --command payload of a `gcloud compute tpus tpu-vm ssh` argv."""
  return argv[argv.index('--command') + 1]


def test_scripts_exist_and_are_executable():
  names = {p.name for p in SCRIPTS}
  assert {'tpu_pod.sh', 'gpu_slurm.sh', 'local_multiprocess.sh'} <= names
  for p in SCRIPTS:
    assert os.access(p, os.X_OK), p
    assert 'set -euo pipefail' in p.read_text(), p
    assert str(ROOT) not in p.read_text(), p  # no path of this checkout baked in


@pytest.mark.parametrize('script', [*SCRIPTS, LAUNCH / 'lib.sh'], ids=lambda p: p.name)
def test_bash_syntax(script):
  r = subprocess.run(['bash', '-n', str(script)], capture_output=True, text=True)
  assert r.returncode == 0, r.stderr


@pytest.mark.parametrize('script', ['tpu_pod.sh', 'gpu_slurm.sh', 'local_multiprocess.sh'])
def test_unknown_command_is_a_one_line_error_then_usage(script, env):
  r = sh(script, '--dry_run', 'frobnicate', env=env, check=False)
  assert r.returncode == 2
  assert r.stdout == ''
  first, *rest = r.stderr.splitlines()
  assert 'unknown command: frobnicate' in first
  assert rest and rest[0].startswith('Usage:')


@pytest.mark.parametrize('script', ['tpu_pod.sh', 'gpu_slurm.sh', 'local_multiprocess.sh'])
def test_help_and_missing_command(script, env):
  r = sh(script, '--help', env=env)
  assert r.stdout.startswith('Usage:')
  r = sh(script, env=env, check=False)
  assert r.returncode == 2 and 'missing command' in r.stderr


# ---------------------------------------------------------------- tpu_pod.sh


@pytest.fixture
def tpu_env(env):
  env.update(BUCKET='my-bucket', TPU_NAME='pod1', ZONE='us-central2-b')
  return env


def test_tpu_create(tpu_env):
  tpu_env.update(ACCELERATOR_TYPE='v4-64', RUNTIME_VERSION='rt-x', PROJECT='proj')
  (argv,) = lines(sh('tpu_pod.sh', '--dry_run', 'create', '--spot', env=tpu_env))
  assert argv[:6] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'create', 'pod1']
  for flag in ('--zone=us-central2-b', '--project=proj', '--accelerator-type=v4-64',
               '--version=rt-x', '--spot'):
    assert flag in argv
  (argv,) = lines(sh('tpu_pod.sh', 'create', env={
      **tpu_env, 'DRY_RUN': '1', 'PREEMPTIBLE': '1', 'CREATE_FLAGS': '--internal-ips --labels=a=b'}))
  assert '--preemptible' in argv and '--spot' not in argv
  assert argv[-2:] == ['--internal-ips', '--labels=a=b']


def test_tpu_flags_override_env(tpu_env):
  (argv,) = lines(sh('tpu_pod.sh', '--dry_run', '--zone=europe-west4-a', '--tpu_name=other',
                     'delete', env=tpu_env))
  assert argv[:6] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'delete', 'other']
  assert '--zone=europe-west4-a' in argv


def test_tpu_copy(tpu_env):
  archive, scp, ssh = lines(sh('tpu_pod.sh', '--dry_run', 'copy', env=tpu_env))
  assert archive[:4] == ['git', '-C', str(ROOT), 'archive'] and archive[-1] == 'HEAD'
  tarball = archive[archive.index('-o') + 1]
  assert scp[:5] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'scp']
  assert tarball in scp and 'pod1:isx.tar.gz' in scp and '--worker=all' in scp
  assert ssh[4] == 'ssh' and '--worker=all' in ssh
  assert 'tar -xzf ~/isx.tar.gz' in remote(ssh)


def test_tpu_install_pins_the_same_jax(tpu_env):
  (argv,) = lines(sh('tpu_pod.sh', '--dry_run', 'install', env=tpu_env))
  assert '--worker=all' in argv
  cmd = remote(argv)
  assert f'"jax[tpu]=={JAX_PIN}"' in cmd
  assert '-r requirements.txt' in cmd and '-e .' in cmd


def test_tpu_run(tpu_env):
  overrides = ['--config.model.inward_scale=False', "--config.name=it's a run"]
  (argv,) = lines(sh('tpu_pod.sh', '--dry_run', 'run', *overrides, env=tpu_env))
  assert argv[:6] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'pod1']
  assert '--worker=all' in argv
  cmd = remote(argv)
  assert 'TFDS_DATA_DIR=gs://my-bucket/tensorflow_datasets' in cmd
  assert '-m isx.main --config=configs/cifar100_googlenet.py' in cmd
  assert '--jax_distributed' in cmd  # JAX's TPU pod detection, see isx/cli.py
  assert '--workdir=gs://my-bucket/isx/cifar100_googlenet' in cmd
  assert '--config.model.inward_scale=False' in cmd
  assert overrides[1] in shlex.split(cmd)  # quoted for the worker's shell
  assert '~/isx_logs/isx.log' in cmd


def test_tpu_run_settings(tpu_env):
  tpu_env.update(CONFIG='configs/other.py', WORKDIR='gs://b2/runs/x', TFDS_DATA_DIR='gs://b3/tfds')
  (argv,) = lines(sh('tpu_pod.sh', 'run', '--dry_run', env=tpu_env))
  cmd = remote(argv)
  assert '--config=configs/other.py' in cmd and '--workdir=gs://b2/runs/x' in cmd
  assert 'TFDS_DATA_DIR=gs://b3/tfds' in cmd


def test_tpu_run_needs_a_bucket(env):
  r = sh('tpu_pod.sh', '--dry_run', 'run', env=env, check=False)
  assert r.returncode == 1 and 'BUCKET' in r.stderr and r.stdout == ''


def test_tpu_logs_tail_stop_delete(tpu_env, tmp_path):
  tpu_env['LOCAL_LOG_DIR'] = str(tmp_path / 'logs')
  mkdir, ssh = lines(sh('tpu_pod.sh', '--dry_run', 'logs', env=tpu_env))
  assert mkdir == ['mkdir', '-p', str(tmp_path / 'logs')]
  assert '--worker=all' in ssh and f'--output-directory={tmp_path / "logs"}' in ssh
  assert not (tmp_path / 'logs').exists()  # dry run changes nothing
  (ssh,) = lines(sh('tpu_pod.sh', '--dry_run', 'tail', env={**tpu_env, 'WORKER': '3'}))
  assert '--worker=3' in ssh and 'tail' in remote(ssh)
  (ssh,) = lines(sh('tpu_pod.sh', '--dry_run', 'stop', env=tpu_env))
  assert '--worker=all' in ssh and 'kill' in remote(ssh)
  (argv,) = lines(sh('tpu_pod.sh', '--dry_run', 'delete', env=tpu_env))
  assert argv[:6] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'delete', 'pod1']
  assert '--quiet' in argv


def test_tpu_extra_args_only_for_run(tpu_env):
  r = sh('tpu_pod.sh', '--dry_run', 'delete', '--config.x=1', env=tpu_env, check=False)
  assert r.returncode == 2 and 'unexpected arguments' in r.stderr


def test_tpu_remote_commands_are_valid_shell(tpu_env):
  for cmd in ('copy', 'install', 'run', 'tail', 'logs', 'stop'):
    for argv in lines(sh('tpu_pod.sh', '--dry_run', cmd, env=tpu_env)):
      if '--command' in argv:
        r = subprocess.run(['bash', '-n', '-c', remote(argv)], capture_output=True, text=True)
        assert r.returncode == 0, (cmd, r.stderr)


def test_tpu_run_and_stop_on_a_fake_worker(tpu_env, tmp_path):
  """Runs the worker side of `run` and `stop` locally, with a fake home and python."""
  home = tmp_path / 'home'
  (home / 'isx').mkdir(parents=True)
  (home / 'isx-venv' / 'bin').mkdir(parents=True)
  fake_python = home / 'isx-venv' / 'bin' / 'python'
  fake_python.write_text('#!/bin/sh\necho "args: $*"\necho "tfds: $TFDS_DATA_DIR"\nexec sleep 30\n')
  fake_python.chmod(0o755)
  (run_argv,) = lines(sh('tpu_pod.sh', '--dry_run', 'run', '--config.a=x y', env=tpu_env))
  (stop_argv,) = lines(sh('tpu_pod.sh', '--dry_run', 'stop', env=tpu_env))
  worker_env = {'HOME': str(home), 'PATH': os.environ['PATH']}

  def on_worker(argv):
    return subprocess.run(['bash', '-c', remote(argv)], env=worker_env, capture_output=True,
                          text=True, timeout=30)

  r = on_worker(run_argv)
  assert r.returncode == 0, r.stderr
  log, pidfile = home / 'isx_logs' / 'isx.log', home / 'isx_logs' / 'isx.pid'
  pid = int(pidfile.read_text())
  for _ in range(100):
    if 'tfds:' in log.read_text():
      break
    time.sleep(0.05)
  text = log.read_text()
  assert 'args: -m isx.main --config=configs/cifar100_googlenet.py' in text
  assert '--config.a=x y' in text
  assert 'tfds: gs://my-bucket/tensorflow_datasets' in text
  # A second launch must not start another trainer on the same TPU.
  r = on_worker(run_argv)
  assert r.returncode == 1 and 'already running' in r.stderr
  r = on_worker(stop_argv)
  assert r.returncode == 0, r.stderr
  assert not pidfile.exists()
  for _ in range(100):
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      break
    try:  # reap it if this process happens to be its parent
      os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
      pass
    time.sleep(0.05)
  else:
    pytest.fail('stop did not end the training process')


# -------------------------------------------------------------- gpu_slurm.sh


def test_slurm_header_requests_gpus_per_node_not_per_task():
  text = (LAUNCH / 'gpu_slurm.sh').read_text()
  header = [l for l in text.splitlines() if l.startswith('#SBATCH')]
  assert any('--ntasks-per-node=' in l for l in header)
  assert any('--gres=gpu:' in l for l in header)
  assert not any('--gpus-per-task' in l for l in header)


def test_slurm_install(env, tmp_path):
  env.update(VENV=str(tmp_path / 'venv'), JAX_CUDA='cuda13')
  venv, pip = lines(sh('gpu_slurm.sh', '--dry_run', 'install', env=env))
  assert venv == ['python3', '-m', 'venv', str(tmp_path / 'venv')]
  assert pip[:2] == [str(tmp_path / 'venv' / 'bin' / 'pip'), 'install']
  assert f'jax[cuda13]=={JAX_PIN}' in pip and str(ROOT / 'requirements.txt') in pip
  assert not (tmp_path / 'venv').exists()


def test_slurm_submit(env, tmp_path):
  env.update(NODES='4', GPUS_PER_NODE='4', PARTITION='gpu', LOG_DIR=str(tmp_path / 'logs'))
  mkdir, sbatch = lines(sh('gpu_slurm.sh', '--dry_run', 'submit',
                           '--config.model.inward_scale=False', env=env))
  assert mkdir == ['mkdir', '-p', str(tmp_path / 'logs')]
  assert sbatch[0] == 'sbatch'
  for flag in ('--nodes=4', '--ntasks-per-node=4', '--gres=gpu:4', '--partition=gpu',
               f'--chdir={ROOT}'):
    assert flag in sbatch
  assert not any(a.startswith('--gpus-per-task') for a in sbatch)
  script = sbatch.index(str(LAUNCH / 'gpu_slurm.sh'))
  assert sbatch[script + 1:] == ['run', '--config.model.inward_scale=False']


def test_slurm_cpu_mode_asks_no_gpus(env, tmp_path):
  env.update(NODES='1', GPUS_PER_NODE='0', TASKS_PER_NODE='2', VENV=str(tmp_path / 'venv'),
             LOG_DIR=str(tmp_path / 'logs'))
  _, pip = lines(sh('gpu_slurm.sh', '--dry_run', 'install', env=env))
  assert f'jax=={JAX_PIN}' in pip and not any(a.startswith('jax[') for a in pip)
  _, sbatch = lines(sh('gpu_slurm.sh', '--dry_run', 'submit', env=env))
  assert '--gres=none' in sbatch and '--ntasks-per-node=2' in sbatch  # none beats the header
  _, srun = lines(sh('gpu_slurm.sh', '--dry_run', 'run', env=env))
  assert 'JAX_PLATFORMS=cpu' in srun and not any(a.startswith('--gpu-bind') for a in srun)
  env.pop('TASKS_PER_NODE')
  _, sbatch = lines(sh('gpu_slurm.sh', '--dry_run', 'submit', env=env))
  assert '--ntasks-per-node=1' in sbatch


def test_slurm_run(env):
  env.update(TFDS_DATA_DIR='/shared/tfds', WORKDIR='/shared/runs/a')
  _, srun = lines(sh('gpu_slurm.sh', '--dry_run', 'run', '--config.seed=3', env=env))
  assert srun[0] == 'srun' and '--kill-on-bad-exit=1' in srun
  assert any(a.startswith('--output=') and '%t' in a for a in srun)  # one log per process
  assert 'TFDS_DATA_DIR=/shared/tfds' in srun
  i = srun.index('isx.main')
  assert srun[i - 1] == '-m'
  assert srun[i + 1:] == ['--config=configs/cifar100_googlenet.py',
                          '--workdir=/shared/runs/a', '--jax_distributed', '--config.seed=3']


def test_slurm_run_defaults_to_run_inside_a_batch_job(env):
  env.update(SLURM_JOB_ID='123', DRY_RUN='1')
  _, srun = lines(sh('gpu_slurm.sh', '--config.seed=4', env=env))
  assert srun[0] == 'srun' and srun[-1] == '--config.seed=4'


def test_slurm_run_outside_an_allocation_fails(env):
  r = sh('gpu_slurm.sh', 'run', env=env, check=False)
  assert r.returncode == 1 and 'allocation' in r.stderr


# ------------------------------------------------------ local_multiprocess.sh


def test_local_dry_run(env, tmp_path):
  env.update(NUM_PROCESSES='3', PORT='5555', PYTHON='py', LOG_DIR=str(tmp_path / 'logs'))
  out = lines(sh('local_multiprocess.sh', '--dry_run', 'run', '--config.x=1', env=env))
  assert out[0] == ['mkdir', '-p', str(tmp_path / 'logs')] and out[-1] == ['wait']
  procs = out[1:-1]
  assert len(procs) == 3
  for i, argv in enumerate(procs):
    assert argv[:2] == ['env', 'JAX_PLATFORMS=cpu']
    assert argv[argv.index('py') + 1:argv.index('py') + 3] == ['-m', 'isx.main']
    for flag in ('--coordinator_address=127.0.0.1:5555', '--num_processes=3',
                 f'--process_id={i}', '--config.x=1'):
      assert flag in argv
    assert argv[-4:] == ['>', str(tmp_path / 'logs' / f'process_{i}.log'), '2>&1', '&']
  assert not (tmp_path / 'logs').exists()


def test_local_run_reports_a_failed_process(env, tmp_path):
  fake = tmp_path / 'py'
  fake.write_text('#!/bin/sh\necho "args: $* platforms=$JAX_PLATFORMS"\n'
                  'case "$*" in *--process_id=1*) exit 3;; esac\n')
  fake.chmod(0o755)
  env.update(PYTHON=str(fake), LOG_DIR=str(tmp_path / 'logs'), WORKDIR=str(tmp_path / 'wd'))
  r = sh('local_multiprocess.sh', 'run', '--config.y=2', env=env, check=False)
  assert r.returncode == 1 and 'process 1 failed' in r.stderr
  for i in range(2):
    log = (tmp_path / 'logs' / f'process_{i}.log').read_text()
    assert f'--process_id={i}' in log and '--config.y=2' in log and 'platforms=cpu' in log



def test_local_run_connects_real_jax_processes(env, tmp_path):
  """Two real JAX CPU processes meet at the coordinator and all-gather (a stand-in module)."""
  pytest.importorskip('jax')
  (tmp_path / 'fake_main.py').write_text('''
import argparse
import jax
import numpy as np
from jax.experimental import multihost_utils
p = argparse.ArgumentParser()
p.add_argument('--coordinator_address')
p.add_argument('--num_processes', type=int)
p.add_argument('--process_id', type=int)
a, rest = p.parse_known_args()
jax.distributed.initialize(a.coordinator_address, a.num_processes, a.process_id)
ids = multihost_utils.process_allgather(np.array([jax.process_index()])).ravel().tolist()
print('RESULT', jax.process_index(), jax.process_count(), jax.device_count(), ids, rest)
''')
  env.update(PYTHON=sys.executable, MODULE='fake_main', PYTHONPATH=str(tmp_path),
             PORT=str(free_port()), LOG_DIR=str(tmp_path / 'logs'), WORKDIR=str(tmp_path / 'wd'))
  r = sh('local_multiprocess.sh', 'run', '--config.z=1', env=env, check=False)
  logs = [(tmp_path / 'logs' / f'process_{i}.log').read_text() for i in range(2)]
  assert r.returncode == 0, (r.stderr, logs)
  for i, log in enumerate(logs):
    assert f'RESULT {i} 2 4 [0, 1]' in log and "'--config.z=1'" in log, log


def test_test_ports_come_from_below_the_ephemeral_range_and_skip_ports_in_use():
  import socket
  import ports
  first = ports.free_port()
  with socket.socket() as s:  # a listener on the next port of the block
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', first + 1))
    s.listen()
    taken = [ports.free_port() for _ in range(3)]
  assert all(ports.LOW <= p < ports.HIGH for p in [first, *taken])
  low, high = map(int, Path('/proc/sys/net/ipv4/ip_local_port_range').read_text().split())
  assert all(not low <= p <= high for p in [first, *taken])
  assert first + 1 not in taken and len({first, *taken}) == 4
