"""Softmax cross-entropy on the head's logits: the paper's loss."""
import jax.numpy as jnp
import optax


def softmax_cross_entropy(logits, labels):
  """Mean of -log softmax(logits)[label] over the batch."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


class Loss:
  def __init__(self, num_classes, embedding_dim):
    del num_classes, embedding_dim

  def __call__(self, outputs, labels, state):
    del state
    return softmax_cross_entropy(outputs['logits'], labels)
