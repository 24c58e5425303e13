"""The tuner under fault injection: one worker of a 6-trial study, its trials replaced by a
function of their parameters (tests/chaos_tune.py), interrupted by SIGKILL or SIGTERM at seeded
random moments and restarted each time with the same command, until it finishes by itself. The
finished study must equal an uninterrupted one: the same counted trials with the same parameters
and values, each finished trial recorded once, and the same best grid. ISX_CHAOS_SEED picks the
seed and ISX_CHAOS_INTERRUPTIONS how many interruptions to make (5 by default, at most 5).

An interruption comes at a random moment within 1.2 trial lengths of the first trial that a run
starts: inside that trial, or in the bookkeeping after it. So an interrupted run finishes at most
one trial and the 6-trial study cannot end before the last interruption, however fast the host."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest

from isx import tune
from test_reliability import ROOT, _env

pytestmark = pytest.mark.slow

INTERRUPTIONS = int(os.environ.get('ISX_CHAOS_INTERRUPTIONS', '5'))
TRIAL_SECONDS = 0.5
SPACE = {'trials': 6, 'startup_trials': 2,
         'trial_overrides': {'dataset.validation_fraction': 0.25,
                             'dataset.eval_split': 'validation'},
         'methods': {'a': {'params': {'learning_rate': {'low': 1e-4, 'high': 1e-1, 'log': True}}}}}


def _args(data_dir, space, out):
  return [sys.executable, os.path.join(ROOT, 'tests', 'chaos_tune.py'),
          '--config=configs/fashion_mnist_simplenet.py', f'--config.dataset.data_dir={data_dir}',
          '--config.batch_size=16', '--config.eval_batch_size=16', f'--space={space}',
          f'--out={out}', '--heartbeat=1']


def _counted(out):
  study = optuna.load_study(study_name='a', storage=tune.sqlite_url(os.path.join(out,
                                                                                 'studies.db')))
  counted = tune.finished(study)[:SPACE['trials']]
  return study, [(t.params, t.value) for t in counted]


def _interrupt_in_first_trial(proc, starts, rng, made):
  """Once proc starts a trial, wait 0 to 1.2 trial lengths, then SIGKILL or SIGTERM it."""
  before, deadline = len(starts.read_text().splitlines()), time.monotonic() + 60
  while len(starts.read_text().splitlines()) == before:
    assert proc.poll() is None, f'the worker exited ({proc.returncode}) before starting a trial'
    assert time.monotonic() < deadline, 'no trial started within 60 s'
    time.sleep(0.01)
  time.sleep(rng.uniform(0.0, 1.2 * TRIAL_SECONDS))
  how = [signal.SIGKILL, signal.SIGTERM][rng.integers(2)]
  assert proc.poll() is None, 'a worker ended by itself before its interruption'
  proc.send_signal(how)
  made.append(how.name)


def test_an_interrupted_study_ends_as_an_uninterrupted_one(tiny_data_dir, tmp_path):
  space = tmp_path / 'space.json'
  space.write_text(json.dumps(SPACE))
  env = _env()
  reference = tmp_path / 'reference'
  p = subprocess.run(_args(tiny_data_dir, space, reference), cwd=ROOT, env=env,
                     capture_output=True, text=True, timeout=120)
  assert p.returncode == 0, p.stderr[-2000:]
  _, expected = _counted(reference)
  assert len(expected) == SPACE['trials']

  out, rng = tmp_path / 'chaos', np.random.default_rng(int(os.environ.get('ISX_CHAOS_SEED', '0')))
  starts = tmp_path / 'starts'
  starts.touch()
  made = []
  while True:
    # stderr to a file: a pipe nobody reads while the test waits could fill and stall the worker
    with open(tmp_path / 'stderr', 'w+') as err:
      proc = subprocess.Popen(_args(tiny_data_dir, space, out), cwd=ROOT,
                              env={**env, 'ISX_CHAOS_STARTS': str(starts),
                                   'ISX_CHAOS_TRIAL_SECONDS': str(TRIAL_SECONDS)},
                              stdout=subprocess.DEVNULL, stderr=err, text=True)
      if len(made) < INTERRUPTIONS:
        _interrupt_in_first_trial(proc, starts, rng, made)
      proc.wait(timeout=120)
      err.seek(0)
      stderr = err.read()
    assert 'Traceback' not in stderr, stderr[-2000:]
    if proc.returncode == 0:
      break
    assert proc.returncode in (1, -signal.SIGKILL, -signal.SIGTERM), stderr[-2000:]
  assert len(made) == INTERRUPTIONS, made
  study, got = _counted(out)
  assert got == expected, (made, [(t.number, t.state.name, t.params) for t in study.get_trials()])
  records = [json.loads(line) for line in (out / 'trials_0.jsonl').read_text().splitlines()]
  complete = [t.number for t in study.get_trials() if t.state.name == 'COMPLETE']
  recorded = [r['trial'] for r in records if r['trial'] in complete]
  assert sorted(recorded) == complete  # each finished trial recorded once
  sys.path.insert(0, os.path.join(ROOT, 'results'))
  import studies  # results/: what the report counts from the records
  counted = studies.counted_trials(records, SPACE['trials'])['a']
  assert [(r['params'], r['value']) for r in counted] == expected
  best = lambda folder: [{k: e[k] for k in ('overrides', 'value', 'seeds')}
                         for e in json.loads((folder / 'best_grid.json').read_text())]
  assert best(out) == best(reference)
  print(f'{len(made)} interruptions ({", ".join(made)}); {len(study.get_trials())} trials, '
        f'{len(complete)} complete')
