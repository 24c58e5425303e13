"""Losses against values computed by hand in numpy."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from isx import losses
from isx.losses import center, contrastive, softmax

RNG = np.random.default_rng(0)
EMB = RNG.normal(size=(6, 3)).astype(np.float32)
LABELS = np.array([0, 1, 0, 2, 1, 1])


def _np_contrastive(x, y, m):
  total, count = 0.0, 0.0
  for i in range(len(x)):
    for j in range(i + 1, len(x)):
      d = np.linalg.norm(x[i] - x[j])
      total += d**2 if y[i] == y[j] else max(0.0, m - d)**2
      count += 1
  return total / count


def test_softmax_cross_entropy_by_hand():
  logits = RNG.normal(size=(6, 3)).astype(np.float32)
  logp = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
  expected = -np.mean(logp[np.arange(6), LABELS])
  np.testing.assert_allclose(softmax.softmax_cross_entropy(logits, LABELS), expected, rtol=1e-5)


def test_label_smoothing_by_hand():
  """The target puts 1 - s + s/K on the label and s/K on every other class."""
  logits = RNG.normal(size=(6, 3)).astype(np.float32)
  logp = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
  targets = np.full((6, 3), 0.1 / 3)
  targets[np.arange(6), LABELS] += 0.9
  expected = -np.mean(np.sum(targets * logp, -1))
  np.testing.assert_allclose(softmax.softmax_cross_entropy(logits, LABELS, 0.1), expected,
                             rtol=1e-5)


def test_label_smoothing_out_of_range_refused():
  with pytest.raises(ValueError, match='label_smoothing must be in'):
    softmax.check(label_smoothing=1.0)


@pytest.mark.parametrize('margin', [0.5, 2.0])
def test_contrastive_by_hand(margin):
  np.testing.assert_allclose(contrastive.contrastive_loss(EMB, LABELS, margin),
                             _np_contrastive(EMB, LABELS, margin), rtol=1e-5)


def test_contrastive_gradient_finite_for_duplicate_points():
  x = jnp.asarray(np.stack([EMB[0], EMB[0], EMB[1]]))
  grad = jax.grad(lambda e: contrastive.contrastive_loss(e, jnp.array([0, 1, 1]), 1.0))(x)
  assert np.all(np.isfinite(grad))


def test_center_loss_and_update_by_hand():
  centers = RNG.normal(size=(3, 3)).astype(np.float32)
  expected = 0.5 * np.mean([np.sum((EMB[i] - centers[LABELS[i]])**2) for i in range(6)])
  np.testing.assert_allclose(center.center_loss(EMB, LABELS, centers), expected, rtol=1e-5)
  new = np.asarray(center.update_centers(centers, EMB, LABELS, alpha=0.5))
  for j in range(3):
    members = [i for i in range(6) if LABELS[i] == j]
    delta = sum(centers[j] - EMB[i] for i in members) / (1 + len(members))
    np.testing.assert_allclose(new[j], centers[j] - 0.5 * delta, rtol=1e-5, atol=1e-6)
  grad = jax.grad(lambda c: center.center_loss(EMB, LABELS, c))(jnp.asarray(centers))
  np.testing.assert_array_equal(grad, 0.0)


def test_objective_weights_terms_and_owns_the_center_state():
  cfg = ml_collections.ConfigDict(dict(name='softmax+contrastive', contrastive={'weight': 0.5}))
  outputs = {'logits': RNG.normal(size=(6, 3)).astype(np.float32), 'embedding': EMB}
  objective = losses.Objective(cfg, 3, 3)
  assert objective.init_state() == {}  # no term keeps state
  assert objective.terms['contrastive'].margin == 1.0  # its default
  loss, terms = objective(outputs, LABELS, {})
  np.testing.assert_allclose(loss, terms['softmax'] + 0.5 * terms['contrastive'], rtol=1e-6)
  cfg = ml_collections.ConfigDict(dict(name='softmax+center', center={'weight': 0.25, 'alpha': 0.3}))
  objective = losses.Objective(cfg, 3, 3)
  state = objective.init_state()
  assert set(state) == {'center'} and state['center'].shape == (3, 3)
  loss, terms = objective(outputs, LABELS, state)
  np.testing.assert_allclose(loss, terms['softmax'] + 0.25 * terms['center'], rtol=1e-6)
  new = objective.update_state(state, outputs, LABELS)
  np.testing.assert_allclose(new['center'], center.update_centers(state['center'], EMB, LABELS, 0.3),
                             rtol=1e-6)


@pytest.mark.parametrize('loss,message', [
    ({'name': 'softmax+triplet'}, "unknown loss 'triplet'; choose one of "),
    ({'name': 'softmax', 'center': {'alpha': 0.1}},
     "loss.center set, but loss.name 'softmax' has no such term"),
    ({'name': 'softmax+center', 'center': {'alhpa': 0.1}},
     r"loss 'center' \(loss.center\) does not take alhpa; it takes alpha, weight"),
    ({'name': 'softmax+contrastive', 'contrastive': {'margin': 'one'}},
     'margin must be a float like its default 1.0')])
def test_bad_loss_settings_are_named(loss, message):
  with pytest.raises(ValueError, match=message):
    losses.resolve(loss)


def test_resolved_loss_fills_each_terms_defaults():
  assert losses.resolve({'name': 'softmax+center', 'center': {'alpha': 0.3}}) == {
      'name': 'softmax+center', 'softmax': {'weight': 1.0, 'label_smoothing': 0.0},
      'center': {'weight': 0.01, 'alpha': 0.3}}
