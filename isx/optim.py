"""The learning-rate schedule and the optimiser (Adam with weight decay), and the optional
exponential moving average (EMA) of the weights that evaluation then uses."""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from isx import dataset_info, errors


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
    raise errors.ConfigError(
        f"unknown lr_schedule {config.lr_schedule!r}; use constant, cosine or step")
  if config.warmup_steps:
    warmup = optax.linear_schedule(0.0, lr, config.warmup_steps)
    schedule = optax.join_schedules([warmup, schedule], [config.warmup_steps])
  return schedule


def optimizer(config, info) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optimiser of config's training on a dataset (its info) and its learning-rate schedule,
  which the train step logs too."""
  tx = make_optimizer(
      config, schedule := learning_rate_schedule(config, dataset_info.total_steps(config, info)))
  return tx, schedule


def make_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
  """Adam with weight decay on conv/dense kernels (not biases, PReLU slopes or BN), its learning
  rate from `schedule` (learning_rate_schedule, built once: the train step logs it too;
  `optimizer` builds both).

  weight_decay_form 'l2' adds wd * w to the gradient before Adam: exactly L2 (wd/2 ||w||^2) in
  the loss, as in the paper's era. 'adamw' decays the weights after Adam (Loshchilov & Hutter).
  """
  if config.optimizer != 'adam':
    raise errors.ConfigError(f"unknown optimizer {config.optimizer!r}; isx trains with 'adam'")
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
  if config.weight_decay_form == 'l2':
    tx = optax.chain(optax.add_decayed_weights(config.weight_decay, decay_mask),
                     optax.scale_by_adam(), optax.scale_by_learning_rate(schedule))
  elif config.weight_decay_form == 'adamw':
    tx = optax.adamw(schedule, weight_decay=config.weight_decay, mask=decay_mask)
  else:
    raise errors.ConfigError(
        f"unknown weight_decay_form {config.weight_decay_form!r}; use 'l2' or 'adamw'")
  if config.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
  if config.ema_decay:
    tx = optax.chain(tx, ema_of_params(config.ema_decay))
  return tx


class EmaParamsState(NamedTuple):
  count: jax.Array
  ema_params: Any


def ema_of_params(decay: float) -> optax.GradientTransformation:
  """Keeps an EMA of the parameters after each update (the last link of the chain, so that the
  updates are final), in the optimiser state: with ema_decay 0 the state, and so every older
  checkpoint, is as before. The decay ramps up as min(decay, (1 + t) / (10 + t)), so that the
  random initialisation is forgotten within the first steps of a short run."""
  def init(params):  # a copy: the train step donates the state, and a buffer can go only once
    return EmaParamsState(jnp.zeros([], jnp.int32), jax.tree.map(jnp.copy, params))

  def update(updates, state, params):
    d = jnp.minimum(decay, (1.0 + state.count) / (10.0 + state.count))
    ema = jax.tree.map(lambda e, p, u: d * e + (1.0 - d) * (p + u),
                       state.ema_params, params, updates)
    return updates, EmaParamsState(state.count + 1, ema)
  return optax.GradientTransformation(init, update)


def eval_params(state):
  """The parameters to evaluate: the EMA's when the optimiser keeps one, else the trained."""
  found = optax.tree_utils.tree_get_all_with_path(state.opt_state, 'ema_params')
  return found[0][1] if found else state.params
