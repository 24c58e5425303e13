"""GoogLeNet / Inception v1 (Szegedy et al. 2015) with the IS layer before its classifier.

Two stems: 'imagenet' (7x7/2 conv, pools; for 224x224) and 'cifar' (one 3x3 conv; for 32x32,
keeping the spatial size so the inception stages see 32/16/8 maps). BatchNorm after every conv
is optional (`batch_norm`, default on: Inception v1 without it, LRN or auxiliary heads does not
train reliably with Adam at the paper's lr); the auxiliary classifiers are left out.
"""
import functools
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from isx import ops
from isx.models.common import XAVIER, EmbeddingModel

# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) per inception module, from the paper's Table 1.
INCEPTION = {
    '3a': (64, 96, 128, 16, 32, 32), '3b': (128, 128, 192, 32, 96, 64),
    '4a': (192, 96, 208, 16, 48, 64), '4b': (160, 112, 224, 24, 64, 64),
    '4c': (128, 128, 256, 24, 64, 64), '4d': (112, 144, 288, 32, 64, 64),
    '4e': (256, 160, 320, 32, 128, 128),
    '5a': (256, 160, 320, 32, 128, 128), '5b': (384, 192, 384, 48, 128, 128),
}


class ConvBN(nn.Module):
  features: int
  kernel: int
  strides: int = 1
  batch_norm: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.Conv(self.features, (self.kernel, self.kernel), (self.strides, self.strides),
                padding='SAME', use_bias=not self.batch_norm, kernel_init=XAVIER,
                dtype=self.dtype, conv_general_dilated=ops.conv_general_dilated)(x)
    if self.batch_norm:  # statistics in float32 whatever dtype (flax promotes them)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x)
    return jax.nn.relu(x)


class Inception(nn.Module):
  widths: tuple
  batch_norm: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    c1, r3, c3, r5, c5, pp = self.widths
    conv = functools.partial(ConvBN, batch_norm=self.batch_norm, dtype=self.dtype)
    b1 = conv(c1, 1)(x, train)
    b3 = conv(c3, 3)(conv(r3, 1)(x, train), train)
    b5 = conv(c5, 5)(conv(r5, 1)(x, train), train)
    bp = conv(pp, 1)(ops.max_pool(x, (3, 3), (1, 1), padding='SAME'), train)
    return jnp.concatenate([b1, b3, b5, bp], axis=-1)


class GoogleNet(EmbeddingModel):
  embedding_dim: int = 1024
  stem: str = 'cifar'  # 'cifar' (32x32) | 'imagenet' (224x224)
  batch_norm: bool = True
  dropout_rate: float = 0.4

  def __post_init__(self):
    if self.stem not in ('cifar', 'imagenet'):
      raise ValueError(f"unknown model.stem {self.stem!r}; use 'cifar' (32x32) or 'imagenet'")
    super().__post_init__()

  @nn.compact
  def __call__(self, x, labels: Optional[jax.Array] = None, train: bool = False,
               step=None):
    conv = functools.partial(ConvBN, batch_norm=self.batch_norm, dtype=self.dtype)
    pool = functools.partial(ops.max_pool, window_shape=(3, 3), strides=(2, 2), padding='SAME')
    if self.stem == 'imagenet':
      x = pool(conv(64, 7, strides=2)(x, train))
      x = pool(conv(192, 3)(conv(64, 1)(x, train), train))
    else:
      x = conv(192, 3)(x, train)
    for stage in ('3', '4', '5'):
      for name in sorted(k for k in INCEPTION if k[0] == stage):
        x = Inception(INCEPTION[name], self.batch_norm, self.dtype,
                      name=f'inception{name}')(x, train)
      if stage != '5':
        x = pool(x)
    x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))  # a 64-term sum: in float32
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return self.classify(x, labels, step=step)


Model = GoogleNet
