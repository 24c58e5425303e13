"""LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling, as the paper uses on 64x64 URDU."""
import flax.linen as nn
import jax

from isx import ops
from isx.layers import InwardScale
from isx.models.common import XAVIER, EmbeddingModel


class LeNet(EmbeddingModel):
  """conv5x5(6) pool conv5x5(16) pool -> [IS] -> FC(120) -> FC(embedding=84) -> PReLU -> head."""
  embedding_dim: int = 84

  @nn.compact
  def __call__(self, x, labels=None, train: bool = False, step=None):
    del train
    for i, width in enumerate((6, 16)):
      x = jax.nn.relu(nn.Conv(width, (5, 5), padding='VALID', kernel_init=XAVIER,
                              dtype=self.dtype, name=f'conv{i + 1}')(x))
      x = ops.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    # LeNet's own FC(120) sits between the features and the embedding layer; IS goes before it
    # so that, as in SimpleNet, IS acts on the flattened conv features.
    if self.inward_scale:
      x = InwardScale(self.xi, name='inward_scale')(x)
    x = jax.nn.relu(nn.Dense(120, kernel_init=XAVIER, dtype=self.dtype, name='fc1')(x))
    return self.classify(x, labels, inward_scale=False, step=step)


Model = LeNet
