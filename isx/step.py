"""Train state, optimiser and the jit-compiled, data-parallel train and eval steps.

Nothing here imports TensorFlow: a GPU machine with only JAX can drive these steps with
in-memory batches (benchmarks/, scripts/). Batches arrive as uint8 NHWC images; scaling to
[0, 1], optional standardisation and augmentation happen inside the compiled step.
"""
import functools
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

DATA_AXIS = 'data'


class TrainState(train_state.TrainState):
  batch_stats: Any = flax.struct.field(default_factory=dict)
  loss_state: Any = flax.struct.field(default_factory=dict)  # {term: state}, e.g. the centers


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh over all devices (of all processes). Auto axis types: with the default
  Explicit types a plain data-parallel gradient step fails with a ShardingTypeError."""
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def data_sharding(mesh):
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))


def chunk_sharding(mesh):
  """K stacked batches [K, batch, ...]: the step axis whole on every device, batch split."""
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, DATA_AXIS))


def replicated(mesh):
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def to_global(batch, sharding):
  """This process's numpy batch -> global jax.Array sharded on the data (batch) axis."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


def batch_size_problem(batch_size: int, num_devices: int, what='batch_size') -> str | None:
  if batch_size % num_devices or batch_size % jax.process_count():
    return (f'{what}={batch_size} is not divisible by the {num_devices} devices '
            f'({jax.process_count()} processes); use a multiple of {num_devices}')
  return None


def check_batch_size(batch_size: int, mesh, what='batch_size'):
  problem = batch_size_problem(batch_size, mesh.devices.size, what)
  if problem:
    raise ValueError(problem)


def learning_rate_schedule(config, total_steps: int) -> optax.Schedule:
  lr = config.learning_rate
  if config.lr_schedule == 'constant':
    schedule = optax.constant_schedule(lr)
  elif config.lr_schedule == 'cosine':
    schedule = optax.cosine_decay_schedule(lr, max(total_steps - config.warmup_steps, 1))
  elif config.lr_schedule == 'step':  # x0.1 at 50% and 75% of all steps, warm-up included
    scales = {}
    for f in (0.5, 0.75):  # (two boundaries can fall on one step in very short runs)
      boundary = max(int(f * total_steps) - config.warmup_steps, 0)
      scales[boundary] = scales.get(boundary, 1.0) * 0.1
    schedule = optax.piecewise_constant_schedule(lr, scales)
  else:
    raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}; use constant, cosine or step")
  if config.warmup_steps:
    warmup = optax.linear_schedule(0.0, lr, config.warmup_steps)
    schedule = optax.join_schedules([warmup, schedule], [config.warmup_steps])
  return schedule


def make_optimizer(config, total_steps: int) -> optax.GradientTransformation:
  """Adam with weight decay on conv/dense kernels (not biases, PReLU slopes or BN).

  weight_decay_form 'l2' adds wd * w to the gradient before Adam: exactly L2 (wd/2 ||w||^2) in
  the loss, as in the paper's era. 'adamw' decays the weights after Adam (Loshchilov & Hutter).
  """
  if config.optimizer != 'adam':
    raise ValueError(f"unknown optimizer {config.optimizer!r}; isx trains with 'adam'")
  schedule = learning_rate_schedule(config, total_steps)
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
  if config.weight_decay_form == 'l2':
    tx = optax.chain(optax.add_decayed_weights(config.weight_decay, decay_mask),
                     optax.scale_by_adam(), optax.scale_by_learning_rate(schedule))
  elif config.weight_decay_form == 'adamw':
    tx = optax.adamw(schedule, weight_decay=config.weight_decay, mask=decay_mask)
  else:
    raise ValueError(f"unknown weight_decay_form {config.weight_decay_form!r}; use 'l2' or 'adamw'")
  if config.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
  return tx


def create_train_state(config, model, image_shape, objective, total_steps, rng) -> TrainState:
  variables = jax.jit(functools.partial(model.init, train=False))(
      rng, jnp.zeros((1, *image_shape), jnp.float32))
  return TrainState.create(apply_fn=model.apply, params=variables['params'],
                           batch_stats=variables.get('batch_stats', {}),
                           loss_state=objective.init_state(),
                           tx=make_optimizer(config, total_steps))


def preprocess(images, config, rng=None):
  """uint8 NHWC -> float32 in [0, 1]; per-image standardisation and augmentation if asked."""
  x = images.astype(jnp.float32) / 255.0
  if rng is not None and config.dataset.augment:
    x = augment(rng, x)
  if config.dataset.standardize:
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    std = jnp.maximum(jnp.std(x, axis=(1, 2, 3), keepdims=True), 1.0 / jnp.sqrt(x[0].size))
    x = (x - mean) / std
  return x


