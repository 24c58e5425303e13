"""Input-pipeline overhead: SimpleNet training steps fed by the TFDS pipeline vs in-memory batches.

The pipeline side is exactly isx/train.py's loop: input_pipeline.train_batches (FashionMNIST from
TFDS: cache, seeded shuffle over the whole train split, batch) -> input_pipeline.prefetch
(to_global in a background thread) -> the compiled train step, with the loss fetched every
log_every_steps as train.py's non-finite check does. The baseline runs the same loop over the
same number of batches that were made jax.Arrays ahead of time (real FashionMNIST images in the
same shapes and dtypes), so it costs only the step.

Two pipeline epochs are timed from one train_batches generator, as a run sees them:
  cold: epoch 0 from a fresh pipeline (TFDS read + decode + cache fill + shuffle-buffer fill),
  warm: epoch 1 (reads the cache; only the shuffle fill and batching remain).
In-memory runs are interleaved around them (mem, cold, mem, warm, mem) because other work on the
machine moves step times by more than the overhead; the baseline is their median.
overhead = pipeline time / in-memory time - 1. CPU seconds of the process (user + sys) are
reported too: on a shared machine they show the pipeline's extra work independent of contention.

  python benchmarks/bench_input.py [--steps N] [--data_dir DIR] [--json]
"""
import argparse
import itertools
import json
import os
import sys
import time

import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from configs import fashion_mnist_simplenet
from isx import input_pipeline, models, step as step_lib


def cpu_seconds():
  t = os.times()
  return t.user + t.system


def run_steps(train_fn, state, batches, steps, rng, log_every):
  """train.py's loop body: step, keep metrics, fetch the losses every log_every steps."""
  history = []
  for i in range(steps):
    state, metrics = train_fn(state, next(batches), rng)
    history.append(metrics)
    if (i + 1) % log_every == 0 or i + 1 == steps:
      np.asarray(jax.device_get([m['loss'] for m in history]))  # train.py's check_finite
      history = []
  jax.block_until_ready(state)
  return state


