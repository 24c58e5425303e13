"""SphereFace (Liu et al. 2017, A-Softmax): normalised class weights, no bias, and a
multiplicative angular margin on the labelled class, ||x|| psi(theta) with
psi(theta) = (-1)^k cos(m theta) - 2k for theta in [k pi / m, (k + 1) pi / m].

A margin of 4 from the first step does not train, so the target logit is annealed as in the
authors' code: (lambda ||x|| cos(theta) + ||x|| psi(theta)) / (1 + lambda), with
lambda = max(lambda_min, lambda_base * (1 + lambda_gamma * step) ** -lambda_power): almost plain
softmax at first, the margin weighed in as lambda falls to lambda_min."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from isx.layers import l2_normalize


def chebyshev_cos(cos, m: int):
  """cos(m theta) as a polynomial of cos(theta) (T_m), so no arccos enters the gradient."""
  previous, current = jnp.ones_like(cos), cos
  if m == 0:
    return previous
  for _ in range(m - 1):
    previous, current = current, 2 * cos * current - previous
  return current


def psi(cos, m: int):
  """(-1)^k cos(m theta) - 2k: decreasing in theta on [0, pi], as cos(m theta) alone is not."""
  theta = jnp.arccos(jnp.clip(jax.lax.stop_gradient(cos), -1.0, 1.0))
  k = jnp.clip(jnp.floor(m * theta / math.pi), 0, m - 1)  # theta = pi is in the last piece
  return (1 - 2 * (k % 2)) * chebyshev_cos(cos, m) - 2 * k


def annealing(step, lambda_base, lambda_gamma, lambda_power, lambda_min):
  return jnp.maximum(lambda_min, lambda_base * (1 + lambda_gamma * step) ** -lambda_power)


class SphereFaceHead(nn.Module):
  """step: the train step, for the annealing; None with labels is the end of the annealing."""
  num_classes: int
  margin: int = 4
  lambda_base: float = 1000.0
  lambda_gamma: float = 0.12
  lambda_power: float = 1.0
  lambda_min: float = 5.0

  @nn.compact
  def __call__(self, x, labels=None, step=None):
    w = self.param('kernel', nn.initializers.xavier_uniform(), (x.shape[-1], self.num_classes))
    norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
    cos = l2_normalize(x) @ l2_normalize(w, axis=0)
    if labels is None:
      return norm * cos
    lam = (self.lambda_min if step is None else
           annealing(jnp.asarray(step, jnp.float32), self.lambda_base, self.lambda_gamma,
                     self.lambda_power, self.lambda_min))
    target = (lam * cos + psi(cos, self.margin)) / (1 + lam)
    onehot = jax.nn.one_hot(labels, self.num_classes, dtype=cos.dtype)
    return norm * jnp.where(onehot > 0, target, cos)


Head = SphereFaceHead


def check(margin, lambda_base, lambda_gamma, lambda_power, lambda_min):
  if not (isinstance(margin, int) and margin >= 1):
    raise ValueError(f'margin must be a whole number >= 1 (the angle\'s multiplier; 1 is no '
                     f'margin), got {margin!r}')
  for key, value in (('lambda_base', lambda_base), ('lambda_gamma', lambda_gamma),
                     ('lambda_power', lambda_power), ('lambda_min', lambda_min)):
    if not value >= 0:
      raise ValueError(f'{key} must be >= 0, got {value!r}')
