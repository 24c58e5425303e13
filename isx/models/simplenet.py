"""SimpleNet (the paper's Fig. 4): three blocks of 2x conv3x3 + maxpool, widths 32/64/128."""
from typing import Sequence

import flax.linen as nn
import jax

from isx import ops
from isx.models.common import XAVIER, EmbeddingModel

CONV_ACTIVATIONS = {'none': lambda x: x, 'relu': jax.nn.relu}


class SimpleNet(EmbeddingModel):
  """No BatchNorm, no dropout. conv_activation: 'relu' (the authors' code, whose TF-slim conv2d
  defaults to ReLU; the default) or 'none' (the paper's text, which names no activation)."""
  conv_activation: str = 'relu'
  widths: Sequence[int] = (32, 64, 128)

  def __post_init__(self):
    if self.conv_activation not in CONV_ACTIVATIONS:
      raise ValueError(f'unknown model.conv_activation {self.conv_activation!r}; '
                       f'use {" or ".join(CONV_ACTIVATIONS)}')
    super().__post_init__()

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False, step=None):
    del train  # SimpleNet has no train-time-only layers.
    act = CONV_ACTIVATIONS[self.conv_activation]
    for block, width in enumerate(self.widths):
      for i in range(2):
        x = act(nn.Conv(width, (3, 3), padding='SAME', kernel_init=XAVIER, dtype=self.dtype,
                        name=f'conv{block + 1}_{i + 1}')(x))
      # VALID, as TF-slim's max_pool2d: 28x28 inputs flatten to 3*3*128 = 1152 features.
      x = ops.max_pool(x, (2, 2), strides=(2, 2), padding='VALID')
    return self.classify(x, labels, step=step)


Model = SimpleNet
