"""Exact k-nearest-neighbour search and retrieval metrics in JAX.

`knn` scores each query against the gallery tile by tile with one matmul of
augmented rows, [2q, -1] . [g, ||g||^2] = 2 q.g - ||g||^2, so the squared
distance is ||q||^2 minus that score and no elementwise pass over the tile is
needed before selection.

Selection (the expensive part on CPU, where XLA's top_k costs per row and per
element) is two-level when k is small against the tile: each tile is cut into
contiguous sub-blocks of s items, and the k sub-blocks with the best maxima are
the only candidates kept. This is exact: each of those k maxima is an item at
least as good as (and, on equal distance, at a lower index than) anything in an
unchosen sub-block, so no unchosen item can be among the tile's k nearest.
Candidates from two tiles and the running top-k are merged by one top_k.

Ties: results are ordered by (returned distance, gallery index), because
`jax.lax.top_k` puts the lower-position element first among equal values and
every merge lists candidates in gallery-index order (the running top-k, from
earlier tiles, first). Chosen sub-blocks are ordered by the same rule, and
selection uses the same clamped distances that are returned, so ties at the
selection boundary resolve the same way. Computed distances carry float32
rounding error of order eps * (||q||^2 + ||g||^2) (negative results are clamped
to 0), so candidates whose true distances differ by less than that may swap.
Exact duplicates of a gallery point get bit-identical distances (the same
arithmetic for each copy; tested on CPU), so they tie and come out lower index
first.

Memory: one augmented, padded copy of the inputs ((Q + N) x (D + 1) floats)
plus one [block_size, tile] score tile, tile = max(6 * block_size, 4k).
"""

import functools
import math

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
      tiles of about max(6 * block_size, 4k) items; working memory beyond a
      copy of the inputs is O(block_size * (block_size + k)) floats.

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


