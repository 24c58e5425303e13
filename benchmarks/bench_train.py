"""Train-step images/s of the isx jit step against a PyTorch twin, and the step's FLOP rate.

The twin is the same network (same layers, widths, padding, pooling windows, flatten order,
IS layer, PReLU, Xavier init), the same loss and the same optimiser, with weight decay on the
conv/dense kernels only (isx's decay mask), in the config's form unless --weight_decay_form says
otherwise: 'adamw' (the isx default, lr 1e-2, wd 0.05) = torch.optim.AdamW, or 'l2' (wd * w
added to the gradient before Adam) = torch.optim.Adam(weight_decay=...). Both start from the *same*
weights (the isx init copied into torch), and before timing the script checks the twin: SimpleNet
train losses of the first steps and GoogleNet eval logits must agree to float32 rounding.

Both sides get a uint8 batch and scale it by 1/255 inside the timed step, and both compute the
isx step's metrics (loss, accuracy, gradient norm). torch gets NCHW (its native layout), isx NHWC.
The frameworks alternate in one process: after warm-up, each repeat times `steps` isx steps, then
`steps` eager torch steps, `steps` eager steps in bf16 autocast with channels_last tensors (where
oneDNN has bf16 kernels: AVX512_BF16 or AMX; its float32 weights start from the twin's after
warm-up), then `steps` torch.compile steps; the median per-step time is reported, and
ratio_vs_fastest_torch is isx's images/s over the fastest of the three PyTorch settings.

FLOPs come from XLA's cost analysis of the compiled step and, as a cross-check, are counted by
hand from the layer shapes (see hand_flops). matmul_fraction = the step's FLOP rate (cost
analysis FLOPs / median step time) over the rate of a jit float32 2048^3 jnp.dot timed in the
same repeats.

torch runs with torch.set_num_threads(os.cpu_count()); XLA sizes its pool to the cores itself.
On a shared machine torch's OpenMP threads slow down far more than XLA's when other processes
compete for the cores, so compare runs made at the same load (the JSON records it).

  python benchmarks/bench_train.py [--model simplenet|googlenet|all] [--repeats R] [--steps S]
      [--cpu_conv_path auto|ynnpack|xla] [--cpu_devices N] [--json]

isx runs as shipped: before JAX starts, the XLA:CPU convolution path and device split are chosen
for the model on this host exactly as isx.main chooses them (isx.cpu_setup: timed once, cached),
unless --cpu_conv_path / --cpu_devices (or XLA_FLAGS) force them; the JSON records the choice.
With --model all each model runs in a process of its own, since each may get another setup.

Needs torch (benchmarks/requirements.txt), never a dependency of isx.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # configs/

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F
from torch import nn

from configs import cifar100_googlenet, fashion_mnist_simplenet
from isx import cpu_setup, mesh as mesh_lib
from isx.dataset_info import DatasetInfo
from isx.experiment import Experiment
from isx.models.googlenet import INCEPTION

# model -> (config module, image shape, classes, default steps per repeat, default repeats)
CASES = {'simplenet': (fashion_mnist_simplenet, (28, 28, 1), 10, 20, 5),
         'googlenet': (cifar100_googlenet, (32, 32, 3), 100, 2, 3)}
MATMUL_N = 2048


# ----------------------------------------------------------------------------- torch twins

def inward_scale(x, xi, eps=1e-12):  # isx.layers.inward_scale: eps inside the root
  return x / (xi * torch.sqrt(torch.sum(x * x, dim=-1, keepdim=True) + eps))


class Classifier(nn.Module):
  """isx.models.common.EmbeddingClassifier with the softmax head: IS -> FC -> PReLU -> FC."""

  def __init__(self, features, embedding_dim, num_classes, xi):
    super().__init__()
    self.xi = xi
    self.fc_embedding = nn.Linear(features, embedding_dim)
    self.prelu = nn.PReLU(embedding_dim, init=0.25)  # per-feature slopes, as isx.layers.PReLU
    self.fc = nn.Linear(embedding_dim, num_classes)

  def forward(self, x):
    return self.fc(self.prelu(self.fc_embedding(inward_scale(x, self.xi))))


class SimpleNet(nn.Module):
  """isx SimpleNet: 3 x (2 x conv3x3 SAME [+ ReLU] + maxpool2 VALID), IS head."""

  def __init__(self, num_classes, cfg):
    super().__init__()
    convs, cin = {}, 1
    for block, width in enumerate((32, 64, 128)):
      for i in range(2):
        convs[f'conv{block + 1}_{i + 1}'] = nn.Conv2d(cin, width, 3, padding=1)
        cin = width
    self.convs = nn.ModuleDict(convs)
    self.classifier = Classifier(3 * 3 * 128, cfg.embedding_dim, num_classes, cfg.xi)
    self.act = F.relu if cfg.conv_activation == 'relu' else (lambda v: v)

  def forward(self, images):
    x = images.float() / 255.0
    names = list(self.convs)
    for block in range(3):
      x = self.act(self.convs[names[2 * block + 1]](self.act(self.convs[names[2 * block]](x))))
      x = F.max_pool2d(x, 2)  # floor mode = VALID: 28 -> 14 -> 7 -> 3
    # Flatten in NHWC order, as flax does, so the copied fc_embedding kernel lines up.
    return self.classifier(x.permute(0, 2, 3, 1).flatten(1))


class ConvBN(nn.Module):
  def __init__(self, cin, cout, k):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)  # SAME for odd k, stride 1
    self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)  # flax momentum 0.9 = torch 0.1

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
  # Keys are the flax auto-names: ConvBN_1 (the 3x3) is constructed before ConvBN_2 (its 1x1
  # reduce) because isx writes conv(c3, 3)(conv(r3, 1)(x)).
  def __init__(self, cin, widths):
    super().__init__()
    c1, r3, c3, r5, c5, pp = widths
    self.m = nn.ModuleDict({'ConvBN_0': ConvBN(cin, c1, 1), 'ConvBN_1': ConvBN(r3, c3, 3),
                            'ConvBN_2': ConvBN(cin, r3, 1), 'ConvBN_3': ConvBN(r5, c5, 5),
                            'ConvBN_4': ConvBN(cin, r5, 1), 'ConvBN_5': ConvBN(cin, pp, 1)})
    self.out = c1 + c3 + c5 + pp

  def forward(self, x):
    m = self.m
    return torch.cat([m['ConvBN_0'](x), m['ConvBN_1'](m['ConvBN_2'](x)),
                      m['ConvBN_3'](m['ConvBN_4'](x)),
                      m['ConvBN_5'](F.max_pool2d(x, 3, 1, padding=1))], dim=1)


def pool_same(x):
  # flax max_pool 3x3 stride 2 SAME pads 0 before and 1 after on even sizes (32 -> 16);
  # torch's padding=1 would pad both sides and shift every window.
  return F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float('-inf')), 3, 2)


class GoogleNet(nn.Module):
  """isx GoogleNet, cifar stem, BatchNorm, dropout 0.4, IS head; no auxiliary classifiers."""

  def __init__(self, num_classes, cfg):
    super().__init__()
    self.stem = ConvBN(3, 192, 3)
    blocks, cin = {}, 192
    for name in sorted(INCEPTION):
      blocks[f'inception{name}'] = Inception(cin, INCEPTION[name])
      cin = blocks[f'inception{name}'].out
    self.blocks = nn.ModuleDict(blocks)
    self.dropout = nn.Dropout(cfg.dropout_rate)
    self.classifier = Classifier(cin, cfg.embedding_dim, num_classes, cfg.xi)

  def forward(self, images):
    x = self.stem(images.float() / 255.0)
    for name, block in self.blocks.items():
      x = block(x)
      if name in ('inception3b', 'inception4e'):
        x = pool_same(x)
    return self.classifier(self.dropout(x.mean(dim=(2, 3))))


def copy_isx_weights(tmodel, variables):
  """Loads the isx (flax) init into the torch twin, so both start from the same point."""
  params, stats = variables['params'], variables.get('batch_stats', {})
  t = lambda a: torch.from_numpy(np.array(a))
  with torch.no_grad():
    def conv(mod, p, s=None):
      tgt = mod.conv if isinstance(mod, ConvBN) else mod
      pk = p['Conv_0'] if s is not None else p
      tgt.weight.copy_(t(pk['kernel']).permute(3, 2, 0, 1))  # HWIO -> OIHW
      if 'bias' in pk:
        tgt.bias.copy_(t(pk['bias']))
      if s is not None:
        mod.bn.weight.copy_(t(p['BatchNorm_0']['scale']))
        mod.bn.bias.copy_(t(p['BatchNorm_0']['bias']))
        mod.bn.running_mean.copy_(t(s['BatchNorm_0']['mean']))
        mod.bn.running_var.copy_(t(s['BatchNorm_0']['var']))

    if isinstance(tmodel, SimpleNet):
      for name, mod in tmodel.convs.items():
        conv(mod, params[name])
    else:
      conv(tmodel.stem, params['ConvBN_0'], stats['ConvBN_0'])
      for bname, block in tmodel.blocks.items():
        for name, mod in block.m.items():
          conv(mod, params[bname][name], stats[bname][name])
    c, tc = params['classifier'], tmodel.classifier
    tc.fc_embedding.weight.copy_(t(c['fc_embedding']['kernel']).T)
    tc.fc_embedding.bias.copy_(t(c['fc_embedding']['bias']))
    tc.prelu.weight.copy_(t(c['prelu']['slope']))
    tc.fc.weight.copy_(t(c['SoftmaxHead_0']['fc']['kernel']).T)
    tc.fc.bias.copy_(t(c['SoftmaxHead_0']['fc']['bias']))
  n_isx = sum(x.size for x in jax.tree.leaves(params))
  n_torch = sum(p.numel() for p in tmodel.parameters())
  assert n_isx == n_torch, (n_isx, n_torch)


def make_torch_step(model, config, bf16=False):
  """isx make_optimizer in torch: decay on kernels only (its decay_mask is ndim > 1); 'l2' is
  Adam(weight_decay) (wd * w added to the gradient), 'adamw' is AdamW (decoupled decay).
  bf16: the forward under CPU bf16 autocast (oneDNN's bf16 kernels; float32 weights and
  optimiser), the fastest PyTorch setting on a CPU with AVX512_BF16 or AMX."""
  decay = [p for p in model.parameters() if p.ndim > 1]
  no_decay = [p for p in model.parameters() if p.ndim <= 1]
  adam = {'l2': torch.optim.Adam, 'adamw': torch.optim.AdamW}[config.weight_decay_form]
  opt = adam([{'params': decay, 'weight_decay': config.weight_decay},
              {'params': no_decay, 'weight_decay': 0.0}],
             lr=config.learning_rate, betas=(0.9, 0.999), eps=1e-8)

  def loss_fn(images, labels):
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
      logits = model(images)
    return F.cross_entropy(logits.float(), labels), logits

  def step(images, labels, loss_fn=loss_fn):
    opt.zero_grad(set_to_none=True)
    loss, logits = loss_fn(images, labels)
    loss.backward()
    grad_norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()]))
    opt.step()
    accuracy = (logits.argmax(-1) == labels).float().mean()
    return loss.detach(), accuracy, grad_norm

  return step, loss_fn, opt


def make_torch_compiled_step(model, config):
  """torch.compile of the model+loss (AOTAutograd compiles the backward too) and of opt.step."""
  step, loss_fn, opt = make_torch_step(model, config)
  compiled_loss = torch.compile(loss_fn)
  opt.step = torch.compile(opt.step)
  return lambda images, labels: step(images, labels, loss_fn=compiled_loss)


def bf16_supported() -> bool:
  """Whether oneDNN has bf16 kernels on this CPU (AVX512_BF16, AMX): else autocast emulates."""
  return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def make_torch_bf16_step(torch_model, config, classes, name):
  """The twin in bf16 autocast with channels_last weights (oneDNN's preferred layout; give it
  channels_last images too), from the twin's current weights."""
  model = (SimpleNet if name == 'simplenet' else GoogleNet)(classes, config.model)
  model.load_state_dict(torch_model.state_dict())
  model = model.to(memory_format=torch.channels_last)
  return make_torch_step(model, config, bf16=True)[0]


