"""What NormFace, CosFace, ArcFace and sub-center ArcFace share (isx/heads/normface.py, ...):
s * cos(theta) with normalised features and class weights, no bias. Each head's file holds its own
margin, the `target` function given here; the one class keeps the parameter path (CosineHead_0)
that checkpoints hold."""
from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from isx.layers import l2_normalize


class CosineHead(nn.Module):
  """target: the training logit of the labelled class from its cosine (before the scale),
  e.g. cos - m; None (NormFace) or no labels (evaluation): the scaled cosines. subcenters: K
  weight vectors per class (sub-center ArcFace); a class's cosine is that of its nearest one."""
  num_classes: int
  scale: float = 16.0
  target: Optional[Callable] = None
  subcenters: int = 1

  @nn.compact
  def __call__(self, x, labels=None):
    w = self.param('kernel', nn.initializers.xavier_uniform(),
                   (x.shape[-1], self.num_classes * self.subcenters))
    cos = l2_normalize(x) @ l2_normalize(w, axis=0)
    if self.subcenters > 1:  # columns class-major: class c owns columns c*K .. c*K + K - 1
      cos = cos.reshape(*cos.shape[:-1], self.num_classes, self.subcenters).max(-1)
    if labels is None or self.target is None:
      return self.scale * cos
    onehot = jax.nn.one_hot(labels, self.num_classes, dtype=cos.dtype)
    return self.scale * jnp.where(onehot > 0, self.target(cos), cos)
