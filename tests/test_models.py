"""Every model builds at its datasets' input sizes, with pinned shapes and parameter counts."""
import chex
import jax
import jax.numpy as jnp
import pytest

from configs import default
from isx import models

# (model, input shape, classes, params), pinned; the SimpleNet and LeNet counts were checked by
# hand (e.g. SimpleNet 28x28: convs 286,432 + FC 1152x256 295,168 + PReLU 256 + FC 2,570).
CASES = [
    ('simplenet', (28, 28, 1), 10, 584_426),
    ('simplenet', (32, 32, 3), 10, 814_378),
    ('simplenet', (64, 64, 1), 40, 2_394_376),
    ('lenet', (64, 64, 1), 40, 340_820),
    ('lenet', (28, 28, 1), 10, 44_510),
    ('googlenet', (32, 32, 3), 100, 7_014_788),
    ('googlenet', (224, 224, 3), 1000, 8_056_456),
]


def _model(name, classes, **overrides):
  cfg = default.get_config().model
  cfg.name = name
  if name == 'lenet':
    cfg.embedding_dim = 84
  if name == 'googlenet':
    cfg.embedding_dim = 1024
  cfg.update(overrides)
  return models.create_model(cfg, classes)


@pytest.mark.parametrize('name,shape,classes,num_params', CASES)
def test_shapes_and_parameter_count(name, shape, classes, num_params):
  stem = {'stem': 'imagenet'} if shape[0] == 224 else {}
  model = _model(name, classes, **stem)
  x = jnp.zeros((2, *shape))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
  out = jax.eval_shape(lambda v: model.apply(v, x), variables)
  chex.assert_shape(out['logits'], (2, classes))
  chex.assert_shape(out['embedding'], (2, model.embedding_dim))
  assert sum(p.size for p in jax.tree.leaves(variables['params'])) == num_params


def test_inward_scale_toggle_and_conv_activation_change_outputs_not_params():
  x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
  base = _model('simplenet', 10)
  params = base.init(jax.random.key(0), x)
  outs = [m.apply(params, x)['logits'] for m in
          (base, _model('simplenet', 10, inward_scale=False),
           _model('simplenet', 10, conv_activation='none'))]
  assert not jnp.allclose(outs[0], outs[1]) and not jnp.allclose(outs[0], outs[2])


def test_simplenet_flattens_1152_features_for_28x28():
  model = _model('simplenet', 10)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1))))
  assert variables['params']['classifier']['fc_embedding']['kernel'].shape == (1152, 256)


def test_jitted_forward_does_not_retrace():
  model = _model('simplenet', 10)
  x = jnp.ones((8, 28, 28, 1))
  params = model.init(jax.random.key(0), x)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def forward(p, batch):
    return model.apply(p, batch)['logits']

  for i in range(3):
    forward(params, x + i)


@pytest.mark.parametrize('field,value,message', [
    ('name', 'resnet', 'unknown model'), ('xi', 0.0, 'xi must be'), ('head', 'x', 'unknown model.head'),
    ('conv_activation', 'tanh', 'unknown model.conv_activation')])
def test_bad_model_config_is_rejected(field, value, message):
  cfg = default.get_config().model
  cfg[field] = value
  with pytest.raises(ValueError, match=message):
    models.create_model(cfg, 10)