# ----------------------------------------------------------------------------- FLOPs by hand

def conv_layers(name):
  """(H, W, k, cin, cout, input_grad_needed) for every conv (all stride 1, SAME); dense as 1x1."""
  if name == 'simplenet':
    layers, cin, hw = [], 1, 28
    for width in (32, 64, 128):
      layers += [(hw, hw, 3, cin, width, cin != 1), (hw, hw, 3, width, width, True)]
      cin, hw = width, hw // 2
    return layers + [(1, 1, 1, 1152, 256, True), (1, 1, 1, 256, 10, True)]
  layers, hw, cin = [(32, 32, 3, 3, 192, False)], 32, 192
  for name in sorted(INCEPTION):
    c1, r3, c3, r5, c5, pp = INCEPTION[name]
    layers += [(hw, hw, 1, cin, c1, True), (hw, hw, 1, cin, r3, True), (hw, hw, 3, r3, c3, True),
               (hw, hw, 1, cin, r5, True), (hw, hw, 5, r5, c5, True), (hw, hw, 1, cin, pp, True)]
    cin = c1 + c3 + c5 + pp
    if name in ('3b', '4e'):
      hw //= 2
  return layers + [(1, 1, 1, 1024, 1024, True), (1, 1, 1, 1024, 100, True)]


