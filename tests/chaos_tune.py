"""`python tests/chaos_tune.py ARGS` is `python -m isx.tune ARGS` with each trial's training
replaced by a function of its parameters that takes ISX_CHAOS_TRIAL_SECONDS (default 0.5) and,
like a training, answers SIGTERM by raising errors.Preempted (tests/test_tune_chaos.py): the
tuner's own bookkeeping is what is interrupted, in seconds rather than minutes. Each trial's start
is a line appended to ISX_CHAOS_STARTS (if set), so that the test can time its interruptions by
the study's progress rather than by the clock."""
import math
import os
import runpy
import sys
import time

from isx import errors, runs, train

SECONDS = float(os.environ.get('ISX_CHAOS_TRIAL_SECONDS', '0.5'))
STARTS = os.environ.get('ISX_CHAOS_STARTS')


def run_one(config, entry, seed, out, cpu=None, workdir=None):
  signals = train.StopSignals()  # what a training installs: SIGTERM and SIGINT stop it
  if STARTS:
    with open(STARTS, 'a') as f:
      f.write(f'{entry["name"]}\n')
  end = time.monotonic() + SECONDS
  while time.monotonic() < end:
    if signals.raised:
      raise errors.Preempted(f'{signals.name}: saved a checkpoint in {workdir}')
    time.sleep(0.01)
  lr = entry['overrides']['learning_rate']
  return {'name': entry['name'], 'seed': seed, 'overrides': entry['overrides'],
          'metrics': {'map@r': 1.0 - abs(math.log10(lr / 3e-3))}}


runs.run_one = run_one
sys.argv[0] = 'isx.tune'
runpy.run_module('isx.tune', run_name='__main__', alter_sys=True)
