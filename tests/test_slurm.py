"""The SLURM path for real: launch/gpu_slurm.sh submits 2-task CPU jobs to a one-node controller
started here (tests/slurm_cluster.py), and JAX's own SLURM detection forms the run.

Skipped, with the reason in pytest's summary (-rs), where slurm-wlm and munge are not installed
or the tests do not run as root; .ci/run installs them.
"""
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import slurm_cluster  # tests/
import test_reliability as rel  # tests/: the same tiny isx.main runs

WHY_NOT = slurm_cluster.missing()
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('slurm'),  # one cluster, one worker
              pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))]


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
  c = slurm_cluster.Cluster(tmp_path_factory.mktemp('slurm'))
  try:
    c.start()
    yield c
  finally:
    c.stop()


def _submit(cluster, data_dir, workdir, logs, steps, *flags) -> str:
  """`gpu_slurm.sh submit` in its CPU mode: 1 node x 2 tasks, one simulated device each."""
  env = {**rel._env(1), 'SLURM_CONF': cluster.conf, 'PATH': cluster.env['PATH'],
         'GPUS_PER_NODE': '0', 'TASKS_PER_NODE': '2', 'NODES': '1', 'TIME_LIMIT': '30:00',
         'CONFIG': 'configs/fashion_mnist_simplenet.py', 'WORKDIR': str(workdir),
         'LOG_DIR': str(logs), 'VENV': sys.prefix}
  assert os.path.exists(os.path.join(sys.prefix, 'bin', 'python'))
  isx_flags = rel._args(data_dir, workdir, steps, *flags)[5:]  # after --config, --workdir
  p = subprocess.run(['bash', 'launch/gpu_slurm.sh', 'submit', *isx_flags, '--verbosity=0'],
                     cwd=rel.ROOT, env=env, capture_output=True, text=True, timeout=60)
  assert p.returncode == 0, p.stderr
  return re.search(r'Submitted batch job (\d+)', p.stdout).group(1)


def _task_logs(logs, job):
  return [(logs / f'isx-{job}-{t}.log').read_text() for t in range(2)]


def _finished(cluster, job, logs) -> list[str]:
  state = cluster.wait(job)
  task_logs = _task_logs(logs, job) if (logs / f'isx-{job}-0.log').exists() else []
  assert state['JobState'] == 'COMPLETED', (state, [l[-3000:] for l in task_logs],
                                            cluster.logs())
  return task_logs


def test_a_slurm_job_cancelled_and_resubmitted_equals_the_local_run(cluster, tiny_data_dir,
                                                                    tiny_config, tmp_path):
  """One test, to start few jobs: JAX's SLURM detection forms one 2-process run; scancel
  mid-run saves a checkpoint; the same command resubmitted resumes from it; and the result
  equals one uninterrupted process with two devices (the same global mesh)."""
  workdir, logs, steps = tmp_path / 'slurm', tmp_path / 'logs', 100
  flags = ('--config.checkpoint_every_steps=1000',)  # only the save on scancel's SIGTERM
  job = _submit(cluster, tiny_data_dir, workdir, logs, steps, *flags)
  end = time.time() + 300
  while len(rel._logged_steps(workdir)) < 3:
    assert time.time() < end and cluster.job(job)['JobState'] in ('PENDING', 'RUNNING'), (
        cluster.job(job), cluster.logs())
    time.sleep(0.05)
  cluster.cancel(job)
  assert cluster.wait(job)['JobState'] == 'CANCELLED'
  for t, log in enumerate(_task_logs(logs, job)):  # JAX read SLURM's variables: no flags
    assert f'process {t} of 2, 1 local / 2 global devices' in log, log[-3000:]
  saved = [int(s) for s in os.listdir(workdir / 'checkpoints')]
  assert len(saved) == 1 and 3 <= saved[0] < steps, (saved, _task_logs(logs, job))

  again = _submit(cluster, tiny_data_dir, workdir, logs, steps, *flags)
  log0 = _finished(cluster, again, logs)[0]
  assert f'resuming from the checkpoint at step {saved[0]}' in log0, log0[-3000:]
  logged = [r['step'] for r in rel._logged_steps(workdir) if 'train/loss' in r]
  assert logged == list(range(1, steps + 1)), logged  # each step once, from one job or the other

  local = str(tmp_path / 'local')
  rel._run(rel._args(tiny_data_dir, local, steps, *flags), devices=2)
  losses = lambda w: [r['train/loss'] for r in rel._logged_steps(w) if 'train/loss' in r]
  np.testing.assert_allclose(losses(workdir), losses(local), rtol=1e-6)
  (p_slurm, step), (p_local, _) = (rel._final_params(tiny_config, str(workdir)),
                                   rel._final_params(tiny_config, local))
  assert step == steps
  rel._assert_same_params(p_slurm, p_local)


