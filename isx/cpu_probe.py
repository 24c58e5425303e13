"""One XLA:CPU setup timed on one model: isx.cpu_setup starts this once per candidate, with the
candidate's XLA_FLAGS and device count, and reads one JSON line from stdout.

  echo WORKLOAD_JSON | python -m isx.cpu_probe [--cores=N]

The workload (isx.cpu_setup.workload) is the run's config with its data's image shape and
classes. The probe compiles the run's own train step (one step per dispatch) on random uint8
images at the config's batch size, then times single steps, each waited for as the training
loop waits on several CPU devices (see keep_timing for how many), and reports the fastest:
the one least disturbed by anything else running (a median moved with a neighbour's load).
"""
import argparse
import json
import os
import sys
import time

WARMUP_STEPS, MIN_STEPS, MAX_STEPS, MIN_SECONDS, MAX_SECONDS = 2, 3, 10, 2.0, 20.0


def keep_timing(times, elapsed) -> bool:
  """At least one step; then MIN_STEPS and MIN_SECONDS, unless MAX_SECONDS are spent (a
  GoogleNet step on a 2-core CPU takes ~15 s: it gets one or two)."""
  if not times:
    return True
  if len(times) >= MAX_STEPS or elapsed >= MAX_SECONDS:
    return False
  return len(times) < MIN_STEPS or elapsed < MIN_SECONDS


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--cores', type=int, default=0, help='limit this process to N cores')
  args = parser.parse_args()
  if args.cores and hasattr(os, 'sched_setaffinity'):  # before XLA sizes its thread pools
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
  workload = json.loads(sys.stdin.read())

  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np
  from isx import config_checks, mesh as mesh_lib
  from isx.dataset_info import DatasetInfo
  from isx.experiment import Experiment
  config = config_checks.config_from_dict(workload['config'])
  shape, classes = tuple(workload['image_shape']), workload['num_classes']
  # num_train only sizes the lr schedule, which does not change a step's cost.
  info = DatasetInfo('probe', classes, shape, num_train=10_000 * config.batch_size, num_eval=1)
  exp = Experiment.create(config, info=info)
  state, train_fn = exp.state, exp.train_fn
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (1, config.batch_size, *shape), dtype=np.uint8),
           'label': rng.integers(0, classes, (1, config.batch_size)).astype(np.int32)}
  batch = mesh_lib.to_global(batch, mesh_lib.chunk_sharding(exp.mesh))
  key = jax.random.key(1)
  for _ in range(WARMUP_STEPS):  # the first compiles; the next still run slower (allocations)
    state, metrics = train_fn(state, batch, key)
    jax.block_until_ready(metrics)
  times, start = [], time.perf_counter()
  while keep_timing(times, time.perf_counter() - start):
    t = time.perf_counter()
    state, metrics = train_fn(state, batch, key)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t)
  print(json.dumps({'ms_per_step': 1e3 * min(times), 'steps': len(times),
                    'devices': jax.device_count(), 'backend': jax.default_backend()}), flush=True)


if __name__ == '__main__':
  main()
