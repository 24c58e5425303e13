"""Every model builds at its datasets' input sizes, with pinned shapes and parameter counts."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from isx import losses as isx_losses, models

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


MODEL_FIELDS = {'simplenet': dict(conv_activation='relu'), 'lenet': dict(embedding_dim=84),
                'googlenet': dict(embedding_dim=1024, stem='cifar')}


def _model(name, classes, **overrides):
  return models.create_model(default.model(name, **{**MODEL_FIELDS[name], **overrides}), classes)


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


@pytest.mark.slow
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
    ('name', 'resnet', "unknown model 'resnet'; choose one of "),
    ('name', 'lenet', r"model 'lenet' does not take model.conv_activation; it takes "),
    ('xi', 0.0, 'xi must be'),
    ('head', {'name': 'x'}, "unknown head 'x'; choose one of "),
    ('head', {'name': 'softmax', 'margin': 0.2},
     r"head 'softmax' \(model.head\) does not take margin; it takes no settings"),
    ('head', {'name': 'arcface', 'margin': 'big'}, "margin must be a float like its default 0.5"),
    ('conv_activation', 'tanh', 'unknown model.conv_activation')])
def test_bad_model_config_is_rejected(field, value, message):
  from isx import config_checks
  cfg = default.get_config()
  cfg.model[field] = value
  with pytest.raises(ValueError, match=message):
    config_checks.validate(cfg, jax_started=False)


@pytest.mark.parametrize('dtype,rtol', [(jnp.float32, 1e-6), (jnp.bfloat16, 2 ** -8)])
def test_inward_scale_lands_on_the_1_over_xi_sphere_in_its_dtype(dtype, rtol):
  from isx import layers
  # 1152 features of very different sizes: a bfloat16 sum of squares would be ~1% off.
  x = (jax.random.normal(jax.random.key(0), (8, 1152)) *
       jnp.logspace(-3, 3, 1152)).astype(dtype)
  y = layers.inward_scale(x, 100.0)
  assert y.dtype == dtype
  norms = jnp.linalg.norm(y.astype(jnp.float32), axis=-1)
  assert jnp.allclose(norms, 0.01, rtol=rtol), norms


@pytest.mark.slow
def test_bfloat16_compute_tracks_float32_with_float32_params_and_loss():
  # SimpleNet only: XLA:CPU takes minutes to compile GoogleNet's bfloat16 step.
  from isx import mesh as mesh_lib, optim, step as step_lib
  config = default.get_config()
  config.learning_rate, config.warmup_steps = 1e-3, 0
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (3, 32, 28, 28, 1), np.uint8),
           'label': rng.integers(0, 10, (3, 32))}
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  schedule = optim.learning_rate_schedule(config, 100)
  losses, params = {}, {}
  for dtype in ('float32', 'bfloat16'):
    config.model.dtype = dtype
    model = models.create_model(config.model, 10)
    objective = isx_losses.Objective(config.loss, 10, model.embedding_dim)
    state = step_lib.create_train_state(model, (28, 28, 1), objective,
                                        optim.make_optimizer(config, schedule), jax.random.key(0))
    init = jax.device_get(state.params)
    train_fn = step_lib.compile_train_step(config, mesh, objective, schedule)
    state, metrics = train_fn(state, batch, jax.random.key(1))  # 3 steps in one scan
    assert metrics['loss'].dtype == jnp.float32
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves((state.params, state.opt_state))
               if jnp.issubdtype(p.dtype, jnp.floating))
    losses[dtype], params[dtype] = np.asarray(metrics['loss']), jax.device_get(state.params)
  # The first loss agrees to bfloat16 rounding of the forward pass, the next ones closely; the
  # weights differ by a small fraction of how far 3 Adam steps moved them.
  np.testing.assert_allclose(losses['bfloat16'][0], losses['float32'][0], rtol=1e-2)
  np.testing.assert_allclose(losses['bfloat16'], losses['float32'], rtol=3e-2)
  flat = lambda tree: np.concatenate([np.ravel(p) for p in jax.tree.leaves(tree)])
  moved = np.mean(np.abs(flat(params['float32']) - flat(init)))
  apart = np.mean(np.abs(flat(params['bfloat16']) - flat(params['float32'])))
  assert apart < 0.25 * moved