def test_a_tune_array_shares_one_study_and_a_resubmit_finishes_its_budget(cluster, tiny_data_dir,
                                                                          tmp_path):
  """launch/tune_array.sh: 2 array tasks, one isx.tune worker each, on one SQLite study. A task
  cancelled mid-trial leaves that trial failed, with a retry queued; the whole array cancelled
  and submitted again finishes the budget, each retry in its trial's workdir."""
  import optuna
  space, out, logs = tmp_path / 'space.json', tmp_path / 'tune', tmp_path / 'logs'
  space.write_text(json.dumps({
      'trials': 6, 'startup_trials': 2,
      'trial_overrides': {'num_train_steps': 60, 'dataset.validation_fraction': 0.25,
                          'dataset.eval_split': 'validation'},
      'methods': {'m': {'params': {'learning_rate': {'low': 1e-3, 'high': 1e-2, 'log': True}}}}}))
  env = {**rel._env(1), 'SLURM_CONF': cluster.conf, 'PATH': cluster.env['PATH'], 'WORKERS': '2',
         'CPUS_PER_TASK': '1', 'TIME_LIMIT': '30:00', 'CONFIG': 'configs/fashion_mnist_simplenet.py',
         'SPACE': str(space), 'OUT': str(out), 'LOG_DIR': str(logs), 'VENV': sys.prefix}
  tiny = rel._args(tiny_data_dir, '', 1)[5:]  # the tiny config's flags, less the step count
  tiny = [f for f in tiny if not f.startswith('--config.num_train_steps')]

  def submit():
    p = subprocess.run(['bash', 'launch/tune_array.sh', 'submit', *tiny, '--heartbeat=5'],
                       cwd=rel.ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return re.search(r'Submitted batch job (\d+)', p.stdout).group(1)

  def records():
    return [json.loads(l) for f in sorted(out.glob('trials_*.jsonl'))
            for l in f.read_text().splitlines()]

  def task_logs(job):
    return '\n'.join(f.read_text()[-2000:] for f in sorted(logs.glob(f'*-{job}_*.out')))

  job = submit()
  end = time.time() + 300
  while not records():
    assert time.time() < end and cluster.job(f'{job}_0')['JobState'] in (
        'PENDING', 'RUNNING'), (task_logs(job), cluster.logs())
    time.sleep(0.2)
  cluster.cancel(f'{job}_1')  # one task, mid-trial
  # The worker exits 1 after saving (a scheduler requeues it): SLURM says CANCELLED or FAILED.
  assert cluster.wait(f'{job}_1')['JobState'] in ('CANCELLED', 'FAILED'), task_logs(job)
  study = optuna.load_study(study_name='m', storage=f'sqlite:///{out}/studies.db')
  failed = [t.number for t in study.get_trials() if t.state.name == 'FAIL']
  retried = [t.system_attrs.get('failed_trial') for t in study.get_trials()]
  assert failed and set(failed) <= set(retried), (study.get_trials(), task_logs(job))
  cluster.cancel(job)
  cluster.wait(f'{job}_0')

  again = submit()
  for t in (0, 1):
    assert cluster.wait(f'{again}_{t}')['JobState'] == 'COMPLETED', task_logs(again)
  trials = study.get_trials()
  done = [t for t in trials if t.state.name == 'COMPLETE']
  assert len(done) >= 6 and not [t for t in trials if t.state.name in ('RUNNING', 'WAITING')]
  ran = [r['trial'] for r in records()]
  assert sorted(ran) == sorted(set(ran)) == sorted(t.number for t in done)  # each trial once
  for t in done:  # a retry resumed its first trial's workdir
    first = t.system_attrs.get('failed_trial', t.number)
    assert (out / 'm' / f'trial_{first:03d}' / 'eval' / 'validation' / 'metrics.json').exists()
  assert [e['name'] for e in json.loads((out / 'best_grid.json').read_text())] == ['m']
