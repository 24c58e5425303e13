"""L2-constrained softmax (Ranjan et al. 2017): FC on scale * x / ||x|| (their alpha)."""
import flax.linen as nn

from isx.layers import l2_normalize


class L2SoftmaxHead(nn.Module):
  num_classes: int
  scale: float = 16.0

  @nn.compact
  def __call__(self, x, labels=None):
    del labels
    return nn.Dense(self.num_classes, kernel_init=nn.initializers.xavier_uniform(),
                    name='fc')(self.scale * l2_normalize(x))


Head = L2SoftmaxHead


def check(scale):
  if not scale > 0:
    raise ValueError(f'scale must be > 0, got {scale!r}')
