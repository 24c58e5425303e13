"""Tests for isx.knn against brute-force numpy references."""

import jax
import numpy as np
import pytest

from isx.knn import _tiling, knn, retrieval_metrics


def reference_knn(queries, gallery, k, query_ids=None, gallery_ids=None):
  """float64 distances, stable sort => ties by lower gallery index; (inf, -1) when too few."""
  d = np.sum((np.asarray(queries, np.float64)[:, None] - np.asarray(gallery, np.float64)[None]) ** 2, -1)
  if query_ids is not None:
    d[np.asarray(query_ids)[:, None] == np.asarray(gallery_ids)[None, :]] = np.inf
  order = np.argsort(d, axis=1, kind='stable')[:, :k]
  dists = np.take_along_axis(d, order, axis=1)
  pad = k - order.shape[1]
  order = np.pad(np.where(np.isinf(dists), -1, order), ((0, 0), (0, pad)), constant_values=-1)
  dists = np.pad(dists, ((0, 0), (0, pad)), constant_values=np.inf)
  return dists, order


def reference_metrics(embeddings, labels, ks):
  n = len(labels)
  _, order = reference_knn(embeddings, embeddings, n - 1, np.arange(n), np.arange(n))
  rel = labels[order] == labels[:, None]
  out = {}
  for k in ks:
    out[f'recall@{k}'] = np.mean(rel[:, :k].any(1))
    out[f'precision@{k}'] = np.mean(rel[:, :k].sum(1) / k)
  aps = []
  for q in range(n):
    r = int(np.sum(labels == labels[q])) - 1
    if r:
      hits = np.cumsum(rel[q, :r])
      aps.append(np.sum(rel[q, :r] * hits / np.arange(1, r + 1)) / r)
  out['map@r'] = np.mean(aps) if aps else 0.0
  return out


def assert_sorted_by_distance_then_index(dists, idx):
  dists, idx = np.asarray(dists), np.asarray(idx)
  assert not np.any(np.signbit(dists))  # no negative distances, and no -0.0
  d0, d1, i0, i1 = dists[:, :-1], dists[:, 1:], idx[:, :-1], idx[:, 1:]
  assert np.all((d0 < d1) | ((d0 == d1) & ((i0 < i1) | (i1 == -1))))


def integer_points(rng, n, dim, low=-2, high=3):
  # Small integers: every distance is exact in float32, so ties are exact ties.
  return rng.integers(low, high, (n, dim)).astype(np.float32)


