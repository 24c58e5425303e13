"""Model registry: model.name in the config -> a Linen module."""
import jax
import jax.numpy as jnp

from isx.layers import HEADS, check_xi
from isx.models.googlenet import GoogleNet
from isx.models.lenet import LeNet
from isx.models.simplenet import CONV_ACTIVATIONS, SimpleNet

MODELS = {'simplenet': SimpleNet, 'lenet': LeNet, 'googlenet': GoogleNet}


def create_model(model_config, num_classes: int):
  """Builds the model named by model_config.name; fails with one line on a bad name or value."""
  name = model_config.name
  if name not in MODELS:
    raise ValueError(f'unknown model {name!r}; choose one of {", ".join(sorted(MODELS))}')
  if model_config.head not in HEADS:
    raise ValueError(f'unknown model.head {model_config.head!r}; choose one of {", ".join(HEADS)}')
  kwargs = dict(num_classes=num_classes, embedding_dim=model_config.embedding_dim,
                inward_scale=model_config.inward_scale, xi=check_xi(model_config.xi),
                head=model_config.head, head_scale=model_config.head_scale,
                head_margin=model_config.head_margin, dtype=jnp.dtype(model_config.dtype))
  if name == 'simplenet':
    if model_config.conv_activation not in CONV_ACTIVATIONS:
      raise ValueError(f'unknown model.conv_activation {model_config.conv_activation!r}; '
                       f'use {" or ".join(CONV_ACTIVATIONS)}')
    kwargs['conv_activation'] = model_config.conv_activation
  if name == 'googlenet':
    kwargs.update(stem=model_config.stem, batch_norm=model_config.batch_norm,
                  dropout_rate=model_config.dropout_rate)
  return MODELS[name](**kwargs)


def check_input_shape(model, image_shape):
  """Fails with one line when images of image_shape cannot go through model (too small to
  survive its pooling, or not HxWxC)."""
  if len(image_shape) != 3:
    raise ValueError(f'images must be HxWxC, got shape {tuple(image_shape)}')
  try:
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *image_shape)))
    out = jax.eval_shape(model.apply, variables, jnp.zeros((1, *image_shape)))
  except Exception as e:  # noqa: BLE001  shape errors come from deep inside flax/XLA
    raise ValueError(f'images of shape {tuple(image_shape)} do not fit {type(model).__name__} '
                     f'(too small for its pooling? {str(e).splitlines()[0][:200]})') from None
  if out['embedding'].shape[-1] != model.embedding_dim:
    raise ValueError(f'images of shape {tuple(image_shape)} do not fit {type(model).__name__}')
