"""Exact k-nearest-neighbour search and retrieval metrics in JAX.

`knn` computes squared Euclidean distances tile by tile as
``||q||^2 + ||g||^2 - 2 q.g`` (one matmul per tile of block_size queries by
max(block_size, 4k) gallery items) and keeps a running top-k per query, so
beyond the inputs, the [Q, k] outputs and one norm per gallery item, memory is
O(block_size * (block_size + k + D)) floats however many queries and gallery
items there are.

Ties: results are ordered by (returned distance, gallery index), because
`jax.lax.top_k` puts the lower-index element first among equal values and the
running top-k (from earlier, lower-index tiles) sits in front of each new tile.
Computed distances carry float32 rounding error of order
eps * (||q||^2 + ||g||^2) (negative results are clamped to 0), so candidates
whose true distances differ by less than that may swap. Exact duplicates of a
gallery point get bit-identical distances (the same arithmetic for each copy;
tested on CPU), so they tie and come out lower index first.
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
    block_size: queries are processed this many at a time, against gallery
      tiles of max(block_size, 4k) rows; working memory is
      O(block_size * (block_size + k + D)) floats.

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
  if query_ids is not None:
    query_ids, gallery_ids = jnp.asarray(query_ids), jnp.asarray(gallery_ids)
    if query_ids.shape != queries.shape[:1] or gallery_ids.shape != gallery.shape[:1]:
      raise ValueError(f'Expected ids of shape [Q], [N], got {query_ids.shape}, {gallery_ids.shape}.')
  return _knn(queries, gallery, query_ids, gallery_ids, k=k, block_size=block_size)


@functools.partial(jax.jit, static_argnames=('k', 'block_size'))
def _knn(queries, gallery, query_ids, gallery_ids, *, k, block_size):
  num_q, num_g = queries.shape[0], gallery.shape[0]
  if num_q == 0 or num_g == 0:
    return jnp.full((num_q, k), jnp.inf, jnp.float32), jnp.full((num_q, k), -1, jnp.int32)
  exclude = query_ids is not None
  # Each tile re-selects the running top k together with the tile, costing
  # about (k + tile) * log(k) per query, so tiles are kept >= 4k for large k.
  qb, gb = min(block_size, num_q), min(max(block_size, 4 * k), num_g)
  g_sq = jnp.sum(gallery * gallery, axis=-1)
  # Blocks are dynamic slices of fixed size (one compiled loop body, no padded
  # copies of the inputs); the last block is shifted back to end at the last
  # row. Overlapping query rows are simply recomputed; overlapping gallery rows
  # are masked so nothing is counted twice.

  def query_block(i, out):
    start = jnp.minimum(i * qb, num_q - qb)
    q = lax.dynamic_slice_in_dim(queries, start, qb)
    q_sq = jnp.sum(q * q, axis=-1)
    q_id = lax.dynamic_slice_in_dim(query_ids, start, qb) if exclude else None

    def gallery_tile(j, best):
      best_neg, best_i = best
      g_start = jnp.minimum(j * gb, num_g - gb)
      g = lax.dynamic_slice_in_dim(gallery, g_start, gb)
      # HIGHEST keeps full float32 on accelerators (TF32 would change rankings).
      qg = lax.dot_general(q, g, (((1,), (1,)), ((), ())), precision=lax.Precision.HIGHEST)
      # Negated squared distances, as top_k selects the largest; exactly -d
      # since IEEE subtraction is sign-symmetric. Rounding can push d below 0
      # for (near-)duplicates; clamping makes those tie at 0 (ranked by index),
      # consistent with the returned distances.
      gs = lax.dynamic_slice_in_dim(g_sq, g_start, gb)
      neg = jnp.minimum(2.0 * qg - (q_sq[:, None] + gs[None, :]), 0.0)
      # Items already seen in the (overlapping) previous tile get -inf. An
      # additive bias rather than a select lets XLA fuse it into the matmul
      # epilogue, and adding +0.0 also turns any -0.0 into +0.0 (top_k orders
      # them differently, which would break ties between zero distances).
      g_idx = g_start + jnp.arange(gb, dtype=jnp.int32)
      neg = neg + jnp.where(g_idx < j * gb, -jnp.inf, 0.0)[None, :]
      if exclude:
        g_id = lax.dynamic_slice_in_dim(gallery_ids, g_start, gb)
        neg = jnp.where(g_id[None, :] == q_id[:, None], -jnp.inf, neg)
      # The running best (all from lower indices) goes first, so top_k's
      # lower-position-first rule breaks ties by gallery index. Its (-inf, -1)
      # fillers also precede masked tile entries, which therefore never surface.
      neg, pos = lax.top_k(jnp.concatenate([best_neg, neg], axis=1), k)
      kept = jnp.take_along_axis(best_i, jnp.minimum(pos, k - 1), axis=1)
      return neg, jnp.where(pos < k, kept, g_start + pos - k)

    init = (jnp.full((qb, k), -jnp.inf, jnp.float32), jnp.full((qb, k), -1, jnp.int32))
    neg, idx = lax.fori_loop(0, -(-num_g // gb), gallery_tile, init)
    # abs rather than negation: -(+0.0) would return -0.0.
    return (lax.dynamic_update_slice_in_dim(out[0], jnp.abs(neg), start, axis=0),
            lax.dynamic_update_slice_in_dim(out[1], idx, start, axis=0))

  out = (jnp.zeros((num_q, k), jnp.float32), jnp.zeros((num_q, k), jnp.int32))
  return lax.fori_loop(0, -(-num_q // qb), query_block, out)


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
