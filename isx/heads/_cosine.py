"""The cosine head that NormFace, CosFace and ArcFace share (isx/heads/normface.py, ...): one
class for the three, so that their parameters keep the path (CosineHead_0) that checkpoints hold."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from isx.layers import l2_normalize


class CosineHead(nn.Module):
  """s * cos(theta) with normalised features and class weights, no bias.

  margin_type 'none' is NormFace (Wang et al. 2017); 'cosface' subtracts m from the target
  cosine (Wang et al. 2018); 'arcface' adds m to the target angle (Deng et al. 2019). The margin
  applies only when labels are given (training); at eval the head returns the scaled cosines.
  """
  num_classes: int
  scale: float = 16.0
  margin: float = 0.0
  margin_type: str = 'none'

  @nn.compact
  def __call__(self, x, labels=None):
    w = self.param('kernel', nn.initializers.xavier_uniform(), (x.shape[-1], self.num_classes))
    cos = l2_normalize(x) @ l2_normalize(w, axis=0)
    if labels is None or self.margin_type == 'none':
      return self.scale * cos
    onehot = jax.nn.one_hot(labels, self.num_classes, dtype=cos.dtype)
    if self.margin_type == 'cosface':
      target = cos - self.margin
    elif self.margin_type == 'arcface':
      target = arcface_target(cos, self.margin)
    else:
      raise ValueError(f"unknown margin_type {self.margin_type!r}; use 'none', 'cosface' or 'arcface'")
    return self.scale * jnp.where(onehot > 0, target, cos)


def arcface_target(cos, margin: float):
  """cos(theta + m) while theta + m <= pi; past that, cos(theta) - m sin(m), as ArcFace's
  reference code does.

  cos(theta + m) alone rises again for theta > pi - m, so a sample can lower its loss by moving
  away from its class: pointing every feature opposite its class weight gives a target logit of
  s cos(pi + m) against s cos(pi) for the others, a loss of log(1 + 9 exp(-s (1 - cos m))) = 0.21
  for s 30, m 0.5 and 10 classes. That is where the old head sat, at 10% test accuracy
  (RESULTS.md, History: "the comparison heads"). The fallback keeps the target logit decreasing in theta.
  """
  # cos(theta + m) = cos cos m - sin sin m: no arccos, whose gradient is infinite at +-1.
  sin = jnp.sqrt(jnp.clip(1.0 - cos * cos, 1e-7, 1.0))
  shifted = cos * math.cos(margin) - sin * math.sin(margin)
  return jnp.where(cos > math.cos(math.pi - margin), shifted, cos - margin * math.sin(margin))
