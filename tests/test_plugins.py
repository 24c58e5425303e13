"""The contract every plug-in isx ships keeps, found through the registry: a new file in
isx/models, isx/heads, isx/losses, isx/evals or isx/datasets is tested here the moment it exists.
Expected messages name no list of plug-ins."""
import ml_collections
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from isx import datasets, evals, heads, losses, models, registry

CLASSES, DIM = 5, 8


def _outputs(rng, n=12):
  embedding = rng.normal(size=(n, DIM)).astype(np.float32)
  return {'embedding': embedding, 'features': rng.normal(size=(n, 2 * DIM)).astype(np.float32),
          'logits': rng.normal(size=(n, CLASSES)).astype(np.float32),
          'label': np.arange(n) % CLASSES, 'index': np.arange(n)}


@pytest.mark.parametrize('name', registry.available('heads', 'Head'))
def test_head_maps_embeddings_to_logits_and_its_checkpoint_restores(name, tmp_path):
  settings = heads.resolve({'name': name})
  module = models.head_factory(settings)(CLASSES)
  x, labels = jnp.ones((4, DIM)) * jnp.arange(1, 5)[:, None], jnp.arange(4) % CLASSES
  params = module.init(jax.random.key(0), x, labels)
  for logits in (module.apply(params, x, labels), module.apply(params, x)):
    assert logits.shape == (4, CLASSES) and bool(jnp.all(jnp.isfinite(logits)))
  grads = jax.grad(lambda p: jnp.sum(module.apply(p, x, labels) ** 2))(params)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
  checkpointer = ocp.StandardCheckpointer()  # the params of today's code restore as saved
  checkpointer.save(tmp_path / 'ckpt', params)
  checkpointer.wait_until_finished()
  restored = checkpointer.restore(tmp_path / 'ckpt', params)
  jax.tree.map(np.testing.assert_array_equal, restored, params)


@pytest.mark.parametrize('name', registry.available('heads', 'Head'))
def test_every_numeric_head_setting_refuses_a_negative_value_of_its_own_type(name):
  """-1 for an int setting, -1.0 for a float one: the range check refuses it, not the type check."""
  settings = heads.resolve({'name': name})
  for key, value in settings.items():
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      with pytest.raises(ValueError, match=rf"head '{name}' \(model.head\): {key} must be"):
        heads.resolve({**settings, key: type(value)(-1)})


@pytest.mark.parametrize('name', registry.available('losses', 'Loss'))
def test_loss_term_is_finite_keeps_its_state_and_refuses_a_negative_weight(name):
  loss = {'name': name}
  settings = losses.resolve(loss)[name]
  assert settings['weight'] >= 0
  objective = losses.Objective(ml_collections.ConfigDict(loss), CLASSES, DIM)
  out = _outputs(np.random.default_rng(0))
  state = objective.init_state()
  value, terms = objective(out, out['label'], state)
  assert np.isfinite(float(value)) and set(terms) == {name}
  moved = objective.update_state(state, out, out['label'])
  assert jax.tree.map(jnp.shape, moved) == jax.tree.map(jnp.shape, state)
  with pytest.raises(ValueError, match=rf'loss.{name}.weight must be >= 0'):
    losses.resolve({'name': name, name: {'weight': -1.0}})


@pytest.mark.parametrize('name', registry.available('evals', 'compute'))
def test_eval_gives_finite_floats_with_its_defaults_and_prints_every_one(name):
  resolved = evals.resolve({name: {}})
  metrics = evals.compute(_outputs(np.random.default_rng(1)), resolved)
  assert metrics and all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
  summarize = getattr(registry.module_of(evals.load(name)), 'summarize', None)
  if summarize is not None:  # the keys it says it shows are its own, and it shows them all
    text, keys = summarize(metrics)
    assert text and set(keys) == set(metrics), (text, keys)


@pytest.mark.parametrize('name', registry.available('models', 'Model'))
def test_model_returns_the_output_contract_for_its_default_fields(name):
  config = ml_collections.ConfigDict({'name': name, 'embedding_dim': DIM,
                                      'head': {'name': 'softmax'},
                                      **models.own_settings(name)})
  model = models.create_model(config, CLASSES)
  images = jnp.zeros((2, 64, 64, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), images)
  out = jax.eval_shape(model.apply, variables, images)
  assert out['logits'].shape == (2, CLASSES) and out['embedding'].shape == (2, DIM)


@pytest.mark.parametrize('name', registry.available('datasets', 'prepare'))
def test_dataset_settings_resolve_and_its_hint_names_the_folder(name):
  settings = datasets.settings(datasets.resolve({'name': name}))
  assert all(not isinstance(v, dict) for v in settings.values())
  hint = getattr(datasets.module(name), 'HOW_TO_PREPARE', '{root}')
  assert '{root}' in hint or '{' not in hint
  hint.format(root='/data')