def augment(rng, x, pad=4):
  """Random crop from a zero-padded image + horizontal flip, per example, on device."""
  n, h, w, _ = x.shape
  crop_rng, flip_rng = jax.random.split(rng)
  offsets = jax.random.randint(crop_rng, (n, 2), 0, 2 * pad + 1)
  padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1]))
  x = jax.vmap(crop)(padded, offsets)
  flip = jax.random.bernoulli(flip_rng, 0.5, (n, 1, 1, 1))
  return jnp.where(flip, x[:, :, ::-1], x)


def _variables(state, params):
  return {'params': params, **({'batch_stats': state.batch_stats} if state.batch_stats else {})}


def train_step(state: TrainState, batch, rng, *, config, objective, schedule):
  """One optimiser step on a global batch. rng is folded with the step, so a resumed run
  draws the same dropout and augmentation as an uninterrupted one. objective (a
  losses.Objective) gives the loss and moves its own state (state.loss_state)."""
  rng = jax.random.fold_in(rng, state.step)
  aug_rng, dropout_rng = jax.random.split(rng)
  labels = batch['label']
  images = preprocess(batch['image'], config, aug_rng)
  mutable = ['batch_stats'] if state.batch_stats else False

  def loss_fn(params):
    result = state.apply_fn(_variables(state, params), images, labels=labels, train=True,
                            rngs={'dropout': dropout_rng}, mutable=mutable)
    outputs, new_vars = result if mutable else (result, {})
    loss, terms = objective(outputs, labels, state.loss_state)
    return loss, (outputs, new_vars, terms)

  (loss, (outputs, new_vars, terms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  new_state = state.apply_gradients(grads=grads)
  if state.batch_stats:
    new_state = new_state.replace(batch_stats=new_vars['batch_stats'])
  new_state = new_state.replace(loss_state=objective.update_state(state.loss_state, outputs, labels))
  # Checked with the loss before any save: a finite loss can still give non-finite weights.
  params_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p))
                                     for p in jax.tree.leaves(new_state.params)]))
  # asarray: a constant schedule returns a Python float, which the [K] stacking cannot index.
  metrics = {'loss': loss, 'learning_rate': jnp.asarray(schedule(state.step), jnp.float32),
             'params_finite': params_finite,
             'grad_norm': optax.tree.norm(grads),
             'accuracy': jnp.mean(jnp.argmax(outputs['logits'], -1) == labels)}
  metrics.update({f'loss_{k}': v for k, v in terms.items()})
  return new_state, metrics


def train_steps(state: TrainState, batches, rng, *, config, objective, schedule):
  """K train steps in one call, K the leading axis of batches: a lax.scan over train_step, so
  the host dispatches once per K steps. Metrics come back stacked, one row per step.

  XLA:CPU runs the convolutions of a loop body ~18x slower than the same step outside a loop
  (SimpleNet, batch 16: 1000 vs 56 ms; a 1-step scan too), so on CPU K = 1 is a plain step and
  larger K are unrolled; accelerators keep the rolled loop, which compiles once for any K."""
  step = functools.partial(train_step, rng=rng, config=config, objective=objective,
                           schedule=schedule)
  if jax.tree.leaves(batches)[0].shape[0] == 1:
    state, metrics = step(state, jax.tree.map(lambda x: x[0], batches))
    return state, jax.tree.map(lambda m: m[None], metrics)
  unroll = jax.default_backend() == 'cpu' and not _FORCE_ROLLED
  return jax.lax.scan(step, state, batches, unroll=unroll)


# Tests set this to run the rolled loop that accelerators run on CPU too (tests/test_train.py).
_FORCE_ROLLED = False


def eval_step(state: TrainState, batch, *, config):
  """Logits and embeddings of a (padded) eval batch; the mask travels with it."""
  outputs = state.apply_fn(_variables(state, state.params), preprocess(batch['image'], config),
                           train=False)
  return {'logits': outputs['logits'], 'embedding': outputs['embedding']}


def compile_steps(config, mesh, objective, total_steps):
  """jit-compiled train and eval steps: batches sharded on 'data', state replicated and donated.

  The train function takes K stacked batches [K, batch, ...] (see train_steps); it compiles
  once per K that it meets: steps_per_dispatch, and 1 for the steps before a log, eval or
  checkpoint boundary that a whole chunk would cross."""
  schedule = learning_rate_schedule(config, total_steps)
  data, repl = data_sharding(mesh), replicated(mesh)
  train = jax.jit(functools.partial(train_steps, config=config, objective=objective,
                                    schedule=schedule),
                  in_shardings=(repl, chunk_sharding(mesh), repl), out_shardings=(repl, repl),
                  donate_argnums=0)
  evaluate = jax.jit(functools.partial(eval_step, config=config),
                     in_shardings=(repl, data), out_shardings=data)
  return train, evaluate