def _tiling(num_g, k, block_size):
  """(tile, sub, num_tiles) for a gallery of num_g items.

  Tiles are as even as possible and come in pairs (one top_k merges two).
  sub is the sub-block size of the two-level selection, 1 where it would not
  pay: it needs about 2 * sqrt(tile * k) of the tile's items in top_k calls
  (sub-block maxima plus candidates), a gain only when k << tile.
  """
  num_tiles = -(-num_g // max(6 * block_size, 4 * k))
  num_tiles += num_tiles % 2 if num_tiles > 1 else 0
  tile = -(-num_g // num_tiles)
  sub = math.isqrt(tile // k)
  sub = sub if sub >= 8 else 1
  return -(-tile // sub) * sub, sub, num_tiles


def _augmented(q_pad, g_pad, g_sq, dtype):
  """[2q, -1...] and [g, ||g||^2...]: their dot is 2 q.g - ||g||^2. In bfloat16, ||g||^2 is
  carried as three bfloat16 parts (24 bits, float32's precision) and the dot accumulates in
  float32, the form AMX runs fast; padded rows keep +inf in the first part only."""
  if dtype == jnp.float32:
    return (jnp.concatenate([2.0 * q_pad, -jnp.ones((q_pad.shape[0], 1), dtype)], axis=1),
            jnp.concatenate([g_pad, g_sq[:, None]], axis=1))
  finite = jnp.isfinite(g_sq)
  parts, rest = [], jnp.where(finite, g_sq, 0.0)
  for _ in range(3):
    parts.append(rest.astype(dtype))
    rest = rest - parts[-1].astype(jnp.float32)
  parts[0] = jnp.where(finite, parts[0], jnp.inf).astype(dtype)
  return (jnp.concatenate([2.0 * q_pad, -jnp.ones((q_pad.shape[0], 3))], axis=1).astype(dtype),
          jnp.concatenate([g_pad.astype(dtype), jnp.stack(parts, axis=1)], axis=1))


@functools.partial(jax.jit, static_argnames=('k', 'block_size', 'dtype'))
def _knn(queries, gallery, query_ids, gallery_ids, *, k, block_size, dtype=jnp.float32):
  num_q, num_g = queries.shape[0], gallery.shape[0]
  if num_q == 0 or num_g == 0:
    return jnp.full((num_q, k), jnp.inf, jnp.float32), jnp.full((num_q, k), -1, jnp.int32)
  exclude = query_ids is not None
  qb = min(block_size, num_q)
  num_qb = -(-num_q // qb)
  tile, sub, num_tiles = _tiling(num_g, k, block_size)
  per_merge = min(2, num_tiles)
  # Padding to whole blocks and tiles keeps one compiled loop body. Padded
  # gallery rows score -inf (their ||g||^2 is +inf) and never surface: the
  # running top-k's (-inf, -1) fillers precede them.
  q_extra, g_extra = num_qb * qb - num_q, num_tiles * tile - num_g
  q_pad = jnp.pad(queries, ((0, q_extra), (0, 0)))
  q_sq = jnp.sum(q_pad * q_pad, axis=-1)
  g_sq = jnp.pad(jnp.sum(gallery * gallery, axis=-1), (0, g_extra), constant_values=jnp.inf)
  q_aug, g_aug = _augmented(q_pad, jnp.pad(gallery, ((0, g_extra), (0, 0))), g_sq, dtype)
  if exclude:
    query_ids, gallery_ids = jnp.pad(query_ids, (0, q_extra)), jnp.pad(gallery_ids, (0, g_extra))

  def query_block(i, out):
    q = lax.dynamic_slice_in_dim(q_aug, i * qb, qb)
    qs = lax.dynamic_slice_in_dim(q_sq, i * qb, qb)[:, None]
    q_id = lax.dynamic_slice_in_dim(query_ids, i * qb, qb)[:, None] if exclude else None

    def neg_dist(score):
      # Monotone in score, so it commutes with max: sub-block maxima select by
      # the very values that are returned. Negative distances from rounding
      # clamp to 0; + 0.0 turns -0.0 into +0.0 (top_k orders them apart).
      return jnp.minimum(score - qs, 0.0) + 0.0

    def masked(score, g_id):
      return jnp.where(g_id == q_id, -jnp.inf, score) if exclude else score

    def candidates(j):
      g = lax.dynamic_slice_in_dim(g_aug, j * tile, tile)
      # HIGHEST keeps full float32 on accelerators (TF32 would change rankings).
      score = lax.dot_general(q, g, (((1,), (1,)), ((), ())), precision=lax.Precision.HIGHEST,
                              preferred_element_type=jnp.float32)
      g_idx = j * tile + jnp.arange(tile, dtype=jnp.int32)[None, :]
      g_id = lax.dynamic_slice_in_dim(gallery_ids, j * tile, tile)[None, :] if exclude else None
      if sub == 1:
        return masked(neg_dist(score), g_id), jnp.broadcast_to(g_idx, score.shape)
      blocks = masked(score, g_id).reshape(qb, tile // sub, sub)
      _, chosen = lax.top_k(neg_dist(jnp.max(blocks, axis=2)), k)
      chosen = jnp.sort(chosen, axis=1)  # gallery-index order for the merge
      idx = j * tile + chosen[:, :, None] * sub + jnp.arange(sub, dtype=jnp.int32)
      idx = idx.reshape(qb, k * sub)
      score = jnp.take_along_axis(blocks, chosen[:, :, None], axis=1).reshape(qb, k * sub)
      return neg_dist(score), idx

    def merge(m, best):
      new = [best] + [candidates(m * per_merge + t) for t in range(per_merge)]
      neg, pos = lax.top_k(jnp.concatenate([n for n, _ in new], axis=1), k)
      return neg, jnp.take_along_axis(jnp.concatenate([i for _, i in new], axis=1), pos, axis=1)

    init = (jnp.full((qb, k), -jnp.inf, jnp.float32), jnp.full((qb, k), -1, jnp.int32))
    neg, idx = lax.fori_loop(0, num_tiles // per_merge, merge, init)
    # abs rather than negation: -(+0.0) would return -0.0.
    return (lax.dynamic_update_slice_in_dim(out[0], jnp.abs(neg), i * qb, axis=0),
            lax.dynamic_update_slice_in_dim(out[1], idx, i * qb, axis=0))

  out = (jnp.zeros((num_qb * qb, k), jnp.float32), jnp.zeros((num_qb * qb, k), jnp.int32))
  dists, idx = lax.fori_loop(0, num_qb, query_block, out)
  return dists[:num_q], idx[:num_q]


@jax.jit
def _sq_dists(queries, gallery):
  """Squared distances, with knn's arithmetic (the same augmented matmul, clamped at 0)."""
  q_aug = jnp.concatenate([2.0 * queries, -jnp.ones((queries.shape[0], 1), jnp.float32)], 1)
  g_aug = jnp.concatenate([gallery, jnp.sum(gallery * gallery, -1, keepdims=True)], 1)
  score = lax.dot_general(q_aug, g_aug, (((1,), (1,)), ((), ())),
                          precision=lax.Precision.HIGHEST)
  return jnp.maximum(jnp.sum(queries * queries, -1, keepdims=True) - score, 0.0) + 0.0


def _sorted_neighbours(queries, gallery, rows, k):
  """[Q, k] nearest gallery indices by a full sort of each row, self (rows) excluded: faster than
  knn's top_k when k is a large fraction of the gallery (MAP@R with few, large classes). Ties go
  to the lower index, as in knn: each key is the distance's bits (monotone for floats >= 0)
  above the index."""
  d = np.array(_sq_dists(jnp.asarray(queries), gallery))
  d[np.arange(len(rows)), rows] = np.inf
  n = d.shape[1]
  keys = (d.view(np.uint32).astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
  keys.sort(axis=1)
  return (keys[:, :k] & np.uint64(0xFFFFFFFF)).astype(np.int64)


def retrieval_metrics(embeddings, labels, ks=(1, 5, 10), *, block_size=1024, search=None):
  """Recall@K, Precision@K and MAP@R with every row as a query.

  The gallery for each query is all other rows (excluded by index), ranked by
  Euclidean distance with ties broken by lower index, by `search`: a function (queries,
  gallery, k, query_ids=, gallery_ids=, block_size=) -> [Q, k] indices; default `knn`, on
  float32 distances (isx.knn_exact.chosen_search() gives the exact search where it is faster).

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
    if 4 * k >= n:
      idx = _sorted_neighbours(embeddings[rows], gallery, rows, k)[: stop - start]
    elif search is not None:
      idx = search(embeddings[rows], embeddings, k, query_ids=ids[rows], gallery_ids=ids,
                   block_size=block_size)[: stop - start]
    else:
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
