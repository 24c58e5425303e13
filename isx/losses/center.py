"""Center loss (Wen et al. 2016): pulls each embedding to its class center. The centers are
this term's state: they move by update_centers (loss.center_alpha), not by the gradient."""
import jax
import jax.numpy as jnp

from isx.losses import mask_or_ones, masked_mean


def center_loss(embeddings, labels, centers, mask=None):
  """1/2 ||x_i - c_{y_i}||^2 averaged over examples; no gradient to the centers."""
  diff = embeddings - jax.lax.stop_gradient(centers)[labels]
  return 0.5 * masked_mean(jnp.sum(jnp.square(diff), -1), mask_or_ones(mask, embeddings.shape[0]))


def update_centers(centers, embeddings, labels, alpha=0.5, mask=None):
  """Wen et al. Eq. 4: c_j -= alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)."""
  w = mask_or_ones(mask, embeddings.shape[0])
  onehot = jax.nn.one_hot(labels, centers.shape[0], dtype=centers.dtype) * w[:, None]
  counts = jnp.sum(onehot, axis=0)
  sums = onehot.T @ jax.lax.stop_gradient(embeddings)
  delta = (counts[:, None] * centers - sums) / (1.0 + counts[:, None])
  return centers - alpha * delta


class Loss:
  def __init__(self, loss_config, num_classes, embedding_dim):
    self.shape = (num_classes, embedding_dim)
    self.alpha = loss_config.center_alpha

  def init_state(self):
    return jnp.zeros(self.shape, jnp.float32)

  def __call__(self, outputs, labels, state, mask=None):
    return center_loss(outputs['embedding'], labels, state, mask)

  def update_state(self, state, outputs, labels, mask=None):
    return update_centers(state, outputs['embedding'], labels, self.alpha, mask)
