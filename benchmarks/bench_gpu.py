"""isx against its PyTorch twin on one accelerator, side by side in one process: train images/s
of SimpleNet (FashionMNIST shape) and GoogleNet (CIFAR-100 shape), float32 and bfloat16.

- isx: the shipped compiled step (`step.compile_train_step`), `model.dtype` float32 or bfloat16, K
  steps per dispatch (`steps_per_dispatch`, a lax.scan) over batches already on the device.
- torch: the twins of benchmarks/bench_train.py (same layers, init, loss and AdamW), eager and
  torch.compile, channels_last; bfloat16 is autocast (AMP), as isx keeps float32 params.
  TF32 is allowed for torch's float32 convs and matmuls, as XLA's default precision does on GPU.
- MFU: XLA's cost-analysis FLOPs per step over the step time, over the card's dense peak
  (PEAK_TFLOPS, TF32 for float32). The frameworks alternate in each repeat; medians reported.

  PYTHONPATH=. python benchmarks/bench_gpu.py [--models simplenet,googlenet] [--json]
  PYTHONPATH=. python benchmarks/bench_gpu.py --device cpu --steps 2 --repeats 1   # smoke run

Needs torch on the machine (never an isx dependency); no TensorFlow.
"""
import argparse
import json
import statistics
import time

import jax
import numpy as np
import torch

import bench_train as twin
from isx import mesh as mesh_lib
from isx.experiment import Experiment

PEAK_TFLOPS = {'H100': {'float32': 494.0, 'bfloat16': 989.0},  # SXM dense: TF32, bf16
               'H200': {'float32': 494.0, 'bfloat16': 989.0}}


def peak(device_kind: str, dtype: str):
  for name, rates in PEAK_TFLOPS.items():
    if name in device_kind:
      return rates[dtype]
  return None


def isx_runner(name, dtype, batch, per_dispatch):
  cfg_module, shape, classes, *_ = twin.CASES[name]
  config = cfg_module.get_config()
  config.batch_size, config.model.dtype = batch, dtype
  config.warmup_steps, config.lr_schedule = 0, 'constant'  # as the twin
  exp = Experiment.create(config, info=twin.bench_info(config, shape, classes),
                          mesh=mesh_lib.make_mesh(jax.devices()[:1]))
  mesh, state, train_fn = exp.mesh, exp.state, exp.train_fn
  variables = jax.device_get({'params': state.params, 'batch_stats': state.batch_stats})
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (batch, *shape), np.uint8)
  labels = rng.integers(0, classes, (batch,)).astype(np.int64)
  chunk = mesh_lib.to_global({'image': np.broadcast_to(images, (per_dispatch, *images.shape)),
                              'label': np.broadcast_to(labels, (per_dispatch, batch))},
                             mesh_lib.chunk_sharding(mesh))
  key = jax.random.key(1)
  compiled = train_fn.lower(state, chunk, key).compile()
  flops = twin.cost_flops(compiled, 1) / per_dispatch
  holder = {'state': state}

  def run():  # one dispatch of per_dispatch steps
    holder['state'], metrics = train_fn(holder['state'], chunk, key)
    return metrics
  return run, flops, variables, config, images, labels


def torch_runners(name, config, variables, images, labels, dtype, device, with_compile):
  cfg_module, shape, classes, *_ = twin.CASES[name]
  make = lambda: (twin.SimpleNet if name == 'simplenet' else twin.GoogleNet)(classes, config.model)
  model = make()
  twin.copy_isx_weights(model, variables)
  fmt = torch.channels_last
  model = model.to(device, memory_format=fmt).train()
  timg = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(memory_format=fmt).to(device)
  tlab = torch.from_numpy(labels).to(device)
  def amp(fn):  # bf16 autocast where isx computes in bf16; float32 as it is
    if dtype != 'bfloat16':
      return fn

    def wrapped(*args):
      with torch.autocast(device_type=device, dtype=torch.bfloat16):
        return fn(*args)
    return wrapped
  step, loss_fn, _ = twin.make_torch_step(model, config)
  runners = {'torch': lambda: step(timg, tlab, loss_fn=amp(loss_fn))}
  if with_compile:
    compiled_model = make().to(device, memory_format=fmt).train()
    compiled_model.load_state_dict(model.state_dict())
    cstep, closs, copt = twin.make_torch_step(compiled_model, config)
    copt.step = torch.compile(copt.step)
    closs = torch.compile(amp(closs))
    runners['torch_compile'] = lambda: cstep(timg, tlab, loss_fn=closs)
  return runners


