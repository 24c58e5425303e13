"""Input-pipeline overhead: SimpleNet training steps fed as isx.main feeds them vs pre-made batches.

Three feeds of the same compiled step, over the same batches (real FashionMNIST, prepared with
isx.prepare_data), through input_pipeline.global_train_batches exactly as train.py calls it:
  host:     Grain worker threads read ArrayRecord + build each batch, a thread moves it to the
            devices ahead of the step (dataset.device_resident=False);
  resident: the train split is put on the devices once, each step gathers its batch there from
            the indices (dataset.device_resident=True, the default);
  premade:  the same batches made jax.Arrays before the clock starts: the cost of the step alone.
The losses are fetched every log_every_steps, as train.py's non-finite check does. The feeds are
interleaved (premade, host, premade, resident, premade) because other work on the machine moves
step times by more than the overhead; the baseline is the premade median. overhead = feed time /
premade time - 1; process CPU seconds (user + sys) are reported too.

  python benchmarks/bench_input.py --data_dir DIR [--steps N] [--cpu_conv_path P] [--json]

The step runs on the XLA:CPU setup isx.main would choose (isx.cpu_setup), recorded in the JSON.
"""
import argparse
import itertools
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # configs/

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import fashion_mnist_simplenet  # noqa: E402
from isx import cpu_setup, input_pipeline, mesh as mesh_lib, train  # noqa: E402
from isx.experiment import Experiment


def cpu_seconds():
  t = os.times()
  return t.user + t.system


def run_steps(train_fn, state, batches, steps, rng, log_every, wait):
  """train.py's loop body, one step per dispatch: step, keep metrics (waiting for them where
  train.waits_for_each_dispatch says so), fetch the losses every log_every steps. batches(k)
  gives k steps' batches, as global_train_batches does."""
  history = []
  for i in range(steps):
    state, metrics = train_fn(state, batches(1), rng)
    history.append(metrics)
    if wait:
      jax.block_until_ready(metrics)
    if (i + 1) % log_every == 0 or i + 1 == steps:
      np.asarray(jax.device_get([m['loss'] for m in history]))
      history = []
  jax.block_until_ready(state)
  return state


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--steps', type=int, default=0, help='0: one epoch')
  parser.add_argument('--cpu_conv_path', choices=('auto', *cpu_setup.PATHS), default=None,
                      help="as isx.main's flag (default: $ISX_CPU_CONV_PATH, else auto)")
  parser.add_argument('--cpu_devices', type=int, default=None)
  parser.add_argument('--json', action='store_true')
  args = parser.parse_args()
  config = fashion_mnist_simplenet.get_config()
  config.dataset.data_dir = args.data_dir
  info = input_pipeline.dataset_info(config)
  # As isx.main sets XLA:CPU up before JAX starts (timed once per host and model, cached).
  setup = cpu_setup.set_up(config, info.image_shape, info.num_classes, args.cpu_conv_path,
                           args.cpu_devices, log=lambda m: print(m, file=sys.stderr, flush=True))
  steps = args.steps or input_pipeline.steps_per_epoch(info, config.batch_size)
  exp = Experiment.create(config, info=info)
  mesh, train_fn = exp.mesh, exp.train_fn
  init = jax.device_get(exp.state)
  fresh = lambda: jax.device_put(init, mesh_lib.replicated(mesh))  # the step donates its state
  rng = jax.random.key(1)
  wait = train.waits_for_each_dispatch(mesh)
  chunk = mesh_lib.chunk_sharding(mesh)
  premade = [mesh_lib.to_global(jax.tree.map(lambda x: x[None], b), chunk) for b in
             itertools.islice(input_pipeline.train_batches(config, info), steps)]
  from_premade = lambda: (lambda it: lambda k: next(it))(iter(premade))
  run_steps(train_fn, fresh(), from_premade(), 2, rng, config.log_every_steps, wait)  # compile

  def feed(resident):
    def batches():
      config.dataset.device_resident = resident
      return input_pipeline.global_train_batches(config, info, mesh)
    return batches

  times = {'premade': [], 'host': [], 'resident': []}
  cpu = {k: [] for k in times}
  order = [('premade', from_premade), ('host', feed(False)), ('premade', from_premade),
           ('resident', feed(True)), ('premade', from_premade)]
  for name, make in order:
    state = fresh()
    wall, c = time.perf_counter(), cpu_seconds()
    run_steps(train_fn, state, make(), steps, rng, config.log_every_steps, wait)
    times[name].append(time.perf_counter() - wall)
    cpu[name].append(cpu_seconds() - c)
  base = statistics.median(times['premade'])
  result = {
      'steps': steps, 'devices': jax.device_count(), 'load_avg': os.getloadavg(),
      'cpu_setup': setup.record(),
      'seconds': {k: [round(v, 2) for v in vs] for k, vs in times.items()},
      'cpu_seconds': {k: [round(v, 1) for v in vs] for k, vs in cpu.items()},
      'overhead': {k: round(times[k][0] / base - 1, 4) for k in ('host', 'resident')},
  }
  if args.json:
    print(json.dumps(result))
  else:
    for k, v in result.items():
      print(f'{k}: {v}')


if __name__ == '__main__':
  main()