def timed(fn):
  wall, cpu = time.perf_counter(), cpu_seconds()
  out = fn()
  return out, time.perf_counter() - wall, cpu_seconds() - cpu


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--data_dir', default=os.environ.get('TFDS_DATA_DIR'),
                 help='TFDS data dir holding fashion_mnist (default: $TFDS_DATA_DIR)')
  p.add_argument('--steps', type=int, default=0, help='steps per timed run (0: a full epoch)')
  p.add_argument('--json', action='store_true', help='print one JSON object')
  args = p.parse_args()
  log = lambda msg: print(msg, file=sys.stderr, flush=True)

  config = fashion_mnist_simplenet.get_config()
  config.dataset.data_dir = args.data_dir
  info = input_pipeline.dataset_info(config)
  per_epoch = input_pipeline.steps_per_epoch(info, config.batch_size)
  steps = min(args.steps or per_epoch, per_epoch)

  mesh = step_lib.make_mesh()
  data = step_lib.data_sharding(mesh)
  model = models.create_model(config.model, info.num_classes)
  total = 10 * per_epoch
  state = step_lib.create_train_state(config, model, info.image_shape, info.num_classes, total,
                                      jax.random.key(0))
  state = jax.device_put(state, step_lib.replicated(mesh))
  train_fn, _ = step_lib.compile_steps(config, mesh, total)
  rng = jax.random.key(1)

  # In-memory batches: real images in a seeded order, on the device before any timing. Read
  # through a separate TFDS dataset object, so the pipeline's own cache stays cold.
  arrays = tfds.as_numpy(tfds.builder('fashion_mnist', data_dir=args.data_dir).as_dataset(
      split='train', batch_size=-1))
  order = np.random.default_rng(0).permutation(len(arrays['label']))
  bs = config.batch_size
  mem = [step_lib.to_global({'image': arrays['image'][order[i * bs:(i + 1) * bs]],
                             'label': arrays['label'][order[i * bs:(i + 1) * bs]]}, data)
         for i in range(steps)]
  jax.block_until_ready(mem)
  state = run_steps(train_fn, state, iter(mem), 2, rng, config.log_every_steps)  # compile

  def in_memory():
    nonlocal state
    state = run_steps(train_fn, state, iter(mem), steps, rng, config.log_every_steps)

  # The pipeline exactly as isx/train.py builds it; one generator for both epochs.
  batches = None

  first_wait = {}

  def pipeline():
    nonlocal state, batches
    if batches is None:
      batches = input_pipeline.prefetch(input_pipeline.train_batches(config, info, 0), data)
    # The wait for an epoch's first batch, timed apart: the steps cannot hide it.
    t = time.perf_counter()
    first = next(batches)
    first_wait[name] = time.perf_counter() - t
    state = run_steps(train_fn, state, itertools.chain([first], batches), steps, rng,
                      config.log_every_steps)

  results = {'in_memory': [], 'cold': None, 'warm': None}
  for name in ('in_memory', 'cold', 'in_memory', 'warm', 'in_memory'):
    if name == 'warm':  # finish epoch 0 untimed (no steps), so the next batch starts epoch 1
      for _ in range(per_epoch - steps):
        next(batches)
    _, wall, cpu = timed(in_memory if name == 'in_memory' else pipeline)
    entry = {'seconds': wall, 'cpu_seconds': cpu, 'load_average': os.getloadavg()[0]}
    if name != 'in_memory':
      entry['first_batch_wait_seconds'] = first_wait[name]
    log(f'{name:9s}: {steps} steps in {wall:.1f} s wall, {cpu:.1f} s cpu, '
        f'load {entry["load_average"]:.1f}')
    if name == 'in_memory':
      results['in_memory'].append(entry)
    else:
      results[name] = entry

  base = float(np.median([e['seconds'] for e in results['in_memory']]))
  base_cpu = float(np.median([e['cpu_seconds'] for e in results['in_memory']]))
  out = {
      'steps': steps, 'steps_per_epoch': per_epoch, 'full_epoch': steps == per_epoch,
      'batch_size': bs, 'shuffle_buffer': config.dataset.shuffle_buffer,
      'pipeline_seconds': results['cold']['seconds'],
      'in_memory_seconds': base,
      'overhead': results['cold']['seconds'] / base - 1,
      'pipeline_warm_seconds': results['warm']['seconds'],
      'overhead_warm': results['warm']['seconds'] / base - 1,
      'first_batch_wait_seconds': results['cold']['first_batch_wait_seconds'],
      'first_batch_wait_seconds_warm': results['warm']['first_batch_wait_seconds'],
      'cpu_overhead': results['cold']['cpu_seconds'] / base_cpu - 1,
      'cpu_overhead_warm': results['warm']['cpu_seconds'] / base_cpu - 1,
      'runs': results, 'cpu_count': os.cpu_count(),
      'tf_threads': {'inter_op': tf.config.threading.get_inter_op_parallelism_threads(),
                     'intra_op': tf.config.threading.get_intra_op_parallelism_threads()},
  }
  if args.json:
    print(json.dumps(out, indent=1))
  else:
    print(f"{steps} steps: pipeline cold {out['pipeline_seconds']:.1f} s, warm "
          f"{out['pipeline_warm_seconds']:.1f} s, in memory {base:.1f} s -> overhead "
          f"{out['overhead']:+.1%} cold, {out['overhead_warm']:+.1%} warm "
          f"(cpu {out['cpu_overhead']:+.1%} / {out['cpu_overhead_warm']:+.1%}); first batch after "
          f"{out['first_batch_wait_seconds']:.1f} s cold, {out['first_batch_wait_seconds_warm']:.2f} s warm")


if __name__ == '__main__':
  main()
