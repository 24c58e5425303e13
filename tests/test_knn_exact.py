"""isx.knn_exact: the error bound holds, and the answers equal a float64 reference, ties included."""

import jax.numpy as jnp
import numpy as np
import pytest

from isx import cpu_setup, errors, knn, knn_exact
from test_retrieval import integer_points, reference_knn, reference_metrics  # tests/


@pytest.mark.parametrize('dtype', [jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize('seed,scale,offset,dim', [
    (0, 1.0, 0.0, 128), (1, 1e-3, 0.0, 16), (2, 1e3, 0.0, 64), (3, 1.0, 50.0, 32),
    (4, 0.01, -3.0, 7), (5, 30.0, 1.0, 130)])
def test_every_approximate_distance_lies_within_the_bound(dtype, seed, scale, offset, dim):
  """All pairs' approximate distances (isx.knn's augmented dot in dtype, k = the whole gallery)
  against float64, over norms from 1e-3 to 1e4, offsets and near duplicates."""
  rng = np.random.default_rng(seed)
  gallery = (offset + scale * rng.standard_normal((300, dim))).astype(np.float32)
  gallery[::7] *= rng.uniform(0.01, 3.0, (len(gallery[::7]), 1)).astype(np.float32)
  queries = np.concatenate([(offset + scale * rng.standard_normal((40, dim))).astype(np.float32),
                            gallery[:10] * np.float32(1 + 1e-6)])
  approx, idx = knn._knn(jnp.asarray(queries), jnp.asarray(gallery), None, None,  # pylint: disable=protected-access
                         k=len(gallery), block_size=16, dtype=dtype)
  true = np.sum((queries[:, None].astype(np.float64) - gallery[np.asarray(idx)]) ** 2, -1)
  error = np.abs(np.asarray(approx, np.float64) - true)
  bound = knn_exact.error_bound(queries, gallery, dtype)
  assert np.all(error <= bound[:, None]), np.max(error / bound[:, None])
  assert np.max(error / bound[:, None]) > 1e-4  # the bound is not vacuous


@pytest.mark.parametrize('dtype', ['bfloat16', 'float32'])
@pytest.mark.parametrize('num_gallery,k,block_size', [(23, 5, 4), (7, 10, 3), (700, 3, 256),
                                                      (3000, 2, 64), (3000, 40, 64)])
def test_exact_ties_and_duplicates_match_the_float64_reference(dtype, num_gallery, k, block_size):
  rng = np.random.default_rng(num_gallery + k)
  gallery = np.clip(integer_points(rng, num_gallery, 3), -1, 1)
  gallery[num_gallery // 2:] = gallery[: num_gallery - num_gallery // 2]  # exact duplicates
  queries = np.concatenate([np.clip(integer_points(rng, 11, 3), -1, 1), gallery[:4]])
  dists, idx, stats = knn_exact.exact_knn(queries, gallery, k, dtype=dtype, block_size=block_size)
  ref_d, ref_i = reference_knn(queries, gallery, k)
  np.testing.assert_array_equal(idx, ref_i)
  np.testing.assert_array_equal(dists, ref_d.astype(np.float32))
  assert stats['rows'] == len(queries)


@pytest.mark.parametrize('dtype', ['bfloat16', 'float32'])
@pytest.mark.parametrize('seed', range(4))
def test_near_ties_match_the_float64_reference(dtype, seed):
  """Gallery items at distances that differ by ~1e-6 relative (below float32's rounding of the
  augmented dot), near copies and exact copies: the answer is float64's order, ties by index."""
  rng = np.random.default_rng(seed)
  dim = 32
  queries = (5 + rng.standard_normal((30, dim))).astype(np.float32)
  direction = rng.standard_normal((30, 60, dim))
  direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
  radius = 3.0 * (1 + 1e-6 * rng.integers(0, 20, (30, 60, 1)))
  shell = (queries[:, None] + radius * direction).astype(np.float32).reshape(-1, dim)
  gallery = np.concatenate([shell, shell[:200], queries[:5] + np.float32(1e-6)])
  gallery = gallery[rng.permutation(len(gallery))]
  ids = rng.integers(0, 50, len(gallery))
  query_ids = rng.integers(0, 60, len(queries))
  dists, idx, stats = knn_exact.exact_knn(queries, gallery, 12, query_ids=query_ids,
                                          gallery_ids=ids, dtype=dtype, block_size=8)
  ref_d, ref_i = reference_knn(queries, gallery, 12, query_ids, ids)
  np.testing.assert_array_equal(idx, ref_i)
  np.testing.assert_array_equal(dists, ref_d.astype(np.float32))
  # 60 items per query within ~2e-5 of each other: no candidate list short of them all proves it
  assert stats['fallback_float64'] <= stats['fallback_float32'] <= len(queries)


def test_rows_without_a_proof_fall_back_and_stay_exact():
  """40 copies of each of 3 points: for their queries, neither bfloat16's bound nor float32's
  with 4 extra candidates separates the candidates from the copies left out (exact ties), so
  both fallbacks run there; the other queries are proven by their bfloat16 candidates."""
  rng = np.random.default_rng(0)
  base = rng.standard_normal((200, 16)).astype(np.float32)
  gallery = np.concatenate([np.repeat(base[:3], 40, axis=0), base[3:]])
  queries = np.concatenate([base[:3] + np.float32(0.01), base[100:110] + np.float32(0.3)])
  dists, idx, stats = knn_exact.exact_knn(queries, gallery, 5, extra=4)
  np.testing.assert_array_equal(idx, reference_knn(queries, gallery, 5)[1])
  assert stats == {'rows': 13, 'fallback_float32': 3, 'fallback_float64': 3}, stats


def test_arguments_are_checked():
  q = np.zeros((3, 4), np.float32)
  with pytest.raises(ValueError, match='candidate dtype'):
    knn_exact.exact_knn(q, q, 2, dtype='float16')
  with pytest.raises(ValueError, match='both'):
    knn_exact.exact_knn(q, q, 2, query_ids=np.arange(3))
  with pytest.raises(ValueError):
    knn_exact.exact_knn(q, np.zeros((3, 5), np.float32), 2)
  with pytest.raises(ValueError):
    knn_exact.exact_knn(q, q, 0)


def test_retrieval_uses_the_chosen_search(monkeypatch):
  """ISX_KNN_CANDIDATES=bfloat16: the retrieval eval (what the eval binary and the in-loop evals
  run) searches with exact_knn, and its metrics equal the reference's."""
  from isx.evals import retrieval
  rng = np.random.default_rng(0)
  embeddings = rng.standard_normal((300, 8)).astype(np.float32)
  labels = rng.integers(0, 40, 300)
  calls = []
  real = knn_exact.exact_knn
  monkeypatch.setattr(knn_exact, 'exact_knn', lambda *a, **kw: calls.append(1) or real(*a, **kw))
  for asked, called in (('float32', False), ('bfloat16', True)):
    monkeypatch.setenv('ISX_KNN_CANDIDATES', asked)
    calls.clear()
    got = retrieval.compute({'embedding': embeddings, 'label': labels}, (1, 5), block_size=64)
    assert bool(calls) == called
    want = reference_metrics(embeddings, labels, (1, 5))
    for key, value in want.items():
      assert got[key] == pytest.approx(value, abs=1e-9), key


def test_candidate_dtype_is_measured_only_on_amx_hosts_and_once(monkeypatch, tmp_path):
  monkeypatch.setenv('ISX_CACHE_DIR', str(tmp_path))
  monkeypatch.delenv('ISX_KNN_CANDIDATES', raising=False)
  key = cpu_setup.host_key()
  timed = []

  def fake_timing():
    timed.append(1)
    return {'float32': 1.0, 'bfloat16': 0.5}
  monkeypatch.setattr(knn_exact, '_time_searches', fake_timing)
  monkeypatch.setattr(cpu_setup, 'host_key', lambda: {**key, 'amx_bf16': False})
  assert knn_exact.candidate_dtype() == 'float32' and not timed
  monkeypatch.setattr(cpu_setup, 'host_key', lambda: {**key, 'amx_bf16': True})
  assert knn_exact.candidate_dtype() == 'bfloat16'
  assert knn_exact.candidate_dtype() == 'bfloat16' and len(timed) == 1  # cached per host
  monkeypatch.setenv('ISX_KNN_CANDIDATES', 'float32')
  assert knn_exact.candidate_dtype() == 'float32'
  monkeypatch.setenv('ISX_KNN_CANDIDATES', 'fp8')
  with pytest.raises(errors.ConfigError, match='ISX_KNN_CANDIDATES'):
    knn_exact.candidate_dtype()
