"""Faults and bad input: preemption, crashes, damaged checkpoints, multi-process, clear errors.

The subprocess runs here are real `python -m isx.main` processes on the tiny TFDS dataset, each
with the same device setup, so their results are comparable bit for bit.
"""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from isx import checkpointing, config_checks, cpu_setup, evaluation, train
from isx import mesh as mesh_lib, step as step_lib
from isx.experiment import Experiment

import reliability_cases  # tests/: the bad-input table
from ports import free_port  # tests/

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VALIDATION = {'dataset.validation_fraction': 0.25, 'dataset.eval_split': 'validation'}


def _env(devices=1):
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env.update(JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=ROOT,
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  return env


def _args(data_dir, workdir, steps, *extra):
  return [sys.executable, '-m', 'isx.main', '--config=configs/fashion_mnist_simplenet.py',
          f'--workdir={workdir}', f'--config.dataset.data_dir={data_dir}',
          '--config.model.embedding_dim=16', '--config.batch_size=16',
          '--config.eval_batch_size=16', f'--config.num_train_steps={steps}',
          '--config.log_every_steps=1', '--config.evals.accuracy.every_steps=0',
          '--config.plots=False', *extra]


def _start(args, devices=1):
  return subprocess.Popen(args, cwd=ROOT, env=_env(devices), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _run(args, devices=1, check=True):
  p = subprocess.run(args, cwd=ROOT, env=_env(devices), capture_output=True, text=True,
                     timeout=300)
  if check:
    assert p.returncode == 0, p.stderr[-3000:]
  return p


def _logged_steps(workdir):
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  return [json.loads(line) for line in open(path) if line.strip()]


def _wait_for(predicate, proc, timeout=120):
  end = time.time() + timeout
  while time.time() < end:
    if predicate():
      return
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    time.sleep(0.02)
  raise TimeoutError


def _final_params(tiny_config, workdir):
  tiny_config.model.embedding_dim = 16
  exp = Experiment.create(tiny_config, workdir)
  return jax.device_get(exp.state.params), exp.restored


def _assert_same_params(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)


@pytest.fixture(scope='module')
def reference(tiny_data_dir, tmp_path_factory):
  """An uninterrupted 200-step run, the yardstick for the interrupted ones."""
  workdir = str(tmp_path_factory.mktemp('reference'))
  _run(_args(tiny_data_dir, workdir, 200))
  return workdir


@pytest.mark.slow
@pytest.mark.xdist_group('reference')  # the worker that ran the reference run
def test_sigterm_saves_and_resume_matches_uninterrupted(tiny_data_dir, tiny_config, tmp_path,
                                                        reference):
  workdir = str(tmp_path / 'run')
  proc = _start(_args(tiny_data_dir, workdir, 200, '--config.checkpoint_every_steps=1000'))
  _wait_for(lambda: len(_logged_steps(workdir)) >= 3, proc)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode != 0
  saved = int(stderr.split('saved a checkpoint at step ')[1].split()[0])
  assert 3 <= saved < 200
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == [str(saved)]
  _run(_args(tiny_data_dir, workdir, 200, '--config.checkpoint_every_steps=1000'))
  (resumed, step), (expected, _) = (_final_params(tiny_config, workdir),
                                    _final_params(tiny_config, reference))
  assert step == 200
  _assert_same_params(resumed, expected)


@pytest.mark.slow
@pytest.mark.xdist_group('reference')
def test_sigkill_between_checkpoints_resumes_from_last_one(tiny_data_dir, tiny_config, tmp_path,
                                                           reference):
  workdir = str(tmp_path / 'run')
  args = _args(tiny_data_dir, workdir, 200, '--config.checkpoint_every_steps=50')
  proc = _start(args)
  _wait_for(lambda: os.path.isdir(os.path.join(workdir, 'checkpoints', '50'))
            and len(_logged_steps(workdir)) >= 55, proc)
  proc.kill()
  proc.communicate()
  steps_logged = len(_logged_steps(workdir))
  assert steps_logged < 200
  p = _run(args)
  assert 'resuming from the checkpoint at step' in p.stdout
  resumed, step = _final_params(tiny_config, workdir)
  assert step == 200
  _assert_same_params(resumed, _final_params(tiny_config, reference)[0])


def _largest_file(folder):
  files = [f for f in glob.glob(os.path.join(folder, '**', '*'), recursive=True)
           if os.path.isfile(f)]
  return max(files, key=os.path.getsize)


@pytest.mark.slow  # a whole training and eval: the full suite's
def test_damaged_latest_checkpoint_is_skipped_and_kept_aside(tiny_data_dir, tiny_config, tmp_path):
  workdir = str(tmp_path / 'run')
  tiny_config.num_train_steps = 6
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  ckpts = os.path.join(workdir, 'checkpoints')
  assert sorted(os.listdir(ckpts)) == ['3', '6']
  victim = _largest_file(os.path.join(ckpts, '6'))
  with open(victim, 'r+b') as f:
    f.truncate(os.path.getsize(victim) // 2)
  # A half-written save (Orbax's temporary folder) must be ignored too.
  os.makedirs(os.path.join(ckpts, '7.orbax-checkpoint-tmp-1234'))
  p = _run(_args(tiny_data_dir, workdir, 9, '--config.checkpoint_every_steps=3'))
  assert 'checkpoint 6 is damaged (Encountered error while reading array index' in p.stdout
  assert 'TensorStore details' not in p.stdout
  # Said once: the failed restore's abandoned reads print no tracebacks (they printed
  # hundreds of lines before).
  assert 'Traceback' not in p.stderr and 'Exception ignored' not in p.stderr, p.stderr[:2500]
  assert os.listdir(os.path.join(workdir, 'damaged_checkpoints'))[0].startswith('6-')
  assert '9' in os.listdir(ckpts)
  assert _final_params(tiny_config, workdir)[1] == 9


def test_checkpoint_without_its_metadata_is_damage_not_another_config(tiny_config, tmp_path, capsys):
  workdir = str(tmp_path / 'run')
  tiny_config.num_train_steps = 6
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  os.remove(os.path.join(workdir, 'checkpoints', '6', 'default', '_METADATA'))
  metrics = evaluation.evaluate_workdir(config_checks.prepare(tiny_config), workdir)
  assert 'checkpoint 6 is damaged' in capsys.readouterr().out
  assert metrics['step'] == 3
  # A reader changes nothing in the workdir: the next training sets the damage aside.
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3', '6']
  assert not os.path.exists(os.path.join(workdir, 'damaged_checkpoints'))


def test_a_checkpoint_pruned_while_an_eval_reads_it_is_not_damage(tiny_config, tmp_path, capsys,
                                                                  monkeypatch):
  """A training beside isx.eval (max_checkpoints_to_keep) removes the checkpoint being read: the
  eval tries the newest again, calls nothing damaged and moves nothing."""
  import orbax.checkpoint as ocp
  workdir = str(tmp_path / 'run')
  tiny_config.num_train_steps = 6
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  original, pruned = ocp.CheckpointManager.restore, []

  def restore(self, step, *args, **kwargs):
    if not pruned:  # the training prunes it (here: moves it out of the workdir) mid-read
      pruned.append(step)
      os.rename(os.path.join(workdir, 'checkpoints', str(step)), str(tmp_path / 'gone'))
      raise FileNotFoundError(f'{step}/default/_METADATA')
    return original(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, 'restore', restore)
  metrics = evaluation.evaluate_workdir(config_checks.prepare(tiny_config), workdir)
  assert pruned == [6] and metrics['step'] == 3
  assert 'damaged' not in capsys.readouterr().out
  assert not os.path.exists(os.path.join(workdir, 'damaged_checkpoints'))


def test_checkpoint_from_another_model_config_is_an_error(tiny_config, tmp_path):
  workdir = str(tmp_path / 'run')
  tiny_config.num_train_steps = 3
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  tiny_config.model.embedding_dim = 32
  os.remove(os.path.join(workdir, 'config.json'))  # the checkpoint's own check, not the config's
  with pytest.raises(checkpointing.CheckpointMismatchError,
                     match=r'different model config \(params/classifier/\S+: saved \(16, 10\), '
                           r'this config \(32, 10\) and \d+ more\)'):
    Experiment.create(tiny_config, workdir)
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['3']


def test_eval_without_checkpoint_is_an_error(tiny_config, tmp_path):
  with pytest.raises(FileNotFoundError, match='no checkpoint in .*train first'):
    evaluation.evaluate_workdir(config_checks.prepare(tiny_config), str(tmp_path / 'empty'))


def test_unwritable_workdir_is_an_error(tiny_config, tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('')
  with pytest.raises(PermissionError, match='is not writable.*choose another --workdir'):
    train.train_and_evaluate(config_checks.prepare(tiny_config), str(blocker / 'run'))


def test_unwritable_checkpoints_folder_is_an_error_before_training(tiny_config, tmp_path):
  (tmp_path / 'run').mkdir()
  (tmp_path / 'run' / 'checkpoints').write_text('')  # not a folder: unwritable even for root
  with pytest.raises(PermissionError, match='workdir .* is not writable'):
    train.train_and_evaluate(config_checks.prepare(tiny_config), str(tmp_path / 'run'))


def test_images_too_small_for_the_model(tiny_config):
  from isx import models
  with pytest.raises(ValueError, match=r'images of shape \(4, 4, 1\) are too small for SimpleNet'):
    models.create_model(tiny_config.model, 10, (4, 4, 1))


def _digest(folder) -> dict:
  """Every file under folder (relative path -> bytes), to show a failed command changed none."""
  return {os.path.relpath(path, folder): open(path, 'rb').read()
          for path in glob.glob(os.path.join(folder, '**'), recursive=True) if os.path.isfile(path)}


@pytest.fixture(scope='module')
def finished(tiny_data_dir, tmp_path_factory):
  """A finished (trained and evaluated) 2-step workdir, a copy whose eval/ is a file, a config
  file that is not Python, sweep grids, and download sources that cannot be reached."""
  import shutil
  root = tmp_path_factory.mktemp('finished')
  _run(_args(tiny_data_dir, str(root / 'done'), 2))
  shutil.copytree(root / 'done', root / 'bad_json')
  (root / 'bad_json' / 'config.json').write_text('{x')
  shutil.copytree(root / 'done', root / 'eval_file')
  shutil.rmtree(root / 'eval_file' / 'eval')
  (root / 'eval_file' / 'eval').write_text('')
  (root / 'bad.py').write_text('def get_config(:\n')
  (root / 'empty').mkdir()
  (root / 'grid.json').write_text(json.dumps([{'name': 'a', 'overrides': {'model.xi': 1}}]))
  (root / 'typo_grid.json').write_text(json.dumps([{'name': 'a', 'overrides': {'modell.xi': 1}}]))
  lr = {'learning_rate': {'low': 1e-3, 'high': 1e-2}}
  for name, params in (('space', lr), ('typo_space', {'modell.xi': {'low': 1.0, 'high': 2.0}}),
                       ('empty_space', {'learning_rate': {'low': 0.1, 'high': 0.1}}),
                       ('batch_space', {'batch_size': {'choices': [16, 18]}}),
                       ('xi_space', {'model.xi': {'low': -10, 'high': -1}}),
                       ('int_space', {'batch_size': {'low': 8, 'high': 16}})):
    (root / f'{name}.json').write_text(json.dumps({'methods': {'a': {'params': params}},
                                                   'trial_overrides': VALIDATION}))
  valid = {'methods': {'a': {'params': lr}}, 'trial_overrides': VALIDATION}
  for name, space in (('objective_space', {**valid, 'objective': 'MAP@R'}),
                      ('test_space', {'methods': valid['methods']}),
                      ('final_space', {**valid, 'final_overrides': {'num_epoch': 3}}),
                      ('method_space', {**valid, 'methods': {'a': 3}}),
                      ('escape_space', {**valid, 'methods': {'../x': {}}})):
    (root / f'{name}.json').write_text(json.dumps(space))
  for name, grid in (('dup_grid', [{'name': 'a', 'overrides': {'num_train_steps': 2}},
                                   {'name': 'a', 'overrides': {'num_train_steps': 4}}]),
                     ('escape_grid', [{'name': '../escaped'}]),
                     ('list_grid', [{'name': 'a', 'overrides': [['model.xi', 1]]}])):
    (root / f'{name}.json').write_text(json.dumps(grid))
  truncated = root / 'truncated_runs' / 'a_0' / 'eval'
  truncated.mkdir(parents=True)
  npz = (root / 'done' / 'eval' / 'embeddings.npz').read_bytes()
  (truncated / 'embeddings.npz').write_bytes(npz[:len(npz) // 2])
  (root / 'sources.json').write_text(json.dumps(
      {'fashion_mnist': [['http://127.0.0.1:9/train-images-idx3-ubyte.gz', 1, '0' * 64,
                          'train-images-idx3-ubyte.gz']]}))
  return root


# One real process per row of tests/reliability_cases.py, whose table docs/reliability.md shows.
@pytest.mark.parametrize('case,binary,extra,line', reliability_cases.CASES,
                         ids=[c[0] for c in reliability_cases.CASES])
@pytest.mark.slow
def test_bad_input_gets_one_line_and_loses_nothing(tiny_data_dir, finished, tmp_path,
                                                   monkeypatch, case, binary, extra, line):
  done, new = finished / 'done', tmp_path / 'new'
  before, top = _digest(done), sorted(os.listdir(ROOT))
  fill = dict(data=tiny_data_dir, done=done, new=new, empty=finished / 'empty',
              bad_py=finished / 'bad.py', eval_file=finished / 'eval_file',
              bad_json=finished / 'bad_json', truncated_runs=finished / 'truncated_runs',
              **{path.stem: path for path in finished.glob('*.json')})
  # No step count: a case may stand for an epoch-based run (the configs' default).
  args = [a for a in _args(tiny_data_dir, '', 2)
          if not a.startswith(('--workdir', '--config.num_train_steps'))]
  args[2] = f'isx.{binary}'
  extra = [a.format(**fill) for a in extra]
  if binary.endswith('.py'):  # a results or benchmark script: its own flags only
    args = [sys.executable, binary]
  for a in [a for a in extra if a.startswith('--config=') and binary.startswith(('main', 'eval',
                                                                                 'sweep', 'tune'))]:
    args[args.index('--config=configs/fashion_mnist_simplenet.py')] = a  # the common one's place
    extra.remove(a)
  monkeypatch.setenv('ISX_DATASET_SOURCES', str(finished / 'sources.json'))
  p = _run(args + extra, check=False)
  errors = [x for x in p.stderr.splitlines() if x.startswith('error:')]
  assert p.returncode == 1 and 'Traceback' not in p.stderr, p.stderr[-2000:]
  assert len(errors) == 1 and re.search(reliability_cases.pattern(line), errors[0]), errors
  assert not new.exists()
  assert _digest(done) == before
  assert sorted(os.listdir(ROOT)) == top  # nothing written into the current folder


def test_the_documented_bad_input_table_is_the_tested_one():
  page = open(os.path.join(ROOT, 'docs', 'reliability.md')).read()
  assert reliability_cases.markdown() in page, (
      'docs/reliability.md\'s bad-input table differs from tests/reliability_cases.py: paste the '
      'output of python tests/reliability_cases.py')


def test_bad_config_values_are_refused_before_anything_is_written(tiny_config, tmp_path):
  bad = {'learning_rate': float('inf'), 'num_train_steps': 0, 'log_every_steps': 0,
         'evals.accuracy.every_steps': -1, 'eval_batch_size': 0, 'evals.retrieval.ks': (1, 0)}
  bad_too = {'evals.retrieval.ks': (1, 40)}  # the tiny test split has 37 examples
  for key, value in [*bad.items(), *bad_too.items()]:
    config = tiny_config.copy_and_resolve_references()
    *parents, leaf = key.split('.')
    node = config
    for parent in parents:
      node = node[parent]
    node[leaf] = value
    with pytest.raises(ValueError, match=key):
      train.train_and_evaluate(config_checks.prepare(config), str(tmp_path / key))
    assert not (tmp_path / key).exists()
  tiny_config.num_train_steps, tiny_config.num_epochs = None, 0
  with pytest.raises(ValueError, match='num_epochs must be positive'):
    train.train_and_evaluate(config_checks.prepare(tiny_config), str(tmp_path / 'epochs'))
  tiny_config.num_epochs, tiny_config.model.embedding_dim = 1, 0
  with pytest.raises(ValueError, match='model.embedding_dim must be a positive integer'):
    train.train_and_evaluate(config_checks.prepare(tiny_config), str(tmp_path / 'dim'))


@pytest.mark.slow
def test_workdir_remembers_its_config(tiny_data_dir, tiny_config, tmp_path):
  workdir = str(tmp_path / 'run')
  tiny_config.num_train_steps = 3
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  metrics = open(os.path.join(workdir, 'eval', 'metrics.json')).read()
  for key, value in (('model.inward_scale', False), ('model.xi', 10.0), ('learning_rate', 0.1)):
    config = tiny_config.copy_and_resolve_references()
    *parents, leaf = key.split('.')
    setattr(config.model if parents else config, leaf, value)
    for action, fn in (('evaluate', evaluation.evaluate_workdir), ('resume', train.train_and_evaluate)):
      with pytest.raises(ValueError, match=f'cannot {action}: .*differing: {key}'):
        fn(config_checks.prepare(config), workdir)
  assert open(os.path.join(workdir, 'eval', 'metrics.json')).read() == metrics
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['3']
  # Fields that may differ (eval batch, logging, how long) are accepted: train 2 more steps.
  tiny_config.eval_batch_size, tiny_config.num_train_steps = 8, 5
  assert train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)['step'] == 5
  # The eval binary without --config uses the saved one.
  p = _run([sys.executable, '-m', 'isx.eval', f'--workdir={workdir}'], devices=8)
  assert re.search(r'step 5: \d+ test examples \| accuracy ', p.stdout), p.stdout
  assert json.load(open(os.path.join(workdir, 'eval', 'metrics.json')))['step'] == 5


@pytest.mark.slow
def test_remote_workdir_that_cannot_be_reached_fails_in_one_line_and_writes_nothing_here(
    tiny_data_dir, tmp_path):
  # No GCS client or credentials here: etils.epath cannot reach gs://, which must not turn into
  # a local folder named 'gs:' (as os.path once made of it).
  args = [a.replace('--config=configs/', f'--config={ROOT}/configs/')
          for a in _args(tiny_data_dir, 'gs://isx-no-such-bucket/run', 2)]
  p = subprocess.run(args, cwd=tmp_path,
                     env=_env(), capture_output=True, text=True, timeout=300)
  assert p.returncode == 1 and 'Traceback' not in p.stderr
  assert 'error: workdir gs://isx-no-such-bucket/run is not writable' in p.stderr
  assert os.listdir(tmp_path) == []


def test_damaged_dataset_files_fail_in_one_line(tiny_data_dir, tiny_config, tmp_path):
  import shutil
  shutil.copytree(tiny_data_dir, tmp_path / 'data')
  (shard,) = glob.glob(str(tmp_path / 'data' / 'fashion_mnist' / '*' / '*train.array_record*'))
  with open(shard, 'r+b') as f:
    f.truncate(os.path.getsize(shard) // 2)
  tiny_config.dataset.data_dir = str(tmp_path / 'data')
  with pytest.raises(ValueError, match='cannot read examples .*damaged: prepare the dataset again'):
    train.train_and_evaluate(config_checks.prepare(tiny_config), str(tmp_path / 'run'))


@pytest.mark.slow
def test_help_exits_0_and_a_run_prints_no_library_logs(tiny_data_dir, tmp_path):
  p = _run([sys.executable, '-m', 'isx.main', '--help'])
  assert '--workdir' in p.stdout and '--config' in p.stdout
  p = _run(_args(tiny_data_dir, str(tmp_path / 'run'), 2))
  logs = [line for line in (p.stdout + p.stderr).splitlines() if re.match(r'[IW]\d{4} ', line)]
  assert not logs, logs[:5]
  assert re.search(r'step 2: \d+ test examples \| accuracy ', p.stdout), p.stdout


@pytest.mark.slow
def test_eval_on_a_mistyped_workdir_creates_nothing(tmp_path):
  p = _run([sys.executable, '-m', 'isx.eval', f'--workdir={tmp_path / "typo"}'], check=False)
  assert p.returncode == 1 and 'error:' in p.stderr and 'Traceback' not in p.stderr
  assert not (tmp_path / 'typo').exists()



@pytest.mark.slow
def test_two_processes_equal_one_process(tiny_data_dir, tiny_config, tmp_path):
  single, multi = str(tmp_path / 'single'), str(tmp_path / 'multi')
  # One process with two devices vs two processes with one device each: the same global mesh,
  # global batch and seed. The two processes stop at step 4 and resume: a restore committed
  # to one process's device once failed ("does not support cross-host device transfers").
  _run(_args(tiny_data_dir, single, 8), devices=2)
  for steps in (4, 8):
    port = free_port()
    procs = [_start(_args(tiny_data_dir, multi, steps, f'--coordinator_address=127.0.0.1:{port}',
                          '--num_processes=2', f'--process_id={i}')) for i in range(2)]
    outs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outs):
      assert proc.returncode == 0, err[-3000:]
  assert 'resuming from the checkpoint at step 4' in outs[0][0]
  losses = lambda w: [r['train/loss'] for r in _logged_steps(w) if 'train/loss' in r]
  assert len(losses(single)) == 8
  np.testing.assert_allclose(losses(multi), losses(single), rtol=1e-6)
  (p_multi, s_multi), (p_single, _) = (_final_params(tiny_config, multi),
                                       _final_params(tiny_config, single))
  assert s_multi == 8
  _assert_same_params(p_multi, p_single)
  with open(os.path.join(multi, 'eval', 'metrics.json')) as f:
    assert json.load(f)['num_examples'] == 37


def _local_devices(stderr):  # isx.main --verbosity=0 logs its device setup
  return int(re.search(r'process 0 of 1, (\d+) local', stderr).group(1))


@pytest.mark.slow
def test_many_cpu_devices_never_deadlock_in_the_all_reduce(tiny_data_dir, tmp_path):
  # 8 CPU devices, 200 tiny steps and no log (sync) until the end: when the host ran ahead,
  # XLA:CPU's launch threads all blocked and every run here aborted in the all-reduce
  # rendezvous within 30 s ("Expected 8 threads to join"). The loop now waits for each dispatch
  # on multi-device CPU. A 10 s rendezvous limit makes a regression fail fast.
  env = _env(8)
  env['XLA_FLAGS'] += ' --xla_cpu_collective_call_terminate_timeout_seconds=10'
  args = _args(tiny_data_dir, str(tmp_path / 'run'), 200, '--config.log_every_steps=200',
               '--verbosity=0')
  p = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stderr[-3000:]
  assert re.search(r'step 200: \d+ test examples \| accuracy ', p.stdout), p.stdout
  assert _local_devices(p.stderr) == 8  # a device count in XLA_FLAGS is the user's choice
  assert train.waits_for_each_dispatch(mesh_lib.make_mesh(jax.devices()[:2]))
  assert not train.waits_for_each_dispatch(mesh_lib.make_mesh(jax.devices()[:1]))


@pytest.mark.slow
def test_isx_main_splits_the_cpu_by_default(tiny_data_dir, tmp_path):
  env = {k: v for k, v in _env().items() if k != 'XLA_FLAGS'}
  p = subprocess.run(_args(tiny_data_dir, str(tmp_path / 'run'), 1, '--verbosity=0'), cwd=ROOT,
                     env=env, capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stderr[-3000:]
  cores = cpu_setup.usable_cores()  # YNNPACK convolutions (ISX_CPU_CONV_PATH, conftest) split
  assert _local_devices(p.stderr) == cpu_setup.auto_cpu_devices((16, 16), cores)


class _FullDisk:
  """What Orbax raises when the disk fills (seen with a 2 MB tmpfs)."""
  directory = '/runs/x/checkpoints'
  error = ValueError('RESOURCE_EXHAUSTED: Error writing "params/0" ...: No space left on device')

  def should_save(self, step):
    return True

  def save(self, *args, **kwargs):
    raise self.error

  def wait_until_finished(self):
    raise self.error

  def latest_step(self):
    return 3


def _state():
  return step_lib.TrainState(step=np.int32(3), apply_fn=None, tx=None, opt_state=(),
                             params={'w': np.zeros((512, 1024), np.float32)})


def test_a_failed_checkpoint_write_is_one_error_naming_step_and_folder(monkeypatch):
  import collections
  usage = collections.namedtuple('usage', 'total used free')
  monkeypatch.setattr('shutil.disk_usage', lambda path: usage(0, 0, 10 << 30))
  message = (r'cannot write checkpoint 3 to /runs/x/checkpoints \(RESOURCE_EXHAUSTED.*\); '
             r'free some space or choose another --workdir')
  with pytest.raises(checkpointing.CheckpointWriteError, match=message):
    checkpointing.save(_FullDisk(), _state())
  with pytest.raises(checkpointing.CheckpointWriteError, match=message):
    checkpointing.wait_for_save(_FullDisk())


def test_a_save_that_cannot_fit_is_refused_before_orbax_writes(monkeypatch):
  import collections
  usage = collections.namedtuple('usage', 'total used free')
  monkeypatch.setattr('shutil.disk_usage', lambda path: usage(0, 0, 2 << 20))  # a 2 MiB disk

  class Watched(_FullDisk):
    def save(self, *args, **kwargs):
      raise AssertionError('Orbax was asked to write')

  with pytest.raises(checkpointing.CheckpointWriteError,
                     match=r'cannot write checkpoint 3 to /runs/x/checkpoints: it needs about '
                           r'2.0 MiB and 2.0 MiB are free; free some space'):
    checkpointing.save(Watched(), _state())


@pytest.mark.slow
def test_a_workdir_in_training_is_refused_to_a_second_training(tiny_data_dir, finished, tmp_path):
  import shutil
  assert not (finished / 'done' / '.isx-lock').exists()  # a finished training let go of it
  workdir = tmp_path / 'busy'
  shutil.copytree(finished / 'done', workdir)
  # A live holder on this host: this test process stands in for the first training.
  (workdir / '.isx-lock').write_text(json.dumps(
      {'host': socket.gethostname(), 'pid': os.getpid(), 'started': time.time()}))
  before = _digest(workdir)
  p = _run(_args(tiny_data_dir, str(workdir), 4), check=False)
  assert p.returncode == 1 and 'Traceback' not in p.stderr
  assert re.search(rf'^error: .*busy is being trained by pid {os.getpid()} on .*; wait for it or '
                   r'stop it, or choose another --workdir$', p.stderr.strip(), re.M), p.stderr
  assert _digest(workdir) == before