def hand_flops(name, batch):
  """Training FLOPs (2 per multiply-add) of convs and dense layers: forward + weight gradient
  + input gradient (not for the first layer). 'dense' counts every tap of the padded window;
  'valid' only taps that land inside the image (what XLA's cost analysis counts)."""
  dense = valid = 0
  for h, w, k, cin, cout, input_grad in conv_layers(name):
    taps = lambda n: n * k - 2 * sum(range(1, k // 2 + 1))  # in-image taps summed over a row
    passes = 3 if input_grad else 2
    dense += passes * 2 * batch * h * w * k * k * cin * cout
    valid += passes * 2 * batch * taps(h) * taps(w) * cin * cout
  return dense, valid


# ----------------------------------------------------------------------------- benchmark

def cost_flops(compiled, num_devices):
  """XLA's count for the whole step: the cost analysis of an SPMD executable is per device."""
  ca = compiled.cost_analysis()
  ca = ca[0] if isinstance(ca, (list, tuple)) else ca
  return float(ca['flops']) * num_devices


def time_steps(fn, steps, sync):
  """Seconds per call, waiting for each: as train.py does on several CPU devices (a run-ahead
  deadlocks XLA:CPU's all-reduce there), and as PyTorch on a CPU does anyway."""
  t = time.perf_counter()
  for _ in range(steps):
    sync(fn())
  return (time.perf_counter() - t) / steps


def bench_config(name, batch, weight_decay_form=None):
  config = CASES[name][0].get_config()
  config.batch_size = batch
  config.weight_decay_form = weight_decay_form or config.weight_decay_form
  # The PyTorch twin runs a constant lr; a schedule does not change a step's cost.
  config.warmup_steps, config.lr_schedule = 0, 'constant'
  assert config.optimizer == 'adam' and not config.grad_clip_norm
  return config


def bench_info(config, shape, classes) -> DatasetInfo:
  """A dataset's info with the benchmark's images; num_train only sizes the lr schedule."""
  return DatasetInfo('benchmark', classes, tuple(shape), num_train=10_000 * config.batch_size,
                     num_eval=config.eval_batch_size)


def bench_model(name, batch, steps, repeats, with_compile, log, weight_decay_form=None):
  _, shape, classes, default_steps, default_repeats = CASES[name]
  steps, repeats = steps or default_steps, repeats or default_repeats
  config = bench_config(name, batch, weight_decay_form)
  # The Experiment isx.main trains with; an info instead of the dataset (no TFDS on a GPU image).
  exp = Experiment.create(config, info=bench_info(config, shape, classes))
  mesh, state, train_fn, eval_fn = exp.mesh, exp.state, exp.train_fn, exp.eval_fn
  variables = jax.device_get({'params': state.params, 'batch_stats': state.batch_stats})

  rng = np.random.default_rng(0)
  np_batch = {'image': rng.integers(0, 256, (batch, *shape), dtype=np.uint8),
              'label': rng.integers(0, classes, (batch,)).astype(np.int64)}
  data = mesh_lib.data_sharding(mesh)
  jbatch = mesh_lib.to_global(np_batch, data)
  # One step per dispatch, as the PyTorch twin: the train function takes stacked [K, ...] batches.
  jchunk = mesh_lib.to_global(jax.tree.map(lambda x: x[None], np_batch),
                              mesh_lib.chunk_sharding(mesh))
  key = jax.random.key(1)
  compiled = train_fn.lower(state, jchunk, key).compile()
  flops = cost_flops(compiled, mesh.devices.size)
  dense_flops, valid_flops = hand_flops(name, batch)

  torch_model = (SimpleNet if name == 'simplenet' else GoogleNet)(classes, config.model)
  copy_isx_weights(torch_model, variables)
  timg = torch.from_numpy(np_batch['image']).permute(0, 3, 1, 2).contiguous()  # NCHW uint8
  tlab = torch.from_numpy(np_batch['label'])

  # Twin check: eval logits from identical weights (BN uses its initial running stats).
  torch_model.eval()
  with torch.no_grad():
    t_logits = torch_model(timg).numpy()
  j_logits = np.asarray(eval_fn(state, jbatch)['logits'])
  logits_diff = float(np.max(np.abs(t_logits - j_logits)) / np.max(np.abs(j_logits)))
  torch_model.train()
  torch_step, _, _ = make_torch_step(torch_model, config)

  # Warm-up (compiles; SimpleNet also compares the train-loss trajectories, no dropout there).
  isx_losses, torch_losses = [], []
  for _ in range(2):
    state, metrics = train_fn(state, jchunk, key)
    isx_losses.append(float(metrics['loss'][0]))
    torch_losses.append(float(torch_step(timg, tlab)[0]))
  log(f'{name}: isx losses {isx_losses}, torch losses {torch_losses}, '
      f'eval-logit rel diff {logits_diff:.1e}')

  bf16_step = make_torch_bf16_step(torch_model, config, classes, name) if bf16_supported() else None
  timg_cl = timg.contiguous(memory_format=torch.channels_last)
  if bf16_step is not None:
    bf16_losses = [float(bf16_step(timg_cl, tlab)[0]) for _ in range(2)]
    log(f'{name}: torch bf16 autocast losses {bf16_losses}')

  compiled_step, compile_error = None, None
  if with_compile:
    try:
      compiled_model = (SimpleNet if name == 'simplenet' else GoogleNet)(classes, config.model)
      compiled_model.load_state_dict(torch_model.state_dict())
      compiled_step = make_torch_compiled_step(compiled_model, config)
      t = time.perf_counter()
      for _ in range(2):
        compiled_step(timg, tlab)
      log(f'{name}: torch.compile warm-up {time.perf_counter() - t:.0f} s')
    except Exception as e:  # report why rather than fail the whole benchmark
      compiled_step, compile_error = None, f'{type(e).__name__}: {str(e).splitlines()[0][:300]}'
      log(f'{name}: torch.compile failed: {compile_error}')

  a = jax.random.normal(jax.random.key(2), (MATMUL_N, MATMUL_N), jnp.float32)
  matmul = jax.jit(jnp.dot)
  matmul(a, a).block_until_ready()
  ta = torch.randn(MATMUL_N, MATMUL_N)

  times = {'isx': [], 'torch': [], 'torch_bf16': [], 'torch_compile': [], 'matmul': [],
           'torch_matmul': []}
  for r in range(repeats):
    def isx_once():
      nonlocal state
      state, m = train_fn(state, jchunk, key)
      return m
    times['isx'].append(time_steps(isx_once, steps, jax.block_until_ready))
    times['torch'].append(time_steps(lambda: torch_step(timg, tlab), steps, lambda o: None))
    if bf16_step is not None:
      times['torch_bf16'].append(time_steps(lambda: bf16_step(timg_cl, tlab), steps, lambda o: None))
    if compiled_step is not None:
      times['torch_compile'].append(
          time_steps(lambda: compiled_step(timg, tlab), steps, lambda o: None))
    times['matmul'].append(time_steps(lambda: matmul(a, a), 3, jax.block_until_ready))
    times['torch_matmul'].append(time_steps(lambda: ta @ ta, 3, lambda o: None))
    log(f'{name}: repeat {r + 1}/{repeats}: ' +
        ', '.join(f'{k} {v[-1] * 1e3:.0f} ms' for k, v in times.items() if v))

  med = {k: float(np.median(v)) if v else None for k, v in times.items()}
  img_s = lambda k: batch / med[k] if med[k] else None
  fastest_torch = min((k for k in ('torch', 'torch_bf16', 'torch_compile') if med[k]), key=med.get)
  matmul_gflops = 2 * MATMUL_N ** 3 / med['matmul'] / 1e9
  step_gflops = flops / med['isx'] / 1e9
  return {
      'model': name, 'image_shape': list(shape), 'classes': classes, 'batch': batch,
      'jax_devices': mesh.devices.size,
      'optimizer': f'adam lr {config.learning_rate}, weight_decay {config.weight_decay} '
                   f'({config.weight_decay_form}, kernels only)',
      'steps_per_repeat': steps, 'repeats': repeats,
      'isx_img_per_s': img_s('isx'), 'torch_img_per_s': img_s('torch'),
      'ratio': img_s('isx') / img_s('torch'),
      'torch_compile_img_per_s': img_s('torch_compile'),
      'torch_compile_error': compile_error if with_compile else 'skipped (--no_compile)',
      'ratio_vs_compile': img_s('isx') / img_s('torch_compile') if med['torch_compile'] else None,
      'torch_bf16_img_per_s': img_s('torch_bf16'),
      'torch_bf16': ('bf16 autocast, channels_last' if bf16_step is not None
                     else 'skipped: no bf16 kernels in oneDNN on this CPU'),
      'ratio_vs_bf16': img_s('isx') / img_s('torch_bf16') if med['torch_bf16'] else None,
      'fastest_torch': fastest_torch, 'ratio_vs_fastest_torch': img_s('isx') / img_s(fastest_torch),
      'step_ms': {k: v * 1e3 for k, v in med.items() if v and 'matmul' not in k},
      'flops_per_step_cost_analysis': flops, 'flops_per_step_hand_dense': dense_flops,
      'flops_per_step_hand_valid_taps': valid_flops,
      'isx_gflops_per_s': step_gflops, 'matmul_gflops_per_s': matmul_gflops,
      'torch_matmul_gflops_per_s': 2 * MATMUL_N ** 3 / med['torch_matmul'] / 1e9,
      'matmul_fraction': step_gflops / matmul_gflops,
      'twin_check': {'isx_losses': isx_losses, 'torch_losses': torch_losses,
                     'eval_logits_rel_max_diff': logits_diff},
  }


def setup_cpu(args, log):
  """As isx.main does before JAX starts: the convolution path and device split for this
  model on this host (timed once, cached), unless forced by the flags or XLA_FLAGS."""
  _, shape, classes, _, _ = CASES[args.model]
  config = bench_config(args.model, args.batch, args.weight_decay_form)
  return cpu_setup.set_up(config, shape, classes, args.cpu_conv_path, args.cpu_devices, log=log)


def run_each_model(args, log) -> dict:
  """--model all: each model in a process of its own, since each may get another setup."""
  argv = [f'--batch={args.batch}', f'--steps={args.steps}', f'--repeats={args.repeats}',
          *(['--no_compile'] if args.no_compile else []),
          *(f'--{k}={getattr(args, k)}' for k in ('weight_decay_form', 'cpu_conv_path',
                                                  'cpu_devices') if getattr(args, k))]
  results = {}
  for name in CASES:
    p = subprocess.run([sys.executable, __file__, f'--model={name}', '--json', *argv],
                       stdout=subprocess.PIPE, text=True, check=True)
    results[name] = json.loads(p.stdout)['models'][name]
  log(f'load average at the end: {os.getloadavg()}')
  return results


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--model', choices=('simplenet', 'googlenet', 'all'), default='all')
  p.add_argument('--batch', type=int, default=128)
  p.add_argument('--steps', type=int, default=0, help='steps per repeat (0: per-model default)')
  p.add_argument('--repeats', type=int, default=0, help='0: per-model default')
  p.add_argument('--no_compile', action='store_true', help='skip torch.compile')
  p.add_argument('--weight_decay_form', choices=('l2', 'adamw'), default=None,
                 help="default: the model config's (isx default 'adamw')")
  p.add_argument('--cpu_conv_path', choices=('auto', *cpu_setup.PATHS), default=None,
                 help='XLA:CPU convolution path, as isx.main\'s flag (default: '
                      '$ISX_CPU_CONV_PATH, else auto: what isx.main would choose)')
  p.add_argument('--cpu_devices', type=int, default=None,
                 help='split the CPU into N devices (default: chosen with the path)')
  p.add_argument('--json', action='store_true', help='print one JSON object instead of a table')
  args = p.parse_args()

  threads = os.cpu_count()
  torch.set_num_threads(threads)  # XLA's CPU client also sizes its pool to the core count
  log = lambda msg: print(msg, file=sys.stderr, flush=True)
  if args.model == 'all':
    results = run_each_model(args, log)
  else:
    setup = setup_cpu(args, log)
    result = bench_model(args.model, args.batch, args.steps, args.repeats, not args.no_compile,
                         log, args.weight_decay_form)
    result.update(cpu_setup=setup.record(), xla_flags=os.environ.get('XLA_FLAGS', ''),
                  load_average_at_end=os.getloadavg())
    results = {args.model: result}
  names = list(results)
  first = results[names[0]]
  out = {k: first[k] for k in ('isx_img_per_s', 'torch_img_per_s', 'ratio',
                               'torch_compile_img_per_s', 'torch_compile_error', 'torch_bf16_img_per_s',
                               'ratio_vs_fastest_torch', 'matmul_fraction')}
  out.update(models=results, primary_model=names[0], cpu_count=threads,
             torch_threads=torch.get_num_threads(), torch_version=torch.__version__,
             jax_version=jax.__version__, host=cpu_setup.host_key(),
             jax_default_matmul_precision=jax.config.jax_default_matmul_precision,
             load_average_at_end=os.getloadavg())
  if args.json:
    print(json.dumps(out, indent=1))
    return
  print(f'cpus {threads}, torch threads {torch.get_num_threads()}, load {os.getloadavg()}')
  for r in results.values():
    setup = r['cpu_setup']
    print(f"{r['model']:9s} XLA:CPU {setup['path'] or 'as XLA_FLAGS'} on {r['jax_devices']} "
          f"device(s) ({setup['reason']})")
    print(f"{r['model']:9s} batch {r['batch']}: isx {r['isx_img_per_s']:.0f} img/s, torch eager "
          f"{r['torch_img_per_s']:.0f} (ratio {r['ratio']:.2f}), torch.compile "
          f"{r['torch_compile_img_per_s'] or float('nan'):.0f}, torch bf16 autocast "
          f"{r['torch_bf16_img_per_s'] or float('nan'):.0f}; isx / fastest torch "
          f"({r['fastest_torch']}) {r['ratio_vs_fastest_torch']:.2f}; isx {r['isx_gflops_per_s']:.1f} "
          f"GFLOP/s = {r['matmul_fraction']:.2f} x matmul {r['matmul_gflops_per_s']:.1f} GFLOP/s")


if __name__ == '__main__':
  main()
