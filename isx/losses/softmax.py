"""Softmax cross-entropy on the head's logits: the paper's loss; label_smoothing (Szegedy et al.
2016) is a training option, 0 (the paper's) by default."""
import jax
import jax.numpy as jnp
import optax


def softmax_cross_entropy(logits, labels, label_smoothing=0.0):
  """Mean over the batch of the cross-entropy to the one-hot label, mixed with the uniform
  distribution by label_smoothing (0: -log softmax(logits)[label])."""
  if not label_smoothing:
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
  targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
  return jnp.mean(optax.softmax_cross_entropy(logits, targets))


class Loss:
  def __init__(self, num_classes, embedding_dim, label_smoothing: float = 0.0):
    del num_classes, embedding_dim
    self.label_smoothing = label_smoothing

  def __call__(self, outputs, labels, state):
    del state
    return softmax_cross_entropy(outputs['logits'], labels, self.label_smoothing)


def check(label_smoothing):
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f'label_smoothing must be in [0, 1) (the weight of the uniform target), '
                     f'got {label_smoothing!r}')
