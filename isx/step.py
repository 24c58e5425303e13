"""Train state and the jit-compiled, data-parallel train and eval steps.

Nothing here imports TensorFlow: a GPU machine with only JAX can drive these steps with
in-memory batches (benchmarks/, scripts/). Batches arrive as uint8 NHWC images; scaling to
[0, 1], optional standardisation and augmentation (isx/preprocess.py) happen inside the
compiled step.
"""
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from isx import mesh as mesh_lib, optim
from isx.preprocess import preprocess


class TrainState(train_state.TrainState):
  batch_stats: Any = flax.struct.field(default_factory=dict)
  loss_state: Any = flax.struct.field(default_factory=dict)  # {term: state}, e.g. the centers


def create_train_state(model, image_shape, objective, tx, rng) -> TrainState:
  """The model's initial variables, the objective's state and tx's (optim.optimizer) state.
  tx None (an evaluation): no optimiser and no optimiser state, the weights alone."""
  variables = jax.jit(functools.partial(model.init, train=False))(
      rng, jnp.zeros((1, *image_shape), jnp.float32))
  arrays = dict(apply_fn=model.apply, params=variables['params'],
                batch_stats=variables.get('batch_stats', {}), loss_state=objective.init_state())
  if tx is None:
    return TrainState(step=0, tx=None, opt_state=None, **arrays)
  return TrainState.create(tx=tx, **arrays)


def _variables(state, params):
  return {'params': params, **({'batch_stats': state.batch_stats} if state.batch_stats else {})}


def train_step(state: TrainState, batch, rng, *, config, objective, schedule):
  """One optimiser step on a global batch. rng is folded with the step, so a resumed run
  draws the same dropout and augmentation as an uninterrupted one. objective (a
  losses.Objective) gives the loss and moves its own state (state.loss_state)."""
  rng = jax.random.fold_in(rng, state.step)
  aug_rng, dropout_rng = jax.random.split(rng)
  labels = batch['label']
  images = preprocess(batch['image'], config.dataset, aug_rng)
  mutable = ['batch_stats'] if state.batch_stats else False

  def loss_fn(params):
    result = state.apply_fn(_variables(state, params), images, labels=labels, train=True,
                            step=state.step, rngs={'dropout': dropout_rng}, mutable=mutable)
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
             # on the scores without the margin: a margin head's logits understate it
             'accuracy': jnp.mean(jnp.argmax(outputs.get('scores', outputs['logits']), -1)
                                  == labels)}
  metrics.update({f'loss_{k}': v for k, v in terms.items()})
  return new_state, metrics


def train_steps(state: TrainState, batches, rng, *, config, objective, schedule, unroll):
  """K train steps in one call, K the leading axis of batches: a lax.scan over train_step, so
  the host dispatches once per K steps. Metrics come back stacked, one row per step.

  XLA:CPU runs the convolutions of a loop body far slower than the same step outside a loop,
  so on CPU K = 1 is a plain step and larger K are unrolled;
  accelerators keep the rolled loop, which compiles once for any K (unroll False)."""
  step = functools.partial(train_step, rng=rng, config=config, objective=objective,
                           schedule=schedule)
  if jax.tree.leaves(batches)[0].shape[0] == 1:
    state, metrics = step(state, jax.tree.map(lambda x: x[0], batches))
    return state, jax.tree.map(lambda m: m[None], metrics)
  return jax.lax.scan(step, state, batches, unroll=unroll)


def embed_step(state: TrainState, batch, *, config):
  """Logits, embeddings and backbone features of a (padded) eval batch; the mask travels with
  it. With
  dataset.test_time_flip, the mean of the image's and its horizontal mirror's. With ema_decay,
  of the weights' EMA."""
  images = preprocess(batch['image'], config.dataset)
  params = optim.eval_params(state)
  apply = lambda x: state.apply_fn(_variables(state, params), x, train=False)
  outputs = apply(images)
  keys = ('logits', 'embedding', 'features')
  if config.dataset.test_time_flip:
    mirrored = apply(images[:, :, ::-1])
    return {k: (outputs[k] + mirrored[k]) / 2 for k in keys}
  return {k: outputs[k] for k in keys}


def compile_train_step(config, mesh, objective, schedule, unroll=None):
  """The jit-compiled train function: batches sharded on 'data', state replicated and donated.

  It takes K stacked batches [K, batch, ...] (see train_steps) and compiles once per K that it
  meets: steps_per_dispatch, and 1 for the steps before a log, eval or checkpoint boundary that
  a whole chunk would cross. unroll: whether K > 1 steps are unrolled; None, the default,
  unrolls on CPU only."""
  repl = mesh_lib.replicated(mesh)
  unroll = jax.default_backend() == 'cpu' if unroll is None else unroll
  return jax.jit(functools.partial(train_steps, config=config, objective=objective,
                                   schedule=schedule, unroll=unroll),
                 in_shardings=(repl, mesh_lib.chunk_sharding(mesh), repl),
                 out_shardings=(repl, repl), donate_argnums=0)


def compile_embed_step(config, mesh):
  """The jit-compiled embed_step: a batch sharded on 'data', the state replicated."""
  data, repl = mesh_lib.data_sharding(mesh), mesh_lib.replicated(mesh)
  return jax.jit(functools.partial(embed_step, config=config), in_shardings=(repl, data),
                 out_shardings=data)
