"""Fault injection: one short training interrupted at seeded random moments (mid-step, mid-save,
mid-eval, while the lock is taken) by SIGKILL, SIGTERM or an injected divergence, and resumed
each time with the same command. Nothing reported may be missing, every resume starts from the
newest complete checkpoint, no temporary checkpoint folder outlives a run, no train step is
logged twice, and the final parameters equal an uninterrupted run's bit for bit (one CPU device,
the convolution path pinned by conftest). ISX_CHAOS_SEED picks the first seed and
ISX_CHAOS_INTERRUPTIONS how many interruptions to make (10 by default, for the suite's time)."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from test_reliability import ROOT, _assert_same_params, _env, _final_params

pytestmark = pytest.mark.slow

STEPS, INTERRUPTIONS = 12, int(os.environ.get('ISX_CHAOS_INTERRUPTIONS', '10'))
PHASES = ('lock', 'step', 'save', 'eval')


def _args(data_dir, workdir):
  return [sys.executable, os.path.join(ROOT, 'tests', 'chaos_main.py'),
          '--config=configs/fashion_mnist_simplenet.py', f'--workdir={workdir}',
          f'--config.dataset.data_dir={data_dir}', '--config.model.embedding_dim=16',
          '--config.batch_size=16', '--config.eval_batch_size=16',
          f'--config.num_train_steps={STEPS}', '--config.log_every_steps=1',
          '--config.checkpoint_every_steps=2', '--config.evals.accuracy.every_steps=3',
          '--config.plots=False']


def _complete(workdir):
  folder = os.path.join(workdir, 'checkpoints')
  return sorted(int(d) for d in os.listdir(folder) if d.isdigit()) if os.path.isdir(folder) else []


def _temporary(workdir):
  folder = os.path.join(workdir, 'checkpoints')
  return [d for d in os.listdir(folder) if 'tmp' in d] if os.path.isdir(folder) else []


def _train_steps(workdir):
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.read().splitlines()
  records = []
  for line in lines:
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:  # a last line cut short by the kill
      assert line is lines[-1], line
  return [r['step'] for r in records if 'train/loss' in r]


def _listdir(folder):
  try:
    return os.listdir(folder)
  except FileNotFoundError:
    return []


def _wait_for_phase(proc, workdir, phase, rng):
  """Returns when the run is in `phase` (with a random offset), or when it has ended."""
  if phase == 'lock':  # its holder's file appears, then is linked into place as the lock
    test = lambda: any(n.startswith('.isx-lock') for n in _listdir(workdir))
  elif phase == 'save':
    test = lambda: bool(_temporary(workdir))
  else:
    before = len(_train_steps(workdir))
    target = before + int(rng.integers(1, 4))
    # An in-loop eval runs after steps 3, 6, 9: wait for the step before one to be logged.
    if phase == 'eval':
      target = next((s for s in (3, 6, 9) if s > (max(_train_steps(workdir), default=0))), STEPS)
    test = lambda: len(_train_steps(workdir)) >= target or (
        phase == 'eval' and max(_train_steps(workdir), default=0) >= target)
  while proc.poll() is None and not test():
    time.sleep(0.002)
  time.sleep(rng.uniform(0, 0.02))


def _launch(data_dir, workdir, rng):
  """One launch, interrupted or not; returns (what was done, whether an interruption was made)."""
  newest = max(_complete(workdir), default=None)
  kind = rng.choice(('SIGKILL', 'SIGTERM', 'NaN'))
  env = _env(1)
  if kind == 'NaN':
    env['ISX_CHAOS_NAN_STEP'] = str(int(rng.integers((newest or 0) + 1, STEPS + 1)))
  proc = subprocess.Popen(_args(data_dir, workdir), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  phase = rng.choice(PHASES)
  interrupted = False
  if kind != 'NaN':
    _wait_for_phase(proc, workdir, phase, rng)
    if proc.poll() is None:
      proc.send_signal(signal.SIGKILL if kind == 'SIGKILL' else signal.SIGTERM)
      interrupted = True
  out, err = proc.communicate(timeout=300)
  interrupted = interrupted or (kind == 'NaN' and proc.returncode != 0)
  what = f'{kind} ({phase if kind != "NaN" else env["ISX_CHAOS_NAN_STEP"]}) -> {proc.returncode}'

  # A resume starts from the newest complete checkpoint on disk before the launch.
  resumed = re.search(r'resuming from the checkpoint at step (\d+)', out)
  if resumed or (newest is not None and 'parameters (each array' in out):
    assert resumed and int(resumed.group(1)) == newest, (what, newest, out[-1000:])
  # A checkpoint the run names exists, complete.
  for named in re.findall(r'(?:saved a checkpoint at step|last good checkpoint \(step) (\d+)',
                          err):
    assert int(named) in _complete(workdir), (what, named, _complete(workdir), err[-1500:])
  if proc.returncode in (0, 1):  # the run ended by itself: nothing left half-written
    assert not _temporary(workdir), (what, _temporary(workdir))
    assert 'Traceback' not in err, (what, err[-3000:])
    assert proc.returncode == 0 or re.search(r'^error: loss or weights became non-finite|^SIGTERM',
                                             err, re.M), (what, err[-1500:])
  steps = _train_steps(workdir)
  assert len(steps) == len(set(steps)), (what, steps)
  return what, interrupted, proc.returncode == 0


def test_training_survives_random_interruptions(tiny_data_dir, tiny_config, tmp_path):
  reference = str(tmp_path / 'reference')
  subprocess.run(_args(tiny_data_dir, reference), cwd=ROOT, env=_env(1), check=True,
                 capture_output=True, timeout=300)
  expected, _ = _final_params(tiny_config, reference)
  first = int(os.environ.get('ISX_CHAOS_SEED', '0'))
  made, seed, log = 0, first, []
  while made < INTERRUPTIONS:
    rng = np.random.default_rng(seed)
    workdir = str(tmp_path / f'seed{seed}')
    for _ in range(40):  # launches until this seed's training has finished
      what, interrupted, finished = _launch(tiny_data_dir, workdir, rng)
      made += interrupted
      log.append(f'seed {seed}: {what}')
      if finished:
        break
    assert finished, log
    assert not _temporary(workdir)
    assert _train_steps(workdir) == list(range(1, STEPS + 1)), log
    params, step = _final_params(tiny_config, workdir)
    assert step == STEPS
    _assert_same_params(params, expected)
    seed += 1
  print(f'\nchaos: seeds {first}-{seed - 1}: {made} interruptions survived of {made} made\n' +
        '\n'.join(log))
