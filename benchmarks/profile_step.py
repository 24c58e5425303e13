"""Where a train step's CPU time goes: a jax.profiler trace of isx.main's steps, summed by kind.

  python benchmarks/profile_step.py --data_dir=DATA [--config=configs/fashion_mnist_simplenet.py]
      [--steps=20] [--workdir=/tmp/isx_profile] [--set=KEY=VALUE ...]

It runs isx.main for 10 + steps steps with config.profile_steps = (10, 10 + steps), as shipped
(the CPU setup isx.main chooses), then sums the self time (an event's duration less its
children's) of every event on XLA:CPU's worker threads, per step, by the kind of op its name
says. XLA:CPU's convolutions hand their work to the Eigen pool as tasks that carry no trace
event: their time is in no row, so the table also gives the step's wall time and core time
(wall x usable cores), and 'not traced' is the core time no event covers (the convolutions,
idle cores, and whatever else ran on them: measure on a quiet host).
"""
import argparse
import collections
import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (kind, pattern on the op's name), first match wins; names are XLA's fusion and thunk names.
KINDS = (('waiting (rendezvous, all-reduce peers)', r'Rendezvous|Wait'),
         ('all-reduce (gradients over devices)', r'all-reduce'),
         ('convolution (the part with a trace event)', r'convolution'),
         ('transposes and copies (layouts for the weight-gradient convolutions)',
          r'transpose|copy'),
         ('reductions (conv bias gradients, norms)', r'reduce'),
         ('select fusions (max-pool and ReLU gradients)', r'select'),
         ('matmuls (dense layers)', r'dot'),
         ('other fusions (ReLU, bias add, pooling taps, optimiser)', r'fusion|wrapped'),
         ('executor bookkeeping', r'.'))
WORKERS = ('tf_XLAEigen', 'tf_XLAPjRtCpuClient')


def kind(name: str) -> str:
  return next(k for k, pattern in KINDS if re.search(pattern, name))


def self_times(trace: dict) -> tuple:
  """({kind: microseconds of self time on the worker threads}, (first, last) microsecond the
  worker threads' events cover)."""
  names = {(e['pid'], e['tid']): e['args']['name'] for e in trace['traceEvents']
           if e.get('ph') == 'M' and e.get('name') == 'thread_name'}
  threads = collections.defaultdict(list)
  for e in trace['traceEvents']:
    # A dispatching thread blocked on its step's completion is not a core's work.
    if (e.get('ph') == 'X' and names.get((e['pid'], e['tid']), '').startswith(WORKERS)
        and not e['name'].endswith('(wait for completion)')):
      threads[(e['pid'], e['tid'])].append(e)
  totals, span = collections.Counter(), [float('inf'), 0.0]
  for events in threads.values():
    events.sort(key=lambda e: (e['ts'], -e['dur']))
    children, stack = collections.Counter(), []
    for i, e in enumerate(events):
      while stack and events[stack[-1]]['ts'] + events[stack[-1]]['dur'] <= e['ts']:
        stack.pop()
      if stack:
        children[stack[-1]] += e['dur']
      stack.append(i)
      span = [min(span[0], e['ts']), max(span[1], e['ts'] + e['dur'])]
    for i, e in enumerate(events):
      totals[kind(e['name'])] += e['dur'] - children[i]
  return totals, span


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--config', default='configs/fashion_mnist_simplenet.py')
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--workdir', default='/tmp/isx_profile')
  parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE')
  args = parser.parse_args()
  shutil.rmtree(args.workdir, ignore_errors=True)
  first = 10
  subprocess.run([sys.executable, '-m', 'isx.main', f'--config={args.config}',
                  f'--workdir={args.workdir}', f'--config.dataset.data_dir={args.data_dir}',
                  f'--config.num_train_steps={first + args.steps}',
                  f'--config.profile_steps=({first},{first + args.steps})',
                  '--config.plots=False', '--config.evals={}',
                  *(f'--config.{s}' for s in args.set)], cwd=ROOT, check=True,
                 stderr=subprocess.DEVNULL)
  path = sorted(glob.glob(os.path.join(args.workdir, 'profile', 'plugins', 'profile', '*',
                                       '*.trace.json.gz')))[-1]
  with gzip.open(path) as f:
    totals, (t0, t1) = self_times(json.load(f))
  wall = (t1 - t0) / args.steps / 1000
  cores = len(os.sched_getaffinity(0))
  core = wall * cores
  busy = sum(v for k, v in totals.items() if not k.startswith('waiting')) / args.steps / 1000
  waiting = totals.pop(KINDS[0][0], 0) / args.steps / 1000
  print(f'{args.config}, {args.steps} steps: {wall:.1f} ms wall a step x {cores} cores = '
        f'{core:.1f} core-ms a step (load average {os.getloadavg()[0]:.2f})')
  rows = [(k, v / args.steps / 1000) for k, v in totals.most_common()]
  rows += [(KINDS[0][0], waiting), ('not traced (convolutions\' Eigen tasks, other processes)',
                                     max(core - busy - waiting, 0.0))]
  for name, ms in sorted(rows, key=lambda r: -r[1]):
    print(f'  {ms:7.1f} core-ms  {100 * ms / core:5.1f}%  {name}')


if __name__ == '__main__':
  main()
