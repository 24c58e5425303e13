"""Losses: softmax cross-entropy, contrastive (Hadsell et al. 2006), center loss (Wen et al. 2016).

All take an optional `mask` [N] (1 = real example, 0 = padding) and average over real examples.
"""
import jax
import jax.numpy as jnp
import optax

LOSSES = ('softmax', 'softmax+contrastive', 'softmax+center')


def _mask_or_ones(mask, n):
  return jnp.ones((n,), jnp.float32) if mask is None else mask.astype(jnp.float32)


def softmax_cross_entropy(logits, labels, mask=None):
  """Mean of -log softmax(logits)[label] over the (unmasked) examples."""
  w = _mask_or_ones(mask, logits.shape[0])
  per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return jnp.sum(per_example * w) / jnp.maximum(jnp.sum(w), 1.0)


def pairwise_sq_distances(x):
  """[N, N] squared Euclidean distances, clamped at 0 (the expansion can go slightly negative)."""
  sq = jnp.sum(jnp.square(x), axis=-1)
  return jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)


def contrastive_loss(embeddings, labels, margin=1.0, mask=None):
  """Hadsell et al.: y d^2 + (1 - y) max(0, m - d)^2, averaged over all pairs i < j in the batch.

  y = 1 for a same-class pair, d the Euclidean distance. d is only taken through a square root
  on the dissimilar branch, guarded where d^2 = 0 so duplicate points keep a finite gradient.
  """
  w = _mask_or_ones(mask, embeddings.shape[0])
  d2 = pairwise_sq_distances(embeddings)
  positive = d2 > 0
  d = jnp.where(positive, jnp.sqrt(jnp.where(positive, d2, 1.0)), 0.0)
  same = (labels[:, None] == labels[None, :]).astype(jnp.float32)
  per_pair = same * d2 + (1.0 - same) * jnp.square(jnp.maximum(margin - d, 0.0))
  pair_w = jnp.triu(w[:, None] * w[None, :], k=1)
  return jnp.sum(per_pair * pair_w) / jnp.maximum(jnp.sum(pair_w), 1.0)


def center_loss(embeddings, labels, centers, mask=None):
  """1/2 ||x_i - c_{y_i}||^2 averaged over examples. The centers get no gradient from it:
  they move by update_centers, as in Wen et al."""
  w = _mask_or_ones(mask, embeddings.shape[0])
  diff = embeddings - jax.lax.stop_gradient(centers)[labels]
  return 0.5 * jnp.sum(jnp.sum(jnp.square(diff), -1) * w) / jnp.maximum(jnp.sum(w), 1.0)


def update_centers(centers, embeddings, labels, alpha=0.5, mask=None):
  """Wen et al. Eq. 4: c_j -= alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)."""
  w = _mask_or_ones(mask, embeddings.shape[0])
  onehot = jax.nn.one_hot(labels, centers.shape[0], dtype=centers.dtype) * w[:, None]
  counts = jnp.sum(onehot, axis=0)
  sums = onehot.T @ jax.lax.stop_gradient(embeddings)
  delta = (counts[:, None] * centers - sums) / (1.0 + counts[:, None])
  return centers - alpha * delta


def total_loss(loss_config, outputs, labels, centers=None, mask=None):
  """The weighted sum named by loss_config.name. Returns (loss, {term: value})."""
  if loss_config.name not in LOSSES:
    raise ValueError(f'unknown loss {loss_config.name!r}; choose one of {", ".join(LOSSES)}')
  terms = {'softmax': softmax_cross_entropy(outputs['logits'], labels, mask)}
  loss = terms['softmax']
  if loss_config.name == 'softmax+contrastive':
    terms['contrastive'] = contrastive_loss(outputs['embedding'], labels, loss_config.margin, mask)
    loss = loss + loss_config.contrastive_weight * terms['contrastive']
  elif loss_config.name == 'softmax+center':
    terms['center'] = center_loss(outputs['embedding'], labels, centers, mask)
    loss = loss + loss_config.center_weight * terms['center']
  return loss, terms
