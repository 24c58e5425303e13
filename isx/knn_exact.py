"""Exact k-NN from fast candidates: a bfloat16 (or float32) search for C > k candidates, re-ranked
in float64, with a proof per query that no other gallery item can be nearer.

`isx.knn` ranks by float32 distances, which carry rounding of order eps * (|q|^2 + |g|^2), so
near ties may swap against the true order. `exact_knn` returns the true k nearest (float64
distances of the float32 inputs; ties by lower index) whatever the candidates' dtype:

1. candidates: `isx.knn`'s tiled search for the C nearest by approximate distance, in `dtype`.
   bfloat16 inputs with float32 accumulation are the dots that AMX runs several times faster than
   float32 (hosts without it run them slower: `candidate_dtype` measures);
2. re-rank: the C candidates' distances in float64, sorted by (distance, index);
3. proof: every approximate distance is within E_q of the true one (the bound below, from the
   inputs' norms and their rounding to `dtype`). Every item left out has an approximate distance
   >= a_C, the C-th candidate's, so a true distance >= a_C - E_q. When the k-th re-ranked
   distance is below that, no item left out can be nearer or tie: the row is exact;
4. fallback: rows without a proof (too many items within the bound of the k-th) are searched
   again with float32 candidates, whose bound is ~2^16 times tighter, and rows still without
   one by brute force in float64. `stats` counts both.

The bound, for query q and any gallery item g (u = 2^-8 for bfloat16, 0 for float32; gamma =
(D + 8) 2^-23 covers float32 accumulation over D + 3 terms, the norms and the last subtraction):
  |approx - true| <= 2 (|dq| |g_b| + |q| |dg|) + gamma ((|q| + |g|)^2 + 2 |q_b| |g_b| + 2 |g|^2)
where q_b, g_b are the rounded inputs and dq = q_b - q, dg = g_b - g (Cauchy-Schwarz on
2 (q_b.g_b - q.g) = 2 (dq.g_b + q.dg)); isx takes the gallery's largest |g|, |g_b| and |dg|.
"""
import functools
import hashlib
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from isx import cpu_setup, errors
from isx import knn as knn_lib

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def exact_knn(queries, gallery, k, *, query_ids=None, gallery_ids=None, dtype='bfloat16',
              extra=None, block_size=1024):
  """The exact k nearest neighbours (squared Euclidean, float64 distances of the float32 inputs,
  ties by lower gallery index), as isx.knn's arguments and return, plus stats: {'rows',
  'fallback_float32': rows the first search did not prove, 'fallback_float64': rows left to
  the brute force}.

  dtype: the candidates' dtype, 'bfloat16' or 'float32'; extra: candidates beyond k (default
  max(k, 32) for bfloat16, 8 for float32). Not jittable (fallback rows are chosen on the host).
  """
  if dtype not in DTYPES:
    raise ValueError(f'Unknown candidate dtype {dtype!r}; choose {", ".join(DTYPES)}.')
  queries, gallery = np.asarray(queries, np.float32), np.asarray(gallery, np.float32)
  knn_lib.knn(queries[:0], gallery[:0], k, block_size=block_size)  # its checks, on no rows
  if (query_ids is None) != (gallery_ids is None):
    raise ValueError('Pass both query_ids and gallery_ids, or neither.')
  ids = None if query_ids is None else (np.asarray(query_ids), np.asarray(gallery_ids))
  if extra is None:
    extra = max(k, 32) if dtype == 'bfloat16' else 8
  dists = np.full((len(queries), k), np.inf, np.float32)
  idx = np.full((len(queries), k), -1, np.int32)

  def search(rows, name):  # fills the rows it proves; returns the others
    if len(rows) == 0:
      return rows
    d, i, proven = _search(queries[rows], gallery, k, ids and (ids[0][rows], ids[1]),
                           DTYPES[name], k + extra, block_size)
    dists[rows[proven]], idx[rows[proven]] = d[proven], i[proven]
    return rows[~proven]

  todo = search(np.arange(len(queries)), dtype)
  stats = {'rows': len(queries), 'fallback_float32': len(todo)}
  if dtype == 'bfloat16':
    todo = search(todo, 'float32')
  stats['fallback_float64'] = len(todo)
  for row in todo:
    dists[row], idx[row] = _brute_force(queries[row], gallery, k,
                                        ids and (ids[0][row], ids[1]))
  return dists, idx, stats


def _search(queries, gallery, k, ids, dtype, num_candidates, block_size):
  """Candidates, re-rank and proof for these rows: (dists, idx, proven [Q] bool)."""
  num_candidates = min(num_candidates, max(len(gallery), k))
  rows = len(queries)
  padded = _bucket(rows, block_size)  # few shapes to compile, whatever the fallback's rows
  q = np.pad(queries, ((0, padded - rows), (0, 0)))
  qid = None if ids is None else np.pad(ids[0], (0, padded - rows))
  approx, cand = knn_lib._knn(jnp.asarray(q), jnp.asarray(gallery),  # pylint: disable=protected-access
                              None if ids is None else jnp.asarray(qid),
                              None if ids is None else jnp.asarray(ids[1]),
                              k=num_candidates, block_size=block_size, dtype=dtype)
  with jax.enable_x64(True):
    d, i = _rerank(jnp.asarray(q), jnp.asarray(gallery), cand, k)
    d, i = np.asarray(d)[:rows], np.asarray(i)[:rows]
  approx, cand = np.asarray(approx)[:rows], np.asarray(cand)[:rows]
  # Rows whose candidates hold every eligible item need no proof.
  everything = cand[:, -1] < 0
  bound = error_bound(queries, gallery, dtype)
  proven = everything | (d[:, k - 1] < approx[:, -1].astype(np.float64) - bound)
  return d.astype(np.float32), i.astype(np.int32), proven


