"""Plain FC (W x + b) in front of softmax: the paper's classifier."""
import flax.linen as nn


class SoftmaxHead(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, x, labels=None):
    del labels
    return nn.Dense(self.num_classes, kernel_init=nn.initializers.xavier_uniform(), name='fc')(x)


Head = SoftmaxHead
