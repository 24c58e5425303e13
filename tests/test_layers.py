"""inward_scale: value, gradient (finite differences, Appendix B), properties; the heads."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from isx import heads, layers, models
from isx.heads import sphereface
from isx.heads.arcface import arcface_target
from isx.layers import inward_scale, l2_normalize


def test_matches_equation_2():
  x = np.random.default_rng(0).normal(size=(4, 7)).astype(np.float32)
  eps = 1e-3
  expected = x / (100.0 * np.sqrt(np.sum(x**2, -1, keepdims=True) + eps))
  np.testing.assert_allclose(inward_scale(x, 100.0, eps=eps), expected, rtol=1e-6)


@pytest.mark.parametrize('shape,scale,xi', [((3,), 1.0, 1.0), ((4, 5), 1e-3, 100.0),
                                            ((2, 3, 6), 1e3, 1e4), ((1, 1152), 1.0, 1e2)])
def test_gradient_matches_finite_differences(shape, scale, xi):
  with jax.enable_x64(True):
    x = scale * jnp.asarray(np.random.default_rng(1).normal(size=shape))
    check_grads(lambda v: inward_scale(v, xi, eps=1e-12 * scale**2), (x,), order=2,
                modes=('fwd', 'rev'), rtol=1e-5, atol=1e-8, eps=1e-4 * scale)


def test_gradient_near_zero_input():
  with jax.enable_x64(True):
    x = jnp.full((2, 5), 1e-7)
    check_grads(lambda v: inward_scale(v, 10.0, eps=1e-12), (x,), order=1, modes=('rev',),
                rtol=1e-5, eps=1e-9)


def test_appendix_b_complete_formula_matches_autodiff_simplified_does_not():
  rng = np.random.default_rng(2)
  with jax.enable_x64(True):
    x, g = jnp.asarray(rng.normal(size=9)), jnp.asarray(rng.normal(size=9))
    _, vjp = jax.vjp(lambda v: inward_scale(v, 100.0), x)
    (autodiff,) = vjp(g)
    complete = layers.inward_scale_vjp_reference(x, g, 100.0)
    simplified = layers.inward_scale_vjp_reference(x, g, 100.0, paper_simplified=True)
    np.testing.assert_allclose(complete, autodiff, rtol=1e-10)
    assert not np.allclose(simplified, autodiff, rtol=1e-3)
    # The dropped gamma-hat term is the component of g along x. For g = x, IS is flat (scale
    # invariance), so the true gradient vanishes while the simplified one is x / (xi ||x||).
    (autodiff_parallel,) = vjp(x)
    np.testing.assert_allclose(autodiff_parallel, 0.0, atol=1e-12)
    parallel = layers.inward_scale_vjp_reference(x, x, 100.0, paper_simplified=True)
    np.testing.assert_allclose(jnp.linalg.norm(parallel), 1e-2, rtol=1e-6)
    # ...and the simplified form is exact only for g orthogonal to x.
    g_perp = g - x * jnp.dot(g, x) / jnp.dot(x, x)
    (autodiff_perp,) = vjp(g_perp)
    np.testing.assert_allclose(
        layers.inward_scale_vjp_reference(x, g_perp, 100.0, paper_simplified=True),
        autodiff_perp, rtol=1e-8)


@pytest.mark.parametrize('xi', [1.0, 100.0, 1e5])
def test_rows_have_norm_one_over_xi_scale_invariant_direction_kept(xi):
  x = np.random.default_rng(3).normal(size=(6, 32)).astype(np.float32) * 5
  y = np.asarray(inward_scale(x, xi))
  np.testing.assert_allclose(np.linalg.norm(y, axis=-1), 1.0 / xi, rtol=1e-5)
  np.testing.assert_allclose(inward_scale(3.7 * x, xi), y, rtol=1e-5, atol=1e-12)
  cos = np.sum(x * y, -1) / (np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1))
  np.testing.assert_allclose(cos, 1.0, rtol=1e-6)


def test_zero_row_is_finite_with_finite_gradient():
  x = jnp.zeros((3, 8))
  y = inward_scale(x)
  grad = jax.grad(lambda v: jnp.sum(inward_scale(v) * jnp.arange(8.0)))(x)
  chex.assert_tree_all_finite((y, grad))
  np.testing.assert_array_equal(y, 0.0)


def test_jit_vmap_and_any_leading_shape():
  x = jax.random.normal(jax.random.key(0), (2, 3, 4, 10))
  direct = inward_scale(x)
  np.testing.assert_allclose(jax.jit(inward_scale)(x), direct, rtol=1e-6)
  np.testing.assert_allclose(jax.vmap(jax.vmap(inward_scale))(x), direct, rtol=1e-6)
  np.testing.assert_allclose(inward_scale(x, axis=1), x / (100 * jnp.sqrt(
      jnp.sum(x**2, 1, keepdims=True) + layers.DEFAULT_EPS)), rtol=1e-6)


@pytest.mark.parametrize('xi', [0.0, -1.0, float('nan'), float('inf'), 'big'])
def test_bad_xi_is_rejected(xi):
  with pytest.raises(ValueError, match='xi must be a positive finite number'):
    inward_scale(jnp.ones((1, 3)), xi)
  with pytest.raises(ValueError, match='xi must be a positive finite number'):
    layers.InwardScale(xi).init(jax.random.key(0), jnp.ones((1, 3)))


def _normalize(a, axis=-1):
  return a / np.sqrt(np.sum(a**2, axis=axis, keepdims=True) + layers.DEFAULT_EPS)


def _head(config, num_classes=3):
  return models.head_factory(config)(num_classes)


def _heads_case():
  rng = np.random.default_rng(4)
  return rng.normal(size=(5, 6)).astype(np.float32), np.array([0, 2, 1, 2, 0])


def test_softmax_and_l2_softmax_heads_by_hand():
  x, labels = _heads_case()
  for head, transform in [(_head({'name': 'softmax'}), lambda a: a),
                          (_head({'name': 'l2_softmax', 'scale': 8}), lambda a: 8.0 * _normalize(a))]:
    params = head.init(jax.random.key(0), x)['params']
    w, b = np.asarray(params['fc']['kernel']), np.asarray(params['fc']['bias'])
    np.testing.assert_allclose(head.apply({'params': params}, x, labels), transform(x) @ w + b,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name,margin', [('normface', None), ('cosface', 0.35), ('arcface', 0.5)])
def test_cosine_heads_by_hand(name, margin):
  x, labels = _heads_case()
  head = _head({'name': name, 'scale': 10.0, **({} if margin is None else {'margin': margin})})
  params = head.init(jax.random.key(0), x, labels)['params']
  cos = _normalize(x) @ _normalize(np.asarray(params['kernel']), axis=0)
  np.testing.assert_allclose(head.apply({'params': params}, x), 10.0 * cos, rtol=1e-5, atol=1e-5)
  target = cos[np.arange(5), labels]
  expected = cos.copy()
  if name == 'cosface':
    expected[np.arange(5), labels] = target - margin
  elif name == 'arcface':  # cos(theta + m), or past theta = pi - m the reference code's fallback
    expected[np.arange(5), labels] = np.where(target > np.cos(np.pi - margin),
                                              np.cos(np.arccos(target) + margin),
                                              target - margin * np.sin(margin))
  np.testing.assert_allclose(head.apply({'params': params}, x, labels), 10.0 * expected,
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('margin', [0.2, 0.5, 1.0])
def test_arcface_target_falls_as_the_angle_grows(margin):
  """The target logit must fall as the feature turns away from its class, all the way to pi."""
  theta = np.linspace(0.0, np.pi, 2001)
  target = np.asarray(arcface_target(jnp.asarray(np.cos(theta), jnp.float32), margin))
  assert np.all(np.diff(target) <= 1e-6), np.argmax(np.diff(target))
  assert np.all(target <= np.cos(theta) + 1e-6)  # a margin makes the target harder, never easier


def _anti_aligned_arcface_run(target_fn):
  """Features and class weights trained from the old head's degenerate minimum: every feature
  opposite its own class weight. Returns (final loss, accuracy)."""
  rng = np.random.default_rng(0)
  w = rng.normal(size=(16, 10)).astype(np.float32)
  labels = np.repeat(np.arange(10), 8)
  params = {'w': jnp.asarray(w),
            'e': jnp.asarray(-w.T[labels] + 0.05 * rng.normal(size=(80, 16)).astype(np.float32))}

  def loss(p):
    cos = l2_normalize(p['e']) @ l2_normalize(p['w'], axis=0)
    logits = 30.0 * jnp.where(jax.nn.one_hot(labels, 10) > 0, target_fn(cos, 0.5), cos)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  opt = optax.adam(1e-2)
  state = opt.init(params)
  value_and_grad = jax.jit(jax.value_and_grad(loss))
  for _ in range(300):
    value, grads = value_and_grad(params)
    updates, state = opt.update(grads, state)
    params = optax.apply_updates(params, updates)
  cos = l2_normalize(params['e']) @ l2_normalize(params['w'], axis=0)
  return float(value), float(np.mean(np.argmax(cos, -1) == labels))


def test_arcface_leaves_the_minimum_where_the_old_head_stuck():
  def old_target(cos, margin):  # the head before the fix: cos(theta + m) for every theta
    return jnp.cos(jnp.arccos(jnp.clip(cos, -1.0 + 1e-6, 1.0 - 1e-6)) + margin)

  old_loss, old_accuracy = _anti_aligned_arcface_run(old_target)
  assert old_loss < 0.5 and old_accuracy == 0.0  # a low loss, every sample in the wrong class
  assert _anti_aligned_arcface_run(arcface_target)[1] == 1.0


def test_head_defaults_and_bad_heads():
  assert heads.resolve({'name': 'arcface'}) == {'name': 'arcface', 'scale': 30.0, 'margin': 0.5}
  cosface = _head({'name': 'cosface'})
  assert cosface.scale == 30.0 and cosface.target.keywords['margin'] == 0.35
  assert _head({'name': 'arcface', 'margin': 0.2}).target.keywords['margin'] == 0.2
  with pytest.raises(ValueError, match="unknown head 'no_such_head'"):
    heads.resolve({'name': 'no_such_head'})
  with pytest.raises(ValueError, match=r"head 'normface' \(model.head\) does not take margin; "
                                       r"it takes scale"):
    heads.resolve({'name': 'normface', 'margin': 0.1})
  with pytest.raises(ValueError, match=r"model.head is a dict .*write \{'name': 'arcface'\}"):
    heads.resolve('arcface')  # a config of before heads owned their settings


@pytest.mark.parametrize('m', [1, 2, 3, 4])
def test_sphereface_psi_is_cos_m_theta_piecewise_and_falls_to_pi(m):
  theta = np.linspace(0.0, np.pi, 2001)
  got = np.asarray(sphereface.psi(jnp.asarray(np.cos(theta), jnp.float32), m))
  k = np.minimum(np.floor(m * theta / np.pi), m - 1)
  np.testing.assert_allclose(got, (-1) ** k * np.cos(m * theta) - 2 * k, atol=2e-3)
  assert np.all(np.diff(got) <= 1e-4), np.argmax(np.diff(got))  # falls as the angle grows


def test_sphereface_by_hand_with_its_annealing():
  x, labels = _heads_case()
  head = _head({'name': 'sphereface'})
  params = head.init(jax.random.key(0), x, labels)['params']
  norm = np.linalg.norm(x, axis=-1, keepdims=True)
  cos = _normalize(x) @ _normalize(np.asarray(params['kernel']), axis=0)
  np.testing.assert_allclose(head.apply({'params': params}, x), norm * cos, rtol=1e-5, atol=1e-5)
  target = cos[np.arange(5), labels]
  k = np.minimum(np.floor(4 * np.arccos(target) / np.pi), 3)
  psi = (-1) ** k * np.cos(4 * np.arccos(target)) - 2 * k
  for step, lam in [(0, 1000.0), (100, 1000.0 / 13), (10_000, 5.0), (None, 5.0)]:
    expected = cos.copy()
    expected[np.arange(5), labels] = (lam * target + psi) / (1 + lam)
    np.testing.assert_allclose(head.apply({'params': params}, x, labels, step), norm * expected,
                               rtol=1e-4, atol=1e-4)


def test_a_model_hands_the_train_step_to_a_head_that_anneals():
  model = models.create_model({'name': 'simplenet', 'head': {'name': 'sphereface'}}, 3)
  images, labels = jnp.ones((2, 28, 28, 1)) * jnp.arange(1, 3)[:, None, None, None], jnp.arange(2)
  variables = model.init(jax.random.key(0), images)
  early, late = (model.apply(variables, images, labels, step=s)['logits'] for s in (0, 10_000))
  assert not np.allclose(early, late)  # lambda 1000 at step 0, 5 at step 10000
  scores = model.apply(variables, images, labels, step=0)['scores']
  np.testing.assert_allclose(scores, model.apply(variables, images)['logits'], rtol=1e-6)


def test_subcenter_arcface_scores_each_class_by_its_nearest_subcenter():
  x, labels = _heads_case()
  head = _head({'name': 'subcenter_arcface', 'scale': 10.0, 'subcenters': 3})
  params = head.init(jax.random.key(0), x, labels)['params']
  assert params['kernel'].shape == (6, 9)
  cos = (_normalize(x) @ _normalize(np.asarray(params['kernel']), axis=0)).reshape(5, 3, 3).max(-1)
  np.testing.assert_allclose(head.apply({'params': params}, x), 10.0 * cos, rtol=1e-5, atol=1e-5)
  expected = cos.copy()
  target = cos[np.arange(5), labels]
  expected[np.arange(5), labels] = np.where(target > np.cos(np.pi - 0.5),
                                            np.cos(np.arccos(target) + 0.5), target - 0.5 * np.sin(0.5))
  np.testing.assert_allclose(head.apply({'params': params}, x, labels), 10.0 * expected,
                             rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match='subcenters must be a whole number >= 1'):
    heads.resolve({'name': 'subcenter_arcface', 'subcenters': 0})
  with pytest.raises(ValueError, match='margin must be a whole number >= 1'):
    heads.resolve({'name': 'sphereface', 'margin': 0})
