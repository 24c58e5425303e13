"""Train-step images/s of SimpleNet and GoogleNet on synthetic in-memory batches, float32 vs
bfloat16 (params and activations cast; Adam state follows the params). Needs no TensorFlow,
so it runs on a GPU machine whose Python has only JAX/Flax/optax.

  python benchmarks/bench_gpu.py [--json]
"""
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from configs import default
from isx import models, step as step_lib

CASES = [('simplenet', (28, 28, 1), 10, 128), ('simplenet', (28, 28, 1), 10, 1024),
         ('googlenet', (32, 32, 3), 100, 128)]


def bench(name, shape, classes, batch, dtype, repeats=5, steps=20):
  config = default.get_config()
  config.model.name = name
  config.batch_size = batch
  model = models.create_model(config.model, classes)
  mesh = step_lib.make_mesh()
  state = step_lib.create_train_state(config, model, shape, classes, 1000, jax.random.key(0))
  state = state.replace(params=jax.tree.map(lambda p: p.astype(dtype), state.params))
  state = state.replace(opt_state=state.tx.init(state.params))
  state = jax.device_put(state, step_lib.replicated(mesh))
  train_fn, _ = step_lib.compile_steps(config, mesh, 1000)
  rng = np.random.default_rng(0)
  batch_data = step_lib.to_global({'image': rng.integers(0, 255, (batch, *shape), np.uint8),
                                   'label': rng.integers(0, classes, (batch,))},
                                  step_lib.data_sharding(mesh))
  key = jax.random.key(1)
  for _ in range(3):  # compile + warm-up
    state, m = train_fn(state, batch_data, key)
  jax.block_until_ready(m)
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(steps):
      state, m = train_fn(state, batch_data, key)
    jax.block_until_ready((state, m))
    times.append((time.perf_counter() - t) / steps)
  return batch / float(np.median(times))


def main():
  device = jax.devices()[0].device_kind
  rows = []
  for name, shape, classes, batch in CASES:
    for dtype in (jnp.float32, jnp.bfloat16):
      rows.append({'model': name, 'batch': batch, 'dtype': jnp.dtype(dtype).name,
                   'img_per_s': bench(name, shape, classes, batch, dtype), 'device': device})
      if '--json' not in sys.argv:
        print(f'{device} {name:9s} batch {batch:5d} {rows[-1]["dtype"]:8s} '
              f'{rows[-1]["img_per_s"]:12.0f} img/s', flush=True)
  if '--json' in sys.argv:
    print(json.dumps(rows))


if __name__ == '__main__':
  main()
