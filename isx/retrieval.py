"""Exact k-nearest-neighbour search and retrieval metrics in JAX.

`knn` computes squared Euclidean distances tile by tile as
``||q||^2 + ||g||^2 - 2 q.g`` (one matmul per ``[block_size, block_size]`` tile)
and keeps a running top-k per query, so peak extra memory is
O(block_size * (block_size + k)) floats regardless of the number of queries and
gallery items (the inputs are copied once, padded to whole blocks).

Tie-breaking: results are ordered by (distance, gallery index). Equal computed
distances come out lower index first because `jax.lax.top_k` returns the
lower-index element first among equal values, the running top-k (earlier,
lower-index tiles) sits in front of each new tile, and zero distances are
canonicalised to +0.0 (top_k orders -0.0 and +0.0 as different values).
Distances carry float32 rounding error of order eps * (||q||^2 + ||g||^2), so
two candidates whose true distances differ by less than that may swap; exact
duplicates of a gallery point get bit-identical distances (same arithmetic),
hence always tie and come out lower index first.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def knn(queries, gallery, k, *, query_ids=None, gallery_ids=None, block_size=1024):
  """Exact k nearest neighbours by squared Euclidean distance.

  Args:
    queries: [Q, D] array.
    gallery: [N, D] array.
    k: number of neighbours (static).
    query_ids, gallery_ids: optional [Q] / [N] integer ids (give both or
      neither). Query q never retrieves gallery item g with
      gallery_ids[g] == query_ids[q] (self-exclusion by id, not by position).
    block_size: queries and gallery are processed in tiles of this many rows;
      extra memory is O(block_size * (block_size + k)) floats.

  Returns:
    (sq_dists [Q, k] float32, indices [Q, k] int32), sorted by (distance,
    gallery index). If fewer than k gallery items are eligible for a query,
    the trailing entries are (inf, -1).
  """
  if (query_ids is None) != (gallery_ids is None):
    raise ValueError('Pass both query_ids and gallery_ids, or neither.')
  if k < 1 or block_size < 1:
    raise ValueError(f'Need k >= 1 and block_size >= 1, got {k}, {block_size}.')
  queries = jnp.asarray(queries, jnp.float32)
  gallery = jnp.asarray(gallery, jnp.float32)
  if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
    raise ValueError(f'Expected [Q, D] and [N, D], got {queries.shape}, {gallery.shape}.')
  return _knn(queries, gallery, query_ids, gallery_ids, k=k, block_size=block_size)


def _pad_blocks(x, block):
  """Pads axis 0 to a multiple of `block` and splits it into [n_blocks, block, ...]."""
  n_blocks = -(-x.shape[0] // block)
  x = jnp.pad(x, [(0, n_blocks * block - x.shape[0])] + [(0, 0)] * (x.ndim - 1))
  return x.reshape(n_blocks, block, *x.shape[1:])


@functools.partial(jax.jit, static_argnames=('k', 'block_size'))
def _knn(queries, gallery, query_ids, gallery_ids, *, k, block_size):
  num_gallery = gallery.shape[0]
  exclude = query_ids is not None
  # Tiles never exceed the data, so small inputs are not padded up to a block.
  qb = max(1, min(block_size, queries.shape[0]))
  gb = max(1, min(block_size, num_gallery))
  g_blocks = _pad_blocks(gallery, gb)
  g_sq = jnp.sum(g_blocks * g_blocks, axis=-1)
  offsets = jnp.arange(g_blocks.shape[0], dtype=jnp.int32) * gb
  # Without ids these stay None, which lax.scan / lax.map treat as empty pytrees.
  g_ids = _pad_blocks(jnp.asarray(gallery_ids), gb) if exclude else None
  q_ids = _pad_blocks(jnp.asarray(query_ids), qb) if exclude else None

  def query_block(args):
    q, q_id = args
    q_sq = jnp.sum(q * q, axis=-1)

    def gallery_tile(best, tile):
      best_d, best_i = best
      g, gs, g_id, offset = tile
      # HIGHEST keeps full float32 on accelerators (TF32 would change rankings).
      qg = lax.dot_general(q, g, (((1,), (1,)), ((), ())), precision=lax.Precision.HIGHEST)
      d = q_sq[:, None] + gs[None, :] - 2.0 * qg
      # Clamp rounding negatives and turn -0.0 into +0.0 so zero distances tie.
      d = jnp.where(d <= 0.0, 0.0, d)
      g_idx = offset + jnp.arange(gb, dtype=jnp.int32)
      masked = (g_idx >= num_gallery)[None, :]  # padding rows of the last tile
      if exclude:
        masked = masked | (g_id[None, :] == q_id[:, None])
      d = jnp.where(masked, jnp.inf, d)
      # The running best (all from lower indices) goes first, so top_k's
      # lower-position-first rule breaks ties by gallery index. Its (inf, -1)
      # fillers also precede masked tile entries, which therefore never surface.
      neg_d, pos = lax.top_k(-jnp.concatenate([best_d, d], axis=1), k)
      idx = jnp.concatenate([best_i, jnp.broadcast_to(g_idx, d.shape)], axis=1)
      return (-neg_d, jnp.take_along_axis(idx, pos, axis=1)), None

    init = (jnp.full((qb, k), jnp.inf, jnp.float32), jnp.full((qb, k), -1, jnp.int32))
    best, _ = lax.scan(gallery_tile, init, (g_blocks, g_sq, g_ids, offsets))
    return best

  q_blocks = _pad_blocks(queries, qb)
  dists, idx = lax.map(query_block, (q_blocks, q_ids))
  num_queries = queries.shape[0]
  return dists.reshape(-1, k)[:num_queries], idx.reshape(-1, k)[:num_queries]


def retrieval_metrics(embeddings, labels, ks=(1, 5, 10), *, block_size=1024):
  """Recall@K, Precision@K and MAP@R with every row as a query.

  The gallery for each query is all other rows (excluded by index), ranked by
  Euclidean distance with ties broken by lower index.

  * recall@K: fraction of queries with at least one same-class item among
    their K nearest.
  * precision@K: mean over queries of (#same-class items in the K nearest) / K.
  * map@r (Musgrave et al. 2020, as pytorch-metric-learning's
    mean_average_precision_at_r): with R the number of other same-class
    items, AP@R = (1/R) * sum_{i<=R} P(i) * rel(i), averaged over queries.

  Queries whose class has no other member (R = 0) count as misses (0) in
  recall@K and precision@K, and are left out of map@r, which is 0.0 if every
  query has R = 0. If K exceeds the gallery size, missing neighbours count as
  misses (precision still divides by K).

  Returns:
    Dict of python floats keyed 'recall@K', 'precision@K' (for K in ks) and
    'map@r'.
  """
  embeddings = np.asarray(embeddings, np.float32)
  if embeddings.ndim != 2 or embeddings.shape[0] == 0:
    raise ValueError(f'Expected non-empty [N, D] embeddings, got {embeddings.shape}.')
  _, labels, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
  labels = labels.reshape(-1)
  n = embeddings.shape[0]
  if labels.shape != (n,):
    raise ValueError(f'Need one label per row, got {labels.shape} for {n} rows.')
  ks = tuple(int(kk) for kk in ks)
  if not ks or min(ks) < 1:
    raise ValueError(f'ks must be positive integers, got {ks}.')
  num_relevant = counts[labels] - 1  # R per query
  k = max(1, min(max(max(ks), int(num_relevant.max())), n - 1))
  ranks = np.arange(1, k + 1)
  hits_at = {kk: 0.0 for kk in ks}
  found_at = {kk: 0 for kk in ks}
  ap_sum = 0.0
  ids = np.arange(n, dtype=np.int32)
  gallery, gallery_ids = jnp.asarray(embeddings), jnp.asarray(ids)
  # Query chunks padded to one shape (one compilation); each chunk's [chunk, k]
  # neighbour list is reduced to sums right away so host memory stays bounded.
  chunk = min(block_size, n)
  for start in range(0, n, chunk):
    stop = min(start + chunk, n)
    pad = chunk - (stop - start)
    rows = np.pad(np.arange(start, stop), (0, pad), mode='edge')
    _, idx = knn(embeddings[rows], gallery, k, query_ids=ids[rows], gallery_ids=gallery_ids,
                 block_size=block_size)
    idx = np.asarray(idx)[: stop - start]
    rel = (idx >= 0) & (labels[idx] == labels[start:stop, None])
    hits = np.cumsum(rel, axis=1)
    for kk in ks:
      h = hits[:, min(kk, k) - 1]
      hits_at[kk] += h.sum() / kk
      found_at[kk] += np.count_nonzero(h)
    r = num_relevant[start:stop]
    ap = np.sum(rel * hits / ranks * (ranks <= r[:, None]), axis=1)
    ap_sum += np.sum(ap[r > 0] / r[r > 0])
  num_with_r = np.count_nonzero(num_relevant)
  metrics = {}
  for kk in ks:
    metrics[f'recall@{kk}'] = float(found_at[kk] / n)
    metrics[f'precision@{kk}'] = float(hits_at[kk] / n)
  metrics['map@r'] = float(ap_sum / num_with_r) if num_with_r else 0.0
  return metrics
