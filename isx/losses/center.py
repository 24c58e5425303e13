"""Center loss (Wen et al. 2016): pulls each embedding to its class center. The centers are
this term's state: they move by update_centers (loss.center.alpha), not by the gradient."""
import jax
import jax.numpy as jnp


def center_loss(embeddings, labels, centers):
  """1/2 ||x_i - c_{y_i}||^2 averaged over examples; no gradient to the centers."""
  diff = embeddings - jax.lax.stop_gradient(centers)[labels]
  return 0.5 * jnp.mean(jnp.sum(jnp.square(diff), -1))


def update_centers(centers, embeddings, labels, alpha=0.5):
  """Wen et al. Eq. 4: c_j -= alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)."""
  onehot = jax.nn.one_hot(labels, centers.shape[0], dtype=centers.dtype)
  counts = jnp.sum(onehot, axis=0)
  sums = onehot.T @ jax.lax.stop_gradient(embeddings)
  delta = (counts[:, None] * centers - sums) / (1.0 + counts[:, None])
  return centers - alpha * delta


class Loss:
  weight = 0.01  # loss.center.weight's default: Wen et al.'s lambda

  def __init__(self, num_classes, embedding_dim, alpha: float = 0.5):
    self.shape, self.alpha = (num_classes, embedding_dim), alpha

  def init_state(self):
    return jnp.zeros(self.shape, jnp.float32)

  def __call__(self, outputs, labels, state):
    return center_loss(outputs['embedding'], labels, state)

  def update_state(self, state, outputs, labels):
    return update_centers(state, outputs['embedding'], labels, self.alpha)


def check(alpha):
  # Eq. 4 moves a center alpha of the way to its examples' mean: past 1 it overshoots.
  if not 0 < alpha <= 1:
    raise ValueError(f'alpha must be in (0, 1], got {alpha!r}')
