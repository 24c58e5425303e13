"""One-epoch diagnostics behind RESULTS.md, "One epoch": test accuracy every K steps, or the
norm of each kernel and its relative change per step. In memory, on isx's own train step.

  python results/one_epoch.py --npz=fashion_mnist.npz warmup_steps=200 seed=1 >> curves.jsonl
  python results/one_epoch.py --npz=fashion_mnist.npz --norms --stop=200 warmup_steps=0

Arguments KEY=JSON override configs/fashion_mnist_simplenet.py (num_epochs is 1).
"""
import argparse
import json
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import fashion_mnist_simplenet  # noqa: E402
from isx import step as step_lib, sweep  # noqa: E402

NORM_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 468)


def kernels(params):
  return {str(path[-2].key): np.asarray(v) for path, v in
          jax.tree_util.tree_leaves_with_path(params) if path[-1].key == 'kernel'}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--npz', required=True, help='python -m isx.sweep --export=...')
  parser.add_argument('--every', type=int, default=78, help='test accuracy every this many steps')
  parser.add_argument('--norms', action='store_true', help='kernel norms instead of accuracy')
  parser.add_argument('--stop', type=int, default=0, help='stop after this many steps (0: epoch)')
  parser.add_argument('overrides', nargs='*', help='KEY=JSON')
  args = parser.parse_args()
  overrides = {k: json.loads(v) for k, v in (a.split('=', 1) for a in args.overrides)}
  cfg = sweep.apply_overrides(fashion_mnist_simplenet.get_config(), {'num_epochs': 1, **overrides})
  data = dict(np.load(args.npz))
  env = sweep.setup(cfg, data)
  state = env.state

  def accuracy():
    out = sweep.eval_outputs(cfg, data, env, state)
    return round(float(np.mean(np.argmax(out['logits'], -1) == out['label'])), 4)

  record, start, before = {'overrides': overrides, 'rows': []}, time.perf_counter(), None
  for i in range(1, (args.stop or env.steps) + 1):
    if args.norms and i in NORM_STEPS:
      before = kernels(state.params)
    state, metrics = env.train_fn(state, step_lib.to_global(next(env.batches), env.sharding),
                                  env.rng)
    if args.norms and i in NORM_STEPS:  # (step, {layer: [norm, |change| / norm]})
      after = kernels(state.params)
      record['rows'].append((i, {k: [round(float(np.linalg.norm(w)), 3), round(float(
          np.linalg.norm(w - before[k]) / np.linalg.norm(w)), 4)] for k, w in after.items()}))
    elif not args.norms and (i % args.every == 0 or i == env.steps):  # (step, loss, test accuracy)
      record['rows'].append((i, round(float(metrics['loss']), 3), accuracy()))
  record['seconds'] = round(time.perf_counter() - start)
  print(json.dumps(record), flush=True)


if __name__ == '__main__':
  main()