def error_bound(queries, gallery, dtype) -> np.ndarray:
  """E_q of the module docstring: per query, a bound on |approximate - true distance| over all
  gallery items, for candidates scored in dtype by isx.knn's augmented dot and re-ranked in
  float64."""
  def norms(x):
    return np.sqrt(np.sum(np.square(x, dtype=np.float64), 1))

  def rounded(x):
    return np.asarray(jnp.asarray(x).astype(dtype).astype(jnp.float32), np.float64)

  q64, g64 = queries.astype(np.float64), gallery.astype(np.float64)
  qb, gb = rounded(queries), rounded(gallery)
  q, g, q_b = norms(q64), np.max(norms(g64), initial=0.0), norms(qb)
  g_b, dg, dq = np.max(norms(gb), initial=0.0), np.max(norms(gb - g64), initial=0.0), norms(qb - q64)
  gamma = (queries.shape[1] + 8) * 2.0 ** -23
  bound = 2 * (dq * g_b + q * dg) + gamma * ((q + g) ** 2 + 2 * q_b * g_b + 2 * g * g)
  # + the re-rank's float64 rounding (relative 2^-52 per operation over D terms), and the
  # bound's own
  return bound * (1 + 2.0 ** -20) + (queries.shape[1] + 8) * 2.0 ** -50 * (q + g) ** 2


@functools.partial(jax.jit, static_argnames='k')
def _rerank(queries, gallery, cand, k):
  """The candidates' float64 distances, the k smallest by (distance, index); (inf, -1) pads."""
  q = queries.astype(jnp.float64)
  g = gallery.astype(jnp.float64)[jnp.maximum(cand, 0)]
  d = jnp.sum(jnp.square(q[:, None, :] - g), axis=-1)
  d = jnp.where(cand < 0, jnp.inf, d)
  d, i = lax.sort((d, cand), dimension=1, num_keys=2)
  return d[:, :k], i[:, :k]


def _bucket(rows: int, block_size: int) -> int:
  """Rows padded to a power of two up to block_size, then to whole blocks."""
  if rows > block_size:
    return -(-rows // block_size) * block_size
  return min(1 << max(rows - 1, 1).bit_length(), block_size)


def _brute_force(query, gallery, k, ids):
  """One row by float64 distances to every gallery item (the fallback of the fallback)."""
  d = np.sum(np.square(gallery.astype(np.float64) - query.astype(np.float64)), axis=1)
  if ids is not None:
    d[ids[1] == ids[0]] = np.inf
  order = np.lexsort((np.arange(len(d)), d))[:k]
  order = order[np.isfinite(d[order])]
  out_d = np.full(k, np.inf, np.float32)
  out_i = np.full(k, -1, np.int32)
  out_d[:len(order)], out_i[:len(order)] = d[order], order
  return out_d, out_i


def chosen_search():
  """What retrieval should search with on this host (knn.retrieval_metrics' `search`): None
  for isx.knn's float32 search, else exact_knn with bfloat16 candidates (candidate_dtype)."""
  if candidate_dtype() != 'bfloat16':
    return None
  return lambda *args, **kwargs: exact_knn(*args, **kwargs)[1]


PROBE = {'dim': 128, 'queries': 2048, 'gallery': 12_288, 'k': 10}


def candidate_dtype() -> str:
  """Which search retrieval runs: 'bfloat16' (exact_knn) where it beats isx.knn's float32
  search by 10% on this host, else 'float32' (isx.knn). $ISX_KNN_CANDIDATES (auto, float32,
  bfloat16) forces one. Only CPUs with AMX (amx_bf16) are timed, once per host, on a synthetic
  problem of PROBE's shape (cached beside the CPU setup); elsewhere bfloat16 dots are not faster
  than float32 ones (measured on an AVX-512 host without AMX: 1.5x slower), and accelerators
  keep the float32 search."""
  asked = os.environ.get('ISX_KNN_CANDIDATES', 'auto')
  if asked not in ('auto', *DTYPES):
    raise errors.ConfigError(f'unknown ISX_KNN_CANDIDATES={asked!r}; choose auto, '
                             f'{", ".join(DTYPES)}')
  if asked != 'auto':
    return asked
  host = cpu_setup.host_key()
  if jax.default_backend() != 'cpu' or not host['amx_bf16']:
    return 'float32'
  digest = hashlib.sha1(json.dumps({'host': host, 'knn': PROBE}, sort_keys=True).encode())
  with cpu_setup.locked_cache() as cache:
    entry = cache.get(digest.hexdigest())
    if entry is None:
      entry = cache[digest.hexdigest()] = {'knn_seconds': _time_searches(), 'host': host}
  best = entry['knn_seconds']
  return 'bfloat16' if best['bfloat16'] < 0.9 * best['float32'] else 'float32'


def _time_searches() -> dict:
  """Best of 3 (after a warm-up) of each search on PROBE's shape, in seconds."""
  rng = np.random.default_rng(0)
  q = rng.standard_normal((PROBE['queries'], PROBE['dim']), dtype=np.float32)
  g = rng.standard_normal((PROBE['gallery'], PROBE['dim']), dtype=np.float32)
  runs = {'float32': lambda: np.asarray(knn_lib.knn(q, g, PROBE['k'])[1]),
          'bfloat16': lambda: exact_knn(q, g, PROBE['k'])[1]}
  best = {}
  for name, run in runs.items():
    run()
    best[name] = min(_timed(run) for _ in range(3))
  return best


def _timed(run) -> float:
  start = time.perf_counter()
  run()
  return time.perf_counter() - start
