"""The cosine head that NormFace, CosFace and ArcFace share (isx/heads/normface.py, ...)."""
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
      # Clip away from +-1 so arccos has a finite gradient.
      theta = jnp.arccos(jnp.clip(cos, -1.0 + 1e-6, 1.0 - 1e-6))
      target = jnp.cos(theta + self.margin)
    else:
      raise ValueError(f"unknown margin_type {self.margin_type!r}; use 'none', 'cosface' or 'arcface'")
    return self.scale * jnp.where(onehot > 0, target, cos)
