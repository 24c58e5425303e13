"""Softmax cross-entropy on the head's logits: the paper's loss."""
import optax

from isx.losses import mask_or_ones, masked_mean


def softmax_cross_entropy(logits, labels, mask=None):
  """Mean of -log softmax(logits)[label] over the (unmasked) examples."""
  per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return masked_mean(per_example, mask_or_ones(mask, logits.shape[0]))


class Loss:
  def __init__(self, loss_config, num_classes, embedding_dim):
    del loss_config, num_classes, embedding_dim

  def __call__(self, outputs, labels, state, mask=None):
    del state
    return softmax_cross_entropy(outputs['logits'], labels, mask)
