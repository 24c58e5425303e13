"""Contrastive loss (Hadsell et al. 2006) on the embeddings; loss.contrastive.margin is its m."""
import jax.numpy as jnp


def pairwise_sq_distances(x):
  """[N, N] squared Euclidean distances, clamped at 0 (the expansion can go slightly negative)."""
  sq = jnp.sum(jnp.square(x), axis=-1)
  return jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)


def contrastive_loss(embeddings, labels, margin=1.0):
  """y d^2 + (1 - y) max(0, m - d)^2, averaged over all pairs i < j in the batch.

  y = 1 for a same-class pair, d the Euclidean distance. d is only taken through a square root
  on the dissimilar branch, guarded where d^2 = 0 so duplicate points keep a finite gradient.
  """
  n = embeddings.shape[0]
  d2 = pairwise_sq_distances(embeddings)
  positive = d2 > 0
  d = jnp.where(positive, jnp.sqrt(jnp.where(positive, d2, 1.0)), 0.0)
  same = (labels[:, None] == labels[None, :]).astype(jnp.float32)
  per_pair = same * d2 + (1.0 - same) * jnp.square(jnp.maximum(margin - d, 0.0))
  return jnp.sum(jnp.triu(per_pair, k=1)) / max(n * (n - 1) // 2, 1)


class Loss:
  def __init__(self, num_classes, embedding_dim, margin: float = 1.0):
    del num_classes, embedding_dim
    self.margin = margin

  def __call__(self, outputs, labels, state):
    del state
    return contrastive_loss(outputs['embedding'], labels, self.margin)


def check(margin):
  if not margin > 0:
    raise ValueError(f'margin must be > 0 (the distance dissimilar pairs are pushed to), '
                     f'got {margin!r}')