@pytest.mark.parametrize('num_gallery,k,block_size', [
    (23, 5, 4),    # gallery not divisible by the block size
    (23, 12, 5),   # block smaller than k
    (7, 10, 3),    # k larger than the gallery: (inf, -1) padding
    (40, 1, 1),    # one row per block
    (64, 8, 64),   # one block exactly
    (31, 31, 1024),
    (700, 3, 256),  # one tile, two-level selection
    (130, 1, 64),
    (3000, 2, 64),  # eight tiles, two-level selection, ties across sub-blocks and tiles
    (3000, 40, 64),  # eight tiles, whole-tile selection
])
def test_knn_matches_reference_with_exact_ties(num_gallery, k, block_size):
  rng = np.random.default_rng(num_gallery * 100 + k)
  gallery = integer_points(rng, num_gallery, 3)
  gallery[1] = 0.0  # zero vectors: no -0.0 / +0.0 mix-ups among zero distances
  gallery[num_gallery // 2:] = gallery[: num_gallery - num_gallery // 2]  # exact duplicates
  queries = np.concatenate([integer_points(rng, 11, 3), gallery[:4], np.zeros((1, 3), np.float32)])
  if num_gallery > 100:  # integers in [-1, 1]: many items at exactly the same distance
    gallery, queries = np.clip(gallery, -1, 1), np.clip(queries, -1, 1)
  dists, idx = knn(queries, gallery, k, block_size=block_size)
  ref_d, ref_i = reference_knn(queries, gallery, k)
  assert dists.dtype == np.float32 and idx.dtype == np.int32
  assert dists.shape == idx.shape == (len(queries), k)
  np.testing.assert_array_equal(np.asarray(idx), ref_i)
  np.testing.assert_array_equal(np.asarray(dists), ref_d.astype(np.float32))
  assert_sorted_by_distance_then_index(dists, idx)


def test_knn_tiling_covers_both_selection_paths():
  # The parametrized cases above and below rely on these plans.
  assert _tiling(3000, 2, 64) == (377, 13, 8)  # two-level, even tile pairs
  assert _tiling(3000, 40, 64) == (375, 1, 8)  # k too large for sub-blocks to pay
  assert _tiling(600, 6, 512) == (600, 10, 1)
  assert _tiling(3000, 6, 256) == (1500, 15, 2)
  assert _tiling(60_000, 10, 1024) == (6000, 24, 10)  # bench_knn's default shape


@pytest.mark.parametrize('num_gallery,block_size',
                         [(30, 3), (30, 16), (30, 1024), (600, 512), (3000, 256)])
def test_knn_self_exclusion_by_id_not_position(num_gallery, block_size):
  rng = np.random.default_rng(block_size)
  gallery = integer_points(rng, num_gallery, 4)
  queries = gallery[rng.permutation(num_gallery)[:12]]
  gallery_ids = np.repeat(np.arange(num_gallery // 2), 2)[rng.permutation(num_gallery)]  # 2 per id
  query_ids = rng.integers(0, num_gallery // 2 + 5, 12)  # some ids absent from the gallery
  dists, idx = knn(queries, gallery, 6, query_ids=query_ids, gallery_ids=gallery_ids,
                   block_size=block_size)
  ref_d, ref_i = reference_knn(queries, gallery, 6, query_ids, gallery_ids)
  np.testing.assert_array_equal(np.asarray(idx), ref_i)
  np.testing.assert_array_equal(np.asarray(dists), ref_d.astype(np.float32))
  assert not np.any(gallery_ids[np.asarray(idx)] == query_ids[:, None])


def test_knn_excludes_everything_gives_inf_and_minus_one():
  gallery = np.eye(3, dtype=np.float32)
  dists, idx = knn(gallery[:1], gallery, 3, query_ids=[7], gallery_ids=[7, 7, 1], block_size=2)
  np.testing.assert_array_equal(np.asarray(idx), [[2, -1, -1]])
  np.testing.assert_array_equal(np.asarray(dists), [[2.0, np.inf, np.inf]])


@pytest.mark.parametrize('dim,num_gallery,block_size', [
    (5, 301, 7), (64, 301, 50), (128, 301, 1024), (32, 2048, 1024)])
def test_knn_float_data_matches_float64_reference(dim, num_gallery, block_size):
  rng = np.random.default_rng(dim)
  gallery = rng.standard_normal((num_gallery, dim)).astype(np.float32)
  queries = rng.standard_normal((57, dim)).astype(np.float32)
  dists, idx = knn(queries, gallery, 9, block_size=block_size)
  ref_d, ref_i = reference_knn(queries, gallery, 9)
  np.testing.assert_array_equal(np.asarray(idx), ref_i)
  np.testing.assert_allclose(np.asarray(dists), ref_d, rtol=1e-5, atol=1e-4)
  assert_sorted_by_distance_then_index(dists, idx)


@pytest.mark.parametrize('block_size', [7, 100, 512, 1024])
def test_knn_float_duplicates_get_identical_distances(block_size):
  # Exact duplicates must tie bit-for-bit (same arithmetic for each copy), so
  # the copies come out in index order wherever they sit in the tiles.
  rng = np.random.default_rng(0)
  base = rng.standard_normal((128, 32)).astype(np.float32)
  copy_of = rng.permutation(1024) % 128
  gallery = base[copy_of]
  queries = np.concatenate([rng.standard_normal((40, 32)).astype(np.float32), base[:10]])
  dists, idx = knn(queries, gallery, 8, block_size=block_size)
  dists, idx = np.asarray(dists), np.asarray(idx)
  assert np.all(dists == dists[:, :1])  # 8 copies of the nearest base point
  assert np.all(dists >= 0)  # self-matches round to tiny negatives before clamping
  assert np.all(copy_of[idx] == copy_of[idx[:, :1]])
  assert np.all(np.diff(idx, axis=1) > 0)
  assert_sorted_by_distance_then_index(dists, idx)
  ref_order = reference_knn(queries, base, 1)[1][:, 0]
  np.testing.assert_array_equal(copy_of[idx[:, 0]], ref_order)


def test_knn_near_duplicates_clamp_to_zero_and_tie_by_index():
  # Distances to exact and near copies of the query are float32 rounding noise
  # around 0 (sometimes negative); they must come back as 0 or more, and the
  # output must stay ordered by (returned distance, index).
  rng = np.random.default_rng(3)
  base = rng.standard_normal((200, 32)).astype(np.float32)
  near = base + 1e-7 * rng.standard_normal((200, 32)).astype(np.float32)
  gallery = np.concatenate([near, base])
  dists, idx = knn(base, gallery, 2, block_size=128)
  assert_sorted_by_distance_then_index(dists, idx)
  assert np.all(np.sort(np.asarray(idx), axis=1) == np.arange(200)[:, None] + [0, 200])
  assert np.all(np.asarray(dists) < 1e-4)


def test_knn_two_level_selection_ranks_by_clamped_distance():
  # Many near copies of each query round to distances at or below 0, which all
  # clamp to a tie at 0. The two-level selection must choose sub-blocks by those
  # clamped values, so the lowest-index copies win, as in whole-tile selection.
  rng = np.random.default_rng(5)
  base = rng.standard_normal((50, 32)).astype(np.float32)
  copies = base[np.arange(400) % 50] + 1e-7 * rng.standard_normal((400, 32)).astype(np.float32)
  gallery = copies[rng.permutation(400)]
  assert _tiling(400, 2, 128)[1] > 1 and _tiling(400, 8, 128)[1] == 1
  two_level = knn(base, gallery, 2, block_size=128)
  whole_tile = knn(base, gallery, 8, block_size=128)
  np.testing.assert_array_equal(np.asarray(two_level[1]), np.asarray(whole_tile[1])[:, :2])
  np.testing.assert_array_equal(np.asarray(two_level[0]), np.asarray(whole_tile[0])[:, :2])
  assert np.mean(np.asarray(whole_tile[0])[:, 2] == 0) > 0.5  # ties at 0 beyond k are common


def test_knn_under_jit_and_argument_checks():
  rng = np.random.default_rng(1)
  q, g = integer_points(rng, 9, 2), integer_points(rng, 13, 2)
  eager = knn(q, g, 4, block_size=5)
  jitted = jax.jit(lambda q, g: knn(q, g, 4, block_size=5))(q, g)
  np.testing.assert_array_equal(np.asarray(eager[1]), np.asarray(jitted[1]))
  np.testing.assert_array_equal(np.asarray(eager[1]), reference_knn(q, g, 4)[1])
  with pytest.raises(ValueError):
    knn(q, g, 4, query_ids=np.arange(9))
  with pytest.raises(ValueError):
    knn(q, g, 0)


def test_retrieval_metrics_hand_computed():
  # 1-D points; |distance| orders by hand (ties -> lower index):
  #   q0 (0, A): 1(B) 2(A) 3(A) 4(B) 5(C)  R=2 AP=(0 + 1/2)/2 = 1/4
  #   q1 (2, B): 2(A) 0(A) 3(A) 4(B) 5(C)  R=1 AP=0        (0 and 3 tie at 2)
  #   q2 (3, A): 1(B) 3(A) 0(A) 4(B) 5(C)  R=2 AP=(0 + 1/2)/2 = 1/4 (1 and 3 tie at 1)
  #   q3 (4, A): 2(A) 1(B) 0(A) 4(B) 5(C)  R=2 AP=(1 + 0)/2 = 1/2
  #   q4 (10, B): 3(A) 2(A) 1(B) 0(A) 5(C) R=1 AP=0
  #   q5 (30, C): R=0 -> a miss for recall/precision, left out of map@r.
  x = np.array([[0.0], [2.0], [3.0], [4.0], [10.0], [30.0]])
  labels = np.array(['A', 'B', 'A', 'A', 'B', 'C'])
  m = retrieval_metrics(x, labels, ks=(1, 2, 3), block_size=4)
  expected = {
      'recall@1': 1 / 6, 'recall@2': 3 / 6, 'recall@3': 4 / 6,
      'precision@1': 1 / 6, 'precision@2': 1.5 / 6, 'precision@3': 7 / 18,
      'map@r': (1 / 4 + 0 + 1 / 4 + 1 / 2 + 0) / 5,
  }
  assert m.keys() == expected.keys()
  for key, value in expected.items():
    assert isinstance(m[key], float)
    assert m[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize('n,num_classes,dim,block_size', [
    (37, 6, 3, 8),     # many exact ties, classes of size one likely
    (50, 50, 2, 16),   # every class of size one
    (64, 3, 5, 1024),
    (29, 4, 2, 2),     # block smaller than k and than R
])
def test_retrieval_metrics_match_reference(n, num_classes, dim, block_size):
  rng = np.random.default_rng(n + num_classes)
  x = integer_points(rng, n, dim)
  labels = rng.permutation(n) % num_classes if num_classes == n else rng.integers(0, num_classes, n)
  labels[0] = 1000  # a class of size one
  ks = (1, 3, 10)
  m = retrieval_metrics(x, labels, ks, block_size=block_size)
  ref = reference_metrics(x, labels, ks)
  assert m.keys() == ref.keys()
  for key in ref:
    assert m[key] == pytest.approx(ref[key], abs=1e-9), key
  if num_classes == n:
    assert m['map@r'] == 0.0 and m['recall@10'] == 0.0


def test_retrieval_metrics_k_larger_than_gallery():
  x = np.array([[0.0], [1.0], [5.0]])
  m = retrieval_metrics(x, [0, 0, 1], ks=(1, 4))
  assert m['recall@4'] == pytest.approx(2 / 3)
  assert m['precision@4'] == pytest.approx((1 / 4 + 1 / 4 + 0) / 3)
  assert m['map@r'] == pytest.approx(1.0)
