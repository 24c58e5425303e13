"""SimpleNet (the paper's Fig. 4): three blocks of 2x conv3x3 + maxpool, widths 32/64/128."""
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from isx import ops
from isx.models.common import XAVIER, EmbeddingClassifier

CONV_ACTIVATIONS = {'none': lambda x: x, 'relu': jax.nn.relu}


class SimpleNet(nn.Module):
  """No BatchNorm, no dropout. conv_activation: 'relu' (the authors' code, whose TF-slim conv2d
  defaults to ReLU; the default) or 'none' (the paper's text, which names no activation)."""
  num_classes: int
  embedding_dim: int = 256
  inward_scale: bool = True
  xi: float = 100.0
  conv_activation: str = 'relu'
  widths: Sequence[int] = (32, 64, 128)
  head: str = 'softmax'
  head_scale: float = 0.0
  head_margin: float = -1.0
  dtype: Any = jnp.float32  # compute dtype (e.g. bfloat16); params stay float32

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False):
    del train  # SimpleNet has no train-time-only layers.
    act = CONV_ACTIVATIONS[self.conv_activation]
    for block, width in enumerate(self.widths):
      for i in range(2):
        x = act(nn.Conv(width, (3, 3), padding='SAME', kernel_init=XAVIER, dtype=self.dtype,
                        name=f'conv{block + 1}_{i + 1}')(x))
      # VALID, as TF-slim's max_pool2d: 28x28 inputs flatten to 3*3*128 = 1152 features.
      x = ops.max_pool(x, (2, 2), strides=(2, 2), padding='VALID')
    return EmbeddingClassifier(self.num_classes, self.embedding_dim, self.inward_scale, self.xi,
                               self.head, self.head_scale, self.head_margin, self.dtype,
                               name='classifier')(
                                   x, labels)
