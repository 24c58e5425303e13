"""Whether a model takes images of a shape: one line for images too small for its pooling."""
import jax
import jax.numpy as jnp

from isx import errors


def check(model, image_shape):
  """Fails with one line when images of image_shape cannot go through model because they are
  too small for its pooling (they fail where 224x224 images pass) or not HxWxC. Any other
  failure is the model's own, and keeps its traceback."""
  if len(image_shape) != 3:
    raise errors.ConfigError(f'images must be HxWxC, got shape {tuple(image_shape)}')
  try:
    out = _output_shapes(model, image_shape)
  except Exception as e:  # noqa: BLE001  shape errors come from deep inside flax/XLA
    try:
      _output_shapes(model, (224, 224, image_shape[-1]))
    except Exception:  # noqa: BLE001  large images fail too: not a size problem
      raise e from None
    raise errors.ConfigError(
        f'images of shape {tuple(image_shape)} are too small for {type(model).__name__} (its '
        f'pooling leaves nothing: {type(e).__name__}: {str(e).splitlines()[0][:160]})') from None
  if out['embedding'].shape[-1] != model.embedding_dim:
    raise errors.ConfigError(f'images of shape {tuple(image_shape)} do not fit '
                             f'{type(model).__name__}')


def _output_shapes(model, image_shape):
  images = jnp.zeros((1, *image_shape))
  variables = jax.eval_shape(model.init, jax.random.key(0), images)
  return jax.eval_shape(model.apply, variables, images)
