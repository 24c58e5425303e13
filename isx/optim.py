"""The learning-rate schedule and the optimiser (Adam with weight decay)."""
import jax
import optax

from isx import errors


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


def make_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
  """Adam with weight decay on conv/dense kernels (not biases, PReLU slopes or BN), its learning
  rate from `schedule` (learning_rate_schedule, built once: the train step logs it too).

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
  return tx