def bench(name, dtype, batch, per_dispatch, steps, repeats, device, with_compile, log):
  run, flops, variables, config, images, labels = isx_runner(name, dtype, batch, per_dispatch)
  runners = torch_runners(name, config, variables, images, labels, dtype, device, with_compile)
  sync = (torch.cuda.synchronize if device == 'cuda' else lambda: None)
  for _ in range(2):  # compile and warm up everything
    jax.block_until_ready(run())
    for fn in runners.values():
      fn()
  sync()
  times = {'isx': [], **{k: [] for k in runners}}
  dispatches = max(1, steps // per_dispatch)
  for r in range(repeats):
    t = time.perf_counter()
    for _ in range(dispatches):
      out = run()
    jax.block_until_ready(out)
    times['isx'].append((time.perf_counter() - t) / (dispatches * per_dispatch))
    for k, fn in runners.items():
      t = time.perf_counter()
      for _ in range(dispatches * per_dispatch):
        fn()
      sync()
      times[k].append((time.perf_counter() - t) / (dispatches * per_dispatch))
    log(f'{name} {dtype} repeat {r + 1}: ' +
        ', '.join(f'{k} {v[-1] * 1e3:.2f} ms' for k, v in times.items()))
  median = {k: statistics.median(v) for k, v in times.items()}
  kind = jax.devices()[0].device_kind
  rate = peak(kind, dtype)
  row = {'model': name, 'dtype': dtype, 'batch': batch, 'steps_per_dispatch': per_dispatch,
         'device': kind, 'img_per_s': {k: round(batch / v) for k, v in median.items()},
         'isx_tflops': round(flops / median['isx'] / 1e12, 2),
         'isx_mfu': None if rate is None else round(flops / median['isx'] / 1e12 / rate, 4)}
  best = max(v for k, v in row['img_per_s'].items() if k != 'isx')
  row['isx_over_best_torch'] = round(row['img_per_s']['isx'] / best, 3)
  return row


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--models', default='simplenet,googlenet')
  parser.add_argument('--dtypes', default='float32,bfloat16')
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--steps_per_dispatch', type=int, default=20)
  parser.add_argument('--steps', type=int, default=200, help='timed steps per repeat')
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--device', default='cuda', choices=('cuda', 'cpu'))
  parser.add_argument('--no_compile', action='store_true', help='skip torch.compile')
  parser.add_argument('--json', action='store_true')
  args = parser.parse_args()
  torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
  log = lambda msg: print(msg, flush=True)
  rows = [bench(name, dtype, args.batch, args.steps_per_dispatch, args.steps, args.repeats,
                args.device, not args.no_compile, log)
          for name in args.models.split(',') for dtype in args.dtypes.split(',')]
  for row in rows:
    print(json.dumps(row) if args.json else
          f'{row["device"]} {row["model"]:9s} {row["dtype"]:8s} batch {row["batch"]} '
          f'K={row["steps_per_dispatch"]}: ' +
          ', '.join(f'{k} {v} img/s' for k, v in row['img_per_s'].items()) +
          f'; isx/best torch {row["isx_over_best_torch"]}x, {row["isx_tflops"]} TFLOP/s, '
          f'MFU {row["isx_mfu"]}', flush=True)


if __name__ == '__main__':
  main()
